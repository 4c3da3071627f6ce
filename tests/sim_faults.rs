//! The sandbox's long-running operations and injected faults, seen from a plain HTTP client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod sim_support;

use std::time::{Duration, Instant};

use linkguard::sim::{FaultSpec, Sandbox, SimOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sim_support::*;

fn approve() -> Value {
    json!({"properties": {"privateLinkServiceConnectionState": {"status": "Approved", "description": "ok by test"}}})
}

fn conn_status(sim: &Sandbox, name: &str) -> (String, String) {
    let c = sim
        .connection_json(&connection_id("myRegistry0", name))
        .unwrap();
    (
        c["properties"]["privateLinkServiceConnectionState"]["status"]
            .as_str()
            .unwrap()
            .to_string(),
        c["properties"]["provisioningState"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

#[tokio::test]
async fn lro_goes_in_progress_then_succeeded_and_the_change_shows_only_after() {
    let sim = Sandbox::start(
        estate(1),
        SimOptions {
            lro_polls: 2,
            retry_after_secs: 0,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = http();
    let target = url(
        sim.endpoint(),
        &connection_id("myRegistry0", "pending-a"),
        ACR,
    );
    let started = call(&c, Method::PUT, &target, Some("t"), Some(&approve())).await;
    assert_eq!(started.status, StatusCode::CREATED);
    assert_eq!(started.header("retry-after"), Some("0"));
    assert_eq!(
        started.body["properties"]["privateLinkServiceConnectionState"]["status"],
        "Approved"
    );
    assert_eq!(started.body["properties"]["provisioningState"], "Updating");
    let op = started.header("azure-asyncoperation").unwrap().to_string();
    assert!(
        op.starts_with(&format!(
            "{target_path}/operationStatuses/privateendpointconnections-",
            target_path = target.split('?').next().unwrap()
        )),
        "{op}"
    );

    for _ in 0..2 {
        assert_eq!(
            conn_status(&sim, "pending-a"),
            ("Pending".into(), "Updating".into())
        );
        let poll = get(&c, &op).await;
        assert_eq!(poll.status, StatusCode::OK);
        assert_eq!(poll.body["status"], "InProgress");
        assert_eq!(poll.header("retry-after"), Some("0"));
        assert!(poll.body["startTime"].is_string() && poll.body.get("endTime").is_none());
        // a reader in between sees the old state
        let read = get(&c, &target).await;
        assert_eq!(
            read.body["properties"]["privateLinkServiceConnectionState"]["status"],
            "Pending"
        );
    }
    let done = get(&c, &op).await;
    assert_eq!(done.body["status"], "Succeeded");
    assert!(done.body["endTime"].is_string());
    assert!(done.header("retry-after").is_none());
    assert_eq!(
        conn_status(&sim, "pending-a"),
        ("Approved".into(), "Succeeded".into())
    );
    let registry = get(&c, &url(sim.endpoint(), &registry_id("myRegistry0"), ACR))
        .await
        .body;
    let seen = registry["properties"]["privateEndpointConnections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "pending-a")
        .unwrap()
        .clone();
    assert_eq!(
        seen["properties"]["privateLinkServiceConnectionState"]["status"],
        "Approved"
    );
    assert_eq!(
        seen["properties"]["privateLinkServiceConnectionState"]["description"],
        "ok by test"
    );
    // a finished operation keeps answering its outcome
    assert_eq!(get(&c, &op).await.body["status"], "Succeeded");
    assert_eq!(sim.requests().count("connection-operation-status"), 4);
    // the status URL of an operation does not resolve under another connection
    let elsewhere = op.replace("/pending-a/", "/pending-b/");
    assert_eq!(get(&c, &elsewhere).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_goes_through_location_polling() {
    let sim = Sandbox::start(
        estate(1),
        SimOptions {
            lro_polls: 1,
            retry_after_secs: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = http();
    let target = url(
        sim.endpoint(),
        &connection_id("myRegistry0", "rejected"),
        ACR,
    );
    let started = call(&c, Method::DELETE, &target, Some("t"), None).await;
    assert_eq!(started.status, StatusCode::ACCEPTED);
    assert_eq!(started.header("retry-after"), Some("1"));
    assert!(started.header("azure-asyncoperation").is_none());
    let location = started.header("location").unwrap().to_string();
    assert!(
        location.contains("/privateEndpointConnections/rejected/operationStatuses/"),
        "{location}"
    );
    assert_eq!(conn_status(&sim, "rejected").1, "Deleting");
    assert_eq!(
        started.header("x-ms-ratelimit-remaining-subscription-deletes"),
        Some("200")
    );

    let running = get(&c, &location).await;
    assert_eq!(running.status, StatusCode::ACCEPTED);
    assert_eq!(running.header("location"), Some(location.as_str()));
    assert_eq!(running.header("retry-after"), Some("1"));
    assert!(
        sim.connection_json(&connection_id("myRegistry0", "rejected"))
            .is_some()
    );
    let done = get(&c, &location).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    assert!(
        sim.connection_json(&connection_id("myRegistry0", "rejected"))
            .is_none()
    );
    assert_eq!(get(&c, &target).await.status, StatusCode::NOT_FOUND);
    // deleting what is gone answers 204 at once
    assert_eq!(
        call(&c, Method::DELETE, &target, Some("t"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn an_lro_fault_ends_failed_and_changes_nothing() {
    let faults = FaultSpec::parse("seed=1,lro-fail=1").unwrap();
    let sim = Sandbox::start(
        estate(1),
        SimOptions {
            lro_polls: 1,
            retry_after_secs: 0,
            faults,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = http();
    let before = sim.registry_json(&registry_id("myRegistry0")).unwrap();

    let started = call(
        &c,
        Method::PUT,
        &url(
            sim.endpoint(),
            &connection_id("myRegistry0", "pending-a"),
            ACR,
        ),
        Some("t"),
        Some(&approve()),
    )
    .await;
    assert_eq!(started.status, StatusCode::CREATED);
    let op = started.header("azure-asyncoperation").unwrap().to_string();
    assert_eq!(get(&c, &op).await.body["status"], "InProgress");
    let failed = get(&c, &op).await;
    assert_eq!(failed.status, StatusCode::OK);
    assert_eq!(failed.body["status"], "Failed");
    assert!(
        failed.body["error"]["code"].is_string() && failed.body["error"]["message"].is_string(),
        "{}",
        failed.body
    );
    assert_eq!(
        conn_status(&sim, "pending-a"),
        ("Pending".into(), "Succeeded".into())
    );

    let patch = call(
        &c,
        Method::PATCH,
        &url(sim.endpoint(), &registry_id("myRegistry0"), ACR),
        Some("t"),
        Some(&json!({"properties": {"publicNetworkAccess": "Disabled"}})),
    )
    .await;
    let op = patch.header("azure-asyncoperation").unwrap().to_string();
    get(&c, &op).await;
    assert_eq!(get(&c, &op).await.body["status"], "Failed");

    let delete = call(
        &c,
        Method::DELETE,
        &url(
            sim.endpoint(),
            &connection_id("myRegistry0", "approved"),
            ACR,
        ),
        Some("t"),
        None,
    )
    .await;
    let location = delete.header("location").unwrap().to_string();
    assert_eq!(get(&c, &location).await.status, StatusCode::ACCEPTED);
    let failed = get(&c, &location).await;
    assert_eq!(failed.status, StatusCode::CONFLICT);
    assert!(!failed.error_code().is_empty());

    assert_eq!(
        sim.registry_json(&registry_id("myRegistry0")).unwrap(),
        before,
        "a failed operation must leave the estate as it was"
    );
    assert_eq!(sim.requests().count_fault("lro-fail"), 3);
}

#[tokio::test]
async fn every_nth_request_is_throttled_with_retry_after() {
    let faults = FaultSpec::parse("throttle-every=3,retry-after=2").unwrap();
    let sim = Sandbox::start(
        estate(1),
        SimOptions {
            faults,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = http();
    let target = url(sim.endpoint(), &registry_id("myRegistry0"), ACR);
    let mut throttled = Vec::new();
    for i in 1..=9 {
        let a = get(&c, &target).await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(a.header("retry-after"), Some("2"));
            assert_eq!(a.error_code(), "SubscriptionRequestsThrottled");
            assert_eq!(
                a.header("x-ms-ratelimit-remaining-subscription-reads"),
                Some("0")
            );
            throttled.push(i);
        } else {
            assert_eq!(a.status, StatusCode::OK);
        }
    }
    assert_eq!(throttled, vec![3, 6, 9]);
    assert_eq!(sim.requests().count_fault("throttle"), 3);
    assert_eq!(sim.requests().count_status(429), 3);
}

#[tokio::test]
async fn the_token_bucket_empties_after_250_reads() {
    let faults = FaultSpec::parse("bucket=arm").unwrap();
    let sim = Sandbox::start(
        estate(1),
        SimOptions {
            faults,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = http();
    let target = url(sim.endpoint(), &registry_id("myRegistry0"), ACR);
    let started = Instant::now();
    let mut first_429 = None;
    let mut last_remaining = u64::MAX;
    for i in 1..=600u64 {
        let a = get(&c, &target).await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(a.header("retry-after"), Some("1"));
            first_429 = Some(i);
            break;
        }
        let remaining: u64 = a
            .header("x-ms-ratelimit-remaining-subscription-reads")
            .unwrap()
            .parse()
            .unwrap();
        if i == 1 {
            assert_eq!(remaining, 249);
        }
        last_remaining = remaining;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let first = first_429.expect("the read bucket never emptied");
    // 250 tokens, plus what 25/s refilled while the loop ran
    let refilled = (25.0 * elapsed).ceil() as u64;
    assert!(
        first > 250 && first <= 251 + refilled,
        "first 429 at request {first} after {elapsed:.2}s"
    );
    assert!(last_remaining <= 1 + refilled);
    // writes draw from their own bucket
    let write = call(
        &c,
        Method::PATCH,
        &target,
        Some("t"),
        Some(&json!({"properties": {}})),
    )
    .await;
    assert_eq!(write.status, StatusCode::CREATED);
    assert_eq!(
        write.header("x-ms-ratelimit-remaining-subscription-writes"),
        Some("199")
    );
    assert!(sim.requests().count_fault("bucket") >= 1);
}

async fn statuses(endpoint: &str, c: &reqwest::Client, n: usize) -> Vec<u16> {
    let target = url(endpoint, &registry_id("myRegistry0"), ACR);
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(get(c, &target).await.status.as_u16());
    }
    out
}

#[tokio::test]
async fn seeded_faults_are_deterministic() {
    let spec = FaultSpec::parse("seed=7,error500=0.2,error503=0.2").unwrap();
    let sim = Sandbox::start(
        estate(1),
        SimOptions {
            faults: spec.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = http();
    let first = statuses(sim.endpoint(), &c, 60).await;
    sim.set_faults(spec.clone());
    let again = statuses(sim.endpoint(), &c, 60).await;
    assert_eq!(first, again, "same seed, same sequence");
    for code in [200, 500, 503] {
        assert!(
            first.contains(&code),
            "{first:?} should mix 200, 500 and 503"
        );
    }
    sim.set_faults(FaultSpec::parse("seed=8,error500=0.2,error503=0.2").unwrap());
    let other = statuses(sim.endpoint(), &c, 60).await;
    assert_ne!(first, other, "another seed, another sequence");

    // the error bodies are ARM's
    sim.set_faults(FaultSpec::parse("error503=1,retry-after=3").unwrap());
    let a = get(&c, &url(sim.endpoint(), &registry_id("myRegistry0"), ACR)).await;
    assert_eq!(
        (a.status, a.error_code(), a.header("retry-after")),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            Some("3")
        )
    );
    sim.set_faults(FaultSpec::parse("busy=1").unwrap());
    let a = get(&c, &url(sim.endpoint(), &registry_id("myRegistry0"), ACR)).await;
    assert_eq!(
        (a.status, a.error_code()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            "RetryableErrorDueToAnotherOperation"
        )
    );
    assert_eq!(a.header("retry-after"), Some("1"));
    sim.set_faults(FaultSpec::parse("error500=1").unwrap());
    let a = get(&c, &url(sim.endpoint(), &registry_id("myRegistry0"), ACR)).await;
    assert_eq!(
        (a.status, a.error_code()),
        (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError")
    );
    assert!(a.body["error"]["message"].is_string());
}

#[tokio::test]
async fn a_dropped_connection_is_a_connection_error() {
    let faults = FaultSpec::parse("drop=1,ops=get-registry").unwrap();
    let sim = Sandbox::start(
        estate(1),
        SimOptions {
            faults,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = http();
    let target = url(sim.endpoint(), &registry_id("myRegistry0"), ACR);
    let err = try_call(&c, Method::GET, &target, Some("t"), None)
        .await
        .err()
        .expect("a dropped connection must not answer");
    assert!(
        err.is_request() || err.is_connect() || err.is_body(),
        "{err:?}"
    );
    // other operations are untouched by `ops=get-registry`
    let list = get(
        &c,
        &url(
            sim.endpoint(),
            &format!("/subscriptions/{SUB}/providers/Microsoft.ContainerRegistry/registries"),
            ACR,
        ),
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    let stats = sim.requests();
    let dropped = stats
        .log
        .iter()
        .find(|r| r.fault.as_deref() == Some("drop"))
        .unwrap();
    assert_eq!(
        (dropped.operation.as_deref(), dropped.status),
        (Some("get-registry"), None)
    );
    assert_eq!(stats.by_status.get("dropped"), Some(&1));

    // over TLS too
    let tls = Sandbox::start(
        estate(1),
        SimOptions {
            tls: true,
            faults: FaultSpec::parse("drop=1").unwrap(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let tc = https(tls.ca_cert_path().unwrap());
    assert!(
        try_call(
            &tc,
            Method::GET,
            &url(tls.endpoint(), &registry_id("myRegistry0"), ACR),
            Some("t"),
            None
        )
        .await
        .is_err()
    );

    // faults change at runtime over HTTP; a bad spec names the key
    let e = sim.endpoint();
    let bad = call(
        &c,
        Method::POST,
        &format!("{e}/_sim/faults"),
        None,
        Some(&json!({"spec": "drop=2"})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`drop`"),
        "{}",
        bad.body
    );
    let set = call(
        &c,
        Method::POST,
        &format!("{e}/_sim/faults"),
        None,
        Some(&json!({"spec": "throttle-every=1"})),
    )
    .await;
    assert_eq!(set.body["spec"], "seed=0,throttle-every=1,retry-after=1");
    assert_eq!(get(&c, &target).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        call(&c, Method::DELETE, &format!("{e}/_sim/faults"), None, None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(get(&c, &target).await.status, StatusCode::OK);
    assert_eq!(
        get(&c, &format!("{e}/_sim/faults")).await.body["spec"],
        "none"
    );
}

#[tokio::test]
async fn latency_is_added() {
    let faults = FaultSpec::parse("latency=150ms").unwrap();
    let sim = Sandbox::start(
        estate(1),
        SimOptions {
            faults,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = http();
    let started = Instant::now();
    assert_eq!(
        get(&c, &url(sim.endpoint(), &registry_id("myRegistry0"), ACR))
            .await
            .status,
        StatusCode::OK
    );
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    // test hooks are never delayed or faulted
    let started = Instant::now();
    assert_eq!(
        get(&c, &format!("{}/_sim/health", sim.endpoint()))
            .await
            .status,
        StatusCode::OK
    );
    assert!(started.elapsed() < Duration::from_millis(150));
}
