//! Section 4: the official Python SDK's documented health-monitor loop (registry by registry,
//! `private_endpoint_connections.list`) against `linkguard audit --dry-run`, same sandbox
//! (`linkguard sim --tls`), same estate, runs alternated so the machine's noise hits both.

use std::ffi::OsString;

use crate::audit::{ARM_LIKE, audit_once};
use crate::error::{BenchError, Result};
use crate::estate::{SUBSCRIPTION, Templates};
use crate::procs::{BenchEnv, SimChild};
use crate::results::SdkResult;
use crate::rss::{Job, measure, tail};
use crate::serve::TOKEN;
use crate::stats::{Sizes, median, median_u64};

/// (label, fault spec): the ARM-like sandbox of section 3, and one without injected faults.
pub const CONDITIONS: [(&str, &str); 2] = [
    ("20 ms latency + ARM read bucket", ARM_LIKE),
    ("no injected latency", ""),
];

pub async fn run(env: &BenchEnv, sizes: &Sizes) -> Result<Vec<SdkResult>> {
    let n = sizes.sdk_registries;
    let k = sizes.connections_per_registry;
    let estate = env.scratch.path().join(format!("estate-sdk-{n}.json"));
    Templates::load(&env.repo)?.write_estate(&estate, n, k)?;
    let mut out = Vec::new();
    for (label, faults) in CONDITIONS {
        let sim =
            SimChild::start(&env.linkguard, &estate, true, faults, env.scratch.path()).await?;
        let mut sdk_wall = Vec::new();
        let mut sdk_loop = Vec::new();
        let mut sdk_rss = Vec::new();
        let mut sdk_calls = 0;
        let mut lg_wall = Vec::new();
        let mut lg_rss = Vec::new();
        let mut lg_calls = 0;
        for _ in 0..sizes.sdk_runs.max(1) {
            let s = sdk_once(env, &sim, faults, n, k).await?;
            sdk_wall.push(s.wall_secs);
            sdk_loop.push(s.loop_secs);
            sdk_rss.push(s.max_rss_kib);
            sdk_calls = s.calls;
            let l = audit_once(env, &sim, faults, n, k).await?;
            lg_wall.push(l.wall_secs);
            lg_rss.push(l.max_rss_kib);
            lg_calls = l.total_calls;
        }
        sim.stop();
        let sdk_median = median(&sdk_wall);
        let lg_median = median(&lg_wall);
        let result = SdkResult {
            condition: label.to_string(),
            faults: faults.to_string(),
            registries: n,
            connections: n * k,
            sdk_wall_secs: sdk_wall,
            sdk_wall_secs_median: sdk_median,
            sdk_loop_secs_median: median(&sdk_loop),
            sdk_calls,
            sdk_peak_rss_kib: median_u64(&sdk_rss),
            linkguard_wall_secs: lg_wall,
            linkguard_wall_secs_median: lg_median,
            linkguard_calls: lg_calls,
            linkguard_peak_rss_kib: median_u64(&lg_rss),
            ratio: crate::cold::ratio(sdk_median, lg_median),
        };
        eprintln!(
            "bench:   {label}: SDK loop {:.2} s ({} calls), linkguard {:.2} s ({} calls): {:.1}x",
            result.sdk_wall_secs_median,
            result.sdk_calls,
            result.linkguard_wall_secs_median,
            result.linkguard_calls,
            result.ratio
        );
        out.push(result);
    }
    let _ = std::fs::remove_file(&estate);
    Ok(out)
}

struct SdkRun {
    wall_secs: f64,
    loop_secs: f64,
    max_rss_kib: u64,
    calls: u64,
}

/// One run of bench/sdk_health_monitor.py; checks it saw every registry and connection.
async fn sdk_once(
    env: &BenchEnv,
    sim: &SimChild,
    faults: &str,
    n: usize,
    k: usize,
) -> Result<SdkRun> {
    sim.reset(faults).await?;
    let ca = sim
        .ca_cert
        .as_ref()
        .ok_or_else(|| BenchError::msg("the sandbox was started without --tls"))?;
    let done = measure(
        &env.bench_exe,
        env.scratch.path(),
        Job {
            program: &env.python,
            args: vec![OsString::from(&env.sdk_script)],
            env: vec![
                ("SIM_ENDPOINT".into(), sim.endpoint.clone()),
                ("SIM_CA_CERT".into(), ca.display().to_string()),
                ("SIM_TOKEN".into(), TOKEN.into()),
                ("SIM_SUBSCRIPTION".into(), SUBSCRIPTION.into()),
            ],
        },
    )
    .await?;
    if done.measured.exit_code != Some(0) {
        return Err(BenchError::msg(format!(
            "{} {} exited {:?}: {}",
            env.python.display(),
            env.sdk_script.display(),
            done.measured.exit_code,
            tail(&done.stderr)
        )));
    }
    let line = done.stdout.lines().last().unwrap_or_default();
    let seen: serde_json::Value = serde_json::from_str(line).map_err(|e| {
        BenchError::msg(format!(
            "{} printed no JSON summary ({e}): {}",
            env.sdk_script.display(),
            tail(&done.stdout)
        ))
    })?;
    let registries = seen.get("registries").and_then(|v| v.as_u64()).unwrap_or(0);
    let connections = seen
        .get("connections")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    if (registries, connections) != (n as u64, (n * k) as u64) {
        return Err(BenchError::msg(format!(
            "the SDK loop saw {registries} registries / {connections} connections; expected {n} / {}",
            n * k
        )));
    }
    let stats = sim.requests().await?;
    Ok(SdkRun {
        wall_secs: done.measured.wall_secs,
        loop_secs: seen
            .get("loop_seconds")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0),
        max_rss_kib: done.measured.max_rss_kib,
        calls: stats.get("total").and_then(|v| v.as_u64()).unwrap_or(0),
    })
}
