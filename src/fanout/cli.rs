//! Fan-out from the command line, for audits run from a pipeline:
//! - `linkguard audit --fan-out QUEUE_URL`: finalize overdue runs, then enqueue one message per
//!   governed subscription (nothing is audited here);
//! - `linkguard worker --queue QUEUE_URL`: consume the queue until it is empty (or `--follow`).
//!
//! Both store into `--reports` (`LINKGUARD_REPORTS`), which enqueuer and workers must share.
//! Exit codes follow DESIGN 3: 0 done and nothing needs attention, 1 something needs attention (a
//! poisoned subscription, an incomplete run), 2 bad input, 3 the queue or the store failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;

use super::config::{self, FanOutSettings, QueueAuth, parse_deadline, parse_hms, parse_queue};
use super::service::{FanOut, RunSpec};
use super::worker::{self, WorkerDeps, WorkerOptions};
use super::{QueueOptions, build};
use crate::adapters::{self, ArmSettings};
use crate::arm::credential::{CredentialKind, EnvSource, ProcessEnv, credential_from_config};
use crate::cli::audit::AuditArgs;
use crate::cli::exit;
use crate::engine::{Engine, EngineOptions, Resources};
use crate::policy::{Mode, Policy};
use crate::report::Trigger;
use crate::report::sink::{BlobAuth, BlobSinkOptions, ReportDestination};

/// `linkguard audit --fan-out QUEUE_URL` (flattened into the audit arguments).
#[derive(clap::Args, Debug, Clone)]
pub struct FanOutArgs {
    /// Instead of auditing here, enqueue one message per governed subscription on this queue:
    /// a queue URL (https, Entra ID token; or with a SAS), or a storage connection string with
    /// QueueName=. `linkguard worker --queue` (or the SubscriptionAudit function) consumes them.
    #[arg(long = "fan-out", value_name = "QUEUE_URL")]
    pub fan_out: Option<String>,
    /// How long the run waits for its subscriptions before it is closed naming those that did not
    /// report (hh:mm:ss).
    #[arg(
        long = "fan-out-deadline",
        value_name = "HH:MM:SS",
        default_value = "02:00:00"
    )]
    pub deadline: String,
}

impl Default for FanOutArgs {
    fn default() -> Self {
        Self {
            fan_out: None,
            deadline: DEFAULT_DEADLINE_TEXT.to_string(),
        }
    }
}

const DEFAULT_DEADLINE_TEXT: &str = "02:00:00";

/// `linkguard worker --queue QUEUE_URL`.
#[derive(clap::Args, Debug, Clone)]
pub struct WorkerArgs {
    /// The audit queue: a queue URL (https, Entra ID token; or with a SAS), or a storage
    /// connection string with QueueName=.
    #[arg(long, value_name = "QUEUE_URL")]
    pub queue: String,
    /// Policy file (TOML), re-read for every message.
    #[arg(long, env = "LINKGUARD_POLICY", default_value = "linkguard.toml")]
    pub policy: PathBuf,
    /// ARM base URL (the sandbox, or a sovereign cloud).
    #[arg(
        long,
        env = "LINKGUARD_ARM_ENDPOINT",
        default_value = "https://management.azure.com"
    )]
    pub arm_endpoint: String,
    /// managed-identity | workload-identity | azure-cli | client-secret | client-certificate | static
    #[arg(long, env = "LINKGUARD_CREDENTIAL", default_value = "azure-cli")]
    pub credential: String,
    /// Extra CA certificate (PEM) to trust, for the sandbox's --tls.
    #[arg(long, env = "LINKGUARD_ARM_CA_CERT")]
    pub arm_ca_cert: Option<PathBuf>,
    /// Where the enqueuer put the run's manifest: a directory, a blob container URL, or a storage
    /// connection string.
    #[arg(long, env = "LINKGUARD_REPORTS", default_value = "./linkguard-reports")]
    pub reports: String,
    /// Registries worked on at once within one subscription.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Subscriptions (messages) audited at once (1-32).
    #[arg(long, default_value_t = 4)]
    pub parallel: u32,
    /// Keep polling when the queue is empty, until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// Deliveries before a failing message goes to `<queue>-poison` (as the Functions host's
    /// maxDequeueCount).
    #[arg(long, default_value_t = config::DEFAULT_MAX_DEQUEUE_COUNT)]
    pub max_dequeue_count: u32,
    /// After a failed delivery, the message reappears after this long (hh:mm:ss).
    #[arg(long, value_name = "HH:MM:SS", default_value = "00:00:30")]
    pub retry_delay: String,
    /// How long a message being audited stays invisible to other workers; renewed at half time
    /// (hh:mm:ss).
    #[arg(long, value_name = "HH:MM:SS", default_value = "00:05:00")]
    pub visibility_timeout: String,
}

fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(exit::BAD_INPUT)
}

fn failed(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(exit::FAILED)
}

/// The credential for a queue or container addressed by URL without SAS.
fn storage_credential(
    kind: &str,
    queue: &FanOutSettings,
    reports: &ReportDestination,
    env: &(dyn EnvSource + Sync),
) -> Result<Option<Arc<dyn TokenCredential>>, String> {
    let needs = matches!(queue.queue.auth, QueueAuth::Token)
        || matches!(reports, ReportDestination::Blob(t) if matches!(t.auth, BlobAuth::Token));
    if !needs {
        return Ok(None);
    }
    let kind: CredentialKind = kind
        .parse()
        .map_err(|e| format!("{}: {e}", crate::config::CREDENTIAL))?;
    credential_from_config(kind, env)
        .map(Some)
        .map_err(|e| format!("{}: {e}", crate::config::CREDENTIAL))
}

struct Built {
    fanout: FanOut,
    resources: Arc<dyn Resources>,
}

#[allow(clippy::too_many_arguments)]
fn build_all(
    queue: &str,
    deadline: std::time::Duration,
    max_dequeue_count: u32,
    arm: &ArmSettings,
    credential: &str,
    reports: &str,
    env: &(dyn EnvSource + Sync),
) -> Result<Built, String> {
    let target =
        parse_queue(queue, &|k: &str| env.var(k)).map_err(|e| format!("the queue: {e}"))?;
    let settings = FanOutSettings {
        queue: target,
        deadline,
        max_dequeue_count,
    };
    let destination =
        ReportDestination::parse(reports).map_err(|e| format!("{}: {}", e.setting, e.problem))?;
    let client = adapters::arm_client(arm, env).map_err(|e| e.to_string())?;
    let storage = storage_credential(credential, &settings, &destination, env)?;
    let sink_options = BlobSinkOptions::default().with_retries(
        4,
        Duration::from_millis(500),
        Duration::from_secs(30),
    );
    let queue_options = QueueOptions::default().with_retries(
        4,
        Duration::from_millis(500),
        Duration::from_secs(30),
    );
    let fanout = build(settings, &destination, storage, queue_options, sink_options)?;
    Ok(Built {
        fanout,
        resources: adapters::resources(client),
    })
}

/// `linkguard audit --fan-out QUEUE_URL`: enqueue instead of auditing.
pub async fn run_fan_out(audit: &AuditArgs, args: &FanOutArgs) -> ExitCode {
    run_fan_out_with(audit, args, &ProcessEnv).await
}

/// [`run_fan_out`] with the environment given (credential variables, `AzureWebJobsStorage`).
pub async fn run_fan_out_with(
    audit: &AuditArgs,
    args: &FanOutArgs,
    env: &(dyn EnvSource + Sync),
) -> ExitCode {
    let Some(queue) = args.fan_out.as_deref() else {
        return bad_input(
            "--fan-out needs the queue: a queue URL or a connection string with QueueName=",
        );
    };
    let deadline = match parse_deadline(&args.deadline) {
        Ok(d) => d,
        Err(e) => return bad_input(format!("--fan-out-deadline: {e}")),
    };
    let policy = match Policy::load(&audit.policy) {
        Ok(p) => Arc::new(p),
        Err(e) => return bad_input(e),
    };
    let arm = ArmSettings {
        endpoint: audit.arm_endpoint.clone(),
        credential: audit.credential.clone(),
        ca_cert: audit.arm_ca_cert.clone(),
    };
    let built = match build_all(
        queue,
        deadline,
        config::DEFAULT_MAX_DEQUEUE_COUNT,
        &arm,
        &audit.credential,
        &audit.reports,
        env,
    ) {
        Ok(b) => b,
        Err(e) => return bad_input(e),
    };
    let fanout = &built.fanout;
    match fanout.finalize_overdue().await {
        Ok(done) => {
            for f in done {
                println!(
                    "closed run {}: {} reported, {} poisoned, {} missing; report: {}",
                    f.summary.run,
                    f.summary.reported.len(),
                    f.summary.poisoned.len(),
                    f.summary.missing.len(),
                    f.report_location
                );
            }
        }
        Err(e) => eprintln!("warning: earlier runs could not be checked now: {e}"),
    }
    let engine = Engine::new(
        Arc::clone(&built.resources),
        Arc::clone(&policy),
        EngineOptions {
            concurrency: audit.concurrency,
            dry_run: audit.dry_run,
            trigger: Trigger::Cli,
        },
    );
    let subscriptions = match engine.governed_subscriptions().await {
        Ok(s) => s,
        Err(e) => return failed(format!("cannot list the subscriptions in scope: {e}")),
    };
    let spec = RunSpec {
        trigger: Trigger::Cli,
        dry_run: audit.dry_run,
        policy_sha256: policy.sha256.clone(),
        policy_dry_run: policy.mode == Mode::DryRun,
    };
    match fanout.start_run(&subscriptions, &spec).await {
        Ok(run) => {
            println!(
                "run {}: {} message(s) on {}; deadline {}; manifest {}",
                run.run,
                run.enqueued,
                fanout.queue().location(),
                run.deadline,
                fanout.store().object_location(&run.manifest)
            );
            if let Some(f) = run.finalized {
                println!("nothing to fan out; report: {}", f.report_location);
            } else {
                println!(
                    "consume with: linkguard worker --queue <the same queue> --reports <the same reports>"
                );
            }
            ExitCode::from(exit::OK)
        }
        Err(e) => failed(e),
    }
}

/// `linkguard worker --queue QUEUE_URL`.
pub async fn run_worker(args: &WorkerArgs) -> ExitCode {
    init_tracing();
    let stop = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        eprintln!("stopping after the messages in hand");
    };
    run_worker_with(args, &ProcessEnv, stop).await
}

/// [`run_worker`] with the environment and the stop signal given.
pub async fn run_worker_with(
    args: &WorkerArgs,
    env: &(dyn EnvSource + Sync),
    stop: impl std::future::Future<Output = ()>,
) -> ExitCode {
    let durations = (
        parse_hms(&args.retry_delay),
        parse_hms(&args.visibility_timeout).filter(|d| *d >= Duration::from_secs(2)),
    );
    let (Some(retry_delay), Some(visibility)) = durations else {
        return bad_input(
            "--retry-delay and --visibility-timeout are hh:mm:ss (the visibility timeout at least 00:00:02)",
        );
    };
    if args.max_dequeue_count == 0 {
        return bad_input("--max-dequeue-count must be at least 1");
    }
    if let Err(e) = Policy::load(&args.policy) {
        return bad_input(e);
    }
    let arm = ArmSettings {
        endpoint: args.arm_endpoint.clone(),
        credential: args.credential.clone(),
        ca_cert: args.arm_ca_cert.clone(),
    };
    let built = match build_all(
        &args.queue,
        config::DEFAULT_DEADLINE,
        args.max_dequeue_count,
        &arm,
        &args.credential,
        &args.reports,
        env,
    ) {
        Ok(b) => b,
        Err(e) => return bad_input(e),
    };
    let path = args.policy.clone();
    let deps = WorkerDeps {
        resources: built.resources,
        policy: Arc::new(move || Policy::load(&path).map(Arc::new).map_err(|e| e.to_string())),
        concurrency: args.concurrency,
    };
    let options = WorkerOptions {
        follow: args.follow,
        batch: args.parallel,
        visibility,
        retry_delay,
        ..WorkerOptions::default()
    };
    match worker::run(&built.fanout, &deps, &options, stop).await {
        Ok(stats) => {
            println!(
                "{} deliveries: {} reported, {} duplicates, {} retried, {} poisoned ({} unreadable), {} queue errors",
                stats.deliveries,
                stats.reported,
                stats.duplicates,
                stats.retried,
                stats.poisoned,
                stats.unreadable,
                stats.queue_errors
            );
            let mut attention = stats.poisoned > 0 || stats.queue_errors > 0;
            for f in &stats.finalized {
                println!(
                    "run {} closed ({}): {} of {} reported, {} poisoned, {} missing; report: {}",
                    f.summary.run,
                    f.summary.closed,
                    f.summary.reported.len(),
                    f.summary.expected,
                    f.summary.poisoned.len(),
                    f.summary.missing.len(),
                    f.report_location
                );
                attention |= !f.summary.complete;
            }
            ExitCode::from(if attention { exit::ATTENTION } else { exit::OK })
        }
        Err(e) => failed(e),
    }
}

/// Progress on stderr (`LINKGUARD_LOG` sets the filter, default `info`).
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("LINKGUARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
