//! Azurite, the Azure Storage emulator, for the fan-out tests: the npm package pinned in
//! `package.json` (installed by `npm ci`), started by the test on ephemeral loopback ports with
//! in-memory storage and telemetry off, stopped when dropped. Adapted from the report helper's
//! `tests/support_azurite` (http only here).
//!
//! If Azurite cannot start (no `node`, no `node_modules`), `Azurite::start` panics saying what to
//! do: the tests that need it fail, never skip.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use azure_core::credentials::Secret;

pub const ACCOUNT: &str = "devstoreaccount1";
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// An x-ms-version Azurite 3.35 knows, for the SAS this module signs.
pub const SAS_VERSION: &str = "2025-11-05";

const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Azurite {
    child: Option<Child>,
    pub blob_port: u16,
    pub queue_port: u16,
    pub table_port: u16,
    stderr: Arc<Mutex<String>>,
    _workdir: tempfile::TempDir,
}

fn azurite_js() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node_modules/azurite/dist/src/azurite.js")
}

/// Parses `Azurite Queue service is successfully listening at http://127.0.0.1:PORT`.
fn listening_port(line: &str, service: &str) -> Option<u16> {
    let prefix = format!("Azurite {service} service is successfully listening at ");
    let url = line.trim().strip_prefix(&prefix)?;
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

impl Azurite {
    /// Starts Azurite (blob, queue, table) on free loopback ports, in memory, telemetry off.
    pub fn start() -> Self {
        let script = azurite_js();
        if !script.exists() {
            panic!(
                "Azurite is not installed: {} is missing. Run `npm ci` in {} (Azurite is pinned in package.json).",
                script.display(),
                env!("CARGO_MANIFEST_DIR")
            );
        }
        let workdir = tempfile::tempdir().expect("temp dir for Azurite");
        let mut child = Command::new("node")
            .arg(&script)
            .args(["--disableTelemetry", "--skipApiVersionCheck", "--loose", "--inMemoryPersistence", "--silent"])
            .args(["--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1"])
            .args(["--blobPort", "0", "--queuePort", "0", "--tablePort", "0"])
            .current_dir(workdir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start Azurite: running `node` failed ({e}). Install Node.js 20+ and run `npm ci`.")
            });
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            thread::spawn(move || {
                let mut buf = String::new();
                let _ = err.read_to_string(&mut buf);
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&buf);
                }
            });
        }
        let (tx, rx) = mpsc::channel::<String>();
        let out = child.stdout.take().expect("Azurite stdout");
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let (mut blob, mut queue, mut table) = (None, None, None);
        let mut seen = Vec::new();
        while blob.is_none() || queue.is_none() || table.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    blob = blob.or(listening_port(&line, "Blob"));
                    queue = queue.or(listening_port(&line, "Queue"));
                    table = table.or(listening_port(&line, "Table"));
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    thread::sleep(Duration::from_millis(100));
                    panic!(
                        "Azurite did not start within {START_TIMEOUT:?}.\nstdout:\n{}\nstderr:\n{}\nRun `npm ci` if node_modules is missing or stale.",
                        seen.join("\n"),
                        stderr.lock().map(|s| s.clone()).unwrap_or_default()
                    );
                }
            }
        }
        let (blob_port, queue_port, table_port) = (blob.unwrap(), queue.unwrap(), table.unwrap());
        for port in [blob_port, queue_port] {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let until = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                assert!(
                    Instant::now() < until,
                    "Azurite port {port} announced but not answering"
                );
                thread::sleep(Duration::from_millis(50));
            }
        }
        Azurite {
            child: Some(child),
            blob_port,
            queue_port,
            table_port,
            stderr,
            _workdir: workdir,
        }
    }

    /// `http://127.0.0.1:PORT/devstoreaccount1`
    pub fn queue_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.queue_port)
    }

    /// `http://127.0.0.1:PORT/devstoreaccount1`
    pub fn blob_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.blob_port)
    }

    /// A connection string with the well-known account key and this instance's endpoints.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};BlobEndpoint={};QueueEndpoint={};TableEndpoint=http://127.0.0.1:{}/{ACCOUNT};",
            self.blob_endpoint(),
            self.queue_endpoint(),
            self.table_port
        )
    }

    /// An account SAS (services `ss`, resource types `srt`, permissions `sp`) valid for an hour,
    /// signed with the well-known key. Query string without `?`.
    pub fn account_sas(&self, ss: &str, srt: &str, sp: &str) -> String {
        let expiry = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        let se = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            expiry.year(),
            u8::from(expiry.month()),
            expiry.day(),
            expiry.hour(),
            expiry.minute(),
            expiry.second()
        );
        let spr = "https,http";
        let sts = format!("{ACCOUNT}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n{spr}\n{SAS_VERSION}\n\n");
        let sig = azure_core::hmac::hmac_sha256(&sts, &Secret::new(ACCOUNT_KEY)).expect("sign SAS");
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "sv={SAS_VERSION}&ss={ss}&srt={srt}&sp={sp}&se={}&spr={}&sig={}",
            enc(&se),
            enc(spr),
            enc(&sig)
        )
    }

    /// What Azurite wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
