//! `ConnectionEvents` (eventGridTrigger): the events name registries; each is re-read from ARM and
//! reconciled. Events that can never be processed are logged and acknowledged; a transient failure
//! (ARM, storage, an unusable policy) fails the invocation so Event Grid redelivers.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::Value;

use super::invocation::Invocation;
use super::log::InvocationLog;
use super::response::Reply;
use super::state::AppState;
use super::summary::log_report;
use crate::engine::ResourceErrorKind;
use crate::events::{self, Event, Target};
use crate::model::ResourceId;
use crate::report::{RunError, Trigger};

/// Binding name of the trigger in `function/ConnectionEvents/function.json`.
pub const BINDING: &str = "eventGridEvent";

/// How processing a delivery ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventsOutcome {
    /// Done (or nothing to do): acknowledge. `report` is where the run's report went, if one ran.
    Done { report: Option<String> },
    /// Not done: answer non-2xx so the delivery is retried.
    Retry { code: &'static str, message: String },
}

pub async fn handle(state: &AppState, inv: &Invocation, mut log: InvocationLog) -> Reply {
    let Some((name, value)) = inv.input(BINDING) else {
        let found: Vec<&str> = inv.data.keys().map(String::as_str).collect();
        log.warn(format!(
            "no event in the invocation (expected Data.{BINDING}, found {}); acknowledged, nothing to do",
            if found.is_empty() { "no input".to_string() } else { found.join(", ") }
        ));
        return Reply::ok(log.into_lines());
    };
    if name != BINDING {
        log.info(format!(
            "event read from Data.{name} (binding name differs from {BINDING})"
        ));
    }
    match process(state, value.clone(), &mut log).await {
        EventsOutcome::Done { .. } => Reply::ok(log.into_lines()),
        EventsOutcome::Retry { code, message } => {
            log.error(format!(
                "{message}; the invocation fails so Event Grid redelivers"
            ));
            Reply::failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                code,
                message,
                log.into_lines(),
            )
        }
    }
}

/// Parses, deduplicates, selects and reconciles one delivery (an event or a batch) within
/// `HandlerOptions::event_budget`. Shared with the raw webhook route.
///
/// Event Grid waits 30 s for an answer (DESIGN 7.2). Slow ARM (retries, long-running operations)
/// must end in a non-2xx Event Grid redelivers, not in a timeout it counts against the endpoint: past
/// the budget the work is abandoned (ARM writes are idempotent, so a write that did land is simply
/// found done by the redelivery) and the delivery is not marked processed.
pub async fn process(state: &AppState, value: Value, log: &mut InvocationLog) -> EventsOutcome {
    let budget = state.options().event_budget;
    match tokio::time::timeout(budget, process_unbounded(state, value, log)).await {
        Ok(outcome) => outcome,
        Err(_) => EventsOutcome::Retry {
            code: "TimeBudgetExceeded",
            message: format!(
                "the delivery was not finished within its {budget:?} budget (Event Grid waits 30 s; ARM is slow or throttling); any write already made is kept and the redelivery completes the rest"
            ),
        },
    }
}

async fn process_unbounded(
    state: &AppState,
    value: Value,
    log: &mut InvocationLog,
) -> EventsOutcome {
    let batch = match events::parse_value(value) {
        Ok(b) => b,
        Err(e) => {
            log.warn(format!("delivery ignored, it can never be processed: {e}"));
            return EventsOutcome::Done { report: None };
        }
    };
    for m in &batch.malformed {
        log.warn(format!(
            "event #{} ({}) ignored, it can never be processed: {}",
            m.index,
            m.id.as_deref().unwrap_or("no id"),
            m.reason
        ));
    }
    let (duplicates, fresh): (Vec<Event>, Vec<Event>) = batch
        .events
        .into_iter()
        .partition(|e| state.dedupe().is_done(&e.dedupe_key()));
    for d in &duplicates {
        log.info(format!(
            "event {} already processed within the dedupe window (redelivery); skipped",
            d.id
        ));
    }
    let selection = events::select(&fresh, &state.options().topics);
    for i in &selection.ignored {
        log.info(format!("event {} ignored: {}", i.event_id, i.reason));
    }
    let done_keys: Vec<String> = fresh.iter().map(Event::dedupe_key).collect();
    if selection.is_empty() {
        state.dedupe().mark_done(done_keys);
        if !fresh.is_empty() || !duplicates.is_empty() || !batch.malformed.is_empty() {
            log.info("nothing to reconcile");
        }
        return EventsOutcome::Done { report: None };
    }
    for s in &selection.selected {
        match &s.target {
            Target::Registry(id) => {
                log.info(format!("event {}: reconcile registry {id}", s.event_id))
            }
            Target::Endpoint(id) => log.info(format!(
                "event {}: private endpoint {id} written; resolving the registries it targets",
                s.event_id
            )),
        }
    }

    let policy = match state.policy_source().load().await {
        Ok(p) => p,
        Err(failure) => {
            // Fail closed: no action. The event is retried, so it is acted on once the policy is fixed.
            let report = state.policy_failure_report(Trigger::Event, &failure);
            let stored = state.reports().store(&report).await;
            if let Err(e) = &stored {
                log.error(format!("the report could not be stored either: {e}"));
            }
            return EventsOutcome::Retry {
                code: "PolicyInvalid",
                message: format!(
                    "the policy is not usable, nothing was done: {}",
                    failure.message
                ),
            };
        }
    };

    let mut registries = selection.registries.clone();
    let mut endpoint_errors: Vec<RunError> = Vec::new();
    let mut transient = false;
    for ep in &selection.endpoints {
        match state.resources().get_private_endpoint(ep).await {
            Ok(found) => {
                let targets = found.target_registries();
                if targets.is_empty() {
                    log.info(format!(
                        "private endpoint {ep} targets no container registry"
                    ));
                }
                for r in targets {
                    log.info(format!("private endpoint {ep} targets registry {r}"));
                    if !registries.contains(&r) {
                        registries.push(r);
                    }
                }
            }
            Err(e) => {
                let why = match e.kind {
                    ResourceErrorKind::NotFound => "it no longer exists (404)".to_string(),
                    ResourceErrorKind::Forbidden => format!(
                        "linkguard may not read it ({}); the timer audit still covers its registry",
                        e.code.as_deref().unwrap_or("forbidden")
                    ),
                    _ => format!("reading it failed: {e}"),
                };
                transient |= e.is_transient();
                log.warn(format!("private endpoint {ep} not resolved: {why}"));
                endpoint_errors.push(RunError {
                    scope: ep.to_string(),
                    message: format!("private endpoint not resolved: {why}"),
                });
            }
        }
    }
    let governed: Vec<ResourceId> = registries
        .into_iter()
        .filter(|r| {
            let ok = policy.governs_id(r);
            if !ok {
                log.info(format!(
                    "registry {r} is outside the policy scope; not reconciled"
                ));
            }
            ok
        })
        .collect();
    if governed.is_empty() && endpoint_errors.is_empty() {
        state.dedupe().mark_done(done_keys);
        log.info("nothing to reconcile");
        return EventsOutcome::Done { report: None };
    }

    let engine = state.engine(Arc::clone(&policy), Trigger::Event, false);
    let mut result = engine.reconcile(&governed).await;
    if !endpoint_errors.is_empty() {
        result.report.errors.extend(endpoint_errors);
        result.report.complete = false;
    }
    log_report(&result.report, log);
    let stored = match state.reports().store(&result.report).await {
        Ok(at) => {
            log.info(format!("report stored: {at}"));
            at
        }
        Err(e) => {
            return EventsOutcome::Retry {
                code: "ReportNotStored",
                message: format!("the report could not be stored: {e}"),
            };
        }
    };
    if result.transient_failure || transient {
        return EventsOutcome::Retry {
            code: "TransientFailure",
            message: "a transient ARM failure left the reconciliation unfinished".into(),
        };
    }
    state.dedupe().mark_done(done_keys);
    EventsOutcome::Done {
        report: Some(stored),
    }
}
