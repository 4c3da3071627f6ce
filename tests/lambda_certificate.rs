#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]
//! The Lambda host with a certificate credential (issue 6: "client secret or certificate"):
//! `LINKGUARD_CREDENTIAL=client-certificate` with a PKCS#12 bundle made by the `openssl` CLI. A fake
//! Entra token endpoint on https loopback (`AZURE_AUTHORITY_HOST`, its CA trusted through
//! `SSL_CERT_FILE`) receives the client assertion; the test checks the assertion's claims and
//! verifies its signature against the certificate's public key, and the sandbox accepts only the
//! token that endpoint issued, so the audit succeeding proves the token came from the certificate.

mod lambda_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine as _;
use lambda_support::*;
use rusty_fork::rusty_fork_test_name;
use serde_json::{Value, json};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "00000000-0000-4000-8000-0000000000c1";
const PASSWORD: &str = "pfx-password-9d2e71f0";
const ISSUED: &str = "entra-issued-token-for-the-certificate-5b8f";

/// A client certificate (PKCS#12 bundle and its pieces) and the https material of the fake Entra.
struct Pki {
    dir: tempfile::TempDir,
    tls_cert_pem: String,
    tls_key_pem: String,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
                "-subj",
                "/CN=linkguard-lambda-test",
                "-days",
                "2",
            ],
        );
        openssl(
            d,
            &[
                "pkcs12", "-export", "-in", "cert.pem", "-inkey", "key.pem", "-out", "cert.pfx",
                "-passout",
            ],
        );
        let public_key = openssl(d, &["x509", "-in", "cert.pem", "-pubkey", "-noout"]);
        std::fs::write(d.join("pub.pem"), public_key).unwrap();
        openssl(
            d,
            &[
                "x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der",
            ],
        );

        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf_params.subject_alt_names =
            vec![SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]))];
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        std::fs::write(d.join("entra-ca.pem"), ca_cert.pem()).unwrap();
        Pki {
            dir,
            tls_cert_pem: leaf.pem(),
            tls_key_pem: leaf_key.serialize_pem(),
        }
    }

    /// `x5t`: base64 of the SHA-1 of the certificate's DER, as Entra expects.
    fn thumbprint(&self) -> String {
        let digest = openssl(self.dir.path(), &["dgst", "-sha1", "-binary", "cert.der"]);
        base64::engine::general_purpose::STANDARD.encode(digest)
    }
}

/// Runs the `openssl` CLI in `dir` and returns its stdout. `pkcs12 -export ... -passout` gets the
/// password appended here, so it never sits in an argument list written out above.
fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let mut args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
    if args.last().map(String::as_str) == Some("-passout") {
        args.push(format!("pass:{PASSWORD}"));
    }
    let out = Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("the openssl CLI is needed for this test (apt-get install openssl): {e}")
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Token requests the fake Entra received: (path, form fields).
type Seen = Arc<Mutex<Vec<(String, HashMap<String, String>)>>>;

/// An Entra token endpoint on https://127.0.0.1:PORT that issues [`ISSUED`] to any request and
/// records what it was sent. Runs on its own thread until the test process ends.
fn fake_entra(pki: &Pki) -> (String, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let (cert, key) = (pki.tls_cert_pem.clone(), pki.tls_key_pem.clone());
    let state = Arc::clone(&seen);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let config = axum_server::tls_rustls::RustlsConfig::from_pem(
                cert.into_bytes(),
                key.into_bytes(),
            )
            .await
            .unwrap();
            let app = Router::new().fallback(token).with_state(state);
            axum_server::from_tcp_rustls(listener, config)
                .serve(app.into_make_service())
                .await
                .unwrap();
        });
    });
    (base, seen)
}

async fn token(State(seen): State<Seen>, uri: Uri, body: String) -> impl IntoResponse {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    seen.lock().unwrap().push((uri.path().to_string(), form));
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": ISSUED})
            .to_string(),
    )
}

fn jwt_part(part: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("JWT part {part:?}: {e}"))
}

fn certificate_env(pki: &Pki, authority: &str) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("LINKGUARD_CREDENTIAL", Some("client-certificate".into())),
        ("LINKGUARD_STATIC_TOKEN", None),
        ("AZURE_TENANT_ID", Some(TENANT.into())),
        ("AZURE_CLIENT_ID", Some(CLIENT.into())),
        ("AZURE_AUTHORITY_HOST", Some(authority.into())),
        (
            "SSL_CERT_FILE",
            Some(pki.path("entra-ca.pem").display().to_string()),
        ),
    ]
}

#[test]
fn certificate_credential_signs_an_assertion_and_its_token_reaches_arm() {
    let pki = Pki::new();
    let (authority, seen) = fake_entra(&pki);
    let mut env = certificate_env(&pki, &authority);
    env.push((
        "AZURE_CLIENT_CERTIFICATE_PATH",
        Some(pki.path("cert.pfx").display().to_string()),
    ));
    env.push(("AZURE_CLIENT_CERTIFICATE_PASSWORD", Some(PASSWORD.into())));
    let setup = Setup {
        env,
        sim_token: Some(ISSUED.into()),
        ..Setup::default()
    };
    with_lambda(
        rusty_fork_test_name!(certificate_credential_signs_an_assertion_and_its_token_reaches_arm),
        setup,
        |l| {
            let schedule = lambda_fixture("aws_lambda_events.example-eventbridge-schedule.json");
            let summary = l.invoke(schedule).response().clone();
            assert_eq!(summary["complete"], true, "{summary}\n{}", l.output());
            assert!(l.sandbox.requests().total > 0);

            let seen = seen.lock().unwrap().clone();
            assert!(!seen.is_empty(), "no token request reached the fake Entra");
            let (path, form) = &seen[0];
            assert_eq!(path, &format!("/{TENANT}/oauth2/v2.0/token"));
            assert_eq!(form["client_id"], CLIENT);
            assert_eq!(form["grant_type"], "client_credentials");
            assert_eq!(
                form["client_assertion_type"],
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            );
            assert!(form["scope"].ends_with("/.default"), "{form:?}");
            assert!(!form.contains_key("client_secret"), "{form:?}");

            let assertion = &form["client_assertion"];
            let parts: Vec<&str> = assertion.split('.').collect();
            assert_eq!(parts.len(), 3, "{assertion}");
            let header: Value = serde_json::from_slice(&jwt_part(parts[0])).unwrap();
            assert_eq!(header["alg"], "RS256", "{header}");
            assert_eq!(header["x5t"], pki.thumbprint(), "{header}");
            let claims: Value = serde_json::from_slice(&jwt_part(parts[1])).unwrap();
            assert_eq!(
                claims["aud"],
                format!("{authority}/{TENANT}/oauth2/v2.0/token"),
                "{claims}"
            );
            assert_eq!(
                (&claims["iss"], &claims["sub"]),
                (&json!(CLIENT), &json!(CLIENT))
            );
            assert!(claims["exp"].as_i64().unwrap() > claims["nbf"].as_i64().unwrap());

            // Signed with the certificate's private key: openssl verifies it with the public key.
            let d = pki.dir.path();
            std::fs::write(d.join("signed.txt"), format!("{}.{}", parts[0], parts[1])).unwrap();
            std::fs::write(d.join("sig.bin"), jwt_part(parts[2])).unwrap();
            let verified = openssl(
                d,
                &[
                    "dgst",
                    "-sha256",
                    "-verify",
                    "pub.pem",
                    "-signature",
                    "sig.bin",
                    "signed.txt",
                ],
            );
            assert_eq!(String::from_utf8_lossy(&verified).trim(), "Verified OK");

            let output = l.output();
            for secret in [PASSWORD, ISSUED] {
                assert!(!output.contains(secret), "{secret} printed:\n{output}");
            }
        },
    );
}

/// The bundle given as base64 in `AZURE_CLIENT_CERTIFICATE` with the wrong password: the host
/// refuses to start, naming the variable and the fix, without printing the bundle or a password.
#[test]
fn a_certificate_that_cannot_be_opened_stops_the_host_at_start() {
    let pki = Pki::new();
    let bundle = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(pki.path("cert.pfx")).unwrap());
    let mut env = certificate_env(&pki, "https://127.0.0.1:9");
    env.push(("AZURE_CLIENT_CERTIFICATE", Some(bundle.clone())));
    env.push((
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        Some("not-the-password-4471".into()),
    ));
    let setup = Setup {
        env,
        ..Setup::default()
    };
    lambda_exit(
        rusty_fork_test_name!(a_certificate_that_cannot_be_opened_stops_the_host_at_start),
        setup,
        |l, code, output| {
            assert_eq!(code, Some(2), "{output}");
            assert!(
                output.contains("the client certificate AZURE_CLIENT_CERTIFICATE is unusable")
                    && output.contains("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
                "{output}"
            );
            for secret in ["not-the-password-4471", &bundle[..40]] {
                assert!(!output.contains(secret), "{secret} printed:\n{output}");
            }
            assert_eq!(
                l.api.next_calls.load(std::sync::atomic::Ordering::SeqCst),
                0,
                "stopped before asking for an event"
            );
        },
    );
}
