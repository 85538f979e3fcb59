//! `tutela audit verify [--db PATH] [--head SEQ:HASH] [--json]`: walks the audit log's hash
//! chain; exit 0 when it verifies, 1 when it finds tampering (naming the record and why), 2 on
//! errors.

use anyhow::{Context, Result};
use tutela_store::{ChainLink, StoreOptions, Verification};

use crate::Outcome;

/// Arguments of `tutela audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Check that no audit record was edited, deleted, inserted or reordered.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The database of `tutela serve`: a SQLite file, or a `postgres://` URL.
    #[arg(long, value_name = "PATH|URL", default_value = "./tutela.db")]
    db: String,
    /// A head printed by an earlier run and kept elsewhere; the chain must still contain it
    /// unchanged (catches a rewrite of the whole chain).
    #[arg(long, value_name = "SEQ:HASH")]
    head: Option<ChainLink>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `tutela audit`.
pub fn run(args: Args) -> Result<Outcome> {
    match args.command {
        AuditCommand::Verify(v) => verify(v),
    }
}

fn verify(args: VerifyArgs) -> Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result: Verification = runtime.block_on(async {
        let store = super::open_existing(&args.db, StoreOptions::default()).await?;
        let result = store.verify(args.head.clone()).await;
        store.close().await?;
        result.context("cannot read the audit log")
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_human(&result);
    }
    Ok(if result.is_intact() {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

fn print_human(v: &Verification) {
    match (&v.tamper, &v.head) {
        (None, Some(head)) => {
            println!("audit log verified: {}", records(v.records));
            println!("head {head}");
            println!(
                "keep this head elsewhere and pass it as --head next time to detect a rewrite"
            );
        }
        (None, None) => println!("audit log verified: empty"),
        (Some(t), _) => {
            println!("audit log TAMPERED: {t}");
            println!("{} verified before the problem", records(v.records));
        }
    }
    if v.outages.count > 0 {
        println!(
            "write outages: {} ({} written late, after the store could write again)",
            v.outages.count,
            records(v.outages.records_delayed)
        );
    }
    if v.outages.spilled > 0 {
        println!(
            "{} went through a spill file while the database could not write{}",
            records(v.outages.spilled),
            if v.outages.replayed_after_restart > 0 {
                format!(
                    "; {} of them replayed after a restart",
                    v.outages.replayed_after_restart
                )
            } else {
                String::new()
            }
        );
    }
}

fn records(n: u64) -> String {
    if n == 1 {
        "1 record".to_owned()
    } else {
        format!("{n} records")
    }
}
