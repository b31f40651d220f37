//! Feature `tracing`: one span per delivery and an event per attempt.
//!
//! Alone in its test binary: tracing caches each callsite's interest process-wide, and a
//! callsite first hit by a concurrent test (with no subscriber) could hide it from the
//! scoped subscriber of this one.
#![cfg(feature = "tracing")]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use posthook::{
    Dispatcher, Event, EventKind, Registry, Source, Timer, Transport, TransportError, Webhook,
};

const A: &str = "https://a.example.com/hook";
const B: &str = "https://b.example.com/hook";

fn hook(url: &str) -> Webhook {
    Webhook::builder(url, url)
        .events([EventKind::Subscribe])
        .sources(Source::ALL)
        .build()
        .unwrap()
}

fn subscribe() -> Event {
    Event::sample(EventKind::Subscribe)
}

/// `a.example.com` answers 503 once, then 200; every other host 200.
#[derive(Default)]
struct Scripted {
    a_calls: AtomicUsize,
}

#[async_trait::async_trait]
impl Transport for Scripted {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let status = if request.uri().host() == Some("a.example.com")
            && self.a_calls.fetch_add(1, Ordering::SeqCst) == 0
        {
            503
        } else {
            200
        };
        Ok(http::Response::builder()
            .status(status)
            .body(Bytes::new())
            .unwrap())
    }
}

/// Returns at once, whatever the wait.
#[derive(Default)]
struct FakeTimer;

#[async_trait::async_trait]
impl Timer for FakeTimer {
    async fn sleep(&self, _: Duration) {}
}

/// Keeps the fields of spans and events as text.
#[derive(Default)]
struct Inner {
    next: AtomicU64,
    spans: Mutex<Vec<String>>,
    events: Mutex<Vec<String>>,
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

#[derive(Clone, Default)]
struct Counting(Arc<Inner>);

impl tracing::Subscriber for Counting {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = Fields(format!("{} ", span.metadata().name()));
        span.record(&mut fields);
        self.0.spans.lock().unwrap().push(fields.0);
        tracing::span::Id::from_u64(self.0.next.fetch_add(1, Ordering::SeqCst) + 1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.events.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn one_span_per_delivery_and_an_event_per_attempt() {
    let counting = Counting::default();
    let mut registry = Registry::new();
    registry.insert(hook(A));
    registry.insert(hook(B));
    let transport = Scripted::default();
    let d = Dispatcher::new(transport, FakeTimer);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tracing::subscriber::with_default(counting.clone(), || {
        runtime.block_on(d.dispatch(&registry, &subscribe()));
    });
    let spans = counting.0.spans.lock().unwrap().clone();
    let events = counting.0.events.lock().unwrap().clone();
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert!(
        spans.iter().any(|s| s.contains("host=\"a.example.com\"")),
        "{spans:?}"
    );
    assert!(
        spans
            .iter()
            .all(|s| s.contains("delivery_id=") && s.contains("webhook_id="))
    );
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e.contains("status=503") && e.contains("next_wait=Some(30s)")),
        "{events:?}"
    );
}
