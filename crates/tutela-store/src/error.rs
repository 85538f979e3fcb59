//! The store's error type.

/// Errors from the store. Messages are lowercase, without a final period.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value cannot be read back (a bad enum name, bad JSON, an out-of-range number).
    #[error("stored value in `{table}.{column}` is invalid: {message}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A value could not be encoded as JSON.
    #[error("cannot encode {what} as JSON: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why it failed.
        source: serde_json::Error,
    },
    /// No row with this id.
    #[error("no {what} with id `{id}`")]
    NotFound {
        /// The kind of thing (`user`, `escalation`, ...).
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The operation does not fit the row's current state (claiming a resolved case).
    #[error("{what} `{id}` is {state}: cannot {operation}")]
    Conflict {
        /// The kind of thing.
        what: &'static str,
        /// Its id.
        id: String,
        /// Its current state.
        state: String,
        /// What was attempted.
        operation: &'static str,
    },
    /// The background audit writer has stopped (the store is closing).
    #[error("the audit writer has stopped")]
    WriterClosed,
    /// A store call panicked inside the writer (a driver bug, a log subscriber that panics when
    /// its own output fails); the writer counts it as a failed attempt and goes on.
    #[error("the store panicked: {0}")]
    Panicked(String),
    /// The audit queue is full; the caller should use the awaiting path.
    #[error("the audit queue is full")]
    QueueFull,
    /// The audit write failed; the record is held in memory and retried until it is written
    /// (see [`crate::AuditWriter`]). Not durable yet: the caller decides whether to go on.
    #[error("the audit record is not written yet: {0}")]
    AuditPending(String),
}

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Whether the database could not be reached at all (no connection within the pool's
    /// acquire timeout, a connection cut): a read would fail the same way, so a caller that
    /// can do without it does not try.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::WorkerCrashed
            )
        )
    }

    pub(crate) fn corrupt(
        table: &'static str,
        column: &'static str,
        message: impl Into<String>,
    ) -> Self {
        StoreError::Corrupt {
            table,
            column,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(what: &'static str, id: impl ToString) -> Self {
        StoreError::NotFound {
            what,
            id: id.to_string(),
        }
    }
}
