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
    /// The host-facing status, `Error.code`, and fragments of both `Error.message` and `Logs`.
    Refused(u16, &'static str, &'static [&'static str]),
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
        // Queue messages that are not linkguard's (`"aaaaa"`, `{ message: "Message sent" }`). Sent to
        // SubscriptionAudit they are refused (400, a failure to the host), not acknowledged: the
        // host retries up to maxDequeueCount, then keeps them in the poison queue. Acknowledging
        // would delete them with only a log line (DESIGN: nothing is dropped silently).
        "queue-invocation-azure.json" => vec![
            ("queue", Status(404, "UnknownFunction")),
            ("ConnectionEvents", Acked(&["can never be processed"])),
            (
                "SubscriptionAudit",
                Refused(
                    400,
                    "InvalidMessage",
                    &[
                        "delivery 1: the message is neither JSON nor base64",
                        "poison queue",
                    ],
                ),
            ),
        ],
        "queue-invocation-docs.json" => vec![
            ("QueueTrigger", Status(404, "UnknownFunction")),
            ("ConnectionEvents", Acked(&["can never be processed"])),
            (
                "SubscriptionAudit",
                Refused(
                    400,
                    "InvalidMessage",
                    &[
                        "delivery 1: the message is neither JSON nor base64",
                        "poison queue",
                    ],
                ),
            ),
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
                Want::Refused(code, error, fragments) => {
                    assert_eq!(status, code, "{name} -> {function}: {answer}");
                    assert_eq!(answer["Error"]["code"], error, "{name}");
                    let message = answer["Error"]["message"].as_str().unwrap();
                    let log = logs(&answer);
                    for f in fragments {
                        assert!(message.contains(f), "{name}: `{f}` not in {message}");
                        assert!(log.contains(f), "{name}: `{f}` not in the logs\n{log}");
                    }
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

/// Why each Event Grid fixture event is ignored, by event id (a fragment of its log line
/// `event <id> ignored: <reason>`). The topic allow-list of the test names the fixtures' own
/// placeholder scopes, so the events get past the topic check and are judged on what they are.
fn eventgrid_reason(file: &str, id: &str) -> &'static str {
    EVENTGRID_REASONS
        .iter()
        .find(|(f, i, _)| *f == file && *i == id)
        .map(|(_, _, r)| *r)
        .unwrap_or_else(|| panic!("{file}: event {id} has no expected reason: add it to the table"))
}

const EVENTGRID_REASONS: &[(&str, &str, &str)] = &[
    (
        "docs-de.event-schema-resource-groups.cloudevents.ResourceWriteSuccess.json",
        "4db48cba-50a2-455a-93b4-de41a3b5b7f6",
        "operation `Microsoft.Storage/storageAccounts/write` does not concern registry connections",
    ),
    (
        "docs.delivery-and-retry.deadletter-eventgrid-schema.json",
        "93902694-901e-008f-6f95-7153a806873c",
        "topic `/subscriptions/0000000000-0000-0000-0000-000000000000000/resourceGroups/rgwithoutpolicy/providers/Microsoft.Storage/storageAccounts/myegteststgfoo` is not in LINKGUARD_EVENT_TOPICS",
    ),
    (
        "docs.event-schema-resource-groups.ResourceWriteSuccess.json",
        "4db48cba-50a2-455a-93b4-de41a3b5b7f6",
        "operation `Microsoft.Storage/storageAccounts/write` does not concern registry connections",
    ),
    (
        "docs.event-schema-subscriptions.ResourceActionSuccess.json",
        "{ID}",
        "operation `Microsoft.EventHub/namespaces/AuthorizationRules/listKeys/action` does not concern registry connections",
    ),
    (
        "docs.event-schema-subscriptions.ResourceDeleteSuccess.json",
        "19a69642-1aad-4a96-a5ab-8d05494513ce",
        "operation `Microsoft.Storage/storageAccounts/delete` does not concern registry connections",
    ),
    (
        "docs.event-schema-subscriptions.ResourceWriteSuccess.json",
        "4db48cba-50a2-455a-93b4-de41a3b5b7f6",
        "operation `Microsoft.Storage/storageAccounts/write` does not concern registry connections",
    ),
    (
        "docs.webhook-event-delivery.SubscriptionValidationEvent.json",
        "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        "subscription validation event: answered by the handshake, nothing to reconcile",
    ),
    (
        "docs.webhook-event-delivery.SubscriptionValidationResponse.json",
        "-",
        "it can never be processed: neither an Event Grid event (no `eventType`) nor a CloudEvent (no `specversion`)",
    ),
    (
        "java-sdk-track1.EventGridSubscriptionValidationEvent.json",
        "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        "subscription validation event: answered by the handshake, nothing to reconcile",
    ),
    (
        "java-sdk.EventGridEventNoArray.json",
        "4c2359fe-001e-00ba-0e04-58586806d298",
        "topic `/subscriptions/id/resourceGroups/Storage/providers/Microsoft.Storage/storageAccounts/xstoretestaccount` is not in LINKGUARD_EVENT_TOPICS",
    ),
    (
        "java-sdk.MultipleEventsInSameBatch.json",
        "4c2359fe-001e-00ba-0e04-58586806d298",
        "topic `/subscriptions/id/resourceGroups/Storage/providers/Microsoft.Storage/storageAccounts/xstoretestaccount` is not in LINKGUARD_EVENT_TOPICS",
    ),
    (
        "java-sdk.MultipleEventsInSameBatch.json",
        "602a88ef-0001-00e6-1233-1646070610ea",
        "topic `/subscriptions/319a9601-1ec0-0000-aebc-8fe82724c81e/resourceGroups/testrg/providers/Microsoft.Storage/storageAccounts/myaccount` is not in LINKGUARD_EVENT_TOPICS",
    ),
    (
        "java-sdk.MultipleEventsInSameBatch.json",
        "dede87b0-3656-419c-acaf-70c95ddc60f5",
        "topic `/subscriptions/id/resourcegroups/rg/providers/Microsoft.ServiceBus/namespaces/testns1` is not in LINKGUARD_EVENT_TOPICS",
    ),
    (
        "java-sdk.ResourceActionFailureEvent.json",
        "25b3b0d0-d79b-44d5-9963-440d4e6a9bba",
        "event type `Microsoft.Resources.ResourceActionFailure` is not acted on (only Microsoft.Resources.Resource{Write,Delete,Action}Success)",
    ),
    (
        "java-sdk.ResourceActionSuccessEvent.json",
        "25b3b0d0-d79b-44d5-9963-440d4e6a9bba",
        "operation `Microsoft.EventGrid/eventSubscriptions/write` does not concern registry connections",
    ),
    (
        "java-sdk.ResourceDeleteCancelEvent.json",
        "25b3b0d0-d79b-44d5-9963-440d4e6a9bba",
        "event type `Microsoft.Resources.ResourceDeleteCancel` is not acted on (only Microsoft.Resources.Resource{Write,Delete,Action}Success)",
    ),
    (
        "java-sdk.ResourceDeleteSuccessEvent.json",
        "25b3b0d0-d79b-44d5-9963-440d4e6a9bba",
        "operation `Microsoft.EventGrid/eventSubscriptions/write` does not concern registry connections",
    ),
    (
        "java-sdk.ResourceWriteFailureEvent.json",
        "25b3b0d0-d79b-44d5-9963-440d4e6a9bba",
        "event type `Microsoft.Resources.ResourceWriteFailure` is not acted on (only Microsoft.Resources.Resource{Write,Delete,Action}Success)",
    ),
    (
        "java-sdk.ResourceWriteSuccessEvent.json",
        "25b3b0d0-d79b-44d5-9963-440d4e6a9bba",
        "operation `Microsoft.EventGrid/eventSubscriptions/write` does not concern registry connections",
    ),
];

/// Every event id of a delivery (an object or an array of events).
fn event_ids(delivery: &Value) -> Vec<String> {
    let one = |v: &Value| v["id"].as_str().map(str::to_string);
    match delivery {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        v => one(v).into_iter().collect(),
    }
}

#[tokio::test]
async fn every_event_grid_fixture_in_a_connection_events_invocation_is_ignored_for_its_reason() {
    let topics = [
        "/subscriptions/{subscription-id}",
        "/subscriptions/{subscription-id}/resourceGroups/{resource-group}",
    ];
    let sim = sandbox().await;
    let files = fixture_files("eventgrid");
    assert_eq!(files.len(), 17);
    let mut seen = 0;
    for (name, path) in &files {
        let payload = read_json(path);
        // As delivered (object or array), and each event on its own as the trigger binding sends it.
        let mut deliveries = vec![payload.clone()];
        if let Value::Array(items) = &payload {
            deliveries.extend(items.iter().cloned());
        }
        for delivery in deliveries {
            // A fresh handler (fresh dedupe window) per delivery: the batch and its events share
            // ids, and each must reach selection rather than be skipped as a redelivery.
            let store = std::sync::Arc::new(MemoryStore::default());
            let state = linkguard::host::functions::AppState::new(
                std::sync::Arc::new(arm_client(sim.endpoint())),
                linkguard::host::functions::PolicySource::Fixed(policy()),
                store.clone(),
                options(&topics),
            );
            let server = Server::start(state).await;
            let (status, answer) = server
                .invoke("ConnectionEvents", &event_invocation(delivery.clone()))
                .await;
            assert_eq!(status, 200, "{name}: {answer}");
            assert_envelope(&answer);
            let log = logs(&answer);
            assert!(!log.contains("already processed"), "{name}: {log}");
            let mut ids = event_ids(&delivery);
            if ids.is_empty() {
                // Not an event at all (a handshake response): one line says why, keyed `-`.
                ids.push("-".into());
            }
            for id in ids {
                let needle = if id == "-" {
                    " ignored".to_string()
                } else {
                    format!("event {id} ignored: ")
                };
                let line = log
                    .lines()
                    .find(|l| l.contains(&needle))
                    .unwrap_or_else(|| panic!("{name}: no `{needle}` line in\n{log}"));
                let want = eventgrid_reason(name, &id);
                assert!(
                    line.contains(want),
                    "{name}: event {id}: `{want}` not in `{line}`"
                );
                seen += 1;
            }
            assert!(store.reports().is_empty(), "{name}: no report");
            server.stop().await;
        }
    }
    assert!(seen >= 17, "events checked: {seen}");
    assert_eq!(
        sim.handle().requests().total,
        0,
        "no fixture names a registry: ARM untouched"
    );
}

/// POSTs `body` over a raw connection while reading the answer, so a server that answers (413)
/// before it has read the whole body is seen answering: the upload may then fail with a reset or a
/// broken pipe, which is fine once the status was read.
async fn post_while_reading(base: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nx-azure-functions-invocationid: big-body\r\n\r\n",
        body.len()
    );
    let upload = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        wr.write_all(&body).await?;
        wr.flush().await
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let answer = loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(30), rd.read(&mut buf))
            .await
            .expect("the handler must answer")
            .unwrap_or(0);
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).to_string();
        if let Some((head, rest)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .expect("the answer has a Content-Length");
            if rest.len() >= len || n == 0 {
                break (head.to_string(), rest.to_string());
            }
        }
        assert!(n > 0, "connection closed before an answer: {text}");
    };
    // The upload may or may not have finished: a reset after the answer is expected.
    upload.abort();
    let status: u16 = answer.0.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body: Value = serde_json::from_str(&answer.1)
        .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {}", answer.1));
    (status, body)
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
    let (status, body) = post_while_reading(&s.base, "/ConnectionEvents", big).await;
    assert_eq!(status, 413, "{body}");
    assert_envelope(&body);
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
