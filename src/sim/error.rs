//! Errors of the sandbox: `SimError` for its own API (start, test hooks), `ArmError` for what it
//! answers over HTTP in ARM's error shape `{"error": {"code", "message"}}`.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::faults::FaultSpecError;

/// Why the sandbox could not start, or why a test hook refused a change.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The estate is malformed; the message names the field path (as `Estate::from_value` does).
    #[error("estate: {0}")]
    Estate(String),
    #[error(transparent)]
    Faults(#[from] FaultSpecError),
    #[error("cannot listen on 127.0.0.1:{port}: {source}; pick another --port or 0 for a free one")]
    Bind { port: u16, source: std::io::Error },
    #[error("cannot write the TLS certificate to {path}: {source}; pass a writable --cert-dir")]
    CertDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot build the TLS certificate or configuration: {0}")]
    Tls(String),
    /// A test hook named something the estate does not hold.
    #[error("{0} not found in the sandbox estate")]
    NotFound(String),
    /// A test hook would create something that exists already.
    #[error("{0} exists already")]
    Conflict(String),
    /// A test hook got a value it cannot use; the message names the field and the fix.
    #[error("{0}")]
    Invalid(String),
}

impl SimError {
    /// HTTP status for the admin routes.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            SimError::NotFound(_) => StatusCode::NOT_FOUND,
            SimError::Conflict(_) => StatusCode::CONFLICT,
            SimError::Estate(_) | SimError::Faults(_) | SimError::Invalid(_) => {
                StatusCode::BAD_REQUEST
            }
            SimError::Bind { .. } | SimError::CertDir { .. } | SimError::Tls(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let status = self.status();
        (
            status,
            axum::Json(
                json!({"error": {"code": "SandboxRequestInvalid", "message": self.to_string()}}),
            ),
        )
            .into_response()
    }
}

/// An ARM error answer: status, `error.code`, `error.message`, and extra headers (`Retry-After`,
/// `WWW-Authenticate`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArmError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub headers: Vec<(HeaderName, String)>,
}

impl ArmError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }

    /// 404 for a resource that is not in the estate, in ARM's wording; `resource` is the type path
    /// with names, e.g. `Microsoft.ContainerRegistry/registries/reg1`.
    pub fn not_found(resource: &str, resource_group: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource '{resource}' under resource group '{resource_group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        )
    }

    pub fn resource_group_not_found(rg: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{rg}' could not be found."),
        )
    }

    /// 403 in the shape of the real body in `fixtures/arm/supportarticles.AuthorizationFailed.error.json`.
    pub fn authorization_failed(action: &str, scope: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            format!(
                "The client 'linkguard-sim-client' with object id '00000000-0000-0000-0000-000000000000' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
            ),
        )
    }

    pub fn invalid_content(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequestContent", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
}

impl IntoResponse for ArmError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, axum::Json(body)).into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, v);
            }
        }
        response
    }
}
