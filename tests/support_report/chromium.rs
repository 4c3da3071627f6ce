//! Headless Chromium (Debian package `chromium`) to render a page and read the resulting DOM.
//! A missing browser fails the test with what to install.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(90);

fn browser() -> String {
    for candidate in ["chromium", "chromium-browser"] {
        if Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return candidate.to_string();
        }
    }
    panic!(
        "headless Chromium is needed to check the HTML report and was not found: install it (`apt-get install -y chromium`)"
    );
}

/// Loads `page` (a local file) in headless Chromium, runs its scripts, and returns the serialized
/// DOM (`--dump-dom`). Network is off (`--disable-background-networking`, no proxy use).
pub fn dump_dom(page: &Path) -> String {
    let profile = tempfile::tempdir().expect("temp profile dir");
    let url = format!(
        "file://{}",
        page.canonicalize().expect("page path").display()
    );
    let mut child = Command::new(browser())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--no-proxy-server",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Drain both pipes while waiting: a large DOM would otherwise fill the pipe and stall Chromium.
    let mut out = child.stdout.take().expect("chromium stdout");
    let mut err = child.stderr.take().expect("chromium stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait().expect("wait for chromium") {
            Some(status) => break status,
            None if started.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish rendering {url} within {TIMEOUT:?}");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let stdout = out_reader.join().expect("stdout reader");
    let stderr = err_reader.join().expect("stderr reader");
    let dom = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        status.success() && dom.contains("<html"),
        "chromium failed to render {url} (status {status:?}):\n{}",
        String::from_utf8_lossy(&stderr)
    );
    dom
}
