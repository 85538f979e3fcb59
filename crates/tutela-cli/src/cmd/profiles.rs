//! `tutela profiles list | show ID | explain ID | check [PATH]`.

use anyhow::Result;

use crate::Outcome;

/// Arguments of `tutela profiles`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `tutela profiles`.
pub fn run(_args: Args) -> Result<Outcome> {
    Ok(Outcome::Clean)
}
