//! `linkguard audit`: a live run against ARM (or the sandbox) that applies the plan unless dry-run
//! and stores the report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::{bad_input, exit};
use crate::adapters::{self, ArmSettings};
use crate::arm::credential::ProcessEnv;
use crate::engine::{Engine, EngineOptions, RunResult};
use crate::policy::Policy;
use crate::report::render::text as render_text;
use crate::report::{Report, Trigger};

#[derive(Args, Debug, Clone)]
pub struct AuditArgs {
    /// Policy file (TOML).
    #[arg(long, env = "LINKGUARD_POLICY", default_value = "linkguard.toml")]
    pub policy: PathBuf,
    /// Decide and report, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// ARM base URL (the sandbox, or a sovereign cloud).
    #[arg(
        long,
        env = "LINKGUARD_ARM_ENDPOINT",
        default_value = "https://management.azure.com"
    )]
    pub arm_endpoint: String,
    /// Where ARM tokens come from: azure-cli (the default: a person at a terminal after `az login`),
    /// managed-identity (Azure Functions, App Service, VMs), workload-identity (Kubernetes),
    /// client-secret, client-certificate, or static (a fixed token, for the sandbox). Unattended
    /// runs should set this.
    #[arg(long, env = "LINKGUARD_CREDENTIAL", default_value = "azure-cli")]
    pub credential: String,
    /// Extra CA certificate (PEM) to trust, for the sandbox's --tls.
    #[arg(long, env = "LINKGUARD_ARM_CA_CERT")]
    pub arm_ca_cert: Option<PathBuf>,
    /// A directory, a blob container URL, or a storage connection string.
    #[arg(long, env = "LINKGUARD_REPORTS", default_value = "./linkguard-reports")]
    pub reports: String,
    /// Registries worked on at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    #[command(flatten)]
    pub fan_out: crate::fanout::cli::FanOutArgs,
}

pub async fn run(args: AuditArgs) -> ExitCode {
    if args.fan_out.fan_out.is_some() {
        return crate::fanout::cli::run_fan_out(&args, &args.fan_out).await;
    }
    let policy = match Policy::load(&args.policy) {
        Ok(p) => Arc::new(p),
        Err(e) => return bad_input(e),
    };
    let settings = ArmSettings {
        endpoint: args.arm_endpoint.clone(),
        credential: args.credential.clone(),
        ca_cert: args.arm_ca_cert.clone(),
    };
    let client = match adapters::arm_client(&settings, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => return bad_input(e),
    };
    let sink = match adapters::report_sink(&args.reports, &args.credential, &ProcessEnv) {
        Ok(s) => s,
        Err(e) => return bad_input(e),
    };
    let engine = Engine::new(
        adapters::resources(client),
        policy,
        EngineOptions {
            concurrency: args.concurrency,
            dry_run: args.dry_run,
            trigger: Trigger::Cli,
        },
    );
    let result = engine.audit().await;
    finish(result, sink.as_ref()).await
}

/// Stores the report, prints the summary and where it went, and picks the exit code (DESIGN 3).
pub async fn finish(result: RunResult, sink: &dyn crate::report::sink::ReportSink) -> ExitCode {
    let report = &result.report;
    // The summary is for a person; a closed or failing stdout must not stop the report being
    // stored (a panicking `print!` would).
    let say = |text: String| {
        if let Err(e) = super::write_stdout(&text) {
            eprintln!("warning: cannot write the summary to stdout: {e}");
        }
    };
    say(render_text::render(report));
    match sink.store(report).await {
        Ok(stored) => {
            for o in &stored.objects {
                say(format!("report: {}\n", o.location));
            }
        }
        Err(e) => {
            eprintln!("error: the report could not be stored: {e}");
            return ExitCode::from(exit::FAILED);
        }
    }
    ExitCode::from(exit_code(report, result.registries_read))
}

fn exit_code(report: &Report, registries_read: usize) -> u8 {
    let nothing_read = registries_read == 0 && !report.complete;
    if nothing_read {
        return exit::FAILED;
    }
    let failed = report.totals.failed > 0 || !report.errors.is_empty();
    let attention = report.needs_attention.iter().any(|a| a.severity != "info");
    if failed || attention || !report.complete {
        exit::ATTENTION
    } else {
        exit::OK
    }
}
