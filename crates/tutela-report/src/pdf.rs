//! PDF rendering of a report's [`Document`]: A4 pages of text, tables and bar charts, written
//! by hand so that the binary needs no PDF or font crate (issue 14: "downloadable (HTML,
//! Markdown, JSON, and PDF)").
//!
//! The file is plain ASCII (PDF 1.4, uncompressed streams, every string in hex), so it is easy
//! to inspect and to test. Latin text uses the standard Helvetica fonts (WinAnsi encoding; their
//! widths are below, so lines wrap where they should); text with characters WinAnsi lacks (Chinese)
//! uses Adobe's standard `STSong-Light` CID font with the `UniGB-UCS2-H` encoding, which PDF
//! readers supply themselves (the font is named, not embedded): the file stays small and no font
//! file ships with tutela. Characters outside the Basic Multilingual Plane are written as `?`.

use std::fmt::Write as _;

use crate::render::{Block, Document, Lang, Section, gauge_text, no_records, thousands};

const PAGE_W: f64 = 595.0;
const PAGE_H: f64 = 842.0;
const MARGIN: f64 = 50.0;
const TEXT_W: f64 = PAGE_W - 2.0 * MARGIN;

/// Helvetica's advance widths (thousandths of the size) for ASCII 32..=126.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

/// Helvetica-Bold's advance widths for ASCII 32..=126.
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667,
    611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556,
    278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];

/// A font of the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Font {
    Regular,
    Bold,
    /// `STSong-Light`, for the characters WinAnsi cannot encode.
    Cjk,
    /// Text with characters WinAnsi lacks: set in runs, those characters in `STSong-Light`, the
    /// rest in Helvetica (bold when `true`).
    Mixed(bool),
}

impl Font {
    fn name(self) -> &'static str {
        match self {
            Font::Regular | Font::Mixed(false) => "F1",
            Font::Bold | Font::Mixed(true) => "F2",
            Font::Cjk => "F3",
        }
    }
}

/// `text` in runs of one font each: a mixed text's WinAnsi characters in Helvetica, the others
/// in the CJK font; any other font's text in one run.
fn runs(font: Font, text: &str) -> Vec<(Font, String)> {
    let Font::Mixed(bold) = font else {
        return vec![(font, text.to_owned())];
    };
    let latin = if bold { Font::Bold } else { Font::Regular };
    let mut out: Vec<(Font, String)> = Vec::new();
    for c in text.chars() {
        let f = if win_ansi(c).is_some() {
            latin
        } else {
            Font::Cjk
        };
        match out.last_mut() {
            Some((last, run)) if *last == f => run.push(c),
            _ => out.push((f, c.to_string())),
        }
    }
    out
}

/// A text object at `(x, y)`: each run with its font; the reader advances between them by the
/// fonts' own widths (Helvetica's metrics, the CJK font's `/W`).
fn text_op(x: f64, y: f64, font: Font, size: f64, text: &str) -> String {
    let mut o = format!("BT {x:.2} {y:.2} Td");
    for (f, run) in runs(font, text) {
        let _ = write!(o, " /{} {size:.1} Tf {} Tj", f.name(), hex(f, &run));
    }
    o.push_str(" ET");
    o
}

/// The WinAnsi byte of `c`, if it has one.
fn win_ansi(c: char) -> Option<u8> {
    let u = u32::from(c);
    match u {
        0x20..=0x7E | 0xA0..=0xFF => u8::try_from(u).ok(),
        _ => match c {
            '€' => Some(0x80),
            '…' => Some(0x85),
            '‘' => Some(0x91),
            '’' => Some(0x92),
            '“' => Some(0x93),
            '”' => Some(0x94),
            '•' => Some(0x95),
            '–' => Some(0x96),
            '—' => Some(0x97),
            _ => None,
        },
    }
}

/// The font a piece of text is set in: Helvetica (regular or bold) when WinAnsi encodes every
/// character, else runs of Helvetica and the CJK font.
fn font_for(text: &str, bold: bool) -> Font {
    if text.chars().all(|c| c == '\n' || win_ansi(c).is_some()) {
        if bold { Font::Bold } else { Font::Regular }
    } else {
        Font::Mixed(bold)
    }
}

/// Advance width of `c` in thousandths of the font size.
fn char_width(font: Font, c: char) -> f64 {
    if let Font::Mixed(bold) = font {
        return match (win_ansi(c), bold) {
            (None, _) => 1000.0,
            (Some(_), false) => char_width(Font::Regular, c),
            (Some(_), true) => char_width(Font::Bold, c),
        };
    }
    let ascii = u32::from(c).checked_sub(32).filter(|i| *i < 95);
    let w = match (font, ascii) {
        (Font::Cjk, Some(_)) => 500,
        (Font::Cjk | Font::Mixed(_), None) => 1000,
        (Font::Regular | Font::Mixed(false), Some(i)) => HELVETICA[i as usize],
        (Font::Bold | Font::Mixed(true), Some(i)) => HELVETICA_BOLD[i as usize],
        (_, None) => match c {
            '—' | '…' => 1000,
            '’' | '‘' => 222,
            '“' | '”' => 333,
            '•' => 350,
            '·' => 278,
            _ => 556,
        },
    };
    f64::from(w)
}

fn width(font: Font, size: f64, text: &str) -> f64 {
    text.chars().map(|c| char_width(font, c)).sum::<f64>() * size / 1000.0
}

/// Whether a line may break before `c` without a space (ideographs and full-width forms).
fn wide(c: char) -> bool {
    matches!(u32::from(c), 0x2E80..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF)
}

/// `text` cut into lines no wider than `max`: at spaces, around ideographs, and inside a word
/// only when the word alone is wider than the line.
fn wrap(font: Font, size: f64, text: &str, max: f64) -> Vec<String> {
    let mut out = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        let mut line_w = 0.0;
        // Where the line may be cut: a byte index into `line` and the width up to it.
        let mut cut: Option<usize> = None;
        for c in para.chars() {
            let w = char_width(font, c) * size / 1000.0;
            if line_w + w > max && !line.is_empty() && c != ' ' {
                let at = cut.unwrap_or(line.len());
                let rest = line.split_off(at);
                out.push(line.trim_end().to_owned());
                line = rest.trim_start().to_owned();
                line_w = width(font, size, &line);
                cut = None;
            }
            if c == ' ' || wide(c) {
                cut = Some(line.len() + usize::from(c == ' '));
            }
            line.push(c);
            line_w += w;
            if wide(c) {
                cut = Some(line.len());
            }
        }
        out.push(line.trim_end().to_owned());
    }
    out
}

/// A PDF string (hex) of `text` in `font`.
fn hex(font: Font, text: &str) -> String {
    let mut o = String::with_capacity(text.len() * 4 + 2);
    o.push('<');
    for c in text.chars() {
        match font {
            Font::Cjk => {
                let u = u16::try_from(u32::from(c)).unwrap_or(u16::from(b'?'));
                let _ = write!(o, "{u:04X}");
            }
            _ => {
                let _ = write!(o, "{:02X}", win_ansi(c).unwrap_or(b'?'));
            }
        }
    }
    o.push('>');
    o
}

/// Lays a document out on pages: each page is its content stream.
struct Pages {
    done: Vec<String>,
    cur: String,
    /// The baseline of the next line, from the bottom of the page.
    y: f64,
}

impl Pages {
    fn new() -> Self {
        Self {
            done: Vec::new(),
            cur: String::new(),
            y: PAGE_H - MARGIN,
        }
    }

    /// Starts a new page unless `h` points still fit on this one.
    fn need(&mut self, h: f64) {
        if self.y - h < MARGIN + 20.0 && !self.cur.is_empty() {
            self.done.push(std::mem::take(&mut self.cur));
            self.y = PAGE_H - MARGIN;
        }
    }

    fn text_at(&mut self, x: f64, y: f64, font: Font, size: f64, text: &str) {
        if text.is_empty() {
            return;
        }
        self.cur.push_str(&text_op(x, y, font, size, text));
        self.cur.push('\n');
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, gray: f64) {
        let _ = writeln!(self.cur, "{gray:.2} g {x:.2} {y:.2} {w:.2} {h:.2} re f 0 g");
    }

    fn rule(&mut self, x: f64, y: f64, w: f64) {
        let _ = writeln!(
            self.cur,
            "0.6 G 0.5 w {x:.2} {y:.2} m {:.2} {y:.2} l S 0 G",
            x + w
        );
    }

    /// A wrapped paragraph at the left margin (indented by `indent`).
    fn para(&mut self, text: &str, bold: bool, size: f64, indent: f64) {
        let font = font_for(text, bold);
        let lead = size * 1.35;
        for line in wrap(font, size, text, TEXT_W - indent) {
            self.need(lead);
            self.y -= lead;
            self.text_at(MARGIN + indent, self.y, font, size, &line);
        }
    }

    fn gap(&mut self, h: f64) {
        self.y -= h;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.cur.is_empty() || self.done.is_empty() {
            self.done.push(self.cur);
        }
        self.done
    }
}

/// Rows of cells in columns of the given widths: each cell wrapped, a row as tall as its
/// tallest cell, a page break between rows (the header repeated).
fn table(p: &mut Pages, head: &[String], rows: &[Vec<String>], widths: &[f64], size: f64) {
    let lead = size * 1.3;
    let draw = |p: &mut Pages, cells: &[String], bold: bool| {
        let wrapped: Vec<(Font, Vec<String>)> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| {
                let f = font_for(c, bold);
                (f, wrap(f, size, c, w - 6.0))
            })
            .collect();
        let lines = wrapped.iter().map(|(_, l)| l.len()).max().unwrap_or(1);
        let h = lead * lines as f64 + 3.0;
        p.need(h);
        let top = p.y;
        let mut x = MARGIN;
        for ((f, ls), w) in wrapped.iter().zip(widths) {
            for (i, l) in ls.iter().enumerate() {
                p.text_at(x, top - lead * (i as f64 + 1.0), *f, size, l);
            }
            x += w;
        }
        p.y = top - h;
        p.rule(MARGIN, p.y + 1.0, widths.iter().sum());
    };
    // Never a header alone at the foot of a page: room for it and a row or two first.
    p.need(lead * 5.0);
    draw(p, head, true);
    for r in rows {
        let page = p.done.len();
        draw(p, r, false);
        if p.done.len() != page {
            // The row opened a new page: put the header above it there.
            p.cur.clear();
            p.y = PAGE_H - MARGIN;
            draw(p, head, true);
            draw(p, r, false);
        }
    }
}

/// Column widths for a table: by the longest text of each column, each at least a share.
fn column_widths(head: &[String], rows: &[Vec<String>]) -> Vec<f64> {
    let n = head.len().max(1);
    let longest: Vec<f64> = (0..n)
        .map(|i| {
            let cells = std::iter::once(head.get(i)).chain(rows.iter().map(|r| r.get(i)));
            let most = cells
                .flatten()
                .map(|c| {
                    c.chars()
                        .map(|ch| if wide(ch) { 2 } else { 1 })
                        .sum::<usize>()
                })
                .max()
                .unwrap_or(1);
            most.clamp(4, 60) as f64
        })
        .collect();
    let total: f64 = longest.iter().sum();
    longest.iter().map(|l| TEXT_W * l / total).collect()
}

fn bars(p: &mut Pages, caption: &str, unit: &str, bars: &[(String, f64)], lang: Lang) {
    let head = match lang {
        Lang::En => format!("{caption} ({unit})"),
        Lang::Zh => format!("{caption}（{unit}）"),
    };
    p.para(&head, true, 9.5, 0.0);
    if bars.is_empty() {
        p.para(no_records(lang), false, 9.0, 0.0);
        return;
    }
    let max = bars.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max);
    let (label_w, value_w) = (TEXT_W * 0.3, 70.0);
    let bar_w = TEXT_W - label_w - value_w;
    for (label, v) in bars {
        p.need(12.0);
        p.y -= 12.0;
        let f = font_for(label, false);
        let label = wrap(f, 8.0, label, label_w - 6.0)
            .into_iter()
            .next()
            .unwrap_or_default();
        p.text_at(MARGIN, p.y, f, 8.0, &label);
        let w = if max > 0.0 { bar_w * v / max } else { 0.0 };
        p.rect(MARGIN + label_w, p.y - 1.0, w.max(0.5), 8.0, 0.45);
        let value = if v.fract() == 0.0 && *v >= 0.0 {
            thousands(*v as u64)
        } else {
            format!("{v:.1}")
        };
        p.text_at(
            MARGIN + label_w + bar_w + 6.0,
            p.y,
            Font::Regular,
            8.0,
            &value,
        );
    }
    p.gap(6.0);
}

fn gauge(p: &mut Pages, t: &crate::model::ThresholdStatus, lang: Lang) {
    let g = gauge_text(t, lang);
    let colon = lang.t(": ", "：");
    p.para(
        &format!("{}{colon}{} — {}", g.metric, g.figures, g.state),
        true,
        9.5,
        0.0,
    );
    p.need(16.0);
    p.y -= 14.0;
    p.rect(MARGIN, p.y, TEXT_W, 8.0, 0.88);
    p.rect(MARGIN, p.y, TEXT_W * t.ratio.clamp(0.0, 1.0), 8.0, 0.35);
    let warn = MARGIN + TEXT_W * t.warn_ratio.clamp(0.0, 1.0);
    p.rect(warn, p.y - 2.0, 1.0, 12.0, 0.0);
    p.para(&g.source, false, 8.0, 0.0);
    p.gap(4.0);
}

fn block(p: &mut Pages, b: &Block, lang: Lang) {
    match b {
        Block::Para(t) => {
            p.para(t, false, 9.5, 0.0);
            p.gap(4.0);
        }
        Block::Facts(kv) => {
            let rows: Vec<Vec<String>> =
                kv.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
            let widths = [TEXT_W * 0.55, TEXT_W * 0.45];
            for r in &rows {
                let lead = 9.0 * 1.3;
                let fk = font_for(&r[0], false);
                let fv = font_for(&r[1], false);
                let ks = wrap(fk, 9.0, &r[0], widths[0] - 6.0);
                let vs = wrap(fv, 9.0, &r[1], widths[1] - 6.0);
                let h = lead * ks.len().max(vs.len()) as f64 + 2.0;
                p.need(h);
                let top = p.y;
                for (i, l) in ks.iter().enumerate() {
                    p.text_at(MARGIN, top - lead * (i as f64 + 1.0), fk, 9.0, l);
                }
                for (i, l) in vs.iter().enumerate() {
                    p.text_at(
                        MARGIN + widths[0],
                        top - lead * (i as f64 + 1.0),
                        fv,
                        9.0,
                        l,
                    );
                }
                p.y = top - h;
            }
            p.gap(6.0);
        }
        Block::Table { head, rows } => {
            if rows.is_empty() {
                p.para(no_records(lang), false, 9.0, 0.0);
            } else {
                let size = if head.len() > 5 { 7.0 } else { 8.0 };
                table(p, head, rows, &column_widths(head, rows), size);
            }
            p.gap(8.0);
        }
        Block::Bars {
            caption,
            unit,
            bars: b,
        } => bars(p, caption, unit, b, lang),
        Block::Gauge(t) => gauge(p, t, lang),
    }
}

fn section(p: &mut Pages, s: &Section, lang: Lang) {
    p.need(60.0);
    p.gap(10.0);
    p.para(&s.title, true, 13.0, 0.0);
    if s.needs_human_input {
        p.para(
            lang.t(
                "NEEDS HUMAN INPUT: a person must complete this section.",
                "需人工填写：本节须由人工完成。",
            ),
            true,
            9.0,
            0.0,
        );
    }
    p.gap(4.0);
    for b in &s.blocks {
        block(p, b, lang);
    }
}

/// The document as a PDF file.
pub fn pdf(doc: &Document) -> Vec<u8> {
    let mut p = Pages::new();
    p.para(&doc.title, true, 18.0, 0.0);
    p.gap(6.0);
    let colon = doc.lang.t(": ", "：");
    for (k, v) in &doc.meta {
        p.para(&format!("{k}{colon}{v}"), false, 9.0, 0.0);
    }
    for s in &doc.sections {
        section(&mut p, s, doc.lang);
    }
    let pages = p.finish();
    assemble(&doc.title, pages)
}

/// The objects around the page contents: catalog, page tree, fonts, pages (with a footer),
/// the cross-reference table and the trailer.
fn assemble(title: &str, pages: Vec<String>) -> Vec<u8> {
    const FIXED: usize = 8; // catalog, pages, three fonts, CID font, descriptor, info
    let n = pages.len();
    let mut objects: Vec<String> = Vec::with_capacity(FIXED + 2 * n);
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    let kids: Vec<String> = (0..n)
        .map(|i| format!("{} 0 R", FIXED + 1 + 2 * i))
        .collect();
    objects.push(format!(
        "<< /Type /Pages /Kids [{}] /Count {n} >>",
        kids.join(" ")
    ));
    objects.push(
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into(),
    );
    objects.push(
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
            .into(),
    );
    objects.push(
        "<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /DescendantFonts [6 0 R] >>".into(),
    );
    objects.push(
        "<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> /FontDescriptor 7 0 R /DW 1000 /W [1 95 500] >>".into(),
    );
    objects.push(
        "<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>".into(),
    );
    let utf16: String = std::iter::once(0xFEFF_u16)
        .chain(title.encode_utf16())
        .map(|u| format!("{u:04X}"))
        .collect();
    objects.push(format!("<< /Title <{utf16}> /Producer (tutela) >>"));
    let resources = "<< /Font << /F1 3 0 R /F2 4 0 R /F3 5 0 R >> >>";
    for (i, mut content) in pages.into_iter().enumerate() {
        let footer = format!("{title} · {} / {n}", i + 1);
        let op = text_op(MARGIN, 30.0, font_for(&footer, false), 7.5, &footer);
        let _ = writeln!(content, "0.4 g {op} 0 g");
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] /Resources {resources} /Contents {} 0 R >>",
            FIXED + 2 + 2 * i
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ));
    }
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        let _ = write!(out, "{} 0 obj\n{o}\nendobj\n", i + 1);
    }
    let xref = out.len();
    let _ = write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for off in offsets {
        let _ = writeln!(out, "{off:010} 00000 n ");
    }
    let _ = write!(
        out,
        "trailer\n<< /Size {} /Root 1 0 R /Info {FIXED} 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.into_bytes()
}

/// The text shown by a PDF this module wrote, one string per text object: for tests, here and
/// in the crates that serve the PDF (it reads only what [`pdf`] writes).
pub fn shown_text(pdf: &[u8]) -> Vec<String> {
    let s = String::from_utf8_lossy(pdf);
    let mut out = Vec::new();
    for line in s.lines() {
        let Some(at) = line.find("BT ") else {
            continue;
        };
        let (mut cjk, mut text) = (false, String::new());
        for token in line[at..].split(' ') {
            if token.starts_with("/F") {
                cjk = token == "/F3";
            } else if let Some(h) = token.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
                let digits: Vec<u32> = h.chars().filter_map(|c| c.to_digit(16)).collect();
                let width = if cjk { 4 } else { 2 };
                for d in digits.chunks(width) {
                    let code = d.iter().fold(0, |acc, x| acc * 16 + x);
                    text.push(if cjk {
                        char::from_u32(code).unwrap_or('?')
                    } else {
                        decode_win_ansi(code)
                    });
                }
            }
        }
        out.push(text);
    }
    out
}

fn decode_win_ansi(b: u32) -> char {
    match b {
        0x80 => '€',
        0x85 => '…',
        0x91 => '‘',
        0x92 => '’',
        0x93 => '“',
        0x94 => '”',
        0x95 => '•',
        0x96 => '–',
        0x97 => '—',
        _ => char::from_u32(b).unwrap_or('?'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(title: &str, body: &str, rows: usize) -> Document {
        Document {
            lang: Lang::En,
            title: title.into(),
            meta: vec![(
                "Period".into(),
                "2026-11-01 – 2026-11-30 (UTC+00:00)".into(),
            )],
            sections: vec![Section {
                title: "Figures".into(),
                needs_human_input: true,
                blocks: vec![
                    Block::Para(body.into()),
                    Block::Table {
                        head: vec!["Month".into(), "Users".into()],
                        rows: (0..rows)
                            .map(|i| vec![format!("row {i}"), thousands(i as u64 * 1000)])
                            .collect(),
                    },
                    Block::Bars {
                        caption: "Per day".into(),
                        unit: "min".into(),
                        bars: vec![("2026-11-01".into(), 10.0), ("2026-11-02".into(), 2.5)],
                    },
                ],
            }],
        }
    }

    /// Every cross-reference entry points at its object, and the trailer at the table.
    fn check_structure(pdf: &[u8]) -> usize {
        let s = std::str::from_utf8(pdf).expect("the file is ASCII");
        assert!(s.is_ascii());
        assert!(s.starts_with("%PDF-1.4\n") && s.ends_with("%%EOF\n"));
        let start: usize = s
            .lines()
            .rev()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .expect("startxref");
        assert!(s[start..].starts_with("xref\n"));
        let entries: Vec<&str> = s[start..]
            .lines()
            .skip(3)
            .take_while(|l| l.ends_with(" n "))
            .collect();
        for (i, e) in entries.iter().enumerate() {
            let off: usize = e[..10].parse().unwrap();
            assert!(
                s[off..].starts_with(&format!("{} 0 obj\n", i + 1)),
                "object {} not at {off}",
                i + 1
            );
        }
        for (i, stream) in s.match_indices("/Length ") {
            let rest = &s[i + stream.len()..];
            let len: usize = rest[..rest.find(' ').unwrap()].parse().unwrap();
            let body = &rest[rest.find("stream\n").unwrap() + 7..];
            assert!(body[len..].starts_with("endstream"), "stream length");
        }
        entries.len()
    }

    #[test]
    fn a_valid_file_with_the_text_shown() {
        let pdf = pdf(&doc("Usage report", "Registered users: 1,234.", 3));
        let objects = check_structure(&pdf);
        assert_eq!(objects, 8 + 2);
        let text = shown_text(&pdf);
        assert!(text.iter().any(|t| t == "Usage report"), "{text:?}");
        assert!(text.iter().any(|t| t.contains("2026-11-01 – 2026-11-30")));
        assert!(text.iter().any(|t| t.starts_with("NEEDS HUMAN INPUT")));
        assert!(text.iter().any(|t| t == "1,234.") || text.iter().any(|t| t.contains("1,234")));
        assert!(text.iter().any(|t| t == "Usage report · 1 / 1"));
    }

    #[test]
    fn chinese_text_is_set_in_the_cjk_font() {
        let pdf = pdf(&doc(
            "安全评估报告",
            "已提供求助热线 12356（全国心理援助热线）。",
            1,
        ));
        check_structure(&pdf);
        let s = String::from_utf8(pdf.clone()).unwrap();
        assert!(s.contains("/F3 18.0 Tf"));
        let text = shown_text(&pdf);
        assert!(text.iter().any(|t| t == "安全评估报告"), "{text:?}");
        // Mixed text: the digits in Helvetica, the ideographs in the CJK font, one line.
        assert!(
            s.contains("/F1 9.5 Tf <203132333536> Tj /F3 9.5 Tf <FF08"),
            "{s}"
        );
        assert!(
            text.iter().any(|t| t.contains("求助热线 12356（全国")),
            "{text:?}"
        );
    }

    #[test]
    fn long_tables_and_text_flow_onto_more_pages_within_the_margins() {
        let long = "word ".repeat(2000);
        let pdf = pdf(&doc("Long", &long, 200));
        let objects = check_structure(&pdf);
        let pages = (objects - 8) / 2;
        assert!(pages > 3, "{pages} pages");
        let s = String::from_utf8(pdf).unwrap();
        for l in s.lines().filter(|l| l.contains(" Td ")) {
            let at = &l[l.find("BT ").unwrap() + 3..];
            let nums: Vec<f64> = at.split(' ').take(2).map(|n| n.parse().unwrap()).collect();
            let (x, y) = (nums[0], nums[1]);
            assert!((MARGIN..PAGE_W - MARGIN).contains(&x), "x {x}");
            assert!((25.0..PAGE_H - MARGIN).contains(&y), "y {y}");
        }
        // The table's header comes back on the pages it continues on.
        let text = shown_text(s.as_bytes());
        assert!(text.iter().filter(|t| *t == "Month").count() > 1);
    }

    #[test]
    fn wrapping_keeps_every_word_and_fits_the_width() {
        let text = "The quick brown fox jumps over the lazy dog again and again, 你好世界你好世界你好世界 end";
        let lines = wrap(Font::Regular, 10.0, text, 120.0);
        assert!(lines.len() > 2);
        for l in &lines {
            assert!(width(Font::Regular, 10.0, l) <= 120.0 + 0.01, "{l}");
        }
        let joined: String = lines
            .concat()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let want: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(joined, want);
    }
}
