//! The 25 event kinds and 4 sources against the reference table, row by row.

use std::collections::HashSet;

use posthook::{EventKind, EventSet, Source, SourceSet};

/// `reference/activecampaign.md`, "Event kinds": id, English label, Italian label, list-aware.
const KINDS: [(&str, &str, &str, bool); 25] = [
    ("forward", "Campaign forwarded", "Campagna inoltrata", true),
    ("open", "Campaign opened", "Campagna aperta", true),
    ("share", "Campaign shared", "Campagna condivisa", true),
    (
        "sent",
        "Campaign starts sending",
        "Inizio invii campagna",
        true,
    ),
    ("subscribe", "Contact added", "Contatto aggiunto", true),
    (
        "subscriber_note",
        "Contact note added",
        "Nota di contatto aggiunta",
        false,
    ),
    (
        "contact_tag_added",
        "Contact tag added",
        "Tag di contatto aggiunto",
        false,
    ),
    (
        "contact_tag_removed",
        "Contact tag removed",
        "Tag di contatto rimosso",
        false,
    ),
    (
        "unsubscribe",
        "Contact unsubscription",
        "Annullamento dell'iscrizione contatto",
        true,
    ),
    ("update", "Contact updated", "Contatto aggiornato", true),
    ("deal_add", "Deal added", "Offerta aggiunta", false),
    (
        "deal_note_add",
        "Deal note added",
        "Nota di offerta aggiunta",
        false,
    ),
    (
        "deal_pipeline_add",
        "Deal pipeline added",
        "Pipeline di offerta aggiunta",
        false,
    ),
    (
        "deal_stage_add",
        "Deal stage added",
        "Fase dell'offerta aggiunta",
        false,
    ),
    (
        "deal_task_add",
        "Deal task added",
        "Attività dell'offerta aggiunta",
        false,
    ),
    (
        "deal_task_complete",
        "Deal task completed",
        "Attività dell'offerta completata",
        false,
    ),
    (
        "deal_tasktype_add",
        "Deal task type added",
        "Tipo di attività offerta aggiunto",
        false,
    ),
    ("deal_update", "Deal updated", "Offerta aggiornata", false),
    ("bounce", "Email bounces", "Mancati recapiti email", true),
    ("reply", "Email replies", "Risposte email", true),
    ("click", "Link clicked", "Link cliccato", true),
    ("list_add", "List added", "Lista aggiunta", false),
    ("sms_reply", "SMS reply", "Risposta SMS", false),
    ("sms_sent", "SMS sent", "SMS inviato", false),
    (
        "sms_unsub",
        "SMS unsubscribe",
        "Annulla iscrizione SMS",
        false,
    ),
];

#[test]
fn every_kind_matches_the_reference_row() {
    assert_eq!(EventKind::ALL.len(), KINDS.len());
    for (kind, (id, en, it, aware)) in EventKind::ALL.into_iter().zip(KINDS) {
        assert_eq!(kind.as_str(), id);
        assert_eq!(kind.to_string(), id);
        assert_eq!(format!("{kind:>20}"), format!("{id:>20}"));
        assert_eq!(kind.label(), en, "{id}");
        assert_eq!(kind.label_it(), it, "{id}");
        assert_eq!(kind.is_list_aware(), aware, "{id}");
        assert_eq!(id.parse::<EventKind>(), Ok(kind));
        assert_eq!(EventKind::try_from(id), Ok(kind));
        assert_eq!(EventKind::ALL[kind.index()], kind);
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{id}\""));
        assert_eq!(
            serde_json::from_str::<EventKind>(&format!("\"{id}\"")).unwrap(),
            kind
        );
    }
}

#[test]
fn ids_and_labels_are_distinct() {
    let ids: HashSet<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    let en: HashSet<_> = EventKind::ALL.iter().map(|k| k.label()).collect();
    let it: HashSet<_> = EventKind::ALL.iter().map(|k| k.label_it()).collect();
    assert_eq!((ids.len(), en.len(), it.len()), (25, 25, 25));
}

#[test]
fn unknown_kinds_are_rejected_by_name() {
    for bad in [
        "",
        "Subscribe",
        "SUBSCRIBE",
        " subscribe",
        "subscribe ",
        "account_add",
        "contact_task_add",
        "deal_task_completed",
        "unsubscribed",
        "sms",
    ] {
        let err = bad.parse::<EventKind>().unwrap_err();
        assert_eq!(err.id(), bad);
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        let json = serde_json::to_string(bad).unwrap();
        let err = serde_json::from_str::<EventKind>(&json).unwrap_err();
        assert!(err.to_string().contains("unknown event kind"), "{err}");
    }
}

const SOURCES: [(Source, &str, &str, &str); 4] = [
    (Source::Contact, "public", "By a contact", "Da un contatto"),
    (
        Source::Admin,
        "admin",
        "By an admin user",
        "Da un utente amministratore",
    ),
    (Source::Api, "api", "By the API", "Dall'API"),
    (
        Source::System,
        "system",
        "By system processes",
        "Da processi di sistema",
    ),
];

#[test]
fn every_source_matches_its_row() {
    assert_eq!(Source::ALL.len(), SOURCES.len());
    for (source, (expected, id, en, it)) in Source::ALL.into_iter().zip(SOURCES) {
        assert_eq!(source, expected);
        assert_eq!(source.as_str(), id);
        assert_eq!(source.to_string(), id);
        assert_eq!(source.label(), en);
        assert_eq!(source.label_it(), it);
        assert_eq!(id.parse::<Source>(), Ok(source));
        assert_eq!(serde_json::to_value(source).unwrap(), serde_json::json!(id));
        assert_eq!(
            serde_json::from_value::<Source>(serde_json::json!(id)).unwrap(),
            source
        );
    }
    for bad in ["", "contact", "Public", "API", "user", "system "] {
        let err = bad.parse::<Source>().unwrap_err();
        assert_eq!(err.id(), bad);
        assert!(serde_json::from_value::<Source>(serde_json::json!(bad)).is_err());
    }
}

#[test]
fn event_set_operations() {
    let mut set = EventSet::empty();
    assert!(set.is_empty());
    assert_eq!(set.len(), 0);
    for (i, kind) in EventKind::ALL.into_iter().enumerate() {
        assert!(!set.contains(kind));
        assert!(set.insert(kind));
        assert!(!set.insert(kind), "second insert reports present");
        assert!(set.contains(kind));
        assert_eq!(set.len(), i + 1);
    }
    assert_eq!(set, EventSet::all());
    assert_eq!(set.iter().collect::<Vec<_>>(), EventKind::ALL.to_vec());
    assert!(set.remove(EventKind::Click));
    assert!(!set.remove(EventKind::Click));
    assert!(!set.contains(EventKind::Click));
    assert_eq!(set.len(), 24);
    let other: EventSet = [EventKind::Click, EventKind::Open].into_iter().collect();
    assert_eq!(
        set.intersection(other).iter().collect::<Vec<_>>(),
        [EventKind::Open]
    );
    assert_eq!(set.union(other), EventSet::all());
    assert_eq!(EventSet::all().difference(set).len(), 1);
}

#[test]
fn source_set_operations() {
    let mut set: SourceSet = [Source::Api, Source::Api, Source::Admin]
        .into_iter()
        .collect();
    assert_eq!(set.len(), 2);
    assert_eq!(set.iter().collect::<Vec<_>>(), [Source::Admin, Source::Api]);
    assert!(set.remove(Source::Api));
    assert!(set.insert(Source::System));
    assert!(!set.contains(Source::Contact));
    assert_eq!(SourceSet::all().len(), 4);
    assert!(SourceSet::empty().is_empty());
}

#[test]
fn sets_serialize_as_lists_of_ids() {
    let set: EventSet = [EventKind::DealUpdate, EventKind::Forward]
        .into_iter()
        .collect();
    let json = serde_json::to_string(&set).unwrap();
    assert_eq!(json, r#"["forward","deal_update"]"#);
    let back: EventSet = serde_json::from_str(r#"["deal_update","forward","forward"]"#).unwrap();
    assert_eq!(back, set);
    let err = serde_json::from_str::<EventSet>(r#"["forward","nope"]"#).unwrap_err();
    assert!(err.to_string().contains("\"nope\""), "{err}");

    let sources: SourceSet = serde_json::from_str(r#"["public","system"]"#).unwrap();
    assert_eq!(
        sources.iter().collect::<Vec<_>>(),
        [Source::Contact, Source::System]
    );
    assert_eq!(
        serde_json::to_string(&SourceSet::all()).unwrap(),
        r#"["public","admin","api","system"]"#
    );
    assert_eq!(
        serde_json::to_string(&EventSet::all())
            .unwrap()
            .matches(',')
            .count(),
        24
    );
}

#[test]
fn set_iterators_are_exact_and_double_ended() {
    let set: EventSet = [EventKind::SmsUnsub, EventKind::Forward, EventKind::Click]
        .into_iter()
        .collect();
    let mut it = set.iter();
    assert_eq!(it.len(), 3);
    assert_eq!(it.next(), Some(EventKind::Forward));
    assert_eq!(it.next_back(), Some(EventKind::SmsUnsub));
    assert_eq!(it.len(), 1);
    assert_eq!(it.next(), Some(EventKind::Click));
    assert_eq!((it.next(), it.next_back()), (None, None));
    let mut seen = Vec::new();
    for kind in set {
        seen.push(kind);
    }
    assert_eq!(
        seen,
        [EventKind::Forward, EventKind::Click, EventKind::SmsUnsub]
    );
    let back: Vec<_> = SourceSet::all().iter().rev().collect();
    assert_eq!(
        back,
        [Source::System, Source::Api, Source::Admin, Source::Contact]
    );
}

mod properties {
    use std::collections::BTreeSet;

    use posthook::{EventKind, EventSet, Source, SourceSet};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn event_set_behaves_as_a_set(ops in proptest::collection::vec((any::<bool>(), 0usize..25), 0..80)) {
            let mut set = EventSet::empty();
            let mut model = BTreeSet::new();
            for (insert, i) in ops {
                let kind = EventKind::ALL[i];
                if insert {
                    prop_assert_eq!(set.insert(kind), model.insert(i));
                } else {
                    prop_assert_eq!(set.remove(kind), model.remove(&i));
                }
                prop_assert_eq!(set.len(), model.len());
                prop_assert_eq!(set.is_empty(), model.is_empty());
            }
            let listed: Vec<usize> = set.iter().map(EventKind::index).collect();
            prop_assert_eq!(listed, model.iter().copied().collect::<Vec<_>>());
            for kind in EventKind::ALL {
                prop_assert_eq!(set.contains(kind), model.contains(&kind.index()));
            }
            let json = serde_json::to_string(&set).unwrap();
            prop_assert_eq!(serde_json::from_str::<EventSet>(&json).unwrap(), set);
            prop_assert_eq!(set.iter().collect::<EventSet>(), set);
            prop_assert_eq!(set.union(EventSet::all().difference(set)), EventSet::all());
        }

        #[test]
        fn source_set_round_trips(bits in proptest::collection::vec(any::<bool>(), 4)) {
            let set: SourceSet = Source::ALL.into_iter().zip(bits).filter(|(_, b)| *b).map(|(s, _)| s).collect();
            let json = serde_json::to_string(&set).unwrap();
            prop_assert_eq!(serde_json::from_str::<SourceSet>(&json).unwrap(), set);
            prop_assert_eq!(set.iter().rev().count(), set.len());
        }
    }
}

#[test]
fn sets_take_references_too() {
    let sources: SourceSet = Source::ALL.iter().collect();
    assert_eq!(sources, SourceSet::all());
    let mut events: EventSet = EventKind::ALL[..3].iter().collect();
    events.extend(&[EventKind::SmsSent]);
    let mut n = 0;
    for kind in &events {
        assert!(events.contains(kind));
        n += 1;
    }
    assert_eq!(n, 4);
    // Exhaustive match, no wildcard: the enum is exhaustive.
    let families = EventKind::ALL.map(|kind| match kind {
        EventKind::Forward | EventKind::Open | EventKind::Share | EventKind::Sent => "campaign",
        EventKind::Subscribe
        | EventKind::SubscriberNote
        | EventKind::ContactTagAdded
        | EventKind::ContactTagRemoved
        | EventKind::Unsubscribe
        | EventKind::Update => "contact",
        EventKind::DealAdd
        | EventKind::DealNoteAdd
        | EventKind::DealPipelineAdd
        | EventKind::DealStageAdd
        | EventKind::DealTaskAdd
        | EventKind::DealTaskComplete
        | EventKind::DealTasktypeAdd
        | EventKind::DealUpdate => "deal",
        EventKind::Bounce | EventKind::Reply | EventKind::Click => "email",
        EventKind::ListAdd => "list",
        EventKind::SmsReply | EventKind::SmsSent | EventKind::SmsUnsub => "sms",
    });
    assert_eq!(families.iter().filter(|f| **f == "deal").count(), 8);
}
