#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
//! `ArmClient` end to end against scripted fake ARM servers (axum on 127.0.0.1): paging, retries,
//! long-running operations, error mapping, token handling, credentials and TLS.
//! Response bodies are the real ARM examples from `../shared/fixtures/arm/` wherever one exists.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use linkguard::arm::{
    ArmClient, ArmClientOptions, CredentialKind, LroSettings, ProcessEnv, RetrySettings,
    StaticTokenCredential, credential_from_config,
};
use linkguard::engine::{ResourceError, ResourceErrorKind, Resources};
use linkguard::model::{ConnectionState, ConnectionStatus, DefaultAction, ResourceId};
use linkguard::plan::{PatchNetworkRuleSet, RegistryPatch};
use serde_json::{Value, json};

const TOKEN: &str = "test-token-5f1c9a0e";
const REGISTRY: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myResourceGroup/providers/Microsoft.ContainerRegistry/registries/myRegistry";
const CONNECTION: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myResourceGroup/providers/Microsoft.ContainerRegistry/registries/myRegistry/privateEndpointConnections/myConnection";

// ---------------------------------------------------------------------------------------------
// Fixtures

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../shared/fixtures/arm/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {path} cannot be read: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {path} is not JSON: {e}"))
}

/// `responses.{status}.body` of an ARM example file.
fn example_body(name: &str, status: &str) -> Value {
    let v = fixture(name);
    v["responses"][status]["body"].clone()
}

// ---------------------------------------------------------------------------------------------
// Scripted fake ARM

#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<String>,
    /// Wait before answering.
    delay: Duration,
}

fn reply(status: u16) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: None,
        delay: Duration::ZERO,
    }
}

impl Reply {
    fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string());
        self
    }
    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// Path and query as received.
    target: String,
    authorization: Option<String>,
    body: String,
    at: Instant,
}

#[derive(Default)]
struct FakeState {
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

struct Fake {
    base: String,
    state: Arc<FakeState>,
}

impl Fake {
    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
    fn left(&self) -> usize {
        self.state.script.lock().unwrap().len()
    }
}

async fn record_and_answer(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        target: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: String::from_utf8_lossy(&body).to_string(),
        at: Instant::now(),
    });
    let next = state.script.lock().unwrap().pop_front();
    let Some(r) = next else {
        let body = json!({"error": {"code": "ScriptExhausted", "message": format!("no scripted reply left for {method} {uri}")}});
        return (StatusCode::IM_A_TEAPOT, axum::Json(body)).into_response();
    };
    if !r.delay.is_zero() {
        tokio::time::sleep(r.delay).await;
    }
    let mut response = match r.body {
        Some(b) => (
            StatusCode::from_u16(r.status).unwrap(),
            [("content-type", "application/json")],
            b,
        )
            .into_response(),
        None => StatusCode::from_u16(r.status).unwrap().into_response(),
    };
    for (k, v) in r.headers {
        response.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    response
}

fn fake_router(state: Arc<FakeState>) -> Router {
    Router::new().fallback(record_and_answer).with_state(state)
}

/// Starts a fake on 127.0.0.1; `script` gets the base URL (for monitors and nextLinks).
async fn start_fake(script: impl FnOnce(&str) -> Vec<Reply>) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = Arc::new(FakeState::default());
    state.script.lock().unwrap().extend(script(&base));
    let app = fake_router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Fake { base, state }
}

/// A TCP front that drops the first `drops` connections after reading the request (the server
/// "dies" mid-request) and forwards later ones to `target`.
async fn dropping_proxy(target: SocketAddr, drops: usize) -> (String, Arc<AtomicUsize>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        loop {
            let (mut inbound, _) = listener.accept().await.unwrap();
            let n = counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if n < drops {
                    let mut buf = [0u8; 4096];
                    let _ = inbound.read(&mut buf).await;
                    drop(inbound);
                } else {
                    let mut outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (base, connections)
}

// ---------------------------------------------------------------------------------------------
// Client

fn fast_options(endpoint: &str) -> ArmClientOptions {
    ArmClientOptions {
        endpoint: endpoint.to_string(),
        retry: RetrySettings {
            max_retries: 3,
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            total_deadline: Duration::from_secs(10),
            rate_limit_pause: Duration::from_millis(300),
        },
        lro: LroSettings {
            poll_interval: Duration::from_millis(20),
            max_poll_interval: Duration::from_secs(2),
            max_wait: Duration::from_secs(5),
        },
        ..ArmClientOptions::default()
    }
}

fn client_with(options: ArmClientOptions) -> ArmClient {
    ArmClient::new(Arc::new(StaticTokenCredential::new(TOKEN)), options).unwrap()
}

fn client(fake: &Fake) -> ArmClient {
    client_with(fast_options(&fake.base))
}

fn id(s: &str) -> ResourceId {
    ResourceId::parse(s).unwrap()
}

/// Every error: its message never carries the token.
fn no_token(e: &ResourceError) {
    assert!(
        !e.message.contains(TOKEN),
        "token leaked into: {}",
        e.message
    );
    assert!(
        !format!("{e:?}").contains(TOKEN),
        "token leaked into: {e:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Reads and paging

#[tokio::test]
async fn paging_follows_next_link_across_three_pages() {
    let list = example_body("acr-2025-11-01.RegistryListByResourceGroup.json", "200");
    let path = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myResourceGroup/providers/Microsoft.ContainerRegistry/registries";
    let link2 = format!("{path}?api-version=2025-11-01&%24skipToken=page-2");
    let link3 = format!("{path}?api-version=2025-11-01&%24skipToken=page-3");
    let (l2, l3) = (link2.clone(), link3.clone());
    let fake = start_fake(move |base| {
        let mut p1 = list.clone();
        p1["nextLink"] = json!(format!("{base}{l2}"));
        let mut p2 = list.clone();
        p2["nextLink"] = json!(format!("{base}{l3}"));
        let mut p3 = list.clone();
        p3["nextLink"] = Value::Null;
        vec![
            reply(200).json(&p1),
            reply(200).json(&p2),
            reply(200).json(&p3),
        ]
    })
    .await;
    let c = client(&fake);
    let registries = c
        .list_registries(
            "00000000-0000-0000-0000-000000000000",
            Some("myResourceGroup"),
        )
        .await
        .unwrap();
    assert_eq!(registries.len(), 3);
    assert!(
        registries
            .iter()
            .all(|r| r.name() == "myRegistry" && r.id == id(REGISTRY))
    );
    let seen = fake.seen();
    let targets: Vec<&str> = seen.iter().map(|s| s.target.as_str()).collect();
    assert_eq!(
        targets,
        vec![
            format!("{path}?api-version=2025-11-01").as_str(),
            link2.as_str(),
            link3.as_str()
        ]
    );
    assert_eq!(c.request_count(), 3);
}

#[tokio::test]
async fn connections_are_listed_across_pages_from_the_real_list_body() {
    let list = example_body("acr-2025-11-01.PrivateEndpointConnectionList.json", "200");
    let path = format!("{REGISTRY}/privateEndpointConnections");
    let link2 = format!("{path}?api-version=2025-11-01&%24skipToken=page-2");
    let l2 = link2.clone();
    let fake = start_fake(move |base| {
        let mut p1 = list.clone();
        p1["nextLink"] = json!(format!("{base}{l2}"));
        let mut p2 = list.clone();
        p2.as_object_mut().unwrap().remove("nextLink");
        vec![reply(200).json(&p1), reply(200).json(&p2)]
    })
    .await;
    let c = client(&fake);
    let connections = c.list_connections(&id(REGISTRY)).await.unwrap();
    assert_eq!(connections.len(), 2, "one connection on each page");
    assert!(connections.iter().all(|x| x.id == id(CONNECTION)));
    let seen = fake.seen();
    let targets: Vec<&str> = seen.iter().map(|s| s.target.as_str()).collect();
    assert_eq!(
        targets,
        vec![
            format!("{path}?api-version=2025-11-01").as_str(),
            link2.as_str()
        ]
    );
    assert_eq!(fake.left(), 0);
}

#[tokio::test]
async fn list_by_subscription_and_subscriptions_use_their_paths_and_versions() {
    let list = example_body("acr-2025-11-01.RegistryListByResourceGroup.json", "200");
    // No public example of GET /subscriptions is stored; this is its documented shape.
    let subs = json!({"value": [
        {"id": "/subscriptions/00000000-0000-0000-0000-000000000000", "subscriptionId": "00000000-0000-0000-0000-000000000000", "displayName": "a", "state": "Enabled"},
        {"id": "/subscriptions/11111111-1111-1111-1111-111111111111", "subscriptionId": "11111111-1111-1111-1111-111111111111", "displayName": "b", "state": "Enabled"}
    ]});
    let fake = start_fake(move |_| vec![reply(200).json(&list), reply(200).json(&subs)]).await;
    let c = client(&fake);
    let regs = c
        .list_registries("00000000-0000-0000-0000-000000000000", None)
        .await
        .unwrap();
    assert_eq!(regs.len(), 1);
    let ids = c.list_subscriptions().await.unwrap();
    assert_eq!(
        ids,
        vec![
            "00000000-0000-0000-0000-000000000000",
            "11111111-1111-1111-1111-111111111111"
        ]
    );
    let seen = fake.seen();
    assert_eq!(
        seen[0].target,
        "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.ContainerRegistry/registries?api-version=2025-11-01"
    );
    assert_eq!(seen[1].target, "/subscriptions?api-version=2022-12-01");
}

#[tokio::test]
async fn gets_parse_the_real_bodies() {
    let registry = example_body("acr-2025-11-01.RegistryGet.json", "200");
    let connection = example_body("acr-2025-11-01.PrivateEndpointConnectionGet.json", "200");
    let endpoint = example_body("network-2025-07-01.PrivateEndpointGet.json", "200");
    let fake = start_fake(move |_| {
        vec![
            reply(200).json(&registry),
            reply(200).json(&connection),
            reply(200).json(&endpoint),
        ]
    })
    .await;
    let c = client(&fake);

    let r = c.get_registry(&id(REGISTRY)).await.unwrap();
    assert_eq!(r.name(), "myRegistry");
    assert_eq!(r.default_action(), DefaultAction::Allow);

    let pec = c.get_connection(&id(CONNECTION)).await.unwrap();
    assert_eq!(pec.status(), ConnectionStatus::Approved);
    assert_eq!(pec.description(), Some("Auto-Approved"));

    let pe_id = "/subscriptions/subId/resourceGroups/rg1/providers/Microsoft.Network/privateEndpoints/testPe";
    let pe = c.get_private_endpoint(&id(pe_id)).await.unwrap();
    assert_eq!(
        pe.subnet_id().unwrap(),
        &id(
            "/subscriptions/subId/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/myVnet/subnets/mySubnet"
        )
    );

    let seen = fake.seen();
    assert_eq!(seen[0].target, format!("{REGISTRY}?api-version=2025-11-01"));
    assert_eq!(
        seen[1].target,
        format!("{CONNECTION}?api-version=2025-11-01")
    );
    assert_eq!(seen[2].target, format!("{pe_id}?api-version=2025-07-01"));
    assert!(seen.iter().all(|s| s.method == "GET"));
}

#[tokio::test]
async fn a_body_that_is_not_the_model_is_invalid_with_the_field_path() {
    let mut registry = example_body("acr-2025-11-01.RegistryGet.json", "200");
    registry.as_object_mut().unwrap().remove("id");
    let fake = start_fake(move |_| vec![reply(200).json(&registry)]).await;
    let e = client(&fake).get_registry(&id(REGISTRY)).await.unwrap_err();
    assert_eq!(e.kind, ResourceErrorKind::Invalid);
    assert!(
        e.message.contains("not a valid registry") && e.message.contains("id"),
        "{}",
        e.message
    );
}

// ---------------------------------------------------------------------------------------------
// Retries

#[tokio::test]
async fn throttled_429_waits_for_retry_after_seconds() {
    let registry = example_body("acr-2025-11-01.RegistryGet.json", "200");
    let fake = start_fake(move |_| {
        vec![
            reply(429).header("Retry-After", "1"),
            reply(200).json(&registry),
        ]
    })
    .await;
    let c = client(&fake);
    let started = Instant::now();
    let r = c.get_registry(&id(REGISTRY)).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(r.name(), "myRegistry");
    assert!(
        elapsed >= Duration::from_millis(950),
        "retried after {elapsed:?}, before Retry-After: 1"
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].at.duration_since(seen[0].at) >= Duration::from_millis(950));
    assert_eq!(c.request_count(), 2);
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let registry = example_body("acr-2025-11-01.RegistryGet.json", "200");
    let fake = start_fake(move |_| {
        // HTTP dates have whole seconds: now + 2 s is 1–2 s away.
        let when =
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::seconds(2);
        vec![
            reply(503).header("Retry-After", azure_core::time::to_rfc7231(&when)),
            reply(200).json(&registry),
        ]
    })
    .await;
    let c = client(&fake);
    let started = Instant::now();
    // The date is fixed when the fake is scripted, before `started`; under load that gap eats into the wait.
    c.get_registry(&id(REGISTRY)).await.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert_eq!(c.request_count(), 2);
}

#[tokio::test]
async fn a_429_that_is_not_throttling_is_retried_too() {
    let registry = example_body("acr-2025-11-01.RegistryGet.json", "200");
    // The code ARM documents for "another operation holds the resource"; the message is ours.
    let busy = json!({"error": {"code": "RetryableErrorDueToAnotherOperation", "message": "Operation is in progress on the resource"}});
    let fake = start_fake(move |_| vec![reply(429).json(&busy), reply(200).json(&registry)]).await;
    let c = client(&fake);
    c.get_registry(&id(REGISTRY)).await.unwrap();
    assert_eq!(c.request_count(), 2);
}

#[tokio::test]
async fn service_unavailable_then_ok() {
    let registry = example_body("acr-2025-11-01.RegistryGet.json", "200");
    let fake = start_fake(move |_| vec![reply(503), reply(200).json(&registry)]).await;
    let c = client(&fake);
    assert_eq!(
        c.get_registry(&id(REGISTRY)).await.unwrap().name(),
        "myRegistry"
    );
    assert_eq!(fake.seen().len(), 2);
    assert_eq!(c.request_count(), 2);
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let registry = example_body("acr-2025-11-01.RegistryGet.json", "200");
    let fake = start_fake(move |_| vec![reply(200).json(&registry)]).await;
    let target: SocketAddr = fake.base.trim_start_matches("http://").parse().unwrap();
    let (proxy, connections) = dropping_proxy(target, 1).await;
    let c = client_with(fast_options(&proxy));
    let r = c.get_registry(&id(REGISTRY)).await.unwrap();
    assert_eq!(r.name(), "myRegistry");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        2,
        "one dropped connection, one that answered"
    );
    assert_eq!(fake.seen().len(), 1);
    assert_eq!(c.request_count(), 2);
}

#[tokio::test]
async fn a_connection_that_keeps_dropping_ends_transient() {
    let fake = start_fake(|_| Vec::new()).await;
    let target: SocketAddr = fake.base.trim_start_matches("http://").parse().unwrap();
    let (proxy, connections) = dropping_proxy(target, usize::MAX).await;
    let c = client_with(fast_options(&proxy));
    let e = c.get_registry(&id(REGISTRY)).await.unwrap_err();
    assert_eq!(e.kind, ResourceErrorKind::Transient, "{}", e.message);
    assert_eq!(e.status, None);
    assert!(
        e.message.contains("gave up after 4 attempts"),
        "{}",
        e.message
    );
    assert_eq!(connections.load(Ordering::SeqCst), 4);
    assert_eq!(c.request_count(), 4);
    no_token(&e);
}

#[tokio::test]
async fn client_errors_are_never_retried_and_carry_the_arm_error() {
    let forbidden = fixture("supportarticles.AuthorizationFailed.error.json");
    // No verbatim 400/404 bodies are stored; these follow the ARM ErrorResponse shape.
    let bad = json!({"error": {"code": "InvalidApiVersionParameter", "message": "The api-version '1999-01-01' is invalid."}});
    let missing = json!({"error": {"code": "ResourceNotFound", "message": "The Resource 'Microsoft.ContainerRegistry/registries/myRegistry' under resource group 'myResourceGroup' was not found."}});
    let cases = [
        (
            400,
            bad,
            ResourceErrorKind::Invalid,
            "InvalidApiVersionParameter",
            "is invalid",
        ),
        (
            403,
            forbidden,
            ResourceErrorKind::Forbidden,
            "AuthorizationFailed",
            "does not have authorization to perform action",
        ),
        (
            404,
            missing,
            ResourceErrorKind::NotFound,
            "ResourceNotFound",
            "was not found",
        ),
    ];
    for (status, body, kind, code, text) in cases {
        let fake = start_fake(move |_| vec![reply(status).json(&body), reply(200)]).await;
        let c = client(&fake);
        let e = c.get_registry(&id(REGISTRY)).await.unwrap_err();
        assert_eq!(e.kind, kind, "{status}: {}", e.message);
        assert_eq!(e.status, Some(status));
        assert_eq!(e.code.as_deref(), Some(code));
        assert!(
            e.message.contains(code) && e.message.contains(text),
            "{}",
            e.message
        );
        assert!(
            e.message.contains(&format!("HTTP {status}")),
            "{}",
            e.message
        );
        assert_eq!(fake.seen().len(), 1, "{status} must not be retried");
        assert_eq!(c.request_count(), 1);
        no_token(&e);
    }
}

#[tokio::test]
async fn persistent_server_errors_end_transient_after_max_retries() {
    let fake = start_fake(|_| (0..10).map(|_| reply(500)).collect()).await;
    let c = client(&fake);
    let started = Instant::now();
    let e = c.get_registry(&id(REGISTRY)).await.unwrap_err();
    assert_eq!(e.kind, ResourceErrorKind::Transient);
    assert_eq!(e.status, Some(500));
    assert!(e.message.contains("after 4 attempts"), "{}", e.message);
    assert_eq!(fake.seen().len(), 4, "1 try + max_retries 3");
    assert_eq!(c.request_count(), 4);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    no_token(&e);
}

#[tokio::test]
async fn the_deadline_bounds_retries_and_server_waits() {
    // ARM asks for 30 s; the deadline is 1 s: give up at once rather than sleep past it.
    let fake = start_fake(|_| {
        (0..5)
            .map(|_| reply(429).header("Retry-After", "30"))
            .collect()
    })
    .await;
    let mut options = fast_options(&fake.base);
    options.retry.max_retries = 50;
    options.retry.total_deadline = Duration::from_secs(1);
    let c = client_with(options);
    let started = Instant::now();
    let e = c.get_registry(&id(REGISTRY)).await.unwrap_err();
    assert_eq!(e.kind, ResourceErrorKind::Transient);
    assert_eq!(e.status, Some(429));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.seen().len(), 1);

    // Backoff without hints: many retries allowed, the deadline stops them.
    let fake = start_fake(|_| (0..100).map(|_| reply(502)).collect()).await;
    let mut options = fast_options(&fake.base);
    options.retry.max_retries = 100;
    options.retry.initial_delay = Duration::from_millis(100);
    options.retry.max_delay = Duration::from_millis(100);
    options.retry.total_deadline = Duration::from_millis(700);
    let c = client_with(options);
    let started = Instant::now();
    let e = c.get_registry(&id(REGISTRY)).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(e.kind, ResourceErrorKind::Transient);
    assert!(elapsed <= Duration::from_secs(3), "{elapsed:?}");
    let tries = fake.seen().len();
    assert!((3..=15).contains(&tries), "{tries} tries in {elapsed:?}");

    // A server that never answers: the deadline cuts the attempt itself.
    let fake = start_fake(|_| {
        vec![Reply {
            delay: Duration::from_secs(30),
            ..reply(200)
        }]
    })
    .await;
    let mut options = fast_options(&fake.base);
    options.retry.total_deadline = Duration::from_millis(500);
    let c = client_with(options);
    let started = Instant::now();
    let e = c.get_registry(&id(REGISTRY)).await.unwrap_err();
    assert_eq!(e.kind, ResourceErrorKind::Transient);
    assert!(e.message.contains("deadline"), "{}", e.message);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_huge_retry_after_gives_up_at_once_without_panicking() {
    // `Instant::now() + Duration::from_secs(i64::MAX)` overflows the clock: the wait must be capped
    // and compared without that addition, and the deadline then says "not worth waiting".
    for header in ["Retry-After", "x-ms-retry-after-ms"] {
        let fake = start_fake(|_| vec![reply(429).header(header, "9223372036854775807")]).await;
        let started = Instant::now();
        let e = client(&fake).get_registry(&id(REGISTRY)).await.unwrap_err();
        assert_eq!(e.kind, ResourceErrorKind::Transient, "{header}");
        assert_eq!(e.status, Some(429), "{header}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{header}: {:?}",
            started.elapsed()
        );
        assert_eq!(fake.seen().len(), 1, "{header}");
    }
}

#[tokio::test]
async fn an_empty_rate_limit_bucket_pauses_the_next_request() {
    let registry = example_body("acr-2025-11-01.RegistryGet.json", "200");
    let fake = start_fake(move |_| {
        vec![
            reply(200)
                .json(&registry)
                .header("x-ms-ratelimit-remaining-subscription-reads", "0"),
            reply(200)
                .json(&registry)
                .header("x-ms-ratelimit-remaining-subscription-reads", "24"),
            reply(200).json(&registry),
        ]
    })
    .await;
    let c = client(&fake);
    for _ in 0..3 {
        c.get_registry(&id(REGISTRY)).await.unwrap();
    }
    let seen = fake.seen();
    let gap1 = seen[1].at.duration_since(seen[0].at);
    let gap2 = seen[2].at.duration_since(seen[1].at);
    assert!(
        gap1 >= Duration::from_millis(280),
        "paused {gap1:?}, wanted the 300 ms rate_limit_pause"
    );
    assert!(
        gap2 < Duration::from_millis(250),
        "no pause when tokens remain: {gap2:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Long-running operations

fn status_url(base: &str) -> String {
    format!(
        "{base}{CONNECTION}/operationStatuses/privateendpointconnections-00000000-0000-0000-0000-000000000000?api-version=2025-11-01"
    )
}

#[tokio::test]
async fn put_connection_polls_azure_async_operation_then_reads_the_resource() {
    let created = example_body(
        "acr-2025-11-01.PrivateEndpointConnectionCreateOrUpdate.json",
        "201",
    );
    let done = example_body("acr-2025-11-01.PrivateEndpointConnectionGet.json", "200");
    let fake = start_fake(move |base| {
        vec![
            reply(201)
                .json(&created)
                .header("Azure-AsyncOperation", status_url(base))
                .header("Retry-After", "0"),
            reply(200).json(&json!({"status": "InProgress"})),
            reply(200).json(&json!({"status": "Succeeded"})),
            reply(200).json(&done),
        ]
    })
    .await;
    let c = client(&fake);
    let state: ConnectionState =
        serde_json::from_value(json!({"status": "Approved", "description": "Auto-Approved"}))
            .unwrap();
    let pec = c
        .set_connection_state(&id(CONNECTION), &state)
        .await
        .unwrap();
    assert_eq!(pec.status(), ConnectionStatus::Approved);

    let seen = fake.seen();
    let calls: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.target.as_str()))
        .collect();
    let status_target = status_url("");
    assert_eq!(
        calls,
        vec![
            (
                "PUT",
                format!("{CONNECTION}?api-version=2025-11-01").as_str()
            ),
            ("GET", status_target.as_str()),
            ("GET", status_target.as_str()),
            (
                "GET",
                format!("{CONNECTION}?api-version=2025-11-01").as_str()
            ),
        ]
    );
    // The PUT body is exactly the documented request of the example.
    let sent: Value = serde_json::from_str(&seen[0].body).unwrap();
    let documented = fixture("acr-2025-11-01.PrivateEndpointConnectionCreateOrUpdate.json")["parameters"]["privateEndpointConnection"].clone();
    assert_eq!(sent, documented);
    assert_eq!(c.request_count(), 4);
}

#[tokio::test]
async fn put_connection_answered_200_needs_no_polling() {
    let done = example_body(
        "acr-2025-11-01.PrivateEndpointConnectionCreateOrUpdate.json",
        "200",
    );
    let fake = start_fake(move |_| vec![reply(200).json(&done)]).await;
    let c = client(&fake);
    let state: ConnectionState =
        serde_json::from_value(json!({"status": "Rejected", "description": "not allowed"}))
            .unwrap();
    c.set_connection_state(&id(CONNECTION), &state)
        .await
        .unwrap();
    let sent: Value = serde_json::from_str(&fake.seen()[0].body).unwrap();
    assert_eq!(
        sent,
        json!({"properties": {"privateLinkServiceConnectionState": {"status": "Rejected", "description": "not allowed"}}})
    );
    assert_eq!(c.request_count(), 1);
}

#[tokio::test]
async fn patch_registry_sends_the_patch_and_waits_for_the_operation() {
    let updated = example_body("acr-2025-11-01.RegistryUpdate.json", "200");
    let registry_status = |base: &str| {
        format!(
            "{base}{REGISTRY}/operationStatuses/registries-00000000-0000-0000-0000-000000000000?api-version=2025-11-01"
        )
    };
    let fake = start_fake(move |base| {
        vec![
            reply(201)
                .json(&updated)
                .header("Azure-AsyncOperation", registry_status(base))
                .header("Retry-After", "0"),
            reply(200).json(&json!({"status": "Succeeded"})),
            reply(200).json(&updated),
        ]
    })
    .await;
    let c = client(&fake);
    let patch = RegistryPatch {
        network_rule_set: Some(PatchNetworkRuleSet {
            default_action: DefaultAction::Deny,
            ip_rules: Vec::new(),
        }),
        ..RegistryPatch::default()
    };
    let r = c.patch_registry(&id(REGISTRY), &patch).await.unwrap();
    assert_eq!(r.name(), "myRegistry");
    let seen = fake.seen();
    assert_eq!(seen[0].method, "PATCH");
    assert_eq!(
        serde_json::from_str::<Value>(&seen[0].body).unwrap(),
        patch.to_arm_body()
    );
    assert_eq!(seen[1].target, registry_status(""));
    assert_eq!(seen[2].method, "GET");
    assert_eq!(seen[2].target, format!("{REGISTRY}?api-version=2025-11-01"));
}

#[tokio::test]
async fn delete_polls_location_until_204() {
    let example = fixture("acr-2025-11-01.PrivateEndpointConnectionDelete.json");
    let documented_location = example["responses"]["202"]["headers"]["Location"]
        .as_str()
        .unwrap()
        .to_string();
    // The example's monitor, moved from management.azure.com to the fake.
    let location_path = documented_location
        .trim_start_matches("https://management.azure.com")
        .to_string();
    let lp = location_path.clone();
    let fake = start_fake(move |base| {
        vec![
            reply(202)
                .header("Location", format!("{base}{lp}"))
                .header("Retry-After", "0"),
            reply(202).header("Retry-After", "0"),
            reply(204),
        ]
    })
    .await;
    let c = client(&fake);
    c.delete_connection(&id(CONNECTION)).await.unwrap();
    let seen = fake.seen();
    let calls: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.target.as_str()))
        .collect();
    assert_eq!(
        calls,
        vec![
            (
                "DELETE",
                format!("{CONNECTION}?api-version=2025-11-01").as_str()
            ),
            ("GET", location_path.as_str()),
            ("GET", location_path.as_str()),
        ]
    );
    assert_eq!(c.request_count(), 3);
}

#[tokio::test]
async fn delete_without_a_monitor_polls_the_resource_until_it_is_gone() {
    let still_there = example_body("acr-2025-11-01.PrivateEndpointConnectionGet.json", "200");
    let fake =
        start_fake(move |_| vec![reply(202), reply(200).json(&still_there), reply(404)]).await;
    let c = client(&fake);
    c.delete_connection(&id(CONNECTION)).await.unwrap();
    let seen = fake.seen();
    let calls: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.target.as_str()))
        .collect();
    let target = format!("{CONNECTION}?api-version=2025-11-01");
    assert_eq!(
        calls,
        vec![
            ("DELETE", target.as_str()),
            ("GET", target.as_str()),
            ("GET", target.as_str())
        ]
    );
}

#[tokio::test]
async fn delete_of_a_connection_already_gone_succeeds() {
    for status in [200, 204, 404] {
        let fake = start_fake(move |_| vec![reply(status)]).await;
        let c = client(&fake);
        c.delete_connection(&id(CONNECTION))
            .await
            .unwrap_or_else(|e| panic!("{status}: {e}"));
        assert_eq!(c.request_count(), 1, "{status}");
    }
}

#[tokio::test]
async fn a_failed_operation_is_operation_failed_with_the_arm_error() {
    let created = example_body(
        "acr-2025-11-01.PrivateEndpointConnectionCreateOrUpdate.json",
        "201",
    );
    let failed = json!({"status": "Failed", "error": {"code": "PrivateEndpointConnectionUpdateFailed", "message": "The connection could not be approved."}});
    let fake = start_fake(move |base| {
        vec![
            reply(201)
                .json(&created)
                .header("Azure-AsyncOperation", status_url(base)),
            reply(200).json(&failed),
        ]
    })
    .await;
    let c = client(&fake);
    let state: ConnectionState = serde_json::from_value(json!({"status": "Approved"})).unwrap();
    let e = c
        .set_connection_state(&id(CONNECTION), &state)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ResourceErrorKind::OperationFailed);
    assert_eq!(
        e.code.as_deref(),
        Some("PrivateEndpointConnectionUpdateFailed")
    );
    assert!(
        e.message.contains("`Failed`") && e.message.contains("could not be approved"),
        "{}",
        e.message
    );
    assert_eq!(fake.seen().len(), 2, "no final GET after a failure");
    no_token(&e);

    // Canceled is a failure too.
    let created = example_body(
        "acr-2025-11-01.PrivateEndpointConnectionCreateOrUpdate.json",
        "201",
    );
    let fake = start_fake(move |base| {
        vec![
            reply(201)
                .json(&created)
                .header("Azure-AsyncOperation", status_url(base)),
            reply(200).json(&json!({"status": "Canceled"})),
        ]
    })
    .await;
    let e = client(&fake)
        .set_connection_state(&id(CONNECTION), &state)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ResourceErrorKind::OperationFailed);
    assert!(e.message.contains("`Canceled`"), "{}", e.message);
}

#[tokio::test]
async fn an_operation_that_never_finishes_times_out_as_an_error() {
    let fake = start_fake(|base| {
        let mut script = vec![reply(202).header("Location", status_url(base))];
        script.extend((0..500).map(|_| reply(202)));
        script
    })
    .await;
    let mut options = fast_options(&fake.base);
    options.lro.max_wait = Duration::from_millis(400);
    options.lro.poll_interval = Duration::from_millis(50);
    let c = client_with(options);
    let started = Instant::now();
    let e = c.delete_connection(&id(CONNECTION)).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(e.kind, ResourceErrorKind::OperationFailed);
    assert!(e.message.contains("did not finish within"), "{}", e.message);
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert!(fake.seen().len() >= 5, "polled {} times", fake.seen().len());
}

#[tokio::test]
async fn poll_retry_after_is_bounded_by_max_poll_interval() {
    let created = example_body(
        "acr-2025-11-01.PrivateEndpointConnectionCreateOrUpdate.json",
        "201",
    );
    let done = example_body("acr-2025-11-01.PrivateEndpointConnectionGet.json", "200");
    let fake = start_fake(move |base| {
        vec![
            reply(201)
                .json(&created)
                .header("Azure-AsyncOperation", status_url(base))
                .header("Retry-After", "600"),
            reply(200).json(&json!({"status": "Succeeded"})),
            reply(200).json(&done),
        ]
    })
    .await;
    let mut options = fast_options(&fake.base);
    options.lro.max_poll_interval = Duration::from_millis(300);
    let c = client_with(options);
    let started = Instant::now();
    let state: ConnectionState = serde_json::from_value(json!({"status": "Approved"})).unwrap();
    c.set_connection_state(&id(CONNECTION), &state)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(280) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Links to other hosts

#[tokio::test]
async fn a_next_link_to_another_host_is_refused() {
    let mut page = example_body("acr-2025-11-01.RegistryListByResourceGroup.json", "200");
    page["nextLink"] = json!(
        "https://attacker.example/subscriptions/x/providers/Microsoft.ContainerRegistry/registries?page=2"
    );
    let fake = start_fake(move |_| vec![reply(200).json(&page)]).await;
    let c = client(&fake);
    let e = c
        .list_registries(
            "00000000-0000-0000-0000-000000000000",
            Some("myResourceGroup"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ResourceErrorKind::Invalid);
    assert!(
        e.message.contains("refusing") && e.message.contains("attacker.example"),
        "{}",
        e.message
    );
    assert_eq!(c.request_count(), 1);
    no_token(&e);
}

#[tokio::test]
async fn a_poll_url_on_another_host_is_refused() {
    let created = example_body(
        "acr-2025-11-01.PrivateEndpointConnectionCreateOrUpdate.json",
        "201",
    );
    // The example's own monitor points at management.azure.com, not at this endpoint.
    let documented =
        fixture("acr-2025-11-01.PrivateEndpointConnectionCreateOrUpdate.json")["responses"]["201"]
            ["headers"]["Azure-AsyncOperation"]
            .as_str()
            .unwrap()
            .to_string();
    let fake = start_fake(move |_| {
        vec![
            reply(201)
                .json(&created)
                .header("Azure-AsyncOperation", documented),
        ]
    })
    .await;
    let c = client(&fake);
    let state: ConnectionState = serde_json::from_value(json!({"status": "Approved"})).unwrap();
    let e = c
        .set_connection_state(&id(CONNECTION), &state)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ResourceErrorKind::Invalid);
    assert!(
        e.message.contains("refusing") && e.message.contains("management.azure.com"),
        "{}",
        e.message
    );
    assert_eq!(c.request_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Token

#[tokio::test]
async fn the_token_goes_as_a_bearer_header_and_never_into_errors() {
    let forbidden = fixture("supportarticles.AuthorizationFailed.error.json");
    let fake = start_fake(move |_| {
        vec![
            reply(403).json(&forbidden),
            reply(500),
            reply(500),
            reply(500),
            reply(500),
        ]
    })
    .await;
    let c = client(&fake);
    let e1 = c.get_registry(&id(REGISTRY)).await.unwrap_err();
    let e2 = c.get_connection(&id(CONNECTION)).await.unwrap_err();
    for s in fake.seen() {
        assert_eq!(
            s.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    no_token(&e1);
    no_token(&e2);
    assert!(!format!("{c:?}").contains(TOKEN));
}

#[test]
fn http_to_a_remote_host_is_refused_at_construction() {
    let err = ArmClient::new(
        Arc::new(StaticTokenCredential::new(TOKEN)),
        fast_options("http://192.0.2.10:8080"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not loopback"), "{err}");
}

#[tokio::test]
async fn static_credential_from_config_authenticates() {
    let registry = example_body("acr-2025-11-01.RegistryGet.json", "200");
    let fake = start_fake(move |_| vec![reply(200).json(&registry)]).await;
    let cred = credential_from_config(
        CredentialKind::Static,
        &[("LINKGUARD_STATIC_TOKEN", "from-config")],
    )
    .unwrap();
    let c = ArmClient::new(cred, fast_options(&fake.base)).unwrap();
    c.get_registry(&id(REGISTRY)).await.unwrap();
    assert_eq!(
        fake.seen()[0].authorization.as_deref(),
        Some("Bearer from-config")
    );
}

// ---------------------------------------------------------------------------------------------
// Managed identity (App Service protocol) against a fake identity endpoint.
//
// azure_identity's ManagedIdentityCredential reads IDENTITY_ENDPOINT / IDENTITY_HEADER from the
// process environment (no option to pass them), and edition 2024 makes `set_var` unsafe (the crate
// forbids unsafe). So this test starts the fakes, then runs itself again as a child process with
// those variables set; the child builds the credential from the process environment and calls ARM.

const MSI_CHILD: &str = "LINKGUARD_TEST_MSI_CHILD";
const MSI_TEST: &str = "managed_identity_credential_uses_the_app_service_endpoint";
const USER_ASSIGNED: &str = "7c9c1a52-0000-4000-8000-00000000abcd";

#[derive(Clone, Debug)]
struct MsiHit {
    target: String,
    identity_header: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_credential_uses_the_app_service_endpoint() {
    if std::env::var(MSI_CHILD).is_ok() {
        return msi_child().await;
    }
    // Fake App Service identity endpoint.
    let hits: Arc<Mutex<Vec<MsiHit>>> = Arc::default();
    let recorded = hits.clone();
    let msi = Router::new().route(
        "/msi/token",
        axum::routing::get(move |uri: Uri, headers: HeaderMap| {
            let recorded = recorded.clone();
            async move {
                recorded.lock().unwrap().push(MsiHit {
                    target: uri.to_string(),
                    identity_header: headers.get("x-identity-header").and_then(|v| v.to_str().ok()).map(str::to_string),
                });
                // App Service's reply: `expires_on` is a string of epoch seconds.
                let expires = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600).to_string();
                axum::Json(json!({
                    "access_token": "msi-arm-token", "expires_on": expires, "resource": "https://management.azure.com",
                    "token_type": "Bearer", "client_id": USER_ASSIGNED
                }))
            }
        }),
    );
    let msi_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let msi_addr = msi_listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(msi_listener, msi).await.unwrap() });

    let subs = json!({"value": [{"id": "/subscriptions/00000000-0000-0000-0000-000000000000", "subscriptionId": "00000000-0000-0000-0000-000000000000"}]});
    let arm = start_fake(move |_| vec![reply(200).json(&subs), reply(200).json(&subs)]).await;

    let exe = std::env::current_exe().unwrap();
    let output = tokio::process::Command::new(exe)
        .args([MSI_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(MSI_CHILD, "1")
        .env("IDENTITY_ENDPOINT", format!("http://{msi_addr}/msi/token"))
        .env("IDENTITY_HEADER", "s3cret-header")
        .env("AZURE_CLIENT_ID", USER_ASSIGNED)
        .env("LINKGUARD_TEST_ARM_ENDPOINT", &arm.base)
        .env_remove("IDENTITY_SERVER_THUMBPRINT")
        .env_remove("IMDS_ENDPOINT")
        .env_remove("MSI_ENDPOINT")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child did not run the test:\n{stdout}"
    );

    let hits = hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 1, "the token is cached across calls: {hits:?}");
    let hit = &hits[0];
    assert_eq!(hit.identity_header.as_deref(), Some("s3cret-header"));
    assert!(hit.target.starts_with("/msi/token?"), "{}", hit.target);
    assert!(
        hit.target.contains("api-version=2019-08-01"),
        "{}",
        hit.target
    );
    assert!(
        hit.target
            .contains("resource=https%3A%2F%2Fmanagement.azure.com"),
        "{}",
        hit.target
    );
    assert!(
        hit.target.contains(&format!("client_id={USER_ASSIGNED}")),
        "{}",
        hit.target
    );

    let seen = arm.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer msi-arm-token")),
        "{seen:?}"
    );
}

async fn msi_child() {
    let endpoint = std::env::var("LINKGUARD_TEST_ARM_ENDPOINT").unwrap();
    let cred = credential_from_config(CredentialKind::ManagedIdentity, &ProcessEnv).unwrap();
    let c = ArmClient::new(cred, fast_options(&endpoint)).unwrap();
    for _ in 0..2 {
        let subs = c.list_subscriptions().await.unwrap();
        assert_eq!(subs, vec!["00000000-0000-0000-0000-000000000000"]);
    }
}

// ---------------------------------------------------------------------------------------------
// https with an extra CA (the sandbox's --tls) and the stock bearer policy

struct Tls {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn tls_material() -> Tls {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    Tls {
        ca_pem: ca_cert.pem(),
        cert_pem: leaf.pem(),
        key_pem: leaf_key.serialize_pem(),
    }
}

async fn tls_fake(tls: &Tls, script: Vec<Reply>) -> Fake {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let state = Arc::new(FakeState::default());
    state.script.lock().unwrap().extend(script);
    let config = axum_server::tls_rustls::RustlsConfig::from_pem(
        tls.cert_pem.clone().into_bytes(),
        tls.key_pem.clone().into_bytes(),
    )
    .await
    .unwrap();
    let app = fake_router(state.clone());
    tokio::spawn(async move {
        axum_server::from_tcp_rustls(listener, config)
            .serve(app.into_make_service())
            .await
            .unwrap()
    });
    Fake { base, state }
}

#[tokio::test]
async fn https_with_the_extra_ca_uses_the_stock_bearer_policy() {
    let tls = tls_material();
    let registry = example_body("acr-2025-11-01.RegistryGet.json", "200");
    let fake = tls_fake(&tls, vec![reply(200).json(&registry)]).await;
    let mut options = fast_options(&fake.base);
    options.ca_certificate_pem = Some(tls.ca_pem.clone().into_bytes());
    let c = client_with(options);
    assert_eq!(
        c.get_registry(&id(REGISTRY)).await.unwrap().name(),
        "myRegistry"
    );
    assert_eq!(
        fake.seen()[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    // Without the CA the server is not trusted: not retried (it would not heal), the message says
    // what to set, and nothing reached the handler.
    let fake2 = tls_fake(
        &tls,
        vec![reply(200).json(&example_body("acr-2025-11-01.RegistryGet.json", "200"))],
    )
    .await;
    let c = client(&fake2);
    let e = c.get_registry(&id(REGISTRY)).await.unwrap_err();
    assert_eq!(e.kind, ResourceErrorKind::Invalid, "{}", e.message);
    assert!(
        e.message.contains("not trusted") && e.message.contains("LINKGUARD_ARM_CA_CERT"),
        "{}",
        e.message
    );
    assert_eq!(c.request_count(), 1);
    assert!(fake2.seen().is_empty());
    assert_eq!(fake2.left(), 1);
    no_token(&e);
}

// ---------------------------------------------------------------------------------------------
// No credential works

/// What azure_identity answers when its source is not there (no managed identity endpoint, `az`
/// not signed in): an error of kind `Credential`.
#[derive(Debug)]
struct UnavailableCredential;

#[async_trait::async_trait]
impl azure_core::credentials::TokenCredential for UnavailableCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            "ManagedIdentityCredential: no identity endpoint is reachable",
        ))
    }
}

#[tokio::test]
async fn no_token_is_a_clear_error_that_names_the_credential_and_sends_nothing() {
    let fake = start_fake(|_| vec![reply(200).json(&json!({"value": []}))]).await;
    let c = ArmClient::new(Arc::new(UnavailableCredential), fast_options(&fake.base)).unwrap();
    let err = c.list_subscriptions().await.unwrap_err();
    assert_eq!(err.code.as_deref(), Some("CredentialUnavailable"), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("could not get an ARM token")
            && text.contains("ManagedIdentityCredential: no identity endpoint is reachable"),
        "{text}"
    );
    assert!(fake.seen().is_empty(), "no request without a token");
    assert_eq!(fake.left(), 1);
}
