//! What every invocation needs, built once at start and passed to the handlers explicitly: the ARM
//! port, where the policy is read from, where reports go, the topic allow-list and the dedupe window.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::Url;
use sha2::{Digest, Sha256};

use super::dedupe::Dedupe;
use crate::config::{PolicyLocation, Secret};
use crate::engine::report_builder::ReportBuilder;
use crate::engine::{Engine, EngineOptions, Resources};
use crate::events::TopicAllowList;
use crate::policy::Policy;
use crate::report::sink::{
    BlobAuth, BlobSink, BlobSinkOptions, BlobTarget, ObjectKind, ReportSink, SinkError, destination,
};
use crate::report::{Report, RunMode, Trigger};

/// Where reports are written. Implemented over the report sinks; tests use their own.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Stores the report (retrying as the sink sees fit); returns where it went, for the log
    /// (never a secret).
    async fn store(&self, report: &Report) -> Result<String, ReportStoreError>;
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReportStoreError(pub String);

/// A report sink (directory or blob container) as a `ReportStore`.
#[derive(Clone, Debug)]
pub struct SinkStore(pub Arc<dyn ReportSink>);

#[async_trait]
impl ReportStore for SinkStore {
    async fn store(&self, report: &Report) -> Result<String, ReportStoreError> {
        let stored = self
            .0
            .store(report)
            .await
            .map_err(|e| ReportStoreError(e.to_string()))?;
        Ok(stored
            .location(ObjectKind::Json)
            .map_or_else(|| self.0.location(), str::to_string))
    }
}

/// Where the policy comes from (`LINKGUARD_POLICY`): one source for every host (Functions, Lambda).
///
/// Every invocation asks for the policy, so a changed policy takes effect without a restart and a
/// broken one is caught (fail closed: no action, the report says why). A file is re-read each time
/// (a local read costs nothing). A blob is cached for [`BLOB_POLICY_TTL`]: a burst of Event Grid
/// deliveries then costs one storage read, not one per event, and an edit still lands within
/// seconds. A failed read is never cached, and an expired policy is never used once a read fails.
#[derive(Clone, Debug)]
pub enum PolicySource {
    File(PathBuf),
    Blob(Arc<BlobPolicy>),
    /// A policy already loaded (tests, embedders).
    Fixed(Arc<Policy>),
}

/// How long a policy read from a blob is reused.
pub const BLOB_POLICY_TTL: Duration = Duration::from_secs(30);

/// A policy kept in a blob, read with the report sink's client construction (SAS in the URL, or an
/// Entra ID token from the host's credential; Azurite's API version on loopback).
pub struct BlobPolicy {
    container: BlobSink,
    name: String,
    /// The URL without its SAS: what messages and logs show.
    shown: String,
    ttl: Duration,
    cached: tokio::sync::Mutex<Option<(Instant, Arc<Policy>)>>,
}

impl std::fmt::Debug for BlobPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobPolicy")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

impl BlobPolicy {
    /// `url` is an http(s) blob URL (`https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH`, or
    /// path-style `http://127.0.0.1:PORT/ACCOUNT/CONTAINER/PATH` for Azurite), with or without a SAS.
    /// Without a SAS, `credential` supplies the Entra ID token (https only).
    pub fn new(
        url: &str,
        credential: Option<Arc<dyn TokenCredential>>,
        ttl: Duration,
    ) -> Result<Self, String> {
        // Short retries: an Event Grid invocation must answer within 30 s (DESIGN 7.2).
        let options = BlobSinkOptions::default().with_retries(
            2,
            Duration::from_millis(200),
            Duration::from_secs(5),
        );
        Self::with_options(url, credential, ttl, options)
    }

    /// [`BlobPolicy::new`] with the blob client's options (retries, transport) given.
    pub fn with_options(
        url: &str,
        credential: Option<Arc<dyn TokenCredential>>,
        ttl: Duration,
        options: BlobSinkOptions,
    ) -> Result<Self, String> {
        let shown = crate::config::redact_url(url);
        let fail = |problem: String| format!("{}: `{shown}`: {problem}", crate::config::POLICY);
        let parsed = Url::parse(url.trim()).map_err(|e| fail(format!("not a URL ({e})")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(fail(
                "the URL must not carry a user name or password: use a SAS or the host's identity"
                    .into(),
            ));
        }
        let loopback = destination::is_loopback(&parsed);
        let path_style = destination::is_path_style(&parsed);
        let segments: Vec<String> = parsed
            .path_segments()
            .map(|s| s.filter(|x| !x.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        // Account (path-style only), container, then the blob's name (may hold slashes).
        let skip = usize::from(path_style);
        let (Some(container), true) = (segments.get(skip), segments.len() > skip + 1) else {
            return Err(fail(
                "give the URL of the policy blob itself: https://ACCOUNT.blob.core.windows.net/CONTAINER/linkguard.toml (a SAS needs read permission)".into(),
            ));
        };
        destination::check_container_name(container).map_err(fail)?;
        let name = segments
            .get(skip + 1..)
            .unwrap_or_default()
            .iter()
            // Names in URLs are percent-encoded; the client encodes them again.
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect::<Vec<_>>()
            .join("/");
        let mut container_url = parsed.clone();
        container_url.set_query(None);
        container_url.set_fragment(None);
        container_url.set_path(&format!(
            "/{}",
            segments.get(..=skip).unwrap_or_default().join("/")
        ));
        let auth = match parsed.query().filter(|q| !q.is_empty()) {
            Some(q)
                if q.to_ascii_lowercase()
                    .split('&')
                    .any(|p| p.starts_with("sig=")) =>
            {
                BlobAuth::Sas(azure_core::credentials::Secret::new(q.to_string()))
            }
            Some(_) => {
                return Err(fail(
                    "the query is not a SAS (no sig=): give the blob URL alone (Entra ID) or with a complete SAS".into(),
                ));
            }
            None => BlobAuth::Token,
        };
        let target = BlobTarget {
            container_url,
            auth,
            emulator: loopback,
        };
        let container = BlobSink::new(target, credential, options).map_err(|e| fail(e.problem))?;
        Ok(Self {
            container,
            name,
            shown,
            ttl,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// The URL without its SAS.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    async fn load(&self) -> Result<Arc<Policy>, PolicyFailure> {
        // One reader at a time: concurrent invocations wait for the read in progress.
        let mut cached = self.cached.lock().await;
        if let Some((at, policy)) = cached.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(Arc::clone(policy));
        }
        *cached = None;
        let unreadable = |message: String| PolicyFailure {
            message,
            sha256: String::new(),
        };
        let bytes = match self.container.read_blob(&self.name).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                return Err(unreadable(format!(
                    "{}: the policy blob does not exist; upload it or fix LINKGUARD_POLICY",
                    self.shown
                )));
            }
            Err(SinkError::Storage {
                status, message, ..
            }) => {
                return Err(unreadable(format!(
                    "{}: cannot read the policy blob{}: {message}; the identity needs `Storage Blob Data Reader` on the container, or the SAS read permission (sp=r)",
                    self.shown,
                    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
                )));
            }
            Err(e) => {
                return Err(unreadable(format!(
                    "{}: cannot read the policy blob: {e}",
                    self.shown
                )));
            }
        };
        let text = String::from_utf8(bytes).map_err(|e| PolicyFailure {
            message: format!("{}: the policy is not UTF-8 text ({e})", self.shown),
            sha256: hex(&Sha256::digest(e.as_bytes())),
        })?;
        // Parse errors read `<url>:<line>: ...`, so the SAS marker is left out of the name.
        let policy = Policy::parse(self.shown.trim_end_matches("?…"), &text)
            .map(Arc::new)
            .map_err(|e| PolicyFailure {
                message: e.to_string(),
                sha256: hex(&Sha256::digest(text.as_bytes())),
            })?;
        *cached = Some((Instant::now(), Arc::clone(&policy)));
        Ok(policy)
    }
}

/// The policy could not be used: nothing is done and the report carries this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFailure {
    pub message: String,
    /// Of the bytes read, when the policy could be read (identifies the broken version).
    pub sha256: String,
}

impl PolicySource {
    /// The source for `LINKGUARD_POLICY`; `credential` authenticates a blob URL without SAS.
    pub fn from_location(
        location: &PolicyLocation,
        credential: Option<Arc<dyn TokenCredential>>,
    ) -> Result<Self, String> {
        match location {
            PolicyLocation::File(path) => Ok(PolicySource::File(path.clone())),
            PolicyLocation::Url(url) => Ok(PolicySource::Blob(Arc::new(BlobPolicy::new(
                url.expose(),
                credential,
                BLOB_POLICY_TTL,
            )?))),
        }
    }

    /// Where the policy is read from, safe to log.
    pub fn describe(&self) -> String {
        match self {
            PolicySource::File(p) => p.display().to_string(),
            PolicySource::Blob(b) => b.shown().to_string(),
            PolicySource::Fixed(_) => "(fixed)".into(),
        }
    }

    pub async fn load(&self) -> Result<Arc<Policy>, PolicyFailure> {
        match self {
            PolicySource::Fixed(p) => Ok(p.clone()),
            PolicySource::Blob(b) => b.load().await,
            PolicySource::File(path) => {
                let file = path.display().to_string();
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| PolicyFailure {
                        message: format!(
                            "{file}: cannot read the policy file: {e}; check LINKGUARD_POLICY"
                        ),
                        sha256: String::new(),
                    })?;
                parse_cached(&file, &text)
            }
        }
    }
}

/// Parses a policy file's text, reusing the last parse of the same text. The file is read on every
/// invocation so an edit takes effect at once, but compiling its globs and regexes each time would
/// be most of the CPU an approval costs; the text's SHA-256 decides whether the last parse still
/// holds. Failures are never cached.
fn parse_cached(file: &str, text: &str) -> Result<Arc<Policy>, PolicyFailure> {
    /// The file, the SHA-256 of its text, and that text's parse.
    type Parsed = (String, [u8; 32], Arc<Policy>);
    static LAST: std::sync::Mutex<Option<Parsed>> = std::sync::Mutex::new(None);
    let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
    if let Ok(last) = LAST.lock()
        && let Some((f, d, policy)) = last.as_ref()
        && f == file
        && *d == digest
    {
        return Ok(Arc::clone(policy));
    }
    let policy = Policy::parse(file, text)
        .map(Arc::new)
        .map_err(|e| PolicyFailure {
            message: e.to_string(),
            sha256: hex(&digest),
        })?;
    if let Ok(mut last) = LAST.lock() {
        *last = Some((file.to_string(), digest, Arc::clone(&policy)));
    }
    Ok(policy)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Tunables of the handler.
#[derive(Clone, Debug)]
pub struct HandlerOptions {
    pub topics: TopicAllowList,
    /// Required on the raw webhook route; without it that route is off.
    pub webhook_secret: Option<Secret>,
    /// Registries worked on at once per invocation.
    pub concurrency: usize,
    pub dedupe_ttl: Duration,
    pub dedupe_capacity: usize,
    /// A connection must deliver a request's headers within this (also closes idle keep-alive
    /// connections), so a client that stalls mid-request cannot hold a connection forever.
    pub header_read_timeout: Duration,
    /// A request's whole body must arrive within this (408 otherwise).
    pub body_read_timeout: Duration,
    /// An Event Grid delivery (ConnectionEvents, the raw webhook) is answered within this: past it
    /// the invocation fails so Event Grid redelivers. Below Event Grid's 30 s wait, leaving room for
    /// the answer to travel through the Functions host.
    pub event_budget: Duration,
}

/// Default of [`HandlerOptions::event_budget`].
pub const EVENT_BUDGET: Duration = Duration::from_secs(25);

impl Default for HandlerOptions {
    fn default() -> Self {
        Self {
            topics: TopicAllowList::default(),
            webhook_secret: None,
            concurrency: 8,
            dedupe_ttl: Duration::from_secs(600),
            dedupe_capacity: 10_000,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(30),
            event_budget: EVENT_BUDGET,
        }
    }
}

/// Shared state of the handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    resources: Arc<dyn Resources>,
    policy: PolicySource,
    reports: Arc<dyn ReportStore>,
    options: HandlerOptions,
    dedupe: Dedupe,
    fanout: OnceLock<Arc<crate::fanout::FanOut>>,
}

impl AppState {
    pub fn new(
        resources: Arc<dyn Resources>,
        policy: PolicySource,
        reports: Arc<dyn ReportStore>,
        options: HandlerOptions,
    ) -> Self {
        let dedupe = Dedupe::new(options.dedupe_ttl, options.dedupe_capacity);
        Self {
            inner: Arc::new(Inner {
                resources,
                policy,
                reports,
                options,
                dedupe,
                fanout: OnceLock::new(),
            }),
        }
    }

    pub fn resources(&self) -> &Arc<dyn Resources> {
        &self.inner.resources
    }
    pub fn policy_source(&self) -> &PolicySource {
        &self.inner.policy
    }
    pub fn reports(&self) -> &Arc<dyn ReportStore> {
        &self.inner.reports
    }
    pub fn options(&self) -> &HandlerOptions {
        &self.inner.options
    }
    pub fn dedupe(&self) -> &Dedupe {
        &self.inner.dedupe
    }
    /// Turns fan-out on (issue 9); set once, at start.
    pub fn with_fanout(self, fanout: Arc<crate::fanout::FanOut>) -> Self {
        let _ = self.inner.fanout.set(fanout);
        self
    }
    pub fn fanout(&self) -> Option<&Arc<crate::fanout::FanOut>> {
        self.inner.fanout.get()
    }

    pub fn engine(&self, policy: Arc<Policy>, trigger: Trigger, dry_run: bool) -> Engine {
        Engine::new(
            self.inner.resources.clone(),
            policy,
            EngineOptions {
                concurrency: self.inner.options.concurrency,
                dry_run,
                trigger,
            },
        )
    }

    /// The report of a run that did nothing because the policy could not be used. Its mode is
    /// `dry-run` (nothing was applied) and `complete` is false.
    pub fn policy_failure_report(&self, trigger: Trigger, failure: &PolicyFailure) -> Report {
        let mut b = ReportBuilder::new(trigger, RunMode::DryRun, &failure.sha256);
        b.incomplete(
            "policy",
            format!(
                "the policy is not usable, so nothing was read or changed: {}",
                failure.message
            ),
        );
        b.finish(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_blob_urls_are_checked_and_never_shown_with_their_sas() {
        let ttl = Duration::ZERO;
        let p = BlobPolicy::new(
            "http://127.0.0.1:10000/devstoreaccount1/cfg/policies/prod%20a.toml?sv=1&sig=SECRET",
            None,
            ttl,
        )
        .unwrap();
        assert_eq!(p.name, "policies/prod a.toml");
        assert!(!p.shown().contains("SECRET") && !format!("{p:?}").contains("SECRET"));
        for (url, problem) in [
            (
                "https://acct.blob.core.windows.net/cfg?sv=1&sig=S",
                "URL of the policy blob itself",
            ),
            (
                "http://127.0.0.1:10000/devstoreaccount1/cfg?sv=1&sig=S",
                "URL of the policy blob itself",
            ),
            (
                "https://acct.blob.core.windows.net/Bad_Name/p.toml",
                "container name",
            ),
            (
                "https://acct.blob.core.windows.net/cfg/p.toml?foo=bar",
                "not a SAS",
            ),
            (
                "https://acct.blob.core.windows.net/cfg/p.toml",
                "token credential",
            ),
            (
                "https://user:pw-secret@acct.blob.core.windows.net/cfg/p.toml?sv=1&sig=S",
                "user name or password",
            ),
        ] {
            let e = BlobPolicy::new(url, None, ttl).unwrap_err();
            assert!(
                e.starts_with("LINKGUARD_POLICY: ") && e.contains(problem),
                "{url}: {e}"
            );
            assert!(!e.contains("sig=S") && !e.contains("pw-secret"), "{e}");
        }
    }

    #[test]
    fn a_policy_file_is_parsed_again_only_when_its_text_changes() {
        let file = "cache-test.toml";
        let one = "version = 1\n[connections]\ndefault = \"leave\"\n";
        let two = "version = 1\n[connections]\ndefault = \"reject\"\n";
        let a = parse_cached(file, one).unwrap();
        let b = parse_cached(file, one).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the same text reuses the parse");
        let c = parse_cached(file, two).unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "an edit takes effect");
        let bad = parse_cached(
            file,
            "version = 1\n[connections]\ndefault = \"approve-all\"\n",
        );
        assert!(bad.unwrap_err().message.contains("approve-all"));
        // A failure is not cached: the last good parse of the current text still answers.
        let d = parse_cached(file, two).unwrap();
        assert!(Arc::ptr_eq(&c, &d));
    }
}
