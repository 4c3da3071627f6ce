//! `linkguard sim`: serves the sandbox seeded with an estate file until interrupted.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::faults::FaultSpec;
use super::server::{Sandbox, SimOptions};

/// Serve the ARM-compatible sandbox seeded with an estate file.
#[derive(Clone, Debug, clap::Args)]
pub struct SimArgs {
    /// Estate file (DESIGN 3.1): {"registries": [...], "privateEndpoints": [...]} or a bare array of registries.
    #[arg(long, value_name = "FILE")]
    pub estate: PathBuf,
    /// Port on 127.0.0.1; 0 picks a free one (the ready line says which).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Serve HTTPS with a generated certificate; the CA's PEM path is in the ready line.
    #[arg(long)]
    pub tls: bool,
    /// Where to write the CA certificate with --tls (default: a new temporary directory).
    #[arg(long, value_name = "DIR", requires = "tls")]
    pub cert_dir: Option<PathBuf>,
    /// Accept only this bearer token (default: any bearer token).
    #[arg(long, env = "LINKGUARD_SIM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Faults to inject, e.g. "seed=7,throttle-every=5,error503=0.05,latency=20ms,lro-fail=0.1,drop=0.02".
    /// Keys: seed, throttle-every, retry-after, bucket=arm|off, error500, error503, latency, lro-fail, drop, ops.
    #[arg(long, value_name = "SPEC", default_value = "")]
    pub faults: String,
    /// Items per page of every list (nextLink beyond).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,
    /// Polls a long-running operation answers InProgress before it finishes.
    #[arg(long, default_value_t = 1)]
    pub lro_polls: u32,
    /// Retry-After (seconds) advertised on long-running operations.
    #[arg(long, default_value_t = 1)]
    pub retry_after: u64,
}

/// Runs `linkguard sim`. Exit codes: 0 after a clean stop (Ctrl-C / SIGTERM), 2 for a bad estate
/// or fault spec, 1 when the server cannot start.
pub async fn run_cli(args: SimArgs) -> ExitCode {
    let faults = match FaultSpec::parse(&args.faults) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("linkguard sim: --faults: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(&args.estate) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "linkguard sim: {}: cannot read the estate file: {e}; pass an existing JSON file to --estate",
                args.estate.display()
            );
            return ExitCode::from(2);
        }
    };
    let estate: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "linkguard sim: {}: not valid JSON: {e}",
                args.estate.display()
            );
            return ExitCode::from(2);
        }
    };
    let options = SimOptions {
        port: args.port,
        tls: args.tls,
        cert_dir: args.cert_dir,
        token: args.token,
        faults,
        page_size: args.page_size as usize,
        lro_polls: args.lro_polls,
        retry_after_secs: args.retry_after,
    };
    let running = match Sandbox::start(estate, options).await {
        Ok(r) => r,
        Err(e @ super::SimError::Estate(_)) => {
            eprintln!("linkguard sim: {}: {e}", args.estate.display());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("linkguard sim: {e}");
            return ExitCode::from(1);
        }
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{}", running.ready_line())
        .and_then(|_| stdout.flush())
        .is_err()
    {
        return ExitCode::from(1);
    }
    drop(stdout);
    wait_for_stop().await;
    running.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
