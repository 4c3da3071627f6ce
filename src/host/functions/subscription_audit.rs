//! Fan-out under the Functions host (issue 9, docs/fanout.md):
//! - `SubscriptionAudit` (queueTrigger on `linkguard-audits`, binding `message`): audits the one
//!   subscription a message names and stores its report under the run; the last one finalizes the
//!   run. A failed delivery answers non-2xx, so the host makes the message visible again and, after
//!   `maxDequeueCount` (host.json: 5) deliveries, moves it to `linkguard-audits-poison`; on that
//!   last delivery a failure marker is stored first, so the run's summary names the subscription.
//! - [`fan_out`]: what `ScheduledAudit` does when fan-out is on: close overdue runs, then enqueue
//!   one message per governed subscription.

use std::sync::Arc;

use axum::http::StatusCode;
use azure_core::credentials::TokenCredential;
use serde_json::{Map, Value};

use super::invocation::{Invocation, text};
use super::log::InvocationLog;
use super::response::Reply;
use super::state::AppState;
use crate::fanout::{
    AuditContext, AuditMessage, FanOut, FanOutSettings, FinalizeOutcome, Finalized, Processed,
    QueueOptions, RunSpec,
};
use crate::policy::{Mode, Policy};
use crate::report::Trigger;
use crate::report::sink::{BlobSinkOptions, ReportDestination};

/// Binding name of the trigger in `function/SubscriptionAudit/function.json`.
pub const BINDING: &str = "message";

/// `Metadata.DequeueCount` ("1" on real hosts, 1 in the docs): which delivery this is.
pub fn dequeue_count(metadata: &Map<String, Value>) -> Option<u32> {
    metadata
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("DequeueCount"))
        .and_then(|(_, v)| text(v))
        .and_then(|t| t.trim().parse().ok())
}

fn log_finalized(f: &Finalized, log: &mut InvocationLog) {
    let s = &f.summary;
    let line = format!(
        "run {} closed ({}): {} of {} subscriptions reported, {} poisoned, {} missing; report {}",
        s.run,
        s.closed,
        s.reported.len(),
        s.expected,
        s.poisoned.len(),
        s.missing.len(),
        f.report_location
    );
    if s.complete {
        log.info(line);
    } else {
        log.warn(line);
    }
    for p in &s.poisoned {
        log.warn(format!(
            "subscription {} poisoned after {} deliveries: {}",
            p.subscription, p.deliveries, p.error
        ));
    }
    for m in &s.missing {
        log.warn(format!("subscription {m} did not report by the deadline"));
    }
}

fn log_outcome(outcome: Option<&FinalizeOutcome>, log: &mut InvocationLog) {
    match outcome {
        Some(FinalizeOutcome::Finalized(f)) => log_finalized(f, log),
        Some(FinalizeOutcome::Waiting { remaining }) => {
            log.info(format!(
                "{remaining} subscription(s) of the run still to report"
            ));
        }
        Some(FinalizeOutcome::AlreadyFinalized) => log.info("the run is closed already"),
        Some(FinalizeOutcome::NoManifest) => {
            log.warn("the run has no manifest in the reports store: its summary cannot be written (was LINKGUARD_REPORTS changed?)");
        }
        None => {}
    }
}

/// The `SubscriptionAudit` function.
///
/// A message that is not a linkguard message (anything else put on the queue) can never be
/// processed, yet it is not acknowledged: acknowledging would delete it with nothing but a log
/// line. It is answered 400 `InvalidMessage` (a failure to the host), so the host delivers it up to
/// `maxDequeueCount` times and then moves it to the poison queue, where it stays for inspection
/// (DESIGN: nothing is dropped silently). The message is checked before the configuration, since
/// what is wrong with it does not depend on the configuration.
pub async fn handle(state: &AppState, inv: &Invocation, mut log: InvocationLog) -> Reply {
    let deliveries = match dequeue_count(&inv.metadata) {
        Some(n) => n,
        None => {
            log.warn("Metadata.DequeueCount is missing or not a number; counting this as the first delivery");
            1
        }
    };
    let poison_note = "retrying cannot help: the host moves it to the poison queue after maxDequeueCount deliveries, where it is kept for inspection";
    let message = match inv
        .input(BINDING)
        .map(|(_, v)| AuditMessage::from_value(v.clone()))
    {
        Some(Ok(m)) => m,
        Some(Err(e)) => {
            let message = format!("delivery {deliveries}: {e}; {poison_note}");
            log.error(message.clone());
            return Reply::failed(
                StatusCode::BAD_REQUEST,
                "InvalidMessage",
                message,
                log.into_lines(),
            );
        }
        None => {
            let message = format!(
                "no queue message in the invocation (expected Data.{BINDING}); {poison_note}"
            );
            log.error(message.clone());
            return Reply::failed(
                StatusCode::BAD_REQUEST,
                "InvalidMessage",
                message,
                log.into_lines(),
            );
        }
    };
    let Some(fanout) = state.fanout() else {
        let message = "fan-out is not configured (LINKGUARD_FANOUT_QUEUE is unset), so this queue message cannot be processed: set LINKGUARD_FANOUT_QUEUE to the queue SubscriptionAudit listens to";
        log.error(message);
        return Reply::failed(
            StatusCode::INTERNAL_SERVER_ERROR,
            "FanOutNotConfigured",
            message,
            log.into_lines(),
        );
    };
    log.info(format!(
        "run {} subscription {} (delivery {deliveries} of at most {})",
        message.run,
        message.subscription,
        fanout.settings().max_dequeue_count
    ));
    let policy = state.policy_source().load().await.map_err(|f| f.message);
    let processed = fanout
        .process(
            &message,
            deliveries,
            AuditContext {
                resources: state.resources(),
                policy,
                concurrency: state.options().concurrency,
            },
        )
        .await;
    log_outcome(processed.finalize(), &mut log);
    match processed {
        Processed::Reported {
            location, complete, ..
        } => {
            let line = format!("subscription report stored: {location}");
            if complete {
                log.info(line);
            } else {
                log.warn(format!("{line} (incomplete)"));
            }
            Reply::ok(log.into_lines())
        }
        Processed::Duplicate { .. } => {
            log.info(
                "the subscription had reported already (a redelivery): nothing audited or written",
            );
            Reply::ok(log.into_lines())
        }
        Processed::Failed {
            error,
            last_delivery,
            ..
        } => {
            let (code, message) = if last_delivery {
                (
                    "SubscriptionPoisoned",
                    format!(
                        "last delivery failed; the host moves the message to {}: {error}",
                        fanout.queue().poison_name()
                    ),
                )
            } else {
                (
                    "SubscriptionAuditFailed",
                    format!("delivery {deliveries} failed (the host retries): {error}"),
                )
            };
            log.error(message.clone());
            Reply::failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                code,
                message,
                log.into_lines(),
            )
        }
    }
}

/// `ScheduledAudit` with fan-out on: close overdue runs, then one message per subscription.
pub async fn fan_out(
    state: &AppState,
    fanout: &FanOut,
    policy: Arc<Policy>,
    mut log: InvocationLog,
) -> Reply {
    // Best effort: an open run that cannot be closed now stays open for the next timer run.
    match fanout.finalize_overdue().await {
        Ok(done) => {
            for f in &done {
                log_finalized(f, &mut log);
            }
        }
        Err(e) => log.warn(format!("earlier runs could not be checked now: {e}")),
    }
    let engine = state.engine(Arc::clone(&policy), Trigger::Timer, false);
    let subscriptions = match engine.governed_subscriptions().await {
        Ok(s) => s,
        Err(e) => {
            let message = format!("cannot list the subscriptions in scope: {e}");
            log.error(message.clone());
            return Reply::failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                "SubscriptionsUnreadable",
                message,
                log.into_lines(),
            );
        }
    };
    let spec = RunSpec {
        trigger: Trigger::Timer,
        dry_run: false,
        policy_sha256: policy.sha256.clone(),
        policy_dry_run: policy.mode == Mode::DryRun,
    };
    match fanout.start_run(&subscriptions, &spec).await {
        Ok(run) => {
            log.info(format!(
                "run {}: {} subscription(s) fanned out to {}, deadline {}",
                run.run,
                run.enqueued,
                fanout.queue().location(),
                run.deadline
            ));
            if let Some(f) = &run.finalized {
                log_finalized(f, &mut log);
            }
            Reply::ok(log.into_lines())
        }
        Err(e) => {
            let message = format!("fan-out failed: {e}");
            log.error(message.clone());
            Reply::failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                "FanOutFailed",
                message,
                log.into_lines(),
            )
        }
    }
}

/// Turns fan-out on when `LINKGUARD_FANOUT_QUEUE` is set (read through `lookup`); the state is
/// returned unchanged otherwise. Errors name the setting.
pub fn attach(
    state: AppState,
    reports: &ReportDestination,
    credential: Arc<dyn TokenCredential>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<AppState, String> {
    let settings = FanOutSettings::from_lookup(lookup).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| format!("  - {e}")).collect();
        format!(
            "invalid configuration (nothing was started):\n{}",
            lines.join("\n")
        )
    })?;
    let Some(settings) = settings else {
        return Ok(state);
    };
    tracing::info!(
        "fan-out on: {}, deadline {:?}, maxDequeueCount {}",
        settings.queue,
        settings.deadline,
        settings.max_dequeue_count
    );
    let fanout = crate::fanout::build(
        settings,
        reports,
        Some(credential),
        QueueOptions::default(),
        BlobSinkOptions::default(),
    )?;
    Ok(state.with_fanout(Arc::new(fanout)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn dequeue_count_arrives_as_text_or_number() {
        let m = |v: Value| {
            json!({"DequeueCount": v})
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(dequeue_count(&m(json!("3"))), Some(3));
        assert_eq!(dequeue_count(&m(json!(2))), Some(2));
        assert_eq!(dequeue_count(&m(json!("\"4\""))), Some(4));
        assert_eq!(dequeue_count(&m(json!("x"))), None);
        assert_eq!(dequeue_count(&Map::new()), None);
    }
}
