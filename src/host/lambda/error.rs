//! A failed invocation as the Runtime API records it (`errorType`, `errorMessage`). Used for
//! invocations that are not HTTP (schedule, operator): for asynchronous ones (the schedule) a
//! failure makes Lambda retry, then dead-letter. HTTP requests always get an HTTP status instead.

use lambda_runtime::Diagnostic;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HandlerError {
    /// Stable error type, e.g. `TransientFailure`, `ReportNotStored`, `InvalidRequest`.
    pub code: &'static str,
    /// Names the problem and the fix; never a secret.
    pub message: String,
}

impl HandlerError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidRequest", message)
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        Diagnostic {
            error_type: e.code.to_string(),
            error_message: e.message,
        }
    }
}
