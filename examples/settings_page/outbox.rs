//! Deliveries go through posthook's durable outbox: an `Outbox` over a `SqliteStore` in the
//! data directory (`deliveries.db`), drained by a `Worker` in the background (see main.rs).
//! The delivery log is read back from the same store, so a restart loses no delivery and
//! no line of the log.
//!
//! The list page shows each webhook's last delivery: [`Deliveries::last_of`] reads them for
//! a whole page in one query.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use posthook::{
    Delivery, DeliveryId, DeliveryRecord, DeliveryState, DeliveryStore, Durability, Event, EventId,
    EventKind, NewEvent, Outbox, Page, RetryPolicy, SqliteStore, StoreError, Webhook, WebhookId,
};
use sqlx::Row;

/// The most webhooks the account of this app may have (posthook's default is 1,000).
pub const MAX_WEBHOOKS: u32 = 100_000;

/// A webhook's latest delivery, as the list shows it.
#[derive(Debug, Clone, Copy)]
pub struct Last {
    pub state: DeliveryState,
    /// When it ended, or when it was made if it has not.
    pub at: SystemTime,
}

pub struct Deliveries {
    pub outbox: Outbox<SqliteStore>,
    pub store: SqliteStore,
}

impl Deliveries {
    /// The store in `dir` (created if need be); events published carry `policy`.
    pub async fn open(dir: &Path, policy: RetryPolicy) -> Result<Deliveries, StoreError> {
        let store = SqliteStore::open(dir.join("deliveries.db"), Durability::ProcessCrash)
            .await?
            .with_max_webhooks(MAX_WEBHOOKS);
        let outbox = Outbox::new(store.clone()).retry_policy(policy);
        Ok(Deliveries { outbox, store })
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

/// The latest delivery of each of `webhooks` (those that have one), in one query. posthook's
/// `DeliveryStore` reads one webhook's log at a time (`recent`); for a page of 50 rows this
/// reads the store's own table instead — its `state` column holds
/// `DeliveryState::as_str` — through the index the log uses (webhook, time).
const LAST_OF: &str = "SELECT d.webhook_id AS webhook_id, d.state AS state, \
     COALESCE(d.finished_ms, d.created_ms) AS at_ms \
     FROM json_each(?1) AS w JOIN posthook_deliveries d ON d.rowid = ( \
       SELECT x.rowid FROM posthook_deliveries x WHERE x.webhook_id = w.value \
       ORDER BY x.created_ms DESC, x.rowid DESC LIMIT 1)";

impl Deliveries {
    pub async fn last_of(&self, webhooks: &[WebhookId]) -> HashMap<WebhookId, Last> {
        let ids: Vec<u64> = webhooks.iter().map(|id| id.get()).collect();
        let ids = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".to_owned());
        let rows = match sqlx::query(LAST_OF)
            .bind(ids)
            .fetch_all(self.store.pool())
            .await
        {
            Ok(rows) => rows,
            Err(error) => {
                eprintln!("could not read the last deliveries: {error}");
                return HashMap::new();
            }
        };
        let mut last = HashMap::with_capacity(rows.len());
        for row in rows {
            let (Ok(id), Ok(state), Ok(at)) = (
                row.try_get::<i64, _>("webhook_id"),
                row.try_get::<String, _>("state"),
                row.try_get::<i64, _>("at_ms"),
            ) else {
                continue;
            };
            let Some(state) = DeliveryState::from_name(&state) else {
                continue;
            };
            let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(at).unwrap_or(0));
            let id = WebhookId::new(u64::try_from(id).unwrap_or(0));
            last.insert(id, Last { state, at });
        }
        last
    }
}
