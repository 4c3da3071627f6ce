//! Private endpoints (`Microsoft.Network/privateEndpoints`, api-version 2025-07-01): read only to
//! learn the endpoint's subnet, which its id does not carry.

use serde::{Deserialize, Serialize};

use super::id::ResourceId;
use super::nullable;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateEndpoint {
    pub id: ResourceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable::default")]
    pub properties: EndpointProperties,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<SubnetRef>,
    #[serde(default, deserialize_with = "nullable::default")]
    pub private_link_service_connections: Vec<ServiceConnection>,
    #[serde(default, deserialize_with = "nullable::default")]
    pub manual_private_link_service_connections: Vec<ServiceConnection>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SubnetRef {
    pub id: ResourceId,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable::default")]
    pub properties: ServiceConnectionProperties,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConnectionProperties {
    /// Kept as text: it can name any provider's resource and is parsed only when needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_link_service_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_message: Option<String>,
}

impl PrivateEndpoint {
    pub fn subnet_id(&self) -> Option<&ResourceId> {
        self.properties.subnet.as_ref().map(|s| &s.id)
    }
    /// Registries this endpoint asks to reach (automatic and manual connections).
    pub fn target_registries(&self) -> Vec<ResourceId> {
        let mut out: Vec<ResourceId> = Vec::new();
        let all = self
            .properties
            .private_link_service_connections
            .iter()
            .chain(&self.properties.manual_private_link_service_connections);
        for c in all {
            let Some(target) = c.properties.private_link_service_id.as_deref() else {
                continue;
            };
            let Ok(id) = ResourceId::parse(target) else {
                continue;
            };
            if let Some(reg) = id.ancestor_of_type("Microsoft.ContainerRegistry", "registries")
                && !out.contains(&reg)
            {
                out.push(reg);
            }
        }
        out
    }
}
