//! The local-directory sink: the same layout as the blob container, written atomically.
//!
//! Each file is written to a hidden temporary file in its final directory (`.<name>.<random>.tmp`),
//! flushed to disk, then published: run files with `hard_link` (atomic and fails if the name
//! exists, so nothing stored is overwritten), `latest.json` with `rename` (atomic replace). Readers
//! never see a partial file, and no temporary file is left behind, on success or failure.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::layout::{self, ObjectKind, RenderedObject};
use super::{ReportSink, SinkError, StoredObject, StoredReport, WriteOutcome};
use crate::report::model::Report;

#[derive(Clone, Debug)]
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[async_trait]
impl ReportSink for DirSink {
    async fn store(&self, report: &Report) -> Result<StoredReport, SinkError> {
        let objects = layout::render_objects(report)?;
        let finished = layout::finished(report)?;
        let root = self.root.clone();
        let run_id = report.run.id.clone();
        let stored = tokio::task::spawn_blocking(move || store_blocking(&root, &objects, finished))
            .await
            .map_err(|e| SinkError::Io {
                location: self.root.display().to_string(),
                source: io::Error::other(format!("the writer task failed: {e}")),
            })??;
        Ok(StoredReport {
            run_id,
            objects: stored,
        })
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        location: path.display().to_string(),
        source,
    }
}

fn store_blocking(
    root: &Path,
    objects: &[RenderedObject],
    finished: time::OffsetDateTime,
) -> Result<Vec<StoredObject>, SinkError> {
    let mut stored = Vec::with_capacity(objects.len());
    for object in objects {
        let path = object
            .name
            .split('/')
            .fold(root.to_path_buf(), |p, segment| p.join(segment));
        let dir = path.parent().unwrap_or(root);
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let outcome = match object.kind {
            ObjectKind::Latest => put_latest(&path, &object.bytes, finished)?,
            _ => put_new(&path, &object.bytes)?,
        };
        stored.push(StoredObject {
            kind: object.kind,
            name: object.name.clone(),
            location: path.display().to_string(),
            content_type: object.content_type,
            bytes: object.bytes.len(),
            outcome,
        });
    }
    Ok(stored)
}

/// A temporary file beside `path`, removed on drop unless published.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn write(target: &Path, bytes: &[u8]) -> Result<Self, SinkError> {
        let dir = target.parent().unwrap_or(Path::new("."));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = Self {
            path: dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>())),
        };
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp.path)
            .map_err(io_error(&temp.path))?;
        file.write_all(bytes).map_err(io_error(&temp.path))?;
        file.sync_all().map_err(io_error(&temp.path))?;
        Ok(temp)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Makes the new directory entries durable (best effort: not every platform can open a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn put_new(path: &Path, bytes: &[u8]) -> Result<WriteOutcome, SinkError> {
    let temp = TempFile::write(path, bytes)?;
    let published = match fs::hard_link(&temp.path, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        // Filesystems without hard links: check, then rename (not atomic against a concurrent
        // writer of the same run id, which unique run ids rule out).
        Err(_) if !path.exists() => fs::rename(&temp.path, path),
        Err(e) => Err(e),
    };
    match published {
        Ok(()) => {
            drop(temp);
            if let Some(dir) = path.parent() {
                sync_dir(dir);
            }
            Ok(WriteOutcome::Created)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists || path.exists() => {
            let existing = fs::read(path).map_err(io_error(path))?;
            if existing == bytes {
                Ok(WriteOutcome::AlreadyStored)
            } else {
                Err(SinkError::AlreadyExists {
                    location: path.display().to_string(),
                })
            }
        }
        Err(e) => Err(io_error(path)(e)),
    }
}

fn put_latest(
    path: &Path,
    bytes: &[u8],
    finished: time::OffsetDateTime,
) -> Result<WriteOutcome, SinkError> {
    let existing = match fs::read(path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error(path)(e)),
    };
    if let Some(run_id) = existing
        .as_deref()
        .and_then(|b| layout::newer_latest(b, finished))
    {
        return Ok(WriteOutcome::KeptNewer { run_id });
    }
    let temp = TempFile::write(path, bytes)?;
    fs::rename(&temp.path, path).map_err(io_error(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(if existing.is_some() {
        WriteOutcome::Replaced
    } else {
        WriteOutcome::Created
    })
}
