//! `linkguard evaluate`: the offline plan.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::{bad_input, exit, table};
use crate::model::Estate;
use crate::policy::{Policy, evaluate_estate};

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Policy file (TOML, DESIGN 4).
    #[arg(long, env = "LINKGUARD_POLICY")]
    pub policy: PathBuf,
    /// Estate file: `{"registries": [...], "privateEndpoints": [...]}` or the array `az acr list` prints.
    #[arg(long)]
    pub estate: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Json,
    Text,
}

pub fn run(args: EvaluateArgs) -> ExitCode {
    let policy = match Policy::load(&args.policy) {
        Ok(p) => p,
        Err(e) => return bad_input(e),
    };
    let estate = match Estate::load(&args.estate) {
        Ok(e) => e,
        Err(e) => return bad_input(e),
    };
    let plan = evaluate_estate(&policy, &estate);
    let out = match args.format {
        Format::Json => match serde_json::to_string_pretty(&plan) {
            Ok(s) => s,
            Err(e) => return bad_input(format!("cannot serialize the plan: {e}")),
        },
        Format::Text => table::plan_text(&plan),
    };
    if let Err(e) = super::write_stdout(&format!("{out}\n")) {
        eprintln!("error: cannot write the plan to stdout: {e}");
        return ExitCode::from(exit::FAILED);
    }
    ExitCode::from(if plan.needs_attention() {
        exit::ATTENTION
    } else {
        exit::OK
    })
}
