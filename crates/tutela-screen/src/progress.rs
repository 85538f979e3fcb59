//! The progress bars of the long commands (`screen`, `assess`, and the CLI's `simulate`): drawn
//! on standard error only when it is a terminal, never in a pipe, a log file or the tests.

use std::io::IsTerminal as _;

/// A bar of `total` steps in indicatif's `template`, or `None` when standard error is not a
/// terminal (or the template does not parse: then the default style).
pub fn bar(total: u64, template: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}
