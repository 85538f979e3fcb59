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
