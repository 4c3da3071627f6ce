//! Long-running operations (DESIGN 5; ARM async-operations protocol): a PUT, PATCH or DELETE that
//! answers 201/202 is polled through `Azure-AsyncOperation` (preferred) or `Location`, honouring
//! `Retry-After`, until `Succeeded`, `Failed` or `Canceled`. Running out of time is an error, never
//! a success. After success a PUT/PATCH reads the resource once more (final-state-via
//! azure-async-operation: the final body is a GET of the resource).

use std::time::{Duration, Instant};

use azure_core::http::Method;
use azure_core::http::Url;
use azure_core::http::headers::{HeaderName, Headers};
use serde::Deserialize;

use super::client::{ArmClient, Reply};
use super::error::ErrorDetail;
use super::retry::retry_after;
use crate::engine::{ResourceError, ResourceErrorKind, ResourceResult};

const AZURE_ASYNC_OPERATION: HeaderName = HeaderName::from_static("azure-asyncoperation");
const LOCATION: HeaderName = HeaderName::from_static("location");

/// How long-running operations are awaited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LroSettings {
    /// Wait between polls when the server gives no `Retry-After`.
    pub poll_interval: Duration,
    /// Upper bound on a server's `Retry-After` between polls.
    pub max_poll_interval: Duration,
    /// Total time to wait for the operation; past it the call fails with `OperationFailed`.
    pub max_wait: Duration,
}

impl Default for LroSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(5),
            max_poll_interval: Duration::from_secs(30),
            max_wait: Duration::from_secs(600),
        }
    }
}

impl LroSettings {
    /// The wait before the next poll: the server's `Retry-After` clamped to `[0, max_poll_interval]`,
    /// or `poll_interval`.
    pub(crate) fn delay_after(&self, headers: &Headers) -> Duration {
        retry_after(headers).map_or(self.poll_interval, |d| d.min(self.max_poll_interval))
    }
}

/// What to poll.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Monitor {
    /// `Azure-AsyncOperation`: a status resource `{"status": ..., "error": {...}}`.
    AsyncOperation(Url),
    /// `Location`: 202 while running, 200/204 when done.
    Location(Url),
    /// No header: the resource itself (its `provisioningState`, or for DELETE its 404).
    Resource,
}

/// Terminal or not, as the status resource or `provisioningState` says.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Running(String),
    Succeeded,
    Failed(String, Option<ErrorDetail>),
}

fn state_of(status: &str, error: Option<ErrorDetail>) -> State {
    if status.eq_ignore_ascii_case("Succeeded") {
        State::Succeeded
    } else if status.eq_ignore_ascii_case("Failed")
        || status.eq_ignore_ascii_case("Canceled")
        || status.eq_ignore_ascii_case("Cancelled")
    {
        State::Failed(status.to_string(), error)
    } else {
        State::Running(status.to_string())
    }
}

#[derive(Deserialize)]
struct OperationStatus {
    status: String,
    #[serde(default)]
    error: Option<ErrorDetail>,
}

/// State of an `Azure-AsyncOperation` status body.
fn operation_state(body: &[u8]) -> Result<State, String> {
    let status: OperationStatus =
        serde_json::from_slice(body).map_err(|e| format!("not an operation status: {e}"))?;
    Ok(state_of(&status.status, status.error))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProvisionedBody {
    #[serde(default)]
    properties: Option<ProvisionedProperties>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProvisionedProperties {
    #[serde(default)]
    provisioning_state: Option<String>,
}

/// State of a resource body; no `provisioningState` means done (ARM async-operations rules).
fn resource_state(body: &[u8]) -> State {
    let state = serde_json::from_slice::<ProvisionedBody>(body)
        .ok()
        .and_then(|b| b.properties)
        .and_then(|p| p.provisioning_state);
    match state {
        Some(s) => state_of(&s, None),
        None => State::Succeeded,
    }
}

fn operation_failed(what: &str, status: &str, detail: Option<ErrorDetail>) -> ResourceError {
    let reason = detail.as_ref().map_or_else(
        || "ARM gave no error details".to_string(),
        ErrorDetail::describe,
    );
    ResourceError {
        kind: ResourceErrorKind::OperationFailed,
        status: None,
        code: detail.and_then(|d| d.code),
        message: format!("{what}: the long-running operation ended `{status}`: {reason}"),
    }
}

/// A poll that failed outright: transient trouble stays transient (worth another run); anything
/// else means the operation's outcome is unknown or failed.
fn poll_error(what: &str, mut error: ResourceError) -> ResourceError {
    if error.kind != ResourceErrorKind::Transient {
        error.kind = ResourceErrorKind::OperationFailed;
    }
    error.message = format!(
        "{what}: polling the long-running operation failed: {}",
        error.message
    );
    error
}

impl ArmClient {
    /// Completes a PUT/PATCH/DELETE given its first answer. Returns the final resource for PUT and
    /// PATCH, `None` for DELETE.
    pub(crate) async fn complete(
        &self,
        what: &str,
        method: Method,
        resource: &Url,
        first: Reply,
    ) -> ResourceResult<Option<Reply>> {
        let is_delete = method == Method::Delete;
        match (first.status, is_delete) {
            // Gone already is success: deleting is idempotent.
            (200 | 204 | 404, true) => return Ok(None),
            (200, false) => match resource_state(&first.body) {
                State::Succeeded => return Ok(Some(first)),
                State::Failed(status, _) => return Err(operation_failed(what, &status, None)),
                State::Running(_) => {}
            },
            (201 | 202, _) => {}
            (203..=299, false) => return self.final_get(what, resource).await.map(Some),
            _ => return Err(first.error(what)),
        }

        let monitor = if let Some(raw) = first.headers.get_optional_str(&AZURE_ASYNC_OPERATION) {
            Monitor::AsyncOperation(self.follow(raw, what, "Azure-AsyncOperation header")?)
        } else if let Some(raw) = first.headers.get_optional_str(&LOCATION) {
            Monitor::Location(self.follow(raw, what, "Location header")?)
        } else {
            Monitor::Resource
        };
        // A 201 without a monitor carries the created resource; done unless it says otherwise.
        if monitor == Monitor::Resource && first.status == 201 && !is_delete {
            match resource_state(&first.body) {
                State::Succeeded => return Ok(Some(first)),
                State::Failed(status, _) => return Err(operation_failed(what, &status, None)),
                State::Running(_) => {}
            }
        }

        let settings = &self.lro;
        let deadline = super::retry::instant_after(Instant::now(), settings.max_wait);
        let mut delay = settings.delay_after(&first.headers);
        let mut last = format!("HTTP {}", first.status);
        loop {
            tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
            let url = match &monitor {
                Monitor::AsyncOperation(url) | Monitor::Location(url) => url.clone(),
                Monitor::Resource => resource.clone(),
            };
            let poll_what = format!("GET {}", url.path());
            let reply = self
                .exchange(Method::Get, url, None)
                .await
                .map_err(|e| poll_error(what, e))?;
            match &monitor {
                Monitor::AsyncOperation(_) => {
                    if reply.status != 200 {
                        return Err(poll_error(what, reply.error(&poll_what)));
                    }
                    match operation_state(&reply.body) {
                        Ok(State::Succeeded) => break,
                        Ok(State::Failed(status, detail)) => {
                            return Err(operation_failed(what, &status, detail));
                        }
                        Ok(State::Running(status)) => last = format!("status `{status}`"),
                        Err(problem) => {
                            return Err(poll_error(
                                what,
                                super::error::invalid_body(
                                    &poll_what,
                                    reply.status,
                                    "operation status",
                                    problem,
                                ),
                            ));
                        }
                    }
                }
                Monitor::Location(_) => match reply.status {
                    202 => last = "HTTP 202 from the Location monitor".to_string(),
                    200..=299 => break,
                    _ => return Err(poll_error(what, reply.error(&poll_what))),
                },
                Monitor::Resource => match (reply.status, is_delete) {
                    (404, true) => break,
                    (200, true) => last = "the resource still exists".to_string(),
                    (200, false) => match resource_state(&reply.body) {
                        State::Succeeded => return Ok(Some(reply)),
                        State::Failed(status, _) => {
                            return Err(operation_failed(what, &status, None));
                        }
                        State::Running(status) => last = format!("provisioningState `{status}`"),
                    },
                    _ => return Err(poll_error(what, reply.error(&poll_what))),
                },
            }
            if Instant::now() >= deadline {
                return Err(ResourceError {
                    kind: ResourceErrorKind::OperationFailed,
                    status: None,
                    code: None,
                    message: format!(
                        "{what}: the long-running operation did not finish within {:?} (last seen: {last}); it may still \
                         complete, so read the resource before trying again",
                        settings.max_wait
                    ),
                });
            }
            delay = settings.delay_after(&reply.headers);
        }
        if is_delete {
            Ok(None)
        } else {
            self.final_get(what, resource).await.map(Some)
        }
    }

    /// Reads the resource after its operation succeeded.
    async fn final_get(&self, what: &str, resource: &Url) -> ResourceResult<Reply> {
        let get_what = format!("GET {} (after {what})", resource.path());
        let reply = self.exchange(Method::Get, resource.clone(), None).await?;
        if reply.status == 200 {
            Ok(reply)
        } else {
            Err(reply.error(&get_what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::headers::RETRY_AFTER;

    #[test]
    fn status_bodies_are_read_case_insensitively() {
        assert_eq!(
            operation_state(br#"{"status":"InProgress"}"#),
            Ok(State::Running("InProgress".into()))
        );
        assert_eq!(
            operation_state(br#"{"status":"succeeded"}"#),
            Ok(State::Succeeded)
        );
        let failed =
            operation_state(br#"{"status":"Failed","error":{"code":"Conflict","message":"busy"}}"#)
                .unwrap();
        match failed {
            State::Failed(s, Some(d)) => {
                assert_eq!(s, "Failed");
                assert_eq!(d.code.as_deref(), Some("Conflict"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            operation_state(br#"{"status":"Canceled"}"#),
            Ok(State::Failed(_, None))
        ));
        assert!(operation_state(b"{}").is_err());
    }

    #[test]
    fn resources_without_provisioning_state_are_done() {
        assert_eq!(
            resource_state(br#"{"id":"/x","properties":{}}"#),
            State::Succeeded
        );
        assert_eq!(
            resource_state(br#"{"properties":{"provisioningState":"Updating"}}"#),
            State::Running("Updating".into())
        );
    }

    #[test]
    fn poll_delay_honours_retry_after_within_bounds() {
        let s = LroSettings {
            poll_interval: Duration::from_millis(20),
            max_poll_interval: Duration::from_secs(3),
            max_wait: Duration::from_secs(10),
        };
        assert_eq!(s.delay_after(&Headers::new()), Duration::from_millis(20));
        let mut h = Headers::new();
        h.insert(RETRY_AFTER, "2");
        assert_eq!(s.delay_after(&h), Duration::from_secs(2));
        h.insert(RETRY_AFTER, "120");
        assert_eq!(s.delay_after(&h), Duration::from_secs(3));
        h.insert(RETRY_AFTER, "0");
        assert_eq!(s.delay_after(&h), Duration::ZERO);
    }
}
