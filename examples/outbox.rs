//! Durable delivery on SQLite: events published into an outbox in one file, two workers
//! delivering them to a local receiver, then the delivery log.
//!
//! Run with `cargo run --example outbox --features sqlite,tokio`.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use posthook::{
    DeliveryReport, DeliveryStore, Dispatcher, Durability, Event, EventKind, Outbox, Page,
    Registry, Source, SqliteStore, TokioTimer, Transport, TransportError, Webhook, Worker,
};

/// The local receiver, in memory: 410 Gone for `/gone`, 200 for the rest. (A real
/// application plugs its HTTP transport in here, e.g. `HttpTransport`.)
#[derive(Default)]
struct Receiver(AtomicUsize);

#[async_trait::async_trait]
impl Transport for Receiver {
    async fn send(&self, req: Request<Bytes>) -> Result<Response<Bytes>, TransportError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        let mut response = Response::new(Bytes::new());
        if req.uri().path() == "/gone" {
            *response.status_mut() = StatusCode::GONE;
        }
        Ok(response)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("posthook-outbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = SqliteStore::open(dir.join("outbox.db"), Durability::ProcessCrash).await?;

    let mut registry = Registry::new();
    let mut hooks = Vec::new();
    for (name, url) in [
        ("CRM", "https://crm.example.com/ac"),
        ("old", "https://old.example.com/gone"),
    ] {
        let hook = Webhook::builder(name, url)
            .events([EventKind::Subscribe])
            .sources(Source::ALL);
        hooks.push(registry.insert(hook.build()?));
    }
    let outbox = Outbox::new(store.clone());
    for _ in 0..3 {
        outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await?;
    }

    // Two workers, two at a time; each final outcome goes to the sink (deactivate on 410).
    let receiver = Arc::new(Receiver::default());
    let worker = |name: &'static str| {
        let dispatcher = Dispatcher::new(receiver.clone(), TokioTimer::new());
        let sink = move |r: &DeliveryReport| println!("{name}: {} {}", r.id, r.outcome);
        Worker::new(store.clone(), dispatcher)
            .batch(2)
            .on_outcome(sink)
    };
    let (a, b) = (worker("worker a"), worker("worker b"));
    let all_done = || async {
        while store.counts(None).await.is_ok_and(|c| c.pending > 0) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::join!(a.run(all_done()), b.run(all_done()));

    let got = receiver.0.load(Ordering::Relaxed);
    println!("{:?}, {got} requests", store.counts(None).await?);
    for r in store.recent(hooks[0], Page::first(10)).await? {
        let attempts = r.delivery.attempts();
        println!(
            "log: {} {} {} {attempts:?}",
            r.delivery.id(),
            r.kind,
            r.state
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
