//! Generated estates: N registries with K connections each, every body cloned from the sample
//! estate's first registry and connection (real ARM shapes, `examples/estate.json`) with ids
//! substituted. Subscriptions and rules match `bench/policy.toml`.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::error::{BenchError, Result};

/// The governed subscription (policy scope).
pub const SUBSCRIPTION: &str = "11111111-1111-1111-1111-111111111111";
/// Endpoints in this subscription's `net-spoke-*` groups are approved by rule `spoke-networks`.
pub const SPOKE_SUBSCRIPTION: &str = "22222222-2222-2222-2222-222222222222";
const PARTNER_SUBSCRIPTION: &str = "33333333-3333-3333-3333-333333333333";

pub fn resource_group(i: usize) -> String {
    format!("rg-bench-{:02}", i % 16)
}

pub fn registry_name(i: usize) -> String {
    format!("acrbench{i:05}")
}

pub fn registry_id(i: usize) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{}/providers/Microsoft.ContainerRegistry/registries/{}",
        resource_group(i),
        registry_name(i)
    )
}

pub fn endpoint_id(subscription: &str, group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Network/privateEndpoints/{name}"
    )
}

/// The sample registry and connection bodies the estates are cloned from.
pub struct Templates {
    registry: Value,
    connection: Value,
}

impl Templates {
    pub fn load(repo: &Path) -> Result<Self> {
        let path = repo.join("examples/estate.json");
        let text = std::fs::read_to_string(&path).map_err(|e| BenchError::io(&path, e))?;
        let estate: Value = serde_json::from_str(&text)
            .map_err(|e| BenchError::msg(format!("{}: {e}", path.display())))?;
        let registry = estate
            .pointer("/registries/0")
            .cloned()
            .ok_or_else(|| BenchError::msg(format!("{}: no registries[0]", path.display())))?;
        let connection = registry
            .pointer("/properties/privateEndpointConnections/0")
            .cloned()
            .ok_or_else(|| {
                BenchError::msg(format!(
                    "{}: registries[0] has no privateEndpointConnections[0]",
                    path.display()
                ))
            })?;
        Ok(Self {
            registry,
            connection,
        })
    }

    fn connection(&self, registry: &str, name: &str, endpoint: &str, status: &str) -> Value {
        let mut c = self.connection.clone();
        set(
            &mut c,
            "/id",
            json!(format!("{registry}/privateEndpointConnections/{name}")),
        );
        set(&mut c, "/name", json!(name));
        set(&mut c, "/properties/privateEndpoint/id", json!(endpoint));
        set(
            &mut c,
            "/properties/privateLinkServiceConnectionState/status",
            json!(status),
        );
        set(
            &mut c,
            "/properties/privateLinkServiceConnectionState/description",
            json!(format!("{status} connection of the benchmark estate")),
        );
        c
    }

    /// Registry `i` with `k` connections cycling through: an approved spoke endpoint (the rule keeps
    /// it), an approved hub endpoint (no rule), a pending partner endpoint no rule matches (left
    /// for a person), a rejected quarantine endpoint.
    pub fn registry(&self, i: usize, k: usize) -> Value {
        let id = registry_id(i);
        let name = registry_name(i);
        let mut r = self.registry.clone();
        set(&mut r, "/id", json!(id));
        set(&mut r, "/name", json!(name));
        set(
            &mut r,
            "/properties/loginServer",
            json!(format!("{name}.azurecr.io")),
        );
        let connections: Vec<Value> = (0..k)
            .map(|j| {
                let (sub, group, pe, status) = match j % 4 {
                    0 => (
                        SPOKE_SUBSCRIPTION,
                        format!("net-spoke-{}", i % 8),
                        "pe-app",
                        "Approved",
                    ),
                    1 => (SUBSCRIPTION, "net-hub".to_string(), "pe-hub", "Approved"),
                    2 => (
                        PARTNER_SUBSCRIPTION,
                        "partner-build".to_string(),
                        "pe-partner",
                        "Pending",
                    ),
                    _ => (
                        SPOKE_SUBSCRIPTION,
                        "quarantine-lab".to_string(),
                        "pe-lab",
                        "Rejected",
                    ),
                };
                let pe_name = format!("{pe}-{i}-{j}");
                let endpoint = endpoint_id(sub, &group, &pe_name);
                self.connection(
                    &id,
                    &format!("{pe_name}.{:04x}", (i * 7 + j) % 0xffff),
                    &endpoint,
                    status,
                )
            })
            .collect();
        set(
            &mut r,
            "/properties/privateEndpointConnections",
            json!(connections),
        );
        r
    }

    /// Writes `{"registries": [...]}` with `n` registries of `k` connections each.
    pub fn write_estate(&self, path: &Path, n: usize, k: usize) -> Result<()> {
        let file = std::fs::File::create(path).map_err(|e| BenchError::io(path, e))?;
        let mut w = std::io::BufWriter::new(file);
        let io = |e: std::io::Error| BenchError::io(path, e);
        w.write_all(b"{\"registries\": [").map_err(io)?;
        for i in 0..n {
            if i > 0 {
                w.write_all(b",").map_err(io)?;
            }
            serde_json::to_writer(&mut w, &self.registry(i, k))
                .map_err(|e| BenchError::msg(format!("{}: {e}", path.display())))?;
        }
        w.write_all(b"]}").map_err(io)?;
        w.flush().map_err(io)
    }

    pub fn estate(&self, n: usize, k: usize) -> Value {
        json!({"registries": (0..n).map(|i| self.registry(i, k)).collect::<Vec<_>>()})
    }
}

fn set(target: &mut Value, pointer: &str, value: Value) {
    if let Some(slot) = target.pointer_mut(pointer) {
        *slot = value;
    } else if let Some((parent, key)) = pointer.rsplit_once('/')
        && let Some(obj) = target.pointer_mut(parent).and_then(Value::as_object_mut)
    {
        obj.insert(key.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_get_their_own_ids_and_the_cycle_of_connections() {
        let t = Templates::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        let r = t.registry(42, 5);
        assert_eq!(r["id"], registry_id(42));
        assert_eq!(r["name"], "acrbench00042");
        let conns = r["properties"]["privateEndpointConnections"]
            .as_array()
            .unwrap();
        let statuses: Vec<&str> = conns
            .iter()
            .map(|c| {
                c["properties"]["privateLinkServiceConnectionState"]["status"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            statuses,
            ["Approved", "Approved", "Pending", "Rejected", "Approved"]
        );
        for c in conns {
            assert!(c["id"].as_str().unwrap().starts_with(&registry_id(42)));
        }
        // The sandbox and the models accept it.
        let estate = t.estate(3, 4);
        linkguard::model::Estate::from_value(estate).unwrap();
    }
}
