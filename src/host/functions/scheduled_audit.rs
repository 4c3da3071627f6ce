//! `ScheduledAudit` (timerTrigger): the audit of every governed registry, the path that must never
//! miss. A past-due timer still audits. A run whose report cannot be stored, or that a transient
//! ARM failure left unfinished, fails the invocation (function.json's retry policy applies).

use std::sync::Arc;

use axum::http::StatusCode;

use super::invocation::{Invocation, TimerInfo};
use super::log::InvocationLog;
use super::response::Reply;
use super::state::AppState;
use super::summary::log_report;
use crate::report::Trigger;

/// Binding name of the trigger in `function/ScheduledAudit/function.json`.
pub const BINDING: &str = "timer";

pub async fn handle(state: &AppState, inv: &Invocation, mut log: InvocationLog) -> Reply {
    match inv.input(BINDING).map(|(_, v)| TimerInfo::from_value(v)) {
        Some(Ok(timer)) => {
            if timer.is_past_due {
                log.warn("the timer is past due (the schedule was missed); auditing now");
            }
            match (&timer.last, &timer.next) {
                (None, None) => log.info("schedule status: not monitored"),
                (last, next) => log.info(format!(
                    "schedule status: last {}, next {}",
                    last.as_deref().unwrap_or("unknown"),
                    next.as_deref().unwrap_or("unknown")
                )),
            }
        }
        Some(Err(e)) => log.warn(format!("timer input unreadable ({e}); auditing anyway")),
        None => log.warn(format!(
            "no timer input (expected Data.{BINDING}); auditing anyway"
        )),
    }

    let policy = match state.policy_source().load().await {
        Ok(p) => p,
        Err(failure) => {
            let report = state.policy_failure_report(Trigger::Timer, &failure);
            if let Err(e) = state.reports().store(&report).await {
                log.error(format!("the report could not be stored either: {e}"));
            }
            let message = format!(
                "the policy is not usable, nothing was done: {}",
                failure.message
            );
            log.error(message.clone());
            return Reply::failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                "PolicyInvalid",
                message,
                log.into_lines(),
            );
        }
    };
    if let Some(fanout) = state.fanout() {
        return super::subscription_audit::fan_out(state, fanout, policy, log).await;
    }
    let result = state
        .engine(Arc::clone(&policy), Trigger::Timer, false)
        .audit()
        .await;
    log_report(&result.report, &mut log);
    match state.reports().store(&result.report).await {
        Ok(at) => log.info(format!("report stored: {at}")),
        Err(e) => {
            let message = format!("the report could not be stored: {e}");
            log.error(message.clone());
            return Reply::failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ReportNotStored",
                message,
                log.into_lines(),
            );
        }
    }
    if result.transient_failure {
        let message = "a transient ARM failure left the audit unfinished (the report is stored, marked incomplete)".to_string();
        log.error(message.clone());
        return Reply::failed(
            StatusCode::INTERNAL_SERVER_ERROR,
            "TransientFailure",
            message,
            log.into_lines(),
        );
    }
    Reply::ok(log.into_lines())
}
