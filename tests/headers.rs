//! A webhook's own headers: what the builder refuses (and names), what it keeps, the API
//! JSON, and — over real HTTP on 127.0.0.1 — that every attempt carries them, dispatched or
//! from a store through a worker, retries included.

#[cfg(feature = "http")]
#[path = "support/server.rs"]
mod server;

use http::HeaderMap;
use posthook::{Error, EventKind, Source, Webhook, WebhookBuilder, WebhookError};
use proptest::prelude::*;

fn builder() -> WebhookBuilder {
    Webhook::builder("ERP", "https://erp.example.com/hooks/ac")
        .events([EventKind::Subscribe])
        .sources(Source::ALL)
}

fn build_with(name: &str, value: &str) -> Result<Webhook, Error> {
    builder().header(name, value).build()
}

/// Every header a webhook may not set, one of each class, in the case the user typed.
const RESERVED: &[&str] = &[
    // posthook's own
    "content-type",
    "Content-Length",
    "CONTENT-ENCODING",
    "Host",
    "User-Agent",
    "Expect",
    "X-Posthook-Delivery",
    "x-posthook-anything-else",
    // Standard Webhooks'
    "webhook-id",
    "Webhook-Timestamp",
    "WEBHOOK-SIGNATURE",
    "webhook-whatever",
    // hop-by-hop
    "Connection",
    "keep-alive",
    "Proxy-Connection",
    "proxy-authenticate",
    "Proxy-Authorization",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "upgrade",
];

#[test]
fn every_reserved_header_is_refused_by_name() {
    for &name in RESERVED {
        let err = build_with(name, "x").unwrap_err();
        assert_eq!(
            err,
            Error::Webhook(WebhookError::ReservedHeader {
                name: name.to_owned()
            }),
            "{name}"
        );
        let text = err.to_string();
        assert!(text.contains(&format!("{name:?}")), "{text}");
    }
    assert_eq!(
        posthook::DELIVERY_ID_HEADER,
        "x-posthook-delivery",
        "the delivery id header is in the list above"
    );
}

#[test]
fn invalid_names_and_values_are_refused_with_the_name_and_why() {
    let cases: &[(&str, &str, &str)] = &[
        ("X-Tenant\nEvil", "1", "not a header name"),
        ("X Tenant", "1", "not a header name"),
        ("X-Tenant:", "1", "not a header name"),
        ("", "1", "the name is empty"),
        ("X-Tenant", "a\nb", "line break"),
        ("X-Tenant", "a\r\nX-Evil: 1", "line break"),
        ("X-Tenant", "a\0b", "control character"),
        ("X-Tenant", "caf\u{e9}", "outside ASCII"),
        ("X-Tenant", " padded", "white space"),
        ("X-Tenant", "padded\t", "white space"),
    ];
    for &(name, value, why) in cases {
        let err = build_with(name, value).unwrap_err();
        let Error::Webhook(WebhookError::InvalidHeader { name: got, reason }) = &err else {
            panic!("{name:?}: {value:?}: {err:?}");
        };
        assert_eq!(got, name);
        assert!(reason.contains(why), "{name:?} {value:?}: {reason}");
        let text = err.to_string();
        assert!(text.contains(&format!("{name:?}")), "{text}");
        assert!(!text.contains('\n'), "the message is one line: {text:?}");
    }
}

#[test]
fn headers_are_kept_case_insensitively_and_a_name_given_again_replaces() {
    let hook = builder()
        .header("Authorization", "Bearer 9f2c")
        .header(http::header::ACCEPT, http::HeaderValue::from_static("*/*"))
        .header("X-Tenant", "acme")
        .header("x-tenant", "acme-2")
        .header(String::from("X-Empty"), "")
        .header("X-Bytes", b"a b\tc".as_slice())
        .build()
        .unwrap();
    let headers = hook.headers();
    assert_eq!(headers.len(), 5);
    assert_eq!(headers["authorization"], "Bearer 9f2c");
    assert_eq!(headers["X-TENANT"], "acme-2");
    assert_eq!(headers["accept"], "*/*");
    assert_eq!(headers["x-empty"], "");
    assert_eq!(headers["x-bytes"], "a b\tc");

    // Default: none, and a webhook without headers is the same as before.
    let plain = builder().build().unwrap();
    assert!(plain.headers().is_empty());
    assert_ne!(plain, hook);
    assert_eq!(hook.to_builder().clear_headers().build().unwrap(), plain);
    assert_eq!(hook.to_builder().build().unwrap(), hook);
}

#[test]
fn debug_shows_header_names_not_values() {
    let hook = builder()
        .header("Authorization", "Bearer s3cr3t-token")
        .build()
        .unwrap();
    for text in [format!("{hook:?}"), format!("{:?}", hook.to_builder())] {
        assert!(text.contains("authorization"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }
}

#[test]
fn the_first_header_refused_is_reported_after_the_other_errors() {
    let err = Webhook::builder("ERP", "https://erp.example.com/")
        .header("Host", "x")
        .sources(Source::ALL)
        .build()
        .unwrap_err();
    assert_eq!(err, Error::Webhook(WebhookError::NoEvents));
    let err = builder()
        .header("Host", "x")
        .header("Bad Name", "y")
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        Error::Webhook(WebhookError::ReservedHeader {
            name: "Host".into()
        })
    );
    // Cleared, it builds.
    assert!(
        builder()
            .header("Host", "x")
            .clear_headers()
            .build()
            .is_ok()
    );
}

#[test]
fn the_json_has_headers_only_when_there_are_some() {
    let plain = builder().build().unwrap();
    let json = serde_json::to_value(&plain).unwrap();
    assert!(json.get("headers").is_none(), "{json}");

    let hook = builder()
        .header("X-Tenant", "acme")
        .header("Authorization", "Bearer 1")
        .build()
        .unwrap();
    let json = serde_json::to_value(&hook).unwrap();
    assert_eq!(
        json["headers"],
        serde_json::json!({"authorization": "Bearer 1", "x-tenant": "acme"})
    );
    let back: Webhook = serde_json::from_value(json).unwrap();
    assert_eq!(back, hook);
}

#[test]
fn json_headers_go_through_the_builders_checks() {
    let json = |headers: &str| {
        format!(
            r#"{{"name": "n", "url": "https://example.com/h", "events": ["subscribe"],
                "sources": ["public"], "listid": "0", "headers": {headers}}}"#
        )
    };
    let hook: Webhook = serde_json::from_str(&json(r#"{"X-Tenant": "acme"}"#)).unwrap();
    assert_eq!(hook.headers()["x-tenant"], "acme");
    let none: Webhook = serde_json::from_str(&json("null")).unwrap();
    assert!(none.headers().is_empty());
    let empty: Webhook = serde_json::from_str(&json("{}")).unwrap();
    assert!(empty.headers().is_empty());
    assert_eq!(empty, none);

    for (headers, named) in [
        (
            r#"{"Webhook-Signature": "v1,forged"}"#,
            "\"Webhook-Signature\"",
        ),
        (r#"{"Content-Type": "text/plain"}"#, "\"Content-Type\""),
        (r#"{"Connection": "close"}"#, "\"Connection\""),
        (r#"{"X-Tenant": "a\nb"}"#, "\"X-Tenant\""),
        (r#"{"X Tenant": "a"}"#, "\"X Tenant\""),
    ] {
        let err = serde_json::from_str::<Webhook>(&json(headers)).unwrap_err();
        assert!(err.to_string().contains(named), "{headers}: {err}");
    }
    assert!(serde_json::from_str::<Webhook>(&json(r#"{"X-Tenant": 7}"#)).is_err());
}

/// A name made of token characters, in any case, that posthook does not own.
fn header_name() -> impl Strategy<Value = String> {
    "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,24}"
        .prop_filter("not reserved", |name| build_with(name, "x").is_ok())
}

/// A value of visible ASCII, spaces and tabs, with no white space at either end.
fn header_value() -> impl Strategy<Value = String> {
    "([!-~]([ \t!-~]{0,40}[!-~])?)?"
}

/// Every byte a header value cannot hold that is ASCII: controls but the tab, and DEL.
fn control_bytes() -> Vec<u8> {
    (0u8..0x20).filter(|&b| b != b'\t').chain([0x7f]).collect()
}

proptest! {
    #[test]
    fn any_valid_header_builds_and_survives_json(
        headers in prop::collection::vec((header_name(), header_value()), 0..6)
    ) {
        let mut b = builder();
        let mut expected = HeaderMap::new();
        for (name, value) in &headers {
            b = b.header(name, value);
            expected.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        let hook = b.build().unwrap();
        prop_assert_eq!(hook.headers(), &expected);
        let json = serde_json::to_string(&hook).unwrap();
        prop_assert_eq!(json.contains("\"headers\""), !headers.is_empty());
        let back: Webhook = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &hook);
        prop_assert_eq!(back.headers(), &expected);
    }

    #[test]
    fn a_reserved_header_is_refused_in_any_case(
        index in 0..RESERVED.len(),
        upper in prop::collection::vec(any::<bool>(), 32),
        suffix in "[a-z0-9-]{0,8}",
    ) {
        let mut name: String = RESERVED[index]
            .chars()
            .zip(upper.iter().cycle())
            .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        // Anything under the reserved prefixes is reserved too.
        if name.to_ascii_lowercase().starts_with("webhook-")
            || name.to_ascii_lowercase().starts_with("x-posthook-")
        {
            name.push_str(&suffix);
        }
        prop_assert_eq!(
            build_with(&name, "x").unwrap_err(),
            Error::Webhook(WebhookError::ReservedHeader { name: name.clone() })
        );
    }

    #[test]
    fn a_value_with_a_control_character_is_refused(
        before in "[ -~]{0,8}",
        control in prop::sample::select(control_bytes()),
        after in "[ -~]{0,8}",
    ) {
        let value = format!("{before}{}{after}", control as char);
        let err = build_with("X-Tenant", &value).unwrap_err();
        let is_invalid = matches!(
            err,
            Error::Webhook(WebhookError::InvalidHeader { ref name, .. }) if name == "X-Tenant"
        );
        prop_assert!(is_invalid, "{:?}", err);
    }
}

/// Over real HTTP on 127.0.0.1: the headers reach the receiver on every attempt.
#[cfg(feature = "http")]
mod loopback {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::server::{Recorded, Reply, Server};
    use posthook::{
        AddressClass, AddressPolicy, Dispatcher, Event, EventKind, HttpTransport, ManualClock,
        MemoryStore, Outbox, Registry, RetryPolicy, Source, TokioTimer, Webhook, Worker,
    };

    fn dispatcher() -> Dispatcher<HttpTransport, TokioTimer> {
        let transport = HttpTransport::builder()
            .address_policy(AddressPolicy::public_only().allow(AddressClass::Loopback))
            .build()
            .expect("a transport");
        Dispatcher::new(transport, TokioTimer::new())
    }

    fn hook(server: &Server) -> Webhook {
        Webhook::builder("ERP", &server.url("/hooks/ac"))
            .events([EventKind::Subscribe])
            .sources(Source::ALL)
            .retry_policy(
                RetryPolicy::default()
                    .with_initial_backoff(Duration::from_millis(10))
                    .with_max_attempts(3),
            )
            .header("Authorization", "Bearer 9f2c")
            .header("X-Tenant", "acme")
            .build()
            .unwrap()
    }

    /// The webhook's headers are there, with their values, and posthook's own too, untouched.
    fn assert_carries_them(seen: &[Recorded], attempts: usize) {
        assert_eq!(seen.len(), attempts);
        let id = &seen[0].headers[posthook::DELIVERY_ID_HEADER];
        for request in seen {
            let h = &request.headers;
            assert_eq!(h["authorization"], "Bearer 9f2c");
            assert_eq!(h["x-tenant"], "acme");
            assert_eq!(h.get_all("x-tenant").iter().count(), 1);
            assert_eq!(h["content-type"], "application/x-www-form-urlencoded");
            assert!(h["user-agent"].to_str().unwrap().starts_with("posthook/"));
            assert_eq!(&h[posthook::DELIVERY_ID_HEADER], id, "the same delivery");
        }
    }

    #[tokio::test]
    async fn a_dispatched_delivery_carries_them_on_every_attempt() {
        let server = Server::start(Reply::Statuses(&[503, 200])).await;
        let mut registry = Registry::new();
        registry.insert(hook(&server));
        let report = dispatcher()
            .dispatch(&registry, &Event::sample(EventKind::Subscribe))
            .await;
        assert!(report.all_delivered(), "{report:?}");
        assert_eq!(report.deliveries[0].attempts.len(), 2);
        assert_carries_them(&server.requests(), 2);
    }

    #[tokio::test]
    async fn sample_data_carries_them() {
        let server = Server::start(Reply::Status(204)).await;
        let report = dispatcher()
            .send_sample(&hook(&server), EventKind::Subscribe)
            .await;
        assert!(report.outcome.is_delivered(), "{report:?}");
        assert_carries_them(&server.requests(), 1);
    }

    #[tokio::test]
    async fn a_durable_delivery_carries_them_on_every_attempt() {
        let server = Server::start(Reply::Statuses(&[503, 200])).await;
        let mut registry = Registry::new();
        registry.insert(hook(&server));
        let registry = Arc::new(registry);
        let clock = ManualClock::default();
        let store = MemoryStore::with_clock(clock.clone());
        let outbox = Outbox::new(store.clone());
        let lookup = Arc::clone(&registry);
        let worker =
            Worker::new(store.clone(), dispatcher()).webhooks(move |id| lookup.get(id).cloned());
        outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await
            .unwrap();

        let first = worker.run_once().await.unwrap();
        assert_eq!((first.claimed, first.retrying), (1, 1));
        clock.advance(Duration::from_secs(60));
        let second = worker.run_once().await.unwrap();
        assert_eq!((second.claimed, second.done), (1, 1));
        assert_carries_them(&server.requests(), 2);

        // Without the lookup the worker knows only what the store holds: no headers.
        let plain = Worker::new(store, dispatcher());
        outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await
            .unwrap();
        assert_eq!(plain.run_once().await.unwrap().done, 1);
        let last = server.requests().pop().unwrap();
        assert!(last.headers.get("x-tenant").is_none());
    }
}
