//! Abuse of the Functions handler (issue 8, SECURITY.md): events from topics outside the allow-list,
//! events naming resources outside the governed scope, events whose payload claims a state, deeply
//! nested and oversized JSON, clients that stall mid-request, a ManualAudit out of scope, a policy
//! that fails validation. Everything goes over HTTP to the handler, backed by the ARM sandbox
//! through the real ARM client; the sandbox's request log says what reached ARM.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod engine_support;
mod functions_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use functions_support::*;
use linkguard::host::functions::{AppState, HandlerOptions, PolicySource, SinkStore};
use linkguard::report::sink::DirSink;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const OTHER_SUB: &str = "33333333-3333-3333-3333-333333333333";
const CONTOSO: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/acrprod01/privateEndpointConnections/pe-contoso.7a8b";
const SCAN: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/acrprod01/privateEndpointConnections/pe-scan.9c0d";
const DENIED: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/acrprod01/privateEndpointConnections/pe-denied.5c6d";
const SANDBOX_CONN: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/sandbox01/privateEndpointConnections/pe-sandbox.3e4f";
const OTHERSUB_CONN: &str = "/subscriptions/44444444-4444-4444-4444-444444444444/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/acrothersub/privateEndpointConnections/pe-other.5a6b";

/// Writes (PUT, PATCH, DELETE) the sandbox saw on exactly this resource.
fn writes_on(stack: &Stack, id: &str) -> usize {
    stack
        .sandbox()
        .requests()
        .log
        .iter()
        .filter(|r| r.method != "GET" && r.path.eq_ignore_ascii_case(id))
        .count()
}

/// A stack whose handler has the given options (timeouts, webhook secret).
async fn stack_with_options(options: HandlerOptions) -> Stack {
    let sim = sandbox().await;
    let reports_dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SinkStore(Arc::new(DirSink::new(reports_dir.path()))));
    let state = AppState::new(
        Arc::new(arm_client(sim.endpoint())),
        PolicySource::Fixed(policy()),
        store,
        options,
    );
    let server = Server::start(state).await;
    Stack {
        sim,
        server,
        reports_dir,
    }
}

#[tokio::test]
async fn events_from_topics_outside_the_allow_list_are_ignored_without_any_arm_call() {
    let stack = Stack::start(&[SUB_TOPIC]).await;
    let cases: Vec<(&str, Option<String>)> = vec![
        (
            "evt-foreign-subscription",
            Some("/subscriptions/99999999-9999-9999-9999-999999999999".into()),
        ),
        // Allow-list entries are whole topics, not prefixes.
        ("evt-prefix", Some(format!("{SUB_TOPIC}-evil"))),
        (
            "evt-resource-group-topic",
            Some(format!("{SUB_TOPIC}/resourceGroups/rg-prod-weu")),
        ),
        ("evt-no-topic", None),
    ];
    for (id, topic) in cases {
        let mut ev = connection_write_event(id, PENDING_CONN);
        match &topic {
            Some(t) => ev["topic"] = json!(t),
            None => {
                ev.as_object_mut().unwrap().remove("topic");
            }
        }
        let (status, body) = stack
            .server
            .invoke("ConnectionEvents", &event_invocation(ev))
            .await;
        assert_eq!(status, 200, "{id}: acknowledged, never retried: {body}");
        let log = logs(&body);
        assert!(log.contains(&format!("event {id} ignored")), "{id}: {log}");
    }
    // The same as a CloudEvent: the real Event Grid CloudEvents payload, `source` foreign.
    let mut ce = read_json(
        &shared_fixtures("eventgrid")
            .join("docs-de.event-schema-resource-groups.cloudevents.ResourceWriteSuccess.json"),
    )[0]
    .clone();
    ce["id"] = json!("ce-foreign");
    ce["source"] = json!("/subscriptions/99999999-9999-9999-9999-999999999999");
    ce["subject"] = json!(PENDING_CONN);
    ce["data"]["resourceUri"] = json!(PENDING_CONN);
    ce["data"]["operationName"] =
        json!("Microsoft.ContainerRegistry/registries/privateEndpointConnections/write");
    let (status, body) = stack
        .server
        .invoke("ConnectionEvents", &event_invocation(ce))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        logs(&body).contains("event ce-foreign ignored: topic `/subscriptions/9999"),
        "{}",
        logs(&body)
    );

    assert_eq!(
        stack.sandbox().requests().total,
        0,
        "no ARM call for a foreign topic"
    );
    assert!(stack.stored_reports().is_empty());
    assert_eq!(stack.connection_status(PENDING_CONN), "Pending");
}

#[tokio::test]
async fn events_naming_resources_outside_the_governed_scope_make_no_arm_call() {
    let stack = Stack::start(&[SUB_TOPIC]).await;
    let storage = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.Storage/storageAccounts/acrprod01";
    let other_group = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-dev-weu/providers/Microsoft.ContainerRegistry/registries/acrdev/privateEndpointConnections/pe-x.1";
    let cases: Vec<(&str, &str, Option<&str>)> = vec![
        // Excluded by name (`exclude_registries = ["sandbox*"]`).
        ("evt-excluded", SANDBOX_CONN, None),
        // Another subscription than scope.subscriptions, announced on an allowed topic.
        ("evt-other-subscription", OTHERSUB_CONN, None),
        // A resource group outside `rg-prod-*`.
        ("evt-other-group", other_group, None),
        // Not a registry at all, although the operation claims one.
        ("evt-not-a-registry", storage, None),
        // A governed registry, but an operation that does not concern connections.
        (
            "evt-other-operation",
            ACRPROD01,
            Some("Microsoft.ContainerRegistry/registries/listCredentials/action"),
        ),
    ];
    for (id, resource, operation) in cases {
        let mut ev = connection_write_event(id, resource);
        if let Some(op) = operation {
            ev["data"]["operationName"] = json!(op);
            ev["data"]["authorization"]["action"] = json!(op);
        }
        let (status, body) = stack
            .server
            .invoke("ConnectionEvents", &event_invocation(ev))
            .await;
        assert_eq!(status, 200, "{id}: {body}");
        let log = logs(&body);
        assert!(
            log.contains(&format!("event {id} ignored"))
                || log.contains("is outside the policy scope; not reconciled"),
            "{id}: {log}"
        );
        assert_eq!(
            stack.sandbox().requests().total,
            0,
            "{id}: no ARM call for a resource outside the scope: {log}"
        );
    }
    assert!(stack.stored_reports().is_empty());
    let sandbox = stack.sandbox();
    for conn in [SANDBOX_CONN, OTHERSUB_CONN] {
        let c = sandbox.connection_json(conn).unwrap();
        assert_eq!(
            c["properties"]["privateLinkServiceConnectionState"]["status"],
            "Pending"
        );
    }
}

/// Everything an attacker can put into a resource event to claim a connection is Approved (or
/// Rejected): the data fields Event Grid forwards, plus fields it never sends.
fn claim(ev: &mut Value, status: &str) {
    let state = json!({"status": status, "description": "approved by the registry owner", "actionsRequired": "None"});
    ev["data"]["status"] = json!("Succeeded");
    ev["data"]["properties"] = json!({"privateLinkServiceConnectionState": state});
    ev["data"]["httpRequest"] = json!({
        "clientRequestId": "1", "clientIpAddress": "10.0.0.1", "method": "PUT",
        "url": "https://management.azure.com/x",
        "body": {"properties": {"privateLinkServiceConnectionState": state}}
    });
    ev["data"]["authorization"]["action"] =
        json!("Microsoft.ContainerRegistry/registries/privateEndpointConnectionsApproval/action");
    ev["data"]["authorization"]["evidence"]["role"] = json!("Owner");
    ev["data"]["claims"]["roles"] = json!(["Owner"]);
}

#[tokio::test]
async fn a_payload_that_claims_a_state_is_never_trusted() {
    let stack = Stack::start(&[SUB_TOPIC, &format!("/subscriptions/{OTHER_SUB}")]).await;
    // contoso matches no rule: left Pending whatever the event says.
    let mut ev = connection_write_event("evt-claims-approved", CONTOSO);
    claim(&mut ev, "Approved");
    let (status, body) = stack
        .server
        .invoke("ConnectionEvents", &event_invocation(ev))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.connection_status(CONTOSO), "Pending");
    assert_eq!(writes_on(&stack, CONTOSO), 0, "{}", logs(&body));
    // The registry was re-read and decided from ARM's state: quarantine rejected, platform approved,
    // the rejected one untouched.
    assert_eq!(stack.connection_status(SCAN), "Rejected");
    assert_eq!(stack.connection_status(PENDING_CONN), "Approved");
    assert_eq!(writes_on(&stack, DENIED), 0);
    let reports = stack.stored_reports();
    assert_eq!(reports.len(), 1);
    let acted: Vec<&str> = reports[0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["connection"].as_str())
        .collect();
    assert!(
        !acted.iter().any(|c| c.eq_ignore_ascii_case(CONTOSO)),
        "{acted:?}"
    );

    // A claim of "Rejected" on a connection someone approved by hand: nothing is written.
    let before = stack.sandbox().requests().count_method("PUT");
    let mut ev = connection_write_event("evt-claims-rejected", PENDING_CONN);
    claim(&mut ev, "Rejected");
    let (status, body) = stack
        .server
        .invoke("ConnectionEvents", &event_invocation(ev))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.connection_status(PENDING_CONN), "Approved");
    assert_eq!(stack.sandbox().requests().count_method("PUT"), before);

    // An endpoint write whose payload claims the endpoint targets acrprod01, while ARM does not let
    // linkguard read it (another subscription, 403): the payload's target is not used.
    let forged = format!(
        "/subscriptions/{OTHER_SUB}/resourceGroups/contoso-apps/providers/Microsoft.Network/privateEndpoints/pe-contoso"
    );
    let mut ev = connection_write_event("evt-forged-endpoint", &forged);
    ev["topic"] = json!(format!("/subscriptions/{OTHER_SUB}"));
    ev["data"]["operationName"] = json!("Microsoft.Network/privateEndpoints/write");
    ev["data"]["properties"] = json!({"privateLinkServiceConnections": [{"properties": {"privateLinkServiceId": ACRPROD01, "privateLinkServiceConnectionState": {"status": "Approved"}}}]});
    let reads_before = stack.sandbox().requests().count("get-registry");
    let (status, body) = stack
        .server
        .invoke("ConnectionEvents", &event_invocation(ev))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        logs(&body).contains(&format!(
            "private endpoint {forged} not resolved: linkguard may not read it"
        )),
        "{}",
        logs(&body)
    );
    assert_eq!(
        stack.sandbox().requests().count("get-registry"),
        reads_before,
        "the payload's target is not trusted"
    );
    assert_eq!(stack.connection_status(CONTOSO), "Pending");
    assert_eq!(writes_on(&stack, CONTOSO), 0);
}

/// `depth` nested JSON arrays: `[[[...]]]`.
fn nested_arrays(depth: usize) -> String {
    let mut s = String::with_capacity(depth * 2);
    s.extend(std::iter::repeat_n('[', depth));
    s.extend(std::iter::repeat_n(']', depth));
    s
}

fn nested_objects(depth: usize) -> String {
    let mut s = String::with_capacity(depth * 7);
    s.extend(std::iter::repeat_n("{\"a\":", depth));
    s.push('1');
    s.extend(std::iter::repeat_n('}', depth));
    s
}

#[tokio::test]
async fn deeply_nested_and_oversized_json_is_refused_and_the_handler_stays_up() {
    let stack = stack_with_options(HandlerOptions {
        webhook_secret: Some(linkguard::config::Secret::new("abuse-webhook-secret")),
        ..options(&[SUB_TOPIC])
    })
    .await;
    let s = &stack.server;
    let deep = 100_000;

    // The whole invocation 100k arrays deep: not an invocation.
    let (status, body) = s
        .post_raw("/ConnectionEvents", nested_arrays(deep).into_bytes())
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["Error"]["code"], "InvalidInvocation");
    assert!(
        body["Error"]["message"]
            .as_str()
            .unwrap()
            .contains("recursion limit"),
        "{body}"
    );
    // An event 100k objects deep inside a real envelope: same.
    let inv = format!(
        "{{\"Data\": {{\"eventGridEvent\": {}}}, \"Metadata\": {{}}}}",
        nested_objects(deep)
    );
    let (status, body) = s.post_raw("/ConnectionEvents", inv.into_bytes()).await;
    assert_eq!(status, 400, "{body}");
    // Double-encoded (JSON text in a string, as the host may send): the inner text is not JSON
    // that can be read, so the delivery can never be processed: acknowledged, nothing read.
    let inv = json!({"Data": {"eventGridEvent": nested_arrays(deep)}, "Metadata": {}});
    let (status, body) = s.invoke("ConnectionEvents", &inv).await;
    assert_eq!(status, 200, "{body}");
    assert!(logs(&body).contains("ignored"), "{}", logs(&body));
    // Timer and ManualAudit bodies.
    let (status, _) = s
        .post_raw("/ScheduledAudit", nested_objects(deep).into_bytes())
        .await;
    assert_eq!(status, 400);
    let mut manual =
        read_json(&shared_fixtures("functions").join("http-invocation-local-admin-key.json"));
    manual["Data"]["req"]["Body"] = json!(nested_arrays(deep));
    let (status, body) = s.invoke("ManualAudit", &manual).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Outputs"]["res"]["statusCode"], 400, "{body}");
    // The raw webhook: a body that is not readable JSON is acknowledged, never retried.
    let resp = http()
        .post(format!("{}/webhook/eventgrid", s.base))
        .header("x-linkguard-secret", "abuse-webhook-secret")
        .header("aeg-event-type", "Notification")
        .body(nested_arrays(deep))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.text().await.unwrap().contains("not JSON"));

    // Oversized: with a Content-Length, and streamed without one (chunked).
    let five_mib = 5 * 1024 * 1024;
    let (status, body) = s.post_raw("/ConnectionEvents", vec![b' '; five_mib]).await;
    assert_eq!(status, 413, "{body}");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..80).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
    let resp = http()
        .post(format!("{}/ConnectionEvents", s.base))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert!(
        body["Error"]["message"].as_str().unwrap().contains("4 MiB"),
        "{body}"
    );
    let resp = http()
        .post(format!("{}/webhook/eventgrid", s.base))
        .header("x-linkguard-secret", "abuse-webhook-secret")
        .body(vec![b' '; five_mib])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);

    assert_eq!(stack.sandbox().requests().total, 0, "nothing reached ARM");
    assert!(
        !s.task.as_ref().unwrap().is_finished(),
        "the server task is alive"
    );
    assert_eq!(s.ready().await, 200, "still up");
    let (status, body) = s
        .invoke(
            "ConnectionEvents",
            &event_invocation(connection_write_event("evt-after-abuse", PENDING_CONN)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.connection_status(PENDING_CONN), "Approved");
}

/// Reads until the server closes the connection (or `limit` passes); returns what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&buf).into_owned()),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn a_client_that_stalls_mid_request_is_cut_off_and_others_are_still_served() {
    // The header timeout is the window in which "served while others stall" is observed: long enough
    // that a loaded 2-core machine answers one GET inside it, short enough to wait for.
    let header_timeout = Duration::from_secs(3);
    let timeout = Duration::from_millis(800);
    let stack = stack_with_options(HandlerOptions {
        header_read_timeout: header_timeout,
        body_read_timeout: timeout,
        webhook_secret: Some(linkguard::config::Secret::new("slow-secret")),
        ..options(&[SUB_TOPIC])
    })
    .await;
    let addr = stack.server.base.trim_start_matches("http://").to_string();

    // Fifty clients that send half their headers and stall.
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut c = TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"POST /ConnectionEvents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
            .await
            .unwrap();
        stalled.push(c);
    }
    // Meanwhile another client is served, and (the outcome that matters) every stalled connection
    // is still open when it gets its answer: the server did not have to cut them off first.
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(30), stack.server.ready())
        .await
        .expect("a client is answered while fifty others stall");
    assert_eq!(status, 200);
    let served_after = started.elapsed();
    let mut probe = [0u8; 64];
    for (i, c) in stalled.iter_mut().enumerate() {
        // Polled once: pending means open with nothing sent; 0 bytes means already closed.
        let open = tokio::time::timeout(Duration::ZERO, c.read(&mut probe))
            .await
            .is_err();
        assert!(
            open,
            "stalled client {i} was cut off before another client was served (served after \
             {served_after:?}, header timeout {header_timeout:?})"
        );
    }
    // Each stalled connection is closed once the header timeout passes (no answer is owed).
    for c in &mut stalled {
        let got = read_until_closed(c, header_timeout + Duration::from_secs(10)).await;
        assert!(got.is_some(), "a half-sent request held its connection");
    }
    let took = started.elapsed();
    assert!(
        took < header_timeout + Duration::from_secs(5),
        "closed after {took:?} (header timeout {header_timeout:?})"
    );

    // Headers complete, body stalls after 10 of 1000 bytes: 408 once the body timeout passes.
    for path in ["/ConnectionEvents", "/webhook/eventgrid"] {
        let mut c = TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nx-linkguard-secret: slow-secret\r\nContent-Length: 1000\r\n\r\n{{\"Data\": {{"
        );
        let started = Instant::now();
        c.write_all(head.as_bytes()).await.unwrap();
        let answer = read_until_closed(&mut c, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{path}: a stalled body held its connection"));
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("did not arrive within"), "{path}: {answer}");
        assert!(started.elapsed() >= timeout.mul_f32(0.9));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    // A body trickled one byte at a time, each within the timeout: the deadline is for the whole
    // body, so the trickle does not keep the connection forever.
    let mut c = TcpStream::connect(&addr).await.unwrap();
    c.write_all(
        b"POST /ConnectionEvents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = c.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut answer))
        .await
        .expect("the trickling client gets an answer within the body timeout")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
    trickle.abort();

    assert_eq!(stack.server.ready().await, 200, "still up");
    assert_eq!(stack.sandbox().requests().total, 0);
}

#[test]
fn the_default_timeouts_bound_a_stalled_client() {
    let d = HandlerOptions::default();
    assert!(
        d.header_read_timeout > Duration::ZERO && d.header_read_timeout <= Duration::from_secs(30)
    );
    // Event Grid wants an answer within 30 s.
    assert!(d.body_read_timeout > Duration::ZERO && d.body_read_timeout <= Duration::from_secs(30));
}

fn manual(body: Value) -> Value {
    let mut inv =
        read_json(&shared_fixtures("functions").join("http-invocation-local-admin-key.json"));
    inv["Data"]["req"]["Body"] = body;
    inv
}

#[tokio::test]
async fn a_manual_audit_of_a_registry_outside_the_scope_is_refused_with_a_clear_message() {
    let stack = Stack::start(&[SUB_TOPIC]).await;
    let sandbox01 = SANDBOX_CONN
        .split("/privateEndpointConnections")
        .next()
        .unwrap();
    let othersub = OTHERSUB_CONN
        .split("/privateEndpointConnections")
        .next()
        .unwrap();
    for registry in [sandbox01, othersub] {
        let body = json!({"registry": registry}).to_string();
        let (status, resp) = stack
            .server
            .invoke("ManualAudit", &manual(json!(body)))
            .await;
        assert_eq!(status, 200, "client errors go through Outputs.res: {resp}");
        let res = &resp["Outputs"]["res"];
        assert_eq!(res["statusCode"], 422, "{resp}");
        assert_eq!(res["body"]["error"]["code"], "OutOfScope");
        let message = res["body"]["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(registry) && message.contains("outside the policy scope"),
            "{message}"
        );
    }
    // A connection id where a registry id belongs: 400, naming the expected shape.
    let body = json!({"registry": OTHERSUB_CONN}).to_string();
    let (_, resp) = stack
        .server
        .invoke("ManualAudit", &manual(json!(body)))
        .await;
    assert_eq!(resp["Outputs"]["res"]["statusCode"], 400, "{resp}");
    assert!(
        resp["Outputs"]["res"]["body"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is not a registry id")
    );
    assert_eq!(stack.sandbox().requests().total, 0, "nothing read");
    assert!(stack.stored_reports().is_empty());
}

#[tokio::test]
async fn a_policy_that_fails_validation_fails_closed_everywhere_and_the_report_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::copy(repo().join("examples/policy.toml"), &file).unwrap();
    let stack = Stack::start_with(&[SUB_TOPIC], PolicySource::File(file.clone())).await;
    // Well-formed TOML, but a rule whose CIDR is wrong: validation, not parsing, refuses it.
    let broken = "version = 1\n\n[[connections.rules]]\nname = \"wide-open\"\naction = \"approve\"\nmatch.subscriptions = [\"11111111-1111-1111-1111-111111111111\"]\n\n[network]\nallowed_ip_ranges = [\"10.0.0.0/33\"]\n";
    std::fs::write(&file, broken).unwrap();

    let timer = read_json(&shared_fixtures("functions").join("timer-invocation.json"));
    let (status, body) = stack.server.invoke("ScheduledAudit", &timer).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["Error"]["code"], "PolicyInvalid");
    let (status, body) = stack
        .server
        .invoke(
            "ConnectionEvents",
            &event_invocation(connection_write_event("evt-broken-policy", PENDING_CONN)),
        )
        .await;
    assert_eq!(status, 500, "retried until the policy is fixed: {body}");
    let (status, body) = stack.server.invoke("ManualAudit", &manual(json!(""))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Outputs"]["res"]["statusCode"], 500);
    assert_eq!(
        body["Outputs"]["res"]["body"]["error"]["code"],
        "PolicyInvalid"
    );

    assert_eq!(
        stack.sandbox().requests().total,
        0,
        "fail closed: nothing read or written"
    );
    let reports = stack.stored_reports();
    assert_eq!(reports.len(), 3, "every run reported");
    for r in &reports {
        assert_eq!(r["complete"], false);
        assert_eq!(r["run"]["mode"], "dry-run");
        assert!(r["actions"].as_array().unwrap().is_empty());
        let err = &r["errors"][0];
        assert_eq!(err["scope"], "policy");
        let msg = err["message"].as_str().unwrap();
        assert!(
            msg.contains("policy.toml") && msg.contains("10.0.0.0/33"),
            "the error names the file and the bad value: {msg}"
        );
        assert_eq!(
            r["run"]["policy_sha256"].as_str().unwrap().len(),
            64,
            "the broken version is identified"
        );
    }
    assert_eq!(stack.connection_status(PENDING_CONN), "Pending");
}

mod credentials {
    //! Tokens that expire during a run: the sandbox refuses a token past its expiry (401
    //! `ExpiredAuthenticationToken`, as ARM does); a credential that refreshes ahead of expiry, like
    //! `azure_identity`'s, keeps a long run going; one that does not is caught.

    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
    use linkguard::arm::{ArmClient, ArmClientOptions, LroSettings, RetrySettings};
    use linkguard::engine::{Engine, EngineOptions};
    use linkguard::policy::Policy;
    use linkguard::report::Trigger;
    use linkguard::sim::{FaultSpec, Sandbox, SimOptions};
    use serde_json::Value;

    use super::engine_support;

    const N: usize = 40;

    /// Issues a new token when the current one is within `margin` of its expiry (or, with
    /// `refresh: false`, never again). Every token issued is registered with its expiry in `issued`.
    #[derive(Debug)]
    struct RotatingCredential {
        lifetime: Duration,
        margin: Duration,
        refresh: bool,
        current: Mutex<Option<(String, Instant)>>,
        issued: Arc<Mutex<HashMap<String, Instant>>>,
    }

    #[async_trait::async_trait]
    impl TokenCredential for RotatingCredential {
        async fn get_token(
            &self,
            _scopes: &[&str],
            _options: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            let mut current = self.current.lock().unwrap();
            let now = Instant::now();
            let fresh = !matches!(current.as_ref(), Some((_, expiry)) if !self.refresh || *expiry > now + self.margin);
            if fresh {
                let mut issued = self.issued.lock().unwrap();
                let token = format!("rotating-token-{}-{}", issued.len(), uuid::Uuid::new_v4());
                issued.insert(token.clone(), now + self.lifetime);
                *current = Some((token, now + self.lifetime));
            }
            let (token, expiry) = current.clone().unwrap();
            let left = expiry.saturating_duration_since(now);
            Ok(AccessToken::new(
                Secret::new(token),
                azure_core::time::OffsetDateTime::now_utc()
                    + azure_core::time::Duration::milliseconds(left.as_millis() as i64),
            ))
        }
    }

    struct Run {
        tokens: usize,
        took: Duration,
        report: Value,
        requests: linkguard::sim::RequestStats,
        estate: Value,
    }

    async fn run(refresh: bool) -> Run {
        let estate = engine_support::estate(N);
        let sim = Sandbox::start(
            estate,
            SimOptions {
                tls: true,
                retry_after_secs: 0,
                // Slow enough that the run outlives several tokens.
                faults: FaultSpec::parse("latency=25ms").unwrap(),
                ..SimOptions::default()
            },
        )
        .await
        .unwrap();
        let issued: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let check_issued = Arc::clone(&issued);
        sim.set_token_check(Some(Arc::new(move |token: &str| {
            check_issued
                .lock()
                .unwrap()
                .get(token)
                .is_some_and(|expiry| Instant::now() < *expiry)
        })));
        let credential = Arc::new(RotatingCredential {
            lifetime: Duration::from_millis(400),
            margin: Duration::from_millis(150),
            refresh,
            current: Mutex::new(None),
            issued: Arc::clone(&issued),
        });
        let client = ArmClient::new(
            credential,
            ArmClientOptions {
                endpoint: sim.endpoint().to_string(),
                ca_certificate_pem: Some(std::fs::read(sim.ca_cert_path().unwrap()).unwrap()),
                retry: RetrySettings {
                    max_retries: 3,
                    initial_delay: Duration::from_millis(10),
                    max_delay: Duration::from_millis(50),
                    total_deadline: Duration::from_secs(10),
                    rate_limit_pause: Duration::ZERO,
                },
                lro: LroSettings {
                    poll_interval: Duration::from_millis(10),
                    max_poll_interval: Duration::from_millis(50),
                    max_wait: Duration::from_secs(10),
                },
                ..ArmClientOptions::default()
            },
        )
        .unwrap();
        let engine = Engine::new(
            Arc::new(client),
            Arc::new(Policy::parse("policy.toml", engine_support::POLICY).unwrap()),
            EngineOptions {
                concurrency: 2,
                dry_run: false,
                trigger: Trigger::Timer,
            },
        );
        let started = Instant::now();
        let result = engine.audit().await;
        let tokens = issued.lock().unwrap().len();
        Run {
            tokens,
            took: started.elapsed(),
            report: serde_json::to_value(&result.report).unwrap(),
            requests: sim.requests(),
            estate: sim.estate_json(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokens_that_expire_mid_run_are_refreshed_and_the_run_completes() {
        let Run {
            tokens,
            took,
            report,
            requests,
            estate,
        } = run(true).await;
        assert!(
            took > Duration::from_millis(1200),
            "the run must outlive several tokens: {took:?}"
        );
        assert!(tokens >= 3, "several tokens issued over the run: {tokens}");
        assert_eq!(
            requests.count_status(401),
            0,
            "no request went out with an expired token"
        );
        assert_eq!(report["complete"], true, "{report}");
        assert_eq!(report["totals"]["approved"], 2 * N, "{}", report["totals"]);
        assert_eq!(requests.count("put-connection"), N as u64);
        let approved = estate.to_string().matches("\"Approved\"").count();
        assert_eq!(approved, 2 * N);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_credential_that_never_refreshes_is_refused_once_its_token_expires() {
        // The control: the sandbox's expiry check bites, so the test above can fail.
        let Run {
            tokens,
            report,
            requests,
            ..
        } = run(false).await;
        assert_eq!(tokens, 1);
        assert!(requests.count_status(401) > 0, "{:?}", requests.by_status);
        // Every registry was read (so the report is complete), but writes were refused.
        assert!(
            report["totals"]["failed"].as_u64().unwrap() > 0,
            "{}",
            report["totals"]
        );
        assert!(
            report["errors"]
                .to_string()
                .contains("ExpiredAuthenticationToken"),
            "the report names the cause: {}",
            report["errors"]
        );
        assert!(
            !report.to_string().contains("rotating-token-"),
            "the token itself is never reported"
        );
    }
}
