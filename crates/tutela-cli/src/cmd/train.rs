//! `tutela train [--corpus DIR] [--data FILE...] [--out DIR]`: trains the learned tiers from
//! the project's corpus (`data/train/*.jsonl`) plus an operator's own labelled items (for
//! example reviewed cases), deterministically (seeded), and reports each tier and the fusion
//! on the held-out validation split (one group in five, never trained on).
//!
//! `--out crates/tutela-detect/model` rewrites the built-in model compiled into the binary;
//! the default writes to `<model dir>/learned`, which `serve`, `check` and `eval` load in
//! place of the built-in one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tutela_detect::Tiers;
use tutela_detect::eval::{Item, evaluate_tier_report, parse_jsonl, render_table};
use tutela_detect::learned::model::STRIDE;
use tutela_detect::learned::train::{self, Options, is_validation};
use tutela_types::Side;

use crate::Outcome;

/// Arguments of `tutela train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project's corpus: every `*.jsonl` file in this folder.
    #[arg(long, default_value = "data/train")]
    pub corpus: PathBuf,
    /// More labelled items (the format of `tutela eval`), added to the corpus.
    #[arg(long, value_name = "FILE")]
    pub data: Vec<PathBuf>,
    /// Where the models go (default: `<model dir>/learned`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed of the shuffle.
    #[arg(long, default_value_t = Options::default().seed)]
    pub seed: u64,
    /// Passes over the data.
    #[arg(long, default_value_t = Options::default().epochs)]
    pub epochs: u32,
    /// Adagrad step.
    #[arg(long, default_value_t = Options::default().lr)]
    pub lr: f32,
    /// L2 penalty per update.
    #[arg(long, default_value_t = Options::default().l2)]
    pub l2: f32,
    /// Hash bits of the feature table (`2^bits` rows).
    #[arg(long, default_value_t = Options::default().bits)]
    pub bits: u32,
    /// Share of the positives only the encoder finds that its gate lets through, for every
    /// head but crisis and third party (which keep all): 1.0 all; less: fewer embeddings per
    /// message, at some recall.
    #[arg(long, default_value_t = Options::default().gate_keep)]
    pub gate_keep: f32,
    /// The out-of-fold precision at which crisis and third party (recall-first heads) have
    /// their recall maximised.
    #[arg(long, default_value_t = Options::default().recall_precision)]
    pub recall_precision: f32,
    /// Recall-first heads measure that precision on their own task's items only, and flag at
    /// most this share of the negatives outside it (ordinary chat, other tasks); without it,
    /// precision is measured over every item with a target for the head.
    #[arg(long, value_name = "SHARE")]
    pub recall_scope_cap: Option<f32>,
    /// The embedded tiers' fusion (lexical and n-gram, no encoder) for crisis and third
    /// party: choose their n-gram threshold with a veto level that a lexical finding needs
    /// from the n-gram probability, for the best out-of-fold recall at this precision on
    /// their own task, flagging at most 5 % (or `--recall-scope-cap`) of the negatives
    /// outside it (0.85, `train::EMBEDDED_PRECISION`, is the bar); without it, no
    /// veto: every lexical finding stands, at `--recall-precision` (the built-in models).
    #[arg(long, value_name = "PRECISION")]
    pub embedded_precision: Option<f32>,
    /// Hidden units of the encoder heads' network.
    #[arg(long, default_value_t = Options::default().mlp.hidden)]
    pub hidden: usize,
    /// Passes of the encoder heads' network over its rows.
    #[arg(long, default_value_t = Options::default().mlp.epochs)]
    pub mlp_epochs: u32,
    /// Adam's step for the encoder heads' network.
    #[arg(long, default_value_t = Options::default().mlp.lr)]
    pub mlp_lr: f32,
    /// L2 penalty on the encoder heads' network's weights.
    #[arg(long, default_value_t = Options::default().mlp.l2)]
    pub mlp_l2: f32,
    /// Networks of the encoder heads trained from consecutive seeds and averaged (each
    /// trained in turn: N times the heads' training time).
    #[arg(long, default_value_t = Options::default().mlp.members)]
    pub mlp_members: usize,
    /// Seed of the encoder heads' network (default 2, the built-in heads' seed).
    #[arg(long)]
    pub mlp_seed: Option<u64>,
    /// Train the assistant side's encoder heads with prefix rows too: the windows that
    /// prefixes of negative replies' sentences end (what the streaming early release asks
    /// the heads about), as negatives outside the class balance. Measured, not the default.
    #[arg(long)]
    pub prefix_rows: bool,
    /// Nearest neighbours the encoder heads read (their labels' vote, per head; 0: none).
    /// The training examples' quantised embeddings are stored in the heads files.
    #[arg(long, default_value_t = Options::default().knn)]
    pub knn: usize,
    /// Write each validation item's per-head scores (n-gram tier, window maximum) and
    /// lexical findings as JSONL to this file, for analysis.
    #[arg(long, value_name = "FILE")]
    pub dump_scores: Option<PathBuf>,
    /// Write every item's features as JSONL to this file (split, fold, targets, lexical
    /// findings, n-gram probabilities — out-of-fold for the training split — and encoder
    /// embeddings), for analysis of the heads and the fusion outside the trainer.
    #[arg(long, value_name = "FILE", hide = true)]
    pub dump_features: Option<PathBuf>,
    /// Feature cache: the encoder's embedding of every text it is asked about, keyed by a
    /// digest of the model and the text, so a retrain that changes only the heads,
    /// thresholds or fusion does not embed the corpus again (the results are the same bytes).
    #[arg(long, value_name = "DIR", default_value = ".cache/embeddings")]
    pub cache: PathBuf,
    /// Embed every text again and leave the cache alone.
    #[arg(long)]
    pub no_cache: bool,
    #[command(flatten)]
    pub model: crate::tiers::LearnedArgs,
    /// Write the validation figures as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Reads every labelled item: the corpus folder's files in name order, then `--data`.
pub fn read_items(corpus: &Path, extra: &[PathBuf]) -> Result<Vec<Item>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus)
        .with_context(|| format!("reading {}", corpus.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files.extend(extra.iter().cloned());
    let mut items = Vec::new();
    for f in &files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        items.extend(parse_jsonl(&text).with_context(|| format!("parsing {}", f.display()))?);
    }
    Ok(items)
}

/// Runs `tutela train`.
pub fn run(args: Args) -> Result<Outcome> {
    let items = read_items(&args.corpus, &args.data)?;
    let out = match args.out {
        Some(o) => o,
        None => super::model::default_model_dir()
            .context("no model directory: set TUTELA_MODEL_DIR or pass --out")?
            .join("learned"),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let opt = Options {
        seed: args.seed,
        epochs: args.epochs,
        lr: args.lr,
        l2: args.l2,
        bits: args.bits,
        gate_keep: args.gate_keep,
        recall_precision: args.recall_precision,
        recall_scope_cap: args.recall_scope_cap,
        embedded_precision: args.embedded_precision,
        mlp: tutela_detect::learned::encoder::MlpOptions {
            hidden: args.hidden,
            epochs: args.mlp_epochs,
            lr: args.mlp_lr,
            l2: args.mlp_l2,
            members: args.mlp_members,
            ..Options::default().mlp
        },
        mlp_seed: args.mlp_seed.or(Options::default().mlp_seed),
        prefix_rows: args.prefix_rows,
        knn: args.knn,
        ..Options::default()
    };
    let mut det = tutela_detect::Detectors::try_builtin()?;
    let embedder: Option<std::sync::Arc<dyn tutela_detect::learned::encoder::Embedder>> =
        if args.model.no_encoder {
            None
        } else {
            crate::tiers::load_embedder(&args.model)?.map(|e| e as _)
        };
    // The embeddings go through the cache (same floats, bit for bit), written back after
    // each side and at the end.
    let cache = match (&embedder, args.no_cache) {
        (Some(e), false) => {
            let dir = crate::tiers::model_dir(&args.model)
                .context("the encoder was loaded without a model directory")?;
            let digest = crate::embed_cache::model_digest(&dir, &e.id())?;
            let c = std::sync::Arc::new(crate::embed_cache::CachedEmbedder::open(
                e.clone(),
                digest,
                &args.cache,
            )?);
            eprintln!("tutela train: feature cache {}", c.path().display());
            Some(c)
        }
        _ => None,
    };
    let embedder = match &cache {
        Some(c) => Some(c.clone() as std::sync::Arc<dyn tutela_detect::learned::encoder::Embedder>),
        None => embedder,
    };
    match &embedder {
        Some(e) => eprintln!(
            "tutela train: {} items; encoder heads over {}",
            items.len(),
            e.id()
        ),
        None => eprintln!(
            "tutela train: {} items; no encoder model, so the n-gram tier only",
            items.len()
        ),
    }
    let chat_ids: std::collections::HashSet<&str> = items
        .iter()
        .filter(|i| i.task == "chat")
        .map(|i| i.id.as_str())
        .collect();
    for side in [Side::User, Side::Assistant] {
        let mut outcome = train::train_side_with(
            &det,
            &items,
            side,
            &opt,
            embedder
                .as_deref()
                .map(|e| e as &dyn tutela_detect::learned::encoder::Embedder),
        );
        let name = match side {
            Side::User => "ngram-user.bin",
            Side::Assistant => "ngram-assistant.bin",
        };
        let path = out.join(name);
        std::fs::write(&path, outcome.model.to_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "tutela train: {side:?} side: {} training, {} validation items -> {}",
            outcome.train_items,
            outcome.validation_items,
            path.display()
        );
        for (h, t) in outcome
            .model
            .meta
            .heads
            .iter()
            .zip(&outcome.model.meta.thresholds)
        {
            eprintln!(
                "  threshold {:<22} en {:.3} zh {:.3} mixed {:.3}",
                h.as_str(),
                t.en,
                t.zh,
                t.mixed
            );
        }
        for (h, v) in outcome
            .model
            .meta
            .heads
            .iter()
            .zip(&outcome.model.meta.veto)
        {
            eprintln!(
                "  veto      {:<22} en {:.3} zh {:.3} mixed {:.3} (lexical,ngram without the encoder)",
                h.as_str(),
                v.en,
                v.zh,
                v.mixed
            );
        }
        let oof = std::mem::take(&mut outcome.oof);
        det.set_ngram_model(outcome.model);
        if let Some(p) = &args.dump_features {
            let e = embedder
                .as_deref()
                .map(|e| e as &dyn tutela_detect::learned::encoder::Embedder);
            dump_features(&det, &items, side, &oof, e, p, opt.folds)?;
        }
        if let (Some(heads), Some(e)) = (outcome.heads, &embedder) {
            let name = match side {
                Side::User => "encoder-user.bin",
                Side::Assistant => "encoder-assistant.bin",
            };
            let path = out.join(name);
            std::fs::write(&path, heads.to_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            // Ordinary chat of the training split, out of fold: how much passes each gate.
            let chat: Vec<&[f32; STRIDE]> = oof
                .iter()
                .filter(|(id, _)| chat_ids.contains(id.as_str()))
                .map(|(_, p)| p)
                .collect();
            for (k, (h, (c, g))) in heads
                .meta
                .heads
                .iter()
                .zip(heads.meta.combined.iter().zip(&heads.meta.gate))
                .enumerate()
            {
                let through = chat.iter().filter(|p| p[k] >= *g).count();
                eprintln!(
                    "  encoder {:<22} combined en {:.2} zh {:.2} mixed {:.2}  gate {:.3} ({} of {} chat items)",
                    h.as_str(),
                    c.en,
                    c.zh,
                    c.mixed,
                    g,
                    through,
                    chat.len()
                );
            }
            eprintln!(
                "  {:.1} % of the training negatives pass the encoder gate{} -> {}",
                outcome.gate_rate.unwrap_or(0.0) * 100.0,
                outcome
                    .gate_rate_chat
                    .map(|c| format!(" ({:.1} % of ordinary chat)", c * 100.0))
                    .unwrap_or_default(),
                path.display()
            );
            det.set_encoder(e.clone(), heads)
                .map_err(anyhow::Error::msg)?;
        }
        if let Some(c) = &cache {
            c.flush()?;
        }
    }
    // The validation split, scored by each tier and by the fusion.
    let validation: Vec<Item> = items
        .iter()
        .filter(|i| is_validation(i))
        .filter(|i| i.task != "chat")
        .cloned()
        .collect();
    let mut reports = Vec::new();
    let mut runs = vec![
        Tiers::LEXICAL,
        Tiers::NGRAM,
        Tiers {
            lexical: true,
            ngram: true,
            encoder: false,
        },
    ];
    if det.has_encoder(Side::User) {
        runs.extend([Tiers::ENCODER, Tiers::ALL]);
    }
    for tiers in runs {
        let (scored, report) = evaluate_tier_report(&det, &validation, tiers);
        println!(
            "== validation split ({} items), tiers {}",
            validation.len(),
            tiers.names()
        );
        print!("{}", render_table(&scored));
        reports.push(report);
    }
    if let Some(p) = &args.dump_scores {
        let mut o = String::new();
        for i in &validation {
            let side = train::side_of(i);
            let Some(model) = det.ngram_model(side) else {
                continue;
            };
            let probs =
                tutela_detect::learned::item_scores(&det, side, &i.text, i.context.as_deref());
            let lex: Vec<String> = det
                .scan_tiers(side, &i.text, i.context.as_deref(), Tiers::LEXICAL)
                .into_iter()
                .map(|f| f.detector.as_str().to_owned())
                .collect();
            let heads: serde_json::Map<String, serde_json::Value> = model
                .meta
                .heads
                .iter()
                .zip(probs)
                .map(|(h, p)| (h.as_str().to_owned(), serde_json::json!(p)))
                .collect();
            o.push_str(&serde_json::to_string(&serde_json::json!({
                "id": i.id, "task": i.task, "label": i.label, "lang": i.lang,
                "hard": i.is_hard(), "ngram": heads, "lexical": lex
            }))?);
            o.push('\n');
        }
        std::fs::write(p, o).with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(c) = &cache {
        c.flush()?;
        let (hits, misses) = c.counts();
        eprintln!("tutela train: feature cache: {hits} embeddings read, {misses} computed");
    }
    if let Some(p) = args.report {
        std::fs::write(&p, serde_json::to_string_pretty(&reports)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(Outcome::Clean)
}

/// Appends the features of every item of `side` to `path` (see `--dump-features`).
fn dump_features(
    det: &tutela_detect::Detectors,
    items: &[Item],
    side: Side,
    oof: &[(String, [f32; STRIDE])],
    embedder: Option<&dyn tutela_detect::learned::encoder::Embedder>,
    path: &Path,
    folds: u32,
) -> Result<()> {
    use std::io::Write as _;
    let heads = train::heads(side);
    let oof: std::collections::HashMap<&str, &[f32; STRIDE]> =
        oof.iter().map(|(i, p)| (i.as_str(), p)).collect();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    for i in items.iter().filter(|i| train::side_of(i) == side) {
        let val = is_validation(i);
        let probs: Vec<f32> = match oof.get(i.id.as_str()) {
            Some(p) if !val => p[..heads.len()].to_vec(),
            _ => tutela_detect::learned::item_scores(det, side, &i.text, i.context.as_deref()),
        };
        let lex: Vec<String> = det
            .scan_tiers(side, &i.text, i.context.as_deref(), Tiers::LEXICAL)
            .into_iter()
            .map(|f| f.detector.as_str().to_owned())
            .collect();
        let targets: Vec<Option<(bool, f32)>> = train::targets(i, &heads);
        let emb = embedder.map(|e| e.embed(&i.text));
        let ctx = embedder.and_then(|e| i.context.as_deref().map(|c| e.embed(c)));
        let line = serde_json::json!({
            "id": i.id, "side": format!("{side:?}"), "validation": val,
            "fold": train::fold_of(i, folds), "task": i.task, "label": i.label,
            "lang": i.lang, "hard": i.is_hard(),
            "heads": heads.iter().map(|h| h.as_str()).collect::<Vec<_>>(),
            "targets": targets, "ngram": probs, "lexical": lex, "emb": emb, "ctx": ctx,
        });
        writeln!(f, "{}", serde_json::to_string(&line)?)?;
    }
    Ok(())
}
