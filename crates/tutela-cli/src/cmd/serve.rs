//! `tutela serve [--config FILE]`: runs the gateway. Defaults: listen `127.0.0.1:8080`, SQLite
//! `./tutela.db`, upstream `demo`, jurisdictions `cn, us-ca, us-ny, eu`, page at `/`.
//!
//! The detectors carry every tier that can run: the lexical tier with the operator's rule
//! packs (`[detectors] rules` in the file, and `--rules`), the n-gram tier, and the encoder tier
//! when the model directory holds the encoder and heads trained on it (`crate::tiers`). The
//! start-up lines say which tiers run, and why the encoder does not when it does not.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tutela_gateway::engines::{BuiltinScanner, CountingEmbedder};
use tutela_gateway::{Config, Parts, ProcessEnv};

use crate::Outcome;
use crate::stderr::say;

/// Arguments of `tutela serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A TOML configuration file; every key is optional.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen address, overriding the file (e.g. `127.0.0.1:0` for any free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// The database, overriding the file: a SQLite file (`:memory:` for a throwaway store) or a
    /// `postgres://` URL.
    #[arg(long, value_name = "PATH")]
    database: Option<String>,
    /// Operator rule packs (TOML), besides those the file names in `[detectors] rules`.
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
    #[command(flatten)]
    learned: crate::tiers::LearnedArgs,
}

/// Runs `tutela serve` until Ctrl-C or SIGTERM.
pub fn run(args: Args) -> Result<Outcome> {
    let text = match &args.config {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read `{}`", path.display()))?,
        None => String::new(),
    };
    let mut config = Config::from_toml(&text, &ProcessEnv).map_err(|e| {
        let file = args
            .config
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "defaults".into());
        anyhow::anyhow!("{file}: {e}")
    })?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(d) = args.database {
        config.database = d;
    }
    // Rule packs named in the file are relative to it.
    let base = args
        .config
        .as_deref()
        .and_then(std::path::Path::parent)
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let mut rules: Vec<PathBuf> = config.rule_packs.iter().map(|r| base.join(r)).collect();
    rules.extend(args.rules.iter().cloned());
    // The gateway's embedder counts windows and carries user turns embedded ahead.
    let counting: std::cell::RefCell<Option<Arc<CountingEmbedder>>> = Default::default();
    let (detectors, loaded) = crate::tiers::load_with(&rules, &args.learned, &|e| {
        let c = Arc::new(CountingEmbedder::new(e));
        *counting.borrow_mut() = Some(c.clone());
        c
    })?;
    // Build the user side and the quick-pass automata now, so the first requests do not wait.
    detectors.prepare();
    let scanner =
        BuiltinScanner::new(detectors, loaded.encoder_missing).with_embedder(counting.into_inner());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Never `std::io::stderr` itself: a log on a full disk must not panic (see `stderr`).
        .with_writer(crate::stderr::LossyStderr)
        .log_internal_errors(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, scanner))?;
    Ok(Outcome::Clean)
}

async fn serve(config: Config, scanner: BuiltinScanner) -> Result<()> {
    let listen = config.listen;
    let token_env = config.admin_token_env.clone();
    let generated = config.admin_token.is_none();
    let upstream = match &config.upstream {
        tutela_gateway::config::UpstreamConfig::Demo => "demo (scripted companion)".to_owned(),
        tutela_gateway::config::UpstreamConfig::OpenAi { base_url, .. } => base_url.clone(),
    };
    let database = config.shown_database();
    let encoder_wait = config.encoder_wait;
    let tiers = tutela_gateway::scan::Scanner::tiers(&scanner);
    let parts = Parts {
        scanner: Some(Arc::new(scanner)),
        ..Parts::default()
    };
    let state = tutela_gateway::build(config, parts).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    say!("tutela gateway listening on http://{addr}/");
    say!("  OpenAI-compatible API: http://{addr}/v1   upstream: {upstream}   store: {database}");
    say!("  detectors: {}", tiers.describe());
    if tiers.encoder_user {
        say!(
            "  encoder on the user side: concurrent with the upstream, waited for at most {} ms (then the quick tiers decide)",
            encoder_wait.as_millis()
        );
    }
    if let Some(why) = tiers
        .encoder_missing
        .as_deref()
        .filter(|_| !tiers.encoder_assistant || !tiers.encoder_user)
    {
        say!(
            "  encoder tier off{}: {why}",
            if tiers.encoder() { " on one side" } else { "" }
        );
    }
    if generated {
        say!(
            "  admin token (generated for this run; set {token_env} to choose one): {}",
            state.admin_token
        );
    }
    // Small SSE events must leave at once, not wait for Nagle and delayed ACKs.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    // On SIGTERM or Ctrl-C: stop accepting, let the turns in flight finish (streams
    // included, up to DRAIN), then write what is queued, checkpoint the WAL and close.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The peer address reaches the handlers (the complaint intake's and the console sign-in's
    // per-client limits).
    say!("  operator console: http://{addr}/console (accounts: `tutela staff add`)");
    let app = tutela_gateway::app(state.clone())
        .merge(tutela_console::router(state.clone()))
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown().await;
            let _ = stop_tx.send(true);
        })
        .into_future();
    tokio::pin!(server);
    let mut stop = stop_rx;
    tokio::select! {
        r = &mut server => r.context("server error")?,
        _ = stop.wait_for(|s| *s) => {
            say!("shutting down: draining turns in flight");
            match tokio::time::timeout(DRAIN, &mut server).await {
                Ok(r) => r.context("server error")?,
                Err(_) => say!("  turns still in flight after {} s; closing anyway", DRAIN.as_secs()),
            }
        }
    }
    let (effects, messages) = state.settle_held(FLUSH).await;
    if effects + messages > 0 {
        tracing::error!(
            side_effects = effects,
            case_messages = messages,
            "held writes could not be written before exit"
        );
        say!(
            "{effects} intervention side effects and {messages} case messages could not be written (writes failing); side effects held in [store] spill_dir are written by the next start, the rest are lost"
        );
    }
    let lost = state.records.close(FLUSH).await;
    if lost > 0 {
        tracing::error!(
            records = lost,
            "the store could not write these records before exit"
        );
        say!("store closed; {lost} records could not be written (writes failing)");
    } else {
        say!("store flushed, checkpointed and closed");
    }
    let dropped = crate::stderr::dropped();
    if dropped > 0 {
        say!("{dropped} writes to the log failed (standard error could not be written)");
    }
    Ok(())
}

/// How long in-flight turns (long streams, takeover waits) may take to finish after SIGTERM.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

/// How long the held writes (side effects, case messages), then the writer, may keep retrying
/// at exit (each).
const FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
