//! What kind of invocation a payload is. Lambda hands every source to the same function, so the
//! payload's shape decides: an HTTP request has `requestContext.http`, an EventBridge event has
//! `detail-type` and `source`, an operator's request has `action`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::Value;

/// `detail-type` of EventBridge schedules (rules and Scheduler alike).
pub const SCHEDULED_EVENT: &str = "Scheduled Event";
/// Sources that send scheduled events: EventBridge rules and EventBridge Scheduler (whose target
/// input in infra/aws/template.yaml mimics the rule's event).
pub const SCHEDULE_SOURCES: [&str; 2] = ["aws.events", "aws.scheduler"];

#[derive(Debug)]
pub enum Invocation {
    /// Shaped like a Function URL or API Gateway v2 HTTP request (`requestContext.http`); left raw
    /// so the webhook secret is checked before anything else reads it.
    Http(Value),
    /// An EventBridge schedule: audit.
    Schedule(Schedule),
    /// Any other EventBridge event: not for linkguard.
    OtherEventBridge { detail_type: String, source: String },
    /// `{"action": ...}` from an operator.
    Operator(Value),
    /// None of the above.
    Unknown(String),
}

/// The parts of a scheduled event worth logging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub id: Option<String>,
    pub time: Option<String>,
    pub source: String,
    pub resources: Vec<String>,
}

impl Invocation {
    pub fn classify(payload: Value) -> Invocation {
        let Value::Object(obj) = &payload else {
            return Invocation::Unknown(format!(
                "the payload is {}, not an object",
                crate::events::kind(&payload)
            ));
        };
        if obj
            .get("requestContext")
            .and_then(|c| c.get("http"))
            .is_some()
        {
            return Invocation::Http(payload);
        }
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        if let (Some(detail_type), Some(source)) = (text("detail-type"), text("source")) {
            let scheduled = detail_type.eq_ignore_ascii_case(SCHEDULED_EVENT)
                && SCHEDULE_SOURCES
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(source.trim()));
            if !scheduled {
                return Invocation::OtherEventBridge {
                    detail_type,
                    source,
                };
            }
            return Invocation::Schedule(Schedule::read(payload, source));
        }
        if obj.contains_key("action") {
            return Invocation::Operator(payload);
        }
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).take(8).collect();
        keys.sort_unstable();
        Invocation::Unknown(format!(
            "an object with keys [{}]: neither a Function URL / API Gateway v2 request, an EventBridge event, nor an operator request {{\"action\": \"audit\" | \"evaluate\"}}",
            keys.join(", ")
        ))
    }
}

impl Schedule {
    /// Read with `aws_lambda_events`' `EventBridgeEvent`; a schedule whose other fields do not fit
    /// that type (e.g. a hand-written Scheduler input) is still a schedule: the audit must not be
    /// missed over a timestamp format.
    fn read(payload: Value, source: String) -> Schedule {
        match serde_json::from_value::<EventBridgeEvent>(payload.clone()) {
            Ok(ev) => Schedule {
                id: ev.id,
                time: ev.time.map(|t| t.to_rfc3339()),
                source: ev.source,
                resources: ev.resources.unwrap_or_default(),
            },
            Err(e) => {
                tracing::warn!("scheduled event read leniently ({e})");
                let text = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_string);
                Schedule {
                    id: text("id"),
                    time: text("time"),
                    source,
                    resources: Vec::new(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tells_the_sources_apart() {
        let schedule = json!({"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
            "time": "2015-10-08T16:53:06Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule"], "detail": {}});
        match Invocation::classify(schedule) {
            Invocation::Schedule(s) => {
                assert_eq!(s.time.as_deref(), Some("2015-10-08T16:53:06+00:00"));
                assert_eq!(s.resources.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        let scheduler = json!({"detail-type": "Scheduled Event", "source": "aws.scheduler",
            "time": "<aws.scheduler.scheduled-time>", "detail": {}});
        assert!(
            matches!(Invocation::classify(scheduler), Invocation::Schedule(s) if s.source == "aws.scheduler")
        );
        let ec2 = json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}});
        assert!(matches!(
            Invocation::classify(ec2),
            Invocation::OtherEventBridge { .. }
        ));
        assert!(matches!(
            Invocation::classify(json!({"action": "audit"})),
            Invocation::Operator(_)
        ));
        assert!(matches!(
            Invocation::classify(json!({"requestContext": {"http": 1}})),
            Invocation::Http(_)
        ));
        match Invocation::classify(json!({"hello": 1})) {
            Invocation::Unknown(m) => assert!(m.contains("[hello]"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Invocation::classify(json!([1])),
            Invocation::Unknown(_)
        ));
    }
}
