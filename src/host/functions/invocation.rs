//! The invocation the Functions host sends (`{"Data": {...}, "Metadata": {...}}`), read as tolerantly
//! as the protocol demands: strings, numbers and GUIDs may arrive double-encoded (`"\"abc\""`),
//! `Query` may be an object or JSON text, `Headers` hold arrays of strings, `Body` is raw text, base64
//! for binary content types, or absent.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::events::{kind, unwrap_json_text};

/// A parsed invocation envelope.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Invocation {
    /// One entry per input binding, keyed by the binding name of function.json.
    pub data: Map<String, Value>,
    /// Trigger metadata, including `sys` (`MethodName`, `UtcNow`, `RandGuid`).
    pub metadata: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvocationError {
    #[error(
        "the invocation body is not JSON ({0}); the Functions host sends {{\"Data\": {{...}}, \"Metadata\": {{...}}}}"
    )]
    NotJson(String),
    #[error(
        "the invocation body is {0}; expected an object {{\"Data\": {{...}}, \"Metadata\": {{...}}}}"
    )]
    NotObject(&'static str),
    #[error("`Data` is {0}; expected an object keyed by input binding name")]
    DataNotObject(&'static str),
}

impl Invocation {
    pub fn parse(body: &[u8]) -> Result<Self, InvocationError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| InvocationError::NotJson(e.to_string()))?;
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Self, InvocationError> {
        let Value::Object(mut obj) = unwrap_json_text(value) else {
            return Err(InvocationError::NotObject("not an object"));
        };
        let data = match take_ci(&mut obj, "Data").map(unwrap_json_text) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(other) => return Err(InvocationError::DataNotObject(kind(&other))),
        };
        // Metadata is informative only: a malformed one reads as empty.
        let metadata = match take_ci(&mut obj, "Metadata").map(unwrap_json_text) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        Ok(Self { data, metadata })
    }

    /// The input bound as `binding`; else, when there is exactly one input, that one (a binding
    /// renamed in function.json still works). Returns the name it was found under.
    pub fn input(&self, binding: &str) -> Option<(&str, &Value)> {
        if let Some((k, v)) = self
            .data
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(binding))
        {
            return Some((k.as_str(), v));
        }
        let mut it = self.data.iter();
        match (it.next(), it.next()) {
            (Some((k, v)), None) => Some((k.as_str(), v)),
            _ => None,
        }
    }

    /// `Metadata.sys.MethodName`: the function the host meant to call.
    pub fn method_name(&self) -> Option<String> {
        self.metadata
            .get("sys")
            .and_then(|s| s.get("MethodName"))
            .and_then(text)
    }
}

fn take_ci(obj: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let found = obj.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned()?;
    obj.remove(&found)
}

/// A value as text: strings unwrapped when double-encoded, numbers and booleans printed.
pub fn text(v: &Value) -> Option<String> {
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

/// The HTTP request of an `httpTrigger` input.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpRequestData {
    pub url: Option<String>,
    pub method: Option<String>,
    /// Repeated keys arrive joined with `,`.
    pub query: BTreeMap<String, String>,
    pub headers: Vec<(String, Vec<String>)>,
    pub params: BTreeMap<String, String>,
    /// `Body` as sent: `None` when absent (no body).
    pub body: Option<Value>,
}

impl HttpRequestData {
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let Value::Object(obj) = unwrap_json_text(v.clone()) else {
            return Err(format!(
                "the HTTP request input is {}, not an object with Url, Method, Headers, Body",
                kind(v)
            ));
        };
        let get = |k: &str| {
            obj.iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        };
        let strings = |v: Option<&Value>| -> BTreeMap<String, String> {
            match v.cloned().map(unwrap_json_text) {
                Some(Value::Object(m)) => m
                    .iter()
                    .filter_map(|(k, v)| text(v).map(|t| (k.clone(), t)))
                    .collect(),
                _ => BTreeMap::new(),
            }
        };
        let headers = match get("Headers").cloned().map(unwrap_json_text) {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| {
                    let values = match v {
                        Value::Array(items) => items.iter().filter_map(text).collect(),
                        other => text(other).into_iter().collect(),
                    };
                    (k.clone(), values)
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            url: get("Url").and_then(text),
            method: get("Method").and_then(text),
            query: strings(get("Query")),
            headers,
            params: strings(get("Params")),
            body: get("Body").filter(|b| !b.is_null()).cloned(),
        })
    }

    /// First value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }

    /// The body as text: base64 decoded for `application/octet-stream` and `multipart/*`, a
    /// double-encoded string unwrapped once, an object or array printed as JSON. `None`: no body.
    pub fn body_text(&self) -> Result<Option<String>, String> {
        let Some(body) = &self.body else {
            return Ok(None);
        };
        let content_type = self
            .header("Content-Type")
            .unwrap_or("")
            .to_ascii_lowercase();
        match body {
            Value::String(s) => {
                if content_type.starts_with("application/octet-stream")
                    || content_type.starts_with("multipart/")
                {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(s.trim())
                        .map_err(|e| {
                            format!("the body should be base64 for {content_type} ({e})")
                        })?;
                    return String::from_utf8(bytes)
                        .map(Some)
                        .map_err(|_| "the body is not UTF-8 text".to_string());
                }
                match serde_json::from_str::<Value>(s) {
                    Ok(Value::String(inner)) => Ok(Some(inner)),
                    _ => Ok(Some(s.clone())),
                }
            }
            other => Ok(Some(other.to_string())),
        }
    }
}

/// The timer input of a `timerTrigger`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimerInfo {
    pub is_past_due: bool,
    pub adjust_for_dst: Option<bool>,
    /// `None` when the host does not monitor the schedule (`ScheduleStatus: null`).
    pub last: Option<String>,
    pub next: Option<String>,
    pub last_updated: Option<String>,
}

impl TimerInfo {
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let Value::Object(obj) = unwrap_json_text(v.clone()) else {
            return Err(format!("the timer input is {}, not an object", kind(v)));
        };
        let flag = |v: Option<&Value>| match v {
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => text(other).and_then(|t| t.trim().to_ascii_lowercase().parse().ok()),
            None => None,
        };
        let status = obj.get("ScheduleStatus").cloned().map(unwrap_json_text);
        let status_field = |k: &str| status.as_ref().and_then(|s| s.get(k)).and_then(text);
        Ok(Self {
            is_past_due: flag(obj.get("IsPastDue")).unwrap_or(false),
            adjust_for_dst: flag(obj.get("Schedule").and_then(|s| s.get("AdjustForDST"))),
            last: status_field("Last"),
            next: status_field("Next"),
            last_updated: status_field("LastUpdated"),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn envelope_forms() {
        let inv = Invocation::parse(br#"{"Data": {"req": {"Method": "POST"}}, "Metadata": {"sys": {"MethodName": "\"ManualAudit\""}}}"#).unwrap();
        assert_eq!(inv.method_name().as_deref(), Some("ManualAudit"));
        assert_eq!(inv.input("REQ").map(|(k, _)| k), Some("req"));
        // The whole envelope as JSON text, Data absent, Metadata malformed.
        let inv = Invocation::from_value(json!(json!({"Metadata": 5}).to_string())).unwrap();
        assert!(inv.data.is_empty() && inv.metadata.is_empty());
        assert_eq!(
            Invocation::parse(b"{\"Data\": 5}"),
            Err(InvocationError::DataNotObject("a number"))
        );
        assert!(matches!(
            Invocation::parse(b""),
            Err(InvocationError::NotJson(_))
        ));
        assert_eq!(
            Invocation::parse(b"[1]"),
            Err(InvocationError::NotObject("not an object"))
        );
    }

    #[test]
    fn single_input_is_found_under_another_name_but_not_among_several() {
        let inv = Invocation::from_value(json!({"Data": {"event": {"id": "1"}}})).unwrap();
        assert_eq!(inv.input("eventGridEvent").map(|(k, _)| k), Some("event"));
        let inv = Invocation::from_value(json!({"Data": {"a": 1, "b": 2}})).unwrap();
        assert_eq!(inv.input("eventGridEvent"), None);
    }

    #[test]
    fn http_body_forms() {
        let req = |body: Value, ct: &str| {
            HttpRequestData::from_value(&json!({"Method": "POST", "Headers": {"Content-Type": [ct]}, "Query": "{}", "Body": body}))
                .unwrap()
        };
        let plain = req(json!("{\"dryRun\":true}"), "application/json");
        assert_eq!(
            plain.body_text().unwrap().as_deref(),
            Some("{\"dryRun\":true}")
        );
        let double = req(
            json!(json!("{\"dryRun\":true}").to_string()),
            "application/json",
        );
        assert_eq!(
            double.body_text().unwrap().as_deref(),
            Some("{\"dryRun\":true}")
        );
        let object = req(json!({"dryRun": true}), "application/json");
        assert_eq!(
            object.body_text().unwrap().as_deref(),
            Some("{\"dryRun\":true}")
        );
        let b64 = req(json!("eyJkcnlSdW4iOnRydWV9"), "application/octet-stream");
        assert_eq!(
            b64.body_text().unwrap().as_deref(),
            Some("{\"dryRun\":true}")
        );
        assert!(
            req(json!("***"), "application/octet-stream")
                .body_text()
                .is_err()
        );
        let none = HttpRequestData::from_value(&json!({"Method": "POST"})).unwrap();
        assert_eq!(none.body_text().unwrap(), None);
        assert!(plain.query.is_empty());
        assert_eq!(plain.header("content-type"), Some("application/json"));
    }

    #[test]
    fn timer_forms() {
        let t = TimerInfo::from_value(&json!({"Schedule": {"AdjustForDST": true}, "ScheduleStatus": null, "IsPastDue": "true"})).unwrap();
        assert!(t.is_past_due);
        assert_eq!(t.adjust_for_dst, Some(true));
        assert_eq!(t.next, None);
        assert!(TimerInfo::from_value(&json!(3)).is_err());
    }
}
