//! The Azure credential on Lambda.
//!
//! `LINKGUARD_CREDENTIAL=client-secret` reads `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and the secret from
//! `AZURE_CLIENT_SECRET` or `AZURE_CLIENT_SECRET_FILE` ([`crate::arm::credential`]). On Lambda the
//! secret can also stay in Secrets Manager: with only `AZURE_CLIENT_SECRET_ARN` set, it is read
//! through the AWS Parameters and Secrets Lambda Extension (a layer serving
//! `GET http://localhost:2773/secretsmanager/get?secretId=<arn>`, authenticated with the
//! environment's `AWS_SESSION_TOKEN`), so no AWS SDK is linked. The extension does not answer
//! during the Lambda init phase, so the secret is fetched at the first token request (the first
//! invocation that reaches ARM or Blob) and kept in memory for the environment's lifetime; a fetch
//! that fails is tried again at the next request.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error as AzureError, ErrorKind};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::arm::credential::{CredentialKind, EnvSource, credential_from_config};
use crate::config::{Secret, Settings};

pub const CLIENT_SECRET_ARN: &str = "AZURE_CLIENT_SECRET_ARN";
pub const EXTENSION_PORT: &str = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT";
pub const DEFAULT_EXTENSION_PORT: u16 = 2773;
pub const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
const TOKEN_HEADER: &str = "X-Aws-Parameters-Secrets-Token";
const CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
const CLIENT_SECRET_FILE: &str = "AZURE_CLIENT_SECRET_FILE";
/// What the client-secret credential reads besides the secret.
const CREDENTIAL_VARS: [&str; 3] = ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_AUTHORITY_HOST"];

/// A lookup closure as the credential module's [`EnvSource`] (blank counts as unset).
pub struct LookupEnv<'a>(pub &'a dyn Fn(&str) -> Option<String>);

impl EnvSource for LookupEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }
}

/// Where the secret went, for the start-up log line (never the secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// `LINKGUARD_CREDENTIAL` as the other hosts read it.
    Settings,
    /// The client secret comes from Secrets Manager through the extension, at first use.
    SecretsManagerExtension,
}

/// Builds the credential for ARM and Blob. Errors name the variable and the fix.
pub fn credential(
    settings: &Settings,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(Arc<dyn TokenCredential>, CredentialSource), String> {
    let env = LookupEnv(lookup);
    let from_env = env.var(CLIENT_SECRET).is_some() || env.var(CLIENT_SECRET_FILE).is_some();
    let arn = env.var(CLIENT_SECRET_ARN);
    match (settings.credential, arn) {
        (CredentialKind::ClientSecret, Some(arn)) if !from_env => {
            let extension = ExtensionSecret::from_env(&env, arn.trim())?;
            let vars: BTreeMap<String, String> = CREDENTIAL_VARS
                .iter()
                .filter_map(|k| env.var(k).map(|v| ((*k).to_string(), v)))
                .collect();
            // Checks tenant and client id now (with a stand-in secret), so a deployment missing
            // them stops at start rather than at the first event.
            let mut probe = vars.clone();
            probe.insert(CLIENT_SECRET.into(), "stand-in".into());
            credential_from_config(CredentialKind::ClientSecret, &probe)
                .map_err(|e| format!("{}: {e}", crate::config::CREDENTIAL))?;
            let credential = ExtensionClientSecretCredential::new(extension, vars)?;
            Ok((Arc::new(credential), CredentialSource::SecretsManagerExtension))
        }
        (kind, _) => credential_from_config(kind, &env)
            .map(|c| (c, CredentialSource::Settings))
            .map_err(|e| {
                let mut message = format!("{}: {e}", crate::config::CREDENTIAL);
                if kind == CredentialKind::ClientSecret && !from_env {
                    message.push_str(&format!(
                        " (on Lambda, {CLIENT_SECRET_ARN} may name a Secrets Manager secret instead, read through the AWS Parameters and Secrets Lambda Extension layer)"
                    ));
                }
                message
            }),
    }
}

/// The extension's address and the token it expects.
#[derive(Clone)]
pub struct ExtensionSecret {
    url: url::Url,
    session_token: Secret,
}

impl fmt::Debug for ExtensionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtensionSecret")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// Why the extension did not give the secret. Never carries the secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error(
        "the AWS Parameters and Secrets Lambda Extension is not reachable ({0}); add its layer to the function, or set AZURE_CLIENT_SECRET instead of {CLIENT_SECRET_ARN}"
    )]
    Unreachable(String),
    #[error(
        "the AWS Parameters and Secrets Lambda Extension answered HTTP {status} for {CLIENT_SECRET_ARN}: {message}"
    )]
    Status { status: u16, message: String },
    #[error("the secret named by {CLIENT_SECRET_ARN} is unusable: {0}")]
    Unusable(String),
}

impl FetchError {
    /// Worth trying again later (extension starting, Secrets Manager unavailable), as opposed to a
    /// deployment error (access denied, no such secret).
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Unreachable(_) => true,
            FetchError::Status { status, .. } => !matches!(status, 401 | 403 | 404),
            FetchError::Unusable(_) => false,
        }
    }
}

impl ExtensionSecret {
    /// The extension on `127.0.0.1:<port>` (the extension listens on localhost).
    pub fn new(port: u16, arn: &str, session_token: Secret) -> Result<Self, String> {
        let mut url = url::Url::parse(&format!("http://127.0.0.1:{port}/secretsmanager/get"))
            .map_err(|e| format!("{EXTENSION_PORT}: {e}"))?;
        url.query_pairs_mut().append_pair("secretId", arn);
        Ok(Self { url, session_token })
    }

    fn from_env(env: &LookupEnv<'_>, arn: &str) -> Result<Self, String> {
        let token = env.var(SESSION_TOKEN).ok_or_else(|| {
            format!("{CLIENT_SECRET_ARN} is set but {SESSION_TOKEN} is not: the Parameters and Secrets extension authenticates requests with the Lambda environment's session token (set by Lambda); outside Lambda set AZURE_CLIENT_SECRET or AZURE_CLIENT_SECRET_FILE instead")
        })?;
        let port = match env.var(EXTENSION_PORT) {
            None => DEFAULT_EXTENSION_PORT,
            Some(p) => p
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    format!(
                        "{EXTENSION_PORT}: `{}` is not a TCP port (1-65535)",
                        p.trim()
                    )
                })?,
        };
        if !arn.starts_with("arn:") {
            return Err(format!(
                "{CLIENT_SECRET_ARN}: `{arn}` is not an ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)"
            ));
        }
        Self::new(port, arn, Secret::new(token))
    }

    /// `GET /secretsmanager/get?secretId=<arn>`; the answer is GetSecretValue's JSON.
    pub async fn fetch(&self, http: &reqwest::Client) -> Result<Secret, FetchError> {
        let response = http
            .get(self.url.clone())
            .header(TOKEN_HEADER, self.session_token.expose())
            .send()
            .await
            .map_err(|e| FetchError::Unreachable(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| FetchError::Unreachable(e.without_url().to_string()))?;
        if !(200..300).contains(&status) {
            // An error answer names the problem (AccessDenied, not ready); it never holds the secret.
            let message: String = text.trim().chars().take(300).collect();
            return Err(FetchError::Status { status, message });
        }
        // From here on the text holds the secret: it never goes into a message.
        let value: Value = serde_json::from_str(&text).map_err(|_| {
            FetchError::Unusable("the extension's answer is not GetSecretValue JSON".into())
        })?;
        let secret = value
            .get("SecretString")
            .and_then(Value::as_str)
            .map(|s| s.trim_end_matches(['\r', '\n']))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                FetchError::Unusable(
                    "it has no SecretString (binary or empty secret); store the client secret as text with `aws secretsmanager put-secret-value --secret-string`".into(),
                )
            })?;
        Ok(Secret::new(secret))
    }
}

/// A client-secret credential whose secret is fetched from the extension at first use.
pub struct ExtensionClientSecretCredential {
    source: ExtensionSecret,
    /// `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_AUTHORITY_HOST`.
    vars: BTreeMap<String, String>,
    http: reqwest::Client,
    inner: OnceCell<Arc<dyn TokenCredential>>,
}

impl fmt::Debug for ExtensionClientSecretCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtensionClientSecretCredential")
            .field("source", &self.source)
            .field("ready", &self.inner.initialized())
            .finish_non_exhaustive()
    }
}

impl ExtensionClientSecretCredential {
    pub fn new(source: ExtensionSecret, vars: BTreeMap<String, String>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(|e| format!("cannot set up the HTTP client for the secrets extension: {e}"))?;
        Ok(Self {
            source,
            vars,
            http,
            inner: OnceCell::new(),
        })
    }

    async fn build(&self) -> Result<Arc<dyn TokenCredential>, AzureError> {
        let secret = self.source.fetch(&self.http).await.map_err(|e| {
            // Io is what the ARM client and the blob sink count as transient (the delivery is
            // retried); Credential is a deployment error.
            let kind = if e.is_transient() {
                ErrorKind::Io
            } else {
                ErrorKind::Credential
            };
            AzureError::with_message(kind, e.to_string())
        })?;
        let mut env = self.vars.clone();
        env.insert(CLIENT_SECRET.into(), secret.expose().to_string());
        credential_from_config(CredentialKind::ClientSecret, &env)
            .map_err(|e| AzureError::with_message(ErrorKind::Credential, e.to_string()))
    }
}

#[async_trait::async_trait]
impl TokenCredential for ExtensionClientSecretCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let credential = self.inner.get_or_try_init(|| self.build()).await?;
        credential.get_token(scopes, options).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use axum::Router;
    use axum::extract::{Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;

    use super::*;

    type Seen = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

    /// A stand-in for the extension: answers `SecretString` for the right token, the extension's
    /// error otherwise.
    async fn fake_extension(answer: (StatusCode, &'static str)) -> (u16, Seen) {
        let seen: Seen = Arc::default();
        let app = Router::new()
            .route(
                "/secretsmanager/get",
                get(
                    |State((seen, answer)): State<(Seen, (StatusCode, &'static str))>,
                     Query(q): Query<HashMap<String, String>>,
                     headers: HeaderMap| async move {
                        let token = headers
                            .get("x-aws-parameters-secrets-token")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string);
                        seen.lock()
                            .unwrap()
                            .push((q.get("secretId").cloned(), token.clone()));
                        if token.as_deref() != Some("session-token") {
                            return (
                                StatusCode::UNAUTHORIZED,
                                "missing or wrong token".to_string(),
                            );
                        }
                        (answer.0, answer.1.to_string())
                    },
                ),
            )
            .with_state((seen.clone(), answer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (port, seen)
    }

    const ARN: &str =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:stack/azure-client-secret-AbCdEf";

    #[tokio::test]
    async fn reads_the_secret_string_with_the_session_token() {
        let (port, seen) = fake_extension((
            StatusCode::OK,
            r#"{"ARN":"a","Name":"n","SecretString":"s3cr3t-value\n","VersionId":"v"}"#,
        ))
        .await;
        let source = ExtensionSecret::new(port, ARN, Secret::new("session-token")).unwrap();
        let secret = source.fetch(&reqwest::Client::new()).await.unwrap();
        assert_eq!(secret.expose(), "s3cr3t-value");
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            &[(Some(ARN.to_string()), Some("session-token".to_string()))]
        );
        let wrong = ExtensionSecret::new(port, ARN, Secret::new("other")).unwrap();
        let e = wrong.fetch(&reqwest::Client::new()).await.unwrap_err();
        assert_eq!(
            e,
            FetchError::Status {
                status: 401,
                message: "missing or wrong token".into()
            }
        );
        assert!(!e.is_transient());
    }

    #[tokio::test]
    async fn failures_are_classified_and_never_echo_the_answer() {
        let (port, _) = fake_extension((
            StatusCode::BAD_REQUEST,
            "not ready to serve traffic, please wait",
        ))
        .await;
        let source = ExtensionSecret::new(port, ARN, Secret::new("session-token")).unwrap();
        let e = source.fetch(&reqwest::Client::new()).await.unwrap_err();
        assert!(e.is_transient(), "{e}");

        let (port, _) = fake_extension((StatusCode::OK, "SECRET-IN-A-NON-JSON-BODY")).await;
        let source = ExtensionSecret::new(port, ARN, Secret::new("session-token")).unwrap();
        let e = source.fetch(&reqwest::Client::new()).await.unwrap_err();
        assert!(!e.to_string().contains("SECRET-IN"), "{e}");
        assert!(!e.is_transient());

        let (port, _) = fake_extension((StatusCode::OK, r#"{"SecretBinary":"AAAA"}"#)).await;
        let source = ExtensionSecret::new(port, ARN, Secret::new("session-token")).unwrap();
        assert!(
            source
                .fetch(&reqwest::Client::new())
                .await
                .unwrap_err()
                .to_string()
                .contains("SecretString")
        );

        // Nothing listening: transient, and the message says how to fix the deployment.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let source = ExtensionSecret::new(port, ARN, Secret::new("session-token")).unwrap();
        let e = source.fetch(&reqwest::Client::new()).await.unwrap_err();
        assert!(e.is_transient() && e.to_string().contains("layer"), "{e}");
    }

    fn settings(pairs: &[(&str, &str)]) -> (Settings, impl Fn(&str) -> Option<String> + use<>) {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        let lookup = move |k: &str| map.get(k).cloned();
        (Settings::from_lookup(&lookup).unwrap(), lookup)
    }

    const TENANT: (&str, &str) = ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000001");
    const CLIENT: (&str, &str) = ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000002");

    #[test]
    fn picks_the_extension_only_for_a_client_secret_given_by_arn() {
        let cs = ("LINKGUARD_CREDENTIAL", "client-secret");
        let (s, l) = settings(&[
            cs,
            TENANT,
            CLIENT,
            (CLIENT_SECRET_ARN, ARN),
            (SESSION_TOKEN, "t"),
        ]);
        assert_eq!(
            credential(&s, &l).unwrap().1,
            CredentialSource::SecretsManagerExtension
        );
        // A secret in the environment wins over the ARN.
        let (s, l) = settings(&[
            cs,
            TENANT,
            CLIENT,
            (CLIENT_SECRET_ARN, ARN),
            (CLIENT_SECRET, "x"),
        ]);
        assert_eq!(credential(&s, &l).unwrap().1, CredentialSource::Settings);
        // The ARN route checks what it needs at start.
        let (s, l) = settings(&[cs, TENANT, CLIENT, (CLIENT_SECRET_ARN, ARN)]);
        assert!(credential(&s, &l).err().unwrap().contains(SESSION_TOKEN));
        let (s, l) = settings(&[cs, CLIENT, (CLIENT_SECRET_ARN, ARN), (SESSION_TOKEN, "t")]);
        assert!(
            credential(&s, &l)
                .err()
                .unwrap()
                .contains("AZURE_TENANT_ID")
        );
        let (s, l) = settings(&[
            cs,
            TENANT,
            CLIENT,
            (CLIENT_SECRET_ARN, "my-secret"),
            (SESSION_TOKEN, "t"),
        ]);
        assert!(credential(&s, &l).err().unwrap().contains("is not an ARN"));
        let (s, l) = settings(&[
            cs,
            TENANT,
            CLIENT,
            (CLIENT_SECRET_ARN, ARN),
            (SESSION_TOKEN, "t"),
            (EXTENSION_PORT, "x"),
        ]);
        assert!(credential(&s, &l).err().unwrap().contains(EXTENSION_PORT));
        // Without any secret the message points at the ARN route too.
        let (s, l) = settings(&[cs, TENANT, CLIENT]);
        assert!(
            credential(&s, &l)
                .err()
                .unwrap()
                .contains(CLIENT_SECRET_ARN)
        );
    }
}
