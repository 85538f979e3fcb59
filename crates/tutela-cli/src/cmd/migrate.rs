//! `tutela migrate`: brings a database's schema up to this binary's migrations (SQLite file or
//! PostgreSQL URL) and says where it stands. `tutela serve` does the same at start; this runs it
//! ahead of a rolling deployment, or against a new database.

use anyhow::{Context, Result};
use tutela_store::{Database, StoreOptions};

use crate::Outcome;

/// Arguments of `tutela migrate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database: a SQLite file (created if missing), or a `postgres://` URL.
    #[arg(long, value_name = "PATH|URL", default_value = "./tutela.db")]
    db: String,
}

/// Runs `tutela migrate`.
pub fn run(args: Args) -> Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let shown = super::shown_db(&args.db);
    let (kind, applied, latest) = runtime.block_on(async {
        let db = Database::open(&args.db, StoreOptions::default())
            .await
            .with_context(|| format!("cannot open `{shown}`"))?;
        let (applied, latest) = db
            .migrations()
            .await
            .context("cannot read the applied migrations")?;
        db.close().await;
        anyhow::Ok((db.kind(), applied, latest))
    })?;
    println!("{shown} ({kind}): schema at migration {latest} ({applied} applied)");
    Ok(Outcome::Clean)
}
