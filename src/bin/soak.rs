//! The long soak (issue 8): `cargo run --release --bin soak -- --minutes 5` (or `scripts/soak.sh`).
//! Prints progress on stderr and the summary as JSON on stdout; exit 0 when every invariant held,
//! 1 when one was broken, 2 when the soak could not start. The checks are described in
//! `tests/soak_support/mod.rs`, shared with the short version in `cargo test`.

// The harness is test code shared with `tests/soak.rs`: it asserts with panics and indexes JSON.
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
#[path = "../../tests/soak_support/mod.rs"]
mod soak_support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use soak_support::{SoakConfig, run};

/// Soak linkguard's Functions handler against the ARM sandbox under random faults.
#[derive(Parser, Debug)]
#[command(name = "soak")]
struct Args {
    /// How long faults and new connections go on (then the run drains and converges).
    #[arg(long, default_value_t = 5.0)]
    minutes: f64,
    /// Governed registries.
    #[arg(long, default_value_t = 300)]
    registries: usize,
    /// Registries outside the policy scope.
    #[arg(long, default_value_t = 30)]
    ungoverned: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// New Pending connections per second.
    #[arg(long, default_value_t = 10.0)]
    add_per_sec: f64,
    /// Concurrent Event Grid deliveries.
    #[arg(long, default_value_t = 6)]
    workers: usize,
    /// Seconds between ScheduledAudit invocations.
    #[arg(long, default_value_t = 5.0)]
    audit_every: f64,
    /// Keep the reports in this directory (default: a temporary one, removed).
    #[arg(long)]
    reports: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = SoakConfig {
        registries: args.registries.max(1),
        ungoverned: args.ungoverned,
        duration: Duration::from_secs_f64(args.minutes.max(0.0) * 60.0),
        seed: args.seed,
        add_per_sec: args.add_per_sec,
        workers: args.workers,
        audit_every: Duration::from_secs_f64(args.audit_every.max(0.1)),
        manual_every: Duration::from_secs(3),
        phase: (Duration::from_secs(5), Duration::from_secs(20)),
        progress: true,
        reports_dir: args.reports,
        policy: soak_support::policy_text(),
    };
    eprintln!("soak: {config:?}");
    match run(config).await {
        Ok(summary) => {
            match serde_json::to_string_pretty(&summary) {
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("soak: cannot print the summary: {e}"),
            }
            if summary.violations_total == 0 {
                eprintln!("soak: every invariant held");
                ExitCode::SUCCESS
            } else {
                eprintln!("soak: {} invariant violations", summary.violations_total);
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("soak: could not start: {e}");
            ExitCode::from(2)
        }
    }
}
