//! The Azure Blob sink against a real Azurite (npm, pinned; started by the tests on free ports).
//! Blobs are read back with an independently signed account SAS, not through the sink.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support_azurite/mod.rs"]
mod support_azurite;
#[path = "support_report/mod.rs"]
mod support_report;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::{ClientOptions, Transport, Url};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use futures::TryStreamExt as _;
use linkguard::report::sink::layout::{
    CONTENT_TYPE_HTML, CONTENT_TYPE_JSON, CONTENT_TYPE_MARKDOWN,
};
use linkguard::report::sink::{
    BlobAuth, BlobSinkOptions, BlobTarget, ObjectKind, ReportDestination, ReportSink, SinkError,
    StoredReport, WriteOutcome,
};
use linkguard::report::{Report, render};
use support_azurite::{ACCOUNT_KEY, Azurite, Ports};
use support_report::{reports, schema};

/// Short retries so failures surface in seconds.
fn quick() -> BlobSinkOptions {
    BlobSinkOptions::default().with_retries(2, Duration::from_millis(100), Duration::from_secs(3))
}

fn sink_for(setting: &str) -> Arc<dyn ReportSink> {
    ReportDestination::parse(setting)
        .unwrap()
        .into_sink(None, quick())
        .unwrap()
}

/// A reader for the container that signs with an account SAS (not the sink's Shared Key policy).
fn reader(azurite: &Azurite, container: &str) -> BlobContainerClient {
    let sas = azurite.account_sas("b", "sco", "rl");
    let url = Url::parse(&format!("{}/{container}?{sas}", azurite.blob_endpoint())).unwrap();
    BlobContainerClient::new(url, None, None).unwrap()
}

async fn read_blob(container: &BlobContainerClient, name: &str) -> (Vec<u8>, String) {
    let response = container
        .blob_client(name)
        .download(None)
        .await
        .unwrap_or_else(|e| panic!("download {name}: {e}"));
    let content_type = response.properties.content_type.clone().unwrap_or_default();
    let body = response.body.collect().await.unwrap();
    (body.to_vec(), content_type)
}

async fn list(container: &BlobContainerClient) -> Vec<String> {
    let mut names = Vec::new();
    let mut pages = container.list_blobs(None).unwrap().into_pages();
    while let Some(page) = pages.try_next().await.unwrap() {
        for item in page.into_model().unwrap().blob_items {
            names.push(item.name.unwrap().to_string());
        }
    }
    names.sort();
    names
}

async fn latest_run_id(container: &BlobContainerClient) -> String {
    let (bytes, _) = read_blob(container, "latest.json").await;
    serde_json::from_slice::<Report>(&bytes).unwrap().run.id
}

fn report(id: &str, started: &str, finished: &str) -> Report {
    reports::sample(id, started, finished, true)
}

async fn assert_stored_exactly(container: &BlobContainerClient, r: &Report, stored: &StoredReport) {
    let expected = [
        (
            ObjectKind::Json,
            render::to_json(r).into_bytes(),
            CONTENT_TYPE_JSON,
        ),
        (
            ObjectKind::Markdown,
            render::markdown::render(r).into_bytes(),
            CONTENT_TYPE_MARKDOWN,
        ),
        (
            ObjectKind::Html,
            render::html::render(r).into_bytes(),
            CONTENT_TYPE_HTML,
        ),
    ];
    for (kind, bytes, content_type) in expected {
        let object = stored.object(kind).unwrap();
        let (got, got_type) = read_blob(container, &object.name).await;
        assert!(got == bytes, "{} differs from the rendering", object.name);
        assert_eq!(got_type, content_type, "{}", object.name);
    }
}

#[tokio::test]
async fn stores_every_rendering_byte_identical_with_content_types() {
    let azurite = Azurite::start();
    let sink = sink_for(&azurite.connection_string());
    assert_eq!(
        sink.location(),
        format!("{}/linkguard-reports", azurite.blob_endpoint())
    );
    // complete: false (a registry could not be read): still written.
    let r = reports::sample(
        "20261125T100000Z-7f3a9c",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:02:13Z",
        false,
    );

    let stored = sink.store(&r).await.unwrap();
    let container = reader(&azurite, "linkguard-reports");
    assert_eq!(
        list(&container).await,
        [
            "latest.json",
            "runs/2026/11/25/20261125T100000Z-7f3a9c.html",
            "runs/2026/11/25/20261125T100000Z-7f3a9c.json",
            "runs/2026/11/25/20261125T100000Z-7f3a9c.md",
        ]
    );
    assert_stored_exactly(&container, &r, &stored).await;
    let (latest, latest_type) = read_blob(&container, "latest.json").await;
    assert_eq!(latest, render::to_json(&r).into_bytes());
    assert_eq!(latest_type, CONTENT_TYPE_JSON);
    let doc: serde_json::Value = serde_json::from_slice(&latest).unwrap();
    schema::validate(&doc).unwrap();
    assert_eq!(doc["complete"], false);

    let kinds: Vec<ObjectKind> = stored.objects.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [
            ObjectKind::Json,
            ObjectKind::Markdown,
            ObjectKind::Html,
            ObjectKind::Latest
        ]
    );
    assert!(
        stored
            .objects
            .iter()
            .all(|o| o.outcome == WriteOutcome::Created),
        "{:?}",
        stored.objects
    );
    assert_eq!(
        stored.location(ObjectKind::Json).unwrap(),
        format!(
            "{}/linkguard-reports/runs/2026/11/25/20261125T100000Z-7f3a9c.json",
            azurite.blob_endpoint()
        )
    );
}

#[tokio::test]
async fn runs_never_overwrite_each_other_and_latest_is_the_newest() {
    let azurite = Azurite::start();
    let sink = sink_for(&azurite.connection_string());
    let container = reader(&azurite, "linkguard-reports");

    // Two runs in the same second, distinct ids: both kept, latest.json names the one that finished last.
    let a = report(
        "20261125T100000Z-aaaa",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:00:40.250Z",
    );
    let b = report(
        "20261125T100000Z-bbbb",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:00:40.750Z",
    );
    sink.store(&a).await.unwrap();
    assert_eq!(latest_run_id(&container).await, a.run.id);
    let stored_b = sink.store(&b).await.unwrap();
    assert_eq!(
        stored_b.object(ObjectKind::Latest).unwrap().outcome,
        WriteOutcome::Replaced
    );
    assert_eq!(latest_run_id(&container).await, b.run.id);
    assert_eq!(list(&container).await.len(), 1 + 2 * 3);

    // The same run stored again (a retried invocation) is recognised, not rewritten.
    let again = sink.store(&b).await.unwrap();
    assert!(
        again.objects[..3]
            .iter()
            .all(|o| o.outcome == WriteOutcome::AlreadyStored),
        "{:?}",
        again.objects
    );

    // The same run id with different content is refused; the stored blob is intact.
    let mut clash = a.clone();
    clash.needs_attention.pop();
    let err = sink.store(&clash).await.unwrap_err();
    assert!(matches!(err, SinkError::AlreadyExists { .. }), "{err:?}");
    assert!(
        err.to_string().contains("20261125T100000Z-aaaa.json"),
        "{err}"
    );
    let (json_a, _) = read_blob(&container, "runs/2026/11/25/20261125T100000Z-aaaa.json").await;
    assert_eq!(json_a, render::to_json(&a).into_bytes());
    assert_eq!(
        latest_run_id(&container).await,
        b.run.id,
        "a refused store does not touch latest.json"
    );

    // An older run stored late keeps latest.json on the newer one.
    let late = report(
        "20261125T095000Z-cccc",
        "2026-11-25T09:50:00Z",
        "2026-11-25T09:51:00Z",
    );
    let stored = sink.store(&late).await.unwrap();
    assert_eq!(
        stored.object(ObjectKind::Latest).unwrap().outcome,
        WriteOutcome::KeptNewer {
            run_id: b.run.id.clone()
        }
    );
    assert_eq!(latest_run_id(&container).await, b.run.id);
    assert_eq!(list(&container).await.len(), 1 + 3 * 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_stores_leave_the_newest_run_in_latest() {
    let azurite = Azurite::start();
    let sink = sink_for(&azurite.connection_string());
    let runs: Vec<Report> = (0..8)
        .map(|i| {
            report(
                &format!("run-concurrent-{i}"),
                "2026-11-25T10:00:00Z",
                &format!("2026-11-25T10:01:0{i}Z"),
            )
        })
        .collect();
    // latest.json exists (an older run), so every store below reads it and replaces it only if it
    // still has the ETag just read (If-Match); all at once, oldest last.
    sink.store(&report(
        "run-earlier",
        "2026-11-25T09:00:00Z",
        "2026-11-25T09:01:00Z",
    ))
    .await
    .unwrap();
    let results = futures::future::join_all(runs.iter().rev().map(|r| sink.store(r))).await;
    for result in results {
        result.unwrap();
    }
    let container = reader(&azurite, "linkguard-reports");
    assert_eq!(latest_run_id(&container).await, "run-concurrent-7");
    assert_eq!(list(&container).await.len(), 1 + 9 * 3);
}

#[tokio::test]
async fn storage_down_mid_run_fails_clearly_and_the_next_store_succeeds_after_restart() {
    let mut azurite = Azurite::start();
    let ports = azurite.ports;
    let setting = azurite.connection_string();
    let sink = sink_for(&setting);
    let sas = azurite.account_sas("b", "sco", "rwdlacu");
    let sas_sink = sink_for(&format!(
        "{}/linkguard-reports?{sas}",
        azurite.blob_endpoint()
    ));
    sink.store(&report(
        "run-before-crash",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:01:00Z",
    ))
    .await
    .unwrap();

    azurite.kill();
    let down = report(
        "run-during-outage",
        "2026-11-25T10:05:00Z",
        "2026-11-25T10:06:00Z",
    );
    let started = Instant::now();
    let err = sink.store(&down).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "retries are bounded by the options, took {took:?}"
    );
    match &err {
        SinkError::Storage {
            location, status, ..
        } => {
            assert!(
                location.ends_with("/runs/2026/11/25/run-during-outage.json"),
                "{location}"
            );
            assert_eq!(*status, None, "no HTTP answer from a dead endpoint");
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("retry policy expired") && message.contains("reachable"),
        "{message}"
    );
    assert!(!message.contains(ACCOUNT_KEY), "{message}");
    // Transport errors quote the request URL; with a SAS its signature is redacted.
    let sas_message = sas_sink.store(&down).await.unwrap_err().to_string();
    let sig = sas.split("&sig=").nth(1).unwrap();
    assert!(
        sas_message.contains("sig=REDACTED") && !sas_message.contains(sig),
        "{sas_message}"
    );

    // A new Azurite on the same port (empty: in-memory); the sink recreates the container.
    let azurite = Azurite::start_on(Ports {
        blob: ports.blob,
        ..Ports::EPHEMERAL
    });
    assert_eq!(azurite.ports.blob, ports.blob);
    let stored = sink.store(&down).await.unwrap();
    let container = reader(&azurite, "linkguard-reports");
    assert_stored_exactly(&container, &down, &stored).await;
    assert_eq!(latest_run_id(&container).await, "run-during-outage");
}

#[tokio::test]
async fn sas_url_destination_and_bad_credentials_never_leak_secrets() {
    let azurite = Azurite::start();
    let sas = azurite.account_sas("b", "sco", "rwdlacu");
    let r = report("run-sas", "2026-11-25T10:00:00Z", "2026-11-25T10:01:00Z");

    let setting = format!("{}/reports-sas?{sas}", azurite.blob_endpoint());
    let sink = sink_for(&setting);
    assert!(!sink.location().contains("sig="), "{}", sink.location());
    let stored = sink.store(&r).await.unwrap();
    assert_stored_exactly(&reader(&azurite, "reports-sas"), &r, &stored).await;
    assert!(stored.objects.iter().all(|o| !o.location.contains("sig=")));

    // A signature that does not match what it claims to sign (permissions changed): a clear 403,
    // and neither the signature nor the SAS appear in the message.
    let sig = sas.split("&sig=").nth(1).unwrap().to_string();
    assert!(sas.contains("sp=rwdlacu"));
    let forged = format!(
        "{}/reports-sas?{}",
        azurite.blob_endpoint(),
        sas.replace("sp=rwdlacu", "sp=rwdlac")
    );
    let err = sink_for(&forged)
        .store(&report(
            "run-forged",
            "2026-11-25T10:00:00Z",
            "2026-11-25T10:01:00Z",
        ))
        .await
        .unwrap_err();
    let message = format!("{err} {err:?}");
    assert!(
        matches!(
            err,
            SinkError::Storage {
                status: Some(403),
                ..
            }
        ),
        "{message}"
    );
    let decoded_sig: String = url::form_urlencoded::parse(format!("sig={sig}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    assert!(
        !message.contains(&sig) && !message.contains(&decoded_sig),
        "{message}"
    );

    // A wrong account key: 403 AuthorizationFailure / AuthenticationFailed, key not shown.
    let wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    let setting = azurite.connection_string().replace(ACCOUNT_KEY, wrong_key);
    let err = sink_for(&setting).store(&r).await.unwrap_err();
    let message = format!("{err} {err:?}");
    assert!(
        matches!(
            err,
            SinkError::Storage {
                status: Some(403),
                ..
            }
        ),
        "{message}"
    );
    assert!(
        message.contains("AuthenticationFailed") || message.contains("AuthorizationFailure"),
        "{message}"
    );
    assert!(
        message.contains("check the account key or SAS"),
        "{message}"
    );
    assert!(
        !message.contains(wrong_key) && !message.contains(ACCOUNT_KEY),
        "{message}"
    );
}

#[tokio::test]
async fn use_development_storage_reaches_azurite_on_its_default_port() {
    // `UseDevelopmentStorage=true` means http://127.0.0.1:10000 (the emulator's fixed address).
    let azurite = Azurite::start_on(Ports {
        blob: 10000,
        ..Ports::EPHEMERAL
    });
    let r = report(
        "run-devstorage",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:01:00Z",
    );
    let sink = sink_for("UseDevelopmentStorage=true");
    let stored = sink.store(&r).await.unwrap();
    assert_stored_exactly(&reader(&azurite, "linkguard-reports"), &r, &stored).await;
}

/// Stands in for `ManagedIdentityCredential`: hands out an unsigned JWT that Azurite's
/// `--oauth basic` accepts when audience, issuer and times are right.
#[derive(Debug)]
struct FakeEntraCredential {
    audience: &'static str,
    calls: AtomicUsize,
    scopes: Mutex<Vec<String>>,
}

impl FakeEntraCredential {
    fn new(audience: &'static str) -> Self {
        Self {
            audience,
            calls: AtomicUsize::new(0),
            scopes: Mutex::new(Vec::new()),
        }
    }

    fn jwt(&self) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let b64 = |v: serde_json::Value| azure_core::base64::encode_url_safe(v.to_string());
        format!(
            "{}.{}.{}",
            b64(serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "linkguard-test"})),
            b64(serde_json::json!({
                "aud": self.audience,
                "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
                "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
                "oid": "4d3c2b1a-0f9e-8d7c-6b5a-493827160504",
                "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47"
            })),
            azure_core::base64::encode_url_safe(b"unsigned")
        )
    }
}

#[async_trait::async_trait]
impl TokenCredential for FakeEntraCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.scopes
            .lock()
            .unwrap()
            .extend(scopes.iter().map(|s| s.to_string()));
        Ok(AccessToken::new(
            self.jwt(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

fn trusting(azurite: &Azurite) -> Transport {
    let ca = reqwest::Certificate::from_pem(azurite.ca_pem().unwrap().as_bytes()).unwrap();
    Transport::new(Arc::new(
        reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .unwrap(),
    ))
}

#[tokio::test]
async fn entra_token_over_https_is_the_managed_identity_path() {
    let azurite = Azurite::start_https();
    let setting = format!("{}/reports-mi", azurite.blob_endpoint());
    assert!(setting.starts_with("https://127.0.0.1:"));
    let destination = ReportDestination::parse(&setting).unwrap();
    assert!(matches!(
        &destination,
        ReportDestination::Blob(BlobTarget {
            auth: BlobAuth::Token,
            ..
        })
    ));

    let credential = Arc::new(FakeEntraCredential::new("https://storage.azure.com"));
    let options = BlobSinkOptions {
        transport: Some(trusting(&azurite)),
        ..quick()
    };
    let sink = destination
        .into_sink(Some(credential.clone()), options)
        .unwrap();
    let r = report(
        "run-managed-identity",
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:01:00Z",
    );
    let stored = sink.store(&r).await.unwrap();
    assert!(credential.calls.load(Ordering::SeqCst) >= 1);
    assert!(
        credential
            .scopes
            .lock()
            .unwrap()
            .iter()
            .all(|s| s == "https://storage.azure.com/.default")
    );

    // Read back with the SDK's own bearer policy.
    let reader_options = BlobContainerClientOptions {
        client_options: ClientOptions {
            transport: Some(trusting(&azurite)),
            ..Default::default()
        },
        ..Default::default()
    };
    let container = BlobContainerClient::new(
        Url::parse(&setting).unwrap(),
        Some(credential.clone()),
        Some(reader_options),
    )
    .unwrap();
    assert_stored_exactly(&container, &r, &stored).await;

    // A token for another audience is refused, with a clear error and without the token.
    let wrong = Arc::new(FakeEntraCredential::new("https://management.azure.com"));
    let token = wrong.jwt();
    let options = BlobSinkOptions {
        transport: Some(trusting(&azurite)),
        ..quick()
    };
    let sink = ReportDestination::parse(&setting)
        .unwrap()
        .into_sink(Some(wrong), options)
        .unwrap();
    let err = sink
        .store(&report(
            "run-wrong-aud",
            "2026-11-25T10:00:00Z",
            "2026-11-25T10:01:00Z",
        ))
        .await
        .unwrap_err();
    let message = format!("{err} {err:?}");
    assert!(
        matches!(
            err,
            SinkError::Storage {
                status: Some(401 | 403),
                ..
            }
        ),
        "{message}"
    );
    let payload = token.split('.').nth(1).unwrap();
    assert!(!message.contains(payload), "{message}");
}
