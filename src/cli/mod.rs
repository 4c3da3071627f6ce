//! The command line (DESIGN 3): parse, hand each subcommand to its module.

pub mod audit;
mod demo;
mod evaluate;
mod policy_check;
pub mod table;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes of DESIGN 3 (contract).
pub mod exit {
    /// Nothing needs attention.
    pub const OK: u8 = 0;
    /// Findings or pending decisions need attention.
    pub const ATTENTION: u8 = 1;
    /// Bad input: the message names the file, the field and the fix.
    pub const BAD_INPUT: u8 = 2;
    /// The run failed at its job (report not stored, no governed registry readable).
    pub const FAILED: u8 = 3;
}

#[derive(Parser, Debug)]
#[command(
    name = "linkguard",
    version,
    about = "Governs Azure Container Registry private endpoint connections and network posture from a policy file"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The main job on the embedded sample: sandbox, real audit over HTTP, report in a local folder.
    Demo(demo::DemoArgs),
    /// Live run against ARM (or the sandbox): applies the plan unless dry-run, stores the report.
    Audit(audit::AuditArgs),
    /// Offline: decide what the policy would do to an exported estate (no network).
    Evaluate(evaluate::EvaluateArgs),
    /// The Azure Functions custom handler on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT.
    Serve(crate::host::functions::ServeArgs),
    /// The AWS Lambda entry (also chosen automatically when AWS_LAMBDA_RUNTIME_API is set).
    Lambda(crate::host::lambda::LambdaArgs),
    /// Consume the fan-out queue: audit one subscription per message (`audit --fan-out` enqueues).
    Worker(crate::fanout::cli::WorkerArgs),
    /// Render or summarize a stored report.
    Report(crate::report::cli::ReportArgs),
    /// Serve the ARM-compatible sandbox seeded with an estate.
    Sim(crate::sim::SimArgs),
    /// Policy file commands.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy file.
    Check(policy_check::CheckArgs),
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Evaluate(args) => evaluate::run(args),
        Command::Sim(args) => crate::sim::run_cli(args).await,
        Command::Report(args) => crate::report::cli::run_cli(args),
        Command::Serve(args) => crate::host::functions::run_cli(args).await,
        Command::Lambda(args) => crate::host::lambda::run_cli(args).await,
        Command::Worker(args) => crate::fanout::cli::run_worker(&args).await,
        Command::Policy(PolicyCommand::Check(args)) => policy_check::run(args),
    }
}

/// Prints a bad-input error the way every subcommand does and returns exit code 2.
pub fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(exit::BAD_INPUT)
}

/// Writes `text` to stdout. A reader that went away (`linkguard evaluate ... | head -1`) is a
/// normal end, not an error: Rust ignores SIGPIPE, so `print!` would panic there instead.
fn write_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
