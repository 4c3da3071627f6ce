//! `linkguard demo`: the main job end to end on the embedded sample, no Azure account needed. Starts
//! the sandbox in-process on `examples/estate.json`, audits it through the real ARM client over
//! HTTP with `examples/policy.toml`, stores the report in a local folder and prints the summary.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::{bad_input, exit};
use crate::adapters::{self, ArmSettings};
use crate::engine::{Engine, EngineOptions};
use crate::policy::Policy;
use crate::report::Trigger;
use crate::sim::{Sandbox, SimOptions};

/// The sample estate and policy, embedded so the demo runs from any directory.
const SAMPLE_ESTATE: &str = include_str!("../../examples/estate.json");
const SAMPLE_POLICY: &str = include_str!("../../examples/policy.toml");

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Estate to serve instead of the embedded sample.
    #[arg(long)]
    pub estate: Option<PathBuf>,
    /// Policy instead of the embedded sample.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Where the report goes.
    #[arg(long, default_value = "./linkguard-reports")]
    pub reports: String,
    /// Decide and report, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Environment for the ARM credential: the sandbox takes any bearer token.
struct DemoEnv;
impl crate::arm::credential::EnvSource for DemoEnv {
    fn var(&self, name: &str) -> Option<String> {
        (name == "LINKGUARD_STATIC_TOKEN").then(|| "linkguard-demo".to_string())
    }
}

pub async fn run(args: DemoArgs) -> ExitCode {
    let estate_text = match &args.estate {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => t,
            Err(e) => {
                return bad_input(format!("{}: cannot read the estate file: {e}", p.display()));
            }
        },
        None => SAMPLE_ESTATE.to_string(),
    };
    let policy = match &args.policy {
        Some(p) => Policy::load(p),
        None => Policy::parse("examples/policy.toml (embedded)", SAMPLE_POLICY),
    };
    let policy = match policy {
        Ok(p) => Arc::new(p),
        Err(e) => return bad_input(e),
    };
    let estate: serde_json::Value = match serde_json::from_str(&estate_text) {
        Ok(v) => v,
        Err(e) => return bad_input(format!("estate: not valid JSON: {e}")),
    };
    let sim = match Sandbox::start(
        estate,
        SimOptions {
            retry_after_secs: 0,
            ..SimOptions::default()
        },
    )
    .await
    {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    eprintln!(
        "sandbox: ARM-compatible sandbox at {} (seeded with the sample estate)",
        sim.endpoint()
    );
    let settings = ArmSettings {
        endpoint: sim.endpoint().to_string(),
        credential: "static".into(),
        ca_cert: None,
    };
    let client = match adapters::arm_client(&settings, &DemoEnv) {
        Ok(c) => c,
        Err(e) => return bad_input(e),
    };
    let sink = match adapters::report_sink(&args.reports, "static", &DemoEnv) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    let engine = Engine::new(
        adapters::resources(client),
        policy,
        EngineOptions {
            dry_run: args.dry_run,
            trigger: Trigger::Cli,
            ..EngineOptions::default()
        },
    );
    let result = engine.audit().await;
    let code = super::audit::finish(result, sink.as_ref()).await;
    let stats = sim.requests();
    eprintln!("sandbox: served {} ARM requests", stats.total);
    sim.shutdown().await;
    // The demo's findings are expected: exit 0 unless the run itself failed.
    if code == ExitCode::from(exit::FAILED) {
        code
    } else {
        ExitCode::SUCCESS
    }
}
