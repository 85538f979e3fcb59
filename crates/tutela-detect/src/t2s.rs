//! Traditional → simplified Chinese, one character at a time, from a compact embedded table
//! (`data/t2s.txt`, derived from OpenCC's character table). Built once, then binary search.

use std::sync::OnceLock;

static TABLE: OnceLock<Vec<(char, char)>> = OnceLock::new();
static DIRECT: OnceLock<Vec<char>> = OnceLock::new();

/// First and last code point of the direct-lookup range (CJK Extension A and the URO).
const LO: u32 = 0x3400;
const HI: u32 = 0x9FFF;

fn direct() -> &'static [char] {
    DIRECT.get_or_init(|| {
        let mut v: Vec<char> = (LO..=HI)
            .map(|u| char::from_u32(u).unwrap_or(' '))
            .collect();
        for &(t, s) in table() {
            let u = t as u32;
            if (LO..=HI).contains(&u) {
                v[(u - LO) as usize] = s;
            }
        }
        v
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
        return direct()[(u - LO) as usize];
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
}
