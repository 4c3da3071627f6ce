//! The short soak in `cargo test` (issue 8): ~100 registries, ~20 s of random faults, new Pending
//! connections announced by Event Grid deliveries (duplicated, reordered, redelivered), timer and
//! manual audits at the same time; then the faults stop and everything must converge. What is
//! checked, continuously and at the end, is in `soak_support`. The long version:
//! `scripts/soak.sh` (`cargo run --release --bin soak -- --minutes 5`).
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod soak_support;

use std::time::Duration;

use soak_support::{SUB_O, SUB_Q, SoakConfig, policy_text, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_never_approves_what_policy_forbids_and_loses_nothing() {
    // A fixed seed so a failure can be replayed; LINKGUARD_SOAK_SEED picks another.
    let seed = std::env::var("LINKGUARD_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let s = run(SoakConfig::short(seed))
        .await
        .unwrap_or_else(|e| panic!("the soak could not start: {e}"));
    let text = serde_json::to_string_pretty(&s).unwrap();
    println!("{text}");

    assert!(
        s.violations.is_empty(),
        "{} invariant violations (seed {seed}):\n{}",
        s.violations_total,
        s.violations.join("\n")
    );

    // The run did what it claims, so the invariants were tested against real work.
    assert_eq!(s.registries_governed, 100);
    assert!(s.connections_added >= 100, "{text}");
    for verdict in ["approve", "reject", "leave", "out-of-scope"] {
        assert!(
            s.added_by_verdict.get(verdict).copied().unwrap_or(0) > 0,
            "no new connection the policy would {verdict}: {text}"
        );
    }
    assert!(
        s.endpoint_events > 0 && s.echo_events > 0 && s.noise_events > 0,
        "{text}"
    );
    assert!(s.duplicate_copies > 0, "{text}");
    assert!(
        s.deliveries > s.events_generated,
        "duplicates and redeliveries: {text}"
    );
    assert!(
        s.redeliveries > 0,
        "some deliveries failed under faults and were redelivered: {text}"
    );
    assert_eq!(s.dead_lettered, 0, "{text}");
    // Audits ran alongside the deliveries. How many fit in the window depends on the machine (an
    // audit of 100 registries under faults takes seconds on a loaded 2-core box), so only their
    // presence is required; each one is held to its report by `reports_expected` below.
    assert!(s.timer_audits >= 1, "no ScheduledAudit ran: {text}");
    assert!(s.manual_audits >= 1, "no ManualAudit ran: {text}");
    for fault in [
        "throttle", "error500", "error503", "busy", "lro-fail", "drop",
    ] {
        assert!(
            s.faults_injected.get(fault).copied().unwrap_or(0) > 0,
            "fault {fault} never injected: {text}"
        );
    }
    assert!(s.writes_effective >= 100, "{text}");
    assert!(
        s.writes_not_effective > 0,
        "some writes were refused or their operation failed: {text}"
    );
    assert!(
        s.reports_expected > 0 && s.reports_expected == s.reports_found,
        "{text}"
    );
    assert!(
        s.estate_scans >= 10 && s.log_records_checked > 1000,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soak_catches_a_linkguard_that_decides_against_the_policy() {
    // linkguard runs with a policy that also approves O's endpoints and no longer rejects Q's,
    // while the oracle keeps to the real one: the checks must say so.
    let wrong = policy_text()
        .replace(
            &format!("match.subscriptions = [\"{SUB_Q}\"]"),
            "match.subscriptions = [\"00000000-0000-0000-0000-000000000000\"]",
        )
        .replace(
            "match.subscriptions = [\"a0000000",
            &format!("match.subscriptions = [\"{SUB_O}\", \"a0000000"),
        );
    assert_ne!(wrong, policy_text());
    let config = SoakConfig {
        registries: 20,
        ungoverned: 4,
        duration: Duration::from_secs(4),
        policy: wrong,
        ..SoakConfig::short(3)
    };
    let s = run(config).await.unwrap();
    let all = s.violations.join("\n");
    let kinds = &s.violations_by_kind;
    assert!(
        kinds.get("forbidden-state").copied().unwrap_or(0) > 0
            && all.contains("is Approved; the policy allows only Pending"),
        "an approval the policy forbids: {all}"
    );
    assert!(
        kinds.get("forbidden-write").copied().unwrap_or(0) > 0
            && all.contains("the policy leaves this Pending connection alone"),
        "{all}"
    );
    assert!(
        kinds.get("not-converged").copied().unwrap_or(0) > 0
            && all.contains(
                "is Pending; the policy allows only Rejected (it was Pending at first) once converged"
            ),
        "a rejection never made: {all}"
    );
    assert!(
        !kinds.contains_key("report") && !kinds.contains_key("handler"),
        "only the decisions are wrong: {kinds:?}"
    );
}
