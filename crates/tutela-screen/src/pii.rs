//! Personal-information detectors for corpus screening: e-mail addresses, phone numbers (CN
//! mobile, US NANP), CN resident ID numbers (with the GB 11643 checksum and a valid birth
//! date), US social security numbers (with the SSA's never-issued ranges excluded) and bank
//! card numbers (Luhn). One pass over the bytes, no regex: the scanner looks for `@` and for
//! runs of digits, and classifies each candidate by its digit groups.

use serde::{Deserialize, Serialize};

/// Which kind of personal information.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A CN mobile number (11 digits, `1[3-9]…`, optional `+86`).
    PhoneCn,
    /// A US (NANP) phone number in a written format (`(212) 555-0100`, `212-555-0100`, `+1 …`).
    PhoneUs,
    /// A CN resident identity card number (18 characters, checksum and birth date valid).
    CnResidentId,
    /// A US social security number `AAA-GG-SSSS` outside the never-issued ranges.
    UsSsn,
    /// A payment card number (13–19 digits, Luhn-valid, issuer prefix 2–6).
    BankCard,
}

impl PiiKind {
    /// Every kind, in report order.
    pub const ALL: [PiiKind; 6] = [
        PiiKind::Email,
        PiiKind::PhoneCn,
        PiiKind::PhoneUs,
        PiiKind::CnResidentId,
        PiiKind::UsSsn,
        PiiKind::BankCard,
    ];

    /// The stable name (`email`, `phone_cn`, ...), used in reasons as `pii:<name>`.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::PhoneCn => "phone_cn",
            PiiKind::PhoneUs => "phone_us",
            PiiKind::CnResidentId => "cn_resident_id",
            PiiKind::UsSsn => "us_ssn",
            PiiKind::BankCard => "bank_card",
        }
    }
}

/// One piece of personal information found: its kind and byte range in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PiiHit {
    /// What it is.
    pub kind: PiiKind,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// Finds every piece of personal information in `text`, in text order.
pub fn scan(text: &str) -> Vec<PiiHit> {
    let mut out = Vec::new();
    scan_into(text, &mut out);
    out
}

/// Like [`scan`], appending to `out` (reuse the vector across documents).
pub fn scan_into(text: &str, out: &mut Vec<PiiHit>) {
    let b = text.as_bytes();
    scan_emails(b, out);
    scan_numbers(b, out);
    out.sort_by_key(|h| h.start);
}

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

fn scan_emails(b: &[u8], out: &mut Vec<PiiHit>) {
    let mut from = 0;
    while let Some(rel) = memchr::memchr(b'@', &b[from..]) {
        let at = from + rel;
        from = at + 1;
        let mut s = at;
        while s > 0 && is_local(b[s - 1]) {
            s -= 1;
        }
        while s < at && matches!(b[s], b'.' | b'-' | b'+') {
            s += 1;
        }
        if s == at {
            continue;
        }
        let mut e = at + 1;
        while e < b.len() && is_domain(b[e]) {
            e += 1;
        }
        while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
            e -= 1;
        }
        let domain = &b[at + 1..e];
        let Some(dot) = domain.iter().rposition(|&c| c == b'.') else {
            continue;
        };
        let tld = &domain[dot + 1..];
        if dot == 0 || tld.len() < 2 || !tld.iter().all(u8::is_ascii_alphabetic) {
            continue;
        }
        out.push(PiiHit {
            kind: PiiKind::Email,
            start: s,
            end: e,
        });
        from = e;
    }
}

/// A candidate number: its byte range, its digits (and a trailing `X` of a CN ID), the length
/// of each digit group, and the separators between groups.
struct Candidate {
    start: usize,
    end: usize,
    digits: Vec<u8>,
    groups: Vec<usize>,
    seps: Vec<u8>,
    plus: bool,
    paren_first: bool,
}

fn scan_numbers(b: &[u8], out: &mut Vec<PiiHit>) {
    let mut i = 0;
    let mut cand = Candidate {
        start: 0,
        end: 0,
        digits: Vec::with_capacity(24),
        groups: Vec::with_capacity(6),
        seps: Vec::with_capacity(6),
        plus: false,
        paren_first: false,
    };
    while i < b.len() {
        // Most text holds no number: skip 32 bytes at a time (a byte-wide OR the compiler
        // vectorises) to the block holding the next digit, `(` or `+`, then straight to it.
        let wanted = |c: u8| (c.wrapping_sub(b'0') < 10) | (c == b'(') | (c == b'+');
        while i + 32 <= b.len() {
            let block = &b[i..i + 32];
            if block.iter().fold(0u8, |acc, &c| acc | u8::from(wanted(c))) != 0 {
                i += block.iter().position(|&c| wanted(c)).unwrap_or(0);
                break;
            }
            i += 32;
        }
        if i >= b.len() {
            break;
        }
        let c = b[i];
        let starts_paren = c == b'(' && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        let starts_plus = c == b'+' && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        if !(c.is_ascii_digit() || starts_paren || starts_plus) {
            i += 1;
            continue;
        }
        // A number glued to letters or digits on the left (`abc123`, `x9`) is an identifier.
        if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
            // Past the `(` or `+` itself (`2+2`, `f(1)`), then the rest of the identifier.
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            continue;
        }
        cand.start = i;
        cand.digits.clear();
        cand.groups.clear();
        cand.seps.clear();
        cand.plus = starts_plus;
        cand.paren_first = starts_paren;
        if starts_plus || starts_paren {
            i += 1;
        }
        let mut group = 0usize;
        loop {
            while i < b.len() && b[i].is_ascii_digit() {
                cand.digits.push(b[i]);
                group += 1;
                i += 1;
            }
            cand.groups.push(group);
            group = 0;
            if cand.digits.len() > 24 {
                break;
            }
            // A separator continues the number only when a digit follows it.
            let (sep, skip) = match (b.get(i), b.get(i + 1), b.get(i + 2)) {
                (Some(b')'), Some(b' '), Some(d))
                    if d.is_ascii_digit() && cand.paren_first && cand.groups.len() == 1 =>
                {
                    (b')', 2)
                }
                (Some(b')'), Some(d), _)
                    if d.is_ascii_digit() && cand.paren_first && cand.groups.len() == 1 =>
                {
                    (b')', 1)
                }
                (Some(&s), Some(d), _) if matches!(s, b' ' | b'-' | b'.') && d.is_ascii_digit() => {
                    (s, 1)
                }
                _ => break,
            };
            cand.seps.push(sep);
            i += skip;
        }
        // A trailing X/x completes an 18-character CN resident ID.
        if cand.groups.len() == 1
            && cand.digits.len() == 17
            && b.get(i).is_some_and(|&c| c == b'X' || c == b'x')
            && !b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            cand.digits.push(b'X');
            i += 1;
        }
        cand.end = i;
        // Glued to letters on the right: an identifier, not a number.
        if b.get(i)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        {
            continue;
        }
        if let Some(kind) = classify(&cand) {
            out.push(PiiHit {
                kind,
                start: cand.start,
                end: cand.end,
            });
        }
    }
}

fn classify(c: &Candidate) -> Option<PiiKind> {
    let d = &c.digits;
    let n = d.len();
    if n < 9 {
        return None;
    }
    let all_sep = |s: u8| c.seps.iter().all(|&x| x == s);
    // CN resident ID: one group of 18.
    if c.groups.len() == 1 && n == 18 && !c.plus && !c.paren_first && cn_id_valid(d) {
        return Some(PiiKind::CnResidentId);
    }
    // US SSN: 3-2-4 with dashes.
    if c.groups == [3, 2, 4] && all_sep(b'-') && !c.plus && !c.paren_first && ssn_valid(d) {
        return Some(PiiKind::UsSsn);
    }
    // CN mobile: 11 digits 1[3-9], optionally +86 / 86 prefix; groups 11, 3-4-4 or 3-8.
    let cn_body: Option<(&[u8], &[usize])> =
        if c.plus && d.starts_with(b"86") && c.groups.first() == Some(&2) {
            Some((&d[2..], &c.groups[1..]))
        } else if c.plus && d.starts_with(b"86") && c.groups.len() == 1 && n == 13 {
            Some((&d[2..], &[11][..]))
        } else if !c.plus && !c.paren_first {
            Some((&d[..], &c.groups[..]))
        } else {
            None
        };
    if let Some((body, groups)) = cn_body
        && body.len() == 11
        && body[0] == b'1'
        && (b'3'..=b'9').contains(&body[1])
        && matches!(groups, [11] | [3, 4, 4] | [3, 8])
    {
        return Some(PiiKind::PhoneCn);
    }
    // US phone: (NXX) NXX-XXXX, NXX-NXX-XXXX, NXX.NXX.XXXX, NXX NXX XXXX, +1 NXX NXX XXXX.
    let us_body: Option<&[u8]> = match c.groups.as_slice() {
        [3, 3, 4] if !c.plus => Some(&d[..]),
        [1, 3, 3, 4] if d[0] == b'1' && (c.plus || c.seps[0] == b' ' || c.seps[0] == b'-') => {
            Some(&d[1..])
        }
        _ => None,
    };
    if let Some(body) = us_body
        && body.len() == 10
        && (b'2'..=b'9').contains(&body[0])
        && (b'2'..=b'9').contains(&body[3])
    {
        let tail_seps = &c.seps[c.seps.len() - 2..];
        let consistent = tail_seps[0] == tail_seps[1] || (c.paren_first && tail_seps[1] == b'-');
        if consistent {
            return Some(PiiKind::PhoneUs);
        }
    }
    // Bank card: 13–19 digits, one group or groups of 4 (last shorter) or 4-6-5 / 4-6-4.
    if (13..=19).contains(&n) && !c.plus && !c.paren_first && d.iter().all(u8::is_ascii_digit) {
        let g = c.groups.as_slice();
        let grouped_by_four = g.len() >= 3
            && g[..g.len() - 1].iter().all(|&x| x == 4)
            && (1..=4).contains(&g[g.len() - 1])
            && (all_sep(b' ') || all_sep(b'-'));
        let amex = (g == [4, 6, 5] || g == [4, 6, 4]) && (all_sep(b' ') || all_sep(b'-'));
        if (g.len() == 1 || grouped_by_four || amex)
            && (b'2'..=b'6').contains(&d[0])
            && luhn_valid(d)
        {
            return Some(PiiKind::BankCard);
        }
    }
    None
}

/// The Luhn checksum of a digit string.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &c) in digits.iter().rev().enumerate() {
        if !c.is_ascii_digit() {
            return false;
        }
        let mut v = u32::from(c - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// GB 11643-1999: 17 digits, a birth date `YYYYMMDD` at 7–14, and a check character from the
/// ISO 7064 MOD 11-2 sum (`X` for 10).
pub fn cn_id_valid(id: &[u8]) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    if id.len() != 18 || !id[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        id[r]
            .iter()
            .fold(0u32, |a, &c| a * 10 + u32::from(c - b'0'))
    };
    let (year, month, day) = (num(6..10), num(10..12), num(12..14));
    if !(1900..=2099).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    if !(b'1'..=b'9').contains(&id[0]) {
        return false;
    }
    let sum: u32 = id[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(&c, w)| u32::from(c - b'0') * w)
        .sum();
    let want = CHECK[(sum % 11) as usize];
    id[17].to_ascii_uppercase() == want
}

/// The check character a CN resident ID with these 17 digits must end with.
pub fn cn_id_check_char(first17: &[u8]) -> Option<u8> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(&c, w)| u32::from(c - b'0') * w)
        .sum();
    Some(b"10X98765432"[(sum % 11) as usize])
}

/// SSA rules: area not 000, 666 or 900–999; group not 00; serial not 0000.
fn ssn_valid(d: &[u8]) -> bool {
    let area = &d[0..3];
    area != b"000" && area != b"666" && area[0] != b'9' && &d[3..5] != b"00" && &d[5..9] != b"0000"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(PiiKind, &str)> {
        scan(text)
            .into_iter()
            .map(|h| (h.kind, &text[h.start..h.end]))
            .collect()
    }

    #[test]
    fn emails() {
        assert_eq!(
            kinds("mail me: jane.doe+x@example.co.uk."),
            vec![(PiiKind::Email, "jane.doe+x@example.co.uk")]
        );
        assert_eq!(
            kinds("联系我 li_lei@qq.com 谢谢"),
            vec![(PiiKind::Email, "li_lei@qq.com")]
        );
        assert!(kinds("at @home, a@b, x@y.z1, @@").is_empty());
    }

    #[test]
    fn phones() {
        assert_eq!(
            kinds("电话13812345678。"),
            vec![(PiiKind::PhoneCn, "13812345678")]
        );
        assert_eq!(
            kinds("call +86 138 1234 5678"),
            vec![(PiiKind::PhoneCn, "+86 138 1234 5678")]
        );
        assert_eq!(
            kinds("call (212) 555-0142 now"),
            vec![(PiiKind::PhoneUs, "(212) 555-0142")]
        );
        assert_eq!(
            kinds("or 415-555-0199."),
            vec![(PiiKind::PhoneUs, "415-555-0199")]
        );
        assert_eq!(
            kinds("or +1 415 555 0199."),
            vec![(PiiKind::PhoneUs, "+1 415 555 0199")]
        );
        assert!(kinds("12812345678 and 123-456-7890 and 2024 2025").is_empty());
    }

    #[test]
    fn ids_ssn_cards() {
        // 11010519491231002X is the textbook example with a valid check character.
        assert_eq!(
            kinds("身份证11010519491231002X。"),
            vec![(PiiKind::CnResidentId, "11010519491231002X")]
        );
        assert!(kinds("身份证110105194912310021").is_empty());
        assert_eq!(
            kinds("SSN 123-45-6789."),
            vec![(PiiKind::UsSsn, "123-45-6789")]
        );
        assert!(kinds("000-12-3456 666-12-3456 912-12-3456 123-00-4567").is_empty());
        assert_eq!(
            kinds("card 4111 1111 1111 1111 ok"),
            vec![(PiiKind::BankCard, "4111 1111 1111 1111")]
        );
        assert_eq!(
            kinds("amex 3782-822463-10005"),
            vec![(PiiKind::BankCard, "3782-822463-10005")]
        );
        assert!(kinds("4111 1111 1111 1112").is_empty());
        assert!(kinds("order abc4111111111111111").is_empty());
    }

    #[test]
    fn check_char_agrees() {
        assert_eq!(cn_id_check_char(b"11010519491231002"), Some(b'X'));
        assert!(luhn_valid(b"79927398713"));
        assert!(!luhn_valid(b"79927398710"));
    }

    #[test]
    fn a_sign_or_parenthesis_glued_to_a_word_ends_the_scan() {
        // These once looped forever: `+` or `(` after a letter or digit, before a digit.
        for t in ["2+2", "n+1 and f(1)", "x(5", "a+1", "1(2)3 555-0100"] {
            let _ = scan(t);
        }
        assert!(
            scan("call f(1) or +1 415 555 0100")
                .iter()
                .any(|h| h.kind == PiiKind::PhoneUs)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_spans_are_char_boundaries(s in "\\PC{0,80}") {
            for h in scan(&s) {
                proptest::prop_assert!(s.is_char_boundary(h.start) && s.is_char_boundary(h.end));
            }
        }
    }
}
