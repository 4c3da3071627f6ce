//! The soak (issue 8): an estate of hundreds of registries in the ARM sandbox, random faults in
//! phases (429 storms, ARM's token buckets, 5xx, busy 429s, latency, long-running operations that
//! fail, dropped connections), new Pending connections appearing throughout, each announced by Event
//! Grid events (real payloads, ids substituted) delivered to the Functions handler over HTTP with
//! duplicates, reordering and redelivery after failures, linkguard's own writes echoed back as
//! events, and timer and manual audits running at the same time.
//!
//! The oracle is computed from the policy's meaning, independently of the policy code: endpoints
//! from subscription A are approved, endpoints from Q rejected, the rest left; registries outside
//! the scope are never touched; connections that were not Pending at the start never change.
//!
//! Checked continuously (request log every 150 ms, whole estate every second) and at the end:
//! - safety: no connection reaches a state the oracle does not allow (no Approved that the policy
//!   does not approve; no Rejected that it does not reject; nothing else changes);
//! - no write (PUT, PATCH, DELETE) targets a connection the oracle leaves alone, in particular a
//!   Rejected one, or a registry;
//! - once-only: per connection, at most one write that took effect (answered 2xx and its
//!   long-running operation not failed by the sandbox), and no write at all after it; at the end
//!   exactly one for every connection the policy approves or rejects. A write whose operation
//!   failed, or that ARM refused (429/5xx/dropped), did not take effect and is counted apart;
//! - liveness: once the faults stop (queue drained, one final ScheduledAudit), every connection
//!   is where the oracle says; a second audit then writes nothing (converged, no loop);
//! - reports: every invocation that ran a reconciliation or an audit names the report it stored,
//!   every named report exists and is valid, and no other report exists.
//!
//! Shared by `tests/soak.rs` (the short version, in `cargo test`) and `src/bin/soak.rs` (the long
//! version, `scripts/soak.sh`). Only regular dependencies here: the binary has no dev-dependencies.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use linkguard::arm::{
    ArmClient, ArmClientOptions, LroSettings, RetrySettings, StaticTokenCredential,
};
use linkguard::events::TopicAllowList;
use linkguard::host::functions::{AppState, HandlerOptions, PolicySource, SinkStore, serve};
use linkguard::policy::Policy;
use linkguard::report::sink::DirSink;
use linkguard::sim::{FaultSpec, NewConnection, RequestRecord, Sandbox, SimOptions};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};

/// Registry subscriptions in the policy's scope.
pub const GOVERNED_SUBS: [&str; 2] = [
    "5a000000-0000-4000-8000-000000000001",
    "5a000000-0000-4000-8000-000000000002",
];
/// A registry subscription outside the scope (its events are allow-listed all the same).
pub const UNGOVERNED_SUB: &str = "5a000000-0000-4000-8000-000000000009";
/// Endpoint subscriptions: approved, rejected, left.
pub const SUB_A: &str = "a0000000-0000-4000-8000-00000000000a";
pub const SUB_Q: &str = "b0000000-0000-4000-8000-00000000000b";
pub const SUB_O: &str = "c0000000-0000-4000-8000-00000000000c";
/// A topic that is not allow-listed.
pub const FOREIGN_TOPIC: &str = "/subscriptions/f0000000-0000-4000-8000-00000000000f";

pub fn policy_text() -> String {
    format!(
        r#"version = 1
mode = "enforce"

[scope]
subscriptions = ["{g1}", "{g2}"]
exclude_registries = ["legacy*"]

[connections]
default = "leave"
revoke_approved = false
delete_disconnected = false

[[connections.rules]]
name = "team-a"
action = "approve"
description = "Approved by linkguard rule {{rule}} for {{endpoint}}"
match.subscriptions = ["{a}"]

[[connections.rules]]
name = "quarantine-q"
action = "reject"
description = "Rejected by linkguard rule {{rule}}"
match.subscriptions = ["{q}"]
"#,
        g1 = GOVERNED_SUBS[0],
        g2 = GOVERNED_SUBS[1],
        a = SUB_A,
        q = SUB_Q
    )
}

/// How big and how long.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// Governed registries.
    pub registries: usize,
    /// Registries outside the scope (another subscription, or excluded by name).
    pub ungoverned: usize,
    pub duration: Duration,
    pub seed: u64,
    /// New Pending connections per second.
    pub add_per_sec: f64,
    /// Concurrent Event Grid deliveries.
    pub workers: usize,
    /// Time between ScheduledAudit invocations.
    pub audit_every: Duration,
    /// Time between ManualAudit invocations (one random registry).
    pub manual_every: Duration,
    /// Each fault phase lasts a random time in this range.
    pub phase: (Duration, Duration),
    /// Progress lines on stderr.
    pub progress: bool,
    /// Keep the reports here (default: a temporary directory, removed).
    pub reports_dir: Option<PathBuf>,
    /// The policy linkguard runs with. The oracle always follows [`policy_text`]; another policy
    /// here shows that the checks catch a linkguard that decides otherwise.
    pub policy: String,
}

impl SoakConfig {
    /// The short version for `cargo test`.
    pub fn short(seed: u64) -> Self {
        Self {
            registries: 100,
            ungoverned: 12,
            duration: Duration::from_secs(20),
            seed,
            add_per_sec: 8.0,
            workers: 4,
            audit_every: Duration::from_secs(3),
            manual_every: Duration::from_secs(2),
            phase: (Duration::from_millis(1200), Duration::from_millis(2000)),
            progress: false,
            reports_dir: None,
            policy: policy_text(),
        }
    }
}

/// What the run did and found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub seed: u64,
    pub seconds: f64,
    pub drain_seconds: f64,
    pub registries_governed: usize,
    pub registries_ungoverned: usize,
    pub connections_at_start: BTreeMap<String, u64>,
    pub connections_added: u64,
    /// By the oracle's verdict: approve / reject / leave / out-of-scope.
    pub added_by_verdict: BTreeMap<String, u64>,
    pub events_generated: u64,
    pub endpoint_events: u64,
    pub echo_events: u64,
    pub noise_events: u64,
    pub duplicate_copies: u64,
    pub deliveries: u64,
    pub deliveries_by_status: BTreeMap<String, u64>,
    pub redeliveries: u64,
    pub dead_lettered: u64,
    pub timer_audits: u64,
    pub timer_by_status: BTreeMap<String, u64>,
    pub manual_audits: u64,
    pub manual_by_status: BTreeMap<String, u64>,
    pub fault_phases: Vec<String>,
    pub faults_injected: BTreeMap<String, u64>,
    pub arm_requests: u64,
    pub arm_by_status: BTreeMap<String, u64>,
    pub writes_total: u64,
    pub writes_effective: u64,
    pub writes_not_effective: u64,
    pub reports_expected: u64,
    pub reports_found: u64,
    pub reports_incomplete: u64,
    pub log_records_checked: u64,
    pub estate_scans: u64,
    pub connection_checks: u64,
    pub final_connections: BTreeMap<String, u64>,
    pub violations_total: u64,
    /// Broken invariants by kind: `forbidden-state` (a state the policy does not allow),
    /// `forbidden-write` (a write on something the policy leaves alone), `write-after-effect` (a
    /// write after the one that took effect), `not-converged` (final state or write count not the
    /// oracle's), `report` (a report missing, unnamed or invalid), `handler` (an answer that breaks
    /// the protocol), `harness`.
    pub violations_by_kind: BTreeMap<String, u64>,
    /// The first ten violations of each kind.
    pub violations: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Approve,
    Reject,
    /// Leave as it was at the start (or when added).
    Unchanged,
}

#[derive(Clone, Debug)]
struct Expect {
    initial: String,
    want: Want,
}

#[derive(Clone, Debug)]
struct Write {
    seq: u64,
    method: String,
    effective: bool,
}

struct Delivery {
    event: Value,
    attempts: u32,
    not_before: Instant,
}

struct RegistryInfo {
    id: String,
    subscription: String,
    governed: bool,
}

/// The real payloads the run is built from.
struct Fixtures {
    registry: Value,
    connection: Value,
    endpoint: Value,
    write_event: Value,
    event_invocation: Value,
    timer_invocation: Value,
    http_invocation: Value,
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")
}

fn read_fixture(rel: &str) -> Result<Value, String> {
    let path = fixtures_dir().join(rel);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read fixture {}: {e} (../shared must sit beside the repo)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

impl Fixtures {
    fn load() -> Result<Self, String> {
        let body = |v: Value| v["responses"]["200"]["body"].clone();
        Ok(Self {
            registry: body(read_fixture("arm/acr-2025-11-01.RegistryGet.json")?),
            connection: body(read_fixture(
                "arm/acr-2025-11-01.PrivateEndpointConnectionGet.json",
            )?),
            endpoint: body(read_fixture(
                "arm/network-2025-07-01.PrivateEndpointGet.json",
            )?),
            write_event: read_fixture(
                "eventgrid/docs.event-schema-subscriptions.ResourceWriteSuccess.json",
            )?[0]
                .clone(),
            event_invocation: read_fixture("functions/eventgrid-invocation.json")?,
            timer_invocation: read_fixture("functions/timer-invocation.json")?,
            http_invocation: read_fixture("functions/http-invocation-local-admin-key.json")?,
        })
    }

    fn registry(&self, id: &str, name: &str, connections: Vec<Value>) -> Value {
        let mut r = self.registry.clone();
        r["id"] = json!(id);
        r["name"] = json!(name);
        r["sku"] = json!({"name": "Premium", "tier": "Premium"});
        r["properties"]["publicNetworkAccess"] = json!("Disabled");
        r["properties"]["networkRuleSet"] = json!({"defaultAction": "Deny", "ipRules": []});
        r["properties"]["privateEndpointConnections"] = json!(connections);
        r
    }

    fn connection(&self, registry: &str, name: &str, endpoint: &str, status: &str) -> Value {
        let mut c = self.connection.clone();
        c["id"] = json!(format!("{registry}/privateEndpointConnections/{name}"));
        c["name"] = json!(name);
        c["properties"]["privateEndpoint"]["id"] = json!(endpoint);
        c["properties"]["privateLinkServiceConnectionState"] =
            json!({"status": status, "description": "please", "actionsRequired": "None"});
        c["properties"]["provisioningState"] = json!("Succeeded");
        c
    }

    fn endpoint(&self, id: &str, name: &str, registry: &str) -> Value {
        let mut pe = self.endpoint.clone();
        let rg_prefix = id
            .split("/providers/")
            .next()
            .unwrap_or_default()
            .to_string();
        pe["id"] = json!(id);
        pe["name"] = json!(name);
        pe["properties"]["privateLinkServiceConnections"] = json!([{
            "id": format!("{id}/privateLinkServiceConnections/{name}"),
            "name": name,
            "properties": {
                "privateLinkServiceId": registry,
                "groupIds": ["registry"],
                "requestMessage": "Please approve my connection.",
                "privateLinkServiceConnectionState": {"status": "Pending", "description": "", "actionsRequired": "None"}
            }
        }]);
        pe["properties"]["manualPrivateLinkServiceConnections"] = json!([]);
        pe["properties"]["subnet"]["id"] = json!(format!(
            "{rg_prefix}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/endpoints"
        ));
        pe["properties"]["networkInterfaces"] = json!([]);
        pe
    }

    /// The docs' ResourceWriteSuccess with its ids substituted: `resource` written by `operation`,
    /// announced on `topic`.
    fn event(&self, id: &str, topic: &str, resource: &str, operation: &str) -> Value {
        let mut ev = self.write_event.clone();
        let provider = operation.split('/').next().unwrap_or_default();
        let sub = topic.trim_start_matches("/subscriptions/");
        ev["id"] = json!(id);
        ev["topic"] = json!(topic);
        ev["subject"] = json!(resource);
        ev["eventTime"] = json!(now_rfc3339());
        ev["data"]["resourceUri"] = json!(resource);
        ev["data"]["operationName"] = json!(operation);
        ev["data"]["resourceProvider"] = json!(provider);
        ev["data"]["subscriptionId"] = json!(sub);
        ev["data"]["authorization"]["scope"] = json!(resource);
        ev["data"]["authorization"]["action"] = json!(operation);
        ev
    }

    /// A ConnectionEvents invocation: the real capture's envelope with the event under the binding
    /// name of function.json.
    fn event_invocation(&self, event: &Value) -> Value {
        let mut inv = self.event_invocation.clone();
        if let Some(data) = inv["Data"].as_object_mut() {
            data.remove("event");
        }
        inv["Metadata"]["data"] = event.get("data").cloned().unwrap_or(Value::Null);
        inv["Data"]["eventGridEvent"] = event.clone();
        inv["Metadata"]["sys"]["MethodName"] = json!("ConnectionEvents");
        inv
    }

    fn timer_invocation(&self) -> Value {
        let mut inv = self.timer_invocation.clone();
        inv["Metadata"]["sys"]["MethodName"] = json!("ScheduledAudit");
        inv
    }

    fn manual_invocation(&self, registry: &str) -> Value {
        let mut inv = self.http_invocation.clone();
        inv["Data"]["req"]["Body"] = json!(json!({"registry": registry}).to_string());
        inv["Metadata"]["sys"]["MethodName"] = json!("ManualAudit");
        inv
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

const CONN_OP: &str = "Microsoft.ContainerRegistry/registries/privateEndpointConnections/write";
const ENDPOINT_OP: &str = "Microsoft.Network/privateEndpoints/write";
const EXAMPLES_PER_KIND: u64 = 10;
const MAX_DELIVERY_ATTEMPTS: u32 = 30;

/// Fault phases: a name and a spec (the seed is added per phase).
const PHASES: [(&str, &str); 9] = [
    ("calm", "none"),
    ("429-storm", "throttle-every=3,retry-after=1"),
    ("arm-buckets", "bucket=arm"),
    ("5xx", "error500=0.12,error503=0.12,retry-after=0"),
    ("busy", "busy=0.15,retry-after=0"),
    ("latency", "latency=5ms..150ms"),
    ("lro-fail", "lro-fail=0.3"),
    ("drops", "drop=0.06"),
    (
        "chaos",
        "throttle-every=7,retry-after=0,error500=0.05,error503=0.05,busy=0.05,latency=1ms..60ms,lro-fail=0.15,drop=0.03",
    ),
];

struct Soak {
    config: SoakConfig,
    fixtures: Fixtures,
    sandbox: Sandbox,
    http: reqwest::Client,
    base: String,
    registries: Vec<RegistryInfo>,
    reports_root: PathBuf,
    oracle: Mutex<HashMap<String, Expect>>,
    writes: Mutex<HashMap<String, Vec<Write>>>,
    queue: Mutex<Vec<Delivery>>,
    rng: Mutex<StdRng>,
    summary: Mutex<Summary>,
    /// Report paths named by invocation answers.
    named_reports: Mutex<BTreeSet<PathBuf>>,
    generating: AtomicBool,
    checking: AtomicBool,
    event_seq: AtomicU64,
    /// Deliveries being processed right now.
    in_flight: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn bump(map: &mut BTreeMap<String, u64>, key: impl Into<String>) {
    *map.entry(key.into()).or_default() += 1;
}

impl Soak {
    /// Records a broken invariant of the given kind (see [`Summary::violations_by_kind`]).
    fn violation(&self, kind: &str, message: String) {
        let mut s = lock(&self.summary);
        s.violations_total += 1;
        let seen = s.violations_by_kind.entry(kind.to_string()).or_default();
        *seen += 1;
        if *seen <= EXAMPLES_PER_KIND {
            if self.config.progress {
                eprintln!("VIOLATION ({kind}): {message}");
            }
            s.violations.push(format!("[{kind}] {message}"));
        }
    }

    fn chance(&self, p: f64) -> bool {
        lock(&self.rng).random::<f64>() < p
    }

    fn next_event_id(&self) -> String {
        format!(
            "soak-{:08}-{}",
            self.event_seq.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4()
        )
    }

    /// Queues an event, sometimes with duplicate copies (at-least-once delivery), each ready after
    /// a random delay (so deliveries overtake each other).
    fn enqueue(&self, event: Value) {
        let mut copies = 1;
        if self.chance(0.3) {
            copies += 1;
        }
        if self.chance(0.1) {
            copies += 1;
        }
        let now = Instant::now();
        let mut q = lock(&self.queue);
        for _ in 0..copies {
            let delay = Duration::from_millis(lock(&self.rng).random_range(0..1500));
            q.push(Delivery {
                event: event.clone(),
                attempts: 0,
                not_before: now + delay,
            });
        }
        drop(q);
        let mut s = lock(&self.summary);
        s.events_generated += 1;
        s.duplicate_copies += copies - 1;
    }

    fn registry_sub_topic(reg: &RegistryInfo) -> String {
        format!("/subscriptions/{}", reg.subscription)
    }

    /// A new Pending connection, registered with the oracle first, then created in the sandbox and
    /// announced by an event.
    fn add_connection(&self, n: u64) -> Result<(), String> {
        let (reg_idx, sub_pick, as_endpoint_event) = {
            let mut rng = lock(&self.rng);
            let governed: Vec<usize> = (0..self.registries.len())
                .filter(|i| self.registries[*i].governed)
                .collect();
            let ungoverned: Vec<usize> = (0..self.registries.len())
                .filter(|i| !self.registries[*i].governed)
                .collect();
            let idx = if !ungoverned.is_empty() && rng.random::<f64>() < 0.1 {
                ungoverned[rng.random_range(0..ungoverned.len())]
            } else {
                governed[rng.random_range(0..governed.len())]
            };
            (idx, rng.random_range(0..10u32), rng.random::<f64>() < 0.3)
        };
        let reg = &self.registries[reg_idx];
        let (sub, tag, want) = match sub_pick {
            0..=3 => (SUB_A, "a", Want::Approve),
            4..=6 => (SUB_Q, "q", Want::Reject),
            _ => (SUB_O, "o", Want::Unchanged),
        };
        let want = if reg.governed { want } else { Want::Unchanged };
        let pe_name = format!("pe-{tag}-new-{n}");
        let pe_id = format!(
            "/subscriptions/{sub}/resourceGroups/net-{tag}/providers/Microsoft.Network/privateEndpoints/{pe_name}"
        );
        let conn_name = format!("{pe_name}.{:04x}", n % 0xffff);
        let conn_id = format!("{}/privateEndpointConnections/{conn_name}", reg.id);
        // Under the oracle's lock, so an estate scan sees both or neither.
        let mut oracle = lock(&self.oracle);
        oracle.insert(
            conn_id.to_ascii_lowercase(),
            Expect {
                initial: "Pending".into(),
                want,
            },
        );
        self.sandbox
            .add_connection(
                &reg.id,
                NewConnection {
                    name: Some(conn_name),
                    private_endpoint: pe_id.clone(),
                    status: None,
                    description: Some(format!("endpoint {n} asks for access")),
                },
            )
            .map_err(|e| format!("adding a connection to {}: {e}", reg.id))?;
        drop(oracle);
        {
            let mut s = lock(&self.summary);
            s.connections_added += 1;
            let verdict = match (reg.governed, want) {
                (false, _) => "out-of-scope",
                (true, Want::Approve) => "approve",
                (true, Want::Reject) => "reject",
                (true, Want::Unchanged) => "leave",
            };
            bump(&mut s.added_by_verdict, verdict);
        }
        // Endpoints from A are sometimes announced by the consumer's endpoint write (on A's
        // subscription), which linkguard resolves to the registry; otherwise by the connection
        // write on the registry's subscription.
        if sub == SUB_A && as_endpoint_event {
            self.sandbox
                .add_private_endpoint(self.fixtures.endpoint(&pe_id, &pe_name, &reg.id))
                .map_err(|e| format!("adding endpoint {pe_id}: {e}"))?;
            let ev = self.fixtures.event(
                &self.next_event_id(),
                &format!("/subscriptions/{SUB_A}"),
                &pe_id,
                ENDPOINT_OP,
            );
            lock(&self.summary).endpoint_events += 1;
            self.enqueue(ev);
        } else {
            let ev = self.fixtures.event(
                &self.next_event_id(),
                &Self::registry_sub_topic(reg),
                &conn_id,
                CONN_OP,
            );
            self.enqueue(ev);
        }
        Ok(())
    }

    /// An event from a topic that is not allow-listed, naming a governed registry: ignored.
    fn add_noise(&self) {
        let idx = lock(&self.rng).random_range(0..self.registries.len());
        let reg = &self.registries[idx];
        let ev = self
            .fixtures
            .event(&self.next_event_id(), FOREIGN_TOPIC, &reg.id, CONN_OP);
        lock(&self.summary).noise_events += 1;
        self.enqueue(ev);
    }

    async fn invoke(&self, function: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/{function}", self.base))
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "x-azure-functions-invocationid",
                uuid::Uuid::new_v4().to_string(),
            )
            .body(body.to_string())
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                self.violation(
                    "handler",
                    format!("{function}: the handler did not answer: {e}"),
                );
                return (0, Value::Null);
            }
        };
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => (status, v),
            Err(e) => {
                self.violation(
                    "handler",
                    format!("{function}: answer {status} is not JSON ({e}): {text:.200}"),
                );
                (status, Value::Null)
            }
        }
    }

    fn logs(body: &Value) -> Vec<String> {
        body["Logs"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The report paths an answer names ("report stored: <path>"), remembered.
    fn note_reports(&self, function: &str, body: &Value) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for line in Self::logs(body) {
            if let Some(path) = line.strip_prefix("report stored: ") {
                let path = PathBuf::from(path.trim());
                if !lock(&self.named_reports).insert(path.clone()) {
                    self.violation(
                        "report",
                        format!("{function}: report {} named twice", path.display()),
                    );
                }
                found.push(path);
            }
        }
        found
    }

    async fn deliver(&self, event: &Value) -> u16 {
        let inv = self.fixtures.event_invocation(event);
        let (status, body) = self.invoke("ConnectionEvents", &inv).await;
        let reports = self.note_reports("ConnectionEvents", &body).len();
        let nothing = Self::logs(&body)
            .iter()
            .any(|l| l == "nothing to reconcile");
        let id = event["id"].as_str().unwrap_or("?");
        match (reports, nothing) {
            (1, false) | (0, true) => {}
            _ => self.violation("report", format!(
                "ConnectionEvents {id} ({status}): {reports} report(s) named, `nothing to reconcile`: {nothing}; logs: {:?}",
                Self::logs(&body)
            )),
        }
        if status == 0 {
            return 0;
        }
        {
            let mut s = lock(&self.summary);
            s.deliveries += 1;
            bump(&mut s.deliveries_by_status, status.to_string());
        }
        status
    }

    /// One Event Grid delivery worker: takes a random ready delivery (reordering), delivers it,
    /// and on a non-2xx answer puts it back with a backoff, as Event Grid retries.
    async fn delivery_worker(self: Arc<Self>) {
        loop {
            let next = {
                let mut q = lock(&self.queue);
                let now = Instant::now();
                let ready: Vec<usize> = (0..q.len()).filter(|i| q[*i].not_before <= now).collect();
                if ready.is_empty() {
                    None
                } else {
                    let pick = ready[lock(&self.rng).random_range(0..ready.len())];
                    self.in_flight.fetch_add(1, Ordering::SeqCst);
                    Some(q.swap_remove(pick))
                }
            };
            let Some(mut d) = next else {
                let idle = {
                    let q = lock(&self.queue);
                    q.is_empty() && self.in_flight.load(Ordering::SeqCst) == 0
                };
                if !self.generating.load(Ordering::SeqCst) && idle {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let status = self.deliver(&d.event).await;
            if !(200..300).contains(&status) {
                d.attempts += 1;
                if d.attempts >= MAX_DELIVERY_ATTEMPTS {
                    lock(&self.summary).dead_lettered += 1;
                } else {
                    let backoff = Duration::from_millis(100 * 2u64.pow(d.attempts.min(5)))
                        .min(Duration::from_secs(2));
                    d.not_before = Instant::now() + backoff;
                    lock(&self.summary).redeliveries += 1;
                    lock(&self.queue).push(d);
                }
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    async fn timer_audit(&self) -> (u16, Option<PathBuf>) {
        let (status, body) = self
            .invoke("ScheduledAudit", &self.fixtures.timer_invocation())
            .await;
        let named = self.note_reports("ScheduledAudit", &body);
        if named.len() != 1 {
            self.violation(
                "report",
                format!(
                    "ScheduledAudit ({status}) named {} reports: {:?}",
                    named.len(),
                    Self::logs(&body)
                ),
            );
        }
        let path = named.into_iter().next();
        let mut s = lock(&self.summary);
        s.timer_audits += 1;
        bump(&mut s.timer_by_status, status.to_string());
        (status, path)
    }

    async fn timer_loop(self: Arc<Self>) {
        while self.generating.load(Ordering::SeqCst) {
            self.timer_audit().await;
            self.sleep_while_generating(self.config.audit_every).await;
        }
    }

    async fn manual_loop(self: Arc<Self>) {
        while self.generating.load(Ordering::SeqCst) {
            self.sleep_while_generating(self.config.manual_every).await;
            let idx = lock(&self.rng).random_range(0..self.registries.len());
            let reg = &self.registries[idx];
            let (status, body) = self
                .invoke("ManualAudit", &self.fixtures.manual_invocation(&reg.id))
                .await;
            let res = body["Outputs"]["res"]["statusCode"].as_u64().unwrap_or(0);
            let n = self.note_reports("ManualAudit", &body).len();
            let expect_report = reg.governed;
            match (reg.governed, res) {
                (true, 200 | 503) | (false, 422) => {}
                _ => self.violation(
                    "handler",
                    format!(
                        "ManualAudit of {} (governed: {}) answered {status} / res {res}: {}",
                        reg.id, reg.governed, body["Outputs"]["res"]["body"]
                    ),
                ),
            }
            if (n == 1) != expect_report {
                self.violation(
                    "report",
                    format!(
                        "ManualAudit of {} named {n} reports (governed: {})",
                        reg.id, reg.governed
                    ),
                );
            }
            let mut s = lock(&self.summary);
            s.manual_audits += 1;
            bump(&mut s.manual_by_status, res.to_string());
        }
    }

    async fn sleep_while_generating(&self, total: Duration) {
        let until = Instant::now() + total;
        while self.generating.load(Ordering::SeqCst) && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fault phases in a seeded random order, every kind once before any repeats.
    async fn fault_loop(self: Arc<Self>) {
        let mut phase_no = 0u64;
        let mut order: Vec<(&str, &str)> = Vec::new();
        while self.generating.load(Ordering::SeqCst) {
            if order.is_empty() {
                order = PHASES.to_vec();
                order.shuffle(&mut *lock(&self.rng));
            }
            let Some((name, spec)) = order.pop() else {
                break;
            };
            let length = {
                let mut rng = lock(&self.rng);
                let (lo, hi) = self.config.phase;
                lo + (hi.saturating_sub(lo)).mul_f64(rng.random::<f64>())
            };
            phase_no += 1;
            let spec_text = if spec == "none" {
                "none".to_string()
            } else {
                format!("seed={},{spec}", self.config.seed.wrapping_add(phase_no))
            };
            match FaultSpec::parse(&spec_text) {
                Ok(f) => self.sandbox.set_faults(f),
                Err(e) => self.violation("harness", format!("fault spec `{spec_text}`: {e}")),
            }
            lock(&self.summary)
                .fault_phases
                .push(format!("{name} {:.1}s", length.as_secs_f64()));
            if self.config.progress {
                eprintln!("soak: fault phase {name} for {:.1}s", length.as_secs_f64());
            }
            self.sleep_while_generating(length).await;
        }
        self.sandbox.set_faults(FaultSpec::none());
    }

    async fn add_loop(self: Arc<Self>) {
        let mut n = 0u64;
        let interval = Duration::from_secs_f64(1.0 / self.config.add_per_sec.max(0.01));
        while self.generating.load(Ordering::SeqCst) {
            n += 1;
            if let Err(e) = self.add_connection(n) {
                self.violation("harness", e);
            }
            if n.is_multiple_of(7) {
                self.add_noise();
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Checks the request records since the last call.
    fn scan_requests(&self, last_total: &mut u64) {
        let stats = self.sandbox.requests();
        let new = stats.total.saturating_sub(*last_total);
        if new == 0 {
            return;
        }
        if new > stats.log.len() as u64 {
            self.violation(
                "harness",
                format!(
                    "the sandbox's request log overflowed: {} records were not checked",
                    new - stats.log.len() as u64
                ),
            );
        }
        let start = stats.log.len().saturating_sub(new as usize);
        for r in &stats.log[start..] {
            self.check_record(r);
        }
        *last_total = stats.total;
        lock(&self.summary).log_records_checked += new.min(stats.log.len() as u64);
    }

    fn check_record(&self, r: &RequestRecord) {
        if r.method == "GET" || r.method == "HEAD" {
            return;
        }
        let target = r.path.to_ascii_lowercase();
        let expect = lock(&self.oracle).get(&target).cloned();
        let Some(expect) = expect else {
            self.violation("forbidden-write", format!(
                "{} {} (#{}) writes a resource the policy gives no reason to touch (status {:?})",
                r.method, r.path, r.seq, r.status
            ));
            return;
        };
        if expect.want == Want::Unchanged || r.method != "PUT" {
            self.violation(
                "forbidden-write",
                format!(
                    "{} {} (#{}, status {:?}): the policy leaves this {} connection alone",
                    r.method, r.path, r.seq, r.status, expect.initial
                ),
            );
        }
        let effective = r.status.is_some_and(|s| (200..300).contains(&s))
            && r.fault.as_deref() != Some("lro-fail");
        let mut writes = lock(&self.writes);
        let list = writes.entry(target).or_default();
        if let Some(prev) = list.iter().find(|w| w.effective) {
            self.violation(
                "write-after-effect",
                format!(
                    "{} {} (#{}, status {:?}, fault {:?}) after the write #{} that took effect",
                    r.method, r.path, r.seq, r.status, r.fault, prev.seq
                ),
            );
        }
        list.push(Write {
            seq: r.seq,
            method: r.method.clone(),
            effective,
        });
        drop(writes);
        {
            let mut s = lock(&self.summary);
            s.writes_total += 1;
            if effective {
                s.writes_effective += 1;
            } else {
                s.writes_not_effective += 1;
            }
        }
        // ARM raises a ResourceWriteSuccess for every connection write, linkguard's own included:
        // echo it, so reconciling must converge instead of looping.
        if effective && self.generating.load(Ordering::SeqCst) {
            let registry_sub = r
                .path
                .split('/')
                .nth(2)
                .unwrap_or(GOVERNED_SUBS[0])
                .to_string();
            let ev = self.fixtures.event(
                &self.next_event_id(),
                &format!("/subscriptions/{registry_sub}"),
                &r.path,
                CONN_OP,
            );
            lock(&self.summary).echo_events += 1;
            self.enqueue(ev);
        }
    }

    /// Checks every connection's state against the oracle. At the end (`final_check`), the state
    /// must be the one the oracle wants; before, any state on the way to it.
    fn scan_estate(&self, final_check: bool) -> BTreeMap<String, u64> {
        let (oracle, estate) = {
            let oracle = lock(&self.oracle);
            (oracle.clone(), self.sandbox.estate_json())
        };
        let mut seen = BTreeSet::new();
        let mut counts = BTreeMap::new();
        let mut checks = 0u64;
        for reg in estate["registries"].as_array().into_iter().flatten() {
            for c in reg["properties"]["privateEndpointConnections"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let id = c["id"].as_str().unwrap_or_default().to_ascii_lowercase();
                let status = c["properties"]["privateLinkServiceConnectionState"]["status"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string();
                checks += 1;
                bump(&mut counts, status.clone());
                seen.insert(id.clone());
                let Some(expect) = oracle.get(&id) else {
                    self.violation(
                        "harness",
                        format!("connection {id} ({status}) unknown to the oracle"),
                    );
                    continue;
                };
                let target = match expect.want {
                    Want::Approve => "Approved",
                    Want::Reject => "Rejected",
                    Want::Unchanged => expect.initial.as_str(),
                };
                if status == target || (!final_check && status == expect.initial) {
                    continue;
                }
                // Still as it was, at the end: not converged. Anything else: a state the policy
                // never allows.
                let kind = if status == expect.initial {
                    "not-converged"
                } else {
                    "forbidden-state"
                };
                self.violation(
                    kind,
                    format!(
                        "connection {id} is {status}; the policy allows only {target} (it was {} at first){}",
                        expect.initial,
                        if final_check { " once converged" } else { "" }
                    ),
                );
            }
        }
        for (id, e) in &oracle {
            if !seen.contains(id) {
                self.violation(
                    "forbidden-state",
                    format!("connection {id} ({:?}) disappeared", e.want),
                );
            }
        }
        let mut s = lock(&self.summary);
        s.estate_scans += 1;
        s.connection_checks += checks;
        counts
    }

    async fn check_loop(self: Arc<Self>) -> u64 {
        let mut last_total = 0u64;
        let mut last_scan = Instant::now();
        while self.checking.load(Ordering::SeqCst) {
            self.scan_requests(&mut last_total);
            if last_scan.elapsed() >= Duration::from_secs(1) {
                self.scan_estate(false);
                last_scan = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        self.scan_requests(&mut last_total);
        last_total
    }

    /// Once-only, at the end: exactly one write took effect per connection the policy decides.
    fn check_writes_final(&self) {
        let oracle = lock(&self.oracle).clone();
        let writes = lock(&self.writes).clone();
        for (id, e) in &oracle {
            let effective = writes
                .get(id)
                .map_or(0, |l| l.iter().filter(|w| w.effective).count());
            let want = match e.want {
                Want::Approve | Want::Reject => 1,
                Want::Unchanged => 0,
            };
            if effective != want {
                self.violation("not-converged", format!(
                    "connection {id} ({:?}): {effective} writes took effect, expected {want} (writes: {:?})",
                    e.want,
                    writes.get(id)
                ));
            }
            // By start order too: no write began after the one that took effect.
            let list = writes.get(id).cloned().unwrap_or_default();
            if let Some(done) = list.iter().find(|w| w.effective)
                && let Some(late) = list.iter().find(|w| w.seq > done.seq)
            {
                self.violation(
                    "write-after-effect",
                    format!(
                        "connection {id}: write #{} began after #{} took effect",
                        late.seq, done.seq
                    ),
                );
            }
        }
    }

    /// Every report named by an answer exists and is valid; no other report exists.
    fn check_reports(&self) {
        let named = lock(&self.named_reports).clone();
        let mut found = BTreeSet::new();
        collect_json(&self.reports_root.join("runs"), &mut found);
        let mut incomplete = 0;
        for path in &named {
            let report = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()));
            match report {
                Err(e) => self.violation(
                    "report",
                    format!("report {} unreadable: {e}", path.display()),
                ),
                Ok(r) => {
                    if r["schema"] != "linkguard.report/v1" || !r["complete"].is_boolean() {
                        self.violation("report", format!("report {} malformed", path.display()));
                    }
                    if r["complete"] == false {
                        incomplete += 1;
                        if r["errors"].as_array().is_none_or(Vec::is_empty) {
                            self.violation(
                                "report",
                                format!(
                                    "report {} is incomplete without saying why",
                                    path.display()
                                ),
                            );
                        }
                    }
                }
            }
        }
        let named_set: BTreeSet<PathBuf> = named.iter().map(|p| canonical(p)).collect();
        let found_set: BTreeSet<PathBuf> = found.iter().map(|p| canonical(p)).collect();
        for p in found_set.difference(&named_set) {
            self.violation(
                "report",
                format!("report {} exists but no answer named it", p.display()),
            );
        }
        for p in named_set.difference(&found_set) {
            self.violation(
                "report",
                format!("report {} was named but is missing", p.display()),
            );
        }
        let mut s = lock(&self.summary);
        s.reports_expected = named_set.len() as u64;
        s.reports_found = found_set.len() as u64;
        s.reports_incomplete = incomplete;
    }
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

fn collect_json(dir: &Path, out: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_json(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.insert(p);
        }
    }
}

/// The estate: governed registries over two subscriptions, ungoverned ones (another subscription,
/// and `legacy*` names the scope excludes), each with 0-4 connections in every state.
fn build_estate(
    config: &SoakConfig,
    fixtures: &Fixtures,
    rng: &mut StdRng,
) -> (
    Value,
    Vec<RegistryInfo>,
    HashMap<String, Expect>,
    BTreeMap<String, u64>,
) {
    let mut regs = Vec::new();
    let mut infos = Vec::new();
    let mut oracle = HashMap::new();
    let mut at_start = BTreeMap::new();
    let total = config.registries + config.ungoverned;
    for i in 0..total {
        let governed = i < config.registries;
        let (sub, name) = if governed {
            (GOVERNED_SUBS[i % 2], format!("acrsoak{i:05}"))
        } else if i % 2 == 0 {
            (UNGOVERNED_SUB, format!("acrelse{i:05}"))
        } else {
            (GOVERNED_SUBS[0], format!("legacy{i:05}"))
        };
        let rg = format!("rg-soak-{}", i % 7);
        let id = format!(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}"
        );
        let mut conns = Vec::new();
        for j in 0..rng.random_range(0..=4u32) {
            let (esub, tag) = match rng.random_range(0..3u32) {
                0 => (SUB_A, "a"),
                1 => (SUB_Q, "q"),
                _ => (SUB_O, "o"),
            };
            let status = match rng.random_range(0..10u32) {
                0..=4 => "Pending",
                5..=6 => "Approved",
                7..=8 => "Rejected",
                _ => "Disconnected",
            };
            let pe = format!(
                "/subscriptions/{esub}/resourceGroups/net-{tag}/providers/Microsoft.Network/privateEndpoints/pe-{tag}-{i}-{j}"
            );
            let cname = format!("pe-{tag}-{i}-{j}.{j:02x}{i:04x}");
            conns.push(fixtures.connection(&id, &cname, &pe, status));
            let want = match (governed, status, tag) {
                (true, "Pending", "a") => Want::Approve,
                (true, "Pending", "q") => Want::Reject,
                _ => Want::Unchanged,
            };
            oracle.insert(
                format!("{id}/privateEndpointConnections/{cname}").to_ascii_lowercase(),
                Expect {
                    initial: status.to_string(),
                    want,
                },
            );
            bump(&mut at_start, status);
        }
        regs.push(fixtures.registry(&id, &name, conns));
        infos.push(RegistryInfo {
            id,
            subscription: sub.to_string(),
            governed,
        });
    }
    (json!({"registries": regs}), infos, oracle, at_start)
}

/// Runs the soak. `Err` only when it cannot be set up; invariant breaches are in
/// `Summary::violations`.
pub async fn run(config: SoakConfig) -> Result<Summary, String> {
    let fixtures = Fixtures::load()?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let (estate, registries, oracle, at_start) = build_estate(&config, &fixtures, &mut rng);

    let sim = Sandbox::start(
        estate,
        SimOptions {
            retry_after_secs: 0,
            lro_polls: 1,
            page_size: 50,
            ..SimOptions::default()
        },
    )
    .await
    .map_err(|e| format!("the sandbox did not start: {e}"))?;

    let (reports_root, temp) = match &config.reports_dir {
        Some(d) => (d.clone(), None),
        None => {
            let d = std::env::temp_dir().join(format!("linkguard-soak-{}", uuid::Uuid::new_v4()));
            (d.clone(), Some(d))
        }
    };
    std::fs::create_dir_all(&reports_root)
        .map_err(|e| format!("cannot create {}: {e}", reports_root.display()))?;

    let arm = ArmClient::new(
        Arc::new(StaticTokenCredential::new("soak-token")),
        ArmClientOptions {
            endpoint: sim.endpoint().to_string(),
            // Few retries, so some invocations fail under faults and Event Grid's redelivery (and
            // the timer's next run) must make up for them.
            retry: RetrySettings {
                max_retries: 2,
                initial_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(500),
                total_deadline: Duration::from_secs(15),
                rate_limit_pause: Duration::from_millis(50),
            },
            lro: LroSettings {
                poll_interval: Duration::from_millis(20),
                max_poll_interval: Duration::from_millis(500),
                max_wait: Duration::from_secs(15),
            },
            ..ArmClientOptions::default()
        },
    )
    .map_err(|e| format!("ARM client: {e}"))?;
    let policy = Policy::parse("soak-policy.toml", &config.policy)
        .map_err(|e| format!("the soak policy is invalid: {e}"))?;
    let topics = TopicAllowList::new(
        GOVERNED_SUBS
            .iter()
            .chain([UNGOVERNED_SUB, SUB_A].iter())
            .map(|s| format!("/subscriptions/{s}")),
    );
    let state = AppState::new(
        Arc::new(arm),
        PolicySource::Fixed(Arc::new(policy)),
        Arc::new(SinkStore(Arc::new(DirSink::new(&reports_root)))),
        HandlerOptions {
            topics,
            ..HandlerOptions::default()
        },
    );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|e| format!("cannot bind the handler: {e}"))?;
    let base = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| format!("handler address: {e}"))?
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async move {
        let _ = stop_rx.await;
    }));

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(180))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))?;
    let governed_count = registries.iter().filter(|r| r.governed).count();
    let soak = Arc::new(Soak {
        summary: Mutex::new(Summary {
            seed: config.seed,
            registries_governed: governed_count,
            registries_ungoverned: registries.len() - governed_count,
            connections_at_start: at_start,
            ..Summary::default()
        }),
        config: config.clone(),
        fixtures,
        sandbox: sim.handle(),
        http,
        base,
        registries,
        reports_root: reports_root.clone(),
        oracle: Mutex::new(oracle),
        writes: Mutex::new(HashMap::new()),
        queue: Mutex::new(Vec::new()),
        rng: Mutex::new(StdRng::seed_from_u64(config.seed ^ 0x5eed)),
        named_reports: Mutex::new(BTreeSet::new()),
        generating: AtomicBool::new(true),
        checking: AtomicBool::new(true),
        event_seq: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
    });

    let started = Instant::now();
    let checker = tokio::spawn(Arc::clone(&soak).check_loop());
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(Arc::clone(&soak).fault_loop());
    tasks.spawn(Arc::clone(&soak).add_loop());
    tasks.spawn(Arc::clone(&soak).timer_loop());
    tasks.spawn(Arc::clone(&soak).manual_loop());
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..config.workers.max(1) {
        workers.spawn(Arc::clone(&soak).delivery_worker());
    }
    let progress = {
        let soak = Arc::clone(&soak);
        tokio::spawn(async move {
            if !soak.config.progress {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let s = lock(&soak.summary).clone();
                eprintln!(
                    "soak: {:>4.0}s added {} events {} deliveries {} timer {} manual {} writes {}/{} queue {} violations {}",
                    started.elapsed().as_secs_f64(),
                    s.connections_added,
                    s.events_generated,
                    s.deliveries,
                    s.timer_audits,
                    s.manual_audits,
                    s.writes_effective,
                    s.writes_total,
                    lock(&soak.queue).len(),
                    s.violations_total
                );
            }
        })
    };

    tokio::time::sleep(config.duration).await;
    // Stop generating: faults off, generators and audits end; the queue drains without faults.
    soak.generating.store(false, Ordering::SeqCst);
    while tasks.join_next().await.is_some() {}
    soak.sandbox.set_faults(FaultSpec::none());
    let drain_started = Instant::now();
    let drained = tokio::time::timeout(Duration::from_secs(120), async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        soak.violation(
            "not-converged",
            format!(
                "the delivery queue did not drain within 120 s after the faults stopped ({} left)",
                lock(&soak.queue).len()
            ),
        );
        workers.abort_all();
    }
    let drain_seconds = drain_started.elapsed().as_secs_f64();
    // Operations a client gave up on finish by themselves; let them.
    tokio::time::sleep(Duration::from_millis(600)).await;

    // The final audit converges everything; a second one then has nothing to write.
    let (status, path) = soak.timer_audit().await;
    if status != 200 {
        soak.violation(
            "not-converged",
            format!("the final ScheduledAudit answered {status}"),
        );
    }
    match path.map(std::fs::read_to_string) {
        Some(Ok(text)) => {
            let r: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if r["complete"] != true {
                soak.violation(
                    "not-converged",
                    format!("the final audit's report is not complete: {}", r["errors"]),
                );
            }
            let failed = r["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["outcome"] == "failed")
                .count();
            if failed > 0 {
                soak.violation(
                    "not-converged",
                    format!("the final audit has {failed} failed actions"),
                );
            }
        }
        other => soak.violation(
            "not-converged",
            format!("the final audit's report: {other:?}"),
        ),
    }
    let writes_before = lock(&soak.summary).writes_total;
    tokio::time::sleep(Duration::from_millis(600)).await;
    soak.checking.store(false, Ordering::SeqCst);
    let _ = checker.await;
    let settled = lock(&soak.summary).writes_total;
    let mut last_total = soak.sandbox.requests().total;
    let (status, _) = soak.timer_audit().await;
    soak.scan_requests(&mut last_total);
    let after = lock(&soak.summary).writes_total;
    if status != 200 || after != settled {
        soak.violation("not-converged", format!(
            "a second audit after convergence answered {status} and wrote {} times (wrote {} times while settling)",
            after - settled,
            settled - writes_before
        ));
    }
    let final_counts = soak.scan_estate(true);
    soak.check_writes_final();
    soak.check_reports();
    progress.abort();

    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
    let stats = soak.sandbox.requests();
    sim.shutdown().await;
    if let Some(t) = temp {
        let _ = std::fs::remove_dir_all(t);
    }
    let mut summary = lock(&soak.summary).clone();
    summary.seconds = started.elapsed().as_secs_f64();
    summary.drain_seconds = drain_seconds;
    summary.faults_injected = stats.faults.clone();
    summary.arm_requests = stats.total;
    summary.arm_by_status = stats.by_status.clone();
    summary.final_connections = final_counts;
    Ok(summary)
}
