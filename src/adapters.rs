//! Builds the outbound adapters (ARM client, report sink) from settings. Every host wires through
//! here, so the CLI, the Functions handler and the Lambda read one set of settings the same way.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::arm::credential::{CredentialKind, EnvSource, credential_from_config};
use crate::arm::{ArmClient, ArmClientOptions};
use crate::engine::Resources;
use crate::report::sink::{BlobSinkOptions, ReportDestination, ReportSink};

/// A setting that cannot be used: names the setting and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct SettingError {
    pub setting: &'static str,
    pub message: String,
}

fn setting(setting: &'static str, message: impl std::fmt::Display) -> SettingError {
    SettingError {
        setting,
        message: message.to_string(),
    }
}

/// How to reach ARM.
#[derive(Clone, Debug)]
pub struct ArmSettings {
    pub endpoint: String,
    pub credential: String,
    pub ca_cert: Option<std::path::PathBuf>,
}

/// Builds the ARM client behind the `Resources` port. `env` supplies credential variables
/// (`LINKGUARD_STATIC_TOKEN`, `AZURE_CLIENT_ID`, ...).
pub fn arm_client<E: EnvSource + ?Sized>(
    settings: &ArmSettings,
    env: &E,
) -> Result<ArmClient, SettingError> {
    let kind: CredentialKind = settings
        .credential
        .parse()
        .map_err(|e| setting("LINKGUARD_CREDENTIAL", e))?;
    let credential =
        credential_from_config(kind, env).map_err(|e| setting("LINKGUARD_CREDENTIAL", e))?;
    let ca_certificate_pem = match &settings.ca_cert {
        Some(path) => Some(read_file(path).map_err(|e| setting("LINKGUARD_ARM_CA_CERT", e))?),
        None => None,
    };
    let options = ArmClientOptions {
        endpoint: settings.endpoint.clone(),
        ca_certificate_pem,
        ..ArmClientOptions::default()
    };
    ArmClient::new(credential, options).map_err(|e| setting("LINKGUARD_ARM_ENDPOINT", e))
}

pub fn resources(client: ArmClient) -> Arc<dyn Resources> {
    Arc::new(client)
}

/// Builds the report sink for `LINKGUARD_REPORTS` (a directory, a container URL or a connection
/// string). A container URL without SAS authenticates with the ARM credential's identity.
pub fn report_sink<E: EnvSource + ?Sized>(
    reports: &str,
    credential: &str,
    env: &E,
) -> Result<Arc<dyn ReportSink>, SettingError> {
    let destination =
        ReportDestination::parse(reports).map_err(|e| setting("LINKGUARD_REPORTS", e))?;
    let token = match &destination {
        ReportDestination::Blob(target)
            if matches!(target.auth, crate::report::sink::BlobAuth::Token) =>
        {
            let kind: CredentialKind = credential
                .parse()
                .map_err(|e| setting("LINKGUARD_CREDENTIAL", e))?;
            Some(
                credential_from_config(kind, env)
                    .map_err(|e| setting("LINKGUARD_CREDENTIAL", e))?,
            )
        }
        _ => None,
    };
    let options = BlobSinkOptions::default().with_retries(
        4,
        Duration::from_millis(500),
        Duration::from_secs(30),
    );
    destination
        .into_sink(token, options)
        .map_err(|e| setting("LINKGUARD_REPORTS", e))
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
