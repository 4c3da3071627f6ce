//! The function: one invocation in, its answer out.

use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use super::error::HandlerError;
use super::http::HttpReply;
use super::invocation::Invocation;
use super::run::{self, Scope};
use super::state::LambdaState;
use super::{operator, webhook};
use crate::host::functions::log::InvocationLog;
use crate::report::Trigger;

/// Handles one invocation. HTTP requests always get an HTTP response (their status carries the
/// outcome); other invocations answer a JSON value, or fail with a [`HandlerError`]. The runtime's
/// tracing layer puts the request id on every log line of the invocation.
pub async fn handle(state: &LambdaState, event: LambdaEvent<Value>) -> Result<Value, HandlerError> {
    dispatch(state, event.payload).await
}

/// [`handle`] without the Lambda context, for embedders and tests.
pub async fn dispatch(state: &LambdaState, payload: Value) -> Result<Value, HandlerError> {
    match Invocation::classify(payload) {
        Invocation::Http(payload) => to_value(webhook::handle(state, payload).await),
        Invocation::Schedule(s) => {
            let mut log = InvocationLog::new();
            log.info(format!(
                "scheduled audit ({} event {}, scheduled for {}{})",
                s.source,
                s.id.as_deref().unwrap_or("without id"),
                s.time.as_deref().unwrap_or("an unknown time"),
                s.resources
                    .first()
                    .map(|r| format!(", from {r}"))
                    .unwrap_or_default()
            ));
            let result = run::run(state, Scope::Audit, Trigger::Timer, false, &mut log).await;
            if let Err(e) = &result {
                log.error(format!("{e}; the invocation fails so Lambda retries it"));
            }
            result
        }
        Invocation::OtherEventBridge {
            detail_type,
            source,
        } => {
            let reason = format!(
                "EventBridge event `{detail_type}` from `{source}` is not a schedule (detail-type `Scheduled Event` from aws.events or aws.scheduler); nothing to do"
            );
            tracing::warn!("{reason}");
            Ok(json!({"status": "ignored", "reason": reason}))
        }
        Invocation::Operator(payload) => {
            let result = operator::handle(state, payload).await;
            if let Err(e) = &result {
                tracing::error!("operator request failed: {e}");
            }
            result
        }
        Invocation::Unknown(what) => {
            let e = HandlerError::new(
                "UnknownInvocation",
                format!("linkguard cannot handle this invocation: {what}"),
            );
            tracing::error!("{e}");
            Err(e)
        }
    }
}

fn to_value(reply: HttpReply) -> Result<Value, HandlerError> {
    serde_json::to_value(reply.into_response()).map_err(|e| {
        HandlerError::new(
            "ResponseNotSerialized",
            format!("the HTTP response could not be written: {e}"),
        )
    })
}
