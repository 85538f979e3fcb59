//! A SentencePiece unigram tokenizer: the `.model` protobuf read with a minimal wire-format
//! reader, the `nmt_nfkc` normaliser (the model's precompiled charsmap, a darts-clone double
//! array, plus SentencePiece's whitespace rules) and Viterbi segmentation over the pieces and
//! their scores.
//!
//! It gives the token ids of the reference tokenizer the wheel ships, which treats every piece
//! (control and user-defined ones too) as matchable text and an unknown character as one
//! `<unk>` each; scores add up in `f64` and ties keep the earlier-ending predecessor, as there.
//!
//! The charsmap is needed: NFKC alone (then the same whitespace rules) gives the reference ids
//! for 347 of 349 written chat texts but only 1105 of 1500 random ones (control, zero-width
//! and other characters that `nmt_nfkc` drops or maps and NFKC keeps); the charsmap gives all.

use crate::error::EncoderError;

/// The metaspace that stands for a space inside pieces.
const METASPACE: &[u8] = "\u{2581}".as_bytes();

/// The score of a character no piece covers, below every piece: the lowest score minus 10.
const UNK_PENALTY: f64 = 10.0;

/// Piece types in the model file.
const TYPE_NORMAL: u64 = 1;
const TYPE_UNKNOWN: u64 = 2;
const TYPE_CONTROL: u64 = 3;

/// A loaded tokenizer: the vocabulary trie, the scores and the normaliser.
#[derive(Debug)]
pub(crate) struct Tokenizer {
    trie: PieceTrie,
    scores: Vec<f32>,
    unk_score: f64,
    unk_id: u32,
    bos_id: u32,
    eos_id: u32,
    normalizer: Normalizer,
}

impl Tokenizer {
    /// Parses a SentencePiece `.model` file; `label` names it in errors.
    pub(crate) fn parse(label: &str, data: &[u8]) -> Result<Tokenizer, EncoderError> {
        let bad = |what: String| EncoderError::format(label, what);
        let mut pieces: Vec<&[u8]> = Vec::new();
        let mut scores = Vec::new();
        let mut charsmap: &[u8] = &[];
        let mut add_dummy_prefix = true;
        let mut remove_extra_whitespaces = true;
        let mut escape_whitespaces = true;
        let (mut unk_id, mut bos_id, mut eos_id) = (0u64, 1u64, 2u64);
        for field in Fields::new(data) {
            match field.map_err(|e| bad(format!("model file: {e}")))? {
                (1, Value::Bytes(piece)) => {
                    let (mut text, mut score) = (None, 0.0f32);
                    for f in Fields::new(piece) {
                        match f.map_err(|e| bad(format!("piece {}: {e}", pieces.len())))? {
                            (1, Value::Bytes(t)) => text = Some(t),
                            (2, Value::Fixed32(s)) => score = f32::from_bits(s),
                            _ => {}
                        }
                    }
                    let text =
                        text.ok_or_else(|| bad(format!("piece {} has no text", pieces.len())))?;
                    if std::str::from_utf8(text).is_err() {
                        return Err(bad(format!("piece {} is not UTF-8", pieces.len())));
                    }
                    pieces.push(text);
                    scores.push(score);
                }
                (2, Value::Bytes(trainer)) => {
                    for f in Fields::new(trainer) {
                        match f.map_err(|e| bad(format!("trainer spec: {e}")))? {
                            (3, Value::Varint(kind)) if kind != 1 => {
                                return Err(bad(format!("model type {kind} is not unigram (1)")));
                            }
                            (40, Value::Varint(v)) => unk_id = v,
                            (41, Value::Varint(v)) => bos_id = v,
                            (42, Value::Varint(v)) => eos_id = v,
                            _ => {}
                        }
                    }
                }
                (3, Value::Bytes(normalizer)) => {
                    for f in Fields::new(normalizer) {
                        match f.map_err(|e| bad(format!("normalizer spec: {e}")))? {
                            (2, Value::Bytes(map)) => charsmap = map,
                            (3, Value::Varint(v)) => add_dummy_prefix = v != 0,
                            (4, Value::Varint(v)) => remove_extra_whitespaces = v != 0,
                            (5, Value::Varint(v)) => escape_whitespaces = v != 0,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if pieces.is_empty() {
            return Err(bad("no pieces".into()));
        }
        let id = |v: u64, what: &str| {
            u32::try_from(v)
                .ok()
                .filter(|&id| (id as usize) < pieces.len())
                .ok_or_else(|| bad(format!("{what} id {v} is not a piece")))
        };
        let (unk_id, bos_id, eos_id) = (id(unk_id, "unk")?, id(bos_id, "bos")?, id(eos_id, "eos")?);
        let lowest = scores.iter().copied().fold(f32::INFINITY, f32::min);
        let normalizer = Normalizer::new(
            charsmap,
            add_dummy_prefix,
            remove_extra_whitespaces,
            escape_whitespaces,
        )
        .map_err(|e| bad(format!("precompiled charsmap: {e}")))?;
        Ok(Tokenizer {
            trie: PieceTrie::build(&pieces),
            scores,
            unk_score: f64::from(lowest) - UNK_PENALTY,
            unk_id,
            bos_id,
            eos_id,
            normalizer,
        })
    }

    /// The number of pieces.
    pub(crate) fn vocab_size(&self) -> usize {
        self.scores.len()
    }

    /// The bytes held: the trie, the scores and the charsmap.
    pub(crate) fn bytes(&self) -> usize {
        let t = &self.trie;
        std::mem::size_of_val(&*t.root)
            + t.first.len() * 4
            + t.count.len() * 2
            + t.label.len()
            + t.value.len() * 4
            + self.scores.len() * 4
            + self.normalizer.units.len() * 4
            + self.normalizer.replacements.len()
    }

    /// The ids of `text`: `<s>`, the pieces, `</s>`. A text that normalises to nothing is
    /// `<s> <unk> </s>`.
    pub(crate) fn encode(&self, text: &str) -> Vec<u32> {
        let normalized = self.normalizer.normalize(text.as_bytes());
        let mut ids = Vec::with_capacity(normalized.len() / 2 + 3);
        ids.push(self.bos_id);
        if normalized.is_empty() {
            ids.push(self.unk_id);
        } else {
            self.viterbi(&normalized, &mut ids);
        }
        ids.push(self.eos_id);
        ids
    }

    /// The normalised text (metaspaces and all), for tests and diagnostics.
    #[cfg(test)]
    pub(crate) fn normalize(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.normalizer.normalize(text.as_bytes())).into_owned()
    }

    /// Appends the best segmentation of `s` (non-empty) to `ids`.
    ///
    /// Every lattice node starting at a position shares that position's best predecessor, so a
    /// left-to-right pass over character starts is the whole Viterbi search: `best[p]` is the
    /// score of the best path ending at byte `p`, `from[p]` and `piece[p]` its last node.
    fn viterbi(&self, s: &[u8], ids: &mut Vec<u32>) {
        let n = s.len();
        let mut best = vec![f64::NEG_INFINITY; n + 1];
        let mut from = vec![0u32; n + 1];
        let mut piece = vec![0u32; n + 1];
        best[0] = 0.0;
        let mut i = 0;
        while i < n {
            let char_end = (i + utf8_len(s[i])).min(n);
            let base = best[i];
            let mut single = false;
            let mut node = PieceTrie::ROOT;
            for (j, &byte) in s.iter().enumerate().skip(i) {
                let Some(next) = self.trie.child(node, byte) else {
                    break;
                };
                node = next;
                if let Some(id) = self.trie.piece(node) {
                    let end = j + 1;
                    let score = base + f64::from(self.scores[id as usize]);
                    if score > best[end] {
                        best[end] = score;
                        from[end] = i as u32;
                        piece[end] = id;
                    }
                    single |= end == char_end;
                }
            }
            if !single {
                let score = base + self.unk_score;
                if score > best[char_end] {
                    best[char_end] = score;
                    from[char_end] = i as u32;
                    piece[char_end] = self.unk_id;
                }
            }
            i = char_end;
        }
        let start = ids.len();
        let mut p = n;
        while p > 0 {
            ids.push(piece[p]);
            p = from[p] as usize;
        }
        ids[start..].reverse();
    }
}

/// The byte length of the UTF-8 sequence a leading byte starts (1 for a stray byte).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

// ---------------------------------------------------------------------------------------------
// The vocabulary trie.

/// The pieces as a byte trie: each node's children are contiguous and sorted by label.
#[derive(Debug)]
struct PieceTrie {
    /// The root's children by byte (0: none; the root is never a child).
    root: Box<[u32; 256]>,
    first: Vec<u32>,
    count: Vec<u16>,
    label: Vec<u8>,
    /// Piece id + 1, or 0 where no piece ends.
    value: Vec<u32>,
}

impl PieceTrie {
    const ROOT: u32 = 0;

    fn build(pieces: &[&[u8]]) -> PieceTrie {
        let mut order: Vec<u32> = (0..pieces.len() as u32).collect();
        // Ties by id, so among equal pieces the last keeps the node (the highest id), as a map
        // from piece to id written in id order would.
        order.sort_unstable_by(|&a, &b| pieces[a as usize].cmp(pieces[b as usize]).then(a.cmp(&b)));
        // The keys side by side in sorted order: the walk below reads them in sequence.
        let mut bytes = Vec::with_capacity(pieces.iter().map(|p| p.len()).sum());
        let mut starts = Vec::with_capacity(pieces.len() + 1);
        for &k in &order {
            starts.push(bytes.len());
            bytes.extend_from_slice(pieces[k as usize]);
        }
        starts.push(bytes.len());
        let key = |i: usize| &bytes[starts[i]..starts[i + 1]];
        let mut trie = PieceTrie {
            root: Box::new([0; 256]),
            first: vec![0],
            count: vec![0],
            label: vec![0],
            value: vec![0],
        };
        // Each queued node: its index and the range of `order` holding its descendants' keys,
        // at depth `depth`.
        let mut queue = std::collections::VecDeque::from([(0u32, 0usize, order.len(), 0usize)]);
        while let Some((node, mut lo, hi, depth)) = queue.pop_front() {
            while lo < hi && key(lo).len() == depth {
                if depth > 0 {
                    trie.value[node as usize] = order[lo] + 1;
                }
                lo += 1;
            }
            trie.first[node as usize] = trie.label.len() as u32;
            while lo < hi {
                let byte = key(lo)[depth];
                let mut end = lo + 1;
                while end < hi && key(end)[depth] == byte {
                    end += 1;
                }
                let child = trie.label.len() as u32;
                trie.first.push(0);
                trie.count.push(0);
                trie.label.push(byte);
                trie.value.push(0);
                trie.count[node as usize] += 1;
                if node == Self::ROOT {
                    trie.root[byte as usize] = child;
                }
                queue.push_back((child, lo, end, depth + 1));
                lo = end;
            }
        }
        trie
    }

    fn child(&self, node: u32, byte: u8) -> Option<u32> {
        if node == Self::ROOT {
            return Some(self.root[byte as usize]).filter(|&c| c != 0);
        }
        let first = self.first[node as usize] as usize;
        let labels = &self.label[first..first + self.count[node as usize] as usize];
        // Below the root a node has a handful of children: a linear scan beats bisection.
        labels
            .iter()
            .position(|&l| l == byte)
            .map(|k| (first + k) as u32)
    }

    fn piece(&self, node: u32) -> Option<u32> {
        self.value[node as usize].checked_sub(1)
    }
}

// ---------------------------------------------------------------------------------------------
// The normaliser.

/// SentencePiece's normaliser over a precompiled charsmap (possibly empty: no mapping).
#[derive(Debug)]
struct Normalizer {
    /// The darts-clone double array; empty when the model has no charsmap.
    units: Vec<u32>,
    /// NUL-terminated replacement strings that the array's values point into.
    replacements: Vec<u8>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
    escape_whitespaces: bool,
}

/// darts-clone unit fields.
fn unit_offset(unit: u32) -> usize {
    ((unit >> 10) << ((unit & (1 << 9)) >> 6)) as usize
}
fn unit_has_leaf(unit: u32) -> bool {
    unit & (1 << 8) != 0
}
fn unit_label(unit: u32) -> u32 {
    unit & 0x8000_00FF
}
fn unit_value(unit: u32) -> u32 {
    unit & 0x7FFF_FFFF
}

impl Normalizer {
    fn new(
        charsmap: &[u8],
        add_dummy_prefix: bool,
        remove_extra_whitespaces: bool,
        escape_whitespaces: bool,
    ) -> Result<Normalizer, String> {
        let (units, replacements) = if charsmap.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let size = charsmap
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or("shorter than its header")?;
            let trie = charsmap
                .get(4..4 + size)
                .filter(|t| t.len() % 4 == 0 && !t.is_empty())
                .ok_or("trie size out of range")?;
            let units = trie
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let replacements = charsmap.get(4 + size..).unwrap_or_default().to_vec();
            // Replacements are spliced into the text: they must be UTF-8 themselves.
            std::str::from_utf8(&replacements).map_err(|_| "replacements are not UTF-8")?;
            (units, replacements)
        };
        Ok(Normalizer {
            units,
            replacements,
            add_dummy_prefix,
            remove_extra_whitespaces,
            escape_whitespaces,
        })
    }

    /// The longest charsmap key at the start of `s` and its replacement, or the first
    /// character unchanged: `(replacement, bytes consumed)`. `s` is not empty.
    fn prefix<'s>(&'s self, s: &'s [u8]) -> (&'s [u8], usize) {
        let mut best: Option<(usize, usize)> = None;
        if let Some(&root) = self.units.first() {
            let mut pos = unit_offset(root);
            for (k, &c) in s.iter().enumerate() {
                pos ^= usize::from(c);
                let Some(&unit) = self.units.get(pos) else {
                    break;
                };
                if unit_label(unit) != u32::from(c) {
                    break;
                }
                pos ^= unit_offset(unit);
                if unit_has_leaf(unit) {
                    let Some(&leaf) = self.units.get(pos) else {
                        break;
                    };
                    best = Some((k + 1, unit_value(leaf) as usize));
                }
            }
        }
        if let Some((len, value)) = best.filter(|&(_, v)| v < self.replacements.len()) {
            let tail = &self.replacements[value..];
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            return (&tail[..end], len);
        }
        let len = utf8_len(s[0]).min(s.len());
        (&s[..len], len)
    }

    /// Normalises `text`: charsmap, leading/trailing/repeated spaces removed, a space in front,
    /// spaces as `▁`.
    fn normalize(&self, text: &[u8]) -> Vec<u8> {
        let strip = self.remove_extra_whitespaces;
        let space: &[u8] = if self.escape_whitespaces {
            METASPACE
        } else {
            b" "
        };
        let mut pos = 0;
        if strip {
            while pos < text.len() {
                let (piece, used) = self.prefix(&text[pos..]);
                if piece != b" " {
                    break;
                }
                pos += used;
            }
        }
        if pos >= text.len() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(text.len() + text.len() / 2 + 3);
        if self.add_dummy_prefix {
            out.extend_from_slice(space);
        }
        let mut prev_space = strip;
        while pos < text.len() {
            let (mut piece, used) = self.prefix(&text[pos..]);
            pos += used;
            if strip && prev_space {
                while let [b' ', rest @ ..] = piece {
                    piece = rest;
                }
            }
            let Some(&last) = piece.last() else {
                continue;
            };
            for &b in piece {
                if b == b' ' {
                    out.extend_from_slice(space);
                } else {
                    out.push(b);
                }
            }
            prev_space = last == b' ';
        }
        if strip {
            while out.ends_with(space) {
                out.truncate(out.len() - space.len());
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The protobuf wire format.

/// One field's value.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    /// A 64-bit field, skipped (the model file has none).
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The fields of one message, in order: `(field number, value)`.
struct Fields<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn new(data: &'a [u8]) -> Fields<'a> {
        Fields { data, at: 0 }
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let &b = self.data.get(self.at).ok_or("truncated varint")?;
            self.at += 1;
            value |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than 10 bytes")
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], &'static str> {
        let bytes = self
            .at
            .checked_add(len)
            .and_then(|end| self.data.get(self.at..end))
            .ok_or("field runs past its message")?;
        self.at += len;
        Ok(bytes)
    }

    fn field(&mut self) -> Result<(u64, Value<'a>), &'static str> {
        let tag = self.varint()?;
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            _ => return Err("unsupported wire type"),
        };
        Ok((tag >> 3, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.data.len() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            // One error ends the message.
            self.at = self.data.len();
        }
        Some(field)
    }
}

// ---------------------------------------------------------------------------------------------
// Writing (for the test model).

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, field << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_uint(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

/// A piece to write: its text and score. `<unk>`, `<s>` and `</s>` come first and get their
/// types from their places.
pub(crate) struct NewPiece<'a> {
    pub(crate) text: &'a str,
    pub(crate) score: f32,
}

/// Writes a unigram `.model` file: pieces (the first three are `<unk>`, `<s>`, `</s>`), a
/// trainer spec naming those ids, and an `nmt_nfkc` normaliser spec with `charsmap`.
pub(crate) fn write_model(pieces: &[NewPiece<'_>], charsmap: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, p) in pieces.iter().enumerate() {
        let mut msg = Vec::new();
        put_bytes(&mut msg, 1, p.text.as_bytes());
        put_varint(&mut msg, 2 << 3 | 5);
        msg.extend_from_slice(&p.score.to_le_bytes());
        let kind = match id {
            0 => TYPE_UNKNOWN,
            1 | 2 => TYPE_CONTROL,
            _ => TYPE_NORMAL,
        };
        put_uint(&mut msg, 3, kind);
        put_bytes(&mut out, 1, &msg);
    }
    let mut trainer = Vec::new();
    put_uint(&mut trainer, 3, 1);
    put_uint(&mut trainer, 4, pieces.len() as u64);
    put_uint(&mut trainer, 40, 0);
    put_uint(&mut trainer, 41, 1);
    put_uint(&mut trainer, 42, 2);
    put_bytes(&mut out, 2, &trainer);
    let mut normalizer = Vec::new();
    put_bytes(&mut normalizer, 1, b"nmt_nfkc");
    put_bytes(&mut normalizer, 2, charsmap);
    put_uint(&mut normalizer, 3, 1);
    put_uint(&mut normalizer, 4, 1);
    put_bytes(&mut out, 3, &normalizer);
    out
}

/// Builds a precompiled charsmap (a `u32` byte length, a darts-clone double array of the
/// keys, then the NUL-terminated replacements) mapping each key to its replacement. Keys are
/// non-empty and hold no NUL; the array is small (offsets stay below 2^21), as the test
/// model's is.
pub(crate) fn build_charsmap(map: &[(String, String)]) -> Result<Vec<u8>, String> {
    let mut entries: Vec<(&[u8], u32)> = Vec::with_capacity(map.len());
    let mut replacements = Vec::new();
    for (key, value) in map {
        if key.is_empty() || key.as_bytes().contains(&0) || value.as_bytes().contains(&0) {
            return Err(format!("charsmap key `{key}` is empty or holds NUL"));
        }
        entries.push((key.as_bytes(), replacements.len() as u32));
        replacements.extend_from_slice(value.as_bytes());
        replacements.push(0);
    }
    entries.sort();
    entries.dedup_by(|a, b| a.0 == b.0);
    // Unused units carry bit 31, so no label check ever matches them.
    const FREE: u32 = 0x8000_0000;
    let mut units = vec![FREE; 256];
    let mut used = vec![false; 256];
    used[0] = true;
    let mut bases = std::collections::HashSet::new();
    // Each queued node: its position and the range of keys below it, at `depth`.
    let mut queue = std::collections::VecDeque::from([(0usize, 0usize, entries.len(), 0usize)]);
    while let Some((pos, mut lo, hi, depth)) = queue.pop_front() {
        let mut leaf = None;
        if lo < hi && entries[lo].0.len() == depth {
            leaf = Some(entries[lo].1);
            lo += 1;
        }
        let mut children: Vec<(u8, usize, usize)> = Vec::new();
        while lo < hi {
            let byte = entries[lo].0[depth];
            let mut end = lo + 1;
            while end < hi && entries[end].0[depth] == byte {
                end += 1;
            }
            children.push((byte, lo, end));
            lo = end;
        }
        // The first base no other node has (so a label check tells whose child a unit is)
        // whose slots (0 for the leaf, each child's label) are all free.
        let base = (1usize..)
            .find(|&b| {
                !bases.contains(&b)
                    && leaf.is_none_or(|_| !used.get(b).copied().unwrap_or(false))
                    && children
                        .iter()
                        .all(|&(c, _, _)| !used.get(b ^ usize::from(c)).copied().unwrap_or(false))
            })
            .unwrap_or(1);
        bases.insert(base);
        let offset = pos ^ base;
        if offset >= 1 << 21 {
            return Err("charsmap too large for this builder".into());
        }
        let top = children
            .iter()
            .map(|&(c, _, _)| base ^ usize::from(c))
            .chain(std::iter::once(base))
            .max()
            .unwrap_or(base);
        if top >= units.len() {
            let len = (top + 256) & !255;
            units.resize(len, FREE);
            used.resize(len, false);
        }
        let label = if pos == 0 { 0 } else { units[pos] & 0xFF };
        units[pos] = ((offset as u32) << 10) | label | if leaf.is_some() { 1 << 8 } else { 0 };
        if let Some(value) = leaf {
            units[base] = value | (1 << 31);
            used[base] = true;
        }
        for &(c, lo, end) in &children {
            let at = base ^ usize::from(c);
            units[at] = u32::from(c);
            used[at] = true;
            queue.push_back((at, lo, end, depth + 1));
        }
    }
    let mut out = ((units.len() * 4) as u32).to_le_bytes().to_vec();
    out.extend(units.iter().flat_map(|u| u.to_le_bytes()));
    out.extend_from_slice(&replacements);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer(pieces: &[(&str, f32)], map: &[(&str, &str)]) -> Tokenizer {
        let mut all = vec![
            NewPiece {
                text: "<unk>",
                score: 0.0,
            },
            NewPiece {
                text: "<s>",
                score: 0.0,
            },
            NewPiece {
                text: "</s>",
                score: 0.0,
            },
        ];
        all.extend(pieces.iter().map(|&(text, score)| NewPiece { text, score }));
        let map: Vec<(String, String)> = map
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let charsmap = build_charsmap(&map).unwrap();
        Tokenizer::parse("t.model", &write_model(&all, &charsmap)).unwrap()
    }

    #[test]
    fn viterbi_takes_the_best_scoring_segmentation() {
        let t = tokenizer(
            &[
                ("▁", -1.0),
                ("a", -2.0),
                ("b", -2.0),
                ("ab", -3.0),
                ("▁ab", -6.0),
                ("▁a", -1.5),
            ],
            &[],
        );
        // ▁ab: -6 alone; ▁a + b: -3.5; ▁ + ab: -4.
        assert_eq!(t.encode("ab"), vec![1, 8, 5, 2]);
        // An unknown character is one <unk>; an empty text is <s> <unk> </s>.
        assert_eq!(t.encode("ac"), vec![1, 8, 0, 2]);
        assert_eq!(t.encode(""), vec![1, 0, 2]);
        assert_eq!(t.encode("   "), vec![1, 0, 2]);
        assert_eq!(t.vocab_size(), 9);
    }

    #[test]
    fn ties_keep_the_first_found_path() {
        // "▁ab" as ▁ + ab or ▁a + b, both -3: the end of `b` is first reached from the
        // start of `a` (expanded before the start of `b`), and only a strictly greater score
        // replaces it.
        let t = tokenizer(
            &[
                ("▁", -1.0),
                ("▁a", -1.0),
                ("b", -2.0),
                ("ab", -2.0),
                ("a", -9.0),
            ],
            &[],
        );
        assert_eq!(t.encode("ab"), vec![1, 3, 6, 2]);
    }

    #[test]
    fn normaliser_maps_strips_and_escapes_spaces() {
        let t = tokenizer(
            &[("▁", -1.0)],
            &[
                ("Ａ", "A"),
                ("\t", " "),
                ("ﬁ", "fi"),
                ("\u{200b}", ""),
                ("e\u{301}", "é"),
            ],
        );
        assert_eq!(t.normalize("  a  b \t c  "), "▁a▁b▁c");
        assert_eq!(t.normalize("Ａﬁ"), "▁Afi");
        assert_eq!(t.normalize("x\u{200b}y"), "▁xy");
        assert_eq!(t.normalize("e\u{301}"), "▁é");
        assert_eq!(t.normalize("\u{200b}"), "");
        assert_eq!(t.normalize("\t\t"), "");
    }

    #[test]
    fn charsmap_takes_the_longest_key() {
        let map: Vec<(String, String)> = [("a", "1"), ("ab", "2"), ("abc", "3"), ("b", "4")]
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let n = Normalizer::new(&build_charsmap(&map).unwrap(), false, false, false).unwrap();
        assert_eq!(n.normalize(b"abcab"), b"32");
        assert_eq!(n.normalize(b"abx"), b"2x");
        assert_eq!(n.normalize(b"ba"), b"41");
        assert_eq!(n.normalize(b"\0a"), b"\x001");
    }

    #[test]
    fn malformed_model_files_are_errors_not_panics() {
        let t = tokenizer(&[("▁", -1.0)], &[("Ａ", "A")]);
        assert_eq!(t.vocab_size(), 4);
        let mut all = vec![NewPiece {
            text: "<unk>",
            score: 0.0,
        }];
        all.push(NewPiece {
            text: "x",
            score: -1.0,
        });
        let bytes = write_model(&all, &[]);
        let err = Tokenizer::parse("m.model", &bytes).unwrap_err().to_string();
        assert_eq!(err, "m.model: eos id 2 is not a piece");
        for cut in 0..bytes.len() {
            let _ = Tokenizer::parse("m.model", &bytes[..cut]);
        }
        let err = Tokenizer::parse("m.model", b"\x0a\xff\xff")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("m.model: model file:"), "{err}");
    }
}
