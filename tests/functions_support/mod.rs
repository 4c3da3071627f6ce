//! Shared by the `functions_*` tests: the handler served over HTTP on 127.0.0.1 like the Functions
//! host sees it, backed by the ARM sandbox through the real ARM client, reports in a real directory
//! sink (or an in-memory store when a test needs to make storage fail).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

// Also loaded by engine_support, which some tests (abuse.rs) use beside this module.
#[allow(clippy::duplicate_mod)]
#[path = "../support_report/mod.rs"]
pub mod support_report;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use linkguard::arm::{
    ArmClient, ArmClientOptions, LroSettings, RetrySettings, StaticTokenCredential,
};
use linkguard::events::TopicAllowList;
use linkguard::host::functions::{
    AppState, HandlerOptions, PolicySource, ReportStore, ReportStoreError, SinkStore, serve,
};
use linkguard::policy::Policy;
use linkguard::report::Report;
use linkguard::report::sink::DirSink;
use linkguard::sim::{RunningSandbox, Sandbox, SimOptions};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SUB: &str = "11111111-1111-1111-1111-111111111111";
pub const SUB_TOPIC: &str = "/subscriptions/11111111-1111-1111-1111-111111111111";
pub const ACRPROD01: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/acrprod01";
/// Pending in examples/estate.json; its endpoint sits in the hub VNet, so rule `platform-subnets`
/// approves it.
pub const PENDING_CONN: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/acrprod01/privateEndpointConnections/pe-aks-weu.1a2b";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn shared_fixtures(kind: &str) -> PathBuf {
    let dir = repo().join("../shared/fixtures").join(kind);
    assert!(
        dir.is_dir(),
        "shared fixtures missing at {}: clone ../shared beside the repo",
        dir.display()
    );
    dir
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every `.json` file of a fixture directory, sorted by name.
pub fn fixture_files(kind: &str) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(shared_fixtures(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    out.sort();
    out
}

pub fn estate() -> Value {
    read_json(&repo().join("examples/estate.json"))
}

pub fn policy() -> Arc<Policy> {
    Arc::new(Policy::load(&repo().join("examples/policy.toml")).unwrap())
}

/// A ConnectionEvents invocation: the envelope of the real `eventgrid-invocation.json` capture, with
/// the event under the binding name of function.json (`eventGridEvent`) and `MethodName` set.
pub fn event_invocation(event: Value) -> Value {
    let mut inv = read_json(&shared_fixtures("functions").join("eventgrid-invocation.json"));
    let data = inv["Data"].as_object_mut().unwrap();
    data.remove("event").expect("fixture layout: Data.event");
    inv["Metadata"]["data"] = event.get("data").cloned().unwrap_or(Value::Null);
    inv["Data"]["eventGridEvent"] = event;
    inv["Metadata"]["sys"]["MethodName"] = json!("ConnectionEvents");
    inv
}

/// The real `ResourceWriteSuccess` of the Event Grid docs with only its ids substituted so it names
/// a registry connection of the test estate: `subject`, `data.resourceUri`, `data.authorization.scope`
/// (the connection), `data.operationName` and `authorization.action` (the connection write), `topic`
/// (the registry's subscription), `id` (unique per test). Everything else is the payload as published.
pub fn connection_write_event(id: &str, connection: &str) -> Value {
    let mut ev = read_json(
        &shared_fixtures("eventgrid")
            .join("docs.event-schema-subscriptions.ResourceWriteSuccess.json"),
    )[0]
    .clone();
    let op = "Microsoft.ContainerRegistry/registries/privateEndpointConnections/write";
    ev["id"] = json!(id);
    ev["topic"] = json!(SUB_TOPIC);
    ev["subject"] = json!(connection);
    ev["data"]["resourceUri"] = json!(connection);
    ev["data"]["operationName"] = json!(op);
    ev["data"]["resourceProvider"] = json!("Microsoft.ContainerRegistry");
    ev["data"]["subscriptionId"] = json!(SUB);
    ev["data"]["authorization"]["scope"] = json!(connection);
    ev["data"]["authorization"]["action"] = json!(op);
    ev
}

/// Reports kept in memory; can be told to fail.
#[derive(Default)]
pub struct MemoryStore {
    pub reports: Mutex<Vec<Report>>,
    pub fail: AtomicBool,
    pub attempts: AtomicUsize,
}

#[async_trait]
impl ReportStore for MemoryStore {
    async fn store(&self, report: &Report) -> Result<String, ReportStoreError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        // Every report a test produces must match schemas/report.schema.json.
        support_report::schema::assert_valid(report);
        if self.fail.load(Ordering::SeqCst) {
            return Err(ReportStoreError(
                "storage account unreachable (test)".into(),
            ));
        }
        let mut reports = self.reports.lock().unwrap();
        reports.push(report.clone());
        Ok(format!("memory:{}", report.run.id))
    }
}

impl MemoryStore {
    pub fn reports(&self) -> Vec<Report> {
        self.reports.lock().unwrap().clone()
    }
}

/// The ARM client against the sandbox, with retries and polls made fast.
pub fn arm_client(endpoint: &str) -> ArmClient {
    ArmClient::new(
        Arc::new(StaticTokenCredential::new("test-token")),
        ArmClientOptions {
            endpoint: endpoint.to_string(),
            retry: RetrySettings {
                max_retries: 1,
                initial_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(20),
                total_deadline: Duration::from_secs(5),
                rate_limit_pause: Duration::from_millis(0),
            },
            lro: LroSettings {
                poll_interval: Duration::from_millis(10),
                max_poll_interval: Duration::from_millis(20),
                max_wait: Duration::from_secs(10),
            },
            ..ArmClientOptions::default()
        },
    )
    .unwrap()
}

pub async fn sandbox() -> RunningSandbox {
    Sandbox::start(
        estate(),
        SimOptions {
            retry_after_secs: 0,
            ..SimOptions::default()
        },
    )
    .await
    .expect("the sandbox must start")
}

pub fn options(topics: &[&str]) -> HandlerOptions {
    HandlerOptions {
        topics: TopicAllowList::new(topics.iter().copied()),
        ..HandlerOptions::default()
    }
}

/// One HTTP client for every test of a binary (building one loads the TLS roots: slow).
pub fn http() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new).clone()
}

/// The handler served on 127.0.0.1:<free port>.
pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn start(state: AppState) -> Self {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Self {
            base: format!("http://{addr}"),
            client: http(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// POST /<function> like the host: JSON body, invocation id header. Returns status and body.
    pub async fn invoke(&self, function: &str, body: &Value) -> (u16, Value) {
        self.post_raw(&format!("/{function}"), body.to_string().into_bytes())
            .await
    }

    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "x-azure-functions-invocationid",
                uuid::Uuid::new_v4().to_string(),
            )
            .header("x-azure-functions-hostversion", "4.1037.0.0")
            .header("user-agent", "Azure-Functions-Host/4.1037.0.0")
            .body(body)
            .send()
            .await
            .expect("the handler must answer");
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        assert!(!text.is_empty(), "empty answer ({status}) to {path}");
        assert!(
            ct.starts_with("application/json"),
            "content type `{ct}` for {path}: {text}"
        );
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("answer to {path} is not JSON ({e}): {text}"));
        (status, body)
    }

    pub async fn ready(&self) -> u16 {
        self.client
            .get(format!("{}/", self.base))
            .send()
            .await
            .expect("GET / must answer")
            .status()
            .as_u16()
    }

    /// Triggers the graceful shutdown and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("graceful shutdown must finish")
                .unwrap()
                .unwrap();
        }
    }

    pub fn trigger_stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Every response carries the protocol's three members.
pub fn assert_envelope(body: &Value) {
    assert!(body["Outputs"].is_object(), "Outputs missing: {body}");
    assert!(body["Logs"].is_array(), "Logs missing: {body}");
    assert!(
        body.as_object().unwrap().contains_key("ReturnValue"),
        "ReturnValue missing: {body}"
    );
}

pub fn logs(body: &Value) -> String {
    body["Logs"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// A full stack: sandbox, ARM client, handler state and server; reports in a directory sink.
pub struct Stack {
    pub sim: RunningSandbox,
    pub server: Server,
    pub reports_dir: tempfile::TempDir,
}

impl Stack {
    pub async fn start(topics: &[&str]) -> Self {
        Self::start_with(topics, PolicySource::Fixed(policy())).await
    }

    pub async fn start_with(topics: &[&str], policy: PolicySource) -> Self {
        let sim = sandbox().await;
        let reports_dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SinkStore(Arc::new(DirSink::new(reports_dir.path()))));
        let state = AppState::new(
            Arc::new(arm_client(sim.endpoint())),
            policy,
            store,
            options(topics),
        );
        let server = Server::start(state).await;
        Self {
            sim,
            server,
            reports_dir,
        }
    }

    pub fn sandbox(&self) -> Sandbox {
        self.sim.handle()
    }

    /// Stored run reports (`runs/**/<id>.json`), each checked against the report schema (and
    /// `latest.json` too).
    pub fn stored_reports(&self) -> Vec<Value> {
        let mut out = Vec::new();
        collect_json(&self.reports_dir.path().join("runs"), &mut out);
        let latest = self.reports_dir.path().join("latest.json");
        let mut all = out.clone();
        if latest.is_file() {
            all.push(read_json(&latest));
        }
        for r in &all {
            assert_report_valid(r);
        }
        out
    }

    pub fn connection_status(&self, id: &str) -> String {
        let c = self
            .sandbox()
            .connection_json(id)
            .expect("connection exists");
        c["properties"]["privateLinkServiceConnectionState"]["status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// PUTs the sandbox saw on this connection.
    pub fn puts_on(&self, id: &str) -> usize {
        self.sandbox()
            .requests()
            .log
            .iter()
            .filter(|r| r.method == "PUT" && r.path.eq_ignore_ascii_case(id))
            .count()
    }
}

/// Panics with every violation when `doc` does not match schemas/report.schema.json.
pub fn assert_report_valid(doc: &Value) {
    if let Err(errors) = support_report::schema::validate(doc) {
        panic!(
            "report {} violates schemas/report.schema.json:\n{}",
            doc["run"]["id"],
            errors.join("\n")
        );
    }
}

/// Every report JSON file under `dir` (any depth, `latest.json` included) validated; returns how
/// many there were.
pub fn assert_dir_reports_valid(dir: &Path) -> usize {
    let mut out = Vec::new();
    collect_json(dir, &mut out);
    for r in &out {
        assert_report_valid(r);
    }
    out.len()
}

/// A reports directory whose reports are checked against the schema when the test ends.
pub struct CheckedDir(tempfile::TempDir);

impl CheckedDir {
    pub fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for CheckedDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_dir_reports_valid(self.0.path());
        }
    }
}

/// At the end of every test using a stack: every report it wrote matches the report schema.
impl Drop for Stack {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert_dir_reports_valid(self.reports_dir.path());
        }
    }
}

fn collect_json(dir: &Path, out: &mut Vec<Value>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect_json(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(read_json(&p));
        }
    }
}
