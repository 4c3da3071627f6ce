//! Shared setup of the fan-out tests: an estate of many subscriptions built from the real
//! RegistryGet fixture body, the sandbox, Azurite, a raw Queue REST client (independent of the
//! production client, to check what is really on the queue), and a fake Functions host that
//! delivers queue messages to the handler the way the host does.
#![allow(dead_code)]

pub mod azurite;
#[path = "../engine_support/mod.rs"]
pub mod engine_support;
use engine_support::support_report;

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

pub use azurite::Azurite;

/// Endpoints of this subscription are approved by [`policy_text`].
pub const PLATFORM: &str = "99999999-9999-4999-8999-999999999999";
/// In the policy's scope but unknown to the sandbox: every ARM call on it answers 403.
pub const FORBIDDEN: &str = "fbfbfbfb-0000-4000-8000-00000000fbfb";

/// The `i`-th subscription of the estate (a GUID).
pub fn sub(i: usize) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", i + 1, i + 1)
}

pub fn subs(n: usize) -> Vec<String> {
    (0..n).map(sub).collect()
}

/// One Premium registry per subscription, each with one Pending connection from a platform
/// endpoint (approved by the policy).
pub fn estate(n: usize) -> Value {
    let regs: Vec<Value> = (0..n)
        .map(|i| {
            let s = sub(i);
            engine_support::registry(
                &s,
                &format!("acr{i:03}"),
                &[(
                    "pe-platform.1",
                    &engine_support::endpoint_id(PLATFORM, &format!("pe-{i}")),
                    "Pending",
                )],
            )
        })
        .collect();
    json!({"registries": regs})
}

pub fn connection_id(i: usize) -> String {
    format!(
        "{}/privateEndpointConnections/pe-platform.1",
        engine_support::registry_id(&sub(i), &format!("acr{i:03}"))
    )
}

/// Approves platform endpoints; `scope` (when given) lists the governed subscriptions.
pub fn policy_text(scope: Option<&[String]>) -> String {
    let scope = match scope {
        Some(subs) => format!(
            "[scope]\nsubscriptions = [{}]\n",
            subs.iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    };
    format!(
        "version = 1\n{scope}\n[[connections.rules]]\nname = \"platform\"\naction = \"approve\"\nmatch.subscriptions = [\"{PLATFORM}\"]\n"
    )
}

// ---- raw Queue REST (account SAS), independent of linkguard's queue client ------------------

pub struct RawQueue {
    http: reqwest::Client,
    endpoint: String,
    sas: String,
}

#[derive(Clone, Debug)]
pub struct RawMessage {
    pub id: String,
    pub pop_receipt: String,
    pub dequeue_count: u32,
    /// As stored (base64 for linkguard's messages).
    pub text: String,
}

impl RawMessage {
    /// The text as the Functions host hands it over (base64-decoded, `messageEncoding: base64`).
    pub fn decoded(&self) -> String {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.text)
            .expect("linkguard's messages are base64");
        String::from_utf8(bytes).expect("UTF-8 message")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.decoded()).expect("the message is JSON")
    }
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

impl RawQueue {
    pub fn new(azurite: &Azurite) -> Self {
        Self {
            http: reqwest::Client::new(),
            endpoint: azurite.queue_endpoint(),
            sas: azurite.account_sas("q", "sco", "rwdlacup"),
        }
    }

    fn url(&self, path: &str, query: &str) -> String {
        let sep = if query.is_empty() { "" } else { "&" };
        format!("{}/{path}?{query}{sep}{}", self.endpoint, self.sas)
    }

    fn parse(xml: &str) -> Vec<RawMessage> {
        between(xml, "<QueueMessage>", "</QueueMessage>")
            .into_iter()
            .map(|m| RawMessage {
                id: between(m, "<MessageId>", "</MessageId>")
                    .first()
                    .map(|s| unescape(s))
                    .unwrap_or_default(),
                pop_receipt: between(m, "<PopReceipt>", "</PopReceipt>")
                    .first()
                    .map(|s| unescape(s))
                    .unwrap_or_default(),
                dequeue_count: between(m, "<DequeueCount>", "</DequeueCount>")
                    .first()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                text: between(m, "<MessageText>", "</MessageText>")
                    .first()
                    .map(|s| unescape(s))
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Peek Messages: up to 32, no side effect.
    pub async fn peek(&self, queue: &str) -> Vec<RawMessage> {
        let rsp = self
            .http
            .get(self.url(
                &format!("{queue}/messages"),
                "peekonly=true&numofmessages=32",
            ))
            .send()
            .await
            .unwrap();
        if rsp.status() == 404 {
            return Vec::new();
        }
        assert!(rsp.status().is_success(), "peek {queue}: {}", rsp.status());
        Self::parse(&rsp.text().await.unwrap())
    }

    /// `x-ms-approximate-messages-count` (visible or not).
    pub async fn count(&self, queue: &str) -> u64 {
        let rsp = self
            .http
            .get(self.url(queue, "comp=metadata"))
            .send()
            .await
            .unwrap();
        if rsp.status() == 404 {
            return 0;
        }
        assert!(
            rsp.status().is_success(),
            "metadata {queue}: {}",
            rsp.status()
        );
        rsp.headers()["x-ms-approximate-messages-count"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Get Messages, invisible to others for `visibility`.
    pub async fn receive(&self, queue: &str, max: u32, visibility: Duration) -> Vec<RawMessage> {
        let rsp = self
            .http
            .get(self.url(
                &format!("{queue}/messages"),
                &format!(
                    "numofmessages={max}&visibilitytimeout={}",
                    visibility.as_secs()
                ),
            ))
            .send()
            .await
            .unwrap();
        assert!(
            rsp.status().is_success(),
            "receive {queue}: {}",
            rsp.status()
        );
        Self::parse(&rsp.text().await.unwrap())
    }

    pub async fn delete(&self, queue: &str, m: &RawMessage) {
        let pop =
            url::form_urlencoded::byte_serialize(m.pop_receipt.as_bytes()).collect::<String>();
        let rsp = self
            .http
            .delete(self.url(
                &format!("{queue}/messages/{}", m.id),
                &format!("popreceipt={pop}"),
            ))
            .send()
            .await
            .unwrap();
        assert!(rsp.status().is_success(), "delete: {}", rsp.status());
    }

    /// Update Message: visible again at once (what the host's retry amounts to, minus the wait).
    pub async fn release(&self, queue: &str, m: &RawMessage) {
        let pop =
            url::form_urlencoded::byte_serialize(m.pop_receipt.as_bytes()).collect::<String>();
        let rsp = self
            .http
            .put(self.url(
                &format!("{queue}/messages/{}", m.id),
                &format!("popreceipt={pop}&visibilitytimeout=0"),
            ))
            .header("content-length", "0")
            .send()
            .await
            .unwrap();
        assert!(rsp.status().is_success(), "update: {}", rsp.status());
    }

    pub async fn create(&self, queue: &str) {
        let rsp = self
            .http
            .put(self.url(queue, ""))
            .header("content-length", "0")
            .send()
            .await
            .unwrap();
        assert!(
            rsp.status().is_success(),
            "create {queue}: {}",
            rsp.status()
        );
    }

    /// Put Message with `text` as is.
    pub async fn send(&self, queue: &str, text: &str) {
        let body = format!("<QueueMessage><MessageText>{text}</MessageText></QueueMessage>");
        let rsp = self
            .http
            .post(self.url(&format!("{queue}/messages"), ""))
            .header("content-type", "application/xml")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            rsp.status().is_success(),
            "send to {queue}: {}",
            rsp.status()
        );
    }
}

// ---- raw blob reads (account SAS) -----------------------------------------------------------

pub struct RawBlobs {
    http: reqwest::Client,
    container_url: String,
    sas: String,
}

impl RawBlobs {
    pub fn new(azurite: &Azurite, container: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            container_url: format!("{}/{container}", azurite.blob_endpoint()),
            sas: azurite.account_sas("b", "sco", "rl"),
        }
    }

    /// The blob's bytes and ETag; `None` when absent.
    pub async fn get(&self, name: &str) -> Option<(Vec<u8>, String)> {
        let rsp = self
            .http
            .get(format!("{}/{name}?{}", self.container_url, self.sas))
            .send()
            .await
            .unwrap();
        if rsp.status() == 404 {
            return None;
        }
        assert!(rsp.status().is_success(), "get {name}: {}", rsp.status());
        let etag = rsp.headers()["etag"].to_str().unwrap().to_string();
        Some((rsp.bytes().await.unwrap().to_vec(), etag))
    }

    pub async fn json(&self, name: &str) -> Value {
        let (bytes, _) = self
            .get(name)
            .await
            .unwrap_or_else(|| panic!("{name} is not stored"));
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Blob names under `prefix`.
    pub async fn list(&self, prefix: &str) -> Vec<String> {
        let rsp = self
            .http
            .get(format!(
                "{}?restype=container&comp=list&prefix={prefix}&{}",
                self.container_url, self.sas
            ))
            .send()
            .await
            .unwrap();
        if rsp.status() == 404 {
            return Vec::new();
        }
        assert!(rsp.status().is_success(), "list: {}", rsp.status());
        let xml = rsp.text().await.unwrap();
        between(&xml, "<Name>", "</Name>")
            .into_iter()
            .map(unescape)
            .collect()
    }
}

/// Checks one stored JSON document: a report (`linkguard.report/v1`) must validate against
/// schemas/report.schema.json; anything else must be one of the fan-out's own documents.
/// Returns whether it was a report.
pub fn check_stored_document(name: &str, doc: &Value) -> bool {
    let schema = doc["schema"].as_str().unwrap_or_default();
    if schema == "linkguard.report/v1" {
        if let Err(errors) = support_report::schema::validate(doc) {
            panic!(
                "{name} violates schemas/report.schema.json:\n{}",
                errors.join("\n")
            );
        }
        return true;
    }
    assert!(
        schema.starts_with("linkguard.fanout."),
        "{name}: neither a report nor a fan-out document (schema {schema:?})"
    );
    false
}

/// Every report file under a reports directory validated; returns how many there were.
pub fn assert_dir_reports_valid(dir: &std::path::Path) -> usize {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files
        .iter()
        .filter(|p| {
            let doc: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            check_stored_document(&p.display().to_string(), &doc)
        })
        .count()
}

impl RawBlobs {
    /// Every report blob of the container validated; returns how many there were.
    pub async fn assert_reports_valid(&self) -> usize {
        let mut reports = 0;
        for name in self.list("").await {
            if name.ends_with(".json") && check_stored_document(&name, &self.json(&name).await) {
                reports += 1;
            }
        }
        reports
    }
}

// ---- the fake Functions host ----------------------------------------------------------------

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/functions")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (../shared must sit beside the repo)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// A timer invocation: the real capture, as the host sends it to `ScheduledAudit`.
pub fn timer_invocation() -> Value {
    let mut v = fixture("timer-invocation.json");
    v["Metadata"]["sys"]["MethodName"] = json!("ScheduledAudit");
    v
}

/// A queue invocation shaped like the real capture (queue-invocation-azure.json): the message
/// text JSON-encoded into a string (double-encoded), `Id` and `PopReceipt` double-encoded,
/// `DequeueCount` as a string.
pub fn queue_invocation(m: &RawMessage) -> Value {
    let mut v = fixture("queue-invocation-azure.json");
    let text = m.decoded();
    v["Data"] = json!({"message": serde_json::to_string(&text).unwrap()});
    v["Metadata"]["DequeueCount"] = json!(m.dequeue_count.to_string());
    v["Metadata"]["Id"] = json!(serde_json::to_string(&m.id).unwrap());
    v["Metadata"]["PopReceipt"] = json!(serde_json::to_string(&m.pop_receipt).unwrap());
    v["Metadata"]["sys"]["MethodName"] = json!("SubscriptionAudit");
    v
}

pub struct FakeHost {
    http: reqwest::Client,
    base: String,
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn logs(&self) -> String {
        self.body["Logs"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }
    pub fn error_code(&self) -> Option<&str> {
        self.body["Error"]["code"].as_str()
    }
}

impl FakeHost {
    pub fn new(addr: std::net::SocketAddr) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
        }
    }

    pub async fn invoke(&self, function: &str, body: &Value) -> Answer {
        let rsp = self
            .http
            .post(format!("{}/{function}", self.base))
            .header("content-type", "application/json")
            .header(
                "x-azure-functions-invocationid",
                uuid::Uuid::new_v4().to_string(),
            )
            .header("user-agent", "Azure-Functions-Host/4.1037.0.0")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = rsp.status().as_u16();
        let ct = rsp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "the host needs JSON back, got {ct:?}"
        );
        let body: Value = serde_json::from_slice(&rsp.bytes().await.unwrap()).unwrap();
        Answer { status, body }
    }

    /// Delivers every message of `queue` to `SubscriptionAudit` until the queue is empty, as the
    /// host's queue listener does: success deletes the message; failure makes it visible again,
    /// and a failure on delivery `max_dequeue_count` moves it to `<queue>-poison`. Returns every
    /// (message JSON, dequeue count, answer).
    pub async fn drain(
        &self,
        raw: &RawQueue,
        queue: &str,
        max_dequeue_count: u32,
    ) -> Vec<(Value, u32, Answer)> {
        let mut seen = Vec::new();
        let poison = format!("{queue}-poison");
        for _round in 0..200 {
            let batch = raw.receive(queue, 4, Duration::from_secs(120)).await;
            if batch.is_empty() {
                if raw.count(queue).await == 0 {
                    return seen;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            // The host runs a batch concurrently (host.json batchSize 4).
            let bodies: Vec<Value> = batch.iter().map(queue_invocation).collect();
            let answers = futures::future::join_all(
                bodies.iter().map(|b| self.invoke("SubscriptionAudit", b)),
            )
            .await;
            for (m, answer) in batch.into_iter().zip(answers) {
                if (200..300).contains(&answer.status) {
                    raw.delete(queue, &m).await;
                } else if m.dequeue_count >= max_dequeue_count {
                    raw.create(&poison).await;
                    raw.send(&poison, &m.text).await;
                    raw.delete(queue, &m).await;
                } else {
                    raw.release(queue, &m).await;
                }
                seen.push((m.json(), m.dequeue_count, answer));
            }
        }
        panic!("the queue {queue} did not drain");
    }
}
