//! The dispatcher over an in-memory transport and an instant timer: no network, no sleeping.

mod support;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use posthook::{
    AttemptOutcome, AutomationPayload, DELIVERY_ID_HEADER, DeliveryReport, Dispatcher, Event,
    EventKind, FinalOutcome, ListId, ListScope, PROBE_BODY, Registry, RetryPolicy, SendFuture,
    Source, Timer, Transport, TransportError, TransportErrorKind, Webhook, WebhookId, WebhookUrl,
};

/// What the transport does for one request.
#[derive(Clone)]
enum Reply {
    Status(u16),
    Error(TransportError),
    /// Never answers.
    Hang,
}

/// A request as the transport saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: http::Method,
    uri: String,
    headers: http::HeaderMap,
    body: Bytes,
}

/// Scripted replies per URL (200 once a script runs out); records every request.
#[derive(Default)]
struct RecordingTransport {
    scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    seen: Mutex<Vec<Seen>>,
}

impl RecordingTransport {
    fn script(self, url: &str, replies: impl IntoIterator<Item = Reply>) -> Self {
        self.scripts
            .lock()
            .unwrap()
            .insert(url.to_owned(), replies.into_iter().collect());
        self
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn seen_by(&self, url: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.uri == url).collect()
    }
}

#[async_trait::async_trait]
impl Transport for RecordingTransport {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let uri = request.uri().to_string();
        self.seen.lock().unwrap().push(Seen {
            method: request.method().clone(),
            uri: uri.clone(),
            headers: request.headers().clone(),
            body: request.body().clone(),
        });
        let reply = self
            .scripts
            .lock()
            .unwrap()
            .get_mut(&uri)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Reply::Status(200));
        match reply {
            Reply::Status(code) => {
                let mut response = http::Response::new(Bytes::new());
                *response.status_mut() = StatusCode::from_u16(code).unwrap();
                Ok(response)
            }
            Reply::Error(error) => Err(error),
            Reply::Hang => std::future::pending().await,
        }
    }
}

/// Returns at once; records every wait it was asked for.
#[derive(Default)]
struct InstantTimer {
    sleeps: Mutex<Vec<Duration>>,
}

impl InstantTimer {
    fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Timer for InstantTimer {
    async fn sleep(&self, duration: Duration) {
        self.sleeps.lock().unwrap().push(duration);
    }
}

const A: &str = "https://a.example.com/hook";
const B: &str = "https://b.example.com/hook?token=x";
const C: &str = "http://c.example.com:8080/";
const D: &str = "https://d.example.com/other-list";

fn hook(name: &str, url: &str, scope: ListScope) -> Webhook {
    Webhook::builder(name, url)
        .events([EventKind::Subscribe, EventKind::Unsubscribe])
        .sources(Source::ALL)
        .scope(scope)
        .build()
        .unwrap()
}

fn list(n: u64) -> ListScope {
    ListScope::List(ListId::new(n).unwrap())
}

/// A registry where a sample `subscribe` (list 3, from a contact) reaches A, B and C, not D
/// (another list) nor E (another kind).
fn registry() -> (Registry, [WebhookId; 5]) {
    let mut r = Registry::new();
    let a = r.insert(hook("A", A, ListScope::All));
    let b = r.insert(hook("B", B, list(3)));
    let c = r.insert(hook("C", C, ListScope::All));
    let d = r.insert(hook("D", D, list(4)));
    let e = r.insert(
        Webhook::builder("E", "https://e.example.com/")
            .events([EventKind::Open])
            .sources(Source::ALL)
            .build()
            .unwrap(),
    );
    (r, [a, b, c, d, e])
}

fn subscribe() -> Event {
    Event::sample(EventKind::Subscribe)
}

fn dispatcher(transport: RecordingTransport) -> Dispatcher<RecordingTransport, InstantTimer> {
    Dispatcher::new(transport, InstantTimer::default())
}

fn one(report: &[DeliveryReport], url: &str) -> DeliveryReport {
    let found: Vec<_> = report.iter().filter(|d| d.url == *url).collect();
    assert_eq!(found.len(), 1, "one delivery to {url}: {report:?}");
    found[0].clone()
}

fn statuses(d: &DeliveryReport) -> Vec<Option<u16>> {
    d.attempts
        .iter()
        .map(|a| a.outcome.status().map(|s| s.as_u16()))
        .collect()
}

#[tokio::test]
async fn fan_out_reaches_exactly_the_matching_webhooks_with_one_body_and_the_headers() {
    let (registry, [a, b, c, _, _]) = registry();
    let event = subscribe();
    let dispatcher = dispatcher(RecordingTransport::default());
    let report = dispatcher.dispatch(&registry, &event).await;

    assert_eq!(report.kind, EventKind::Subscribe);
    let mut ids: Vec<_> = report
        .deliveries
        .iter()
        .map(|d| d.webhook_id.unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, [a, b, c]);
    assert!(report.all_delivered());

    let seen = dispatcher.transport().seen();
    let mut urls: Vec<_> = seen.iter().map(|s| s.uri.as_str()).collect();
    urls.sort();
    let mut expected = [A, B, C];
    expected.sort();
    assert_eq!(urls, expected);
    let body = event.encode();
    for s in &seen {
        assert_eq!(s.method, http::Method::POST);
        assert_eq!(s.body, body);
        assert_eq!(
            s.headers["content-type"],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(
            s.headers["user-agent"],
            concat!("posthook/", env!("CARGO_PKG_VERSION"))
        );
        let id = s.headers[DELIVERY_ID_HEADER].to_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(report.deliveries.iter().any(|d| d.id.to_string() == id));
    }
    // One buffer, shared: every request body points at the same bytes.
    assert!(
        seen.windows(2)
            .all(|w| w[0].body.as_ptr() == w[1].body.as_ptr())
    );
    assert!(dispatcher.timer().sleeps().is_empty());
}

#[tokio::test]
async fn no_matching_webhook_means_an_empty_report_and_no_request() {
    let (registry, _) = registry();
    let dispatcher = dispatcher(RecordingTransport::default());
    let report = dispatcher
        .dispatch(&registry, &Event::sample(EventKind::DealAdd))
        .await;
    assert!(report.deliveries.is_empty());
    assert!(dispatcher.transport().seen().is_empty());
}

#[tokio::test]
async fn ok_is_delivered_in_one_attempt() {
    let w = hook("A", A, ListScope::All);
    let dispatcher = dispatcher(RecordingTransport::default().script(A, [Reply::Status(202)]));
    let d = dispatcher
        .deliver(None, w.url(), Bytes::from_static(b"x=1"))
        .await;
    assert_eq!(
        d.outcome,
        FinalOutcome::Delivered {
            status: StatusCode::ACCEPTED
        }
    );
    assert_eq!(d.attempts.len(), 1);
    assert_eq!(d.attempts[0].number, 1);
}

#[tokio::test]
async fn unavailable_then_ok_is_delivered_on_attempt_two_after_the_policy_delay() {
    let (registry, _) = registry();
    let transport =
        RecordingTransport::default().script(A, [Reply::Status(503), Reply::Status(200)]);
    let dispatcher = dispatcher(transport);
    let report = dispatcher.dispatch(&registry, &subscribe()).await;
    let d = one(&report.deliveries, A);
    assert_eq!(
        d.outcome,
        FinalOutcome::Delivered {
            status: StatusCode::OK
        }
    );
    assert_eq!(statuses(&d), [Some(503), Some(200)]);
    assert_eq!(d.attempts[1].number, 2);
    assert_eq!(d.attempts[1].at, Duration::from_secs(30));
    assert_eq!(dispatcher.timer().sleeps(), [Duration::from_secs(30)]);
}

#[tokio::test]
async fn too_many_requests_is_retried_with_growing_delays() {
    let policy = RetryPolicy::default()
        .with_initial_backoff(Duration::from_secs(1))
        .with_multiplier(2);
    let transport = RecordingTransport::default().script(
        A,
        [
            Reply::Status(429),
            Reply::Status(429),
            Reply::Status(429),
            Reply::Status(204),
        ],
    );
    let dispatcher = dispatcher(transport).retry_policy(policy);
    let d = dispatcher
        .deliver(None, &WebhookUrl::parse(A).unwrap(), Bytes::new())
        .await;
    assert!(d.outcome.is_delivered());
    assert_eq!(statuses(&d), [Some(429), Some(429), Some(429), Some(204)]);
    assert_eq!(
        dispatcher.timer().sleeps(),
        [1, 2, 4].map(Duration::from_secs)
    );
}

#[tokio::test]
async fn bad_request_is_not_retried() {
    let transport =
        RecordingTransport::default().script(A, [Reply::Status(400), Reply::Status(200)]);
    let dispatcher = dispatcher(transport);
    let d = dispatcher
        .deliver(None, &WebhookUrl::parse(A).unwrap(), Bytes::new())
        .await;
    let FinalOutcome::Failed { reason } = &d.outcome else {
        panic!("400 fails: {:?}", d.outcome);
    };
    assert!(reason.contains("400"), "{reason}");
    assert_eq!(d.attempts.len(), 1);
    assert_eq!(dispatcher.transport().seen().len(), 1);
    assert!(dispatcher.timer().sleeps().is_empty());
}

#[tokio::test]
async fn gone_is_reported_and_after_applying_it_the_registry_no_longer_matches() {
    let (mut registry, [a, b, c, _, _]) = registry();
    let transport =
        RecordingTransport::default().script(B, [Reply::Status(410), Reply::Status(200)]);
    let dispatcher = dispatcher(transport);
    let report = dispatcher.dispatch(&registry, &subscribe()).await;
    let d = one(&report.deliveries, B);
    assert_eq!(d.outcome, FinalOutcome::Gone);
    assert_eq!(d.attempts.len(), 1);
    assert_eq!(report.gone().collect::<Vec<_>>(), [b]);
    assert!(!report.all_delivered());

    assert_eq!(report.deactivate_gone(&mut registry), 1);
    assert!(!registry.get(b).unwrap().is_active());
    assert_eq!(
        registry.get(b).unwrap().deactivation(),
        Some(posthook::Deactivation::Gone)
    );
    let mut left: Vec<_> = registry
        .matches(&subscribe())
        .map(|h| h.id().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, [a, c]);

    // The next event does not reach B.
    let again = dispatcher.dispatch(&registry, &subscribe()).await;
    assert_eq!(again.deliveries.len(), 2);
    assert_eq!(dispatcher.transport().seen_by(B).len(), 1);
}

#[tokio::test]
async fn a_hanging_transport_times_out_then_retries_then_gives_up() {
    let transport =
        RecordingTransport::default().script(A, [Reply::Hang, Reply::Hang, Reply::Hang]);
    let dispatcher = dispatcher(transport)
        .retry_policy(RetryPolicy::default().with_max_attempts(3))
        .attempt_timeout(Duration::from_secs(7));
    let d = dispatcher
        .deliver(None, &WebhookUrl::parse(A).unwrap(), Bytes::new())
        .await;
    let FinalOutcome::GaveUp { last } = &d.outcome else {
        panic!("gives up: {:?}", d.outcome);
    };
    assert_eq!(
        last.error().map(TransportError::kind),
        Some(TransportErrorKind::Timeout)
    );
    assert_eq!(d.attempts.len(), 3);
    assert!(d.attempts.iter().all(|a| {
        a.outcome
            .error()
            .is_some_and(|e| e.kind() == TransportErrorKind::Timeout)
    }));
    // Deadline, backoff, deadline, backoff, deadline.
    let s = Duration::from_secs;
    assert_eq!(
        dispatcher.timer().sleeps(),
        [s(7), s(30), s(7), s(120), s(7)]
    );
    // Offsets: each attempt starts after the waits before it.
    let ats: Vec<_> = d.attempts.iter().map(|a| a.at).collect();
    assert_eq!(ats, [s(0), s(37), s(164)]);
}

#[tokio::test]
async fn connection_and_tls_errors_are_retried() {
    let transport = RecordingTransport::default()
        .script(
            A,
            [
                Reply::Error(TransportError::connect("connection refused")),
                Reply::Status(200),
            ],
        )
        .script(
            C,
            [
                Reply::Error(TransportError::tls("certificate expired")),
                Reply::Status(200),
            ],
        );
    let dispatcher = dispatcher(transport);
    for url in [A, C] {
        let report = dispatcher
            .deliver(None, &WebhookUrl::parse(url).unwrap(), Bytes::new())
            .await;
        assert!(report.outcome.is_delivered(), "{url}: {:?}", report.outcome);
        assert_eq!(statuses(&report), [None, Some(200)]);
    }
}

#[tokio::test]
async fn never_makes_exactly_one_attempt() {
    let transport =
        RecordingTransport::default().script(A, [Reply::Status(503), Reply::Status(200)]);
    let dispatcher = dispatcher(transport).retry_policy(RetryPolicy::never());
    let d = dispatcher
        .deliver(None, &WebhookUrl::parse(A).unwrap(), Bytes::new())
        .await;
    // One attempt allowed: a 503 reads "failed", not "gave up".
    let FinalOutcome::Failed { reason } = &d.outcome else {
        panic!("failed: {:?}", d.outcome);
    };
    assert!(reason.contains("503"), "{reason}");
    assert_eq!(
        d.attempts[0].outcome,
        AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE)
    );
    assert_eq!(d.attempts.len(), 1);
    assert_eq!(dispatcher.transport().seen().len(), 1);
    assert!(dispatcher.timer().sleeps().is_empty());
}

#[tokio::test]
async fn the_delivery_id_is_the_same_across_retries_and_differs_between_deliveries() {
    let (registry, _) = registry();
    let transport = RecordingTransport::default()
        .script(
            A,
            [Reply::Status(500), Reply::Status(502), Reply::Status(200)],
        )
        .script(B, [Reply::Status(503), Reply::Status(200)]);
    let dispatcher = dispatcher(transport);
    let report = dispatcher.dispatch(&registry, &subscribe()).await;
    let header = |s: &Seen| s.headers[DELIVERY_ID_HEADER].to_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for url in [A, B, C] {
        let seen = dispatcher.transport().seen_by(url);
        let id = header(&seen[0]);
        assert!(seen.iter().all(|s| header(s) == id), "{url}");
        assert_eq!(one(&report.deliveries, url).id.to_string(), id);
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    // And the next event gets new ids.
    let next = dispatcher.dispatch(&registry, &subscribe()).await;
    assert!(
        next.deliveries
            .iter()
            .all(|d| !ids.contains(&d.id.to_string()))
    );
}

#[tokio::test]
async fn every_matched_webhook_has_exactly_one_outcome() {
    let mut registry = Registry::new();
    let urls: Vec<String> = (0..8)
        .map(|i| format!("https://h{i}.example.com/"))
        .collect();
    let mut transport = RecordingTransport::default();
    let scripts = [
        vec![Reply::Status(200)],
        vec![Reply::Status(410)],
        vec![Reply::Status(400)],
        vec![Reply::Status(302)],
        vec![Reply::Hang, Reply::Hang],
        vec![
            Reply::Error(TransportError::io("reset")),
            Reply::Status(201),
        ],
        vec![Reply::Status(500), Reply::Status(500)],
        vec![Reply::Status(204)],
    ];
    for (url, script) in urls.iter().zip(scripts) {
        registry.insert(hook(url, url, ListScope::All));
        transport = transport.script(url, script);
    }
    let dispatcher = dispatcher(transport)
        .retry_policy(RetryPolicy::default().with_max_attempts(2))
        .max_concurrency(NonZeroUsize::new(3).unwrap());
    let report = dispatcher.dispatch(&registry, &subscribe()).await;
    assert_eq!(report.deliveries.len(), 8);
    let mut ids: Vec<_> = report.deliveries.iter().map(|d| d.webhook_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    let outcome = |i: usize| one(&report.deliveries, &urls[i]).outcome;
    assert!(outcome(0).is_delivered());
    assert!(outcome(1).is_gone());
    assert!(matches!(outcome(2), FinalOutcome::Failed { .. }));
    assert!(matches!(outcome(3), FinalOutcome::Failed { .. }));
    assert!(matches!(outcome(4), FinalOutcome::GaveUp { .. }));
    assert!(outcome(5).is_delivered());
    assert!(matches!(outcome(6), FinalOutcome::GaveUp { .. }));
    assert!(outcome(7).is_delivered());
}

#[tokio::test]
async fn automation_posts_contact_and_seriesid_without_common_keys_with_a_5s_deadline() {
    let url = WebhookUrl::parse(A).unwrap();
    let payload = AutomationPayload::sample();
    let transport = RecordingTransport::default().script(A, [Reply::Hang, Reply::Status(200)]);
    let dispatcher = dispatcher(transport);
    let d = dispatcher.send_automation(&url, &payload).await;
    assert!(d.outcome.is_delivered());
    assert_eq!(d.webhook_id, None);
    let seen = dispatcher.transport().seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, payload.encode());
    let form = posthook::Form::parse(&seen[0].body).unwrap();
    assert_eq!(form.get("seriesid"), Some("12"));
    assert_eq!(
        form.get("contact[email]"),
        Some("giulia.bianchi@example.it")
    );
    for key in support::COMMON_KEYS {
        assert_eq!(form.get(key), None, "{key}");
    }
    let s = Duration::from_secs;
    assert_eq!(dispatcher.timer().sleeps(), [s(5), s(30)]);
}

#[tokio::test]
async fn sample_data_posts_the_sample_body_once() {
    let (registry, [_, b, _, _, _]) = registry();
    let webhook = registry.get(b).unwrap();
    let transport = RecordingTransport::default().script(B, [Reply::Status(500)]);
    let dispatcher = dispatcher(transport);
    let d = dispatcher
        .send_sample(webhook, EventKind::DealTaskComplete)
        .await;
    assert_eq!(d.webhook_id, Some(b));
    assert_eq!(d.attempts.len(), 1);
    assert!(matches!(d.outcome, FinalOutcome::Failed { .. }));
    let seen = dispatcher.transport().seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri, B);
    assert_eq!(
        seen[0].body,
        Event::sample(EventKind::DealTaskComplete).encode()
    );
}

#[tokio::test]
async fn a_redirect_fails_and_is_not_followed() {
    let transport =
        RecordingTransport::default().script(A, [Reply::Status(302), Reply::Status(200)]);
    let dispatcher = dispatcher(transport);
    let d = dispatcher
        .deliver(None, &WebhookUrl::parse(A).unwrap(), Bytes::new())
        .await;
    let FinalOutcome::Failed { reason } = &d.outcome else {
        panic!("a redirect fails: {:?}", d.outcome);
    };
    assert!(
        reason.contains("302") && reason.contains("redirect"),
        "{reason}"
    );
    assert_eq!(dispatcher.transport().seen().len(), 1);
}

#[tokio::test]
async fn probe_posts_the_probe_body_once_and_reports_the_status() {
    let transport = RecordingTransport::default().script(C, [Reply::Status(503)]);
    let dispatcher = dispatcher(transport);
    let d = dispatcher.probe(&WebhookUrl::parse(C).unwrap()).await;
    let FinalOutcome::Failed { reason } = &d.outcome else {
        panic!("one attempt, failed: {:?}", d.outcome);
    };
    assert!(reason.contains("503"), "{reason}");
    let seen = dispatcher.transport().seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(&seen[0].body[..], PROBE_BODY);
    let ok = dispatcher.probe(&WebhookUrl::parse(A).unwrap()).await;
    assert!(ok.outcome.is_delivered());
}

#[tokio::test]
async fn a_url_http_cannot_hold_fails_without_an_attempt() {
    // Valid for the webhook validator, too long for `http::Uri` (65 534 bytes at most).
    let long = format!("https://a.example.com/{}", "a".repeat(70_000));
    let url = WebhookUrl::parse(&long).unwrap();
    let dispatcher = dispatcher(RecordingTransport::default());
    let d = dispatcher.deliver(None, &url, Bytes::new()).await;
    assert!(
        matches!(d.outcome, FinalOutcome::Failed { .. }),
        "{:?}",
        d.outcome
    );
    assert!(d.attempts.is_empty());
    assert!(dispatcher.transport().seen().is_empty());
}

#[tokio::test]
async fn user_agent_is_configurable() {
    let dispatcher = dispatcher(RecordingTransport::default())
        .user_agent(http::HeaderValue::from_static("acme-crm/2.1"));
    dispatcher.probe(&WebhookUrl::parse(A).unwrap()).await;
    assert_eq!(
        dispatcher.transport().seen()[0].headers["user-agent"],
        "acme-crm/2.1"
    );
}

/// Counts requests in flight; each answers 200 after being pending once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[async_trait::async_trait]
impl Transport for Gauge {
    async fn send(&self, _: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        YieldOnce(false).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        Ok(http::Response::new(Bytes::new()))
    }
}

/// A timer whose deadlines never pass.
struct Never;

#[async_trait::async_trait]
impl Timer for Never {
    async fn sleep(&self, _: Duration) {
        std::future::pending::<()>().await;
    }
}

#[tokio::test]
async fn deliveries_of_one_event_run_concurrently_up_to_the_cap() {
    let mut registry = Registry::new();
    for i in 0..6 {
        let url = format!("https://h{i}.example.com/");
        registry.insert(hook(&url, &url, ListScope::All));
    }
    let all = Dispatcher::new(Gauge::default(), Never);
    assert!(all.dispatch(&registry, &subscribe()).await.all_delivered());
    assert_eq!(all.transport().max.load(Ordering::SeqCst), 6);

    let capped =
        Dispatcher::new(Gauge::default(), Never).max_concurrency(NonZeroUsize::new(2).unwrap());
    assert!(
        capped
            .dispatch(&registry, &subscribe())
            .await
            .all_delivered()
    );
    assert_eq!(capped.transport().max.load(Ordering::SeqCst), 2);
}

#[test]
fn dispatch_futures_are_send() {
    fn send<F: Future + Send>(_: F) {}
    let (registry, _) = registry();
    let event = subscribe();
    let dispatcher = dispatcher(RecordingTransport::default());
    send(dispatcher.dispatch(&registry, &event));
    let url = WebhookUrl::parse(A).unwrap();
    send(dispatcher.probe(&url));
    send(dispatcher.send_automation(&url, &AutomationPayload::sample()));
    send(dispatcher.run_plan(dispatcher.plan(&registry, &event)));
    let webhook = registry.iter().next().unwrap();
    let mut delivery = posthook::Delivery::new(
        posthook::DeliveryId::new(1),
        webhook.id(),
        RetryPolicy::default(),
    );
    send(dispatcher.attempt_webhook(&mut delivery, webhook, Bytes::new(), Duration::ZERO));
}

#[tokio::test]
async fn transports_work_through_references_boxes_and_arcs() {
    let transport = std::sync::Arc::new(RecordingTransport::default());
    let timer = InstantTimer::default();
    let by_arc = Dispatcher::new(transport.clone(), &timer);
    by_arc.probe(&WebhookUrl::parse(A).unwrap()).await;
    let boxed: Box<dyn Transport> = Box::new(&*transport);
    let by_box = Dispatcher::new(boxed, Box::new(&timer) as Box<dyn Timer + '_>);
    by_box.probe(&WebhookUrl::parse(B).unwrap()).await;
    assert_eq!(transport.seen().len(), 2);
}

#[tokio::test]
async fn a_queue_worker_makes_one_attempt_at_a_time_and_stores_the_delivery_between() {
    use posthook::{Delivery, DeliveryId, Step};
    let url = WebhookUrl::parse(A).unwrap();
    let body = Bytes::from_static(b"type=subscribe");
    let transport =
        RecordingTransport::default().script(A, [Reply::Status(503), Reply::Status(200)]);
    let dispatcher = dispatcher(transport);
    let mut delivery = Delivery::new(
        DeliveryId::new(42),
        Some(WebhookId::new(1)),
        RetryPolicy::default(),
    );

    let step = dispatcher
        .attempt(&mut delivery, &url, body.clone(), Duration::ZERO)
        .await;
    assert_eq!(
        step,
        Step::Retry {
            after: Duration::from_secs(30)
        }
    );
    // The worker stores the delivery and comes back later.
    let stored = serde_json::to_string(&delivery).unwrap();
    let mut delivery: Delivery = serde_json::from_str(&stored).unwrap();
    let step = dispatcher
        .attempt(&mut delivery, &url, body.clone(), Duration::from_secs(31))
        .await;
    assert_eq!(
        step,
        Step::Done(FinalOutcome::Delivered {
            status: StatusCode::OK
        })
    );
    // Nothing more once it is over; the worker did all the waiting.
    let again = dispatcher
        .attempt(&mut delivery, &url, body, Duration::from_secs(99))
        .await;
    assert_eq!(again, step);
    let seen = dispatcher.transport().seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|s| s.headers[DELIVERY_ID_HEADER] == "0000000000000000000000000000002a")
    );
    assert_eq!(delivery.attempts()[1].at, Duration::from_secs(31));
    assert!(dispatcher.timer().sleeps().is_empty());
}

#[tokio::test]
async fn a_report_round_trips_through_json() {
    let (registry, _) = registry();
    let transport = RecordingTransport::default()
        .script(A, [Reply::Status(410)])
        .script(
            B,
            [
                Reply::Error(TransportError::connect("refused")),
                Reply::Status(302),
            ],
        );
    let report = dispatcher(transport)
        .dispatch(&registry, &subscribe())
        .await;
    let json = serde_json::to_string(&report).unwrap();
    let back: posthook::DispatchReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
}

#[tokio::test]
async fn addresses_of_this_host_and_private_networks_are_refused_in_one_blocked_attempt() {
    let d = dispatcher(RecordingTransport::default());
    for url in [
        "http://127.0.0.1:6379/",
        "http://2130706433/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/admin",
        "http://localhost:8080/hook",
        "http://api.localhost/hook",
    ] {
        let url = WebhookUrl::parse(url).unwrap();
        let report = d.probe(&url).await;
        // The shape of a name the transport refuses: one attempt, `Blocked`, not retried.
        assert_eq!(report.attempts.len(), 1, "{url}");
        let error = report.attempts[0].outcome.error().expect("an error");
        assert_eq!(error.kind(), TransportErrorKind::Blocked, "{url}");
        assert!(
            error.message().contains("blocked by the address policy"),
            "{url}: {error}"
        );
        match &report.outcome {
            FinalOutcome::Failed { reason } => {
                assert_eq!(reason, &format!("{error}: not retried"), "{url}")
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    assert!(d.transport().seen().is_empty(), "nothing was sent");

    // Turned off, e.g. for a test server on this machine.
    let open = dispatcher(RecordingTransport::default())
        .address_policy(posthook::AddressPolicy::allow_all());
    let report = open
        .probe(&WebhookUrl::parse("http://127.0.0.1:6379/").unwrap())
        .await;
    assert!(report.outcome.is_delivered(), "{:?}", report.outcome);
    assert_eq!(open.transport().seen().len(), 1);
}

#[cfg(feature = "signing")]
mod signing {
    use std::time::{Duration, SystemTime};

    use posthook::sign::{SigningSecret, verify};
    use posthook::{DELIVERY_ID_HEADER, EventKind, RetryPolicy, Timer};

    use super::*;

    /// An instant timer whose clock says `NOW`.
    struct FixedClock;

    const NOW: u64 = 1_700_000_000;

    #[async_trait::async_trait]
    impl Timer for FixedClock {
        async fn sleep(&self, _: Duration) {}

        fn now(&self) -> SystemTime {
            SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
        }
    }

    #[tokio::test]
    async fn every_attempt_is_signed_with_the_delivery_id() {
        let secret = SigningSecret::from_bytes(&[42; 32]).unwrap();
        let old = SigningSecret::from_bytes(&[7; 32]).unwrap();
        let transport = RecordingTransport::default().script(A, [Reply::Status(503)]);
        let d = Dispatcher::new(transport, FixedClock)
            .retry_policy(RetryPolicy::default().with_max_attempts(3))
            .signing_secret(secret.clone())
            .signing_secret(old.clone());
        let (registry, _) = registry();
        let report = d
            .dispatch(&registry, &Event::sample(EventKind::Subscribe))
            .await;
        assert!(report.all_delivered());
        let seen = d.transport().seen_by(A);
        assert_eq!(seen.len(), 2, "one retry");
        for request in &seen {
            let h = &request.headers;
            assert_eq!(h["webhook-id"], h[DELIVERY_ID_HEADER]);
            assert_eq!(h["webhook-timestamp"], NOW.to_string().as_str());
            assert_eq!(
                h["webhook-signature"].to_str().unwrap().split(' ').count(),
                2
            );
            let now = NOW as i64;
            assert_eq!(verify(&[&secret], h, &request.body, now, 300), Ok(()));
            assert_eq!(verify(&[&old], h, &request.body, now, 300), Ok(()));
        }
        assert_eq!(seen[0].headers["webhook-id"], seen[1].headers["webhook-id"]);
    }
}

/// Refuses every connection, at once; notes the other task's progress at each call.
struct RefuseAndWatch {
    ticks: std::sync::Arc<AtomicUsize>,
    seen_ticks: Mutex<Vec<usize>>,
}

#[async_trait::async_trait]
impl Transport for RefuseAndWatch {
    async fn send(&self, _: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
        self.seen_ticks
            .lock()
            .unwrap()
            .push(self.ticks.load(Ordering::SeqCst));
        Err(TransportError::connect("refused"))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn zero_backoff_retries_still_let_other_tasks_run() {
    let ticks = std::sync::Arc::new(AtomicUsize::new(0));
    let other = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            for _ in 0..10_000 {
                ticks.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        })
    };
    let transport = RefuseAndWatch {
        ticks: ticks.clone(),
        seen_ticks: Mutex::new(Vec::new()),
    };
    let policy = RetryPolicy::default()
        .with_max_attempts(50)
        .with_initial_backoff(Duration::ZERO);
    let d = Dispatcher::new(transport, InstantTimer::default()).retry_policy(policy);
    let report = d
        .deliver(None, &WebhookUrl::parse(A).unwrap(), Bytes::new())
        .await;
    assert_eq!(report.attempts.len(), 50);
    let seen = d.transport().seen_ticks.lock().unwrap().clone();
    assert!(
        seen.last() > seen.first(),
        "the other task ran between attempts: {seen:?}"
    );
    other.abort();
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn tokio_timer_waits_for_real_backoff() {
    let transport = RecordingTransport::default().script(A, [Reply::Status(503)]);
    let d = Dispatcher::new(transport, posthook::TokioTimer::new())
        .retry_policy(RetryPolicy::default().with_max_attempts(2));
    let started = tokio::time::Instant::now();
    let report = d
        .deliver(None, &WebhookUrl::parse(A).unwrap(), Bytes::new())
        .await;
    assert!(report.outcome.is_delivered());
    // The paused clock advanced by exactly the policy's first wait.
    assert_eq!(
        started.elapsed(),
        RetryPolicy::default().delay_before(2).unwrap()
    );
}

/// A transport that keeps the attempt deadline itself: answers 200 after yielding once, or
/// a timeout error when told to time out; records the deadlines and URLs it was handed.
#[derive(Default)]
struct KeepsDeadline {
    time_out: bool,
    handed: Mutex<Vec<(String, String, Duration)>>,
    plain_sends: AtomicUsize,
}

#[async_trait::async_trait]
impl Transport for KeepsDeadline {
    async fn send(&self, _: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
        self.plain_sends.fetch_add(1, Ordering::SeqCst);
        Ok(http::Response::new(Bytes::new()))
    }

    async fn send_attempt(
        &self,
        url: &WebhookUrl,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<Bytes>, TransportError> {
        assert!(
            url.is_uri_of(request.uri()),
            "the request is for the URL handed over"
        );
        let seen = (url.as_str().to_owned(), request.uri().to_string(), timeout);
        self.handed.lock().unwrap().push(seen);
        YieldOnce(false).await;
        if self.time_out {
            return Err(TransportError::timeout(format!(
                "no answer within {timeout:?}"
            )));
        }
        Ok(http::Response::new(Bytes::new()))
    }

    fn enforces_timeout(&self) -> bool {
        true
    }
}

/// A timer whose deadlines have always passed already.
struct AlwaysLate;

#[async_trait::async_trait]
impl Timer for AlwaysLate {
    async fn sleep(&self, _: Duration) {}
}

#[tokio::test]
async fn a_transport_that_keeps_the_deadline_gets_it_and_no_timer_is_raced() {
    let mut registry = Registry::new();
    registry.insert(hook("a", A, ListScope::All));
    registry.insert(hook("c", C, ListScope::All));
    // With a timer whose deadline passes at once, only a dispatcher that races no timer
    // can deliver to a transport that answers on its second poll.
    let dispatcher = Dispatcher::new(KeepsDeadline::default(), AlwaysLate)
        .attempt_timeout(Duration::from_millis(1500));
    let report = dispatcher.dispatch(&registry, &subscribe()).await;
    assert!(report.all_delivered(), "{report:?}");
    let mut handed = dispatcher.transport().handed.lock().unwrap().clone();
    handed.sort();
    assert_eq!(
        handed,
        vec![
            (C.to_owned(), C.to_owned(), Duration::from_millis(1500)),
            (A.to_owned(), A.to_owned(), Duration::from_millis(1500)),
        ]
    );
    assert_eq!(dispatcher.transport().plain_sends.load(Ordering::SeqCst), 0);

    // A webhook's own timeout is the one handed over.
    let own = Webhook::builder("own", A)
        .events([EventKind::Subscribe])
        .sources(Source::ALL)
        .attempt_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut registry = Registry::new();
    registry.insert(own);
    let dispatcher = Dispatcher::new(KeepsDeadline::default(), AlwaysLate);
    assert!(
        dispatcher
            .dispatch(&registry, &subscribe())
            .await
            .all_delivered()
    );
    let handed = dispatcher.transport().handed.lock().unwrap().clone();
    assert_eq!(handed[0].2, Duration::from_secs(2));

    // The same transport without the promise is raced, and the late timer wins.
    struct Plain(KeepsDeadline);
    #[async_trait::async_trait]
    impl Transport for Plain {
        async fn send(
            &self,
            request: http::Request<Bytes>,
        ) -> Result<http::Response<Bytes>, TransportError> {
            let url = WebhookUrl::parse(&request.uri().to_string()).unwrap();
            self.0.send_attempt(&url, request, Duration::ZERO).await
        }
    }
    let raced = Dispatcher::new(Plain(KeepsDeadline::default()), AlwaysLate)
        .retry_policy(RetryPolicy::never());
    let report = raced.probe(&WebhookUrl::parse(A).unwrap()).await;
    match &report.attempts[0].outcome {
        AttemptOutcome::Error(error) => assert_eq!(error.kind(), TransportErrorKind::Timeout),
        other => panic!("expected the dispatcher's timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_timeout_from_a_deadline_keeping_transport_is_retried_like_the_dispatchers_own() {
    let transport = KeepsDeadline {
        time_out: true,
        ..KeepsDeadline::default()
    };
    let policy = RetryPolicy::default().with_max_attempts(3).with_jitter(0);
    let timer = InstantTimer::default();
    let dispatcher = Dispatcher::new(transport, &timer).retry_policy(policy);
    let report = dispatcher
        .deliver(
            None,
            &WebhookUrl::parse(B).unwrap(),
            Bytes::from_static(b"x=1"),
        )
        .await;
    assert!(
        matches!(report.outcome, FinalOutcome::GaveUp { .. }),
        "{:?}",
        report.outcome
    );
    assert_eq!(report.attempts.len(), 3);
    for attempt in &report.attempts {
        match &attempt.outcome {
            AttemptOutcome::Error(error) => {
                assert_eq!(error.kind(), TransportErrorKind::Timeout);
                assert!(error.to_string().contains("within 10s"), "{error}");
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
    // Only the backoff waits went through the timer, no deadline.
    assert_eq!(timer.sleeps().len(), 2);
}

/// Records the header room of every request it gets; says it adds `adds` headers.
struct Room {
    adds: usize,
    seen: Mutex<Vec<(usize, usize)>>,
}

#[async_trait::async_trait]
impl Transport for Room {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let headers = request.headers();
        self.seen
            .lock()
            .unwrap()
            .push((headers.len(), headers.capacity()));
        Ok(http::Response::new(Bytes::new()))
    }

    fn added_headers(&self) -> usize {
        self.adds
    }
}

#[tokio::test]
async fn the_header_map_has_room_for_what_the_transport_adds() {
    let url = WebhookUrl::parse(A).unwrap();
    for adds in [0, 3, 7] {
        let dispatcher = Dispatcher::new(
            Room {
                adds,
                seen: Mutex::default(),
            },
            InstantTimer::default(),
        );
        dispatcher.probe(&url).await;
        let seen = dispatcher.transport().seen.lock().unwrap().clone();
        let (len, capacity) = seen[0];
        assert_eq!(len, 3, "content-type, user-agent, the delivery id");
        assert!(capacity >= len + adds, "room {capacity} for {len} + {adds}");
    }
}

/// Panics while making its future, before any poll (a hand-written `send`, no `async`),
/// for one host; answers 200 for the others.
struct PanicsEarly;

impl Transport for PanicsEarly {
    fn send<'life0, 'async_trait>(
        &'life0 self,
        request: http::Request<Bytes>,
    ) -> SendFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        if request.uri().host() == Some("b.example.com") {
            panic!("made no future for b");
        }
        Box::pin(async { Ok(http::Response::new(Bytes::new())) })
    }
}

#[tokio::test]
async fn a_transport_that_panics_before_its_future_fails_one_delivery_only() {
    let mut registry = Registry::new();
    for url in [A, B, C] {
        registry.insert(hook(url, url, ListScope::All));
    }
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let report = Dispatcher::new(PanicsEarly, InstantTimer::default())
        .dispatch(&registry, &subscribe())
        .await;
    std::panic::set_hook(default);
    assert_eq!(report.deliveries.len(), 3);
    for delivery in &report.deliveries {
        if delivery.url.as_str() == B {
            match &delivery.outcome {
                FinalOutcome::Failed { reason } => {
                    assert!(reason.contains("made no future for b"), "{reason}")
                }
                other => panic!("expected Failed, got {other:?}"),
            }
            assert_eq!(delivery.attempts.len(), 1);
        } else {
            assert!(delivery.outcome.is_delivered(), "{:?}", delivery.outcome);
        }
    }
}

/// Fails each URL's first attempt with a 503, then answers 200; counts attempts in flight.
#[derive(Default)]
struct FirstFails {
    gauge: Gauge,
    seen: Mutex<std::collections::HashSet<String>>,
}

#[async_trait::async_trait]
impl Transport for FirstFails {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let first = self.seen.lock().unwrap().insert(request.uri().to_string());
        self.gauge.send(request).await?;
        let mut response = http::Response::new(Bytes::new());
        if first {
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        Ok(response)
    }
}

#[tokio::test]
async fn under_a_limit_of_one_immediate_retries_and_new_starts_share_the_slot() {
    let mut registry = Registry::new();
    for i in 0..40 {
        let url = format!("https://h{i}.example.com/");
        registry.insert(hook(&url, &url, ListScope::All));
    }
    let policy = RetryPolicy::default()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::ZERO)
        .with_jitter(0);
    let dispatcher = Dispatcher::new(FirstFails::default(), Never)
        .retry_policy(policy)
        .max_concurrency(NonZeroUsize::new(1).unwrap());
    let report = dispatcher.dispatch(&registry, &subscribe()).await;
    assert_eq!(report.deliveries.len(), 40);
    assert!(report.all_delivered(), "{report:?}");
    assert!(report.deliveries.iter().all(|d| d.attempts.len() == 2));
    assert_eq!(dispatcher.transport().gauge.max.load(Ordering::SeqCst), 1);
}
