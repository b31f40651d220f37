//! Shared helpers for the payload tests.
#![allow(dead_code)]

use posthook::{Form, FormWriter};

/// The pairs of a body, in order.
pub(crate) fn pairs(body: &[u8]) -> Vec<(String, String)> {
    Form::parse(body)
        .expect("a valid form")
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The pairs of a body, sorted: what "the same pairs in another order" compares.
pub(crate) fn sorted_pairs(body: &[u8]) -> Vec<(String, String)> {
    let mut p = pairs(body);
    p.sort();
    p
}

/// Encodes pairs with the crate's writer.
pub(crate) fn body<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Vec<u8> {
    let mut w = FormWriter::new();
    for (k, v) in pairs {
        w.pair(k.as_ref(), v.as_ref());
    }
    w.finish().to_vec()
}

/// The common keys of an event body, in ActiveCampaign's order; an automation body has none.
pub(crate) const COMMON_KEYS: [&str; 5] = [
    "type",
    "date_time",
    "initiated_from",
    "initiated_by",
    "list",
];
