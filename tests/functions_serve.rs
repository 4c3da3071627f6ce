//! `linkguard serve` as a whole, in-process: settings read through a lookup (no process environment
//! touched), the policy checked, the real ARM client and directory sink built, 127.0.0.1 bound, the
//! host's readiness probe answered, an invocation served, graceful stop.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod functions_support;
#[path = "support_azurite/mod.rs"]
mod support_azurite;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use functions_support::*;
use linkguard::host::functions::{ServeArgs, run_with};
use tokio::sync::oneshot;

fn free_port() -> u16 {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn lookup(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> + Send + 'static {
    let map: HashMap<&'static str, String> = pairs.into_iter().collect();
    move |k| map.get(k).cloned()
}

fn args() -> ServeArgs {
    ServeArgs {
        policy: Some(repo().join("examples/policy.toml")),
        ..ServeArgs::default()
    }
}

#[tokio::test]
async fn serve_starts_answers_the_probe_serves_and_stops_gracefully() {
    let sim = sandbox().await;
    let reports = tempfile::tempdir().unwrap();
    let port = free_port();
    let settings = lookup(vec![
        ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
        ("LINKGUARD_ARM_ENDPOINT", sim.endpoint().to_string()),
        ("LINKGUARD_CREDENTIAL", "static".into()),
        ("LINKGUARD_STATIC_TOKEN", "any".into()),
        ("LINKGUARD_REPORTS", reports.path().display().to_string()),
        ("LINKGUARD_EVENT_TOPICS", SUB_TOPIC.into()),
    ]);
    let (stop, stopped) = oneshot::channel::<()>();
    let started = Instant::now();
    let task = tokio::spawn(run_with(args(), settings, async move {
        let _ = stopped.await;
    }));
    // Probe like the host: GET / every 25 ms until any answer.
    let base = format!("http://127.0.0.1:{port}");
    let client = http();
    let ready_after = loop {
        if let Ok(r) = client.get(format!("{base}/")).send().await {
            assert_eq!(r.status().as_u16(), 200);
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "serve never became ready"
        );
        assert!(!task.is_finished(), "serve exited early");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(
        ready_after < Duration::from_secs(2),
        "ready after {ready_after:?}"
    );
    assert_eq!(
        sim.handle().requests().total,
        0,
        "no ARM call before the first invocation"
    );

    let inv = event_invocation(connection_write_event("evt-serve", PENDING_CONN));
    let resp = client
        .post(format!("{base}/ConnectionEvents"))
        .header("content-type", "application/json")
        .body(inv.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap()
    );
    let conn = sim.handle().connection_json(PENDING_CONN).unwrap();
    assert_eq!(
        conn["properties"]["privateLinkServiceConnectionState"]["status"],
        "Approved"
    );
    assert!(
        reports.path().join("latest.json").is_file(),
        "report written by the directory sink"
    );

    assert!(
        assert_dir_reports_valid(reports.path()) >= 2,
        "the run report and latest.json, both schema-valid"
    );
    stop.send(()).unwrap();
    let code = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, ExitCode::SUCCESS);
}

#[tokio::test]
async fn misconfiguration_stops_serve_before_it_listens() {
    let never = std::future::pending::<()>();
    // No port, a bad credential: exit 2, nothing bound.
    let code = run_with(
        args(),
        lookup(vec![("LINKGUARD_CREDENTIAL", "password".into())]),
        never,
    )
    .await;
    assert_eq!(code, ExitCode::from(2));
    // A static credential without its token.
    let port = free_port();
    let code = run_with(
        args(),
        lookup(vec![
            ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
            ("LINKGUARD_CREDENTIAL", "static".into()),
        ]),
        std::future::pending::<()>(),
    )
    .await;
    assert_eq!(code, ExitCode::from(2));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing may listen"
    );
    // An invalid policy file.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("policy.toml");
    std::fs::write(&bad, "version = 2\n").unwrap();
    let code = run_with(
        ServeArgs {
            policy: Some(bad),
            ..ServeArgs::default()
        },
        lookup(vec![("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())]),
        std::future::pending::<()>(),
    )
    .await;
    assert_eq!(code, ExitCode::from(2));
}

#[tokio::test]
async fn a_port_in_use_fails_with_exit_3() {
    let taken = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).unwrap();
    let port = taken.local_addr().unwrap().port();
    let reports = tempfile::tempdir().unwrap();
    let code = run_with(
        args(),
        lookup(vec![
            ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
            ("LINKGUARD_CREDENTIAL", "static".into()),
            ("LINKGUARD_STATIC_TOKEN", "any".into()),
            ("LINKGUARD_ARM_ENDPOINT", "http://127.0.0.1:9".into()),
            ("LINKGUARD_REPORTS", reports.path().display().to_string()),
        ]),
        std::future::pending::<()>(),
    )
    .await;
    assert_eq!(code, ExitCode::from(3));
    drop(taken);
}

/// Fan-out is wired from the settings `serve` is given (the lookup), not from the process
/// environment: with `LINKGUARD_FANOUT_QUEUE` in the lookup only, the timer enqueues one message per
/// subscription instead of auditing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_is_turned_on_through_the_lookup() {
    assert!(
        std::env::var_os("LINKGUARD_FANOUT_QUEUE").is_none(),
        "the test relies on the process environment not setting fan-out"
    );
    let azurite = support_azurite::Azurite::start();
    let sim = sandbox().await;
    let port = free_port();
    let queue = "serve-fanout";
    let settings = lookup(vec![
        ("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string()),
        ("LINKGUARD_ARM_ENDPOINT", sim.endpoint().to_string()),
        ("LINKGUARD_CREDENTIAL", "static".into()),
        ("LINKGUARD_STATIC_TOKEN", "any".into()),
        ("LINKGUARD_REPORTS", azurite.connection_string()),
        (
            "LINKGUARD_FANOUT_QUEUE",
            format!("{};QueueName={queue}", azurite.connection_string()),
        ),
    ]);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_with(args(), settings, async move {
        let _ = stopped.await;
    }));
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while http().get(format!("{base}/")).send().await.is_err() {
        assert!(!task.is_finished(), "serve exited early");
        assert!(started.elapsed() < Duration::from_secs(20), "never ready");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let timer = read_json(&shared_fixtures("functions").join("timer-invocation.json"));
    let resp = http()
        .post(format!("{base}/ScheduledAudit"))
        .header("content-type", "application/json")
        .body(timer.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    let logs = logs(&body);
    assert!(
        logs.contains("subscription(s) fanned out"),
        "the timer fanned out: {logs}"
    );
    // The messages are in the queue named in the lookup.
    let sas = azurite.account_sas("q", "sco", "rp");
    let peek = http()
        .get(format!(
            "{}/{queue}/messages?peekonly=true&numofmessages=32&{sas}",
            azurite.queue_endpoint()
        ))
        .header("x-ms-version", support_azurite::SAS_VERSION)
        .send()
        .await
        .unwrap();
    assert!(peek.status().is_success(), "{}", peek.status());
    let xml = peek.text().await.unwrap();
    let fanned: usize = logs
        .split(" subscription(s) fanned out")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {logs}"));
    assert!(fanned >= 1, "{logs}");
    assert_eq!(
        xml.matches("<QueueMessage>").count(),
        fanned,
        "one message per subscription in the queue named in the lookup: {xml}"
    );
    assert_eq!(
        sim.handle().requests().count("put-connection"),
        0,
        "the timer itself audited nothing"
    );
    stop.send(()).unwrap();
    assert_eq!(task.await.unwrap(), ExitCode::SUCCESS);
}
