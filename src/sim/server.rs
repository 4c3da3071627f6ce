//! The running sandbox: its options, the shared handle tests drive it through, and the accept loop.
//!
//! The accept loop is our own (hyper's HTTP/1 connection per TCP or TLS stream) rather than
//! `axum::serve`, so that the `drop` fault can close a connection without answering: each
//! connection gets a kill switch that the ARM handler can pull.

use std::convert::Infallible;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::Router;
use axum::extract::Request;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::Service;

use super::error::SimError;
use super::faults::{Buckets, FaultSpec};
use super::log::{RequestLog, RequestStats};
use super::state::{LroSettings, NewConnection, World};
use super::{admin, handlers, tls};

/// How to run the sandbox. Long-running operations finish on their status polls (not on a timer),
/// so a run is the same whatever the machine's speed; an operation nobody polls stays `InProgress`.
/// `Default`: a free port, plain HTTP, any token, no faults, pages of 50,
/// one `InProgress` poll per long-running operation, `Retry-After: 1`.
#[derive(Clone)]
pub struct SimOptions {
    /// 0 picks a free port. The sandbox always binds 127.0.0.1.
    pub port: u16,
    /// Serve HTTPS with a generated CA + leaf; the CA PEM is written to `cert_dir`.
    pub tls: bool,
    /// Where the CA PEM goes; default a new temporary directory (removed at shutdown).
    pub cert_dir: Option<PathBuf>,
    /// When set, only this bearer token is accepted; otherwise any bearer token.
    pub token: Option<String>,
    pub faults: FaultSpec,
    /// Items per page of every list (`nextLink` beyond).
    pub page_size: usize,
    /// Polls a long-running operation answers `InProgress` before it finishes.
    pub lro_polls: u32,
    /// `Retry-After` (seconds) advertised on long-running operations; 0 for fast tests.
    pub retry_after_secs: u64,
    /// Subscriptions that belong to another tenant: reading a private endpoint there answers
    /// 401 `InvalidAuthenticationTokenTenant`, as ARM does for a token from the wrong tenant.
    pub other_tenant_subscriptions: Vec<String>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            port: 0,
            tls: false,
            cert_dir: None,
            token: None,
            faults: FaultSpec::default(),
            page_size: 50,
            lro_polls: 1,
            retry_after_secs: 1,
            other_tenant_subscriptions: Vec::new(),
        }
    }
}

impl fmt::Debug for SimOptions {
    // Hand-written so the token never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimOptions")
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("cert_dir", &self.cert_dir)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("faults", &self.faults.to_string())
            .field("page_size", &self.page_size)
            .field("lro_polls", &self.lro_polls)
            .field("retry_after_secs", &self.retry_after_secs)
            .field(
                "other_tenant_subscriptions",
                &self.other_tenant_subscriptions,
            )
            .finish()
    }
}

pub(crate) struct FaultState {
    pub spec: FaultSpec,
    /// Faultable requests since the spec was set (the `n` of `FaultSpec::decide`).
    pub n: u64,
    pub buckets: Buckets,
}

pub(crate) struct Settings {
    pub token: Option<String>,
    pub page_size: usize,
    pub lro: LroSettings,
    pub retry_after_secs: u64,
    /// Lower-cased.
    pub other_tenant: Vec<String>,
}

/// Decides whether a bearer token is still accepted (see [`Sandbox::set_token_check`]).
pub type TokenCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

struct Inner {
    token_check: Mutex<Option<TokenCheck>>,
    world: Mutex<World>,
    initial: World,
    log: Mutex<RequestLog>,
    faults: Mutex<FaultState>,
    settings: Settings,
    base_url: OnceLock<String>,
}

/// A handle on the sandbox's state: cheap to clone, shared by the server and the tests.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these structures half-changed in a way that
    // matters to a test double; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sandbox {
    /// Builds the sandbox state from an estate (DESIGN 3.1) without serving it.
    pub fn new(estate: Value, options: &SimOptions) -> Result<Self, SimError> {
        let world = World::from_estate(estate).map_err(SimError::Estate)?;
        Ok(Self {
            inner: Arc::new(Inner {
                token_check: Mutex::new(None),
                initial: world.clone(),
                world: Mutex::new(world),
                log: Mutex::new(RequestLog::default()),
                faults: Mutex::new(FaultState {
                    spec: options.faults.clone(),
                    n: 0,
                    buckets: Buckets::default(),
                }),
                settings: Settings {
                    token: options.token.clone(),
                    page_size: options.page_size.max(1),
                    lro: LroSettings::new(options.lro_polls, options.retry_after_secs),
                    retry_after_secs: options.retry_after_secs,
                    other_tenant: options
                        .other_tenant_subscriptions
                        .iter()
                        .map(|s| s.to_ascii_lowercase())
                        .collect(),
                },
                base_url: OnceLock::new(),
            }),
        })
    }

    /// Validates the estate, binds 127.0.0.1:`port`, and serves until `shutdown` (or drop).
    pub async fn start(estate: Value, options: SimOptions) -> Result<RunningSandbox, SimError> {
        let sandbox = Sandbox::new(estate, &options)?;
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, options.port)))
            .await
            .map_err(|source| SimError::Bind {
                port: options.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            port: options.port,
            source,
        })?;
        let (tls, ca_cert_path, temp_dir) = if options.tls {
            let (dir, temp) = match &options.cert_dir {
                Some(d) => (d.clone(), None),
                None => {
                    let d = std::env::temp_dir()
                        .join(format!("linkguard-sim-{}", uuid::Uuid::new_v4()));
                    (d.clone(), Some(d))
                }
            };
            let setup = tls::setup(&dir)?;
            (Some(setup.acceptor), Some(setup.ca_cert_path), temp)
        } else {
            (None, None, None)
        };
        let scheme = if options.tls { "https" } else { "http" };
        let endpoint = format!("{scheme}://127.0.0.1:{}", addr.port());
        let _ = sandbox.inner.base_url.set(endpoint.clone());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, tls, sandbox.router(), stopped));
        tracing::info!(%endpoint, "sandbox listening");
        Ok(RunningSandbox {
            sandbox,
            endpoint,
            ca_cert_path,
            temp_dir,
            stop,
            task: Some(task),
        })
    }

    /// The axum router: ARM operations plus the `/_sim` test hooks. Served by anything else than
    /// [`Sandbox::start`], the `drop` fault cannot close the connection and is ignored.
    pub fn router(&self) -> Router {
        admin::routes(self.clone())
            .fallback(handlers::arm)
            .with_state(self.clone())
    }

    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        let mut world = lock(&self.inner.world);
        world.settle(std::time::Instant::now());
        world
    }
    pub(crate) fn log(&self) -> MutexGuard<'_, RequestLog> {
        lock(&self.inner.log)
    }
    pub(crate) fn fault_state(&self) -> MutexGuard<'_, FaultState> {
        lock(&self.inner.faults)
    }
    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }
    /// Base URL for `nextLink` and operation URLs.
    pub(crate) fn base_url(&self) -> &str {
        self.inner
            .base_url
            .get()
            .map_or("http://127.0.0.1", String::as_str)
    }

    /// Counters and the latest requests (ARM requests only; `/_sim` routes are not counted).
    pub fn requests(&self) -> RequestStats {
        self.log().snapshot()
    }

    /// Clears the counters and the request log.
    pub fn reset_requests(&self) {
        self.log().reset();
    }

    /// Puts the estate back as it was loaded (pending operations are forgotten).
    pub fn reset_estate(&self) {
        *self.world() = self.inner.initial.clone();
    }

    /// From now on, an ARM request's bearer token is accepted only when `check` says so (`None`:
    /// back to the `token` option). The sandbox cannot read a real token's expiry; tests use this
    /// to model tokens that expire and are rotated. A refused token gets ARM's 401
    /// `ExpiredAuthenticationToken`.
    pub fn set_token_check(&self, check: Option<TokenCheck>) {
        *lock(&self.inner.token_check) = check;
    }

    pub(crate) fn token_check(&self) -> Option<TokenCheck> {
        lock(&self.inner.token_check).clone()
    }

    /// Replaces the faults (and restarts their sequence and the token buckets).
    pub fn set_faults(&self, spec: FaultSpec) {
        let mut state = self.fault_state();
        state.spec = spec;
        state.n = 0;
        state.buckets.clear();
    }

    pub fn faults(&self) -> FaultSpec {
        self.fault_state().spec.clone()
    }

    /// Adds a connection to a registry, as creating a private endpoint against it would.
    pub fn add_connection(
        &self,
        registry_id: &str,
        connection: NewConnection,
    ) -> Result<Value, SimError> {
        self.world().add_connection(registry_id, connection)
    }

    /// Changes a connection's state "by someone else" (no checks), e.g. to `Disconnected`.
    pub fn set_connection_status(
        &self,
        connection_id: &str,
        status: &str,
        description: Option<&str>,
    ) -> Result<Value, SimError> {
        self.world()
            .set_connection_status(connection_id, status, description)
    }

    /// Adds a private endpoint body (`GET Microsoft.Network/privateEndpoints/{name}` shape).
    pub fn add_private_endpoint(&self, body: Value) -> Result<Value, SimError> {
        self.world().add_private_endpoint(body)
    }

    /// Denies the caller every request on one registry (403 `AuthorizationFailed`), as a deny
    /// assignment on that registry would; other registries of its subscription stay readable.
    pub fn deny_registry(&self, id: &str) {
        self.world().deny_registry(id);
    }

    /// The registry as a GET would answer it now (connections included).
    pub fn registry_json(&self, id: &str) -> Option<Value> {
        self.world().registry_json(id)
    }

    pub fn connection_json(&self, id: &str) -> Option<Value> {
        self.world().connection_json(id)
    }

    /// The whole estate as it is now, in the estate file's shape.
    pub fn estate_json(&self) -> Value {
        self.world().estate_json()
    }
}

/// A sandbox being served. Derefs to its [`Sandbox`] handle; stops on `shutdown` or drop.
pub struct RunningSandbox {
    sandbox: Sandbox,
    endpoint: String,
    ca_cert_path: Option<PathBuf>,
    temp_dir: Option<PathBuf>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningSandbox {
    /// `http(s)://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
    /// The CA certificate (PEM) clients must trust, with TLS.
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.ca_cert_path.as_deref()
    }
    pub fn handle(&self) -> Sandbox {
        self.sandbox.clone()
    }
    /// The one line `linkguard sim` prints when ready.
    pub fn ready_line(&self) -> String {
        let mut line = json!({"endpoint": self.endpoint});
        if let Some(ca) = &self.ca_cert_path {
            super::state::set_at(&mut line, &["ca_cert"], json!(ca.display().to_string()));
        }
        line.to_string()
    }
    /// Stops accepting, closes open connections, removes a temporary cert dir.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.remove_temp_dir();
    }

    fn remove_temp_dir(&mut self) {
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl std::ops::Deref for RunningSandbox {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        &self.sandbox
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.remove_temp_dir();
    }
}

/// Pulled by the ARM handler to close its connection without an answer (`drop` fault).
#[derive(Clone)]
pub(crate) struct ConnKill(pub Arc<Notify>);

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    mut stopped: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    conns.spawn(serve_connection(tcp, tls.clone(), app.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "sandbox accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn serve_connection(tcp: TcpStream, tls: Option<TlsAcceptor>, app: Router) {
    let _ = tcp.set_nodelay(true);
    let kill = Arc::new(Notify::new());
    let service_kill = kill.clone();
    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnKill(service_kill.clone()));
        let mut app = app.clone();
        async move {
            Ok::<_, Infallible>(
                app.call(req.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|e| match e {}),
            )
        }
    });
    let http = hyper::server::conn::http1::Builder::new();
    match tls {
        Some(acceptor) => {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let conn = http.serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
            }
        }
        None => {
            let conn = http.serve_connection(TokioIo::new(tcp), service);
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
            }
        }
    }
}
