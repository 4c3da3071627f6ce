//! `linkguard sim` as a user runs it: the built binary prints one ready line, serves the estate
//! over TLS, stops cleanly on SIGTERM, and refuses bad input with exit code 2.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod sim_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use sim_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_linkguard");

#[tokio::test]
async fn serves_the_estate_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let estate_file = dir.path().join("estate.json");
    std::fs::write(&estate_file, serde_json::to_vec(&estate(3)).unwrap()).unwrap();
    let certs = dir.path().join("certs");
    let mut child = Command::new(BIN)
        .args([
            "sim",
            "--estate",
            estate_file.to_str().unwrap(),
            "--port",
            "0",
            "--tls",
            "--cert-dir",
            certs.to_str().unwrap(),
        ])
        .args(["--page-size", "2", "--faults", "seed=1,latency=1ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the linkguard binary");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok);
        let _ = tx.send(first);
        // anything printed after the ready line would break the one-line contract
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        rest
    });
    let line = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(line)) => line,
        other => {
            let _ = child.kill();
            panic!("no ready line from `linkguard sim` within 30 s: {other:?}");
        }
    };
    let ready: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("ready line is not JSON ({e}): {line}"));
    let endpoint = ready["endpoint"].as_str().unwrap().to_string();
    let ca = std::path::PathBuf::from(ready["ca_cert"].as_str().unwrap());
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    assert_eq!(ca, certs.join(linkguard::sim::CA_FILE));

    let client = https(&ca);
    let page = get(
        &client,
        &url(
            &endpoint,
            &format!("/subscriptions/{SUB}/providers/Microsoft.ContainerRegistry/registries"),
            ACR,
        ),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body["value"].as_array().unwrap().len(), 2);
    assert!(
        page.body["nextLink"]
            .as_str()
            .unwrap()
            .starts_with(&endpoint)
    );
    let requests = get(&client, &format!("{endpoint}/_sim/requests")).await;
    assert_eq!(requests.body["by_operation"]["list-registries"], 1);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "a SIGTERM is a clean stop");
    assert_eq!(
        reader.join().unwrap(),
        Vec::<String>::new(),
        "stdout carries the ready line only"
    );
    assert!(
        ca.exists(),
        "a given --cert-dir is the user's: it stays after the stop"
    );
}

#[test]
fn bad_input_exits_with_2_and_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let estate_file = dir.path().join("estate.json");
    let mut bad = estate(1);
    bad["registries"][0]["properties"]["publicNetworkAccess"] = serde_json::json!(false);
    std::fs::write(&estate_file, serde_json::to_vec(&bad).unwrap()).unwrap();
    let out = Command::new(BIN)
        .args(["sim", "--estate", estate_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("registries[0].properties.publicNetworkAccess"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no ready line on bad input");

    std::fs::write(&estate_file, serde_json::to_vec(&estate(1)).unwrap()).unwrap();
    let out = Command::new(BIN)
        .args([
            "sim",
            "--estate",
            estate_file.to_str().unwrap(),
            "--faults",
            "error500=lots",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`error500`") && stderr.contains("key=value"),
        "{stderr}"
    );
}
