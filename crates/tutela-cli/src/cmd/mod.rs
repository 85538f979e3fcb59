//! One module per subcommand; each exposes `Args` (clap) and `run(Args) -> Result<Outcome>`.

pub mod audit;
pub mod check;
pub mod eval;
pub mod profiles;
pub mod serve;
