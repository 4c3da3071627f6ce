//! Health reports (DESIGN 6): the document, its renderings and where it is stored.

pub mod model;

pub use model::*;
