//! Reading Event Grid schema and CloudEvents 1.0 events as producers really send them: one event or
//! an array, events as objects or as JSON text inside a string, `data` fields (`authorization`,
//! `claims`, `httpRequest`) sometimes stringified. One bad event in a batch never spoils the others.

use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// How deep JSON text nested in strings is unwrapped (`"\"{...}\""` is two levels).
const MAX_STRING_NESTING: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// Event Grid schema: `id`, `topic`, `subject`, `eventType`, `eventTime`, `data`.
    EventGrid,
    /// CloudEvents 1.0: `id`, `source`, `subject`, `type`, `time`, `specversion`, `data`.
    CloudEvents,
}

/// One event, whichever schema it came in.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub schema: Schema,
    pub id: String,
    /// `eventType` (Event Grid) or `type` (CloudEvents).
    pub event_type: String,
    /// `topic` (Event Grid) or `source` (CloudEvents).
    pub topic: Option<String>,
    pub subject: Option<String>,
    /// `eventTime` or `time`, as sent.
    pub time: Option<String>,
    /// The payload, with JSON text inside a string already unwrapped.
    pub data: Value,
}

/// An element of a batch that is not a usable event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// Position in the batch (0 for a single event).
    pub index: usize,
    /// The event id when one could be read.
    pub id: Option<String>,
    pub reason: String,
}

/// Everything a delivery carried.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedBatch {
    pub events: Vec<Event>,
    pub malformed: Vec<Malformed>,
}

/// The delivery as a whole is unusable (not JSON, or not an event or a list of events).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    #[error("the delivery is not valid JSON: {0}")]
    NotJson(String),
    #[error("the delivery is {0}; expected an event object or an array of events")]
    NotEvents(&'static str),
}

/// `resource*` events' `data` (subscription and resource-group system topics), read leniently: a
/// field of the wrong type reads as absent rather than failing the event.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceData {
    #[serde(deserialize_with = "lenient_string")]
    pub operation_name: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub resource_uri: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub resource_provider: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub status: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub subscription_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub tenant_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub correlation_id: Option<String>,
    /// Object, or JSON text, or a placeholder string: kept as it came after unwrapping. Never logged
    /// (claims describe the caller's token).
    #[serde(deserialize_with = "json_or_text")]
    pub authorization: Option<Value>,
    #[serde(deserialize_with = "json_or_text")]
    pub claims: Option<Value>,
    #[serde(deserialize_with = "json_or_text")]
    pub http_request: Option<Value>,
}

impl Event {
    /// The `data` of a resource event; `None` when `data` is not an object.
    pub fn resource_data(&self) -> Option<ResourceData> {
        match &self.data {
            Value::Object(_) => ResourceData::deserialize(&self.data).ok(),
            _ => None,
        }
    }

    /// Deduplication key: CloudEvents ids are unique per source, Event Grid ids per topic.
    pub fn dedupe_key(&self) -> String {
        format!(
            "{}\n{}",
            self.topic.as_deref().unwrap_or("").to_ascii_lowercase(),
            self.id
        )
    }
}

/// Parses a delivery given as text.
pub fn parse_text(text: &str) -> Result<ParsedBatch, EventsError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| EventsError::NotJson(e.to_string()))?;
    parse_value(value)
}

/// Parses a delivery already read as JSON: an event, an array of events, or either as JSON text
/// inside a string.
pub fn parse_value(value: Value) -> Result<ParsedBatch, EventsError> {
    let mut batch = ParsedBatch::default();
    match unwrap_json_text(value) {
        Value::Array(items) => {
            for (index, item) in items.into_iter().enumerate() {
                match parse_event(item) {
                    Ok(ev) => batch.events.push(ev),
                    Err((id, reason)) => batch.malformed.push(Malformed { index, id, reason }),
                }
            }
        }
        obj @ Value::Object(_) => match parse_event(obj) {
            Ok(ev) => batch.events.push(ev),
            Err((id, reason)) => batch.malformed.push(Malformed {
                index: 0,
                id,
                reason,
            }),
        },
        other => return Err(EventsError::NotEvents(kind(&other))),
    }
    Ok(batch)
}

/// Replaces a string holding JSON text by the JSON it holds, repeatedly (values that arrive
/// double-encoded). A string that is not JSON text is returned unchanged.
pub fn unwrap_json_text(value: Value) -> Value {
    let mut value = value;
    for _ in 0..MAX_STRING_NESTING {
        let Value::String(s) = &value else {
            return value;
        };
        match serde_json::from_str::<Value>(s) {
            Ok(inner) => value = inner,
            Err(_) => return value,
        }
    }
    value
}

/// JSON's name for the kind of a value, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string that is not JSON",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

type EventError = (Option<String>, String);

fn parse_event(value: Value) -> Result<Event, EventError> {
    let value = unwrap_json_text(value);
    let Value::Object(obj) = value else {
        return Err((
            None,
            format!("the event is {}, not an object", kind(&value)),
        ));
    };
    let id = text(&obj, "id");
    let fail = |reason: String| (id.clone(), reason);
    let schema = if obj.contains_key("specversion") {
        Schema::CloudEvents
    } else if obj.contains_key("eventType") {
        Schema::EventGrid
    } else {
        return Err(fail(
            "neither an Event Grid event (no `eventType`) nor a CloudEvent (no `specversion`)"
                .into(),
        ));
    };
    let Some(event_id) = id.clone().filter(|s| !s.trim().is_empty()) else {
        return Err(fail("the event has no `id`".into()));
    };
    let (type_key, topic_key, time_key) = match schema {
        Schema::EventGrid => ("eventType", "topic", "eventTime"),
        Schema::CloudEvents => ("type", "source", "time"),
    };
    if schema == Schema::CloudEvents {
        let version = text(&obj, "specversion").unwrap_or_default();
        if version.trim() != "1.0" {
            return Err(fail(format!(
                "CloudEvents `specversion` is `{version}`; only 1.0 is read"
            )));
        }
    }
    let Some(event_type) = text(&obj, type_key).filter(|s| !s.trim().is_empty()) else {
        return Err(fail(format!("the event has no `{type_key}`")));
    };
    let data = match obj.get("data") {
        Some(d) => unwrap_json_text(d.clone()),
        None => obj
            .get("data_base64")
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null),
    };
    Ok(Event {
        schema,
        id: event_id,
        event_type,
        topic: text(&obj, topic_key).filter(|s| !s.is_empty()),
        subject: text(&obj, "subject").filter(|s| !s.is_empty()),
        time: text(&obj, time_key),
        data,
    })
}

/// A field as text: strings as they are (unwrapping a double-encoded string), numbers printed.
fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    as_text(obj.get(key)?)
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::String(inner)) => Some(inner),
            _ => Some(s.clone()),
        },
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(as_text(&v))
}

fn json_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Null => None,
        other => Some(unwrap_json_text(other)),
    })
}
