//! The policy file (DESIGN 4): its validated form, and evaluation as pure functions
//! `(registry, connections, resolved endpoints, policy) -> Plan`.

mod evaluate;
mod load;
pub mod matchers;

use serde::Deserialize;

pub use evaluate::{Endpoints, evaluate_estate, evaluate_registry};
pub use load::PolicyError;
use matchers::{NameGlobs, SubnetSet};

use crate::model::{DefaultAction, PublicNetworkAccess, Registry};

/// A validated policy.
#[derive(Clone, Debug)]
pub struct Policy {
    pub mode: Mode,
    pub scope: Scope,
    pub connections: ConnectionPolicy,
    pub network: NetworkPolicy,
    /// sha256 of the file's bytes, for reports.
    pub sha256: String,
    /// Where it was read from, for messages.
    pub source: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Enforce,
    DryRun,
}

/// Which registries are governed; `None` = any.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Lower-cased subscription ids.
    pub subscriptions: Option<Vec<String>>,
    pub resource_groups: Option<NameGlobs>,
    pub registries: Option<NameGlobs>,
    pub exclude_registries: Option<NameGlobs>,
}

#[derive(Clone, Debug, Default)]
pub struct ConnectionPolicy {
    pub default: PendingDefault,
    pub revoke_approved: bool,
    pub delete_disconnected: bool,
    pub rules: Vec<Rule>,
}

/// What happens to a Pending connection no rule matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PendingDefault {
    #[default]
    Leave,
    Reject,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Approve,
    Reject,
    Leave,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub action: RuleAction,
    /// Template written to the connection state; placeholders `{rule}` `{registry}` `{endpoint}`.
    pub description: Option<String>,
    /// `None`: the rule matches every connection.
    pub matcher: Option<RuleMatch>,
}

/// Every present key must hold; within a key, any listed value may match.
#[derive(Clone, Debug, Default)]
pub struct RuleMatch {
    pub subscriptions: Option<Vec<String>>,
    pub resource_groups: Option<NameGlobs>,
    pub private_endpoint_names: Option<NameGlobs>,
    pub subnets: Option<SubnetSet>,
    pub request_message: Option<regex::Regex>,
    pub registries: Option<NameGlobs>,
}

/// `"allow"` / `"deny"` for the trusted-services and tasks bypasses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Toggle {
    Allow,
    Deny,
}

#[derive(Clone, Debug, Default)]
pub struct NetworkPolicy {
    pub public_network_access: Option<PublicNetworkAccess>,
    pub default_action: Option<DefaultAction>,
    pub trusted_services: Option<Toggle>,
    pub tasks_bypass: Option<Toggle>,
    pub allowed_ip_ranges: Option<Vec<ipnet::IpNet>>,
    pub forbid_vnet_rules: bool,
    pub remediate: bool,
}

impl Policy {
    /// True when a rule needs the endpoint's subnet, so endpoints must be resolved through ARM.
    pub fn needs_endpoints(&self) -> bool {
        self.connections
            .rules
            .iter()
            .any(|r| r.matcher.as_ref().is_some_and(|m| m.subnets.is_some()))
    }

    /// Whether the registry is governed by this policy.
    pub fn governs(&self, registry: &Registry) -> bool {
        let id = &registry.id;
        if let Some(subs) = &self.scope.subscriptions
            && !subs
                .iter()
                .any(|s| s.eq_ignore_ascii_case(id.subscription()))
        {
            return false;
        }
        if let Some(rgs) = &self.scope.resource_groups
            && !id.resource_group().is_some_and(|rg| rgs.is_match(rg))
        {
            return false;
        }
        let name = registry.name();
        if let Some(names) = &self.scope.registries
            && !names.is_match(name)
        {
            return false;
        }
        !self
            .scope
            .exclude_registries
            .as_ref()
            .is_some_and(|ex| ex.is_match(name))
    }

    /// Same as `governs`, from the id alone (events name a registry before it is read).
    pub fn governs_id(&self, id: &crate::model::ResourceId) -> bool {
        let stub = Registry {
            id: id.clone(),
            name: None,
            location: None,
            sku: None,
            properties: Default::default(),
        };
        self.governs(&stub)
    }

    /// Subscriptions named in the scope, if any (empty scope = every subscription the identity sees).
    pub fn scoped_subscriptions(&self) -> Option<&[String]> {
        self.scope.subscriptions.as_deref()
    }
}

#[cfg(test)]
mod tests;
