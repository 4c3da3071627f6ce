//! `LINKGUARD_POLICY` as a blob URL (DESIGN 3.0), against Azurite: `serve` reads the policy from
//! the blob (SAS in the URL) at start and per invocation; an unreadable or invalid policy blob
//! stops `serve` at start (exit 2) and, after start, fails the invocation closed with the report
//! saying why, exactly as a policy file does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod functions_support;
#[path = "support_azurite/mod.rs"]
mod support_azurite;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use functions_support::*;
use linkguard::host::functions::state::BlobPolicy;
use linkguard::host::functions::{PolicySource, ServeArgs, run_with};
use sha2::Digest;
use support_azurite::Azurite;
use tokio::sync::oneshot;

const CONTAINER: &str = "linkguard-config";

/// Creates the container (once) and writes `name` with `text`, through the blob REST API.
async fn put_blob(azurite: &Azurite, sas: &str, name: &str, text: &str) {
    let client = http();
    let base = azurite.blob_endpoint();
    let created = client
        .put(format!("{base}/{CONTAINER}?restype=container&{sas}"))
        .header("x-ms-version", support_azurite::SAS_VERSION)
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success() || created.status().as_u16() == 409,
        "create container: {}",
        created.status()
    );
    let put = client
        .put(format!("{base}/{CONTAINER}/{name}?{sas}"))
        .header("x-ms-version", support_azurite::SAS_VERSION)
        .header("x-ms-blob-type", "BlockBlob")
        .body(text.to_string())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "put {name}: {}", put.status());
}

fn blob_url(azurite: &Azurite, name: &str, sas: &str) -> String {
    format!("{}/{CONTAINER}/{name}?{sas}", azurite.blob_endpoint())
}

fn free_port() -> u16 {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn lookup(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> + Send + 'static {
    let map: HashMap<&'static str, String> = pairs.into_iter().collect();
    move |k| map.get(k).cloned()
}

fn policy_text() -> String {
    std::fs::read_to_string(repo().join("examples/policy.toml")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_the_policy_from_a_blob_and_refuses_to_start_on_a_bad_one() {
    let azurite = Azurite::start();
    let sas = azurite.account_sas("b", "sco", "rwdlac");
    put_blob(&azurite, &sas, "policies/linkguard.toml", &policy_text()).await;
    put_blob(&azurite, &sas, "broken.toml", "version = 2\n").await;
    let sim = sandbox().await;
    let reports = tempfile::tempdir().unwrap();
    let settings = |port: u16, policy: String| {
        lookup(vec![
            ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
            ("LINKGUARD_POLICY", policy),
            ("LINKGUARD_ARM_ENDPOINT", sim.endpoint().to_string()),
            ("LINKGUARD_CREDENTIAL", "static".into()),
            ("LINKGUARD_STATIC_TOKEN", "any".into()),
            ("LINKGUARD_REPORTS", reports.path().display().to_string()),
            ("LINKGUARD_EVENT_TOPICS", SUB_TOPIC.into()),
        ])
    };

    // Unreadable (no such blob) or invalid: exit 2 before anything listens.
    for name in ["missing.toml", "broken.toml"] {
        let port = free_port();
        let code = tokio::time::timeout(
            Duration::from_secs(30),
            run_with(
                ServeArgs::default(),
                settings(port, blob_url(&azurite, name, &sas)),
                std::future::pending::<()>(),
            ),
        )
        .await
        .expect("serve must give up on the policy quickly");
        assert_eq!(code, ExitCode::from(2), "{name}");
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    // A good policy blob: serve starts and acts on it.
    let port = free_port();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_with(
        ServeArgs::default(),
        settings(port, blob_url(&azurite, "policies/linkguard.toml", &sas)),
        async move {
            let _ = stopped.await;
        },
    ));
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while http().get(format!("{base}/")).send().await.is_err() {
        assert!(!task.is_finished(), "serve exited: policy blob not read?");
        assert!(started.elapsed() < Duration::from_secs(20), "never ready");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let inv = event_invocation(connection_write_event("evt-blob-policy", PENDING_CONN));
    let resp = http()
        .post(format!("{base}/ConnectionEvents"))
        .header("content-type", "application/json")
        .body(inv.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap()
    );
    let conn = sim.handle().connection_json(PENDING_CONN).unwrap();
    assert_eq!(
        conn["properties"]["privateLinkServiceConnectionState"]["status"],
        "Approved"
    );
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reports.path().join("latest.json")).unwrap())
            .unwrap();
    assert!(
        assert_dir_reports_valid(reports.path()) >= 2,
        "run report and latest.json, schema-valid"
    );
    let want: String = sha2::Sha256::digest(policy_text().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        latest["run"]["policy_sha256"], want,
        "the run used the policy read from the blob"
    );
    stop.send(()).unwrap();
    assert_eq!(task.await.unwrap(), ExitCode::SUCCESS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_blob_broken_after_start_fails_closed_and_the_report_says_why() {
    let azurite = Azurite::start();
    let sas = azurite.account_sas("b", "sco", "rwdlac");
    put_blob(&azurite, &sas, "linkguard.toml", &policy_text()).await;
    // No cache, so the edit is seen at once (the deployed TTL is BLOB_POLICY_TTL).
    let source = BlobPolicy::new(
        &blob_url(&azurite, "linkguard.toml", &sas),
        None,
        Duration::ZERO,
    )
    .unwrap();
    assert!(!source.shown().contains("sig="), "{}", source.shown());
    let stack = Stack::start_with(&[SUB_TOPIC], PolicySource::Blob(Arc::new(source))).await;

    put_blob(
        &azurite,
        &sas,
        "linkguard.toml",
        "version = 1\n[connections]\ndefault = \"approve-all\"\n",
    )
    .await;
    let inv = event_invocation(connection_write_event("evt-blob-bad", PENDING_CONN));
    let (status, body) = stack.server.invoke("ConnectionEvents", &inv).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["Error"]["code"], "PolicyInvalid");
    assert_eq!(
        stack.sandbox().requests().total,
        0,
        "nothing read or written"
    );

    // Deleted: unreadable is handled the same way.
    let deleted = http()
        .delete(format!(
            "{}/{CONTAINER}/linkguard.toml?{sas}",
            azurite.blob_endpoint()
        ))
        .header("x-ms-version", support_azurite::SAS_VERSION)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    let inv = event_invocation(connection_write_event("evt-blob-gone", PENDING_CONN));
    let (status, body) = stack.server.invoke("ConnectionEvents", &inv).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["Error"]["message"]
            .as_str()
            .unwrap()
            .contains("the policy blob does not exist"),
        "{body}"
    );
    assert_eq!(stack.sandbox().requests().total, 0);

    let reports = stack.stored_reports();
    assert_eq!(reports.len(), 2);
    for r in &reports {
        support_report::schema::validate(r).unwrap();
        assert_eq!(r["complete"], false);
        assert_eq!(r["errors"][0]["scope"], "policy");
    }
    let messages: Vec<&str> = reports
        .iter()
        .map(|r| r["errors"][0]["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("/linkguard-config/linkguard.toml:3:")),
        "the validation error names the line: {messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("does not exist")),
        "{messages:?}"
    );
    assert!(
        messages.iter().all(|m| !m.contains("sig=")),
        "no SAS in reports: {messages:?}"
    );
    // Fixed again: the next delivery acts.
    put_blob(&azurite, &sas, "linkguard.toml", &policy_text()).await;
    let (status, body) = stack.server.invoke("ConnectionEvents", &inv).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.connection_status(PENDING_CONN), "Approved");
}

/// The Lambda host uses the same policy source: a blob URL passes `prepare`, `build_state` wires it,
/// and an audit runs under the policy read from the blob; a broken blob fails the run closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_host_reads_the_same_policy_blob() {
    use linkguard::host::lambda::cli::{LambdaArgs, build_state, prepare};
    use linkguard::host::lambda::run::{Scope, run};
    let azurite = Azurite::start();
    let sas = azurite.account_sas("b", "sco", "rwdlac");
    put_blob(&azurite, &sas, "lambda.toml", &policy_text()).await;
    let sim = sandbox().await;
    let reports = tempfile::tempdir().unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9".to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "linkguard".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "1".into()),
        ("LINKGUARD_WEBHOOK_SECRET", "0123456789abcdef0123".into()),
        ("LINKGUARD_POLICY", blob_url(&azurite, "lambda.toml", &sas)),
        ("LINKGUARD_ARM_ENDPOINT", sim.endpoint().to_string()),
        ("LINKGUARD_CREDENTIAL", "static".into()),
        ("LINKGUARD_STATIC_TOKEN", "any".into()),
        ("LINKGUARD_REPORTS", reports.path().display().to_string()),
    ]);
    let lookup = |k: &str| env.get(k).cloned();
    let prepared = prepare(&LambdaArgs::default(), lookup).unwrap();
    let (state, _) = build_state(&prepared, &lookup).unwrap();
    let mut log = linkguard::host::functions::log::InvocationLog::new();
    let summary = run(
        &state,
        Scope::Audit,
        linkguard::report::Trigger::Timer,
        false,
        &mut log,
    )
    .await
    .unwrap_or_else(|e| panic!("the audit must run under the blob policy: {e:?}"));
    assert_eq!(stack_status(&sim), "Approved", "{summary}");

    put_blob(&azurite, &sas, "lambda.toml", "version = 2\n").await;
    // The deployed source caches the policy for 30 s; a fresh state reads the blob at once.
    let (state, _) = build_state(&prepared, &lookup).unwrap();
    let failure = state.app.policy_source().load().await.unwrap_err();
    assert!(
        failure.message.contains("/lambda.toml:1:") && !failure.message.contains("sig="),
        "{}",
        failure.message
    );
    let mut log = linkguard::host::functions::log::InvocationLog::new();
    assert!(
        run(
            &state,
            Scope::Audit,
            linkguard::report::Trigger::Timer,
            false,
            &mut log
        )
        .await
        .is_err(),
        "fail closed"
    );
    assert!(assert_dir_reports_valid(reports.path()) >= 2);
}

fn stack_status(sim: &linkguard::sim::RunningSandbox) -> String {
    sim.handle().connection_json(PENDING_CONN).unwrap()["properties"]
        ["privateLinkServiceConnectionState"]["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Stands in for the managed identity: an unsigned JWT that Azurite's `--oauth basic` accepts
/// when audience, issuer and times are right.
#[derive(Debug)]
struct FakeEntraCredential {
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl azure_core::credentials::TokenCredential for FakeEntraCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        assert_eq!(scopes, ["https://storage.azure.com/.default"]);
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let b64 = |v: serde_json::Value| azure_core::base64::encode_url_safe(v.to_string());
        let jwt = format!(
            "{}.{}.{}",
            b64(serde_json::json!({"alg": "RS256", "typ": "JWT"})),
            b64(serde_json::json!({
                "aud": "https://storage.azure.com",
                "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
                "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
                "oid": "4d3c2b1a-0f9e-8d7c-6b5a-493827160504",
                "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47"
            })),
            azure_core::base64::encode_url_safe(b"unsigned")
        );
        Ok(azure_core::credentials::AccessToken::new(
            jwt,
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

/// A policy blob URL without SAS authenticates with the host's Entra ID credential (https only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_blob_without_sas_is_read_with_the_entra_id_token() {
    let azurite = Azurite::start_https();
    let ca = reqwest::Certificate::from_pem(azurite.ca_pem().unwrap().as_bytes()).unwrap();
    let trusting = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let http_put_blob = |azurite: &Azurite, sas: &str, text: &str| {
        let req = trusting
            .put(format!(
                "{}/{CONTAINER}/linkguard.toml?{sas}",
                azurite.blob_endpoint()
            ))
            .header("x-ms-version", support_azurite::SAS_VERSION)
            .header("x-ms-blob-type", "BlockBlob")
            .body(text.to_string());
        async move { req.send().await.unwrap().status() }
    };
    // Upload with a SAS, read with the token.
    let sas = azurite.account_sas("b", "sco", "rwdlac");
    let base = azurite.blob_endpoint();
    for (url, blob) in [
        (format!("{base}/{CONTAINER}?restype=container&{sas}"), false),
        (format!("{base}/{CONTAINER}/linkguard.toml?{sas}"), true),
    ] {
        let mut req = trusting
            .put(url)
            .header("x-ms-version", support_azurite::SAS_VERSION);
        if blob {
            req = req
                .header("x-ms-blob-type", "BlockBlob")
                .body(policy_text());
        }
        let status = req.send().await.unwrap().status();
        assert!(status.is_success(), "{status}");
    }
    let credential = Arc::new(FakeEntraCredential {
        calls: std::sync::atomic::AtomicUsize::new(0),
    });
    let options = linkguard::report::sink::BlobSinkOptions {
        transport: Some(azure_core::http::Transport::new(Arc::new(trusting.clone()))),
        ..linkguard::report::sink::BlobSinkOptions::default()
    };
    let url = format!("{base}/{CONTAINER}/linkguard.toml");
    let source = PolicySource::Blob(Arc::new(
        BlobPolicy::with_options(
            &url,
            Some(credential.clone()),
            Duration::from_secs(30),
            options,
        )
        .unwrap(),
    ));
    let policy = source.load().await.unwrap();
    let want: String = sha2::Sha256::digest(policy_text().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(policy.sha256, want);
    assert_eq!(
        credential.calls.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    // Within the TTL the policy is not read again: an edit lands at the next read after it.
    let status = http_put_blob(&azurite, &sas, "version = 2\n").await;
    assert!(status.is_success(), "{status}");
    let cached = source.load().await.expect("served from the 30 s cache");
    assert_eq!(cached.sha256, want);
    // Without a credential a URL without SAS cannot be used: refused when built.
    let e = BlobPolicy::new(&url, None, Duration::ZERO).unwrap_err();
    assert!(
        e.starts_with("LINKGUARD_POLICY: ") && e.contains("token"),
        "{e}"
    );
}
