//! `POST /webhook/eventgrid`: Event Grid delivering straight to `serve`, handshakes included.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod functions_support;

use std::sync::Arc;

use functions_support::*;
use linkguard::config::Secret;
use linkguard::host::functions::{AppState, HandlerOptions, PolicySource, SinkStore};
use linkguard::report::sink::DirSink;
use serde_json::{Value, json};

const SECRET: &str = "s3cret-for-tests-only";

async fn start(secret: Option<&str>) -> (linkguard::sim::RunningSandbox, Server, CheckedDir) {
    let sim = sandbox().await;
    // Reports checked against the schema when the test ends.
    let dir = CheckedDir::new();
    let state = AppState::new(
        Arc::new(arm_client(sim.endpoint())),
        PolicySource::Fixed(policy()),
        Arc::new(SinkStore(Arc::new(DirSink::new(dir.path())))),
        HandlerOptions {
            webhook_secret: secret.map(Secret::new),
            ..options(&[SUB_TOPIC])
        },
    );
    (sim, Server::start(state).await, dir)
}

async fn post(
    server: &Server,
    query: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, Value) {
    let mut req = http()
        .post(format!("{}/webhook/eventgrid{query}", server.base))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(body.to_string()).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        },
    )
}

#[tokio::test]
async fn off_without_a_secret() {
    let (_sim, server, _dir) = start(None).await;
    let (status, body) = post(&server, "", &[], &json!([])).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("LINKGUARD_WEBHOOK_SECRET")
    );
}

#[tokio::test]
async fn the_secret_is_required() {
    let (sim, server, _dir) = start(Some(SECRET)).await;
    let ev = json!([connection_write_event("evt-wh-0", PENDING_CONN)]);
    let (status, body) = post(&server, "", &[("aeg-event-type", "Notification")], &ev).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("MissingSecret"))
    );
    let (status, body) = post(&server, "?code=wrong", &[], &ev).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("WrongSecret"))
    );
    let (status, _) = post(
        &server,
        "",
        &[("x-linkguard-secret", "s3cret-for-tests-onlyX")],
        &ev,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(sim.handle().requests().total, 0);
}

#[tokio::test]
async fn subscription_validation_is_answered_with_the_code() {
    let (_sim, server, _dir) = start(Some(SECRET)).await;
    let eg = shared_fixtures("eventgrid");
    let delivery =
        read_json(&eg.join("docs.webhook-event-delivery.SubscriptionValidationEvent.json"));
    let (status, body) = post(
        &server,
        &format!("?code={SECRET}"),
        &[("aeg-event-type", "SubscriptionValidation")],
        &delivery,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        read_json(&eg.join("docs.webhook-event-delivery.SubscriptionValidationResponse.json"))
    );
}

#[tokio::test]
async fn cloudevents_options_handshake() {
    let (_sim, server, _dir) = start(Some(SECRET)).await;
    let resp = http()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/webhook/eventgrid?code={SECRET}", server.base),
        )
        .header("WebHook-Request-Origin", "eventemitter.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["webhook-allowed-origin"],
        "eventemitter.example.com"
    );
    assert!(resp.headers()["allow"].to_str().unwrap().contains("POST"));
    let resp = http()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/webhook/eventgrid", server.base),
        )
        .header("WebHook-Request-Origin", "eventemitter.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        401,
        "the handshake needs the secret too"
    );
}

#[tokio::test]
async fn a_notification_is_reconciled_like_connection_events() {
    let (sim, server, dir) = start(Some(SECRET)).await;
    let ev = json!([connection_write_event("evt-wh-1", PENDING_CONN)]);
    let (status, body) = post(
        &server,
        "",
        &[
            ("aeg-event-type", "Notification"),
            ("x-linkguard-secret", SECRET),
        ],
        &ev,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["report"]
            .as_str()
            .unwrap()
            .starts_with(dir.path().to_str().unwrap())
    );
    let conn = sim.handle().connection_json(PENDING_CONN).unwrap();
    assert_eq!(
        conn["properties"]["privateLinkServiceConnectionState"]["status"],
        "Approved"
    );
    // CloudEvents schema, no aeg header: read, ignored (not a registry operation).
    let ce = read_json(
        &shared_fixtures("eventgrid")
            .join("docs-de.event-schema-resource-groups.cloudevents.ResourceWriteSuccess.json"),
    );
    let (status, body) = post(&server, &format!("?code={SECRET}"), &[], &ce).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["logs"]
            .to_string()
            .contains("is not in LINKGUARD_EVENT_TOPICS"),
        "{body}"
    );
    // Not JSON: acknowledged, never a 400 to Event Grid.
    let resp = http()
        .post(format!("{}/webhook/eventgrid?code={SECRET}", server.base))
        .body("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}
