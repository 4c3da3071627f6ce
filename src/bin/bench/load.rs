//! The load generator: `concurrency` tokio tasks post prepared invocation bodies to `serve` over
//! keep-alive connections, timing each request client-side (send to last body byte).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// One prepared request.
#[derive(Clone)]
pub struct Prepared {
    pub invocation_id: String,
    pub body: Bytes,
}

pub struct LoadResult {
    /// Sorted ascending.
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
    /// Requests that were not answered 200, with the first few reasons.
    pub failed: usize,
    pub failures: Vec<String>,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.latencies.len() as f64 / secs
        } else {
            0.0
        }
    }
}

/// Posts every body once, `concurrency` at a time, in a closed loop.
pub async fn run(
    client: &reqwest::Client,
    url: &str,
    requests: Arc<Vec<Prepared>>,
    concurrency: usize,
) -> LoadResult {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, requests, next) = (
            client.clone(),
            url.to_string(),
            requests.clone(),
            next.clone(),
        );
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(req) = requests.get(i) else { break };
                let body = req.body.clone();
                let t0 = Instant::now();
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-azure-functions-invocationid", &req.invocation_id)
                    .body(body)
                    .send()
                    .await;
                let outcome = match sent {
                    Ok(rsp) => {
                        let status = rsp.status();
                        match rsp.bytes().await {
                            Ok(b) if status.is_success() => Ok(b.len()),
                            Ok(b) => Err(format!(
                                "{status}: {}",
                                String::from_utf8_lossy(
                                    b.get(..b.len().min(400)).unwrap_or_default()
                                )
                            )),
                            Err(e) => Err(format!("{status}: reading the body: {e}")),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                let elapsed = t0.elapsed();
                match outcome {
                    Ok(_) => latencies.push(elapsed),
                    Err(e) => failures.push(e),
                }
            }
            (latencies, failures)
        });
    }
    let mut latencies = Vec::with_capacity(requests.len());
    let mut failures = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((l, f)) => {
                latencies.extend(l);
                failures.extend(f);
            }
            Err(e) => failures.push(format!("load task failed: {e}")),
        }
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let failed = failures.len();
    failures.truncate(3);
    LoadResult {
        latencies,
        elapsed,
        failed,
        failures,
    }
}
