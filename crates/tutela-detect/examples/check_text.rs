//! Development helper: `cargo run --release -p tutela-detect --example check_text -- user|assistant TEXT [CONTEXT]`.

use tutela_detect::Detectors;
use tutela_types::Side;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let side = if args.get(1).is_some_and(|s| s == "assistant") {
        Side::Assistant
    } else {
        Side::User
    };
    let det = Detectors::try_builtin()?;
    for text in args
        .get(2)
        .map(|s| s.split(" || ").collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let f = det.scan(side, text, args.get(3).map(String::as_str));
        println!("{text}");
        for f in f {
            println!(
                "   {} {:?} {:?}",
                f.detector,
                f.rule,
                f.spans
                    .iter()
                    .map(|s| &text[s.start..s.end])
                    .collect::<Vec<_>>()
            );
        }
    }
    eprintln!(
        "literals/rules (user, assistant, context): {:?}",
        det.stats()
    );
    if let Some(c) = args.get(3) {
        println!("context labels: {:?}", det.context_labels(c));
    }
    Ok(())
}
