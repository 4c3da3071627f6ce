//! kill -9 in the middle of an audit, restart, run again: the estate converges, nothing is written
//! twice, and the new report is complete (issue 8). Processes are the real binary: `linkguard sim`
//! and `linkguard audit`.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod engine_support;
mod sim_process;
use sim_process::SimProcess;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use engine_support::support_report;
use engine_support::*;
use serde_json::Value;

async fn stats(sim: &SimProcess) -> Value {
    reqwest::Client::new()
        .get(format!("{}/_sim/requests", sim.endpoint))
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap()
}

fn count(stats: &Value, op: &str) -> u64 {
    stats["by_operation"][op].as_u64().unwrap_or(0)
}

/// A stored report, checked against the JSON schema.
fn read_report(path: &std::path::Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let report: Value = serde_json::from_slice(&bytes).unwrap();
    support_report::schema::validate(&report)
        .unwrap_or_else(|e| panic!("{} fails the report schema: {e:?}", path.display()));
    report
}

fn audit(sim: &SimProcess, dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_linkguard"));
    cmd.args([
        "audit",
        "--policy",
        dir.join("policy.toml").to_str().unwrap(),
        "--arm-endpoint",
        &sim.endpoint,
    ])
    .args([
        "--credential",
        "static",
        "--reports",
        dir.join("reports").to_str().unwrap(),
        "--concurrency",
        "2",
    ])
    .env("LINKGUARD_STATIC_TOKEN", "t")
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_audit_then_rerun_converges_without_duplicate_writes() {
    let n = 30;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("estate.json"), estate(n).to_string()).unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    // Slow enough that the kill lands mid-run.
    let sim = SimProcess::start(
        &dir.path().join("estate.json"),
        &["--faults", "latency=15ms"],
    );

    let mut first = audit(&sim, dir.path()).spawn().unwrap();
    let started = Instant::now();
    loop {
        let s = stats(&sim).await;
        if count(&s, "put-connection") >= 5 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first audit never got going: {s}"
        );
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first audit ended before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().unwrap(); // SIGKILL: no cleanup, writes in flight are abandoned
    first.wait().unwrap();
    let writes_before = count(&stats(&sim).await, "put-connection");
    assert!(
        writes_before < n as u64,
        "killed mid-run ({writes_before} of {n} writes)"
    );
    assert!(
        !dir.path().join("reports/latest.json").exists(),
        "the killed run stored no report"
    );

    // Restart at once: writes the killed run left in flight are still running in ARM. The rerun
    // must not write those again (it skips connections with an operation in progress).
    let status = audit(&sim, dir.path()).status().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "pending partner connections still need attention"
    );
    let s = stats(&sim).await;
    assert_eq!(
        count(&s, "put-connection"),
        n as u64,
        "every approval written exactly once across both runs: {}",
        s["by_operation"]
    );
    // The restarted run's own report: stored, valid, complete, each action once, and its applied
    // approvals exactly the writes the killed run did not get to.
    let second = read_report(&dir.path().join("reports/latest.json"));
    assert_eq!(second["complete"], true, "run 2 report: {second}");
    let actions = second["actions"].as_array().unwrap();
    let mut keys: Vec<(String, String, String)> = actions
        .iter()
        .map(|a| {
            (
                a["registry"].as_str().unwrap().to_ascii_lowercase(),
                a["connection"].as_str().unwrap_or("").to_ascii_lowercase(),
                a["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    keys.sort();
    let before_dedup = keys.len();
    keys.dedup();
    assert_eq!(
        keys.len(),
        before_dedup,
        "run 2 reports an action twice: {actions:#?}"
    );
    let applied = actions
        .iter()
        .filter(|a| a["action"] == "approve" && a["outcome"] == "applied")
        .count() as u64;
    assert_eq!(
        applied,
        n as u64 - writes_before,
        "run 2 applied the approvals the killed run had not written"
    );
    let run2_id = second["run"]["id"].as_str().unwrap().to_string();
    // ARM finishes abandoned operations whether or not anyone polls; a third run then sees a
    // converged estate, writes nothing, and reports it complete.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = audit(&sim, dir.path()).status().unwrap();
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        count(&stats(&sim).await, "put-connection"),
        n as u64,
        "the converged estate needs no write"
    );
    let estate: Value = reqwest::Client::new()
        .get(format!("{}/_sim/estate", sim.endpoint))
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    let approved = estate.to_string().matches("\"Approved\"").count();
    assert!(
        approved >= 2 * n,
        "every platform connection approved, old ones kept: {approved}"
    );
    let report = read_report(&dir.path().join("reports/latest.json"));
    assert_ne!(
        report["run"]["id"],
        run2_id.as_str(),
        "run 3 stored its own report"
    );
    assert_eq!(report["complete"], true);
    assert_eq!(report["totals"]["approved"], 2 * n as u64);
    assert_eq!(report["totals"]["pending"], n as u64);
}
