//! Every Event Grid fixture (real payloads, ../shared/fixtures/eventgrid) through the shared event
//! parser and selector, with the outcome expected for each file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use linkguard::events::{Schema, Target, TopicAllowList, parse_text, select, validation_code};
use linkguard::model::ResourceId;
use serde_json::{Value, json};

fn dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/eventgrid");
    assert!(d.is_dir(), "shared fixtures missing at {}", d.display());
    d
}

/// Topics of the fixtures, so selection goes past the allow-list and shows the next reason.
fn fixture_topics() -> TopicAllowList {
    TopicAllowList::parse(
        "/subscriptions/{subscription-id},/subscriptions/{subscription-id}/resourceGroups/{resource-group}",
    )
}

/// What one file must yield.
struct Expect {
    schema: Option<Schema>,
    events: usize,
    malformed: usize,
    validation: Option<&'static str>,
    /// A fragment of each event's ignore reason, in order.
    reasons: &'static [&'static str],
}

fn expected(file: &str) -> Expect {
    const OP: &str = "does not concern registry connections";
    const TOPIC: &str = "is not in LINKGUARD_EVENT_TOPICS";
    const VALIDATION: &str = "subscription validation event";
    let e = |schema, events, reasons| Expect {
        schema,
        events,
        malformed: 0,
        validation: None,
        reasons,
    };
    let eg = Some(Schema::EventGrid);
    match file {
        "docs-de.event-schema-resource-groups.cloudevents.ResourceWriteSuccess.json" => {
            e(Some(Schema::CloudEvents), 1, &[OP])
        }
        // Topic is the storage account: not listed.
        "docs.delivery-and-retry.deadletter-eventgrid-schema.json" => e(eg, 1, &[TOPIC]),
        "docs.event-schema-resource-groups.ResourceWriteSuccess.json" => e(eg, 1, &[OP]),
        "docs.event-schema-subscriptions.ResourceActionSuccess.json" => e(eg, 1, &[OP]),
        "docs.event-schema-subscriptions.ResourceDeleteSuccess.json" => e(eg, 1, &[OP]),
        "docs.event-schema-subscriptions.ResourceWriteSuccess.json" => e(eg, 1, &[OP]),
        "docs.webhook-event-delivery.SubscriptionValidationEvent.json"
        | "java-sdk-track1.EventGridSubscriptionValidationEvent.json" => Expect {
            validation: Some("512d38b6-c7b8-40c8-89fe-f46f9e9622b6"),
            ..e(eg, 1, &[VALIDATION])
        },
        // The handshake's answer is not an event.
        "docs.webhook-event-delivery.SubscriptionValidationResponse.json" => Expect {
            malformed: 1,
            ..e(None, 0, &[])
        },
        "java-sdk.EventGridEventNoArray.json" => e(eg, 1, &[TOPIC]),
        "java-sdk.MultipleEventsInSameBatch.json" => e(eg, 4, &[TOPIC, TOPIC, TOPIC, TOPIC]),
        "java-sdk.ResourceActionFailureEvent.json" => e(
            eg,
            1,
            &["`Microsoft.Resources.ResourceActionFailure` is not acted on"],
        ),
        "java-sdk.ResourceDeleteCancelEvent.json" => e(
            eg,
            1,
            &["`Microsoft.Resources.ResourceDeleteCancel` is not acted on"],
        ),
        "java-sdk.ResourceWriteFailureEvent.json" => e(
            eg,
            1,
            &["`Microsoft.Resources.ResourceWriteFailure` is not acted on"],
        ),
        "java-sdk.ResourceActionSuccessEvent.json"
        | "java-sdk.ResourceDeleteSuccessEvent.json"
        | "java-sdk.ResourceWriteSuccessEvent.json" => e(eg, 1, &[OP]),
        other => panic!("fixture {other} has no expected outcome: add it to this table"),
    }
}

fn files() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_fixture_has_its_expected_outcome() {
    let files = files();
    assert_eq!(files.len(), 17, "fixture count changed: update the table");
    for (name, text) in files {
        let want = expected(&name);
        let batch = parse_text(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(batch.events.len(), want.events, "{name}: events");
        assert_eq!(
            batch.malformed.len(),
            want.malformed,
            "{name}: malformed {:?}",
            batch.malformed
        );
        if let Some(schema) = want.schema {
            assert!(
                batch.events.iter().all(|e| e.schema == schema),
                "{name}: schema"
            );
        }
        assert_eq!(
            validation_code(&batch.events).as_deref(),
            want.validation,
            "{name}: validation"
        );
        let sel = select(&batch.events, &fixture_topics());
        assert!(
            sel.registries.is_empty() && sel.endpoints.is_empty(),
            "{name}: nothing in the fixtures names a registry"
        );
        assert_eq!(
            sel.ignored.len(),
            want.reasons.len(),
            "{name}: {:?}",
            sel.ignored
        );
        for (ignored, fragment) in sel.ignored.iter().zip(want.reasons) {
            assert!(
                ignored.reason.contains(fragment),
                "{name}: `{}` lacks `{fragment}`",
                ignored.reason
            );
        }
        // Without configured topics every event is ignored, with that reason (validation excepted).
        let none = select(&batch.events, &TopicAllowList::default());
        assert!(none.registries.is_empty() && none.endpoints.is_empty());
        for i in &none.ignored {
            assert!(
                i.reason.contains("LINKGUARD_EVENT_TOPICS is empty")
                    || i.reason.contains("subscription validation"),
                "{name}: {}",
                i.reason
            );
        }
    }
}

#[test]
fn stringified_authorization_claims_and_http_request_are_read_as_objects() {
    let text =
        std::fs::read_to_string(dir().join("java-sdk.ResourceDeleteSuccessEvent.json")).unwrap();
    let batch = parse_text(&text).unwrap();
    let data = batch.events[0].resource_data().unwrap();
    assert_eq!(data.authorization.unwrap()["scope"], "scopeValue");
    assert_eq!(data.claims.unwrap()["claimKey1"], "claimValue1");
    assert_eq!(data.http_request.unwrap()["method"], "methodValue");
    // Placeholder strings that are not JSON stay text.
    let text =
        std::fs::read_to_string(dir().join("java-sdk.ResourceActionFailureEvent.json")).unwrap();
    let data = parse_text(&text).unwrap().events[0]
        .resource_data()
        .unwrap();
    assert_eq!(
        data.authorization,
        Some(json!("{azure_resource_manager_authorizations}"))
    );
}

/// Each resource-event fixture with its ids substituted to name a registry connection (the payload
/// shape, stringified fields and schema stay as published): Success events select the registry,
/// Failure and Cancel events do not.
#[test]
fn resource_event_fixtures_naming_a_connection_select_its_registry() {
    let reg = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/acrprod01";
    let conn = format!("{reg}/privateEndpointConnections/pe-aks-weu.1a2b")
        .replace("resourceGroups", "resourcegroups");
    let topics = TopicAllowList::parse("/subscriptions/11111111-1111-1111-1111-111111111111");
    let mut checked = 0;
    for (name, text) in files() {
        let mut v: Value = serde_json::from_str(&text).unwrap();
        let events: Vec<&mut Value> = match &mut v {
            Value::Array(a) => a.iter_mut().collect(),
            obj => vec![obj],
        };
        for ev in events {
            let ty = ev
                .get("eventType")
                .or_else(|| ev.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if !ty.starts_with("Microsoft.Resources.Resource") {
                continue;
            }
            let topic_key = if ev.get("specversion").is_some() {
                "source"
            } else {
                "topic"
            };
            ev[topic_key] = json!("/subscriptions/11111111-1111-1111-1111-111111111111");
            ev["subject"] = json!(conn);
            ev["data"]["resourceUri"] = json!(conn);
            ev["data"]["operationName"] =
                json!("Microsoft.ContainerRegistry/registries/privateEndpointConnections/write");
            let batch = linkguard::events::parse_value(ev.clone()).unwrap();
            let sel = select(&batch.events, &topics);
            if ty.ends_with("Success") {
                assert_eq!(
                    sel.registries,
                    vec![ResourceId::parse(reg).unwrap()],
                    "{name}"
                );
                assert!(matches!(&sel.selected[0].target, Target::Registry(_)));
            } else {
                assert!(
                    sel.registries.is_empty(),
                    "{name}: {ty} must not be acted on"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 11, "resource events in the fixtures");
}
