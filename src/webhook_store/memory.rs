//! [`WebhookStore`] on [`MemoryStore`]: every account's webhooks in the process's memory.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use super::{
    AccountId, Change, ChangeKind, StoredWebhook, WebhookFilter, WebhookPage, WebhookStore,
    WebhookStoreError,
};
use crate::store::Page;
use crate::{MemoryStore, Webhook, WebhookId};

/// The webhooks of a [`MemoryStore`].
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    /// Every webhook, by id.
    by_id: BTreeMap<WebhookId, StoredWebhook>,
    /// How many each account has.
    per_account: HashMap<AccountId, u32>,
    /// The change feed.
    changes: Vec<Change>,
    /// The last id given.
    last_id: u64,
}

impl Hooks {
    fn find(&self, account: AccountId, id: WebhookId) -> Result<&StoredWebhook, WebhookStoreError> {
        self.by_id
            .get(&id)
            .filter(|s| s.account == account)
            .ok_or(WebhookStoreError::NotFound { account, id })
    }

    fn record(&mut self, account: AccountId, id: WebhookId, kind: ChangeKind, version: u64) {
        let seq = self.changes.last().map_or(1, |c| c.seq + 1);
        self.changes.push(Change {
            seq,
            account,
            id,
            kind,
            version,
        });
    }
}

/// `webhook` as stored: with `id`, and the `cdate` in ActiveCampaign's form.
pub(crate) fn with_identity(mut webhook: Webhook, id: WebhookId, cdate: String) -> Webhook {
    webhook.set_id(id);
    webhook.set_cdate(Some(cdate));
    webhook
}

/// ActiveCampaign's `cdate` form, `2016-01-01T12:00:00-00:00`, of `at` (UTC).
pub(crate) fn cdate(at: SystemTime) -> String {
    let at: chrono::DateTime<chrono::Utc> = at.into();
    at.format("%Y-%m-%dT%H:%M:%S-00:00").to_string()
}

#[async_trait::async_trait]
impl WebhookStore for MemoryStore {
    async fn create(
        &self,
        account: AccountId,
        webhook: Webhook,
    ) -> Result<StoredWebhook, WebhookStoreError> {
        let limit = self.max_webhooks();
        let (mut hooks, now) = self.hooks();
        let count = hooks.per_account.get(&account).copied().unwrap_or(0);
        if count >= limit {
            return Err(WebhookStoreError::LimitReached { account, limit });
        }
        hooks.last_id += 1;
        let id = WebhookId::new(hooks.last_id);
        let stored = StoredWebhook {
            account,
            webhook: with_identity(webhook, id, cdate(now)),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        hooks.by_id.insert(id, stored.clone());
        *hooks.per_account.entry(account).or_default() += 1;
        hooks.record(account, id, ChangeKind::Created, 1);
        Ok(stored)
    }

    async fn get(
        &self,
        account: AccountId,
        id: WebhookId,
    ) -> Result<StoredWebhook, WebhookStoreError> {
        let (hooks, _) = self.hooks();
        hooks.find(account, id).cloned()
    }

    async fn update(
        &self,
        account: AccountId,
        id: WebhookId,
        expected: u64,
        webhook: Webhook,
    ) -> Result<StoredWebhook, WebhookStoreError> {
        let (mut hooks, now) = self.hooks();
        let current = super::expect_version(hooks.find(account, id)?.clone(), Some(expected))?;
        let cdate = current.webhook.cdate().map(str::to_owned);
        let stored = StoredWebhook {
            account,
            webhook: with_identity(webhook, id, cdate.unwrap_or_default()),
            version: expected + 1,
            created_at: current.created_at,
            updated_at: now,
        };
        hooks.by_id.insert(id, stored.clone());
        hooks.record(account, id, ChangeKind::Updated, stored.version);
        // Under the webhooks' lock: no reader sees the change before its deliveries do.
        self.mark_off(id, super::off_reason(&stored.webhook));
        Ok(stored)
    }

    async fn delete(
        &self,
        account: AccountId,
        id: WebhookId,
        expected: Option<u64>,
    ) -> Result<StoredWebhook, WebhookStoreError> {
        let (mut hooks, _) = self.hooks();
        super::expect_version(hooks.find(account, id)?.clone(), expected)?;
        let Some(removed) = hooks.by_id.remove(&id) else {
            return Err(WebhookStoreError::NotFound { account, id });
        };
        if let Some(n) = hooks.per_account.get_mut(&account) {
            *n = n.saturating_sub(1);
        }
        hooks.record(account, id, ChangeKind::Deleted, removed.version);
        self.mark_off(id, Some(crate::CancelReason::Deleted));
        Ok(removed)
    }

    async fn list(
        &self,
        account: AccountId,
        filter: &WebhookFilter,
        page: Page,
    ) -> Result<WebhookPage, WebhookStoreError> {
        let (hooks, _) = self.hooks();
        let mut total = 0u64;
        let mut webhooks = Vec::new();
        for stored in hooks
            .by_id
            .values()
            .filter(|s| s.account == account && filter.matches(&s.webhook))
        {
            let index = usize::try_from(total).unwrap_or(usize::MAX);
            if index >= page.offset && webhooks.len() < page.limit {
                webhooks.push(stored.clone());
            }
            total += 1;
        }
        Ok(WebhookPage { webhooks, total })
    }

    async fn changes(&self, after: u64, limit: usize) -> Result<Vec<Change>, WebhookStoreError> {
        let (hooks, _) = self.hooks();
        let start = hooks.changes.partition_point(|c| c.seq <= after);
        Ok(hooks.changes[start..].iter().take(limit).copied().collect())
    }

    async fn last_change(&self) -> Result<u64, WebhookStoreError> {
        let (hooks, _) = self.hooks();
        Ok(hooks.changes.last().map_or(0, |c| c.seq))
    }

    fn max_webhooks(&self) -> u32 {
        self.max_webhooks_per_account()
    }

    async fn all_after(
        &self,
        after: Option<WebhookId>,
        limit: usize,
    ) -> Result<Vec<StoredWebhook>, WebhookStoreError> {
        let (hooks, _) = self.hooks();
        let from = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        Ok(hooks
            .by_id
            .range((from, std::ops::Bound::Unbounded))
            .take(limit)
            .map(|(_, s)| s.clone())
            .collect())
    }
}
