//! What every invocation needs, built once when the execution environment starts and kept across
//! its invocations (so the dedupe window spans the warm environment's lifetime): the Functions
//! host's [`AppState`] (ARM port, policy source, report store, topic allow-list, dedupe) plus the
//! webhook secret, which the Lambda host cannot run without.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;

use crate::arm::{ArmClient, ArmClientOptions, RetrySettings};
use crate::config::{Secret, Settings};
use crate::host::functions::{AppState, HandlerOptions, PolicySource, ReportStore, SinkStore};
use crate::report::sink::BlobSinkOptions;

/// Event Grid waits 30 s for an answer (DESIGN 7.2): one ARM request, retries included, gives up
/// well before that, so a delivery fails with a 5xx Event Grid retries rather than timing out.
pub const ARM_REQUEST_DEADLINE: Duration = Duration::from_secs(20);

#[derive(Clone)]
pub struct LambdaState {
    pub app: AppState,
    webhook_secret: Secret,
}

impl LambdaState {
    pub fn new(app: AppState, webhook_secret: Secret) -> Self {
        Self {
            app,
            webhook_secret,
        }
    }

    pub fn webhook_secret(&self) -> &Secret {
        &self.webhook_secret
    }

    /// Wires the adapters from validated settings: the ARM client and the report sink share one
    /// credential (blob containers without SAS authenticate with the same identity).
    pub fn from_settings(
        settings: &Settings,
        policy: PolicySource,
        webhook_secret: Secret,
        credential: Arc<dyn TokenCredential>,
    ) -> Result<Self, String> {
        let ca_certificate_pem = match &settings.arm_ca_cert {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                format!(
                    "{}: cannot read {}: {e}",
                    crate::config::ARM_CA_CERT,
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
                retry: RetrySettings {
                    total_deadline: ARM_REQUEST_DEADLINE,
                    ..RetrySettings::default()
                },
                ..ArmClientOptions::default()
            },
        )
        .map_err(|e| format!("{}: {e}", crate::config::ARM_ENDPOINT))?;
        let sink = settings
            .reports
            .clone()
            .into_sink(
                Some(credential),
                BlobSinkOptions::default().with_retries(
                    3,
                    Duration::from_millis(500),
                    Duration::from_secs(5),
                ),
            )
            .map_err(|e| e.to_string())?;
        let reports: Arc<dyn ReportStore> = Arc::new(SinkStore(sink));
        let app = AppState::new(
            Arc::new(client),
            policy,
            reports,
            HandlerOptions {
                topics: settings.event_topics.clone(),
                webhook_secret: Some(webhook_secret.clone()),
                ..HandlerOptions::default()
            },
        );
        Ok(Self::new(app, webhook_secret))
    }
}
