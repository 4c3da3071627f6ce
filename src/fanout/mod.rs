//! Fan-out (DESIGN 8, issue 9): beyond what one instance audits in a run, the timer (or
//! `linkguard audit --fan-out`) enqueues one Azure Storage Queue message per governed
//! subscription, and the Functions platform's scale controller spreads the `SubscriptionAudit`
//! invocations over instances (or `linkguard worker` consumes them). Each subscription's report is
//! stored under the run; the last subscription to finish (or the next timer run, after the
//! deadline) writes the run's aggregated report and a summary naming every subscription that was
//! poisoned or never reported. linkguard schedules nothing itself: the queue and the platform are
//! the distributed engine. See docs/fanout.md.
//!
//! - [`config`]: `LINKGUARD_FANOUT_QUEUE`, `LINKGUARD_FANOUT_DEADLINE`;
//! - [`message`]: the `linkguard.fanout/v1` queue message;
//! - [`queue`]: the queue and its poison queue (`azure_storage_queue`);
//! - [`store`], [`layout`], [`documents`]: the run's objects in the reports store;
//! - [`summary`]: the aggregation (pure);
//! - [`service`]: start a run, process a message, finalize;
//! - [`worker`]: the CLI consumer; [`cli`]: `audit --fan-out` and `worker` arguments.

pub mod cli;
pub mod config;
pub mod documents;
pub mod layout;
pub mod message;
pub mod queue;
pub mod service;
pub mod store;
pub mod summary;
pub mod worker;

use std::sync::Arc;

use azure_core::credentials::TokenCredential;

pub use config::FanOutSettings;
pub use message::AuditMessage;
pub use queue::{AuditQueue, QueueOptions};
pub use service::{
    AuditContext, FanOut, FanOutError, FinalizeOutcome, Finalized, Processed, RunSpec, StartedRun,
};
pub use store::RunStore;

use crate::report::sink::{BlobSinkOptions, ReportDestination};

/// Builds the fan-out over the reports destination (`LINKGUARD_REPORTS`: manifests, subscription
/// reports and the run's report all go there). `credential` is used for a queue or container
/// addressed by URL without SAS (managed identity in Azure).
pub fn build(
    settings: FanOutSettings,
    reports: &ReportDestination,
    credential: Option<Arc<dyn TokenCredential>>,
    queue_options: QueueOptions,
    sink_options: BlobSinkOptions,
) -> Result<FanOut, String> {
    let queue = AuditQueue::new(&settings.queue, credential.clone(), queue_options)
        .map_err(|e| format!("{}: {e}", config::FANOUT_QUEUE))?;
    let store = RunStore::new(reports, credential.clone(), sink_options.clone())
        .map_err(|e| format!("{}: {e}", crate::config::REPORTS))?;
    let sink = reports
        .clone()
        .into_sink(credential, sink_options)
        .map_err(|e| e.to_string())?;
    Ok(FanOut::new(queue, store, sink, settings))
}
