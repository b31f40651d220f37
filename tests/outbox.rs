//! `Outbox` and `Worker` over the in-memory store and an in-memory transport: publish,
//! attempts, retries, final outcomes to the sink, lapsed leases, the wake-up bell, store
//! errors and a graceful shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use posthook::{
    Claim, Claimed, Delivery, DeliveryId, DeliveryRecord, DeliveryReport, DeliveryState,
    DeliveryStore, Dispatcher, Event, EventKind, FinalOutcome, Finished, ManualClock, MemoryStore,
    NewEvent, Outbox, OutcomeSink, Page, Pruned, Registry, RetryPolicy, Source, Step, StoreCounts,
    StoreError, Timer, Transport, TransportError, Webhook, WebhookId, Worker,
};
use tokio::sync::{Notify, oneshot};

/// tokio's sleep.
struct Sleep;

#[async_trait::async_trait]
impl Timer for Sleep {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Answers by path: `/ok` 200, `/gone` 410, `/flaky` 503 on the first try of each
/// delivery then 200, `/hold` waits for `release`; records every delivery id it sees.
#[derive(Default)]
struct Receiver {
    seen: Mutex<Vec<(String, String)>>,
    release: Notify,
    held: AtomicUsize,
}

#[async_trait::async_trait]
impl Transport for Receiver {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let id = request.headers()[posthook::DELIVERY_ID_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        let path = request.uri().path().to_owned();
        let tries = {
            let mut seen = self.seen.lock().unwrap();
            seen.push((path.clone(), id.clone()));
            seen.iter().filter(|(_, i)| *i == id).count()
        };
        let status = match path.as_str() {
            "/ok" => StatusCode::OK,
            "/gone" => StatusCode::GONE,
            "/flaky" if tries == 1 => StatusCode::SERVICE_UNAVAILABLE,
            "/flaky" => StatusCode::OK,
            "/hold" => {
                self.held.fetch_add(1, Ordering::SeqCst);
                self.release.notified().await;
                StatusCode::OK
            }
            _ => StatusCode::NOT_FOUND,
        };
        let mut response = http::Response::new(Bytes::new());
        *response.status_mut() = status;
        Ok(response)
    }
}

/// Collects final outcomes and store errors.
#[derive(Default, Clone)]
struct Sink {
    outcomes: Arc<Mutex<Vec<DeliveryReport>>>,
    errors: Arc<AtomicUsize>,
}

impl OutcomeSink for Sink {
    fn outcome(&self, report: &DeliveryReport) {
        self.outcomes.lock().unwrap().push(report.clone());
    }
    fn store_error(&self, _: &StoreError) {
        self.errors.fetch_add(1, Ordering::SeqCst);
    }
}

impl Sink {
    async fn wait_for(&self, n: usize) -> Vec<DeliveryReport> {
        for _ in 0..2000 {
            if self.outcomes.lock().unwrap().len() >= n {
                return self.outcomes.lock().unwrap().clone();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("fewer than {n} outcomes");
    }
}

fn hook(name: &str, path: &str) -> Webhook {
    let url = format!("https://receiver.example.com{path}");
    Webhook::builder(name, &url)
        .events([EventKind::Subscribe])
        .sources(Source::ALL)
        .build()
        .unwrap()
}

fn dispatcher(receiver: &Arc<Receiver>) -> Dispatcher<Arc<Receiver>, Sleep> {
    Dispatcher::new(receiver.clone(), Sleep).attempt_timeout(Duration::from_secs(30))
}

fn quick() -> RetryPolicy {
    RetryPolicy::default()
        .with_initial_backoff(Duration::from_millis(10))
        .with_max_attempts(3)
}

#[tokio::test]
async fn publish_stores_one_body_and_random_ids() {
    let mut registry = Registry::new();
    for n in 0..3 {
        registry.insert(hook(&format!("h{n}"), "/ok"));
    }
    registry.insert(
        Webhook::builder("other kind", "https://receiver.example.com/ok")
            .events([EventKind::Open])
            .sources(Source::ALL)
            .build()
            .unwrap(),
    );
    let outbox = Outbox::new(MemoryStore::new());
    let event = Event::sample(EventKind::Subscribe);
    let published = outbox.publish(&registry, &event).await.unwrap();
    assert_eq!(published.deliveries.len(), 3);
    let mut ids = published.deliveries.clone();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    // Random 128-bit ids: not a counter (the high half is used).
    assert!(ids.iter().any(|id| id.get() >> 64 != 0));
    let counts = outbox.store().counts(None).await.unwrap();
    assert_eq!((counts.pending, counts.bodies), (3, 1));
    let record = outbox.store().delivery(ids[0]).await.unwrap();
    assert_eq!(record.event, published.event);
    assert_eq!(record.kind, EventKind::Subscribe);
    assert_eq!(record.delivery.policy(), &RetryPolicy::default());

    // Nothing matches: nothing stored.
    let none = outbox
        .publish(&registry, &Event::sample(EventKind::Bounce))
        .await
        .unwrap();
    assert!(none.deliveries.is_empty());
    assert_eq!(outbox.store().counts(None).await.unwrap().bodies, 1);

    // The claimed body is the event's encoding, shared.
    let claimed = outbox
        .store()
        .claim(10, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(claimed.iter().all(|c| c.body == event.encode()));
}

#[tokio::test]
async fn worker_delivers_retries_and_reports_final_outcomes() {
    let receiver = Arc::new(Receiver::default());
    let mut registry = Registry::new();
    let ok = registry.insert(hook("ok", "/ok"));
    let gone = registry.insert(hook("gone", "/gone"));
    let flaky = registry.insert(hook("flaky", "/flaky"));
    let store = MemoryStore::new();
    let outbox = Outbox::new(store.clone()).retry_policy(quick());
    let sink = Sink::default();
    let worker = Worker::new(store.clone(), dispatcher(&receiver))
        .wakeup(outbox.wakeup().clone())
        .idle_poll(Duration::from_millis(5))
        .on_outcome(sink.clone());
    let (stop, run) = spawn(worker);
    outbox
        .publish(&registry, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    let outcomes = sink.wait_for(3).await;
    stop.send(()).unwrap();
    let stats = run.await.unwrap();
    assert_eq!((stats.done, stats.retrying, stats.stale), (3, 1, 0));

    let by_hook: HashMap<WebhookId, &DeliveryReport> = outcomes
        .iter()
        .map(|r| (r.webhook_id.unwrap(), r))
        .collect();
    assert!(by_hook[&ok].outcome.is_delivered());
    assert_eq!(by_hook[&gone].outcome, FinalOutcome::Gone);
    assert!(by_hook[&flaky].outcome.is_delivered());
    assert_eq!(by_hook[&flaky].attempts.len(), 2);
    // The same id on both attempts of the flaky one.
    let flaky_id = by_hook[&flaky].id.to_string();
    let seen = receiver.seen.lock().unwrap().clone();
    assert_eq!(seen.iter().filter(|(_, id)| *id == flaky_id).count(), 2);
    // The store agrees.
    let counts = store.counts(None).await.unwrap();
    assert_eq!((counts.delivered, counts.gone, counts.pending), (2, 1, 0));
    let log = store.recent(flaky, Page::first(10)).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].delivery.attempts().len(), 2);
}

#[tokio::test]
async fn a_lapsed_lease_counts_as_an_attempt() {
    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(clock.clone());
    let receiver = Arc::new(Receiver::default());
    let mut registry = Registry::new();
    registry.insert(hook("ok", "/ok"));
    let policy = RetryPolicy::default().with_initial_backoff(Duration::from_secs(30));
    let outbox = Outbox::new(store.clone()).retry_policy(policy);
    let published = outbox
        .publish(&registry, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    // A worker claims it and dies.
    let dead = store.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(dead.len(), 1);
    clock.advance(Duration::from_secs(61));

    let worker = Worker::new(store.clone(), dispatcher(&receiver)).lease(Duration::from_secs(60));
    let stats = worker.run_once().await.unwrap();
    assert_eq!((stats.claimed, stats.retrying), (1, 1));
    assert!(
        receiver.seen.lock().unwrap().is_empty(),
        "the lapse is recorded, not resent at once"
    );
    let record = store.delivery(published.deliveries[0]).await.unwrap();
    let lapse = &record.delivery.attempts()[0];
    assert_eq!(
        lapse.outcome,
        posthook::AttemptOutcome::Lapsed,
        "a lapse is its own kind, not a timeout"
    );
    assert_eq!(lapse.outcome.verdict(), posthook::Verdict::Retry);
    assert_eq!(
        lapse.at,
        Duration::from_secs(61),
        "at = now - created, store clock"
    );

    // The dead worker's late finish is refused.
    let mut late = dead[0].clone();
    let step = late
        .delivery
        .record(posthook::AttemptOutcome::Status(StatusCode::OK), late.age);
    assert_eq!(
        store
            .finish(&late.claim, &late.delivery, &step)
            .await
            .unwrap(),
        Finished::Stale
    );

    clock.advance(Duration::from_secs(30));
    let stats = worker.run_once().await.unwrap();
    assert_eq!(stats.done, 1);
    let record = store.delivery(published.deliveries[0]).await.unwrap();
    assert_eq!(record.state, DeliveryState::Delivered);
    assert_eq!(record.delivery.attempts().len(), 2);
    assert_eq!(record.delivery.attempts()[1].at, Duration::from_secs(91));
}

#[tokio::test]
async fn the_wakeup_beats_the_idle_poll() {
    let receiver = Arc::new(Receiver::default());
    let mut registry = Registry::new();
    registry.insert(hook("ok", "/ok"));
    let store = MemoryStore::new();
    let outbox = Outbox::new(store.clone());
    let sink = Sink::default();
    // An hour between polls: only the bell can get the event out within the test.
    let worker = Worker::new(store.clone(), dispatcher(&receiver))
        .idle_poll(Duration::from_secs(3600))
        .wakeup(outbox.wakeup().clone())
        .on_outcome(sink.clone());
    let (stop, run) = spawn(worker);
    tokio::time::sleep(Duration::from_millis(20)).await; // let it go idle
    outbox
        .publish(&registry, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    assert!(sink.wait_for(1).await[0].outcome.is_delivered());
    stop.send(()).unwrap();
    run.await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_attempts_in_flight_finish() {
    let receiver = Arc::new(Receiver::default());
    let mut registry = Registry::new();
    for n in 0..3 {
        registry.insert(hook(&format!("hold {n}"), "/hold"));
    }
    let store = MemoryStore::new();
    let outbox = Outbox::new(store.clone());
    let worker = Worker::new(store.clone(), dispatcher(&receiver))
        .idle_poll(Duration::from_millis(5))
        .wakeup(outbox.wakeup().clone());
    outbox
        .publish(&registry, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    let (stop, run) = spawn(worker);
    while receiver.held.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!run.is_finished(), "it waits for the attempts in flight");
    // One more event while it stops: not claimed.
    outbox
        .publish(&registry, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    receiver.release.notify_waiters();
    let stats = run.await.unwrap();
    assert_eq!((stats.claimed, stats.done), (3, 3));
    let counts = store.counts(None).await.unwrap();
    assert_eq!((counts.delivered, counts.pending), (3, 3));
}

/// A store whose first `failures` claims fail as if the database were away.
struct Flaky {
    inner: MemoryStore,
    failures: AtomicUsize,
}

#[async_trait::async_trait]
impl DeliveryStore for Flaky {
    async fn enqueue(&self, event: &NewEvent) -> Result<usize, StoreError> {
        self.inner.enqueue(event).await
    }
    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::unavailable("connection refused"));
        }
        self.inner.claim(max, lease).await
    }
    async fn finish(&self, c: &Claim, d: &Delivery, s: &Step) -> Result<Finished, StoreError> {
        self.inner.finish(c, d, s).await
    }
    async fn delivery(&self, id: DeliveryId) -> Result<DeliveryRecord, StoreError> {
        self.inner.delivery(id).await
    }
    async fn recent(&self, w: WebhookId, p: Page) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.inner.recent(w, p).await
    }
    async fn counts(&self, w: Option<WebhookId>) -> Result<StoreCounts, StoreError> {
        self.inner.counts(w).await
    }
    async fn prune(&self, older_than: Duration) -> Result<Pruned, StoreError> {
        self.inner.prune(older_than).await
    }
}

#[tokio::test]
async fn store_errors_do_not_stop_the_worker() {
    let receiver = Arc::new(Receiver::default());
    let mut registry = Registry::new();
    registry.insert(hook("ok", "/ok"));
    let store = Arc::new(Flaky {
        inner: MemoryStore::new(),
        failures: AtomicUsize::new(3),
    });
    let outbox = Outbox::new(store.clone());
    outbox
        .publish(&registry, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    let sink = Sink::default();
    let worker = Worker::new(store.clone(), dispatcher(&receiver))
        .idle_poll(Duration::from_millis(5))
        .on_outcome(sink.clone());
    let (stop, run) = spawn(worker);
    assert!(sink.wait_for(1).await[0].outcome.is_delivered());
    stop.send(()).unwrap();
    let stats = run.await.unwrap();
    assert_eq!(stats.store_errors, 3);
    assert_eq!(sink.errors.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn run_once_on_an_empty_store_does_nothing() {
    let receiver = Arc::new(Receiver::default());
    let worker = Worker::new(MemoryStore::new(), dispatcher(&receiver));
    let stats = worker.run_once().await.unwrap();
    assert_eq!(stats, posthook::WorkerStats::default());
}

/// The dispatcher's endpoint-health rule, fed by the worker: two deliveries that end failed
/// switch the webhook off, once, through the sink.
#[tokio::test]
async fn the_worker_applies_endpoint_health() {
    #[derive(Default, Clone)]
    struct HealthSink {
        changes: Arc<Mutex<Vec<posthook::HealthChange>>>,
        outcomes: Arc<AtomicUsize>,
    }
    impl OutcomeSink for HealthSink {
        fn outcome(&self, _: &DeliveryReport) {
            self.outcomes.fetch_add(1, Ordering::SeqCst);
        }
        fn health(&self, change: &posthook::HealthChange) {
            self.changes.lock().unwrap().push(*change);
        }
    }

    let receiver = Arc::new(Receiver::default());
    let mut registry = Registry::new();
    let missing = registry.insert(hook("missing", "/nowhere")); // 404: failed
    registry.insert(hook("ok", "/ok"));
    let store = MemoryStore::new();
    let outbox = Outbox::new(store.clone()).retry_policy(RetryPolicy::never());
    let sink = HealthSink::default();
    let health = posthook::EndpointHealth::new(Duration::ZERO, 2);
    let worker = Worker::new(store.clone(), dispatcher(&receiver).endpoint_health(health))
        .on_outcome(sink.clone());
    // Each round, the application applies what the sink got, as a real one would.
    let mut done = Vec::new();
    for _ in 1..=3 {
        outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await
            .unwrap();
        let stats = worker.run_once().await.unwrap();
        done.push((stats.done, stats.health_changes));
        for change in sink.changes.lock().unwrap().drain(..) {
            assert_eq!(change.webhook_id(), missing);
            assert!(matches!(
                change.deactivation(),
                posthook::Deactivation::Failing { failures: 2, .. }
            ));
            assert!(registry.deactivate(change.webhook_id(), change.deactivation()));
        }
    }
    // Round 1: one failure, nothing yet; round 2: the second failure switches it off;
    // round 3: only the healthy webhook is published to.
    assert_eq!(done, [(2, 0), (2, 1), (1, 0)]);
    assert_eq!(sink.outcomes.load(Ordering::SeqCst), 5);
    assert!(!registry.get(missing).unwrap().is_active());
}

#[test]
fn a_webhook_s_own_retry_policy_is_stored_with_its_deliveries() {
    let own = RetryPolicy::svix();
    let mut registry = Registry::new();
    let with_own = registry.insert(
        Webhook::builder("own", "https://own.example.com/hook")
            .events([EventKind::Subscribe])
            .sources(Source::ALL)
            .retry_policy(own.clone())
            .build()
            .unwrap(),
    );
    let plain = registry.insert(
        Webhook::builder("plain", "https://plain.example.com/hook")
            .events([EventKind::Subscribe])
            .sources(Source::ALL)
            .build()
            .unwrap(),
    );
    let outbox_policy = RetryPolicy::default().with_max_attempts(2);
    let outbox = Outbox::new(MemoryStore::new()).retry_policy(outbox_policy.clone());
    let new = outbox
        .prepare(&registry, &Event::sample(EventKind::Subscribe))
        .unwrap();
    let policy_of = |id: WebhookId| {
        new.deliveries()
            .iter()
            .find(|d| d.delivery.webhook_id() == Some(id))
            .map(|d| d.delivery.policy().clone())
            .unwrap()
    };
    assert_eq!(policy_of(with_own), own);
    assert_eq!(policy_of(plain), outbox_policy);
}

/// Keeps the attempt deadline itself; records each attempt's path and deadline.
#[derive(Default)]
struct Deadlines {
    seen: Mutex<Vec<(String, Duration)>>,
}

#[async_trait::async_trait]
impl Transport for Deadlines {
    async fn send(&self, _: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
        unreachable!("a transport that keeps deadlines gets send_attempt")
    }

    async fn send_attempt(
        &self,
        _: &posthook::WebhookUrl,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let path = request.uri().path().to_owned();
        self.seen.lock().unwrap().push((path, timeout));
        Ok(http::Response::new(Bytes::new()))
    }

    fn enforces_timeout(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn a_worker_with_a_webhook_lookup_gives_each_delivery_its_webhook_s_timeout() {
    let mut registry = Registry::new();
    for (name, own) in [("own", Some(Duration::from_secs(3))), ("plain", None)] {
        let mut builder = Webhook::builder(name, &format!("https://example.com/{name}"))
            .events([EventKind::Subscribe])
            .sources(Source::ALL);
        if let Some(timeout) = own {
            builder = builder.attempt_timeout(timeout);
        }
        registry.insert(builder.build().unwrap());
    }
    let registry = Arc::new(registry);
    let event = Event::sample(EventKind::Subscribe);
    for lookup in [true, false] {
        let store = MemoryStore::new();
        Outbox::new(store.clone())
            .publish(&registry, &event)
            .await
            .unwrap();
        let dispatcher =
            Dispatcher::new(Deadlines::default(), Sleep).attempt_timeout(Duration::from_secs(30));
        let mut worker = Worker::new(store.clone(), dispatcher);
        if lookup {
            let registry = Arc::clone(&registry);
            worker = worker.webhooks(move |id| registry.get(id).cloned());
        }
        let stats = worker.run_once().await.unwrap();
        assert_eq!(stats.done, 2);
        let mut seen = worker.dispatcher().transport().seen.lock().unwrap().clone();
        seen.sort();
        let own = if lookup { 3 } else { 30 };
        assert_eq!(
            seen,
            vec![
                ("/own".to_owned(), Duration::from_secs(own)),
                ("/plain".to_owned(), Duration::from_secs(30)),
            ],
            "lookup: {lookup}"
        );
    }
}

/// Keeps each request's headers and body.
#[cfg(feature = "signing")]
#[derive(Default)]
struct Keeps {
    seen: Mutex<Vec<(http::HeaderMap, Bytes)>>,
}

#[cfg(feature = "signing")]
#[async_trait::async_trait]
impl Transport for Keeps {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let (parts, body) = request.into_parts();
        self.seen.lock().unwrap().push((parts.headers, body));
        Ok(http::Response::new(Bytes::new()))
    }
}

#[cfg(feature = "signing")]
#[tokio::test]
async fn a_worker_with_a_webhook_lookup_signs_with_the_webhook_s_own_secret() {
    use posthook::sign::{SigningSecret, verify};
    let own = SigningSecret::from_bytes(b"the webhook's own secret, 32 b.").unwrap();
    let theirs = SigningSecret::from_bytes(b"the dispatcher's secret, 32 byte").unwrap();
    let mut registry = Registry::new();
    registry.insert(
        Webhook::builder("own", "https://example.com/own")
            .events([EventKind::Subscribe])
            .sources(Source::ALL)
            .signing_secret(own.clone())
            .build()
            .unwrap(),
    );
    let registry = Arc::new(registry);
    let store = MemoryStore::new();
    Outbox::new(store.clone())
        .publish(&registry, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    let dispatcher = Dispatcher::new(Keeps::default(), Sleep).signing_secret(theirs.clone());
    let lookup = Arc::clone(&registry);
    let worker = Worker::new(store, dispatcher).webhooks(move |id| lookup.get(id).cloned());
    assert_eq!(worker.run_once().await.unwrap().done, 1);
    let seen = worker.dispatcher().transport().seen.lock().unwrap().clone();
    let (headers, body) = &seen[0];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(verify(&[&own], headers, body, now, 300).is_ok());
    assert!(verify(&[&theirs], headers, body, now, 300).is_err());
}

/// Runs `worker` on a task until the returned sender is used; the task ends with its stats.
fn spawn<St: DeliveryStore + 'static>(
    worker: Worker<St, Arc<Receiver>, Sleep>,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<posthook::WorkerStats>,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(async move {
        worker
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    (stop, run)
}
