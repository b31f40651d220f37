//! Fairness through the `Worker`, on tokio's paused clock: an endpoint that hangs until
//! every attempt's deadline, with a backlog, holds at most its in-flight limit of the
//! worker's slots, and another endpoint's deliveries go out meanwhile; a rate-limited
//! webhook gets no more than its rate, and none of its deliveries fails.
#![cfg(feature = "tokio")]

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use posthook::{
    Clock, DeliveryReport, DeliveryStore, Dispatcher, Event, EventKind, FinalOutcome, MemoryStore,
    Outbox, Registry, RetryPolicy, Source, TokioTimer, Transport, TransportError, Webhook, Worker,
};

/// The memory store's clock on tokio's (paused) time.
struct TokioClock {
    origin: tokio::time::Instant,
    wall: SystemTime,
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.wall + self.origin.elapsed()
    }
}

fn store() -> MemoryStore {
    MemoryStore::with_clock(TokioClock {
        origin: tokio::time::Instant::now(),
        wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    })
}

/// `/hang` never answers (the attempt deadline ends it); anything else answers 200 at once.
/// Counts attempts in flight at `/hang` (and the most at once), and when each `/ok`
/// attempt came.
#[derive(Default)]
struct Endpoints {
    hanging: AtomicUsize,
    most_hanging: AtomicUsize,
    ok_at: Mutex<Vec<tokio::time::Instant>>,
}

#[async_trait::async_trait]
impl Transport for Endpoints {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        if request.uri().path() == "/hang" {
            let now = self.hanging.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_hanging.fetch_max(now, Ordering::SeqCst);
            struct Leave<'a>(&'a AtomicUsize);
            impl Drop for Leave<'_> {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let _leave = Leave(&self.hanging);
            std::future::pending::<()>().await;
        }
        self.ok_at.lock().unwrap().push(tokio::time::Instant::now());
        Ok(http::Response::new(Bytes::new()))
    }
}

fn hook(name: &str, path: &str) -> posthook::WebhookBuilder {
    Webhook::builder(name, &format!("https://receiver.example.com{path}"))
        .events([EventKind::Subscribe])
        .sources(Source::ALL)
}

#[tokio::test(start_paused = true)]
async fn a_hanging_endpoint_holds_only_its_limit_and_the_others_go_on() {
    let store = store();
    let mut registry = Registry::new();
    let hang = registry.insert(
        hook("hangs", "/hang")
            .max_in_flight(NonZeroU32::new(4).unwrap())
            .build()
            .unwrap(),
    );
    let fast = registry.insert(hook("fast", "/ok").build().unwrap());
    let endpoints = Arc::new(Endpoints::default());
    let outbox = Outbox::new(store.clone()).retry_policy(RetryPolicy::never());
    // The hanging endpoint's backlog first: 500 deliveries, all due before the others.
    let only_hang = {
        let mut r = Registry::new();
        r.insert(registry.get(hang).unwrap().clone());
        r
    };
    for _ in 0..500 {
        outbox
            .publish(&only_hang, &Event::sample(EventKind::Subscribe))
            .await
            .unwrap();
    }
    let started = tokio::time::Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let sink = {
        let done = Arc::clone(&done);
        move |report: &DeliveryReport| {
            if report.webhook_id == Some(fast) {
                assert!(matches!(report.outcome, FinalOutcome::Delivered { .. }));
                done.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    let worker = Worker::new(
        store.clone(),
        Dispatcher::new(Arc::clone(&endpoints), TokioTimer::new())
            .attempt_timeout(Duration::from_secs(10)),
    )
    .concurrency(16)
    .batch(16)
    .wakeup(outbox.wakeup().clone())
    .on_outcome(sink);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        worker
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    // Then 100 events that reach both, one every 10 ms.
    for _ in 0..100 {
        outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while done.load(Ordering::SeqCst) < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Every delivery to the healthy endpoint arrived before the first hanging attempt's
    // deadline (10 s): none waited behind the hanging one's backlog.
    let last = *endpoints.ok_at.lock().unwrap().last().unwrap();
    assert!(
        last.duration_since(started) < Duration::from_secs(10),
        "the healthy endpoint waited {:?}",
        last.duration_since(started)
    );
    assert!(endpoints.most_hanging.load(Ordering::SeqCst) <= 4);
    assert_eq!(endpoints.most_hanging.load(Ordering::SeqCst), 4);
    let _ = stop.send(());
    running.await.unwrap();
    let counts = store.counts(Some(hang)).await.unwrap();
    assert!(counts.pending > 400, "{counts:?}");
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_webhook_waits_and_never_fails() {
    let store = store();
    let mut registry = Registry::new();
    let limited = registry.insert(
        hook("limited", "/ok")
            .rate_limit(NonZeroU32::new(20).unwrap())
            .max_in_flight(NonZeroU32::new(100).unwrap())
            .build()
            .unwrap(),
    );
    let endpoints = Arc::new(Endpoints::default());
    let outbox = Outbox::new(store.clone());
    for _ in 0..200 {
        outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await
            .unwrap();
    }
    let started = tokio::time::Instant::now();
    let worker = Worker::new(
        store.clone(),
        Dispatcher::new(Arc::clone(&endpoints), TokioTimer::new()),
    )
    .concurrency(64)
    .idle_poll(Duration::from_millis(5));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        worker
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    while store.counts(Some(limited)).await.unwrap().delivered < 200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    running.await.unwrap();
    let at = endpoints.ok_at.lock().unwrap().clone();
    assert_eq!(at.len(), 200);
    // A burst of 20, then 20 per second: in any window of one second, at most 20 + 20.
    for (i, t) in at.iter().enumerate() {
        let in_window = at[i..]
            .iter()
            .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
            .count();
        assert!(in_window <= 40, "{in_window} attempts within a second");
    }
    // 200 at 20/s after a burst of 20: about 9 s, never much less.
    let took = at.last().unwrap().duration_since(started);
    assert!(took >= Duration::from_secs(8), "{took:?}");
    let counts = store.counts(Some(limited)).await.unwrap();
    assert_eq!(
        (counts.delivered, counts.failed, counts.gave_up),
        (200, 0, 0)
    );
}
