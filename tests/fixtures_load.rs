//! Every registry, connection and private endpoint body in the shared ARM fixtures loads into the
//! typed models (DESIGN 3.1: unknown fields ignored, nulls tolerated).
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::path::PathBuf;

use linkguard::model::{Estate, PrivateEndpoint, PrivateEndpointConnection, Registry, shape};
use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/arm");
    assert!(
        dir.is_dir(),
        "shared fixtures missing at {}: clone ../shared beside the repo",
        dir.display()
    );
    dir
}

fn bodies(v: &Value, out: &mut Vec<Value>) {
    if let Some(responses) = v.get("responses").and_then(Value::as_object) {
        for r in responses.values() {
            if let Some(body) = r.get("body") {
                match body.get("value").and_then(Value::as_array) {
                    Some(items) => out.extend(items.iter().cloned()),
                    None => out.push(body.clone()),
                }
            }
        }
    }
}

#[test]
fn every_arm_example_body_loads() {
    let (mut registries, mut connections, mut endpoints) = (0, 0, 0);
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut found = Vec::new();
        bodies(&doc, &mut found);
        for body in found {
            let ty = body
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            match ty.as_str() {
                "microsoft.containerregistry/registries" => {
                    let r: Registry = serde_json::from_value(body.clone())
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert_eq!(
                        r.id.as_str(),
                        body["id"].as_str().unwrap(),
                        "{name}: id displayed as given"
                    );
                    // The estate loader accepts the same body, in ARM shape and flattened.
                    Estate::from_value(Value::Array(vec![body.clone()]))
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                    registries += 1;
                }
                "microsoft.containerregistry/registries/privateendpointconnections" => {
                    let c: PrivateEndpointConnection =
                        serde_json::from_value(shape::connection_to_arm(body))
                            .unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert!(c.private_endpoint_id().is_some(), "{name}");
                    connections += 1;
                }
                "microsoft.network/privateendpoints" => {
                    let pe: PrivateEndpoint =
                        serde_json::from_value(body).unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert!(pe.subnet_id().is_some(), "{name}");
                    endpoints += 1;
                }
                _ => {}
            }
        }
    }
    assert!(
        registries >= 3 && connections >= 3 && endpoints >= 1,
        "walked {registries} registries, {connections} connections, {endpoints} endpoints"
    );
}

#[test]
fn registry_get_example_reads_posture() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures_dir().join("acr-2025-11-01.RegistryGet.json")).unwrap(),
    )
    .unwrap();
    let r: Registry = serde_json::from_value(doc["responses"]["200"]["body"].clone()).unwrap();
    assert_eq!(r.name(), "myRegistry");
    assert!(!r.is_premium());
    assert_eq!(r.public_network_access().as_str(), "Enabled");
    assert_eq!(r.default_action().as_str(), "Allow");
    assert_eq!(r.bypass_options().as_str(), "AzureServices");
    assert!(r.connections().is_empty());
}
