//! What every invocation needs, built once at start and passed to the handlers explicitly: the ARM
//! port, where the policy is read from, where reports go, the topic allow-list and the dedupe window.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::dedupe::Dedupe;
use crate::config::Secret;
use crate::engine::report_builder::ReportBuilder;
use crate::engine::{Engine, EngineOptions, Resources};
use crate::events::TopicAllowList;
use crate::policy::Policy;
use crate::report::sink::{ObjectKind, ReportSink};
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

/// Where the policy comes from. A file is re-read at every invocation, so a changed policy takes
/// effect without a restart, and a broken one is caught (fail closed: no action, the report says why).
#[derive(Clone, Debug)]
pub enum PolicySource {
    File(PathBuf),
    /// A policy already loaded (tests, embedders).
    Fixed(Arc<Policy>),
}

/// The policy could not be used: nothing is done and the report carries this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFailure {
    pub message: String,
    /// Of the bytes read, when the file could be read (identifies the broken version).
    pub sha256: String,
}

impl PolicySource {
    pub async fn load(&self) -> Result<Arc<Policy>, PolicyFailure> {
        match self {
            PolicySource::Fixed(p) => Ok(p.clone()),
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
                Policy::parse(&file, &text)
                    .map(Arc::new)
                    .map_err(|e| PolicyFailure {
                        message: e.to_string(),
                        sha256: hex(&Sha256::digest(text.as_bytes())),
                    })
            }
        }
    }
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
}

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
