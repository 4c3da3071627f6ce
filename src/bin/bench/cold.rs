//! Section 1: `linkguard serve` cold start (spawn to first 200 on `GET /`) and peak RSS after
//! serving invocations, beside the import floor of a Python function on the official SDK.

use std::ffi::OsString;
use std::sync::Arc;

use crate::error::{BenchError, Result};
use crate::load;
use crate::procs::{BenchEnv, TempDir, http_client, memory_kib};
use crate::results::ColdResults;
use crate::rig::Rig;
use crate::rss::{Job, measure};
use crate::serve::{self, ServeChild};
use crate::stats::{Sizes, median, median_u64, ms};

/// Concurrency of the invocations served before the peak RSS is read.
pub const RSS_CONCURRENCY: usize = 16;

pub async fn run(env: &BenchEnv, sizes: &Sizes) -> Result<ColdResults> {
    let mut rig = Rig::start(env, sizes.rss_invocations, sizes.connections_per_registry).await?;
    let reports = TempDir::for_reports("linkguard-bench-reports")?;

    // One untimed start first, so every timed one finds the binary in the page cache.
    start_serve(env, rig.endpoint(), &reports)
        .await?
        .guard
        .stop();
    let mut ready_ms = Vec::new();
    let mut ready_rss = Vec::new();
    let mut last: Option<ServeChild> = None;
    for _ in 0..sizes.cold_starts.max(1) {
        if let Some(previous) = last.take() {
            previous.guard.stop();
        }
        let s = start_serve(env, rig.endpoint(), &reports).await?;
        ready_ms.push(ms(s.ready));
        if let Some((_, rss)) = memory_kib(s.guard.pid()) {
            ready_rss.push(rss);
        }
        last = Some(s);
    }
    let mut serve = last.ok_or_else(|| BenchError::msg("no cold start ran"))?;

    // Half filtered, half approvals (each on a fresh Pending connection), interleaved.
    let approvals = sizes.rss_invocations / 2;
    let filtered = sizes.rss_invocations - approvals;
    let a = rig.approvals(approvals)?;
    let f = rig.filtered(filtered);
    let mut mixed = Vec::with_capacity(sizes.rss_invocations);
    for i in 0..filtered.max(approvals) {
        mixed.extend(f.get(i).cloned());
        mixed.extend(a.get(i).cloned());
    }
    let client = http_client(None)?;
    let result = load::run(
        &client,
        &serve.url("ConnectionEvents"),
        Arc::new(mixed),
        RSS_CONCURRENCY,
    )
    .await;
    if result.failed > 0 {
        return Err(BenchError::msg(format!(
            "{} of {} invocations failed while measuring RSS: {:?}",
            result.failed, sizes.rss_invocations, result.failures
        )));
    }
    let approved = rig.approved_count(approvals);
    if approved != approvals {
        return Err(BenchError::msg(format!(
            "only {approved} of {approvals} connections were approved while measuring RSS"
        )));
    }
    if !serve.guard.running() {
        return Err(BenchError::msg("linkguard serve exited while serving"));
    }
    let (hwm, rss) = memory_kib(serve.guard.pid())
        .ok_or_else(|| BenchError::msg("cannot read /proc/<serve pid>/status"))?;
    serve.guard.stop();

    let (python_secs, python_rss) = python_floor(env, sizes.cold_starts.max(1)).await?;

    let ready_median = median(&ready_ms);
    let python_median = median(&python_secs);
    let python_rss_median = median_u64(&python_rss);
    let hwm_ready = median_u64(&ready_rss);
    Ok(ColdResults {
        ready_ms,
        ready_ms_median: ready_median,
        rss_ready_kib: hwm_ready,
        invocations_served: sizes.rss_invocations,
        approvals_served: approvals,
        concurrency: RSS_CONCURRENCY,
        peak_rss_kib: hwm,
        rss_after_kib: rss,
        python_import_secs: python_secs,
        python_import_secs_median: python_median,
        python_peak_rss_kib: python_rss_median,
        python: env.python_version.clone(),
        ratio_time: ratio(python_median * 1000.0, ready_median),
        ratio_rss: ratio(python_rss_median as f64, hwm as f64),
    })
}

async fn start_serve(env: &BenchEnv, arm: &str, reports: &TempDir) -> Result<ServeChild> {
    serve::start(env, arm, reports.path()).await
}

/// `python -c "import azure.mgmt.containerregistry, azure.identity"`: wall time and peak RSS of
/// each run (after one untimed run that leaves the bytecode cache warm), through `bench rss`.
async fn python_floor(env: &BenchEnv, runs: usize) -> Result<(Vec<f64>, Vec<u64>)> {
    let job = || Job {
        program: &env.python,
        args: vec![OsString::from("-c"), OsString::from(crate::python::IMPORT)],
        env: Vec::new(),
    };
    let mut secs = Vec::new();
    let mut rss = Vec::new();
    for i in 0..=runs {
        let done = measure(&env.bench_exe, env.scratch.path(), job()).await?;
        if done.measured.exit_code != Some(0) {
            return Err(BenchError::msg(format!(
                "{} -c \"{}\" failed: {}",
                env.python.display(),
                crate::python::IMPORT,
                crate::rss::tail(&done.stderr)
            )));
        }
        if i > 0 {
            secs.push(done.measured.wall_secs);
            rss.push(done.measured.max_rss_kib);
        }
    }
    Ok((secs, rss))
}

/// `a / b`, 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}
