//! Durable delivery on PostgreSQL: a business change and its webhook event committed in one
//! transaction (the transactional outbox), two workers delivering to a local receiver.
//!
//! Run with `POSTHOOK_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//! cargo run --example outbox_postgres --features postgres,tokio`.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use posthook::{
    DeliveryReport, DeliveryStore, Dispatcher, Event, EventKind, Outbox, PostgresStore, Registry,
    Source, TokioTimer, Transport, TransportError, Webhook, Worker,
};

/// The local receiver, in memory: answers 200 to everything. (A real application plugs
/// its HTTP transport in here, e.g. `HttpTransport`.)
#[derive(Default)]
struct Receiver(AtomicUsize);

#[async_trait::async_trait]
impl Transport for Receiver {
    async fn send(&self, _: Request<Bytes>) -> Result<Response<Bytes>, TransportError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(Bytes::new()))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(url) = std::env::var("POSTHOOK_POSTGRES_URL") else {
        println!("set POSTHOOK_POSTGRES_URL, e.g. postgres://postgres@127.0.0.1:5432/test");
        return Ok(());
    };
    let store = PostgresStore::connect(&url).await?; // creates or updates the tables
    let pool = store.pool().clone();
    let contacts = "CREATE TABLE IF NOT EXISTS example_contacts (id int8 PRIMARY KEY, email text)";
    sqlx::query(contacts).execute(&pool).await?;

    let mut registry = Registry::new();
    let hook = Webhook::builder("CRM", "https://crm.example.com/hooks/ac");
    registry.insert(
        hook.events([EventKind::Subscribe])
            .sources(Source::ALL)
            .build()?,
    );
    let outbox = Outbox::new(store.clone());

    // The contact and its "subscribe" webhook: both or neither.
    let event = outbox.prepare(&registry, &Event::sample(EventKind::Subscribe))?;
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO example_contacts VALUES (1, 'ada@example.com') ON CONFLICT DO NOTHING",
    )
    .execute(&mut *tx)
    .await?;
    PostgresStore::enqueue_in(&mut tx, &event).await?;
    tx.commit().await?;
    outbox.wakeup().notify();

    // Two workers (they could as well run on two machines).
    let receiver = Arc::new(Receiver::default());
    let worker = |name: &'static str| {
        let dispatcher = Dispatcher::new(receiver.clone(), TokioTimer::new());
        let sink = move |r: &DeliveryReport| println!("{name}: {} {}", r.id, r.outcome);
        Worker::new(store.clone(), dispatcher)
            .wakeup(outbox.wakeup().clone())
            .on_outcome(sink)
    };
    let (a, b) = (worker("worker a"), worker("worker b"));
    let id = event.deliveries()[0].delivery.id();
    let done = || async {
        while !store.delivery(id).await.is_ok_and(|r| r.delivery.is_done()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::join!(a.run(done()), b.run(done()));

    let got = receiver.0.load(Ordering::Relaxed);
    println!("{:?}, {got} request", store.counts(None).await?);
    let pruned = store.prune(Duration::ZERO).await?; // the log is kept until pruned
    println!(
        "pruned {} deliveries, {} bodies",
        pruned.deliveries, pruned.bodies
    );
    Ok(())
}
