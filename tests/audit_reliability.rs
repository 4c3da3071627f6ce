//! The engine against the ARM-compatible sandbox through the real ARM client over HTTP: request
//! budgets, throttling, outages, failed long-running operations, races (issue 3).
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod engine_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use engine_support::*;
use linkguard::engine::{Engine, EngineOptions, ResourceResult, Resources};
use linkguard::model::{
    ConnectionState, PrivateEndpoint, PrivateEndpointConnection, Registry, ResourceId,
};
use linkguard::plan::RegistryPatch;
use linkguard::report::{Outcome, Trigger};

fn platform_conn(i: usize) -> String {
    format!(
        "{}/privateEndpointConnections/pe-platform.1",
        registry_id(SUB, &format!("acr{i:05}"))
    )
}

#[tokio::test]
async fn audit_costs_list_pages_plus_one_reread_write_and_polls_per_change() {
    let n = 7;
    let page = 3;
    let sim = sandbox(estate(n), page, "").await;
    let result = engine(client(&sim, fast_retry()), policy(POLICY))
        .audit()
        .await;
    let report = &result.report;
    assert!(report.complete, "{:?}", report.errors);
    assert_eq!(report.totals.registries, n as u64);
    assert_eq!(report.actions.len(), n, "one approval per registry");
    assert!(
        report
            .actions
            .iter()
            .all(|a| a.outcome == Outcome::Applied && a.action == "approve")
    );
    for i in 0..n {
        assert_eq!(status_in_sim(&sim, &platform_conn(i)), "Approved");
    }
    let stats = sim.requests();
    let lists = n.div_ceil(page) as u64;
    assert_eq!(
        stats.count("list-registries"),
        lists,
        "ceil(N / page size) list calls"
    );
    // One re-read before each write, and the long-running operation's final GET after it.
    assert_eq!(
        stats.count("get-connection"),
        2 * n as u64,
        "one re-read and one final GET per change"
    );
    // The policy names no subscription: they are listed once.
    assert_eq!(stats.count("list-subscriptions"), 1);
    assert_eq!(
        stats.count("put-connection"),
        n as u64,
        "one write per change"
    );
    let polls = stats.count("connection-operation-status");
    assert!(
        polls >= n as u64,
        "each write's LRO is polled through InProgress: {polls}"
    );
    assert_eq!(
        stats.total,
        1 + lists + 3 * n as u64 + polls,
        "nothing else: {stats:?}"
    );
    assert_eq!(
        report.run.arm_requests, stats.total,
        "the report counts what went on the wire"
    );
    // Totals reflect the state after the run.
    assert_eq!(report.totals.approved, 2 * n as u64);
    assert_eq!(report.totals.pending, n as u64);
}

#[tokio::test]
async fn a_second_audit_changes_nothing() {
    let sim = sandbox(estate(3), 50, "").await;
    engine(client(&sim, fast_retry()), policy(POLICY))
        .audit()
        .await;
    sim.reset_requests();
    let again = engine(client(&sim, fast_retry()), policy(POLICY))
        .audit()
        .await;
    assert!(again.report.actions.is_empty());
    let stats = sim.requests();
    assert_eq!(
        (
            stats.total,
            stats.count("list-subscriptions"),
            stats.count("list-registries")
        ),
        (2, 1, 1),
        "a converged estate costs one list call"
    );
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let sim = sandbox(estate(3), 50, "").await;
    let e = Engine::new(
        Arc::new(client(&sim, fast_retry())),
        policy(POLICY),
        EngineOptions {
            dry_run: true,
            trigger: Trigger::Cli,
            ..EngineOptions::default()
        },
    );
    let result = e.audit().await;
    assert_eq!(result.report.actions.len(), 3);
    assert!(
        result
            .report
            .actions
            .iter()
            .all(|a| a.outcome == Outcome::DryRun)
    );
    assert_eq!(sim.requests().count_method("PUT"), 0);
    assert_eq!(status_in_sim(&sim, &platform_conn(0)), "Pending");
}

#[tokio::test]
async fn a_429_storm_is_ridden_out_honouring_retry_after() {
    // Every second request is throttled with Retry-After: 1.
    let sim = sandbox(estate(2), 50, "throttle-every=2,retry-after=1").await;
    let started = Instant::now();
    let result = engine(client(&sim, fast_retry()), policy(POLICY))
        .audit()
        .await;
    assert!(result.report.complete, "{:?}", result.report.errors);
    assert!(
        result
            .report
            .actions
            .iter()
            .all(|a| a.outcome == Outcome::Applied),
        "{:?}",
        result.report.actions
    );
    let throttled = sim.requests().count_status(429);
    assert!(throttled >= 3, "the storm happened: {throttled}");
    // Our own backoff is 10-200 ms; only honouring Retry-After makes the run take this long.
    assert!(
        started.elapsed() >= Duration::from_secs(throttled.min(4) / 2),
        "waited {:?} for {throttled} 429s",
        started.elapsed()
    );
    assert_eq!(status_in_sim(&sim, &platform_conn(1)), "Approved");
}

#[tokio::test]
async fn transient_5xx_and_dropped_connections_are_retried() {
    let sim = sandbox(estate(4), 2, "seed=3,error503=0.2,error500=0.1,drop=0.1").await;
    let result = engine(client(&sim, fast_retry()), policy(POLICY))
        .audit()
        .await;
    assert!(result.report.complete, "{:?}", result.report.errors);
    assert_eq!(
        result
            .report
            .actions
            .iter()
            .filter(|a| a.outcome == Outcome::Applied)
            .count(),
        4
    );
    let stats = sim.requests();
    assert!(
        stats.count_fault("drop") + stats.count_status(503) + stats.count_status(500) > 0,
        "faults were injected: {stats:?}"
    );
}

#[tokio::test]
async fn a_persistent_outage_is_reported_not_hidden() {
    let sim = sandbox(estate(2), 50, "error503=1").await;
    let mut retry = fast_retry();
    retry.max_retries = 2;
    let result = engine(client(&sim, retry), policy(POLICY)).audit().await;
    assert!(!result.report.complete);
    assert!(
        result.transient_failure,
        "the caller learns the failure is worth retrying"
    );
    assert!(
        result
            .report
            .errors
            .iter()
            .any(|e| e.message.contains("503") || e.message.contains("ServiceUnavailable")),
        "{:?}",
        result.report.errors
    );
    assert_eq!(result.registries_read, 0);
}

#[tokio::test]
async fn an_lro_that_fails_is_reported_never_counted_applied() {
    let sim = sandbox(estate(2), 50, "lro-fail=1").await;
    let result = engine(client(&sim, fast_retry()), policy(POLICY))
        .audit()
        .await;
    let actions = &result.report.actions;
    assert_eq!(actions.len(), 2);
    assert!(
        actions
            .iter()
            .all(|a| a.outcome == Outcome::Failed && a.error.is_some()),
        "{actions:?}"
    );
    assert_eq!(result.report.totals.failed, 2);
    assert_eq!(
        result.report.totals.approved, 2,
        "only the already-Approved ones"
    );
    assert_eq!(status_in_sim(&sim, &platform_conn(0)), "Pending");
}

#[tokio::test]
async fn an_unreadable_subscription_makes_the_run_incomplete_and_the_rest_is_audited() {
    let sim = sandbox(estate(2), 50, "").await;
    // The policy governs SUB and a subscription the identity cannot read.
    let text = format!(
        "version = 1\n[scope]\nsubscriptions = [\"{SUB}\", \"99999999-9999-9999-9999-999999999999\"]\n{}",
        POLICY.replace("version = 1", "")
    );
    let result = engine(client(&sim, fast_retry()), policy(&text))
        .audit()
        .await;
    assert!(!result.report.complete);
    assert_eq!(result.report.errors.len(), 1, "{:?}", result.report.errors);
    assert!(result.report.errors[0].scope.contains("99999999"));
    assert_eq!(result.report.totals.registries, 2);
    assert_eq!(status_in_sim(&sim, &platform_conn(1)), "Approved");
}

/// Wraps the real client and lets a person approve a connection between the audit's read and its
/// re-read, through the sandbox.
struct PersonActsFirst {
    inner: linkguard::arm::ArmClient,
    sim: linkguard::sim::Sandbox,
    target: String,
}

#[async_trait]
impl Resources for PersonActsFirst {
    async fn list_subscriptions(&self) -> ResourceResult<Vec<String>> {
        self.inner.list_subscriptions().await
    }
    async fn list_registries(&self, s: &str, rg: Option<&str>) -> ResourceResult<Vec<Registry>> {
        let regs = self.inner.list_registries(s, rg).await;
        self.sim
            .set_connection_status(&self.target, "Rejected", Some("rejected by a person"))
            .unwrap();
        regs
    }
    async fn get_registry(&self, id: &ResourceId) -> ResourceResult<Registry> {
        self.inner.get_registry(id).await
    }
    async fn patch_registry(&self, id: &ResourceId, p: &RegistryPatch) -> ResourceResult<Registry> {
        self.inner.patch_registry(id, p).await
    }
    async fn get_connection(&self, id: &ResourceId) -> ResourceResult<PrivateEndpointConnection> {
        self.inner.get_connection(id).await
    }
    async fn set_connection_state(
        &self,
        id: &ResourceId,
        s: &ConnectionState,
    ) -> ResourceResult<PrivateEndpointConnection> {
        self.inner.set_connection_state(id, s).await
    }
    async fn delete_connection(&self, id: &ResourceId) -> ResourceResult<()> {
        self.inner.delete_connection(id).await
    }
    async fn get_private_endpoint(&self, id: &ResourceId) -> ResourceResult<PrivateEndpoint> {
        self.inner.get_private_endpoint(id).await
    }
    fn request_count(&self) -> u64 {
        self.inner.request_count()
    }
}

#[tokio::test]
async fn a_connection_decided_by_someone_else_mid_run_is_not_written() {
    let sim = sandbox(estate(2), 50, "").await;
    let target = platform_conn(0);
    let resources = PersonActsFirst {
        inner: client(&sim, fast_retry()),
        sim: sim.handle(),
        target: target.clone(),
    };
    let e = Engine::new(
        Arc::new(resources),
        policy(POLICY),
        EngineOptions::default(),
    );
    let result = e.audit().await;
    let skipped: Vec<_> = result
        .report
        .actions
        .iter()
        .filter(|a| a.outcome == Outcome::Skipped)
        .collect();
    assert_eq!(skipped.len(), 1, "{:?}", result.report.actions);
    assert_eq!(skipped[0].connection.as_deref(), Some(target.as_str()));
    assert!(
        skipped[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("changed"),
        "{:?}",
        skipped[0]
    );
    assert_eq!(
        status_in_sim(&sim, &target),
        "Rejected",
        "the person's decision stands"
    );
    assert_eq!(
        sim.requests().count("put-connection"),
        1,
        "only the other registry's connection was written"
    );
}

#[tokio::test]
async fn two_audits_at_once_apply_each_change_once() {
    let n = 6;
    let sim = sandbox(estate(n), 50, "latency=5ms").await;
    let a = engine(client(&sim, fast_retry()), policy(POLICY));
    let b = engine(client(&sim, fast_retry()), policy(POLICY));
    let (ra, rb) = tokio::join!(a.audit(), b.audit());
    let applied = |r: &linkguard::engine::RunResult| {
        r.report
            .actions
            .iter()
            .filter(|x| x.outcome == Outcome::Applied)
            .count()
    };
    assert_eq!(
        applied(&ra) + applied(&rb),
        n,
        "each change applied by exactly one run"
    );
    assert_eq!(sim.requests().count("put-connection"), n as u64);
    for i in 0..n {
        assert_eq!(status_in_sim(&sim, &platform_conn(i)), "Approved");
    }
}
