//! The matcher: the fixed rules, ids, deactivation, a model check against a linear scan, and
//! sharing between threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread;

use chrono::{DateTime, FixedOffset};
use posthook::{
    Deactivation, Event, EventKind, ListId, ListScope, Registry, Source, Webhook, WebhookId,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use EventKind as K;
use Source as S;

fn now() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2024-05-06T07:08:09+02:00").unwrap()
}

fn list(id: u64) -> Option<ListId> {
    ListId::new(id)
}

fn scope(id: u64) -> ListScope {
    ListScope::from_list_id(id)
}

fn hook(name: &str, events: &[EventKind], sources: &[Source], scope: ListScope) -> Webhook {
    Webhook::builder(name, &format!("https://example.com/{name}"))
        .events(events.iter().copied())
        .sources(sources.iter().copied())
        .scope(scope)
        .build()
        .unwrap()
}

fn event(kind: EventKind, source: Source, list: Option<ListId>) -> Event {
    Event::new(kind, source, now()).with_list(list)
}

/// The ids `matches` yields, sorted; panics on a duplicate.
fn matched_ids(registry: &Registry, event: &Event) -> Vec<WebhookId> {
    let matches = registry.matches(event);
    let announced = matches.len();
    let mut ids: Vec<WebhookId> = matches.map(|w| w.id().unwrap()).collect();
    assert_eq!(ids.len(), announced, "ExactSizeIterator::len is exact");
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(
        ids.len(),
        before,
        "a webhook was yielded twice for {event:?}"
    );
    ids
}

/// The ids a linear scan with `Webhook::wants` finds, sorted.
fn scanned_ids(registry: &Registry, event: &Event) -> Vec<WebhookId> {
    let mut ids: Vec<WebhookId> = registry
        .iter()
        .filter(|w| w.wants(event.kind(), event.source(), event.list()))
        .map(|w| w.id().unwrap())
        .collect();
    ids.sort();
    ids
}

/// One registry holding a webhook per case the rules distinguish, named for it.
fn fixture() -> (Registry, HashMap<WebhookId, &'static str>) {
    let mut r = Registry::new();
    let mut names = HashMap::new();
    let mut add = |r: &mut Registry, name: &'static str, w: Webhook| {
        let id = r.insert(w);
        names.insert(id, name);
        id
    };
    // Campaign (list-aware).
    add(
        &mut r,
        "open-all",
        hook("open-all", &[K::Open], &[S::Contact], scope(0)),
    );
    add(
        &mut r,
        "open-l1",
        hook(
            "open-l1",
            &[K::Open, K::Forward],
            &[S::Contact, S::Admin],
            scope(1),
        ),
    );
    add(
        &mut r,
        "sent-system-l2",
        hook("sent-system-l2", &[K::Sent], &[S::System], scope(2)),
    );
    // Contact (list-aware).
    add(
        &mut r,
        "contact-l1",
        hook(
            "contact-l1",
            &[K::Subscribe, K::Unsubscribe, K::Update],
            &S::ALL,
            scope(1),
        ),
    );
    // Contact, not list-aware, on a list-scoped webhook.
    add(
        &mut r,
        "note-tag-l1",
        hook(
            "note-tag-l1",
            &[K::SubscriberNote, K::ContactTagAdded, K::ContactTagRemoved],
            &[S::Admin],
            scope(1),
        ),
    );
    // Deal (not list-aware).
    add(
        &mut r,
        "deal-l2",
        hook("deal-l2", &[K::DealAdd, K::DealUpdate], &[S::Api], scope(2)),
    );
    add(
        &mut r,
        "deal-all",
        hook(
            "deal-all",
            &[K::DealAdd, K::DealTaskComplete],
            &[S::Api, S::Admin],
            scope(0),
        ),
    );
    // Email (list-aware).
    add(
        &mut r,
        "email-all",
        hook(
            "email-all",
            &[K::Bounce, K::Click, K::Reply],
            &[S::System, S::Contact],
            scope(0),
        ),
    );
    add(
        &mut r,
        "click-l2",
        hook("click-l2", &[K::Click], &[S::Contact], scope(2)),
    );
    // List (not list-aware).
    add(
        &mut r,
        "list-add-l1",
        hook("list-add-l1", &[K::ListAdd], &S::ALL, scope(1)),
    );
    // SMS (not list-aware).
    add(
        &mut r,
        "sms-l3",
        hook(
            "sms-l3",
            &[K::SmsSent, K::SmsReply, K::SmsUnsub],
            &[S::System],
            scope(3),
        ),
    );

    // Deactivated before it was inserted: kept, but reaches nothing.
    let mut off = hook("off-open", &[K::Open], &[S::Contact], scope(0));
    off.deactivate(Deactivation::Manual);
    add(&mut r, "off-open", off);
    // Deactivated through the registry (what a 410 Gone does).
    let gone = add(
        &mut r,
        "gone-deal",
        hook("gone-deal", &[K::DealAdd], &[S::Api], scope(0)),
    );
    assert!(r.deactivate(gone, Deactivation::Gone));
    // Switched off, then on again.
    let back = add(
        &mut r,
        "reactivated-sub",
        hook("reactivated-sub", &[K::Subscribe], &[S::Contact], scope(0)),
    );
    assert!(r.set_active(back, false));
    assert!(r.set_active(back, true));
    // Removed.
    let removed = add(
        &mut r,
        "removed-open",
        hook("removed-open", &[K::Open, K::DealAdd], &S::ALL, scope(0)),
    );
    assert_eq!(r.remove(removed).unwrap().name(), "removed-open");
    // Upserted: the same id, now with other events, sources and scope.
    let old = hook("upserted", &[K::Open], &[S::Contact], scope(0));
    let upserted = add(
        &mut r,
        "upserted",
        old.to_builder().id(WebhookId::new(500)).build().unwrap(),
    );
    assert_eq!(upserted, WebhookId::new(500));
    let new = hook("upserted", &[K::Sent], &[S::Admin], scope(4));
    assert_eq!(
        r.insert(new.to_builder().id(upserted).build().unwrap()),
        upserted
    );
    (r, names)
}

/// A case: what, the event's kind, source and list (`None`: no list), the webhooks it reaches.
type Case = (
    &'static str,
    EventKind,
    Source,
    Option<u64>,
    &'static [&'static str],
);

#[test]
fn the_rules_table() {
    #[rustfmt::skip]
    let table: &[Case] = &[
        // Campaign: list-aware.
        ("open on list 1 by a contact", K::Open, S::Contact, Some(1), &["open-all", "open-l1"]),
        ("open on list 1 by an admin", K::Open, S::Admin, Some(1), &["open-l1"]),
        ("open on list 2", K::Open, S::Contact, Some(2), &["open-all"]),
        ("open on no list: only all-lists webhooks", K::Open, S::Contact, None, &["open-all"]),
        ("open by the api: no source", K::Open, S::Api, Some(1), &[]),
        ("forward on list 1", K::Forward, S::Admin, Some(1), &["open-l1"]),
        ("forward on no list", K::Forward, S::Admin, None, &[]),
        ("sent by system on list 2", K::Sent, S::System, Some(2), &["sent-system-l2"]),
        ("sent by admin on list 2: wrong source", K::Sent, S::Admin, Some(2), &[]),
        ("sent by admin on list 4: the upserted webhook", K::Sent, S::Admin, Some(4), &["upserted"]),
        ("share: nobody", K::Share, S::Contact, Some(1), &[]),
        // Contact: list-aware.
        ("subscribe on list 1", K::Subscribe, S::Api, Some(1), &["contact-l1"]),
        ("subscribe on list 1 by a contact", K::Subscribe, S::Contact, Some(1), &["contact-l1", "reactivated-sub"]),
        ("subscribe on list 9 by a contact", K::Subscribe, S::Contact, Some(9), &["reactivated-sub"]),
        ("subscribe on no list", K::Subscribe, S::Api, None, &[]),
        ("unsubscribe on list 1", K::Unsubscribe, S::System, Some(1), &["contact-l1"]),
        ("update on list 2", K::Update, S::Admin, Some(2), &[]),
        // Contact, not list-aware: the scope is ignored.
        ("note on list 1", K::SubscriberNote, S::Admin, Some(1), &["note-tag-l1"]),
        ("note on list 7", K::SubscriberNote, S::Admin, Some(7), &["note-tag-l1"]),
        ("note on no list", K::SubscriberNote, S::Admin, None, &["note-tag-l1"]),
        ("note by the api: wrong source", K::SubscriberNote, S::Api, None, &[]),
        ("tag added on list 3", K::ContactTagAdded, S::Admin, Some(3), &["note-tag-l1"]),
        ("tag removed on no list", K::ContactTagRemoved, S::Admin, None, &["note-tag-l1"]),
        // Deal: not list-aware.
        ("deal added by api on no list", K::DealAdd, S::Api, None, &["deal-l2", "deal-all"]),
        ("deal added by api on list 1", K::DealAdd, S::Api, Some(1), &["deal-l2", "deal-all"]),
        ("deal added by admin", K::DealAdd, S::Admin, Some(2), &["deal-all"]),
        ("deal updated on list 5", K::DealUpdate, S::Api, Some(5), &["deal-l2"]),
        ("deal task completed", K::DealTaskComplete, S::Admin, None, &["deal-all"]),
        ("deal task completed by system", K::DealTaskComplete, S::System, None, &[]),
        ("deal pipeline added", K::DealPipelineAdd, S::Api, None, &[]),
        // Email: list-aware.
        ("bounce on list 8", K::Bounce, S::System, Some(8), &["email-all"]),
        ("bounce on no list", K::Bounce, S::System, None, &["email-all"]),
        ("click on list 2 by a contact", K::Click, S::Contact, Some(2), &["email-all", "click-l2"]),
        ("click on list 1 by a contact", K::Click, S::Contact, Some(1), &["email-all"]),
        ("click on no list", K::Click, S::Contact, None, &["email-all"]),
        ("reply by admin: wrong source", K::Reply, S::Admin, Some(2), &[]),
        // List: not list-aware.
        ("list added on list 1", K::ListAdd, S::Admin, Some(1), &["list-add-l1"]),
        ("list added on list 6", K::ListAdd, S::Api, Some(6), &["list-add-l1"]),
        ("list added on no list", K::ListAdd, S::System, None, &["list-add-l1"]),
        // SMS: not list-aware.
        ("sms sent on list 3", K::SmsSent, S::System, Some(3), &["sms-l3"]),
        ("sms reply on list 1", K::SmsReply, S::System, Some(1), &["sms-l3"]),
        ("sms unsub on no list", K::SmsUnsub, S::System, None, &["sms-l3"]),
        ("sms sent by a contact: wrong source", K::SmsSent, S::Contact, Some(3), &[]),
    ];
    let (registry, names) = fixture();
    for &(case, kind, source, on, expected) in table {
        let e = event(kind, source, on.and_then(ListId::new));
        let ids = matched_ids(&registry, &e);
        let mut got: Vec<&str> = ids.iter().map(|id| names[id]).collect();
        got.sort_unstable();
        let mut want = expected.to_vec();
        want.sort_unstable();
        assert_eq!(got, want, "{case}");
        // The table agrees with the rule as `Webhook::wants` states it.
        assert_eq!(ids, scanned_ids(&registry, &e), "{case}: scan");
        // The same answer without an `Event`.
        let mut parts: Vec<WebhookId> = registry
            .matches_parts(kind, source, e.list())
            .map(|w| w.id().unwrap())
            .collect();
        parts.sort();
        assert_eq!(parts, ids, "{case}: matches_parts");
    }
}

#[test]
fn every_event_matches_the_scan_on_the_fixture() {
    let (registry, _) = fixture();
    for kind in K::ALL {
        for source in S::ALL {
            for on in [None, list(1), list(2), list(3), list(4), list(9)] {
                let e = event(kind, source, on);
                assert_eq!(
                    matched_ids(&registry, &e),
                    scanned_ids(&registry, &e),
                    "{e:?}"
                );
            }
        }
    }
}

#[test]
fn removed_deactivated_and_upserted_webhooks_are_kept_or_dropped_as_they_should() {
    let (registry, names) = fixture();
    let by_name: HashMap<&str, WebhookId> = names.iter().map(|(id, n)| (*n, *id)).collect();
    assert!(!registry.contains(by_name["removed-open"]));
    assert!(registry.get(by_name["removed-open"]).is_none());
    let off = registry.get(by_name["off-open"]).unwrap();
    assert_eq!(off.deactivation(), Some(Deactivation::Manual));
    let gone = registry.get(by_name["gone-deal"]).unwrap();
    assert_eq!(gone.deactivation(), Some(Deactivation::Gone));
    assert!(
        registry
            .get(by_name["reactivated-sub"])
            .unwrap()
            .is_active()
    );
    let upserted = registry.get(WebhookId::new(500)).unwrap();
    assert_eq!(upserted.events().iter().collect::<Vec<_>>(), [K::Sent]);
    assert_eq!(upserted.scope(), scope(4));
    // 16 ids inserted (one of them twice: the upsert replaced it in place), one removed.
    assert_eq!(registry.len(), 15);
    assert_eq!(registry.iter().count(), 15);
}

#[test]
fn fresh_ids_are_new_stored_and_greater_than_any_seen() {
    let mut r = Registry::new();
    let a = r.insert(hook("a", &[K::Open], &[S::Api], scope(0)));
    let b = r.insert(hook("b", &[K::Open], &[S::Api], scope(0)));
    assert!(b > a);
    assert_eq!(r.get(a).unwrap().id(), Some(a));
    assert_eq!(r.get(b).unwrap().id(), Some(b));
    let given = hook("c", &[K::Open], &[S::Api], scope(0))
        .to_builder()
        .id(WebhookId::new(40))
        .build()
        .unwrap();
    assert_eq!(r.insert(given), WebhookId::new(40));
    let d = r.insert(hook("d", &[K::Open], &[S::Api], scope(0)));
    assert!(d > WebhookId::new(40));
    // A removed id is not handed out again.
    r.remove(d).unwrap();
    let e = r.insert(hook("e", &[K::Open], &[S::Api], scope(0)));
    assert!(e > d);
    assert_eq!(r.len(), 4);
}

#[test]
fn fresh_ids_wrap_to_the_lowest_free_one_after_u64_max() {
    let mut r = Registry::new();
    let with_id = |name: &str, id: u64| {
        hook(name, &[K::Open], &[S::Api], scope(0))
            .to_builder()
            .id(WebhookId::new(id))
            .build()
            .unwrap()
    };
    r.insert(with_id("max", u64::MAX));
    r.insert(with_id("one", 1));
    let fresh = r.insert(hook("fresh", &[K::Open], &[S::Api], scope(0)));
    assert_eq!(fresh, WebhookId::new(2));
    let next = r.insert(hook("next", &[K::Open], &[S::Api], scope(0)));
    assert_eq!(next, WebhookId::new(3));
    assert_eq!(r.len(), 4);
    assert_eq!(r.get(fresh).unwrap().name(), "fresh");
}

#[test]
fn upsert_replaces_and_reindexes() {
    let mut r = Registry::new();
    let id = r.insert(hook("x", &[K::Open], &S::ALL, scope(1)));
    let open = event(K::Open, S::Api, list(1));
    let deal = event(K::DealAdd, S::Api, list(1));
    assert_eq!(matched_ids(&r, &open), [id]);
    let replacement = hook("y", &[K::DealAdd], &[S::Api], scope(2))
        .to_builder()
        .id(id)
        .build()
        .unwrap();
    assert_eq!(r.insert(replacement), id);
    assert_eq!(r.len(), 1);
    assert_eq!(r.get(id).unwrap().name(), "y");
    assert!(matched_ids(&r, &open).is_empty());
    assert_eq!(matched_ids(&r, &deal), [id]);
    // An inactive replacement leaves the index.
    let mut off = hook("z", &[K::DealAdd], &[S::Api], scope(0));
    off.set_id(id);
    off.deactivate(Deactivation::Gone);
    r.insert(off);
    assert!(matched_ids(&r, &deal).is_empty());
    assert!(r.set_active(id, true));
    assert_eq!(matched_ids(&r, &deal), [id]);
}

#[test]
fn deactivation_takes_effect_at_once() {
    let mut r = Registry::new();
    let id = r.insert(hook("x", &[K::Click], &[S::Contact], scope(3)));
    let click = event(K::Click, S::Contact, list(3));
    assert_eq!(r.matches(&click).count(), 1);
    assert!(r.deactivate(id, Deactivation::Gone));
    assert_eq!(r.matches(&click).count(), 0);
    // Switching off again keeps the first reason; so does deactivating twice.
    assert!(r.set_active(id, false));
    assert_eq!(r.get(id).unwrap().deactivation(), Some(Deactivation::Gone));
    assert!(r.deactivate(id, Deactivation::Gone));
    assert_eq!(r.matches(&click).count(), 0);
    assert!(r.set_active(id, true));
    assert!(r.set_active(id, true));
    assert_eq!(r.matches(&click).count(), 1);
    // Unknown ids.
    assert!(!r.set_active(WebhookId::new(999), true));
    assert!(!r.deactivate(WebhookId::new(999), Deactivation::Manual));
    assert!(r.remove(WebhookId::new(999)).is_none());
}

#[test]
fn removing_in_any_order_keeps_the_index_consistent() {
    let mut r = Registry::new();
    let mut ids = Vec::new();
    for i in 0..60u64 {
        let kinds = [K::Open, K::DealAdd, K::Click, K::SmsSent];
        let w = hook(
            &format!("h{i}"),
            &[kinds[(i % 4) as usize], kinds[((i / 4) % 4) as usize]],
            &S::ALL[..=(i % 4) as usize],
            scope(i % 3),
        );
        ids.push(r.insert(w));
    }
    // Remove from the middle, the front and the back, interleaved with deactivations.
    let order = [30, 0, 59, 12, 45, 1, 58, 20, 33, 7];
    for (n, &i) in order.iter().enumerate() {
        if n % 3 == 0 {
            // Switch a neighbour off (it may be gone already: then nothing happens).
            r.set_active(ids[(i + 1) % ids.len()], false);
        }
        assert!(r.remove(ids[i]).is_some());
        for kind in [K::Open, K::DealAdd, K::Click, K::SmsSent] {
            for source in S::ALL {
                for on in [None, list(1), list(2)] {
                    let e = event(kind, source, on);
                    assert_eq!(matched_ids(&r, &e), scanned_ids(&r, &e));
                }
            }
        }
    }
    assert_eq!(r.len(), 50);
    r.shrink_to_fit();
    for kind in [K::Open, K::DealAdd, K::Click, K::SmsSent] {
        for on in [None, list(1), list(2)] {
            let e = event(kind, S::Contact, on);
            assert_eq!(matched_ids(&r, &e), scanned_ids(&r, &e));
        }
    }
    for id in ids {
        r.remove(id);
    }
    assert!(r.is_empty());
    assert_eq!(r.matches(&event(K::Open, S::Contact, list(1))).len(), 0);
}

#[test]
fn clone_is_independent_and_traits_hold() {
    let (registry, _) = fixture();
    let mut copy = registry.clone();
    let open = event(K::Open, S::Contact, list(1));
    let ids = matched_ids(&copy, &open);
    for id in &ids {
        copy.remove(*id);
    }
    assert!(matched_ids(&copy, &open).is_empty());
    assert_eq!(matched_ids(&registry, &open), ids);
    let mut sized = Registry::with_capacity(registry.len());
    sized.extend(registry.iter().cloned());
    assert_eq!(matched_ids(&sized, &open), ids);
    let collected: Registry = registry.iter().cloned().collect();
    assert_eq!(collected.len(), registry.len());
    assert_eq!(matched_ids(&collected, &open), ids);
    assert!(format!("{registry:?}").contains("open-all"));
    assert_eq!(Registry::default().len(), 0);
    assert_eq!((&registry).into_iter().len(), registry.len());
}

// ---- model check against a linear scan ----

#[derive(Debug, Clone)]
enum Op {
    /// Insert a webhook, with the given id (an upsert) or a fresh one.
    Insert {
        id: Option<u64>,
        events: Vec<EventKind>,
        sources: Vec<Source>,
        list: u64,
        active: bool,
    },
    Remove(u64),
    SetActive(u64, bool),
    Deactivate(u64),
}

fn kind() -> impl Strategy<Value = EventKind> {
    (0..K::ALL.len()).prop_map(|i| K::ALL[i])
}

fn source() -> impl Strategy<Value = Source> {
    (0..S::ALL.len()).prop_map(|i| S::ALL[i])
}

/// Ids 1..=12: small enough that removes and upserts hit.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            prop::option::weighted(0.3, 1u64..=12),
            prop::collection::vec(kind(), 1..4),
            prop::collection::vec(source(), 1..4),
            0u64..=5,
            prop::bool::weighted(0.85),
        )
            .prop_map(|(id, events, sources, list, active)| Op::Insert {
                id,
                events,
                sources,
                list,
                active,
            }),
        2 => (1u64..=12).prop_map(Op::Remove),
        2 => (1u64..=12, any::<bool>()).prop_map(|(id, on)| Op::SetActive(id, on)),
        1 => (1u64..=12).prop_map(Op::Deactivate),
    ]
}

fn apply(r: &mut Registry, model: &mut HashMap<WebhookId, Webhook>, op: &Op) {
    match op {
        Op::Insert {
            id,
            events,
            sources,
            list,
            active,
        } => {
            let mut w = hook("p", events, sources, scope(*list));
            if let Some(id) = id {
                w.set_id(WebhookId::new(*id));
            }
            if !active {
                w.deactivate(Deactivation::Manual);
            }
            let id = r.insert(w.clone());
            w.set_id(id);
            model.insert(id, w);
        }
        Op::Remove(id) => {
            let id = WebhookId::new(*id);
            assert_eq!(r.remove(id), model.remove(&id));
        }
        Op::SetActive(id, on) => {
            let id = WebhookId::new(*id);
            let known = model.get_mut(&id).map(|w| w.set_active(*on)).is_some();
            assert_eq!(r.set_active(id, *on), known);
        }
        Op::Deactivate(id) => {
            let id = WebhookId::new(*id);
            let known = model
                .get_mut(&id)
                .map(|w| w.deactivate(Deactivation::Gone))
                .is_some();
            assert_eq!(r.deactivate(id, Deactivation::Gone), known);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/registry.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn matches_equals_a_linear_scan(
        ops in prop::collection::vec(op(), 0..40),
        probes in prop::collection::vec((kind(), source(), 0u64..=5), 1..8),
    ) {
        let mut r = Registry::new();
        let mut model = HashMap::new();
        for op in &ops {
            apply(&mut r, &mut model, op);
            // A few events after every step...
            for &(kind, source, on) in &probes {
                let e = event(kind, source, ListId::new(on));
                prop_assert_eq!(matched_ids(&r, &e), scanned_ids(&r, &e));
            }
        }
        // ...and every event at the end, against the model as well as the scan.
        prop_assert_eq!(r.len(), model.len());
        for (id, w) in &model {
            prop_assert_eq!(r.get(*id), Some(w));
        }
        for kind in K::ALL {
            for source in S::ALL {
                for on in 0..=5 {
                    let e = event(kind, source, ListId::new(on));
                    let got = matched_ids(&r, &e);
                    prop_assert_eq!(&got, &scanned_ids(&r, &e));
                    let mut want: Vec<WebhookId> = model
                        .iter()
                        .filter(|(_, w)| w.wants(kind, source, ListId::new(on)))
                        .map(|(id, _)| *id)
                        .collect();
                    want.sort();
                    prop_assert_eq!(got, want);
                }
            }
        }
    }
}

// ---- sharing between threads ----

fn churn_hook(i: u64) -> Webhook {
    let kinds = [K::Open, K::DealAdd, K::Subscribe, K::SmsSent, K::Click];
    hook(
        &format!("c{i}"),
        &[kinds[(i % 5) as usize], kinds[((i / 5) % 5) as usize]],
        &S::ALL[(i % 2) as usize..=(i % 4) as usize],
        scope(i % 4),
    )
}

fn probes() -> Vec<Event> {
    let mut events = Vec::new();
    for kind in [K::Open, K::DealAdd, K::Subscribe, K::SmsSent, K::Click] {
        for source in S::ALL {
            for on in 0..4 {
                events.push(event(kind, source, ListId::new(on)));
            }
        }
    }
    events
}

/// A writer inserts, deactivates, reactivates and removes while readers match.
fn write_churn(mut update: impl FnMut(&mut dyn FnMut(&mut Registry))) {
    let mut live = Vec::new();
    for i in 0..600u64 {
        update(&mut |r: &mut Registry| live.push(r.insert(churn_hook(i))));
        if i % 3 == 0 {
            let id = live[(i as usize * 7) % live.len()];
            update(&mut |r: &mut Registry| {
                r.deactivate(id, Deactivation::Gone);
            });
        }
        if i % 5 == 0 {
            let id = live[(i as usize * 11) % live.len()];
            update(&mut |r: &mut Registry| {
                r.set_active(id, true);
            });
        }
        if i % 2 == 0 {
            let id = live.swap_remove((i as usize * 13) % live.len());
            update(&mut |r: &mut Registry| {
                r.remove(id).unwrap();
            });
        }
    }
}

#[test]
fn readers_share_a_rwlock_while_a_writer_updates() {
    let registry = Arc::new(RwLock::new(Registry::new()));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let registry = Arc::clone(&registry);
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let events = probes();
                let mut seen = 0usize;
                let mut rounds = 0usize;
                while !done.load(Ordering::Acquire) || rounds == 0 {
                    for e in &events {
                        let r = registry.read().unwrap();
                        for w in r.matches(e) {
                            assert!(w.wants(e.kind(), e.source(), e.list()), "{w:?} for {e:?}");
                            seen += 1;
                        }
                        // Under the read lock nothing changes: the answer is the scan's.
                        assert_eq!(matched_ids(&r, e), scanned_ids(&r, e));
                    }
                    rounds += 1;
                }
                (seen, rounds)
            })
        })
        .collect();
    write_churn(|f| f(&mut registry.write().unwrap()));
    done.store(true, Ordering::Release);
    for reader in readers {
        let (_, rounds) = reader.join().unwrap();
        assert!(rounds > 0);
    }
    let r = registry.read().unwrap();
    assert_eq!(r.len(), 300);
    for e in probes() {
        assert_eq!(matched_ids(&r, &e), scanned_ids(&r, &e));
    }
}

#[test]
fn readers_use_copy_on_write_snapshots_while_a_writer_publishes() {
    let current = Arc::new(RwLock::new(Arc::new(Registry::new())));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let current = Arc::clone(&current);
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let events = probes();
                let mut versions = 0usize;
                let mut last_len = usize::MAX;
                while !done.load(Ordering::Acquire) || versions == 0 {
                    // Take the snapshot and let go of the lock at once.
                    let snapshot: Arc<Registry> = Arc::clone(&current.read().unwrap());
                    for e in &events {
                        assert_eq!(matched_ids(&snapshot, e), scanned_ids(&snapshot, e));
                    }
                    if snapshot.len() != last_len {
                        versions += 1;
                        last_len = snapshot.len();
                    }
                }
                versions
            })
        })
        .collect();
    // The writer publishes a new version per update: clone, change, swap.
    write_churn(|f| {
        let mut next = Arc::clone(&current.read().unwrap());
        f(Arc::make_mut(&mut next));
        *current.write().unwrap() = next;
    });
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    assert_eq!(current.read().unwrap().len(), 300);
}
