//! Fan-out under the Functions custom handler (issue 9), end to end over HTTP: the handler served
//! on 127.0.0.1 with fan-out attached from settings, the ARM sandbox with an estate of 20
//! subscriptions, Azurite's real queue and blob services. A fake host delivers the timer and the
//! queue messages the way the Functions host does (payloads shaped like the real captures).
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod fanout_support;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fanout_support::engine_support::{client, fast_retry, policy};
use fanout_support::*;
use linkguard::arm::credential::StaticTokenCredential;
use linkguard::host::functions::{AppState, HandlerOptions, PolicySource, SinkStore, serve};
use linkguard::report::sink::{BlobSinkOptions, ReportDestination};
use linkguard::sim::RunningSandbox;
use serde_json::Value;

const QUEUE: &str = "linkguard-audits";
const CONTAINER: &str = "linkguard-reports";

struct Handler {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Serves the custom handler with fan-out configured through the settings lookup, the way
/// `linkguard serve` wires it.
async fn start_handler(
    sim: &RunningSandbox,
    azurite: &Azurite,
    policy_text: &str,
    extra: &[(&str, &str)],
) -> Handler {
    let destination = ReportDestination::parse(&azurite.connection_string()).unwrap();
    let sink = destination
        .clone()
        .into_sink(None, BlobSinkOptions::default())
        .unwrap();
    let state = AppState::new(
        Arc::new(client(sim, fast_retry())),
        PolicySource::Fixed(policy(policy_text)),
        Arc::new(SinkStore(sink)),
        HandlerOptions::default(),
    );
    let mut settings: HashMap<String, String> = HashMap::from([
        (
            "LINKGUARD_FANOUT_QUEUE".to_string(),
            format!("{};QueueName={QUEUE}", azurite.connection_string()),
        ),
        // host.json of the repo: maxDequeueCount is read from it.
        (
            "FUNCTIONS_APP_ROOT_PATH".to_string(),
            env!("CARGO_MANIFEST_DIR").to_string(),
        ),
    ]);
    for (k, v) in extra {
        settings.insert((*k).to_string(), (*v).to_string());
    }
    let state = linkguard::host::functions::subscription_audit::attach(
        state,
        &destination,
        Arc::new(StaticTokenCredential::new("unused")),
        move |k| settings.get(k).cloned(),
    )
    .unwrap();
    assert!(state.fanout().is_some(), "fan-out is attached");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Handler { addr, _stop: tx }
}

fn run_prefix(message: &Value) -> String {
    let started = message["started"].as_str().unwrap();
    let (y, m, d) = (&started[0..4], &started[5..7], &started[8..10]);
    format!("runs/{y}/{m}/{d}/{}", message["run"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timer_fans_out_and_queue_invocations_audit_every_subscription_once() {
    let t0 = Instant::now();
    let azurite = Azurite::start();
    let n = 20;
    let sim = engine_support_sandbox(estate(n)).await;
    let handler = start_handler(&sim, &azurite, &policy_text(None), &[]).await;
    let host = FakeHost::new(handler.addr);
    let raw = RawQueue::new(&azurite);
    let blobs = RawBlobs::new(&azurite, CONTAINER);

    // The timer: no audit here, one message per subscription the identity can list.
    let answer = host.invoke("ScheduledAudit", &timer_invocation()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert!(
        answer.logs().contains("20 subscription(s) fanned out"),
        "{}",
        answer.logs()
    );
    assert!(
        !answer.logs().contains(fanout_support::azurite::ACCOUNT_KEY),
        "no key in the logs"
    );
    let stats = sim.requests();
    assert_eq!(stats.count("list-subscriptions"), 1);
    assert_eq!(
        stats.count("list-registries"),
        0,
        "the timer audits nothing itself"
    );

    assert_eq!(raw.count(QUEUE).await, 20);
    let queued = raw.peek(QUEUE).await;
    assert_eq!(queued.len(), 20);
    let messages: Vec<Value> = queued.iter().map(RawMessage::json).collect();
    let run = messages[0]["run"].as_str().unwrap().to_string();
    assert!(
        messages
            .iter()
            .all(|m| m["run"] == run.as_str() && m["schema"] == "linkguard.fanout/v1")
    );
    let queued_subs: BTreeSet<String> = messages
        .iter()
        .map(|m| m["subscription"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(queued_subs, subs(n).into_iter().collect::<BTreeSet<_>>());
    let prefix = run_prefix(&messages[0]);
    let manifest = blobs.json(&format!("{prefix}/manifest.json")).await;
    assert_eq!(manifest["subscriptions"].as_array().unwrap().len(), 20);
    assert_eq!(
        blobs.list("fanout/open/").await,
        [format!("fanout/open/{run}.json")]
    );

    // One message delivered twice: the second delivery audits nothing and writes nothing.
    let first = raw
        .receive(QUEUE, 1, Duration::from_secs(120))
        .await
        .remove(0);
    let sub0 = first.json()["subscription"].as_str().unwrap().to_string();
    let a1 = host
        .invoke("SubscriptionAudit", &queue_invocation(&first))
        .await;
    assert_eq!(a1.status, 200, "{:?}", a1.body);
    let report_name = format!("{prefix}/subscriptions/{sub0}.json");
    let (_, etag) = blobs
        .get(&report_name)
        .await
        .expect("the subscription report is stored");
    assert_eq!(sim.requests().count("put-connection"), 1);
    let before = sim.requests().total;
    let mut again = first.clone();
    again.dequeue_count = 2;
    let a2 = host
        .invoke("SubscriptionAudit", &queue_invocation(&again))
        .await;
    assert_eq!(a2.status, 200, "{:?}", a2.body);
    assert!(a2.logs().contains("had reported already"), "{}", a2.logs());
    assert_eq!(
        sim.requests().count("put-connection"),
        1,
        "no second ARM write"
    );
    assert_eq!(sim.requests().total, before, "no ARM request at all");
    assert_eq!(
        blobs.get(&report_name).await.unwrap().1,
        etag,
        "the report was not rewritten"
    );
    raw.delete(QUEUE, &first).await;

    // The host delivers the rest, four at a time.
    let delivered = host.drain(&raw, QUEUE, 5).await;
    assert_eq!(delivered.len(), 19, "each remaining message once");
    assert!(delivered.iter().all(|(_, _, a)| a.status == 200));
    let closers: Vec<_> = delivered
        .iter()
        .filter(|(_, _, a)| a.logs().contains(&format!("run {run} closed")))
        .collect();
    assert_eq!(closers.len(), 1, "exactly one invocation closed the run");
    assert_eq!(raw.count(QUEUE).await, 0);
    assert_eq!(raw.count(&format!("{QUEUE}-poison")).await, 0);

    let stats = sim.requests();
    assert_eq!(
        stats.count("put-connection"),
        20,
        "one approval per subscription, none doubled"
    );
    assert_eq!(
        stats.count("list-registries"),
        20,
        "one list per subscription"
    );
    for i in 0..n {
        assert_eq!(
            fanout_support::engine_support::status_in_sim(&sim, &connection_id(i)),
            "Approved"
        );
    }

    let summary = blobs.json(&format!("{prefix}/summary.json")).await;
    assert_eq!(summary["expected"], 20);
    assert_eq!(summary["reported"].as_array().unwrap().len(), 20);
    assert_eq!(summary["missing"], serde_json::json!([]));
    assert_eq!(summary["poisoned"], serde_json::json!([]));
    assert_eq!(summary["closed"], "all-accounted");
    let report = blobs.json(&format!("{prefix}.json")).await;
    assert_eq!(report["schema"], "linkguard.report/v1");
    assert_eq!(report["run"]["id"], run.as_str());
    assert_eq!(report["run"]["trigger"], "timer");
    assert_eq!(report["totals"]["registries"], 20);
    assert_eq!(report["totals"]["approved"], 20);
    assert_eq!(report["complete"], true);
    assert_eq!(report["actions"].as_array().unwrap().len(), 20);
    assert!(blobs.get(&format!("{prefix}.md")).await.is_some());
    assert!(blobs.get(&format!("{prefix}.html")).await.is_some());
    assert_eq!(blobs.json("latest.json").await["run"]["id"], run.as_str());
    assert_eq!(
        blobs.list(&format!("{prefix}/subscriptions/")).await.len(),
        20
    );
    assert!(
        blobs.list("fanout/open/").await.is_empty(),
        "the run is no longer open"
    );
    eprintln!(
        "20 subscriptions fanned out and audited in {:?}",
        t0.elapsed()
    );
    // 20 subscription reports, the run report, latest.json.
    assert!(blobs.assert_reports_valid().await >= 22);
}

async fn engine_support_sandbox(estate: Value) -> RunningSandbox {
    fanout_support::engine_support::sandbox(estate, 100, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscription_that_always_fails_lands_in_the_poison_queue_and_the_summary_names_it() {
    let t0 = Instant::now();
    let azurite = Azurite::start();
    let n = 20;
    let sim = engine_support_sandbox(estate(n)).await;
    let mut scope = subs(n);
    scope.push(FORBIDDEN.to_string());
    let handler = start_handler(&sim, &azurite, &policy_text(Some(&scope)), &[]).await;
    let host = FakeHost::new(handler.addr);
    let raw = RawQueue::new(&azurite);
    let blobs = RawBlobs::new(&azurite, CONTAINER);

    let answer = host.invoke("ScheduledAudit", &timer_invocation()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(raw.count(QUEUE).await, 21);
    assert_eq!(
        sim.requests().count("list-subscriptions"),
        0,
        "the scope names them"
    );

    let delivered = host.drain(&raw, QUEUE, 5).await;
    let forbidden: Vec<_> = delivered
        .iter()
        .filter(|(m, _, _)| m["subscription"] == FORBIDDEN)
        .collect();
    // Delivered 1..5 times (the dequeue counts come from Azurite), failing each time.
    assert_eq!(
        forbidden.iter().map(|(_, n, _)| *n).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    for (_, n, a) in &forbidden {
        assert_eq!(
            a.status, 500,
            "a failed delivery is non-2xx so the host retries"
        );
        let code = if *n < 5 {
            "SubscriptionAuditFailed"
        } else {
            "SubscriptionPoisoned"
        };
        assert_eq!(a.error_code(), Some(code), "{:?}", a.body);
    }
    assert!(
        delivered
            .iter()
            .filter(|(m, _, _)| m["subscription"] != FORBIDDEN)
            .all(|(_, n, a)| a.status == 200 && *n == 1)
    );
    assert_eq!(raw.count(QUEUE).await, 0);
    let poisoned = raw.peek(&format!("{QUEUE}-poison")).await;
    assert_eq!(poisoned.len(), 1);
    assert_eq!(poisoned[0].json()["subscription"], FORBIDDEN);

    let prefix = run_prefix(&forbidden[0].0);
    let marker = blobs
        .json(&format!("{prefix}/failures/{FORBIDDEN}.json"))
        .await;
    assert_eq!(marker["deliveries"], 5);
    let summary = blobs.json(&format!("{prefix}/summary.json")).await;
    assert_eq!(summary["expected"], 21);
    assert_eq!(summary["reported"].as_array().unwrap().len(), 20);
    assert_eq!(summary["missing"], serde_json::json!([]));
    let p = &summary["poisoned"][0];
    assert_eq!(p["subscription"], FORBIDDEN);
    assert_eq!(p["deliveries"], 5);
    assert!(
        p["error"].as_str().unwrap().contains("AuthorizationFailed"),
        "{p}"
    );
    assert_eq!(summary["complete"], false);
    let report = blobs.json(&format!("{prefix}.json")).await;
    assert_eq!(report["totals"]["registries"], 20);
    assert_eq!(report["complete"], false);
    let named = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["scope"] == format!("/subscriptions/{FORBIDDEN}"))
        .expect("the report names the poisoned subscription");
    assert!(
        named["message"]
            .as_str()
            .unwrap()
            .contains("poison queue `linkguard-audits-poison`")
    );
    assert_eq!(sim.requests().count("put-connection"), 20);
    eprintln!(
        "21 subscriptions, one poisoned after 5 deliveries, in {:?}",
        t0.elapsed()
    );
    assert!(blobs.assert_reports_valid().await >= 22);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_next_timer_run_closes_an_overdue_run_naming_who_did_not_report_or_was_poisoned() {
    let azurite = Azurite::start();
    let sim = engine_support_sandbox(estate(3)).await;
    let handler = start_handler(
        &sim,
        &azurite,
        &policy_text(None),
        &[("LINKGUARD_FANOUT_DEADLINE", "00:00:02")],
    )
    .await;
    let host = FakeHost::new(handler.addr);
    let raw = RawQueue::new(&azurite);
    let blobs = RawBlobs::new(&azurite, CONTAINER);

    assert_eq!(
        host.invoke("ScheduledAudit", &timer_invocation())
            .await
            .status,
        200
    );
    // Only one subscription gets audited before the deadline...
    let m = raw
        .receive(QUEUE, 1, Duration::from_secs(60))
        .await
        .remove(0);
    let a = host
        .invoke("SubscriptionAudit", &queue_invocation(&m))
        .await;
    assert_eq!(a.status, 200);
    assert!(
        a.logs()
            .contains("2 subscription(s) of the run still to report"),
        "{}",
        a.logs()
    );
    raw.delete(QUEUE, &m).await;
    let first = m.json();
    let prefix = run_prefix(&first);
    // ...one lands in the poison queue with no failure recorded (as when the worker dies on its
    // last delivery and the host moves it)...
    let lost = raw
        .receive(QUEUE, 1, Duration::from_secs(60))
        .await
        .remove(0);
    raw.create(&format!("{QUEUE}-poison")).await;
    raw.send(&format!("{QUEUE}-poison"), &lost.text).await;
    raw.delete(QUEUE, &lost).await;
    let lost = lost.json();
    // ...and the last one expires with the deadline (its time to live).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        raw.peek(QUEUE).await.is_empty(),
        "messages expire at the deadline"
    );

    let next = host.invoke("ScheduledAudit", &timer_invocation()).await;
    assert_eq!(next.status, 200, "{:?}", next.body);
    assert!(
        next.logs().contains("did not report by the deadline"),
        "{}",
        next.logs()
    );
    let summary = blobs.json(&format!("{prefix}/summary.json")).await;
    assert_eq!(summary["closed"], "deadline");
    assert_eq!(
        summary["reported"],
        serde_json::json!([first["subscription"]])
    );
    let missing: BTreeSet<String> = summary["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let mut expected: BTreeSet<String> = subs(3).into_iter().collect();
    expected.remove(first["subscription"].as_str().unwrap());
    expected.remove(lost["subscription"].as_str().unwrap());
    assert_eq!(missing, expected);
    // Found in the poison queue: named poisoned, not missing.
    assert_eq!(summary["poisoned"][0]["subscription"], lost["subscription"]);
    assert!(
        summary["poisoned"][0]["error"]
            .as_str()
            .unwrap()
            .contains("found in the poison queue"),
        "{summary}"
    );
    let report = blobs.json(&format!("{prefix}.json")).await;
    assert_eq!(report["complete"], false);
    assert_eq!(report["run"]["finished"], summary["deadline"]);
    // The old run is closed; the new run is open with its three messages.
    let open = blobs.list("fanout/open/").await;
    assert_eq!(open.len(), 1);
    assert!(!open[0].contains(first["run"].as_str().unwrap()));
    let queued = raw.peek(QUEUE).await;
    assert_eq!(queued.len(), 3);
    assert!(queued.iter().all(|m| m.json()["run"] != first["run"]));
    assert!(blobs.assert_reports_valid().await >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_invocations_without_fan_out_or_with_a_bad_message_fail_to_the_host() {
    let azurite = Azurite::start();
    let sim = engine_support_sandbox(estate(1)).await;
    let handler = start_handler(&sim, &azurite, &policy_text(None), &[]).await;
    let host = FakeHost::new(handler.addr);
    // The fixture as captured: the message is "aaaaa", not a linkguard message.
    let mut bad: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/fixtures/functions/queue-invocation-azure.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let a = host.invoke("SubscriptionAudit", &bad).await;
    assert_eq!(a.status, 400, "{:?}", a.body);
    assert_eq!(a.error_code(), Some("InvalidMessage"));
    bad["Data"] =
        serde_json::json!({"message": "\"{\\\"schema\\\":\\\"linkguard.fanout/v1\\\"}\""});
    let a = host.invoke("SubscriptionAudit", &bad).await;
    assert_eq!(a.status, 400);
    assert!(
        a.body["Error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing field"),
        "{:?}",
        a.body
    );
    assert_eq!(sim.requests().total, 0);

    // A handler without fan-out refuses queue messages (non-2xx: nothing is acknowledged).
    let state = AppState::new(
        Arc::new(client(&sim, fast_retry())),
        PolicySource::Fixed(policy(&policy_text(None))),
        Arc::new(SinkStore(
            ReportDestination::parse(&azurite.connection_string())
                .unwrap()
                .into_sink(None, BlobSinkOptions::default())
                .unwrap(),
        )),
        HandlerOptions::default(),
    );
    let app = linkguard::host::functions::router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // A bad message is refused for what it is, configured or not.
    let a = FakeHost::new(addr).invoke("SubscriptionAudit", &bad).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.error_code(), Some("InvalidMessage"));
    // A good one cannot be processed without fan-out.
    let good = linkguard::fanout::AuditMessage::new(
        "20261207T120000Z-0a1b2c3d",
        "2026-12-07T12:00:00Z",
        &sub(0),
        linkguard::report::Trigger::Timer,
        false,
    );
    bad["Data"] = serde_json::json!({ "message": good.encode() });
    let a = FakeHost::new(addr).invoke("SubscriptionAudit", &bad).await;
    assert_eq!(a.status, 500, "{:?}", a.body);
    assert_eq!(a.error_code(), Some("FanOutNotConfigured"));
}
