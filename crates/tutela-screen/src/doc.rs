//! Pulls the text, source and id out of one JSON line without building a full JSON value:
//! the field names are chosen at run time, everything else is skipped.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

/// The field names to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields {
    /// The text field (required, a string).
    pub text: String,
    /// The source field (optional; missing means the input file's name).
    pub source: String,
    /// The id field (optional, string or number; missing means `file:line`).
    pub id: String,
}

impl Default for Fields {
    fn default() -> Self {
        Self {
            text: "text".into(),
            source: "source".into(),
            id: "id".into(),
        }
    }
}

/// The fields of one document.
#[derive(Debug, PartialEq, Eq)]
pub struct Doc<'a> {
    /// The text.
    pub text: Cow<'a, str>,
    /// The source, if the record names one.
    pub source: Option<Cow<'a, str>>,
    /// The id, if the record has one (a number as its JSON text).
    pub id: Option<Cow<'a, str>>,
}

/// Reads the fields of `line`; the error says what is wrong with it. The whole line must
/// be UTF-8 (as JSON text must be), checked once up front, so the parser need not check
/// each string again.
pub fn extract<'a>(line: &'a [u8], fields: &Fields) -> Result<Doc<'a>, String> {
    let line = simdutf8::compat::from_utf8(line)
        .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
    match flat::extract(line, fields) {
        Some(doc) => Ok(doc),
        None => general(line, fields),
    }
}

/// [`extract`] through the general parser.
fn general<'a>(line: &'a str, fields: &Fields) -> Result<Doc<'a>, String> {
    let mut de = serde_json::Deserializer::from_str(line);
    let doc = Seed { fields }
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    match doc.text {
        Some(text) => Ok(Doc {
            text,
            source: doc.source,
            id: doc.id,
        }),
        None => Err(format!("no string field `{}`", fields.text)),
    }
}

/// The common case without the general parser: one flat object whose strings have no
/// escapes. It reads exactly a subset of what the general parser accepts, and yields the
/// same document for it; anything else (escapes, nesting, a field of the wrong type, an
/// error) is left to the general parser (`None`).
mod flat {
    use std::borrow::Cow;

    use super::{Doc, Fields};

    fn ws(b: &[u8], mut i: usize) -> usize {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    }

    /// A string starting at the quote at `i`, without escapes or control characters: its
    /// contents and the index after its closing quote.
    fn string(s: &str, i: usize) -> Option<(&str, usize)> {
        let b = s.as_bytes();
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let len = memchr::memchr2(b'"', b'\\', &b[i + 1..])?;
        let end = i + 1 + len;
        if b[end] != b'"' || b[i + 1..end].iter().fold(false, |a, &c| a | (c < 0x20)) {
            return None;
        }
        // The quotes are ASCII, so both ends are character boundaries.
        Some((s.get(i + 1..end)?, end + 1))
    }

    /// A JSON number starting at `i`: the index after it.
    fn number(b: &[u8], mut i: usize) -> Option<usize> {
        let digits = |b: &[u8], mut i: usize| {
            let s = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            (i > s).then_some(i)
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        i = match b.get(i)? {
            b'0' => i + 1,
            b'1'..=b'9' => digits(b, i)?,
            _ => return None,
        };
        if b.get(i) == Some(&b'.') {
            i = digits(b, i + 1)?;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            i = digits(b, i)?;
        }
        Some(i)
    }

    enum Value<'a> {
        Str(&'a str),
        /// A number: its text.
        Num(&'a str),
        Null,
        Bool,
    }

    fn value(s: &str, i: usize) -> Option<(Value<'_>, usize)> {
        let b = s.as_bytes();
        match b.get(i)? {
            b'"' => string(s, i).map(|(v, e)| (Value::Str(v), e)),
            b'n' if b[i..].starts_with(b"null") => Some((Value::Null, i + 4)),
            b't' if b[i..].starts_with(b"true") => Some((Value::Bool, i + 4)),
            b'f' if b[i..].starts_with(b"false") => Some((Value::Bool, i + 5)),
            b'-' | b'0'..=b'9' => number(b, i).and_then(|e| Some((Value::Num(s.get(i..e)?), e))),
            _ => None,
        }
    }

    pub(super) fn extract<'a>(s: &'a str, fields: &Fields) -> Option<Doc<'a>> {
        let b = s.as_bytes();
        let mut i = ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        i = ws(b, i + 1);
        let (mut text, mut source, mut id) = (None, None, None);
        if b.get(i) == Some(&b'}') {
            return None;
        }
        loop {
            let (key, e) = string(s, i)?;
            i = ws(b, e);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = ws(b, i + 1);
            let (v, e) = value(s, i)?;
            i = ws(b, e);
            // The same reading as the general parser's (a later field wins).
            if key == fields.text {
                text = match v {
                    Value::Str(t) => Some(t),
                    Value::Null => None,
                    _ => return None,
                };
            } else if key == fields.source {
                source = match v {
                    Value::Str(t) => Some(t),
                    Value::Null => None,
                    _ => return None,
                };
            } else if key == fields.id {
                id = match v {
                    Value::Str(t) => Some(t),
                    Value::Null => None,
                    // A whole number is kept as written; others are left to the parser.
                    Value::Num(n)
                        if n.bytes().all(|c| c.is_ascii_digit())
                            && (n == "0" || !n.starts_with('0'))
                            && n.parse::<u64>().is_ok() =>
                    {
                        Some(n)
                    }
                    _ => return None,
                };
            }
            match b.get(i)? {
                b',' => i = ws(b, i + 1),
                b'}' => break,
                _ => return None,
            }
        }
        if ws(b, i + 1) != b.len() {
            return None;
        }
        Some(Doc {
            text: Cow::Borrowed(text?),
            source: source.map(Cow::Borrowed),
            id: id.map(Cow::Borrowed),
        })
    }
}

struct Partial<'a> {
    text: Option<Cow<'a, str>>,
    source: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
}

struct Seed<'f> {
    fields: &'f Fields,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Partial<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Partial<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut p = Partial {
            text: None,
            source: None,
            id: None,
        };
        while let Some(key) = map.next_key::<Str<'de>>()? {
            let key = key.0;
            if key == self.fields.text.as_str() {
                let v: Option<Str<'de>> = map.next_value()?;
                p.text = v.map(|s| s.0);
            } else if key == self.fields.source.as_str() {
                let v: Option<Str<'de>> = map.next_value()?;
                p.source = v.map(|s| s.0);
            } else if key == self.fields.id.as_str() {
                let v: Option<Id<'de>> = map.next_value()?;
                p.id = v.map(|s| s.0);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(p)
    }
}

/// A string that borrows from the input when it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Str<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// An id: a string (borrowed when it has no escapes) or a number, kept as text.
struct Id<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Id<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Id<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Id<'de>, E> {
                Ok(Id(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id<'de>, E> {
                Ok(Id(Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id<'de>, E> {
                Ok(Id(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id<'de>, E> {
                Ok(Id(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Id<'de>, E> {
                Ok(Id(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json_line() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("\"text\"".to_owned()),
            Just("\"source\"".to_owned()),
            Just("\"id\"".to_owned()),
            Just("\"lang\"".to_owned()),
            Just("\"te\\u0078t\"".to_owned()),
        ];
        let value = prop_oneof![
            2 => "\"[a-z 你好\\\\\"\u{1}é]{0,12}\"",
            3 => "\"[a-z 你好é]{0,12}\"",
            2 => prop::sample::select(vec![
                "0", "7", "-3", "1.5", "1e3", "007", "-0", "18446744073709551616", "1.", "-",
                "null", "true", "false", "nul", "{\"a\":1}", "[1,2]", "\"\\u4f60\"",
            ])
            .prop_map(str::to_owned),
        ];
        let ws = prop::sample::select(vec!["", " ", "\t", "\r\n "]);
        (
            prop::collection::vec((key, ws.clone(), value, ws.clone()), 0..5),
            ws,
            prop::sample::select(vec!["", "", "", "", "}", " x", ","]),
        )
            .prop_map(|(fields, w, tail)| {
                let body: Vec<String> = fields
                    .into_iter()
                    .map(|(k, a, v, b)| format!("{a}{k}{b}:{a}{v}{b}"))
                    .collect();
                format!("{w}{{{}}}{w}{tail}", body.join(","))
            })
    }

    proptest! {
        #[test]
        fn the_flat_reading_agrees_with_the_parser(line in json_line()) {
            let f = Fields::default();
            if let Some(d) = flat::extract(&line, &f) {
                prop_assert_eq!(Ok(d), general(&line, &f), "{}", line);
            }
        }
    }

    #[test]
    fn the_flat_reading_takes_the_common_case() {
        let f = Fields::default();
        for line in [
            r#"{"id":"a-1","source":"web","lang":"en","text":"Hello, 你好."}"#,
            r#" { "text" : "x" , "id" : 12 } "#,
            r#"{"text":"x","score":-1.5e3,"ok":true,"n":null}"#,
        ] {
            assert!(flat::extract(line, &f).is_some(), "{line}");
        }
        for line in [
            r#"{"text":"a \"quote\""}"#,
            r#"{"text":"x","meta":{"a":1}}"#,
            r#"{"text":"x","id":1.5}"#,
            r#"{"text":1}"#,
        ] {
            assert!(flat::extract(line, &f).is_none(), "{line}");
        }
    }

    #[test]
    fn reads_fields_and_skips_the_rest() {
        let f = Fields::default();
        let d = extract(
            br#"{"meta":{"a":[1,2]},"id":7,"text":"hi \"you\"","source":"web"}"#,
            &f,
        )
        .unwrap();
        assert_eq!(d.text, "hi \"you\"");
        assert_eq!(d.source.as_deref(), Some("web"));
        assert_eq!(d.id.as_deref(), Some("7"));
        assert!(matches!(
            extract(br#"{"text":"plain"}"#, &f).unwrap().text,
            Cow::Borrowed(_)
        ));
        assert_eq!(
            extract(br#"{"body":"x"}"#, &f).unwrap_err(),
            "no string field `text`"
        );
        assert!(extract(br#"{"text":"x"} junk"#, &f).is_err());
        assert!(extract(br#"[1]"#, &f).is_err());
        assert!(extract(br#"{"text":"x""#, &f).is_err());
        assert_eq!(
            extract(b"{\"text\":\"ok\",\"meta\":\"\xff\"}", &f).unwrap_err(),
            "invalid UTF-8 at byte 21"
        );
        let custom = Fields {
            text: "content".into(),
            source: "origin".into(),
            id: "uid".into(),
        };
        let d = extract(br#"{"content":"c","origin":null,"uid":"u1"}"#, &custom).unwrap();
        assert_eq!(
            (d.text.as_ref(), d.source, d.id.as_deref()),
            ("c", None, Some("u1"))
        );
    }
}
