//! Keeping webhooks: the [`WebhookStore`] contract, per-[account](AccountId), with
//! optimistic versions and a change feed, and [`Registries`], the per-account
//! [`Registry`](crate::Registry)s a process keeps in step with it.
//!
//! An application that offers webhooks to its customers has many accounts, an API their
//! integrations call, and workers in several processes. The store keeps every account's
//! webhooks in one place — [`MemoryStore`](crate::MemoryStore), `SqliteStore`,
//! `PostgresStore`, the same types (and, for the databases, the same database) as the
//! [`DeliveryStore`](crate::DeliveryStore) — and each process matches events against its
//! own [`Registries`], brought up to date from the store's [change feed](WebhookStore::changes).
//!
//! The contract, the same for every store:
//!
//! - **Accounts.** Every webhook belongs to one [`AccountId`]. Every read and write names the
//!   account; a webhook of another account is [`WebhookStoreError::NotFound`], exactly as a
//!   missing one (an account cannot tell another's ids exist).
//! - **Ids.** The store gives each webhook its [`WebhookId`], unique across accounts (the
//!   deliveries of a [`DeliveryStore`](crate::DeliveryStore) name webhooks by id alone), and
//!   never gives an id twice, not even after a delete.
//! - **Versions.** A webhook starts at version 1; every update adds one. An update or delete
//!   that names an older version than the stored one is refused with
//!   [`WebhookStoreError::Conflict`], which carries the current webhook (two people editing
//!   one webhook: the second save does not silently undo the first).
//! - **Limits.** At most [`max_webhooks`](WebhookStore::max_webhooks) webhooks per account
//!   (default [`DEFAULT_MAX_WEBHOOKS`]); one more is [`WebhookStoreError::LimitReached`].
//! - **Changes.** Every create, update and delete is in the change feed, in commit order,
//!   numbered ([`Change::seq`]); a reader asks for what came after the last number it saw.
//! - **Switching off is enforced by the store.** An update that switches a webhook off, and a
//!   delete, cancel its pending deliveries in the same store
//!   ([`FinalOutcome::Cancelled`](crate::FinalOutcome::Cancelled), reason
//!   [`SwitchedOff`](crate::CancelReason::SwitchedOff) with its
//!   [`Deactivation`](crate::Deactivation), or [`Deleted`](crate::CancelReason::Deleted)), and
//!   from the commit on, every delivery enqueued to it — by a process whose
//!   [`Registries`] have not caught up yet — is stored cancelled with that reason, never
//!   attempted. Switching it back on ends that. This holds when the webhooks and the
//!   deliveries are in the same store (the same `MemoryStore`, SQLite file or PostgreSQL
//!   schema); with webhooks kept elsewhere, cancel through
//!   [`DeliveryStore::cancel`](crate::DeliveryStore::cancel) (as
//!   [`Outbox::switch_off`](crate::Outbox::switch_off) does), which marks nothing for later
//!   enqueues.
//! - **Secrets** are kept with the webhook (its signing secrets, for the workers that sign
//!   its deliveries): protect the database as you protect them.
//!
//! ```
//! use posthook::{AccountId, EventKind, MemoryStore, Source, Webhook, WebhookStore};
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let store = MemoryStore::new();
//! let acme = AccountId::new(1);
//! let hook = Webhook::builder("CRM", "https://crm.example.com/hook")
//!     .events([EventKind::Subscribe])
//!     .sources(Source::ALL)
//!     .build()?;
//! let stored = store.create(acme, hook).await?;
//! assert_eq!(stored.version, 1);
//! // Another account does not see it.
//! assert!(store.get(AccountId::new(2), stored.id()).await.is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::store::{Page, StoreError};
use crate::{EventKind, ListScope, Webhook, WebhookId};

pub(crate) mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
mod sync;

pub use self::sync::Registries;

/// The default most webhooks one account may have: 1,000.
pub const DEFAULT_MAX_WEBHOOKS: u32 = 1_000;

/// One customer of the application: the owner of webhooks, deliveries and their log.
/// Serde writes it as a string and reads a string or a number, like [`WebhookId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(u64);

impl AccountId {
    /// An account id from its number.
    #[inline]
    pub const fn new(id: u64) -> AccountId {
        AccountId(id)
    }

    /// The id as a number.
    #[inline]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for AccountId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(AccountId)
    }
}

impl Serialize for AccountId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        WebhookId::deserialize(deserializer).map(|id| AccountId(id.get()))
    }
}

/// A webhook as a [`WebhookStore`] holds it: the webhook (its id set), its account, its
/// version and when it was made and last changed (the store's clock).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredWebhook {
    /// Whose it is.
    pub account: AccountId,
    /// The webhook, with [`Webhook::id`] set (and `cdate`, in ActiveCampaign's form).
    pub webhook: Webhook,
    /// 1 when created; one more for every update.
    pub version: u64,
    /// When it was created.
    pub created_at: SystemTime,
    /// When it last changed.
    pub updated_at: SystemTime,
}

impl StoredWebhook {
    /// Its id.
    pub fn id(&self) -> WebhookId {
        self.webhook.id().unwrap_or(WebhookId::new(0))
    }
}

/// Which webhooks of an account [`WebhookStore::list`] returns; every field set must hold
/// (all of them unset: every webhook). "Contains" ignores ASCII case (the same in every
/// store: `É` and `é` differ, `E` and `e` do not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookFilter {
    /// The name contains this, ignoring case (ActiveCampaign's `filters[name]`).
    pub name: Option<String>,
    /// The URL contains this, ignoring case (`filters[url]`).
    pub url: Option<String>,
    /// The name or the URL contains this, ignoring case (a search box).
    pub search: Option<String>,
    /// It receives this event kind.
    pub event: Option<EventKind>,
    /// It is bound to this list scope (`filters[listid]`; `ListScope::All` for "all lists").
    pub scope: Option<ListScope>,
    /// It is switched on (`true`) or off (`false`).
    pub active: Option<bool>,
}

impl WebhookFilter {
    /// Every webhook.
    pub fn new() -> WebhookFilter {
        WebhookFilter::default()
    }

    /// With the name containing `text`.
    #[must_use]
    pub fn name(mut self, text: impl Into<String>) -> Self {
        self.name = Some(text.into());
        self
    }

    /// With the URL containing `text`.
    #[must_use]
    pub fn url(mut self, text: impl Into<String>) -> Self {
        self.url = Some(text.into());
        self
    }

    /// With the name or the URL containing `text`.
    #[must_use]
    pub fn search(mut self, text: impl Into<String>) -> Self {
        self.search = Some(text.into());
        self
    }

    /// Receiving `kind`.
    #[must_use]
    pub fn event(mut self, kind: EventKind) -> Self {
        self.event = Some(kind);
        self
    }

    /// Bound to `scope`.
    #[must_use]
    pub fn scope(mut self, scope: ListScope) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Switched on or off.
    #[must_use]
    pub fn active(mut self, active: bool) -> Self {
        self.active = Some(active);
        self
    }

    /// Whether `webhook` passes (the rule every store applies).
    pub fn matches(&self, webhook: &Webhook) -> bool {
        let contains = |hay: &str, needle: &str| {
            needle.is_empty()
                || hay
                    .to_ascii_lowercase()
                    .contains(&needle.to_ascii_lowercase())
        };
        self.name
            .as_deref()
            .is_none_or(|n| contains(webhook.name(), n))
            && self
                .url
                .as_deref()
                .is_none_or(|u| contains(webhook.url().as_str(), u))
            && self
                .search
                .as_deref()
                .is_none_or(|s| contains(webhook.name(), s) || contains(webhook.url().as_str(), s))
            && self.event.is_none_or(|k| webhook.events().contains(k))
            && self.scope.is_none_or(|s| webhook.scope() == s)
            && self.active.is_none_or(|a| webhook.is_active() == a)
    }
}

/// One page of [`WebhookStore::list`]: the webhooks (by id, lowest first) and how many
/// pass the filter in all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookPage {
    /// This page's webhooks.
    pub webhooks: Vec<StoredWebhook>,
    /// How many webhooks of the account pass the filter, on every page.
    pub total: u64,
}

/// What happened to a webhook, in the change feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChangeKind {
    /// Created.
    Created,
    /// Updated (switched on or off, too).
    Updated,
    /// Deleted.
    Deleted,
}

impl ChangeKind {
    /// `created`, `updated` or `deleted`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Deleted => "deleted",
        }
    }

    /// The kind named `name` (see [`as_str`](ChangeKind::as_str)).
    pub fn from_name(name: &str) -> Option<ChangeKind> {
        [
            ChangeKind::Created,
            ChangeKind::Updated,
            ChangeKind::Deleted,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// One entry of the change feed ([`WebhookStore::changes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Change {
    /// Its place in the feed: greater than every earlier change's.
    pub seq: u64,
    /// The webhook's account.
    pub account: AccountId,
    /// The webhook.
    pub id: WebhookId,
    /// What happened.
    pub kind: ChangeKind,
    /// The webhook's version after it (the deleted version, for a delete).
    pub version: u64,
}

/// Why a [`WebhookStore`] did not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookStoreError {
    /// No webhook with this id in this account (it may be another account's, or deleted).
    #[error("account {account} has no webhook {id}")]
    NotFound {
        /// The account asked.
        account: AccountId,
        /// The id asked.
        id: WebhookId,
    },
    /// The update or delete named an older version: someone changed it meanwhile.
    #[error("webhook {} changed meanwhile: version {} is stored, {expected} was expected", .current.id(), .current.version)]
    Conflict {
        /// The version the caller had.
        expected: u64,
        /// The webhook as it is now.
        current: Box<StoredWebhook>,
    },
    /// The account has as many webhooks as it may.
    #[error("account {account} has {limit} webhooks, the most it may have")]
    LimitReached {
        /// The account.
        account: AccountId,
        /// Its limit.
        limit: u32,
    },
    /// The store failed (unreachable, a refused statement, a row that does not decode).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WebhookStoreError {
    /// Whether trying again later may succeed (the store was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, WebhookStoreError::Store(e) if e.is_transient())
    }
}

/// What switching to `webhook` means for its lane: the reason its deliveries are cancelled
/// for when it is switched off, `None` when it is on.
pub(crate) fn off_reason(webhook: &Webhook) -> Option<crate::CancelReason> {
    webhook.deactivation().map(crate::CancelReason::SwitchedOff)
}

/// `current` if its version is `expected` (or nothing is expected): the check every store
/// makes before an update or a delete; the conflict, with the current webhook, otherwise.
pub(crate) fn expect_version(
    current: StoredWebhook,
    expected: Option<u64>,
) -> Result<StoredWebhook, WebhookStoreError> {
    match expected {
        Some(expected) if expected != current.version => Err(WebhookStoreError::Conflict {
            expected,
            current: Box::new(current),
        }),
        _ => Ok(current),
    }
}

/// Keeps every account's webhooks: create, read, update with an optimistic version, delete,
/// list with filters and paging, and a change feed. See the [module docs](self) for the
/// contract. Implemented by [`MemoryStore`](crate::MemoryStore), `SqliteStore` and
/// `PostgresStore`.
#[async_trait::async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores `webhook` (its id and `cdate`, if any, are ignored) for `account`: a new id,
    /// version 1, `cdate` now. [`WebhookStoreError::LimitReached`] when the account has
    /// [`max_webhooks`](WebhookStore::max_webhooks) already.
    async fn create(
        &self,
        account: AccountId,
        webhook: Webhook,
    ) -> Result<StoredWebhook, WebhookStoreError>;

    /// The webhook `id` of `account`.
    async fn get(
        &self,
        account: AccountId,
        id: WebhookId,
    ) -> Result<StoredWebhook, WebhookStoreError>;

    /// Replaces webhook `id` of `account` with `webhook` (its id and `cdate` are kept as
    /// stored) if its stored version is `expected`; the new version is one more.
    /// [`WebhookStoreError::Conflict`] otherwise, with the current one.
    async fn update(
        &self,
        account: AccountId,
        id: WebhookId,
        expected: u64,
        webhook: Webhook,
    ) -> Result<StoredWebhook, WebhookStoreError>;

    /// Deletes webhook `id` of `account` — if its version is `expected`, when given — and
    /// returns it as it was. Its id is never given again. (Its deliveries are the
    /// [`DeliveryStore`](crate::DeliveryStore)'s: cancel them there,
    /// [`DeliveryStore::cancel`](crate::DeliveryStore::cancel).)
    async fn delete(
        &self,
        account: AccountId,
        id: WebhookId,
        expected: Option<u64>,
    ) -> Result<StoredWebhook, WebhookStoreError>;

    /// The webhooks of `account` that pass `filter`, lowest id first, one [`Page`] at a
    /// time, with how many pass in all.
    async fn list(
        &self,
        account: AccountId,
        filter: &WebhookFilter,
        page: Page,
    ) -> Result<WebhookPage, WebhookStoreError>;

    /// Up to `limit` changes after change number `after` (0: from the first), in order.
    /// A reader keeps the last `seq` it saw and asks again from there.
    async fn changes(&self, after: u64, limit: usize) -> Result<Vec<Change>, WebhookStoreError>;

    /// The number of the latest change (0 when there is none): where a reader that has just
    /// loaded everything starts following the feed.
    async fn last_change(&self) -> Result<u64, WebhookStoreError>;

    /// Every webhook of every account with an id above `after` (`None`: from the lowest),
    /// lowest id first, at most `limit`: what [`Registries`] loads in full (after reading
    /// [`last_change`](WebhookStore::last_change)) before following the feed.
    async fn all_after(
        &self,
        after: Option<WebhookId>,
        limit: usize,
    ) -> Result<Vec<StoredWebhook>, WebhookStoreError>;

    /// The most webhooks an account may have.
    fn max_webhooks(&self) -> u32 {
        DEFAULT_MAX_WEBHOOKS
    }

    /// Switches webhook `id` of `account` off for `reason` — what a worker's
    /// [`OutcomeSink`](crate::OutcomeSink) writes back when a delivery ends
    /// [`Gone`](crate::FinalOutcome::Gone) (410) or the health rule says so — whatever its
    /// version: a read, [`Webhook::deactivate`], and an update with the version read, read
    /// again and retried when someone changed it in between (at most 8 times; then the
    /// [`Conflict`](WebhookStoreError::Conflict)).
    ///
    /// The reason follows [`Webhook::deactivate`]'s rule (a 410 is never replaced; a
    /// failing streak never replaces a manual switch-off). A webhook already off for the
    /// reason that would be kept is returned as stored, with no update and no change in
    /// the feed. Like any switch-off through [`update`](WebhookStore::update), it cancels
    /// the webhook's pending deliveries in the same store.
    async fn deactivate(
        &self,
        account: AccountId,
        id: WebhookId,
        reason: crate::Deactivation,
    ) -> Result<StoredWebhook, WebhookStoreError> {
        let mut stored = self.get(account, id).await?;
        let mut conflicts = 0;
        loop {
            let mut webhook = stored.webhook.clone();
            webhook.deactivate(reason);
            if webhook.deactivation() == stored.webhook.deactivation() {
                return Ok(stored);
            }
            match self.update(account, id, stored.version, webhook).await {
                Err(WebhookStoreError::Conflict { current, .. }) if conflicts < 8 => {
                    conflicts += 1;
                    stored = *current;
                }
                done => return done,
            }
        }
    }
}

macro_rules! forward_webhook_store {
    ($($wrapper:ty),*) => {$(
        #[async_trait::async_trait]
        impl<T: WebhookStore + ?Sized> WebhookStore for $wrapper {
            async fn create(
                &self,
                account: AccountId,
                webhook: Webhook,
            ) -> Result<StoredWebhook, WebhookStoreError> {
                (**self).create(account, webhook).await
            }
            async fn get(
                &self,
                account: AccountId,
                id: WebhookId,
            ) -> Result<StoredWebhook, WebhookStoreError> {
                (**self).get(account, id).await
            }
            async fn update(
                &self,
                account: AccountId,
                id: WebhookId,
                expected: u64,
                webhook: Webhook,
            ) -> Result<StoredWebhook, WebhookStoreError> {
                (**self).update(account, id, expected, webhook).await
            }
            async fn delete(
                &self,
                account: AccountId,
                id: WebhookId,
                expected: Option<u64>,
            ) -> Result<StoredWebhook, WebhookStoreError> {
                (**self).delete(account, id, expected).await
            }
            async fn list(
                &self,
                account: AccountId,
                filter: &WebhookFilter,
                page: Page,
            ) -> Result<WebhookPage, WebhookStoreError> {
                (**self).list(account, filter, page).await
            }
            async fn changes(
                &self,
                after: u64,
                limit: usize,
            ) -> Result<Vec<Change>, WebhookStoreError> {
                (**self).changes(after, limit).await
            }
            async fn last_change(&self) -> Result<u64, WebhookStoreError> {
                (**self).last_change().await
            }
            async fn all_after(
                &self,
                after: Option<WebhookId>,
                limit: usize,
            ) -> Result<Vec<StoredWebhook>, WebhookStoreError> {
                (**self).all_after(after, limit).await
            }
            fn max_webhooks(&self) -> u32 {
                (**self).max_webhooks()
            }
        }
    )*};
}

forward_webhook_store!(&T, Box<T>, std::sync::Arc<T>);
