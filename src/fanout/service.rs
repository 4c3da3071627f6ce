//! The fan-out use cases, shared by the Functions host and the CLI:
//! - [`FanOut::start_run`]: write the manifest, enqueue one message per subscription;
//! - [`FanOut::process`]: audit one subscription from a message, store its report, and finalize
//!   the run when it was the last one;
//! - [`FanOut::finalize_overdue`]: close runs whose deadline passed, naming what never reported.
//!
//! Idempotence: every object is written create-only. A message delivered again finds its
//! subscription report and does nothing but check for finalization, so it causes no ARM write
//! and no report write. The finalizer's output is a pure function of what is stored, so two
//! finalizers racing write the same bytes once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::config::FanOutSettings;
use super::documents::{
    FAILURE_SCHEMA, FailureMarker, MANIFEST_SCHEMA, Manifest, OPEN_SCHEMA, OpenEntry, to_json,
};
use super::layout::{OPEN_PREFIX, RunLayout, stem};
use super::message::{AuditMessage, MessageError, check_subscription_id};
use super::queue::{AuditQueue, QueueError};
use super::store::{Created, RunStore, StoreError};
use super::summary::{FanOutSummary, SubscriptionResult, aggregate};
use crate::engine::report_builder::{new_run_id, rfc3339};
use crate::engine::{Engine, EngineOptions, Resources};
use crate::policy::Policy;
use crate::report::sink::{ReportSink, SinkError};
use crate::report::{Report, RunMode, Trigger, render};

/// Messages enqueued at once.
const SEND_CONCURRENCY: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum FanOutError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("storing the run's report failed: {0}")]
    Sink(#[from] SinkError),
    #[error("{0}")]
    Invalid(String),
}

/// What a run is started with.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub trigger: Trigger,
    pub dry_run: bool,
    pub policy_sha256: String,
    /// The policy's own mode (`dry-run` there makes the whole run dry).
    pub policy_dry_run: bool,
}

#[derive(Clone, Debug)]
pub struct StartedRun {
    pub run: String,
    pub manifest: String,
    pub enqueued: usize,
    pub deadline: String,
    /// Set when the run had nothing to fan out and was finalized at once.
    pub finalized: Option<Finalized>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Finalized {
    /// Where the aggregated report went (path or URL, no credentials).
    pub report_location: String,
    pub summary: FanOutSummary,
}

/// Whether a run could be finalized.
#[derive(Clone, Debug, PartialEq)]
pub enum FinalizeOutcome {
    /// This call wrote the run's report and summary.
    Finalized(Box<Finalized>),
    AlreadyFinalized,
    /// Subscriptions still to report (or be poisoned).
    Waiting {
        remaining: usize,
    },
    /// No manifest for the run (deleted, or the message came from elsewhere).
    NoManifest,
}

/// The result of one delivery of a message.
#[derive(Clone, Debug, PartialEq)]
pub enum Processed {
    /// Audited; the subscription report is stored.
    Reported {
        location: String,
        complete: bool,
        finalize: FinalizeOutcome,
    },
    /// The subscription had reported already (a redelivery): nothing was audited or written.
    Duplicate { finalize: FinalizeOutcome },
    /// The delivery failed: the caller fails the invocation (the host redelivers, then poisons)
    /// or, in the CLI worker, retries or moves the message to the poison queue.
    Failed {
        error: String,
        /// This was the last allowed delivery: a failure marker is stored (or could not be).
        last_delivery: bool,
        finalize: Option<FinalizeOutcome>,
    },
}

impl Processed {
    pub fn is_success(&self) -> bool {
        !matches!(self, Processed::Failed { .. })
    }

    pub fn finalize(&self) -> Option<&FinalizeOutcome> {
        match self {
            Processed::Reported { finalize, .. } | Processed::Duplicate { finalize } => {
                Some(finalize)
            }
            Processed::Failed { finalize, .. } => finalize.as_ref(),
        }
    }
}

/// What one audit needs from the host.
pub struct AuditContext<'a> {
    pub resources: &'a Arc<dyn Resources>,
    /// The current policy, or why it cannot be used.
    pub policy: Result<Arc<Policy>, String>,
    /// Registries worked on at once.
    pub concurrency: usize,
}

pub struct FanOut {
    queue: AuditQueue,
    store: RunStore,
    sink: Arc<dyn ReportSink>,
    settings: FanOutSettings,
}

impl std::fmt::Debug for FanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOut")
            .field("queue", &self.queue.location())
            .field("store", &self.store.location())
            .field("deadline", &self.settings.deadline)
            .field("max_dequeue_count", &self.settings.max_dequeue_count)
            .finish()
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn parse_time(what: &str, v: &str) -> Result<OffsetDateTime, FanOutError> {
    OffsetDateTime::parse(v, &Rfc3339)
        .map_err(|e| FanOutError::Invalid(format!("{what} {v:?} is not RFC 3339: {e}")))
}

fn read_json<T: serde::de::DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T, FanOutError> {
    serde_json::from_slice(bytes).map_err(|e| FanOutError::Invalid(format!("{name}: {e}")))
}

/// The `<name>` of every `<prefix><name>.json` listed.
fn stems(list: &[String], prefix: &str) -> BTreeSet<String> {
    list.iter()
        .filter_map(|n| stem(n, prefix))
        .map(str::to_string)
        .collect()
}

/// The errors of a failed subscription audit, in one line.
fn audit_error(report: &Report) -> String {
    if report.errors.is_empty() {
        return "a transient ARM failure left the audit unfinished".into();
    }
    report
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.scope, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl FanOut {
    pub fn new(
        queue: AuditQueue,
        store: RunStore,
        sink: Arc<dyn ReportSink>,
        settings: FanOutSettings,
    ) -> Self {
        Self {
            queue,
            store,
            sink,
            settings,
        }
    }

    pub fn queue(&self) -> &AuditQueue {
        &self.queue
    }
    pub fn store(&self) -> &RunStore {
        &self.store
    }
    pub fn settings(&self) -> &FanOutSettings {
        &self.settings
    }

    /// Starts a run over `subscriptions`: manifest, open-run entry, then one message each.
    pub async fn start_run(
        &self,
        subscriptions: &[String],
        spec: &RunSpec,
    ) -> Result<StartedRun, FanOutError> {
        let mut subs: Vec<String> = subscriptions
            .iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        subs.sort();
        subs.dedup();
        for s in &subs {
            check_subscription_id(s).map_err(FanOutError::Invalid)?;
        }
        self.queue.ensure_exists().await?;
        let started_at = now();
        let run = new_run_id(started_at);
        let started = rfc3339(started_at);
        let deadline_at = started_at + self.settings.deadline;
        let deadline = rfc3339(deadline_at);
        let layout = RunLayout::new(&run, started_at);
        let manifest = Manifest {
            schema: MANIFEST_SCHEMA.into(),
            run: run.clone(),
            trigger: spec.trigger,
            mode: if spec.dry_run || spec.policy_dry_run {
                RunMode::DryRun
            } else {
                RunMode::Enforce
            },
            started: started.clone(),
            deadline: deadline.clone(),
            policy_sha256: spec.policy_sha256.clone(),
            queue: self.queue.name().to_string(),
            poison_queue: self.queue.poison_name().to_string(),
            subscriptions: subs.clone(),
        };
        self.store
            .create(&layout.manifest(), to_json(&manifest))
            .await?;
        let entry = OpenEntry {
            schema: OPEN_SCHEMA.into(),
            run: run.clone(),
            manifest: layout.manifest(),
            deadline: deadline.clone(),
        };
        self.store
            .create(&layout.open_entry(), to_json(&entry))
            .await?;

        // A message outliving the deadline would audit for a run already closed.
        let ttl = self.settings.deadline.max(Duration::from_secs(1));
        let texts: Vec<String> = subs
            .iter()
            .map(|sub| AuditMessage::new(&run, &started, sub, spec.trigger, spec.dry_run).encode())
            .collect();
        let queue = &self.queue;
        let sends: Vec<_> = texts.iter().map(|t| queue.send(t, ttl)).collect();
        let results: Vec<Result<String, QueueError>> = stream::iter(sends)
            .buffer_unordered(SEND_CONCURRENCY)
            .collect()
            .await;
        let failed: Vec<&QueueError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        if let Some(first) = failed.first() {
            return Err(FanOutError::Invalid(format!(
                "run {run}: {} of {} messages could not be enqueued (the run closes at its deadline {deadline} naming those subscriptions): {first}",
                failed.len(),
                subs.len()
            )));
        }
        let finalized = if subs.is_empty() {
            match self.finalize_if_complete(&layout).await? {
                FinalizeOutcome::Finalized(f) => Some(*f),
                _ => None,
            }
        } else {
            None
        };
        Ok(StartedRun {
            run,
            manifest: layout.manifest(),
            enqueued: subs.len(),
            deadline,
            finalized,
        })
    }

    /// One delivery of `message`, its `deliveries`-th (the dequeue count, 1 on the first).
    pub async fn process(
        &self,
        message: &AuditMessage,
        deliveries: u32,
        ctx: AuditContext<'_>,
    ) -> Processed {
        let started = match message.started_at() {
            Ok(t) => t,
            Err(e) => {
                return Processed::Failed {
                    error: e.to_string(),
                    last_delivery: deliveries >= self.settings.max_dequeue_count,
                    finalize: None,
                };
            }
        };
        let layout = RunLayout::new(&message.run, started);
        let report_name = layout.subscription_report(&message.subscription);
        match self.store.exists(&report_name).await {
            Ok(true) => {
                return match self.finalize_if_complete(&layout).await {
                    Ok(finalize) => Processed::Duplicate { finalize },
                    Err(e) => Processed::Failed {
                        error: format!(
                            "the subscription had reported already, but finalizing the run failed: {e}"
                        ),
                        last_delivery: false,
                        finalize: None,
                    },
                };
            }
            Ok(false) => {}
            Err(e) => {
                return self.failed(message, deliveries, e.to_string(), None).await;
            }
        }
        let policy = match ctx.policy {
            Ok(p) => p,
            Err(why) => {
                let error = format!("the policy is not usable, nothing was done: {why}");
                return self.failed(message, deliveries, error, None).await;
            }
        };
        let engine = Engine::new(
            Arc::clone(ctx.resources),
            policy,
            EngineOptions {
                concurrency: ctx.concurrency,
                dry_run: message.dry_run,
                trigger: message.trigger,
            },
        );
        // The client's counter is per process: the difference is this audit's (an upper bound
        // when invocations overlap).
        let before = ctx.resources.request_count();
        let result = engine
            .audit_subscriptions(std::slice::from_ref(&message.subscription))
            .await;
        let mut report = result.report;
        report.run.id = message.run.clone();
        report.run.arm_requests = ctx.resources.request_count().saturating_sub(before);
        let unreadable = !report.complete && result.registries_read == 0;
        if result.transient_failure || unreadable {
            let error = audit_error(&report);
            return self.failed(message, deliveries, error, Some(report)).await;
        }
        let bytes = render::to_json(&report).into_bytes();
        if let Err(e) = self.store.create(&report_name, bytes).await {
            let error = format!("the subscription report could not be stored: {e}");
            return self.failed(message, deliveries, error, Some(report)).await;
        }
        match self.finalize_if_complete(&layout).await {
            Ok(finalize) => Processed::Reported {
                location: self.store.object_location(&report_name),
                complete: report.complete,
                finalize,
            },
            // The report is stored: a redelivery only retries the finalization.
            Err(e) => Processed::Failed {
                error: format!(
                    "the subscription report is stored, but finalizing the run failed: {e}"
                ),
                last_delivery: false,
                finalize: None,
            },
        }
    }

    /// A failed delivery. On the last allowed one, a failure marker names the subscription as
    /// poisoned, and the run may be complete now.
    async fn failed(
        &self,
        message: &AuditMessage,
        deliveries: u32,
        error: String,
        report: Option<Report>,
    ) -> Processed {
        if deliveries < self.settings.max_dequeue_count {
            return Processed::Failed {
                error,
                last_delivery: false,
                finalize: None,
            };
        }
        let outcome = self
            .record_poisoned(message, deliveries, &error, report)
            .await;
        match outcome {
            Ok(finalize) => Processed::Failed {
                error,
                last_delivery: true,
                finalize: Some(finalize),
            },
            Err(e) => Processed::Failed {
                error: format!("{error}; recording the failure failed too: {e}"),
                last_delivery: true,
                finalize: None,
            },
        }
    }

    /// Stores the failure marker of a poisoned message, then finalizes the run if that was the
    /// last subscription. Used by [`FanOut::process`] on the last delivery, and by the CLI
    /// worker for a message delivered more often than allowed without a result.
    pub async fn record_poisoned(
        &self,
        message: &AuditMessage,
        deliveries: u32,
        error: &str,
        report: Option<Report>,
    ) -> Result<FinalizeOutcome, FanOutError> {
        let started = message
            .started_at()
            .map_err(|e| FanOutError::Invalid(e.to_string()))?;
        let layout = RunLayout::new(&message.run, started);
        let marker = FailureMarker {
            schema: FAILURE_SCHEMA.into(),
            run: message.run.clone(),
            subscription: message.subscription.to_ascii_lowercase(),
            deliveries,
            poison_queue: self.queue.poison_name().to_string(),
            error: error.to_string(),
            at: rfc3339(now()),
            report,
        };
        self.store
            .create(&layout.failure(&message.subscription), to_json(&marker))
            .await?;
        self.finalize_if_complete(&layout).await
    }

    /// Finalizes the run when every expected subscription reported or was poisoned.
    pub async fn finalize_if_complete(
        &self,
        layout: &RunLayout,
    ) -> Result<FinalizeOutcome, FanOutError> {
        let Some(manifest) = self.manifest(layout).await? else {
            return Ok(FinalizeOutcome::NoManifest);
        };
        self.finalize_run(&manifest, layout, false).await
    }

    async fn manifest(&self, layout: &RunLayout) -> Result<Option<Manifest>, FanOutError> {
        let name = layout.manifest();
        match self.store.read(&name).await? {
            None => Ok(None),
            Some(bytes) => read_json(&name, &bytes).map(Some),
        }
    }

    /// Finalizes when complete, or (`force`) regardless, naming what is missing.
    async fn finalize_run(
        &self,
        manifest: &Manifest,
        layout: &RunLayout,
        force: bool,
    ) -> Result<FinalizeOutcome, FanOutError> {
        if self.store.exists(&layout.summary()).await? {
            self.store.delete(&layout.open_entry()).await?;
            return Ok(FinalizeOutcome::AlreadyFinalized);
        }
        let reported = stems(
            &self.store.list(&layout.subscriptions_prefix()).await?,
            &layout.subscriptions_prefix(),
        );
        let failed = stems(
            &self.store.list(&layout.failures_prefix()).await?,
            &layout.failures_prefix(),
        );
        let remaining = manifest
            .subscriptions
            .iter()
            .filter(|s| !reported.contains(*s) && !failed.contains(*s))
            .count();
        if remaining > 0 && !force {
            return Ok(FinalizeOutcome::Waiting { remaining });
        }

        let mut results = BTreeMap::new();
        for sub in &manifest.subscriptions {
            let result = if reported.contains(sub) {
                let name = layout.subscription_report(sub);
                match self.store.read(&name).await? {
                    Some(bytes) => match serde_json::from_slice::<Report>(&bytes) {
                        Ok(r) => SubscriptionResult::Reported(Box::new(r)),
                        Err(e) => SubscriptionResult::Unreadable(e.to_string()),
                    },
                    None => SubscriptionResult::Missing,
                }
            } else if failed.contains(sub) {
                let name = layout.failure(sub);
                match self.store.read(&name).await? {
                    Some(bytes) => match serde_json::from_slice::<FailureMarker>(&bytes) {
                        Ok(m) => SubscriptionResult::Poisoned(Box::new(m)),
                        Err(e) => SubscriptionResult::Unreadable(e.to_string()),
                    },
                    None => SubscriptionResult::Missing,
                }
            } else {
                SubscriptionResult::Missing
            };
            results.insert(sub.clone(), result);
        }
        if force {
            self.poisoned_without_marker(manifest, &mut results).await;
        }
        let (report, summary) = aggregate(manifest, &results, &layout.report());
        let report_location = match self.sink.store(&report).await {
            Ok(stored) => stored
                .location(crate::report::sink::ObjectKind::Json)
                .map_or_else(|| self.sink.location(), str::to_string),
            // Another finalizer wrote this run's report from a different view (a subscription
            // reported in between): its report stands.
            Err(SinkError::AlreadyExists { location }) => location,
            Err(e) => return Err(e.into()),
        };
        match self
            .store
            .create(&layout.summary(), to_json(&summary))
            .await?
        {
            Created::Created => {}
            Created::Existed => {
                self.store.delete(&layout.open_entry()).await?;
                return Ok(FinalizeOutcome::AlreadyFinalized);
            }
        }
        self.store.delete(&layout.open_entry()).await?;
        Ok(FinalizeOutcome::Finalized(Box::new(Finalized {
            report_location,
            summary,
        })))
    }

    /// Messages of this run that sit in the poison queue without a marker (their worker died or
    /// timed out on the last delivery): named as poisoned rather than missing. Best effort: the
    /// service shows only the first 32 messages of a queue.
    async fn poisoned_without_marker(
        &self,
        manifest: &Manifest,
        results: &mut BTreeMap<String, SubscriptionResult>,
    ) {
        if !results
            .values()
            .any(|r| matches!(r, SubscriptionResult::Missing))
        {
            return;
        }
        let peeked = match self.queue.peek(true, super::queue::MAX_BATCH).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("peeking the poison queue failed: {e}");
                return;
            }
        };
        for p in peeked {
            let Ok(m) = AuditMessage::decode(&p.text) else {
                continue;
            };
            let sub = m.subscription.to_ascii_lowercase();
            if m.run == manifest.run
                && matches!(results.get(&sub), Some(SubscriptionResult::Missing))
            {
                results.insert(
                    sub.clone(),
                    SubscriptionResult::Poisoned(Box::new(FailureMarker {
                        schema: FAILURE_SCHEMA.into(),
                        run: m.run.clone(),
                        subscription: sub,
                        deliveries: self.settings.max_dequeue_count,
                        poison_queue: manifest.poison_queue.clone(),
                        error: "found in the poison queue with no failure recorded (the worker stopped or timed out on its last delivery)".into(),
                        at: manifest.deadline.clone(),
                        report: None,
                    })),
                );
            }
        }
    }

    /// Closes every open run: finalized when complete, and regardless once its deadline passed.
    /// Returns what was finalized; a run that cannot be handled now is logged and left for later.
    pub async fn finalize_overdue(&self) -> Result<Vec<Finalized>, FanOutError> {
        let entries = self.store.list(OPEN_PREFIX).await?;
        let mut done = Vec::new();
        for name in entries {
            match self.finalize_entry(&name).await {
                Ok(Some(f)) => done.push(f),
                Ok(None) => {}
                Err(e) => tracing::warn!("open run {name} not finalized now: {e}"),
            }
        }
        Ok(done)
    }

    async fn finalize_entry(&self, name: &str) -> Result<Option<Finalized>, FanOutError> {
        let Some(bytes) = self.store.read(name).await? else {
            return Ok(None);
        };
        let entry: OpenEntry = read_json(name, &bytes)?;
        let Some(mbytes) = self.store.read(&entry.manifest).await? else {
            // Nothing to finalize against: drop the entry rather than retrying forever.
            tracing::warn!(
                "open run {} has no manifest at {}; forgetting it",
                entry.run,
                entry.manifest
            );
            self.store.delete(name).await?;
            return Ok(None);
        };
        let manifest: Manifest = read_json(&entry.manifest, &mbytes)?;
        crate::report::sink::layout::check_run_id(&manifest.run)
            .map_err(|e| FanOutError::Invalid(e.to_string()))?;
        let layout = RunLayout::new(&manifest.run, parse_time("started", &manifest.started)?);
        let overdue = now() >= parse_time("deadline", &manifest.deadline)?;
        match self.finalize_run(&manifest, &layout, overdue).await? {
            FinalizeOutcome::Finalized(f) => Ok(Some(*f)),
            _ => Ok(None),
        }
    }
}

impl From<MessageError> for FanOutError {
    fn from(e: MessageError) -> Self {
        FanOutError::Invalid(e.to_string())
    }
}
