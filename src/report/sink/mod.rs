//! Where reports are stored (DESIGN 6): a local directory or an Azure Blob container, both with the
//! layout `runs/YYYY/MM/DD/<run id>.{json,md,html}` plus `latest.json` written last.
//!
//! Rules every sink keeps:
//! - a run's files are created, never overwritten: storing the same run again with identical bytes
//!   is recognised as already stored, with different bytes it fails ([`SinkError::AlreadyExists`]);
//! - `latest.json` is replaced only by a run at least as new (by `run.finished`) as the one it holds;
//! - any failure is an error, so the invocation fails and the platform retries it.

pub mod blob;
mod connection_string;
pub mod destination;
pub mod dir;
pub mod layout;
mod redact;
mod shared_key;

use std::fmt;

use async_trait::async_trait;

pub use blob::{BlobSink, BlobSinkOptions};
pub use destination::{
    BlobAuth, BlobTarget, DEFAULT_CONTAINER, DestinationError, REPORTS_SETTING, ReportDestination,
};
pub use dir::DirSink;
pub use layout::{ObjectKind, RenderedObject};

use super::model::Report;

/// Stores a report and its renderings.
#[async_trait]
pub trait ReportSink: Send + Sync + fmt::Debug {
    /// Stores `report` (JSON, Markdown, HTML, then `latest.json`) and says where each went.
    async fn store(&self, report: &Report) -> Result<StoredReport, SinkError>;

    /// Where this sink writes, safe to log (no keys, no SAS signature).
    fn location(&self) -> String;
}

/// What a successful [`ReportSink::store`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReport {
    pub run_id: String,
    /// In write order: JSON, Markdown, HTML, `latest.json`.
    pub objects: Vec<StoredObject>,
}

impl StoredReport {
    pub fn object(&self, kind: ObjectKind) -> Option<&StoredObject> {
        self.objects.iter().find(|o| o.kind == kind)
    }

    /// The location (path or URL without credentials) of one object.
    pub fn location(&self, kind: ObjectKind) -> Option<&str> {
        self.object(kind).map(|o| o.location.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub kind: ObjectKind,
    /// Name relative to the sink's root, e.g. `runs/2026/11/25/<run id>.json`.
    pub name: String,
    /// File path or blob URL (never with a SAS).
    pub location: String,
    pub content_type: &'static str,
    pub bytes: usize,
    pub outcome: WriteOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Newly written.
    Created,
    /// Already there with exactly these bytes (the same run stored again): nothing written.
    AlreadyStored,
    /// `latest.json` replaced.
    Replaced,
    /// `latest.json` left alone: it holds a newer run (named here).
    KeptNewer { run_id: String },
}

/// Why a report was not stored. Messages never contain account keys or SAS signatures.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("report field `{field}` {problem}")]
    InvalidReport {
        field: &'static str,
        problem: String,
    },

    #[error(
        "{location} already exists with different content: a stored report is never overwritten; \
         give each run its own id (run ids must be unique)"
    )]
    AlreadyExists { location: String },

    #[error("writing {location} failed: {source}")]
    Io {
        location: String,
        #[source]
        source: std::io::Error,
    },

    #[error("storing {location} failed{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Storage {
        location: String,
        status: Option<u16>,
        /// The storage error code, e.g. `AuthorizationFailure`.
        code: Option<String>,
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_error_names_location_and_status() {
        let e = SinkError::Storage {
            location: "http://127.0.0.1:1/acct/c/latest.json".into(),
            status: Some(403),
            code: Some("AuthorizationFailure".into()),
            message: "denied".into(),
        };
        assert_eq!(
            e.to_string(),
            "storing http://127.0.0.1:1/acct/c/latest.json failed (HTTP 403): denied"
        );
    }
}
