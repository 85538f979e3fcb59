//! Traditional → simplified Chinese, one character at a time, from a compact embedded table
//! (`data/t2s.txt`, derived from OpenCC's character table). Built once, then binary search.

use std::sync::OnceLock;

static TABLE: OnceLock<Vec<(char, char)>> = OnceLock::new();

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
