//! The bench's one error type: every message names what failed and, where there is one, the fix.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Msg(String),
}

impl BenchError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
    pub fn msg(message: impl Into<String>) -> Self {
        Self::Msg(message.into())
    }
}

pub type Result<T> = std::result::Result<T, BenchError>;
