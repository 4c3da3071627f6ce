//! `ArmClient`: ARM REST through the azure_core pipeline, behind the engine's `Resources` port.
//!
//! Pipeline, in order: client request id, user agent, [`ArmRetryPolicy`](super::retry) (the stock
//! retry is off, see that module for why), bearer auth (azure_core's policy for https; a loopback-only
//! policy for the http sandbox), the request counter, logging, the reqwest transport.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::Bytes;
use azure_core::credentials::TokenCredential;
use azure_core::http::headers::Headers;
use azure_core::http::policies::Policy;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{
    ClientOptions, Context, Method, Pipeline, PipelineSendOptions, Request, RetryOptions,
    Transport, Url,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::{from_status, from_transport, invalid_body};
use super::lro::LroSettings;
use super::operations::{ACR_API_VERSION, NETWORK_API_VERSION, SUBSCRIPTIONS_API_VERSION};
use super::policies::{LoopbackBearerPolicy, RequestCounter};
use super::retry::{ATTEMPTS_HEADER, ArmRetryPolicy, RetrySettings};
use crate::engine::{ResourceError, ResourceErrorKind, ResourceResult, Resources};
use crate::model::{
    ConnectionState, PrivateEndpoint, PrivateEndpointConnection, Registry, ResourceId,
};
use crate::plan::RegistryPatch;

/// The public cloud's ARM endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://management.azure.com";
/// Token scope for the public cloud, also used for custom endpoints such as the sandbox.
pub const DEFAULT_SCOPE: &str = "https://management.azure.com/.default";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of [`ArmClient::new`].
#[derive(Clone, Debug)]
pub struct ArmClientOptions {
    /// ARM base URL (`LINKGUARD_ARM_ENDPOINT`). https, or http on a loopback host (the sandbox).
    pub endpoint: String,
    /// Token scope; `None` derives it from the endpoint (sovereign clouds get theirs, anything else
    /// `https://management.azure.com/.default`).
    pub token_scope: Option<String>,
    pub retry: RetrySettings,
    pub lro: LroSettings,
    /// Extra CA certificate(s), PEM, to trust besides the system roots (`LINKGUARD_ARM_CA_CERT`,
    /// for the sandbox's `--tls`).
    pub ca_certificate_pem: Option<Vec<u8>>,
}

impl Default for ArmClientOptions {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            token_scope: None,
            retry: RetrySettings::default(),
            lro: LroSettings::default(),
            ca_certificate_pem: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArmClientError {
    #[error("ARM endpoint `{endpoint}` is not a valid URL: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error(
        "ARM endpoint `{0}` uses plain http on a host that is not loopback; the token would travel in clear text. Use https (for the sandbox: `linkguard sim --tls` and LINKGUARD_ARM_CA_CERT)"
    )]
    InsecureEndpoint(String),
    #[error("the extra CA certificate (LINKGUARD_ARM_CA_CERT) is not usable: {0}")]
    CaCertificate(String),
    #[error("could not build the HTTP client: {0}")]
    Http(String),
}

/// An ARM answer with its body read.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Headers,
    pub body: Bytes,
    /// Attempts the retry policy made for it.
    pub attempts: Option<u32>,
}

impl Reply {
    pub(crate) fn error(&self, what: &str) -> ResourceError {
        from_status(what, self.status, &self.body, self.attempts)
    }
}

/// The ARM client. Cheap to clone; clones share the pipeline and the request counter.
#[derive(Clone)]
pub struct ArmClient {
    endpoint: Url,
    scope: String,
    pipeline: Pipeline,
    requests: Arc<AtomicU64>,
    pub(crate) lro: LroSettings,
}

impl fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArmClient")
            .field("endpoint", &self.endpoint.as_str())
            .field("scope", &self.scope)
            .field("requests", &self.request_count())
            .finish_non_exhaustive()
    }
}

/// http is allowed only for these hosts.
pub(crate) fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    // IPv6 hosts come bracketed: `[::1]`.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn parse_endpoint(raw: &str) -> Result<Url, ArmClientError> {
    let invalid = |reason: &str| ArmClientError::InvalidEndpoint {
        endpoint: raw.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(raw.trim()).map_err(|e| invalid(&e.to_string()))?;
    if url.host().is_none() {
        return Err(invalid("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not carry a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not carry credentials"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(ArmClientError::InsecureEndpoint(raw.to_string())),
        other => Err(invalid(&format!("scheme `{other}` is not http(s)"))),
    }
}

/// `{audience}/.default` for the known sovereign clouds, the public cloud's otherwise.
fn default_scope(endpoint: &Url) -> String {
    let host = endpoint.host_str().unwrap_or_default().to_ascii_lowercase();
    for sovereign in [
        "management.chinacloudapi.cn",
        "management.usgovcloudapi.net",
    ] {
        if host == sovereign {
            return format!("https://{sovereign}/.default");
        }
    }
    DEFAULT_SCOPE.to_string()
}

fn transport(ca_pem: Option<&[u8]>) -> Result<Transport, ArmClientError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        // ARM does not redirect; following one could carry the token elsewhere.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ArmClientError::CaCertificate(e.to_string()))?;
        if certs.is_empty() {
            return Err(ArmClientError::CaCertificate(
                "no PEM certificate found in it".to_string(),
            ));
        }
        builder = builder.tls_certs_merge(certs);
    }
    let client = builder
        .build()
        .map_err(|e| ArmClientError::Http(super::credential::error_chain(&e)))?;
    Ok(Transport::new(Arc::new(client)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(default)]
    next_link: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscription {
    subscription_id: String,
}

fn parse_json<T: DeserializeOwned>(what: &str, reply: &Reply, expected: &str) -> ResourceResult<T> {
    let mut de = serde_json::Deserializer::from_slice(&reply.body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let problem = if path == "." {
            inner.to_string()
        } else {
            format!("at `{path}`: {inner}")
        };
        invalid_body(what, reply.status, expected, problem)
    })
}

impl ArmClient {
    /// A client for `options.endpoint` authenticating with `credential` (see
    /// [`credential_from_config`](super::credential::credential_from_config)).
    pub fn new(
        credential: Arc<dyn TokenCredential>,
        options: ArmClientOptions,
    ) -> Result<Self, ArmClientError> {
        let endpoint = parse_endpoint(&options.endpoint)?;
        let scope = options
            .token_scope
            .clone()
            .unwrap_or_else(|| default_scope(&endpoint));
        let requests = Arc::new(AtomicU64::new(0));

        let auth: Arc<dyn Policy> = if endpoint.scheme() == "https" {
            Arc::new(BearerTokenAuthorizationPolicy::new(
                credential,
                [scope.clone()],
            ))
        } else {
            Arc::new(LoopbackBearerPolicy::new(credential, scope.clone()))
        };
        let client_options = ClientOptions {
            retry: RetryOptions::none(),
            per_call_policies: vec![Arc::new(ArmRetryPolicy::new(options.retry.clone()))],
            transport: Some(transport(options.ca_certificate_pem.as_deref())?),
            ..ClientOptions::default()
        };
        let pipeline = Pipeline::new(
            Some(env!("CARGO_PKG_NAME")),
            Some(env!("CARGO_PKG_VERSION")),
            client_options,
            Vec::new(),
            vec![auth, Arc::new(RequestCounter::new(requests.clone()))],
            None,
        );
        Ok(Self {
            endpoint,
            scope,
            pipeline,
            requests,
            lro: options.lro,
        })
    }

    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The token scope requested from the credential.
    pub fn token_scope(&self) -> &str {
        &self.scope
    }

    /// `endpoint` + `path` (ARM path segments, percent-encoded one by one) + `?api-version=`.
    fn url(&self, path: &str, api_version: &str) -> Url {
        let mut url = self.endpoint.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            segments.extend(path.split('/').filter(|s| !s.is_empty()));
        }
        url.query_pairs_mut()
            .append_pair("api-version", api_version);
        url
    }

    fn resource_url(&self, id: &ResourceId, api_version: &str) -> Url {
        self.url(id.as_str(), api_version)
    }

    /// Resolves a link ARM handed back (`nextLink`, an operation monitor). It must point at the
    /// configured endpoint: anything else would receive the bearer token.
    pub(crate) fn follow(&self, link: &str, what: &str, source: &str) -> ResourceResult<Url> {
        let url = self.endpoint.join(link.trim()).map_err(|e| {
            ResourceError::new(
                ResourceErrorKind::Invalid,
                format!("{what}: the {source} `{link}` is not a URL: {e}"),
            )
        })?;
        let same_origin = url.scheme() == self.endpoint.scheme()
            && url.host_str().map(str::to_ascii_lowercase)
                == self.endpoint.host_str().map(str::to_ascii_lowercase)
            && url.port_or_known_default() == self.endpoint.port_or_known_default();
        if !same_origin {
            return Err(ResourceError::new(
                ResourceErrorKind::Invalid,
                format!(
                    "{what}: refusing to follow the {source} to {}: it is not the configured ARM endpoint {} and \
                     the request would carry the ARM token",
                    url.origin().ascii_serialization(),
                    self.endpoint.origin().ascii_serialization()
                ),
            ));
        }
        Ok(url)
    }

    /// Sends one request through the pipeline (retries included) and reads the answer, whatever
    /// its status. Fails only when no HTTP answer came.
    pub(crate) async fn exchange(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> ResourceResult<Reply> {
        let what = format!("{method} {}", url.path());
        let mut request = Request::new(url, method);
        request.insert_header("accept", "application/json");
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).map_err(|e| {
                ResourceError::new(
                    ResourceErrorKind::Invalid,
                    format!("{what}: could not encode the body: {e}"),
                )
            })?;
            request.insert_header("content-type", "application/json");
            request.set_body(bytes);
        }
        let ctx = Context::new();
        let options = PipelineSendOptions {
            skip_checks: true,
            ..Default::default()
        };
        let response = self
            .pipeline
            .send(&ctx, &mut request, Some(options))
            .await
            .map_err(|e| from_transport(&what, &e))?;
        let (status, headers, body) = response.deconstruct();
        let attempts = headers
            .get_optional_str(&ATTEMPTS_HEADER)
            .and_then(|v| v.parse().ok());
        Ok(Reply {
            status: u16::from(status),
            headers,
            body: body.into(),
            attempts,
        })
    }

    /// GET expecting 200 and a `T`.
    async fn get_json<T: DeserializeOwned>(&self, url: Url, expected: &str) -> ResourceResult<T> {
        let what = format!("GET {}", url.path());
        let reply = self.exchange(Method::Get, url, None).await?;
        if reply.status != 200 {
            return Err(reply.error(&what));
        }
        parse_json(&what, &reply, expected)
    }

    /// GET every page of a list, following `nextLink` to the end.
    async fn list_all<T: DeserializeOwned>(
        &self,
        first: Url,
        expected: &str,
    ) -> ResourceResult<Vec<T>> {
        let list_what = format!("GET {}", first.path());
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut next = Some(first);
        while let Some(url) = next.take() {
            if !seen.insert(url.as_str().to_string()) {
                return Err(ResourceError::new(
                    ResourceErrorKind::Invalid,
                    format!(
                        "{list_what}: nextLink points back to a page already read; stopping to avoid a loop"
                    ),
                ));
            }
            let what = format!("GET {}", url.path());
            let reply = self.exchange(Method::Get, url, None).await?;
            if reply.status != 200 {
                return Err(reply.error(&what));
            }
            let page: Page<T> = parse_json(&what, &reply, expected)?;
            out.extend(page.value);
            if let Some(link) = page.next_link.filter(|l| !l.trim().is_empty()) {
                next = Some(self.follow(&link, &list_what, "nextLink")?);
            }
        }
        Ok(out)
    }

    /// PUT/PATCH/DELETE through to the end of its long-running operation.
    async fn write(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> ResourceResult<Option<Reply>> {
        let what = format!("{method} {}", url.path());
        let first = self.exchange(method, url.clone(), body).await?;
        self.complete(&what, method, &url, first).await
    }

    async fn write_json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: &serde_json::Value,
        expected: &str,
    ) -> ResourceResult<T> {
        let what = format!("{method} {}", url.path());
        match self.write(method, url, Some(body)).await? {
            Some(reply) => parse_json(&what, &reply, expected),
            None => Err(ResourceError::new(
                ResourceErrorKind::Invalid,
                format!("{what}: no resource in the answer"),
            )),
        }
    }
}

impl ArmClient {
    /// Every private endpoint connection of a registry (`GET R/privateEndpointConnections`,
    /// following `nextLink`). Audits do not need it: the registry GET carries its connections, one
    /// call instead of two; it is here for callers that want the connections alone.
    pub async fn list_connections(
        &self,
        registry: &ResourceId,
    ) -> ResourceResult<Vec<PrivateEndpointConnection>> {
        let path = format!("{}/privateEndpointConnections", registry.as_str());
        self.list_all(
            self.url(&path, ACR_API_VERSION),
            "private endpoint connection list",
        )
        .await
    }
}

#[async_trait]
impl Resources for ArmClient {
    async fn list_subscriptions(&self) -> ResourceResult<Vec<String>> {
        let url = self.url("/subscriptions", SUBSCRIPTIONS_API_VERSION);
        let subs: Vec<Subscription> = self.list_all(url, "subscription list").await?;
        Ok(subs.into_iter().map(|s| s.subscription_id).collect())
    }

    async fn list_registries(
        &self,
        subscription: &str,
        resource_group: Option<&str>,
    ) -> ResourceResult<Vec<Registry>> {
        for (name, value) in [
            ("subscription", Some(subscription)),
            ("resource group", resource_group),
        ] {
            if let Some(v) = value
                && (v.trim().is_empty() || v.contains('/'))
            {
                return Err(ResourceError::new(
                    ResourceErrorKind::Invalid,
                    format!("list registries: the {name} `{v}` is not a valid name"),
                ));
            }
        }
        let path = match resource_group {
            Some(rg) => {
                format!(
                    "/subscriptions/{subscription}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries"
                )
            }
            None => format!(
                "/subscriptions/{subscription}/providers/Microsoft.ContainerRegistry/registries"
            ),
        };
        self.list_all(self.url(&path, ACR_API_VERSION), "registry list")
            .await
    }

    async fn get_registry(&self, id: &ResourceId) -> ResourceResult<Registry> {
        self.get_json(self.resource_url(id, ACR_API_VERSION), "registry")
            .await
    }

    async fn patch_registry(
        &self,
        id: &ResourceId,
        patch: &RegistryPatch,
    ) -> ResourceResult<Registry> {
        let url = self.resource_url(id, ACR_API_VERSION);
        self.write_json(Method::Patch, url, &patch.to_arm_body(), "registry")
            .await
    }

    async fn get_connection(&self, id: &ResourceId) -> ResourceResult<PrivateEndpointConnection> {
        self.get_json(
            self.resource_url(id, ACR_API_VERSION),
            "private endpoint connection",
        )
        .await
    }

    async fn set_connection_state(
        &self,
        id: &ResourceId,
        state: &ConnectionState,
    ) -> ResourceResult<PrivateEndpointConnection> {
        let url = self.resource_url(id, ACR_API_VERSION);
        // `privateEndpoint` may be omitted (DESIGN 5); only the state changes.
        let body =
            serde_json::json!({ "properties": { "privateLinkServiceConnectionState": state } });
        self.write_json(Method::Put, url, &body, "private endpoint connection")
            .await
    }

    async fn delete_connection(&self, id: &ResourceId) -> ResourceResult<()> {
        self.write(Method::Delete, self.resource_url(id, ACR_API_VERSION), None)
            .await
            .map(|_| ())
    }

    async fn get_private_endpoint(&self, id: &ResourceId) -> ResourceResult<PrivateEndpoint> {
        self.get_json(
            self.resource_url(id, NETWORK_API_VERSION),
            "private endpoint",
        )
        .await
    }

    fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// The operations of `operations::OPERATIONS` this client issues, by name and method: the RBAC
/// role is checked against that table, so the two must agree.
pub const CLIENT_OPERATIONS: &[(&str, &str)] = &[
    ("list-subscriptions", "GET"),
    ("list-registries", "GET"),
    ("list-registries-by-group", "GET"),
    ("get-registry", "GET"),
    ("patch-registry", "PATCH"),
    ("registry-operation-status", "GET"),
    ("list-connections", "GET"),
    ("get-connection", "GET"),
    ("put-connection", "PUT"),
    ("delete-connection", "DELETE"),
    ("connection-operation-status", "GET"),
    ("get-private-endpoint", "GET"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm::credential::StaticTokenCredential;
    use crate::arm::operations::OPERATIONS;

    fn client(endpoint: &str) -> Result<ArmClient, ArmClientError> {
        let options = ArmClientOptions {
            endpoint: endpoint.to_string(),
            ..ArmClientOptions::default()
        };
        ArmClient::new(Arc::new(StaticTokenCredential::new("t")), options)
    }

    #[test]
    fn every_operation_the_client_issues_is_in_the_table() {
        for (name, method) in CLIENT_OPERATIONS {
            let op = OPERATIONS
                .iter()
                .find(|o| o.name == *name)
                .unwrap_or_else(|| panic!("{name} missing from OPERATIONS"));
            assert_eq!(op.method, *method, "{name}");
        }
    }

    #[test]
    fn http_is_only_for_loopback() {
        for ok in [
            "https://management.azure.com",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            assert!(client(ok).is_ok(), "{ok}");
        }
        let err = client("http://10.0.0.5:8080").unwrap_err();
        assert!(matches!(err, ArmClientError::InsecureEndpoint(_)), "{err}");
        assert!(err.to_string().contains("https"), "{err}");
        assert!(matches!(
            client("not a url").unwrap_err(),
            ArmClientError::InvalidEndpoint { .. }
        ));
        assert!(matches!(
            client("ftp://example.com").unwrap_err(),
            ArmClientError::InvalidEndpoint { .. }
        ));
        assert!(matches!(
            client("https://example.com/?x=1").unwrap_err(),
            ArmClientError::InvalidEndpoint { .. }
        ));
    }

    #[test]
    fn scope_follows_the_cloud() {
        assert_eq!(
            client("https://management.azure.com")
                .unwrap()
                .token_scope(),
            DEFAULT_SCOPE
        );
        assert_eq!(
            client("http://127.0.0.1:1").unwrap().token_scope(),
            DEFAULT_SCOPE
        );
        assert_eq!(
            client("https://management.chinacloudapi.cn/")
                .unwrap()
                .token_scope(),
            "https://management.chinacloudapi.cn/.default"
        );
    }

    #[test]
    fn urls_keep_a_base_path_and_encode_segments() {
        let c = client("http://127.0.0.1:8080/arm/").unwrap();
        let id = ResourceId::parse(
            "/subscriptions/s/resourceGroups/my rg/providers/Microsoft.ContainerRegistry/registries/r",
        )
        .unwrap();
        let url = c.resource_url(&id, ACR_API_VERSION);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/arm/subscriptions/s/resourceGroups/my%20rg/providers/Microsoft.ContainerRegistry/registries/r?api-version=2025-11-01"
        );
    }

    #[test]
    fn links_must_stay_on_the_endpoint() {
        let c = client("https://management.azure.com").unwrap();
        assert!(
            c.follow(
                "https://management.azure.com/subscriptions?page=2",
                "x",
                "nextLink"
            )
            .is_ok()
        );
        assert!(
            c.follow("https://MANAGEMENT.azure.com:443/x", "x", "nextLink")
                .is_ok()
        );
        assert!(c.follow("/relative?x=1", "x", "nextLink").is_ok());
        for bad in [
            "https://evil.example/x",
            "http://management.azure.com/x",
            "https://management.azure.com:8443/x",
        ] {
            let e = c.follow(bad, "x", "nextLink").unwrap_err();
            assert_eq!(e.kind, ResourceErrorKind::Invalid, "{bad}");
            assert!(e.message.contains("refusing"), "{}", e.message);
        }
    }

    #[test]
    fn a_bad_ca_certificate_is_reported() {
        let options = ArmClientOptions {
            endpoint: "https://127.0.0.1:1".into(),
            ca_certificate_pem: Some(b"not a certificate".to_vec()),
            ..ArmClientOptions::default()
        };
        let err = ArmClient::new(Arc::new(StaticTokenCredential::new("t")), options).unwrap_err();
        assert!(matches!(err, ArmClientError::CaCertificate(_)), "{err}");
    }
}
