//! Private endpoint connections on a registry
//! (`Microsoft.ContainerRegistry/registries/privateEndpointConnections`).

use serde::{Deserialize, Serialize};

use super::enums::{ConnectionStatus, ProvisioningState};
use super::id::ResourceId;
use super::nullable;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateEndpointConnection {
    pub id: ResourceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable::default")]
    pub properties: ConnectionProperties,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_endpoint: Option<SubResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_link_service_connection_state: Option<ConnectionState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<ProvisioningState>,
}

/// `{"id": "..."}` reference to another resource.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SubResource {
    pub id: ResourceId,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionState {
    pub status: ConnectionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions_required: Option<String>,
}

impl PrivateEndpointConnection {
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_else(|| self.id.name())
    }
    /// The connection status; a connection without a state is treated as `Pending` by ARM.
    pub fn status(&self) -> ConnectionStatus {
        self.properties
            .private_link_service_connection_state
            .as_ref()
            .map_or(ConnectionStatus::Pending, |s| s.status.clone())
    }
    /// The state's description: for a Pending connection, the requester's message.
    pub fn description(&self) -> Option<&str> {
        self.properties
            .private_link_service_connection_state
            .as_ref()?
            .description
            .as_deref()
    }
    pub fn actions_required(&self) -> Option<&str> {
        self.properties
            .private_link_service_connection_state
            .as_ref()?
            .actions_required
            .as_deref()
            .filter(|a| !a.is_empty() && !a.eq_ignore_ascii_case("None"))
    }
    pub fn private_endpoint_id(&self) -> Option<&ResourceId> {
        self.properties.private_endpoint.as_ref().map(|p| &p.id)
    }
}
