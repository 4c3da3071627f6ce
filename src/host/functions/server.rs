//! The HTTP side: routes, body limit, per-invocation span, graceful shutdown.
//!
//! The host calls `POST /<FunctionName>` on 127.0.0.1 and probes `GET /` until it answers.

use std::future::Future;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tracing::Instrument;

use super::invocation::Invocation;
use super::log::InvocationLog;
use super::response::{HandlerError, InvocationResponse, Reply};
use super::state::AppState;
use super::{connection_events, manual_audit, scheduled_audit, subscription_audit, webhook};

/// The functions this handler serves (the folder names under `function/`).
pub const FUNCTIONS: [&str; 4] = [
    "ConnectionEvents",
    "ScheduledAudit",
    "ManualAudit",
    "SubscriptionAudit",
];

/// Invocations larger than this are refused with 413. Event Grid events are at most 1 MB; a
/// ManualAudit body is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

pub const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    ConnectionEvents,
    ScheduledAudit,
    ManualAudit,
    SubscriptionAudit,
}

impl Function {
    /// Function names are case-insensitive in Azure Functions.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "connectionevents" => Some(Self::ConnectionEvents),
            "scheduledaudit" => Some(Self::ScheduledAudit),
            "manualaudit" => Some(Self::ManualAudit),
            "subscriptionaudit" => Some(Self::SubscriptionAudit),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::ConnectionEvents => "ConnectionEvents",
            Self::ScheduledAudit => "ScheduledAudit",
            Self::ManualAudit => "ManualAudit",
            Self::SubscriptionAudit => "SubscriptionAudit",
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(ready).fallback(method_not_allowed))
        .route(
            webhook::PATH,
            post(webhook::post)
                .options(webhook::options)
                .fallback(method_not_allowed),
        )
        .route("/{function}", post(invoke).fallback(method_not_allowed))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The readiness probe (and later health pings).
async fn ready() -> Json<serde_json::Value> {
    Json(
        json!({"service": "linkguard", "version": env!("CARGO_PKG_VERSION"), "functions": FUNCTIONS}),
    )
}

fn unknown_function(what: &str) -> Response {
    let body = InvocationResponse {
        error: Some(HandlerError {
            code: "UnknownFunction".into(),
            message: format!(
                "{what}; this handler serves POST /ConnectionEvents, /ScheduledAudit, /ManualAudit, /SubscriptionAudit"
            ),
            functions: FUNCTIONS.iter().map(ToString::to_string).collect(),
        }),
        ..InvocationResponse::default()
    };
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    unknown_function(&format!("no function at {method} {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let body = InvocationResponse {
        error: Some(HandlerError {
            code: "MethodNotAllowed".into(),
            message: format!(
                "{method} {} is not served: functions are invoked with POST, readiness is GET /",
                uri.path()
            ),
            functions: Vec::new(),
        }),
        ..InvocationResponse::default()
    };
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

async fn invoke(
    State(state): State<AppState>,
    Path(function): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(func) = Function::from_name(&function) else {
        return unknown_function(&format!("no function named `{function}`"));
    };
    let invocation_id = headers
        .get(INVOCATION_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let span =
        tracing::info_span!("invocation", function = func.name(), invocation_id = %invocation_id);
    async move {
        let body = match body {
            Ok(b) => b,
            Err(rejection) => {
                let status = rejection.status();
                let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    format!(
                        "the invocation body exceeds the {} MiB limit",
                        MAX_BODY_BYTES / (1024 * 1024)
                    )
                } else {
                    format!(
                        "the invocation body could not be read: {}",
                        rejection.body_text()
                    )
                };
                tracing::warn!("{message}");
                return Reply::failed(status, "BodyRejected", message, Vec::new()).into_response();
            }
        };
        let inv = match Invocation::parse(&body) {
            Ok(inv) => inv,
            Err(e) => {
                tracing::warn!("invocation refused: {e}");
                return Reply::failed(
                    StatusCode::BAD_REQUEST,
                    "InvalidInvocation",
                    e.to_string(),
                    Vec::new(),
                )
                .into_response();
            }
        };
        let mut log = InvocationLog::new();
        if let Some(m) = inv.method_name()
            && !m.eq_ignore_ascii_case(func.name())
        {
            log.info(format!(
                "Metadata.sys.MethodName is `{m}`; serving {}",
                func.name()
            ));
        }
        let started = std::time::Instant::now();
        let reply = match func {
            Function::ConnectionEvents => connection_events::handle(&state, &inv, log).await,
            Function::ScheduledAudit => scheduled_audit::handle(&state, &inv, log).await,
            Function::ManualAudit => manual_audit::handle(&state, &inv, log).await,
            Function::SubscriptionAudit => subscription_audit::handle(&state, &inv, log).await,
        };
        tracing::info!(
            status = reply.status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "invocation finished"
        );
        reply.into_response()
    }
    .instrument(span)
    .await
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight invocations finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGTERM (the host stopping the worker) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C: finishing in-flight invocations"),
        () = term => tracing::info!("SIGTERM: finishing in-flight invocations"),
    }
}
