//! Encoding: the byte rules of `application/x-www-form-urlencoded`, and [`FormWriter`].

use std::fmt;

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

/// Input bytes escaped per step of [`FormWriter::escaped`].
const CHUNK: usize = 16;

/// Output room one step needs: three bytes per input byte, rounded up so that an offset masked
/// with `SLOT - 5` plus a 4-byte store stays inside a `[u8; SLOT]`. The mask never changes an
/// offset (at most `3 * (CHUNK - 1)`); it only lets the compiler drop the bounds checks.
const SLOT: usize = 68;
const MASK: usize = SLOT - 5;
const _: () = assert!(3 * (CHUNK - 1) <= MASK && (MASK + 1).is_power_of_two());

/// Writes `input` (at most [`CHUNK`] bytes), escaped, at the start of `slot`; returns the number
/// of bytes written. Bytes after them may be overwritten.
#[inline(always)]
fn escape_chunk(input: &[u8], slot: &mut [u8; SLOT]) -> usize {
    let mut written = 0;
    for &b in input {
        let enc = ENCODE[usize::from(b)];
        let at = written & MASK;
        slot[at..at + 4].copy_from_slice(&enc);
        written += usize::from(enc[3]);
    }
    written
}

/// The length of `input` once escaped.
fn escaped_len(input: &[u8]) -> usize {
    input
        .iter()
        .map(|&b| usize::from(ENCODE[usize::from(b)][3]))
        .sum()
}

/// The length of `input` once escaped, at compile time (see [`escaped!`](crate::form::escaped)).
pub(crate) const fn escaped_len_const(input: &str) -> usize {
    let bytes = input.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < bytes.len() {
        n += ENCODE[bytes[i] as usize][3] as usize;
        i += 1;
    }
    n
}

/// `input` escaped, at compile time; `N` must be [`escaped_len_const`] of it.
pub(crate) const fn escape_const<const N: usize>(input: &str) -> [u8; N] {
    let bytes = input.as_bytes();
    let mut out = [0u8; N];
    let (mut i, mut at) = (0, 0);
    while i < bytes.len() {
        let enc = ENCODE[bytes[i] as usize];
        let count = enc[3] as usize;
        let mut j = 0;
        while j < count {
            out[at + j] = enc[j];
            j += 1;
        }
        at += count;
        i += 1;
    }
    assert!(at == N, "N is not the escaped length");
    out
}

/// A key (or any component) escaped at compile time: `escaped!("contact[email]")` is the
/// `&'static str` `"contact%5Bemail%5D"`, for [`FormWriter::pair_escaped`].
macro_rules! escaped {
    ($component:expr) => {{
        const N: usize = $crate::form::escaped_len_const($component);
        const BYTES: [u8; N] = $crate::form::escape_const::<N>($component);
        const TEXT: &str = match ::core::str::from_utf8(&BYTES) {
            Ok(text) => text,
            Err(_) => panic!("escaped output is ASCII"),
        };
        TEXT
    }};
}

pub(crate) use escaped;

/// Writes `key=value` pairs straight into an encoded body, with no [`Form`](crate::Form) in
/// between.
///
/// This is the fast path of the crate: each field is escaped by one table-driven pass (one
/// store per input byte, no branch) into the body's own buffer. The output is byte for byte
/// what `serde_urlencoded::to_string` writes for the same pairs.
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
#[derive(Default)]
pub struct FormWriter {
    /// The body is `buf[..len]`. Past `len`, `buf` is room already zeroed (or scribbled on by
    /// an earlier step): the encoder writes into it without growing the `Vec` byte by byte.
    buf: Vec<u8>,
    len: usize,
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
            len: 0,
        }
    }

    /// Makes room for at least `additional` more bytes of encoded output.
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(
            self.len
                .saturating_add(additional)
                .saturating_sub(self.buf.len()),
        );
    }

    /// Appends one pair, escaping key and value.
    #[inline]
    pub fn pair(&mut self, key: &str, value: &str) {
        self.separator();
        self.escaped(key.as_bytes());
        self.raw(b"=");
        self.escaped(value.as_bytes());
    }

    /// Appends one pair whose key is escaped already (by [`escaped!`]); only the value is
    /// escaped here. Event bodies write their fixed keys this way.
    #[inline]
    pub(crate) fn pair_escaped(&mut self, escaped_key: &str, value: &str) {
        debug_assert!(
            escaped_key
                .bytes()
                .all(|b| is_unreserved(b) || b == b'%' || b == b'+'),
            "{escaped_key:?} is not escaped"
        );
        self.separator();
        self.raw(escaped_key.as_bytes());
        self.raw(b"=");
        self.escaped(value.as_bytes());
    }

    /// Appends one pair whose key is `escaped_prefix`, then `middle` (escaped here), then
    /// `escaped_suffix`: `contact[fields][<id>]` written as prefix, id and `]`.
    #[inline]
    pub(crate) fn pair_nested(
        &mut self,
        escaped_prefix: &str,
        middle: &str,
        escaped_suffix: &str,
        value: &str,
    ) {
        self.separator();
        self.raw(escaped_prefix.as_bytes());
        self.escaped(middle.as_bytes());
        self.raw(escaped_suffix.as_bytes());
        self.raw(b"=");
        self.escaped(value.as_bytes());
    }

    /// `component` escaped by the same rules as the keys and values of a body.
    ///
    /// ```
    /// use posthook::FormWriter;
    ///
    /// assert_eq!(FormWriter::escape("contact[email]"), "contact%5Bemail%5D");
    /// assert_eq!(FormWriter::escape("a b+c"), "a+b%2Bc");
    /// ```
    pub fn escape(component: &str) -> String {
        let mut w = FormWriter::with_capacity(escaped_len(component.as_bytes()) + 1);
        w.escaped(component.as_bytes());
        // Escaped output is ASCII, so this never fails and never copies.
        String::from_utf8(w.into_vec()).unwrap_or_default()
    }

    /// The `&` before every pair but the first.
    #[inline]
    fn separator(&mut self) {
        if self.len != 0 {
            self.raw(b"&");
        }
    }

    /// `buf[len..]`, at least `n` bytes long.
    #[inline]
    fn room(&mut self, n: usize) -> &mut [u8] {
        let need = self.len.saturating_add(n);
        if need > self.buf.len() {
            self.grow(need);
        }
        self.buf.get_mut(self.len..).unwrap_or_default()
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, need: usize) {
        // Grow the zeroed room by a quarter at least: zeroing costs O(1) per byte of body and
        // at most a quarter of the body is zeroed for nothing (the allocation itself grows as
        // a `Vec` does). Start at 1 KiB: an event body is rarely smaller. No `shrink_to_fit`
        // in `finish`: for a large body, that `realloc` copied the body and doubled the time.
        let target = need.max(self.buf.len() + self.buf.len() / 4).max(1024);
        self.buf.resize(target, 0);
    }

    /// Appends bytes as they are.
    #[inline]
    fn raw(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.room(bytes.len()).get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.len += bytes.len();
    }

    /// Appends bytes escaped.
    #[inline]
    fn escaped(&mut self, input: &[u8]) {
        let mut chunks = input.chunks_exact(CHUNK);
        for chunk in &mut chunks {
            if let Some(slot) = self.room(SLOT).first_chunk_mut::<SLOT>() {
                self.len += escape_chunk(chunk, slot);
            }
        }
        let rest = chunks.remainder();
        if let Some(slot) = self.room(SLOT).first_chunk_mut::<SLOT>() {
            self.len += escape_chunk(rest, slot);
        }
    }

    /// The number of bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The body so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    fn into_vec(mut self) -> Vec<u8> {
        self.buf.truncate(self.len);
        self.buf
    }

    /// The finished body.
    pub fn finish(self) -> Bytes {
        Bytes::from(self.into_vec())
    }
}

impl fmt::Debug for FormWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FormWriter")
            .field("body", &String::from_utf8_lossy(self.as_bytes()))
            .finish()
    }
}

impl Clone for FormWriter {
    fn clone(&self) -> Self {
        FormWriter {
            buf: self.as_bytes().to_vec(),
            len: self.len,
        }
    }
}

impl PartialEq for FormWriter {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for FormWriter {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_time_escapes_equal_run_time_ones() {
        assert_eq!(
            escaped!("contact[fields]["),
            FormWriter::escape("contact[fields][")
        );
        assert_eq!(
            escaped!("deal[currency_symbol]"),
            "deal%5Bcurrency_symbol%5D"
        );
        assert_eq!(escaped!("a b+c/é"), FormWriter::escape("a b+c/é"));
        assert_eq!(escaped!(""), "");
        let mut w = FormWriter::new();
        w.pair_escaped(escaped!("list[id]"), "8 & 9");
        w.pair_nested(escaped!("updated_fields["), "0", escaped!("]"), "value");
        let mut plain = FormWriter::new();
        plain.pair("list[id]", "8 & 9");
        plain.pair("updated_fields[0]", "value");
        assert_eq!(w.as_bytes(), plain.as_bytes());
    }

    #[test]
    fn table_matches_the_byte_rules() {
        for b in 0..=255u8 {
            let mut w = FormWriter::new();
            w.escaped(&[b]);
            let out = w.as_bytes();
            let expected = match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                    vec![b]
                }
                b' ' => b"+".to_vec(),
                _ => format!("%{b:02X}").into_bytes(),
            };
            assert_eq!(out, expected.as_slice(), "byte {b:#04x}");
            assert_eq!(escaped_len(&[b]), expected.len());
        }
    }

    #[test]
    fn chunk_edges() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7] {
            let input: Vec<u8> = (0..len).map(|i| [b'a', b' ', b'&', 0xC3][i % 4]).collect();
            let mut w = FormWriter::new();
            w.raw(b"x=");
            w.escaped(&input);
            let out = w.as_bytes();
            let expected: String = input
                .iter()
                .map(|&b| match b {
                    b'a' => "a",
                    b' ' => "+",
                    b'&' => "%26",
                    _ => "%C3",
                })
                .collect();
            assert_eq!(out, format!("x={expected}").as_bytes(), "len {len}");
        }
    }
}
