//! Shared by the `lambda_*` tests: the Lambda host run as a separate process through the real
//! `lambda_runtime` client, against a Runtime API served by the test on 127.0.0.1, backed by the ARM
//! sandbox through the real ARM client (static credential), reports in a temporary directory.
//!
//! The child process is this test binary again, started by `rusty_fork` with an environment of its
//! own (Lambda's variables, the linkguard settings): it runs `linkguard::host::lambda::run_cli`, the
//! function `linkguard lambda` runs. (`lambda_runtime` reads its configuration only from the process
//! environment, which a test may not change in-process.)
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine as _;
use linkguard::sim::{RunningSandbox, Sandbox, SimOptions};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};

#[path = "../support_report/mod.rs"]
pub mod support_report;

pub const SECRET: &str = "lambda-test-webhook-secret-7f3a9c";
pub const STATIC_TOKEN: &str = "lambda-test-arm-token";
pub const SUB: &str = "11111111-1111-1111-1111-111111111111";
pub const SUB_TOPIC: &str = "/subscriptions/11111111-1111-1111-1111-111111111111";
pub const ACRPROD01: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/acrprod01";
/// Pending in examples/estate.json; rule `platform-subnets` approves it.
pub const PENDING_CONN: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/acrprod01/privateEndpointConnections/pe-aks-weu.1a2b";
const FUNCTION_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:linkguard-test";
const INVOKE_TIMEOUT: Duration = Duration::from_secs(90);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

pub fn lambda_fixture(name: &str) -> Value {
    read_json(&repo().join("tests/lambda_fixtures").join(name))
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

/// Every `.json` file of a shared fixture directory, sorted by name.
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

/// The real `ResourceWriteSuccess` of the Event Grid docs with only its ids substituted so it names
/// a registry connection of the test estate (as the Functions tests do).
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

/// An HTTP request to the function, built on a real request fixture.
#[derive(Clone, Debug)]
pub struct Http {
    pub method: &'static str,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub base64: bool,
    /// `aws-lambda-go.lambda-urls-request.json` (Function URL) or the API Gateway v2 fixture.
    pub api_gateway: bool,
}

impl Http {
    /// A POST of `body` (JSON) carrying the secret as `?code=`, with `aeg-event-type: Notification`.
    pub fn delivery(body: &Value) -> Self {
        Self {
            method: "POST",
            query: vec![("code".into(), SECRET.into())],
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("aeg-event-type".into(), "Notification".into()),
            ],
            body: Some(body.to_string()),
            base64: false,
            api_gateway: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        self.query = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        self
    }

    pub fn raw_body(mut self, body: Option<&str>) -> Self {
        self.body = body.map(str::to_string);
        self
    }

    /// The body base64-encoded, as the platform passes bodies it does not treat as text.
    pub fn base64(mut self) -> Self {
        self.body = self
            .body
            .map(|b| base64::engine::general_purpose::STANDARD.encode(b.as_bytes()));
        self.base64 = true;
        self
    }

    /// Marks the body as base64 without encoding it (a body the platform could never have sent).
    pub fn base64_flag_only(mut self) -> Self {
        self.base64 = true;
        self
    }

    pub fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }

    pub fn via_api_gateway(mut self) -> Self {
        self.api_gateway = true;
        self
    }

    /// The fixture with method, query, headers and body substituted; everything else as published.
    pub fn event(&self) -> Value {
        let mut ev = if self.api_gateway {
            lambda_fixture("aws_lambda_events.example-apigw-v2-request-no-authorizer.json")
        } else {
            lambda_fixture("aws-lambda-go.lambda-urls-request.json")
        };
        ev["requestContext"]["http"]["method"] = json!(self.method);
        let raw: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.query.iter())
            .finish();
        ev["rawQueryString"] = json!(raw);
        let params: serde_json::Map<String, Value> = self
            .query
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        if params.is_empty() {
            ev.as_object_mut().unwrap().remove("queryStringParameters");
        } else {
            ev["queryStringParameters"] = Value::Object(params);
        }
        for (name, value) in &self.headers {
            ev["headers"][name.as_str()] = json!(value);
        }
        match &self.body {
            Some(b) => ev["body"] = json!(b),
            None => {
                ev.as_object_mut().unwrap().remove("body");
            }
        }
        ev["isBase64Encoded"] = json!(self.base64);
        ev
    }
}

/// What the function answered to one invocation.
#[derive(Clone, Debug)]
pub enum Outcome {
    Response(Value),
    /// `POST .../error`: the Lambda-Runtime-Function-Error-Type header and the body.
    Error {
        error_type: Option<String>,
        body: Value,
    },
}

impl Outcome {
    pub fn response(&self) -> &Value {
        match self {
            Outcome::Response(v) => v,
            Outcome::Error { body, .. } => {
                panic!("expected a response, the invocation failed: {body}")
            }
        }
    }

    /// For HTTP invocations: the status and the decoded JSON body (`Null` when empty).
    pub fn http(&self) -> (u16, Value) {
        let r = self.response();
        let status = r["statusCode"]
            .as_u64()
            .unwrap_or_else(|| panic!("no statusCode in {r}"));
        let body = match r.get("body").and_then(Value::as_str) {
            Some(b) => {
                serde_json::from_str(b).unwrap_or_else(|e| panic!("body is not JSON ({e}): {b}"))
            }
            None => Value::Null,
        };
        (u16::try_from(status).unwrap(), body)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.response()["headers"][name]
            .as_str()
            .map(str::to_string)
    }

    /// `(errorType, errorMessage)` of a failed invocation.
    pub fn error(&self) -> (String, String) {
        match self {
            Outcome::Error { body, error_type } => (
                body["errorType"]
                    .as_str()
                    .map(str::to_string)
                    .or(error_type.clone())
                    .unwrap_or_default(),
                body["errorMessage"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ),
            Outcome::Response(v) => panic!("expected a failed invocation, got the response {v}"),
        }
    }
}

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Outcome>>>>;

/// The Lambda Runtime API (2018-06-01) on 127.0.0.1: `next` hands out queued events,
/// `response` / `error` complete them.
pub struct RuntimeApi {
    pub addr: String,
    events: mpsc::UnboundedSender<(String, Value)>,
    waiters: Waiters,
    pub next_calls: Arc<AtomicUsize>,
    pub unknown: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone)]
struct ApiState {
    events: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>>,
    waiters: Waiters,
    next_calls: Arc<AtomicUsize>,
    unknown: Arc<Mutex<Vec<String>>>,
}

async fn next(State(s): State<ApiState>) -> impl IntoResponse {
    s.next_calls.fetch_add(1, Ordering::SeqCst);
    let mut events = s.events.lock().await;
    let Some((id, payload)) = events.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(300);
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
    headers.insert(
        "lambda-runtime-deadline-ms",
        deadline.as_millis().to_string().parse().unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        FUNCTION_ARN.parse().unwrap(),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        "Root=1-5e9f0c65-1de4d666d4dd26aced652b6c;Parent=53995c3f42cd8ad8;Sampled=0"
            .parse()
            .unwrap(),
    );
    (StatusCode::OK, headers, payload.to_string())
}

fn complete(s: &ApiState, id: &str, outcome: Outcome) -> StatusCode {
    match s.waiters.lock().unwrap().remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => {
            s.unknown
                .lock()
                .unwrap()
                .push(format!("completion of unknown request {id}"));
            StatusCode::BAD_REQUEST
        }
    }
}

async fn response(
    State(s): State<ApiState>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    complete(&s, &id, Outcome::Response(value))
}

async fn error(
    State(s): State<ApiState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    complete(&s, &id, Outcome::Error { error_type, body })
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = ApiState {
            events: Arc::new(tokio::sync::Mutex::new(rx)),
            waiters: Waiters::default(),
            next_calls: Arc::default(),
            unknown: Arc::default(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .fallback({
                let unknown = state.unknown.clone();
                move |req: axum::extract::Request| {
                    let unknown = unknown.clone();
                    async move {
                        unknown
                            .lock()
                            .unwrap()
                            .push(format!("{} {}", req.method(), req.uri()));
                        StatusCode::NOT_FOUND
                    }
                }
            })
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            events: tx,
            waiters: state.waiters,
            next_calls: state.next_calls,
            unknown: state.unknown,
        }
    }

    /// Queues one event and waits for the function's answer.
    pub async fn invoke(&self, payload: Value) -> Outcome {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().insert(id.clone(), tx);
        self.events.send((id.clone(), payload)).unwrap();
        match tokio::time::timeout(INVOKE_TIMEOUT, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => panic!("invocation {id}: the Runtime API dropped the waiter"),
            Err(_) => panic!(
                "invocation {id}: no response within {INVOKE_TIMEOUT:?} (did the Lambda process start? see its output below)"
            ),
        }
    }
}

/// How to start one Lambda process.
pub struct Setup {
    /// Sandbox faults from the start (e.g. `error503=1`).
    pub faults: Option<&'static str>,
    /// `LINKGUARD_EVENT_TOPICS`.
    pub topics: String,
    /// Extra variables, or removals (`None`), applied last.
    pub env: Vec<(&'static str, Option<String>)>,
    /// The only bearer token the sandbox accepts (`None`: any).
    pub sim_token: Option<String>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            faults: None,
            topics: SUB_TOPIC.to_string(),
            env: Vec::new(),
            sim_token: None,
        }
    }
}

/// What a test body works with.
pub struct Lambda {
    pub rt: Runtime,
    pub api: RuntimeApi,
    pub sandbox: RunningSandbox,
    pub reports: tempfile::TempDir,
    output: OnceLock<File>,
    started: Instant,
}

impl Lambda {
    fn start(setup: Setup, cmd: &mut Command) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (api, sandbox) = rt.block_on(async {
            let api = RuntimeApi::start().await;
            let sandbox = Sandbox::start(
                read_json(&repo().join("examples/estate.json")),
                SimOptions {
                    retry_after_secs: 0,
                    token: setup.sim_token.clone(),
                    ..SimOptions::default()
                },
            )
            .await
            .expect("the ARM sandbox must start");
            (api, sandbox)
        });
        if let Some(f) = setup.faults {
            sandbox
                .handle()
                .set_faults(linkguard::sim::FaultSpec::parse(f).unwrap());
        }
        let reports = tempfile::tempdir().unwrap();
        // Nothing of the developer's environment leaks into the function.
        for (k, _) in std::env::vars() {
            if ["LINKGUARD_", "AZURE_", "AWS_", "RUST_LOG"]
                .iter()
                .any(|p| k.starts_with(p))
            {
                cmd.env_remove(k);
            }
        }
        let mut env: Vec<(&str, Option<String>)> = vec![
            ("AWS_LAMBDA_RUNTIME_API", Some(api.addr.clone())),
            ("AWS_LAMBDA_FUNCTION_NAME", Some("linkguard-test".into())),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", Some("512".into())),
            ("AWS_LAMBDA_FUNCTION_VERSION", Some("$LATEST".into())),
            ("AWS_LAMBDA_LOG_LEVEL", Some("info".into())),
            (
                "LINKGUARD_POLICY",
                Some(repo().join("examples/policy.toml").display().to_string()),
            ),
            (
                "LINKGUARD_ARM_ENDPOINT",
                Some(sandbox.endpoint().to_string()),
            ),
            ("LINKGUARD_CREDENTIAL", Some("static".into())),
            ("LINKGUARD_STATIC_TOKEN", Some(STATIC_TOKEN.into())),
            (
                "LINKGUARD_REPORTS",
                Some(reports.path().display().to_string()),
            ),
            ("LINKGUARD_EVENT_TOPICS", Some(setup.topics)),
            ("LINKGUARD_WEBHOOK_SECRET", Some(SECRET.into())),
        ];
        env.extend(setup.env);
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        Self {
            rt,
            api,
            sandbox,
            reports,
            output: OnceLock::new(),
            started: Instant::now(),
        }
    }

    pub fn invoke(&self, payload: Value) -> Outcome {
        self.rt.block_on(self.api.invoke(payload))
    }

    pub fn http(&self, request: &Http) -> Outcome {
        self.invoke(request.event())
    }

    /// Everything the Lambda process printed so far (read without moving the shared file offset
    /// the child writes at).
    pub fn output(&self) -> String {
        let Some(file) = self.output.get() else {
            return String::new();
        };
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read_at(&mut buf, out.len() as u64).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Report files written so far, relative to the reports directory, sorted.
    pub fn report_files(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, root, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(self.reports.path(), self.reports.path(), &mut out);
        out.sort();
        out
    }

    /// Checks every JSON report written so far (each run's and `latest.json`) against
    /// `schemas/report.schema.json`; returns how many it checked.
    pub fn assert_reports_valid(&self) -> usize {
        let files: Vec<String> = self
            .report_files()
            .into_iter()
            .filter(|f| f.ends_with(".json"))
            .collect();
        for file in &files {
            let doc = read_json(&self.reports.path().join(file));
            if let Err(errors) = support_report::schema::validate(&doc) {
                panic!(
                    "report {file} violates schemas/report.schema.json:\n{}",
                    errors.join("\n")
                );
            }
        }
        files.len()
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Runs `body` against a Lambda process started with `setup`. The process is this test binary
/// re-run by `rusty_fork` for the test `test_name` (it must be the calling test's own name: use
/// `rusty_fork::rusty_fork_test_name!`). After the body, the process is stopped and its output is
/// checked for secrets.
pub fn with_lambda(test_name: &str, setup: Setup, body: impl FnOnce(&Lambda)) {
    let lambda: OnceLock<Lambda> = OnceLock::new();
    let mut setup = Some(setup);
    rusty_fork::fork(
        test_name,
        rusty_fork::rusty_fork_id!(),
        |cmd| {
            let l = Lambda::start(setup.take().unwrap(), cmd);
            assert!(lambda.set(l).is_ok());
        },
        |child, output| {
            let l = lambda.get().unwrap();
            l.output.set(output.try_clone().unwrap()).unwrap();
            body(l);
            let _ = child.kill();
            let _ = child.wait();
            // Whatever the test did, every report it left behind must be schema-valid.
            l.assert_reports_valid();
            let printed = l.output();
            for secret in [SECRET, STATIC_TOKEN] {
                assert!(
                    !printed.contains(secret),
                    "a secret appears in the Lambda process output:\n{printed}"
                );
            }
            eprintln!("[{test_name}] done in {:?}", l.elapsed());
        },
        child_main,
    )
    .unwrap();
}

/// Starts a Lambda process and waits for it to exit (for start-up failures).
/// `body` gets the exit code (`None` when killed by a signal) and the output.
pub fn lambda_exit(test_name: &str, setup: Setup, body: impl FnOnce(&Lambda, Option<i32>, &str)) {
    let lambda: OnceLock<Lambda> = OnceLock::new();
    let mut setup = Some(setup);
    rusty_fork::fork(
        test_name,
        rusty_fork::rusty_fork_id!(),
        |cmd| {
            let l = Lambda::start(setup.take().unwrap(), cmd);
            assert!(lambda.set(l).is_ok());
        },
        |child, output| {
            let l = lambda.get().unwrap();
            l.output.set(output.try_clone().unwrap()).unwrap();
            let Some(status) = child.wait_timeout(Duration::from_secs(60)).unwrap() else {
                panic!("the Lambda process did not exit:\n{}", l.output());
            };
            let printed = l.output();
            body(l, status.code(), &printed);
        },
        child_main,
    )
    .unwrap();
}

/// The child process: `linkguard lambda` with the environment the parent gave it.
fn child_main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = rt.block_on(linkguard::host::lambda::cli::run(
        linkguard::host::lambda::LambdaArgs::default(),
    ));
    std::process::exit(outcome.map_or_else(|e| i32::from(e.code), |()| 0))
}
