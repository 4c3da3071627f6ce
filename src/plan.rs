//! What linkguard decided: one decision per connection, findings per registry and connection, and
//! registry patches, each carrying the rule (or the policy key) that produced it and a reason a
//! person can read. Pure data; `policy::evaluate` builds it, the engine applies it.

use serde::{Deserialize, Serialize};

use crate::model::{
    BypassOptions, ConnectionStatus, DefaultAction, IpRule, PublicNetworkAccess, ResourceId,
};

pub const PLAN_SCHEMA: &str = "linkguard.plan/v1";

/// What to do with one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Approve,
    Reject,
    Delete,
    Keep,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Delete => "delete",
            Action::Keep => "keep",
        }
    }
    /// True when applying the decision writes to ARM.
    pub fn is_change(self) -> bool {
        self != Action::Keep
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

/// Finding codes of DESIGN 4.2 (contract).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingCode {
    PublicNetworkAccess,
    DefaultAction,
    TrustedServices,
    TasksBypass,
    IpRuleOutsideAllowed,
    VnetRulesForbidden,
    VnetRulesWithPrivateLink,
    TrustedServicesBlocked,
    SkuNotPremium,
    ConnectionPending,
    ConnectionDisconnected,
    ConnectionProvisioningFailed,
    ConnectionActionRequired,
    ApprovedNotAllowed,
    EndpointUnresolved,
}

impl FindingCode {
    pub const ALL: [FindingCode; 15] = [
        FindingCode::PublicNetworkAccess,
        FindingCode::DefaultAction,
        FindingCode::TrustedServices,
        FindingCode::TasksBypass,
        FindingCode::IpRuleOutsideAllowed,
        FindingCode::VnetRulesForbidden,
        FindingCode::VnetRulesWithPrivateLink,
        FindingCode::TrustedServicesBlocked,
        FindingCode::SkuNotPremium,
        FindingCode::ConnectionPending,
        FindingCode::ConnectionDisconnected,
        FindingCode::ConnectionProvisioningFailed,
        FindingCode::ConnectionActionRequired,
        FindingCode::ApprovedNotAllowed,
        FindingCode::EndpointUnresolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingCode::PublicNetworkAccess => "public-network-access",
            FindingCode::DefaultAction => "default-action",
            FindingCode::TrustedServices => "trusted-services",
            FindingCode::TasksBypass => "tasks-bypass",
            FindingCode::IpRuleOutsideAllowed => "ip-rule-outside-allowed",
            FindingCode::VnetRulesForbidden => "vnet-rules-forbidden",
            FindingCode::VnetRulesWithPrivateLink => "vnet-rules-with-private-link",
            FindingCode::TrustedServicesBlocked => "trusted-services-blocked",
            FindingCode::SkuNotPremium => "sku-not-premium",
            FindingCode::ConnectionPending => "connection-pending",
            FindingCode::ConnectionDisconnected => "connection-disconnected",
            FindingCode::ConnectionProvisioningFailed => "connection-provisioning-failed",
            FindingCode::ConnectionActionRequired => "connection-action-required",
            FindingCode::ApprovedNotAllowed => "approved-not-allowed",
            FindingCode::EndpointUnresolved => "endpoint-unresolved",
        }
    }

    /// How urgent the finding is; fixed per code so reports sort the same everywhere.
    pub fn severity(self) -> Severity {
        match self {
            FindingCode::PublicNetworkAccess
            | FindingCode::DefaultAction
            | FindingCode::IpRuleOutsideAllowed
            | FindingCode::VnetRulesWithPrivateLink
            | FindingCode::ApprovedNotAllowed
            | FindingCode::ConnectionProvisioningFailed => Severity::High,
            FindingCode::TrustedServices
            | FindingCode::TasksBypass
            | FindingCode::VnetRulesForbidden
            | FindingCode::TrustedServicesBlocked
            | FindingCode::SkuNotPremium
            | FindingCode::ConnectionPending
            | FindingCode::ConnectionActionRequired
            | FindingCode::EndpointUnresolved => Severity::Medium,
            FindingCode::ConnectionDisconnected => Severity::Low,
        }
    }
}

impl std::fmt::Display for FindingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub registry: ResourceId,
    pub connection: ResourceId,
    pub private_endpoint: Option<ResourceId>,
    pub status: ConnectionStatus,
    pub action: Action,
    /// The rule that decided; `None` when `connections.default` (or a fixed state rule) applied.
    pub rule: Option<String>,
    pub reason: String,
    /// Text written to the connection state's description when the action is approve or reject.
    #[serde(skip)]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub code: FindingCode,
    pub severity: Severity,
    pub registry: ResourceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ResourceId>,
    pub message: String,
    pub fix: String,
}

impl Finding {
    pub fn new(
        code: FindingCode,
        registry: &ResourceId,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            code,
            severity: code.severity(),
            registry: registry.clone(),
            connection: None,
            message: message.into(),
            fix: fix.into(),
        }
    }
    pub fn on_connection(mut self, connection: &ResourceId) -> Self {
        self.connection = Some(connection.clone());
        self
    }
}

/// The registry properties to PATCH back to policy; only what differs is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_network_access: Option<PublicNetworkAccess>,
    /// Sent whole: ARM replaces `ipRules` and requires `defaultAction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_rule_set: Option<PatchNetworkRuleSet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_rule_bypass_options: Option<BypassOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_rule_bypass_allowed_for_tasks: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchNetworkRuleSet {
    pub default_action: DefaultAction,
    pub ip_rules: Vec<IpRule>,
}

impl RegistryPatch {
    pub fn is_empty(&self) -> bool {
        self == &RegistryPatch::default()
    }
    /// The ARM request body: `{"properties": {...}}`.
    pub fn to_arm_body(&self) -> serde_json::Value {
        serde_json::json!({ "properties": self })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Remediation {
    pub registry: ResourceId,
    pub patch: RegistryPatch,
    /// Finding codes this patch fixes.
    pub fixes: Vec<FindingCode>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub schema: String,
    pub decisions: Vec<Decision>,
    pub findings: Vec<Finding>,
    /// Registry patches (only with `remediate = true`); empty otherwise.
    #[serde(default)]
    pub remediations: Vec<Remediation>,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            schema: PLAN_SCHEMA.to_string(),
            decisions: Vec::new(),
            findings: Vec::new(),
            remediations: Vec::new(),
        }
    }
}

impl Plan {
    pub fn extend(&mut self, other: Plan) {
        self.decisions.extend(other.decisions);
        self.findings.extend(other.findings);
        self.remediations.extend(other.remediations);
    }
    /// Exit-code rule of DESIGN 3: something needs a person (a finding above `info`) or a change is
    /// still to be made.
    pub fn needs_attention(&self) -> bool {
        self.findings.iter().any(|f| f.severity != Severity::Info)
            || self.decisions.iter().any(|d| d.action.is_change())
            || !self.remediations.is_empty()
    }
}
