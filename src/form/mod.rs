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
//!
//! A parsed form keeps every decoded key and value in one `String` (allocated once, at the
//! size of the body), with the end of each recorded in one `Vec`, whatever the number of pairs;
//! [`Form::get`] and [`Form::iter`] hand out slices of that text.

use std::fmt;

use bytes::Bytes;
use thiserror::Error;

mod decode;
mod encode;

pub(crate) use self::decode::{decode_text, depth, key_end, value_end};
pub use self::encode::FormWriter;
pub(crate) use self::encode::{escape_const, escaped, escaped_len_const};

/// Limits that guard [`Form::parse`] against hostile input.
///
/// There is no limit on the size of the body or of any field: a 10 MB note decodes with the
/// defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FormLimits {
    /// The most pairs a body may hold (empty pieces, as in `a=1&&b=2`, do not count).
    pub max_fields: usize,
    /// The most `[` a decoded key may hold: `deal[fields][3]` has depth 2.
    pub max_depth: usize,
}

impl Default for FormLimits {
    /// 10 000 fields, depth 8.
    fn default() -> Self {
        FormLimits {
            max_fields: 10_000,
            max_depth: 8,
        }
    }
}

/// Why a body is not a valid form. Offsets are byte offsets into the body.
///
/// When a body has several faults, the error is the first one in body order; inside one key or
/// value, a malformed escape is reported before invalid UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FormError {
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-escape at byte {offset}")]
    InvalidEscape {
        /// The offset of the `%`.
        offset: usize,
    },
    /// A key or value whose decoded bytes are not UTF-8.
    #[error("invalid UTF-8 at byte {offset}")]
    InvalidUtf8 {
        /// The offset of the first byte of the bad sequence: the byte itself, or the `%` of
        /// its escape.
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

/// Ordered `(key, value)` pairs of a form body. Duplicate keys are kept, in order.
///
/// Two forms are equal when they hold the same pairs in the same order.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Form {
    /// Every key and value, decoded, one after the other: `k0 v0 k1 v1 ...`, nothing else.
    buf: String,
    /// For each pair, where its key ends (its value starts) and where its value ends (the next
    /// key starts).
    ends: Vec<(usize, usize)>,
}

impl Form {
    /// An empty form.
    pub fn new() -> Form {
        Form::default()
    }

    /// Adds a pair at the end.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.push_str(&key.into(), &value.into());
    }

    fn push_str(&mut self, key: &str, value: &str) {
        self.buf.push_str(key);
        let key_end = self.buf.len();
        self.buf.push_str(value);
        self.ends.push((key_end, self.buf.len()));
    }

    /// The first value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.spans()
            .find(|&(start, key_end, _)| {
                self.buf.as_bytes().get(start..key_end) == Some(key.as_bytes())
            })
            .map(|(_, key_end, end)| self.slice(key_end, end))
    }

    /// Every value for `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.spans()
            .filter(move |&(start, key_end, _)| {
                self.buf.as_bytes().get(start..key_end) == Some(key.as_bytes())
            })
            .map(move |(_, key_end, end)| self.slice(key_end, end))
    }

    /// The pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans().map(move |(start, key_end, end)| {
            (self.slice(start, key_end), self.slice(key_end, end))
        })
    }

    /// `(key start, key end = value start, value end)` of each pair.
    fn spans(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.ends.iter().scan(0, |start, &(key_end, end)| {
            let span = (*start, key_end, end);
            *start = end;
            Some(span)
        })
    }

    /// Every span is on a character boundary (parse and push make it so); `get` keeps this
    /// free of panics even if that were ever not so.
    fn slice(&self, start: usize, end: usize) -> &str {
        self.buf.get(start..end).unwrap_or_default()
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Decodes a body with the default [`FormLimits`].
    pub fn parse(body: &[u8]) -> Result<Form, FormError> {
        Form::parse_with(body, FormLimits::default())
    }

    /// Decodes a body: `+` or `%20` for space, either hex case, raw or escaped brackets, empty
    /// pieces skipped, a piece without `=` read as a key with an empty value, only the first
    /// `=` of a piece splitting it.
    ///
    /// Never panics: any input gives a `Form` or a [`FormError`].
    ///
    /// ```
    /// use posthook::{Form, FormError, FormLimits};
    ///
    /// let form = Form::parse(b"a=1&&b&a=x%2by+z").unwrap();
    /// assert_eq!(form.iter().collect::<Vec<_>>(), [("a", "1"), ("b", ""), ("a", "x+y z")]);
    ///
    /// assert_eq!(Form::parse(b"a=1&b=%G1"), Err(FormError::InvalidEscape { offset: 6 }));
    /// let strict = FormLimits { max_fields: 1, ..FormLimits::default() };
    /// assert_eq!(
    ///     Form::parse_with(b"a=1&b=2", strict),
    ///     Err(FormError::TooManyFields { limit: 1 })
    /// );
    /// ```
    pub fn parse_with(body: &[u8], limits: FormLimits) -> Result<Form, FormError> {
        decode::parse(body, limits)
    }

    /// Encodes the body.
    pub fn encode(&self) -> Bytes {
        let mut w = FormWriter::with_capacity(self.buf.len() + 2 * self.ends.len());
        for (k, v) in self.iter() {
            w.pair(k, v);
        }
        w.finish()
    }
}

impl fmt::Debug for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Form ")?;
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Form {
    /// A form of these pairs, in order: `(&str, &str)`, `(String, String)` or any mix.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut form = Form::new();
        for (k, v) in iter {
            form.push_str(k.as_ref(), v.as_ref());
        }
        form
    }
}

impl fmt::Display for Form {
    /// Writes the encoded body.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The encoded body is ASCII.
        f.write_str(std::str::from_utf8(&self.encode()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_lists_the_pairs() {
        let form: Form = [("a", "1"), ("b", "")].into_iter().collect();
        assert_eq!(format!("{form:?}"), r#"Form [("a", "1"), ("b", "")]"#);
    }

    #[test]
    fn equality_is_by_pairs() {
        let mut pushed = Form::new();
        pushed.push("ab", "c");
        let parsed = Form::parse(b"ab=c").unwrap();
        assert_eq!(pushed, parsed);
        let other: Form = [("a", "bc")].into_iter().collect();
        assert_ne!(pushed, other);
    }
}
