//! Cancels in process: `Dispatcher::cancel`, and the cancel a `410 Gone` makes by itself,
//! on tokio's paused clock (a one-hour backoff passes only if nothing ends it).
#![cfg(feature = "tokio")]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use posthook::{
    AttemptOutcome, CancelReason, Deactivation, DeliveryState, DeliveryStore, Dispatcher, Event,
    EventKind, FinalOutcome, MemoryStore, Outbox, Page, Registry, RetryPolicy, Source, TokioTimer,
    Transport, TransportError, Webhook, WebhookId, Worker,
};

/// Scripted statuses per URL (200 once a script runs out); counts requests per URL.
#[derive(Default)]
struct Scripted {
    scripts: Mutex<HashMap<String, VecDeque<u16>>>,
    seen: Mutex<HashMap<String, usize>>,
}

impl Scripted {
    fn script(self, url: &str, statuses: impl IntoIterator<Item = u16>) -> Self {
        self.scripts
            .lock()
            .unwrap()
            .insert(url.to_owned(), statuses.into_iter().collect());
        self
    }

    fn seen(&self, url: &str) -> usize {
        self.seen.lock().unwrap().get(url).copied().unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl Transport for Scripted {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let uri = request.uri().to_string();
        *self.seen.lock().unwrap().entry(uri.clone()).or_default() += 1;
        if uri == SLOW {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        let status = self
            .scripts
            .lock()
            .unwrap()
            .get_mut(&uri)
            .and_then(VecDeque::pop_front)
            .unwrap_or(200);
        let mut response = http::Response::new(Bytes::new());
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        Ok(response)
    }
}

const A: &str = "https://a.example.com/hook";
/// Answers after a minute.
const SLOW: &str = "https://slow.example.com/hook";
const B: &str = "https://b.example.com/hook";

fn registry() -> (Registry, WebhookId, WebhookId) {
    let mut registry = Registry::new();
    let hook = |url: &str| {
        Webhook::builder("hook", url)
            .events([EventKind::Subscribe])
            .sources(Source::ALL)
            .build()
            .unwrap()
    };
    let a = registry.insert(hook(A));
    let b = registry.insert(hook(B));
    (registry, a, b)
}

fn dispatcher(transport: Arc<Scripted>) -> Arc<Dispatcher<Arc<Scripted>, TokioTimer>> {
    let hour = RetryPolicy::default()
        .with_initial_backoff(Duration::from_secs(3600))
        .with_jitter(0);
    Arc::new(Dispatcher::new(transport, TokioTimer::new()).retry_policy(hour))
}

#[tokio::test(start_paused = true)]
async fn a_cancel_ends_a_delivery_waiting_out_its_backoff_at_once() {
    let transport = Arc::new(Scripted::default().script(A, [503]));
    let dispatcher = dispatcher(transport.clone());
    let (registry, a, b) = registry();
    let plan = dispatcher.plan(&registry, &Event::sample(EventKind::Subscribe));
    let started = tokio::time::Instant::now();
    let running = tokio::spawn({
        let dispatcher = dispatcher.clone();
        async move { dispatcher.run_plan(plan).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(transport.seen(A), 1, "one attempt, then a one-hour wait");
    dispatcher.cancel(a, CancelReason::SwitchedOff(Deactivation::Manual));
    let report = running.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the cancel ended the wait: {:?}",
        started.elapsed()
    );
    let of = |id| {
        report
            .deliveries
            .iter()
            .find(|d| d.webhook_id == Some(id))
            .unwrap()
    };
    assert_eq!(
        of(a).outcome,
        FinalOutcome::Cancelled {
            reason: CancelReason::SwitchedOff(Deactivation::Manual)
        }
    );
    assert_eq!(
        of(a).attempts.len(),
        1,
        "the attempt before the cancel is kept"
    );
    assert_eq!(
        of(a).attempts[0].outcome,
        AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE)
    );
    assert!(of(b).outcome.is_delivered(), "another webhook is untouched");
    assert_eq!(transport.seen(A), 1, "nothing attempted after the cancel");

    // A delivery that starts after the cancel is not affected by it.
    let later = dispatcher
        .dispatch(&registry, &Event::sample(EventKind::Subscribe))
        .await;
    assert_eq!(transport.seen(A), 2);
    let again = later.deliveries.iter().find(|d| d.webhook_id == Some(a));
    assert!(again.unwrap().outcome.is_delivered());
}

#[tokio::test(start_paused = true)]
async fn a_410_cancels_the_webhooks_other_deliveries_in_flight() {
    // The first delivery to A gets 503 and waits an hour; a second event's delivery to A
    // gets 410: the webhook is gone, and the first ends cancelled at once.
    let transport = Arc::new(Scripted::default().script(A, [503, 410]));
    let dispatcher = dispatcher(transport.clone());
    let (registry, a, _) = registry();
    let first = dispatcher.plan(&registry, &Event::sample(EventKind::Subscribe));
    let started = tokio::time::Instant::now();
    let running = tokio::spawn({
        let dispatcher = dispatcher.clone();
        async move { dispatcher.run_plan(first).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = dispatcher
        .dispatch(&registry, &Event::sample(EventKind::Subscribe))
        .await;
    assert_eq!(second.gone().collect::<Vec<_>>(), vec![a]);
    let first = running.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    let of_a = first
        .deliveries
        .iter()
        .find(|d| d.webhook_id == Some(a))
        .unwrap();
    assert_eq!(
        of_a.outcome,
        FinalOutcome::Cancelled {
            reason: CancelReason::SwitchedOff(Deactivation::Gone)
        }
    );
    assert_eq!(transport.seen(A), 2, "no retry after the 410");
}

/// A webhook of one delivery at a time, so that a worker claims its deliveries one by one.
fn one_at_a_time(url: &str) -> Webhook {
    Webhook::builder("hook", url)
        .events([EventKind::Subscribe])
        .sources(Source::ALL)
        .max_in_flight(std::num::NonZeroU32::MIN)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_worker_that_gets_a_410_cancels_the_webhooks_pending_deliveries() {
    let transport = Arc::new(Scripted::default().script(A, [410]));
    let store = MemoryStore::new();
    let mut registry = Registry::new();
    let a = registry.insert(one_at_a_time(A));
    let b = registry.insert(one_at_a_time(B));
    let outbox = Outbox::new(store.clone());
    for _ in 0..3 {
        outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await
            .unwrap();
    }
    let worker = Worker::new(
        store.clone(),
        Dispatcher::new(transport.clone(), TokioTimer::new()),
    );
    for _ in 0..10 {
        worker.run_once().await.unwrap();
    }
    assert_eq!(transport.seen(A), 1, "nothing attempted after the 410");
    let counts = store.counts(Some(a)).await.unwrap();
    assert_eq!((counts.gone, counts.cancelled, counts.pending), (1, 2, 0));
    for record in store.recent(a, Page::first(10)).await.unwrap() {
        if record.state == DeliveryState::Cancelled {
            assert_eq!(
                record.delivery.outcome(),
                Some(&FinalOutcome::Cancelled {
                    reason: CancelReason::SwitchedOff(Deactivation::Gone)
                })
            );
            assert!(record.delivery.attempts().is_empty());
        }
    }
    assert_eq!(store.counts(Some(b)).await.unwrap().delivered, 3);
}

#[tokio::test]
async fn delete_removes_the_webhook_cancels_its_deliveries_and_keeps_its_log() {
    let store = MemoryStore::new();
    let mut registry = Registry::new();
    let a = registry.insert(one_at_a_time(A));
    let outbox = Outbox::new(store.clone());
    let published = outbox
        .publish(&registry, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    let (removed, cancelled) = outbox.delete(&mut registry, a).await.unwrap();
    assert_eq!(
        removed.map(|w| w.url().as_str().to_owned()),
        Some(A.to_owned())
    );
    assert_eq!(cancelled, 1);
    assert!(registry.get(a).is_none());
    let record = store.delivery(published.deliveries[0]).await.unwrap();
    assert_eq!(
        record.delivery.outcome(),
        Some(&FinalOutcome::Cancelled {
            reason: CancelReason::Deleted
        })
    );
    assert_eq!(store.recent(a, Page::first(10)).await.unwrap().len(), 1);
    // Nothing matches any more: a publish stores nothing for it.
    let next = outbox
        .publish(&registry, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    assert!(next.deliveries.is_empty());
    // Deleting again: nothing to remove, nothing to cancel.
    assert_eq!(outbox.delete(&mut registry, a).await.unwrap(), (None, 0));
}

#[tokio::test(start_paused = true)]
async fn a_cancel_reaches_a_delivery_still_queued_in_its_plan() {
    // One attempt at a time: the slow webhook holds the slot, A waits in the plan.
    let transport = Arc::new(Scripted::default());
    let dispatcher = Arc::new(
        Dispatcher::new(transport.clone(), TokioTimer::new())
            .max_concurrency(std::num::NonZeroUsize::MIN),
    );
    let mut registry = Registry::new();
    let hook = |url: &str| {
        Webhook::builder("hook", url)
            .events([EventKind::Subscribe])
            .sources(Source::ALL)
            .build()
            .unwrap()
    };
    registry.insert(hook(SLOW));
    let a = registry.insert(hook(A));
    let plan = dispatcher.plan(&registry, &Event::sample(EventKind::Subscribe));
    let running = tokio::spawn({
        let dispatcher = dispatcher.clone();
        async move { dispatcher.run_plan(plan).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!((transport.seen(SLOW), transport.seen(A)), (1, 0));
    dispatcher.cancel(a, CancelReason::Deleted);
    let report = running.await.unwrap();
    let of_a = report
        .deliveries
        .iter()
        .find(|d| d.webhook_id == Some(a))
        .unwrap();
    assert_eq!(
        of_a.outcome,
        FinalOutcome::Cancelled {
            reason: CancelReason::Deleted
        }
    );
    assert!(of_a.attempts.is_empty());
    assert_eq!(transport.seen(A), 0, "never attempted");
}

/// The health rule repeats its switch-off on every failure of a streak until the streak
/// ends; only the first cancels. A webhook switched on again (its streak not forgotten, as
/// in a worker of another process) keeps its new deliveries after one more failure.
#[tokio::test]
async fn a_health_switch_off_cancels_once_per_streak() {
    let transport = Arc::new(Scripted::default().script(A, [400, 400, 400]));
    let store = MemoryStore::new();
    let mut registry = Registry::new();
    let a = registry.insert(one_at_a_time(A));
    let outbox = Outbox::new(store.clone());
    let worker = Worker::new(
        store.clone(),
        Dispatcher::new(transport.clone(), TokioTimer::new())
            .endpoint_health(posthook::EndpointHealth::new(Duration::ZERO, 2)),
    );
    for _ in 0..2 {
        outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await
            .unwrap();
    }
    let first = worker.run_until_idle().await.unwrap();
    assert_eq!(first.health_changes, 1, "switched off after two failures");
    // Switched on again: three more; the first fails (the streak goes on), the rest must
    // still go out.
    for _ in 0..3 {
        outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await
            .unwrap();
    }
    let second = worker.run_until_idle().await.unwrap();
    assert_eq!(second.health_changes, 1, "the rule says it again");
    let counts = store.counts(Some(a)).await.unwrap();
    assert_eq!(
        (counts.failed, counts.delivered, counts.cancelled),
        (3, 2, 0),
        "{counts:?}"
    );
}
