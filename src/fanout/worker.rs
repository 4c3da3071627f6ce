//! `linkguard worker`: consumes the audit queue without the Functions host, doing what the host's
//! queue trigger does: take messages (invisible to others while being worked on, the lease renewed
//! for long audits), delete them when done, let them reappear after a failure, and move a message
//! that failed on its `max_dequeue_count`-th delivery to `<queue>-poison`, recording it so the
//! run's summary names it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use super::message::AuditMessage;
use super::queue::{MAX_BATCH, Received};
use super::service::{AuditContext, FanOut, FanOutError, FinalizeOutcome, Finalized, Processed};
use crate::engine::Resources;
use crate::policy::Policy;

/// Poisoned messages live this long in the poison queue (the service's maximum is unlimited; a
/// week is the platform default for queue messages).
const POISON_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Keep polling when the queue is empty (until stopped); otherwise stop once it is empty.
    pub follow: bool,
    /// Messages taken and audited at once (1-32).
    pub batch: u32,
    /// How long a taken message stays invisible; renewed at half time while its audit runs.
    pub visibility: Duration,
    /// After a failed delivery, the message reappears after this long.
    pub retry_delay: Duration,
    /// Pause between polls of an empty queue (doubles up to `max_poll_interval`).
    pub poll_interval: Duration,
    pub max_poll_interval: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            follow: false,
            batch: 4,
            visibility: Duration::from_secs(300),
            retry_delay: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            max_poll_interval: Duration::from_secs(30),
        }
    }
}

/// What a worker did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerStats {
    /// Deliveries handled (a message retried three times counts three).
    pub deliveries: usize,
    pub reported: usize,
    pub duplicates: usize,
    /// Failed deliveries left for a retry.
    pub retried: usize,
    /// Messages moved to the poison queue (including unreadable ones).
    pub poisoned: usize,
    /// Messages that were not linkguard fan-out messages (moved to the poison queue).
    pub unreadable: usize,
    /// Queue operations on a message that failed (the message then reappears by itself).
    pub queue_errors: usize,
    /// Runs this worker finalized.
    pub finalized: Vec<Finalized>,
}

/// What the worker audits with: the ARM port, the policy (re-read per message, so a changed
/// file takes effect), registries at once per audit.
pub struct WorkerDeps {
    pub resources: Arc<dyn Resources>,
    pub policy: Arc<dyn Fn() -> Result<Arc<Policy>, String> + Send + Sync>,
    pub concurrency: usize,
}

/// Runs until the queue is empty (or, with `follow`, until `stop` resolves). Fails only when the
/// queue itself cannot be read.
pub async fn run(
    fanout: &FanOut,
    deps: &WorkerDeps,
    options: &WorkerOptions,
    stop: impl Future<Output = ()>,
) -> Result<WorkerStats, FanOutError> {
    let mut stats = WorkerStats::default();
    tokio::pin!(stop);
    let mut idle = options.poll_interval;
    loop {
        let batch = tokio::select! {
            biased;
            () = &mut stop => break,
            r = fanout.queue().receive(options.batch.clamp(1, MAX_BATCH), options.visibility) => r?,
        };
        if batch.is_empty() {
            if !options.follow && fanout.queue().approximate_count(false).await? == 0 {
                break;
            }
            // Messages in flight elsewhere, or waiting out their retry delay.
            tokio::select! {
                biased;
                () = &mut stop => break,
                () = tokio::time::sleep(idle) => {}
            }
            idle = (idle * 2).min(options.max_poll_interval.max(options.poll_interval));
            continue;
        }
        idle = options.poll_interval;
        let handled = join_all(batch.into_iter().map(|m| handle(fanout, deps, options, m))).await;
        for h in handled {
            stats.deliveries += 1;
            match h {
                Handled::Reported(f) => {
                    stats.reported += 1;
                    stats.finalized.extend(f);
                }
                Handled::Duplicate(f) => {
                    stats.duplicates += 1;
                    stats.finalized.extend(f);
                }
                Handled::Retried => stats.retried += 1,
                Handled::Poisoned(f) => {
                    stats.poisoned += 1;
                    stats.finalized.extend(f);
                }
                Handled::Unreadable => {
                    stats.poisoned += 1;
                    stats.unreadable += 1;
                }
                Handled::QueueError => stats.queue_errors += 1,
            }
        }
    }
    // Idle now: close runs whose deadline passed.
    match fanout.finalize_overdue().await {
        Ok(f) => stats.finalized.extend(f),
        Err(e) => tracing::warn!("finalizing overdue runs failed: {e}"),
    }
    Ok(stats)
}

enum Handled {
    Reported(Option<Finalized>),
    Duplicate(Option<Finalized>),
    Retried,
    Poisoned(Option<Finalized>),
    Unreadable,
    QueueError,
}

fn finalized(outcome: Option<&FinalizeOutcome>) -> Option<Finalized> {
    match outcome {
        Some(FinalizeOutcome::Finalized(f)) => {
            tracing::info!(
                "run {} finalized: {} reported, {} poisoned, {} missing; report {}",
                f.summary.run,
                f.summary.reported.len(),
                f.summary.poisoned.len(),
                f.summary.missing.len(),
                f.report_location
            );
            Some((**f).clone())
        }
        _ => None,
    }
}

async fn handle(
    fanout: &FanOut,
    deps: &WorkerDeps,
    options: &WorkerOptions,
    m: Received,
) -> Handled {
    let queue = fanout.queue();
    let max = fanout.settings().max_dequeue_count;
    let message = match AuditMessage::decode(&m.text) {
        Ok(msg) => msg,
        Err(e) => {
            // Retrying cannot make it readable: straight to the poison queue, for a person.
            tracing::error!(message_id = %m.id, "unreadable message moved to {}: {e}", queue.poison_name());
            return match queue.move_to_poison(&m, POISON_TTL).await {
                Ok(()) => Handled::Unreadable,
                Err(e) => {
                    tracing::error!("{e}");
                    Handled::QueueError
                }
            };
        }
    };
    let what = format!("run {} subscription {}", message.run, message.subscription);
    if m.dequeue_count > max {
        // Delivered more often than allowed without a result: a worker died on its last try.
        let error = format!(
            "delivered {} times (more than {max}) without a result: the worker handling it stopped",
            m.dequeue_count
        );
        tracing::error!("{what}: {error}; moved to {}", queue.poison_name());
        let f = match fanout
            .record_poisoned(&message, m.dequeue_count, &error, None)
            .await
        {
            Ok(outcome) => finalized(Some(&outcome)),
            Err(e) => {
                tracing::error!("{what}: recording the failure failed: {e}");
                None
            }
        };
        return match queue.move_to_poison(&m, POISON_TTL).await {
            Ok(()) => Handled::Poisoned(f),
            Err(e) => {
                tracing::error!("{e}");
                Handled::QueueError
            }
        };
    }

    let ctx = AuditContext {
        resources: &deps.resources,
        policy: (deps.policy)(),
        concurrency: deps.concurrency,
    };
    let (processed, pop_receipt) = with_lease(
        fanout,
        &m,
        options.visibility,
        fanout.process(&message, m.dequeue_count, ctx),
    )
    .await;
    match &processed {
        Processed::Reported {
            location,
            complete,
            finalize,
        } => {
            tracing::info!(
                "{what}: reported{} at {location}",
                if *complete { "" } else { " (incomplete)" }
            );
            let f = finalized(Some(finalize));
            match queue.delete(&m.id, &pop_receipt).await {
                Ok(()) => Handled::Reported(f),
                Err(e) => {
                    tracing::error!("{what}: {e}");
                    Handled::QueueError
                }
            }
        }
        Processed::Duplicate { finalize } => {
            tracing::info!("{what}: had reported already (a redelivery); nothing done");
            let f = finalized(Some(finalize));
            match queue.delete(&m.id, &pop_receipt).await {
                Ok(()) => Handled::Duplicate(f),
                Err(e) => {
                    tracing::error!("{what}: {e}");
                    Handled::QueueError
                }
            }
        }
        Processed::Failed {
            error,
            last_delivery: true,
            finalize,
        } => {
            tracing::error!(
                "{what}: delivery {} of {max} failed, moved to {}: {error}",
                m.dequeue_count,
                queue.poison_name()
            );
            let f = finalized(finalize.as_ref());
            let current = Received {
                pop_receipt: pop_receipt.clone(),
                ..m.clone()
            };
            match queue.move_to_poison(&current, POISON_TTL).await {
                Ok(()) => Handled::Poisoned(f),
                Err(e) => {
                    tracing::error!("{what}: {e}");
                    Handled::QueueError
                }
            }
        }
        Processed::Failed {
            error,
            last_delivery: false,
            ..
        } => {
            tracing::warn!(
                "{what}: delivery {} of {max} failed, retried in {:?}: {error}",
                m.dequeue_count,
                options.retry_delay
            );
            match queue
                .set_visibility(&m.id, &pop_receipt, options.retry_delay)
                .await
            {
                Ok(_) => Handled::Retried,
                Err(e) => {
                    // It reappears when its visibility timeout ends anyway.
                    tracing::warn!("{what}: {e}");
                    Handled::Retried
                }
            }
        }
    }
}

/// Runs `work` while keeping the message invisible (renewing at half the visibility timeout);
/// returns its result and the message's current pop receipt.
async fn with_lease<T>(
    fanout: &FanOut,
    m: &Received,
    visibility: Duration,
    work: impl Future<Output = T>,
) -> (T, String) {
    let mut pop_receipt = m.pop_receipt.clone();
    let period = (visibility / 2).max(Duration::from_secs(1));
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return (out, pop_receipt),
            () = tokio::time::sleep(period) => {
                match fanout.queue().set_visibility(&m.id, &pop_receipt, visibility).await {
                    Ok(p) => pop_receipt = p,
                    Err(e) => tracing::warn!(message_id = %m.id, "renewing the message's lease failed: {e}"),
                }
            }
        }
    }
}
