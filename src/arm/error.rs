//! ARM answers and failures turned into `ResourceError`s. The ARM error body
//! `{"error": {"code", "message", "details"}}` surfaces in the message; request headers (and so the
//! token) never do.

use serde::Deserialize;

use crate::engine::{ResourceError, ResourceErrorKind};

/// `ErrorResponse` of ARM common-types v6 (some older services put `code`/`message` at the top).
#[derive(Debug, Default, Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    error: Option<ErrorDetail>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub details: Option<Vec<ErrorDetail>>,
}

impl ErrorDetail {
    /// `Code: message (details: Code: message; ...)`.
    pub(crate) fn describe(&self) -> String {
        let mut out = match (self.code.as_deref(), self.message.as_deref()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            (None, Some(m)) => m.to_string(),
            (None, None) => "no error code or message".to_string(),
        };
        if let Some(target) = self.target.as_deref().filter(|t| !t.is_empty()) {
            out.push_str(&format!(" (target `{target}`)"));
        }
        let details: Vec<String> = self
            .details
            .iter()
            .flatten()
            .map(ErrorDetail::describe)
            .collect();
        if !details.is_empty() {
            out.push_str(&format!(" (details: {})", details.join("; ")));
        }
        out
    }
}

/// Reads the ARM error out of a body, if it carries one.
pub(crate) fn parse_error_body(body: &[u8]) -> Option<ErrorDetail> {
    let envelope: ErrorEnvelope = serde_json::from_slice(body).ok()?;
    match envelope.error {
        Some(detail) => Some(detail),
        None if envelope.code.is_some() || envelope.message.is_some() => Some(ErrorDetail {
            code: envelope.code,
            message: envelope.message,
            ..ErrorDetail::default()
        }),
        None => None,
    }
}

/// Kind of a final (retries done) HTTP status.
pub(crate) fn kind_for_status(status: u16) -> ResourceErrorKind {
    match status {
        404 => ResourceErrorKind::NotFound,
        401 | 403 => ResourceErrorKind::Forbidden,
        408 | 429 | 500..=599 => ResourceErrorKind::Transient,
        _ => ResourceErrorKind::Invalid,
    }
}

/// One line of a body that is not an ARM error (an HTML page from a proxy, say), kept short.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 200 {
        let cut: String = line.chars().take(200).collect();
        format!("{cut}…")
    } else {
        line
    }
}

/// The error for an HTTP answer the caller did not expect. `what` names the request, e.g.
/// `GET /subscriptions/…/registries/r`; `attempts` is how many tries the retry policy made.
pub(crate) fn from_status(
    what: &str,
    status: u16,
    body: &[u8],
    attempts: Option<u32>,
) -> ResourceError {
    let detail = parse_error_body(body);
    let reason = match &detail {
        Some(d) => d.describe(),
        None if body.iter().all(u8::is_ascii_whitespace) => "no error body".to_string(),
        None => format!("body: {}", snippet(body)),
    };
    let mut message = format!("{what} failed with HTTP {status}: {reason}");
    if let Some(n) = attempts.filter(|n| *n > 1) {
        message.push_str(&format!(" (after {n} attempts)"));
    }
    ResourceError {
        kind: kind_for_status(status),
        status: Some(status),
        code: detail.and_then(|d| d.code),
        message,
    }
}

/// The error for a request that got no HTTP answer (connection refused or dropped, TLS failure,
/// deadline, no token).
pub(crate) fn from_transport(what: &str, error: &azure_core::Error) -> ResourceError {
    use azure_core::error::ErrorKind;
    let chain = super::credential::error_chain(error);
    match error.kind() {
        ErrorKind::Credential => ResourceError {
            kind: ResourceErrorKind::Forbidden,
            status: None,
            code: Some("CredentialUnavailable".to_string()),
            message: format!("{what}: could not get an ARM token: {chain}"),
        },
        ErrorKind::Io | ErrorKind::Connection => ResourceError {
            kind: ResourceErrorKind::Transient,
            status: None,
            code: None,
            message: format!("{what}: no answer from ARM: {chain}"),
        },
        _ => ResourceError {
            kind: ResourceErrorKind::Invalid,
            status: None,
            code: None,
            message: format!("{what}: {chain}"),
        },
    }
}

/// A 2xx answer whose body does not follow the contract.
pub(crate) fn invalid_body(
    what: &str,
    status: u16,
    expected: &str,
    problem: impl std::fmt::Display,
) -> ResourceError {
    ResourceError {
        kind: ResourceErrorKind::Invalid,
        status: Some(status),
        code: None,
        message: format!("{what}: the response is not a valid {expected}: {problem}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_authorization_failed_body_surfaces_code_and_message() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/arm/supportarticles.AuthorizationFailed.error.json"
        );
        let body = std::fs::read(path).unwrap_or_else(|e| panic!("fixture {path} is missing: {e}"));
        let e = from_status("GET /subscriptions", 403, &body, Some(1));
        assert_eq!(e.kind, ResourceErrorKind::Forbidden);
        assert_eq!(e.status, Some(403));
        assert_eq!(e.code.as_deref(), Some("AuthorizationFailed"));
        assert!(
            e.message.starts_with(
                "GET /subscriptions failed with HTTP 403: AuthorizationFailed: The client"
            ),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("Microsoft.Resources/subscriptions/read"),
            "{}",
            e.message
        );
    }

    #[test]
    fn details_and_top_level_codes_are_read() {
        let body = br#"{"error":{"code":"InvalidRequestContent","message":"bad","details":[{"code":"Inner","message":"why"}]}}"#;
        let e = from_status("PUT /x", 400, body, None);
        assert_eq!(e.kind, ResourceErrorKind::Invalid);
        assert!(
            e.message
                .contains("InvalidRequestContent: bad (details: Inner: why)"),
            "{}",
            e.message
        );

        let e = from_status(
            "GET /x",
            429,
            br#"{"code":"RetryableErrorDueToAnotherOperation","message":"busy"}"#,
            Some(4),
        );
        assert_eq!(e.kind, ResourceErrorKind::Transient);
        assert_eq!(
            e.code.as_deref(),
            Some("RetryableErrorDueToAnotherOperation")
        );
        assert!(e.message.ends_with("(after 4 attempts)"), "{}", e.message);
    }

    #[test]
    fn bodies_that_are_not_arm_errors_are_quoted_short() {
        let html = format!("<html>\n<body>{}</body></html>", "x".repeat(500));
        let e = from_status("GET /x", 502, html.as_bytes(), None);
        assert!(e.message.contains("body: <html> <body>x"), "{}", e.message);
        assert!(e.message.chars().count() < 300);
        let e = from_status("GET /x", 404, b"", None);
        assert_eq!(e.kind, ResourceErrorKind::NotFound);
        assert!(e.message.ends_with("no error body"), "{}", e.message);
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(kind_for_status(404), ResourceErrorKind::NotFound);
        assert_eq!(kind_for_status(401), ResourceErrorKind::Forbidden);
        assert_eq!(kind_for_status(503), ResourceErrorKind::Transient);
        assert_eq!(kind_for_status(409), ResourceErrorKind::Invalid);
    }
}
