//! A live audit against the sandbox stores its report in Blob Storage (Azurite, pinned, started by
//! the test): every blob reads back byte-identical, the JSON validates against the shipped schema,
//! and an incomplete run is still written; Azurite killed in the middle of a real `linkguard audit`
//! makes it exit 3 and the next run after a restart is stored; two real runs in the same second
//! keep both reports (issue 5).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod engine_support;
mod sim_process;
use sim_process::SimProcess;
#[path = "support_azurite/mod.rs"]
mod support_azurite;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use azure_core::http::Url;
use azure_storage_blob::BlobContainerClient;
use engine_support::support_report;
use engine_support::*;
use futures::TryStreamExt as _;
use linkguard::report::sink::{BlobSinkOptions, ObjectKind, ReportDestination, ReportSink};
use linkguard::report::{Report, render};
use support_azurite::{Azurite, Ports};

async fn read_blob(container: &BlobContainerClient, name: &str) -> (Vec<u8>, String) {
    let response = container
        .blob_client(name)
        .download(None)
        .await
        .unwrap_or_else(|e| panic!("download {name}: {e}"));
    let content_type = response.properties.content_type.clone().unwrap_or_default();
    (
        response.body.collect().await.unwrap().to_vec(),
        content_type,
    )
}

fn sink(azurite: &Azurite) -> std::sync::Arc<dyn ReportSink> {
    let options = BlobSinkOptions::default().with_retries(
        2,
        Duration::from_millis(100),
        Duration::from_secs(5),
    );
    ReportDestination::parse(&azurite.connection_string())
        .unwrap()
        .into_sink(None, options)
        .unwrap()
}

async fn assert_round_trip(azurite: &Azurite, report: &Report) {
    support_report::schema::assert_valid(report);
    let stored = sink(azurite)
        .store(report)
        .await
        .expect("the report is stored");
    // Read back with an independently signed SAS, not through the sink.
    let sas = azurite.account_sas("b", "sco", "rl");
    let container = BlobContainerClient::new(
        Url::parse(&format!(
            "{}/linkguard-reports?{sas}",
            azurite.blob_endpoint()
        ))
        .unwrap(),
        None,
        None,
    )
    .unwrap();
    for (kind, bytes, content_type) in [
        (
            ObjectKind::Json,
            render::to_json(report),
            "application/json",
        ),
        (
            ObjectKind::Markdown,
            render::markdown::render(report),
            "text/markdown",
        ),
        (ObjectKind::Html, render::html::render(report), "text/html"),
    ] {
        let name = &stored.object(kind).unwrap().name;
        assert!(
            name.starts_with("runs/") && name.contains(&report.run.id),
            "{name}"
        );
        let (got, got_type) = read_blob(&container, name).await;
        assert!(got == bytes.as_bytes(), "{name} is byte-identical");
        assert!(got_type.starts_with(content_type), "{name}: {got_type}");
    }
    let (latest, _) = read_blob(&container, "latest.json").await;
    assert_eq!(
        serde_json::from_slice::<Report>(&latest).unwrap().run.id,
        report.run.id
    );
}

#[tokio::test]
async fn an_audit_report_lands_in_blob_storage_byte_identical() {
    let azurite = Azurite::start();
    let sim = sandbox(estate(5), 2, "").await;
    let result = engine(client(&sim, fast_retry()), policy(POLICY))
        .audit()
        .await
        .validated();
    assert!(result.report.complete);
    assert_eq!(result.report.actions.len(), 5);
    assert_round_trip(&azurite, &result.report).await;

    // An incomplete run (a subscription linkguard cannot read) is still written.
    let text = format!(
        "version = 1\n[scope]\nsubscriptions = [\"{SUB}\", \"99999999-9999-9999-9999-999999999999\"]\n"
    );
    let incomplete = engine(client(&sim, fast_retry()), policy(&text))
        .audit()
        .await
        .validated();
    assert!(!incomplete.report.complete);
    assert_round_trip(&azurite, &incomplete.report).await;
}

// ---- The real binary: `linkguard audit` against `linkguard sim`, reports to Azurite. ----

/// How many connection writes the sandbox has served so far.
async fn connection_writes(sim: &SimProcess) -> u64 {
    let stats: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/_sim/requests", sim.endpoint))
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    stats["by_operation"]["put-connection"]
        .as_u64()
        .unwrap_or(0)
}

fn audit_command(sim: &SimProcess, dir: &std::path::Path, reports: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_linkguard"));
    cmd.args([
        "audit",
        "--policy",
        dir.join("policy.toml").to_str().unwrap(),
    ])
    .args(["--arm-endpoint", &sim.endpoint, "--credential", "static"])
    .args(["--reports", reports, "--concurrency", "2"])
    .env("LINKGUARD_STATIC_TOKEN", "t")
    .env_remove("LINKGUARD_REPORTS")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// The blob names under `runs/` in the report container, sorted.
async fn run_blobs(container: &BlobContainerClient) -> Vec<String> {
    let mut names = Vec::new();
    let mut pages = container.list_blobs(None).unwrap().into_pages();
    while let Some(page) = pages.try_next().await.unwrap() {
        for item in page.into_model().unwrap().blob_items {
            let name = item.name.unwrap().to_string();
            if name.starts_with("runs/") {
                names.push(name);
            }
        }
    }
    names.sort();
    names
}

fn reader(azurite: &Azurite) -> BlobContainerClient {
    let sas = azurite.account_sas("b", "sco", "rl");
    BlobContainerClient::new(
        Url::parse(&format!(
            "{}/linkguard-reports?{sas}",
            azurite.blob_endpoint()
        ))
        .unwrap(),
        None,
        None,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurite_killed_mid_audit_exits_3_and_the_next_run_after_restart_is_stored() {
    let n = 20;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("estate.json"), estate(n).to_string()).unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    // Slow enough that Azurite dies while the audit is still talking to ARM.
    let sim = SimProcess::start(
        &dir.path().join("estate.json"),
        &["--faults", "latency=15ms"],
    );
    let mut azurite = Azurite::start();
    let ports = azurite.ports;
    let setting = azurite.connection_string();

    let first = audit_command(&sim, dir.path(), &setting).spawn().unwrap();
    let started = Instant::now();
    while connection_writes(&sim).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the audit never started writing"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    azurite.kill();
    let during = connection_writes(&sim).await;
    assert!(
        during < n as u64,
        "Azurite was killed mid-run ({during} of {n} approvals written)"
    );
    let out = first.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "exit 3: the report could not be stored; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("error: the report could not be stored: storing http://127.0.0.1:")
            && stderr.contains("/devstoreaccount1/linkguard-reports/runs/")
            && stderr.contains("is the storage endpoint reachable?"),
        "a clear message naming the blob and the likely cause:\n{stderr}"
    );
    assert!(!stderr.contains(support_azurite::ACCOUNT_KEY), "{stderr}");
    assert_eq!(
        connection_writes(&sim).await,
        n as u64,
        "the run itself finished its work before the store failed"
    );

    // Azurite back on the same port (empty: in-memory). The next run stores everything.
    let azurite = Azurite::start_on(Ports {
        blob: ports.blob,
        ..Ports::EPHEMERAL
    });
    assert_eq!(azurite.ports.blob, ports.blob);
    let out = audit_command(&sim, dir.path(), &setting).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stored; partner connections still need attention. stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let locations: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("report: "))
        .collect();
    assert_eq!(locations.len(), 4, "{stdout}");
    let container = reader(&azurite);
    let blobs = run_blobs(&container).await;
    assert_eq!(
        blobs.len(),
        3,
        "json, md and html of the one stored run: {blobs:?}"
    );
    let (json, _) = read_blob(&container, &blobs[1]).await;
    assert!(blobs[1].ends_with(".json"), "{blobs:?}");
    let report: Report = serde_json::from_slice(&json).unwrap();
    support_report::schema::assert_valid(&report);
    assert!(report.complete);
    for (kind, blob) in [
        (ObjectKind::Html, &blobs[0]),
        (ObjectKind::Json, &blobs[1]),
        (ObjectKind::Markdown, &blobs[2]),
    ] {
        let expected = match kind {
            ObjectKind::Html => render::html::render(&report),
            ObjectKind::Markdown => render::markdown::render(&report),
            _ => render::to_json(&report),
        };
        let (got, _) = read_blob(&container, blob).await;
        assert!(
            got == expected.as_bytes(),
            "{blob} holds the run's rendering"
        );
        assert!(
            locations.iter().any(|l| l.ends_with(blob.as_str())),
            "{blob} printed: {stdout}"
        );
    }
    let (latest, _) = read_blob(&container, "latest.json").await;
    assert_eq!(latest, json, "latest.json is the stored run");
}

// ---- Two real runs in the same second: run ids from the engine's own generator. ----

#[tokio::test]
async fn two_real_runs_in_the_same_second_keep_both_reports_and_latest_names_the_newer() {
    let azurite = Azurite::start();
    let sim = sandbox(estate(2), 10, "").await;
    let container = reader(&azurite);
    // Run ids carry the start second; try a few times to fit both runs into one second (a run
    // takes milliseconds here), then check what the sink did with them.
    let mut pair = None;
    for _ in 0..5 {
        // Start just after a second boundary so both runs fit in that second.
        let now = time::OffsetDateTime::now_utc();
        let to_next = 1_000_000_000u64 - u64::from(now.nanosecond());
        tokio::time::sleep(Duration::from_nanos(to_next) + Duration::from_millis(5)).await;
        let a = engine(client(&sim, fast_retry()), policy(POLICY))
            .audit()
            .await
            .validated()
            .report;
        let b = engine(client(&sim, fast_retry()), policy(POLICY))
            .audit()
            .await
            .validated()
            .report;
        if a.run.id[..16] == b.run.id[..16] {
            pair = Some((a, b));
            break;
        }
    }
    let (a, b) = pair.expect("two audits started within one second in five attempts");
    assert_ne!(
        a.run.id, b.run.id,
        "the generator's random suffix keeps them apart"
    );
    assert!(
        a.run.finished < b.run.finished,
        "{} / {}",
        a.run.finished,
        b.run.finished
    );

    let store = sink(&azurite);
    store.store(&a).await.expect("first run stored");
    store.store(&b).await.expect("second run stored");
    let blobs = run_blobs(&container).await;
    assert_eq!(
        blobs.len(),
        6,
        "both runs, three renderings each: {blobs:?}"
    );
    for report in [&a, &b] {
        let name = sink_name(&blobs, &report.run.id);
        let (json, _) = read_blob(&container, &name).await;
        assert_eq!(json, render::to_json(report).into_bytes(), "{name}");
    }
    let (latest, _) = read_blob(&container, "latest.json").await;
    assert_eq!(
        serde_json::from_slice::<Report>(&latest).unwrap().run.id,
        b.run.id
    );

    // Stored the other way round (the newer run's write landing first), latest.json still names
    // the newer run.
    let azurite = Azurite::start();
    let store = sink(&azurite);
    store.store(&b).await.unwrap();
    store.store(&a).await.unwrap();
    let container = reader(&azurite);
    assert_eq!(run_blobs(&container).await.len(), 6);
    let (latest, _) = read_blob(&container, "latest.json").await;
    assert_eq!(
        serde_json::from_slice::<Report>(&latest).unwrap().run.id,
        b.run.id
    );
}

fn sink_name(blobs: &[String], run_id: &str) -> String {
    blobs
        .iter()
        .find(|b| b.ends_with(&format!("/{run_id}.json")))
        .unwrap_or_else(|| panic!("no JSON blob for {run_id} in {blobs:?}"))
        .clone()
}
