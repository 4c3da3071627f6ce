use serde_json::json;

use super::*;
use crate::model::ResourceId;

const SUB_TOPIC: &str = "/subscriptions/11111111-1111-1111-1111-111111111111";
const CONN: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/acrprod01/privateEndpointConnections/pe-aks-weu.1a2b";
const REG: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/acrprod01";

fn eg(id: &str, ty: &str, op: &str, uri: &str) -> serde_json::Value {
    json!({"id": id, "topic": SUB_TOPIC, "subject": uri, "eventType": ty, "eventTime": "2024-01-01T00:00:00Z",
           "dataVersion": "2", "metadataVersion": "1",
           "data": {"operationName": op, "resourceUri": uri, "status": "Succeeded"}})
}

fn topics() -> TopicAllowList {
    TopicAllowList::parse(&format!(" {SUB_TOPIC}/ , ,"))
}

#[test]
fn connection_write_selects_the_registry_cut_after_its_name() {
    let batch = parse_value(eg(
        "e1",
        "Microsoft.Resources.ResourceWriteSuccess",
        "Microsoft.ContainerRegistry/registries/privateEndpointConnections/write",
        CONN,
    ))
    .unwrap();
    let sel = select(&batch.events, &topics());
    assert_eq!(sel.registries, vec![ResourceId::parse(REG).unwrap()]);
    // The event's lower-case `resourcegroups` still names the same registry.
    assert!(sel.registries[0].as_str().eq_ignore_ascii_case(REG));
    assert_eq!(sel.event_ids, vec!["e1".to_string()]);
    assert!(sel.ignored.is_empty() && sel.endpoints.is_empty());
}

#[test]
fn proxy_and_registry_write_and_delete_are_selected_failure_is_not() {
    let proxy = format!("{REG}/privateEndpointConnectionProxies/pe-x.1234");
    let events = vec![
        eg(
            "a",
            "Microsoft.Resources.ResourceActionSuccess",
            "Microsoft.ContainerRegistry/registries/privateEndpointConnectionProxies/validate/action",
            &proxy,
        ),
        eg(
            "b",
            "Microsoft.Resources.ResourceWriteSuccess",
            "microsoft.containerregistry/registries/write",
            REG,
        ),
        eg(
            "c",
            "Microsoft.Resources.ResourceDeleteSuccess",
            "Microsoft.ContainerRegistry/registries/privateEndpointConnections/delete",
            CONN,
        ),
        eg(
            "d",
            "Microsoft.Resources.ResourceWriteFailure",
            "Microsoft.ContainerRegistry/registries/privateEndpointConnections/write",
            CONN,
        ),
        eg(
            "e",
            "Microsoft.Resources.ResourceDeleteSuccess",
            "Microsoft.ContainerRegistry/registries/delete",
            REG,
        ),
    ];
    let batch = parse_value(serde_json::Value::Array(events)).unwrap();
    let sel = select(&batch.events, &topics());
    assert_eq!(sel.registries.len(), 1, "one registry, named three times");
    assert_eq!(sel.event_ids, vec!["a", "b", "c"]);
    let ignored: Vec<&str> = sel.ignored.iter().map(|i| i.event_id.as_str()).collect();
    assert_eq!(ignored, vec!["d", "e"]);
    assert!(sel.ignored[0].reason.contains("ResourceWriteFailure"));
    assert!(sel.ignored[1].reason.contains("registries/delete"));
}

#[test]
fn endpoint_write_selects_the_endpoint() {
    let pe = "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/partner-ci/providers/Microsoft.Network/privateEndpoints/pe-partner-build";
    let batch = parse_value(eg(
        "p",
        "Microsoft.Resources.ResourceWriteSuccess",
        "Microsoft.Network/privateEndpoints/write",
        pe,
    ))
    .unwrap();
    let sel = select(&batch.events, &topics());
    assert_eq!(sel.endpoints, vec![ResourceId::parse(pe).unwrap()]);
    assert!(sel.registries.is_empty());
}

#[test]
fn malformed_resource_id_is_ignored_with_the_reason() {
    for bad in [
        "not-an-id",
        "/subscriptions//resourceGroups/x",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries",
    ] {
        let mut ev = eg(
            "m",
            "Microsoft.Resources.ResourceWriteSuccess",
            "Microsoft.ContainerRegistry/registries/privateEndpointConnections/write",
            bad,
        );
        ev["subject"] = json!("");
        let batch = parse_value(ev).unwrap();
        let sel = select(&batch.events, &topics());
        assert!(sel.is_empty(), "{bad}");
        assert!(
            sel.ignored[0].reason.starts_with("malformed resource id"),
            "{bad}: {}",
            sel.ignored[0].reason
        );
    }
    // A well-formed id of another type under a registry operation: ignored, says why.
    let batch = parse_value(eg(
        "n",
        "Microsoft.Resources.ResourceWriteSuccess",
        "Microsoft.ContainerRegistry/registries/write",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x",
    ))
    .unwrap();
    let sel = select(&batch.events, &topics());
    assert!(
        sel.ignored[0].reason.contains("names no registry"),
        "{}",
        sel.ignored[0].reason
    );
}

#[test]
fn topics_gate_every_event() {
    let ev = eg(
        "t",
        "Microsoft.Resources.ResourceWriteSuccess",
        "Microsoft.ContainerRegistry/registries/privateEndpointConnections/write",
        CONN,
    );
    let batch = parse_value(ev.clone()).unwrap();
    let none = select(&batch.events, &TopicAllowList::default());
    assert!(none.is_empty());
    assert!(
        none.ignored[0]
            .reason
            .contains("LINKGUARD_EVENT_TOPICS is empty")
    );
    let other = select(
        &batch.events,
        &TopicAllowList::parse("/subscriptions/99999999-9999-9999-9999-999999999999"),
    );
    assert!(
        other.ignored[0]
            .reason
            .contains("is not in LINKGUARD_EVENT_TOPICS")
    );
    // Case and a trailing slash do not matter.
    let upper = select(
        &batch.events,
        &TopicAllowList::parse(&SUB_TOPIC.to_uppercase()),
    );
    assert_eq!(upper.registries.len(), 1);
    // An event without a topic is never acted on.
    let mut no_topic = ev;
    no_topic.as_object_mut().unwrap().remove("topic");
    let batch = parse_value(no_topic).unwrap();
    assert!(
        select(&batch.events, &topics()).ignored[0]
            .reason
            .contains("names no topic")
    );
}

#[test]
fn events_as_json_text_and_stringified_data_are_read() {
    let ev = eg(
        "s",
        "Microsoft.Resources.ResourceWriteSuccess",
        "Microsoft.ContainerRegistry/registries/privateEndpointConnections/write",
        CONN,
    );
    let mut stringified_data = ev.clone();
    stringified_data["data"] = json!(ev["data"].to_string());
    let once = json!(serde_json::Value::Array(vec![stringified_data]).to_string());
    let twice = json!(once.to_string());
    for delivery in [once, twice] {
        let batch = parse_value(delivery).unwrap();
        assert_eq!(batch.events.len(), 1);
        assert_eq!(select(&batch.events, &topics()).registries.len(), 1);
    }
}

#[test]
fn cloudevents_with_base64_data_are_read() {
    use base64::Engine as _;
    let data = json!({"operationName": "Microsoft.ContainerRegistry/registries/write", "resourceUri": REG});
    let ce = json!({"specversion": "1.0", "id": "ce1", "source": SUB_TOPIC, "type": "Microsoft.Resources.ResourceWriteSuccess",
        "data_base64": base64::engine::general_purpose::STANDARD.encode(data.to_string())});
    let batch = parse_value(ce).unwrap();
    assert_eq!(batch.events[0].schema, Schema::CloudEvents);
    assert_eq!(select(&batch.events, &topics()).registries.len(), 1);
}

#[test]
fn bad_elements_are_reported_without_spoiling_the_batch() {
    let good = eg(
        "g",
        "Microsoft.Resources.ResourceWriteSuccess",
        "Microsoft.ContainerRegistry/registries/write",
        REG,
    );
    let batch = parse_value(json!([42, {"id": "x"}, {"eventType": "T"}, {"specversion": "0.3", "id": "y", "type": "t", "source": "s"}, good])).unwrap();
    assert_eq!(batch.events.len(), 1);
    let reasons: Vec<(usize, &str)> = batch
        .malformed
        .iter()
        .map(|m| (m.index, m.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 4);
    assert!(reasons[0].1.contains("a number"));
    assert!(reasons[1].1.contains("neither an Event Grid event"));
    assert!(reasons[2].1.contains("no `id`"));
    assert!(reasons[3].1.contains("specversion"));
    assert_eq!(batch.malformed[1].id.as_deref(), Some("x"));
}

#[test]
fn whole_delivery_errors() {
    assert!(matches!(
        parse_text("{not json"),
        Err(EventsError::NotJson(_))
    ));
    assert_eq!(
        parse_value(json!(5)),
        Err(EventsError::NotEvents("a number"))
    );
    assert_eq!(
        parse_value(json!("plain words")),
        Err(EventsError::NotEvents("a string that is not JSON"))
    );
    assert_eq!(parse_value(json!([])).unwrap(), ParsedBatch::default());
}

#[test]
fn validation_code_is_found_only_in_validation_events() {
    let v = json!([{"id": "v", "topic": SUB_TOPIC, "subject": "", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "data": {"validationCode": "CODE-1"}, "eventTime": "2018-01-25T22:12:19Z"}]);
    let batch = parse_value(v).unwrap();
    assert_eq!(validation_code(&batch.events).as_deref(), Some("CODE-1"));
    assert_eq!(
        validation_response("CODE-1"),
        json!({"validationResponse": "CODE-1"})
    );
    let other = parse_value(eg(
        "o",
        "Microsoft.Resources.ResourceWriteSuccess",
        "x",
        REG,
    ))
    .unwrap();
    assert_eq!(validation_code(&other.events), None);
}

#[test]
fn dedupe_key_is_per_topic_and_id() {
    let a = parse_value(eg("same", "T.x", "o", REG))
        .unwrap()
        .events
        .remove(0);
    let mut b_json = eg("same", "T.x", "o", REG);
    b_json["topic"] = json!(SUB_TOPIC.to_uppercase());
    let b = parse_value(b_json).unwrap().events.remove(0);
    assert_eq!(a.dedupe_key(), b.dedupe_key());
    let mut c_json = eg("same", "T.x", "o", REG);
    c_json["topic"] = json!("/subscriptions/other");
    let c = parse_value(c_json).unwrap().events.remove(0);
    assert_ne!(a.dedupe_key(), c.dedupe_key());
}
