//! The queue message: one subscription of one fanned-out run (`linkguard.fanout/v1`).
//!
//! On the wire the message text is the JSON document, base64-encoded: that is what the Functions
//! queue trigger expects by default (`messageEncoding: base64`), and the host hands the decoded text
//! to the handler as a (double-encoded) string. Reading is tolerant: a JSON object, JSON text, JSON
//! text inside a JSON string, or base64 of any of these.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::events::{kind, unwrap_json_text};
use crate::report::Trigger;
use crate::report::sink::layout::check_run_id;

pub const MESSAGE_SCHEMA: &str = "linkguard.fanout/v1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditMessage {
    pub schema: String,
    /// The run this subscription belongs to.
    pub run: String,
    /// When the run started (RFC 3339): places the run's objects under `runs/YYYY/MM/DD/`.
    pub started: String,
    pub subscription: String,
    /// What started the run (`timer` or `cli`); the subscription report carries it.
    pub trigger: Trigger,
    /// Decide and report, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the message is {0}; expected a {MESSAGE_SCHEMA} JSON object (base64 or plain)")]
    NotAnObject(&'static str),
    #[error("the message is not a {MESSAGE_SCHEMA} document: {0}")]
    Invalid(String),
}

/// A subscription id as it may appear in a blob or file name: a GUID-like token.
pub fn check_subscription_id(id: &str) -> Result<(), String> {
    if (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(())
    } else {
        Err(format!(
            "subscription id {:?} is not a subscription GUID (1-64 letters, digits and hyphens)",
            crate::report::render::text::clean(id)
        ))
    }
}

impl AuditMessage {
    pub fn new(
        run: &str,
        started: &str,
        subscription: &str,
        trigger: Trigger,
        dry_run: bool,
    ) -> Self {
        Self {
            schema: MESSAGE_SCHEMA.to_string(),
            run: run.to_string(),
            started: started.to_string(),
            subscription: subscription.to_string(),
            trigger,
            dry_run,
        }
    }

    /// The message text to put on the queue: base64 of the JSON document.
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    /// Reads a message text (queue or trigger input) in any of the accepted forms.
    pub fn decode(text: &str) -> Result<Self, MessageError> {
        let trimmed = text.trim();
        let value = match serde_json::from_str::<Value>(trimmed) {
            Ok(v) => unwrap_json_text(v),
            Err(_) => {
                // Not JSON: base64 of JSON (the raw queue text).
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(trimmed)
                    .map_err(|_| MessageError::NotAnObject("neither JSON nor base64"))?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| MessageError::NotAnObject("base64 of bytes that are not UTF-8"))?;
                let v = serde_json::from_str::<Value>(text.trim())
                    .map_err(|_| MessageError::NotAnObject("base64 of text that is not JSON"))?;
                unwrap_json_text(v)
            }
        };
        Self::from_value(value)
    }

    /// Reads the trigger input of an invocation (`Data.<binding>`): a string in any accepted
    /// form, or the object itself.
    pub fn from_value(value: Value) -> Result<Self, MessageError> {
        let value = match unwrap_json_text(value) {
            Value::String(s) => return Self::decode(&s),
            v => v,
        };
        if !value.is_object() {
            return Err(MessageError::NotAnObject(kind(&value)));
        }
        let msg: AuditMessage =
            serde_json::from_value(value).map_err(|e| MessageError::Invalid(e.to_string()))?;
        msg.validate()?;
        Ok(msg)
    }

    /// Checks everything that becomes a name or a date.
    pub fn validate(&self) -> Result<(), MessageError> {
        if self.schema != MESSAGE_SCHEMA {
            return Err(MessageError::Invalid(format!(
                "schema is {:?}, expected {MESSAGE_SCHEMA:?}",
                crate::report::render::text::clean(&self.schema)
            )));
        }
        check_run_id(&self.run).map_err(|e| MessageError::Invalid(e.to_string()))?;
        check_subscription_id(&self.subscription).map_err(MessageError::Invalid)?;
        self.started_at()?;
        Ok(())
    }

    pub fn started_at(&self) -> Result<OffsetDateTime, MessageError> {
        OffsetDateTime::parse(&self.started, &Rfc3339).map_err(|e| {
            MessageError::Invalid(format!("started is not an RFC 3339 timestamp ({e})"))
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn msg() -> AuditMessage {
        AuditMessage::new(
            "20261125T101500Z-3f2a9c01",
            "2026-11-25T10:15:00Z",
            "11111111-1111-1111-1111-111111111111",
            Trigger::Timer,
            false,
        )
    }

    #[test]
    fn every_wire_form_reads_back() {
        let m = msg();
        let json = serde_json::to_string(&m).unwrap();
        // The raw queue text (base64), what the host hands over (JSON text, double-encoded), an object.
        assert_eq!(AuditMessage::decode(&m.encode()).unwrap(), m);
        assert_eq!(AuditMessage::decode(&json).unwrap(), m);
        assert_eq!(AuditMessage::from_value(json!(json)).unwrap(), m);
        assert_eq!(
            AuditMessage::from_value(json!(serde_json::to_string(&json).unwrap())).unwrap(),
            m
        );
        assert_eq!(
            AuditMessage::from_value(serde_json::to_value(&m).unwrap()).unwrap(),
            m
        );
        assert!(!m.encode().contains('{'), "base64 on the wire");
    }

    #[test]
    fn bad_messages_say_why() {
        assert!(matches!(
            AuditMessage::decode("aaaaa"),
            Err(MessageError::NotAnObject(_))
        ));
        assert!(matches!(
            AuditMessage::from_value(json!(5)),
            Err(MessageError::NotAnObject("a number"))
        ));
        let mut m = serde_json::to_value(msg()).unwrap();
        m["run"] = json!("../../etc");
        let e = AuditMessage::from_value(m).unwrap_err().to_string();
        assert!(e.contains("run.id"), "{e}");
        let mut m = serde_json::to_value(msg()).unwrap();
        m["subscription"] = json!("a/b");
        assert!(
            AuditMessage::from_value(m)
                .unwrap_err()
                .to_string()
                .contains("subscription id")
        );
        let mut m = serde_json::to_value(msg()).unwrap();
        m["schema"] = json!("other/v1");
        assert!(AuditMessage::from_value(m).is_err());
        let mut m = serde_json::to_value(msg()).unwrap();
        m["started"] = json!("yesterday");
        assert!(
            AuditMessage::from_value(m)
                .unwrap_err()
                .to_string()
                .contains("RFC 3339")
        );
        let mut m = serde_json::to_value(msg()).unwrap();
        m.as_object_mut().unwrap().remove("subscription");
        assert!(
            AuditMessage::from_value(m)
                .unwrap_err()
                .to_string()
                .contains("subscription")
        );
    }
}
