use std::process::ExitCode;

use clap::Parser;
use linkguard::cli::{Cli, Command, run};

#[tokio::main]
async fn main() -> ExitCode {
    // Inside AWS Lambda the runtime gives no arguments: the Runtime API's presence picks the host.
    if std::env::args_os().len() <= 1 && linkguard::host::lambda::runtime_api_present() {
        return run(Cli {
            command: Command::Lambda(linkguard::host::lambda::LambdaArgs::default()),
        })
        .await;
    }
    run(Cli::parse()).await
}
