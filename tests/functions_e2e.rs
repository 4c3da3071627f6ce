//! End to end through the running handler: invocations over HTTP on 127.0.0.1, the real ARM client
//! against the ARM sandbox seeded with examples/estate.json, reports in a directory sink.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod functions_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use functions_support::*;
use linkguard::host::functions::{AppState, PolicySource};
use linkguard::sim::FaultSpec;
use serde_json::{Value, json};

#[tokio::test]
async fn a_connection_event_approves_the_pending_connection_and_writes_a_report() {
    let stack = Stack::start(&[SUB_TOPIC]).await;
    assert_eq!(stack.connection_status(PENDING_CONN), "Pending");
    let inv = event_invocation(connection_write_event("evt-approve-1", PENDING_CONN));
    let (status, body) = stack.server.invoke("ConnectionEvents", &inv).await;
    assert_eq!(status, 200, "{body}");
    assert_envelope(&body);
    assert_eq!(stack.connection_status(PENDING_CONN), "Approved");
    assert_eq!(stack.puts_on(PENDING_CONN), 1);
    let log = logs(&body);
    assert!(
        log.contains("event evt-approve-1: reconcile registry"),
        "{log}"
    );
    assert!(
        log.contains("approve") && log.contains("pe-aks-weu.1a2b") && log.contains("applied"),
        "{log}"
    );
    assert!(log.contains("report stored: "), "{log}");
    let reports = stack.stored_reports();
    assert_eq!(reports.len(), 1, "one run report");
    let r = &reports[0];
    assert_eq!(r["run"]["trigger"], "event");
    assert_eq!(
        r["registries"].as_array().unwrap().len(),
        1,
        "only the named registry is read"
    );
    assert!(r["actions"].as_array().unwrap().iter().any(|a| {
        a["connection"]
            .as_str()
            .is_some_and(|c| c.eq_ignore_ascii_case(PENDING_CONN))
            && a["action"] == "approve"
            && a["outcome"] == "applied"
    }));
    assert!(stack.reports_dir.path().join("latest.json").is_file());
    // An event reads one registry: no list calls.
    let stats = stack.sandbox().requests();
    assert_eq!(stats.count("list-registries"), 0);
    assert_eq!(stats.count("get-registry"), 1);
}

#[tokio::test]
async fn the_same_event_twice_writes_once_and_the_redelivery_is_skipped() {
    let stack = Stack::start(&[SUB_TOPIC]).await;
    let inv = event_invocation(connection_write_event("evt-twice", PENDING_CONN));
    let (s1, _) = stack.server.invoke("ConnectionEvents", &inv).await;
    let reads_after_first = stack.sandbox().requests().count("get-registry");
    let (s2, body2) = stack.server.invoke("ConnectionEvents", &inv).await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(stack.puts_on(PENDING_CONN), 1);
    assert!(
        logs(&body2).contains("already processed"),
        "{}",
        logs(&body2)
    );
    // The duplicate did not even read ARM.
    assert_eq!(
        stack.sandbox().requests().count("get-registry"),
        reads_after_first
    );
    assert_eq!(stack.stored_reports().len(), 1);
}

#[tokio::test]
async fn five_concurrent_deliveries_write_once() {
    let stack = Stack::start(&[SUB_TOPIC]).await;
    // Slow ARM down so the five invocations overlap.
    stack
        .sandbox()
        .set_faults(FaultSpec::parse("latency=30ms").unwrap());
    let inv = event_invocation(connection_write_event("evt-five", PENDING_CONN));
    let calls = (0..5).map(|_| stack.server.invoke("ConnectionEvents", &inv));
    let results = futures::future::join_all(calls).await;
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
    }
    assert_eq!(stack.connection_status(PENDING_CONN), "Approved");
    assert_eq!(
        stack.puts_on(PENDING_CONN),
        1,
        "exactly one write for five deliveries"
    );
    // Every connection of the registry was written at most once.
    let stats = stack.sandbox().requests();
    let mut puts: Vec<&str> = stats
        .log
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.path.as_str())
        .collect();
    let total = puts.len();
    puts.sort();
    puts.dedup();
    assert_eq!(
        puts.len(),
        total,
        "a connection was written twice: {puts:?}"
    );
    // They did overlap: more than one invocation read the registry.
    assert!(
        stats.count("get-registry") > 1,
        "the deliveries did not run concurrently"
    );
}

#[tokio::test]
async fn a_503_fails_the_invocation_and_the_redelivery_succeeds() {
    let stack = Stack::start(&[SUB_TOPIC]).await;
    stack
        .sandbox()
        .set_faults(FaultSpec::parse("error503=1,ops=get-registry").unwrap());
    let inv = event_invocation(connection_write_event("evt-503", PENDING_CONN));
    let (status, body) = stack.server.invoke("ConnectionEvents", &inv).await;
    assert_eq!(status, 500, "{body}");
    assert_envelope(&body);
    assert_eq!(body["Error"]["code"], "TransientFailure");
    assert_eq!(stack.connection_status(PENDING_CONN), "Pending");
    assert!(stack.sandbox().requests().count_fault("error503") >= 1);
    // The failed run's report is stored, incomplete.
    let reports = stack.stored_reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["complete"], false);

    stack.sandbox().set_faults(FaultSpec::none());
    let (status, body) = stack.server.invoke("ConnectionEvents", &inv).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !logs(&body).contains("already processed"),
        "a failed event must be processed again"
    );
    assert_eq!(stack.connection_status(PENDING_CONN), "Approved");
    assert_eq!(stack.puts_on(PENDING_CONN), 1);
}

#[tokio::test]
async fn an_endpoint_write_resolves_the_endpoint_and_reconciles_its_registry() {
    let stack = Stack::start(&[SUB_TOPIC]).await;
    let pe = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/net-hub/providers/Microsoft.Network/privateEndpoints/pe-aks-weu";
    // The docs' ResourceWriteSuccess, ids substituted to the consumer's endpoint write.
    let mut ev = connection_write_event("evt-pe", pe);
    ev["data"]["operationName"] = json!("Microsoft.Network/privateEndpoints/write");
    ev["data"]["authorization"]["action"] = json!("Microsoft.Network/privateEndpoints/write");
    ev["data"]["resourceProvider"] = json!("Microsoft.Network");
    let (status, body) = stack
        .server
        .invoke("ConnectionEvents", &event_invocation(ev))
        .await;
    assert_eq!(status, 200, "{body}");
    let log = logs(&body);
    assert!(
        log.contains(&format!(
            "private endpoint {pe} targets registry {ACRPROD01}"
        )),
        "{log}"
    );
    assert_eq!(stack.connection_status(PENDING_CONN), "Approved", "{log}");
    assert_eq!(stack.puts_on(PENDING_CONN), 1);

    // An endpoint that does not exist: logged, acknowledged, nothing written.
    let gone = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/net-hub/providers/Microsoft.Network/privateEndpoints/pe-gone";
    let mut ev = connection_write_event("evt-pe-gone", gone);
    ev["data"]["operationName"] = json!("Microsoft.Network/privateEndpoints/write");
    let puts = stack.sandbox().requests().count_method("PUT");
    let (status, body) = stack
        .server
        .invoke("ConnectionEvents", &event_invocation(ev))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        logs(&body).contains("not resolved: it no longer exists (404)"),
        "{}",
        logs(&body)
    );
    assert_eq!(stack.sandbox().requests().count_method("PUT"), puts);
}

#[tokio::test]
async fn events_from_unlisted_topics_change_nothing() {
    let stack = Stack::start(&[]).await;
    let inv = event_invocation(connection_write_event("evt-no-topics", PENDING_CONN));
    let (status, body) = stack.server.invoke("ConnectionEvents", &inv).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        logs(&body).contains("LINKGUARD_EVENT_TOPICS is empty"),
        "{}",
        logs(&body)
    );
    assert_eq!(stack.sandbox().requests().total, 0);
    assert!(stack.stored_reports().is_empty());
}

#[tokio::test]
async fn an_invalid_policy_at_invocation_fails_closed_and_the_report_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::copy(repo().join("examples/policy.toml"), &file).unwrap();
    let stack = Stack::start_with(&[SUB_TOPIC], PolicySource::File(file.clone())).await;
    // The policy is edited into something invalid after start.
    std::fs::write(
        &file,
        "version = 1\n[connections]\ndefault = \"approve-all\"\n",
    )
    .unwrap();
    let inv = event_invocation(connection_write_event("evt-bad-policy", PENDING_CONN));
    let (status, body) = stack.server.invoke("ConnectionEvents", &inv).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["Error"]["code"], "PolicyInvalid");
    assert_eq!(
        stack.sandbox().requests().total,
        0,
        "nothing read or written"
    );
    let reports = stack.stored_reports();
    assert_eq!(reports.len(), 1);
    let errors = reports[0]["errors"].as_array().unwrap();
    assert_eq!(errors[0]["scope"], "policy");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("policy.toml:3"),
        "{errors:?}"
    );
    assert_eq!(reports[0]["complete"], false);
    assert_eq!(reports[0]["run"]["mode"], "dry-run");

    // Fixed: the redelivered event is acted on.
    std::fs::copy(repo().join("examples/policy.toml"), &file).unwrap();
    let (status, _) = stack.server.invoke("ConnectionEvents", &inv).await;
    assert_eq!(status, 200);
    assert_eq!(stack.connection_status(PENDING_CONN), "Approved");
}

#[tokio::test]
async fn a_report_that_cannot_be_stored_fails_the_invocation_and_is_retried() {
    let sim = sandbox().await;
    let store = Arc::new(MemoryStore::default());
    store.fail.store(true, Ordering::SeqCst);
    let state = AppState::new(
        Arc::new(arm_client(sim.endpoint())),
        PolicySource::Fixed(policy()),
        store.clone(),
        options(&[SUB_TOPIC]),
    );
    let server = Server::start(state).await;
    let inv = event_invocation(connection_write_event("evt-storage", PENDING_CONN));
    let (status, body) = server.invoke("ConnectionEvents", &inv).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["Error"]["code"], "ReportNotStored");
    store.fail.store(false, Ordering::SeqCst);
    let (status, body) = server.invoke("ConnectionEvents", &inv).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        store.attempts.load(Ordering::SeqCst),
        2,
        "the redelivery ran again"
    );
    assert_eq!(store.reports().len(), 1);

    // ScheduledAudit: the same rule.
    store.fail.store(true, Ordering::SeqCst);
    let timer = read_json(&shared_fixtures("functions").join("timer-invocation.json"));
    let (status, body) = server.invoke("ScheduledAudit", &timer).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["Error"]["code"], "ReportNotStored");
    server.stop().await;
}

#[tokio::test]
async fn scheduled_audit_audits_everything_and_writes_the_report() {
    let stack = Stack::start(&[SUB_TOPIC]).await;
    let timer = read_json(&shared_fixtures("functions").join("timer-invocation.json"));
    let (status, body) = stack.server.invoke("ScheduledAudit", &timer).await;
    assert_eq!(status, 200, "{body}");
    let log = logs(&body);
    assert!(
        log.contains("schedule status: last 2023-10-12T20:13:49.640002Z"),
        "{log}"
    );
    let reports = stack.stored_reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["run"]["trigger"], "timer");
    assert_eq!(reports[0]["complete"], true);
    assert!(
        reports[0]["totals"]["registries"].as_u64().unwrap() >= 3,
        "{}",
        reports[0]["totals"]
    );
    assert_eq!(stack.connection_status(PENDING_CONN), "Approved");

    // Past due: logged, still audited.
    let mut late = timer.clone();
    late["Data"]["timer"]["IsPastDue"] = json!(true);
    let (status, body) = stack.server.invoke("ScheduledAudit", &late).await;
    assert_eq!(status, 200);
    assert!(logs(&body).contains("past due"), "{}", logs(&body));
    assert_eq!(stack.stored_reports().len(), 2);
}

/// A ManualAudit invocation: the real Core Tools capture with only its `Body` replaced.
fn manual(body: Option<Value>) -> Value {
    let mut inv =
        read_json(&shared_fixtures("functions").join("http-invocation-local-admin-key.json"));
    match body {
        Some(b) => inv["Data"]["req"]["Body"] = b,
        None => {
            inv["Data"]["req"].as_object_mut().unwrap().remove("Body");
        }
    }
    inv
}

fn res(body: &Value) -> (u64, Value) {
    let res = &body["Outputs"]["res"];
    assert_eq!(res["headers"]["Content-Type"], "application/json", "{body}");
    (res["statusCode"].as_u64().unwrap(), res["body"].clone())
}

#[tokio::test]
async fn manual_audit_answers_through_res() {
    let stack = Stack::start(&[SUB_TOPIC]).await;
    // One registry, dry run, body double-encoded.
    let req = json!({"registry": ACRPROD01, "dryRun": true}).to_string();
    let (status, body) = stack
        .server
        .invoke("ManualAudit", &manual(Some(json!(json!(req).to_string()))))
        .await;
    assert_eq!(status, 200, "{body}");
    let (code, summary) = res(&body);
    assert_eq!(code, 200, "{summary}");
    assert_eq!(summary["run"]["mode"], "dry-run");
    assert_eq!(summary["run"]["trigger"], "http");
    assert_eq!(summary["totals"]["registries"], 1);
    assert!(
        summary["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["outcome"] == "dry-run")
    );
    assert!(summary["report"].as_str().unwrap().ends_with(".json"));
    assert_eq!(
        stack.connection_status(PENDING_CONN),
        "Pending",
        "dry run changes nothing"
    );
    assert_eq!(stack.sandbox().requests().count_method("PUT"), 0);

    // No body: a full audit, enforced.
    let (_, body) = stack.server.invoke("ManualAudit", &manual(None)).await;
    let (code, summary) = res(&body);
    assert_eq!(code, 200, "{summary}");
    assert!(summary["totals"]["registries"].as_u64().unwrap() >= 3);
    assert_eq!(stack.connection_status(PENDING_CONN), "Approved");

    // Client errors: 200 to the host, the status in res.
    let cases = [
        (json!("{\"registry\": 5}"), 400, "`registry`"),
        (
            json!("{\"dryRun\": true, \"force\": 1}"),
            400,
            "unknown field `force`",
        ),
        (json!("{not json"), 400, "not valid JSON"),
        (
            json!("{\"registry\": \"acrprod01\"}"),
            400,
            "invalid ARM resource id",
        ),
        (
            json!(format!(
                "{{\"registry\": \"{ACRPROD01}/privateEndpointConnections/x\"}}"
            )),
            400,
            "is not a registry id",
        ),
        // sandbox01 is excluded by scope.exclude_registries.
        (
            json!(
                "{\"registry\": \"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/sandbox01\"}"
            ),
            422,
            "outside the policy scope",
        ),
        (
            json!(
                "{\"registry\": \"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-prod-weu/providers/Microsoft.ContainerRegistry/registries/acrprodgone\"}"
            ),
            404,
            "was not found",
        ),
    ];
    for (req_body, want, text) in cases {
        let (status, body) = stack
            .server
            .invoke("ManualAudit", &manual(Some(req_body.clone())))
            .await;
        assert_eq!(status, 200, "{req_body}: {body}");
        let (code, err) = res(&body);
        assert_eq!(code, want, "{req_body}: {err}");
        let msg = err["error"]["message"].as_str().unwrap();
        assert!(msg.contains(text), "{req_body}: {msg}");
    }
}

#[tokio::test]
async fn graceful_shutdown_finishes_the_invocation_in_flight() {
    let mut stack = Stack::start(&[SUB_TOPIC]).await;
    stack
        .sandbox()
        .set_faults(FaultSpec::parse("latency=100ms").unwrap());
    let inv = event_invocation(connection_write_event("evt-shutdown", PENDING_CONN));
    let base = stack.server.base.clone();
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{base}/ConnectionEvents"))
            .header("content-type", "application/json")
            .body(inv.to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    // Stop once the invocation is being processed (it has reached ARM).
    let deadline = Instant::now() + Duration::from_secs(10);
    while stack.sandbox().requests().total == 0 {
        assert!(
            Instant::now() < deadline,
            "the invocation never reached ARM"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stack.server.trigger_stop();
    let task = stack.server.task.take().unwrap();
    assert_eq!(
        in_flight.await.unwrap(),
        200,
        "the in-flight invocation completed"
    );
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(stack.connection_status(PENDING_CONN), "Approved");
    // No new connections after shutdown.
    let after = reqwest::Client::new()
        .get(format!("{}/", stack.server.base))
        .send()
        .await;
    assert!(after.is_err(), "the server still answers after shutdown");
}

#[tokio::test]
async fn ready_within_milliseconds() {
    let started = Instant::now();
    let stack = Stack::start(&[]).await;
    assert_eq!(stack.server.ready().await, 200);
    // Sandbox start included; the handler itself does no I/O before answering.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let client = http();
    let t = Instant::now();
    let server = Server::start(AppState::new(
        Arc::new(arm_client(stack.sim.endpoint())),
        PolicySource::Fixed(policy()),
        Arc::new(MemoryStore::default()),
        options(&[]),
    ))
    .await;
    let status = client
        .get(format!("{}/", server.base))
        .send()
        .await
        .unwrap()
        .status();
    let elapsed = t.elapsed();
    assert_eq!(status, 200);
    // Generous bound: the machine runs the other tests at the same time. What matters is that start
    // does no I/O: nothing reached ARM.
    assert!(
        elapsed < Duration::from_secs(1),
        "handler ready after {elapsed:?}"
    );
    assert_eq!(
        stack.sandbox().requests().total,
        0,
        "start-up must not call ARM"
    );
    server.stop().await;
}
