//! A switch-off racing workers, over real HTTP on 127.0.0.1: from the moment
//! `Outbox::switch_off` returns, the webhook gets no attempt but those already in flight
//! (at most its in-flight limit), every attempt that reached the receiver is in the log, and
//! every delivery of it ends cancelled; another webhook goes on. Run on every store.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use posthook::{
    AddressPolicy, Deactivation, DeliveryState, DeliveryStore, Dispatcher, Event, EventKind,
    Outbox, Page, Registry, RetryPolicy, Source, Webhook, WebhookId, Worker,
};

use super::wire::{Sleep, TcpTransport};

/// Arrivals per delivery id, with their times.
type Arrivals = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

/// Keeps the store errors the workers meet, for the failure messages.
struct Errors(Arc<Mutex<Vec<String>>>);

impl posthook::OutcomeSink for Errors {
    fn outcome(&self, _: &posthook::DeliveryReport) {}

    fn store_error(&self, error: &posthook::StoreError) {
        self.0.lock().unwrap().push(error.to_string());
    }
}

/// A receiver that answers `503` after 2 ms: every delivery retries until cancelled.
async fn start_receiver() -> (String, Arrivals) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let arrivals: Arrivals = Arc::default();
    let app = axum::Router::new()
        .fallback(
            |State(arrivals): State<Arrivals>, headers: HeaderMap| async move {
                let id = headers
                    .get(posthook::DELIVERY_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                arrivals
                    .lock()
                    .unwrap()
                    .entry(id)
                    .or_default()
                    .push(Instant::now());
                tokio::time::sleep(Duration::from_millis(2)).await;
                StatusCode::SERVICE_UNAVAILABLE
            },
        )
        .with_state(arrivals.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), arrivals)
}

pub(crate) async fn switch_off_racing_workers<S: DeliveryStore + Clone + 'static>(store: S) {
    let (url, arrivals) = start_receiver().await;
    let mut registry = Registry::new();
    let hook = |name: &str, id: u64| {
        Webhook::builder(name, &format!("{url}?{name}"))
            .events([EventKind::Subscribe])
            .sources(Source::ALL)
            .id(WebhookId::new(id))
            .build()
            .unwrap()
    };
    let off = registry.insert(hook("off", 1));
    let on = registry.insert(hook("on", 2));
    let policy = RetryPolicy::default()
        .with_max_attempts(1_000)
        .with_initial_backoff(Duration::from_millis(5))
        .with_multiplier(1)
        .with_jitter(0);
    let outbox = Outbox::new(store.clone()).retry_policy(policy);
    let mut ids: HashMap<WebhookId, Vec<String>> = HashMap::new();
    for _ in 0..40 {
        let published = outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await
            .unwrap();
        for (webhook, id) in [off, on].into_iter().zip(published.deliveries) {
            ids.entry(webhook).or_default().push(id.to_string());
        }
    }

    let store_errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut stops = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let dispatcher = Dispatcher::new(TcpTransport, Sleep)
            .address_policy(AddressPolicy::allow_all())
            .attempt_timeout(Duration::from_secs(5));
        let worker = Worker::new(store.clone(), dispatcher)
            .wakeup(outbox.wakeup().clone())
            .idle_poll(Duration::from_millis(5))
            .lease(Duration::from_secs(30))
            .on_outcome(Errors(store_errors.clone()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        workers.push(tokio::spawn(async move {
            worker
                .run(async {
                    let _ = stopped.await;
                })
                .await
        }));
    }

    let count = |webhook: WebhookId| {
        let arrivals = arrivals.lock().unwrap();
        ids[&webhook]
            .iter()
            .map(|id| arrivals.get(id).map_or(0, Vec::len))
            .sum::<usize>()
    };
    // Let the retries run a while, then switch the webhook off in the middle of them.
    let start = Instant::now();
    while count(off) < 200 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the workers made {} attempts in 60 s",
            count(off)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cancelled = outbox
        .switch_off(&mut registry, off, Deactivation::Manual)
        .await
        .unwrap();
    let committed = Instant::now();
    let on_before = count(on);
    assert!(!registry.get(off).unwrap().is_active());
    assert_eq!(
        cancelled, 40,
        "every delivery of it was pending (503s retry)"
    );

    // The other webhook goes on: the workers are live after the switch-off.
    let start = Instant::now();
    while count(on) < on_before + 100 {
        assert!(start.elapsed() < Duration::from_secs(60), "stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for stop in stops {
        let _ = stop.send(());
    }
    for worker in workers {
        worker.await.unwrap();
    }

    // After the commit, only attempts already in flight reached the receiver: at most the
    // webhook's in-flight limit.
    let late: usize = {
        let arrivals = arrivals.lock().unwrap();
        ids[&off]
            .iter()
            .flat_map(|id| arrivals.get(id).into_iter().flatten())
            .filter(|at| **at > committed)
            .count()
    };
    let limit = registry.get(off).unwrap().pacing().max_in_flight.get() as usize;
    assert!(
        late <= limit,
        "{late} attempts reached the receiver after the switch-off committed (limit {limit})"
    );

    // Every delivery of it ended cancelled, and every attempt that reached the receiver is
    // in the log (the ones in flight at the switch-off too).
    let counts = store.counts(Some(off)).await.unwrap();
    assert_eq!((counts.pending, counts.cancelled), (0, 40), "{counts:?}");
    let records = store.recent(off, Page::first(100)).await.unwrap();
    assert_eq!(records.len(), 40);
    let arrived = arrivals.lock().unwrap().clone();
    for record in &records {
        assert_eq!(record.state, DeliveryState::Cancelled);
        assert!(
            !record.leased,
            "{}: still leased; the workers' store errors: {:?}",
            record.delivery.id(),
            store_errors.lock().unwrap()
        );
        let id = record.delivery.id().to_string();
        let got = arrived.get(&id).map_or(0, Vec::len);
        assert_eq!(
            record.delivery.attempts().len(),
            got,
            "{id}: the log and the receiver disagree"
        );
    }
    // The other webhook's deliveries are still pending (they retry).
    assert_eq!(store.counts(Some(on)).await.unwrap().pending, 40);
}
