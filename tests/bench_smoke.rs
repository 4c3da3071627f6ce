//! `bench smoke` keeps the benchmark command from rotting: it runs every section at tiny sizes
//! (debug build, a few seconds of work) and must produce a number for each. The Python comparison
//! is part of it: the bench finds `.venv-bench` / `.venv-sdk` with the official SDK or creates
//! `.venv-bench` from `requirements/bench.txt`, and fails (this test with it) when Python is
//! unavailable; nothing is skipped.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::process::Command;

use serde_json::Value;

fn positive(v: &Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {v}"));
    assert!(
        x.is_finite() && x > 0.0,
        "{what}: {x} is not a positive figure"
    );
    x
}

#[test]
fn bench_smoke_produces_every_section() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("BENCHMARKS.md");
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("smoke")
        .arg("--linkguard")
        .arg(env!("CARGO_BIN_EXE_linkguard"))
        .arg("--out")
        .arg(&md)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("cannot run the bench binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench smoke failed:\n{stderr}");

    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["sizes"]["name"], "smoke");

    // 1. Cold start and memory, with the Python floor beside it.
    let cold = &r["cold"];
    positive(&cold["ready_ms_median"], "ready time");
    positive(&cold["peak_rss_kib"], "serve peak RSS");
    positive(&cold["python_import_secs_median"], "Python import time");
    positive(&cold["python_peak_rss_kib"], "Python peak RSS");
    positive(&cold["ratio_time"], "start-up ratio");
    assert!(
        cold["python"]
            .as_str()
            .unwrap()
            .contains("azure-mgmt-containerregistry")
    );

    // 2. Latency and throughput for both kinds of events at every concurrency.
    let inv = r["invocations"].as_array().unwrap();
    let concurrency = r["sizes"]["concurrency"].as_array().unwrap();
    // Both kinds at every concurrency, plus approvals with the reports on the local disk.
    assert_eq!(inv.len(), 2 * concurrency.len() + 1);
    for row in inv {
        let what = format!("{} c={}", row["kind"], row["concurrency"]);
        positive(&row["p50_ms"], &what);
        positive(&row["p99_ms"], &what);
        positive(&row["per_second"], &what);
        // Every configuration but the one-off local-disk row is the median of repeated runs.
        let runs = row["runs"].as_u64().unwrap();
        if row["kind"] == "filtered" || row["kind"] == "approval" {
            assert_eq!(
                runs,
                r["sizes"]["invocation_runs"].as_u64().unwrap(),
                "{what}"
            );
            assert!(
                runs >= 2,
                "{what}: a figure must be a median of repeated runs"
            );
        } else {
            assert_eq!(runs, 1, "{what}");
        }
        let calls = row["arm_calls_per_invocation"].as_f64().unwrap();
        match row["kind"].as_str().unwrap() {
            "filtered" => assert_eq!(calls, 0.0, "{what}: a filtered event calls ARM"),
            k if k.starts_with("approval") => {
                assert!(calls >= 2.0, "{what}: an approval must read and write")
            }
            other => panic!("unknown kind {other}"),
        }
    }

    // 3. Audit scale: wall time, calls by kind, list calls within ceil(N / page).
    let audits = r["audits"].as_array().unwrap();
    assert_eq!(
        audits.len(),
        r["sizes"]["audit_sizes"].as_array().unwrap().len()
    );
    for a in audits {
        positive(&a["wall_secs_median"], "audit wall time");
        positive(&a["peak_rss_kib"], "audit peak RSS");
        let list = positive(&a["list_calls"], "list calls");
        assert!(list <= a["expected_list_calls"].as_f64().unwrap());
        assert!(
            a["calls_by_operation"]
                .as_object()
                .unwrap()
                .contains_key("list-registries")
        );
    }

    // 4. The SDK's documented loop against linkguard, same sandbox.
    let sdk = r["sdk"].as_array().unwrap();
    assert!(!sdk.is_empty());
    for s in sdk {
        positive(&s["sdk_wall_secs_median"], "SDK loop time");
        positive(&s["linkguard_wall_secs_median"], "linkguard audit time");
        positive(&s["ratio"], "SDK ratio");
        // The SDK reads registry by registry; linkguard reads pages.
        assert!(s["sdk_calls"].as_u64().unwrap() > s["linkguard_calls"].as_u64().unwrap());
    }

    let text = std::fs::read_to_string(&md).unwrap();
    for heading in [
        "## Machine",
        "## Targets",
        "## 1. Cold start and memory",
        "## 2. Invocation latency and throughput",
        "## 3. Audit scale",
        "## 4. Versus the SDK's documented loop",
        "## Notes",
    ] {
        assert!(text.contains(heading), "BENCHMARKS.md lacks {heading}");
    }
    assert!(text.contains("Smoke run"), "a smoke output must say so");
}
