//! Section 3: audit scale. `linkguard audit --dry-run` (a child, measured through `bench rss`)
//! against `linkguard sim` (another child) that adds latency and enforces ARM's read bucket.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use linkguard::sim::SimOptions;

use crate::error::{BenchError, Result};
use crate::estate::Templates;
use crate::procs::{BenchEnv, SimChild, TempDir, by_operation};
use crate::results::AuditResult;
use crate::rss::{Job, measure, tail};
use crate::serve::TOKEN;
use crate::stats::{Sizes, median, median_u64};

/// The sandbox conditions of the audit-scale figures: ARM-like latency and read throttling.
pub const ARM_LIKE: &str = "latency=20ms,bucket=arm";

/// One measured audit.
pub struct AuditRun {
    pub wall_secs: f64,
    pub max_rss_kib: u64,
    pub calls: BTreeMap<String, u64>,
    pub total_calls: u64,
    pub throttled: u64,
}

pub fn page_size() -> usize {
    SimOptions::default().page_size
}

pub async fn run(env: &BenchEnv, sizes: &Sizes) -> Result<Vec<AuditResult>> {
    let templates = Templates::load(&env.repo)?;
    let mut out = Vec::new();
    for &n in &sizes.audit_sizes {
        let estate = env.scratch.path().join(format!("estate-{n}.json"));
        templates.write_estate(&estate, n, sizes.connections_per_registry)?;
        let sim =
            SimChild::start(&env.linkguard, &estate, false, ARM_LIKE, env.scratch.path()).await?;
        let mut runs = Vec::new();
        for _ in 0..sizes.audit_runs.max(1) {
            runs.push(audit_once(env, &sim, ARM_LIKE, n, sizes.connections_per_registry).await?);
        }
        sim.stop();
        let _ = std::fs::remove_file(&estate);
        let wall: Vec<f64> = runs.iter().map(|r| r.wall_secs).collect();
        let rss: Vec<u64> = runs.iter().map(|r| r.max_rss_kib).collect();
        let last = runs.pop().ok_or_else(|| BenchError::msg("no audit ran"))?;
        let page = page_size();
        let result = AuditResult {
            registries: n,
            connections: n * sizes.connections_per_registry,
            faults: ARM_LIKE.to_string(),
            wall_secs: wall.clone(),
            wall_secs_median: median(&wall),
            peak_rss_kib: median_u64(&rss),
            list_calls: last.calls.get("list-registries").copied().unwrap_or(0),
            expected_list_calls: n.div_ceil(page) as u64,
            page_size: page,
            total_calls: last.total_calls,
            throttled: last.throttled,
            calls_by_operation: last.calls,
        };
        eprintln!(
            "bench:   {n:>6} registries: {:.2} s, {} calls ({} list), peak RSS {} KiB",
            result.wall_secs_median, result.total_calls, result.list_calls, result.peak_rss_kib
        );
        out.push(result);
    }
    Ok(out)
}

/// Resets the sandbox (counters, fault sequence, token buckets), runs one dry-run audit through
/// `bench rss`, checks its report covers every registry, and reads the sandbox's counters.
pub async fn audit_once(
    env: &BenchEnv,
    sim: &SimChild,
    faults: &str,
    registries: usize,
    per_registry: usize,
) -> Result<AuditRun> {
    sim.reset(faults).await?;
    let reports = TempDir::for_reports("linkguard-bench-audit")?;
    let mut args: Vec<OsString> = vec![
        "audit".into(),
        "--dry-run".into(),
        "--policy".into(),
        env.policy.clone().into(),
        "--arm-endpoint".into(),
        sim.endpoint.clone().into(),
        "--credential".into(),
        "static".into(),
        "--reports".into(),
        reports.path().into(),
    ];
    if let Some(ca) = &sim.ca_cert {
        args.push("--arm-ca-cert".into());
        args.push(ca.into());
    }
    let done = measure(
        &env.bench_exe,
        env.scratch.path(),
        Job {
            program: &env.linkguard,
            args,
            env: vec![("LINKGUARD_STATIC_TOKEN".into(), TOKEN.into())],
        },
    )
    .await?;
    // 0: nothing needs attention, 1: findings (the estate has pending connections); else a failure.
    if !matches!(done.measured.exit_code, Some(0 | 1)) {
        return Err(BenchError::msg(format!(
            "linkguard audit exited {:?}: {}",
            done.measured.exit_code,
            tail(&done.stderr)
        )));
    }
    check_report(reports.path(), registries, per_registry)?;
    let stats = sim.requests().await?;
    let throttled = stats
        .pointer("/by_status/429")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    Ok(AuditRun {
        wall_secs: done.measured.wall_secs,
        max_rss_kib: done.measured.max_rss_kib,
        calls: by_operation(&stats),
        total_calls: stats.get("total").and_then(|v| v.as_u64()).unwrap_or(0),
        throttled,
    })
}

/// The stored report covers every registry and connection, complete.
fn check_report(dir: &Path, registries: usize, per_registry: usize) -> Result<()> {
    let latest = dir.join("latest.json");
    let text = std::fs::read_to_string(&latest).map_err(|e| BenchError::io(&latest, e))?;
    let report: linkguard::report::Report = serde_json::from_str(&text)
        .map_err(|e| BenchError::msg(format!("{}: {e}", latest.display())))?;
    let want = (registries as u64, (registries * per_registry) as u64);
    let got = (report.totals.registries, report.totals.connections);
    if got != want || !report.complete {
        return Err(BenchError::msg(format!(
            "the audit report covers {} registries / {} connections (complete: {}); expected {} / {}",
            got.0, got.1, report.complete, want.0, want.1
        )));
    }
    Ok(())
}
