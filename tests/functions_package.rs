//! The Functions package: `scripts/package-functions.sh` run on the test binary, the zip unpacked
//! and checked (layout, exec bit, host.json), and every function.json checked against the running
//! handler: its folder name is a route the handler serves and its binding names are the ones the
//! handler reads.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod functions_support;

use std::collections::BTreeMap;
use std::process::Command;

use functions_support::*;
use linkguard::host::functions::{
    connection_events, manual_audit, scheduled_audit, subscription_audit,
};
use serde_json::json;

/// Lists the zip through Python's zipfile: name -> (unix mode, size).
fn list_zip(zip: &std::path::Path) -> BTreeMap<String, (u32, u64)> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json,sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); print(json.dumps({i.filename: [i.external_attr >> 16, i.file_size] for i in z.infolist()}))",
        ])
        .arg(zip)
        .output()
        .expect("python3 is needed to read the zip; install it");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: BTreeMap<String, (u32, u64)> = serde_json::from_slice(&out.stdout).unwrap();
    v
}

#[tokio::test]
async fn the_package_holds_what_the_functions_host_needs_and_every_function_is_served() {
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("linkguard-functions.zip");
    let binary = env!("CARGO_BIN_EXE_linkguard");
    let out = Command::new("bash")
        .arg(repo().join("scripts/package-functions.sh"))
        .args([
            "--binary",
            binary,
            "--policy",
            "examples/policy.toml",
            "--out",
        ])
        .arg(&zip)
        .current_dir(repo())
        .output()
        .expect("bash must run");
    assert!(
        out.status.success(),
        "package script failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let entries = list_zip(&zip);
    let files: Vec<&str> = entries
        .keys()
        .map(String::as_str)
        .filter(|n| !n.ends_with('/'))
        .collect();
    assert_eq!(
        files,
        vec![
            "ConnectionEvents/function.json",
            "ManualAudit/function.json",
            "ScheduledAudit/function.json",
            "SubscriptionAudit/function.json",
            "host.json",
            "linkguard",
            "linkguard.toml",
        ]
    );
    let (mode, size) = entries["linkguard"];
    assert_eq!(
        mode & 0o111,
        0o111,
        "the binary must stay executable: mode {mode:o}"
    );
    assert_eq!(size, std::fs::metadata(binary).unwrap().len());

    // Unpack and read it back as the host would.
    let app = tmp.path().join("app");
    let status = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&zip)
        .arg(&app)
        .status()
        .unwrap();
    assert!(status.success());
    let host = read_json(&app.join("host.json"));
    assert_eq!(host, read_json(&repo().join("host.json")));
    assert_eq!(
        host["customHandler"]["description"]["defaultExecutablePath"],
        "linkguard"
    );
    assert_eq!(
        host["customHandler"]["description"]["arguments"],
        json!(["serve"])
    );
    assert_ne!(
        host["customHandler"]["enableForwardingHttpRequest"],
        json!(true),
        "must stay off (DESIGN 7.1)"
    );
    assert!(app.join("linkguard.toml").is_file());

    let stack = Stack::start(&[]).await;
    let mut served = Vec::new();
    for entry in std::fs::read_dir(&app).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let spec = read_json(&dir.join("function.json"));
        let bindings = spec["bindings"].as_array().unwrap();
        let input = bindings.iter().find(|b| b["direction"] == "in").unwrap();
        let binding = input["name"].as_str().unwrap();
        // The binding names the handler reads are the ones function.json declares.
        let (expected, invocation) = match input["type"].as_str().unwrap() {
            "eventGridTrigger" => (
                connection_events::BINDING,
                json!({"Data": {binding: {"id": "x", "eventType": "T", "topic": "t", "data": {}}}}),
            ),
            "timerTrigger" => (
                scheduled_audit::BINDING,
                json!({"Data": {binding: {"Schedule": {}, "ScheduleStatus": null, "IsPastDue": false}}}),
            ),
            "httpTrigger" => {
                let out = bindings.iter().find(|b| b["direction"] == "out").unwrap();
                assert_eq!(out["type"], "http");
                assert_eq!(out["name"], manual_audit::OUTPUT);
                assert_eq!(input["methods"], json!(["post"]));
                (
                    manual_audit::BINDING,
                    json!({"Data": {binding: {"Method": "POST", "Body": "{\"dryRun\": true}"}}}),
                )
            }
            "queueTrigger" => {
                // Without fan-out configured the handler answers, but refuses the work (500 to the
                // host, so the message is retried): the route is served, the binding is right.
                assert_eq!(binding, subscription_audit::BINDING, "{name}: binding name");
                let invocation =
                    json!({"Data": {binding: "{}"}, "Metadata": {"DequeueCount": "1"}});
                let (status, body) = stack.server.invoke(&name, &invocation).await;
                assert_ne!(status, 404, "{name} is not served: {body}");
                assert_envelope(&body);
                served.push(name);
                continue;
            }
            other => panic!("{name}: trigger {other} is not served by linkguard"),
        };
        assert_eq!(binding, expected, "{name}: binding name");
        let (status, body) = stack.server.invoke(&name, &invocation).await;
        assert_eq!(status, 200, "{name} is not served: {body}");
        assert_envelope(&body);
        assert!(body["Error"].is_null(), "{name}: {body}");
        if binding == manual_audit::BINDING {
            assert_eq!(
                body["Outputs"][manual_audit::OUTPUT]["statusCode"],
                200,
                "{body}"
            );
        }
        served.push(name);
    }
    served.sort();
    assert_eq!(
        served,
        vec![
            "ConnectionEvents",
            "ManualAudit",
            "ScheduledAudit",
            "SubscriptionAudit"
        ]
    );
}

#[test]
fn the_script_refuses_bad_options_clearly() {
    let run = |args: &[&str]| {
        Command::new("bash")
            .arg(repo().join("scripts/package-functions.sh"))
            .args(args)
            .current_dir(repo())
            .output()
            .unwrap()
    };
    let out = run(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option --bogus"));
    let out = run(&[
        "--binary",
        "/nonexistent/linkguard",
        "--out",
        "/tmp/never.zip",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an executable file"));
}
