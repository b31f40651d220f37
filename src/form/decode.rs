//! Decoding: a fast single pass that only says "this body is fine" or "something is wrong", and a
//! plain reference pass that runs only when something is wrong, to say exactly what and where.

use super::{Form, FormError, FormLimits};

/// Bits of [`STOP`]: the bytes that end a run of plain bytes.
const AMP: u8 = 1;
const EQ: u8 = 2;
const PCT: u8 = 4;

/// For each byte, which of `&`, `=`, `%` it is (a bit each; 0 for every other byte).
static STOP: [u8; 256] = {
    let mut table = [0u8; 256];
    table[b'&' as usize] = AMP;
    table[b'=' as usize] = EQ;
    table[b'%' as usize] = PCT;
    table
};

/// Each plain byte decoded: `+` is a space, every other byte stands for itself.
static PLAIN: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = i as u8;
        i += 1;
    }
    table[b'+' as usize] = b' ';
    table
};

/// The value of a hex digit (either case), or 0xFF.
static HEX: [u8; 256] = {
    let mut table = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Decodes `body` into a [`Form`], or says what is wrong with it.
///
/// Rejecting costs no more memory than accepting: when the fast pass fails, the error is
/// found field by field in one scratch buffer (the largest field), nothing else kept.
pub(super) fn parse(body: &[u8], limits: FormLimits) -> Result<Form, FormError> {
    match fast(body, limits) {
        Some(form) => Ok(form),
        None => match first_error(body, limits) {
            Some(error) => Err(error),
            // The passes agree (a property test says so); should they not, the plain one
            // decides.
            None => reference(body, limits),
        },
    }
}

/// The whole body decoded into one buffer (decoding never makes text longer, so the buffer is
/// sized once), with the end of each key and value recorded. UTF-8 is checked once over the
/// buffer, then at each field boundary. `None` when anything at all is wrong.
pub(super) fn fast(body: &[u8], limits: FormLimits) -> Option<Form> {
    let mut out = vec![0u8; body.len()];
    let mut ends = Vec::new();
    let mut i = 0;
    let mut w = 0;
    while let Some(&b) = body.get(i) {
        if b == b'&' {
            i += 1;
            continue;
        }
        if ends.len() == limits.max_fields {
            return None;
        }
        let key_start = w;
        (i, w) = field(body, i, &mut out, w, AMP | EQ | PCT)?;
        let key = out.get(key_start..w)?;
        if key.len() > limits.max_depth && depth(key) > limits.max_depth {
            return None;
        }
        let key_end = w;
        if body.get(i) == Some(&b'=') {
            (i, w) = field(body, i + 1, &mut out, w, AMP | PCT)?;
        }
        ends.push((key_end, w));
    }
    out.truncate(w);
    let buf = String::from_utf8(out).ok()?;
    // Each field on its own must be UTF-8: a character may not straddle a boundary.
    if !ends
        .iter()
        .all(|&(k, v)| buf.is_char_boundary(k) && buf.is_char_boundary(v))
    {
        return None;
    }
    Some(Form { buf, ends })
}

/// Decodes one key or value from `body[i..]` into `out[w..]`, up to the first byte of `stop`
/// that is not `%`. Returns where reading and writing stopped; `None` on a bad escape.
#[inline(always)]
fn field(
    body: &[u8],
    mut i: usize,
    out: &mut [u8],
    mut w: usize,
    stop: u8,
) -> Option<(usize, usize)> {
    while let Some(&b) = body.get(i) {
        if STOP[usize::from(b)] & stop == 0 {
            *out.get_mut(w)? = PLAIN[usize::from(b)];
            i += 1;
        } else if b == b'%' {
            let high = HEX[usize::from(*body.get(i + 1)?)];
            let low = HEX[usize::from(*body.get(i + 2)?)];
            if (high | low) > 0xF {
                return None;
            }
            *out.get_mut(w)? = high << 4 | low;
            i += 3;
        } else {
            break;
        }
        w += 1;
    }
    Some((i, w))
}

/// The number of `[` in a decoded key.
fn depth(key: &[u8]) -> usize {
    key.iter().filter(|&&b| b == b'[').count()
}

/// The plain decoder: piece by piece, field by field, in body order, so that the error it
/// returns is the first one. Within a field a bad escape is found before bad UTF-8.
pub(super) fn reference(body: &[u8], limits: FormLimits) -> Result<Form, FormError> {
    let mut form = Form::new();
    let mut scratch = Vec::new();
    walk(body, limits, &mut scratch, |key, value| {
        form.push(key.to_owned(), value.to_owned());
    })?;
    Ok(form)
}

/// The first thing wrong with `body`, as [`reference`] would say it, keeping nothing but
/// the field being decoded; `None` when nothing is.
fn first_error(body: &[u8], limits: FormLimits) -> Option<FormError> {
    let mut scratch = Vec::new();
    walk(body, limits, &mut scratch, |_, _| {}).err()
}

/// Goes through `body` field by field, in body order, handing each decoded pair to `pair`;
/// stops at the first error. `scratch` holds one decoded field at a time.
fn walk(
    body: &[u8],
    limits: FormLimits,
    scratch: &mut Vec<u8>,
    mut pair: impl FnMut(&str, &str),
) -> Result<(), FormError> {
    let mut start = 0;
    let mut fields = 0;
    let mut key = String::new();
    for piece in body.split(|&b| b == b'&') {
        let offset = start;
        start += piece.len() + 1;
        if piece.is_empty() {
            continue;
        }
        if fields == limits.max_fields {
            return Err(FormError::TooManyFields {
                limit: limits.max_fields,
            });
        }
        let (raw_key, raw_value, value_offset) = match piece.iter().position(|&b| b == b'=') {
            Some(eq) => (&piece[..eq], &piece[eq + 1..], offset + eq + 1),
            None => (piece, &[][..], offset + piece.len()),
        };
        key.clear();
        key.push_str(decode_field(raw_key, offset, scratch)?);
        if depth(key.as_bytes()) > limits.max_depth {
            return Err(FormError::TooDeep {
                offset,
                limit: limits.max_depth,
            });
        }
        let value = decode_field(raw_value, value_offset, scratch)?;
        pair(&key, value);
        fields += 1;
    }
    Ok(())
}

/// Decodes one field that starts at `offset` in the body into `scratch` (emptied first).
fn decode_field<'s>(
    raw: &[u8],
    offset: usize,
    scratch: &'s mut Vec<u8>,
) -> Result<&'s str, FormError> {
    scratch.clear();
    // Decoding never makes a field longer: one allocation, of the field's size at most.
    scratch.reserve_exact(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'%' {
            let digit = |at: usize| raw.get(at).map(|&d| HEX[usize::from(d)]);
            match (digit(i + 1), digit(i + 2)) {
                (Some(high), Some(low)) if high | low <= 0xF => scratch.push(high << 4 | low),
                _ => return Err(FormError::InvalidEscape { offset: offset + i }),
            }
            i += 3;
        } else {
            scratch.push(PLAIN[usize::from(b)]);
            i += 1;
        }
    }
    match std::str::from_utf8(scratch) {
        Ok(text) => Ok(text),
        Err(e) => Err(FormError::InvalidUtf8 {
            offset: offset + raw_offset(raw, e.valid_up_to()),
        }),
    }
}

/// Where in `raw` the decoded byte number `decoded` came from (its `%` for an escape).
fn raw_offset(raw: &[u8], decoded: usize) -> usize {
    let (mut i, mut n) = (0, 0);
    while n < decoded && i < raw.len() {
        i += if raw[i] == b'%' { 3 } else { 1 };
        n += 1;
    }
    i.min(raw.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> FormLimits {
        FormLimits {
            max_fields: 6,
            max_depth: 2,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The fast pass accepts exactly what the reference accepts, with the same result.
        #[test]
        fn fast_agrees_with_reference(body in "[a-c%=&+\\[\\]0-9A-Fa-f \u{e9}]{0,40}") {
            let body = body.as_bytes();
            match (fast(body, limits()), reference(body, limits())) {
                (Some(f), Ok(r)) => prop_assert_eq!(f, r),
                (None, Err(_)) => {}
                (f, r) => prop_assert!(false, "fast {:?} vs reference {:?}", f, r),
            }
        }

        /// Rejecting finds the reference's error without building the form.
        #[test]
        fn first_error_is_the_references(body in proptest::collection::vec(
            prop_oneof![Just(b'%'), Just(b'&'), Just(b'='), Just(b'['), Just(b'C'),
                        Just(b'3'), Just(b'A'), Just(b'9'), Just(b'+'), any::<u8>()],
            0..40,
        )) {
            prop_assert_eq!(first_error(&body, limits()), reference(&body, limits()).err());
            prop_assert_eq!(parse(&body, limits()), reference(&body, limits()));
        }

        #[test]
        fn fast_agrees_with_reference_on_bytes(body in proptest::collection::vec(
            prop_oneof![Just(b'%'), Just(b'&'), Just(b'='), Just(b'['), Just(b'C'),
                        Just(b'3'), Just(b'A'), Just(b'9'), Just(b'+'), any::<u8>()],
            0..40,
        )) {
            match (fast(&body, limits()), reference(&body, limits())) {
                (Some(f), Ok(r)) => prop_assert_eq!(f, r),
                (None, Err(_)) => {}
                (f, r) => prop_assert!(false, "fast {:?} vs reference {:?}", f, r),
            }
        }
    }

    #[test]
    fn a_character_split_between_key_and_value_is_invalid() {
        // Together "%C3%A9" is "é"; apart, neither half is UTF-8.
        assert!(fast(b"%C3=%A9", FormLimits::default()).is_none());
        assert_eq!(
            reference(b"%C3=%A9", FormLimits::default()),
            Err(FormError::InvalidUtf8 { offset: 0 })
        );
        assert_eq!(
            reference(b"a=%C3&%A9", FormLimits::default()),
            Err(FormError::InvalidUtf8 { offset: 2 })
        );
    }
}
