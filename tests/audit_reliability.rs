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
        .await
        .validated();
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
    assert_lro_polls(polls, n as u64);
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

/// The sandbox answers a status poll `InProgress` `SimOptions::lro_polls` (1) times, then
/// `Succeeded`: two polls per operation. An operation nobody polls finishes on its own after 200 ms
/// (`retry_after_secs = 0`), so on a loaded machine the first poll may already see `Succeeded`.
/// Hence between one and two polls per operation; any extra poll fails.
fn assert_lro_polls(polls: u64, operations: u64) {
    let per_op = u64::from(linkguard::sim::SimOptions::default().lro_polls) + 1;
    assert!(
        (operations..=operations * per_op).contains(&polls),
        "{polls} polls for {operations} operations: expected 1..={per_op} each"
    );
}

#[tokio::test]
async fn a_remediation_costs_one_reread_one_patch_its_polls_and_the_final_get() {
    let mut estate = serde_json::json!({"registries": [registry(SUB, "acr00000", &[])]});
    estate["registries"][0]["properties"]["publicNetworkAccess"] = serde_json::json!("Enabled");
    let sim = sandbox(estate, 50, "").await;
    let text = "version = 1\n[network]\npublic_network_access = \"Disabled\"\nremediate = true\n";
    let result = engine(client(&sim, fast_retry()), policy(text))
        .audit()
        .await
        .validated();
    let report = &result.report;
    assert!(report.complete, "{:?}", report.errors);
    assert_eq!(report.actions.len(), 1, "{:?}", report.actions);
    assert_eq!(
        (
            report.actions[0].action.as_str(),
            &report.actions[0].outcome
        ),
        ("patch", &Outcome::Applied)
    );
    let reg = sim.registry_json(&registry_id(SUB, "acr00000")).unwrap();
    assert_eq!(reg["properties"]["publicNetworkAccess"], "Disabled");

    let stats = sim.requests();
    assert_eq!(stats.count("list-subscriptions"), 1);
    assert_eq!(stats.count("list-registries"), 1);
    assert_eq!(
        stats.count("get-registry"),
        2,
        "one re-read under the lock, one final GET after the operation"
    );
    assert_eq!(stats.count("patch-registry"), 1);
    let polls = stats.count("registry-operation-status");
    assert_lro_polls(polls, 1);
    assert_eq!(stats.total, 5 + polls, "nothing else: {stats:?}");
    assert_eq!(report.run.arm_requests, stats.total);
}

#[tokio::test]
async fn a_second_audit_changes_nothing() {
    let sim = sandbox(estate(3), 50, "").await;
    engine(client(&sim, fast_retry()), policy(POLICY))
        .audit()
        .await
        .validated();
    sim.reset_requests();
    let again = engine(client(&sim, fast_retry()), policy(POLICY))
        .audit()
        .await
        .validated();
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
    let result = e.audit().await.validated();
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
        .await
        .validated();
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
        .await
        .validated();
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
    // Each kind really happened (the seed is fixed), so every kind was retried through.
    assert!(
        stats.count_fault("drop") >= 1,
        "a connection was dropped: {stats:?}"
    );
    assert!(
        stats.count_status(503) + stats.count_status(500) >= 1,
        "a server error was answered: {stats:?}"
    );
}

#[tokio::test]
async fn a_persistent_outage_is_reported_not_hidden() {
    let sim = sandbox(estate(2), 50, "error503=1").await;
    let mut retry = fast_retry();
    retry.max_retries = 2;
    let result = engine(client(&sim, retry), policy(POLICY))
        .audit()
        .await
        .validated();
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
        .await
        .validated();
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
        .await
        .validated();
    assert!(!result.report.complete);
    assert_eq!(result.report.errors.len(), 1, "{:?}", result.report.errors);
    assert!(result.report.errors[0].scope.contains("99999999"));
    assert_eq!(result.report.totals.registries, 2);
    assert_eq!(status_in_sim(&sim, &platform_conn(1)), "Approved");
}

#[tokio::test]
async fn an_unreadable_registry_makes_the_run_incomplete_and_the_others_are_applied() {
    // Three registries in one readable subscription; the identity may not read the middle one
    // (a deny on that registry). Named registries (an event, `--registry`) are each read with a GET.
    let sim = sandbox(estate(3), 50, "").await;
    let denied = registry_id(SUB, "acr00001");
    sim.deny_registry(&denied);
    let ids: Vec<ResourceId> = (0..3)
        .map(|i| ResourceId::parse(&registry_id(SUB, &format!("acr{i:05}"))).unwrap())
        .collect();
    let result = engine(client(&sim, fast_retry()), policy(POLICY))
        .reconcile(&ids)
        .await
        .validated();
    let report = &result.report;
    assert!(!report.complete);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0].scope.eq_ignore_ascii_case(&denied),
        "{:?}",
        report.errors[0]
    );
    assert!(
        report.errors[0].message.contains("AuthorizationFailed"),
        "the ARM error reaches the report: {}",
        report.errors[0].message
    );
    assert_eq!(result.registries_read, 2);
    assert_eq!(report.totals.registries, 2);
    let applied: Vec<_> = report
        .actions
        .iter()
        .filter(|a| a.outcome == Outcome::Applied)
        .collect();
    assert_eq!(applied.len(), 2, "{:?}", report.actions);
    assert_eq!(status_in_sim(&sim, &platform_conn(0)), "Approved");
    assert_eq!(status_in_sim(&sim, &platform_conn(1)), "Pending");
    assert_eq!(status_in_sim(&sim, &platform_conn(2)), "Approved");
    assert_eq!(sim.requests().count("put-connection"), 2);
}

/// Wraps the real client and lets a person decide a connection (sets `status`) between the audit's
/// read and its re-read, through the sandbox.
struct PersonActsFirst {
    inner: linkguard::arm::ArmClient,
    sim: linkguard::sim::Sandbox,
    target: String,
    status: &'static str,
}

#[async_trait]
impl Resources for PersonActsFirst {
    async fn list_subscriptions(&self) -> ResourceResult<Vec<String>> {
        self.inner.list_subscriptions().await
    }
    async fn list_registries(&self, s: &str, rg: Option<&str>) -> ResourceResult<Vec<Registry>> {
        let regs = self.inner.list_registries(s, rg).await;
        self.sim
            .set_connection_status(&self.target, self.status, Some("decided by a person"))
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

/// The audit would approve `platform_conn(0)`; a person sets `status` on it after the audit read
/// the registry. The person's decision stands and the connection is not written.
async fn decided_by_someone_else_mid_run(status: &'static str) {
    let sim = sandbox(estate(2), 50, "").await;
    let target = platform_conn(0);
    let resources = PersonActsFirst {
        inner: client(&sim, fast_retry()),
        sim: sim.handle(),
        target: target.clone(),
        status,
    };
    let e = Engine::new(
        Arc::new(resources),
        policy(POLICY),
        EngineOptions::default(),
    );
    let result = e.audit().await.validated();
    let skipped: Vec<_> = result
        .report
        .actions
        .iter()
        .filter(|a| a.outcome == Outcome::Skipped)
        .collect();
    assert_eq!(skipped.len(), 1, "{status}: {:?}", result.report.actions);
    assert_eq!(skipped[0].connection.as_deref(), Some(target.as_str()));
    assert!(
        skipped[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains(&format!("changed from Pending to {status}")),
        "{:?}",
        skipped[0]
    );
    assert_eq!(
        status_in_sim(&sim, &target),
        status,
        "the person's decision stands"
    );
    let c = sim.connection_json(&target).unwrap();
    assert_eq!(
        c["properties"]["privateLinkServiceConnectionState"]["description"], "decided by a person",
        "not written again, not even with the same status"
    );
    let stats = sim.requests();
    assert_eq!(
        stats.count("put-connection"),
        1,
        "only the other registry's connection was written"
    );
    assert_eq!(
        stats.count("get-connection"),
        3,
        "two re-reads (one finds the change) and one final GET"
    );
}

#[tokio::test]
async fn a_connection_rejected_by_someone_else_mid_run_is_not_written() {
    decided_by_someone_else_mid_run("Rejected").await;
}

#[tokio::test]
async fn a_connection_approved_by_someone_else_mid_run_is_not_written_again() {
    decided_by_someone_else_mid_run("Approved").await;
}

#[tokio::test]
async fn two_audits_at_once_apply_each_change_once() {
    let n = 6;
    let sim = sandbox(estate(n), 50, "latency=5ms").await;
    let a = engine(client(&sim, fast_retry()), policy(POLICY));
    let b = engine(client(&sim, fast_retry()), policy(POLICY));
    let (ra, rb) = tokio::join!(a.audit(), b.audit());
    let (ra, rb) = (ra.validated(), rb.validated());
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

#[tokio::test]
async fn concurrent_remediations_patch_once_and_only_what_differs() {
    let mut estate = estate(1);
    estate["registries"][0]["properties"]["publicNetworkAccess"] = serde_json::json!("Enabled");
    let sim = sandbox(estate, 50, "latency=5ms").await;
    let text = "version = 1\n[network]\npublic_network_access = \"Disabled\"\ndefault_action = \"Deny\"\nremediate = true\n";
    let a = engine(client(&sim, fast_retry()), policy(text));
    let b = engine(client(&sim, fast_retry()), policy(text));
    let (ra, rb) = tokio::join!(a.audit(), b.audit());
    let (ra, rb) = (ra.validated(), rb.validated());
    let patches: Vec<_> = ra
        .report
        .actions
        .iter()
        .chain(&rb.report.actions)
        .filter(|x| x.action == "patch")
        .collect();
    assert_eq!(patches.len(), 2, "both runs planned the patch: {patches:?}");
    assert_eq!(
        patches
            .iter()
            .filter(|p| p.outcome == Outcome::Applied)
            .count(),
        1,
        "{patches:?}"
    );
    assert_eq!(sim.requests().count("patch-registry"), 1);
    let reg = sim.registry_json(&registry_id(SUB, "acr00000")).unwrap();
    assert_eq!(reg["properties"]["publicNetworkAccess"], "Disabled");
    assert_eq!(
        reg["properties"]["networkRuleSet"]["defaultAction"], "Deny",
        "untouched: it already matched"
    );
}
