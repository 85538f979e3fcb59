//! Integration tests of the `tutela` binary, run as a newcomer would run it:
//! - `reports`: simulate a month past the CN thresholds (lowered in a copy of the profiles, so
//!   the test stays small), see the warning and the obligation records appear, and check that
//!   the assessment, usage and SB 243 reports show exactly the numbers the simulation produced.
//! - `assess`: `tutela assess` against a running `tutela serve` is test traffic: no figure,
//!   count or queue changes, and the reports say how many test turns they left out.
//! - `docs`: the command examples of `docs/cli/*.md` run with `trycmd`, each page in a sandbox,
//!   and their output must match; every README command and every `--help` example is on such a
//!   page or excused.
//! - `help`: `tutela --help` names every subcommand; each one's help ends with an example.
//! - `profiles`: aliases wherever a profile id is taken; `profiles check profiles` anywhere.
//! - `simulate`: `tutela simulate` refuses a database that holds a deployment's data; it, `report`
//!   and `obligations` share one time-zone default, which its `next:` line names.
//! - `screen`: the summary names the categories it checked and warns without operator packs.
//! - `shutdown`: `tutela serve` whose log cannot be written (standard error on a full disk)
//!   serves, and exits 0 on SIGTERM with every record written.
//! - `instances`: three `tutela serve` on one PostgreSQL database, one killed with SIGKILL under
//!   load: the others carry on, the chain verifies, no acknowledged crisis lacks its records.
//! - `outage`: PostgreSQL away for 10 s under `tutela serve` (a loopback proxy cut): crisis
//!   replies leave within seconds, `/readyz` 503, turns degrade as docs/deploy.md says, the
//!   instance recovers by itself and the records of the crisis turns are written.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code fails loudly, with the value that broke it"
)]

mod assess;
mod docs;
mod help;
mod instances;
mod outage;
mod profiles;
mod reports;
mod screen;
mod shutdown;
mod simulate;
mod support;
mod tiers;
