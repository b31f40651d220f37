//! Two processes on one store: a webhook created through process A (this test) is matched
//! by process B's publishes (a child process that follows the store with `Registries` and
//! publishes a sample event for the account every 20 ms), and a deleted or switched-off one
//! stops matching. On SQLite (one file, polled) and PostgreSQL (`LISTEN`/`NOTIFY`).
//!
//! The times from a change to B's first (or last) delivery are printed, not asserted: the
//! machine's load decides them. Run with `--nocapture` to see them.

#[path = "support/pg.rs"]
#[cfg(feature = "postgres")]
mod pg;
#[path = "support/temp.rs"]
mod temp;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use posthook::{
    AccountId, Deactivation, DeliveryState, DeliveryStore, Event, EventKind, Outbox, Page,
    Registries, Source, TokioTimer, Wakeup, Webhook, WebhookId, WebhookStore,
};

const ACCOUNT: AccountId = AccountId::new(7);
/// Which store the child opens: `sqlite:PATH` or `postgres:URL`.
const CHILD: &str = "POSTHOOK_PROPAGATION_CHILD";

/// The child: follows the store and publishes for the account until killed.
async fn child<S: WebhookStore + DeliveryStore + Clone + 'static>(
    store: S,
    wakeup: Option<Wakeup>,
) {
    let registries = Arc::new(Registries::new());
    let follow = {
        let (store, registries, wakeup) = (store.clone(), registries.clone(), wakeup.clone());
        tokio::spawn(async move {
            registries
                .follow(
                    &store,
                    &TokioTimer::new(),
                    Duration::from_millis(100),
                    Duration::from_secs(30),
                    wakeup.as_ref(),
                    std::future::pending(),
                )
                .await;
        })
    };
    let outbox = Outbox::new(store);
    loop {
        let _ = outbox
            .publish_for(&registries, ACCOUNT, &Event::sample(EventKind::Subscribe))
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        if follow.is_finished() {
            panic!("the follower stopped");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagation_child() {
    let Ok(target) = std::env::var(CHILD) else {
        return;
    };
    if let Some(path) = target.strip_prefix("sqlite:") {
        #[cfg(feature = "sqlite")]
        {
            let store = posthook::SqliteStore::open(path, posthook::Durability::ProcessCrash)
                .await
                .unwrap();
            child(store, None).await;
        }
        let _ = path;
    }
    if let Some(url) = target.strip_prefix("postgres:") {
        #[cfg(feature = "postgres")]
        {
            let store = posthook::PostgresStore::connect(url).await.unwrap();
            let wakeup = Wakeup::new();
            let listener = store.clone();
            let bell = wakeup.clone();
            tokio::spawn(async move {
                loop {
                    let _ = listener.listen_webhooks(bell.clone()).await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
            child(store, Some(wakeup)).await;
        }
        let _ = url;
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(target: &str) -> Killed {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "propagation_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, target)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start process B");
    Killed(child)
}

/// The deliveries of `id` so far, and when the newest was made.
async fn deliveries<S: DeliveryStore>(store: &S, id: WebhookId) -> (usize, Option<SystemTime>) {
    let records = store.recent(id, Page::first(10_000)).await.unwrap();
    (records.len(), records.first().map(|r| r.created_at))
}

/// After a switch-off or a delete through the store: every delivery of `id` is cancelled
/// (nothing runs a worker here, so those enqueued before are still pending at the switch-off,
/// and those that process B enqueued after, before its registries caught up, are stored
/// cancelled); how many were enqueued at or after `since`.
async fn all_cancelled<S: DeliveryStore>(store: &S, id: WebhookId, since: SystemTime) -> usize {
    let records = store.recent(id, Page::first(10_000)).await.unwrap();
    for r in &records {
        assert_eq!(r.state, DeliveryState::Cancelled, "{r:?}");
    }
    records.iter().filter(|r| r.created_at >= since).count()
}

/// Waits (at most 60 s: a guard, not a claim) until `id` has a delivery; how long it took.
async fn first_delivery<S: DeliveryStore>(store: &S, id: WebhookId) -> Duration {
    let start = Instant::now();
    loop {
        if deliveries(store, id).await.0 > 0 {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never matched");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `id` gets no new delivery for a while; how long after `since` the last one
/// was made.
async fn last_delivery<S: DeliveryStore>(store: &S, id: WebhookId, since: SystemTime) -> Duration {
    let start = Instant::now();
    let mut seen = deliveries(store, id).await;
    loop {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let now = deliveries(store, id).await;
        if now.0 == seen.0 {
            return now
                .1
                .and_then(|t| t.duration_since(since).ok())
                .unwrap_or_default();
        }
        seen = now;
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never stopped matching"
        );
    }
}

async fn scenario<S: WebhookStore + DeliveryStore>(name: &str, store: &S, target: &str) {
    let _b = spawn(target);
    let hook = |url: &str| {
        Webhook::builder("propagated", url)
            .events([EventKind::Subscribe])
            .sources(Source::ALL)
            .build()
            .unwrap()
    };
    // Created here: matched there.
    let created = store
        .create(ACCOUNT, hook("https://a.example.com/hook"))
        .await
        .unwrap();
    let to_match = first_delivery(store, created.id()).await;
    // Another account's webhook is never matched by B's publishes for this account.
    let other = store
        .create(AccountId::new(8), hook("https://b.example.com/hook"))
        .await
        .unwrap();

    // Switched off here: no longer matched there.
    let mut off = created.webhook.clone();
    off.deactivate(Deactivation::Manual);
    let at = SystemTime::now();
    store.update(ACCOUNT, created.id(), 1, off).await.unwrap();
    let to_stop_off = last_delivery(store, created.id(), at).await;
    let late_off = all_cancelled(store, created.id(), at).await;

    // Another one created, then deleted: no longer matched.
    let second = store
        .create(ACCOUNT, hook("https://c.example.com/hook"))
        .await
        .unwrap();
    first_delivery(store, second.id()).await;
    let at = SystemTime::now();
    store.delete(ACCOUNT, second.id(), None).await.unwrap();
    let to_stop_deleted = last_delivery(store, second.id(), at).await;
    let late_deleted = all_cancelled(store, second.id(), at).await;
    assert_eq!(
        deliveries(store, other.id()).await.0,
        0,
        "another account's webhook matched"
    );
    println!(
        "{name}: created -> matched in {to_match:?}; switched off -> last delivery {to_stop_off:?} \
         after ({late_off} enqueued after it, all stored cancelled); deleted -> last delivery \
         {to_stop_deleted:?} after ({late_deleted} after it, all cancelled)"
    );
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_in_one_process_reaches_another_on_sqlite() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let dir = temp::TempDir::new("posthook-propagation");
    let path = dir.path().join("store.db");
    let store = posthook::SqliteStore::open(&path, posthook::Durability::ProcessCrash)
        .await
        .unwrap();
    scenario("sqlite", &store, &format!("sqlite:{}", path.display())).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_in_one_process_reaches_another_on_postgres() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let Some(schema) = pg::schema().await else {
        return;
    };
    let store = schema.store(4).await;
    scenario("postgres", &store, &format!("postgres:{}", schema.url())).await;
}
