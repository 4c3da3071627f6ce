//! Use cases: audit a fleet, reconcile the registries an event names. The engine reads and writes
//! ARM only through the `Resources` port.

mod locks;
pub mod report_builder;
pub mod resources;
mod run;

pub use resources::{ResourceError, ResourceErrorKind, ResourceResult, Resources};
pub use run::{Engine, EngineOptions, RunResult};
