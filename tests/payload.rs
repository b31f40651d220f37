//! `Event`: decoding bodies shaped like captured ActiveCampaign payloads, the wire rules
//! (list, initiated_by, repeats, collisions), errors, a 10 MB note, and property tests.

mod support;

use posthook::{
    Bounce, Campaign, Contact, Deal, DealNote, DealStatus, DecodeError, Event, EventKind,
    FormError, Forward, Link, ListId, ListInfo, OccurredAt, Pipeline, Reply, Share, SignupForm,
    Sms, Source, Stage, Task, TaskType, Unsubscribe,
};
use proptest::prelude::*;
use support::{body, pairs, sorted_pairs};

/// Decodes, checks that re-encoding gives the same pairs, and returns the event.
fn decode_same_pairs(body: &[u8]) -> Event {
    let event = Event::decode(body).unwrap();
    assert_eq!(sorted_pairs(&event.encode()), sorted_pairs(body));
    event
}

// ---------------------------------------------------------------------------------------------
// Bodies shaped like captured payloads, written out as the literal form body.

/// ActiveCampaign's legacy `subscribe` sample: legacy date, `initiated_by`, keys in its order
/// (`form[id]` first, a custom field before `contact[orgname]`), empty values.
const LEGACY_SUBSCRIBE: &str = "type=subscribe&date_time=2013-01-01+12%3A00%3A00\
&initiated_from=admin&initiated_by=admin&list=1&form%5Bid%5D=0&contact%5Bid%5D=1\
&contact%5Bemail%5D=test%40test.com&contact%5Bfirst_name%5D=Test&contact%5Blast_name%5D=Test\
&contact%5Bphone%5D=&contact%5Bip%5D=127.0.0.1&contact%5Btags%5D=tag1%2C+tag2\
&contact%5Bfields%5D%5B1%5D=Value&contact%5Borgname%5D=";

#[test]
fn legacy_subscribe_sample() {
    let e = decode_same_pairs(LEGACY_SUBSCRIBE.as_bytes());
    assert_eq!(e.kind(), EventKind::Subscribe);
    assert_eq!(e.source(), Source::Admin);
    assert_eq!(e.initiated_by(), Some("admin"));
    assert_eq!(e.list(), ListId::new(1));
    assert_eq!(e.occurred_at().to_string(), "2013-01-01 12:00:00");
    assert!(matches!(e.occurred_at(), OccurredAt::Legacy(_)));
    assert_eq!(e.occurred_at().offset(), None);
    let c = e.contact().unwrap();
    assert_eq!(c.id(), Some("1"));
    assert_eq!(c.email(), Some("test@test.com"));
    assert_eq!(c.first_name(), Some("Test"));
    assert_eq!(c.phone(), Some(""), "present and empty stays present");
    assert_eq!(c.ip(), Some("127.0.0.1"));
    assert_eq!(c.orgname(), Some(""));
    assert_eq!(c.customer_acct_name(), None, "absent stays absent");
    assert_eq!(c.tags(), ["tag1", "tag2"]);
    assert_eq!(c.tags_text(), Some("tag1, tag2"));
    assert_eq!(c.field("1"), Some("Value"));
    assert_eq!(e.form().unwrap().id(), Some("0"));
    assert!(e.extra().is_empty());
    assert!(e.campaign().is_none() && e.deal().is_none());
}

/// A `deal_update` as ActiveCampaign writes it: ISO date, contact, the whole deal block,
/// `updated_fields[0..]`.
const DEAL_UPDATE: &str = "type=deal_update&date_time=2023-07-12T06%3A49%3A04-05%3A00\
&initiated_from=admin&initiated_by=admin&list=0\
&contact%5Bid%5D=27&contact%5Bemail%5D=mario.rossi%40example.com&contact%5Bfirst_name%5D=Mario\
&contact%5Blast_name%5D=Rossi&contact%5Bphone%5D=%2B39+06+555+0101&contact%5Bip%5D=0.0.0.0\
&contact%5Borgname%5D=Rossi+%26+Figli&contact%5Bcustomer_acct_name%5D=Rossi+%26+Figli\
&contact%5Btags%5D=&contact%5Bfields%5D%5B3%5D=Roma\
&deal%5Bid%5D=007&deal%5Btitle%5D=Rinnovo+2024&deal%5Borgid%5D=4&deal%5Borgname%5D=Rossi+%26+Figli\
&deal%5Bstageid%5D=2&deal%5Bstage_title%5D=Qualified&deal%5Bpipelineid%5D=1\
&deal%5Bpipeline_title%5D=Sales&deal%5Bvalue%5D=100.00&deal%5Bvalue_raw%5D=100\
&deal%5Bcurrency%5D=usd&deal%5Bcurrency_symbol%5D=%24&deal%5Bstatus%5D=1&deal%5Bowner%5D=1\
&deal%5Bowner_firstname%5D=Anna&deal%5Bowner_lastname%5D=Verdi&deal%5Bcontactid%5D=27\
&deal%5Bcontact_email%5D=mario.rossi%40example.com&deal%5Bcontact_firstname%5D=Mario\
&deal%5Bcontact_lastname%5D=Rossi&deal%5Bcreate_date%5D=2017-11-24+10%3A06%3A22\
&deal%5Bcreate_date_iso%5D=2017-11-24T10%3A06%3A22-06%3A00\
&updated_fields%5B0%5D=value&updated_fields%5B1%5D=status";

#[test]
fn deal_update_with_updated_fields() {
    let e = decode_same_pairs(DEAL_UPDATE.as_bytes());
    assert_eq!(
        &e.encode()[..],
        DEAL_UPDATE.as_bytes(),
        "canonical order: same bytes"
    );
    assert_eq!(e.kind(), EventKind::DealUpdate);
    assert_eq!(e.list(), None);
    assert_eq!(
        e.occurred_at().offset().unwrap().local_minus_utc(),
        -5 * 3600
    );
    let d = e.deal().unwrap();
    assert_eq!(d.id(), Some("007"), "ids are kept as received");
    assert_eq!(d.value(), Some("100.00"));
    assert_eq!(d.value_raw(), Some("100"));
    assert_eq!(d.currency_symbol(), Some("$"));
    assert_eq!(d.status(), Some(DealStatus::Won));
    assert_eq!(d.create_date(), Some("2017-11-24 10:06:22"));
    assert_eq!(d.create_date_iso(), Some("2017-11-24T10:06:22-06:00"));
    for key in Deal::KEYS {
        assert!(d.get(key).is_some(), "{key}");
    }
    assert_eq!(e.updated_fields(), ["value", "status"]);
    let c = e.contact().unwrap();
    assert_eq!(c.phone(), Some("+39 06 555 0101"));
    assert_eq!(c.orgname(), Some("Rossi & Figli"));
    assert_eq!(c.tags(), Vec::<&str>::new());
    assert_eq!(c.tags_text(), Some(""));
}

/// A `deal_task_complete` with every task key; the deal block before the contact.
const DEAL_TASK_COMPLETE: &str = "type=deal_task_complete\
&date_time=2024-02-29T23%3A59%3A59%2B01%3A00&initiated_from=admin&initiated_by=admin&list=0\
&deal%5Bid%5D=12&deal%5Btitle%5D=Citt%C3%A0+Nuova&deal%5Bstatus%5D=0\
&contact%5Bid%5D=9&contact%5Bemail%5D=soren%40example.dk&contact%5Bfirst_name%5D=S%C3%B8ren\
&task%5Bid%5D=31&task%5Btitle%5D=Follow-up+call&task%5Bnote%5D=Ask+about+R%26D+budget\
&task%5Btype_id%5D=1&task%5Btype_title%5D=Call&task%5Bduedate%5D=2024-03-01+09%3A00%3A00\
&task%5Bduedate_iso%5D=2024-03-01T09%3A00%3A00%2B01%3A00&task%5Bedate%5D=2024-03-01+09%3A30%3A00\
&task%5Bedate_iso%5D=2024-03-01T09%3A30%3A00%2B01%3A00&task%5Bdonedate%5D=2024-02-29+23%3A59%3A00\
&task%5Bdonedate_iso%5D=2024-02-29T23%3A59%3A00%2B01%3A00";

#[test]
fn deal_task_complete_with_all_task_keys() {
    let e = decode_same_pairs(DEAL_TASK_COMPLETE.as_bytes());
    assert_eq!(&e.encode()[..], DEAL_TASK_COMPLETE.as_bytes());
    let t = e.task().unwrap();
    for key in Task::KEYS {
        assert!(t.get(key).is_some(), "{key}");
    }
    assert_eq!(t.note(), Some("Ask about R&D budget"));
    assert_eq!(t.type_title(), Some("Call"));
    assert_eq!(t.donedate(), Some("2024-02-29 23:59:00"));
    assert_eq!(t.donedate_iso(), Some("2024-02-29T23:59:00+01:00"));
    assert_eq!(e.deal().unwrap().title(), Some("Città Nuova"));
    assert_eq!(e.deal().unwrap().status(), Some(DealStatus::Open));
    assert_eq!(e.contact().unwrap().first_name(), Some("Søren"));
}

#[test]
fn list_add_keeps_the_scalar_and_the_block() {
    let raw = "type=list_add&date_time=2023-07-12T06%3A49%3A04-05%3A00&initiated_from=api\
&list=0&list%5Bid%5D=8&list%5Bname%5D=Clienti+Citt%C3%A0&list%5Bsender_zip%5D=06012";
    let e = decode_same_pairs(raw.as_bytes());
    assert_eq!(&e.encode()[..], raw.as_bytes());
    assert_eq!(e.list(), None);
    assert_eq!(e.initiated_by(), None);
    let l = e.list_info().unwrap();
    assert_eq!(l.id(), Some("8"));
    assert_eq!(l.sender_zip(), Some("06012"));
}

#[test]
fn note_scalar_and_note_block_are_both_kept() {
    let raw = "type=subscriber_note&date_time=2023-07-12T06%3A49%3A04-05%3A00\
&initiated_from=admin&list=0&note=Chiamare+luned%C3%AC&note%5Bid%5D=3&note%5Btext%5D=deal+note";
    let e = decode_same_pairs(raw.as_bytes());
    assert_eq!(e.note(), Some("Chiamare lunedì"));
    assert_eq!(e.deal_note().unwrap().id(), Some("3"));
    assert_eq!(e.deal_note().unwrap().text(), Some("deal note"));
}

#[test]
fn every_block_decodes_typed() {
    let raw = body(&[
        ("type", "reply"),
        ("date_time", "2023-07-12T06:49:04-05:00"),
        ("initiated_from", "public"),
        ("campaign[id]", "5"),
        ("campaign[message][subject]", "Ciao & benvenuta"),
        ("link[url]", "https://example.com/?a=1&b=2"),
        ("forward[count]", "2"),
        ("share[network]", "x"),
        ("result", "ok"),
        ("message", "Grazie"),
        ("bounce[code]", "5.1.1"),
        ("unsubscribe[reason]", ""),
        ("form[id]", "9"),
        ("tag", "vip"),
        ("pipeline[title]", "Sales"),
        ("stage[color]", "FF0000"),
        ("tasktype[title]", "Call"),
        ("sms[reply]", "STOP"),
    ]);
    let e = decode_same_pairs(&raw);
    assert_eq!(&e.encode()[..], &raw[..]);
    assert_eq!(e.list(), None);
    assert_eq!(
        e.campaign(),
        Some(
            &Campaign::new()
                .with_id("5")
                .with_message_subject("Ciao & benvenuta")
        )
    );
    assert_eq!(
        e.link(),
        Some(&Link::new().with_url("https://example.com/?a=1&b=2"))
    );
    assert_eq!(e.forward(), Some(&Forward::new().with_count("2")));
    assert_eq!(e.share(), Some(&Share::new().with_network("x")));
    assert_eq!(
        e.reply(),
        Some(&Reply::new().with_result("ok").with_message("Grazie"))
    );
    assert_eq!(e.bounce(), Some(&Bounce::new().with_code("5.1.1")));
    assert_eq!(e.unsubscribe(), Some(&Unsubscribe::new().with_reason("")));
    assert_eq!(e.form(), Some(&SignupForm::new().with_id("9")));
    assert_eq!(e.tag(), Some("vip"));
    assert_eq!(e.pipeline(), Some(&Pipeline::new().with_title("Sales")));
    assert_eq!(e.stage(), Some(&Stage::new().with_color("FF0000")));
    assert_eq!(e.task_type(), Some(&TaskType::new().with_title("Call")));
    assert_eq!(e.sms(), Some(&Sms::new().with_reply("STOP")));
}

// ---------------------------------------------------------------------------------------------
// The wire rules.

const HEAD: &str = "type=update&date_time=2023-07-12T06%3A49%3A04-05%3A00&initiated_from=admin";

#[test]
fn a_body_without_list_does_not_grow_one() {
    let e = Event::decode(HEAD.as_bytes()).unwrap();
    assert_eq!(e.list(), None);
    assert_eq!(&e.encode()[..], HEAD.as_bytes());
    // A new event always writes `list`, `0` when none, as ActiveCampaign does.
    let made = Event::new(EventKind::Update, Source::Admin, e.occurred_at());
    assert_eq!(made.encode(), format!("{HEAD}&list=0"));
    assert_ne!(made, e, "the two bodies differ, so the events do");
    // `with_list` puts the key back.
    assert_eq!(e.clone().with_list(None), made);
    assert_eq!(
        e.with_list(ListId::new(12)).encode(),
        format!("{HEAD}&list=12")
    );
}

#[test]
fn list_spellings_are_written_back_as_received() {
    for (text, id) in [
        ("0", None),
        ("8", ListId::new(8)),
        ("007", ListId::new(7)),
        ("", None),
    ] {
        let raw = format!("{HEAD}&list={text}");
        let e = Event::decode(raw.as_bytes()).unwrap();
        assert_eq!(e.list(), id, "{text:?}");
        assert_eq!(e.encode(), raw, "{text:?}");
    }
}

#[test]
fn initiated_by_absent_is_omitted_and_empty_is_kept() {
    let e = Event::decode(format!("{HEAD}&initiated_by=").as_bytes()).unwrap();
    assert_eq!(e.initiated_by(), Some(""));
    assert_eq!(e.encode(), format!("{HEAD}&initiated_by="));
    let e = Event::decode(HEAD.as_bytes()).unwrap();
    assert_eq!(e.initiated_by(), None);
}

#[test]
fn unknown_and_repeated_keys_are_kept_in_order() {
    let raw = format!(
        "{HEAD}&list=0&zz=1&contact%5Bid%5D=5&contact%5Bid%5D=6&type=open&aa=&contact%5Bx%5D=y\
&contact%5Bfields%5D%5B1%5D=a&contact%5Bfields%5D%5B1%5D=b&updated_fields%5B3%5D=late"
    );
    let e = Event::decode(raw.as_bytes()).unwrap();
    assert_eq!(e.kind(), EventKind::Update, "the first `type` counts");
    assert_eq!(e.contact().unwrap().id(), Some("5"));
    assert_eq!(e.contact().unwrap().field("1"), Some("a"));
    assert!(e.updated_fields().is_empty());
    let extra: Vec<(&str, &str)> = e
        .extra()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        extra,
        [
            ("zz", "1"),
            ("contact[id]", "6"),
            ("type", "open"),
            ("aa", ""),
            ("contact[x]", "y"),
            ("contact[fields][1]", "b"),
            ("updated_fields[3]", "late"),
        ]
    );
    assert_eq!(sorted_pairs(&e.encode()), sorted_pairs(raw.as_bytes()));
    assert_eq!(Event::decode(&e.encode()).unwrap(), e);
}

#[test]
fn updated_fields_in_any_order() {
    let raw = format!(
        "{HEAD}&updated_fields%5B2%5D=c&updated_fields%5B0%5D=a&updated_fields%5B1%5D=b\
&updated_fields%5B01%5D=x&updated_fields%5B5%5D=gap"
    );
    let e = Event::decode(raw.as_bytes()).unwrap();
    assert_eq!(e.updated_fields(), ["a", "b", "c"]);
    assert_eq!(e.extra().len(), 2, "non-canonical index and gap are extra");
    assert_eq!(Event::decode(&e.encode()).unwrap(), e);
}

#[test]
fn push_pair_reads_like_decode() {
    let mut e = Event::new(
        EventKind::DealUpdate,
        Source::Api,
        Event::sample(EventKind::Open).occurred_at(),
    );
    e.push_pair("updated_fields[1]", "b").unwrap();
    e.push_pair("updated_fields[0]", "a").unwrap();
    e.push_pair("deal[status]", "2").unwrap();
    e.push_pair("deal[status]", "1").unwrap();
    e.push_pair("initiated_by", "robot").unwrap();
    assert_eq!(e.updated_fields(), ["a", "b"]);
    assert_eq!(e.deal().unwrap().status(), Some(DealStatus::Lost));
    assert_eq!(e.extra().len(), 1);
    assert_eq!(e.initiated_by(), Some("robot"));
    assert_eq!(Event::decode(&e.encode()).unwrap(), e);
}

#[test]
fn an_empty_block_is_no_block() {
    let mut e = Event::sample(EventKind::Update);
    e.set_contact(Some(Contact::new()));
    assert!(e.contact().is_none());
    assert_eq!(
        e,
        Event::sample(EventKind::Update).with_contact(Contact::default())
    );
    e.deal_mut();
    assert!(e.deal().is_none());
    assert_eq!(Event::decode(&e.encode()).unwrap(), e);
}

#[test]
fn tags_and_custom_fields() {
    let c = Contact::new().with_tags(["a b", "R&D", "Città"]);
    assert_eq!(c.tags_text(), Some("a b, R&D, Città"));
    assert_eq!(c.tags(), ["a b", "R&D", "Città"]);
    assert_eq!(
        Contact::new().with_tags_text("x,y ,  ,z").tags(),
        ["x", "y", "z"]
    );
    let mut c = Contact::new()
        .with_field("1", "a")
        .with_field("utm_source", "b");
    c.set_field("1", "c");
    assert_eq!(
        c.fields().collect::<Vec<_>>(),
        [("1", "c"), ("utm_source", "b")]
    );
    assert_eq!(c.remove_field("1").as_deref(), Some("c"));
    assert_eq!(c.field("1"), None);
}

#[test]
fn occurred_at_forms() {
    let t = chrono::DateTime::parse_from_rfc3339("2023-07-12T06:49:04.789-03:30").unwrap();
    let at = OccurredAt::from(t);
    assert_eq!(
        at.to_string(),
        "2023-07-12T06:49:04-03:30",
        "fraction dropped"
    );
    assert_eq!(
        "2023-07-12T06:49:04-03:30".parse::<OccurredAt>().unwrap(),
        at
    );
    assert_eq!(
        at.offset().unwrap().local_minus_utc(),
        -(3 * 3600 + 30 * 60)
    );
    let legacy: OccurredAt = "0999-12-31 23:59:59".parse().unwrap();
    assert_eq!(legacy.to_string(), "0999-12-31 23:59:59");
    assert_eq!(OccurredAt::from(legacy.naive_local()), legacy);
    let e = Event::new(EventKind::Open, Source::Contact, t);
    assert!(
        e.encode()
            .starts_with(b"type=open&date_time=2023-07-12T06%3A49%3A04-03%3A30&")
    );
}

#[test]
fn utc_with_unknown_offset_round_trips() {
    // ActiveCampaign's API writes UTC dates with `-00:00` (see its `cdate`).
    let body = b"type=open&date_time=2016-01-01T12%3A00%3A00-00%3A00&initiated_from=system";
    let event = Event::decode(body).unwrap();
    let at = event.occurred_at();
    assert!(matches!(at, OccurredAt::IsoUnknownOffset(_)));
    assert_eq!(at.to_string(), "2016-01-01T12:00:00-00:00");
    assert_eq!(at.offset().unwrap().local_minus_utc(), 0);
    assert_eq!(&event.encode()[..], &body[..]);
    // `+00:00` stays `+00:00`.
    let plus: OccurredAt = "2016-01-01T12:00:00+00:00".parse().unwrap();
    assert!(matches!(plus, OccurredAt::Iso(_)));
    assert_eq!(plus.to_string(), "2016-01-01T12:00:00+00:00");
    assert_ne!(
        plus, at,
        "the two spellings are kept apart, so each is written back"
    );
}

#[test]
fn offsets_with_seconds_keep_the_instant() {
    let offset = chrono::FixedOffset::east_opt(5 * 3600 + 30 * 60 + 15).unwrap();
    let t = chrono::DateTime::from_timestamp(1_700_000_000, 0)
        .unwrap()
        .with_timezone(&offset);
    let at = OccurredAt::from(t);
    assert_eq!(at.offset().unwrap().local_minus_utc(), 5 * 3600 + 30 * 60);
    match at {
        OccurredAt::Iso(written) => assert_eq!(written.timestamp(), 1_700_000_000),
        other => panic!("{other:?}"),
    }
    let back: OccurredAt = at.to_string().parse().unwrap();
    assert_eq!(back, at);
}

#[test]
fn years_past_9999_are_written_in_full_and_refused_on_decode() {
    let t = chrono::NaiveDate::from_ymd_opt(12345, 6, 7)
        .unwrap()
        .and_hms_opt(8, 9, 10)
        .unwrap();
    let at = OccurredAt::from(t);
    assert_eq!(at.to_string(), "+12345-06-07 08:09:10");
    let body = Event::new(EventKind::Open, Source::Api, at).encode();
    let err = Event::decode(&body).unwrap_err();
    assert!(matches!(err, DecodeError::BadDate { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Errors: which key, which byte.

#[test]
fn errors_name_the_key_or_byte() {
    let cases: &[(&str, DecodeError)] = &[
        (
            "date_time=2013-01-01+12%3A00%3A00&initiated_from=admin",
            DecodeError::MissingKey { key: "type" },
        ),
        (
            "type=open&initiated_from=admin",
            DecodeError::MissingKey { key: "date_time" },
        ),
        (
            "type=open&date_time=2013-01-01+12%3A00%3A00",
            DecodeError::MissingKey {
                key: "initiated_from",
            },
        ),
    ];
    for (raw, want) in cases {
        assert_eq!(&Event::decode(raw.as_bytes()).unwrap_err(), want, "{raw}");
    }
    let err = Event::decode(b"type=account_add&date_time=x&initiated_from=admin").unwrap_err();
    assert!(matches!(&err, DecodeError::UnknownKind(e) if e.id() == "account_add"));
    assert_eq!(err.key(), Some("type"));
    assert_eq!(
        err.to_string(),
        "in `type`: unknown event kind \"account_add\""
    );

    let err = Event::decode(b"type=open&date_time=2013-01-01+12%3A00%3A00&initiated_from=bot")
        .unwrap_err();
    assert!(matches!(&err, DecodeError::UnknownSource(e) if e.id() == "bot"));

    let err = Event::decode(format!("{HEAD}&list=-3").as_bytes()).unwrap_err();
    assert!(matches!(&err, DecodeError::BadList(e) if e.input() == "-3"));
    assert_eq!(err.key(), Some("list"));

    for date in [
        "2023-07-12T06:49:04Z",
        "2023-7-12 06:49:04",
        "yesterday",
        "2023-07-12T06:49:04.5+01:00",
        "",
    ] {
        let raw = body(&[
            ("type", "open"),
            ("date_time", date),
            ("initiated_from", "public"),
        ]);
        let err = Event::decode(&raw).unwrap_err();
        assert_eq!(
            err,
            DecodeError::BadDate {
                text: date.to_owned()
            },
            "{date}"
        );
    }

    let err = Event::decode(b"type=open&date_time=%zz").unwrap_err();
    assert_eq!(
        err,
        DecodeError::Form(FormError::InvalidEscape { offset: 20 })
    );
    assert_eq!(err.offset(), Some(20));
    let err = Event::decode(b"type=open&x=%FF%FE").unwrap_err();
    assert!(matches!(
        err,
        DecodeError::Form(FormError::InvalidUtf8 { .. })
    ));
    // The pair starts at byte 10, its value at 12: `FormError` documents the pair but today
    // reports the value; either points into the right pair.
    assert!(matches!(err.offset(), Some(10 | 12)), "{err}");
    let err = Event::decode(b"type=open&a[1][2][3][4][5][6][7][8][9]=x").unwrap_err();
    assert!(matches!(
        err,
        DecodeError::Form(FormError::TooDeep { offset: 10, .. })
    ));
    let umbrella: posthook::Error = err.into();
    assert!(umbrella.to_string().contains("byte 10"));
}

// ---------------------------------------------------------------------------------------------
// Size.

#[test]
fn a_10_mb_note_survives_intact() {
    const LEN: usize = 10_000_000;
    let mut note = String::with_capacity(LEN);
    let pattern = [
        'a', 'à', '€', '😀', ' ', '&', '=', '+', '%', '[', ']', 'ø', '\n', 'Z',
    ];
    'fill: loop {
        for &ch in &pattern {
            if note.len() + ch.len_utf8() > LEN {
                break 'fill;
            }
            note.push(ch);
        }
    }
    while note.len() < LEN {
        note.push('x');
    }
    assert_eq!(note.len(), LEN);
    let e = Event::sample(EventKind::SubscriberNote).with_note(note.clone());
    let back = Event::decode(&e.encode()).unwrap();
    assert_eq!(back.note().map(str::len), Some(LEN));
    assert!(back.note() == Some(note.as_str()));
    assert!(back == e);
}

// ---------------------------------------------------------------------------------------------
// Property tests.

/// Every key the model reads into a scalar slot.
fn modelled_keys() -> Vec<&'static str> {
    let mut keys = vec!["initiated_by", "note", "tag"];
    for block in [
        Contact::KEYS,
        Campaign::KEYS,
        Link::KEYS,
        Forward::KEYS,
        Share::KEYS,
        Reply::KEYS,
        Bounce::KEYS,
        Unsubscribe::KEYS,
        SignupForm::KEYS,
        Deal::KEYS,
        DealNote::KEYS,
        Task::KEYS,
        Pipeline::KEYS,
        Stage::KEYS,
        TaskType::KEYS,
        ListInfo::KEYS,
        Sms::KEYS,
    ] {
        keys.extend_from_slice(block);
    }
    keys
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9 &=+%\\[\\]èàøß€😀.,;:/?#-]{0,24}",
        1 => Just(String::new()),
        2 => any::<String>(),
        1 => "[a-z&=+% è]{300,3000}",
    ]
}

fn occurred_at() -> impl Strategy<Value = OccurredAt> {
    use chrono::{DateTime, FixedOffset};
    (0i64..4_102_444_800, -(12 * 60)..=(14 * 60), 0..3).prop_map(|(secs, minutes, form)| {
        let utc = DateTime::from_timestamp(secs, 0).unwrap();
        if form == 2 {
            OccurredAt::IsoUnknownOffset(utc.naive_utc())
        } else if form == 1 {
            let offset = FixedOffset::east_opt(minutes * 60).unwrap();
            OccurredAt::from(utc.with_timezone(&offset))
        } else {
            OccurredAt::from(utc.naive_utc())
        }
    })
}

/// An extra key the model does not read.
fn extra_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "x_[a-z0-9_]{0,8}",
        "custom\\[[a-z]{1,5}\\]\\[[0-9]{0,3}\\]",
        "contact\\[zz_[a-z]{1,5}\\]",
        "[a-z]{1,3}[&=+% ]{1,2}",
    ]
}

prop_compose! {
    fn event()(
        kind in prop::sample::select(EventKind::ALL.to_vec()),
        source in prop::sample::select(Source::ALL.to_vec()),
        list in prop_oneof![Just(0u64), 1u64..20, any::<u64>()],
        at in occurred_at(),
        modelled in prop::collection::btree_map(0..modelled_keys().len(), value(), 0..24),
        fields in prop::collection::btree_map("[a-z0-9_]{0,10}", value(), 0..6),
        updated in prop::collection::vec("[a-z_]{1,12}", 0..4),
        extra in prop::collection::vec((extra_key(), value()), 0..6),
    ) -> Event {
        let keys = modelled_keys();
        let mut e = Event::new(kind, source, at).with_list(ListId::new(list)).with_updated_fields(updated);
        for (i, v) in modelled {
            e.push_pair(keys[i], v).unwrap();
        }
        for (k, v) in fields {
            e.contact_mut().set_field(k, v);
        }
        for (k, v) in extra {
            e.push_pair(k, v).unwrap();
        }
        e
    }
}

/// Asserts that two events carry the same typed values, ignoring the order of custom fields
/// and of unknown pairs.
fn assert_same_typed(a: &Event, b: &Event) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.kind(), b.kind());
    prop_assert_eq!(a.source(), b.source());
    prop_assert_eq!(a.list(), b.list());
    prop_assert_eq!(a.occurred_at(), b.occurred_at());
    prop_assert_eq!(a.initiated_by(), b.initiated_by());
    prop_assert_eq!(a.note(), b.note());
    prop_assert_eq!(a.tag(), b.tag());
    prop_assert_eq!(a.updated_fields(), b.updated_fields());
    let contact = |e: &Event| {
        e.contact().map(|c| {
            let scalars: Vec<_> = Contact::KEYS
                .iter()
                .map(|k| c.get(k).map(str::to_owned))
                .collect();
            let mut fields: Vec<_> = c
                .fields()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            fields.sort();
            (scalars, fields)
        })
    };
    prop_assert_eq!(contact(a), contact(b));
    prop_assert_eq!(a.campaign(), b.campaign());
    prop_assert_eq!(a.link(), b.link());
    prop_assert_eq!(a.forward(), b.forward());
    prop_assert_eq!(a.share(), b.share());
    prop_assert_eq!(a.reply(), b.reply());
    prop_assert_eq!(a.bounce(), b.bounce());
    prop_assert_eq!(a.unsubscribe(), b.unsubscribe());
    prop_assert_eq!(a.form(), b.form());
    prop_assert_eq!(a.deal(), b.deal());
    prop_assert_eq!(a.deal_note(), b.deal_note());
    prop_assert_eq!(a.task(), b.task());
    prop_assert_eq!(a.pipeline(), b.pipeline());
    prop_assert_eq!(a.stage(), b.stage());
    prop_assert_eq!(a.task_type(), b.task_type());
    prop_assert_eq!(a.list_info(), b.list_info());
    prop_assert_eq!(a.sms(), b.sms());
    let (mut ea, mut eb) = (a.extra().to_vec(), b.extra().to_vec());
    ea.sort();
    eb.sort();
    prop_assert_eq!(ea, eb);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decode_inverts_encode(e in event()) {
        let body = e.encode();
        prop_assert_eq!(Event::decode(&body), Ok(e));
    }

    #[test]
    fn encode_is_what_serde_urlencoded_writes(e in event()) {
        let body = e.encode();
        let oracle = serde_urlencoded::to_string(pairs(&body)).unwrap();
        prop_assert_eq!(oracle.as_bytes(), &body[..]);
    }

    #[test]
    fn decode_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Event::decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_near_misses(
        head in prop::sample::select(vec![HEAD, "type=list_add&date_time=2013-01-01+12%3A00%3A00&initiated_from=api"]),
        tail in "[a-z_\\[\\]%0-9A-F=&+]{0,120}",
    ) {
        let _ = Event::decode(format!("{head}&{tail}").as_bytes());
    }

    #[test]
    fn a_shuffled_body_decodes_to_the_same_typed_values(
        (e, shuffled) in event().prop_flat_map(|e| {
            let p = pairs(&e.encode());
            (Just(e), Just(p).prop_shuffle())
        })
    ) {
        let d = Event::decode(&body(&shuffled)).unwrap();
        assert_same_typed(&d, &e)?;
        prop_assert_eq!(sorted_pairs(&d.encode()), sorted_pairs(&e.encode()));
    }
}

#[test]
fn samples_round_trip() {
    for kind in EventKind::ALL {
        let e = Event::sample(kind);
        assert_eq!(e.kind(), kind);
        assert_eq!(Event::decode(&e.encode()).unwrap(), e, "{kind}");
        assert_eq!(e.list().is_some(), kind.is_list_aware(), "{kind}");
    }
}

#[test]
fn many_custom_fields_keep_first_wins_and_order() {
    // Enough fields for the contact to index them; one key repeated far apart.
    let mut body =
        String::from("type=update&date_time=2023-07-12T06%3A49%3A04-05%3A00&initiated_from=api");
    for i in 0..200 {
        body.push_str(&format!("&contact%5Bfields%5D%5Bf{i}%5D=v{i}"));
    }
    body.push_str("&contact%5Bfields%5D%5Bf7%5D=again&contact%5Bfields%5D%5Bf0%5D=");
    let event = Event::decode(body.as_bytes()).unwrap();
    let contact = event.contact().unwrap();
    assert_eq!(contact.fields().len(), 200);
    assert_eq!(contact.field("f7"), Some("v7"));
    assert_eq!(contact.field("f199"), Some("v199"));
    assert_eq!(contact.field("f200"), None);
    assert_eq!(
        event.extra(),
        [
            ("contact[fields][f7]".to_owned(), "again".to_owned()),
            ("contact[fields][f0]".to_owned(), String::new())
        ]
    );
    assert_eq!(
        posthook::Form::parse(&event.encode()).unwrap(),
        posthook::Form::parse(body.as_bytes()).unwrap()
    );

    // Edits keep lookups right, and equality ignores how the contact got its fields.
    let mut edited = contact.clone();
    assert_eq!(edited.remove_field("f3"), Some("v3".to_owned()));
    edited.set_field("f150", "changed");
    edited.set_field("new", "n");
    assert_eq!(edited.field("f150"), Some("changed"));
    assert_eq!(edited.field("f3"), None);
    assert_eq!(edited.field("f4"), Some("v4"));
    assert_eq!(edited.fields().len(), 200);
    let mut built = posthook::Contact::new();
    for (k, v) in edited.fields() {
        built.set_field(k, v);
    }
    assert_eq!(built, edited);
}

#[test]
fn bodies_past_the_default_field_limit_need_decode_with() {
    let mut contact = Contact::new().with_email("a@example.com");
    for i in 0..10_000 {
        contact.set_field(i.to_string(), "x");
    }
    let event = Event::new(
        EventKind::Update,
        Source::Api,
        OccurredAt::Legacy(Default::default()),
    )
    .with_contact(contact);
    let body = event.encode();
    let err = Event::decode(&body).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Form(FormError::TooManyFields { limit: 10_000 })
        ),
        "{err:?}"
    );
    let limits = posthook::FormLimits {
        max_fields: 20_000,
        ..Default::default()
    };
    assert_eq!(Event::decode_with(&body, limits).unwrap(), event);
}
