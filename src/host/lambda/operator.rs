//! Direct invocations by an operator (`aws lambda invoke --payload '{"action": ...}'`):
//!
//! - `{"action": "audit"}`: the audit of every governed registry, now; `"registry": "<id>"`
//!   reconciles that one registry instead; `"dry_run": true` decides and reports without changing
//!   anything. Answers the run's summary (where the report is, totals, actions).
//! - `{"action": "evaluate", "estate": {...}, "policy": "<TOML text>"}`: the offline plan of an
//!   estate (DESIGN 3.1) under a policy, exactly as `linkguard evaluate` computes it: no ARM call,
//!   no report. Without `policy`, the deployed policy file is used. Answers
//!   `{"plan": <plan>, "needs_attention": bool}`.
//!
//! A request that cannot be run fails the invocation with `InvalidRequest` and a message naming
//! the field.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::error::HandlerError;
use super::run::{self, Scope};
use super::state::LambdaState;
use crate::host::functions::log::InvocationLog;
use crate::model::{Estate, ResourceId};
use crate::policy::{Policy, evaluate_estate};
use crate::report::Trigger;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    action: String,
    #[serde(default)]
    registry: Option<String>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    estate: Option<Value>,
    #[serde(default)]
    policy: Option<String>,
}

pub async fn handle(state: &LambdaState, payload: Value) -> Result<Value, HandlerError> {
    let request: Request = serde_path_to_error::deserialize(payload).map_err(|e| {
        HandlerError::invalid(format!(
            "operator request, field `{}`: {}; expected {{\"action\": \"audit\", \"registry\"?: id, \"dry_run\"?: bool}} or {{\"action\": \"evaluate\", \"estate\": {{...}}, \"policy\"?: \"<TOML>\"}}",
            e.path(),
            e.inner()
        ))
    })?;
    match request.action.trim().to_ascii_lowercase().as_str() {
        "audit" => audit(state, request).await,
        "evaluate" => evaluate(state, request).await,
        other => Err(HandlerError::invalid(format!(
            "operator request: `action` is `{other}`; use \"audit\" or \"evaluate\""
        ))),
    }
}

async fn audit(state: &LambdaState, request: Request) -> Result<Value, HandlerError> {
    if request.estate.is_some() || request.policy.is_some() {
        return Err(HandlerError::invalid(
            "operator request: `estate` and `policy` belong to \"evaluate\"; an audit reads the live estate with the deployed policy",
        ));
    }
    let scope = match &request.registry {
        None => Scope::Audit,
        Some(raw) => {
            let id = ResourceId::parse(raw.trim()).map_err(|e| {
                HandlerError::invalid(format!("operator request, field `registry`: {e}"))
            })?;
            let Some(registry) = id.ancestor_of_type("Microsoft.ContainerRegistry", "registries")
            else {
                return Err(HandlerError::invalid(format!(
                    "operator request, field `registry`: `{raw}` names no container registry (…/providers/Microsoft.ContainerRegistry/registries/{{name}})"
                )));
            };
            Scope::Registries(vec![registry])
        }
    };
    let mut log = InvocationLog::new();
    log.info(format!(
        "operator {}{}",
        match &scope {
            Scope::Audit => "audit of every governed registry".to_string(),
            Scope::Registries(ids) => format!(
                "reconciliation of {}",
                ids.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        if request.dry_run { " (dry run)" } else { "" }
    ));
    run::run(state, scope, Trigger::Cli, request.dry_run, &mut log).await
}

async fn evaluate(state: &LambdaState, request: Request) -> Result<Value, HandlerError> {
    if request.registry.is_some() || request.dry_run {
        return Err(HandlerError::invalid(
            "operator request: `registry` and `dry_run` belong to \"audit\"; \"evaluate\" never changes anything",
        ));
    }
    let Some(estate) = request.estate else {
        return Err(HandlerError::invalid(
            "operator request, field `estate`: missing; give the estate JSON ({\"registries\": [...], \"privateEndpoints\": [...]}, DESIGN 3.1)",
        ));
    };
    let estate = Estate::from_value(estate)
        .map_err(|e| HandlerError::invalid(format!("operator request, field `estate`: {e}")))?;
    let policy =
        match request.policy {
            Some(text) => Arc::new(Policy::parse("policy (from the request)", &text).map_err(
                |e| HandlerError::invalid(format!("operator request, field `policy`: {e}")),
            )?),
            None => state.app.policy_source().load().await.map_err(|f| {
                HandlerError::new(
                    "PolicyInvalid",
                    format!("the deployed policy is not usable: {}", f.message),
                )
            })?,
        };
    let plan = evaluate_estate(&policy, &estate);
    Ok(json!({"needs_attention": plan.needs_attention(), "plan": plan}))
}
