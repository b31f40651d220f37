//! `AutomationPayload`: the automation-step body (contact block + `seriesid`).

mod support;

use posthook::{AutomationPayload, Contact, DecodeError, Event};
use proptest::prelude::*;
use support::sorted_pairs;

/// An automation body as ActiveCampaign posts it: contact keys, `contact[ip4]`, custom fields
/// keyed by personalization tag, `seriesid` last.
const CAPTURED: &str = "contact%5Bid%5D=1543&contact%5Bemail%5D=giulia%2Btest%40example.it\
&contact%5Bfirst_name%5D=Giulia&contact%5Blast_name%5D=Bianchi&contact%5Bphone%5D=%2B39+02+1234+5678\
&contact%5Borgname%5D=R%26D+Citt%C3%A0&contact%5Bcustomer_acct_name%5D=R%26D+Citt%C3%A0\
&contact%5Btags%5D=webinar%2C+lead&contact%5Bip4%5D=198.51.100.7\
&contact%5Bfields%5D%5Butm_source%5D=google&contact%5Bfields%5D%5Butm_medium%5D=cpc\
&contact%5Bfields%5D%5Bcitta%5D=&seriesid=27";

#[test]
fn captured_automation_body() {
    let p = AutomationPayload::decode(CAPTURED.as_bytes()).unwrap();
    assert_eq!(p.series_id(), "27");
    let c = p.contact();
    assert_eq!(c.id(), Some("1543"));
    assert_eq!(c.email(), Some("giulia+test@example.it"));
    assert_eq!(c.phone(), Some("+39 02 1234 5678"));
    assert_eq!(c.orgname(), Some("R&D Città"));
    assert_eq!(c.tags(), ["webinar", "lead"]);
    assert_eq!(c.ip4(), Some("198.51.100.7"));
    assert_eq!(c.ip(), None);
    assert_eq!(c.field("utm_source"), Some("google"));
    assert_eq!(c.field("utm_medium"), Some("cpc"));
    assert_eq!(c.field("citta"), Some(""));
    assert!(p.extra().is_empty());
    assert_eq!(&p.encode()[..], CAPTURED.as_bytes());
}

#[test]
fn no_common_keys_and_seriesid_required() {
    let body = AutomationPayload::sample().encode();
    let pairs = sorted_pairs(&body);
    for key in support::COMMON_KEYS {
        assert!(pairs.iter().all(|(k, _)| k != key), "{key}");
    }
    assert!(Event::decode(&body).is_err(), "not an event");
    let err = AutomationPayload::decode(b"contact%5Bid%5D=1").unwrap_err();
    assert_eq!(err, DecodeError::MissingKey { key: "seriesid" });
    assert_eq!(err.key(), Some("seriesid"));
}

#[test]
fn unknown_and_repeated_keys_are_kept() {
    let raw = "seriesid=3&contact%5Bid%5D=1&x=1&seriesid=4&contact%5Bid%5D=2&type=open";
    let p = AutomationPayload::decode(raw.as_bytes()).unwrap();
    assert_eq!(p.series_id(), "3");
    assert_eq!(p.contact().id(), Some("1"));
    assert_eq!(p.extra().len(), 4);
    assert_eq!(sorted_pairs(&p.encode()), sorted_pairs(raw.as_bytes()));
    assert_eq!(AutomationPayload::decode(&p.encode()).unwrap(), p);
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 &=+%\\[\\]èàøß€😀.,-]{0,24}",
        Just(String::new()),
        any::<String>(),
    ]
}

prop_compose! {
    fn payload()(
        series in value(),
        scalars in prop::collection::btree_map(0..Contact::KEYS.len(), value(), 0..10),
        fields in prop::collection::btree_map("[a-z0-9_]{0,12}", value(), 0..6),
        extra in prop::collection::vec(("x_[a-z0-9]{0,6}", value()), 0..4),
    ) -> AutomationPayload {
        let mut p = AutomationPayload::new(series);
        for (i, v) in scalars {
            p.push_pair(Contact::KEYS[i], v);
        }
        for (k, v) in fields {
            p.contact_mut().set_field(k, v);
        }
        for (k, v) in extra {
            p.push_pair(k, v);
        }
        p
    }
}

proptest! {
    #[test]
    fn decode_inverts_encode(p in payload()) {
        prop_assert_eq!(AutomationPayload::decode(&p.encode()), Ok(p));
    }

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = AutomationPayload::decode(&bytes);
    }
}
