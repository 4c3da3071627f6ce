//! `linkguard serve`: reads and checks every setting and the policy, binds
//! `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT` and serves until SIGTERM/SIGINT.
//!
//! A misconfigured deployment (malformed setting, missing, unreadable or invalid policy, no port)
//! stops here with a message naming the setting, before the host's readiness probe ever succeeds.
//! A policy that later becomes invalid does not stop the handler: each invocation re-reads it (a
//! blob with a short cache, see [`PolicySource`]) and fails closed.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use tokio::net::TcpListener;

use super::server::{self, FUNCTIONS};
use azure_core::credentials::TokenCredential;

use super::state::{AppState, HandlerOptions, PolicySource, ReportStore, SinkStore};
use crate::arm::{ArmClient, ArmClientOptions, EnvSource, credential_from_config};
use crate::config::{self, PolicyLocation, SettingError, Settings};
use crate::engine::Resources;
use crate::policy::Policy;
use crate::report::sink::BlobSinkOptions;

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

/// Everything `serve` needs, checked: settings, port, a policy file that loads (a policy blob is
/// read once the credential exists, in [`run_with`]).
#[derive(Debug)]
pub struct Prepared {
    pub settings: Settings,
    pub port: u16,
}

/// Reads the settings through `lookup` (flags laid over it) and checks a policy file once.
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
        (Ok(_), Err(p)) => {
            return Err(format!(
                "invalid configuration (nothing was started):\n  - {p}"
            ));
        }
    };
    if let PolicyLocation::File(path) = &settings.policy {
        Policy::load(path).map_err(|e| format!("{}: {e}", config::POLICY))?;
    }
    Ok(Prepared { settings, port })
}

/// The policy source for the settings, checked once: a policy that cannot be read or does not
/// validate at start stops the host (exit 2) rather than failing every invocation.
pub async fn policy_source(
    settings: &Settings,
    credential: Arc<dyn TokenCredential>,
) -> Result<PolicySource, String> {
    let source = PolicySource::from_location(&settings.policy, Some(credential))?;
    source
        .load()
        .await
        .map_err(|f| format!("{}: {}", config::POLICY, f.message))?;
    Ok(source)
}

/// The `serve` subcommand.
pub async fn run_cli(args: ServeArgs) -> ExitCode {
    init_tracing();
    run_with(args, config::process_env, server::shutdown_signal()).await
}

/// `serve` with the settings read through `lookup` and stopped by `shutdown` (tests run it
/// in-process; `run_cli` passes the environment and SIGTERM/SIGINT).
pub async fn run_with(
    args: ServeArgs,
    lookup: impl Fn(&str) -> Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> ExitCode {
    let prepared = match prepare(&args, &lookup) {
        Ok(p) => p,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let Arm {
        resources,
        credential,
    } = match build_resources(&prepared.settings, &lookup) {
        Ok(r) => r,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let policy = match policy_source(&prepared.settings, Arc::clone(&credential)).await {
        Ok(p) => p,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let fanout_credential = Arc::clone(&credential);
    let reports = match build_report_store(&prepared.settings, credential) {
        Ok(r) => r,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let state = AppState::new(
        resources,
        policy.clone(),
        reports,
        HandlerOptions {
            topics: prepared.settings.event_topics.clone(),
            webhook_secret: prepared.settings.webhook_secret.clone(),
            ..HandlerOptions::default()
        },
    );
    let state = match super::subscription_audit::attach(
        state,
        &prepared.settings.reports,
        fanout_credential,
        &lookup,
    ) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
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
        policy.describe(),
        prepared.settings.reports,
        prepared.settings.arm_endpoint,
        prepared.settings.event_topics.topics().len(),
    );
    if prepared.settings.event_topics.is_empty() {
        tracing::warn!(
            "LINKGUARD_EVENT_TOPICS is empty: every event is ignored; only the timer and manual audits act"
        );
    }
    match server::serve(listener, state, shutdown).await {
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
    let filter =
        EnvFilter::try_from_env("LINKGUARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = std::io::stderr
        .with_max_level(tracing::Level::WARN)
        .or_else(std::io::stdout);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
}

/// Settings read through a lookup, for the credential builder.
struct Lookup<F>(F);

impl<F: Fn(&str) -> Option<String>> EnvSource for Lookup<F> {
    fn var(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }
}

/// The ARM side of the handler.
pub struct Arm {
    pub resources: Arc<dyn Resources>,
    /// Also used by a blob sink addressed by URL alone.
    pub credential: Arc<dyn TokenCredential>,
}

/// The ARM client behind the `Resources` port, and the token credential (also used by a blob sink
/// addressed by URL alone).
pub fn build_resources(
    settings: &Settings,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Arm, String> {
    let credential = credential_from_config(settings.credential, &Lookup(lookup))
        .map_err(|e| format!("{}: {e}", config::CREDENTIAL))?;
    let ca_certificate_pem = match &settings.arm_ca_cert {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            format!(
                "{}: cannot read {}: {e}",
                config::ARM_CA_CERT,
                path.display()
            )
        })?),
        None => None,
    };
    let client = ArmClient::new(
        Arc::clone(&credential),
        ArmClientOptions {
            endpoint: settings.arm_endpoint.clone(),
            ca_certificate_pem,
            ..ArmClientOptions::default()
        },
    )
    .map_err(|e| format!("{}: {e}", config::ARM_ENDPOINT))?;
    Ok(Arm {
        resources: Arc::new(client),
        credential,
    })
}

/// The report sink behind `ReportStore`.
pub fn build_report_store(
    settings: &Settings,
    credential: Arc<dyn TokenCredential>,
) -> Result<Arc<dyn ReportStore>, String> {
    let sink = settings
        .reports
        .clone()
        .into_sink(Some(credential), BlobSinkOptions::default())
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(SinkStore(sink)))
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
        assert!(
            port_from(lookup(&[]))
                .unwrap_err()
                .message
                .contains("not set")
        );
        for bad in ["0", "65536", "abc", "-1"] {
            let e = port_from(lookup(&[(PORT_VAR, bad)])).unwrap_err();
            assert!(e.message.contains("is not a TCP port"), "{bad}");
        }
        assert_eq!(port_from(lookup(&[(PORT_VAR, " 7071 ")])), Ok(7071));
    }

    #[test]
    fn prepare_names_every_problem_and_checks_the_policy() {
        let e = prepare(&ServeArgs::default(), lookup(&[(config::CREDENTIAL, "x")])).unwrap_err();
        assert!(
            e.contains(PORT_VAR) && e.contains(config::CREDENTIAL),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "version = 1\nmode = \"sometimes\"\n").unwrap();
        let args = ServeArgs {
            policy: Some(bad.clone()),
            ..ServeArgs::default()
        };
        let e = prepare(&args, lookup(&[(PORT_VAR, "7071")])).unwrap_err();
        assert!(
            e.starts_with("LINKGUARD_POLICY: ") && e.contains("bad.toml:2"),
            "{e}"
        );
        let e = prepare(
            &ServeArgs::default(),
            lookup(&[
                (PORT_VAR, "7071"),
                (config::POLICY, "http://a.example.com/c/p.toml?sig=SECRET"),
            ]),
        )
        .unwrap_err();
        assert!(
            e.contains("LINKGUARD_POLICY") && e.contains("http") && !e.contains("SECRET"),
            "{e}"
        );
        // A blob URL is read later, with the credential (policy_source).
        let url = "https://a.blob.core.windows.net/c/p.toml?sig=SECRET";
        let p = prepare(
            &ServeArgs::default(),
            lookup(&[(PORT_VAR, "7071"), (config::POLICY, url)]),
        )
        .unwrap();
        assert!(matches!(p.settings.policy, PolicyLocation::Url(_)));
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "version = 1\n").unwrap();
        let args = ServeArgs {
            policy: Some(good.clone()),
            ..ServeArgs::default()
        };
        let p = prepare(
            &args,
            lookup(&[(PORT_VAR, "7071"), (config::POLICY, "/elsewhere.toml")]),
        )
        .unwrap();
        assert_eq!(p.port, 7071);
        assert_eq!(p.settings.policy, PolicyLocation::File(good));
    }
}
