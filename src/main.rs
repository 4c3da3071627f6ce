use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    linkguard::cli::run(linkguard::cli::Cli::parse()).await
}
