//! Development helper: `cargo run --release -p tutela-detect --example eval_file -- FILE.jsonl [misses]`
//! prints the eval table (and the misses) without building the whole CLI.

use tutela_detect::Detectors;
use tutela_detect::eval::{evaluate, parse_jsonl, render_table};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: eval_file FILE.jsonl [misses]")?;
    let text = std::fs::read_to_string(path)?;
    let items = parse_jsonl(&text)?;
    let det = Detectors::try_builtin()?;
    let scored = evaluate(&det, &items);
    print!("{}", render_table(&scored));
    if args.get(2).is_some_and(|a| a == "misses") {
        for (id, task, gold, pred) in &scored.misses {
            let item = items.iter().find(|i| &i.id == id);
            let text = item.map_or("", |i| i.text.as_str());
            let ctx = item.and_then(|i| i.context.as_deref()).unwrap_or("");
            println!("{id}\t{task}\tgold={gold}\tpred={pred}\t{text}\t|ctx: {ctx}");
        }
    }
    Ok(())
}
