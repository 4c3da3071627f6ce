//! The ARM client behind the `Resources` port (DESIGN 5).

pub mod client;
pub mod credential;
mod error;
pub mod lro;
pub mod operations;
mod policies;
pub mod retry;

pub use client::{ArmClient, ArmClientError, ArmClientOptions, DEFAULT_ENDPOINT, DEFAULT_SCOPE};
pub use credential::{
    CredentialError, CredentialKind, EnvSource, ProcessEnv, StaticTokenCredential,
    credential_from_config,
};
pub use lro::LroSettings;
pub use retry::RetrySettings;
