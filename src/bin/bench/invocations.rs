//! Section 2: `ConnectionEvents` invocation latency and throughput against `serve` backed by the
//! in-process sandbox (no injected latency), at each concurrency, for events linkguard filters out
//! and for events that end in an approval.

use crate::error::{BenchError, Result};
use crate::load::{self, LoadResult};
use crate::procs::{BenchEnv, TempDir, http_client};
use crate::results::InvocationResult;
use crate::rig::Rig;
use crate::serve;
use crate::stats::{Sizes, ms, percentile};

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
            eprintln!(
                "bench:   {:8} c={c:<3} p50 {:.3} ms  p99 {:.3} ms  {:.0}/s",
                kind.as_str(),
                ms(percentile(&result.latencies, 50.0)),
                ms(percentile(&result.latencies, 99.0)),
                result.per_second()
            );
            out.push(row(kind.as_str(), c, n, &result, &arm));
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
    out.push(row(DISK_KIND, 1, n, &result, &arm));
    Ok(out)
}

/// The kind of the extra row with the reports on disk.
pub const DISK_KIND: &str = "approval, reports on local disk";

fn row(
    kind: &str,
    c: usize,
    n: usize,
    result: &LoadResult,
    arm: &linkguard::sim::RequestStats,
) -> InvocationResult {
    InvocationResult {
        kind: kind.to_string(),
        concurrency: c,
        invocations: n,
        p50_ms: ms(percentile(&result.latencies, 50.0)),
        p99_ms: ms(percentile(&result.latencies, 99.0)),
        max_ms: ms(percentile(&result.latencies, 100.0)),
        per_second: result.per_second(),
        arm_calls_per_invocation: arm.total as f64 / n.max(1) as f64,
        arm_calls_by_operation: arm.by_operation.clone(),
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
