//! Fidelity check by a real client: the official Azure SDK for Python
//! (`azure-mgmt-containerregistry`, pinned in requirements/sdk.txt) drives the sandbox over TLS
//! through tests/python/sdk_fidelity.py; this test checks what the SDK saw and what the sandbox
//! holds and counted afterwards.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod sim_support;

use std::path::Path;
use std::process::Command;

use linkguard::sim::{Sandbox, SimOptions};
use serde_json::{Value, json};
use sim_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_works_against_the_sandbox() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv-sdk/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test.sh (it creates .venv-sdk with `python3 -m venv .venv-sdk && .venv-sdk/bin/pip install -r requirements/sdk.txt`)",
        python.display()
    );

    let options = SimOptions {
        tls: true,
        page_size: 2,
        lro_polls: 1,
        retry_after_secs: 0,
        ..Default::default()
    };
    let sim = Sandbox::start(estate(5), options).await.unwrap();
    let ca = sim.ca_cert_path().unwrap().to_path_buf();
    let endpoint = sim.endpoint().to_string();
    let script = root.join("tests/python/sdk_fidelity.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(&script)
            .env("SIM_ENDPOINT", &endpoint)
            .env("SIM_CA_CERT", &ca)
            .env("SIM_TOKEN", "sdk-test-token")
            .env("SIM_SUBSCRIPTION", SUB)
            .env("SIM_RESOURCE_GROUP", RG)
            .env("SIM_REGISTRY", "myRegistry0")
            .env("SIM_APPROVE", "pending-a")
            .env("SIM_REJECT", "pending-b")
            .env("SIM_DELETE", "approved")
            .env("SIM_REJECTED", "rejected")
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .output()
    })
    .await
    .unwrap()
    .expect("cannot run the SDK venv's python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "sdk_fidelity.py failed ({}):\n{stderr}\n{stdout}",
        output.status
    );
    eprintln!("sdk_fidelity.py printed: {stdout}");
    let out: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));

    // What the SDK saw.
    let all: Vec<String> = (0..5).map(|i| format!("myRegistry{i}")).collect();
    assert_eq!(
        out["registries"],
        json!(all),
        "registries.list() must page through every registry"
    );
    assert_eq!(out["registries_in_group"], json!(all));
    assert_eq!(out["connections_before"].as_array().unwrap().len(), 4);
    assert_eq!(out["get_connection"]["status"], "Pending");
    assert_eq!(
        out["get_connection"]["description"],
        "CHG000123 please approve"
    );
    assert_eq!(
        out["get_connection"]["private_endpoint"],
        json!(endpoint_id(FOREIGN_SUB, "net", "pe-a"))
    );
    assert_eq!(
        out["approved"],
        json!({"name": "pending-a", "status": "Approved", "description": "approved by sdk_fidelity.py",
        "provisioning_state": "Succeeded", "private_endpoint": endpoint_id(FOREIGN_SUB, "net", "pe-a")})
    );
    assert_eq!(out["rejected"]["status"], "Rejected");
    assert_eq!(out["rejected"]["provisioning_state"], "Succeeded");
    assert_eq!(out["approve_rejected"]["status"], 400);
    assert_eq!(out["approve_rejected"]["code"], "BadRequest");
    assert_eq!(out["deleted_get"]["status"], 404);
    assert_eq!(out["deleted_get"]["code"], "ResourceNotFound");
    let after: Vec<&str> = out["connections_after"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(after, vec!["pending-a", "pending-b", "rejected"]);
    assert_eq!(
        out["updated"],
        json!({"public_network_access": "Disabled", "network_rule_bypass_options": "AzureServices",
        "default_action": "Deny", "ip_rules": ["203.0.113.0/24", "198.51.100.7"], "provisioning_state": "Succeeded", "connections": 3})
    );
    assert_eq!(
        out["private_link_resources"],
        json!([{"name": "registry", "group_id": "registry", "required_zone_names": ["privatelink.azurecr.io"]}])
    );
    assert_eq!(out["private_link_resource"], "registry");
    assert_eq!(out["missing_registry"]["status"], 404);
    assert_eq!(out["missing_registry"]["code"], "ResourceNotFound");
    assert_eq!(out["old_api_version_get"], "myRegistry0");
    assert_eq!(out["unsupported_api_version"]["status"], 400);
    assert_eq!(
        out["unsupported_api_version"]["code"],
        "InvalidApiVersionParameter"
    );

    // What the sandbox holds now.
    let status = |name: &str| {
        sim.connection_json(&connection_id("myRegistry0", name))
            .map(|c| c["properties"]["privateLinkServiceConnectionState"]["status"].clone())
    };
    assert_eq!(status("pending-a"), Some(json!("Approved")));
    assert_eq!(status("pending-b"), Some(json!("Rejected")));
    assert_eq!(status("rejected"), Some(json!("Rejected")));
    assert_eq!(status("approved"), None);
    let registry = sim.registry_json(&registry_id("myRegistry0")).unwrap();
    assert_eq!(registry["properties"]["publicNetworkAccess"], "Disabled");
    assert_eq!(
        registry["properties"]["networkRuleSet"]["defaultAction"],
        "Deny"
    );
    assert_eq!(
        registry["properties"]["networkRuleSet"]["ipRules"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // What it counted: three pages each way, and every LRO really polled.
    let stats = sim.requests();
    eprintln!("sandbox counted: {:?}", stats.by_operation);
    assert_eq!(stats.count("list-registries"), 3);
    assert_eq!(stats.count("list-registries-by-group"), 3);
    assert_eq!(
        stats.count("put-connection"),
        3,
        "approve, reject, and the refused approval"
    );
    assert_eq!(stats.count("delete-connection"), 1);
    assert_eq!(stats.count("patch-registry"), 1);
    // lro_polls = 1: each LRO answered InProgress once, then its outcome
    assert!(
        stats.count("connection-operation-status") >= 6,
        "{:?}",
        stats.by_operation
    );
    assert!(
        stats.count("registry-operation-status") >= 2,
        "{:?}",
        stats.by_operation
    );
    let polled_in_progress = stats
        .log
        .iter()
        .filter(|r| {
            r.operation.as_deref() == Some("connection-operation-status") && r.status == Some(202)
        })
        .count();
    assert_eq!(
        polled_in_progress, 1,
        "the delete's Location was polled while in progress"
    );
    let api_versions: std::collections::BTreeSet<_> = stats
        .log
        .iter()
        .filter_map(|r| r.api_version.clone())
        .collect();
    assert!(
        api_versions.contains("2025-04-01") && api_versions.contains("2025-11-01"),
        "{api_versions:?}"
    );
    assert_eq!(
        stats.count_status(401),
        0,
        "the SDK's bearer token was accepted"
    );
    assert_eq!(out["default_api_version"], "2025-11-01");
    sim.shutdown().await;
}
