//! One module per subcommand; each exposes `Args` (clap) and `run(Args) -> Result<Outcome>`.

pub mod assess;
pub mod audit;
pub mod check;
pub mod eval;
pub mod model;
pub mod profiles;
pub mod report;
pub mod screen;
pub mod serve;
pub mod simulate;
pub mod staff;
pub mod train;
