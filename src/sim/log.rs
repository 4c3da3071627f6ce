//! The sandbox's request log: counts by operation, method and status, plus the latest requests, so
//! tests can assert how many ARM calls a run made. Admin routes (`/_sim/...`) are not counted.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

/// How many individual requests are kept (counts are never trimmed).
const KEEP: usize = 10_000;

/// One ARM request as the sandbox saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// 1-based position since the last reset.
    pub seq: u64,
    pub method: String,
    /// Path without the query.
    pub path: String,
    pub api_version: Option<String>,
    /// Operation name as in `arm::operations` (or `get-private-link-resource`); `None` when the path
    /// matched no operation.
    pub operation: Option<String>,
    /// HTTP status answered; `None` when the connection was dropped without an answer.
    pub status: Option<u16>,
    /// The injected fault, if any: `throttle`, `bucket`, `error500`, `error503`, `drop`, `lro-fail`.
    pub fault: Option<String>,
}

/// A snapshot of the counters (and the latest requests).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    pub total: u64,
    pub by_operation: BTreeMap<String, u64>,
    pub by_method: BTreeMap<String, u64>,
    /// Status code as text, or `dropped`.
    pub by_status: BTreeMap<String, u64>,
    /// Injected faults by kind.
    pub faults: BTreeMap<String, u64>,
    /// The latest requests, oldest first (at most 10,000).
    pub log: Vec<RequestRecord>,
}

impl RequestStats {
    /// Requests counted under this operation name.
    pub fn count(&self, operation: &str) -> u64 {
        self.by_operation.get(operation).copied().unwrap_or(0)
    }
    pub fn count_method(&self, method: &str) -> u64 {
        self.by_method.get(method).copied().unwrap_or(0)
    }
    pub fn count_status(&self, status: u16) -> u64 {
        self.by_status
            .get(&status.to_string())
            .copied()
            .unwrap_or(0)
    }
    pub fn count_fault(&self, fault: &str) -> u64 {
        self.faults.get(fault).copied().unwrap_or(0)
    }
}

#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    next_seq: u64,
    total: u64,
    by_operation: BTreeMap<String, u64>,
    by_method: BTreeMap<String, u64>,
    by_status: BTreeMap<String, u64>,
    faults: BTreeMap<String, u64>,
    log: VecDeque<RequestRecord>,
}

impl RequestLog {
    /// Numbers a new request (counted when it is finished).
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub(crate) fn record(&mut self, record: RequestRecord) {
        self.total += 1;
        *self
            .by_operation
            .entry(record.operation.clone().unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
        *self.by_method.entry(record.method.clone()).or_default() += 1;
        let status = record
            .status
            .map_or_else(|| "dropped".to_string(), |s| s.to_string());
        *self.by_status.entry(status).or_default() += 1;
        if let Some(fault) = &record.fault {
            *self.faults.entry(fault.clone()).or_default() += 1;
        }
        if self.log.len() == KEEP {
            self.log.pop_front();
        }
        self.log.push_back(record);
    }

    pub(crate) fn snapshot(&self) -> RequestStats {
        RequestStats {
            total: self.total,
            by_operation: self.by_operation.clone(),
            by_method: self.by_method.clone(),
            by_status: self.by_status.clone(),
            faults: self.faults.clone(),
            log: self.log.iter().cloned().collect(),
        }
    }

    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_operation_method_status_and_fault() {
        let mut log = RequestLog::default();
        for (op, status, fault) in [
            (Some("get-registry"), Some(200), None),
            (Some("get-registry"), Some(429), Some("throttle")),
            (None, None, Some("drop")),
        ] {
            let seq = log.next_seq();
            log.record(RequestRecord {
                seq,
                method: "GET".into(),
                path: "/x".into(),
                api_version: None,
                operation: op.map(String::from),
                status,
                fault: fault.map(String::from),
            });
        }
        let stats = log.snapshot();
        assert_eq!(stats.total, 3);
        assert_eq!(stats.count("get-registry"), 2);
        assert_eq!(stats.count("unknown"), 1);
        assert_eq!(stats.count_method("GET"), 3);
        assert_eq!(stats.count_status(429), 1);
        assert_eq!(stats.by_status.get("dropped"), Some(&1));
        assert_eq!(stats.count_fault("throttle"), 1);
        assert_eq!(
            stats.log.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        log.reset();
        assert_eq!(log.snapshot(), RequestStats::default());
    }
}
