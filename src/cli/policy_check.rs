//! `linkguard policy check FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::bad_input;
use crate::policy::{Mode, Policy};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The policy file to validate.
    pub file: PathBuf,
}

pub fn run(args: CheckArgs) -> ExitCode {
    match Policy::load(&args.file) {
        Ok(p) => {
            let mode = match p.mode {
                Mode::Enforce => "enforce",
                Mode::DryRun => "dry-run",
            };
            println!(
                "{}: valid (mode {mode}, {} connection rule(s), sha256 {})",
                args.file.display(),
                p.connections.rules.len(),
                p.sha256
            );
            ExitCode::SUCCESS
        }
        Err(e) => bad_input(e),
    }
}
