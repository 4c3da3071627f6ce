//! linkguard: keeps Azure Container Registry private endpoint connections and network posture in
//! the state a policy file describes.
//!
//! The pure core (`model`, `policy`, `plan`, `report::model`) does no I/O. Adapters (`arm`, `sim`,
//! report sinks, `host`) depend on the core, never the reverse.

pub mod adapters;
pub mod arm;
pub mod cli;
pub mod config;
pub mod engine;
pub mod events;
pub mod host;
pub mod model;
pub mod plan;
pub mod policy;
pub mod report;
pub mod sim;
