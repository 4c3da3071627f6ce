//! ConnectionEvents answers within its time budget (DESIGN 7.2: Event Grid waits 30 s): slow ARM
//! (the sandbox's latency fault) turns into a non-2xx Event Grid redelivers, not a timeout, and the
//! redelivery then does the work.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod functions_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use functions_support::*;
use linkguard::host::functions::{AppState, HandlerOptions, PolicySource, SinkStore};
use linkguard::report::sink::DirSink;
use linkguard::sim::FaultSpec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_arm_becomes_a_non_2xx_within_the_budget_and_the_redelivery_succeeds() {
    assert!(
        HandlerOptions::default().event_budget < Duration::from_secs(30),
        "the deployed budget must be under Event Grid's 30 s"
    );
    let sim = sandbox().await;
    let reports = tempfile::tempdir().unwrap();
    let budget = Duration::from_millis(1500);
    let state = AppState::new(
        Arc::new(arm_client(sim.endpoint())),
        PolicySource::Fixed(policy()),
        Arc::new(SinkStore(Arc::new(DirSink::new(reports.path())))),
        HandlerOptions {
            event_budget: budget,
            ..options(&[SUB_TOPIC])
        },
    );
    let server = Server::start(state).await;
    // Each ARM call takes 400 ms: a reconciliation (a dozen calls and more) cannot finish in 1.5 s.
    sim.handle()
        .set_faults(FaultSpec::parse("latency=400ms").unwrap());
    let inv = event_invocation(connection_write_event("evt-budget", PENDING_CONN));
    let started = Instant::now();
    let (status, body) = server.invoke("ConnectionEvents", &inv).await;
    let took = started.elapsed();
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["Error"]["code"], "TimeBudgetExceeded", "{body}");
    assert!(
        body["Error"]["message"]
            .as_str()
            .unwrap()
            .contains("redelivery"),
        "{body}"
    );
    assert!(
        took >= budget && took < budget + Duration::from_secs(3),
        "answered after {took:?} with a {budget:?} budget"
    );
    assert!(sim.handle().requests().total > 0, "ARM was reached");

    // ARM is fast again: the redelivery (same event id) is not skipped as a duplicate and acts.
    sim.handle().set_faults(FaultSpec::none());
    let (status, body) = server.invoke("ConnectionEvents", &inv).await;
    assert_eq!(status, 200, "{body}");
    let conn = sim.handle().connection_json(PENDING_CONN).unwrap();
    assert_eq!(
        conn["properties"]["privateLinkServiceConnectionState"]["status"],
        "Approved"
    );
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reports.path().join("latest.json")).unwrap())
            .unwrap();
    assert!(
        assert_dir_reports_valid(reports.path()) >= 2,
        "run report and latest.json, schema-valid"
    );
    assert_eq!(latest["complete"], true, "{latest}");
    server.stop().await;
}
