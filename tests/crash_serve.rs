//! kill -9 of `linkguard serve` while it handles Event Grid deliveries and a timer audit, restart,
//! redeliver: the estate converges, nothing is written twice, every report on disk is whole, and
//! the new run's report is complete (issue 8). Processes are the real binary: `linkguard sim` and
//! `linkguard serve` driven over HTTP with real invocation payloads, as the Functions host does.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

mod engine_support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use engine_support::{POLICY, SUB, estate, support_report};
use serde_json::{Value, json};

/// A child process killed (SIGKILL) when dropped, so a failing test leaves nothing behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn shared(rel: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (../shared must sit beside the repo)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn start_sim(estate_file: &Path) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_linkguard"))
        .args(["sim", "--estate", estate_file.to_str().unwrap()])
        .args([
            "--port",
            "0",
            "--retry-after",
            "0",
            "--faults",
            "latency=15ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("sim ready line {line:?}: {e}"));
    (Proc(child), ready["endpoint"].as_str().unwrap().to_string())
}

fn free_port() -> u16 {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `linkguard serve` as the Functions host starts it: settings in the environment.
async fn start_serve(dir: &Path, sim: &str) -> (Proc, String) {
    start_serve_with(dir, sim, Stdio::null()).await
}

async fn start_serve_with(dir: &Path, sim: &str, stdout: Stdio) -> (Proc, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_linkguard"))
        .arg("serve")
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("LINKGUARD_POLICY", dir.join("policy.toml"))
        .env("LINKGUARD_ARM_ENDPOINT", sim)
        .env("LINKGUARD_CREDENTIAL", "static")
        .env("LINKGUARD_STATIC_TOKEN", "t")
        .env("LINKGUARD_REPORTS", dir.join("reports"))
        .env("LINKGUARD_EVENT_TOPICS", format!("/subscriptions/{SUB}"))
        .env("LINKGUARD_LOG", "info")
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut proc = Proc(child);
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/")).await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            proc.0.try_wait().unwrap().is_none(),
            "serve exited before it was ready"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve never became ready"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    (proc, base)
}

async fn sim_get(sim: &str, path: &str) -> Value {
    let text = reqwest::Client::new()
        .get(format!("{sim}{path}"))
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn platform_conn(i: usize) -> String {
    format!(
        "{}/privateEndpointConnections/pe-platform.1",
        engine_support::registry_id(SUB, &format!("acr{i:05}"))
    )
}

/// The real Event Grid ResourceWriteSuccess with only its ids substituted, for a connection write.
fn connection_event(id: &str, connection: &str) -> Value {
    let mut ev =
        shared("eventgrid/docs.event-schema-subscriptions.ResourceWriteSuccess.json")[0].clone();
    let op = "Microsoft.ContainerRegistry/registries/privateEndpointConnections/write";
    ev["id"] = json!(id);
    ev["topic"] = json!(format!("/subscriptions/{SUB}"));
    ev["subject"] = json!(connection);
    ev["data"]["resourceUri"] = json!(connection);
    ev["data"]["operationName"] = json!(op);
    ev["data"]["subscriptionId"] = json!(SUB);
    ev["data"]["authorization"]["scope"] = json!(connection);
    ev["data"]["authorization"]["action"] = json!(op);
    ev
}

/// A ConnectionEvents invocation: the real capture's envelope, the event under its binding name.
fn event_invocation(event: &Value) -> Value {
    let mut inv = shared("functions/eventgrid-invocation.json");
    inv["Data"].as_object_mut().unwrap().remove("event");
    inv["Metadata"]["data"] = event["data"].clone();
    inv["Data"]["eventGridEvent"] = event.clone();
    inv["Metadata"]["sys"]["MethodName"] = json!("ConnectionEvents");
    inv
}

async fn invoke(base: &str, function: &str, body: &Value) -> Result<(u16, Value), String> {
    let resp = reqwest::Client::new()
        .post(format!("{base}/{function}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    Ok((
        status,
        serde_json::from_str(&text).map_err(|e| e.to_string())?,
    ))
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_serve_mid_invocations_then_redelivery_converges_without_duplicate_writes() {
    let n = 30;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("estate.json"), estate(n).to_string()).unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    let (_sim_proc, sim) = start_sim(&dir.path().join("estate.json"));
    let (mut serve, base) = start_serve(dir.path(), &sim).await;

    // The host delivers one event per new connection (at most 6 at once) while the timer fires.
    let events: Vec<Value> = (0..n)
        .map(|i| connection_event(&format!("evt-crash-{i}"), &platform_conn(i)))
        .collect();
    let timer = shared("functions/timer-invocation.json");
    let mut inflight = tokio::task::JoinSet::new();
    {
        let base = base.clone();
        let timer = timer.clone();
        inflight.spawn(async move { invoke(&base, "ScheduledAudit", &timer).await });
    }
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(6));
    for ev in &events {
        let (base, inv, sem) = (base.clone(), event_invocation(ev), sem.clone());
        inflight.spawn(async move {
            let _permit = sem.acquire_owned().await.unwrap();
            invoke(&base, "ConnectionEvents", &inv).await
        });
    }

    // Kill -9 once a few approvals are written.
    let started = Instant::now();
    loop {
        let s = sim_get(&sim, "/_sim/requests").await;
        if s["by_operation"]["put-connection"].as_u64().unwrap_or(0) >= 5 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve never got going: {}",
            s["by_operation"]
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    serve.0.kill().unwrap(); // SIGKILL: no cleanup; invocations and writes in flight are abandoned
    serve.0.wait().unwrap();
    let mut cut_off = 0;
    while let Some(r) = inflight.join_next().await {
        if r.unwrap().is_err() {
            cut_off += 1;
        }
    }
    assert!(cut_off > 0, "the kill cut invocations off mid-flight");
    let writes_before = sim_get(&sim, "/_sim/requests").await["by_operation"]["put-connection"]
        .as_u64()
        .unwrap();
    assert!(
        writes_before < n as u64,
        "killed mid-run ({writes_before} of {n} writes)"
    );

    // The host restarts the worker and Event Grid redelivers everything (same event ids; the new
    // process remembers none of them). Writes the killed process left in flight are still running
    // in ARM: the redelivery must not write those again.
    let (_serve2, base) = start_serve(dir.path(), &sim).await;
    for ev in &events {
        let (status, body) = invoke(&base, "ConnectionEvents", &event_invocation(ev))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = invoke(&base, "ScheduledAudit", &timer).await.unwrap();
    assert_eq!(status, 200, "{body}");
    // ARM finishes abandoned operations whether or not anyone polls; a last timer run then sees a
    // converged estate and writes nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = invoke(&base, "ScheduledAudit", &timer).await.unwrap();
    assert_eq!(status, 200, "{body}");

    let stats = sim_get(&sim, "/_sim/requests").await;
    assert_eq!(
        stats["by_operation"]["put-connection"], n,
        "every approval written exactly once across both processes: {}",
        stats["by_operation"]
    );
    let mut puts: HashMap<String, u64> = HashMap::new();
    for r in stats["log"].as_array().unwrap() {
        if r["method"] == "PUT" {
            *puts
                .entry(r["path"].as_str().unwrap().to_ascii_lowercase())
                .or_default() += 1;
        }
    }
    for i in 0..n {
        assert_eq!(
            puts.get(&platform_conn(i).to_ascii_lowercase()),
            Some(&1),
            "connection {i}"
        );
    }
    let estate_now = sim_get(&sim, "/_sim/estate").await;
    for reg in estate_now["registries"].as_array().unwrap() {
        for c in reg["properties"]["privateEndpointConnections"]
            .as_array()
            .unwrap()
        {
            let name = c["name"].as_str().unwrap();
            let status = &c["properties"]["privateLinkServiceConnectionState"]["status"];
            let want = if name.starts_with("pe-partner") {
                "Pending"
            } else {
                "Approved"
            };
            assert_eq!(status, want, "{name} in {}", reg["id"]);
        }
    }

    // Reports: every file whole (the kill left no torn JSON), the last one complete and converged.
    let mut files = Vec::new();
    json_files(&dir.path().join("reports"), &mut files);
    assert!(
        files.len() > n,
        "reports of both processes: {}",
        files.len()
    );
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let r: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not whole JSON ({e})", f.display()));
        assert_eq!(r["schema"], "linkguard.report/v1", "{}", f.display());
        if let Err(errors) = support_report::schema::validate(&r) {
            panic!(
                "{} violates the report schema:\n{}",
                f.display(),
                errors.join("\n")
            );
        }
    }
    let latest: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("reports/latest.json")).unwrap())
            .unwrap();
    assert_eq!(latest["run"]["trigger"], "timer");
    assert_eq!(latest["complete"], true, "{}", latest["errors"]);
    assert_eq!(latest["totals"]["approved"], 2 * n as u64);
    assert_eq!(latest["totals"]["pending"], n as u64);
    assert_eq!(latest["totals"]["failed"], 0);
    assert!(
        latest["actions"].as_array().unwrap().is_empty(),
        "nothing left to do: {}",
        latest["actions"]
    );
}

/// The Functions host stops a worker with SIGTERM. An invocation already in flight (ARM slowed by
/// the sandbox's latency fault) still gets its 200 with its write done; the process then exits 0
/// and nothing listens any more. Its log line carries the invocation id in the span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_invocation_in_flight_then_exits_0_and_refuses_connections() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("estate.json"), estate(2).to_string()).unwrap();
    std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
    let (_sim_proc, sim) = start_sim(&dir.path().join("estate.json"));
    let (mut serve, base) = start_serve_with(dir.path(), &sim, Stdio::piped()).await;
    let stdout = serve.0.stdout.take().unwrap();
    let log_lines = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    // Every ARM call now takes 700 ms: the invocation is still working when SIGTERM arrives.
    let set = reqwest::Client::new()
        .post(format!("{sim}/_sim/faults"))
        .bearer_auth("t")
        .header("content-type", "application/json")
        .body(json!({"spec": "latency=700ms"}).to_string())
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success());

    let conn = platform_conn(0);
    let inv = event_invocation(&connection_event("evt-sigterm", &conn));
    let invocation_id = "3f6c1a52-sigterm-0001";
    let call = {
        let base = base.clone();
        tokio::spawn(async move {
            let resp = reqwest::Client::new()
                .post(format!("{base}/ConnectionEvents"))
                .header("content-type", "application/json")
                .header("x-azure-functions-invocationid", invocation_id)
                .body(inv.to_string())
                .send()
                .await
                .map_err(|e| format!("the in-flight invocation was cut off: {e}"))?;
            let status = resp.status().as_u16();
            let text = resp.text().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((status, text))
        })
    };
    // SIGTERM once the invocation has reached ARM (its first call is under way).
    let started = Instant::now();
    while sim_get(&sim, "/_sim/requests").await["total"]
        .as_u64()
        .unwrap_or(0)
        == 0
    {
        assert!(started.elapsed() < Duration::from_secs(20), "no ARM call");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pid = serve.0.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success(), "kill -TERM {pid}");
    let signalled = Instant::now();
    // While the invocation is still in flight, the listener is already closed.
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "serve still accepts connections after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !call.is_finished(),
        "the listener closed while the invocation was still in flight"
    );

    let (status, text) = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the in-flight invocation must be answered")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(
        signalled.elapsed() >= Duration::from_millis(500),
        "answered {:?} after SIGTERM: it was not in flight",
        signalled.elapsed()
    );
    let estate_now = sim_get(&sim, "/_sim/estate").await;
    let found = estate_now["registries"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["properties"]["privateEndpointConnections"]
                .as_array()
                .unwrap()
                .clone()
        })
        .find(|c| c["id"].as_str().unwrap().eq_ignore_ascii_case(&conn))
        .unwrap();
    assert_eq!(
        found["properties"]["privateLinkServiceConnectionState"]["status"], "Approved",
        "the write of the in-flight invocation is done"
    );

    // The process exits 0 by itself.
    let exited = Instant::now();
    let code = loop {
        if let Some(code) = serve.0.try_wait().unwrap() {
            break code;
        }
        assert!(
            exited.elapsed() < Duration::from_secs(10),
            "serve did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(code.code(), Some(0), "exit status {code:?}");
    let refused = reqwest::Client::new()
        .get(format!("{base}/"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(
        refused.as_ref().is_err_and(reqwest::Error::is_connect),
        "nothing may listen after the exit: {refused:?}"
    );

    let lines = log_lines.join().unwrap();
    let finished = lines
        .iter()
        .find(|l| l.contains("invocation finished"))
        .unwrap_or_else(|| panic!("no `invocation finished` line in {lines:#?}"));
    assert!(
        finished.contains(&format!("invocation_id={invocation_id}"))
            && finished.contains("ConnectionEvents"),
        "the span carries the invocation id: {finished}"
    );
    assert!(
        lines.iter().any(|l| l.contains("SIGTERM")),
        "the shutdown is logged: {lines:#?}"
    );
    let mut files = Vec::new();
    json_files(&dir.path().join("reports"), &mut files);
    assert!(!files.is_empty(), "the invocation wrote its report");
    for f in &files {
        let r: Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        if let Err(errors) = support_report::schema::validate(&r) {
            panic!(
                "{} violates the report schema:\n{}",
                f.display(),
                errors.join("\n")
            );
        }
    }
}
