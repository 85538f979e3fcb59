//! The feature cache of `tutela train` (`--cache DIR`): the encoder's embedding of each text
//! it is asked about, on disk, so that a retrain that changes only the heads, thresholds or
//! fusion does not embed the corpus again.
//!
//! One file per encoder model, named by a digest of the model (every file of its directory,
//! and the binary's version, which pins the tokenizer and forward pass); one record per text,
//! keyed by SHA-256 of that digest and the text, holding the embedding's floats bit for bit,
//! so a run with the cache trains exactly what a run without it does. Records are appended at
//! `flush`; a torn last record (an interrupted write) is ignored on reading.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use tutela_detect::learned::encoder::Embedder;

const MAGIC: &[u8; 8] = b"TUTEMBC1";

type Key = [u8; 32];

/// An [`Embedder`] that answers from the cache where it can and asks the model otherwise.
#[derive(Debug)]
pub struct CachedEmbedder {
    inner: Arc<dyn Embedder>,
    model: Key,
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    known: HashMap<Key, Vec<f32>>,
    fresh: Vec<Key>,
    hits: u64,
    misses: u64,
}

/// A digest of everything that determines a model's embeddings: the files of its directory
/// (names and bytes, in name order; sub-folders such as `learned/` left out) and the version
/// of this binary.
pub fn model_digest(dir: &Path, embedder_id: &str) -> Result<Key> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut h = Sha256::new();
    h.update(b"tutela embedding cache\0");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update([0]);
    h.update(embedder_id.as_bytes());
    h.update([0]);
    for f in files {
        let bytes = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
        h.update(name.unwrap_or_default().as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().into())
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

impl CachedEmbedder {
    /// Opens (or starts) the cache of the model with digest `model` in folder `dir`.
    pub fn open(inner: Arc<dyn Embedder>, model: Key, dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}.emb", &hex(&model)[..32]));
        let dim = inner.dim();
        let mut state = State::default();
        if path.exists() {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            state.known =
                parse(&bytes, dim).with_context(|| format!("reading {}", path.display()))?;
            // A torn last record is cut off, so the next records append whole.
            let whole = 12 + (bytes.len() - 12) / (32 + 4 * dim) * (32 + 4 * dim);
            if whole < bytes.len() {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(whole as u64))
                    .with_context(|| format!("truncating {}", path.display()))?;
            }
        }
        Ok(Self {
            inner,
            model,
            path,
            state: Mutex::new(state),
        })
    }

    fn key(&self, text: &str) -> Key {
        let mut h = Sha256::new();
        h.update(self.model);
        h.update(text.as_bytes());
        h.finalize().into()
    }

    /// Appends the embeddings computed since the last flush to the file.
    pub fn flush(&self) -> Result<()> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if st.fresh.is_empty() {
            return Ok(());
        }
        let dim = self.inner.dim();
        let mut out = Vec::with_capacity(st.fresh.len() * (32 + 4 * dim) + 12);
        let new_file = !self.path.exists();
        if new_file {
            out.extend_from_slice(MAGIC);
            out.extend_from_slice(&(dim as u32).to_le_bytes());
        }
        for k in &st.fresh {
            if let Some(v) = st.known.get(k) {
                out.extend_from_slice(k);
                for x in v {
                    out.extend_from_slice(&x.to_bits().to_le_bytes());
                }
            }
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        f.write_all(&out)
            .with_context(|| format!("writing {}", self.path.display()))?;
        st.fresh.clear();
        Ok(())
    }

    /// Texts answered from the cache and texts embedded, so far.
    pub fn counts(&self) -> (u64, u64) {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (st.hits, st.misses)
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The records of a cache file of embeddings of `dim` floats.
fn parse(bytes: &[u8], dim: usize) -> Result<HashMap<Key, Vec<f32>>> {
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        bail!("not an embedding cache (delete it to start again)");
    }
    let stored = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    if stored != dim {
        bail!("embeddings of {stored} floats, the model gives {dim}");
    }
    let rec = 32 + 4 * dim;
    let mut out = HashMap::new();
    // A torn last record (an interrupted append) is left out.
    for r in bytes[12..].chunks_exact(rec) {
        let mut k = [0u8; 32];
        k.copy_from_slice(&r[..32]);
        let v = r[32..]
            .chunks_exact(4)
            .map(|b| f32::from_bits(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect();
        out.insert(k, v);
    }
    Ok(out)
}

impl Embedder for CachedEmbedder {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn embed(&self, text: &str) -> Vec<f32> {
        let k = self.key(text);
        {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(v) = st.known.get(&k).cloned() {
                st.hits += 1;
                return v;
            }
        }
        // Embedded outside the lock (the gateway's threads never share this cache, but
        // `train` may score on several).
        let v = self.inner.embed(text);
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.misses += 1;
        if st.known.insert(k, v.clone()).is_none() {
            st.fresh.push(k);
        }
        v
    }

    fn id(&self) -> String {
        self.inner.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Debug, Default)]
    struct Counting(AtomicU64);

    impl Embedder for Counting {
        fn dim(&self) -> usize {
            3
        }
        fn embed(&self, text: &str) -> Vec<f32> {
            self.0.fetch_add(1, Ordering::Relaxed);
            let n = text.len() as f32;
            vec![n, -n / 3.0, f32::MIN_POSITIVE / 7.0]
        }
        fn id(&self) -> String {
            "counting".into()
        }
    }

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tutela-embcache-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_second_cache_answers_from_the_file_bit_for_bit() {
        let d = dir("reopen");
        let inner = Arc::new(Counting::default());
        let c = CachedEmbedder::open(inner.clone(), [7; 32], &d).unwrap();
        let a = c.embed("hello");
        assert_eq!(c.embed("hello"), a);
        let b = c.embed("再见");
        c.flush().unwrap();
        assert_eq!(inner.0.load(Ordering::Relaxed), 2);
        let c2 = CachedEmbedder::open(inner.clone(), [7; 32], &d).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&c2.embed("hello")), bits(&a));
        assert_eq!(bits(&c2.embed("再见")), bits(&b));
        assert_eq!(
            inner.0.load(Ordering::Relaxed),
            2,
            "both answered from the file"
        );
        assert_eq!(c2.counts(), (2, 0));
        // Another model's digest is another file.
        let c3 = CachedEmbedder::open(inner.clone(), [8; 32], &d).unwrap();
        c3.embed("hello");
        assert_eq!(inner.0.load(Ordering::Relaxed), 3);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_last_record_is_left_out_and_a_foreign_file_refused() {
        let d = dir("torn");
        let inner = Arc::new(Counting::default());
        let c = CachedEmbedder::open(inner.clone(), [1; 32], &d).unwrap();
        c.embed("one");
        c.embed("two");
        c.flush().unwrap();
        let p = c.path().to_owned();
        let len = std::fs::metadata(&p).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(len - 5).unwrap();
        let c2 = CachedEmbedder::open(inner.clone(), [1; 32], &d).unwrap();
        c2.embed("one");
        c2.embed("two");
        assert_eq!(c2.counts(), (1, 1));
        c2.flush().unwrap();
        let c3 = CachedEmbedder::open(inner.clone(), [1; 32], &d).unwrap();
        c3.embed("two");
        c3.embed("one");
        assert_eq!(c3.counts(), (2, 0), "appended whole after the cut");
        std::fs::write(&p, b"something else").unwrap();
        assert!(CachedEmbedder::open(inner, [1; 32], &d).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
