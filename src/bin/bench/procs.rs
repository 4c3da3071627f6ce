//! The bench's environment (binaries, Python, fixtures, scratch space) and the child processes it
//! runs: `linkguard sim` and `linkguard serve`, each killed by its own id when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use crate::RunArgs;
use crate::error::{BenchError, Result};
use crate::stats::Sizes;

/// Where report directories go when it exists (see [`TempDir::for_reports`]).
pub const REPORTS_TMPFS: &str = "/dev/shm";

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Result<Self> {
        Self::new_in(&std::env::temp_dir(), prefix)
    }

    /// A directory for reports: on tmpfs (`/dev/shm`) where there is one, so the figures measure
    /// linkguard rather than this disk's fsync (the report sink syncs every object it writes; in
    /// Azure the reports go to Blob storage, not the instance's disk).
    pub fn for_reports(prefix: &str) -> Result<Self> {
        let shm = Path::new(REPORTS_TMPFS);
        if shm.is_dir() {
            Self::new_in(shm, prefix)
        } else {
            Self::new(prefix)
        }
    }

    pub fn new_in(base: &Path, prefix: &str) -> Result<Self> {
        let path = base.join(format!("{prefix}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).map_err(|e| BenchError::io(&path, e))?;
        Ok(Self(path))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Everything the sections share.
pub struct BenchEnv {
    pub linkguard: PathBuf,
    pub bench_exe: PathBuf,
    pub python: PathBuf,
    pub python_version: String,
    pub repo: PathBuf,
    pub fixtures: PathBuf,
    pub policy: PathBuf,
    pub sdk_script: PathBuf,
    pub scratch: TempDir,
}

impl BenchEnv {
    pub async fn prepare(args: &RunArgs, _sizes: &Sizes) -> Result<Self> {
        let bench_exe = std::env::current_exe()
            .map_err(|e| BenchError::msg(format!("cannot find the bench binary itself: {e}")))?;
        let linkguard = match &args.linkguard {
            Some(p) => p.clone(),
            None => build_linkguard(&bench_exe, &args.repo)?,
        };
        if !linkguard.is_file() {
            return Err(BenchError::msg(format!(
                "{}: no linkguard binary there; build it (`cargo build --release --bin linkguard`) or pass --linkguard",
                linkguard.display()
            )));
        }
        let fixtures = args
            .fixtures
            .clone()
            .unwrap_or_else(|| args.repo.join("../shared/fixtures"));
        if !fixtures.join("eventgrid").is_dir() || !fixtures.join("functions").is_dir() {
            return Err(BenchError::msg(format!(
                "{}: the shared fixtures (eventgrid/, functions/) are missing; clone ../shared beside the repository or pass --fixtures",
                fixtures.display()
            )));
        }
        let policy = args.repo.join("bench/policy.toml");
        let sdk_script = args.repo.join("bench/sdk_health_monitor.py");
        for f in [&policy, &sdk_script] {
            if !f.is_file() {
                return Err(BenchError::msg(format!(
                    "{}: missing; pass --repo with the linkguard repository",
                    f.display()
                )));
            }
        }
        let scratch = TempDir::new("linkguard-bench")?;
        let (python, python_version) =
            crate::python::resolve(args.python.as_deref(), &args.repo).await?;
        Ok(Self {
            linkguard,
            bench_exe,
            python,
            python_version,
            repo: args.repo.clone(),
            fixtures,
            policy,
            sdk_script,
            scratch,
        })
    }
}

/// The linkguard binary beside this one. Under `cargo run` (which sets `CARGO`) it is built first
/// with the same profile, so the one documented command measures fresh code.
fn build_linkguard(bench_exe: &Path, repo: &Path) -> Result<PathBuf> {
    let dir = bench_exe
        .parent()
        .ok_or_else(|| BenchError::msg("the bench binary has no parent directory"))?;
    let path = dir.join("linkguard");
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--bin", "linkguard", "--manifest-path"])
            .arg(repo.join("Cargo.toml"));
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        eprintln!("bench: building linkguard ({cmd:?})");
        let status = cmd
            .status()
            .map_err(|e| BenchError::msg(format!("cannot run cargo to build linkguard: {e}")))?;
        if !status.success() {
            return Err(BenchError::msg(format!(
                "building linkguard failed ({status}); run `cargo build --release --bin linkguard` to see why"
            )));
        }
    }
    Ok(path)
}

/// A free TCP port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| BenchError::msg(format!("cannot bind 127.0.0.1:0: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| BenchError::msg(format!("local_addr: {e}")))
}

/// `VmHWM` (peak) and `VmRSS` (now) of a running process, in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status.lines().find_map(|l| {
            l.strip_prefix(name)?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// A child process killed (by its id) when dropped.
pub struct ChildGuard {
    pub child: Child,
}

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
    pub fn stop(mut self) {
        self.kill();
    }
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Base environment for children: nothing of the caller's but `PATH` and `HOME`.
pub fn clean_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear();
    for key in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// `linkguard sim` as a child process.
pub struct SimChild {
    pub endpoint: String,
    pub ca_cert: Option<PathBuf>,
    pub admin: reqwest::Client,
    guard: ChildGuard,
    _stdout: BufReader<ChildStdout>,
}

impl SimChild {
    pub async fn start(
        linkguard: &Path,
        estate: &Path,
        tls: bool,
        faults: &str,
        scratch: &Path,
    ) -> Result<Self> {
        let log = scratch.join(format!("sim-{}.log", uuid::Uuid::new_v4()));
        let log_file = std::fs::File::create(&log).map_err(|e| BenchError::io(&log, e))?;
        let mut cmd = clean_command(linkguard);
        cmd.arg("sim")
            .arg("--estate")
            .arg(estate)
            .args(["--port", "0", "--faults", faults])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        if tls {
            let certs = scratch.join(format!("sim-ca-{}", uuid::Uuid::new_v4()));
            cmd.arg("--tls").arg("--cert-dir").arg(certs);
        }
        let mut child = cmd.spawn().map_err(|e| {
            BenchError::msg(format!("cannot start {} sim: {e}", linkguard.display()))
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::msg("linkguard sim: no stdout"))?;
        let guard = ChildGuard { child };
        // The ready line; reading blocks, so do it off the runtime (a 10,000-registry estate takes
        // a moment to load).
        let (line, stdout) = tokio::task::spawn_blocking(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line);
            (read.map(|_| line), reader)
        })
        .await
        .map_err(|e| BenchError::msg(format!("waiting for linkguard sim: {e}")))?;
        let line = line.map_err(|e| BenchError::msg(format!("linkguard sim: {e}")))?;
        let ready: serde_json::Value = serde_json::from_str(line.trim()).map_err(|e| {
            BenchError::msg(format!(
                "linkguard sim did not print its ready line ({e}); its log: {}",
                crate::rss::tail(&std::fs::read_to_string(&log).unwrap_or_default())
            ))
        })?;
        let endpoint = ready
            .get("endpoint")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                BenchError::msg(format!("linkguard sim ready line without endpoint: {line}"))
            })?
            .to_string();
        let ca_cert = ready
            .get("ca_cert")
            .and_then(|v| v.as_str())
            .map(PathBuf::from);
        let admin = http_client(ca_cert.as_deref())?;
        Ok(Self {
            endpoint,
            ca_cert,
            admin,
            guard,
            _stdout: stdout,
        })
    }

    /// Restarts the fault sequence and the token buckets, and clears the request counters.
    pub async fn reset(&self, faults: &str) -> Result<()> {
        self.post("/_sim/faults", serde_json::json!({ "spec": faults }))
            .await?;
        self.post("/_sim/reset", serde_json::json!({})).await
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> Result<()> {
        let url = format!("{}{path}", self.endpoint);
        let rsp = self
            .admin
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| BenchError::msg(format!("POST {url}: {e}")))?;
        if !rsp.status().is_success() {
            return Err(BenchError::msg(format!("POST {url}: {}", rsp.status())));
        }
        Ok(())
    }

    /// The sandbox's request counters (`GET /_sim/requests`).
    pub async fn requests(&self) -> Result<serde_json::Value> {
        let url = format!("{}/_sim/requests", self.endpoint);
        let rsp = self
            .admin
            .get(&url)
            .send()
            .await
            .map_err(|e| BenchError::msg(format!("GET {url}: {e}")))?;
        let bytes = rsp
            .bytes()
            .await
            .map_err(|e| BenchError::msg(format!("GET {url}: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| BenchError::msg(format!("GET {url}: {e}")))
    }

    pub fn stop(self) {
        self.guard.stop();
    }
}

/// A client for loopback HTTP(S), ignoring any proxy settings, trusting the sandbox's CA if given.
pub fn http_client(ca_cert: Option<&Path>) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120));
    if let Some(ca) = ca_cert {
        let pem = std::fs::read(ca).map_err(|e| BenchError::io(ca, e))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| BenchError::msg(format!("{}: {e}", ca.display())))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| BenchError::msg(format!("building the HTTP client: {e}")))
}

/// Counts of a `/_sim/requests` snapshot by operation.
pub fn by_operation(stats: &serde_json::Value) -> std::collections::BTreeMap<String, u64> {
    stats
        .get("by_operation")
        .and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}
