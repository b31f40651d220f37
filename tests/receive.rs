//! The receiving side: every kind signed and received back, automation and probe bodies,
//! tampering, replays, unsigned requests, rotation, content types, malformed bodies, and
//! arbitrary input that must never panic.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use posthook::receive::{ReceiveError, ReceivedBody, Receiver};
use posthook::{AutomationPayload, DELIVERY_ID_HEADER, DecodeError, Event, EventKind, PROBE_BODY};
use proptest::prelude::*;

const SENT: u64 = 1_700_000_000;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn every_kind_is_received_back_unsigned() {
    let receiver = Receiver::new();
    for kind in EventKind::ALL {
        let event = Event::sample(kind);
        let received = receiver
            .receive(&HeaderMap::new(), &event.encode(), at(SENT))
            .unwrap();
        assert_eq!(received.body, ReceivedBody::Event(event.clone()), "{kind}");
        assert_eq!(received.delivery_id, None);
        assert!(!received.verified);
        let only = receiver
            .receive_event(&HeaderMap::new(), &event.encode(), at(SENT))
            .unwrap();
        assert_eq!(only.body, event);
    }
}

#[test]
fn automation_and_probe_bodies() {
    let receiver = Receiver::new();
    let step = AutomationPayload::sample();
    let received = receiver
        .receive(&HeaderMap::new(), &step.encode(), at(SENT))
        .unwrap();
    assert_eq!(received.body, ReceivedBody::Automation(step.clone()));
    // An endpoint that insists on events refuses it, naming the missing key.
    let err = receiver
        .receive_event(&HeaderMap::new(), &step.encode(), at(SENT))
        .unwrap_err();
    assert_eq!(
        err,
        ReceiveError::Decode(DecodeError::MissingKey { key: "type" })
    );
    assert_eq!(err.to_string(), "body: missing key `type`");

    let probe = receiver
        .receive(&HeaderMap::new(), PROBE_BODY, at(SENT))
        .unwrap();
    assert_eq!(probe.body, ReceivedBody::Probe);
}

#[test]
fn malformed_bodies_say_the_step_and_the_reason() {
    let receiver = Receiver::new();
    let receive = |body: &[u8]| receiver.receive(&HeaderMap::new(), body, at(SENT));
    let err =
        receive(b"type=nonsense&date_time=2024-01-01T00%3A00%3A00%2B01%3A00&initiated_from=admin")
            .unwrap_err();
    assert!(
        matches!(err, ReceiveError::Decode(DecodeError::UnknownKind(_))),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("body: in `type`: "), "{err}");
    assert!(err.to_string().contains("nonsense"), "{err}");

    let err = receive(b"type=subscribe&date_time=2024-01-01T00%3A00%3A00%2B01%3A00").unwrap_err();
    assert_eq!(
        err,
        ReceiveError::Decode(DecodeError::MissingKey {
            key: "initiated_from"
        })
    );
    assert_eq!(err.to_string(), "body: missing key `initiated_from`");

    let err = receive(b"type=%zz").unwrap_err();
    assert!(
        matches!(err, ReceiveError::Decode(DecodeError::Form(_))),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("body: "), "{err}");

    for body in [&b""[..], b"a=1", b"contact[email]=a%40b.c"] {
        assert_eq!(receive(body), Err(ReceiveError::UnknownBody), "{body:?}");
    }
    assert_eq!(
        ReceiveError::UnknownBody.to_string(),
        "body: neither an event (no `type`) nor an automation step (no `seriesid`)"
    );
}

#[test]
fn the_content_type_is_checked_only_when_asked() {
    let body = Event::sample(EventKind::Open).encode();
    let with = |value: Option<&'static str>| {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(value));
        }
        headers
    };
    let strict = Receiver::new().require_form_content_type(true);
    for ok in [
        "application/x-www-form-urlencoded",
        "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
        " application/x-www-form-urlencoded ;charset=utf-8",
    ] {
        assert!(
            strict.receive(&with(Some(ok)), &body, at(SENT)).is_ok(),
            "{ok}"
        );
    }
    assert_eq!(
        strict.receive(&with(Some("application/json")), &body, at(SENT)),
        Err(ReceiveError::ContentType {
            found: Some("application/json".into())
        })
    );
    let err = strict.receive(&with(None), &body, at(SENT)).unwrap_err();
    assert_eq!(err, ReceiveError::ContentType { found: None });
    assert_eq!(
        err.to_string(),
        "content type: expected application/x-www-form-urlencoded, got none"
    );
    assert!(
        strict
            .receive(
                &with(Some("application/x-www-form-urlencodedX")),
                &body,
                at(SENT)
            )
            .is_err()
    );
    assert!(
        Receiver::new()
            .receive(&with(Some("application/json")), &body, at(SENT))
            .is_ok()
    );
}

#[test]
fn the_delivery_id_comes_from_x_posthook_delivery_then_webhook_id() {
    let body = Event::sample(EventKind::Open).encode();
    let receiver = Receiver::new();
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
    let got = receiver.receive(&headers, &body, at(SENT)).unwrap();
    assert_eq!(got.delivery_id.as_deref(), Some("msg_1"));
    headers.insert(DELIVERY_ID_HEADER, HeaderValue::from_static("0123abcd"));
    let got = receiver.receive(&headers, &body, at(SENT)).unwrap();
    assert_eq!(got.delivery_id.as_deref(), Some("0123abcd"));
    headers.insert(
        DELIVERY_ID_HEADER,
        HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
    );
    assert_eq!(
        receiver.receive(&headers, &body, at(SENT)),
        Err(ReceiveError::InvalidHeader {
            header: DELIVERY_ID_HEADER
        })
    );
}

#[cfg(feature = "signing")]
mod signed {
    use super::*;
    use posthook::sign::{SignatureHeaders, SigningSecret};

    fn secret(byte: u8) -> SigningSecret {
        SigningSecret::from_bytes(&[byte; 32]).unwrap()
    }

    fn signed(secrets: &[&SigningSecret], id: &str, timestamp: u64, body: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        SignatureHeaders::sign(secrets, id, timestamp as i64, body)
            .unwrap()
            .apply(&mut headers);
        headers
    }

    #[test]
    fn every_kind_signed_is_received_back_equal() {
        let key = secret(1);
        let receiver = Receiver::new().secret(key.clone());
        for (i, kind) in EventKind::ALL.into_iter().enumerate() {
            let event = Event::sample(kind);
            let body = event.encode();
            let id = format!("msg_{i}");
            let headers = signed(&[&key], &id, SENT, &body);
            let received = receiver.receive(&headers, &body, at(SENT + 10)).unwrap();
            assert_eq!(received.body, ReceivedBody::Event(event.clone()), "{kind}");
            assert_eq!(received.delivery_id.as_deref(), Some(id.as_str()));
            assert!(received.verified);
            let only = receiver
                .receive_event(&headers, &body, at(SENT - 10))
                .unwrap();
            assert_eq!(only.body, event);
            assert!(only.verified);
        }
        let step = AutomationPayload::sample();
        let body = step.encode();
        let headers = signed(&[&key], "msg_a", SENT, &body);
        let received = receiver.receive(&headers, &body, at(SENT)).unwrap();
        assert_eq!(received.body, ReceivedBody::Automation(step));
        assert!(received.verified);
    }

    #[test]
    fn a_tampered_body_is_a_mismatch() {
        let key = secret(2);
        let receiver = Receiver::new().secret(key.clone());
        let body = Event::sample(EventKind::Unsubscribe).encode();
        let headers = signed(&[&key], "msg_1", SENT, &body);
        let mut tampered = body.to_vec();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let err = receiver.receive(&headers, &tampered, at(SENT)).unwrap_err();
        assert_eq!(err, ReceiveError::SignatureMismatch);
        assert!(err.to_string().starts_with("signature: "), "{err}");
        // Also when the body stays a valid event: the signature is checked before decoding.
        let other = Event::sample(EventKind::Subscribe).encode();
        assert_eq!(
            receiver.receive_event(&headers, &other, at(SENT)),
            Err(ReceiveError::SignatureMismatch)
        );
        // A wrong secret is a mismatch too.
        assert_eq!(
            Receiver::new()
                .secret(secret(3))
                .receive(&headers, &body, at(SENT)),
            Err(ReceiveError::SignatureMismatch)
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused() {
        let key = secret(4);
        let body = Event::sample(EventKind::Open).encode();
        let headers = signed(&[&key], "msg_1", SENT, &body);
        let receiver = Receiver::new().secret(key.clone());
        // 5 minutes by default, either way.
        assert!(receiver.receive(&headers, &body, at(SENT + 300)).is_ok());
        assert!(receiver.receive(&headers, &body, at(SENT - 300)).is_ok());
        let err = receiver
            .receive(&headers, &body, at(SENT + 301))
            .unwrap_err();
        assert_eq!(
            err,
            ReceiveError::OutsideTolerance {
                timestamp: SENT as i64,
                distance: 301,
                tolerance: 300
            }
        );
        assert!(err.to_string().starts_with("signature: "), "{err}");
        assert!(matches!(
            receiver.receive(&headers, &body, at(SENT - 3600)),
            Err(ReceiveError::OutsideTolerance { distance: 3600, .. })
        ));
        let tight = Receiver::new()
            .secret(key)
            .tolerance(Duration::from_secs(5));
        assert!(tight.receive(&headers, &body, at(SENT + 5)).is_ok());
        assert!(matches!(
            tight.receive(&headers, &body, at(SENT + 6)),
            Err(ReceiveError::OutsideTolerance { tolerance: 5, .. })
        ));
        // A time before 1970 is far from any real timestamp, not a panic.
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(10);
        assert!(matches!(
            receiver.receive(&headers, &body, before),
            Err(ReceiveError::OutsideTolerance { .. })
        ));
    }

    #[test]
    fn an_unsigned_request_fails_when_a_secret_is_configured() {
        let key = secret(5);
        let receiver = Receiver::new().secret(key.clone());
        let body = Event::sample(EventKind::Open).encode();
        let err = receiver
            .receive(&HeaderMap::new(), &body, at(SENT))
            .unwrap_err();
        assert_eq!(
            err,
            ReceiveError::MissingSignature {
                header: "webhook-id"
            }
        );
        assert_eq!(
            err.to_string(),
            "signature: the request is not signed (no `webhook-id` header)"
        );
        let headers = signed(&[&key], "msg_1", SENT, &body);
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let mut missing = headers.clone();
            missing.remove(name);
            assert_eq!(
                receiver.receive(&missing, &body, at(SENT)),
                Err(ReceiveError::MissingSignature { header: name }),
                "{name}"
            );
        }
        let mut garbled = headers.clone();
        garbled.insert("webhook-timestamp", HeaderValue::from_static("soon"));
        assert_eq!(
            receiver.receive(&garbled, &body, at(SENT)),
            Err(ReceiveError::InvalidHeader {
                header: "webhook-timestamp"
            })
        );
        let mut unreadable = headers.clone();
        unreadable.insert("webhook-id", HeaderValue::from_bytes(b"msg_\xff").unwrap());
        assert_eq!(
            receiver.receive(&unreadable, &body, at(SENT)),
            Err(ReceiveError::InvalidHeader {
                header: "webhook-id"
            })
        );
        // A receiver without secrets takes a signed request without checking it.
        let open = Receiver::new()
            .receive(&headers, &body, at(SENT + 9999))
            .unwrap();
        assert!(!open.verified);
    }

    #[test]
    fn rotation_accepts_either_secret_while_both_are_configured() {
        let (old, new) = (secret(6), secret(7));
        let body = Event::sample(EventKind::Forward).encode();
        let by_old = signed(&[&old], "msg_1", SENT, &body);
        let by_both = signed(&[&new, &old], "msg_2", SENT, &body);
        let rotating = Receiver::new().secret(new.clone()).secret(old.clone());
        assert!(rotating.receive(&by_old, &body, at(SENT)).unwrap().verified);
        assert!(
            rotating
                .receive(&by_both, &body, at(SENT))
                .unwrap()
                .verified
        );
        let rotated = Receiver::new().secret(new.clone());
        assert_eq!(
            rotated.receive(&by_old, &body, at(SENT)),
            Err(ReceiveError::SignatureMismatch)
        );
        assert!(rotated.receive(&by_both, &body, at(SENT)).is_ok());
        assert!(
            Receiver::new()
                .secret(old)
                .receive(&by_both, &body, at(SENT))
                .is_ok()
        );
    }

    #[test]
    fn the_receiver_does_not_show_its_secrets() {
        let key = secret(0xc3);
        let shown = key.to_whsec();
        let text = format!("{:?}", Receiver::new().secret(key));
        assert!(!text.contains(&shown[6..]), "{text}");
        assert!(!text.contains("195, 195"), "{text}");
    }

    /// What a posthook dispatcher sends, a receiver takes: end to end through a transport
    /// that keeps the request.
    #[test]
    fn a_dispatched_signed_delivery_is_received() {
        use std::sync::Mutex;

        use bytes::Bytes;
        use posthook::{Dispatcher, Registry, Source, Timer, Transport, TransportError, Webhook};

        #[derive(Default)]
        struct Keep(Mutex<Vec<http::Request<Bytes>>>);
        #[async_trait::async_trait]
        impl Transport for Keep {
            async fn send(
                &self,
                request: http::Request<Bytes>,
            ) -> Result<http::Response<Bytes>, TransportError> {
                self.0.lock().unwrap().push(request);
                Ok(http::Response::new(Bytes::new()))
            }
        }
        /// Deadlines that never pass; a fixed wall clock for the signature.
        struct Fixed;
        #[async_trait::async_trait]
        impl Timer for Fixed {
            async fn sleep(&self, _: Duration) {
                std::future::pending::<()>().await;
            }
            fn now(&self) -> SystemTime {
                at(SENT)
            }
        }

        let key = SigningSecret::generate().unwrap();
        let mut registry = Registry::new();
        registry.insert(
            Webhook::builder("crm", "https://crm.example.com/hook")
                .events([EventKind::Subscribe])
                .sources(Source::ALL)
                .build()
                .unwrap(),
        );
        let event = Event::sample(EventKind::Subscribe);
        let keep = Keep::default();
        let dispatcher = Dispatcher::new(&keep, Fixed).signing_secret(key.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let report = runtime.block_on(dispatcher.dispatch(&registry, &event));
        assert!(report.all_delivered(), "{report:?}");
        let requests = keep.0.lock().unwrap();
        let request = &requests[0];
        let receiver = Receiver::new().secret(key).require_form_content_type(true);
        let received = receiver
            .receive(request.headers(), request.body(), at(SENT + 2))
            .unwrap();
        assert_eq!(received.body, ReceivedBody::Event(event));
        assert!(received.verified);
        assert_eq!(
            received.delivery_id,
            Some(report.deliveries[0].id.to_string())
        );
    }
}

/// Headers a receiver reads, with arbitrary values.
fn any_headers() -> impl Strategy<Value = HeaderMap> {
    let names = prop::sample::select(vec![
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-posthook-delivery",
        "content-type",
    ]);
    let value = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        "-?[0-9]{1,20}".prop_map(String::into_bytes),
        "(v1,[A-Za-z0-9+/=]{0,44} ?){0,3}".prop_map(String::into_bytes),
    ];
    proptest::collection::vec((names, value), 0..6).prop_map(|pairs| {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                headers.append(HeaderName::from_static(name), value);
            }
        }
        headers
    })
}

fn any_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "[a-z_\\[\\]=&%0-9A-F+]{0,120}".prop_map(String::into_bytes),
        proptest::sample::select(EventKind::ALL.to_vec())
            .prop_map(|kind| Event::sample(kind).encode().to_vec()),
    ]
}

proptest! {
    #[test]
    fn arbitrary_requests_never_panic(
        headers in any_headers(),
        body in any_body(),
        now in any::<i64>(),
        strict in any::<bool>(),
    ) {
        let now = if now >= 0 {
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(now.unsigned_abs()))
        } else {
            SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(now.unsigned_abs()))
        }
        .unwrap_or(SystemTime::UNIX_EPOCH);
        let plain = Receiver::new().require_form_content_type(strict);
        let _ = plain.receive(&headers, &body, now);
        let _ = plain.receive_event(&headers, &body, now);
        #[cfg(feature = "signing")]
        {
            let signing = plain.clone().secret(posthook::sign::SigningSecret::from_bytes(&[9; 24]).unwrap());
            let result = signing.receive(&headers, &body, now);
            // Nobody forges a signature by chance.
            prop_assert!(result.is_err());
            let _ = signing.receive_event(&headers, &body, now);
        }
    }

    #[test]
    fn an_unsigned_receiver_takes_exactly_what_decode_takes(body in any_body()) {
        let received = Receiver::new().receive(&HeaderMap::new(), &body, SystemTime::UNIX_EPOCH);
        match Event::decode(&body) {
            Ok(event) => prop_assert_eq!(received.unwrap().body, ReceivedBody::Event(event)),
            Err(DecodeError::MissingKey { key: "type" }) => match AutomationPayload::decode(&body) {
                Ok(step) => prop_assert_eq!(received.unwrap().body, ReceivedBody::Automation(step)),
                Err(_) => prop_assert!(received.is_err() || body == PROBE_BODY),
            },
            Err(error) => prop_assert_eq!(received, Err(ReceiveError::Decode(error))),
        }
    }
}
