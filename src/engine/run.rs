//! The use cases: `audit` (every governed registry) and `reconcile` (the registries an event or an
//! operator names). Both read state through `Resources`, decide with `policy`, apply the plan and
//! return the report. Errors on one registry are recorded and the others still run.

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt};

use super::locks;
use super::report_builder::ReportBuilder;
use super::resources::{ResourceErrorKind, Resources};
use crate::model::{ConnectionState, ConnectionStatus, Registry, ResourceId};
use crate::plan::{Action, Decision, Remediation};
use crate::policy::{Endpoints, Mode, Policy, evaluate_registry};
use crate::report::{ActionRecord, Outcome, Report, RunMode, Trigger};

#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Registries worked on at once (ARM's budget is per subscription; keep this modest).
    pub concurrency: usize,
    /// Decide and report, change nothing (the policy's `mode = "dry-run"` has the same effect).
    pub dry_run: bool,
    pub trigger: Trigger,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            concurrency: 8,
            dry_run: false,
            trigger: Trigger::Cli,
        }
    }
}

pub struct Engine {
    resources: Arc<dyn Resources>,
    policy: Arc<Policy>,
    options: EngineOptions,
}

/// What happened to one registry, merged into the report afterwards (runs are concurrent).
#[derive(Default)]
struct RegistryOutcome {
    registry: Option<(Registry, Vec<ConnectionStatus>)>,
    actions: Vec<ActionRecord>,
    findings: Vec<crate::plan::Finding>,
    errors: Vec<(String, String)>,
    unreadable: Option<(String, String)>,
    transient: bool,
}

/// A finished run: the report, and whether a transient failure means the trigger should be retried.
pub struct RunResult {
    pub report: Report,
    /// True when some ARM call failed transiently (Event Grid should redeliver).
    pub transient_failure: bool,
    /// Governed registries successfully read.
    pub registries_read: usize,
}

impl Engine {
    pub fn new(resources: Arc<dyn Resources>, policy: Arc<Policy>, options: EngineOptions) -> Self {
        Self {
            resources,
            policy,
            options,
        }
    }

    fn mode(&self) -> RunMode {
        if self.options.dry_run || self.policy.mode == Mode::DryRun {
            RunMode::DryRun
        } else {
            RunMode::Enforce
        }
    }

    /// Audits every governed registry: one list call per page per subscription, then only writes.
    pub async fn audit(&self) -> RunResult {
        let mut report = ReportBuilder::new(self.options.trigger, self.mode(), &self.policy.sha256);
        let mut transient = false;
        let subscriptions = match self.policy.scoped_subscriptions() {
            Some(subs) => subs.to_vec(),
            None => match self.resources.list_subscriptions().await {
                Ok(subs) => subs,
                Err(e) => {
                    report.incomplete("subscriptions", format!("cannot list subscriptions: {e}"));
                    return RunResult {
                        report: report.finish(self.resources.request_count()),
                        transient_failure: e.is_transient(),
                        registries_read: 0,
                    };
                }
            },
        };
        let mut governed = Vec::new();
        for sub in &subscriptions {
            match self.resources.list_registries(sub, None).await {
                Ok(regs) => governed.extend(regs.into_iter().filter(|r| self.policy.governs(r))),
                Err(e) => {
                    transient |= e.is_transient();
                    report.incomplete(
                        format!("/subscriptions/{sub}"),
                        format!("cannot list registries: {e}"),
                    );
                }
            }
        }
        let registries_read = governed.len();
        let outcomes = self
            .run_registries(governed.into_iter().map(Ok).collect())
            .await;
        transient |= self.merge(&mut report, outcomes);
        RunResult {
            report: report.finish(self.resources.request_count()),
            transient_failure: transient,
            registries_read,
        }
    }

    /// Reconciles the named registries (from an event or an operator), reading each fresh from ARM:
    /// the event is a hint, never evidence. Ungoverned ids are ignored.
    pub async fn reconcile(&self, ids: &[ResourceId]) -> RunResult {
        let mut report = ReportBuilder::new(self.options.trigger, self.mode(), &self.policy.sha256);
        let mut unique: Vec<ResourceId> = Vec::new();
        for id in ids {
            if self.policy.governs_id(id) && !unique.contains(id) {
                unique.push(id.clone());
            }
        }
        let reads =
            stream::iter(unique.into_iter().map(|id| async move {
                self.resources.get_registry(&id).await.map_err(|e| (id, e))
            }))
            .buffer_unordered(self.options.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut transient = false;
        let mut inputs = Vec::new();
        for r in reads {
            match r {
                // The name may match the scope while the full record (resource group, name) does not.
                Ok(reg) if self.policy.governs(&reg) => inputs.push(Ok(reg)),
                Ok(_) => {}
                Err((_, e)) if e.kind == ResourceErrorKind::NotFound => {} // deleted since the event: nothing to govern
                Err((id, e)) => {
                    transient |= e.is_transient();
                    inputs.push(Err((id, e)));
                }
            }
        }
        let registries_read = inputs.iter().filter(|r| r.is_ok()).count();
        let outcomes = self.run_registries(inputs).await;
        transient |= self.merge(&mut report, outcomes);
        RunResult {
            report: report.finish(self.resources.request_count()),
            transient_failure: transient,
            registries_read,
        }
    }

    async fn run_registries(
        &self,
        inputs: Vec<Result<Registry, (ResourceId, super::ResourceError)>>,
    ) -> Vec<RegistryOutcome> {
        stream::iter(inputs.into_iter().map(|input| async move {
            match input {
                Ok(reg) => self.run_registry(reg).await,
                Err((id, e)) => RegistryOutcome {
                    unreadable: Some((id.to_string(), format!("cannot read registry: {e}"))),
                    transient: e.is_transient(),
                    ..RegistryOutcome::default()
                },
            }
        }))
        .buffer_unordered(self.options.concurrency.max(1))
        .collect()
        .await
    }

    fn merge(&self, report: &mut ReportBuilder, mut outcomes: Vec<RegistryOutcome>) -> bool {
        // Stable order in reports: by registry id.
        outcomes.sort_by(|a, b| {
            let key = |o: &RegistryOutcome| {
                o.registry
                    .as_ref()
                    .map(|(r, _)| r.id.to_string())
                    .or_else(|| o.unreadable.as_ref().map(|u| u.0.clone()))
            };
            key(a).cmp(&key(b))
        });
        let mut transient = false;
        for o in outcomes {
            transient |= o.transient;
            if let Some((reg, statuses)) = &o.registry {
                report.registry(reg, statuses);
            }
            if let Some((scope, msg)) = o.unreadable {
                report.incomplete(scope, msg);
            }
            for a in o.actions {
                report.action(a);
            }
            for f in &o.findings {
                report.finding(f);
            }
            for (scope, msg) in o.errors {
                report.error(scope, msg);
            }
        }
        transient
    }

    async fn resolve_endpoints(&self, registry: &Registry) -> Endpoints {
        let mut endpoints = Endpoints {
            missing_hint: "it could not be read".into(),
            ..Endpoints::default()
        };
        if !self.policy.needs_endpoints() {
            return endpoints;
        }
        for conn in registry.connections() {
            if !matches!(
                conn.status(),
                ConnectionStatus::Pending | ConnectionStatus::Approved
            ) {
                continue;
            }
            let Some(pe) = conn.private_endpoint_id() else {
                continue;
            };
            if endpoints.found.contains_key(pe) || endpoints.failures.contains_key(pe) {
                continue;
            }
            match self.resources.get_private_endpoint(pe).await {
                Ok(found) => {
                    endpoints.found.insert(pe.clone(), found);
                }
                Err(e) => {
                    let why = match e.kind {
                        ResourceErrorKind::Forbidden => format!(
                            "linkguard may not read it ({}): another tenant or no Microsoft.Network/privateEndpoints/read",
                            e.code.as_deref().unwrap_or("forbidden")
                        ),
                        ResourceErrorKind::NotFound => {
                            "the endpoint no longer exists (404)".to_string()
                        }
                        _ => format!("reading it failed: {e}"),
                    };
                    endpoints.failures.insert(pe.clone(), why);
                }
            }
        }
        endpoints
    }

    async fn run_registry(&self, registry: Registry) -> RegistryOutcome {
        let endpoints = self.resolve_endpoints(&registry).await;
        let plan = evaluate_registry(&self.policy, &registry, &endpoints);
        let mut out = RegistryOutcome {
            findings: plan.findings,
            ..RegistryOutcome::default()
        };
        let mut statuses: HashMap<ResourceId, ConnectionStatus> = registry
            .connections()
            .iter()
            .map(|c| (c.id.clone(), c.status()))
            .collect();
        for decision in plan.decisions.iter().filter(|d| d.action.is_change()) {
            let (record, new_status, transient) = self.apply_decision(decision).await;
            out.transient |= transient;
            if let Some(s) = new_status {
                match s {
                    Some(status) => {
                        statuses.insert(decision.connection.clone(), status);
                    }
                    None => {
                        statuses.remove(&decision.connection);
                    }
                }
            }
            if let Some(err) = &record.error {
                out.errors.push((
                    decision.connection.to_string(),
                    format!("{} failed: {err}", decision.action.as_str()),
                ));
            }
            out.actions.push(record);
        }
        let mut current = registry.clone();
        for remediation in &plan.remediations {
            let (record, patched, transient) = self.apply_remediation(remediation).await;
            out.transient |= transient;
            if let Some(err) = &record.error {
                out.errors.push((
                    remediation.registry.to_string(),
                    format!("patch failed: {err}"),
                ));
            }
            if let Some(p) = patched {
                // The patch fixed these findings; they no longer need attention.
                out.findings
                    .retain(|f| !(f.connection.is_none() && remediation.fixes.contains(&f.code)));
                current.properties.public_network_access = p.properties.public_network_access;
                current.properties.network_rule_set = p.properties.network_rule_set;
                current.properties.network_rule_bypass_options =
                    p.properties.network_rule_bypass_options;
                current.properties.network_rule_bypass_allowed_for_tasks =
                    p.properties.network_rule_bypass_allowed_for_tasks;
            }
            out.actions.push(record);
        }
        let ordered: Vec<ConnectionStatus> = registry
            .connections()
            .iter()
            .filter_map(|c| statuses.get(&c.id).cloned())
            .collect();
        out.registry = Some((current, ordered));
        out
    }

    /// Applies one decision. Returns the record, the connection's new status (`Some(None)` = deleted)
    /// and whether a failure was transient.
    async fn apply_decision(
        &self,
        d: &Decision,
    ) -> (ActionRecord, Option<Option<ConnectionStatus>>, bool) {
        let mut record = ActionRecord {
            registry: d.registry.to_string(),
            connection: Some(d.connection.to_string()),
            action: d.action.as_str().to_string(),
            rule: d.rule.clone(),
            outcome: Outcome::DryRun,
            error: None,
        };
        if self.mode() == RunMode::DryRun {
            return (record, None, false);
        }
        let _lock = locks::lock(&d.connection).await;
        // Re-read right before writing: someone (a person, another run) may have decided already.
        let current = match self.resources.get_connection(&d.connection).await {
            Ok(c) => c,
            Err(e) if e.kind == ResourceErrorKind::NotFound => {
                record.outcome = Outcome::Skipped;
                record.error = Some("the connection no longer exists".into());
                return (record, Some(None), false);
            }
            Err(e) => {
                record.outcome = Outcome::Failed;
                record.error = Some(format!("re-read before writing failed: {e}"));
                return (record, None, e.is_transient());
            }
        };
        if current.status() != d.status {
            record.outcome = Outcome::Skipped;
            record.error = Some(format!(
                "its status changed from {} to {} since it was read; not written",
                d.status,
                current.status()
            ));
            return (record, Some(Some(current.status())), false);
        }
        let result = match d.action {
            Action::Approve | Action::Reject => {
                let status = if d.action == Action::Approve {
                    ConnectionStatus::Approved
                } else {
                    ConnectionStatus::Rejected
                };
                let state = ConnectionState {
                    status: status.clone(),
                    description: d.description.clone(),
                    actions_required: None,
                };
                self.resources
                    .set_connection_state(&d.connection, &state)
                    .await
                    .map(|c| Some(c.status()))
            }
            Action::Delete => self
                .resources
                .delete_connection(&d.connection)
                .await
                .map(|()| None),
            Action::Keep => return (record, None, false),
        };
        match result {
            Ok(new_status) => {
                record.outcome = Outcome::Applied;
                (record, Some(new_status), false)
            }
            Err(e) => {
                record.outcome = Outcome::Failed;
                record.error = Some(e.to_string());
                (record, None, e.is_transient())
            }
        }
    }

    async fn apply_remediation(&self, r: &Remediation) -> (ActionRecord, Option<Registry>, bool) {
        let mut record = ActionRecord {
            registry: r.registry.to_string(),
            connection: None,
            action: "patch".into(),
            rule: Some(format!(
                "network: {}",
                r.fixes
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            outcome: Outcome::DryRun,
            error: None,
        };
        if self.mode() == RunMode::DryRun {
            return (record, None, false);
        }
        let _lock = locks::lock(&r.registry).await;
        match self.resources.patch_registry(&r.registry, &r.patch).await {
            Ok(reg) => {
                record.outcome = Outcome::Applied;
                (record, Some(reg), false)
            }
            Err(e) => {
                record.outcome = Outcome::Failed;
                record.error = Some(e.to_string());
                (record, None, e.is_transient())
            }
        }
    }
}
