//! An audit (the schedule, or an operator) or a reconciliation of named registries: read the
//! policy, run the engine, store the report. A run that could not do its job fails the invocation,
//! so an asynchronous source (the schedule) is retried by Lambda and then dead-lettered: a report
//! that was not stored, a transient ARM failure, an unusable policy.

use std::sync::Arc;

use serde_json::{Value, json};

use super::error::HandlerError;
use super::state::LambdaState;
use crate::host::functions::log::InvocationLog;
use crate::model::ResourceId;
use crate::report::{Report, RunMode, Trigger};

/// Which registries a run covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every registry the policy governs.
    Audit,
    /// These registries only (each must be governed by the policy).
    Registries(Vec<ResourceId>),
}

/// Runs and stores the report; `Ok` is the run's summary.
pub async fn run(
    state: &LambdaState,
    scope: Scope,
    trigger: Trigger,
    dry_run: bool,
    log: &mut InvocationLog,
) -> Result<Value, HandlerError> {
    let app = &state.app;
    let policy = match app.policy_source().load().await {
        Ok(p) => p,
        Err(failure) => {
            let report = app.policy_failure_report(trigger, &failure);
            if let Err(e) = app.reports().store(&report).await {
                log.error(format!("the report could not be stored either: {e}"));
            }
            return Err(HandlerError::new(
                "PolicyInvalid",
                format!(
                    "the policy is not usable, nothing was done: {}",
                    failure.message
                ),
            ));
        }
    };
    let engine = app.engine(Arc::clone(&policy), trigger, dry_run);
    let result = match &scope {
        Scope::Audit => engine.audit().await,
        Scope::Registries(ids) => {
            if let Some(outside) = ids.iter().find(|id| !policy.governs_id(id)) {
                return Err(HandlerError::invalid(format!(
                    "registry {outside} is outside the policy's scope ([scope] in the policy file); nothing was done"
                )));
            }
            engine.reconcile(ids).await
        }
    };
    log_totals(&result.report, log);
    let stored = app.reports().store(&result.report).await.map_err(|e| {
        HandlerError::new(
            "ReportNotStored",
            format!(
                "the report of run {} could not be stored: {e}",
                result.report.run.id
            ),
        )
    })?;
    log.info(format!("report stored: {stored}"));
    if result.transient_failure {
        return Err(HandlerError::new(
            "TransientFailure",
            format!(
                "a transient ARM failure left run {} unfinished (its report, marked incomplete, is at {stored}); the invocation fails so it is retried",
                result.report.run.id
            ),
        ));
    }
    Ok(summary(&result.report, &stored))
}

fn log_totals(report: &Report, log: &mut InvocationLog) {
    let t = &report.totals;
    let line = format!(
        "run {} ({}): {} registries, {} connections ({} approved, {} pending, {} rejected, {} disconnected), {} actions, {} need attention, {} failed{}",
        report.run.id,
        match report.run.mode {
            RunMode::Enforce => "enforce",
            RunMode::DryRun => "dry-run",
        },
        t.registries,
        t.connections,
        t.approved,
        t.pending,
        t.rejected,
        t.disconnected,
        report.actions.len(),
        report.needs_attention.len(),
        t.failed,
        if report.complete { "" } else { "; INCOMPLETE" }
    );
    log.info(line);
    for e in &report.errors {
        log.warn(format!("{}: {}", e.scope, e.message));
    }
}

/// What the invoker needs to act, and where the full report is.
pub fn summary(report: &Report, stored_at: &str) -> Value {
    json!({
        "schema": "linkguard.summary/v1",
        "run": {
            "id": report.run.id,
            "trigger": report.run.trigger,
            "mode": report.run.mode,
            "started": report.run.started,
            "finished": report.run.finished,
        },
        "complete": report.complete,
        "report": stored_at,
        "totals": report.totals,
        "actions": report.actions,
        "needs_attention": report.needs_attention.len(),
        "errors": report.errors,
    })
}
