//! Event Grid (or a CloudEvents producer) pushing to the Function URL.
//!
//! Order matters: the secret is checked first, on the raw payload, before the request is parsed or
//! its body decoded and before any ARM call; then the request is read (400 if it cannot be); then
//! the handshakes; then the events go through the same processing as the Functions
//! host (parse, dedupe by event id, select by topic and operation, resolve endpoints, reconcile,
//! store the report).
//!
//! Status codes (DESIGN 7.2): Event Grid dead-letters 400 and 413 at once and retries 5xx, so a
//! 400 is only for a body that can never be processed; anything transient (ARM, storage, the
//! policy file) is a 5xx; events that are not for linkguard are acknowledged with 200.

use serde_json::{Value, json};

use super::auth;
use super::http::{HttpReply, HttpRequest};
use super::state::LambdaState;
use crate::events;
use crate::host::functions::connection_events::{EventsOutcome, process};
use crate::host::functions::log::InvocationLog;

/// Event Grid's delivery kind header.
pub const EVENT_TYPE_HEADER: &str = "aeg-event-type";

/// Handles a raw Function URL / API Gateway v2 invocation payload.
pub async fn handle(state: &LambdaState, payload: Value) -> HttpReply {
    if let Err(reply) = auth::authorize(&payload, state.webhook_secret()) {
        tracing::warn!(
            "webhook request refused ({}): {:?}",
            reply.status,
            reply.error_code()
        );
        return reply;
    }
    let request = match HttpRequest::from_value(payload) {
        Ok(r) => r,
        Err(reason) => {
            // Authenticated, so the reason may be logged and answered.
            tracing::warn!("unreadable HTTP request: {reason}");
            return HttpReply::error(400, "BadRequest", reason);
        }
    };
    match request.method.as_str() {
        "OPTIONS" => abuse_protection(&request),
        "POST" => deliver(state, &request).await,
        other => HttpReply::error(
            405,
            "MethodNotAllowed",
            format!("{other} is not accepted: Event Grid delivers with POST (and OPTIONS for the CloudEvents handshake)"),
        )
        .with_header("allow", "POST, OPTIONS"),
    }
}

/// The CloudEvents 1.0 webhook abuse-protection handshake: allow the origin that asks, at any rate
/// (the function's reserved concurrency is the real limit; extra deliveries get 429 and are retried).
fn abuse_protection(request: &HttpRequest) -> HttpReply {
    let Some(origin) = request
        .header("webhook-request-origin")
        .map(str::trim)
        .filter(|o| !o.is_empty())
    else {
        return HttpReply::error(
            400,
            "NotAHandshake",
            "OPTIONS without a WebHook-Request-Origin header: only the CloudEvents webhook validation handshake is answered",
        );
    };
    tracing::info!("answered the CloudEvents webhook handshake for origin {origin}");
    HttpReply::empty(200)
        .with_header("webhook-allowed-origin", origin)
        .with_header("webhook-allowed-rate", "*")
        .with_header("allow", "POST, OPTIONS")
}

async fn deliver(state: &LambdaState, request: &HttpRequest) -> HttpReply {
    let bytes = match request.body_bytes() {
        Ok(b) => b,
        Err(message) => return HttpReply::error(400, "BodyNotDecodable", message),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return HttpReply::error(
            400,
            "EmptyBody",
            "the request has no body: Event Grid delivers an event or an array of events as JSON",
        );
    }
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return HttpReply::error(
                400,
                "NotJson",
                format!(
                    "the body is not JSON ({e}): Event Grid delivers an event or an array of events as JSON"
                ),
            );
        }
    };
    let batch = match events::parse_value(value.clone()) {
        Ok(b) => b,
        Err(e) => return HttpReply::error(400, "NotEvents", e.to_string()),
    };
    let kind = request
        .header(EVENT_TYPE_HEADER)
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if kind == "subscriptionvalidation" || events::validation_code(&batch.events).is_some() {
        return match events::validation_code(&batch.events) {
            Some(code) => {
                tracing::info!("answered the Event Grid subscription validation handshake");
                HttpReply::json(200, events::validation_response(&code))
            }
            None => HttpReply::error(
                400,
                "NoValidationCode",
                "a SubscriptionValidation delivery without a Microsoft.EventGrid.SubscriptionValidationEvent carrying data.validationCode",
            ),
        };
    }
    if kind == "subscriptiondeletion" {
        tracing::info!("Event Grid says the subscription was deleted");
        return HttpReply::json(200, json!({"status": "acknowledged"}));
    }
    if batch.events.is_empty() && !batch.malformed.is_empty() {
        let reasons: Vec<String> = batch
            .malformed
            .iter()
            .map(|m| {
                format!(
                    "#{} ({}): {}",
                    m.index,
                    m.id.as_deref().unwrap_or("no id"),
                    m.reason
                )
            })
            .collect();
        return HttpReply::error(
            400,
            "NoUsableEvent",
            format!(
                "no event in the delivery can be read: {}",
                reasons.join("; ")
            ),
        );
    }
    let mut log = InvocationLog::new();
    match process(&state.app, value, &mut log).await {
        EventsOutcome::Done { report } => HttpReply::json(
            200,
            json!({
                "status": if report.is_some() { "reconciled" } else { "nothing to do" },
                "report": report,
                "logs": log.into_lines(),
            }),
        ),
        EventsOutcome::Retry { code, message } => {
            log.error(format!("{message}; answering 5xx so Event Grid redelivers"));
            // 503 for trouble that passes by itself; 500 when the deployment needs fixing (the
            // policy), which Event Grid retries too, so the events are acted on once it is fixed.
            let status = if code == "PolicyInvalid" { 500 } else { 503 };
            HttpReply::json(
                status,
                json!({"error": {"code": code, "message": message}, "logs": log.into_lines()}),
            )
        }
    }
}
