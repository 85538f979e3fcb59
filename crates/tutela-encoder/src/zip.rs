//! A small reader of zip archives held in memory: the wheel is one, and so is the `.npz` inside
//! it. It reads the central directory, then each member (stored or deflated, checked against
//! its CRC-32 and declared size). Only what those two archives use is supported: one disk, no
//! encryption; ZIP64 sizes and offsets are understood. Inflating is `miniz_oxide`'s.

use crate::error::EncoderError;

/// One member as the central directory describes it.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    local_offset: u64,
}

/// A parsed archive borrowing its bytes.
#[derive(Debug)]
pub(crate) struct Archive<'a> {
    /// What errors call the archive (a path, or `wheel!member`).
    label: String,
    data: &'a [u8],
    entries: Vec<Entry>,
}

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATED: u16 = 8;
/// The largest member this reader inflates (the biggest real one is 3.9 MB).
const MAX_MEMBER: u64 = 1 << 30;

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    let b = data.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

impl<'a> Archive<'a> {
    /// Reads the central directory of `data`.
    pub(crate) fn parse(label: &str, data: &'a [u8]) -> Result<Archive<'a>, EncoderError> {
        let bad =
            |what: &str| EncoderError::format(label, format!("not a readable zip archive: {what}"));
        // The end-of-central-directory record is the last 22 bytes plus a comment of at most
        // 64 KiB; search backwards for its signature.
        let lowest = data.len().saturating_sub(22 + 0xFFFF);
        let eocd = (lowest..=data.len().saturating_sub(22))
            .rev()
            .find(|&at| u32_at(data, at) == Some(EOCD_SIG))
            .ok_or_else(|| bad("no end of central directory"))?;
        let short = || bad("truncated end of central directory");
        let mut count = u64::from(u16_at(data, eocd + 10).ok_or_else(short)?);
        let mut cd_size = u64::from(u32_at(data, eocd + 12).ok_or_else(short)?);
        let mut cd_offset = u64::from(u32_at(data, eocd + 16).ok_or_else(short)?);
        if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
            // ZIP64: the locator sits just before the classic record.
            let locator = eocd
                .checked_sub(20)
                .ok_or_else(|| bad("no ZIP64 locator"))?;
            if u32_at(data, locator) != Some(EOCD64_LOCATOR_SIG) {
                return Err(bad("no ZIP64 locator"));
            }
            let at = u64_at(data, locator + 8).ok_or_else(|| bad("truncated ZIP64 locator"))?;
            let at = usize::try_from(at).map_err(|_| bad("ZIP64 record out of range"))?;
            if u32_at(data, at) != Some(EOCD64_SIG) {
                return Err(bad("no ZIP64 end of central directory"));
            }
            let short64 = || bad("truncated ZIP64 end of central directory");
            count = u64_at(data, at + 32).ok_or_else(short64)?;
            cd_size = u64_at(data, at + 40).ok_or_else(short64)?;
            cd_offset = u64_at(data, at + 48).ok_or_else(short64)?;
        }
        let start =
            usize::try_from(cd_offset).map_err(|_| bad("central directory out of range"))?;
        let end = usize::try_from(cd_size)
            .ok()
            .and_then(|size| start.checked_add(size))
            .filter(|&end| end <= data.len())
            .ok_or_else(|| bad("central directory out of range"))?;
        let mut entries = Vec::new();
        let mut at = start;
        while at < end {
            let short = || bad("truncated central directory entry");
            if u32_at(data, at) != Some(CENTRAL_SIG) {
                return Err(bad("bad central directory entry signature"));
            }
            let flags = u16_at(data, at + 8).ok_or_else(short)?;
            let method = u16_at(data, at + 10).ok_or_else(short)?;
            let crc = u32_at(data, at + 16).ok_or_else(short)?;
            let mut compressed = u64::from(u32_at(data, at + 20).ok_or_else(short)?);
            let mut size = u64::from(u32_at(data, at + 24).ok_or_else(short)?);
            let name_len = usize::from(u16_at(data, at + 28).ok_or_else(short)?);
            let extra_len = usize::from(u16_at(data, at + 30).ok_or_else(short)?);
            let comment_len = usize::from(u16_at(data, at + 32).ok_or_else(short)?);
            let mut local_offset = u64::from(u32_at(data, at + 42).ok_or_else(short)?);
            let name_at = at + 46;
            let name = data.get(name_at..name_at + name_len).ok_or_else(short)?;
            let name = String::from_utf8_lossy(name).into_owned();
            let extra = data
                .get(name_at + name_len..name_at + name_len + extra_len)
                .ok_or_else(short)?;
            if flags & 1 != 0 {
                return Err(bad(&format!("member `{name}` is encrypted")));
            }
            read_zip64_extra(extra, &mut size, &mut compressed, &mut local_offset);
            entries.push(Entry {
                name,
                method,
                crc,
                compressed,
                size,
                local_offset,
            });
            at = name_at + name_len + extra_len + comment_len;
        }
        if entries.len() as u64 != count {
            return Err(bad(
                "central directory entry count disagrees with its end record",
            ));
        }
        Ok(Archive {
            label: label.to_owned(),
            data,
            entries,
        })
    }

    /// The names of the members, in directory order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// The uncompressed bytes of member `name`, checked against its size and CRC-32.
    pub(crate) fn read(&self, name: &str) -> Result<Vec<u8>, EncoderError> {
        let label = format!("{}!{name}", self.label);
        let entry = self
            .entries
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| EncoderError::format(&self.label, format!("no member `{name}`")))?;
        let bad = |what: &str| EncoderError::format(&label, what.to_owned());
        if entry.size > MAX_MEMBER {
            return Err(bad("member larger than 1 GiB"));
        }
        let local = usize::try_from(entry.local_offset).map_err(|_| bad("offset out of range"))?;
        if u32_at(self.data, local) != Some(LOCAL_SIG) {
            return Err(bad("bad local header signature"));
        }
        let short = || bad("truncated local header");
        let name_len = usize::from(u16_at(self.data, local + 26).ok_or_else(short)?);
        let extra_len = usize::from(u16_at(self.data, local + 28).ok_or_else(short)?);
        let start = local + 30 + name_len + extra_len;
        let raw = usize::try_from(entry.compressed)
            .ok()
            .and_then(|len| self.data.get(start..start.checked_add(len)?))
            .ok_or_else(|| bad("compressed data out of range"))?;
        let size = usize::try_from(entry.size).map_err(|_| bad("size out of range"))?;
        let out = match entry.method {
            METHOD_STORED => raw.to_vec(),
            METHOD_DEFLATED => miniz_oxide::inflate::decompress_to_vec_with_limit(raw, size)
                .map_err(|e| bad(&format!("cannot inflate: {e}")))?,
            other => return Err(bad(&format!("unsupported compression method {other}"))),
        };
        if out.len() != size {
            return Err(bad(&format!(
                "inflated to {} bytes, the directory says {size}",
                out.len()
            )));
        }
        if crc32fast::hash(&out) != entry.crc {
            return Err(bad("CRC-32 mismatch"));
        }
        Ok(out)
    }
}

/// Applies a ZIP64 extended-information extra field (id 1): it holds, in this order, those of
/// size, compressed size and local offset whose 32-bit fields are all ones.
fn read_zip64_extra(extra: &[u8], size: &mut u64, compressed: &mut u64, offset: &mut u64) {
    let mut at = 0;
    while let (Some(id), Some(len)) = (u16_at(extra, at), u16_at(extra, at + 2)) {
        let body = at + 4;
        if id == 1 {
            let mut field = body;
            for value in [size, compressed, offset] {
                if *value == 0xFFFF_FFFF {
                    if let Some(v) = u64_at(extra, field) {
                        *value = v;
                    }
                    field += 8;
                }
            }
            return;
        }
        at = body + usize::from(len);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A stored and a deflated member, written by hand the way any zip writer lays them out.
    pub(crate) fn tiny_zip(members: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for &(name, body, deflate) in members {
            let offset = out.len() as u32;
            let data = if deflate {
                miniz_oxide::deflate::compress_to_vec(body, 6)
            } else {
                body.to_vec()
            };
            let method: u16 = if deflate { 8 } else { 0 };
            let crc = crc32fast::hash(body);
            let mut local = Vec::new();
            local.extend_from_slice(&LOCAL_SIG.to_le_bytes());
            local.extend_from_slice(&[20, 0, 0, 0]);
            local.extend_from_slice(&method.to_le_bytes());
            local.extend_from_slice(&[0; 4]);
            local.extend_from_slice(&crc.to_le_bytes());
            local.extend_from_slice(&(data.len() as u32).to_le_bytes());
            local.extend_from_slice(&(body.len() as u32).to_le_bytes());
            local.extend_from_slice(&(name.len() as u16).to_le_bytes());
            local.extend_from_slice(&0u16.to_le_bytes());
            local.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&local);
            out.extend_from_slice(&data);
            central.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0]);
            central.extend_from_slice(&method.to_le_bytes());
            central.extend_from_slice(&[0; 4]);
            central.extend_from_slice(&crc.to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(body.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&EOCD_SIG.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn reads_stored_and_deflated_members() {
        let long = b"the quick brown fox ".repeat(50);
        let zip = tiny_zip(&[("a.txt", b"hello", false), ("dir/b.bin", &long, true)]);
        let archive = Archive::parse("t.zip", &zip).unwrap();
        assert_eq!(archive.names().collect::<Vec<_>>(), ["a.txt", "dir/b.bin"]);
        assert_eq!(archive.read("a.txt").unwrap(), b"hello");
        assert_eq!(archive.read("dir/b.bin").unwrap(), long);
        let err = archive.read("missing").unwrap_err().to_string();
        assert_eq!(err, "t.zip: no member `missing`");
    }

    #[test]
    fn a_flipped_byte_is_a_crc_error_naming_the_member() {
        let mut zip = tiny_zip(&[("a.txt", b"hello", false)]);
        let at = zip.windows(5).position(|w| w == b"hello").unwrap();
        zip[at] = b'j';
        let archive = Archive::parse("t.zip", &zip).unwrap();
        let err = archive.read("a.txt").unwrap_err().to_string();
        assert_eq!(err, "t.zip!a.txt: CRC-32 mismatch");
    }

    #[test]
    fn garbage_is_not_an_archive() {
        let err = Archive::parse("x", b"not a zip at all, not even close").unwrap_err();
        assert!(
            err.to_string().starts_with("x: not a readable zip archive"),
            "{err}"
        );
        let zip = tiny_zip(&[("a.txt", b"hello", true)]);
        for cut in [0, 10, zip.len() / 2, zip.len() - 1] {
            // Truncations never panic.
            let _ = Archive::parse("t", &zip[..cut]).and_then(|a| a.read("a.txt"));
        }
    }
}
