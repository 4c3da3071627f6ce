//! `linkguard serve` as a child, started the way the Functions host starts it (environment only)
//! and timed from spawn to the first `200` on `GET /` (the host's readiness probe).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::error::{BenchError, Result};
use crate::estate::SUBSCRIPTION;
use crate::procs::{BenchEnv, ChildGuard, clean_command, free_port};

pub const TOKEN: &str = "bench-static-token";

pub struct ServeChild {
    pub guard: ChildGuard,
    pub port: u16,
    /// Spawn to first 200 on `GET /`.
    pub ready: Duration,
}

impl ServeChild {
    pub fn url(&self, function: &str) -> String {
        format!("http://127.0.0.1:{}/{function}", self.port)
    }
}

/// How to launch `serve` (owned, so the blocking readiness loop can run on its own thread).
struct Launch {
    linkguard: PathBuf,
    policy: PathBuf,
    log_dir: PathBuf,
    arm_endpoint: String,
    reports: PathBuf,
}

/// Spawns `linkguard serve` against the ARM endpoint and waits until it is ready. The readiness
/// loop spins on a plain socket (for a precise figure) on a blocking thread.
pub async fn start(env: &BenchEnv, arm_endpoint: &str, reports: &Path) -> Result<ServeChild> {
    let launch = Launch {
        linkguard: env.linkguard.clone(),
        policy: env.policy.clone(),
        log_dir: env.scratch.path().to_path_buf(),
        arm_endpoint: arm_endpoint.to_string(),
        reports: reports.to_path_buf(),
    };
    tokio::task::spawn_blocking(move || launch.start())
        .await
        .map_err(|e| BenchError::msg(format!("starting serve: {e}")))?
}

impl Launch {
    fn start(self) -> Result<ServeChild> {
        let port = free_port()?;
        let log = self
            .log_dir
            .join(format!("serve-{}.log", uuid::Uuid::new_v4()));
        let log_file = std::fs::File::create(&log).map_err(|e| BenchError::io(&log, e))?;
        let mut cmd = clean_command(&self.linkguard);
        cmd.arg("serve")
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("LINKGUARD_POLICY", &self.policy)
            .env("LINKGUARD_ARM_ENDPOINT", &self.arm_endpoint)
            .env("LINKGUARD_CREDENTIAL", "static")
            .env("LINKGUARD_STATIC_TOKEN", TOKEN)
            .env("LINKGUARD_REPORTS", &self.reports)
            .env(
                "LINKGUARD_EVENT_TOPICS",
                format!("/subscriptions/{SUBSCRIPTION}"),
            )
            // Info logs go to stdout, which the Functions host would read; here nowhere.
            // Warnings and errors go to stderr, kept in a file for error messages.
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        let started = Instant::now();
        let child = cmd.spawn().map_err(|e| {
            BenchError::msg(format!(
                "cannot start {} serve: {e}",
                self.linkguard.display()
            ))
        })?;
        let mut guard = ChildGuard { child };
        let deadline = started + Duration::from_secs(30);
        loop {
            if probe(port) {
                let ready = started.elapsed();
                return Ok(ServeChild { guard, port, ready });
            }
            if !guard.running() || Instant::now() > deadline {
                return Err(BenchError::msg(format!(
                    "linkguard serve did not become ready on port {port}: {}",
                    crate::rss::tail(&std::fs::read_to_string(&log).unwrap_or_default())
                )));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// One readiness probe: `GET /` answered `200`.
fn probe(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
