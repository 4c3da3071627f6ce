#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
//! The Lambda host end to end: a separate process running `linkguard lambda`'s entry through the
//! real `lambda_runtime` client, fed by a Runtime API this test serves on 127.0.0.1, reconciling
//! the ARM sandbox (seeded with examples/estate.json, policy examples/policy.toml) through the real
//! ARM client, writing reports to a temporary directory. HTTP invocations are real Function URL /
//! API Gateway v2 request fixtures with the body, query and headers substituted
//! (tests/lambda_fixtures/README.md).

mod lambda_support;

use lambda_support::*;
use linkguard::model::Estate;
use linkguard::policy::{Policy, evaluate_estate};
use rusty_fork::rusty_fork_test_name;
use serde_json::{Value, json};

fn fixture_topics() -> Vec<String> {
    let mut topics = vec![SUB_TOPIC.to_string()];
    for (_, path) in fixture_files("eventgrid") {
        let v = read_json(&path);
        let items = match v {
            Value::Array(a) => a,
            other => vec![other],
        };
        for e in items {
            for key in ["topic", "source"] {
                if let Some(t) = e.get(key).and_then(Value::as_str)
                    && !topics.iter().any(|x| x == t)
                {
                    topics.push(t.to_string());
                }
            }
        }
    }
    topics
}

fn events_of(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

fn logs(body: &Value) -> Vec<String> {
    body["logs"]
        .as_array()
        .unwrap_or_else(|| panic!("no logs in {body}"))
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

/// Every Event Grid fixture delivered to the Function URL: the validation events are answered
/// with their code, everything else (no container registry involved) is acknowledged without an
/// ARM call; the validation *response* fixture is not an event (400). Every fixture's topic is
/// allowed, so the events are judged on their type and operation, not turned away by topic.
#[test]
fn every_eventgrid_fixture_through_the_function_url() {
    let setup = Setup {
        topics: fixture_topics().join(","),
        ..Setup::default()
    };
    with_lambda(
        rusty_fork_test_name!(every_eventgrid_fixture_through_the_function_url),
        setup,
        |l| {
            let dir = shared_fixtures("eventgrid");
            let documented = read_json(
                &dir.join("docs.webhook-event-delivery.SubscriptionValidationResponse.json"),
            );
            let files = fixture_files("eventgrid");
            assert!(
                files.len() >= 17,
                "expected the 17 Event Grid fixtures, found {}",
                files.len()
            );
            for (name, path) in files {
                let body = read_json(&path);
                let events = events_of(&body);
                let validation = events
                    .iter()
                    .any(|e| e["eventType"] == "Microsoft.EventGrid.SubscriptionValidationEvent");
                let mut request = Http::delivery(&body);
                if validation {
                    request = request.header("aeg-event-type", "SubscriptionValidation");
                }
                let (status, reply) = l.http(&request).http();
                if validation {
                    assert_eq!(status, 200, "{name}: {reply}");
                    let code = events[0]["data"]["validationCode"].as_str().unwrap();
                    assert_eq!(reply, json!({"validationResponse": code}), "{name}");
                    if name.starts_with("docs.") {
                        assert_eq!(reply, documented, "{name}: the documented answer");
                    }
                } else if name.contains("SubscriptionValidationResponse") {
                    assert_eq!(status, 400, "{name}: {reply}");
                    assert_eq!(reply["error"]["code"], "NoUsableEvent", "{name}");
                    assert!(
                        reply["error"]["message"]
                            .as_str()
                            .unwrap()
                            .contains("neither an Event Grid event"),
                        "{name}: {reply}"
                    );
                } else {
                    assert_eq!(status, 200, "{name}: {reply}");
                    assert_eq!(reply["status"], "nothing to do", "{name}: {reply}");
                    assert_eq!(reply["report"], Value::Null, "{name}");
                    let lines = logs(&reply);
                    for e in &events {
                        let id = e["id"].as_str().unwrap();
                        let line = lines
                            .iter()
                            .find(|l| {
                                l.contains(id)
                                    && (l.contains("ignored") || l.contains("already processed"))
                            })
                            .unwrap_or_else(|| {
                                panic!("{name}: no line on event {id} in {lines:?}")
                            });
                        assert!(
                            !line.contains("LINKGUARD_EVENT_TOPICS"),
                            "{name}: judged by topic: {line}"
                        );
                    }
                }
            }
            assert_eq!(
                l.sandbox.requests().total,
                0,
                "no fixture names a registry: no ARM call"
            );
            assert!(l.report_files().is_empty(), "{:?}", l.report_files());
        },
    );
}

/// A connection event (base64-encoded body, as Function URLs pass non-text bodies) reconciles its
/// registry: the pending connection is approved and a report is stored. The same delivery again is
/// recognised by its event id and makes no ARM call at all.
#[test]
fn registry_event_reconciles_once_and_duplicates_are_skipped() {
    with_lambda(
        rusty_fork_test_name!(registry_event_reconciles_once_and_duplicates_are_skipped),
        Setup::default(),
        |l| {
            let event =
                connection_write_event("5c1b4a7e-0000-4000-8000-000000000001", PENDING_CONN);
            let request = Http::delivery(&json!([event])).base64();
            let (status, reply) = l.http(&request).http();
            assert_eq!(status, 200, "{reply}");
            assert_eq!(reply["status"], "reconciled", "{reply}");
            let report = reply["report"].as_str().unwrap();
            assert!(
                report.starts_with(l.reports.path().to_str().unwrap()),
                "{report}"
            );
            assert!(std::path::Path::new(report).is_file(), "{report}");
            let stored: Value = read_json(std::path::Path::new(report));
            assert_eq!(stored["run"]["trigger"], "event");
            assert_eq!(
                l.sandbox.connection_json(PENDING_CONN).unwrap()["properties"]["privateLinkServiceConnectionState"]
                    ["status"],
                "Approved"
            );
            let files_after_first = l.report_files();
            assert_eq!(
                files_after_first.len(),
                4,
                "one run's json, md and html plus latest.json: {files_after_first:?}"
            );
            let after_first = l.sandbox.requests();
            assert!(
                after_first.count("put-connection") >= 1,
                "{:?}",
                after_first.by_operation
            );
            assert!(
                stored["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["connection"] == PENDING_CONN && a["outcome"] == "applied"),
                "{stored}"
            );

            let (status, reply) = l.http(&request).http();
            assert_eq!(status, 200, "{reply}");
            assert_eq!(reply["status"], "nothing to do", "{reply}");
            assert!(
                logs(&reply)
                    .iter()
                    .any(|line| line.contains("already processed")),
                "{reply}"
            );
            let after_second = l.sandbox.requests();
            assert_eq!(
                after_second.total, after_first.total,
                "the duplicate made ARM calls: {:?}",
                after_second.by_operation
            );
            assert_eq!(
                after_second.count("put-connection"),
                after_first.count("put-connection")
            );
            assert_eq!(
                l.report_files(),
                files_after_first,
                "the duplicate wrote no report"
            );
            assert_eq!(
                l.assert_reports_valid(),
                2,
                "the run's JSON and latest.json"
            );
        },
    );
}

/// The handshakes: Event Grid's subscription validation through API Gateway v2 as well, and the
/// CloudEvents abuse-protection `OPTIONS` (which also needs the secret).
#[test]
fn validation_and_cloudevents_handshakes() {
    with_lambda(
        rusty_fork_test_name!(validation_and_cloudevents_handshakes),
        Setup::default(),
        |l| {
            let validation = read_json(
                &shared_fixtures("eventgrid")
                    .join("docs.webhook-event-delivery.SubscriptionValidationEvent.json"),
            );
            let documented = read_json(
                &shared_fixtures("eventgrid")
                    .join("docs.webhook-event-delivery.SubscriptionValidationResponse.json"),
            );
            let request = Http::delivery(&validation)
                .header("aeg-event-type", "SubscriptionValidation")
                .via_api_gateway();
            let (status, reply) = l.http(&request).http();
            assert_eq!((status, reply), (200, documented.clone()));
            // The secret in a header instead of the query.
            let request = Http::delivery(&validation)
                .header("aeg-event-type", "SubscriptionValidation")
                .header("x-linkguard-secret", SECRET)
                .query(&[]);
            assert_eq!(l.http(&request).http(), (200, documented));

            let options = Http::delivery(&json!(null))
                .method("OPTIONS")
                .raw_body(None)
                .header("webhook-request-origin", "eventgrid.azure.net")
                .header("webhook-request-rate", "120");
            let outcome = l.http(&options);
            assert_eq!(outcome.http().0, 200);
            assert_eq!(
                outcome.header("webhook-allowed-origin").as_deref(),
                Some("eventgrid.azure.net")
            );
            assert_eq!(outcome.header("webhook-allowed-rate").as_deref(), Some("*"));

            let (status, reply) = l.http(&options.clone().query(&[])).http();
            assert_eq!(
                (status, reply["error"]["code"].as_str()),
                (401, Some("MissingSecret"))
            );
            let (status, reply) = l
                .http(&options.clone().header("webhook-request-origin", ""))
                .http();
            assert_eq!(
                (status, reply["error"]["code"].as_str()),
                (400, Some("NotAHandshake"))
            );
            let (status, reply) = l
                .http(&Http::delivery(&json!([])).method("GET").raw_body(None))
                .http();
            assert_eq!(
                (status, reply["error"]["code"].as_str()),
                (405, Some("MethodNotAllowed"))
            );
            assert_eq!(l.sandbox.requests().total, 0);
        },
    );
}

/// The real EventBridge schedule fixture audits the sandbox and stores the report.
#[test]
fn scheduled_event_audits_the_sandbox() {
    with_lambda(
        rusty_fork_test_name!(scheduled_event_audits_the_sandbox),
        Setup::default(),
        |l| {
            let schedule = lambda_fixture("aws_lambda_events.example-eventbridge-schedule.json");
            let summary = l.invoke(schedule).response().clone();
            assert_eq!(summary["schema"], "linkguard.summary/v1", "{summary}");
            assert_eq!(summary["run"]["trigger"], "timer");
            assert_eq!(summary["run"]["mode"], "enforce");
            assert_eq!(summary["complete"], true, "{summary}");
            let run_id = summary["run"]["id"].as_str().unwrap();
            let files = l.report_files();
            assert!(files.contains(&"latest.json".to_string()), "{files:?}");
            for ext in ["json", "md", "html"] {
                assert!(
                    files
                        .iter()
                        .any(|f| f.starts_with("runs/") && f.ends_with(&format!("{run_id}.{ext}"))),
                    "{ext}: {files:?}"
                );
            }
            let latest = read_json(&l.reports.path().join("latest.json"));
            assert_eq!(latest["run"]["id"], run_id);
            assert!(
                latest["totals"]["registries"].as_u64().unwrap() >= 3,
                "{}",
                latest["totals"]
            );
            let stats = l.sandbox.requests();
            assert!(
                stats.count("list-registries") + stats.count("list-registries-by-group") >= 1,
                "{:?}",
                stats.by_operation
            );
            assert!(
                stats.count("put-connection") >= 1,
                "the audit approves the pending connection: {:?}",
                stats.by_operation
            );
            assert_eq!(
                l.sandbox.connection_json(PENDING_CONN).unwrap()["properties"]["privateLinkServiceConnectionState"]
                    ["status"],
                "Approved"
            );
            // Scheduler's input (infra/aws/template.yaml) is a schedule too; other EventBridge events are not.
            let mut scheduler =
                lambda_fixture("aws_lambda_events.example-eventbridge-schedule.json");
            scheduler["source"] = json!("aws.scheduler");
            assert_eq!(l.invoke(scheduler).response()["run"]["trigger"], "timer");
            let mut other = lambda_fixture("aws_lambda_events.example-eventbridge-schedule.json");
            other["detail-type"] = json!("EC2 Instance State-change Notification");
            other["source"] = json!("aws.ec2");
            assert_eq!(l.invoke(other).response()["status"], "ignored");
        },
    );
}

/// A wrong or missing secret is refused with 401 before the body is read: even a malformed body
/// gets 401, and the sandbox sees no ARM call. Logging at TRACE (where `lambda_runtime` prints raw
/// events) still never shows the secret; one good delivery makes sure it was in a logged event.
#[test]
fn wrong_or_missing_secret_is_401_and_nothing_else_happens() {
    let setup = Setup {
        env: vec![("AWS_LAMBDA_LOG_LEVEL", Some("trace".into()))],
        ..Setup::default()
    };
    with_lambda(
        rusty_fork_test_name!(wrong_or_missing_secret_is_401_and_nothing_else_happens),
        setup,
        |l| {
            let event =
                connection_write_event("5c1b4a7e-0000-4000-8000-000000000002", PENDING_CONN);
            let good = Http::delivery(&json!([event]));
            let cases = [
                ("missing", good.clone().query(&[]), "MissingSecret"),
                (
                    "wrong code",
                    good.clone()
                        .query(&[("code", "lambda-test-webhook-secret-7f3a9d")]),
                    "WrongSecret",
                ),
                (
                    "prefix of the secret",
                    good.clone().query(&[("code", &SECRET[..20])]),
                    "WrongSecret",
                ),
                (
                    "wrong header wins over a right code",
                    good.clone()
                        .header("x-linkguard-secret", "nope-nope-nope-nope"),
                    "WrongSecret",
                ),
                (
                    "malformed body, no secret",
                    good.clone().query(&[]).raw_body(Some("{not json")),
                    "MissingSecret",
                ),
                (
                    "bad base64, wrong secret",
                    good.clone()
                        .query(&[("code", "x")])
                        .raw_body(Some("%%%"))
                        .base64(),
                    "WrongSecret",
                ),
            ];
            for (what, request, code) in cases {
                let (status, reply) = l.http(&request).http();
                assert_eq!(status, 401, "{what}: {reply}");
                assert_eq!(reply["error"]["code"], code, "{what}: {reply}");
            }
            // A request that cannot even be read as a Function URL request (its requestContext is
            // broken) is still refused for the secret first, not answered 400.
            for (what, request, code) in [
                (
                    "unreadable request, no secret",
                    good.clone().query(&[]),
                    "MissingSecret",
                ),
                (
                    "unreadable request, wrong secret",
                    good.clone().query(&[("code", "nope")]),
                    "WrongSecret",
                ),
            ] {
                let mut payload = request.event();
                payload["requestContext"]["http"] = json!(1);
                let (status, reply) = l.invoke(payload).http();
                assert_eq!(
                    (status, reply["error"]["code"].as_str()),
                    (401, Some(code)),
                    "{what}: {reply}"
                );
            }
            assert_eq!(
                l.sandbox.requests().total,
                0,
                "{:?}",
                l.sandbox.requests().by_operation
            );
            assert!(l.report_files().is_empty());
            assert_eq!(
                l.sandbox.connection_json(PENDING_CONN).unwrap()["properties"]["privateLinkServiceConnectionState"]
                    ["status"],
                "Pending"
            );
            // The right secret still works; the event carrying it went through TRACE logging.
            let (status, reply) = l.http(&good).http();
            assert_eq!(
                (status, reply["status"].as_str()),
                (200, Some("reconciled")),
                "{reply}"
            );
            assert!(l.output().contains("TRACE"), "TRACE logging was not on");
        },
    );
}

/// Bodies that can never be processed get 400 with a message (Event Grid dead-letters them);
/// nothing reaches ARM.
#[test]
fn malformed_bodies_are_400_with_a_message() {
    with_lambda(
        rusty_fork_test_name!(malformed_bodies_are_400_with_a_message),
        Setup::default(),
        |l| {
            let base = Http::delivery(&json!([]));
            let cases = [
                (
                    "not JSON",
                    base.clone().raw_body(Some("{\"id\": ")),
                    "NotJson",
                    "not JSON",
                ),
                (
                    "a number",
                    base.clone().raw_body(Some("42")),
                    "NotEvents",
                    "a number",
                ),
                (
                    "no body",
                    base.clone().raw_body(None),
                    "EmptyBody",
                    "no body",
                ),
                (
                    "bad base64",
                    base.clone()
                        .raw_body(Some("*not base64*"))
                        .base64_flag_only(),
                    "BodyNotDecodable",
                    "base64",
                ),
                (
                    "no usable event",
                    base.clone()
                        .raw_body(Some(r#"[{"hello": "world"}, "text"]"#)),
                    "NoUsableEvent",
                    "#1",
                ),
                (
                    "validation without code",
                    base.clone()
                        .raw_body(Some("[]"))
                        .header("aeg-event-type", "SubscriptionValidation"),
                    "NoValidationCode",
                    "validationCode",
                ),
            ];
            for (what, request, code, needle) in cases {
                let (status, reply) = l.http(&request).http();
                assert_eq!(status, 400, "{what}: {reply}");
                assert_eq!(reply["error"]["code"], code, "{what}: {reply}");
                let message = reply["error"]["message"].as_str().unwrap();
                assert!(message.contains(needle), "{what}: {message}");
            }
            // With the right secret, a request that does not read as a Function URL request is 400.
            let mut unreadable = base.event();
            unreadable["requestContext"]["http"] = json!(1);
            let (status, reply) = l.invoke(unreadable).http();
            assert_eq!(
                (status, reply["error"]["code"].as_str()),
                (400, Some("BadRequest")),
                "{reply}"
            );
            assert!(
                reply["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("Function URL"),
                "{reply}"
            );
            // An empty batch is not malformed: nothing to do.
            assert_eq!(l.http(&base).http().0, 200);
            assert_eq!(l.sandbox.requests().total, 0);
        },
    );
}

/// ARM answering 503 to everything: the delivery fails with a 5xx (never 400), so Event Grid
/// retries; once ARM is back the same delivery is processed (a failed event is not remembered as
/// done).
#[test]
fn arm_outage_is_5xx_so_event_grid_retries() {
    let setup = Setup {
        faults: Some("seed=3,error503=1,retry-after=0"),
        ..Setup::default()
    };
    with_lambda(
        rusty_fork_test_name!(arm_outage_is_5xx_so_event_grid_retries),
        setup,
        |l| {
            let event =
                connection_write_event("5c1b4a7e-0000-4000-8000-000000000003", PENDING_CONN);
            let request = Http::delivery(&event);
            let started = std::time::Instant::now();
            let (status, reply) = l.http(&request).http();
            assert_eq!(status, 503, "{reply}");
            assert_eq!(reply["error"]["code"], "TransientFailure", "{reply}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "Event Grid waits 30 s: {:?}",
                started.elapsed()
            );
            let stats = l.sandbox.requests();
            assert!(stats.count_fault("error503") >= 1, "{:?}", stats.faults);
            assert_eq!(stats.count("put-connection"), 0);

            l.sandbox
                .handle()
                .set_faults(linkguard::sim::FaultSpec::none());
            let (status, reply) = l.http(&request).http();
            assert_eq!(status, 200, "{reply}");
            assert_eq!(reply["status"], "reconciled", "{reply}");
            assert!(l.sandbox.requests().count("put-connection") >= 1);
        },
    );
}

/// Operator invocations: `evaluate` gives the same plan as the library for the payload's estate
/// and policy (no ARM call); `audit` of one registry in dry-run changes nothing; bad requests and
/// unknown payloads fail the invocation with a message.
#[test]
fn operator_actions_and_unknown_invocations() {
    with_lambda(
        rusty_fork_test_name!(operator_actions_and_unknown_invocations),
        Setup::default(),
        |l| {
            let estate = read_json(&repo().join("examples/estate.json"));
            let policy_text = std::fs::read_to_string(repo().join("examples/policy.toml")).unwrap();
            let answer = l
                .invoke(json!({"action": "evaluate", "estate": estate, "policy": policy_text}))
                .response()
                .clone();
            let expected = evaluate_estate(
                &Policy::parse("p", &policy_text).unwrap(),
                &Estate::from_value(estate.clone()).unwrap(),
            );
            assert_eq!(answer["plan"], serde_json::to_value(&expected).unwrap());
            assert_eq!(answer["needs_attention"], expected.needs_attention());
            // Without `policy`, the deployed policy (the same file here).
            let deployed = l
                .invoke(json!({"action": "evaluate", "estate": estate}))
                .response()
                .clone();
            assert_eq!(deployed["plan"], answer["plan"]);
            assert_eq!(l.sandbox.requests().total, 0);

            let summary = l
                .invoke(json!({"action": "audit", "registry": ACRPROD01, "dry_run": true}))
                .response()
                .clone();
            assert_eq!(summary["run"]["mode"], "dry-run", "{summary}");
            assert_eq!(summary["run"]["trigger"], "cli");
            assert!(summary["report"].as_str().unwrap().ends_with(".json"));
            assert_eq!(l.sandbox.requests().count("put-connection"), 0);
            assert_eq!(
                l.sandbox.requests().count_method("PUT")
                    + l.sandbox.requests().count_method("PATCH"),
                0
            );

            let failures = [
                (
                    json!({"action": "destroy"}),
                    "InvalidRequest",
                    "\"audit\" or \"evaluate\"",
                ),
                (json!({"action": "evaluate"}), "InvalidRequest", "`estate`"),
                (
                    json!({"action": "evaluate", "estate": {"registries": 5}}),
                    "InvalidRequest",
                    "`estate`",
                ),
                (
                    json!({"action": "evaluate", "estate": estate, "policy": "version = 1\nmode = \"sometimes\"\n"}),
                    "InvalidRequest",
                    "`policy`",
                ),
                (
                    json!({"action": "audit", "registyr": ACRPROD01}),
                    "InvalidRequest",
                    "registyr",
                ),
                (
                    json!({"action": "audit", "registry": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/z"}),
                    "InvalidRequest",
                    "names no container registry",
                ),
                (json!({"hello": "world"}), "UnknownInvocation", "[hello]"),
            ];
            for (payload, code, needle) in failures {
                let (error_type, message) = l.invoke(payload.clone()).error();
                assert_eq!(error_type, code, "{payload}: {message}");
                assert!(message.contains(needle), "{payload}: {message}");
            }
        },
    );
}

/// Without the webhook secret the host refuses to start: it exits with code 2 naming the
/// setting, before asking the Runtime API for any event.
#[test]
fn refuses_to_start_without_the_webhook_secret() {
    let setup = Setup {
        env: vec![("LINKGUARD_WEBHOOK_SECRET", None)],
        ..Setup::default()
    };
    lambda_exit(
        rusty_fork_test_name!(refuses_to_start_without_the_webhook_secret),
        setup,
        |l, code, output| {
            assert_eq!(code, Some(2), "{output}");
            assert!(
                output.contains("LINKGUARD_WEBHOOK_SECRET: not set"),
                "{output}"
            );
            assert_eq!(
                l.api.next_calls.load(std::sync::atomic::Ordering::SeqCst),
                0
            );
        },
    );
}
