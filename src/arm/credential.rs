//! Where the ARM token comes from: the `LINKGUARD_CREDENTIAL` setting of DESIGN 3.0 turned into an
//! `azure_identity` credential (or a static token for the sandbox).
//!
//! Settings are passed in through an [`EnvSource`] rather than read from `std::env` here, so the
//! host reads the process environment once and tests pass values explicitly.
//! One exception is outside our control: `azure_identity`'s `ManagedIdentityCredential` picks its
//! source (App Service `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`, else IMDS) from the process
//! environment itself; only the user-assigned client id (`AZURE_CLIENT_ID`) is taken from the source.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
#[cfg(feature = "client-certificate")]
use azure_core::credentials::SecretBytes;
use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::http::ClientOptions;
use azure_core::time::{Duration, OffsetDateTime};
use azure_identity::{
    AzureCliCredential, ClientAssertionCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
#[cfg(feature = "client-certificate")]
use azure_identity::{ClientCertificateCredential, ClientCertificateCredentialOptions};

/// The variable naming the credential kind.
pub const CREDENTIAL_VAR: &str = "LINKGUARD_CREDENTIAL";
/// The token used by the `static` kind.
pub const STATIC_TOKEN_VAR: &str = "LINKGUARD_STATIC_TOKEN";

/// Which credential supplies ARM tokens (`LINKGUARD_CREDENTIAL`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CredentialKind {
    /// Managed identity (Azure Functions / App Service, or IMDS on a VM). Default.
    #[default]
    ManagedIdentity,
    /// Workload identity federation (AKS): `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE`.
    WorkloadIdentity,
    /// The signed-in Azure CLI (`az account get-access-token`), for local use.
    AzureCli,
    /// A service principal secret: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, and `AZURE_CLIENT_SECRET` or
    /// `AZURE_CLIENT_SECRET_FILE`.
    ClientSecret,
    /// A service principal certificate (PKCS#12 with its RSA key): `AZURE_TENANT_ID`,
    /// `AZURE_CLIENT_ID`, and `AZURE_CLIENT_CERTIFICATE_PATH` (the file) or `AZURE_CLIENT_CERTIFICATE`
    /// (base64 of it); `AZURE_CLIENT_CERTIFICATE_PASSWORD` if the bundle has one.
    ClientCertificate,
    /// A fixed token from `LINKGUARD_STATIC_TOKEN` (sandbox only).
    Static,
}

impl CredentialKind {
    pub const ALL: [CredentialKind; 6] = [
        CredentialKind::ManagedIdentity,
        CredentialKind::WorkloadIdentity,
        CredentialKind::AzureCli,
        CredentialKind::ClientSecret,
        CredentialKind::ClientCertificate,
        CredentialKind::Static,
    ];

    /// Every kind's name, for messages: `managed-identity, workload-identity, ...`.
    pub fn known() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::ManagedIdentity => "managed-identity",
            CredentialKind::WorkloadIdentity => "workload-identity",
            CredentialKind::AzureCli => "azure-cli",
            CredentialKind::ClientSecret => "client-secret",
            CredentialKind::ClientCertificate => "client-certificate",
            CredentialKind::Static => "static",
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CredentialKind {
    type Err = CredentialError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| CredentialError::UnknownKind(s.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "{CREDENTIAL_VAR}=`{0}` is not a known credential; use one of {known}",
        known = CredentialKind::known()
    )]
    UnknownKind(String),
    #[error("the {kind} credential needs {var} to be set: {hint}")]
    Missing {
        kind: CredentialKind,
        var: &'static str,
        hint: &'static str,
    },
    #[error("the {kind} credential takes either {first} or {second}, not both: unset one of them")]
    Conflict {
        kind: CredentialKind,
        first: &'static str,
        second: &'static str,
    },
    #[error("could not read the client secret from {path} (AZURE_CLIENT_SECRET_FILE): {source}")]
    SecretFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the client secret file {path} (AZURE_CLIENT_SECRET_FILE) is empty")]
    EmptySecretFile { path: String },
    #[error("could not read the client certificate from {path} ({CERTIFICATE_PATH}): {source}")]
    CertificateFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the client certificate {origin} is unusable: {problem}")]
    Certificate {
        /// Which variable (and file) it came from.
        origin: String,
        problem: String,
    },
    #[error(
        "{CREDENTIAL_VAR}={kind} is not in this build of linkguard: rebuild with `cargo build --release --features client-certificate` (links OpenSSL 3), or use client-secret"
    )]
    NotInThisBuild { kind: CredentialKind },
    #[error("could not set up the {kind} credential: {message}")]
    Build {
        kind: CredentialKind,
        message: String,
    },
}

/// A source of configuration values by variable name: the process environment ([`ProcessEnv`]),
/// a map, or a closure. Empty values count as unset.
pub trait EnvSource {
    fn var(&self, name: &str) -> Option<String>;
}

/// Reads the process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<S: std::hash::BuildHasher> EnvSource for HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.trim().is_empty()).cloned()
    }
}

impl EnvSource for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.trim().is_empty()).cloned()
    }
}

impl EnvSource for [(&str, &str)] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_string())
            .filter(|v| !v.trim().is_empty())
    }
}

impl<const N: usize> EnvSource for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.as_slice().var(name)
    }
}

/// A credential that always returns the same token, with a far expiry. For the sandbox, which
/// accepts any bearer token (or the one given to `linkguard sim --token`).
#[derive(Clone)]
pub struct StaticTokenCredential {
    token: Secret,
}

impl StaticTokenCredential {
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: Secret::new(token.into()),
        }
    }
}

impl fmt::Debug for StaticTokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticTokenCredential")
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCredential for StaticTokenCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        // A year is "never" for a process; the token is never refreshed anyway.
        Ok(AccessToken::new(
            self.token.clone(),
            OffsetDateTime::now_utc() + Duration::days(365),
        ))
    }
}

const CERTIFICATE_PATH: &str = "AZURE_CLIENT_CERTIFICATE_PATH";
#[cfg(feature = "client-certificate")]
const CERTIFICATE: &str = "AZURE_CLIENT_CERTIFICATE";
#[cfg(feature = "client-certificate")]
const CERTIFICATE_PASSWORD: &str = "AZURE_CLIENT_CERTIFICATE_PASSWORD";

/// Builds the credential `kind` from the values in `env`. Errors name the missing variable.
pub fn credential_from_config<E: EnvSource + ?Sized>(
    kind: CredentialKind,
    env: &E,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let build = |e: azure_core::Error| CredentialError::Build {
        kind,
        message: error_chain(&e),
    };
    match kind {
        CredentialKind::Static => {
            let token = env.var(STATIC_TOKEN_VAR).ok_or(CredentialError::Missing {
                kind,
                var: STATIC_TOKEN_VAR,
                hint: "the token the sandbox expects (any value unless `linkguard sim --token` was given)",
            })?;
            Ok(Arc::new(StaticTokenCredential::new(token.trim())))
        }
        CredentialKind::ManagedIdentity => {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: env.var("AZURE_CLIENT_ID").map(UserAssignedId::ClientId),
                ..Default::default()
            };
            let credential = ManagedIdentityCredential::new(Some(options)).map_err(build)?;
            Ok(credential)
        }
        CredentialKind::WorkloadIdentity => {
            let tenant_id = required(
                env,
                kind,
                "AZURE_TENANT_ID",
                "the Entra tenant of the federated identity",
            )?;
            let client_id = required(
                env,
                kind,
                "AZURE_CLIENT_ID",
                "the client id of the federated identity",
            )?;
            let token_file = required(
                env,
                kind,
                "AZURE_FEDERATED_TOKEN_FILE",
                "the path of the projected service account token (set by the workload identity webhook)",
            )?;
            let options = WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions {
                    client_options: client_options(env),
                },
                client_id: Some(client_id),
                tenant_id: Some(tenant_id),
                token_file_path: Some(token_file.into()),
            };
            let credential = WorkloadIdentityCredential::new(Some(options)).map_err(build)?;
            Ok(credential)
        }
        CredentialKind::AzureCli => {
            let credential = AzureCliCredential::new(None).map_err(build)?;
            Ok(credential)
        }
        CredentialKind::ClientSecret => {
            let (tenant_id, client_id) = service_principal(env, kind)?;
            let secret = client_secret(env, kind)?;
            let options = ClientSecretCredentialOptions {
                client_options: client_options(env),
            };
            let credential = ClientSecretCredential::new(
                &tenant_id,
                client_id,
                Secret::new(secret),
                Some(options),
            )
            .map_err(build)?;
            Ok(credential)
        }
        CredentialKind::ClientCertificate => certificate_credential(env, kind),
    }
}

/// The tenant and application (client) id every service principal credential needs.
fn service_principal<E: EnvSource + ?Sized>(
    env: &E,
    kind: CredentialKind,
) -> Result<(String, String), CredentialError> {
    let tenant_id = required(
        env,
        kind,
        "AZURE_TENANT_ID",
        "the Entra tenant of the service principal",
    )?;
    let client_id = required(
        env,
        kind,
        "AZURE_CLIENT_ID",
        "the application (client) id of the service principal",
    )?;
    Ok((tenant_id, client_id))
}

/// A service principal certificate, through azure_identity's OpenSSL-backed credential.
#[cfg(feature = "client-certificate")]
fn certificate_credential<E: EnvSource + ?Sized>(
    env: &E,
    kind: CredentialKind,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let (tenant_id, client_id) = service_principal(env, kind)?;
    let (origin, bundle) = client_certificate(env, kind)?;
    let options = ClientCertificateCredentialOptions {
        client_options: client_options(env),
        password: env.var(CERTIFICATE_PASSWORD).map(Secret::new),
    };
    let credential = ClientCertificateCredential::new(
            tenant_id,
            client_id,
            SecretBytes::new(bundle),
            Some(options),
        )
        // The SDK's message says what failed (PKCS#12 parsing, no private key); say which
        // certificate and what the bundle must be.
        .map_err(|e| CredentialError::Certificate {
            origin,
            problem: format!(
                "{}; it must be a PKCS#12 (.pfx) bundle holding the certificate and its RSA private key, with the password in {CERTIFICATE_PASSWORD} if it has one",
                error_chain(&e)
            ),
        })?;
    Ok(credential)
}

/// Without the `client-certificate` feature the kind is known (so the message can name it) but
/// cannot be built: say how to get a build that has it, or which credential to use instead.
#[cfg(not(feature = "client-certificate"))]
fn certificate_credential<E: EnvSource + ?Sized>(
    _env: &E,
    kind: CredentialKind,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    Err(CredentialError::NotInThisBuild { kind })
}

/// The PKCS#12 bundle from a file or from base64 in the environment, and where it came from.
#[cfg(feature = "client-certificate")]
fn client_certificate<E: EnvSource + ?Sized>(
    env: &E,
    kind: CredentialKind,
) -> Result<(String, Vec<u8>), CredentialError> {
    let bundle = match (env.var(CERTIFICATE_PATH), env.var(CERTIFICATE)) {
        (Some(_), Some(_)) => {
            return Err(CredentialError::Conflict {
                kind,
                first: CERTIFICATE_PATH,
                second: CERTIFICATE,
            });
        }
        (Some(path), None) => {
            let path = path.trim().to_string();
            let bytes =
                std::fs::read(&path).map_err(|source| CredentialError::CertificateFile {
                    path: path.clone(),
                    source,
                })?;
            (format!("{path} ({CERTIFICATE_PATH})"), bytes)
        }
        (None, Some(text)) => {
            use base64::Engine as _;
            let compact: String = text.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact.as_bytes())
                // The decoder's message would quote a byte of the secret: leave it out.
                .map_err(|_| CredentialError::Certificate {
                    origin: CERTIFICATE.to_string(),
                    problem: "it is not valid base64; set it to the base64 of the .pfx file, e.g. `base64 -w0 cert.pfx`".into(),
                })?;
            (CERTIFICATE.to_string(), bytes)
        }
        (None, None) => {
            return Err(CredentialError::Missing {
                kind,
                var: CERTIFICATE_PATH,
                hint: "the path of the PKCS#12 (.pfx) certificate bundle, or AZURE_CLIENT_CERTIFICATE with its base64",
            });
        }
    };
    let (origin, bytes) = bundle;
    if bytes.starts_with(b"-----BEGIN") {
        return Err(CredentialError::Certificate {
            origin,
            problem: "it is PEM, and a PKCS#12 (.pfx) bundle is needed: convert with `openssl pkcs12 -export -in cert.pem -inkey key.pem -out cert.pfx`".into(),
        });
    }
    Ok((origin, bytes))
}

fn required<E: EnvSource + ?Sized>(
    env: &E,
    kind: CredentialKind,
    var: &'static str,
    hint: &'static str,
) -> Result<String, CredentialError> {
    env.var(var)
        .map(|v| v.trim().to_string())
        .ok_or(CredentialError::Missing { kind, var, hint })
}

fn client_secret<E: EnvSource + ?Sized>(
    env: &E,
    kind: CredentialKind,
) -> Result<String, CredentialError> {
    const SECRET: &str = "AZURE_CLIENT_SECRET";
    const SECRET_FILE: &str = "AZURE_CLIENT_SECRET_FILE";
    match (env.var(SECRET), env.var(SECRET_FILE)) {
        (Some(_), Some(_)) => Err(CredentialError::Conflict {
            kind,
            first: SECRET,
            second: SECRET_FILE,
        }),
        (Some(secret), None) => Ok(secret),
        (None, Some(path)) => {
            let text =
                std::fs::read_to_string(&path).map_err(|source| CredentialError::SecretFile {
                    path: path.clone(),
                    source,
                })?;
            // Files written by `echo` or secret mounts end with a newline that is not part of the secret.
            let secret = text.trim_end_matches(['\r', '\n']).to_string();
            if secret.is_empty() {
                return Err(CredentialError::EmptySecretFile { path });
            }
            Ok(secret)
        }
        (None, None) => Err(CredentialError::Missing {
            kind,
            var: SECRET,
            hint: "the client secret, or AZURE_CLIENT_SECRET_FILE with the path of a file holding it",
        }),
    }
}

/// Entra-based credentials honour `AZURE_AUTHORITY_HOST` (sovereign clouds) from the source, not
/// from the process environment.
fn client_options<E: EnvSource + ?Sized>(env: &E) -> ClientOptions {
    let mut options = ClientOptions::default();
    if let Some(host) = env.var("AZURE_AUTHORITY_HOST") {
        let mut custom = CustomConfiguration::default();
        custom.authority_host = host.trim().to_string();
        options.cloud = Some(Arc::new(CloudConfiguration::from(custom)));
    }
    options
}

/// `error: cause: cause` in one line; azure_core errors keep the useful part in their sources.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_case_insensitively_and_round_trip() {
        for kind in CredentialKind::ALL {
            assert_eq!(kind.as_str().parse::<CredentialKind>().unwrap(), kind);
            assert_eq!(
                kind.as_str()
                    .to_uppercase()
                    .parse::<CredentialKind>()
                    .unwrap(),
                kind
            );
        }
        let err = "keyvault".parse::<CredentialKind>().unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("LINKGUARD_CREDENTIAL") && text.contains("keyvault"),
            "{text}"
        );
        assert!(text.contains("managed-identity"), "{text}");
    }

    #[test]
    fn static_needs_its_token_variable() {
        let err = credential_from_config(CredentialKind::Static, &[("X", "y")]).unwrap_err();
        assert!(err.to_string().contains(STATIC_TOKEN_VAR), "{err}");
    }

    #[tokio::test]
    async fn static_returns_the_token_with_a_far_expiry_and_hides_it_in_debug() {
        let cred = credential_from_config(CredentialKind::Static, &[(STATIC_TOKEN_VAR, "tok-123")])
            .unwrap();
        let token = cred
            .get_token(&["https://management.azure.com/.default"], None)
            .await
            .unwrap();
        assert_eq!(token.token.secret(), "tok-123");
        assert!(token.expires_on > OffsetDateTime::now_utc() + Duration::days(300));
        assert!(!format!("{cred:?}").contains("tok-123"));
    }

    #[test]
    fn client_secret_names_each_missing_variable_in_order() {
        let err = credential_from_config(CredentialKind::ClientSecret, &[("AZURE_CLIENT_ID", "c")])
            .unwrap_err();
        assert!(err.to_string().contains("AZURE_TENANT_ID"), "{err}");
        let err = credential_from_config(CredentialKind::ClientSecret, &[("AZURE_TENANT_ID", "t")])
            .unwrap_err();
        assert!(err.to_string().contains("AZURE_CLIENT_ID"), "{err}");
        let err = credential_from_config(
            CredentialKind::ClientSecret,
            &[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("AZURE_CLIENT_SECRET") && text.contains("AZURE_CLIENT_SECRET_FILE"),
            "{text}"
        );
    }

    #[test]
    fn client_secret_rejects_both_secret_sources() {
        let env = [
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s"),
            ("AZURE_CLIENT_SECRET_FILE", "/nonexistent"),
        ];
        let err = credential_from_config(CredentialKind::ClientSecret, &env).unwrap_err();
        assert!(matches!(err, CredentialError::Conflict { .. }), "{err}");
    }

    #[test]
    fn client_secret_reads_the_secret_file_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n").unwrap();
        let path_text = path.to_string_lossy().to_string();
        let env = [
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
            ("AZURE_CLIENT_SECRET_FILE", path_text.as_str()),
        ];
        let cred = credential_from_config(CredentialKind::ClientSecret, &env).unwrap();
        assert!(!format!("{cred:?}").contains("s3cret"));

        let missing = dir.path().join("nope").to_string_lossy().to_string();
        let env = [
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET_FILE", missing.as_str()),
        ];
        let err = credential_from_config(CredentialKind::ClientSecret, &env).unwrap_err();
        assert!(matches!(err, CredentialError::SecretFile { .. }), "{err}");
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[cfg(not(feature = "client-certificate"))]
    #[test]
    fn client_certificate_without_the_feature_says_how_to_get_it() {
        let env = [
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_CLIENT_ID", "c"),
            (CERTIFICATE_PATH, "/x.pfx"),
        ];
        let err = credential_from_config(CredentialKind::ClientCertificate, &env).unwrap_err();
        assert!(
            matches!(err, CredentialError::NotInThisBuild { .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("--features client-certificate"),
            "{err}"
        );
    }

    #[cfg(feature = "client-certificate")]
    #[test]
    fn client_certificate_names_the_variable_and_the_fix() {
        let ids = [
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_CLIENT_ID", "c"),
        ];
        let kind = CredentialKind::ClientCertificate;
        let err = credential_from_config(kind, &ids).unwrap_err();
        assert!(
            err.to_string().contains(CERTIFICATE_PATH) && err.to_string().contains(CERTIFICATE),
            "{err}"
        );

        let with = |extra: &[(&'static str, &str)]| {
            let mut env: Vec<(&str, &str)> = ids.to_vec();
            env.extend_from_slice(extra);
            credential_from_config(kind, env.as_slice()).unwrap_err()
        };
        let err = with(&[(CERTIFICATE_PATH, "/x.pfx"), (CERTIFICATE, "AAAA")]);
        assert!(matches!(err, CredentialError::Conflict { .. }), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pfx").display().to_string();
        let err = with(&[(CERTIFICATE_PATH, missing.as_str())]);
        assert!(
            matches!(err, CredentialError::CertificateFile { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("nope.pfx"), "{err}");

        let pem = dir.path().join("cert.pem");
        std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
        let err = with(&[(CERTIFICATE_PATH, pem.to_str().unwrap())]);
        assert!(
            err.to_string().contains("is PEM")
                && err.to_string().contains("openssl pkcs12 -export"),
            "{err}"
        );

        // Not base64: the message never quotes what was given.
        let err = with(&[(CERTIFICATE, "secret%material!")]);
        let text = err.to_string();
        assert!(
            text.contains("not valid base64") && !text.contains("secret%"),
            "{text}"
        );

        // Base64 of something that is not PKCS#12: the SDK's reason, the origin and the fix.
        let err = with(&[(CERTIFICATE, "bm90IGEgY2VydGlmaWNhdGU=")]);
        let text = err.to_string();
        assert!(
            text.contains("AZURE_CLIENT_CERTIFICATE is unusable")
                && text.contains("PKCS12")
                && text.contains(CERTIFICATE_PASSWORD),
            "{text}"
        );
    }

    #[test]
    fn workload_identity_names_the_token_file_variable() {
        let env = [
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            ("AZURE_CLIENT_ID", "c"),
        ];
        let err = credential_from_config(CredentialKind::WorkloadIdentity, &env).unwrap_err();
        assert!(
            err.to_string().contains("AZURE_FEDERATED_TOKEN_FILE"),
            "{err}"
        );
    }

    #[test]
    fn maps_and_pairs_are_sources_and_blank_means_unset() {
        let mut map = HashMap::new();
        map.insert("A".to_string(), "1".to_string());
        map.insert("B".to_string(), "  ".to_string());
        assert_eq!(map.var("A").as_deref(), Some("1"));
        assert_eq!(map.var("B"), None);
        assert_eq!([("A", "")].var("A"), None);
    }
}
