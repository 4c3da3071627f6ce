//! The README's first command: `linkguard demo` runs the main job end to end on the embedded sample
//! (sandbox, real audit over HTTP, report in a local folder).
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::process::Command;

use serde_json::Value;

#[test]
fn demo_audits_the_sample_estate_and_stores_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_linkguard"))
        .args(["demo", "--reports", "reports"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let latest: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("reports/latest.json")).unwrap())
            .unwrap();
    let run_id = latest["run"]["id"].as_str().unwrap();
    let day = &run_id[..8];
    let json_path = dir.path().join(format!(
        "reports/runs/{}/{}/{}/{run_id}.json",
        &day[..4],
        &day[4..6],
        &day[6..8]
    ));
    let report: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(report, latest, "latest.json is the run's report");
    for ext in ["md", "html"] {
        assert!(
            json_path.with_extension(ext).is_file(),
            "{ext} rendering stored"
        );
    }
    assert_eq!(report["schema"], "linkguard.report/v1");
    assert_eq!(report["complete"], true);
    // The sample policy approves two Pending connections, rejects one, and patches two registries.
    let applied = |action: &str| {
        report["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["action"] == action && a["outcome"] == "applied")
            .count()
    };
    assert_eq!(
        (applied("approve"), applied("reject"), applied("patch")),
        (2, 1, 2),
        "{}",
        report["actions"]
    );
    assert_eq!(
        report["totals"]["registries"], 4,
        "sandbox01 is excluded, acrothersub out of scope"
    );
    assert_eq!(report["totals"]["approved"], 5);
    assert!(report["run"]["arm_requests"].as_u64().unwrap() > 0);
    assert!(
        stdout.contains(run_id) && stdout.contains("report: "),
        "{stdout}"
    );
}
