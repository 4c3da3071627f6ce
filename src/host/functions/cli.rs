//! `linkguard serve`: reads and checks every setting and the policy, binds
//! `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT` and serves until SIGTERM/SIGINT.
//!
//! A misconfigured deployment (malformed setting, missing or invalid policy, no port) stops here with
//! a message naming the setting, before the host's readiness probe ever succeeds. A policy that
//! later becomes invalid does not stop the handler: each invocation re-reads it and fails closed.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::server::{self, FUNCTIONS};
use super::state::{AppState, HandlerOptions, PolicySource, ReportStore};
use crate::config::{self, PolicyLocation, SettingError, Settings};
use crate::engine::Resources;
use crate::policy::Policy;

/// Set by the Functions host: the port to listen on (127.0.0.1 only).
pub const PORT_VAR: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";

/// Exit codes (DESIGN 3): 2 for bad configuration, 3 when serving failed.
const EXIT_BAD_INPUT: u8 = 2;
const EXIT_FAILED: u8 = 3;

/// `linkguard serve` (flags override the settings of the same meaning).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Policy file (overrides LINKGUARD_POLICY).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// ARM base URL (overrides LINKGUARD_ARM_ENDPOINT).
    #[arg(long, value_name = "URL")]
    pub arm_endpoint: Option<String>,
    /// Report destination (overrides LINKGUARD_REPORTS).
    #[arg(long, value_name = "DEST")]
    pub reports: Option<String>,
}

/// Reads `FUNCTIONS_CUSTOMHANDLER_PORT`.
pub fn port_from(lookup: impl Fn(&str) -> Option<String>) -> Result<u16, SettingError> {
    let Some(raw) = lookup(PORT_VAR).filter(|v| !v.trim().is_empty()) else {
        return Err(SettingError {
            key: PORT_VAR,
            message: "not set: `linkguard serve` is started by the Azure Functions host, which sets it; to run it by hand, set e.g. FUNCTIONS_CUSTOMHANDLER_PORT=7071".into(),
        });
    };
    match raw.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(SettingError {
            key: PORT_VAR,
            message: format!("`{}` is not a TCP port (1-65535)", raw.trim()),
        }),
    }
}

/// Everything `serve` needs, checked: settings, port, a policy that loads.
#[derive(Debug)]
pub struct Prepared {
    pub settings: Settings,
    pub port: u16,
    pub policy_path: PathBuf,
}

/// Reads the settings through `lookup` (flags laid over it) and checks the policy once.
pub fn prepare(
    args: &ServeArgs,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Prepared, String> {
    let overrides = [
        (
            config::POLICY,
            args.policy.as_ref().map(|p| p.display().to_string()),
        ),
        (config::ARM_ENDPOINT, args.arm_endpoint.clone()),
        (config::REPORTS, args.reports.clone()),
    ];
    let lookup = config::overlay(&overrides, lookup);
    let port = port_from(&lookup);
    let settings = Settings::from_lookup(&lookup);
    let (settings, port) = match (settings, port) {
        (Ok(s), Ok(p)) => (s, p),
        (Err(mut e), port) => {
            if let Err(p) = port {
                e.errors.insert(0, p);
            }
            return Err(e.to_string());
        }
        (Ok(_), Err(p)) => return Err(format!("invalid configuration (nothing was started):\n  - {p}")),
    };
    let policy_path = match &settings.policy {
        PolicyLocation::File(p) => p.clone(),
        PolicyLocation::Url(_) => {
            return Err(format!(
                "{}: policy blob URLs ({}) are not supported by `serve` yet; deploy the policy file beside the binary or give its path",
                config::POLICY,
                settings.policy
            ));
        }
    };
    Policy::load(&policy_path).map_err(|e| format!("{}: {e}", config::POLICY))?;
    Ok(Prepared {
        settings,
        port,
        policy_path,
    })
}

/// The `serve` subcommand.
pub async fn run_cli(args: ServeArgs) -> ExitCode {
    init_tracing();
    let prepared = match prepare(&args, config::process_env) {
        Ok(p) => p,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let resources = match build_resources(&prepared.settings) {
        Ok(r) => r,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let reports = match build_report_store(&prepared.settings) {
        Ok(r) => r,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let state = AppState::new(
        resources,
        PolicySource::File(prepared.policy_path.clone()),
        reports,
        HandlerOptions {
            topics: prepared.settings.event_topics.clone(),
            webhook_secret: prepared.settings.webhook_secret.clone(),
            ..HandlerOptions::default()
        },
    );
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, prepared.port));
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr} ({PORT_VAR}): {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    tracing::info!(
        "linkguard {} serving {} on http://{addr} (policy {}, reports {}, ARM {}, {} event topic(s))",
        env!("CARGO_PKG_VERSION"),
        FUNCTIONS.join(", "),
        prepared.policy_path.display(),
        prepared.settings.reports,
        prepared.settings.arm_endpoint,
        prepared.settings.event_topics.topics().len(),
    );
    if prepared.settings.event_topics.is_empty() {
        tracing::warn!(
            "LINKGUARD_EVENT_TOPICS is empty: every event is ignored; only the timer and manual audits act"
        );
    }
    match server::serve(listener, state, server::shutdown_signal()).await {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: serving on {addr} failed: {e}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Log lines on stdout (the host records them as Information), warnings and errors on stderr (the
/// host records them as Warning / Error). `LINKGUARD_LOG` sets the filter (default `info`).
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::writer::MakeWriterExt;
    let filter = EnvFilter::try_from_env("LINKGUARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = std::io::stderr
        .with_max_level(tracing::Level::WARN)
        .or_else(std::io::stdout);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
}

/// The ARM client behind the `Resources` port (credential variables such as
/// `LINKGUARD_STATIC_TOKEN` are read from the process environment).
fn build_resources(settings: &Settings) -> Result<Arc<dyn Resources>, String> {
    let arm = crate::adapters::ArmSettings {
        endpoint: settings.arm_endpoint.clone(),
        credential: settings.credential.as_str().to_string(),
        ca_cert: settings.arm_ca_cert.clone(),
    };
    crate::adapters::arm_client(&arm, &crate::arm::credential::ProcessEnv)
        .map(crate::adapters::resources)
        .map_err(|e| e.to_string())
}

/// The report sink behind `ReportStore`.
fn build_report_store(settings: &Settings) -> Result<Arc<dyn ReportStore>, String> {
    let sink = crate::adapters::report_sink(
        &settings.reports.raw(),
        settings.credential.as_str(),
        &crate::arm::credential::ProcessEnv,
    )
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(SinkStore(sink)))
}

/// Adapts a report sink to the handler's `ReportStore`.
struct SinkStore(Arc<dyn crate::report::sink::ReportSink>);

#[async_trait::async_trait]
impl ReportStore for SinkStore {
    async fn store(&self, report: &crate::report::Report) -> Result<String, super::ReportStoreError> {
        let stored = self
            .0
            .store(report)
            .await
            .map_err(|e| super::ReportStoreError(e.to_string()))?;
        Ok(stored
            .location(crate::report::sink::ObjectKind::Json)
            .map_or_else(|| self.0.location(), str::to_string))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn port_must_be_set_and_valid() {
        assert!(port_from(lookup(&[])).unwrap_err().message.contains("not set"));
        for bad in ["0", "65536", "abc", "-1"] {
            let e = port_from(lookup(&[(PORT_VAR, bad)])).unwrap_err();
            assert!(e.message.contains("is not a TCP port"), "{bad}");
        }
        assert_eq!(port_from(lookup(&[(PORT_VAR, " 7071 ")])), Ok(7071));
    }

    #[test]
    fn prepare_names_every_problem_and_checks_the_policy() {
        let e = prepare(&ServeArgs::default(), lookup(&[(config::CREDENTIAL, "x")])).unwrap_err();
        assert!(e.contains(PORT_VAR) && e.contains(config::CREDENTIAL), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "version = 1\nmode = \"sometimes\"\n").unwrap();
        let args = ServeArgs {
            policy: Some(bad.clone()),
            ..ServeArgs::default()
        };
        let e = prepare(&args, lookup(&[(PORT_VAR, "7071")])).unwrap_err();
        assert!(e.starts_with("LINKGUARD_POLICY: ") && e.contains("bad.toml:2"), "{e}");
        let e = prepare(
            &ServeArgs::default(),
            lookup(&[(PORT_VAR, "7071"), (config::POLICY, "https://a.blob.core.windows.net/c/p.toml?sig=SECRET")]),
        )
        .unwrap_err();
        assert!(e.contains("not supported by `serve` yet") && !e.contains("SECRET"), "{e}");
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "version = 1\n").unwrap();
        let args = ServeArgs {
            policy: Some(good.clone()),
            ..ServeArgs::default()
        };
        let p = prepare(&args, lookup(&[(PORT_VAR, "7071"), (config::POLICY, "/elsewhere.toml")])).unwrap();
        assert_eq!((p.port, p.policy_path), (7071, good));
    }
}
