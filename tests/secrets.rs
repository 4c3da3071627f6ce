//! No token, webhook secret, account key or SAS signature ever reaches a log, an answer or a report
//! (issue 8, SECURITY.md "Secrets"). The real binaries run with distinctive secrets, at
//! `LINKGUARD_LOG=trace`: `linkguard sim --token`, `linkguard serve` (every function, the raw webhook,
//! reports to Azurite through a connection string and through a SAS URL, both refused and accepted,
//! and to a directory), and `linkguard audit` (reports refused by storage, a token ARM refuses,
//! malformed settings). Everything they print, every answer and every report file (in the directory
//! and in Azurite) is scanned, and every JSON report is checked against the report schema.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

#[path = "support_azurite/mod.rs"]
mod support_azurite;
#[path = "support_report/mod.rs"]
mod support_report;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use support_azurite::Azurite;

const SUB: &str = "11111111-1111-1111-1111-111111111111";
const ACRPROD01: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/acrprod01";
const PENDING_CONN: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/acrprod01/privateEndpointConnections/pe-aks-weu.1a2b";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shared(rel: &str) -> Value {
    let path = repo().join("../shared/fixtures").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (../shared must sit beside the repo)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn random_b64(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes.div_ceil(16))
        .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
        .take(bytes)
        .collect();
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The secrets of one run, each distinctive, and the forms they could leak in.
struct Secrets {
    token: String,
    wrong_token: String,
    webhook: String,
    account_key: String,
    sig: String,
    /// Azurite's valid SAS (its signature is a secret too).
    valid_sas: String,
}

impl Secrets {
    fn new(azurite: &Azurite) -> Self {
        Self {
            token: format!("lgtoken{}", uuid::Uuid::new_v4().simple()),
            wrong_token: format!("lgwrongtoken{}", uuid::Uuid::new_v4().simple()),
            webhook: format!("lgwebhook{}", uuid::Uuid::new_v4().simple()),
            account_key: random_b64(64),
            sig: random_b64(32),
            valid_sas: azurite.account_sas("b", "sco", "rwdlac"),
        }
    }

    /// Every string that must never appear: each secret as is, percent-encoded, and its first 16
    /// characters (a truncated leak is still a leak). The well-known Azurite key too.
    fn forbidden(&self) -> Vec<String> {
        let valid_sig = self
            .valid_sas
            .split('&')
            .find_map(|p| p.strip_prefix("sig="))
            .unwrap()
            .to_string();
        let decoded_sig = percent_encoding::percent_decode_str(&valid_sig)
            .decode_utf8()
            .unwrap()
            .into_owned();
        let mut out = Vec::new();
        for s in [
            &self.token,
            &self.wrong_token,
            &self.webhook,
            &self.account_key,
            &self.sig,
            &decoded_sig,
            &support_azurite::ACCOUNT_KEY.to_string(),
        ] {
            out.push(s.clone());
            out.push(url_encode(s));
            out.push(s.chars().take(16).collect());
        }
        out.push(valid_sig);
        out.sort();
        out.dedup();
        out
    }
}

/// Case-insensitive: a lower-cased secret is still a leak.
fn assert_clean(what: &str, text: &str, secrets: &Secrets) {
    let lower = text.to_ascii_lowercase();
    for s in secrets.forbidden() {
        if let Some(at) = lower.find(&s.to_ascii_lowercase()) {
            let from = at.saturating_sub(200);
            let to = (at + s.len() + 100).min(text.len());
            panic!(
                "{what} leaks a secret (`{s}`): …{}…",
                text.get(from..to).unwrap_or(text)
            );
        }
    }
}

/// A child whose stdout and stderr are collected; killed when dropped.
struct Captured {
    child: Child,
    out: Arc<Mutex<String>>,
}

impl Captured {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stream);
                let mut line = String::new();
                while lines.read_line(&mut line).unwrap_or(0) > 0 {
                    out.lock().unwrap().push_str(&line);
                    line.clear();
                }
            });
        }
        Self { child, out }
    }

    fn text(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Stops the process and returns everything it printed.
    fn finish(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        self.text()
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn linkguard() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_linkguard"));
    cmd.env("LINKGUARD_LOG", "trace").env("RUST_LOG", "trace");
    cmd
}

fn start_sim(secrets: &Secrets) -> (Captured, String) {
    let mut cmd = linkguard();
    cmd.args([
        "sim",
        "--estate",
        repo().join("examples/estate.json").to_str().unwrap(),
        "--port",
        "0",
        "--retry-after",
        "0",
        "--token",
        &secrets.token,
    ]);
    let sim = Captured::spawn(cmd);
    let started = Instant::now();
    loop {
        if let Some(line) = sim.text().lines().find(|l| l.contains("\"endpoint\"")) {
            let ready: Value = serde_json::from_str(line).unwrap();
            return (sim, ready["endpoint"].as_str().unwrap().to_string());
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the sandbox did not start: {}",
            sim.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> u16 {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn event_invocation(id: &str) -> Value {
    let mut ev =
        shared("eventgrid/docs.event-schema-subscriptions.ResourceWriteSuccess.json")[0].clone();
    let op = "Microsoft.ContainerRegistry/registries/privateEndpointConnections/write";
    ev["id"] = json!(id);
    ev["topic"] = json!(format!("/subscriptions/{SUB}"));
    ev["subject"] = json!(PENDING_CONN);
    ev["data"]["resourceUri"] = json!(PENDING_CONN);
    ev["data"]["operationName"] = json!(op);
    ev["data"]["authorization"]["scope"] = json!(PENDING_CONN);
    ev["data"]["authorization"]["action"] = json!(op);
    let mut inv = shared("functions/eventgrid-invocation.json");
    inv["Data"].as_object_mut().unwrap().remove("event");
    inv["Metadata"]["data"] = ev["data"].clone();
    inv["Data"]["eventGridEvent"] = ev;
    inv
}

/// Runs `serve` with the secrets and `reports`, drives every function and the raw webhook, and
/// returns everything it printed and answered.
async fn serve_session(sim: &str, secrets: &Secrets, reports: &str, label: &str) -> String {
    let port = free_port();
    let mut cmd = linkguard();
    cmd.arg("serve")
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("LINKGUARD_POLICY", repo().join("examples/policy.toml"))
        .env("LINKGUARD_ARM_ENDPOINT", sim)
        .env("LINKGUARD_CREDENTIAL", "static")
        .env("LINKGUARD_STATIC_TOKEN", &secrets.token)
        .env("LINKGUARD_WEBHOOK_SECRET", &secrets.webhook)
        .env("LINKGUARD_REPORTS", reports)
        .env("LINKGUARD_EVENT_TOPICS", format!("/subscriptions/{SUB}"));
    let serve = Captured::spawn(cmd);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http.get(format!("{base}/")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{label}: serve did not start: {}",
            serve.text()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut answers = String::new();
    let post = |path: String, body: Value, headers: Vec<(&'static str, String)>| {
        let mut req = http.post(format!("{base}{path}")).body(body.to_string());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req
    };
    let mut manual = shared("functions/http-invocation-local-admin-key.json");
    manual["Data"]["req"]["Body"] = json!(json!({"registry": ACRPROD01}).to_string());
    let validation =
        shared("eventgrid/docs.webhook-event-delivery.SubscriptionValidationEvent.json");
    let notification =
        event_invocation(&format!("evt-{label}-webhook"))["Data"]["eventGridEvent"].clone();
    let requests = vec![
        post(
            "/ConnectionEvents".into(),
            event_invocation(&format!("evt-{label}")),
            vec![],
        ),
        post(
            "/ScheduledAudit".into(),
            shared("functions/timer-invocation.json"),
            vec![],
        ),
        post("/ManualAudit".into(), manual, vec![]),
        post(
            format!("/webhook/eventgrid?code={}", url_encode(&secrets.webhook)),
            validation,
            vec![("aeg-event-type", "SubscriptionValidation".into())],
        ),
        post(
            "/webhook/eventgrid".into(),
            json!([notification]),
            vec![
                ("aeg-event-type", "Notification".into()),
                ("x-linkguard-secret", secrets.webhook.clone()),
            ],
        ),
        post(
            "/webhook/eventgrid?code=not-the-secret".into(),
            json!([]),
            vec![("aeg-event-type", "Notification".into())],
        ),
    ];
    for req in requests {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        answers.push_str(&format!("{status} {text}\n"));
    }
    let options = http
        .request(
            reqwest::Method::OPTIONS,
            format!(
                "{base}/webhook/eventgrid?code={}",
                url_encode(&secrets.webhook)
            ),
        )
        .header("webhook-request-origin", "eventgrid.azure.net")
        .send()
        .await
        .unwrap();
    answers.push_str(&format!("{:?}\n", options.headers()));
    let printed = serve.finish();
    assert!(
        printed.contains("TRACE") || printed.contains("DEBUG"),
        "{label}: trace logging was on: {printed:.500}"
    );
    format!("{printed}\n{answers}")
}

fn audit_session(sim: &str, token: &str, reports: &str) -> (Option<i32>, String) {
    let mut cmd = linkguard();
    cmd.args([
        "audit",
        "--policy",
        repo().join("examples/policy.toml").to_str().unwrap(),
        "--arm-endpoint",
        sim,
        "--credential",
        "static",
        "--reports",
        reports,
    ])
    .env("LINKGUARD_STATIC_TOKEN", token);
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn assert_schema_valid(what: &str, text: &str) {
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    if let Err(errors) = support_report::schema::validate(&doc) {
        panic!(
            "{what} violates schemas/report.schema.json:\n{}",
            errors.join("\n")
        );
    }
}

/// Every blob of the report container, as (name, text).
async fn blob_texts(azurite: &Azurite) -> Vec<(String, String)> {
    use futures::TryStreamExt as _;
    let sas = azurite.account_sas("b", "sco", "rl");
    let url = format!("{}/linkguard-reports?{sas}", azurite.blob_endpoint());
    let container = azure_storage_blob::BlobContainerClient::new(
        azure_core::http::Url::parse(&url).unwrap(),
        None,
        None,
    )
    .unwrap();
    let mut out = Vec::new();
    let mut pages = container.list_blobs(None).unwrap().into_pages();
    while let Some(page) = pages.try_next().await.unwrap() {
        for item in page.into_model().unwrap().blob_items {
            let name = item.name.unwrap().to_string();
            let body = container
                .blob_client(&name)
                .download(None)
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap();
            out.push((name, String::from_utf8(body.to_vec()).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_answers_or_reports() {
    let azurite = Azurite::start();
    let secrets = Secrets::new(&azurite);
    let (sim, endpoint) = start_sim(&secrets);
    let blob = azurite.blob_endpoint();
    let bad_key = format!(
        "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={blob};",
        support_azurite::ACCOUNT,
        secrets.account_key
    );
    let bad_sas = format!(
        "{blob}/linkguard-reports?sv=2025-11-05&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00%3A00%3A00Z&spr=https%2Chttp&sig={}",
        url_encode(&secrets.sig)
    );
    let good_sas = format!("{blob}/linkguard-reports?{}", secrets.valid_sas);
    let good_key = azurite.connection_string();
    let reports_dir = tempfile::tempdir().unwrap();
    let dir = reports_dir.path().display().to_string();

    // serve: storage refuses (wrong key, forged SAS), storage accepts (SAS, key), a directory.
    for (label, reports) in [
        ("bad-key", &bad_key),
        ("bad-sas", &bad_sas),
        ("good-sas", &good_sas),
        ("good-key", &good_key),
        ("dir", &dir),
    ] {
        let text = serve_session(&endpoint, &secrets, reports, label).await;
        match label {
            "bad-key" | "bad-sas" => assert!(
                text.contains("ReportNotStored"),
                "{label}: storage refused the reports: {text:.3000}"
            ),
            _ => assert!(
                text.contains("report stored: "),
                "{label}: reports stored: {text:.3000}"
            ),
        }
        assert_clean(&format!("serve with {label} reports"), &text, &secrets);
    }
    let mut files = Vec::new();
    all_files(reports_dir.path(), &mut files);
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "html")),
        "json, md and html reports written: {files:?}"
    );
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert_clean(&f.display().to_string(), &text, &secrets);
        if f.extension().is_some_and(|e| e == "json") {
            assert_schema_valid(&f.display().to_string(), &text);
        }
    }
    // The reports the good-SAS and good-key sessions stored in Azurite, read back.
    let blob_reports = blob_texts(&azurite).await;
    assert!(
        blob_reports
            .iter()
            .filter(|(n, _)| n.ends_with(".json"))
            .count()
            >= 3,
        "two runs' JSON and latest.json in Azurite: {:?}",
        blob_reports.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for (name, text) in &blob_reports {
        assert_clean(name, text, &secrets);
        if name.ends_with(".json") {
            assert_schema_valid(name, text);
        }
    }

    // audit: storage refuses, ARM refuses the token, malformed settings carrying secrets.
    for (label, token, reports, want) in [
        ("audit bad key", &secrets.token, bad_key.clone(), Some(3)),
        ("audit bad sas", &secrets.token, bad_sas.clone(), Some(3)),
        (
            "audit wrong token",
            &secrets.wrong_token,
            dir.clone(),
            Some(3),
        ),
        (
            // A colon typed for `=` (the key's `==` padding then reads as the separator).
            "audit key typo colon",
            &secrets.token,
            format!(
                "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey:{};EndpointSuffix=core.windows.net",
                secrets.account_key
            ),
            Some(2),
        ),
        (
            // A space typed for `=`: the part is not Key=Value.
            "audit key typo space",
            &secrets.token,
            format!(
                "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey {};EndpointSuffix=core.windows.net",
                secrets.account_key
            ),
            Some(2),
        ),
        (
            "audit sas below a container",
            &secrets.token,
            format!(
                "https://acct.blob.core.windows.net/reports/deeper?sv=2025-11-05&sig={}",
                url_encode(&secrets.sig)
            ),
            Some(2),
        ),
    ] {
        let (code, text) = audit_session(&endpoint, token, &reports);
        assert_eq!(code, want, "{label}: {text:.3000}");
        assert_clean(label, &text, &secrets);
    }

    assert_clean("linkguard sim", &sim.finish(), &secrets);
}
