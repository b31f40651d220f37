//! The webhooks: a `Registry` in memory, each webhook also saved as a row of its own (the API
//! v3 JSON shape, as posthook serializes a `Webhook`) in the same SQLite file as the
//! deliveries, through the store's connection pool.

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

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS settings_webhooks (
    id INTEGER PRIMARY KEY,
    webhook TEXT NOT NULL
)";

pub struct Hooks {
    registry: Registry,
}

impl Hooks {
    /// The webhooks saved in the database (the table is created if need be).
    pub async fn load(pool: &SqlitePool) -> Result<Hooks, Box<dyn std::error::Error>> {
        sqlx::query(SCHEMA).execute(pool).await?;
        let rows = sqlx::query("SELECT webhook FROM settings_webhooks ORDER BY id")
            .fetch_all(pool)
            .await?;
        let mut registry = Registry::new();
        for row in rows {
            let json: String = row.try_get("webhook")?;
            registry.insert(serde_json::from_str::<Webhook>(&json)?);
        }
        Ok(Hooks { registry })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn get(&self, id: WebhookId) -> Option<&Webhook> {
        self.registry.get(id)
    }

    /// Adds `hook`, or replaces the one with its id.
    pub fn put(&mut self, hook: Webhook) -> WebhookId {
        self.registry.insert(hook)
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

/// Saves webhook `id` as `json` (its state when the save runs, so saves never go back).
pub async fn save(pool: &SqlitePool, id: WebhookId, json: &str) -> Result<(), sqlx::Error> {
    let id = i64::try_from(id.get()).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO settings_webhooks (id, webhook) VALUES (?1, ?2)
         ON CONFLICT (id) DO UPDATE SET webhook = excluded.webhook",
    )
    .bind(id)
    .bind(json)
    .execute(pool)
    .await?;
    Ok(())
}
