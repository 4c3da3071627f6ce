//! `ManualAudit` (httpTrigger, POST): an audit on demand, of every governed registry or of the one
//! the body names: `{"registry": "<id>", "dryRun": true}` (both optional; the body may be absent).
//! Every answer goes through `Outputs.res` with a 200 to the host, client errors included, so the
//! caller sees the status and the message (a non-2xx to the host would reach them as a bare 500).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::invocation::{HttpRequestData, Invocation};
use super::log::InvocationLog;
use super::response::{HttpOutput, Reply};
use super::state::AppState;
use super::summary::{log_report, summary};
use crate::model::ResourceId;
use crate::report::Trigger;

/// Binding names in `function/ManualAudit/function.json`.
pub const BINDING: &str = "req";
pub const OUTPUT: &str = "res";

/// The request body.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManualRequest {
    /// A registry id (`/subscriptions/…/providers/Microsoft.ContainerRegistry/registries/{name}`).
    pub registry: Option<String>,
    /// Decide and report, change nothing.
    pub dry_run: Option<bool>,
}

/// A refusal sent to the caller through `Outputs.res`.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ClientError {
    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code,
            message: message.into(),
        }
    }
}

/// Reads the request body; errors name the problem and the fix.
pub fn parse_request(req: &HttpRequestData) -> Result<ManualRequest, ClientError> {
    let text = req
        .body_text()
        .map_err(|e| ClientError::bad("InvalidBody", e))?;
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(ManualRequest::default());
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        ClientError::bad(
            "InvalidBody",
            format!(
                "the body is not valid JSON ({e}); send {{\"registry\": \"<registry id>\", \"dryRun\": true}} (both optional) or no body"
            ),
        )
    })?;
    // A body that is JSON text inside a JSON string is read one level further.
    let (value, text) = match value {
        Value::String(inner) => match serde_json::from_str::<Value>(&inner) {
            Ok(v) => (v, inner),
            Err(_) => (Value::String(inner), text),
        },
        other => (other, text),
    };
    match &value {
        Value::Null => return Ok(ManualRequest::default()),
        Value::Object(_) => {}
        other => {
            return Err(ClientError::bad(
                "InvalidBody",
                format!(
                    "the body must be a JSON object {{\"registry\": \"<registry id>\", \"dryRun\": true}}, not {}",
                    crate::events::kind(other)
                ),
            ));
        }
    }
    // From the text, not the parsed value, so the first problem is reported in the body's order.
    let mut de = serde_json::Deserializer::from_str(&text);
    let parsed: ManualRequest = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let inner = inner
            .split(" at line ")
            .next()
            .unwrap_or(&inner)
            .to_string();
        if path == "." || inner.starts_with("unknown field") {
            ClientError::bad("InvalidBody", inner)
        } else {
            ClientError::bad("InvalidBody", format!("`{path}`: {inner}"))
        }
    })?;
    Ok(parsed)
}

/// Checks the `registry` field: a well-formed registry id.
pub fn parse_registry(raw: &str) -> Result<ResourceId, ClientError> {
    let id = ResourceId::parse(raw)
        .map_err(|e| ClientError::bad("InvalidRegistryId", format!("`registry`: {e}")))?;
    match id.ancestor_of_type("Microsoft.ContainerRegistry", "registries") {
        Some(reg) if reg == id => Ok(id),
        _ => Err(ClientError::bad(
            "InvalidRegistryId",
            format!(
                "`registry`: `{raw}` is not a registry id; expected /subscriptions/{{id}}/resourceGroups/{{rg}}/providers/Microsoft.ContainerRegistry/registries/{{name}}"
            ),
        )),
    }
}

fn refuse(err: ClientError, mut log: InvocationLog) -> Reply {
    log.info(format!("request refused ({}): {}", err.status, err.message));
    let body = json!({"error": {"code": err.code, "message": err.message}});
    Reply::ok(log.into_lines()).with_output(OUTPUT, HttpOutput::json(err.status, body))
}

pub async fn handle(state: &AppState, inv: &Invocation, mut log: InvocationLog) -> Reply {
    let req = match inv
        .input(BINDING)
        .map(|(_, v)| HttpRequestData::from_value(v))
    {
        Some(Ok(r)) => r,
        Some(Err(e)) => return refuse(ClientError::bad("InvalidRequest", e), log),
        None => {
            return refuse(
                ClientError::bad(
                    "InvalidRequest",
                    format!("no HTTP request in the invocation (expected Data.{BINDING})"),
                ),
                log,
            );
        }
    };
    let request = match parse_request(&req) {
        Ok(r) => r,
        Err(e) => return refuse(e, log),
    };
    let registry = match request.registry.as_deref().map(parse_registry) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(e)) => return refuse(e, log),
    };
    let dry_run = request.dry_run.unwrap_or(false);

    let policy = match state.policy_source().load().await {
        Ok(p) => p,
        Err(failure) => {
            let report = state.policy_failure_report(Trigger::Http, &failure);
            let stored = state.reports().store(&report).await.ok();
            let message = format!(
                "the policy is not usable, nothing was done: {}",
                failure.message
            );
            log.error(message.clone());
            let body = json!({"error": {"code": "PolicyInvalid", "message": message}, "summary": summary(&report, stored.as_deref())});
            return Reply::ok(log.into_lines()).with_output(OUTPUT, HttpOutput::json(500, body));
        }
    };
    if let Some(id) = &registry
        && !policy.governs_id(id)
    {
        return refuse(
            ClientError {
                status: 422,
                code: "OutOfScope",
                message: format!(
                    "registry {id} is outside the policy scope (scope.subscriptions, resource_groups, registries, exclude_registries); refused"
                ),
            },
            log,
        );
    }
    log.info(match &registry {
        Some(id) => format!(
            "manual audit of {id}{}",
            if dry_run { " (dry run)" } else { "" }
        ),
        None => format!(
            "manual audit of every governed registry{}",
            if dry_run { " (dry run)" } else { "" }
        ),
    });
    let engine = state.engine(Arc::clone(&policy), Trigger::Http, dry_run);
    let result = match &registry {
        Some(id) => engine.reconcile(std::slice::from_ref(id)).await,
        None => engine.audit().await,
    };
    if let Some(id) = &registry
        && result.registries_read == 0
        && result.report.errors.is_empty()
    {
        return refuse(
            ClientError {
                status: 404,
                code: "RegistryNotFound",
                message: format!("registry {id} was not found"),
            },
            log,
        );
    }
    log_report(&result.report, &mut log);
    let stored = match state.reports().store(&result.report).await {
        Ok(at) => {
            log.info(format!("report stored: {at}"));
            at
        }
        Err(e) => {
            let message = format!("the report could not be stored: {e}");
            log.error(message.clone());
            let body = json!({"error": {"code": "ReportNotStored", "message": message}, "summary": summary(&result.report, None)});
            return Reply::ok(log.into_lines()).with_output(OUTPUT, HttpOutput::json(500, body));
        }
    };
    let status = if result.transient_failure { 503 } else { 200 };
    let body: Value = summary(&result.report, Some(&stored));
    Reply::ok(log.into_lines()).with_output(OUTPUT, HttpOutput::json(status, body))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn req(body: Value) -> HttpRequestData {
        HttpRequestData::from_value(&json!({"Method": "POST", "Headers": {"Content-Type": ["application/json"]}, "Body": body})).unwrap()
    }

    #[test]
    fn body_forms_and_errors() {
        assert_eq!(
            parse_request(&HttpRequestData::default()).unwrap(),
            ManualRequest::default()
        );
        assert_eq!(
            parse_request(&req(json!("  "))).unwrap(),
            ManualRequest::default()
        );
        assert_eq!(
            parse_request(&req(json!("null"))).unwrap(),
            ManualRequest::default()
        );
        let r = parse_request(&req(json!(r#"{"dryRun": true, "registry": "x"}"#))).unwrap();
        assert_eq!(r.dry_run, Some(true));
        let e = parse_request(&req(json!(r#"{"name": "Anjana"}"#))).unwrap_err();
        assert!(e.message.contains("unknown field `name`"), "{}", e.message);
        let e = parse_request(&req(json!(r#"{"dryRun": "yes"}"#))).unwrap_err();
        assert!(e.message.starts_with("`dryRun`"), "{}", e.message);
        let e = parse_request(&req(json!("Jack"))).unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{}", e.message);
        let e = parse_request(&req(json!("[1]"))).unwrap_err();
        assert!(e.message.contains("must be a JSON object"), "{}", e.message);
        let e = parse_request(&req(json!("{} {}"))).unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{}", e.message);
        assert_eq!(e.status, 400);
    }

    #[test]
    fn registry_ids() {
        let reg = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/acr";
        assert!(parse_registry(reg).is_ok());
        assert!(parse_registry(&format!("{reg}/privateEndpointConnections/c")).is_err());
        assert!(
            parse_registry(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x"
            )
            .is_err()
        );
        let e = parse_registry("acr").unwrap_err();
        assert!(
            e.message.starts_with("`registry`: invalid ARM resource id"),
            "{}",
            e.message
        );
    }
}
