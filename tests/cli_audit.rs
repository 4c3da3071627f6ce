//! `linkguard audit` exit codes (DESIGN 3) as a user sees them: the real binary against
//! `linkguard sim`. 0: nothing needs attention; 1: something does; 3: no governed registry could
//! be read. (1 and "report not stored" = 3 are also covered by crash_safety.rs and
//! audit_to_azurite.rs.)
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod engine_support;
mod sim_process;
use sim_process::SimProcess;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use engine_support::support_report;
use engine_support::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_linkguard");

/// A sandbox on `estate(n)` and a policy file, in a fresh directory.
fn setup(n: usize, policy: &str) -> (tempfile::TempDir, SimProcess) {
    let dir = tempfile::tempdir().unwrap();
    let estate_file = dir.path().join("estate.json");
    std::fs::write(&estate_file, estate(n).to_string()).unwrap();
    std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
    let sim = SimProcess::start(&estate_file, &[]);
    (dir, sim)
}

fn audit(sim: &SimProcess, dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "audit",
        "--policy",
        dir.join("policy.toml").to_str().unwrap(),
    ])
    .args(["--arm-endpoint", &sim.endpoint, "--credential", "static"])
    .args(["--reports", dir.join("reports").to_str().unwrap()])
    .env("LINKGUARD_STATIC_TOKEN", "t");
    cmd
}

/// The report the run stored (`latest.json`), checked against the JSON schema.
fn stored_report(dir: &Path) -> Value {
    let path = dir.join("reports/latest.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let report: Value = serde_json::from_slice(&bytes).unwrap();
    support_report::schema::validate(&report)
        .unwrap_or_else(|e| panic!("{} fails the report schema: {e:?}", path.display()));
    report
}

fn explain(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn exit_0_when_nothing_needs_attention() {
    // Every connection is approved: after the run nothing is pending and nothing failed.
    let approve_all = "version = 1\n[[connections.rules]]\nname = \"all\"\naction = \"approve\"\n";
    let (dir, sim) = setup(2, approve_all);
    let out = audit(&sim, dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out));
    let report = stored_report(dir.path());
    assert_eq!(report["complete"], true);
    assert_eq!(report["totals"]["pending"], 0, "{report}");
    assert_eq!(report["actions"].as_array().unwrap().len(), 4);
}

#[test]
fn exit_1_when_connections_still_need_attention() {
    // The partner's connections match no rule and stay pending.
    let (dir, sim) = setup(2, POLICY);
    let out = audit(&sim, dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let report = stored_report(dir.path());
    assert_eq!(report["complete"], true);
    assert_eq!(report["totals"]["pending"], 2, "{report}");
}

#[test]
fn exit_3_when_no_governed_registry_is_readable() {
    // The only governed subscription is one the identity cannot read.
    let text = format!(
        "version = 1\n[scope]\nsubscriptions = [\"99999999-9999-9999-9999-999999999999\"]\n{}",
        POLICY.replace("version = 1", "")
    );
    let (dir, sim) = setup(2, &text);
    let out = audit(&sim, dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", explain(&out));
    let report = stored_report(dir.path());
    assert_eq!(report["complete"], false);
    assert!(
        report["errors"].to_string().contains("AuthorizationFailed"),
        "the reason is in the report: {report}"
    );
}

#[test]
fn a_closed_stdout_still_stores_the_report_and_keeps_the_exit_code() {
    // `linkguard audit | head -1` once head has exited: the summary cannot be written, the report
    // must still be stored and the exit code must still be the run's.
    let (dir, sim) = setup(2, POLICY);
    let mut child = audit(&sim, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stored_report(dir.path())["totals"]["pending"], 2);
}
