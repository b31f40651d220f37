//! The webhooks: kept in posthook's `WebhookStore` — the same `SqliteStore` (the same file)
//! as the deliveries — under one account (`--account N`, 1 by default), with a version
//! each, so that an edit saved over a newer version is refused. Publishing matches against
//! `Registries`, loaded from the store at start and brought up to date (`refresh`) after
//! every change this app makes, and every second for changes made elsewhere.
//!
//! Switching a webhook off or deleting it cancels its pending deliveries: the store does it
//! in the same transaction as the change (and stores cancelled whatever another process
//! enqueues to it later); then the registry refresh, all under the write side of
//! [`Hooks::gate`]; publishing holds its read side from the match to the commit. So a
//! publish comes wholly before a switch-off (and its deliveries are cancelled) or wholly
//! after it (and does not match). The count shown is the store's cancelled count, before
//! and after.

use std::time::Duration;

use posthook::{
    AccountId, ChangeKind, Deactivation, DeliveryStore, Event, ListId, Outbox, Page, Registries,
    SqliteStore, StoredWebhook, Webhook, WebhookFilter, WebhookId, WebhookPage, WebhookStore,
    WebhookStoreError,
};
use sqlx::Row;

/// The lists of this demo application (a real one has them in its database).
pub const LISTS: [(u64, &str); 3] = [(1, "Newsletter"), (2, "Customers"), (3, "Webinar")];

/// The name of a list, for the list drop-down and the table.
pub fn list_name(id: ListId) -> String {
    LISTS
        .iter()
        .find(|(n, _)| *n == id.get())
        .map_or_else(|| format!("#{id}"), |(_, name)| (*name).to_owned())
}

/// How often the registries look for changes made by someone else (another process on the
/// same file, a script).
pub const POLL: Duration = Duration::from_secs(1);

/// How many times a switch-off re-reads a webhook that changed under it.
const TRIES: usize = 5;

pub struct Hooks {
    pub store: SqliteStore,
    pub account: AccountId,
    registries: Registries,
    /// Read: a publish, from its match to its commit. Write: a change and its refresh (and
    /// the cancel of a switch-off or a delete).
    gate: tokio::sync::RwLock<()>,
    /// One `refresh` at a time: two at once could apply an older read after a newer one.
    refreshing: tokio::sync::Mutex<()>,
}

/// What a switch-off or a switch-on did.
pub struct Switched {
    /// How many pending deliveries were cancelled (a switch-off).
    pub cancelled: Option<u64>,
}

impl Hooks {
    /// The webhooks of `account` in `store`, the registries loaded.
    pub async fn open(store: SqliteStore, account: AccountId) -> Result<Hooks, WebhookStoreError> {
        let hooks = Hooks {
            store,
            account,
            registries: Registries::new(),
            gate: tokio::sync::RwLock::new(()),
            refreshing: tokio::sync::Mutex::new(()),
        };
        hooks.registries.load(&hooks.store).await?;
        Ok(hooks)
    }

    /// Applies the store's changes to the registries (logged, not returned, if it fails:
    /// the next poll tries again).
    pub async fn refresh(&self) {
        let _one = self.refreshing.lock().await;
        if let Err(error) = self.registries.refresh(&self.store).await {
            eprintln!("could not refresh the webhook registries: {error}");
        }
    }

    /// Webhook `id` of this account, if it is there.
    pub async fn get(&self, id: WebhookId) -> Result<Option<StoredWebhook>, WebhookStoreError> {
        match self.store.get(self.account, id).await {
            Ok(stored) => Ok(Some(stored)),
            Err(WebhookStoreError::NotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    pub async fn list(
        &self,
        filter: &WebhookFilter,
        page: Page,
    ) -> Result<WebhookPage, WebhookStoreError> {
        self.store.list(self.account, filter, page).await
    }

    pub async fn create(&self, hook: Webhook) -> Result<StoredWebhook, WebhookStoreError> {
        let _changing = self.gate.write().await;
        let stored = self.store.create(self.account, hook).await?;
        self.refresh().await;
        Ok(stored)
    }

    /// Saves `hook` as webhook `id` if the stored one is still at version `expected`.
    pub async fn update(
        &self,
        id: WebhookId,
        expected: u64,
        hook: Webhook,
    ) -> Result<StoredWebhook, WebhookStoreError> {
        let _changing = self.gate.write().await;
        let stored = self.store.update(self.account, id, expected, hook).await?;
        self.refresh().await;
        Ok(stored)
    }

    /// Switches webhook `id` on, or off for `reason` (cancelling its pending deliveries).
    /// `None` when it is not there, or already as asked (an off one keeps its reason: a 410
    /// stays on record).
    pub async fn switch(
        &self,
        id: WebhookId,
        on: Result<(), Deactivation>,
    ) -> Result<Option<Switched>, WebhookStoreError> {
        let _changing = self.gate.write().await;
        let cancelled_before = self.store.counts(Some(id)).await?.cancelled;
        let mut tries = 0;
        loop {
            let Some(current) = self.get(id).await? else {
                return Ok(None);
            };
            if current.webhook.is_active() == on.is_ok() {
                return Ok(None);
            }
            let mut hook = current.webhook.clone();
            match on {
                Ok(()) => hook.activate(),
                Err(reason) => hook.deactivate(reason),
            }
            match self
                .store
                .update(self.account, id, current.version, hook)
                .await
            {
                Ok(_) => break,
                // Changed meanwhile (an edit, the worker): look again.
                Err(WebhookStoreError::Conflict { .. }) if tries < TRIES => tries += 1,
                Err(other) => return Err(other),
            }
        }
        self.refresh().await;
        let cancelled = match on {
            Ok(()) => None,
            Err(_) => Some(
                self.store
                    .counts(Some(id))
                    .await?
                    .cancelled
                    .saturating_sub(cancelled_before),
            ),
        };
        Ok(Some(Switched { cancelled }))
    }

    /// Deletes webhook `id` and cancels its pending deliveries; its delivery log stays.
    /// The webhook as it was and how many were cancelled; `None` when it is not there.
    pub async fn delete(
        &self,
        id: WebhookId,
    ) -> Result<Option<(StoredWebhook, u64)>, WebhookStoreError> {
        let _changing = self.gate.write().await;
        let cancelled_before = self.store.counts(Some(id)).await?.cancelled;
        let deleted = match self.store.delete(self.account, id, None).await {
            Ok(deleted) => deleted,
            Err(WebhookStoreError::NotFound { .. }) => return Ok(None),
            Err(other) => return Err(other),
        };
        self.refresh().await;
        let cancelled = self
            .store
            .counts(Some(id))
            .await?
            .cancelled
            .saturating_sub(cancelled_before);
        Ok(Some((deleted, cancelled)))
    }

    /// Publishes `event` for this account through `outbox`: how many deliveries it made.
    pub async fn publish(
        &self,
        outbox: &Outbox<SqliteStore>,
        event: &Event,
    ) -> Result<usize, posthook::StoreError> {
        let _publishing = self.gate.read().await;
        let published = outbox
            .publish_for(&self.registries, self.account, event)
            .await?;
        Ok(published.deliveries.len())
    }

    /// Whether webhook `id` of this account was deleted: its delete is in the change feed
    /// (read for a "not found" page only). posthook's `WebhookStore::changes` reads the feed
    /// from a point on; this asks the store's own table for the one entry in one query
    /// (a few milliseconds at 10,000 webhooks, where reading the feed through took 50).
    pub async fn was_deleted(&self, id: WebhookId) -> bool {
        let found = sqlx::query(
            "SELECT 1 FROM posthook_webhook_changes \
             WHERE webhook_id = ?1 AND account = ?2 AND kind = ?3 LIMIT 1",
        )
        .bind(i64::try_from(id.get()).unwrap_or(i64::MAX))
        .bind(i64::from_ne_bytes(self.account.get().to_ne_bytes()))
        .bind(ChangeKind::Deleted.as_str())
        .fetch_optional(self.store.pool())
        .await;
        matches!(found, Ok(Some(_)))
    }
}

/// Moves the webhooks of an older settings_page (its own tables `settings_webhooks` and
/// `settings_deleted_webhooks` in the same file) into the store, once, keeping their ids —
/// the delivery log names webhooks by id — and never giving an id of a deleted one again.
/// The store's API gives ids itself (one more than the last, in `SqliteStore`), so each is
/// created until it gets its old id: an id handed out on the way is deleted at once. If the
/// store has given a higher id already, the ids cannot be kept: the app stops and says to
/// start with a fresh `--data` directory. The old tables go when all is moved. How many
/// webhooks were moved.
pub async fn migrate_old_tables(
    store: &SqliteStore,
    account: AccountId,
) -> Result<usize, Box<dyn std::error::Error>> {
    let pool = store.pool();
    let table = |name: &'static str| {
        sqlx::query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1").bind(name)
    };
    if table("settings_webhooks")
        .fetch_optional(pool)
        .await?
        .is_none()
    {
        return Ok(0);
    }
    let mut old = Vec::new();
    for row in sqlx::query("SELECT id, webhook FROM settings_webhooks ORDER BY id")
        .fetch_all(pool)
        .await?
    {
        let id = u64::try_from(row.try_get::<i64, _>("id")?).unwrap_or(0);
        let json: String = row.try_get("webhook")?;
        let hook: Webhook = serde_json::from_str(&json)
            .map_err(|e| format!("webhook {id} of the older settings_page: {e}"))?;
        old.push((WebhookId::new(id), hook));
    }
    let mut highest_deleted = 0;
    if table("settings_deleted_webhooks")
        .fetch_optional(pool)
        .await?
        .is_some()
    {
        let row = sqlx::query("SELECT MAX(id) AS id FROM settings_deleted_webhooks")
            .fetch_one(pool)
            .await?;
        let id: Option<i64> = row.try_get("id")?;
        highest_deleted = id.map_or(0, |id| u64::try_from(id).unwrap_or(0));
    }
    let (mut moved, mut given) = (0, 0);
    for (id, hook) in old {
        if store.get(account, id).await.is_ok() {
            continue; // moved by an earlier start that was interrupted
        }
        loop {
            let created = store.create(account, hook.clone()).await?;
            given = created.id().get();
            if created.id() == id {
                moved += 1;
                break;
            }
            store.delete(account, created.id(), None).await?;
            if created.id() > id {
                return Err(format!(
                    "cannot move the webhooks of the older settings_page into the webhook \
                     store with their ids (webhook {id} would become {}, and the delivery log \
                     names webhooks by id): start with a fresh --data DIR",
                    created.id()
                )
                .into());
            }
        }
    }
    // The ids of deleted webhooks above every kept one: used up, so that none is given again.
    while given < highest_deleted {
        let placeholder = Webhook::builder("(placeholder)", "https://placeholder.invalid/")
            .events([posthook::EventKind::Subscribe])
            .sources(posthook::Source::ALL)
            .build()?;
        let created = store.create(account, placeholder).await?;
        store.delete(account, created.id(), None).await?;
        given = created.id().get();
    }
    let mut tx = pool.begin().await?;
    sqlx::query("DROP TABLE settings_webhooks")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DROP TABLE IF EXISTS settings_deleted_webhooks")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(moved)
}
