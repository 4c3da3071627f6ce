//! Shared helpers of the sandbox tests: estates built from the real ARM fixture bodies in
//! `../shared/fixtures/arm/`, and a small JSON-over-reqwest client.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Subscription of the ACR fixtures.
pub const SUB: &str = "00000000-0000-0000-0000-000000000000";
pub const RG: &str = "myResourceGroup";
/// A subscription the estate does not contain (endpoints there are not readable).
pub const FOREIGN_SUB: &str = "11111111-1111-1111-1111-111111111111";
pub const ACR: &str = "2025-11-01";
pub const NET: &str = "2025-07-01";

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/arm")
}

/// A fixture file as JSON; a missing fixture fails the test with the path it looked at.
pub fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read fixture {}: {e} (the shared/ folder must sit beside the repository)",
            path.display()
        )
    });
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", path.display()))
}

/// `responses.{status}.body` of an ARM example fixture.
pub fn fixture_body(name: &str, status: &str) -> Value {
    fixture(name)["responses"][status]["body"].clone()
}

pub fn registry_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerRegistry/registries/{name}"
    )
}

pub fn connection_id(registry: &str, name: &str) -> String {
    format!(
        "{}/privateEndpointConnections/{name}",
        registry_id(registry)
    )
}

pub fn endpoint_id(sub: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/privateEndpoints/{name}"
    )
}

/// The `PrivateEndpointConnectionGet` fixture body, moved onto `registry` with another name,
/// endpoint and state.
pub fn connection(
    registry: &str,
    name: &str,
    status: &str,
    endpoint: &str,
    description: &str,
) -> Value {
    let mut c = fixture_body("acr-2025-11-01.PrivateEndpointConnectionGet.json", "200");
    c["id"] = json!(connection_id(registry, name));
    c["name"] = json!(name);
    c["properties"]["privateEndpoint"]["id"] = json!(endpoint);
    c["properties"]["privateLinkServiceConnectionState"]["status"] = json!(status);
    c["properties"]["privateLinkServiceConnectionState"]["description"] = json!(description);
    c
}

/// The `RegistryGet` fixture body renamed to `name`, Premium (network rules need it), with these
/// connections.
pub fn registry(name: &str, connections: Vec<Value>) -> Value {
    let mut r = fixture_body("acr-2025-11-01.RegistryGet.json", "200");
    r["id"] = json!(registry_id(name));
    r["name"] = json!(name);
    r["sku"] = json!({"name": "Premium", "tier": "Premium"});
    r["properties"]["loginServer"] = json!(format!("{}.azurecr.io", name.to_lowercase()));
    r["properties"]["privateEndpointConnections"] = Value::Array(connections);
    r
}

/// The `PrivateEndpointGet` fixture body moved to `id`, targeting `registry`.
pub fn endpoint(id: &str, registry: &str) -> Value {
    let mut pe = fixture_body("network-2025-07-01.PrivateEndpointGet.json", "200");
    let name = id.rsplit('/').next().unwrap();
    pe["id"] = json!(id);
    pe["name"] = json!(name);
    pe["properties"]["privateLinkServiceConnections"][0]["id"] =
        json!(format!("{id}/privateLinkServiceConnections/{name}"));
    pe["properties"]["privateLinkServiceConnections"][0]["properties"]["privateLinkServiceId"] =
        json!(registry_id(registry));
    pe["properties"]["privateLinkServiceConnections"][0]["properties"]["groupIds"] =
        json!(["registry"]);
    pe
}

/// The usual test estate: `myRegistry0..n`; `myRegistry0` carries four connections
/// (`pending-a`, `pending-b` from the foreign subscription, `approved` = the fixture's own endpoint
/// `peexample01`, `rejected`), and `peexample01` is a readable private endpoint.
pub fn estate(registries: usize) -> Value {
    let own_pe = endpoint_id(SUB, RG, "peexample01");
    let mut regs = Vec::new();
    for i in 0..registries {
        let name = format!("myRegistry{i}");
        let conns = if i == 0 {
            vec![
                connection(
                    &name,
                    "pending-a",
                    "Pending",
                    &endpoint_id(FOREIGN_SUB, "net", "pe-a"),
                    "CHG000123 please approve",
                ),
                connection(
                    &name,
                    "pending-b",
                    "Pending",
                    &endpoint_id(FOREIGN_SUB, "net", "pe-b"),
                    "unknown requester",
                ),
                connection(&name, "approved", "Approved", &own_pe, "Auto-Approved"),
                connection(
                    &name,
                    "rejected",
                    "Rejected",
                    &endpoint_id(FOREIGN_SUB, "net", "pe-r"),
                    "no",
                ),
            ]
        } else {
            Vec::new()
        };
        regs.push(registry(&name, conns));
    }
    json!({"registries": regs, "privateEndpoints": [endpoint(&own_pe, "myRegistry0")]})
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

pub fn https(ca_pem: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca_pem).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

/// An answer: status, headers, body as JSON (`Null` when empty).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

pub async fn call(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    try_call(client, method.clone(), url, token, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

pub async fn try_call(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<Answer, reqwest::Error> {
    let mut req = client.request(method, url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(serde_json::to_vec(b).unwrap());
    }
    let resp = req.send().await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// GET with a bearer token.
pub async fn get(client: &reqwest::Client, url: &str) -> Answer {
    call(client, Method::GET, url, Some("test-token"), None).await
}

/// `{endpoint}{path}?api-version={v}`.
pub fn url(endpoint: &str, path: &str, api_version: &str) -> String {
    format!("{endpoint}{path}?api-version={api_version}")
}
