//! Form bodies: ordered `(key, value)` pairs with PHP-style bracket keys.
//!
//! [`Form::parse`] reads an `application/x-www-form-urlencoded` body as real senders write it;
//! [`Form::encode`] writes it as browsers and PHP do (space as `+`, everything outside
//! `A-Z a-z 0-9 * - . _` percent-encoded), byte for byte what `serde_urlencoded` writes for the
//! same pairs. [`FormWriter`] encodes pairs straight into a buffer, with no `Form` in between.
//!
//! ```
//! use posthook::Form;
//!
//! let form = Form::parse(b"type=subscribe&contact%5Bfields%5D%5B3%5D=a+b%26c").unwrap();
//! assert_eq!(form.get("type"), Some("subscribe"));
//! assert_eq!(form.get("contact[fields][3]"), Some("a b&c"));
//! assert_eq!(form.to_string(), "type=subscribe&contact%5Bfields%5D%5B3%5D=a+b%26c");
//! ```

use std::fmt;

use bytes::Bytes;
use thiserror::Error;

/// Limits that guard [`Form::parse`] against hostile input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormLimits {
    /// The most pairs a body may hold.
    pub max_fields: usize,
    /// The most `[...]` segments a key may have.
    pub max_depth: usize,
}

impl Default for FormLimits {
    fn default() -> Self {
        FormLimits {
            max_fields: 10_000,
            max_depth: 8,
        }
    }
}

/// Why a body is not a valid form.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FormError {
    /// A `%` not followed by two hex digits, at this byte offset of the body.
    #[error("invalid percent-escape at byte {offset}")]
    InvalidEscape {
        /// The offset of the `%`.
        offset: usize,
    },
    /// The decoded key or value of the pair starting at this offset is not UTF-8.
    #[error("invalid UTF-8 in the pair at byte {offset}")]
    InvalidUtf8 {
        /// The offset of the pair in the body.
        offset: usize,
    },
    /// More pairs than [`FormLimits::max_fields`].
    #[error("too many fields: more than {limit}")]
    TooManyFields {
        /// The limit.
        limit: usize,
    },
    /// A key nested deeper than [`FormLimits::max_depth`].
    #[error("key at byte {offset} is nested deeper than {limit} levels")]
    TooDeep {
        /// The offset of the pair in the body.
        offset: usize,
        /// The limit.
        limit: usize,
    },
}

/// Ordered `(key, value)` pairs of a form body. Duplicate keys are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// An empty form.
    pub fn new() -> Form {
        Form::default()
    }

    /// Adds a pair at the end.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.pairs.push((key.into(), value.into()));
    }

    /// The first value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value for `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Decodes a body with the default [`FormLimits`].
    pub fn parse(body: &[u8]) -> Result<Form, FormError> {
        Form::parse_with(body, FormLimits::default())
    }

    /// Decodes a body: `+` or `%20` for space, either hex case, empty pieces skipped, a piece
    /// without `=` read as a key with an empty value.
    pub fn parse_with(body: &[u8], limits: FormLimits) -> Result<Form, FormError> {
        let mut pairs = Vec::new();
        let mut start = 0;
        for piece in body.split(|&b| b == b'&') {
            let offset = start;
            start += piece.len() + 1;
            if piece.is_empty() {
                continue;
            }
            if pairs.len() == limits.max_fields {
                return Err(FormError::TooManyFields {
                    limit: limits.max_fields,
                });
            }
            let (k, v) = match piece.iter().position(|&b| b == b'=') {
                Some(i) => (&piece[..i], &piece[i + 1..]),
                None => (piece, &[][..]),
            };
            let key = decode(k, offset)?;
            if key.matches('[').count() > limits.max_depth {
                return Err(FormError::TooDeep {
                    offset,
                    limit: limits.max_depth,
                });
            }
            let value = decode(v, offset + k.len() + 1)?;
            pairs.push((key, value));
        }
        Ok(Form { pairs })
    }

    /// Encodes the body.
    pub fn encode(&self) -> Bytes {
        let mut w = FormWriter::new();
        for (k, v) in self.iter() {
            w.pair(k, v);
        }
        w.finish()
    }
}

fn decode(raw: &[u8], offset: usize) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (
                    raw.get(i + 1).and_then(|&b| hex(b)),
                    raw.get(i + 2).and_then(|&b| hex(b)),
                ) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => return Err(FormError::InvalidEscape { offset: offset + i }),
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::InvalidUtf8 { offset })
}

impl<'a> FromIterator<(&'a str, &'a str)> for Form {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> Self {
        Form {
            pairs: iter
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.encode()))
    }
}

/// Writes `key=value` pairs straight into an encoded body.
#[derive(Debug, Default)]
pub struct FormWriter {
    buf: Vec<u8>,
}

impl FormWriter {
    /// An empty body.
    pub fn new() -> FormWriter {
        FormWriter::default()
    }

    /// An empty body with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> FormWriter {
        FormWriter {
            buf: Vec::with_capacity(bytes),
        }
    }

    /// Appends one pair, escaping key and value.
    pub fn pair(&mut self, key: &str, value: &str) {
        if !self.buf.is_empty() {
            self.buf.push(b'&');
        }
        escape_into(key, &mut self.buf);
        self.buf.push(b'=');
        escape_into(value, &mut self.buf);
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

fn escape_into(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]),
        }
    }
}
