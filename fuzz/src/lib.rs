//! The checks the fuzz targets run, one function per target. They live here, not in the targets, so
//! `tests/fuzz_corpus.rs` replays every corpus and regression input through exactly the same code in
//! plain `cargo test` (it includes this file by path). Each check parses outside input the way the
//! product does and asserts what must hold for any input; a failed assertion or a panic is a crash.

use linkguard::events::{self, Target, TopicAllowList};
use linkguard::fanout::message::AuditMessage;
use linkguard::host::functions::invocation::{HttpRequestData, Invocation, TimerInfo};
use linkguard::host::functions::{
    connection_events, manual_audit, scheduled_audit, subscription_audit,
};
use linkguard::model::{Estate, ResourceId};
use linkguard::policy::{Policy, evaluate_estate};
use serde_json::Value;

/// A check: runs one input, panics when a property does not hold.
pub type Check = fn(&[u8]);

/// Every check, by target name (the `[[bin]]` names of fuzz/Cargo.toml and the directory names under
/// fuzz/corpus/ and fuzz/regressions/).
pub const CHECKS: &[(&str, Check)] = &[
    ("resource_id", resource_id),
    ("policy", policy),
    ("estate", estate),
    ("invocation", invocation),
    ("events", events),
];

/// ARM id parsing: never panics; a parsed id displays as given and re-parses to an equal id;
/// equality ignores case.
pub fn resource_id(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(id) = ResourceId::parse(text) else {
        return;
    };
    assert_eq!(id.to_string(), text.trim());
    assert_round_trips(&id);
    let upper =
        ResourceId::parse(&text.to_ascii_uppercase()).expect("case does not change validity");
    assert_eq!(upper, id);
    if let Some(parent) = id.parent() {
        assert!(id.is_within(&parent));
    }
}

/// Policy parsing and validation: any text either loads or yields an error with a message; never a
/// panic.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::parse("fuzz.toml", text) {
        Ok(policy) => {
            let _ = policy.needs_endpoints();
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// A fixed policy for the estate check: subnet and request-message rules, posture remediation.
const ESTATE_POLICY: &str = r#"
version = 1
[connections]
default = "reject"
[[connections.rules]]
name = "subnets"
action = "approve"
match.subnets = ["/subscriptions/s/resourceGroups/n/providers/Microsoft.Network/virtualNetworks/hub"]
match.request_message = "^CHG"
[network]
default_action = "Deny"
allowed_ip_ranges = ["203.0.113.0/24"]
remediate = true
"#;

/// Estate parsing (ARM and az CLI shapes) followed by evaluation under a fixed policy: never panics,
/// and the plan serialises.
pub fn estate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(estate) = Estate::from_json_str(text) else {
        return;
    };
    let policy = Policy::parse("fuzz.toml", ESTATE_POLICY).expect("the fixed policy is valid");
    let plan = evaluate_estate(&policy, &estate);
    serde_json::to_string(&plan).expect("a plan serialises");
}

/// A Functions host invocation, read the way the handler reads it: the envelope, then each input as
/// the function bound to it would (ManualAudit's HTTP request and body, the timer, an Event Grid
/// delivery, SubscriptionAudit's queue message). Never panics; a registry ManualAudit accepts is a registry id that round-trips; an
/// input found by name has that name.
pub fn invocation(data: &[u8]) {
    let Ok(inv) = Invocation::parse(data) else {
        return;
    };
    let _ = inv.method_name();
    for key in inv.data.keys() {
        let (found, _) = inv.input(key).expect("an input present by name is found");
        assert!(
            found.eq_ignore_ascii_case(key),
            "`{key}` found as `{found}`"
        );
    }
    if inv.data.len() == 1 {
        // A binding renamed in function.json still reaches its function.
        assert!(inv.input("no-such-binding").is_some());
    }

    if let Some((_, req)) = inv.input(manual_audit::BINDING) {
        manual_audit_request(req);
    }
    if let Some((_, timer)) = inv.input(scheduled_audit::BINDING) {
        let _ = TimerInfo::from_value(timer);
    }
    if let Some((_, delivery)) = inv.input(connection_events::BINDING) {
        delivery_checks(delivery.clone());
    }
    if let Some((_, message)) = inv.input(subscription_audit::BINDING) {
        let _ = subscription_audit::dequeue_count(&inv.metadata);
        if let Ok(msg) = AuditMessage::from_value(message.clone()) {
            assert!(
                msg.validate().is_ok(),
                "an accepted queue message validates"
            );
        }
    }
}

/// ManualAudit: the request, its body, and the registry it names.
fn manual_audit_request(req: &Value) {
    let Ok(req) = HttpRequestData::from_value(req) else {
        return;
    };
    let _ = req.header("Content-Type");
    let Ok(body) = manual_audit::parse_request(&req) else {
        return;
    };
    let Some(raw) = body.registry else {
        return;
    };
    if let Ok(id) = manual_audit::parse_registry(&raw) {
        assert_round_trips(&id);
        let registry = id.ancestor_of_type("Microsoft.ContainerRegistry", "registries");
        assert_eq!(registry.as_ref(), Some(&id), "an accepted id is a registry");
    }
}

/// An Event Grid or CloudEvents delivery as text (the raw webhook and Lambda bodies, and the text
/// form of the Functions input).
pub fn events(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        assert!(events::parse_text(text).is_err(), "text that is not JSON");
        return;
    };
    let parsed = events::parse_text(text);
    // A delivery that arrives as JSON text inside a string (double-encoded) reads the same.
    if matches!(value, Value::Object(_) | Value::Array(_)) {
        assert_eq!(
            events::parse_value(Value::String(text.to_string())),
            parsed,
            "double-encoded delivery"
        );
    }
    if parsed.is_ok() {
        delivery_checks(value);
    }
}

/// Parsing and selection of one delivery. Properties: every element is either an event or reported
/// malformed; with an empty allow-list, or one naming no topic of the batch, nothing is acted on (fail
/// closed); every event is selected or ignored, never both or neither; a selected target is an id of
/// the right type that round-trips.
fn delivery_checks(value: Value) {
    let elements = match events::unwrap_json_text(value.clone()) {
        Value::Array(items) => items.len(),
        Value::Object(_) => 1,
        _ => 0,
    };
    let Ok(batch) = events::parse_value(value) else {
        assert_eq!(
            elements, 0,
            "a delivery of events or a list was refused whole"
        );
        return;
    };
    assert_eq!(batch.events.len() + batch.malformed.len(), elements);
    for ev in &batch.events {
        assert!(!ev.id.trim().is_empty() && !ev.event_type.trim().is_empty());
        let _ = ev.dedupe_key();
        let _ = ev.resource_data();
    }
    let _ = events::validation_code(&batch.events);

    let none = events::select(&batch.events, &TopicAllowList::default());
    assert!(
        none.is_empty() && none.selected.is_empty(),
        "empty allow-list acted on {none:?}"
    );
    assert_eq!(none.ignored.len(), batch.events.len());
    let other = events::select(
        &batch.events,
        &TopicAllowList::parse("/fuzz/not-a-topic-of-the-batch"),
    );
    if batch.events.iter().all(|e| {
        e.topic
            .as_deref()
            .is_none_or(|t| !t.contains("not-a-topic"))
    }) {
        assert!(
            other.is_empty(),
            "a topic outside the allow-list was acted on"
        );
    }

    // Allow every topic the batch names, so selection is exercised past the allow-list.
    let topics = TopicAllowList::new(batch.events.iter().filter_map(|e| e.topic.clone()));
    let selection = events::select(&batch.events, &topics);
    assert_eq!(
        selection.selected.len() + selection.ignored.len(),
        batch.events.len()
    );
    for s in &selection.selected {
        let (id, provider, ty) = match &s.target {
            Target::Registry(id) => (id, "Microsoft.ContainerRegistry", "registries"),
            Target::Endpoint(id) => (id, "Microsoft.Network", "privateEndpoints"),
        };
        assert_round_trips(id);
        assert_eq!(id.ancestor_of_type(provider, ty).as_ref(), Some(id));
        assert!(selection.event_ids.contains(&s.event_id));
    }
    for (i, a) in selection.registries.iter().enumerate() {
        assert!(
            !selection.registries.iter().skip(i + 1).any(|b| b == a),
            "registry listed twice"
        );
    }
}

/// A parsed id displays as a text that parses back to an equal id.
fn assert_round_trips(id: &ResourceId) {
    let again = ResourceId::parse(&id.to_string()).expect("a displayed id parses");
    assert_eq!(&again, id);
}
