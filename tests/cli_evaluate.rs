//! `linkguard evaluate` and `linkguard policy check` through the real binary: plan format (DESIGN
//! 4.3), exit codes (DESIGN 3) and bad input.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn linkguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_linkguard"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

fn evaluate_json(estate: &str) -> Value {
    let out = linkguard(&[
        "evaluate",
        "--policy",
        "examples/policy.toml",
        "--estate",
        estate,
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "findings need attention: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn plan_json_follows_section_4_3() {
    let plan = evaluate_json("examples/estate.json");
    assert_eq!(plan["schema"], "linkguard.plan/v1");
    let decisions = plan["decisions"].as_array().unwrap();
    let estate: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/estate.json")).unwrap(),
    )
    .unwrap();
    let governed = ["acrprod01", "acrprod02", "acrlegacy", "acrproddev"];
    let expected: usize = estate["registries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| governed.contains(&r["name"].as_str().unwrap()))
        .map(|r| {
            r["properties"]["privateEndpointConnections"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(
        decisions.len(),
        expected,
        "one decision per connection of every governed registry"
    );
    for d in decisions {
        let keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "registry",
            "connection",
            "private_endpoint",
            "status",
            "action",
            "rule",
            "reason",
        ] {
            assert!(keys.contains(&k), "decision lacks {k}: {d}");
        }
        assert!(["approve", "reject", "delete", "keep"].contains(&d["action"].as_str().unwrap()));
        assert!(d["rule"].is_null() || d["rule"].is_string());
    }
    for f in plan["findings"].as_array().unwrap() {
        for k in ["code", "severity", "registry", "message", "fix"] {
            assert!(
                f.get(k).is_some_and(Value::is_string),
                "finding lacks {k}: {f}"
            );
        }
    }
    // Out-of-scope and excluded registries yield nothing.
    let text = plan.to_string();
    assert!(!text.contains("sandbox01") && !text.contains("acrothersub"));
    // Ids printed as ARM gave them.
    assert!(decisions.iter().any(|d| {
        d["connection"]
            .as_str()
            .unwrap()
            .ends_with("/privateEndpointConnections/pe-aks-weu.1a2b")
    }));
}

#[test]
fn sample_estate_shows_every_finding_code() {
    let plan = evaluate_json("examples/estate.json");
    let codes: std::collections::HashSet<&str> = plan["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    for code in linkguard::plan::FindingCode::ALL {
        assert!(
            codes.contains(code.as_str()),
            "sample estate does not show {code}"
        );
    }
    let actions: std::collections::HashSet<&str> = plan["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["action"].as_str().unwrap())
        .collect();
    for a in ["approve", "reject", "keep"] {
        assert!(actions.contains(a), "sample estate does not show {a}");
    }
}

#[test]
fn az_cli_shape_gives_the_same_plan() {
    // The az file must really be in az's shape, or this compares a file with itself: properties
    // hoisted, and network rules under az's names (`ipAddressOrRange`, `virtualNetworkResourceId`).
    let az: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/estate-az.json")).unwrap(),
    )
    .unwrap();
    let registries = az["registries"].as_array().unwrap();
    assert!(registries.iter().all(|r| r.get("properties").is_none()));
    let rule_sets: Vec<&Value> = registries
        .iter()
        .filter_map(|r| r.get("networkRuleSet"))
        .collect();
    let ip_rules: Vec<&Value> = rule_sets
        .iter()
        .flat_map(|s| s["ipRules"].as_array().unwrap())
        .collect();
    assert!(!ip_rules.is_empty());
    assert!(
        ip_rules
            .iter()
            .all(|r| r.get("ipAddressOrRange").is_some() && r.get("value").is_none())
    );
    assert!(
        rule_sets
            .iter()
            .filter_map(|s| s.get("virtualNetworkRules"))
            .flat_map(|v| v.as_array().unwrap())
            .any(|r| r.get("virtualNetworkResourceId").is_some())
    );
    assert_eq!(
        evaluate_json("examples/estate.json"),
        evaluate_json("examples/estate-az.json")
    );
}

#[test]
fn text_format_is_a_table() {
    let out = linkguard(&[
        "evaluate",
        "--policy",
        "examples/policy.toml",
        "--estate",
        "examples/estate.json",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let header = text.lines().nth(1).unwrap();
    for col in [
        "REGISTRY",
        "CONNECTION",
        "STATUS",
        "ACTION",
        "RULE",
        "REASON",
    ] {
        assert!(header.contains(col), "{header}");
    }
    assert!(text.contains("Findings ("));
    assert!(text.lines().any(|l| l.starts_with("acrprod01")
        && l.contains("approve")
        && l.contains("platform-subnets")));
}

#[test]
fn nothing_to_do_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "version = 1\n").unwrap();
    let estate = dir.path().join("e.json");
    let body: Value = serde_json::from_str(
        &std::fs::read_to_string(
            root().join("../shared/fixtures/arm/acr-2025-11-01.RegistryGet.json"),
        )
        .unwrap(),
    )
    .unwrap();
    std::fs::write(
        &estate,
        serde_json::to_string(&vec![body["responses"]["200"]["body"].clone()]).unwrap(),
    )
    .unwrap();
    let out = linkguard(&[
        "evaluate",
        "--policy",
        policy.to_str().unwrap(),
        "--estate",
        estate.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn bad_input_exits_2_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good_policy = "examples/policy.toml".to_string();
    let good_estate = "examples/estate.json".to_string();
    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "missing policy",
            "nope.toml".into(),
            good_estate.clone(),
            "nope.toml: cannot read",
        ),
        (
            "missing estate",
            good_policy.clone(),
            "nope.json".into(),
            "nope.json: cannot read",
        ),
        (
            "empty estate",
            good_policy.clone(),
            write(d, "empty.json", ""),
            "empty.json: the file is empty",
        ),
        (
            "malformed estate",
            good_policy.clone(),
            write(d, "bad.json", "{\"registries\": [}"),
            "bad.json: not valid JSON",
        ),
        (
            "wrong shape",
            good_policy.clone(),
            write(d, "obj.json", "{\"value\": []}"),
            "obj.json: field `registries` is missing",
        ),
        (
            "wrong type",
            good_policy.clone(),
            write(d, "type.json", "{\"registries\": [{\"id\": 7}]}"),
            "registries[0].id",
        ),
        (
            "missing id",
            good_policy.clone(),
            write(d, "noid.json", "[{\"name\": \"r\"}]"),
            "missing field `id`",
        ),
        (
            "bad policy",
            write(
                d,
                "p.toml",
                "version = 1\n[network]\ndefault_action = \"Block\"\n",
            ),
            good_estate.clone(),
            "p.toml:3: `default_action`",
        ),
        (
            "empty policy",
            write(d, "e.toml", ""),
            good_estate.clone(),
            "e.toml:",
        ),
    ];
    for (label, policy, estate, needle) in cases {
        let out = linkguard(&["evaluate", "--policy", &policy, "--estate", &estate]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{label}: {err}");
        assert!(err.contains(needle), "{label}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{label}: {err}"
        );
        assert!(out.stdout.is_empty(), "{label}: nothing printed on stdout");
    }
}

#[test]
fn policy_check_accepts_the_sample_and_rejects_typos() {
    let out = linkguard(&["policy", "check", "examples/policy.toml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "typo.toml",
        "version = 1\n[connections]\nrevoke_aproved = true\n",
    );
    let out = linkguard(&["policy", "check", &p]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("typo.toml:3")
            && err.contains("revoke_aproved")
            && err.contains("revoke_approved"),
        "{err}"
    );
}

#[test]
fn a_closed_stdout_is_a_normal_end_not_a_panic() {
    // `linkguard evaluate ... | head -1` once head has exited: the read end is closed before
    // linkguard writes, so its write fails with EPIPE (Rust ignores SIGPIPE).
    for format in ["text", "json"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_linkguard"))
            .args([
                "evaluate",
                "--policy",
                "examples/policy.toml",
                "--estate",
                "examples/estate.json",
                "--format",
                format,
            ])
            .current_dir(root())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{format}: {stderr}");
        assert!(stderr.is_empty(), "{format}: nothing to report: {stderr}");
        assert_eq!(
            out.status.code(),
            Some(1),
            "{format}: the plan's own exit code"
        );
    }
}
