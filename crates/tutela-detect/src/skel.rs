//! The quick pass's skeleton automaton: whether the skeleton of a text (see
//! `normalize::skeleton`) contains one of a set of patterns, read straight off the text's
//! bytes, without writing the skeleton anywhere.
//!
//! It is an Aho-Corasick automaton over skeleton symbols (26 letters, and the ideographs the
//! patterns use), determinised, with three changes that let it read raw text:
//!
//! - **Dropped characters stay put.** A byte the skeleton drops (space, punctuation, digits
//!   that are not leetspeak) has class 0, whose transition from every state is the state
//!   itself.
//! - **Runs collapse by self-loops.** Every state but the start was entered on its last
//!   symbol, and a skeleton never holds the same symbol twice in a row (no pattern does
//!   either), so that symbol's transition from the state is the state itself. Reading
//!   `kiiill` steps like reading `kil`.
//! - **A match is a sink.** Every transition into a state where a pattern ends goes to one
//!   state, `MATCHED`, whose transitions all lead back to it: a walk need not test each step,
//!   only its end.
//!
//! An ASCII text is then one table lookup per byte, branch-free, and a long one is cut into
//! eight stretches walked side by side (each lookup waits on the one before it in its walk;
//! eight independent walks keep the core busy in the meantime).
//!
//! Ideographs: the patterns' ideographs get symbols `1..=k`; any other ideograph is symbol 0,
//! which no pattern holds (every walk but the sink's goes back to the start on it). States
//! entered on an ideograph, and the states from which some ideograph leads elsewhere than
//! from the start, get ideograph transitions of their own, kept as their differences from
//! the start's (a few per state); every other state behaves like the start. CJK punctuation, full-width forms and the rare
//! characters whose NFKC form holds letters are read from small tables or, rarely, the
//! general rule (`normalize::skeleton_rest`).

use crate::normalize::{self, SKELETON};

/// Letter transitions per state (class 0: dropped bytes, 1..=26: letters, the rest unused).
const STRIDE: usize = 32;
const SHIFT: u32 = 5;
/// The start state and the match sink, as premultiplied ids (state index << SHIFT).
const START: u32 = 0;
const MATCHED: u32 = 1 << SHIFT;
/// The ideographs the skeleton keeps (`normalize::is_cjk`) lie in this range.
/// The range of [`Skeletons::sym`]: CJK punctuation and symbols, and the ideographs the
/// skeleton keeps (`normalize::is_cjk`).
const FIRST_CJK: u32 = 0x3000;
const LAST_CJK: u32 = 0x9FFF;
/// In [`Skeletons::sym`]: a character the skeleton drops.
const DROP: u16 = u16::MAX;
/// In [`Skeletons::sym`]: a character to read through `normalize::skeleton_rest` (its
/// NFKC form holds letters or ideographs, as `㎏` or `㈠` do).
const GENERAL: u16 = u16::MAX - 1;
/// In [`Skeletons::sym`]: a kept ideograph that no pattern holds.
const OTHER: u16 = 0;
/// Ideograph transitions beyond this many (differences from the start's) are not kept:
/// texts with ideographs then always pass (see [`Skeletons::hit`]).
const MAX_IDEOGRAPH_DIFFERENCES: usize = 16 << 20;
/// Texts of at least `LANES * LANE_MIN` bytes are walked in lanes.
const LANES: usize = 8;
const LANE_MIN: usize = 32;
/// Lanes test for a match every this many bytes.
const BLOCK: usize = 512;

/// The class of each byte: 0 for one the skeleton drops, `1..=26` for the letter it reads as.
/// Bytes of 0x80 and above are class 0 (only ASCII texts are read through this table alone).
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = SKELETON[i];
        t[i] = if c == 0 { 0 } else { c - b'a' + 1 };
        i += 1;
    }
    t
};

/// The letter transition from `s` on byte `x`. `letters` has a power-of-two length (so
/// the mask keeps every index in bounds, and the compiler drops the bounds check).
#[inline(always)]
fn step(letters: &[u32], s: u32, x: u8) -> u32 {
    let mask = letters.len().wrapping_sub(1);
    letters[(s as usize + usize::from(CLASS[usize::from(x)])) & mask]
}

/// A skeleton automaton; see the module documentation.
#[derive(Debug)]
pub(crate) struct Skeletons {
    /// `STRIDE` letter transitions per state, as premultiplied ids.
    letters: Box<[u32]>,
    /// The ideograph transitions of the states of index `< rows`, as state indices (the
    /// targets of ideograph transitions all have such an index): the start's by symbol
    /// (`root`), and each other row's as its differences from the start's, sorted by symbol
    /// (`exceptions[offsets[r]..offsets[r + 1]]`). Most rows differ in two or three
    /// symbols, so the whole takes a few hundred kilobytes where a dense table took
    /// megabytes and missed the cache. Empty if not built.
    root: Box<[u16]>,
    offsets: Box<[u32]>,
    exceptions: Box<[(u16, u16)]>,
    rows: u32,
    /// Whether the ideograph transitions were kept (else texts with ideographs cannot be
    /// answered).
    ideographs: bool,
    /// Symbol of each code point `FIRST_CJK..=LAST_CJK` read as the skeleton reads it
    /// (simplified first): [`DROP`], [`GENERAL`], [`OTHER`] or `1..=k`.
    sym: Box<[u16]>,
    /// Symbol of each pattern ideograph as it stands (for characters already simplified).
    exact: Vec<(char, u16)>,
    /// The depth of each state (symbols of the longest text suffix it stands for); 255 for
    /// 255 or more. The sink has depth 0 (a lane that reached it is done).
    depth: Box<[u8]>,
}

/// A trie node under construction.
struct Node {
    /// A pattern ends here.
    term: bool,
    /// Symbols from the root.
    depth: u32,
    /// The symbol the node was entered on (0 for the root): `1..=26` letters, above that
    /// ideographs (`26 + ideograph symbol`).
    last: u32,
}

impl Skeletons {
    /// The automaton of `patterns` (skeletons: lowercase ASCII letters and ideographs, runs
    /// collapsed; empty ones are ignored). `None` if a pattern holds another character or
    /// there are too many states for ideograph rows of 16 bits.
    pub(crate) fn new(patterns: &[Vec<char>]) -> Option<Self> {
        // Ideograph symbols, in code point order.
        let mut ideographs: Vec<char> = patterns
            .iter()
            .flatten()
            .copied()
            .filter(|c| !c.is_ascii())
            .collect();
        ideographs.sort_unstable();
        ideographs.dedup();
        if ideographs.len() >= usize::from(GENERAL)
            || ideographs.iter().any(|&c| !normalize::is_cjk(c))
        {
            return None;
        }
        let k = ideographs.len();
        let symbol = |c: char| -> Option<u32> {
            if c.is_ascii_lowercase() {
                Some(u32::from(c as u8 - b'a') + 1)
            } else {
                let i = ideographs.binary_search(&c).ok()?;
                Some(27 + i as u32)
            }
        };
        let mut encoded: Vec<Vec<u32>> = Vec::with_capacity(patterns.len());
        for p in patterns {
            encoded.push(p.iter().map(|&c| symbol(c)).collect::<Option<Vec<u32>>>()?);
        }
        encoded.retain(|p| !p.is_empty());
        // Shorter first: a pattern that extends one already in the trie adds nothing.
        encoded.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        encoded.dedup();

        // The trie: letter children dense, ideograph children in a map.
        let mut nodes = vec![Node {
            term: false,
            depth: 0,
            last: 0,
        }];
        let mut kids: Vec<[u32; 27]> = vec![[0; 27]];
        let mut ikids: std::collections::HashMap<(u32, u32), u32> = Default::default();
        let child = |kids: &[[u32; 27]],
                     ikids: &std::collections::HashMap<(u32, u32), u32>,
                     n: u32,
                     a: u32|
         -> Option<u32> {
            if a <= 26 {
                Some(kids[n as usize][a as usize]).filter(|&c| c != 0)
            } else {
                ikids.get(&(n, a)).copied()
            }
        };
        'patterns: for p in &encoded {
            let mut n = 0u32;
            for &a in p {
                if nodes[n as usize].term {
                    continue 'patterns;
                }
                n = match child(&kids, &ikids, n, a) {
                    Some(c) => c,
                    None => {
                        let c = nodes.len() as u32;
                        let depth = nodes[n as usize].depth + 1;
                        nodes.push(Node {
                            term: false,
                            depth,
                            last: a,
                        });
                        kids.push([0; 27]);
                        if a <= 26 {
                            kids[n as usize][a as usize] = c;
                        } else {
                            ikids.insert((n, a), c);
                        }
                        c
                    }
                };
            }
            nodes[n as usize].term = true;
        }
        let mut ichildren: Vec<Vec<(u32, u32)>> = vec![Vec::new(); nodes.len()];
        for (&(n, a), &c) in &ikids {
            ichildren[n as usize].push((a, c));
        }
        for v in &mut ichildren {
            v.sort_unstable();
        }

        // Failure links, matches, and whether a node needs its own ideograph row, in
        // breadth-first order.
        let n_nodes = nodes.len();
        let mut fail = vec![0u32; n_nodes];
        let mut matched = vec![false; n_nodes];
        let mut own_row = vec![false; n_nodes];
        let mut order: Vec<u32> = Vec::with_capacity(n_nodes);
        order.push(0);
        let mut head = 0;
        while head < order.len() {
            let n = order[head];
            head += 1;
            let letter_kids = kids[n as usize];
            let all = (1..=26u32)
                .filter_map(|a| {
                    let c = letter_kids[a as usize];
                    (c != 0).then_some((a, c))
                })
                .chain(ichildren[n as usize].iter().copied());
            for (a, c) in all {
                let f = if n == 0 {
                    0
                } else {
                    let mut g = fail[n as usize];
                    loop {
                        if let Some(w) = child(&kids, &ikids, g, a) {
                            break w;
                        }
                        if g == 0 {
                            break 0;
                        }
                        g = fail[g as usize];
                    }
                };
                fail[c as usize] = f;
                matched[c as usize] = nodes[c as usize].term || matched[f as usize];
                order.push(c);
            }
            let f = fail[n as usize];
            own_row[n as usize] = n == 0
                || nodes[n as usize].last > 26
                || !ichildren[n as usize].is_empty()
                || (f != 0 && own_row[f as usize]);
        }

        // Numbering: the start, the sink, the nodes with ideograph rows, then the rest; nodes
        // where a pattern ends get no state (their transitions lead to the sink).
        let mut id = vec![u32::MAX; n_nodes];
        let mut next = 2u32;
        for pass in [true, false] {
            for &n in &order[1..] {
                if !matched[n as usize] && own_row[n as usize] == pass {
                    id[n as usize] = next;
                    next += 1;
                }
            }
            if pass {
                id[0] = 0;
            }
        }
        let rows = 2 + order[1..]
            .iter()
            .filter(|&&n| !matched[n as usize] && own_row[n as usize])
            .count();
        let states = next as usize;
        let mut ideographs_built = rows <= usize::from(u16::MAX);
        if states > (u32::MAX >> SHIFT) as usize {
            return None;
        }
        let target = |c: u32| -> u32 {
            if matched[c as usize] {
                1
            } else {
                id[c as usize]
            }
        };

        let mut depth = vec![0u8; states].into_boxed_slice();
        for (n, node) in nodes.iter().enumerate() {
            if !matched[n] {
                depth[id[n] as usize] = node.depth.min(255) as u8;
            }
        }
        // A power of two in length, so that a masked index needs no bounds check.
        let mut letters = vec![0u32; (states * STRIDE).next_power_of_two()].into_boxed_slice();
        // Ideograph transitions: the start's row by symbol (symbol 0, [`OTHER`], leads to
        // the start), every other row as its differences from it, sorted by symbol.
        let mut root = vec![0u16; k + 1];
        let mut own: Vec<Vec<(u16, u16)>> = if ideographs_built {
            vec![Vec::new(); rows]
        } else {
            Vec::new()
        };
        let mut differences = 0usize;
        // The sink.
        letters[STRIDE..2 * STRIDE].fill(MATCHED);
        for &n in &order {
            if matched[n as usize] {
                continue;
            }
            let s = id[n as usize] as usize;
            let f = fail[n as usize] as usize;
            let fs = id[f] as usize;
            for a in 1..=26usize {
                let c = kids[n as usize][a];
                letters[s * STRIDE + a] = if c != 0 {
                    target(c) << SHIFT
                } else if n == 0 {
                    START
                } else {
                    letters[fs * STRIDE + a]
                };
            }
            letters[s * STRIDE] = (s as u32) << SHIFT;
            let last = nodes[n as usize].last;
            if (1..=26).contains(&last) {
                letters[s * STRIDE + last as usize] = (s as u32) << SHIFT;
            }
            if ideographs_built && s < rows {
                // A row of its own: the failure node's row (the start's if it has none),
                // then the node's own children, then the loop on its own symbol.
                let mut row: Vec<(u16, u16)> = if n != 0 && fs < rows {
                    own[fs].clone()
                } else {
                    Vec::new()
                };
                let set = |row: &mut Vec<(u16, u16)>, y: u16, t: u16| match row
                    .binary_search_by_key(&y, |e| e.0)
                {
                    Ok(i) => row[i].1 = t,
                    Err(i) => row.insert(i, (y, t)),
                };
                for &(a, c) in &ichildren[n as usize] {
                    set(&mut row, (a - 26) as u16, target(c) as u16);
                }
                if last > 26 {
                    set(&mut row, (last - 26) as u16, s as u16);
                }
                if n == 0 {
                    for (y, t) in row.drain(..) {
                        root[usize::from(y)] = t;
                    }
                } else {
                    row.retain(|&(y, t)| root[usize::from(y)] != t);
                    differences += row.len();
                    own[s] = row;
                }
                if differences > MAX_IDEOGRAPH_DIFFERENCES {
                    ideographs_built = false;
                    own = Vec::new();
                }
            }
        }
        if ideographs_built {
            // The sink leads to itself on every symbol.
            own[1] = (0..=k as u16)
                .filter(|&y| root[usize::from(y)] != 1)
                .map(|y| (y, 1))
                .collect();
        }

        let exact: Vec<(char, u16)> = ideographs
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u16 + 1))
            .collect();
        let sym: Box<[u16]> = (FIRST_CJK..=LAST_CJK)
            .map(|u| {
                let Some(c) = char::from_u32(u) else {
                    return DROP;
                };
                if !normalize::is_cjk(c) {
                    // Punctuation and symbols: dropped, or read the general way.
                    let mut kept = false;
                    normalize::skeleton_rest(c, |k| {
                        kept |= if k.is_ascii() {
                            SKELETON[k as usize] != 0
                        } else {
                            normalize::is_cjk(k)
                        };
                    });
                    return if kept { GENERAL } else { DROP };
                }
                let s = crate::t2s::simplify(c);
                if !normalize::is_cjk(s) {
                    return DROP;
                }
                exact
                    .binary_search_by_key(&s, |p| p.0)
                    .map_or(OTHER, |i| exact[i].1)
            })
            .collect();
        let (root, offsets, exceptions) = if ideographs_built {
            let mut offsets = Vec::with_capacity(rows + 1);
            offsets.push(0u32);
            for row in &own {
                offsets.push(offsets[offsets.len() - 1] + row.len() as u32);
            }
            let exceptions: Box<[(u16, u16)]> = own.into_iter().flatten().collect();
            (
                root.into_boxed_slice(),
                offsets.into_boxed_slice(),
                exceptions,
            )
        } else {
            (Box::default(), Box::default(), Box::default())
        };
        Some(Self {
            letters,
            root,
            offsets,
            exceptions,
            rows: rows as u32,
            ideographs: ideographs_built,
            sym,
            exact,
            depth,
        })
    }

    /// Whether the skeleton of `text` holds a pattern. `true` also when the text holds
    /// ideographs and the ideograph rows were not built.
    pub(crate) fn hit(&self, text: &str) -> bool {
        if text.is_ascii() {
            self.hit_ascii(text.as_bytes())
        } else {
            self.hit_any(text)
        }
    }

    /// Whether the ideograph rows were built.
    #[cfg(test)]
    pub(crate) fn reads_ideographs(&self) -> bool {
        self.ideographs
    }

    /// Size of the tables, in bytes.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.letters.len() * 4
            + self.root.len() * 2
            + self.offsets.len() * 4
            + self.exceptions.len() * 4
            + self.sym.len() * 2
            + self.depth.len()
    }

    #[inline(always)]
    fn step(&self, s: u32, x: u8) -> u32 {
        step(&self.letters, s, x)
    }

    fn walk(&self, mut s: u32, b: &[u8]) -> u32 {
        for block in b.chunks(BLOCK) {
            for &x in block {
                s = self.step(s, x);
            }
            if s == MATCHED {
                break;
            }
        }
        s
    }

    /// An ASCII text: eight lanes for long texts. Lane `j` walks its eighth, then goes on
    /// past its end until its state stands for no more symbols than it has read there
    /// (see [`Skeletons::tail`]); the next lane starts afresh at that end and sees every
    /// occurrence starting there or later (a lane starting inside a run of one letter reads
    /// the run as the same symbol the whole text has there).
    fn hit_ascii(&self, b: &[u8]) -> bool {
        if b.len() < LANES * LANE_MIN {
            return self.walk(START, b) == MATCHED;
        }
        let t: &[u32] = &self.letters;
        if t.is_empty() {
            return false;
        }
        let q = b.len() / LANES;
        let lanes: [&[u8]; LANES] = std::array::from_fn(|k| &b[k * q..(k + 1) * q]);
        let mut s = [START; LANES];
        let mut i = 0;
        while i < q {
            let e = (i + BLOCK).min(q);
            #[expect(
                clippy::needless_range_loop,
                reason = "one index walks eight slices in lockstep"
            )]
            for j in i..e {
                for k in 0..LANES {
                    s[k] = step(t, s[k], lanes[k][j]);
                }
            }
            if s.contains(&MATCHED) {
                return true;
            }
            i = e;
        }
        self.walk(s[LANES - 1], &b[LANES * q..]) == MATCHED
            || (0..LANES - 1).any(|k| self.tail(s[k], b, (k + 1) * q))
    }

    /// Goes on from state `s`, reached just before byte `from` of `b`, for as long as an
    /// occurrence that started before `from` could still be under way; whether it reaches
    /// a match. A state of depth `d` means the last `d` symbols read are the start of some
    /// pattern, and no occurrence under way started earlier than that; once `d` is at
    /// most the number of symbols read from `from` on, every occurrence under way started
    /// at `from` or later, which the next lane sees.
    fn tail(&self, mut s: u32, b: &[u8], from: usize) -> bool {
        // The last symbol before `from`, so that a run going on past it is not counted.
        let mut last = b[..from]
            .iter()
            .rev()
            .map(|&x| SKELETON[usize::from(x)])
            .find(|&c| c != 0)
            .unwrap_or(0);
        let mut read = 0usize;
        for &x in &b[from..] {
            let d = self.depth[(s >> SHIFT) as usize];
            if d < u8::MAX && usize::from(d) <= read {
                break;
            }
            let c = SKELETON[usize::from(x)];
            if c != 0 && c != last {
                last = c;
                read += 1;
            }
            s = self.step(s, x);
        }
        s == MATCHED
    }

    /// Any text: ASCII bytes through the letter table, ideographs through their rows, any
    /// other character as `normalize::skeleton_rest` reads it.
    fn hit_any(&self, text: &str) -> bool {
        let b = text.as_bytes();
        let mut s = START;
        let mut i = 0;
        while i < b.len() {
            let x = b[i];
            if x < 0x80 {
                s = self.step(s, x);
                i += 1;
                continue;
            }
            if !self.ideographs {
                return true;
            }
            if (0xE3..=0xE9).contains(&x) && i + 2 < b.len() {
                let u = (u32::from(x & 0x0F) << 12)
                    | (u32::from(b[i + 1] & 0x3F) << 6)
                    | u32::from(b[i + 2] & 0x3F);
                if (FIRST_CJK..=LAST_CJK).contains(&u) {
                    i += 3;
                    s = match self.sym[(u - FIRST_CJK) as usize] {
                        GENERAL => self.rest(s, char::from_u32(u).unwrap_or(' ')),
                        y => self.ideograph(s, y),
                    };
                    if s == MATCHED {
                        return true;
                    }
                    continue;
                }
            }
            // Full-width forms (`，`, `！`, `Ａ`): their ASCII characters, lowercased.
            if x == 0xEF && i + 2 < b.len() {
                let u = (u32::from(x & 0x0F) << 12)
                    | (u32::from(b[i + 1] & 0x3F) << 6)
                    | u32::from(b[i + 2] & 0x3F);
                if (0xFF01..=0xFF5E).contains(&u) {
                    i += 3;
                    s = self.step(s, ((u - 0xFEE0) as u8).to_ascii_lowercase());
                    continue;
                }
            }
            let Some((c, len)) = normalize::decode(b, i) else {
                i += 1;
                continue;
            };
            i += len;
            s = self.rest(s, c);
            if s == MATCHED {
                return true;
            }
        }
        s == MATCHED
    }

    /// The transitions from `s` on what a non-ASCII character other than an ideograph of
    /// the common range puts into the skeleton (rare: kept out of the main loop).
    #[inline(never)]
    fn rest(&self, mut s: u32, c: char) -> u32 {
        normalize::skeleton_rest(c, |k| {
            s = if k.is_ascii() {
                self.step(s, k as u8)
            } else if normalize::is_cjk(k) {
                let y = self
                    .exact
                    .binary_search_by_key(&k, |p| p.0)
                    .map_or(OTHER, |i| self.exact[i].1);
                self.ideograph(s, y)
            } else {
                s
            };
        });
        s
    }

    /// The transition from `s` on ideograph symbol `y`.
    #[inline]
    fn ideograph(&self, s: u32, y: u16) -> u32 {
        match y {
            DROP => s,
            // (OTHER has a column of its own, so that the common case takes no branch.)
            y => {
                let row = s >> SHIFT;
                let row = if row < self.rows { row as usize } else { 0 };
                let mut t = self.root[usize::from(y)];
                if row > 0 {
                    let from = self.offsets[row] as usize;
                    let to = self.offsets[row + 1] as usize;
                    let ex = &self.exceptions[from..to];
                    if ex.len() <= 8 {
                        for &(ey, et) in ex {
                            if ey == y {
                                t = et;
                            }
                        }
                    } else if let Ok(i) = ex.binary_search_by_key(&y, |e| e.0) {
                        t = ex[i].1;
                    }
                }
                u32::from(t) << SHIFT
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::AhoCorasick;
    use proptest::prelude::*;

    fn automaton(pats: &[&str]) -> (Skeletons, AhoCorasick) {
        let chars: Vec<Vec<char>> = pats.iter().map(|p| p.chars().collect()).collect();
        let Some(a) = Skeletons::new(&chars) else {
            panic!("builds");
        };
        (a, AhoCorasick::new(pats).unwrap())
    }

    fn reference(ac: &AhoCorasick, text: &str) -> bool {
        let mut sk = Vec::new();
        normalize::skeleton(text, &mut sk);
        ac.is_match(sk.as_slice())
    }

    const PATS: [&str; 9] = [
        "kil",
        "myself",
        "die",
        "不想活",
        "想死",
        "sex",
        "ai",
        "ai伴侣",
        "后悔",
    ];

    #[test]
    fn reads_texts_as_their_skeletons() {
        let (a, ac) = automaton(&PATS);
        let cases = [
            ("", false),
            ("k i l l", true),
            ("K-I-L-L", true),
            ("k1ll", true),
            ("ki11", false),
            ("kiiiiil", true),
            ("kxil", false),
            ("d1e", true),
            ("d 1 3", true),
            ("di", false),
            ("我不想活了", true),
            ("我不想 活", true),
            ("我不想再活", false),
            ("想想死", true),
            ("想死死", true),
            ("後悔", true),
            ("后後悔", true),
            ("ＫＩＬＬ", true),
            ("k\u{200B}il", true),
            ("a\u{4DC0}i", true),
            ("a好i", false),
            ("ai 伴侣", true),
            ("a🙂i", true),
            ("ai了", true),
            ("a。i", true),
            ("d！e", true),
            ("k㎏", false),
            ("㎏ill", false),
            ("ki㎏", false),
            ("a了", false),
        ];
        for (t, want) in cases {
            assert_eq!(reference(&ac, t), want, "reference on {t:?}");
            assert_eq!(a.hit(t), want, "{t:?}");
        }
    }

    #[test]
    fn equals_a_search_of_the_skeleton() {
        let (a, ac) = automaton(&PATS);
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(
                &"[a-zA-Z0-9 !@$'.-]{0,40}|[a-z1 想死不活了們后後悔伴侣好ＫＩ！，。㎏㈠\u{3000}\u{200B}\u{4DC0}]{0,24}",
                |t| {
                    prop_assert_eq!(a.hit(&t), reference(&ac, &t));
                    // Long ASCII texts take the lanes.
                    if t.is_ascii() {
                        let long = format!("{}{t}{}", "xz".repeat(600), "qv ".repeat(300));
                        prop_assert_eq!(a.hit(&long), reference(&ac, &long));
                        let repeated = t.repeat(8);
                        prop_assert_eq!(a.hit(&repeated), reference(&ac, &repeated));
                    }
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn any_pattern_set_equals_a_search_of_the_skeleton() {
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(
                &(
                    proptest::collection::vec("[a-d想死活]{1,4}", 1..6),
                    "[a-d 想死活了們1ＡＢ]{0,30}",
                ),
                |(pats, t)| {
                    let pats: Vec<String> = pats
                        .iter()
                        .map(|p| normalize::skeleton_literal(p).into_iter().collect())
                        .collect();
                    let refs: Vec<&str> = pats.iter().map(String::as_str).collect();
                    let (a, ac) = automaton(&refs);
                    prop_assert_eq!(a.hit(&t), reference(&ac, &t), "{:?}", pats);
                    let long = format!("{}{t}{}", "xz".repeat(600), "qv ".repeat(300));
                    prop_assert_eq!(a.hit(&long), reference(&ac, &long), "{:?}", pats);
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn rows_with_many_ideograph_transitions() {
        // `我` starts twenty patterns: its row differs from the start's in twenty symbols
        // (read by binary search); `我们` fails to `们`, which starts a few.
        const SECOND: &str = "一二三四五六七八九十天地人心手口目耳山水";
        let mut pats: Vec<String> = SECOND.chars().map(|c| format!("我{c}")).collect();
        pats.extend(["们一", "们天", "你我们地"].map(str::to_owned));
        let refs: Vec<&str> = pats.iter().map(String::as_str).collect();
        let (a, ac) = automaton(&refs);
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(
                &"[我们你他一二三四五六七八九十天地人心手口目耳山水好a ]{0,16}",
                |t| {
                    prop_assert_eq!(a.hit(&t), reference(&ac, &t));
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn lanes_see_a_pattern_at_every_edge() {
        let (a, ac) = automaton(&PATS);
        // 2048 bytes: lanes of 256, a pattern (spread out and repeated) across each edge.
        for pat in ["die", "m-y--s-e-l-f", "mmyyseelf", "k i l"] {
            for at in (0..2048 - pat.len()).step_by(7).chain([
                253, 254, 255, 256, 509, 510, 511, 512, 767, 768, 1023, 1024, 1535, 1536, 1791,
                1792,
            ]) {
                let mut v: Vec<u8> = b"xz ".iter().copied().cycle().take(2048).collect();
                v[at..at + pat.len()].copy_from_slice(pat.as_bytes());
                let text = String::from_utf8(v).unwrap();
                assert_eq!(a.hit(&text), reference(&ac, &text), "{pat} at {at}");
                assert!(a.hit(&text), "{pat} at {at}");
            }
        }
        // A run of one letter across an edge, and no pattern at all.
        let mut v: Vec<u8> = b"xz ".iter().copied().cycle().take(2048).collect();
        v[500..520].fill(b'i');
        let text = String::from_utf8(v).unwrap();
        assert!(!a.hit(&text));
        assert_eq!(a.hit(&text), reference(&ac, &text));
    }

    #[test]
    fn patterns_inside_others_and_prefixes() {
        let (a, ac) = automaton(&["abcde", "bc", "abx", "ab"]);
        for t in ["abcde", "xbcx", "abx", "ab", "a", "b", "cde", "ac"] {
            assert_eq!(a.hit(t), reference(&ac, t), "{t}");
        }
    }

    #[test]
    fn rejects_patterns_outside_the_skeleton_alphabet() {
        assert!(Skeletons::new(&[vec!['A']]).is_none());
        assert!(Skeletons::new(&[vec!['é']]).is_none());
        let Some(empty) = Skeletons::new(&[]) else {
            panic!("builds")
        };
        assert!(!empty.hit("anything at all 什么"));
    }
}
