//! Azurite, the Azure Storage emulator, for tests: the npm package pinned in `package.json`
//! (installed by `npm ci`), started by the test itself on ephemeral loopback ports with in-memory
//! storage, stopped when dropped. Blob, queue and table services all run (the queue service is for
//! other tests).
//!
//! Use from a test file: `#[path = "support_azurite/mod.rs"] mod support_azurite;`
//!
//! `Azurite::start_https()` serves https with a test CA (`ca_pem()`) and `--oauth basic`, so bearer
//! tokens (the managed-identity code path) can be exercised; Azurite refuses bearer over http.
//!
//! If Azurite cannot start (no `node`, no `node_modules`), `Azurite::start` panics with what to do:
//! tests that need it fail, never skip.
#![allow(dead_code)]

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    pub blob: u16,
    pub queue: u16,
    pub table: u16,
}

impl Ports {
    /// Ask Azurite to pick free ports (it supports port 0 and prints what it bound).
    pub const EPHEMERAL: Ports = Ports {
        blob: 0,
        queue: 0,
        table: 0,
    };
}

pub struct Azurite {
    child: Option<Child>,
    pub ports: Ports,
    /// PEM of the CA that signed the https certificate (https mode only).
    ca_pem: Option<String>,
    stderr: Arc<Mutex<String>>,
    _workdir: tempfile::TempDir,
}

fn azurite_js() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node_modules/azurite/dist/src/azurite.js")
}

/// Parses `Azurite Blob service is successfully listening at http://127.0.0.1:PORT`.
fn listening_port(line: &str, service: &str) -> Option<u16> {
    let prefix = format!("Azurite {service} service is successfully listening at ");
    let url = line.trim().strip_prefix(&prefix)?;
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

impl Azurite {
    /// Starts Azurite on free ports.
    pub fn start() -> Self {
        Self::start_on(Ports::EPHEMERAL)
    }

    /// Starts Azurite on the given ports (0 = pick one), e.g. the ports of a stopped instance.
    pub fn start_on(ports: Ports) -> Self {
        Self::launch(ports, false)
    }

    /// Starts Azurite on free ports over https (certificate for 127.0.0.1 from a fresh test CA)
    /// with `--oauth basic`: bearer tokens are accepted when `aud`, `iss` and times are right
    /// (the signature is not checked).
    pub fn start_https() -> Self {
        Self::launch(Ports::EPHEMERAL, true)
    }

    fn launch(ports: Ports, https: bool) -> Self {
        let script = azurite_js();
        if !script.exists() {
            panic!(
                "Azurite is not installed: {} is missing. Run `npm ci` in {} (Azurite is pinned in package.json).",
                script.display(),
                env!("CARGO_MANIFEST_DIR")
            );
        }
        let workdir = tempfile::tempdir().expect("temp dir for Azurite");
        let mut tls_args: Vec<String> = Vec::new();
        let ca_pem = if https {
            let (ca_pem, cert_pem, key_pem) = test_certificates();
            let cert = workdir.path().join("cert.pem");
            let key = workdir.path().join("key.pem");
            std::fs::write(&cert, cert_pem).expect("write cert.pem");
            std::fs::write(&key, key_pem).expect("write key.pem");
            tls_args.extend([
                "--cert".into(),
                cert.display().to_string(),
                "--key".into(),
                key.display().to_string(),
            ]);
            tls_args.extend(["--oauth".into(), "basic".into()]);
            Some(ca_pem)
        } else {
            None
        };
        let mut child = Command::new("node")
            .arg(&script)
            .args(["--disableTelemetry", "--skipApiVersionCheck", "--loose", "--inMemoryPersistence", "--silent"])
            .args(["--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1"])
            .args(["--blobPort", &ports.blob.to_string()])
            .args(["--queuePort", &ports.queue.to_string()])
            .args(["--tablePort", &ports.table.to_string()])
            .args(&tls_args)
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
        // Read stdout until the three services say where they listen; keep draining afterwards.
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
                        "Azurite did not start within {:?} (ports {ports:?}).\nstdout:\n{}\nstderr:\n{}\nRun `npm ci` if node_modules is missing or stale.",
                        START_TIMEOUT,
                        seen.join("\n"),
                        stderr.lock().map(|s| s.clone()).unwrap_or_default()
                    );
                }
            }
        }
        let ports = Ports {
            blob: blob.unwrap(),
            queue: queue.unwrap(),
            table: table.unwrap(),
        };
        // Listening was announced; check the blob port answers before handing it out.
        let addr = SocketAddr::from(([127, 0, 0, 1], ports.blob));
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < until,
                "Azurite blob port {} announced but not answering",
                ports.blob
            );
            thread::sleep(Duration::from_millis(50));
        }
        Azurite {
            child: Some(child),
            ports,
            ca_pem,
            stderr,
            _workdir: workdir,
        }
    }

    fn scheme(&self) -> &'static str {
        if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// `http(s)://127.0.0.1:PORT/devstoreaccount1`
    pub fn blob_endpoint(&self) -> String {
        format!(
            "{}://127.0.0.1:{}/{ACCOUNT}",
            self.scheme(),
            self.ports.blob
        )
    }

    /// `http(s)://127.0.0.1:PORT/devstoreaccount1`
    pub fn queue_endpoint(&self) -> String {
        format!(
            "{}://127.0.0.1:{}/{ACCOUNT}",
            self.scheme(),
            self.ports.queue
        )
    }

    /// The CA certificate (PEM) to trust in https mode.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A connection string with the well-known account key and this instance's endpoints.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol={scheme};AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};BlobEndpoint={};QueueEndpoint={};TableEndpoint={scheme}://127.0.0.1:{}/{ACCOUNT};",
            self.blob_endpoint(),
            self.queue_endpoint(),
            self.ports.table,
            scheme = self.scheme()
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
        // Account SAS string-to-sign for sv >= 2020-12-06 (st, sip and encryption scope empty).
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

    /// Kills the emulator now (SIGKILL), as a crash would; its ports are free afterwards.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What Azurite wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// (CA PEM, server certificate PEM for IP 127.0.0.1 signed by the CA, server key PEM).
fn test_certificates() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "linkguard test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("server params");
    params.subject_alt_names = vec![SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]))];
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    params.is_ca = IsCa::ExplicitNoCa;
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.kill();
    }
}
