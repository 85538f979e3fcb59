//! One module per subcommand; each exposes `Args` (clap) and `run(Args) -> Result<Outcome>`.

pub mod assess;
pub mod audit;
pub mod check;
pub mod eval;
pub mod migrate;
pub mod model;
pub mod profiles;
pub mod report;
pub mod screen;
pub mod serve;
pub mod simulate;
pub mod staff;
pub mod train;

/// A `--db` value as it may be printed: a PostgreSQL URL without its password.
pub(crate) fn shown_db(db: &str) -> String {
    tutela_store::shown_database(db)
}

/// Opens the `--db` of a command that reads a deployment's records: a SQLite file that must
/// exist, or a `postgres://` URL (migrations are applied on open).
pub(crate) async fn open_existing(
    db: &str,
    options: tutela_store::StoreOptions,
) -> anyhow::Result<tutela_store::Store> {
    use anyhow::Context as _;
    if !tutela_store::is_postgres_url(db) && !std::path::Path::new(db).is_file() {
        anyhow::bail!("no database at `{db}`");
    }
    tutela_store::Store::connect(db, options)
        .await
        .with_context(|| format!("cannot open `{}`", shown_db(db)))
}
