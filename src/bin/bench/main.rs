//! `bench`: measures linkguard's cold start, memory, invocation latency, audit scale and the
//! comparison with the official Python SDK, and writes `BENCHMARKS.md`.
//!
//! ```text
//! cargo run --release --bin bench -- all      # the full run, rewrites BENCHMARKS.md (~5 min + build)
//! cargo run --bin bench -- smoke              # seconds-long, tiny sizes, writes to a temp file
//! ```
//!
//! Everything runs on 127.0.0.1: the sandbox (`linkguard::sim`) in this process or as a
//! `linkguard sim` child, `linkguard serve` / `linkguard audit` as children, and the Python SDK in a
//! virtualenv the command prepares itself (`requirements/bench.txt`).

mod audit;
mod cold;
mod error;
mod estate;
mod invocations;
mod load;
mod machine;
mod notes;
mod payloads;
mod procs;
mod python;
mod render;
mod results;
mod rig;
mod rss;
mod sdk;
mod serve;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::BenchError;

#[derive(Parser, Debug)]
#[command(
    name = "bench",
    about = "Benchmarks linkguard and writes BENCHMARKS.md"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The full run: every section at full size, writes BENCHMARKS.md.
    All(RunArgs),
    /// Tiny sizes, seconds long: checks that every section produces numbers (run by tests/bench_smoke.rs).
    Smoke(RunArgs),
    /// Internal: runs a command and writes its wall time and peak RSS (getrusage) to a JSON file.
    #[command(hide = true)]
    Rss(rss::RssArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Where the Markdown goes (default: BENCHMARKS.md in the repository for `all`, a temporary
    /// file for `smoke`).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Also write every figure as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// The linkguard binary (default: beside this one; under `cargo run` it is built first).
    #[arg(long, value_name = "PATH")]
    linkguard: Option<PathBuf>,
    /// A Python with azure-mgmt-containerregistry and azure-identity (default: .venv-bench or
    /// .venv-sdk when they have both, else .venv-bench is created from requirements/bench.txt).
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// The repository (policy, Python script, examples, requirements).
    #[arg(long, value_name = "DIR", default_value = env!("CARGO_MANIFEST_DIR"))]
    repo: PathBuf,
    /// The shared fixtures (Event Grid events, the Functions invocation envelope).
    #[arg(long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
    /// Run only these sections (1 cold start, 2 invocations, 3 audit scale, 4 SDK loop), for
    /// profiling one of them; the Markdown then goes to a temporary file unless --out is given,
    /// never to BENCHMARKS.md, which always holds a whole run.
    #[arg(long, value_name = "N", value_delimiter = ',', value_parser = clap::value_parser!(u8).range(1..=4))]
    only: Vec<u8>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Rss(args) => return rss::run(args),
        Command::All(args) => run(args, stats::Sizes::full()).await,
        Command::Smoke(args) => run(args, stats::Sizes::smoke()).await,
    };
    match outcome {
        Ok(path) => {
            eprintln!("bench: wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs, sizes: stats::Sizes) -> Result<PathBuf, BenchError> {
    let started = std::time::Instant::now();
    let env = procs::BenchEnv::prepare(&args, &sizes).await?;
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let mut machine = machine::Machine::describe(&env.linkguard, profile);
    machine.python = env.python_version.clone();
    eprintln!(
        "bench: {} run with {} ({})",
        sizes.name,
        env.linkguard.display(),
        env.python.display()
    );

    let mut results = results::Results::new(machine, &sizes);
    let wanted = |n: u8| args.only.is_empty() || args.only.contains(&n);
    if wanted(1) {
        eprintln!("bench: 1/4 cold start and memory");
        results.cold = Some(cold::run(&env, &sizes).await?);
    }
    if wanted(2) {
        eprintln!("bench: 2/4 invocation latency and throughput");
        results.invocations = invocations::run(&env, &sizes).await?;
    }
    if wanted(3) {
        eprintln!("bench: 3/4 audit scale");
        results.audits = audit::run(&env, &sizes).await?;
    }
    if wanted(4) {
        eprintln!("bench: 4/4 versus the SDK's documented loop");
        results.sdk = sdk::run(&env, &sizes).await?;
    }
    results.finish(started.elapsed());

    let whole = sizes.name == "all" && args.only.is_empty();
    let out = match &args.out {
        Some(p) => p.clone(),
        None if whole => args.repo.join("BENCHMARKS.md"),
        None => env.scratch.path().join("BENCHMARKS.smoke.md"),
    };
    let markdown = render::markdown(&results);
    std::fs::write(&out, markdown).map_err(|e| BenchError::io(&out, e))?;
    if let Some(json) = &args.json {
        let text = serde_json::to_string_pretty(&results)
            .map_err(|e| BenchError::msg(format!("serializing the results: {e}")))?;
        std::fs::write(json, text).map_err(|e| BenchError::io(json, e))?;
    }
    if args.out.is_none() && !whole {
        // The scratch directory goes away with `env`; keep the smoke output where it can be read.
        let kept = std::env::temp_dir().join("linkguard-BENCHMARKS.smoke.md");
        std::fs::copy(&out, &kept).map_err(|e| BenchError::io(&kept, e))?;
        return Ok(kept);
    }
    Ok(out)
}
