//! Section 2: `ConnectionEvents` invocation latency and throughput against `serve` backed by the
//! in-process sandbox (no injected latency), at each concurrency, for events linkguard filters out
//! and for events that end in an approval.

use crate::error::{BenchError, Result};
use crate::load::{self, LoadResult};
use crate::procs::{BenchEnv, TempDir, http_client};
use crate::results::InvocationResult;
use crate::rig::Rig;
use crate::serve;
use crate::stats::{Sizes, median, ms, percentile};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Filtered,
    Approval,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Filtered => "filtered",
            Kind::Approval => "approval",
        }
    }
}

pub async fn run(env: &BenchEnv, sizes: &Sizes) -> Result<Vec<InvocationResult>> {
    let mut rig = Rig::start(env, sizes.invocations, sizes.connections_per_registry).await?;
    let reports = TempDir::for_reports("linkguard-bench-reports")?;
    let mut serve = serve::start(env, rig.endpoint(), reports.path()).await?;
    let url = serve.url("ConnectionEvents");
    let client = http_client(None)?;
    let mut out = Vec::new();
    for kind in [Kind::Filtered, Kind::Approval] {
        for &c in &sizes.concurrency {
            let n = sizes.invocations;
            let mut runs = Vec::with_capacity(sizes.invocation_runs);
            for _ in 0..sizes.invocation_runs.max(1) {
                let requests = match kind {
                    Kind::Filtered => rig.filtered(n),
                    Kind::Approval => rig.approvals(n)?,
                };
                // Opens the keep-alive connections and wakes the handler before the timed run.
                let warm = rig.filtered(c.max(1) * 4);
                let _ = load::run(&client, &url, warm, c).await;
                rig.sandbox.reset_requests();
                let result = load::run(&client, &url, requests, c).await;
                let arm = rig.sandbox.requests();
                check(
                    kind,
                    n,
                    c,
                    &result,
                    &rig,
                    arm.total,
                    arm.count("put-connection"),
                )?;
                if !serve.guard.running() {
                    return Err(BenchError::msg("linkguard serve exited during the run"));
                }
                runs.push((result, arm));
            }
            let x = row(kind.as_str(), c, n, &runs);
            eprintln!(
                "bench:   {:8} c={c:<3} p50 {:.3} ms  p99 {:.3} ms  {:.0}/s  (median of {} runs)",
                kind.as_str(),
                x.p50_ms,
                x.p99_ms,
                x.per_second,
                x.runs
            );
            out.push(x);
        }
    }
    serve.guard.stop();

    // The same approvals with the reports on this machine's disk (each object fsynced), at
    // concurrency 1, to show what a local-disk report store adds.
    let disk = TempDir::new("linkguard-bench-reports-disk")?;
    let mut serve = serve::start(env, rig.endpoint(), disk.path()).await?;
    let url = serve.url("ConnectionEvents");
    let n = (sizes.invocations / 10).max(8);
    let requests = rig.approvals(n)?;
    let _ = load::run(&client, &url, rig.filtered(4), 1).await;
    rig.sandbox.reset_requests();
    let result = load::run(&client, &url, requests, 1).await;
    let arm = rig.sandbox.requests();
    check(
        Kind::Approval,
        n,
        1,
        &result,
        &rig,
        arm.total,
        arm.count("put-connection"),
    )?;
    if !serve.guard.running() {
        return Err(BenchError::msg("linkguard serve exited during the run"));
    }
    serve.guard.stop();
    out.push(row(DISK_KIND, 1, n, &[(result, arm)]));
    Ok(out)
}

/// The kind of the extra row with the reports on disk.
pub const DISK_KIND: &str = "approval, reports on local disk";

/// One table row from the timed runs of a configuration: the median of each run's p50, p99 and
/// throughput, the worst latency of all, and ARM calls summed over the runs.
fn row(
    kind: &str,
    c: usize,
    n: usize,
    runs: &[(LoadResult, linkguard::sim::RequestStats)],
) -> InvocationResult {
    let each =
        |f: &dyn Fn(&LoadResult) -> f64| -> Vec<f64> { runs.iter().map(|(r, _)| f(r)).collect() };
    let mut by_operation = std::collections::BTreeMap::new();
    let mut arm_total = 0u64;
    for (_, arm) in runs {
        arm_total += arm.total;
        for (op, count) in &arm.by_operation {
            *by_operation.entry(op.clone()).or_insert(0) += count;
        }
    }
    let invocations_total = (n * runs.len()).max(1);
    InvocationResult {
        kind: kind.to_string(),
        concurrency: c,
        invocations: n,
        runs: runs.len(),
        p50_ms: median(&each(&|r| ms(percentile(&r.latencies, 50.0)))),
        p99_ms: median(&each(&|r| ms(percentile(&r.latencies, 99.0)))),
        max_ms: each(&|r| ms(percentile(&r.latencies, 100.0)))
            .into_iter()
            .fold(0.0, f64::max),
        per_second: median(&each(&|r| r.per_second())),
        arm_calls_per_invocation: arm_total as f64 / invocations_total as f64,
        arm_calls_by_operation: by_operation,
    }
}

/// Every invocation answered 200; filtered ones cost no ARM call; every approval approved.
fn check(
    kind: Kind,
    n: usize,
    c: usize,
    result: &LoadResult,
    rig: &Rig,
    arm_total: u64,
    puts: u64,
) -> Result<()> {
    let what = format!("{} invocations at concurrency {c}", kind.as_str());
    if result.failed > 0 || result.latencies.len() != n {
        return Err(BenchError::msg(format!(
            "{what}: {} of {n} failed: {:?}",
            result.failed, result.failures
        )));
    }
    match kind {
        Kind::Filtered if arm_total != 0 => Err(BenchError::msg(format!(
            "{what}: filtered events made {arm_total} ARM calls; they must make none"
        ))),
        Kind::Approval => {
            let approved = rig.approved_count(n);
            if approved != n || puts != n as u64 {
                Err(BenchError::msg(format!(
                    "{what}: {approved} of {n} connections approved with {puts} PUTs; every invocation must approve exactly one"
                )))
            } else {
                Ok(())
            }
        }
        Kind::Filtered => Ok(()),
    }
}
