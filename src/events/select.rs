//! Which registries an event names (DESIGN 7.2). An event is a hint, never evidence: selection only
//! says what to re-read from ARM; every other event is ignored with a reason for the log.

use serde_json::{Value, json};

use super::parse::Event;
use crate::model::ResourceId;

pub const VALIDATION_EVENT_TYPE: &str = "Microsoft.EventGrid.SubscriptionValidationEvent";

/// Event types acted on: a resource operation that succeeded.
const SUCCESS_TYPES: [&str; 3] = [
    "Microsoft.Resources.ResourceWriteSuccess",
    "Microsoft.Resources.ResourceDeleteSuccess",
    "Microsoft.Resources.ResourceActionSuccess",
];
/// Connection and connection-proxy operations on a registry (`privateEndpointConnections/*`,
/// `privateEndpointConnectionProxies/*`, `privateEndpointConnectionsApproval/action`).
const CONNECTION_OPERATION_PREFIX: &str =
    "Microsoft.ContainerRegistry/registries/privateEndpointConnection";
const REGISTRY_WRITE: &str = "Microsoft.ContainerRegistry/registries/write";
const ENDPOINT_WRITE: &str = "Microsoft.Network/privateEndpoints/write";

/// The topics (Event Grid) or sources (CloudEvents) whose events are acted on
/// (`LINKGUARD_EVENT_TOPICS`). Compared ignoring case and a trailing `/`. Empty: nothing is acted on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicAllowList {
    /// As configured, for messages.
    topics: Vec<String>,
}

impl TopicAllowList {
    pub fn new<I, S>(topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out: Vec<String> = Vec::new();
        for t in topics {
            let t = t.as_ref().trim();
            if !t.is_empty() && !out.iter().any(|o| same_topic(o, t)) {
                out.push(t.to_string());
            }
        }
        Self { topics: out }
    }

    /// Reads the comma-separated form of `LINKGUARD_EVENT_TOPICS`; blank items are skipped.
    pub fn parse(csv: &str) -> Self {
        Self::new(csv.split(','))
    }

    pub fn allows(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| same_topic(t, topic))
    }

    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    pub fn topics(&self) -> &[String] {
        &self.topics
    }
}

fn same_topic(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim().trim_end_matches('/').to_string();
    norm(a).eq_ignore_ascii_case(&norm(b))
}

/// What an event asks linkguard to reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A registry (the id cut after `/registries/{name}`).
    Registry(ResourceId),
    /// A private endpoint in the consumer's subscription: resolve it, then reconcile the registries
    /// its connections target.
    Endpoint(ResourceId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selected {
    pub event_id: String,
    pub target: Target,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    pub event_id: String,
    pub reason: String,
}

/// The outcome of selection over a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Registries to reconcile, each once (ids compare ignoring case).
    pub registries: Vec<ResourceId>,
    /// Private endpoints to resolve, each once.
    pub endpoints: Vec<ResourceId>,
    /// Events not acted on, with the reason (for a log line).
    pub ignored: Vec<Ignored>,
    /// Ids of the events that named something to reconcile, in delivery order.
    pub event_ids: Vec<String>,
    /// Which event named which target, in delivery order.
    pub selected: Vec<Selected>,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.registries.is_empty() && self.endpoints.is_empty()
    }
}

/// Selects the events worth acting on.
pub fn select(events: &[Event], topics: &TopicAllowList) -> Selection {
    let mut out = Selection::default();
    for ev in events {
        match classify(ev, topics) {
            Ok(target) => {
                match &target {
                    Target::Registry(id) if !out.registries.contains(id) => {
                        out.registries.push(id.clone())
                    }
                    Target::Endpoint(id) if !out.endpoints.contains(id) => {
                        out.endpoints.push(id.clone())
                    }
                    _ => {}
                }
                if !out.event_ids.contains(&ev.id) {
                    out.event_ids.push(ev.id.clone());
                }
                out.selected.push(Selected {
                    event_id: ev.id.clone(),
                    target,
                });
            }
            Err(reason) => out.ignored.push(Ignored {
                event_id: ev.id.clone(),
                reason,
            }),
        }
    }
    out
}

/// Decides one event: the target it names, or why it is ignored.
pub fn classify(ev: &Event, topics: &TopicAllowList) -> Result<Target, String> {
    if ev.event_type.eq_ignore_ascii_case(VALIDATION_EVENT_TYPE) {
        return Err(
            "subscription validation event: answered by the handshake, nothing to reconcile".into(),
        );
    }
    let Some(topic) = ev.topic.as_deref() else {
        return Err("the event names no topic (Event Grid `topic` / CloudEvents `source`), so it cannot be checked against LINKGUARD_EVENT_TOPICS".into());
    };
    if topics.is_empty() {
        return Err(format!(
            "topic `{topic}` is not acted on: LINKGUARD_EVENT_TOPICS is empty, so every event is ignored"
        ));
    }
    if !topics.allows(topic) {
        return Err(format!("topic `{topic}` is not in LINKGUARD_EVENT_TOPICS"));
    }
    if !SUCCESS_TYPES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(&ev.event_type))
    {
        return Err(format!(
            "event type `{}` is not acted on (only Microsoft.Resources.Resource{{Write,Delete,Action}}Success)",
            ev.event_type
        ));
    }
    let Some(data) = ev.resource_data() else {
        return Err(format!(
            "malformed {} event: `data` is {}, not an object",
            ev.event_type,
            super::parse::kind(&ev.data)
        ));
    };
    let Some(operation) = data.operation_name.as_deref().map(str::trim) else {
        return Err(format!(
            "malformed {} event: `data.operationName` is missing",
            ev.event_type
        ));
    };
    let wants_registry = starts_with_ignore_case(operation, CONNECTION_OPERATION_PREFIX)
        || operation.eq_ignore_ascii_case(REGISTRY_WRITE);
    let wants_endpoint = operation.eq_ignore_ascii_case(ENDPOINT_WRITE);
    if !wants_registry && !wants_endpoint {
        return Err(format!(
            "operation `{operation}` does not concern registry connections"
        ));
    }
    // `resourceUri` is the operation target; `subject` carries the same id on resource events.
    let Some(uri) = data
        .resource_uri
        .as_deref()
        .or(ev.subject.as_deref())
        .filter(|u| !u.trim().is_empty())
    else {
        return Err(format!(
            "malformed event: operation `{operation}` without `data.resourceUri` or `subject`"
        ));
    };
    let id = ResourceId::parse(uri).map_err(|e| format!("malformed resource id: {e}"))?;
    if wants_registry {
        id.ancestor_of_type("Microsoft.ContainerRegistry", "registries")
            .map(Target::Registry)
            .ok_or_else(|| {
                format!("operation `{operation}` but resource id `{uri}` names no registry (…/providers/Microsoft.ContainerRegistry/registries/{{name}})")
            })
    } else {
        id.ancestor_of_type("Microsoft.Network", "privateEndpoints")
            .map(Target::Endpoint)
            .ok_or_else(|| {
                format!("operation `{operation}` but resource id `{uri}` names no private endpoint (…/providers/Microsoft.Network/privateEndpoints/{{name}})")
            })
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// The validation code of a subscription-validation delivery (raw webhooks answer it with
/// [`validation_response`]); `None` when the batch holds no validation event.
pub fn validation_code(events: &[Event]) -> Option<String> {
    events
        .iter()
        .filter(|e| e.event_type.eq_ignore_ascii_case(VALIDATION_EVENT_TYPE))
        .find_map(|e| {
            e.data
                .get("validationCode")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
}

/// The synchronous answer to Event Grid's validation handshake.
pub fn validation_response(code: &str) -> Value {
    json!({ "validationResponse": code })
}
