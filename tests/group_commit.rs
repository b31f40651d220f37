//! Group commit: concurrent `Outbox::publish` calls share commits, each caller returns once
//! its own event is stored, a cancelled leader loses nothing queued, an error reaches
//! every caller of its commit; `Outbox::publish_all` is one commit.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use posthook::{
    Claim, Claimed, Delivery, DeliveryId, DeliveryRecord, DeliveryState, DeliveryStore, Event,
    EventKind, Finished, MemoryStore, NewEvent, Outbox, Page, Pruned, Registry, Source, Step,
    StoreCounts, StoreError, Webhook, WebhookId,
};

/// A memory store whose `enqueue_all` takes a while (a yield and a short sleep, like a
/// commit), can be made to hang or fail, and records each batch's size.
#[derive(Clone, Default)]
struct Slow {
    inner: MemoryStore,
    batches: Arc<Mutex<Vec<usize>>>,
    hang_next: Arc<AtomicBool>,
    fail_next: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl DeliveryStore for Slow {
    async fn enqueue(&self, event: &NewEvent) -> Result<usize, StoreError> {
        self.enqueue_all(std::slice::from_ref(event)).await
    }
    async fn enqueue_all(&self, events: &[NewEvent]) -> Result<usize, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.hang_next.swap(false, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        if self.fail_next.swap(false, Ordering::SeqCst) {
            return Err(StoreError::unavailable("the database went away"));
        }
        self.batches.lock().unwrap().push(events.len());
        self.inner.enqueue_all(events).await
    }
    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
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

fn registry(hooks: usize) -> Arc<Registry> {
    let mut registry = Registry::new();
    for n in 0..hooks {
        registry.insert(
            Webhook::builder(format!("hook {n}"), "https://example.com/hook")
                .events([EventKind::Subscribe])
                .sources(Source::ALL)
                .build()
                .unwrap(),
        );
    }
    Arc::new(registry)
}

type Publishing = tokio::task::JoinHandle<Result<posthook::Published, StoreError>>;

/// A publish from another task.
fn publishing(outbox: &Outbox<Slow>, registry: &Arc<Registry>) -> Publishing {
    let (outbox, registry) = (outbox.clone(), Arc::clone(registry));
    tokio::spawn(async move {
        outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await
    })
}

/// A leader whose commit hangs, and `n` publishes queued behind it (nothing stored yet).
async fn hung_leader(
    n: usize,
) -> (
    Slow,
    Outbox<Slow>,
    Arc<Registry>,
    Publishing,
    Vec<Publishing>,
) {
    let store = Slow::default();
    store.hang_next.store(true, Ordering::SeqCst);
    let outbox = Outbox::new(store.clone());
    let registry = registry(1);
    let leader = publishing(&outbox, &registry);
    while store.calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let followers = (0..n).map(|_| publishing(&outbox, &registry)).collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    (store, outbox, registry, leader, followers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_share_commits_and_each_returns_once_stored() {
    let store = Slow::default();
    let outbox = Outbox::new(store.clone());
    let registry = registry(3);
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (outbox, registry, store) = (outbox.clone(), Arc::clone(&registry), store.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..5 {
                let event = Event::sample(EventKind::Subscribe);
                let published = outbox.publish(&registry, &event).await.unwrap();
                assert_eq!(published.deliveries.len(), 3);
                // Durable when the call returns: every delivery is in the store already.
                for id in &published.deliveries {
                    let record = store.inner.delivery(*id).await.unwrap();
                    assert_eq!(record.state, DeliveryState::Pending);
                    assert_eq!(record.event, published.event);
                }
                ids.extend(published.deliveries);
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let counts = store.inner.counts(None).await.unwrap();
    assert_eq!((counts.pending, counts.bodies), (960, 320));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 960);
    let batches = store.batches.lock().unwrap().clone();
    assert_eq!(
        batches.iter().sum::<usize>(),
        320,
        "every event committed once"
    );
    assert_eq!(outbox.group_commits(), batches.len() as u64);
    assert!(
        batches.len() < 320 && batches.iter().any(|&n| n > 1),
        "64 concurrent publishers never shared a commit: {batches:?}"
    );
}

#[tokio::test]
async fn a_lone_publish_commits_at_once() {
    let store = Slow::default();
    let outbox = Outbox::new(store.clone());
    let registry = registry(2);
    for _ in 0..3 {
        outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await
            .unwrap();
    }
    assert_eq!(*store.batches.lock().unwrap(), [1, 1, 1]);
    // Nothing matched: nothing is stored, no commit.
    outbox
        .publish(&registry, &Event::sample(EventKind::Open))
        .await
        .unwrap();
    assert_eq!(outbox.group_commits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_loses_no_queued_event() {
    let (store, outbox, registry, leader, followers) = hung_leader(2).await;
    assert_eq!(store.inner.counts(None).await.unwrap().pending, 0);
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    for follower in followers {
        let published = tokio::time::timeout(Duration::from_secs(10), follower)
            .await
            .expect("a follower waited forever after its leader was cancelled")
            .unwrap()
            .unwrap();
        for id in published.deliveries {
            assert_eq!(
                store.inner.delivery(id).await.unwrap().state,
                DeliveryState::Pending
            );
        }
    }
    // The cancelled leader's batch went back to the queue and was stored by the next one.
    let counts = store.inner.counts(None).await.unwrap();
    assert_eq!((counts.pending, counts.bodies), (3, 3));
    // And the outbox goes on.
    outbox
        .publish(&registry, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    assert_eq!(store.inner.counts(None).await.unwrap().pending, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_waiters_do_not_stall_the_queue() {
    let store = Slow::default();
    let outbox = Outbox::new(store.clone());
    let registry = registry(1);
    // Many callers, half of them cancelled at random points; the rest all return.
    let mut keep = Vec::new();
    for n in 0..40 {
        let (outbox, registry) = (outbox.clone(), Arc::clone(&registry));
        let task = tokio::spawn(async move {
            outbox
                .publish(&registry, &Event::sample(EventKind::Subscribe))
                .await
        });
        if n % 2 == 0 {
            tokio::time::sleep(Duration::from_micros(300)).await;
            task.abort();
        } else {
            keep.push(task);
        }
    }
    for task in keep {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a publish waited forever")
            .unwrap()
            .unwrap();
    }
    // One more publish stores whatever cancelled callers left queued.
    outbox
        .publish(&registry, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    let pending = store.inner.counts(None).await.unwrap().pending;
    assert!((21..=41).contains(&pending), "{pending}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_reaches_every_caller_of_its_commit() {
    let (store, outbox, registry, leader, followers) = hung_leader(3).await;
    // The next commit (the followers', with the cancelled leader's event) fails.
    store.fail_next.store(true, Ordering::SeqCst);
    leader.abort();
    for follower in followers {
        let err = follower.await.unwrap().unwrap_err();
        assert!(err.is_transient(), "{err}");
    }
    assert_eq!(store.inner.counts(None).await.unwrap().pending, 0);
    outbox
        .publish(&registry, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    assert_eq!(store.inner.counts(None).await.unwrap().pending, 1);
}

#[tokio::test]
async fn publish_all_is_one_commit() {
    let store = Slow::default();
    let outbox = Outbox::new(store.clone());
    let registry = registry(4);
    let events: Vec<Event> = (0..100)
        .map(|n| {
            Event::sample(if n % 10 == 0 {
                EventKind::Open // matches nothing
            } else {
                EventKind::Subscribe
            })
        })
        .collect();
    let published = outbox.publish_all(&registry, &events).await.unwrap();
    assert_eq!(published.len(), 100);
    for (n, p) in published.iter().enumerate() {
        assert_eq!(p.deliveries.len(), if n % 10 == 0 { 0 } else { 4 }, "{n}");
    }
    assert_eq!(*store.batches.lock().unwrap(), [90]);
    let counts = store.inner.counts(None).await.unwrap();
    assert_eq!((counts.pending, counts.bodies), (360, 90));
    // Nothing at all matched: no commit.
    let none = outbox
        .publish_all(&registry, &[Event::sample(EventKind::Open)])
        .await
        .unwrap();
    assert!(none[0].deliveries.is_empty());
    assert_eq!(store.batches.lock().unwrap().len(), 1);
}
