//! Shared setup for end-to-end engine tests: a sandbox seeded with a synthetic estate built from the
//! real RegistryGet example body, an ARM client with fast retries, and an engine.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use linkguard::arm::credential::StaticTokenCredential;
use linkguard::arm::{ArmClient, ArmClientOptions, LroSettings, RetrySettings};
use linkguard::engine::{Engine, EngineOptions};
use linkguard::policy::Policy;
use linkguard::report::Trigger;
use linkguard::sim::{RunningSandbox, Sandbox, SimOptions};
use serde_json::{Value, json};

pub const SUB: &str = "11111111-1111-1111-1111-111111111111";
pub const PARTNER: &str = "22222222-2222-2222-2222-222222222222";

pub fn registry_id(sub: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/rg-prod/providers/Microsoft.ContainerRegistry/registries/{name}"
    )
}

pub fn endpoint_id(sub: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/net/providers/Microsoft.Network/privateEndpoints/{name}"
    )
}

fn fixture_body(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/arm")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (../shared must sit beside the repo)",
            path.display()
        )
    });
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["responses"]["200"]["body"].clone()
}

/// A Premium registry (the real RegistryGet body with ids substituted) with the given connections
/// `(name, endpoint id, status)`.
pub fn registry(sub: &str, name: &str, connections: &[(&str, &str, &str)]) -> Value {
    let mut r = fixture_body("acr-2025-11-01.RegistryGet.json");
    let id = registry_id(sub, name);
    r["id"] = json!(id);
    r["name"] = json!(name);
    r["sku"] = json!({"name": "Premium", "tier": "Premium"});
    r["properties"]["publicNetworkAccess"] = json!("Disabled");
    r["properties"]["networkRuleSet"] = json!({"defaultAction": "Deny", "ipRules": []});
    let template = fixture_body("acr-2025-11-01.PrivateEndpointConnectionGet.json");
    let conns: Vec<Value> = connections
        .iter()
        .map(|(cname, pe, status)| {
            let mut c = template.clone();
            c["id"] = json!(format!("{id}/privateEndpointConnections/{cname}"));
            c["name"] = json!(cname);
            c["properties"]["privateEndpoint"]["id"] = json!(pe);
            c["properties"]["privateLinkServiceConnectionState"] =
                json!({"status": status, "description": "please", "actionsRequired": "None"});
            c
        })
        .collect();
    r["properties"]["privateEndpointConnections"] = json!(conns);
    r
}

/// `n` registries in `SUB`, each with one Pending connection from `SUB` (approved by the test
/// policy), one Pending from `PARTNER` (left) and one Approved.
pub fn estate(n: usize) -> Value {
    let regs: Vec<Value> = (0..n)
        .map(|i| {
            let name = format!("acr{i:05}");
            registry(
                SUB,
                &name,
                &[
                    (
                        "pe-platform.1",
                        &endpoint_id(SUB, &format!("pe-platform-{i}")),
                        "Pending",
                    ),
                    (
                        "pe-partner.2",
                        &endpoint_id(PARTNER, &format!("pe-partner-{i}")),
                        "Pending",
                    ),
                    (
                        "pe-old.3",
                        &endpoint_id(SUB, &format!("pe-old-{i}")),
                        "Approved",
                    ),
                ],
            )
        })
        .collect();
    json!({"registries": regs})
}

/// Approves endpoints from `SUB`, leaves the rest pending.
pub const POLICY: &str = r#"
version = 1
[[connections.rules]]
name = "platform"
action = "approve"
match.subscriptions = ["11111111-1111-1111-1111-111111111111"]
"#;

pub fn policy(text: &str) -> Arc<Policy> {
    Arc::new(Policy::parse("test-policy.toml", text).unwrap())
}

pub async fn sandbox(estate: Value, page_size: usize, faults: &str) -> RunningSandbox {
    let options = SimOptions {
        page_size,
        faults: linkguard::sim::FaultSpec::parse(faults).unwrap(),
        retry_after_secs: 0,
        ..SimOptions::default()
    };
    Sandbox::start(estate, options)
        .await
        .expect("the sandbox starts")
}

pub fn fast_retry() -> RetrySettings {
    RetrySettings {
        max_retries: 6,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(200),
        total_deadline: Duration::from_secs(20),
        rate_limit_pause: Duration::from_millis(10),
    }
}

pub fn client(sim: &RunningSandbox, retry: RetrySettings) -> ArmClient {
    let options = ArmClientOptions {
        endpoint: sim.endpoint().to_string(),
        retry,
        lro: LroSettings {
            poll_interval: Duration::from_millis(10),
            max_poll_interval: Duration::from_secs(2),
            max_wait: Duration::from_secs(20),
        },
        ..ArmClientOptions::default()
    };
    ArmClient::new(Arc::new(StaticTokenCredential::new("test-token")), options).unwrap()
}

pub fn engine(client: ArmClient, policy: Arc<Policy>) -> Engine {
    Engine::new(
        Arc::new(client),
        policy,
        EngineOptions {
            concurrency: 8,
            dry_run: false,
            trigger: Trigger::Cli,
        },
    )
}

/// The status of a connection as the sandbox holds it now.
pub fn status_in_sim(sim: &RunningSandbox, connection_id: &str) -> String {
    let c = sim
        .connection_json(connection_id)
        .unwrap_or_else(|| panic!("{connection_id} not in the sandbox"));
    c["properties"]["privateLinkServiceConnectionState"]["status"]
        .as_str()
        .unwrap()
        .to_string()
}
