//! Typed ARM resources, read exactly as ARM (or the az CLI) prints them.

pub mod connection;
pub mod endpoint;
pub mod enums;
pub mod estate;
pub mod id;
mod nullable;
pub mod registry;
pub mod shape;

pub use connection::{ConnectionState, PrivateEndpointConnection};
pub use endpoint::PrivateEndpoint;
pub use enums::{
    BypassOptions, ConnectionStatus, DefaultAction, ProvisioningState, PublicNetworkAccess,
};
pub use estate::{Estate, EstateError};
pub use id::{ResourceId, ResourceIdError};
pub use registry::{IpRule, NetworkRuleSet, Registry};
