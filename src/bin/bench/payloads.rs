//! Invocation bodies: the real Event Grid event of the docs (ResourceWriteSuccess, Event Grid
//! schema) wrapped in the real Functions invocation envelope, with ids substituted to point at the
//! benchmark estate and a fresh event id each (so the dedupe window never short-circuits one).

use std::path::Path;

use axum::body::Bytes;
use serde_json::{Value, json};

use crate::error::{BenchError, Result};
use crate::estate::SUBSCRIPTION;
use crate::load::Prepared;

const EVENT: &str = "eventgrid/docs.event-schema-subscriptions.ResourceWriteSuccess.json";
const ENVELOPE: &str = "functions/eventgrid-invocation.json";
const CONNECTION_WRITE: &str =
    "Microsoft.ContainerRegistry/registries/privateEndpointConnections/write";

pub struct Payloads {
    event: Value,
    envelope: Value,
    binding: String,
}

impl Payloads {
    pub fn load(fixtures: &Path, repo: &Path) -> Result<Self> {
        let event = read(&fixtures.join(EVENT))?;
        let event = match event {
            Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
            other => other,
        };
        let envelope = read(&fixtures.join(ENVELOPE))?;
        // The trigger's binding name, as deployed (the host keys `Data` by it).
        let function_json = repo.join("function/ConnectionEvents/function.json");
        let binding = read(&function_json)?
            .get("bindings")
            .and_then(Value::as_array)
            .and_then(|b| {
                b.iter()
                    .find(|x| x.get("type").and_then(Value::as_str) == Some("eventGridTrigger"))
            })
            .and_then(|b| b.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                BenchError::msg(format!(
                    "{}: no eventGridTrigger binding",
                    function_json.display()
                ))
            })?;
        Ok(Self {
            event,
            envelope,
            binding,
        })
    }

    /// The docs' event with its placeholders filled for this estate.
    fn event(&self, group: &str, name: &str) -> Value {
        let text = self
            .event
            .to_string()
            .replace("{subscription-id}", SUBSCRIPTION)
            .replace("{resource-group}", group)
            .replace("{storage-name}", name)
            .replace("{tenant-id}", "00000000-0000-0000-0000-000000000000");
        let mut ev: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        set(&mut ev, "/id", json!(uuid::Uuid::new_v4().to_string()));
        ev
    }

    /// An event linkguard must ignore: a storage account written in the watched subscription.
    pub fn filtered(&self, i: usize) -> Prepared {
        let ev = self.event("rg-bench-00", &format!("stbench{i:05}"));
        self.wrap(ev)
    }

    /// A connection written on a registry: linkguard reconciles the registry (and approves its
    /// fresh Pending connection).
    pub fn connection_written(&self, connection_id: &str) -> Prepared {
        let mut ev = self.event("rg-bench-00", "unused");
        set(&mut ev, "/subject", json!(connection_id));
        set(&mut ev, "/data/resourceUri", json!(connection_id));
        set(&mut ev, "/data/authorization/scope", json!(connection_id));
        set(
            &mut ev,
            "/data/authorization/action",
            json!(CONNECTION_WRITE),
        );
        set(&mut ev, "/data/operationName", json!(CONNECTION_WRITE));
        set(
            &mut ev,
            "/data/resourceProvider",
            json!("Microsoft.ContainerRegistry"),
        );
        self.wrap(ev)
    }

    fn wrap(&self, event: Value) -> Prepared {
        let mut inv = self.envelope.clone();
        let data = event.get("data").cloned().unwrap_or(Value::Null);
        set(&mut inv, "/Data", json!({ self.binding.as_str(): event }));
        set(&mut inv, "/Metadata/data", data);
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let invocation_id = uuid::Uuid::new_v4().to_string();
        set(
            &mut inv,
            "/Metadata/sys/MethodName",
            json!("ConnectionEvents"),
        );
        set(&mut inv, "/Metadata/sys/UtcNow", json!(now));
        set(&mut inv, "/Metadata/sys/RandGuid", json!(invocation_id));
        Prepared {
            invocation_id,
            body: Bytes::from(inv.to_string()),
        }
    }
}

fn read(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| BenchError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| BenchError::msg(format!("{}: {e}", path.display())))
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
    use linkguard::events::{TopicAllowList, parse_value, select};

    fn payloads() -> Payloads {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        Payloads::load(&repo.join("../shared/fixtures"), repo).unwrap()
    }

    fn event_of(p: &Prepared) -> Value {
        let inv: Value = serde_json::from_slice(&p.body).unwrap();
        inv["Data"]["eventGridEvent"].clone()
    }

    #[test]
    fn filtered_events_are_ignored_and_connection_writes_name_their_registry() {
        let p = payloads();
        let topics = TopicAllowList::new([format!("/subscriptions/{SUBSCRIPTION}")]);
        let a = p.filtered(1);
        let b = p.filtered(1);
        assert_ne!(event_of(&a)["id"], event_of(&b)["id"], "fresh event ids");
        let batch = parse_value(event_of(&a)).unwrap();
        let sel = select(&batch.events, &topics);
        assert!(sel.is_empty(), "a storage write is not acted on");

        let registry = crate::estate::registry_id(7);
        let conn = format!("{registry}/privateEndpointConnections/pe-new.1");
        let batch = parse_value(event_of(&p.connection_written(&conn))).unwrap();
        let sel = select(&batch.events, &topics);
        assert_eq!(sel.registries.len(), 1);
        assert_eq!(
            sel.registries[0].to_string().to_lowercase(),
            registry.to_lowercase()
        );
    }
}
