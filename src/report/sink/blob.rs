//! The Azure Blob Storage sink (official `azure_storage_blob` 1.x client).
//!
//! Run objects are created with `If-None-Match: *`, so nothing stored is ever overwritten; a conflict
//! is resolved by reading the blob back (same bytes: the run was already stored). The container is
//! created on first need (a write answered `ContainerNotFound`), which also covers a storage account
//! that lost it between runs. `latest.json` is replaced with `If-Match` on the ETag just read, and
//! only by a run at least as new as the one it holds. Transient failures are retried by the
//! pipeline's retry policy; what still fails is returned as [`SinkError::Storage`] with keys and SAS
//! signatures removed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{
    Etag, ExponentialRetryOptions, RequestContent, RetryOptions, Transport, Url,
};
use azure_storage_blob::models::BlockBlobClientUploadOptions;
use azure_storage_blob::{
    BlobClient, BlobContainerClient, BlobContainerClientOptions, StorageError,
};

use super::destination::{BlobAuth, BlobTarget, DestinationError};
use super::layout::{self, ObjectKind, RenderedObject};
use super::redact::Redactor;
use super::shared_key::SharedKeyPolicy;
use super::{ReportSink, SinkError, StoredObject, StoredReport, WriteOutcome};
use crate::report::model::Report;

/// The newest x-ms-version Azurite 3.35 accepts (the SDK's default is newer); sent to loopback
/// endpoints so an Azurite started without `--skipApiVersionCheck` works too.
pub const EMULATOR_API_VERSION: &str = "2025-11-05";

/// How often `latest.json` is re-read and retried when another writer changes it in between
/// (each loss means another run did get through, so this only bounds contention).
const LATEST_ATTEMPTS: u32 = 10;

#[derive(Clone, Debug)]
pub struct BlobSinkOptions {
    /// Retries of transient failures (connection errors, 408, 429, 5xx) per request.
    pub retry: RetryOptions,
    /// HTTP transport; `None` is the SDK's reqwest client (20 s connect, 60 s read timeouts).
    pub transport: Option<Transport>,
    /// x-ms-version to send; `None` is the SDK default, or [`EMULATOR_API_VERSION`] on loopback.
    pub api_version: Option<String>,
}

impl Default for BlobSinkOptions {
    fn default() -> Self {
        Self {
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: azure_core::time::Duration::milliseconds(500),
                max_retries: 6,
                max_total_elapsed: azure_core::time::Duration::seconds(45),
                max_delay: azure_core::time::Duration::seconds(10),
            }),
            transport: None,
            api_version: None,
        }
    }
}

impl BlobSinkOptions {
    /// Exponential retries: at most `max_retries` retries per request, starting after
    /// `initial_delay`, and none started after `max_total` has elapsed.
    pub fn with_retries(
        mut self,
        max_retries: u32,
        initial_delay: Duration,
        max_total: Duration,
    ) -> Self {
        let to = |d: Duration| {
            azure_core::time::Duration::try_from(d).unwrap_or(azure_core::time::Duration::MAX)
        };
        self.retry = RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: to(initial_delay),
            max_retries,
            max_total_elapsed: to(max_total),
            max_delay: to(initial_delay.saturating_mul(8)),
        });
        self
    }
}

pub struct BlobSink {
    container: BlobContainerClient,
    /// Container URL without query (no SAS): what messages show.
    url: Url,
    redactor: Redactor,
}

impl fmt::Debug for BlobSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobSink")
            .field("container", &self.url.as_str())
            .finish()
    }
}

/// The `sig` parameter of a SAS query, decoded.
fn sas_signature(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case("sig"))
        .map(|(_, v)| v.into_owned())
}

impl BlobSink {
    pub fn new(
        target: BlobTarget,
        credential: Option<Arc<dyn TokenCredential>>,
        options: BlobSinkOptions,
    ) -> Result<Self, DestinationError> {
        let mut client_options = BlobContainerClientOptions::default();
        client_options.client_options.retry = options.retry;
        if let Some(transport) = options.transport {
            client_options.client_options.transport = Some(transport);
        }
        if let Some(version) = options.api_version {
            client_options.version = version;
        } else if target.emulator {
            client_options.version = EMULATOR_API_VERSION.to_string();
        }

        let url = target.container_url.clone();
        let (client_url, credential, secrets) = match &target.auth {
            BlobAuth::Token => {
                let Some(credential) = credential else {
                    return Err(DestinationError::new(format!(
                        "{url} has no SAS, so it needs an Entra ID token credential (managed or workload identity), and none was configured"
                    )));
                };
                if url.scheme() != "https" {
                    return Err(DestinationError::new(format!(
                        "{url}: Entra ID tokens are only sent over https"
                    )));
                }
                (url.clone(), Some(credential), Vec::new())
            }
            BlobAuth::Sas(sas) => {
                let mut with_sas = url.clone();
                with_sas.set_query(Some(sas.secret()));
                let mut secrets = vec![sas.secret().to_string()];
                secrets.extend(sas_signature(sas.secret()));
                (with_sas, None, secrets)
            }
            BlobAuth::SharedKey { account, key } => {
                client_options
                    .client_options
                    .per_try_policies
                    .push(Arc::new(SharedKeyPolicy::new(account.clone(), key.clone())));
                (url.clone(), None, vec![key.secret().to_string()])
            }
        };
        let redactor = Redactor::new(secrets);
        let container = BlobContainerClient::new(client_url, credential, Some(client_options))
            .map_err(|e| {
                DestinationError::new(format!(
                    "cannot build the blob client: {}",
                    redactor.redact(&e.to_string())
                ))
            })?;
        Ok(Self {
            container,
            url,
            redactor,
        })
    }

    /// The container URL (no SAS).
    pub fn container_url(&self) -> &Url {
        &self.url
    }

    fn blob_location(&self, name: &str) -> String {
        let mut u = self.url.clone();
        if let Ok(mut segments) = u.path_segments_mut() {
            segments.pop_if_empty().extend(name.split('/'));
        }
        u.to_string()
    }

    fn blob(&self, name: &str) -> BlobClient {
        self.container.blob_client(name)
    }

    /// Turns an SDK error into a [`SinkError::Storage`] with a readable, redacted message.
    fn storage_error(&self, location: &str, error: azure_core::Error) -> SinkError {
        let describe = describe(error);
        let signature_rejected = describe.code.as_deref() == Some("AuthenticationFailed")
            || describe.message.contains("failed to authenticate");
        let hint = match describe.status {
            Some(401 | 403) if signature_rejected => {
                " (the signature was rejected: check the account key or SAS, and the clock)"
            }
            Some(403) => {
                " (the identity needs the `Storage Blob Data Contributor` role on the container, or the SAS needs read, create and write permissions)"
            }
            None => " (is the storage endpoint reachable?)",
            _ => "",
        };
        SinkError::Storage {
            location: location.to_string(),
            status: describe.status,
            code: describe.code,
            message: self.redactor.redact(&format!("{}{hint}", describe.message)),
        }
    }

    async fn create_container(&self) -> Result<(), SinkError> {
        match self.container.create(None).await {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e).as_deref() == Some("ContainerAlreadyExists") => Ok(()),
            Err(e) => Err(self.storage_error(self.url.as_str(), e)),
        }
    }

    async fn upload(
        &self,
        blob: &BlobClient,
        object: &RenderedObject,
        condition: Condition,
    ) -> azure_core::Result<()> {
        let mut options = BlockBlobClientUploadOptions {
            blob_content_type: Some(object.content_type.to_string()),
            ..Default::default()
        };
        match condition {
            Condition::Absent => options.if_none_match = Some(Etag::from("*")),
            Condition::Matches(etag) => options.if_match = Some(etag),
        }
        blob.upload(RequestContent::from(object.bytes.clone()), Some(options))
            .await
            .map(|_| ())
    }

    /// Uploads with `condition`, creating the container once if it is missing.
    async fn upload_creating_container(
        &self,
        blob: &BlobClient,
        object: &RenderedObject,
        condition: Condition,
    ) -> Result<(), UploadFailure> {
        match self.upload(blob, object, condition.clone()).await {
            Err(e) if error_code(&e).as_deref() == Some("ContainerNotFound") => {
                tracing::info!(container = %self.url, "creating the report container");
                // A failure here is reported as such (e.g. a container-scoped SAS may not create).
                self.create_container()
                    .await
                    .map_err(UploadFailure::Container)?;
                self.upload(blob, object, condition)
                    .await
                    .map_err(UploadFailure::Sdk)
            }
            other => other.map_err(UploadFailure::Sdk),
        }
    }

    /// Reads one blob of this container; `None` when it does not exist. Lets other blobs (the
    /// policy, DESIGN 3.0) be read with the same client, authentication and retries as reports.
    pub async fn read_blob(&self, name: &str) -> Result<Option<Vec<u8>>, SinkError> {
        let location = self.blob_location(name);
        let blob = self.blob(name);
        Ok(self
            .download(&blob, &location)
            .await?
            .map(|(bytes, _)| bytes))
    }

    /// Reads a blob; `None` when it does not exist.
    async fn download(
        &self,
        blob: &BlobClient,
        location: &str,
    ) -> Result<Option<(Vec<u8>, Option<Etag>)>, SinkError> {
        match blob.download(None).await {
            Ok(response) => {
                let etag = response.properties.etag.clone();
                let body = response
                    .body
                    .collect()
                    .await
                    .map_err(|e| self.storage_error(location, e))?;
                Ok(Some((body.to_vec(), etag)))
            }
            Err(e) if e.http_status().map(u16::from) == Some(404) => Ok(None),
            Err(e) => Err(self.storage_error(location, e)),
        }
    }

    /// Creates one run object; never overwrites.
    async fn put_new(&self, object: &RenderedObject) -> Result<WriteOutcome, SinkError> {
        let location = self.blob_location(&object.name);
        let blob = self.blob(&object.name);
        match self
            .upload_creating_container(&blob, object, Condition::Absent)
            .await
        {
            Ok(()) => Ok(WriteOutcome::Created),
            Err(UploadFailure::Sdk(e)) if is_exists_conflict(&e) => {
                match self.download(&blob, &location).await? {
                    Some((bytes, _)) if bytes == object.bytes => Ok(WriteOutcome::AlreadyStored),
                    _ => Err(SinkError::AlreadyExists { location }),
                }
            }
            Err(UploadFailure::Sdk(e)) => Err(self.storage_error(&location, e)),
            Err(UploadFailure::Container(e)) => Err(e),
        }
    }

    /// Replaces `latest.json` unless it holds a newer run.
    async fn put_latest(
        &self,
        object: &RenderedObject,
        finished: time::OffsetDateTime,
    ) -> Result<WriteOutcome, SinkError> {
        let location = self.blob_location(&object.name);
        let blob = self.blob(&object.name);
        for attempt in 0..LATEST_ATTEMPTS {
            if attempt > 0 {
                // Spread competing writers out a little.
                let jitter = rand::random_range(10..50u64) * u64::from(attempt);
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            let existing = self.download(&blob, &location).await?;
            let condition = match &existing {
                Some((bytes, etag)) => {
                    if let Some(run_id) = layout::newer_latest(bytes, finished) {
                        return Ok(WriteOutcome::KeptNewer { run_id });
                    }
                    match etag {
                        Some(etag) => Condition::Matches(etag.clone()),
                        None => {
                            return Err(SinkError::Storage {
                                location,
                                status: None,
                                code: None,
                                message: "the storage service returned no ETag for latest.json"
                                    .into(),
                            });
                        }
                    }
                }
                None => Condition::Absent,
            };
            match self
                .upload_creating_container(&blob, object, condition)
                .await
            {
                Ok(()) => {
                    return Ok(if existing.is_some() {
                        WriteOutcome::Replaced
                    } else {
                        WriteOutcome::Created
                    });
                }
                // Another run wrote latest.json in between: read it again and decide again.
                Err(UploadFailure::Sdk(e)) if is_exists_conflict(&e) => continue,
                Err(UploadFailure::Sdk(e)) => return Err(self.storage_error(&location, e)),
                Err(UploadFailure::Container(e)) => return Err(e),
            }
        }
        Err(SinkError::Storage {
            location,
            status: None,
            code: None,
            message: format!(
                "latest.json changed under concurrent writers {LATEST_ATTEMPTS} times in a row; giving up"
            ),
        })
    }
}

enum UploadFailure {
    Sdk(azure_core::Error),
    /// The container was missing and could not be created.
    Container(SinkError),
}

#[derive(Clone, Debug)]
enum Condition {
    /// `If-None-Match: *`: create only.
    Absent,
    /// `If-Match: <etag>`: replace only the version just read.
    Matches(Etag),
}

#[async_trait]
impl ReportSink for BlobSink {
    async fn store(&self, report: &Report) -> Result<StoredReport, SinkError> {
        let objects = layout::render_objects(report)?;
        let finished = layout::finished(report)?;
        let mut stored = Vec::with_capacity(objects.len());
        for object in &objects {
            let outcome = match object.kind {
                ObjectKind::Latest => self.put_latest(object, finished).await?,
                _ => self.put_new(object).await?,
            };
            stored.push(StoredObject {
                kind: object.kind,
                name: object.name.clone(),
                location: self.blob_location(&object.name),
                content_type: object.content_type,
                bytes: object.bytes.len(),
                outcome,
            });
        }
        Ok(StoredReport {
            run_id: report.run.id.clone(),
            objects: stored,
        })
    }

    fn location(&self) -> String {
        self.url.to_string()
    }
}

fn error_code(e: &azure_core::Error) -> Option<String> {
    match e.kind() {
        ErrorKind::HttpResponse { error_code, .. } => error_code.clone(),
        _ => None,
    }
}

/// `If-None-Match: *` on an existing blob (409 BlobAlreadyExists), or a failed `If-Match` (412).
fn is_exists_conflict(e: &azure_core::Error) -> bool {
    match e.http_status().map(u16::from) {
        Some(412) => true,
        Some(409) => error_code(e).as_deref() == Some("BlobAlreadyExists"),
        _ => false,
    }
}

struct Described {
    status: Option<u16>,
    code: Option<String>,
    message: String,
}

/// Status, storage error code and a one-line message: the service's `<Message>` for HTTP errors,
/// the chain of causes for transport errors.
fn describe(error: azure_core::Error) -> Described {
    if let ErrorKind::HttpResponse { status, .. } = error.kind() {
        let status = u16::from(*status);
        let fallback_code = error_code(&error);
        return match StorageError::try_from(error) {
            Ok(se) => {
                let code = se
                    .error_code
                    .as_ref()
                    .map(|c| c.as_ref().to_string())
                    .or(fallback_code);
                let message = se
                    .message
                    .as_deref()
                    .and_then(|m| m.lines().next())
                    .unwrap_or("no message")
                    .to_string();
                Described {
                    status: Some(status),
                    message: match &code {
                        Some(c) => format!("{c}: {message}"),
                        None => message,
                    },
                    code,
                }
            }
            Err(e) => Described {
                status: Some(status),
                code: fallback_code,
                message: e.to_string(),
            },
        };
    }
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    Described {
        status: None,
        code: None,
        message: parts.join(": "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sas_signature_is_found_and_decoded() {
        assert_eq!(
            sas_signature("sv=1&sig=a%2Bb%3D&se=x").as_deref(),
            Some("a+b=")
        );
        assert_eq!(sas_signature("sv=1"), None);
    }

    #[test]
    fn token_auth_needs_a_credential() {
        let target = BlobTarget {
            container_url: Url::parse("https://acme.blob.core.windows.net/linkguard-reports")
                .unwrap(),
            auth: BlobAuth::Token,
            emulator: false,
        };
        let e = BlobSink::new(target, None, BlobSinkOptions::default()).unwrap_err();
        assert!(
            e.to_string().starts_with("LINKGUARD_REPORTS: ")
                && e.to_string().contains("token credential"),
            "{e}"
        );
    }
}
