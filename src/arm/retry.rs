//! The retry policy of the ARM pipeline (DESIGN 5: retry 429/5xx and dropped connections, honour
//! `Retry-After`, exponential backoff with jitter, a total deadline, never retry other 4xx).
//!
//! Why not azure_core's own `ExponentialRetryPolicy` (typespec_client_core 1.1, read from source):
//! - its total deadline is not one: the clock starts after the first response, a server's
//!   `Retry-After` is slept in full whatever the deadline (`Retry-After: 3600` blocks an hour), and
//!   a hung attempt is bounded only by the transport's 60 s read timeout;
//! - it reads the body after the policy returns, so a connection dropped mid-body is never retried;
//! - `Retry-After` is read only on 429/503, jitter is a flat 0–255 ms, and `max_delay` is floored
//!   at 1 s (tests cannot run fast);
//! - it ignores `x-ms-ratelimit-remaining-*`.
//!
//! `RetryOptions::custom` accepts only the `RetryPolicy` trait, whose `send` loop is the one above,
//! so this is a plain `Policy` placed among the per-call policies, with the stock retry set to
//! `RetryOptions::none()`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use azure_core::error::{Error, ErrorKind};
use azure_core::http::headers::{
    HeaderName, Headers, RETRY_AFTER, RETRY_AFTER_MS, X_MS_RETRY_AFTER_MS,
};
use azure_core::http::policies::{Policy, PolicyResult, get_retry_after};
use azure_core::http::{AsyncRawResponse, Context, Request, StatusCode};
use azure_core::time::OffsetDateTime;
use rand::Rng;

/// Response header the policy adds so the client can say how hard it tried.
pub(crate) const ATTEMPTS_HEADER: HeaderName = HeaderName::from_static("x-linkguard-attempts");

/// How requests are retried. Applies to every request, page and poll separately.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySettings {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubles on each retry, with jitter, up to `max_delay`.
    pub initial_delay: Duration,
    /// Cap of our own backoff (a server's `Retry-After` is honoured as given, within the deadline).
    pub max_delay: Duration,
    /// Total time for one request including every retry and wait. A wait that would end past it
    /// is not started: the last answer is returned instead.
    pub total_deadline: Duration,
    /// Pause before the next request when ARM reports `x-ms-ratelimit-remaining-*: 0`.
    pub rate_limit_pause: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_retries: 6,
            initial_delay: Duration::from_millis(800),
            max_delay: Duration::from_secs(30),
            total_deadline: Duration::from_secs(120),
            rate_limit_pause: Duration::from_secs(1),
        }
    }
}

impl RetrySettings {
    /// Backoff before retry number `retry` (1-based): `initial * 2^(retry-1)` capped at `max_delay`,
    /// then "equal jitter": a uniform pick in its upper half, so concurrent clients spread out.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(31);
        let base = self
            .initial_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let half = base / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let extra = if jitter_ms == 0 {
            0
        } else {
            rand::rng().random_range(0..=jitter_ms)
        };
        half + Duration::from_millis(extra)
    }
}

/// Statuses worth another try: timeouts, throttling (including ARM's non-throttling 429
/// `RetryableErrorDueToAnotherOperation`) and server errors. Other 4xx never are.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The longest server wait hint taken as given. ARM asks for seconds to minutes; anything longer
/// (say `Retry-After: 9223372036854775807`) is read as this, and the deadline then decides.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The server's wait hint: `x-ms-retry-after-ms`, `retry-after-ms`, then `Retry-After` (seconds or
/// an HTTP date), capped at [`MAX_RETRY_AFTER`]. Negative or past values mean "now".
pub(crate) fn retry_after(headers: &Headers) -> Option<Duration> {
    let hint = get_retry_after(
        headers,
        OffsetDateTime::now_utc,
        &[X_MS_RETRY_AFTER_MS, RETRY_AFTER_MS, RETRY_AFTER],
    )?;
    Some(
        Duration::try_from(hint)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// `from + wait` without the overflow panic of `Instant + Duration`: a wait too long for the clock
/// (from a setting or a server) ends at the farthest instant the clock can hold a century out.
pub(crate) fn instant_after(from: Instant, wait: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    from.checked_add(wait)
        .or_else(|| from.checked_add(CENTURY))
        .unwrap_or(from)
}

/// True when a response says a rate-limit bucket is empty.
fn bucket_empty(headers: &Headers) -> bool {
    headers.iter().any(|(name, value)| {
        name.as_str().starts_with("x-ms-ratelimit-remaining-")
            && value.as_str().trim().parse::<i64>().is_ok_and(|n| n <= 0)
    })
}

/// rustls reports trust failures as "invalid peer certificate: ..." inside the connect error; the
/// types are not reachable through the error chain (io::Error hides its payload), so read the text.
fn is_untrusted_certificate(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::Connection | ErrorKind::Io)
        && super::credential::error_chain(error)
            .to_ascii_lowercase()
            .contains("certificate")
}

#[derive(Debug)]
pub(crate) struct ArmRetryPolicy {
    settings: RetrySettings,
    /// Shared by all requests of a client: no request starts before this instant.
    not_before: Arc<Mutex<Option<Instant>>>,
}

impl ArmRetryPolicy {
    pub(crate) fn new(settings: RetrySettings) -> Self {
        Self {
            settings,
            not_before: Arc::new(Mutex::new(None)),
        }
    }

    fn pause_until(&self) -> Option<Instant> {
        self.not_before.lock().map(|g| *g).unwrap_or(None)
    }

    fn note_rate_limit(&self, headers: &Headers) {
        if bucket_empty(headers)
            && let Ok(mut guard) = self.not_before.lock()
        {
            *guard = Some(instant_after(
                Instant::now(),
                self.settings.rate_limit_pause,
            ));
        }
    }
}

/// A response with its body read in full.
struct Collected {
    status: StatusCode,
    headers: Headers,
    body: azure_core::Bytes,
}

impl Collected {
    fn into_response(self, attempts: u32) -> AsyncRawResponse {
        let mut headers = self.headers;
        headers.insert(ATTEMPTS_HEADER, attempts.to_string());
        AsyncRawResponse::from_bytes(self.status, headers, self.body)
    }
}

/// One attempt, with the body read in full (so a connection dropped mid-body counts as a failed
/// attempt and is retried like any other dropped connection).
async fn attempt(
    ctx: &Context<'_>,
    request: &mut Request,
    next: &[Arc<dyn Policy>],
) -> azure_core::Result<Collected> {
    let response = super::policies::forward(ctx, request, next).await?;
    let (status, headers, body) = response.deconstruct();
    let body = body.collect().await?;
    Ok(Collected {
        status,
        headers,
        body,
    })
}

#[async_trait::async_trait]
impl Policy for ArmRetryPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let start = Instant::now();
        let deadline = instant_after(start, self.settings.total_deadline);
        let mut attempts: u32 = 0;
        loop {
            if attempts > 0 {
                request.body_mut().reset().await?;
            }
            if let Some(until) = self.pause_until() {
                let now = Instant::now();
                if until > now {
                    tokio::time::sleep(until.min(deadline).saturating_duration_since(now)).await;
                }
            }
            attempts += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let outcome = match tokio::time::timeout(remaining, attempt(ctx, request, next)).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    return Err(Error::with_message(
                        ErrorKind::Io,
                        format!(
                            "no answer within the deadline of {:?} (attempt {attempts})",
                            self.settings.total_deadline
                        ),
                    ));
                }
            };
            let hint = match &outcome {
                Ok(response) => {
                    self.note_rate_limit(&response.headers);
                    let status = u16::from(response.status);
                    if !is_retryable_status(status) {
                        return outcome.map(|r| r.into_response(attempts));
                    }
                    tracing::debug!(status, attempts, "ARM answered with a retryable status");
                    retry_after(&response.headers)
                }
                // A TLS trust failure does not heal by retrying: say so at once.
                Err(error) if is_untrusted_certificate(error) => {
                    return Err(Error::with_message(
                        ErrorKind::Other,
                        format!(
                            "the ARM endpoint's TLS certificate is not trusted (for the sandbox's --tls, set \
                             LINKGUARD_ARM_CA_CERT to its CA certificate): {}",
                            super::credential::error_chain(error)
                        ),
                    ));
                }
                Err(error) if matches!(error.kind(), ErrorKind::Io | ErrorKind::Connection) => {
                    tracing::debug!(attempts, error = %error, "ARM request failed in transport; will retry");
                    None
                }
                Err(_) => return outcome.map(|r| r.into_response(attempts)),
            };
            let give_up = |outcome: azure_core::Result<Collected>, why: String| -> PolicyResult {
                match outcome {
                    Ok(response) => Ok(response.into_response(attempts)),
                    Err(error) => Err(Error::with_error(
                        error.kind().clone(),
                        error,
                        format!(
                            "gave up after {attempts} attempts in {:.1?}: {why}",
                            start.elapsed()
                        ),
                    )),
                }
            };
            if attempts > self.settings.max_retries {
                return give_up(outcome, "no retries left".to_string());
            }
            // The server's hint wins when it gives one; our backoff is only for when it does not.
            let wait = hint.unwrap_or_else(|| self.settings.backoff(attempts));
            if wait > deadline.saturating_duration_since(Instant::now()) {
                return give_up(
                    outcome,
                    format!(
                        "the next wait of {wait:.1?} would pass the deadline of {:?}",
                        self.settings.total_deadline
                    ),
                );
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stays_under_the_cap() {
        let s = RetrySettings {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetrySettings::default()
        };
        for _ in 0..50 {
            let d1 = s.backoff(1);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = s.backoff(3);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d10 = s.backoff(10);
            assert!(
                d10 >= Duration::from_millis(500) && d10 <= Duration::from_millis(1000),
                "{d10:?}"
            );
            assert!(s.backoff(u32::MAX) <= Duration::from_millis(1000));
        }
        // Jitter actually varies.
        let picks: std::collections::HashSet<Duration> = (0..50).map(|_| s.backoff(4)).collect();
        assert!(picks.len() > 1);
    }

    #[test]
    fn retries_only_timeouts_throttling_and_server_errors() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 201, 202, 204, 400, 401, 403, 404, 409, 412, 501, 505] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_milliseconds() {
        let mut h = Headers::new();
        h.insert(RETRY_AFTER, "2");
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));

        let mut h = Headers::new();
        let later = OffsetDateTime::now_utc() + azure_core::time::Duration::seconds(5);
        h.insert(RETRY_AFTER, azure_core::time::to_rfc7231(&later));
        let d = retry_after(&h).unwrap();
        assert!(
            d <= Duration::from_secs(5) && d >= Duration::from_secs(3),
            "{d:?}"
        );

        let mut h = Headers::new();
        h.insert(RETRY_AFTER, "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(retry_after(&h), Some(Duration::ZERO));

        let mut h = Headers::new();
        h.insert(RETRY_AFTER_MS, "250");
        h.insert(RETRY_AFTER, "9");
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));

        let mut h = Headers::new();
        h.insert(RETRY_AFTER, "-3");
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        assert_eq!(retry_after(&Headers::new()), None);
    }

    #[test]
    fn huge_waits_are_capped_and_never_overflow_the_clock() {
        for (header, value) in [
            (RETRY_AFTER, "9223372036854775807"),
            (RETRY_AFTER, "Fri, 31 Dec 9999 23:59:59 GMT"),
            (X_MS_RETRY_AFTER_MS, "9223372036854775807"),
        ] {
            let mut h = Headers::new();
            h.insert(header, value);
            assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER), "{value}");
        }
        let now = Instant::now();
        assert_eq!(
            instant_after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        // `now + Duration::MAX` panics; this saturates somewhere in the far future.
        assert!(instant_after(now, Duration::MAX) > now + Duration::from_secs(3600 * 24 * 365));
    }

    #[test]
    fn an_empty_bucket_is_any_remaining_header_at_zero() {
        let mut h = Headers::new();
        h.insert(
            HeaderName::from_static("x-ms-ratelimit-remaining-subscription-reads"),
            "249",
        );
        assert!(!bucket_empty(&h));
        h.insert(
            HeaderName::from_static("x-ms-ratelimit-remaining-subscription-writes"),
            "0",
        );
        assert!(bucket_empty(&h));
    }
}
