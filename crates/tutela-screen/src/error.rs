//! Errors of the screening and assessment libraries.

use std::path::Path;

/// What can go wrong while screening or assessing.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An input is missing or unreadable as a corpus.
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A bad option or an output directory that does not fit the run.
    #[error("{0}")]
    Config(String),
    /// A file written by tutela (checkpoint, summary, review, bank) is not what it should be.
    #[error("{path}:{line}: {message}")]
    Format {
        /// The file.
        path: String,
        /// 1-based line (0 when not known).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The run stopped on purpose (tests simulate an interruption this way).
    #[error("interrupted")]
    Interrupted,
    /// The upstream model could not be reached or kept failing.
    #[error("upstream: {0}")]
    Upstream(String),
}

impl ScreenError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ScreenError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
