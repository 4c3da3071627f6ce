//! The notes under the tables: how each figure was taken, and for every missed target, why (with
//! the figures of the same run that show it).

use crate::results::Results;

pub fn notes(r: &Results) -> Vec<String> {
    let mut n = Vec::new();
    let m = &r.machine;
    n.push(format!(
        "The machine has {} logical cores shared with other work (load average {} at the start, {} at the end): the bench, the sandbox and linkguard compete for the same cores, so the figures are noisy; each is a median of repeated runs.",
        m.cores, m.load_start, m.load_end
    ));
    if let Some(c) = &r.cold {
        n.push(format!(
            "Cold start: `linkguard serve` spawned with the Functions host's environment (`FUNCTIONS_CUSTOMHANDLER_PORT` and the `LINKGUARD_*` settings pointing at the sandbox); the bench probes `GET /` over a plain socket every 100 µs and stops the clock at the first `200`. One untimed start precedes the {} timed ones so the binary is in the page cache (the Python runs get the same untimed warm-up, which also leaves their bytecode cache warm).",
            c.ready_ms.len()
        ));
        n.push(format!(
            "Memory: linkguard's peak RSS is `VmHWM` from `/proc/<pid>/status` of the `serve` process after it served {} invocations ({} filtered, {} approvals, interleaved, concurrency {}). Peak RSS of processes that exit (Python, `linkguard audit`) is `ru_maxrss` of `getrusage(RUSAGE_CHILDREN)` in a wrapper whose only child is the measured command (the same high-water mark).",
            c.invocations_served,
            c.invocations_served - c.approvals_served,
            c.approvals_served,
            c.concurrency
        ));
    }
    if !r.invocations.is_empty() {
        n.push("Invocations: the Event Grid event is the `ResourceWriteSuccess` example of the Event Grid docs (`fixtures/eventgrid/docs.event-schema-subscriptions.ResourceWriteSuccess.json`) inside the Functions envelope of `fixtures/functions/eventgrid-invocation.json` (`Data` keyed by the trigger's binding name from `function/ConnectionEvents/function.json`), with a fresh event id each. Filtered: the placeholders filled with the watched subscription and a storage account (`Microsoft.Storage/storageAccounts/write`, ignored without an ARM call). Approval: subject, `resourceUri` and operation set to a connection write (`Microsoft.ContainerRegistry/registries/privateEndpointConnections/write`) on a registry that was given a fresh Pending connection just before the run (one per invocation, each on its own registry); the bench checks every one ended Approved and counted one PUT each.".into());
        n.push("Invocation figures: a closed loop of N tokio tasks (N = concurrency) over keep-alive connections, latency timed client-side from send to the last byte of the response, percentiles nearest-rank over every invocation of the configuration; a short untimed warm-up opens the connections first. The sandbox runs inside the bench process (its state is reset and seeded through its in-process API), with long-running operations that finish on the first poll with `Retry-After: 0`; each approval reads the registry, PUTs the connection, polls the operation and reads the connection back, and stores a report (JSON, Markdown, HTML, `latest.json`) in a local directory.".into());
    }
    if let Some(a) = r.audits.first() {
        n.push(format!(
            "Audit scale: estates generated from the sample registry of `examples/estate.json` (ids substituted), policy `bench/policy.toml` (no subnet rule, so no endpoint is resolved). The sandbox is `linkguard sim` with `--faults {}` (every call waits 20 ms; ARM's read bucket of 250 tokens refilled 25/s per subscription answers 429 when empty) and its default page size, {} registries per page. The audit reads registries from the list pages (each body carries its connections), so it needs one call per page and nothing per registry.",
            a.faults, a.page_size
        ));
    }
    if !r.sdk.is_empty() {
        n.push("SDK comparison: both processes are timed from spawn to exit (the Python figure includes its imports, ~0.2 s; its loop alone is in brackets). The SDK retries the sandbox's 429s after their `Retry-After`, as it would on ARM. Counts of registries and connections are checked for both.".into());
    }
    n.extend(misses(r));
    n
}

/// One note per missed target, with the evidence from this run.
fn misses(r: &Results) -> Vec<String> {
    let mut n = Vec::new();
    if let Some(c) = &r.cold {
        if c.ready_ms_median >= 10.0 {
            let (lo, hi) = c
                .ready_ms
                .iter()
                .fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            n.push(format!(
                "Missed: ready in {:.2} ms (target < 10 ms; runs from {lo:.2} to {hi:.2} ms). Before it answers `GET /`, `serve` validates every setting, reads and compiles the policy, builds the ARM client (which loads the system's CA certificates for TLS) and the report sink, then binds; the spread between runs is scheduling noise on {} shared cores (load {} at the start).",
                c.ready_ms_median, r.machine.cores, r.machine.load_start
            ));
        }
        if (c.peak_rss_kib as f64) * 1024.0 >= 15_000_000.0 {
            n.push(format!(
                "Missed: peak RSS {:.1} MiB after {} invocations (target < 15 MB). {:.1} MiB of it is there when `serve` is ready (binary, TLS roots, runtime); the rest ({:.1} MiB) is the high-water mark of {} invocations in flight at once, each holding the registry it read, its report and that report's three renderings (JSON, Markdown, HTML) until they are stored, plus what the allocator keeps for reuse.",
                c.peak_rss_kib as f64 / 1024.0,
                c.invocations_served,
                c.rss_ready_kib as f64 / 1024.0,
                c.peak_rss_kib.saturating_sub(c.rss_ready_kib) as f64 / 1024.0,
                c.concurrency
            ));
        }
    }
    for (kind, limit) in [("filtered", 1.0), ("approval", 5.0)] {
        if let Some(x) = r.invocation(kind, 16)
            && x.p99_ms >= limit
        {
            let little = 16.0 / x.per_second.max(1.0) * 1000.0;
            n.push(format!(
                "Missed: {kind} p99 {:.2} ms at concurrency 16 (target < {limit} ms). In a closed loop the mean latency is concurrency / throughput (Little's law): 16 / {:.0} per s = {:.2} ms, with the load generator, the sandbox and `serve` sharing {} cores.",
                x.p99_ms, x.per_second, little, r.machine.cores
            ));
        }
    }
    if let Some(a) = r.audits.iter().max_by_key(|a| a.registries) {
        if a.wall_secs_median >= 10.0 {
            n.push(format!(
                "Missed: the {}-registry audit took {:.2} s (target < 10 s); {} calls, {} answered 429.",
                a.registries, a.wall_secs_median, a.total_calls, a.throttled
            ));
        }
        if a.list_calls > a.expected_list_calls {
            n.push(format!(
                "Missed: {} list calls for {} registries (at most {} expected); the excess are retries of throttled pages ({} answered 429).",
                a.list_calls, a.registries, a.expected_list_calls, a.throttled
            ));
        }
    }
    for s in &r.sdk {
        if s.ratio < 20.0 {
            n.push(format!(
                "Missed: {:.1}x against the SDK loop ({}) (target >= 20x). With no latency an ARM call costs the SDK only its own CPU ({:.2} ms per call here, {} calls), so the loop is short, while linkguard's {:.0} ms is mostly fixed cost: process start, policy and client set-up, and {} list pages each carrying a page of registries with their connections to parse. Under ARM-like conditions (the other row), where each call costs a round trip and the read bucket, the {}-fold difference in calls decides.",
                s.ratio,
                s.condition,
                s.sdk_loop_secs_median * 1000.0 / (s.sdk_calls.max(1) as f64),
                s.sdk_calls,
                s.linkguard_wall_secs_median * 1000.0,
                s.linkguard_calls,
                s.sdk_calls / s.linkguard_calls.max(1)
            ));
        }
    }
    n
}
