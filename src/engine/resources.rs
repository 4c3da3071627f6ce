//! The `Resources` port: everything the engine reads from and writes to ARM. The ARM client and
//! test doubles implement it; the engine knows nothing else about ARM.

use async_trait::async_trait;

use crate::model::{
    ConnectionState, PrivateEndpoint, PrivateEndpointConnection, Registry, ResourceId,
};
use crate::plan::RegistryPatch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceErrorKind {
    /// 404: the resource is gone.
    NotFound,
    /// 401/403: the identity may not read or write it (or it lives in another tenant).
    Forbidden,
    /// 429, 5xx, connection trouble after retries ran out: worth trying again later.
    Transient,
    /// A long-running operation ended `Failed` or `Canceled`, or timed out.
    OperationFailed,
    /// A response that does not follow the contract, or another 4xx.
    Invalid,
}

#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct ResourceError {
    pub kind: ResourceErrorKind,
    pub status: Option<u16>,
    /// ARM's `error.code` when the response carried one.
    pub code: Option<String>,
    pub message: String,
}

impl ResourceError {
    pub fn new(kind: ResourceErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            code: None,
            message: message.into(),
        }
    }
    pub fn is_transient(&self) -> bool {
        self.kind == ResourceErrorKind::Transient
    }
}

pub type ResourceResult<T> = Result<T, ResourceError>;

#[async_trait]
pub trait Resources: Send + Sync {
    /// Subscription ids the identity can see (`GET /subscriptions`).
    async fn list_subscriptions(&self) -> ResourceResult<Vec<String>>;
    /// Registries of a subscription, or of one resource group, every page.
    async fn list_registries(
        &self,
        subscription: &str,
        resource_group: Option<&str>,
    ) -> ResourceResult<Vec<Registry>>;
    async fn get_registry(&self, id: &ResourceId) -> ResourceResult<Registry>;
    /// PATCH the registry's properties; waits for the long-running operation.
    async fn patch_registry(
        &self,
        id: &ResourceId,
        patch: &RegistryPatch,
    ) -> ResourceResult<Registry>;
    async fn get_connection(&self, id: &ResourceId) -> ResourceResult<PrivateEndpointConnection>;
    /// PUT the connection state (approve / reject); waits for the long-running operation.
    async fn set_connection_state(
        &self,
        id: &ResourceId,
        state: &ConnectionState,
    ) -> ResourceResult<PrivateEndpointConnection>;
    /// DELETE the connection; waits for the long-running operation. Gone already is success.
    async fn delete_connection(&self, id: &ResourceId) -> ResourceResult<()>;
    async fn get_private_endpoint(&self, id: &ResourceId) -> ResourceResult<PrivateEndpoint>;
    /// ARM requests sent so far (retries and polls included), for the report.
    fn request_count(&self) -> u64;
}
