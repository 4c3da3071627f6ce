//! `POST /webhook/eventgrid`: Event Grid delivering straight to `serve` (no Functions host in
//! between, e.g. in a container). Then linkguard answers the handshakes itself: the Event Grid
//! subscription validation (`aeg-event-type: SubscriptionValidation`) and the CloudEvents `OPTIONS`
//! abuse-protection request. Off unless `LINKGUARD_WEBHOOK_SECRET` is set; every request must carry
//! it as query parameter `code` or header `x-linkguard-secret`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::Instrument;

use super::connection_events::{EventsOutcome, process};
use super::log::InvocationLog;
use super::state::AppState;
use crate::events;

pub const PATH: &str = "/webhook/eventgrid";
const SECRET_HEADER: &str = "x-linkguard-secret";

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message.into()}})),
    )
        .into_response()
}

/// Compares without an early exit, so timing does not reveal how much of the secret matched.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, byte) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ byte);
    }
    diff == 0
}

/// Why a webhook request is refused.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.status, self.code, self.message)
    }
}

fn authorize(
    state: &AppState,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    let Some(expected) = &state.options().webhook_secret else {
        return Err(Refusal {
            status: StatusCode::NOT_FOUND,
            code: "WebhookDisabled",
            message: "the raw webhook is off: set LINKGUARD_WEBHOOK_SECRET to enable it (under the Functions host, Event Grid reaches ConnectionEvents instead)",
        });
    };
    let given = headers
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| query.get("code").map(String::as_str));
    match given {
        Some(g) if same_secret(g, expected.expose()) => Ok(()),
        Some(_) => Err(Refusal {
            status: StatusCode::UNAUTHORIZED,
            code: "WrongSecret",
            message: "the webhook secret does not match LINKGUARD_WEBHOOK_SECRET",
        }),
        None => Err(Refusal {
            status: StatusCode::UNAUTHORIZED,
            code: "MissingSecret",
            message: "the webhook secret is missing: pass it as query parameter `code` or header x-linkguard-secret",
        }),
    }
}

/// The CloudEvents 1.0 webhook abuse-protection handshake.
pub async fn options(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&state, &query, &headers) {
        return r.into_response();
    }
    let origin = headers
        .get("webhook-request-origin")
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    h.insert("webhook-allowed-origin", origin);
    h.insert("webhook-allowed-rate", HeaderValue::from_static("*"));
    h.insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    resp
}

pub async fn post(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    if let Err(r) = authorize(&state, &query, &headers) {
        return r.into_response();
    }
    let body = match super::server::read_body(&state, request).await {
        Ok(b) => b,
        Err((status, message)) => return error(status, "BodyRejected", message),
    };
    let kind = headers
        .get("aeg-event-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let span = tracing::info_span!("webhook", aeg_event_type = %kind);
    async move {
        let value: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            // Not JSON can never become JSON: acknowledge (a 400 would dead-letter it, also fine,
            // but the contract is to never answer 400 to Event Grid).
            Err(e) => {
                tracing::warn!("delivery ignored, not JSON: {e}");
                return (StatusCode::OK, Json(json!({"ignored": format!("not JSON: {e}")}))).into_response();
            }
        };
        if kind == "subscriptionvalidation" {
            let code = events::parse_value(value)
                .ok()
                .and_then(|b| events::validation_code(&b.events));
            return match code {
                Some(code) => {
                    tracing::info!("answered the Event Grid subscription validation handshake");
                    (StatusCode::OK, Json(events::validation_response(&code))).into_response()
                }
                None => error(
                    StatusCode::BAD_REQUEST,
                    "NoValidationCode",
                    "a SubscriptionValidation delivery without data.validationCode",
                ),
            };
        }
        if kind == "subscriptiondeletion" {
            tracing::info!("Event Grid subscription deleted");
            return StatusCode::OK.into_response();
        }
        let mut log = InvocationLog::new();
        match process(&state, value, &mut log).await {
            EventsOutcome::Done { report } => (
                StatusCode::OK,
                Json(json!({"report": report, "logs": log.into_lines()})),
            )
                .into_response(),
            EventsOutcome::Retry { code, message } => {
                log.error(format!("{message}; answering 500 so Event Grid redelivers"));
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"error": {"code": code, "message": message}, "logs": log.into_lines()})),
                )
                    .into_response()
            }
        }
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secret_comparison() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("abcd", "abc"));
        assert!(!same_secret("", "abc"));
    }
}
