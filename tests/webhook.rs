//! Webhooks: the builder's errors and the ActiveCampaign API v3 JSON shape.

use posthook::{
    Deactivation, Error, EventKind, ListId, ListScope, Source, SourceSet, UrlErrorKind, Webhook,
    WebhookEnvelope, WebhookError, WebhookId,
};
use serde_json::json;

fn zapier() -> Webhook {
    Webhook::builder(
        "Zapier: unsubscribes",
        "https://hooks.zapier.com/hooks/catch/1/a/",
    )
    .events([EventKind::Unsubscribe])
    .sources(Source::ALL)
    .scope(ListScope::All)
    .build()
    .unwrap()
}

#[test]
fn builder_sets_every_field() {
    let list = ListId::new(7).unwrap();
    let hook = Webhook::builder("Deals", "https://example.com/deals")
        .events([EventKind::DealAdd, EventKind::DealUpdate])
        .events([EventKind::DealAdd])
        .sources([Source::Admin])
        .sources([Source::Api])
        .scope(ListScope::List(list))
        .build()
        .unwrap();
    assert_eq!(hook.name(), "Deals");
    assert_eq!(hook.url().as_str(), "https://example.com/deals");
    assert_eq!(
        hook.events().iter().collect::<Vec<_>>(),
        [EventKind::DealAdd, EventKind::DealUpdate]
    );
    assert_eq!(
        hook.sources().iter().collect::<Vec<_>>(),
        [Source::Admin, Source::Api]
    );
    assert_eq!(hook.scope(), ListScope::List(list));
    assert!(hook.is_active());
    assert_eq!(hook.id(), None);
}

#[test]
fn builder_errors_are_typed() {
    let base = || Webhook::builder("n", "https://example.com/");
    let cases: Vec<(Result<Webhook, Error>, Error)> = vec![
        (
            Webhook::builder("  \t", "https://example.com/")
                .events([EventKind::Open])
                .sources([Source::Api])
                .build(),
            WebhookError::BlankName.into(),
        ),
        (
            Webhook::builder("", "not a url").build(),
            WebhookError::BlankName.into(),
        ),
        (
            base().sources([Source::Api]).build(),
            WebhookError::NoEvents.into(),
        ),
        (
            base().events([EventKind::Open]).build(),
            WebhookError::NoSources.into(),
        ),
        (
            base()
                .events(EventKind::ALL)
                .sources(SourceSet::empty())
                .build(),
            WebhookError::NoSources.into(),
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got.unwrap_err(), want);
    }
    let err = Webhook::builder("n", "https://example.com/a b")
        .events([EventKind::Open])
        .sources([Source::Api])
        .build()
        .unwrap_err();
    match &err {
        Error::Url(url) => {
            assert_eq!(url.kind(), &UrlErrorKind::InvalidCharacter(' '));
            assert_eq!(url.offset(), 21);
        }
        other => panic!("expected a URL error, got {other:?}"),
    }
    assert_eq!(err.to_string(), "invalid character ' ' at byte 21");
    assert_eq!(
        WebhookError::NoEvents.to_string(),
        "webhook has no events: select at least one"
    );
}

#[test]
fn url_policy_is_checked_by_build() {
    let err = Webhook::builder("n", "http://example.com/")
        .events([EventKind::Open])
        .sources([Source::Api])
        .url_policy(posthook::UrlPolicy::activecampaign())
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::Url(ref e) if e.kind() == &UrlErrorKind::InsecureScheme),
        "{err:?}"
    );
}

#[test]
fn the_create_request_shape() {
    let hook = zapier();
    let body = serde_json::to_value(WebhookEnvelope::new(hook.clone())).unwrap();
    assert_eq!(
        body,
        json!({"webhook": {
            "name": "Zapier: unsubscribes",
            "url": "https://hooks.zapier.com/hooks/catch/1/a/",
            "events": ["unsubscribe"],
            "sources": ["public", "admin", "api", "system"],
            "listid": "0"
        }})
    );
    let back: WebhookEnvelope = serde_json::from_value(body).unwrap();
    assert_eq!(back.webhook, hook);
}

#[test]
fn reads_an_api_response_with_string_ids_and_cdate() {
    let response = json!({"webhook": {
        "cdate": "2016-01-01T12:00:00-00:00",
        "listid": "12",
        "name": "My Hook",
        "url": "http://example.com/my-hook",
        "events": ["subscribe", "unsubscribe", "sent"],
        "sources": ["public", "system"],
        "links": [],
        "id": "1"
    }});
    let hook = serde_json::from_value::<WebhookEnvelope>(response)
        .unwrap()
        .webhook;
    assert_eq!(hook.id(), Some(WebhookId::new(1)));
    assert_eq!(hook.cdate(), Some("2016-01-01T12:00:00-00:00"));
    assert_eq!(hook.scope(), ListScope::List(ListId::new(12).unwrap()));
    assert_eq!(hook.events().len(), 3);
    assert!(hook.sources().contains(Source::System));
    // Written back: id and listid as strings, cdate as received; unknown keys dropped.
    let out = serde_json::to_value(&hook).unwrap();
    assert_eq!(out["id"], json!("1"));
    assert_eq!(out["listid"], json!("12"));
    assert_eq!(out["cdate"], json!("2016-01-01T12:00:00-00:00"));
    // Events are written in the order of EventKind::ALL.
    assert_eq!(out["events"], json!(["sent", "subscribe", "unsubscribe"]));
    assert!(out.get("links").is_none());
    assert_eq!(serde_json::from_value::<Webhook>(out).unwrap(), hook);
}

#[test]
fn listid_zero_null_or_absent_means_all_lists() {
    let base =
        json!({"name": "n", "url": "https://e.com/", "events": ["open"], "sources": ["api"]});
    let scope = |listid: Option<serde_json::Value>| {
        let mut v = base.clone();
        if let Some(listid) = listid {
            v["listid"] = listid;
        }
        serde_json::from_value::<Webhook>(v).map(|w| w.scope())
    };
    assert_eq!(scope(Some(json!(0))).unwrap(), ListScope::All);
    assert_eq!(scope(Some(json!("0"))).unwrap(), ListScope::All);
    assert_eq!(scope(Some(json!(null))).unwrap(), ListScope::All);
    assert_eq!(scope(None).unwrap(), ListScope::All);
    assert_eq!(scope(Some(json!(5))).unwrap(), ListScope::from_list_id(5));
    assert_eq!(scope(Some(json!("5"))).unwrap(), ListScope::from_list_id(5));
    assert!(scope(Some(json!(-1))).is_err());
    assert!(scope(Some(json!("five"))).is_err());
    assert!(scope(Some(json!("-5"))).is_err());
    assert!(scope(Some(json!(true))).is_err());
}

#[test]
fn numeric_ids_are_accepted() {
    let v = json!({"id": 42, "name": "n", "url": "https://e.com/", "events": ["open"], "sources": ["api"]});
    assert_eq!(
        serde_json::from_value::<Webhook>(v).unwrap().id(),
        Some(WebhookId::new(42))
    );
}

#[test]
fn invalid_json_webhooks_are_rejected_with_the_reason() {
    let cases = [
        (
            json!({"name": "", "url": "https://e.com/", "events": ["open"], "sources": ["api"]}),
            "name is blank",
        ),
        (
            json!({"name": "n", "url": "https://e.com/ x", "events": ["open"], "sources": ["api"]}),
            "at byte 14",
        ),
        (
            json!({"name": "n", "url": "https://e.com/", "events": [], "sources": ["api"]}),
            "no events",
        ),
        (
            json!({"name": "n", "url": "https://e.com/", "events": ["open"], "sources": []}),
            "no sources",
        ),
        (
            json!({"name": "n", "url": "https://e.com/", "events": ["opened"], "sources": ["api"]}),
            "\"opened\"",
        ),
        (
            json!({"name": "n", "url": "https://e.com/", "events": ["open"], "sources": ["user"]}),
            "\"user\"",
        ),
        (
            json!({"url": "https://e.com/", "events": ["open"], "sources": ["api"]}),
            "name",
        ),
    ];
    for (value, needle) in cases {
        let err = serde_json::from_value::<Webhook>(value.clone())
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{value}: {err}");
    }
}

#[test]
fn deactivation_is_recorded_and_survives_serde() {
    let mut hook = zapier();
    hook.deactivate(Deactivation::Gone);
    assert!(!hook.is_active());
    assert_eq!(hook.deactivation(), Some(Deactivation::Gone));
    assert!(!hook.wants(EventKind::Unsubscribe, Source::Contact, None));
    let json = serde_json::to_value(&hook).unwrap();
    assert_eq!(json["deactivated"], json!("gone"));
    assert_eq!(serde_json::from_value::<Webhook>(json).unwrap(), hook);
    hook.deactivate(Deactivation::Manual);
    assert_eq!(
        hook.deactivation(),
        Some(Deactivation::Gone),
        "a 410 stays on record"
    );
    hook.set_active(false);
    assert_eq!(hook.deactivation(), Some(Deactivation::Gone));
    hook.set_active(true);
    assert!(hook.is_active());
    assert!(
        serde_json::to_value(&hook)
            .unwrap()
            .get("deactivated")
            .is_none()
    );
    hook.set_active(false);
    assert_eq!(hook.deactivation(), Some(Deactivation::Manual));
}

#[test]
fn wants_follows_the_matching_rule() {
    let list = ListId::new(3);
    let hook = Webhook::builder("n", "https://e.com/")
        .events([EventKind::Open, EventKind::ContactTagAdded])
        .sources([Source::Contact])
        .scope(ListScope::from_list_id(3))
        .build()
        .unwrap();
    assert!(hook.wants(EventKind::Open, Source::Contact, list));
    assert!(!hook.wants(EventKind::Open, Source::Contact, ListId::new(4)));
    assert!(!hook.wants(EventKind::Open, Source::Contact, None));
    assert!(!hook.wants(EventKind::Open, Source::Api, list));
    assert!(!hook.wants(EventKind::Click, Source::Contact, list));
    // Not list-aware: the scope has no effect.
    assert!(hook.wants(EventKind::ContactTagAdded, Source::Contact, ListId::new(4)));
    assert!(hook.wants(EventKind::ContactTagAdded, Source::Contact, None));
}

#[test]
fn builder_takes_references_and_urls_compare_with_str() {
    let hook = Webhook::builder("all", "https://example.com/all")
        .events(EventKind::ALL.iter())
        .sources(Source::ALL.iter())
        .build()
        .unwrap();
    assert_eq!(hook.events().len(), 25);
    assert_eq!(hook.sources().len(), 4);
    assert_eq!(hook.url(), "https://example.com/all");
    assert_eq!(*hook.url(), *"https://example.com/all");
    assert!("https://example.com/all" == *hook.url());
    assert_ne!(hook.url(), "https://example.com/other");
}

#[test]
fn to_builder_round_trips() {
    let hook = zapier();
    let copy = hook.to_builder().build().unwrap();
    assert_eq!(copy, hook);
    let renamed = hook
        .to_builder()
        .events([EventKind::Bounce])
        .build()
        .unwrap();
    assert_eq!(renamed.events().len(), 2);
}

mod properties {
    use posthook::{EventKind, EventSet, ListScope, Source, SourceSet, Webhook, WebhookId};
    use proptest::prelude::*;

    fn webhook() -> impl Strategy<Value = Webhook> {
        (
            "[^\\s][\\PC]{0,30}",
            "https?://[a-z]{1,10}\\.(com|it|io)(:[1-9][0-9]{0,3})?/[a-zA-Z0-9$_.+!*'(),;:@=&%/-]{0,30}",
            1u32..(1 << 25),
            1u8..16,
            0u64..5,
            proptest::option::of(any::<u64>()),
            proptest::option::of("[0-9T:+-]{0,25}"),
        )
            .prop_filter_map("a valid URL", |(name, url, events, sources, list, id, cdate)| {
                let events: EventSet = EventKind::ALL
                    .into_iter()
                    .filter(|k| events & (1 << k.index()) != 0)
                    .collect();
                let sources: SourceSet = Source::ALL
                    .into_iter()
                    .filter(|s| sources & (1 << s.index()) != 0)
                    .collect();
                let mut builder = Webhook::builder(name, &url)
                    .events(events)
                    .sources(sources)
                    .scope(ListScope::from_list_id(list));
                if let Some(id) = id {
                    builder = builder.id(WebhookId::new(id));
                }
                if let Some(cdate) = cdate {
                    builder = builder.cdate(cdate);
                }
                builder.build().ok()
            })
    }

    proptest! {
        #[test]
        fn api_json_round_trips(hook in webhook(), listid_as_number in any::<bool>()) {
            let mut json = serde_json::to_value(&hook).unwrap();
            prop_assert_eq!(&json["listid"], &serde_json::json!(hook.scope().list_id().to_string()));
            if listid_as_number {
                json["listid"] = serde_json::json!(hook.scope().list_id());
            }
            let back: Webhook = serde_json::from_value(json).unwrap();
            prop_assert_eq!(back, hook);
        }
    }
}

#[test]
fn a_failing_deactivation_keeps_its_details_and_clears_on_activate() {
    let fresh = Webhook::builder("F", "https://f.example.com/")
        .events([EventKind::Open])
        .sources([Source::Api])
        .build()
        .unwrap();
    let failing = Deactivation::Failing {
        since: 1_700_000_000,
        failures: 12,
    };
    let mut hook = fresh.clone();
    hook.deactivate(failing);
    assert_eq!(hook.deactivation(), Some(failing));
    assert_eq!(failing.as_str(), "failing");
    // JSON keeps it; the builder starts active again.
    let back: Webhook = serde_json::from_str(&serde_json::to_string(&hook).unwrap()).unwrap();
    assert_eq!(back, hook);
    assert_eq!(hook.to_builder().build().unwrap(), fresh);
    hook.activate();
    assert_eq!(hook, fresh, "nothing of the streak is left");
    hook.set_active(false);
    assert_eq!(hook.deactivation(), Some(Deactivation::Manual));
}
