//! `tutela staff add|list|disable|enable|reset`: the operator console's accounts, in the store
//! `tutela serve` uses. Passwords are hashed with argon2id (`tutela_console::accounts`); one is
//! generated and printed once unless `--password-stdin` gives it. Every change is in the audit
//! log (durably) with the staff id and `by: cli`.

use std::io::Read as _;

use anyhow::{Context, Result, bail};
use serde_json::json;
use tutela_console::accounts;
use tutela_store::{AuditEntry, AuditKind, AuditPayload, NewStaff, Staff, StaffRole, Store};
use tutela_types::Timestamp;

use crate::Outcome;

/// Arguments of `tutela staff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The database of `tutela serve`: a SQLite file (created if missing), or a `postgres://`
    /// URL.
    #[arg(
        long,
        value_name = "PATH|URL",
        default_value = "./tutela.db",
        global = true
    )]
    db: String,
    #[command(subcommand)]
    command: StaffCommand,
}

#[derive(Debug, clap::Subcommand)]
enum StaffCommand {
    /// Create an account (the first one is usually an admin).
    Add {
        /// Sign-in name.
        username: String,
        /// agent, supervisor, compliance or admin.
        #[arg(long)]
        role: String,
        /// Shown in the console (default: the username).
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the accounts.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Disable an account: it cannot sign in, and its sessions end.
    Disable {
        /// Sign-in name.
        username: String,
    },
    /// Enable a disabled account again.
    Enable {
        /// Sign-in name.
        username: String,
    },
    /// Set a new password (generated unless `--password-stdin`); ends the account's sessions
    /// and lifts a lock-out.
    Reset {
        /// Sign-in name.
        username: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[expect(
    clippy::disallowed_methods,
    reason = "the CLI is where time enters for staff changes made outside the gateway"
)]
fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Timestamp::from_unix(secs)
}

fn password(from_stdin: bool) -> Result<(String, bool)> {
    if from_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the password from standard input")?;
        let p = s.trim_end_matches(['\r', '\n']).to_owned();
        return Ok((p, false));
    }
    // 24 hex characters: 96 random bits.
    let token = accounts::random_token()?;
    Ok((token[..24].to_owned(), true))
}

/// Runs `tutela staff`.
pub fn run(args: Args) -> Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = Store::connect(&args.db, tutela_store::StoreOptions::default())
            .await
            .with_context(|| format!("cannot open `{}`", super::shown_db(&args.db)))?;
        let result = command(&store, args.command).await;
        store.close().await?;
        result
    })
}

async fn find(store: &Store, username: &str) -> Result<Staff> {
    store
        .staff()
        .staff_by_username(username)
        .await?
        .with_context(|| format!("no staff account `{username}`"))
}

async fn record(store: &Store, at: Timestamp, staff: &Staff, event: &str) -> Result<()> {
    store
        .audit()
        .append_durable(&AuditEntry {
            at,
            kind: AuditKind::Admin,
            user: None,
            session: None,
            jurisdiction: None,
            payload: AuditPayload::detail(json!({
                "event": event,
                "staff_id": staff.id,
                "staff": staff.username,
                "role": staff.role.as_str(),
                "by": "cli",
            })),
            profile_hash: String::new(),
            content_hash: None,
        })
        .await?;
    Ok(())
}

async fn command(store: &Store, command: StaffCommand) -> Result<Outcome> {
    let s = store.staff();
    let at = now();
    match command {
        StaffCommand::Add {
            username,
            role,
            name,
            password_stdin,
        } => {
            let Some(role) = StaffRole::parse(&role) else {
                bail!("`{role}` is not one of agent, supervisor, compliance, admin");
            };
            let username = username.trim().to_owned();
            if username.is_empty()
                || username.len() > 64
                || username.chars().any(char::is_whitespace)
            {
                bail!("a username has 1 to 64 characters and no spaces");
            }
            let (pw, generated) = password(password_stdin)?;
            let hash = accounts::hash_password(&pw)?;
            let staff = s
                .add_staff(&NewStaff {
                    display_name: name.unwrap_or_else(|| username.clone()),
                    username,
                    role,
                    password_hash: hash,
                    at,
                })
                .await?;
            record(store, at, &staff, "staff_added").await?;
            println!(
                "added {} ({}), id {}",
                staff.username,
                staff.role.as_str(),
                staff.id
            );
            if generated {
                println!("password (shown once): {pw}");
            }
        }
        StaffCommand::List { json } => {
            let all = s.list_staff().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for m in all {
                    let state = match (m.disabled_at, m.locked_until) {
                        (Some(_), _) => "disabled",
                        (None, Some(t)) if t > at => "locked",
                        _ => "active",
                    };
                    println!(
                        "{:>4}  {:<24} {:<11} {:<8} {}",
                        m.id,
                        m.username,
                        m.role.as_str(),
                        state,
                        m.display_name
                    );
                }
            }
        }
        StaffCommand::Disable { username } => {
            let staff = find(store, &username).await?;
            let staff = s.set_staff_disabled(staff.id, true, at).await?;
            record(store, at, &staff, "staff_disabled").await?;
            println!("disabled {}; their sessions ended", staff.username);
        }
        StaffCommand::Enable { username } => {
            let staff = find(store, &username).await?;
            let staff = s.set_staff_disabled(staff.id, false, at).await?;
            record(store, at, &staff, "staff_enabled").await?;
            println!("enabled {}", staff.username);
        }
        StaffCommand::Reset {
            username,
            password_stdin,
        } => {
            let staff = find(store, &username).await?;
            let (pw, generated) = password(password_stdin)?;
            let hash = accounts::hash_password(&pw)?;
            let staff = s.set_staff_password(staff.id, &hash, at).await?;
            record(store, at, &staff, "staff_password_reset").await?;
            println!(
                "reset the password of {}; their sessions ended",
                staff.username
            );
            if generated {
                println!("password (shown once): {pw}");
            }
        }
    }
    Ok(Outcome::Clean)
}
