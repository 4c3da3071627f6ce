//! Test hooks under `/_sim/` (not ARM, not counted in the request log):
//!
//! | route | does |
//! |---|---|
//! | `GET /_sim/health` | `{"status": "ok"}` |
//! | `GET /_sim/requests` | counters and latest requests ([`RequestStats`](super::RequestStats)) |
//! | `POST /_sim/reset` | clears the counters; `?estate=true` also restores the estate as loaded |
//! | `GET /_sim/estate` | the estate as it is now |
//! | `POST /_sim/connections` | `{"registry", "privateEndpoint", "name"?, "status"?, "description"?}`: adds a connection (default Pending) |
//! | `PUT /_sim/connections/state` | `{"connection", "status", "description"?}`: sets a state "by someone else" |
//! | `POST /_sim/privateEndpoints` | a private endpoint body: adds it |
//! | `GET /_sim/faults` | `{"spec": "..."}` |
//! | `POST /_sim/faults` | `{"spec": "..."}`: replaces the faults (`""` or `"none"` clears) |
//! | `DELETE /_sim/faults` | clears the faults |
//!
//! With `--token`, these routes want the same bearer token as ARM requests.

use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::SimError;
use super::faults::FaultSpec;
use super::server::Sandbox;
use super::state::NewConnection;

pub(crate) fn routes(sandbox: Sandbox) -> Router<Sandbox> {
    Router::new()
        .route("/_sim/health", get(health))
        .route("/_sim/requests", get(requests))
        .route("/_sim/reset", post(reset))
        .route("/_sim/estate", get(estate))
        .route("/_sim/connections", post(add_connection))
        .route("/_sim/connections/state", put(set_state))
        .route("/_sim/privateEndpoints", post(add_endpoint))
        .route(
            "/_sim/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .route_layer(middleware::from_fn_with_state(sandbox, require_token))
}

async fn require_token(State(sandbox): State<Sandbox>, request: Request, next: Next) -> Response {
    if let Some(expected) = sandbox.settings().token.as_deref() {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if given != Some(expected) {
            return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"code": "AuthenticationFailed", "message": "The sandbox was started with --token: send it as a bearer token."}})))
                .into_response();
        }
    }
    next.run(request).await
}

/// Reads a JSON body into `T`, naming the field that does not fit.
fn body<T: DeserializeOwned>(value: Value) -> Result<T, SimError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        SimError::Invalid(format!("request body at `{path}`: {}", e.into_inner()))
    })
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn requests(State(sandbox): State<Sandbox>) -> Response {
    Json(sandbox.requests()).into_response()
}

#[derive(Deserialize)]
struct ResetQuery {
    #[serde(default)]
    estate: bool,
}

async fn reset(State(sandbox): State<Sandbox>, Query(q): Query<ResetQuery>) -> Json<Value> {
    sandbox.reset_requests();
    if q.estate {
        sandbox.reset_estate();
    }
    Json(json!({"requests": "cleared", "estate": if q.estate { "restored" } else { "kept" }}))
}

async fn estate(State(sandbox): State<Sandbox>) -> Json<Value> {
    Json(sandbox.estate_json())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddConnection {
    registry: String,
    private_endpoint: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

async fn add_connection(
    State(sandbox): State<Sandbox>,
    Json(value): Json<Value>,
) -> Result<Response, SimError> {
    let req: AddConnection = body(value)?;
    let new = NewConnection {
        name: req.name,
        private_endpoint: req.private_endpoint,
        status: req.status,
        description: req.description,
    };
    let conn = sandbox.add_connection(&req.registry, new)?;
    Ok((StatusCode::CREATED, Json(conn)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetState {
    connection: String,
    status: String,
    #[serde(default)]
    description: Option<String>,
}

async fn set_state(
    State(sandbox): State<Sandbox>,
    Json(value): Json<Value>,
) -> Result<Json<Value>, SimError> {
    let req: SetState = body(value)?;
    Ok(Json(sandbox.set_connection_status(
        &req.connection,
        &req.status,
        req.description.as_deref(),
    )?))
}

async fn add_endpoint(
    State(sandbox): State<Sandbox>,
    Json(value): Json<Value>,
) -> Result<Response, SimError> {
    let pe = sandbox.add_private_endpoint(value)?;
    Ok((StatusCode::CREATED, Json(pe)).into_response())
}

async fn get_faults(State(sandbox): State<Sandbox>) -> Json<Value> {
    Json(json!({"spec": sandbox.faults().to_string()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetFaults {
    spec: String,
}

async fn set_faults(
    State(sandbox): State<Sandbox>,
    Json(value): Json<Value>,
) -> Result<Json<Value>, SimError> {
    let req: SetFaults = body(value)?;
    let spec = FaultSpec::parse(&req.spec)?;
    sandbox.set_faults(spec);
    Ok(Json(json!({"spec": sandbox.faults().to_string()})))
}

async fn clear_faults(State(sandbox): State<Sandbox>) -> Json<Value> {
    sandbox.set_faults(FaultSpec::none());
    Json(json!({"spec": "none"}))
}
