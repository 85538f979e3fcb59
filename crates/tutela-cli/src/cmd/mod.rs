//! One module per subcommand; each exposes `Args` (clap) and `run(Args) -> Result<Outcome>`.

pub mod audit;
pub mod profiles;
