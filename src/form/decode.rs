//! Decoding: a fast single pass that only says "this body is fine" or "something is wrong", and a
//! plain reference pass that runs only when something is wrong, to say exactly what and where.

use super::{Form, FormError, FormLimits};

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

/// The whole body decoded into one buffer (decoding never makes text longer, so the buffer
/// is sized once), with the end of each key and value recorded. UTF-8 is checked once over
/// the buffer, then at each field boundary. `None` when anything at all is wrong.
pub(super) fn fast(body: &[u8], limits: FormLimits) -> Option<Form> {
    let mut out = Vec::with_capacity(body.len());
    let mut ends = Vec::new();
    decode_all(body, limits, &mut out, &mut ends)?;
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

/// Where the raw key that starts at `body[i]` ends: the first `=` or `&` at or after `i`, or
/// the body's end. (An escape never hides a raw `=` or `&`.)
#[inline]
pub(crate) fn key_end(body: &[u8], i: usize) -> usize {
    scan(body, i, RUN_AMP | RUN_EQ)
}

/// Where the raw value that starts at `body[i]` (just after its `=`) ends: the first `&` at or
/// after `i`, or the body's end.
#[inline]
pub(crate) fn value_end(body: &[u8], i: usize) -> usize {
    scan(body, i, RUN_AMP)
}

/// Decodes one raw key or value (no `&` in it; a key has no `=` either) onto the end of `out`:
/// runs of plain text copied whole, `+` as a space, each `%XX` as its byte.
///
/// `raw` is a `&str`: a body that is not UTF-8 has a field that is not, so the caller checks
/// the body once. Then only escapes can make a field invalid, and each group of escapes that
/// spells a character must be that character whole (a raw run starts and ends on a character
/// boundary); so each is checked on its own, and the field is valid exactly when
/// [`parse`] would take it. `None` on a bad escape or an escaped sequence that is not UTF-8.
pub(crate) fn decode_text(raw: &str, out: &mut String) -> Option<()> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    // The escaped bytes of a character not yet complete, and how many it takes.
    let mut pending = [0u8; 4];
    let (mut have, mut want) = (0, 0);
    loop {
        let end = scan(bytes, i, RUN_ESCAPE);
        if end > i {
            if have != 0 {
                return None;
            }
            out.push_str(raw.get(i..end)?);
        }
        match bytes.get(end) {
            Some(b'+') if have == 0 => {
                out.push(' ');
                i = end + 1;
            }
            Some(b'%') => {
                let high = HEX[usize::from(*bytes.get(end + 1)?)];
                let low = HEX[usize::from(*bytes.get(end + 2)?)];
                if (high | low) > 0xF {
                    return None;
                }
                let byte = high << 4 | low;
                i = end + 3;
                if have == 0 {
                    want = match byte {
                        0x00..=0x7F => {
                            out.push(char::from(byte));
                            continue;
                        }
                        0xC2..=0xDF => 2,
                        0xE0..=0xEF => 3,
                        0xF0..=0xF4 => 4,
                        _ => return None,
                    };
                }
                *pending.get_mut(have)? = byte;
                have += 1;
                if have == want {
                    out.push_str(std::str::from_utf8(pending.get(..have)?).ok()?);
                    have = 0;
                }
            }
            _ => return (have == 0).then_some(()),
        }
    }
}

/// Decodes every pair of `body` onto the end of `out`, one after the other, recording in
/// `ends` where each key and each value ends. `None` on a bad escape, too many pairs or a
/// key too deep; UTF-8 is the caller's to check.
fn decode_all(
    body: &[u8],
    limits: FormLimits,
    out: &mut Vec<u8>,
    ends: &mut Vec<(usize, usize)>,
) -> Option<()> {
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        if b == b'&' {
            i += 1;
            continue;
        }
        if ends.len() == limits.max_fields {
            return None;
        }
        let key_start = out.len();
        i = run(body, i, out, RUN_AMP | RUN_EQ)?;
        let key = out.get(key_start..)?;
        if key.len() > limits.max_depth && depth(key) > limits.max_depth {
            return None;
        }
        let key_end = out.len();
        if body.get(i) == Some(&b'=') {
            i = run(body, i + 1, out, RUN_AMP)?;
        }
        ends.push((key_end, out.len()));
    }
    Some(())
}

/// Bits of [`CLASS`]: what ends a run of bytes that decode to themselves.
const RUN_AMP: u8 = 1;
const RUN_EQ: u8 = 2;
const RUN_ESCAPE: u8 = 4;

/// For each byte: `&` and `=` end a field (when looked for), `%` and `+` decode to something
/// else; every other byte is copied as it is.
static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    table[b'&' as usize] = RUN_AMP;
    table[b'=' as usize] = RUN_EQ;
    table[b'%' as usize] = RUN_ESCAPE;
    table[b'+' as usize] = RUN_ESCAPE;
    table
};

/// Decodes one field from `body[i..]` onto the end of `out`, up to the first byte of `stop`
/// (`&`, `=`); returns where reading stopped. Runs of bytes that stand for themselves are
/// copied whole. `None` on a bad escape.
#[inline(always)]
fn run(body: &[u8], mut i: usize, out: &mut Vec<u8>, stop: u8) -> Option<usize> {
    loop {
        let start = i;
        i = plain_run_end(body, i, stop);
        out.extend_from_slice(body.get(start..i)?);
        match body.get(i) {
            Some(b'%') => {
                let high = HEX[usize::from(*body.get(i + 1)?)];
                let low = HEX[usize::from(*body.get(i + 2)?)];
                if (high | low) > 0xF {
                    return None;
                }
                out.push(high << 4 | low);
                i += 3;
            }
            Some(b'+') => {
                out.push(b' ');
                i += 1;
            }
            _ => return Some(i),
        }
    }
}

/// Where the run of bytes that stand for themselves starting at `body[i]` ends: the first
/// `%`, `+` or byte of `stop` (`&`, `=`) at or after `i`, or the body's end.
#[inline(always)]
fn plain_run_end(body: &[u8], i: usize, stop: u8) -> usize {
    scan(body, i, stop | RUN_ESCAPE)
}

/// The first byte at or after `body[i]` of the classes in `stop` ([`CLASS`]), or the body's
/// end. Eight bytes at a time (SWAR: each word tested for every byte looked for at once), then
/// byte by byte.
#[inline(always)]
fn scan(body: &[u8], mut i: usize, stop: u8) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `word` that equals `byte`, and possibly of bytes above
    // the first such byte (the subtraction's borrow): the lowest bit set is always exact.
    let equal = |word: u64, byte: u8| {
        let x = word ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    while let Some(chunk) = body.get(i..i + 8) {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let word = u64::from_le_bytes(bytes);
        let mut hits = 0;
        if stop & RUN_ESCAPE != 0 {
            hits |= equal(word, b'%') | equal(word, b'+');
        }
        if stop & RUN_AMP != 0 {
            hits |= equal(word, b'&');
        }
        if stop & RUN_EQ != 0 {
            hits |= equal(word, b'=');
        }
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = body.get(i) {
        if CLASS[usize::from(b)] & stop != 0 {
            break;
        }
        i += 1;
    }
    i
}

/// The number of `[` in a decoded key.
pub(crate) fn depth(key: &[u8]) -> usize {
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// `decode_text` decodes a field of a UTF-8 body exactly as the reference does, and
        /// refuses exactly what the reference refuses.
        #[test]
        fn decode_text_agrees_with_the_reference(field in proptest::collection::vec(
            prop_oneof![
                Just("%".to_owned()), Just("+".to_owned()), Just("a".to_owned()),
                Just("é".to_owned()), Just("€".to_owned()), Just("=".to_owned()),
                (0u8..=255).prop_map(|b| format!("%{b:02X}")),
                (0u8..=255).prop_map(|b| format!("%{b:02x}")),
                prop::sample::select(vec!["%C3", "%A9", "%E2%82", "%AC", "%F0%9F%98%80", "%ED%A0%80", "%C0%80", "G", "3"])
                    .prop_map(str::to_owned),
            ],
            0..12,
        )) {
            let raw = field.concat();
            let mut scratch = Vec::new();
            let reference = decode_field(raw.as_bytes(), 0, &mut scratch).ok().map(str::to_owned);
            let mut out = String::from("x");
            let ours = decode_text(&raw, &mut out).map(|()| out[1..].to_owned());
            prop_assert_eq!(ours, reference, "{:?}", raw);
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
