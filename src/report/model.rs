//! The `linkguard.report/v1` document of DESIGN 6 (contract).

use serde::{Deserialize, Serialize};

pub const REPORT_SCHEMA: &str = "linkguard.report/v1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub run: RunInfo,
    pub totals: Totals,
    pub registries: Vec<RegistrySummary>,
    pub actions: Vec<ActionRecord>,
    pub needs_attention: Vec<AttentionItem>,
    pub errors: Vec<RunError>,
    pub complete: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    Event,
    Timer,
    Http,
    Cli,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunMode {
    Enforce,
    DryRun,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub id: String,
    pub trigger: Trigger,
    pub mode: RunMode,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339.
    pub finished: String,
    pub policy_sha256: String,
    pub version: String,
    pub arm_requests: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub registries: u64,
    pub connections: u64,
    pub approved: u64,
    pub pending: u64,
    pub rejected: u64,
    pub disconnected: u64,
    /// Actions that failed in this run.
    pub failed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegistrySummary {
    pub id: String,
    pub sku: String,
    pub public_network_access: String,
    pub default_action: String,
    pub trusted_services: bool,
    pub ip_rules: u64,
    pub vnet_rules: u64,
    pub connections: u64,
    /// Connections by state after the run's actions, for charts (extension of the contract).
    #[serde(default)]
    pub by_state: StateCounts,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub approved: u64,
    pub pending: u64,
    pub rejected: u64,
    pub disconnected: u64,
    /// Any other status ARM reported.
    pub other: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Applied,
    DryRun,
    Skipped,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub registry: String,
    /// The connection id; null for a registry patch.
    pub connection: Option<String>,
    /// `approve`, `reject`, `delete`, or `patch` for posture remediation.
    pub action: String,
    pub rule: Option<String>,
    pub outcome: Outcome,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttentionItem {
    pub registry: String,
    pub connection: Option<String>,
    pub code: String,
    /// `high` | `medium` | `low` | `info` (extension of the contract: lets renderers sort). Always
    /// written; a report without it (only DESIGN's fields) still reads, with an empty severity that
    /// renderers list last.
    #[serde(default)]
    pub severity: String,
    pub message: String,
    pub fix: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunError {
    /// What the error is about: a registry id, `policy`, `storage`, `arm`...
    pub scope: String,
    pub message: String,
}
