//! The reports store as plain objects, for the fan-out's manifests, subscription reports and
//! markers: create-only writes (the "conditional create" that makes every write idempotent), reads,
//! listing by prefix, deletes. Same place and credentials as the report sink (`LINKGUARD_REPORTS`):
//! a local directory or a blob container.

use std::fmt;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{Etag, RequestContent, Url};
use azure_storage_blob::models::{
    BlobContainerClientListBlobsOptions, BlockBlobClientUploadOptions,
};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use futures::TryStreamExt;

use crate::report::sink::blob::EMULATOR_API_VERSION;
use crate::report::sink::redact::Redactor;
use crate::report::sink::shared_key::SharedKeyPolicy;
use crate::report::sink::{BlobAuth, BlobSinkOptions, BlobTarget, ReportDestination};

/// A store operation that failed. Never carries a key or SAS signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{operation} {location} failed{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct StoreError {
    pub operation: &'static str,
    pub location: String,
    pub status: Option<u16>,
    pub message: String,
}

/// The outcome of a create-only write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    Created,
    /// The object was there already (another delivery or worker wrote it): nothing written.
    Existed,
}

#[derive(Clone)]
pub enum RunStore {
    Dir(PathBuf),
    Blob(Arc<BlobStore>),
}

impl fmt::Debug for RunStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location())
    }
}

impl RunStore {
    /// The store behind a `LINKGUARD_REPORTS` destination. `credential` is needed for a container
    /// URL without SAS.
    pub fn new(
        destination: &ReportDestination,
        credential: Option<Arc<dyn TokenCredential>>,
        options: BlobSinkOptions,
    ) -> Result<Self, String> {
        match destination {
            ReportDestination::Directory(p) => Ok(RunStore::Dir(p.clone())),
            ReportDestination::Blob(t) => Ok(RunStore::Blob(Arc::new(BlobStore::new(
                t, credential, options,
            )?))),
        }
    }

    /// Where the store is, safe to log.
    pub fn location(&self) -> String {
        match self {
            RunStore::Dir(p) => format!("directory {}", p.display()),
            RunStore::Blob(b) => format!("blob container {}", b.url),
        }
    }

    /// Where one object is (path or URL without credentials).
    pub fn object_location(&self, name: &str) -> String {
        match self {
            RunStore::Dir(root) => dir_path(root, name).display().to_string(),
            RunStore::Blob(b) => b.location(name),
        }
    }

    /// Writes `bytes` as `name` unless it exists.
    pub async fn create(&self, name: &str, bytes: Vec<u8>) -> Result<Created, StoreError> {
        match self {
            RunStore::Dir(root) => {
                let path = dir_path(root, name);
                blocking(move || dir_create(&path, &bytes)).await
            }
            RunStore::Blob(b) => b.create(name, bytes).await,
        }
    }

    /// Reads `name`; `None` when absent.
    pub async fn read(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            RunStore::Dir(root) => {
                let path = dir_path(root, name);
                blocking(move || match std::fs::read(&path) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_error("reading", &path, e)),
                })
                .await
            }
            RunStore::Blob(b) => b.read(name).await,
        }
    }

    pub async fn exists(&self, name: &str) -> Result<bool, StoreError> {
        match self {
            RunStore::Dir(root) => Ok(dir_path(root, name).is_file()),
            RunStore::Blob(b) => b.exists(name).await,
        }
    }

    /// Names (relative to the store root) of the objects directly under `prefix` (which ends
    /// with `/`), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut names = match self {
            RunStore::Dir(root) => {
                let dir = dir_path(root, prefix.trim_end_matches('/'));
                let prefix = prefix.to_string();
                blocking(move || dir_list(&dir, &prefix)).await?
            }
            RunStore::Blob(b) => b.list(prefix).await?,
        };
        names.sort();
        Ok(names)
    }

    /// Removes `name`; absent already is success.
    pub async fn delete(&self, name: &str) -> Result<(), StoreError> {
        match self {
            RunStore::Dir(root) => {
                let path = dir_path(root, name);
                blocking(move || match std::fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(io_error("deleting", &path, e)),
                })
                .await
            }
            RunStore::Blob(b) => b.delete(name).await,
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError {
            operation: "the file task for",
            location: "the reports directory".into(),
            status: None,
            message: e.to_string(),
        })?
}

// ---- directory ------------------------------------------------------------------------------

fn dir_path(root: &Path, name: &str) -> PathBuf {
    name.split('/')
        .filter(|s| !s.is_empty())
        .fold(root.to_path_buf(), |p, segment| p.join(segment))
}

fn io_error(operation: &'static str, path: &Path, e: io::Error) -> StoreError {
    StoreError {
        operation,
        location: path.display().to_string(),
        status: None,
        message: e.to_string(),
    }
}

/// Writes a hidden temporary file beside `path`, then links it to `path`: atomic, and fails when
/// `path` exists, so readers never see a partial file and nothing is overwritten.
fn dir_create(path: &Path, bytes: &[u8]) -> Result<Created, StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_error("creating", dir, e))?;
    if path.exists() {
        return Ok(Created::Existed);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::hard_link(&temp, path)
    })();
    let _ = std::fs::remove_file(&temp);
    match result {
        Ok(()) => Ok(Created::Created),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Created::Existed),
        Err(e) => Err(io_error("writing", path, e)),
    }
}

fn dir_list(dir: &Path, prefix: &str) -> Result<Vec<String>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("listing", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error("listing", dir, e))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        // Temporary files of writes in progress start with a dot.
        if file_name.starts_with('.') || !entry.path().is_file() {
            continue;
        }
        names.push(format!("{prefix}{file_name}"));
    }
    Ok(names)
}

// ---- blob container -------------------------------------------------------------------------

pub struct BlobStore {
    container: BlobContainerClient,
    url: Url,
    redactor: Redactor,
}

impl BlobStore {
    fn new(
        target: &BlobTarget,
        credential: Option<Arc<dyn TokenCredential>>,
        options: BlobSinkOptions,
    ) -> Result<Self, String> {
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
                    return Err(format!(
                        "{url} has no SAS, so it needs an Entra ID token credential, and none was configured"
                    ));
                };
                (url.clone(), Some(credential), Vec::new())
            }
            BlobAuth::Sas(sas) => {
                let mut with_sas = url.clone();
                with_sas.set_query(Some(sas.secret()));
                (with_sas, None, vec![sas.secret().to_string()])
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
                format!(
                    "cannot build the blob client: {}",
                    redactor.redact(&e.to_string())
                )
            })?;
        Ok(Self {
            container,
            url,
            redactor,
        })
    }

    fn location(&self, name: &str) -> String {
        let mut u = self.url.clone();
        if let Ok(mut segments) = u.path_segments_mut() {
            segments.pop_if_empty().extend(name.split('/'));
        }
        u.to_string()
    }

    fn error(
        &self,
        operation: &'static str,
        location: String,
        e: &azure_core::Error,
    ) -> StoreError {
        let status = e.http_status().map(u16::from);
        let message = match (status, e.kind()) {
            (Some(_), ErrorKind::HttpResponse { error_code, .. }) => {
                let code = error_code.clone().unwrap_or_else(|| "error".into());
                let hint = if status == Some(403) {
                    " (the identity needs `Storage Blob Data Contributor` on the container, or the SAS needs read, create, write, list and delete)"
                } else {
                    ""
                };
                format!("{code}{hint}")
            }
            _ => {
                let mut parts = vec![e.to_string()];
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    parts.push(s.to_string());
                    source = s.source();
                }
                parts.join(": ")
            }
        };
        StoreError {
            operation,
            location,
            status,
            message: self.redactor.redact(&message),
        }
    }

    async fn upload(&self, name: &str, bytes: &[u8]) -> azure_core::Result<()> {
        let options = BlockBlobClientUploadOptions {
            blob_content_type: Some("application/json; charset=utf-8".to_string()),
            if_none_match: Some(Etag::from("*")),
            ..Default::default()
        };
        self.container
            .blob_client(name)
            .upload(RequestContent::from(bytes.to_vec()), Some(options))
            .await
            .map(|_| ())
    }

    async fn create(&self, name: &str, bytes: Vec<u8>) -> Result<Created, StoreError> {
        let first = self.upload(name, &bytes).await;
        let result = match first {
            Err(e) if error_code(&e).as_deref() == Some("ContainerNotFound") => {
                match self.container.create(None).await {
                    Ok(_) => {}
                    Err(e) if error_code(&e).as_deref() == Some("ContainerAlreadyExists") => {}
                    Err(e) => return Err(self.error("creating", self.url.to_string(), &e)),
                }
                self.upload(name, &bytes).await
            }
            other => other,
        };
        match result {
            Ok(()) => Ok(Created::Created),
            Err(e) if is_exists_conflict(&e) => Ok(Created::Existed),
            Err(e) => Err(self.error("writing", self.location(name), &e)),
        }
    }

    async fn read(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.container.blob_client(name).download(None).await {
            Ok(response) => {
                let body = response
                    .body
                    .collect()
                    .await
                    .map_err(|e| self.error("reading", self.location(name), &e))?;
                Ok(Some(body.to_vec()))
            }
            Err(e) if e.http_status().map(u16::from) == Some(404) => Ok(None),
            Err(e) => Err(self.error("reading", self.location(name), &e)),
        }
    }

    async fn exists(&self, name: &str) -> Result<bool, StoreError> {
        match self.container.blob_client(name).get_properties(None).await {
            Ok(_) => Ok(true),
            Err(e) if e.http_status().map(u16::from) == Some(404) => Ok(false),
            Err(e) => Err(self.error("reading", self.location(name), &e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let options = BlobContainerClientListBlobsOptions {
            prefix: Some(prefix.to_string()),
            ..Default::default()
        };
        let pager = match self.container.list_blobs(Some(options)) {
            Ok(p) => p,
            Err(e) => return Err(self.error("listing", self.location(prefix), &e)),
        };
        let items: Result<Vec<_>, _> = pager.try_collect().await;
        match items {
            Ok(items) => Ok(items
                .into_iter()
                .filter_map(|b| b.name)
                .filter(|n| {
                    n.strip_prefix(prefix)
                        .is_some_and(|rest| !rest.contains('/'))
                })
                .collect()),
            Err(e) if error_code(&e).as_deref() == Some("ContainerNotFound") => Ok(Vec::new()),
            Err(e) => Err(self.error("listing", self.location(prefix), &e)),
        }
    }

    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        match self.container.blob_client(name).delete(None).await {
            Ok(_) => Ok(()),
            Err(e) if e.http_status().map(u16::from) == Some(404) => Ok(()),
            Err(e) => Err(self.error("deleting", self.location(name), &e)),
        }
    }
}

fn error_code(e: &azure_core::Error) -> Option<String> {
    match e.kind() {
        ErrorKind::HttpResponse { error_code, .. } => error_code.clone(),
        _ => None,
    }
}

/// A create-only write that met an existing blob (409 BlobAlreadyExists, or 412).
fn is_exists_conflict(e: &azure_core::Error) -> bool {
    match e.http_status().map(u16::from) {
        Some(412) => true,
        Some(409) => error_code(e).as_deref() == Some("BlobAlreadyExists"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn directory_store_creates_once_lists_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::Dir(dir.path().to_path_buf());
        assert_eq!(store.read("a/b/x.json").await.unwrap(), None);
        assert_eq!(store.list("a/b/").await.unwrap(), Vec::<String>::new());
        assert_eq!(
            store.create("a/b/x.json", b"one".to_vec()).await.unwrap(),
            Created::Created
        );
        assert_eq!(
            store.create("a/b/x.json", b"two".to_vec()).await.unwrap(),
            Created::Existed
        );
        assert_eq!(store.read("a/b/x.json").await.unwrap().unwrap(), b"one");
        store.create("a/b/y.json", b"y".to_vec()).await.unwrap();
        store.create("a/b/c/z.json", b"z".to_vec()).await.unwrap();
        assert!(store.exists("a/b/y.json").await.unwrap());
        assert_eq!(
            store.list("a/b/").await.unwrap(),
            ["a/b/x.json", "a/b/y.json"],
            "only direct children, no temporary files"
        );
        store.delete("a/b/x.json").await.unwrap();
        store.delete("a/b/x.json").await.unwrap();
        assert!(!store.exists("a/b/x.json").await.unwrap());
    }

    #[tokio::test]
    async fn concurrent_creates_write_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::Dir(dir.path().to_path_buf());
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = store.clone();
                tokio::spawn(async move { s.create("r/summary.json", vec![b'0' + i]).await })
            })
            .collect();
        let mut created = 0;
        for t in tasks {
            if t.await.unwrap().unwrap() == Created::Created {
                created += 1;
            }
        }
        assert_eq!(created, 1);
    }
}
