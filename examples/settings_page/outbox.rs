//! Deliveries go through posthook's durable outbox: an `Outbox` over a `SqliteStore` in the
//! data directory (`deliveries.db`), drained by a `Worker` in the background (see main.rs).
//! The delivery log is read back from the same store, so a restart loses no delivery and
//! no line of the log.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use posthook::{
    Delivery, DeliveryId, DeliveryRecord, DeliveryStore, Durability, Event, EventId, EventKind,
    NewEvent, Outbox, Page, Registry, RetryPolicy, SqliteStore, StoreError, Webhook, WebhookId,
};

pub struct Deliveries {
    pub outbox: Outbox<SqliteStore>,
    pub store: SqliteStore,
}

impl Deliveries {
    /// The store in `dir` (created if need be); events published carry `policy`.
    pub async fn open(dir: &Path, policy: RetryPolicy) -> Result<Deliveries, StoreError> {
        let store = SqliteStore::open(dir.join("deliveries.db"), Durability::ProcessCrash).await?;
        let outbox = Outbox::new(store.clone()).retry_policy(policy);
        Ok(Deliveries { outbox, store })
    }

    /// Stores one delivery of `event` per matching webhook; returns how many.
    pub async fn publish(&self, registry: &Registry, event: &Event) -> Result<usize, StoreError> {
        Ok(self.outbox.publish(registry, event).await?.deliveries.len())
    }

    /// "Send sample data" through the store, so that it is in the log like any delivery:
    /// the sample of `kind` to `hook` (active or not, whatever its filters), one attempt.
    /// Returns the delivery's id and the body it carries.
    pub async fn enqueue_sample(
        &self,
        hook: &Webhook,
        kind: EventKind,
    ) -> Result<(DeliveryId, Bytes), StoreError> {
        let id = DeliveryId::new(EventId::random()?.get());
        let body = Event::sample(kind).encode();
        let mut event = NewEvent::new(EventId::random()?, kind, body.clone());
        let delivery = Delivery::new(id, hook.id(), RetryPolicy::never());
        event.push(delivery, hook.url().clone());
        self.store.enqueue(&event).await?;
        self.outbox.wakeup().notify();
        Ok((id, body))
    }

    /// Waits (at most `timeout`) for the worker to finish delivery `id`; its record as it
    /// is then, finished or not.
    pub async fn wait_done(
        &self,
        id: DeliveryId,
        timeout: Duration,
    ) -> Result<DeliveryRecord, StoreError> {
        let deadline = Instant::now() + timeout;
        loop {
            let record = self.store.delivery(id).await?;
            if record.delivery.is_done() || Instant::now() > deadline {
                return Ok(record);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The most recent deliveries of `webhook`, newest first.
    pub async fn recent(&self, webhook: WebhookId, limit: usize) -> Vec<DeliveryRecord> {
        match self.store.recent(webhook, Page::first(limit)).await {
            Ok(records) => records,
            Err(error) => {
                eprintln!("could not read the delivery log of webhook {webhook}: {error}");
                Vec::new()
            }
        }
    }
}
