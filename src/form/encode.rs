//! Encoding: the byte rules of `application/x-www-form-urlencoded`, and [`FormWriter`].

use bytes::Bytes;

/// How each byte is written, as four bytes: up to three output bytes, then how many of them
/// count (1 or 3).
///
/// This is the WHATWG URL Standard's `application/x-www-form-urlencoded` byte serializer
/// (section 5.2): `A-Z a-z 0-9 * - . _` are kept, 0x20 becomes `+`, every other byte becomes
/// `%XX` with upper-case hex. It is the set `form_urlencoded::byte_serialize` (and so
/// `serde_urlencoded`) uses, which is what browsers and PHP's `http_build_query` write.
///
/// The fourth byte doubles as padding: the encoder stores all four bytes and advances by the
/// count, so the next byte overwrites the padding. One store and one add per input byte, no
/// branch.
static ENCODE: [[u8; 4]; 256] = encode_table();

const fn encode_table() -> [[u8; 4]; 256] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut table = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = if is_unreserved(b) {
            [b, 0, 0, 1]
        } else if b == b' ' {
            [b'+', 0, 0, 1]
        } else {
            [b'%', HEX[i >> 4], HEX[i & 15], 3]
        };
        i += 1;
    }
    table
}

/// Whether a byte is written as itself.
const fn is_unreserved(b: u8) -> bool {
    matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_')
}

/// Input bytes escaped per step of [`escape_into`]: the output slot for a step is
/// `3 * CHUNK + 1` bytes, zeroed by `Vec::resize`, so a step costs a small memset and never
/// allocates more than a few times the real output.
const CHUNK: usize = 512;

/// Appends `input`, escaped, to `out`.
fn escape_into(input: &[u8], out: &mut Vec<u8>) {
    for chunk in input.chunks(CHUNK) {
        let start = out.len();
        // Room for the worst case (every byte escaped) plus the padding byte of the last store.
        out.resize(start + 3 * chunk.len() + 1, 0);
        let slot = &mut out[start..];
        let mut written = 0;
        for &b in chunk {
            let enc = ENCODE[usize::from(b)];
            slot[written..written + 4].copy_from_slice(&enc);
            written += usize::from(enc[3]);
        }
        out.truncate(start + written);
    }
}

/// The length of `input` once escaped.
fn escaped_len(input: &[u8]) -> usize {
    input
        .iter()
        .map(|&b| usize::from(ENCODE[usize::from(b)][3]))
        .sum()
}

/// Whether `key` is already in escaped form: only bytes written as themselves, `+`, and `%XX`
/// escapes with upper-case hex.
fn is_escaped(key: &str) -> bool {
    let bytes = key.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => i += 1,
            b'%' => match bytes.get(i + 1..i + 3) {
                Some(&[h, l]) if is_upper_hex(h) && is_upper_hex(l) => i += 3,
                _ => return false,
            },
            b if is_unreserved(b) => i += 1,
            _ => return false,
        }
    }
    true
}

fn is_upper_hex(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'A'..=b'F')
}

/// Writes `key=value` pairs straight into an encoded body, with no [`Form`](crate::Form) in
/// between.
///
/// This is the fast path of the crate: each field is escaped by one table-driven pass into the
/// body's own buffer. The output is byte for byte what `serde_urlencoded::to_string` writes for
/// the same pairs.
///
/// ```
/// use posthook::FormWriter;
///
/// let mut w = FormWriter::new();
/// w.pair("type", "deal_update");
/// w.pair("deal[title]", "Rinnovo licenza & supporto");
/// assert_eq!(
///     w.finish(),
///     "type=deal_update&deal%5Btitle%5D=Rinnovo+licenza+%26+supporto"
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormWriter {
    buf: Vec<u8>,
}

impl FormWriter {
    /// An empty body.
    pub fn new() -> FormWriter {
        FormWriter::default()
    }

    /// An empty body with room for `bytes` bytes of encoded output.
    pub fn with_capacity(bytes: usize) -> FormWriter {
        FormWriter {
            buf: Vec::with_capacity(bytes),
        }
    }

    /// Makes room for at least `additional` more bytes of encoded output.
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }

    /// Appends one pair, escaping key and value.
    #[inline]
    pub fn pair(&mut self, key: &str, value: &str) {
        self.separator(key.len() + value.len());
        escape_into(key.as_bytes(), &mut self.buf);
        self.buf.push(b'=');
        escape_into(value.as_bytes(), &mut self.buf);
    }

    /// Appends one pair whose key is already escaped (as [`FormWriter::escape`] writes it, e.g.
    /// `"contact%5Bemail%5D"` for `contact[email]`); only the value is escaped.
    ///
    /// Meant for keys known at compile time. A key that is not in escaped form (it holds a byte
    /// that must be escaped, or a `%` not followed by two upper-case hex digits) is escaped
    /// as an ordinary key would be, so the body is correct either way.
    #[inline]
    pub fn pair_encoded_key(&mut self, key: &str, value: &str) {
        if !is_escaped(key) {
            return self.pair(key, value);
        }
        self.separator(key.len() + value.len());
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.push(b'=');
        escape_into(value.as_bytes(), &mut self.buf);
    }

    /// Writes the `&` before every pair but the first, and reserves room for the pair.
    #[inline]
    fn separator(&mut self, raw_len: usize) {
        // Enough for a pair that needs no escaping; escapes grow the buffer as usual.
        self.buf.reserve(raw_len + 2);
        if !self.buf.is_empty() {
            self.buf.push(b'&');
        }
    }

    /// `component` escaped by the same rules as the keys and values of a body: the text that
    /// [`FormWriter::pair_encoded_key`] expects.
    ///
    /// ```
    /// use posthook::FormWriter;
    ///
    /// assert_eq!(FormWriter::escape("contact[email]"), "contact%5Bemail%5D");
    /// assert_eq!(FormWriter::escape("a b+c"), "a+b%2Bc");
    /// ```
    pub fn escape(component: &str) -> String {
        let mut out = Vec::with_capacity(escaped_len(component.as_bytes()) + 1);
        escape_into(component.as_bytes(), &mut out);
        // Escaped output is ASCII, so this never fails and never copies.
        String::from_utf8(out).unwrap_or_default()
    }

    /// The number of bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The body so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The finished body.
    pub fn finish(self) -> Bytes {
        Bytes::from(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_byte_rules() {
        for b in 0..=255u8 {
            let mut out = Vec::new();
            escape_into(&[b], &mut out);
            let expected = match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    vec![b]
                }
                b' ' => b"+".to_vec(),
                _ => format!("%{b:02X}").into_bytes(),
            };
            assert_eq!(out, expected, "byte {b:#04x}");
            assert_eq!(escaped_len(&[b]), expected.len());
        }
    }

    #[test]
    fn chunk_edges() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
            let input: Vec<u8> = (0..len).map(|i| [b'a', b' ', b'&', 0xC3][i % 4]).collect();
            let mut out = b"x=".to_vec();
            escape_into(&input, &mut out);
            let expected: String = input
                .iter()
                .map(|&b| match b {
                    b'a' => "a",
                    b' ' => "+",
                    b'&' => "%26",
                    _ => "%C3",
                })
                .collect();
            assert_eq!(out, format!("x={expected}").into_bytes(), "len {len}");
        }
    }

    #[test]
    fn escaped_keys() {
        assert!(is_escaped("contact%5Bemail%5D"));
        assert!(is_escaped(""));
        assert!(is_escaped("a+b"));
        assert!(!is_escaped("contact[email]"));
        assert!(!is_escaped("a%5b"));
        assert!(!is_escaped("a%5"));
        assert!(!is_escaped("a b"));
    }
}
