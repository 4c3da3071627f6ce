//! Every figure of a run, serializable (the `--json` output) and rendered by `render`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::machine::{Machine, loadavg};
use crate::stats::Sizes;

#[derive(Debug, Serialize)]
pub struct Results {
    pub machine: Machine,
    pub sizes: Sizes,
    pub cold: Option<ColdResults>,
    pub invocations: Vec<InvocationResult>,
    pub audits: Vec<AuditResult>,
    pub sdk: Vec<SdkResult>,
    /// Wall time of the whole bench run (sections only; the build is not included).
    pub duration_secs: f64,
}

impl Results {
    pub fn new(machine: Machine, sizes: &Sizes) -> Self {
        Self {
            machine,
            sizes: sizes.clone(),
            cold: None,
            invocations: Vec::new(),
            audits: Vec::new(),
            sdk: Vec::new(),
            duration_secs: 0.0,
        }
    }

    pub fn finish(&mut self, elapsed: Duration) {
        self.duration_secs = elapsed.as_secs_f64();
        self.machine.load_end = loadavg();
    }

    pub fn invocation(&self, kind: &str, concurrency: usize) -> Option<&InvocationResult> {
        self.invocations
            .iter()
            .find(|r| r.kind == kind && r.concurrency == concurrency)
    }
}

#[derive(Debug, Serialize)]
pub struct ColdResults {
    /// Each timed cold start, spawn to first 200 on `GET /`.
    pub ready_ms: Vec<f64>,
    pub ready_ms_median: f64,
    /// VmRSS right after ready (median).
    pub rss_ready_kib: u64,
    pub invocations_served: usize,
    pub approvals_served: usize,
    pub concurrency: usize,
    /// VmHWM after serving `invocations_served`.
    pub peak_rss_kib: u64,
    /// VmRSS at the same moment.
    pub rss_after_kib: u64,
    pub python_import_secs: Vec<f64>,
    pub python_import_secs_median: f64,
    pub python_peak_rss_kib: u64,
    pub python: String,
    /// Python import time / linkguard ready time.
    pub ratio_time: f64,
    /// Python import peak RSS / linkguard peak RSS after the invocations.
    pub ratio_rss: f64,
}

#[derive(Debug, Serialize)]
pub struct InvocationResult {
    /// `filtered` or `approval`.
    pub kind: String,
    pub concurrency: usize,
    /// Invocations per run.
    pub invocations: usize,
    /// Timed runs; p50, p99 and invocations/s are medians over them, max the worst of all.
    pub runs: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub per_second: f64,
    pub arm_calls_per_invocation: f64,
    pub arm_calls_by_operation: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct AuditResult {
    pub registries: usize,
    pub connections: usize,
    pub faults: String,
    pub wall_secs: Vec<f64>,
    pub wall_secs_median: f64,
    pub peak_rss_kib: u64,
    pub list_calls: u64,
    /// ceil(registries / page size).
    pub expected_list_calls: u64,
    pub page_size: usize,
    pub total_calls: u64,
    /// Requests the sandbox answered 429 (token bucket).
    pub throttled: u64,
    pub calls_by_operation: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct SdkResult {
    pub condition: String,
    pub faults: String,
    pub registries: usize,
    pub connections: usize,
    /// Process wall time of `python bench/sdk_health_monitor.py` (imports included).
    pub sdk_wall_secs: Vec<f64>,
    pub sdk_wall_secs_median: f64,
    /// The loop alone, as the script measures it.
    pub sdk_loop_secs_median: f64,
    pub sdk_calls: u64,
    pub sdk_peak_rss_kib: u64,
    pub linkguard_wall_secs: Vec<f64>,
    pub linkguard_wall_secs_median: f64,
    pub linkguard_calls: u64,
    pub linkguard_peak_rss_kib: u64,
    /// SDK wall / linkguard wall.
    pub ratio: f64,
}
