//! Health reports (DESIGN 6): the document, its renderings and where it is stored.
//!
//! - [`model`]: the `linkguard.report/v1` document (pure core);
//! - [`render`]: JSON, text, Markdown and self-contained HTML renderings (pure);
//! - [`sink`]: the [`ReportSink`] trait, the directory and Azure Blob sinks, and
//!   [`ReportDestination`] (the `LINKGUARD_REPORTS` setting);
//! - [`schema`]: the JSON Schema of the document;
//! - [`cli`]: `linkguard report render|summary`.

pub mod cli;
pub mod model;
pub mod render;
pub mod schema;
pub mod sink;

pub use model::*;
pub use sink::{ReportDestination, ReportSink, SinkError, StoredReport};
