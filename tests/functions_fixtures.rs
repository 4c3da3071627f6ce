//! Every invocation fixture (real host payloads, ../shared/fixtures/functions) and every Event Grid
//! fixture wrapped in a ConnectionEvents invocation, posted to the running handler over HTTP; plus
//! bad input, after which the handler still answers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod functions_support;

use functions_support::*;
use linkguard::host::functions::response::{HttpOutput, InvocationResponse};
use serde_json::{Value, json};

/// What posting a fixture must give.
enum Want {
    /// 200; `Logs` contain every fragment.
    Acked(&'static [&'static str]),
    /// 200 with `Outputs.res.statusCode` and a message fragment.
    Res(u64, &'static str),
    /// The host-facing status and `Error.code`.
    Status(u16, &'static str),
}

/// (function to post to, expectation) for each invocation fixture; several rows per file when it
/// is worth posting to more than one function.
fn plan(file: &str) -> Vec<(&'static str, Want)> {
    use Want::*;
    match file {
        // Not a trigger linkguard has: the function the host would call does not exist here.
        "blob-trigger-invocation-azure.json" => vec![
            ("blobspread", Status(404, "UnknownFunction")),
            // Misrouted to ConnectionEvents: base64 content is no event; acknowledged.
            (
                "ConnectionEvents",
                Acked(&[
                    "Data.blobIn",
                    "can never be processed",
                    "a string that is not JSON",
                ]),
            ),
        ],
        "queue-invocation-azure.json" => vec![
            ("queue", Status(404, "UnknownFunction")),
            ("ConnectionEvents", Acked(&["can never be processed"])),
        ],
        "queue-invocation-docs.json" => vec![
            ("QueueTrigger", Status(404, "UnknownFunction")),
            ("ConnectionEvents", Acked(&["can never be processed"])),
        ],
        // Event Grid schema and CloudEvents envelopes (binding named `event` in the capture).
        "eventgrid-invocation.json" => vec![(
            "ConnectionEvents",
            Acked(&[
                "Data.event",
                "event 4e773554-f6b7-4ea2-b07d-4c5fd5aba741 ignored: topic `topic` is not in LINKGUARD_EVENT_TOPICS",
            ]),
        )],
        "eventgrid-cloudevent-invocation.json" => vec![(
            "ConnectionEvents",
            Acked(&[
                "event 4e773554-f6b7-4ea2-b07d-4c5fd5aba741 ignored: topic `source` is not in LINKGUARD_EVENT_TOPICS",
            ]),
        )],
        "eventgrid-invocation-blob-created-assembled.json" => vec![(
            "ConnectionEvents",
            Acked(&[
                "event 93902694-901e-008f-6f95-7153a806873c ignored: topic",
                "nothing to reconcile",
            ]),
        )],
        // HTTP captures posted to ManualAudit: none carries a body linkguard accepts.
        "http-invocation-azure-json-body.json" => {
            vec![("ManualAudit", Res(400, "unknown field `name`"))]
        }
        "http-invocation-azure-post-text.json" => vec![("ManualAudit", Res(400, "not valid JSON"))],
        "http-invocation-azure-query-param.json" => {
            vec![("ManualAudit", Res(400, "not valid JSON"))]
        }
        "http-invocation-docs-order.json" => vec![("ManualAudit", Res(400, "unknown field `id`"))],
        "http-invocation-local-admin-key.json" => {
            vec![("ManualAudit", Res(400, "unknown field `message`"))]
        }
        "timer-invocation.json" => vec![(
            "ScheduledAudit",
            Acked(&["schedule status: last", "report stored"]),
        )],
        "timer-invocation-no-schedule-status.json" => {
            vec![(
                "ScheduledAudit",
                Acked(&["schedule status: not monitored", "report stored"]),
            )]
        }
        // Responses, not invocations: checked against the response types below.
        "response-docs-example.json" | "response-http-json-body.json" => vec![],
        other => panic!("invocation fixture {other} has no expected outcome: add it to this table"),
    }
}

#[tokio::test]
async fn every_invocation_fixture_gets_its_documented_answer() {
    let stack = Stack::start(&[SUB_TOPIC]).await;
    let files = fixture_files("functions");
    assert_eq!(files.len(), 15, "fixture count changed: update the table");
    for (name, path) in files {
        let body = read_json(&path);
        for (function, want) in plan(&name) {
            let (status, answer) = stack.server.invoke(function, &body).await;
            assert_envelope(&answer);
            match want {
                Want::Acked(fragments) => {
                    assert_eq!(status, 200, "{name} -> {function}: {answer}");
                    let log = logs(&answer);
                    for f in fragments {
                        assert!(log.contains(f), "{name} -> {function}: `{f}` not in\n{log}");
                    }
                }
                Want::Res(code, fragment) => {
                    assert_eq!(status, 200, "{name} -> {function}: {answer}");
                    let res: HttpOutput =
                        serde_json::from_value(answer["Outputs"]["res"].clone()).unwrap();
                    assert_eq!(u64::from(res.status_code), code, "{name}: {answer}");
                    assert_eq!(
                        res.headers.get("Content-Type").map(String::as_str),
                        Some("application/json")
                    );
                    let msg = res.body["error"]["message"].as_str().unwrap();
                    assert!(msg.contains(fragment), "{name}: {msg}");
                }
                Want::Status(code, error) => {
                    assert_eq!(status, code, "{name} -> {function}: {answer}");
                    assert_eq!(answer["Error"]["code"], error, "{name}");
                    if error == "UnknownFunction" {
                        assert_eq!(
                            answer["Error"]["functions"],
                            json!([
                                "ConnectionEvents",
                                "ScheduledAudit",
                                "ManualAudit",
                                "SubscriptionAudit"
                            ])
                        );
                        assert!(
                            answer["Error"]["message"]
                                .as_str()
                                .unwrap()
                                .contains(function)
                        );
                    }
                }
            }
        }
    }
    // Only the two timer fixtures ran an audit; nothing else wrote a report.
    let reports = stack.stored_reports();
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r["run"]["trigger"] == "timer"));
    assert_eq!(stack.server.ready().await, 200);
}

#[test]
fn response_fixtures_read_as_handler_responses() {
    let dir = shared_fixtures("functions");
    let docs: InvocationResponse =
        serde_json::from_value(read_json(&dir.join("response-docs-example.json"))).unwrap();
    assert_eq!(docs.logs, vec!["Log message 1", "Log message 2"]);
    assert_eq!(docs.outputs["res"]["body"], "Message enqueued");
    assert_eq!(docs.return_value, json!("{\"hello\":\"world\"}"));
    let json_body: InvocationResponse =
        serde_json::from_value(read_json(&dir.join("response-http-json-body.json"))).unwrap();
    let out: HttpOutput = serde_json::from_value(json_body.outputs["outResp"].clone()).unwrap();
    assert_eq!(out.status_code, 201);
    assert_eq!(out.body, json!({"id": "Anjana"}));
    // The host also takes the status as text.
    let text: HttpOutput = serde_json::from_value(json!({"statusCode": "204"})).unwrap();
    assert_eq!(text.status_code, 204);
    // What linkguard sends has the same members as the documented response.
    let ours = serde_json::to_value(InvocationResponse::default()).unwrap();
    assert_eq!(
        ours,
        json!({"Outputs": {}, "Logs": [], "ReturnValue": null})
    );
}

#[tokio::test]
async fn every_event_grid_fixture_in_a_connection_events_invocation_is_acknowledged() {
    let topics = [
        "/subscriptions/{subscription-id}",
        "/subscriptions/{subscription-id}/resourceGroups/{resource-group}",
    ];
    let stack = Stack::start(&topics).await;
    let files = fixture_files("eventgrid");
    assert_eq!(files.len(), 17);
    for (name, path) in &files {
        let payload = read_json(path);
        // As delivered (object or array), and each event on its own as the trigger binding sends it.
        let mut deliveries = vec![payload.clone()];
        if let Value::Array(items) = &payload {
            deliveries.extend(items.iter().cloned());
        }
        for delivery in deliveries {
            let (status, answer) = stack
                .server
                .invoke("ConnectionEvents", &event_invocation(delivery))
                .await;
            assert_eq!(status, 200, "{name}: {answer}");
            assert_envelope(&answer);
            let log = logs(&answer);
            assert!(
                log.contains(" ignored") || log.contains("already processed"),
                "{name}: every event is ignored with a reason:\n{log}"
            );
        }
    }
    assert_eq!(
        stack.sandbox().requests().total,
        0,
        "no fixture names a registry: ARM untouched"
    );
    assert!(stack.stored_reports().is_empty());
}

#[tokio::test]
async fn bad_input_gets_a_clear_status_and_the_handler_stays_up() {
    let stack = Stack::start(&[SUB_TOPIC]).await;
    let s = &stack.server;

    // Not JSON.
    let (status, body) = s
        .post_raw("/ConnectionEvents", b"{\"Data\": ".to_vec())
        .await;
    assert_eq!(status, 400, "{body}");
    assert_envelope(&body);
    assert_eq!(body["Error"]["code"], "InvalidInvocation");
    assert!(
        body["Error"]["message"]
            .as_str()
            .unwrap()
            .contains("not JSON")
    );
    let (status, _) = s.post_raw("/ManualAudit", Vec::new()).await;
    assert_eq!(status, 400);

    // Wrong types.
    let (status, body) = s.invoke("ScheduledAudit", &json!({"Data": 5})).await;
    assert_eq!(status, 400);
    assert!(
        body["Error"]["message"]
            .as_str()
            .unwrap()
            .contains("`Data` is a number")
    );
    let (status, body) = s
        .invoke("ConnectionEvents", &json!({"Data": {"eventGridEvent": 5}}))
        .await;
    assert_eq!(status, 200, "a number can never be an event: acknowledged");
    assert!(logs(&body).contains("a number"), "{body}");
    let (status, body) = s
        .invoke(
            "ConnectionEvents",
            &json!({"Data": {"eventGridEvent": {"id": 7, "eventType": ["x"]}}}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(logs(&body).contains("no `eventType`"), "{body}");
    let (status, body) = s
        .invoke("ManualAudit", &json!({"Data": {"req": [1, 2]}}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["Outputs"]["res"]["statusCode"], 400);

    // An event whose resource id is malformed: acknowledged, logged, nothing read.
    let mut ev = connection_write_event("evt-bad-id", PENDING_CONN);
    ev["data"]["resourceUri"] = json!(
        "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups//providers/Microsoft.ContainerRegistry/registries/acrprod01"
    );
    ev["subject"] = json!("");
    let (status, body) = s.invoke("ConnectionEvents", &event_invocation(ev)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        logs(&body).contains("event evt-bad-id ignored: malformed resource id"),
        "{}",
        logs(&body)
    );

    // 10 MB: refused as too large (not a transient problem, so 413 is right).
    let mut big = br#"{"Data": {"eventGridEvent": ""#.to_vec();
    big.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    big.extend(br#""}}"#);
    let (status, body) = s.post_raw("/ConnectionEvents", big).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["Error"]["message"].as_str().unwrap().contains("4 MiB"));

    // Unknown function and paths; wrong method.
    let (status, body) = s.invoke("Nope", &json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(body["Error"]["functions"][2], "ManualAudit");
    let (status, _) = s.post_raw("/a/b/c", b"{}".to_vec()).await;
    assert_eq!(status, 404);
    let resp = http()
        .get(format!("{}/ConnectionEvents", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body["Error"]["code"], "MethodNotAllowed");
    // Function names are case-insensitive, as in Azure Functions.
    let (status, _) = s.invoke("connectionevents", &json!({"Data": {}})).await;
    assert_eq!(status, 200);

    assert_eq!(stack.sandbox().requests().total, 0);
    assert_eq!(s.ready().await, 200, "still up");
    let (status, _) = s
        .invoke(
            "ScheduledAudit",
            &read_json(&shared_fixtures("functions").join("timer-invocation.json")),
        )
        .await;
    assert_eq!(status, 200, "still serving");
}
