//! Fan-out from the command line (issue 9): `linkguard audit --fan-out QUEUE` enqueues, `linkguard
//! worker --queue QUEUE` consumes until the queue is empty, against the ARM sandbox (20
//! subscriptions plus one it cannot read), Azurite's queue service and a reports directory.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod fanout_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use fanout_support::*;
use linkguard::cli::audit::AuditArgs;
use linkguard::fanout::cli::{FanOutArgs, WorkerArgs, run_fan_out_with, run_worker_with};
use serde_json::Value;

const QUEUE: &str = "cli-audits";

/// The arguments as clap parses them from the command line (so flags added later with defaults
/// need no change here).
#[derive(clap::Parser)]
struct AuditCli {
    #[command(flatten)]
    audit: AuditArgs,
}

#[derive(clap::Parser)]
struct WorkerCli {
    #[command(flatten)]
    worker: WorkerArgs,
}

fn audit_args(policy: &Path, arm: &str, reports: &Path) -> AuditArgs {
    use clap::Parser;
    let policy = policy.display().to_string();
    let reports = reports.display().to_string();
    AuditCli::try_parse_from([
        "audit",
        "--policy",
        &policy,
        "--arm-endpoint",
        arm,
        "--credential",
        "static",
        "--reports",
        &reports,
    ])
    .unwrap()
    .audit
}

fn worker_args(queue: &str, policy: &Path, arm: &str, reports: &Path) -> WorkerArgs {
    use clap::Parser;
    let policy = policy.display().to_string();
    let reports = reports.display().to_string();
    WorkerCli::try_parse_from([
        "worker",
        "--queue",
        queue,
        "--policy",
        &policy,
        "--arm-endpoint",
        arm,
        "--credential",
        "static",
        "--reports",
        &reports,
        "--retry-delay",
        "00:00:00",
        "--visibility-timeout",
        "00:00:30",
    ])
    .unwrap()
    .worker
}

fn read_json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fan_out_then_worker_audits_once_poisons_the_unreadable_and_summarizes() {
    let t0 = Instant::now();
    let azurite = Azurite::start();
    let n = 20;
    let sim = fanout_support::engine_support::sandbox(estate(n), 100, "").await;
    let dir = tempfile::tempdir().unwrap();
    let mut scope = subs(n);
    scope.push(FORBIDDEN.to_string());
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, policy_text(Some(&scope))).unwrap();
    let reports = dir.path().join("reports");
    let queue = format!("{};QueueName={QUEUE}", azurite.connection_string());
    let env: HashMap<String, String> =
        HashMap::from([("LINKGUARD_STATIC_TOKEN".to_string(), "t".to_string())]);
    let raw = RawQueue::new(&azurite);

    let audit = audit_args(&policy, sim.endpoint(), &reports);
    let fan_out = FanOutArgs {
        fan_out: Some(queue.clone()),
        deadline: "01:00:00".into(),
    };
    assert_eq!(
        run_fan_out_with(&audit, &fan_out, &env).await,
        ExitCode::from(0)
    );
    assert_eq!(
        sim.requests().count("list-registries"),
        0,
        "enqueueing audits nothing"
    );
    assert_eq!(raw.count(QUEUE).await, 21);
    let queued = raw.peek(QUEUE).await;
    let run = queued[0].json()["run"].as_str().unwrap().to_string();
    let started = queued[0].json()["started"].as_str().unwrap().to_string();
    assert_eq!(queued[0].json()["trigger"], "cli");
    // A copy of one message (delivered twice) and a message that is not linkguard's.
    raw.send(QUEUE, &queued[0].text).await;
    raw.send(QUEUE, "bm90IGEgbGlua2d1YXJkIG1lc3NhZ2U=").await;

    let worker = worker_args(&queue, &policy, sim.endpoint(), &reports);
    let code = run_worker_with(&worker, &env, std::future::pending()).await;
    assert_eq!(
        code,
        ExitCode::from(1),
        "a poisoned subscription needs attention"
    );

    assert_eq!(
        raw.count(QUEUE).await,
        0,
        "the worker ran until the queue was empty"
    );
    let poisoned = raw.peek(&format!("{QUEUE}-poison")).await;
    assert_eq!(poisoned.len(), 2, "{poisoned:?}");
    let poisoned_texts: Vec<&str> = poisoned.iter().map(|m| m.text.as_str()).collect();
    assert!(poisoned_texts.contains(&"bm90IGEgbGlua2d1YXJkIG1lc3NhZ2U="));
    assert!(
        poisoned
            .iter()
            .any(|m| m.text.starts_with("eyJ") && m.json()["subscription"] == FORBIDDEN)
    );
    let stats = sim.requests();
    assert_eq!(
        stats.count("put-connection"),
        20,
        "the copy did not approve anything twice"
    );
    assert_eq!(
        stats.count("list-registries"),
        20 + 5,
        "each subscription once, the forbidden one 5 times"
    );

    let base = reports.join(format!(
        "runs/{}/{}/{}",
        &started[0..4],
        &started[5..7],
        &started[8..10]
    ));
    let summary = read_json(base.join(&run).join("summary.json"));
    assert_eq!(summary["expected"], 21);
    assert_eq!(summary["reported"].as_array().unwrap().len(), 20);
    assert_eq!(summary["missing"], serde_json::json!([]));
    assert_eq!(summary["poisoned"][0]["subscription"], FORBIDDEN);
    assert_eq!(summary["poisoned"][0]["deliveries"], 5);
    let report = read_json(base.join(format!("{run}.json")));
    assert_eq!(report["run"]["trigger"], "cli");
    assert_eq!(report["totals"]["registries"], 20);
    assert_eq!(report["totals"]["approved"], 20);
    assert_eq!(report["complete"], false);
    assert!(base.join(format!("{run}.md")).is_file());
    assert_eq!(
        read_json(reports.join("latest.json"))["run"]["id"],
        run.as_str()
    );
    assert_eq!(
        std::fs::read_dir(reports.join("fanout/open"))
            .unwrap()
            .count(),
        0
    );
    // 20 subscription reports, the run report, latest.json: all schema-valid.
    assert!(fanout_support::assert_dir_reports_valid(&reports) >= 22);
    eprintln!(
        "CLI: 21 subscriptions enqueued and consumed in {:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn bad_queue_settings_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, policy_text(None)).unwrap();
    let env: HashMap<String, String> =
        HashMap::from([("LINKGUARD_STATIC_TOKEN".to_string(), "t".to_string())]);
    let audit = audit_args(&policy, "http://127.0.0.1:9", dir.path());
    for (queue, deadline) in [
        ("http://example.com/devstoreaccount1/q?sig=x", "01:00:00"),
        (
            "AccountName=a;AccountKey=a2V5;QueueName=Bad_Name",
            "01:00:00",
        ),
        ("UseDevelopmentStorage=true", "soon"),
    ] {
        let args = FanOutArgs {
            fan_out: Some(queue.into()),
            deadline: deadline.into(),
        };
        assert_eq!(
            run_fan_out_with(&audit, &args, &env).await,
            ExitCode::from(2),
            "{queue}"
        );
    }
    let mut w = worker_args(
        "UseDevelopmentStorage=true",
        &policy,
        "http://127.0.0.1:9",
        dir.path(),
    );
    w.retry_delay = "30s".into();
    assert_eq!(
        run_worker_with(&w, &env, std::future::pending()).await,
        ExitCode::from(2)
    );
}
