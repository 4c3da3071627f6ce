//! Use cases: audit a fleet, reconcile the registries an event names.

pub mod resources;

pub use resources::{ResourceError, ResourceErrorKind, ResourceResult, Resources};
