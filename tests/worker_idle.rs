//! `Worker::run_until_idle`: works until nothing is due and nothing is in flight, then
//! returns; what is scheduled for later (or leased elsewhere) it leaves for later.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use posthook::{
    Clock, DeliveryState, DeliveryStore, Dispatcher, Event, EventKind, ManualClock, MemoryStore,
    Outbox, Registry, RetryPolicy, Source, Timer, Transport, TransportError, Webhook, Worker,
};

/// tokio's sleep (the attempts' deadlines; nothing here waits on it).
struct Sleep;

#[async_trait::async_trait]
impl Timer for Sleep {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// `/ok` answers 200; `/flaky` 503 to the first three tries of each delivery, then 200;
/// `/down` always 503. Counts the tries of each delivery id.
#[derive(Default)]
struct Receiver {
    tries: Mutex<HashMap<String, usize>>,
}

impl Receiver {
    fn total(&self) -> usize {
        self.tries.lock().unwrap().values().sum()
    }
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
        let tries = {
            let mut tries = self.tries.lock().unwrap();
            let n = tries.entry(id).or_default();
            *n += 1;
            *n
        };
        let status = match request.uri().path() {
            "/ok" => StatusCode::OK,
            "/flaky" if tries <= 3 => StatusCode::SERVICE_UNAVAILABLE,
            "/flaky" => StatusCode::OK,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut response = http::Response::new(Bytes::new());
        *response.status_mut() = status;
        Ok(response)
    }
}

fn hook(name: &str, path: &str) -> Webhook {
    Webhook::builder(name, &format!("https://receiver.example.com{path}"))
        .events([EventKind::Subscribe])
        .sources(Source::ALL)
        .build()
        .unwrap()
}

type TestWorker = Worker<MemoryStore, Arc<Receiver>, Sleep>;

fn worker(store: &MemoryStore, receiver: &Arc<Receiver>) -> TestWorker {
    let dispatcher =
        Dispatcher::new(receiver.clone(), Sleep).attempt_timeout(Duration::from_secs(30));
    // Small batches: the call must go on claiming, round after round.
    Worker::new(store.clone(), dispatcher).batch(2)
}

/// Bounded in real time: with a manual clock nothing it left would ever become due, so a
/// call that waited for it would never return.
async fn until_idle(worker: &TestWorker) -> posthook::WorkerStats {
    tokio::time::timeout(Duration::from_secs(10), worker.run_until_idle())
        .await
        .expect("run_until_idle returned")
        .expect("no store error")
}

#[tokio::test]
async fn retries_at_zero_delay_are_made_in_the_same_call() {
    let mut registry = Registry::new();
    for (name, path) in [("ok", "/ok"), ("flaky", "/flaky"), ("down", "/down")] {
        registry.insert(hook(name, path));
    }
    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(clock.clone());
    let at_once = RetryPolicy::default()
        .with_initial_backoff(Duration::ZERO)
        .with_max_attempts(5);
    let outbox = Outbox::new(store.clone()).retry_policy(at_once);
    for _ in 0..2 {
        outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await
            .unwrap();
    }
    let receiver = Arc::new(Receiver::default());
    let worker = worker(&store, &receiver);

    let stats = until_idle(&worker).await;
    // Per event: ok 1 attempt, flaky 4 (3 retried), down 5 (4 retried, then gave up).
    assert_eq!(stats.claimed, 2 * (1 + 4 + 5));
    assert_eq!(stats.retrying, 2 * (3 + 4));
    assert_eq!(stats.done, 6);
    assert_eq!((stats.stale, stats.store_errors), (0, 0));
    assert_eq!(receiver.total(), 20);
    let counts = store.counts(None).await.unwrap();
    assert_eq!(
        (counts.delivered, counts.gave_up, counts.pending),
        (4, 2, 0)
    );
    // Nothing is left: the next call claims nothing and sends nothing.
    assert_eq!(until_idle(&worker).await, posthook::WorkerStats::default());
    assert_eq!(receiver.total(), 20);
}

#[tokio::test]
async fn what_is_due_later_is_left_for_later() {
    let mut registry = Registry::new();
    registry.insert(hook("ok", "/ok"));
    let flaky = registry.insert(hook("flaky", "/flaky"));
    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(clock.clone());
    let in_30s = RetryPolicy::default()
        .with_initial_backoff(Duration::from_secs(30))
        .with_multiplier(1);
    let outbox = Outbox::new(store.clone()).retry_policy(in_30s);
    outbox
        .publish(&registry, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    let receiver = Arc::new(Receiver::default());
    let worker = worker(&store, &receiver);

    // The first attempts; the flaky one's retry is 30 s away: not due, so the call returns.
    let stats = until_idle(&worker).await;
    assert_eq!((stats.claimed, stats.done, stats.retrying), (2, 1, 1));
    let waiting = &store.recent(flaky, posthook::Page::first(1)).await.unwrap()[0];
    assert_eq!(waiting.state, DeliveryState::Pending);
    assert_eq!(
        waiting.due_at,
        Some(clock.now() + Duration::from_secs(30)),
        "left in the store, due in 30 s"
    );
    // Still not due: nothing to do.
    clock.advance(Duration::from_secs(29));
    assert_eq!(until_idle(&worker).await.claimed, 0);

    // Due: the next call makes the retries (three, 30 s apart, as the clock moves).
    let mut retries = 0;
    for _ in 0..3 {
        clock.advance(Duration::from_secs(30));
        let stats = until_idle(&worker).await;
        assert_eq!(stats.claimed, 1);
        retries += stats.claimed;
    }
    assert_eq!(retries, 3);
    let counts = store.counts(None).await.unwrap();
    assert_eq!((counts.delivered, counts.pending), (2, 0));
    assert_eq!(receiver.total(), 1 + 4);
}

#[tokio::test]
async fn a_delivery_leased_elsewhere_is_not_waited_for() {
    let mut registry = Registry::new();
    registry.insert(hook("ok", "/ok"));
    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(clock.clone());
    let at_once = RetryPolicy::default().with_initial_backoff(Duration::ZERO);
    let outbox = Outbox::new(store.clone()).retry_policy(at_once);
    outbox
        .publish(&registry, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    // Another worker holds it.
    let held = store.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(held.len(), 1);
    let receiver = Arc::new(Receiver::default());
    let worker = worker(&store, &receiver);
    assert_eq!(until_idle(&worker).await.claimed, 0);
    assert_eq!(store.counts(None).await.unwrap().pending, 1);
    // Its lease runs out: now it is due here. The lapsed attempt is recorded (retried at
    // once, by the policy), then the delivery is made, in the same call.
    clock.advance(Duration::from_secs(61));
    let stats = until_idle(&worker).await;
    assert_eq!((stats.claimed, stats.retrying, stats.done), (2, 1, 1));
    assert_eq!(receiver.total(), 1);
    assert_eq!(store.counts(None).await.unwrap().delivered, 1);
}
