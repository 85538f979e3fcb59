//! Traditional → simplified Chinese, one character at a time, from a compact embedded table
//! (`data/t2s.txt`, derived from OpenCC's character table). Built once; the common ideographs
//! through a direct table, the rest by binary search.

use std::sync::OnceLock;

static TABLE: OnceLock<Vec<(char, char)>> = OnceLock::new();
static DIRECT: OnceLock<Direct> = OnceLock::new();

/// First and last code point of the direct-lookup range (CJK Extension A and the URO).
const LO: u32 = 0x3400;
const HI: u32 = 0x9FFF;

/// The range's mapping: a bit per character saying whether it changes (3.4 KB, which stays
/// in the cache: most characters of simplified text do not change), and its simplified form.
struct Direct {
    changes: Vec<u64>,
    to: Vec<char>,
}

fn direct() -> &'static Direct {
    DIRECT.get_or_init(|| {
        let n = (HI - LO + 1) as usize;
        let mut d = Direct {
            changes: vec![0; n.div_ceil(64)],
            to: (LO..=HI)
                .map(|u| char::from_u32(u).unwrap_or(' '))
                .collect(),
        };
        for &(t, s) in table() {
            let u = t as u32;
            if (LO..=HI).contains(&u) {
                let i = (u - LO) as usize;
                d.to[i] = s;
                if s != t {
                    d.changes[i / 64] |= 1 << (i % 64);
                }
            }
        }
        d
    })
}

fn table() -> &'static [(char, char)] {
    TABLE.get_or_init(|| {
        let mut pairs: Vec<(char, char)> = include_str!("../data/t2s.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let mut cs = l.chars();
                Some((cs.next()?, cs.next()?))
            })
            .collect();
        pairs.sort_unstable();
        pairs.dedup_by_key(|p| p.0);
        pairs
    })
}

/// The simplified form of `c`, or `c` itself.
pub fn simplify(c: char) -> char {
    let u = c as u32;
    if (LO..=HI).contains(&u) {
        let d = direct();
        let i = (u - LO) as usize;
        if d.changes
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
        {
            return d.to.get(i).copied().unwrap_or(c);
        }
        return c;
    }
    let t = table();
    match t.binary_search_by_key(&c, |p| p.0) {
        Ok(i) => t[i].1,
        Err(_) => c,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn simplifies() {
        assert_eq!(super::simplify('殺'), '杀');
        assert_eq!(super::simplify('我'), '我');
    }

    #[test]
    fn the_direct_range_equals_the_table() {
        let t = super::table();
        for u in super::LO..=super::HI {
            let Some(c) = char::from_u32(u) else { continue };
            let want = match t.binary_search_by_key(&c, |p| p.0) {
                Ok(i) => t[i].1,
                Err(_) => c,
            };
            assert_eq!(super::simplify(c), want, "{c}");
        }
    }
}
