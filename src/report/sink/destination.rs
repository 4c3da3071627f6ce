//! `LINKGUARD_REPORTS` (DESIGN 3.0): a directory, a blob container URL, or a storage connection
//! string, turned into the right sink.
//!
//! - `https://acct.blob.core.windows.net/container`: Entra ID token (managed / workload identity)
//!   from the `TokenCredential` the host passes in; https only, as tokens never travel in clear.
//! - the same URL with a SAS query (`?sv=...&sig=...`): the SAS, no credential.
//! - a connection string: `UseDevelopmentStorage=true` (Azurite), or `AccountName`+`AccountKey`
//!   (Shared Key signing) or `SharedAccessSignature`, with `BlobEndpoint` or the protocol and suffix.
//! - anything else: a directory.
//!
//! The container is the one in the URL, else `linkguard-reports`. Loopback endpoints (Azurite) get
//! x-ms-version pinned to one Azurite 3.35 accepts.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::Url;

use super::connection_string::{self, Credential};
use super::redact::redact_sig;
use super::{BlobSink, BlobSinkOptions, DirSink, ReportSink};

pub const REPORTS_SETTING: &str = "LINKGUARD_REPORTS";
pub const DEFAULT_CONTAINER: &str = "linkguard-reports";

/// A `LINKGUARD_REPORTS` value that cannot be used. The message names the setting and the fix and
/// never contains a key or SAS signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct DestinationError {
    pub setting: &'static str,
    pub problem: String,
}

impl DestinationError {
    pub(crate) fn new(problem: impl Into<String>) -> Self {
        Self {
            setting: REPORTS_SETTING,
            problem: problem.into(),
        }
    }
}

/// How the blob sink authenticates.
#[derive(Clone)]
pub enum BlobAuth {
    /// Entra ID bearer token from the credential given to [`ReportDestination::into_sink`].
    Token,
    /// A SAS token (query string without `?`).
    Sas(Secret),
    /// Shared Key signing with the account key (base64).
    SharedKey { account: String, key: Secret },
}

impl fmt::Debug for BlobAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobAuth::Token => f.write_str("Token"),
            BlobAuth::Sas(_) => f.write_str("Sas(REDACTED)"),
            BlobAuth::SharedKey { account, .. } => {
                write!(f, "SharedKey {{ account: {account:?}, key: REDACTED }}")
            }
        }
    }
}

/// A blob container and how to reach it.
#[derive(Clone, Debug)]
pub struct BlobTarget {
    /// Container URL, without query.
    pub container_url: Url,
    pub auth: BlobAuth,
    /// The endpoint is on loopback (Azurite): pin an x-ms-version it accepts.
    pub emulator: bool,
}

#[derive(Clone, Debug)]
pub enum ReportDestination {
    Directory(PathBuf),
    Blob(BlobTarget),
}

impl fmt::Display for ReportDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportDestination::Directory(p) => write!(f, "directory {}", p.display()),
            ReportDestination::Blob(t) => {
                let how = match &t.auth {
                    BlobAuth::Token => "Entra ID token",
                    BlobAuth::Sas(_) => "SAS",
                    BlobAuth::SharedKey { .. } => "account key",
                };
                write!(f, "blob container {} ({how})", t.container_url)
            }
        }
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Path-style URLs (`http://127.0.0.1:10000/<account>/<container>`) name the account in the path;
/// that is how Azurite and IP endpoints are addressed.
pub(crate) fn is_path_style(url: &Url) -> bool {
    matches!(
        url.host(),
        Some(url::Host::Ipv4(_)) | Some(url::Host::Ipv6(_))
    ) || is_loopback(url)
}

/// Container naming rules of Blob Storage, with a message on what is wrong.
pub fn check_container_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !(3..=63).contains(&name.len())
        || !ok_chars
        || name.starts_with('-')
        || name.ends_with('-')
        || name.contains("--")
    {
        return Err(format!(
            "container name `{name}` is invalid: 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// Splits an endpoint URL into (account endpoint URL, container). The path may hold the container
/// (after the account segment, for path-style URLs); nothing deeper.
fn split_container(url: &Url, from: &str) -> Result<(Url, String), DestinationError> {
    let segments: Vec<String> = url
        .path_segments()
        .map(|s| s.filter(|x| !x.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let (account_segments, rest) = if is_path_style(url) {
        if segments.is_empty() {
            return Err(DestinationError::new(format!(
                "{from} `{}` has no account name in its path: emulator and IP endpoints look like http://127.0.0.1:10000/devstoreaccount1[/container]",
                redact_sig(url.as_str())
            )));
        }
        segments.split_at(1)
    } else {
        segments.split_at(0)
    };
    let container = match rest {
        [] => DEFAULT_CONTAINER.to_string(),
        [c] => c.clone(),
        _ => {
            return Err(DestinationError::new(format!(
                "{from} `{}` goes below a container: give the container URL, e.g. https://ACCOUNT.blob.core.windows.net/{DEFAULT_CONTAINER}",
                redact_sig(url.as_str())
            )));
        }
    };
    check_container_name(&container).map_err(DestinationError::new)?;
    let mut account_url = url.clone();
    account_url.set_query(None);
    account_url.set_fragment(None);
    account_url.set_path(&format!("/{}", account_segments.join("/")));
    Ok((account_url, container))
}

fn container_url(account_url: &Url, container: &str) -> Result<Url, DestinationError> {
    let mut u = account_url.clone();
    u.path_segments_mut()
        .map_err(|_| DestinationError::new(format!("`{account_url}` cannot hold a path")))?
        .pop_if_empty()
        .push(container);
    Ok(u)
}

fn parse_url(s: &str) -> Result<ReportDestination, DestinationError> {
    let url = Url::parse(s).map_err(|e| {
        DestinationError::new(format!("`{}` is not a valid URL: {e}", redact_sig(s)))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DestinationError::new(
            "the URL must not carry a user name or password",
        ));
    }
    if url.fragment().is_some() {
        return Err(DestinationError::new("the URL must not have a #fragment"));
    }
    let query = url.query().unwrap_or_default().to_string();
    let auth = if query.is_empty() {
        if url.scheme() != "https" {
            return Err(DestinationError::new(format!(
                "`{url}` is plain http without a SAS: Entra ID tokens are only sent over https. Use https, add a SAS (?sv=...&sig=...), or give a connection string (UseDevelopmentStorage=true for Azurite)"
            )));
        }
        BlobAuth::Token
    } else {
        if !query
            .to_ascii_lowercase()
            .split('&')
            .any(|p| p.starts_with("sig="))
        {
            return Err(DestinationError::new(format!(
                "`{}` has a query that is not a SAS (no sig=): give the container URL alone, or with a complete SAS",
                redact_sig(url.as_str())
            )));
        }
        BlobAuth::Sas(Secret::new(query))
    };
    let (account_url, container) = split_container(&url, "the URL")?;
    Ok(ReportDestination::Blob(BlobTarget {
        container_url: container_url(&account_url, &container)?,
        emulator: is_loopback(&url),
        auth,
    }))
}

fn parse_connection_string(s: &str) -> Result<ReportDestination, DestinationError> {
    let cs = connection_string::parse(s).map_err(DestinationError::new)?;
    let endpoint = Url::parse(&cs.blob_endpoint).map_err(|e| {
        DestinationError::new(format!(
            "BlobEndpoint `{}` is not a valid URL: {e}",
            cs.blob_endpoint
        ))
    })?;
    if !matches!(endpoint.scheme(), "http" | "https") {
        return Err(DestinationError::new(format!(
            "BlobEndpoint `{endpoint}` must be http or https"
        )));
    }
    if endpoint.query().is_some() {
        return Err(DestinationError::new(
            "BlobEndpoint must not carry a query: put a SAS in SharedAccessSignature",
        ));
    }
    let (account_url, container) = split_container(&endpoint, "BlobEndpoint")?;
    let auth = match cs.credential {
        Credential::Key { account, key } => BlobAuth::SharedKey { account, key },
        Credential::Sas(sas) => BlobAuth::Sas(sas),
    };
    Ok(ReportDestination::Blob(BlobTarget {
        container_url: container_url(&account_url, &container)?,
        emulator: is_loopback(&endpoint),
        auth,
    }))
}

impl ReportDestination {
    /// Parses a `LINKGUARD_REPORTS` value.
    pub fn parse(value: &str) -> Result<Self, DestinationError> {
        let s = value.trim();
        if s.is_empty() {
            return Err(DestinationError::new(
                "is empty: give a directory, a blob container URL or a storage connection string",
            ));
        }
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            return parse_url(s);
        }
        if connection_string::looks_like(s) {
            return parse_connection_string(s);
        }
        if let Some((scheme, _)) = s.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(DestinationError::new(format!(
                "URL scheme `{scheme}` is not supported: use https:// (blob container), a connection string, or a directory path"
            )));
        }
        Ok(ReportDestination::Directory(PathBuf::from(s)))
    }

    /// Builds the sink. `credential` is used (and required) for a container URL without SAS.
    pub fn into_sink(
        self,
        credential: Option<Arc<dyn TokenCredential>>,
        options: BlobSinkOptions,
    ) -> Result<Arc<dyn ReportSink>, DestinationError> {
        match self {
            ReportDestination::Directory(dir) => Ok(Arc::new(DirSink::new(dir))),
            ReportDestination::Blob(target) => {
                Ok(Arc::new(BlobSink::new(target, credential, options)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sink::connection_string::DEV_KEY;

    fn blob(s: &str) -> BlobTarget {
        match ReportDestination::parse(s).unwrap() {
            ReportDestination::Blob(t) => t,
            other => panic!("expected a blob target for {s}, got {other:?}"),
        }
    }

    fn err(s: &str) -> String {
        let e = ReportDestination::parse(s).unwrap_err();
        assert_eq!(e.setting, "LINKGUARD_REPORTS");
        e.to_string()
    }

    #[test]
    fn directories() {
        for s in [
            "./linkguard-reports",
            "/var/reports",
            "reports",
            "C:\\reports",
        ] {
            assert!(
                matches!(
                    ReportDestination::parse(s).unwrap(),
                    ReportDestination::Directory(_)
                ),
                "{s}"
            );
        }
    }

    #[test]
    fn azure_container_url_uses_a_token() {
        let t = blob("https://acme.blob.core.windows.net/reports-prod");
        assert_eq!(
            t.container_url.as_str(),
            "https://acme.blob.core.windows.net/reports-prod"
        );
        assert!(matches!(t.auth, BlobAuth::Token));
        assert!(!t.emulator);
        let t = blob("https://acme.blob.core.windows.net/");
        assert_eq!(
            t.container_url.as_str(),
            "https://acme.blob.core.windows.net/linkguard-reports"
        );
    }

    #[test]
    fn sas_url_keeps_the_sas_out_of_the_container_url_and_display() {
        let t = blob(
            "http://127.0.0.1:10000/devstoreaccount1/reports?sv=2025-11-05&sp=rcw&sig=c2VjcmV0c2ln%3D",
        );
        assert_eq!(
            t.container_url.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/reports"
        );
        assert!(matches!(&t.auth, BlobAuth::Sas(s) if s.secret().contains("sig=")));
        assert!(t.emulator);
        let shown = format!("{} {:?}", ReportDestination::Blob(t.clone()), t);
        assert!(!shown.contains("c2VjcmV0c2ln"), "{shown}");
    }

    #[test]
    fn path_style_url_without_container_gets_the_default() {
        let t = blob("http://127.0.0.1:10000/devstoreaccount1?sv=1&sig=x");
        assert_eq!(
            t.container_url.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/linkguard-reports"
        );
    }

    #[test]
    fn connection_strings() {
        let t = blob("UseDevelopmentStorage=true");
        assert_eq!(
            t.container_url.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/linkguard-reports"
        );
        assert!(
            matches!(&t.auth, BlobAuth::SharedKey { account, .. } if account == "devstoreaccount1")
        );
        assert!(t.emulator);

        let t = blob(&format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};BlobEndpoint=http://127.0.0.1:45678/devstoreaccount1;"
        ));
        assert_eq!(
            t.container_url.as_str(),
            "http://127.0.0.1:45678/devstoreaccount1/linkguard-reports"
        );

        let t = blob("AccountName=acme;AccountKey=a2V5a2V5");
        assert_eq!(
            t.container_url.as_str(),
            "https://acme.blob.core.windows.net/linkguard-reports"
        );
        assert!(!t.emulator);
    }

    #[test]
    fn clear_errors_that_name_the_setting_and_hide_secrets() {
        assert!(err("").contains("is empty"));
        assert!(err("http://acme.example/reports").contains("plain http without a SAS"));
        assert!(err("https://acme.blob.core.windows.net/reports?foo=bar").contains("not a SAS"));
        assert!(
            err("https://acme.blob.core.windows.net/Bad_Name")
                .contains("container name `Bad_Name` is invalid")
        );
        assert!(err("https://acme.blob.core.windows.net/c1/runs/x").contains("below a container"));
        assert!(err("s3://bucket/x").contains("scheme `s3` is not supported"));
        let e = err("https://acme.blob.core.windows.net/a/b/c?sv=1&sig=TOPSECRET");
        assert!(!e.contains("TOPSECRET"), "{e}");
        let e = err(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1",
        );
        assert!(
            e.starts_with("LINKGUARD_REPORTS: ") && e.contains("neither AccountKey"),
            "{e}"
        );
        let e = err("AccountName=acme;AccountKey=%%%TOPSECRET%%%");
        assert!(!e.contains("TOPSECRET"), "{e}");
    }
}
