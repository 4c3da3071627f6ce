//! The HTTP side: routes, body limit, header and body timeouts, per-invocation span, graceful
//! shutdown.
//!
//! The host calls `POST /<FunctionName>` on 127.0.0.1 and probes `GET /` until it answers.
//!
//! The accept loop is our own (hyper's HTTP/1 connection per TCP stream) rather than `axum::serve`,
//! which sets no timer and so no header read timeout: a client that sends half a request and stalls
//! would hold its connection forever.

use std::future::Future;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::invocation::Invocation;
use super::log::InvocationLog;
use super::response::{HandlerError, InvocationResponse, Reply};
use super::state::AppState;
use super::{connection_events, manual_audit, scheduled_audit, subscription_audit, webhook};

/// The functions this handler serves (the folder names under `function/`).
pub const FUNCTIONS: [&str; 4] = [
    "ConnectionEvents",
    "ScheduledAudit",
    "ManualAudit",
    "SubscriptionAudit",
];

/// Invocations larger than this are refused with 413. Event Grid events are at most 1 MB; a
/// ManualAudit body is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

pub const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    ConnectionEvents,
    ScheduledAudit,
    ManualAudit,
    SubscriptionAudit,
}

impl Function {
    /// Function names are case-insensitive in Azure Functions.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "connectionevents" => Some(Self::ConnectionEvents),
            "scheduledaudit" => Some(Self::ScheduledAudit),
            "manualaudit" => Some(Self::ManualAudit),
            "subscriptionaudit" => Some(Self::SubscriptionAudit),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::ConnectionEvents => "ConnectionEvents",
            Self::ScheduledAudit => "ScheduledAudit",
            Self::ManualAudit => "ManualAudit",
            Self::SubscriptionAudit => "SubscriptionAudit",
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(ready).fallback(method_not_allowed))
        .route(
            webhook::PATH,
            post(webhook::post)
                .options(webhook::options)
                .fallback(method_not_allowed),
        )
        .route("/{function}", post(invoke).fallback(method_not_allowed))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The readiness probe (and later health pings).
async fn ready() -> Json<serde_json::Value> {
    Json(
        json!({"service": "linkguard", "version": env!("CARGO_PKG_VERSION"), "functions": FUNCTIONS}),
    )
}

fn unknown_function(what: &str) -> Response {
    let body = InvocationResponse {
        error: Some(HandlerError {
            code: "UnknownFunction".into(),
            message: format!(
                "{what}; this handler serves POST /ConnectionEvents, /ScheduledAudit, /ManualAudit, /SubscriptionAudit"
            ),
            functions: FUNCTIONS.iter().map(ToString::to_string).collect(),
        }),
        ..InvocationResponse::default()
    };
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    unknown_function(&format!("no function at {method} {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let body = InvocationResponse {
        error: Some(HandlerError {
            code: "MethodNotAllowed".into(),
            message: format!(
                "{method} {} is not served: functions are invoked with POST, readiness is GET /",
                uri.path()
            ),
            functions: Vec::new(),
        }),
        ..InvocationResponse::default()
    };
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

/// Reads a request body under the body limit and within `body_read_timeout`. The error is the
/// status to answer and a message naming the limit.
pub(crate) async fn read_body(
    state: &AppState,
    request: Request,
) -> Result<Bytes, (StatusCode, String)> {
    let deadline = state.options().body_read_timeout;
    match tokio::time::timeout(deadline, Bytes::from_request(request, &())).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(rejection)) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "the request body exceeds the {} MiB limit",
                    MAX_BODY_BYTES / (1024 * 1024)
                )
            } else {
                format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                )
            };
            Err((status, message))
        }
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {:?}; send the whole body at once",
                deadline
            ),
        )),
    }
}

async fn invoke(
    State(state): State<AppState>,
    Path(function): Path<String>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let Some(func) = Function::from_name(&function) else {
        return unknown_function(&format!("no function named `{function}`"));
    };
    let invocation_id = headers
        .get(INVOCATION_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let span =
        tracing::info_span!("invocation", function = func.name(), invocation_id = %invocation_id);
    async move {
        let body = match read_body(&state, request).await {
            Ok(b) => b,
            Err((status, message)) => {
                tracing::warn!("{message}");
                return Reply::failed(status, "BodyRejected", message, Vec::new()).into_response();
            }
        };
        let inv = match Invocation::parse(&body) {
            Ok(inv) => inv,
            Err(e) => {
                tracing::warn!("invocation refused: {e}");
                return Reply::failed(
                    StatusCode::BAD_REQUEST,
                    "InvalidInvocation",
                    e.to_string(),
                    Vec::new(),
                )
                .into_response();
            }
        };
        let mut log = InvocationLog::new();
        if let Some(m) = inv.method_name()
            && !m.eq_ignore_ascii_case(func.name())
        {
            log.info(format!(
                "Metadata.sys.MethodName is `{m}`; serving {}",
                func.name()
            ));
        }
        let started = std::time::Instant::now();
        let reply = match func {
            Function::ConnectionEvents => connection_events::handle(&state, &inv, log).await,
            Function::ScheduledAudit => scheduled_audit::handle(&state, &inv, log).await,
            Function::ManualAudit => manual_audit::handle(&state, &inv, log).await,
            Function::SubscriptionAudit => subscription_audit::handle(&state, &inv, log).await,
        };
        tracing::info!(
            status = reply.status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "invocation finished"
        );
        reply.into_response()
    }
    .instrument(span)
    .await
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight invocations finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let header_timeout = state.options().header_read_timeout;
    let app = router(state);
    let (stop, stopping) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    conns.spawn(serve_connection(tcp, app.clone(), header_timeout, stopping.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop.send(true);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// One HTTP/1 connection: headers must arrive within `header_timeout`; on shutdown, an idle
/// connection closes at once and a busy one after its current request.
async fn serve_connection(
    tcp: TcpStream,
    app: Router,
    header_timeout: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let service = TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection(TokioIo::new(tcp), service);
    let mut conn = std::pin::pin!(conn);
    let mut asked = *stopping.borrow();
    if asked {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("connection ended: {e}");
                }
                break;
            }
            changed = stopping.changed(), if !asked => {
                asked = true;
                if changed.is_err() || *stopping.borrow() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Resolves on SIGTERM (the host stopping the worker) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: finishing in-flight invocations"),
        () = term => tracing::info!("SIGTERM: finishing in-flight invocations"),
    }
}
