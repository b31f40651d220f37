//! The form codec: a table of real vectors, then properties against `serde_urlencoded`.

use posthook::{Form, FormError, FormLimits, FormWriter};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Vectors
// ---------------------------------------------------------------------------------------------

/// Pairs and the body `serde_urlencoded` (and so we) must write for them.
const ENCODE: &[(&[(&str, &str)], &str)] = &[
    (&[], ""),
    (&[("type", "deal_update")], "type=deal_update"),
    (
        &[("deal[title]", "Rinnovo licenza & supporto")],
        "deal%5Btitle%5D=Rinnovo+licenza+%26+supporto",
    ),
    (
        &[("contact[fields][3]", "a b")],
        "contact%5Bfields%5D%5B3%5D=a+b",
    ),
    (&[("k", "a=b+c%d")], "k=a%3Db%2Bc%25d"),
    (&[("k", "&=+%[]")], "k=%26%3D%2B%25%5B%5D"),
    (&[("", "v")], "=v"),
    (&[("k", "")], "k="),
    (&[("", "")], "="),
    (&[("", ""), ("", "")], "=&="),
    (&[("a", "1"), ("a", "2")], "a=1&a=2"),
    (&[("k", "*-._~!'()")], "k=*-._%7E%21%27%28%29"),
    (
        &[("città", "perché 😀")],
        "citt%C3%A0=perch%C3%A9+%F0%9F%98%80",
    ),
    (&[("k", "a\r\nb\t\0")], "k=a%0D%0Ab%09%00"),
    (
        &[("date_time", "2023-07-12T06:49:04-05:00")],
        "date_time=2023-07-12T06%3A49%3A04-05%3A00",
    ),
    (
        &[("contact[email]", "a+b@x.it")],
        "contact%5Bemail%5D=a%2Bb%40x.it",
    ),
];

/// What parsing a body must give.
enum Expect {
    Pairs(&'static [(&'static str, &'static str)]),
    Error(FormError),
}
use Expect::{Error, Pairs};

const fn limits(max_fields: usize, max_depth: usize) -> FormLimits {
    FormLimits {
        max_fields,
        max_depth,
    }
}

const DEFAULT: FormLimits = limits(10_000, 8);

/// Bodies, the limits to parse them with, and the expected result.
const PARSE: &[(&[u8], FormLimits, Expect)] = &[
    (b"", DEFAULT, Pairs(&[])),
    (b"a=1&b=2", DEFAULT, Pairs(&[("a", "1"), ("b", "2")])),
    (b"b=2&a=1", DEFAULT, Pairs(&[("b", "2"), ("a", "1")])),
    // Space as `+` or `%20`.
    (b"a=x+y", DEFAULT, Pairs(&[("a", "x y")])),
    (b"a=x%20y", DEFAULT, Pairs(&[("a", "x y")])),
    (b"a+b=c", DEFAULT, Pairs(&[("a b", "c")])),
    // Either hex case.
    (b"a=%c3%a9", DEFAULT, Pairs(&[("a", "é")])),
    (b"a=%C3%A9", DEFAULT, Pairs(&[("a", "é")])),
    (b"a=%c3%A9%2b%2B", DEFAULT, Pairs(&[("a", "é++")])),
    // Raw or escaped brackets.
    (
        b"contact[email]=x",
        DEFAULT,
        Pairs(&[("contact[email]", "x")]),
    ),
    (
        b"contact%5Bemail%5D=x",
        DEFAULT,
        Pairs(&[("contact[email]", "x")]),
    ),
    (
        b"contact%5bemail%5d=x",
        DEFAULT,
        Pairs(&[("contact[email]", "x")]),
    ),
    // Escaped separators are data.
    (b"a=%26%3D%25", DEFAULT, Pairs(&[("a", "&=%")])),
    (b"%3D=%26", DEFAULT, Pairs(&[("=", "&")])),
    // Empty pieces are skipped; a piece without `=` is a key with an empty value.
    (b"a=1&&b=2", DEFAULT, Pairs(&[("a", "1"), ("b", "2")])),
    (b"&&&", DEFAULT, Pairs(&[])),
    (b"&a=1&", DEFAULT, Pairs(&[("a", "1")])),
    (b"a", DEFAULT, Pairs(&[("a", "")])),
    (b"a&b", DEFAULT, Pairs(&[("a", ""), ("b", "")])),
    (b"=", DEFAULT, Pairs(&[("", "")])),
    (b"=v", DEFAULT, Pairs(&[("", "v")])),
    (b"k=", DEFAULT, Pairs(&[("k", "")])),
    // Only the first `=` splits.
    (b"a=b=c", DEFAULT, Pairs(&[("a", "b=c")])),
    (b"a==", DEFAULT, Pairs(&[("a", "=")])),
    // Duplicates kept, in order.
    (
        b"a=1&b=2&a=3",
        DEFAULT,
        Pairs(&[("a", "1"), ("b", "2"), ("a", "3")]),
    ),
    // Raw UTF-8 is fine.
    (
        "città=perché 😀".as_bytes(),
        DEFAULT,
        Pairs(&[("città", "perché 😀")]),
    ),
    // Malformed escapes: the offset of the `%`.
    (
        b"a=%",
        DEFAULT,
        Error(FormError::InvalidEscape { offset: 2 }),
    ),
    (
        b"a=%4",
        DEFAULT,
        Error(FormError::InvalidEscape { offset: 2 }),
    ),
    (
        b"a=%G1",
        DEFAULT,
        Error(FormError::InvalidEscape { offset: 2 }),
    ),
    (
        b"a=%1G",
        DEFAULT,
        Error(FormError::InvalidEscape { offset: 2 }),
    ),
    (
        b"a=%%",
        DEFAULT,
        Error(FormError::InvalidEscape { offset: 2 }),
    ),
    (
        b"%%41=1",
        DEFAULT,
        Error(FormError::InvalidEscape { offset: 0 }),
    ),
    (
        b"a=1&b%=2",
        DEFAULT,
        Error(FormError::InvalidEscape { offset: 5 }),
    ),
    (
        b"a=1&b=x%4&c=3",
        DEFAULT,
        Error(FormError::InvalidEscape { offset: 7 }),
    ),
    (
        b"a=%41%",
        DEFAULT,
        Error(FormError::InvalidEscape { offset: 5 }),
    ),
    // Invalid UTF-8: the offset of the first byte of the bad sequence.
    (
        b"a=%FF",
        DEFAULT,
        Error(FormError::InvalidUtf8 { offset: 2 }),
    ),
    (
        b"%FF=a",
        DEFAULT,
        Error(FormError::InvalidUtf8 { offset: 0 }),
    ),
    (
        b"a=ok&b=x%E9y",
        DEFAULT,
        Error(FormError::InvalidUtf8 { offset: 8 }),
    ),
    (
        b"a=%C3",
        DEFAULT,
        Error(FormError::InvalidUtf8 { offset: 2 }),
    ),
    (
        b"a=x\xFF",
        DEFAULT,
        Error(FormError::InvalidUtf8 { offset: 3 }),
    ),
    (
        b"a=%C3%A9%C3",
        DEFAULT,
        Error(FormError::InvalidUtf8 { offset: 8 }),
    ),
    // A character may not straddle key and value, or two pairs.
    (
        b"%C3=%A9",
        DEFAULT,
        Error(FormError::InvalidUtf8 { offset: 0 }),
    ),
    (
        b"a=%C3&%A9",
        DEFAULT,
        Error(FormError::InvalidUtf8 { offset: 2 }),
    ),
    // The first fault in body order wins.
    (
        b"a=%FF&b=%G",
        DEFAULT,
        Error(FormError::InvalidUtf8 { offset: 2 }),
    ),
    (
        b"a=%G&b=%FF",
        DEFAULT,
        Error(FormError::InvalidEscape { offset: 2 }),
    ),
    // Inside one field, a bad escape is reported before bad UTF-8.
    (
        b"a=%FF%G",
        DEFAULT,
        Error(FormError::InvalidEscape { offset: 5 }),
    ),
    // Too many fields; empty pieces do not count.
    (b"a&b", limits(2, 8), Pairs(&[("a", ""), ("b", "")])),
    (b"a&&b&&", limits(2, 8), Pairs(&[("a", ""), ("b", "")])),
    (
        b"a&b&c",
        limits(2, 8),
        Error(FormError::TooManyFields { limit: 2 }),
    ),
    (
        b"a",
        limits(0, 8),
        Error(FormError::TooManyFields { limit: 0 }),
    ),
    (b"&&", limits(0, 8), Pairs(&[])),
    (
        b"a&b&c=%",
        limits(2, 8),
        Error(FormError::TooManyFields { limit: 2 }),
    ),
    // Too deep: `[` in the decoded key, raw or escaped; the offset of the pair.
    (b"a[1][2]=v", limits(10, 2), Pairs(&[("a[1][2]", "v")])),
    (
        b"x=1&a[1][2][3]=v",
        limits(10, 2),
        Error(FormError::TooDeep {
            offset: 4,
            limit: 2,
        }),
    ),
    (
        b"a%5B1%5D%5b2%5d%5B3%5D=v",
        limits(10, 2),
        Error(FormError::TooDeep {
            offset: 0,
            limit: 2,
        }),
    ),
    (
        b"x=1&a[[[[[[[[[",
        DEFAULT,
        Error(FormError::TooDeep {
            offset: 4,
            limit: 8,
        }),
    ),
    // Brackets in a value are not depth.
    (
        b"a=[[[[[[[[[[[[",
        limits(10, 0),
        Pairs(&[("a", "[[[[[[[[[[[[")]),
    ),
];

#[test]
fn encode_vectors() {
    for &(pairs, body) in ENCODE {
        let mut w = FormWriter::new();
        for &(k, v) in pairs {
            w.pair(k, v);
        }
        assert_eq!(w.as_bytes(), body.as_bytes(), "{pairs:?}");
        assert_eq!(w.len(), body.len());
        assert_eq!(w.finish(), body, "{pairs:?}");

        let form: Form = pairs.iter().copied().collect();
        assert_eq!(form.encode(), body, "{pairs:?}");
        assert_eq!(form.to_string(), body, "{pairs:?}");

        let oracle = serde_urlencoded::to_string(pairs).unwrap();
        assert_eq!(
            oracle, body,
            "the vector itself disagrees with serde_urlencoded"
        );
    }
}

#[test]
fn parse_vectors() {
    for (body, limits, expect) in PARSE {
        let shown = String::from_utf8_lossy(body);
        let got = Form::parse_with(body, *limits);
        match expect {
            Pairs(pairs) => {
                let form = got.unwrap_or_else(|e| panic!("{shown:?}: {e}"));
                assert_eq!(form.iter().collect::<Vec<_>>(), *pairs, "{shown:?}");
                assert_eq!(form.len(), pairs.len());
                assert_eq!(form.is_empty(), pairs.is_empty());
                assert_eq!(form, pairs.iter().copied().collect::<Form>(), "{shown:?}");
            }
            Error(error) => assert_eq!(got.as_ref(), Err(error), "{shown:?}"),
        }
    }
}

#[test]
fn error_messages_name_the_offset() {
    let err = Form::parse(b"a=1&b=%G1").unwrap_err();
    assert_eq!(err.to_string(), "invalid percent-escape at byte 6");
    let err = Form::parse(b"a=%FF").unwrap_err();
    assert_eq!(err.to_string(), "invalid UTF-8 at byte 2");
}

#[test]
fn get_and_get_all() {
    let form = Form::parse(b"a=1&b=2&a=3&ab=4&=5").unwrap();
    assert_eq!(form.get("a"), Some("1"));
    assert_eq!(form.get("b"), Some("2"));
    assert_eq!(form.get("ab"), Some("4"));
    assert_eq!(form.get(""), Some("5"));
    assert_eq!(form.get("c"), None);
    assert_eq!(form.get("a=1"), None);
    assert_eq!(form.get_all("a").collect::<Vec<_>>(), ["1", "3"]);
    assert_eq!(form.get_all("c").count(), 0);
}

#[test]
fn push_appends() {
    let mut form = Form::parse(b"a=1").unwrap();
    form.push("deal[title]", String::from("x & y"));
    form.push("", "");
    assert_eq!(form.len(), 3);
    assert_eq!(form.get("deal[title]"), Some("x & y"));
    assert_eq!(form.to_string(), "a=1&deal%5Btitle%5D=x+%26+y&=");
    assert_eq!(Form::parse(form.encode().as_ref()).unwrap(), form);
    assert!(Form::new().is_empty());
    assert_eq!(Form::new(), Form::default());
}

#[test]
fn writer_helpers() {
    assert_eq!(FormWriter::escape("contact[email]"), "contact%5Bemail%5D");
    assert_eq!(FormWriter::escape(""), "");
    let mut sized = FormWriter::with_capacity(64);
    assert!(sized.is_empty());
    sized.pair("contact[email]", "a+b@x.it");
    sized.reserve(100);
    sized.pair("deal[title]", "a b");
    let mut plain = FormWriter::new();
    plain.pair("contact[email]", "a+b@x.it");
    plain.pair("deal[title]", "a b");
    assert_eq!(sized, plain);
    assert_eq!(
        sized.clone().finish(),
        "contact%5Bemail%5D=a%2Bb%40x.it&deal%5Btitle%5D=a+b"
    );
    assert!(format!("{sized:?}").contains("contact%5Bemail%5D"));
}

/// A 10 MB value goes through encode and parse, with the default limits, intact.
#[test]
fn ten_megabyte_value_round_trips() {
    let unit = "Nota sull'offerta: perché 10% + IVA & spese? Città: Bézier.\r\n";
    let value = unit.repeat(10 * 1024 * 1024 / unit.len() + 1);
    assert!(value.len() >= 10 * 1024 * 1024);
    let mut w = FormWriter::new();
    w.pair("type", "deal_note_add");
    w.pair("deal[note]", &value);
    let body = w.finish();
    assert_eq!(
        body,
        serde_urlencoded::to_string([("type", "deal_note_add"), ("deal[note]", &value)]).unwrap()
    );
    let form = Form::parse(&body).unwrap();
    let got = form.get("deal[note]").unwrap();
    assert_eq!(got.len(), value.len());
    assert!(got == value);
    assert_eq!(form.encode(), body);
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Text heavy in the bytes that matter here, or any Unicode at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[&=+%\\[\\] a-zA-Z0-9*._~é😀\r\n-]{0,12}",
        any::<String>(),
        Just(String::new()),
    ]
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((text(), text()), 0..8)
}

/// Limits that never get in the way of a round trip.
const UNLIMITED: FormLimits = limits(usize::MAX, usize::MAX);

fn as_strs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// A body whose `%`s are not all followed by two hex digits, or whose decoded bytes are not
/// UTF-8, or both: what the parser sees on the wire.
fn bodyish() -> impl Strategy<Value = String> {
    "[a-z%=&+\\[\\]0-9A-F ]{0,64}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Long values, mostly prose that escapes to one byte a byte, now and then a byte that
    /// does not: every chunk boundary meets both kinds.
    #[test]
    fn long_values_encode_as_serde_urlencoded(
        value in "([a-zA-Z0-9*._ -]{0,40}[,&=+%\\[\\]é😀~\n]?){0,8}"
    ) {
        let oracle = serde_urlencoded::to_string([("note", value.as_str())]).unwrap();
        let mut w = FormWriter::new();
        w.pair("note", &value);
        prop_assert_eq!(w.as_bytes(), oracle.as_bytes());
    }

    #[test]
    fn encode_equals_serde_urlencoded(pairs in pairs()) {
        let oracle = serde_urlencoded::to_string(&pairs).unwrap();
        let mut w = FormWriter::new();
        for (k, v) in &pairs {
            w.pair(k, v);
        }
        prop_assert_eq!(w.as_bytes(), oracle.as_bytes());
        let form: Form = as_strs(&pairs).into_iter().collect();
        prop_assert_eq!(form.to_string(), oracle);
    }

    /// Every encoded piece holds `=`, so nothing is dropped: even ("", "") comes back.
    #[test]
    fn parse_inverts_encode(pairs in pairs()) {
        let form: Form = as_strs(&pairs).into_iter().collect();
        let body = form.encode();
        let parsed = Form::parse_with(&body, UNLIMITED).unwrap();
        prop_assert_eq!(parsed.iter().collect::<Vec<_>>(), as_strs(&pairs));
        prop_assert_eq!(&parsed, &form);
        prop_assert_eq!(parsed.encode(), body);
    }

    #[test]
    fn parse_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_parse(&body)?;
    }

    #[test]
    fn parse_never_panics_on_form_like_text(body in bodyish()) {
        check_parse(body.as_bytes())?;
    }

    #[test]
    fn parse_agrees_with_serde_urlencoded_on_valid_bodies(pairs in pairs(), body in bodyish()) {
        // Real bodies, and bodies whose escapes happen to be well formed.
        let encoded = serde_urlencoded::to_string(&pairs).unwrap();
        for body in [encoded.as_bytes(), body.as_bytes()] {
            if let Ok(form) = Form::parse_with(body, UNLIMITED) {
                let oracle: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap();
                prop_assert_eq!(form.iter().collect::<Vec<_>>(), as_strs(&oracle));
            }
        }
    }

    #[test]
    fn limits_hold(body in "[a\\[&=]{0,40}", max_fields in 0usize..6, max_depth in 0usize..4) {
        let limits = limits(max_fields, max_depth);
        match Form::parse_with(body.as_bytes(), limits) {
            Ok(form) => {
                prop_assert!(form.len() <= max_fields);
                for (k, _) in form.iter() {
                    prop_assert!(k.matches('[').count() <= max_depth);
                }
            }
            Err(FormError::TooManyFields { limit }) => {
                prop_assert_eq!(limit, max_fields);
                prop_assert!(body.split('&').filter(|p| !p.is_empty()).count() > max_fields);
            }
            Err(FormError::TooDeep { offset, limit }) => {
                prop_assert_eq!(limit, max_depth);
                let key = body[offset..].split(['&', '=']).next().unwrap();
                prop_assert!(key.matches('[').count() > max_depth);
            }
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }
}

/// Parses `body`; an error must point at a real fault.
fn check_parse(body: &[u8]) -> Result<(), TestCaseError> {
    let _ = Form::parse(body);
    match Form::parse_with(body, UNLIMITED) {
        Ok(form) => {
            let oracle: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap();
            prop_assert_eq!(form.iter().collect::<Vec<_>>(), as_strs(&oracle));
        }
        Err(FormError::InvalidEscape { offset }) => {
            prop_assert_eq!(body.get(offset), Some(&b'%'));
            let digits = body.get(offset + 1..offset + 3).unwrap_or_default();
            prop_assert!(digits.len() < 2 || !digits.iter().all(u8::is_ascii_hexdigit));
        }
        Err(FormError::InvalidUtf8 { offset }) => {
            prop_assert!(offset < body.len());
            // The bad sequence starts at a raw byte that is not ASCII, or at an escape of one.
            let b = body[offset];
            prop_assert!(b >= 0x80 || (b == b'%' && body[offset + 1] >= b'8'));
        }
        Err(e) => prop_assert!(false, "unexpected {:?} without limits", e),
    }
    Ok(())
}

#[test]
fn forms_collect_from_owned_or_borrowed_pairs() {
    let owned: Form = vec![("a[b]".to_owned(), "1 2".to_owned())]
        .into_iter()
        .collect();
    let borrowed: Form = [("a[b]", "1 2")].into_iter().collect();
    assert_eq!(owned, borrowed);
    assert_eq!(owned.to_string(), "a%5Bb%5D=1+2");
}
