//! `linkguard lambda` (also chosen when `AWS_LAMBDA_RUNTIME_API` is set): reads and checks every
//! setting, the webhook secret and the policy, then serves invocations from the Lambda Runtime API
//! until it goes away.
//!
//! A deployment that cannot work stops here, in the init phase, with a message naming the setting:
//! no webhook secret (the Function URL is public), a malformed setting, a policy that does not
//! load, missing Lambda variables (which `lambda_runtime` would otherwise panic on).

use std::path::PathBuf;
use std::process::ExitCode;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use super::handler;
use super::secrets::{self, CredentialSource};
use super::state::LambdaState;
use crate::config::{self, PolicyLocation, Secret, Settings};
use crate::host::functions::PolicySource;
use crate::policy::Policy;

/// Set by Lambda: where the Runtime API listens.
pub const RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";
/// Everything `lambda_runtime` reads at start (it panics when one is missing).
pub const RUNTIME_VARS: [&str; 4] = [
    RUNTIME_API,
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];
/// A shorter webhook secret is refused: it sits in a public URL's query string.
pub const MIN_SECRET_LEN: usize = 16;

const EXIT_BAD_INPUT: u8 = 2;
const EXIT_FAILED: u8 = 3;

/// `linkguard lambda` (flags override the settings of the same meaning).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LambdaArgs {
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

/// True inside Lambda (the Runtime API address is set): `main` then runs the Lambda host whatever
/// the arguments.
pub fn runtime_api_present() -> bool {
    std::env::var_os(RUNTIME_API).is_some_and(|v| !v.is_empty())
}

/// Everything the Lambda host needs, checked (the policy is `settings.policy`: a file already
/// loaded once here, a blob read once the credential exists, in [`run`]).
#[derive(Debug)]
pub struct Prepared {
    pub settings: Settings,
    pub webhook_secret: Secret,
}

/// Reads the settings through `lookup` (flags laid over it), requires the webhook secret and the
/// Lambda variables, and loads the policy once. Every problem found is listed.
pub fn prepare(
    args: &LambdaArgs,
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
    let mut problems: Vec<String> = Vec::new();
    for var in RUNTIME_VARS {
        if lookup(var).is_none_or(|v| v.trim().is_empty()) {
            problems.push(format!(
                "{var}: not set; Lambda sets it (to run the Lambda host elsewhere, point {RUNTIME_API} at a Runtime API emulator and set the other AWS_LAMBDA_* variables)"
            ));
        }
    }
    let memory = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
    if let Some(m) = lookup(memory).filter(|m| !m.trim().is_empty())
        && m.trim().parse::<i32>().is_err()
    {
        problems.push(format!(
            "{memory}: `{}` is not a number of megabytes",
            m.trim()
        ));
    }
    let settings = match Settings::from_lookup(&lookup) {
        Ok(s) => Some(s),
        Err(e) => {
            problems.extend(e.errors.iter().map(ToString::to_string));
            None
        }
    };
    let secret = settings.as_ref().and_then(|s| s.webhook_secret.clone());
    match &secret {
        None if settings.is_some() => problems.push(format!(
            "{}: not set; the Lambda host refuses to start without it: its Function URL is public, and every delivery must carry this secret (Event Grid endpoint <function URL>?code=<secret>)",
            config::WEBHOOK_SECRET
        )),
        Some(s) if s.expose().chars().count() < MIN_SECRET_LEN => problems.push(format!(
            "{}: too short ({} characters); use at least {MIN_SECRET_LEN} random characters (e.g. `openssl rand -hex 24`)",
            config::WEBHOOK_SECRET,
            s.expose().chars().count()
        )),
        _ => {}
    }
    if let Some(PolicyLocation::File(p)) = settings.as_ref().map(|s| &s.policy)
        && let Err(e) = Policy::load(p)
    {
        problems.push(format!("{}: {e}", config::POLICY));
    }
    match (settings, secret) {
        (Some(settings), Some(webhook_secret)) if problems.is_empty() => Ok(Prepared {
            settings,
            webhook_secret,
        }),
        _ => Err(format!(
            "invalid configuration (the Lambda host did not start):\n  - {}",
            problems.join("\n  - ")
        )),
    }
}

/// Builds the state (credential, ARM client, report sink) from prepared settings.
pub fn build_state(
    prepared: &Prepared,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(LambdaState, CredentialSource), String> {
    let (credential, source) = secrets::credential(&prepared.settings, lookup)?;
    let policy = PolicySource::from_location(
        &prepared.settings.policy,
        Some(std::sync::Arc::clone(&credential)),
    )?;
    let state = LambdaState::from_settings(
        &prepared.settings,
        policy,
        prepared.webhook_secret.clone(),
        credential,
    )?;
    Ok((state, source))
}

/// Serves invocations from the Runtime API (`AWS_LAMBDA_RUNTIME_API`) until it goes away.
pub async fn serve(state: LambdaState) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let state = state.clone();
        async move { handler::handle(&state, event).await }
    }))
    .await
}

/// Why the Lambda host stopped: exit code 2 for configuration (nothing was served), 3 when the
/// Runtime API loop ended with an error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LambdaExit {
    pub code: u8,
    pub message: String,
}

/// The `lambda` subcommand.
pub async fn run_cli(args: LambdaArgs) -> ExitCode {
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(e.code),
    }
}

/// `linkguard lambda` with its outcome: reads the process environment, serves until the Runtime
/// API goes away. Errors are also logged and printed on stderr.
pub async fn run(args: LambdaArgs) -> Result<(), LambdaExit> {
    init_tracing();
    let fail = |code: u8, message: String| {
        tracing::error!("{message}");
        eprintln!("error: {message}");
        LambdaExit { code, message }
    };
    let lookup = config::process_env;
    let prepared = prepare(&args, lookup).map_err(|m| fail(EXIT_BAD_INPUT, m))?;
    let (state, source) = build_state(&prepared, &lookup).map_err(|m| fail(EXIT_BAD_INPUT, m))?;
    // The same start check as `serve`: a policy that cannot be read or does not validate stops
    // the init phase (a file was already loaded in `prepare`; a blob is read here).
    state
        .app
        .policy_source()
        .load()
        .await
        .map_err(|f| fail(EXIT_BAD_INPUT, format!("{}: {}", config::POLICY, f.message)))?;
    let s = &prepared.settings;
    tracing::info!(
        "linkguard {} Lambda host ready (policy {}, reports {}, ARM {}, credential {}{}, {} event topic(s))",
        env!("CARGO_PKG_VERSION"),
        state.app.policy_source().describe(),
        s.reports,
        s.arm_endpoint,
        s.credential,
        match source {
            CredentialSource::Settings => "",
            CredentialSource::SecretsManagerExtension =>
                " with the client secret from Secrets Manager (read at first use)",
        },
        s.event_topics.topics().len(),
    );
    if s.event_topics.is_empty() {
        tracing::warn!(
            "LINKGUARD_EVENT_TOPICS is empty: every Event Grid event is ignored; only scheduled and operator audits act"
        );
    }
    serve(state).await.map_err(|e| {
        fail(
            EXIT_FAILED,
            format!("the Lambda Runtime API loop ended: {e}"),
        )
    })
}

/// Lambda's advanced logging controls: `AWS_LAMBDA_LOG_FORMAT=JSON` for JSON lines,
/// `AWS_LAMBDA_LOG_LEVEL` (else `LINKGUARD_LOG`, else `RUST_LOG`, else `info`) for the level. No
/// timestamps: CloudWatch stamps every line. `lambda_runtime` logs every raw event at TRACE level,
/// and a Function URL event carries the webhook secret in its query string: those lines are
/// dropped whatever the level.
fn init_tracing() {
    use tracing_subscriber::filter::{EnvFilter, filter_fn};
    use tracing_subscriber::prelude::*;
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let level = var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| var("LINKGUARD_LOG"))
        .or_else(|| var("RUST_LOG"))
        .unwrap_or_else(|| "info".into())
        .to_ascii_lowercase();
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let no_raw_events = filter_fn(|meta| {
        !(*meta.level() == tracing::Level::TRACE && meta.target().starts_with("lambda_runtime"))
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_writer(std::io::stdout);
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    // A subscriber set by the embedder stays.
    let _ = if json {
        tracing_subscriber::registry()
            .with(layer.json().with_filter(filter).with_filter(no_raw_events))
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(layer.with_filter(filter).with_filter(no_raw_events))
            .try_init()
    };
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<&str, String> = pairs.into_iter().collect();
        move |k| map.get(k).cloned()
    }

    fn base(policy: &std::path::Path) -> Vec<(&'static str, String)> {
        vec![
            (RUNTIME_API, "127.0.0.1:9001".into()),
            ("AWS_LAMBDA_FUNCTION_NAME", "linkguard".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            (config::POLICY, policy.display().to_string()),
            (config::WEBHOOK_SECRET, "0123456789abcdef0123".into()),
        ]
    }

    #[test]
    fn refuses_to_start_without_the_webhook_secret() {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("p.toml");
        std::fs::write(&policy, "version = 1\n").unwrap();
        assert!(prepare(&LambdaArgs::default(), lookup(base(&policy))).is_ok());

        let mut env = base(&policy);
        env.retain(|(k, _)| *k != config::WEBHOOK_SECRET);
        let e = prepare(&LambdaArgs::default(), lookup(env)).unwrap_err();
        assert!(
            e.contains("LINKGUARD_WEBHOOK_SECRET: not set") && e.contains("refuses to start"),
            "{e}"
        );

        let mut env = base(&policy);
        env.push((config::WEBHOOK_SECRET, "  ".into()));
        env.retain(|(k, v)| *k != config::WEBHOOK_SECRET || v.trim().is_empty());
        let e = prepare(&LambdaArgs::default(), lookup(env)).unwrap_err();
        assert!(e.contains("LINKGUARD_WEBHOOK_SECRET: not set"), "{e}");

        let mut env = base(&policy);
        env.retain(|(k, _)| *k != config::WEBHOOK_SECRET);
        env.push((config::WEBHOOK_SECRET, "short-secret".into()));
        let e = prepare(&LambdaArgs::default(), lookup(env)).unwrap_err();
        assert!(
            e.contains("too short (12 characters)") && !e.contains("short-secret"),
            "{e}"
        );
    }

    #[test]
    fn lists_every_problem_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "version = 1\nmode = \"sometimes\"\n").unwrap();
        let mut env = base(&bad);
        env.retain(|(k, _)| !k.starts_with("AWS_LAMBDA_FUNCTION_M"));
        env.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots".into()));
        env.retain(|(k, _)| *k != "AWS_LAMBDA_FUNCTION_VERSION");
        env.push((config::CREDENTIAL, "password".into()));
        let e = prepare(&LambdaArgs::default(), lookup(env)).unwrap_err();
        for needle in [
            "AWS_LAMBDA_FUNCTION_VERSION: not set",
            "`lots` is not a number",
            "LINKGUARD_CREDENTIAL",
        ] {
            assert!(e.contains(needle), "{needle} missing from {e}");
        }
        // The policy is checked once the settings are readable; a flag overrides the variable.
        let env = base(&bad);
        let e = prepare(&LambdaArgs::default(), lookup(env)).unwrap_err();
        assert!(
            e.contains("LINKGUARD_POLICY: ") && e.contains("bad.toml:2"),
            "{e}"
        );
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "version = 1\n").unwrap();
        let args = LambdaArgs {
            policy: Some(good.clone()),
            ..LambdaArgs::default()
        };
        assert_eq!(
            prepare(&args, lookup(base(&bad))).unwrap().settings.policy,
            PolicyLocation::File(good.clone())
        );
        let url = vec![(
            config::POLICY,
            "https://a.blob.core.windows.net/c/p.toml?sig=SECRET".to_string(),
        )];
        let mut env = base(&good);
        env.retain(|(k, _)| *k != config::POLICY);
        env.extend(url);
        // A blob URL is accepted here and read with the credential in `run`.
        let p = prepare(&LambdaArgs::default(), lookup(env)).unwrap();
        assert!(matches!(p.settings.policy, PolicyLocation::Url(_)));
        assert!(!format!("{p:?}").contains("SECRET"));
    }
}
