//! The small JSON documents a fanned-out run keeps in the reports store besides the reports.

use serde::{Deserialize, Serialize};

use crate::report::{Report, RunMode, Trigger};

pub const MANIFEST_SCHEMA: &str = "linkguard.fanout.manifest/v1";
pub const FAILURE_SCHEMA: &str = "linkguard.fanout.failure/v1";
pub const OPEN_SCHEMA: &str = "linkguard.fanout.open/v1";

/// Written by the enqueuer before any message: what the run expects and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: String,
    pub run: String,
    pub trigger: Trigger,
    pub mode: RunMode,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339: after this the run is finalized with whatever reported.
    pub deadline: String,
    pub policy_sha256: String,
    /// The queue the messages went to, and where poisoned ones end up.
    pub queue: String,
    pub poison_queue: String,
    /// Expected subscription ids, lower case, sorted, unique.
    pub subscriptions: Vec<String>,
}

/// A subscription whose message was poisoned: written by the worker on the last allowed delivery
/// (or by the finalizer when it finds the message in the poison queue).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailureMarker {
    pub schema: String,
    pub run: String,
    pub subscription: String,
    /// Deliveries of the message (its dequeue count) when it was given up.
    pub deliveries: u32,
    pub poison_queue: String,
    /// Why the last delivery failed.
    pub error: String,
    /// RFC 3339.
    pub at: String,
    /// The last attempt's report, when the audit got that far (for people; not aggregated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

/// `fanout/open/<run id>.json`: lets the next timer run find runs it may have to finalize.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenEntry {
    pub schema: String,
    pub run: String,
    pub manifest: String,
    /// RFC 3339, copied from the manifest.
    pub deadline: String,
}

pub fn to_json<T: Serialize>(doc: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(doc).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}
