//! The webhooks: a `Registry` in memory, each webhook also saved as a row of its own (the API
//! v3 JSON shape, as posthook serializes a `Webhook`) in the same SQLite file as the
//! deliveries, through the store's connection pool. A deleted webhook's row goes; its id is
//! remembered, so that it is never given to another webhook (its delivery log stays in the
//! store, under that id) and its page can say it was deleted.

use std::collections::BTreeSet;

use posthook::{Deactivation, ListId, Registry, Webhook, WebhookId};
use sqlx::{Row, SqlitePool};

/// The lists of this demo application (a real one has them in its database).
pub const LISTS: [(u64, &str); 3] = [(1, "Newsletter"), (2, "Customers"), (3, "Webinar")];

/// The name of a list, for the list drop-down and the table.
pub fn list_name(id: ListId) -> String {
    LISTS
        .iter()
        .find(|(n, _)| *n == id.get())
        .map_or_else(|| format!("#{id}"), |(_, name)| (*name).to_owned())
}

const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS settings_webhooks (
        id INTEGER PRIMARY KEY,
        webhook TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS settings_deleted_webhooks (id INTEGER PRIMARY KEY)",
];

pub struct Hooks {
    registry: Registry,
    /// The ids of deleted webhooks.
    deleted: BTreeSet<u64>,
    /// The id the next new webhook gets: above every id ever given, deleted ones included.
    next_id: u64,
}

impl Hooks {
    /// The webhooks saved in the database (the tables are created if need be).
    pub async fn load(pool: &SqlitePool) -> Result<Hooks, Box<dyn std::error::Error>> {
        for statement in SCHEMA {
            sqlx::query(statement).execute(pool).await?;
        }
        let rows = sqlx::query("SELECT webhook FROM settings_webhooks ORDER BY id")
            .fetch_all(pool)
            .await?;
        let mut registry = Registry::new();
        let mut next_id = 1;
        for row in rows {
            let json: String = row.try_get("webhook")?;
            let id = registry.insert(serde_json::from_str::<Webhook>(&json)?);
            next_id = next_id.max(id.get().saturating_add(1));
        }
        let mut deleted = BTreeSet::new();
        for row in sqlx::query("SELECT id FROM settings_deleted_webhooks")
            .fetch_all(pool)
            .await?
        {
            let id = u64::try_from(row.try_get::<i64, _>("id")?).unwrap_or(0);
            next_id = next_id.max(id.saturating_add(1));
            deleted.insert(id);
        }
        Ok(Hooks {
            registry,
            deleted,
            next_id,
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// For posthook's calls that change the registry and the store together
    /// (`Outbox::switch_off`, `Outbox::delete`).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn get(&self, id: WebhookId) -> Option<&Webhook> {
        self.registry.get(id)
    }

    /// Whether webhook `id` was deleted.
    pub fn was_deleted(&self, id: WebhookId) -> bool {
        self.deleted.contains(&id.get())
    }

    /// Adds `hook` (a new id if it has none), or replaces the one with its id.
    pub fn put(&mut self, mut hook: Webhook) -> WebhookId {
        if hook.id().is_none() {
            hook.set_id(WebhookId::new(self.next_id));
        }
        let id = self.registry.insert(hook);
        self.next_id = self.next_id.max(id.get().saturating_add(1));
        id
    }

    /// Remembers that webhook `id` was deleted (`Outbox::delete` took it from the registry).
    pub fn forget(&mut self, id: WebhookId) {
        self.deleted.insert(id.get());
    }

    pub fn deactivate(&mut self, id: WebhookId, reason: Deactivation) -> bool {
        self.registry.deactivate(id, reason)
    }

    pub fn set_active(&mut self, id: WebhookId, active: bool) -> bool {
        self.registry.set_active(id, active)
    }

    /// What to save for webhook `id`: its JSON as it is now.
    pub fn json(&self, id: WebhookId) -> Option<String> {
        self.registry
            .get(id)
            .and_then(|hook| serde_json::to_string(hook).ok())
    }
}

fn row_id(id: WebhookId) -> i64 {
    i64::try_from(id.get()).unwrap_or(i64::MAX)
}

/// Saves webhook `id` as `json` (its state when the save runs, so saves never go back).
pub async fn save(pool: &SqlitePool, id: WebhookId, json: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settings_webhooks (id, webhook) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET webhook = excluded.webhook",
    )
    .bind(row_id(id))
    .bind(json)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes webhook `id`'s row and records its id as deleted, in one transaction.
pub async fn remove(pool: &SqlitePool, id: WebhookId) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM settings_webhooks WHERE id = ?1")
        .bind(row_id(id))
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT OR IGNORE INTO settings_deleted_webhooks (id) VALUES (?1)")
        .bind(row_id(id))
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
