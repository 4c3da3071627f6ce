//! How a run is told: log lines for `Logs`, and the summary `ManualAudit` returns.

use serde_json::{Value, json};

use super::log::InvocationLog;
use crate::report::{Outcome, Report};

/// One line per action and error, and a totals line.
pub fn log_report(report: &Report, log: &mut InvocationLog) {
    for a in &report.actions {
        let what = a.connection.as_deref().unwrap_or(&a.registry);
        let rule = a
            .rule
            .as_deref()
            .map(|r| format!(" (rule {r})"))
            .unwrap_or_default();
        let outcome = match a.outcome {
            Outcome::Applied => "applied",
            Outcome::DryRun => "dry-run, not applied",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "FAILED",
        };
        let error = a
            .error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        let line = format!("{} {what}{rule}: {outcome}{error}", a.action);
        if a.outcome == Outcome::Failed {
            log.warn(line);
        } else {
            log.info(line);
        }
    }
    for e in &report.errors {
        log.warn(format!("{}: {}", e.scope, e.message));
    }
    let t = &report.totals;
    log.info(format!(
        "run {} ({}): {} registries, {} connections ({} approved, {} pending, {} rejected, {} disconnected), {} actions, {} need attention, {} failed{}",
        report.run.id,
        mode(report),
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
    ));
}

fn mode(report: &Report) -> &'static str {
    match report.run.mode {
        crate::report::RunMode::Enforce => "enforce",
        crate::report::RunMode::DryRun => "dry-run",
    }
}

/// The body `ManualAudit` answers with: what a caller needs to act, and where the full report is.
pub fn summary(report: &Report, stored_at: Option<&str>) -> Value {
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
