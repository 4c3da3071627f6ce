//! The registry resource (`Microsoft.ContainerRegistry/registries`, api-version 2025-11-01).

use serde::{Deserialize, Serialize};

use super::connection::PrivateEndpointConnection;
use super::enums::{BypassOptions, DefaultAction, ProvisioningState, PublicNetworkAccess};
use super::id::ResourceId;
use super::nullable;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Registry {
    pub id: ResourceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    #[serde(default, deserialize_with = "nullable::default")]
    pub properties: RegistryProperties,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sku {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<ProvisioningState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_network_access: Option<PublicNetworkAccess>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_rule_set: Option<NetworkRuleSet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_rule_bypass_options: Option<BypassOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_rule_bypass_allowed_for_tasks: Option<bool>,
    #[serde(default, deserialize_with = "nullable::default")]
    pub private_endpoint_connections: Vec<PrivateEndpointConnection>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRuleSet {
    pub default_action: DefaultAction,
    #[serde(default, deserialize_with = "nullable::default")]
    pub ip_rules: Vec<IpRule>,
    /// Legacy service-endpoint rules: gone from the API since 2022, still seen in estates read with
    /// old api-versions or the CLI. Never written back.
    #[serde(default, deserialize_with = "nullable::default", skip_serializing)]
    pub virtual_network_rules: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpRule {
    /// An IPv4 address or CIDR range, as ARM stores it (`ipAddressOrRange` in az CLI output).
    #[serde(alias = "ipAddressOrRange")]
    pub value: String,
    #[serde(default = "allow", deserialize_with = "nullable::or_allow")]
    pub action: String,
}

fn allow() -> String {
    "Allow".to_string()
}

impl Registry {
    /// The registry name: from `name`, else from the id.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_else(|| self.id.name())
    }
    pub fn is_premium(&self) -> bool {
        self.sku
            .as_ref()
            .is_some_and(|s| s.name.eq_ignore_ascii_case("Premium"))
    }
    pub fn sku_name(&self) -> &str {
        self.sku.as_ref().map_or("unknown", |s| s.name.as_str())
    }
    pub fn ip_rules(&self) -> &[IpRule] {
        self.properties
            .network_rule_set
            .as_ref()
            .map_or(&[], |n| n.ip_rules.as_slice())
    }
    pub fn vnet_rule_count(&self) -> usize {
        self.properties
            .network_rule_set
            .as_ref()
            .map_or(0, |n| n.virtual_network_rules.len())
    }
    /// `networkRuleSet.defaultAction`; ARM's default when the rule set is absent is `Allow`.
    pub fn default_action(&self) -> DefaultAction {
        self.properties
            .network_rule_set
            .as_ref()
            .map_or(DefaultAction::Allow, |n| n.default_action.clone())
    }
    /// `publicNetworkAccess`; ARM's default is `Enabled`.
    pub fn public_network_access(&self) -> PublicNetworkAccess {
        self.properties
            .public_network_access
            .clone()
            .unwrap_or(PublicNetworkAccess::Enabled)
    }
    /// `networkRuleBypassOptions`; ARM's default is `AzureServices`.
    pub fn bypass_options(&self) -> BypassOptions {
        self.properties
            .network_rule_bypass_options
            .clone()
            .unwrap_or(BypassOptions::AzureServices)
    }
    pub fn tasks_bypass(&self) -> bool {
        self.properties
            .network_rule_bypass_allowed_for_tasks
            .unwrap_or(false)
    }
    pub fn connections(&self) -> &[PrivateEndpointConnection] {
        &self.properties.private_endpoint_connections
    }
}
