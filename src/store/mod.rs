//! Durable delivery: the [`DeliveryStore`] contract, and the stores that keep deliveries
//! between attempts.
//!
//! A store holds every delivery from before its first attempt until pruning, long after its
//! final outcome: a killed process loses none, at worst repeats an attempt (the delivery id
//! lets receivers drop the repeat). The [`Outbox`](crate::Outbox) puts events in, the
//! [`Worker`](crate::Worker) takes deliveries out, makes the attempts and puts the results
//! back; an application reads the store as its "delivery log".
//!
//! | store | feature | for |
//! |---|---|---|
//! | [`MemoryStore`] | — | tests, small apps that may lose the queue on exit |
//! | `SqliteStore` | `sqlite` | one process: one file, no server |
//! | `PostgresStore` | `postgres` | many workers on many machines; enqueue in your own transaction |
//!
//! The contract, the same for every store:
//!
//! - **One body per event.** [`enqueue`](DeliveryStore::enqueue) stores a [`NewEvent`]: its
//!   body once, and each of its deliveries pointing at it. Enqueueing the same delivery ids
//!   again changes nothing.
//! - **Claims are leases.** [`claim`](DeliveryStore::claim) hands out up to `max` due
//!   deliveries, each with a [`Claim`] (its id and a fresh [`ClaimToken`]) and its body; until
//!   the lease ends no other claim gets it, after that anyone's may (and
//!   [`Claimed::lapsed`] says so: the lapsed attempt counts).
//! - **Finishing needs the token.** [`finish`](DeliveryStore::finish) records the attempt:
//!   [`Step::Retry`] makes the delivery due again `after` from now, [`Step::Done`] stores its
//!   final outcome. A stale token (the lease ran out and someone else claimed it) changes
//!   nothing and says so: [`Finished::Stale`].
//! - **The store's clock.** Due times and leases are read and set by the store's clock
//!   (PostgreSQL's `now()`, SQLite's `julianday('now')`, the [`Clock`] of a [`MemoryStore`]),
//!   never a worker's; [`Claimed::age`] is "now − created" on that clock, the `at` to pass to
//!   [`Dispatcher::attempt`](crate::Dispatcher::attempt).
//! - **Errors are values.** A database that goes away, a row that does not decode, an
//!   unknown id: a [`StoreError`], never a panic.
//! - **The same at the edges.** A wait (the `after` of a [`Step::Retry`]) or a lease
//!   longer than [`MAX_WAIT`](crate::MAX_WAIT) (365 days) is clamped to it — never a panic,
//!   never a refused finish — so `due_at` is at most a year ahead. Any error text is kept:
//!   attempt errors and failure reasons of any length, in any script, with any character;
//!   the one exception is NUL (`U+0000`), which PostgreSQL cannot hold in `jsonb`, so the
//!   `PostgresStore` stores it as `U+FFFD` (the memory and SQLite stores keep it).
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::StatusCode;
//! use posthook::{
//!     AttemptOutcome, Delivery, DeliveryId, DeliveryState, DeliveryStore, EventId, EventKind,
//!     Finished, MemoryStore, NewEvent, RetryPolicy, WebhookId, WebhookUrl,
//! };
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let store = MemoryStore::new();
//! let url = WebhookUrl::parse("https://crm.example.com/hook")?;
//! let mut event = NewEvent::new(EventId::new(1), EventKind::Subscribe, Bytes::from_static(b"type=subscribe"));
//! let delivery = Delivery::new(DeliveryId::new(7), Some(WebhookId::new(3)), RetryPolicy::default());
//! event.push(delivery, url.clone());
//! assert_eq!(store.enqueue(&event).await?, 1);
//! assert_eq!(store.enqueue(&event).await?, 0); // the same ids again: nothing changes
//!
//! // A worker claims it for 30 s, makes the attempt, records it.
//! let mut claimed = store.claim(10, Duration::from_secs(30)).await?;
//! let mut job = claimed.pop().unwrap();
//! let step = job.delivery.record(AttemptOutcome::Status(StatusCode::OK), job.age);
//! assert_eq!(store.finish(&job.claim, &job.delivery, &step).await?, Finished::Done);
//!
//! let record = store.delivery(DeliveryId::new(7)).await?;
//! assert_eq!(record.state, DeliveryState::Delivered);
//! assert_eq!(record.delivery.attempts().len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The per-account in-flight limit
//!
//! Besides each webhook's [`Pacing`] (its own in-flight limit, rate, order), every store
//! bounds how many deliveries of one **account** are leased at once: at most
//! `max_in_flight_per_account` (default [`DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT`], set with
//! `with_max_in_flight_per_account` on [`MemoryStore`], `SqliteStore` and `PostgresStore`),
//! across every claim of the store — every worker, and for a shared database every process.
//! One account's backlog therefore holds at most that many of the workers' slots, and the
//! due deliveries of the other accounts are claimed meanwhile. A finish (or a lease that
//! lapses) frees a slot for the account's next due delivery.
//!
//! - It counts the deliveries **to a webhook** that were published for an account
//!   ([`NewDelivery::account`], [`Outbox::publish_for`](crate::Outbox::publish_for));
//!   deliveries without an account, or without a webhook, are not limited by it.
//! - A webhook belongs to one account: its lane (the per-webhook queue the claims take
//!   turns over) knows that account, from its latest enqueue that named one.
//! - A delivery cancelled while its attempt is in flight keeps its slot until its finish,
//!   as for the webhook's own limit.
//! - PostgreSQL keeps one row per account (`posthook_accounts`), locked
//!   `FOR UPDATE SKIP LOCKED` by the claim that leases for it, so concurrent claimers
//!   never count from a stale snapshot; SQLite claims in one write transaction; the memory
//!   store under its lock.

use std::error::Error as StdError;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::{
    CancelReason, Delivery, DeliveryId, EventKind, FinalOutcome, Pacing, Step, WebhookId,
    WebhookUrl,
};

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use self::sql::error as sql_error;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use self::memory::{Clock, ManualClock, MemoryStore, SystemClock};
#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresOptions, PostgresStore};
#[cfg(feature = "sqlite")]
pub use self::sqlite::{Durability, SqliteStore};

/// The default most deliveries of one account that a store's claims lease at once: 32
/// (`with_max_in_flight_per_account` on each store changes it; see the
/// [module docs](self#the-per-account-in-flight-limit)).
pub const DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT: u32 = 32;

/// Keeps deliveries between attempts: the durable queue under an [`Outbox`](crate::Outbox)
/// and its [`Worker`](crate::Worker)s, and the delivery log of an application.
///
/// See the [module docs](self) for the contract every implementation keeps. All methods take
/// `&self` and may be called concurrently, from many workers (and, for a shared database,
/// from many processes).
#[async_trait::async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Stores `event`: its body once, and every delivery of it that is not stored yet (by
    /// id), due at once. Returns how many deliveries were new; enqueueing the same ids again
    /// returns `0` and changes nothing.
    async fn enqueue(&self, event: &NewEvent) -> Result<usize, StoreError>;

    /// [`enqueue`](DeliveryStore::enqueue) for many events at once; returns how many
    /// deliveries were new, in all. The three stores of this crate store the whole batch in
    /// one transaction (all of it or, on an error, none of it): one commit for many events,
    /// which is what [`Outbox::publish_all`](crate::Outbox::publish_all) and the group
    /// commit of [`Outbox::publish`](crate::Outbox::publish) rely on. The default enqueues
    /// them one by one (an error may then leave the first ones stored; enqueueing the same
    /// ids again is harmless).
    async fn enqueue_all(&self, events: &[NewEvent]) -> Result<usize, StoreError> {
        let mut new = 0usize;
        for event in events {
            new = new.saturating_add(self.enqueue(event).await?);
        }
        Ok(new)
    }

    /// Leases up to `max` due deliveries to the caller until `lease` from now (the store's
    /// now), each with its body, applying each webhook's [`Pacing`]: no webhook beyond its
    /// in-flight limit (live leases, whoever holds them) or its rate, an ordered webhook's
    /// head only, and the webhooks with due work taken in turn (the one served longest ago
    /// first, an equal share each, then the rest); within a webhook, the earliest due first. Deliveries whose lease ran out are
    /// due again ([`Claimed::lapsed`]). An empty list when nothing is due.
    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Claimed>, StoreError>;

    /// Records what the attempt of a claimed delivery gave: `delivery` as it is after
    /// [`Delivery::record`] (or [`Delivery::fail`]), and `step`, what that returned.
    /// [`Step::Retry`] makes it due `after` from now; [`Step::Done`] stores the final
    /// outcome (the delivery must then be over). The lease ends either way.
    ///
    /// With a stale claim (its lease ran out and another claim took the delivery, or it was
    /// already finished) nothing changes: [`Finished::Stale`]. An id the store does not hold
    /// is [`StoreError::UnknownDelivery`].
    async fn finish(
        &self,
        claim: &Claim,
        delivery: &Delivery,
        step: &Step,
    ) -> Result<Finished, StoreError>;

    /// [`finish`](DeliveryStore::finish) for many deliveries at once, one result per
    /// [`Finish`], in order. The default finishes them one by one; the SQLite and
    /// PostgreSQL stores commit a whole batch at once (the [`Worker`](crate::Worker)
    /// finishes whatever attempts ended while its previous batch was being committed).
    async fn finish_all(&self, batch: &[Finish]) -> Vec<Result<Finished, StoreError>> {
        let mut results = Vec::with_capacity(batch.len());
        for f in batch {
            results.push(self.finish(&f.claim, &f.delivery, &f.step).await);
        }
        results
    }

    /// One delivery with its attempts, for a "delivery log" page;
    /// [`StoreError::UnknownDelivery`] when there is none with that id (or it was pruned).
    async fn delivery(&self, id: DeliveryId) -> Result<DeliveryRecord, StoreError>;

    /// The deliveries of one webhook, newest first, one [`Page`] at a time.
    async fn recent(
        &self,
        webhook: WebhookId,
        page: Page,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// How many deliveries are in each state: of one webhook, or of all (`None`).
    async fn counts(&self, webhook: Option<WebhookId>) -> Result<StoreCounts, StoreError>;

    /// Removes the deliveries that ended more than `older_than` ago (by the store's clock),
    /// and the bodies no delivery uses any more. Deliveries still pending are never removed.
    async fn prune(&self, older_than: Duration) -> Result<Pruned, StoreError>;

    /// The deliveries published for `account` (of every webhook of it, deleted ones too),
    /// newest first, one [`Page`] at a time: an account's delivery log.
    ///
    /// The default refuses ([`StoreError::Unsupported`]); the three stores of this crate
    /// implement it.
    async fn recent_for_account(
        &self,
        account: crate::AccountId,
        page: Page,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let _ = (account, page);
        Err(StoreError::Unsupported("recent_for_account"))
    }

    /// How many deliveries published for `account` are in each state (`bodies`: the whole
    /// store's, as in [`counts`](DeliveryStore::counts)).
    ///
    /// The default refuses ([`StoreError::Unsupported`]).
    async fn counts_for_account(
        &self,
        account: crate::AccountId,
    ) -> Result<StoreCounts, StoreError> {
        let _ = account;
        Err(StoreError::Unsupported("counts_for_account"))
    }

    /// Cancels every pending delivery of `webhook` (it was switched off or deleted): each
    /// ends [`FinalOutcome::Cancelled`] with `reason`, now, by the store's clock; returns
    /// how many. From the commit on, no claim hands one out. A delivery leased to a worker
    /// at that moment is cancelled too, and keeps its lease: if its attempt is in flight,
    /// the finish records it ([`Finished::Cancelled`], or [`Finished::Done`] with the
    /// attempt's outcome if it ended the delivery). Deliveries enqueued later are not
    /// affected: stop publishing to the webhook first (switch it off in the registry), as
    /// [`Outbox::switch_off`](crate::Outbox::switch_off) does.
    ///
    /// The default refuses ([`StoreError::Unsupported`]); the three stores of this crate
    /// implement it.
    async fn cancel(&self, webhook: WebhookId, reason: CancelReason) -> Result<u64, StoreError> {
        let _ = (webhook, reason);
        Err(StoreError::Unsupported("cancel"))
    }

    /// Sends delivery `id`'s event to its webhook again: a new pending delivery with a new
    /// id, due at once, with the same body, URL, retry policy and pacing, linked to the
    /// first ([`DeliveryRecord::resent_from`]). Receivers see the first delivery's id
    /// ([`Delivery::message_id`], and why). Any state may be resent; the new id is
    /// returned. [`StoreError::UnknownDelivery`] for an id the store does not hold.
    ///
    /// The default refuses ([`StoreError::Unsupported`]).
    async fn resend(&self, id: DeliveryId) -> Result<DeliveryId, StoreError> {
        let _ = id;
        Err(StoreError::Unsupported("resend"))
    }

    /// Resends ([`resend`](DeliveryStore::resend)) every delivery of `webhook` that ended
    /// [`Failed`](DeliveryState::Failed), [`GaveUp`](DeliveryState::GaveUp) or
    /// [`Cancelled`](DeliveryState::Cancelled) at or after `since` (by the store's clock)
    /// and has not been resent yet, in one transaction; returns the new deliveries' ids, in
    /// the order the first ones were enqueued (the order an ordered webhook sends them in).
    /// A delivery cancelled while its attempt is still in flight is left out (that attempt
    /// may yet deliver it). For an endpoint whose owner fixed it: switch the webhook on again,
    /// then recover. Calling it again resends nothing twice.
    ///
    /// The default refuses ([`StoreError::Unsupported`]).
    async fn recover(
        &self,
        webhook: WebhookId,
        since: SystemTime,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        let _ = (webhook, since);
        Err(StoreError::Unsupported("recover"))
    }
}

macro_rules! forward_store {
    ($($wrapper:ty),*) => {$(
        #[async_trait::async_trait]
        impl<T: DeliveryStore + ?Sized> DeliveryStore for $wrapper {
            async fn enqueue(&self, event: &NewEvent) -> Result<usize, StoreError> {
                (**self).enqueue(event).await
            }
            async fn enqueue_all(&self, events: &[NewEvent]) -> Result<usize, StoreError> {
                (**self).enqueue_all(events).await
            }
            async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
                (**self).claim(max, lease).await
            }
            async fn finish(
                &self,
                claim: &Claim,
                delivery: &Delivery,
                step: &Step,
            ) -> Result<Finished, StoreError> {
                (**self).finish(claim, delivery, step).await
            }
            async fn finish_all(&self, batch: &[Finish]) -> Vec<Result<Finished, StoreError>> {
                (**self).finish_all(batch).await
            }
            async fn delivery(&self, id: DeliveryId) -> Result<DeliveryRecord, StoreError> {
                (**self).delivery(id).await
            }
            async fn recent(
                &self,
                webhook: WebhookId,
                page: Page,
            ) -> Result<Vec<DeliveryRecord>, StoreError> {
                (**self).recent(webhook, page).await
            }
            async fn counts(&self, webhook: Option<WebhookId>) -> Result<StoreCounts, StoreError> {
                (**self).counts(webhook).await
            }
            async fn prune(&self, older_than: Duration) -> Result<Pruned, StoreError> {
                (**self).prune(older_than).await
            }
            async fn cancel(
                &self,
                webhook: WebhookId,
                reason: CancelReason,
            ) -> Result<u64, StoreError> {
                (**self).cancel(webhook, reason).await
            }
            async fn recent_for_account(
                &self,
                account: crate::AccountId,
                page: Page,
            ) -> Result<Vec<DeliveryRecord>, StoreError> {
                (**self).recent_for_account(account, page).await
            }
            async fn counts_for_account(
                &self,
                account: crate::AccountId,
            ) -> Result<StoreCounts, StoreError> {
                (**self).counts_for_account(account).await
            }
            async fn resend(&self, id: DeliveryId) -> Result<DeliveryId, StoreError> {
                (**self).resend(id).await
            }
            async fn recover(
                &self,
                webhook: WebhookId,
                since: SystemTime,
            ) -> Result<Vec<DeliveryId>, StoreError> {
                (**self).recover(webhook, since).await
            }
        }
    )*};
}

forward_store!(&T, Box<T>, Arc<T>);

/// Why a store could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached: the database went away, the pool is closed or timed
    /// out, an I/O error, no randomness for a token. Worth retrying later.
    #[error("the delivery store is unavailable: {0}")]
    Unavailable(#[source] Arc<dyn StdError + Send + Sync>),
    /// The database refused a statement.
    #[error("database error: {0}")]
    Database(#[source] Arc<dyn StdError + Send + Sync>),
    /// A stored row does not decode (edited by hand, or written by a newer version).
    #[error("bad stored row {id}: {reason}")]
    Corrupt {
        /// The row's delivery or event id, as stored.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store holds no delivery with this id.
    #[error("unknown delivery {0}")]
    UnknownDelivery(DeliveryId),
    /// [`DeliveryStore::finish`] with a claim of one delivery and another delivery.
    #[error("claim for delivery {claim} finished with delivery {delivery}")]
    Mismatch {
        /// The claim's delivery.
        claim: DeliveryId,
        /// The delivery given.
        delivery: DeliveryId,
    },
    /// [`DeliveryStore::finish`] with a step that does not fit the delivery (a `Done` step
    /// for a delivery that is not over, or a `Retry` for one that is).
    #[error("delivery {0}: the step does not match the delivery's state")]
    InvalidStep(DeliveryId),
    /// The store does not implement this operation (a [`DeliveryStore`] of your own that
    /// keeps the trait's default).
    #[error("this delivery store does not support {0}")]
    Unsupported(&'static str),
    /// The database's schema was written by a newer version of posthook.
    #[error("the store's schema is version {found}; this posthook knows up to {supported}")]
    SchemaTooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this library knows.
        supported: i64,
    },
}

impl StoreError {
    /// A [`StoreError::Unavailable`] from any error.
    pub fn unavailable(error: impl Into<Box<dyn StdError + Send + Sync>>) -> StoreError {
        StoreError::Unavailable(Arc::from(error.into()))
    }

    /// A [`StoreError::Database`] from any error.
    pub fn database(error: impl Into<Box<dyn StdError + Send + Sync>>) -> StoreError {
        StoreError::Database(Arc::from(error.into()))
    }

    /// A [`StoreError::Corrupt`] for the row `id`.
    pub fn corrupt(id: impl fmt::Display, reason: impl fmt::Display) -> StoreError {
        StoreError::Corrupt {
            id: id.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Whether trying again later may succeed (the store was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// 128 random bits from the operating system.
pub(crate) fn random_u128() -> Result<u128, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        StoreError::unavailable(format!("no randomness from the operating system: {e}"))
    })?;
    Ok(u128::from_le_bytes(bytes))
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u128);

        impl $name {
            /// An id from its 128 bits.
            #[inline]
            pub const fn new(id: u128) -> $name {
                $name(id)
            }

            /// The id's 128 bits.
            #[inline]
            pub const fn get(self) -> u128 {
                self.0
            }

            /// A random id: 128 bits from the operating system.
            pub fn random() -> Result<$name, StoreError> {
                random_u128().map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:032x}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = crate::InvalidDeliveryId;

            /// 1 to 32 hex digits.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse::<DeliveryId>().map(|id| $name(id.get()))
            }
        }
    };
}

hex_id!(
    /// The id of one published event in a store: the key of its one stored body. Random
    /// 128 bits when the [`Outbox`](crate::Outbox) makes it; 32 hex digits when displayed.
    EventId
);

hex_id!(
    /// The proof that a lease is yours: fresh random 128 bits for every claim.
    ClaimToken
);

/// One delivery to store: the [`Delivery`] (id, webhook, policy) and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewDelivery {
    /// The delivery, not yet attempted.
    pub delivery: Delivery,
    /// Where it goes.
    pub url: WebhookUrl,
    /// How its webhook's deliveries are handed out (the store keeps the last one published
    /// per webhook). See [`Pacing`].
    pub pacing: Pacing,
    /// The account it was published for ([`Outbox::publish_for`](crate::Outbox::publish_for)),
    /// if any: [`DeliveryStore::recent_for_account`] and
    /// [`counts_for_account`](DeliveryStore::counts_for_account) read by it.
    pub account: Option<crate::AccountId>,
}

impl NewDelivery {
    /// A delivery of an event to `url`, with [`Pacing::UNLIMITED`] (the
    /// [`Outbox`](crate::Outbox) gives each delivery its webhook's pacing instead).
    pub fn new(delivery: Delivery, url: WebhookUrl) -> NewDelivery {
        NewDelivery {
            delivery,
            url,
            pacing: Pacing::UNLIMITED,
            account: None,
        }
    }

    /// For `account`.
    #[must_use]
    pub fn with_account(mut self, account: crate::AccountId) -> NewDelivery {
        self.account = Some(account);
        self
    }

    /// With `pacing`.
    #[must_use]
    pub fn with_pacing(mut self, pacing: Pacing) -> NewDelivery {
        self.pacing = pacing;
        self
    }
}

/// One event to store: its id, kind, its body (stored once) and its deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    id: EventId,
    kind: EventKind,
    body: Bytes,
    deliveries: Vec<NewDelivery>,
    account: Option<crate::AccountId>,
}

impl NewEvent {
    /// An event with no delivery yet.
    pub fn new(id: EventId, kind: EventKind, body: Bytes) -> NewEvent {
        NewEvent {
            id,
            kind,
            body,
            deliveries: Vec::new(),
            account: None,
        }
    }

    /// Adds a delivery of this event to `url`, with [`Pacing::UNLIMITED`] (and the event's
    /// account, if [`set_account`](NewEvent::set_account) named one).
    pub fn push(&mut self, delivery: Delivery, url: WebhookUrl) -> &mut NewEvent {
        self.push_paced(delivery, url, Pacing::UNLIMITED)
    }

    /// Adds a delivery of this event to `url`, its webhook paced by `pacing` (and the
    /// event's account, if [`set_account`](NewEvent::set_account) named one).
    pub fn push_paced(
        &mut self,
        delivery: Delivery,
        url: WebhookUrl,
        pacing: Pacing,
    ) -> &mut NewEvent {
        let mut new = NewDelivery::new(delivery, url).with_pacing(pacing);
        new.account = self.account;
        self.deliveries.push(new);
        self
    }

    /// Marks every delivery of the event as `account`'s: those pushed so far and those
    /// pushed after.
    pub fn set_account(&mut self, account: crate::AccountId) -> &mut NewEvent {
        self.account = Some(account);
        for d in &mut self.deliveries {
            d.account = Some(account);
        }
        self
    }

    /// The event's id in the store.
    #[inline]
    pub fn id(&self) -> EventId {
        self.id
    }

    /// Its kind.
    #[inline]
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// The form body, shared by every delivery.
    #[inline]
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Its deliveries.
    #[inline]
    pub fn deliveries(&self) -> &[NewDelivery] {
        &self.deliveries
    }
}

/// A lease on one delivery: the delivery's id and the claim's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Claim {
    /// The delivery.
    pub id: DeliveryId,
    /// The token of the claim that leased it.
    pub token: ClaimToken,
}

impl Claim {
    /// A claim of delivery `id` with `token`.
    pub const fn new(id: DeliveryId, token: ClaimToken) -> Claim {
        Claim { id, token }
    }
}

/// A delivery leased to the caller by [`DeliveryStore::claim`], with everything needed for
/// its next attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claimed {
    /// The lease: pass it to [`DeliveryStore::finish`].
    pub claim: Claim,
    /// The delivery with its attempts so far.
    pub delivery: Delivery,
    /// Where it goes.
    pub url: WebhookUrl,
    /// The event's body (shared with the other deliveries of the event in this claim).
    pub body: Bytes,
    /// The event's kind.
    pub kind: EventKind,
    /// How long ago it was enqueued, by the store's clock: the `at` of the attempt.
    pub age: Duration,
    /// Whether an earlier lease on it ran out without a finish (a worker died or stalled
    /// mid-attempt). The [`Worker`](crate::Worker) records that lapsed attempt before any
    /// other, so that it counts against the retry policy.
    pub lapsed: bool,
}

impl Claimed {
    /// A claimed delivery (for implementations of [`DeliveryStore`]).
    pub fn new(
        claim: Claim,
        delivery: Delivery,
        url: WebhookUrl,
        body: Bytes,
        kind: EventKind,
        age: Duration,
        lapsed: bool,
    ) -> Claimed {
        Claimed {
            claim,
            delivery,
            url,
            body,
            kind,
            age,
            lapsed,
        }
    }
}

/// One finish of a batch ([`DeliveryStore::finish_all`]): the claim, the delivery after
/// its attempt, and the step that attempt gave.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finish {
    /// The lease.
    pub claim: Claim,
    /// The delivery as it is after the attempt.
    pub delivery: Delivery,
    /// What the attempt gave.
    pub step: Step,
}

impl Finish {
    /// A finish of `claim` with `delivery` and `step`.
    pub fn new(claim: Claim, delivery: Delivery, step: Step) -> Finish {
        Finish {
            claim,
            delivery,
            step,
        }
    }
}

/// What [`DeliveryStore::finish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Finished {
    /// The attempt is recorded; the delivery is due again later.
    Retrying,
    /// The attempt and the final outcome are recorded.
    Done,
    /// Nothing changed: the claim is stale (the lease ran out and another claim took the
    /// delivery, or it was finished already).
    Stale,
    /// The delivery was cancelled while this attempt was in flight
    /// ([`DeliveryStore::cancel`]): the attempt is recorded and the delivery stays
    /// [`Cancelled`](DeliveryState::Cancelled), with no retry. (An attempt that ended the
    /// delivery — delivered, gone, failed — is recorded with that outcome instead, and the
    /// finish says [`Done`](Finished::Done).)
    Cancelled,
}

/// Where a stored delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryState {
    /// Waiting for an attempt (due, scheduled for later, or leased to a worker).
    Pending,
    /// Over: [`FinalOutcome::Delivered`].
    Delivered,
    /// Over: [`FinalOutcome::Gone`].
    Gone,
    /// Over: [`FinalOutcome::Failed`].
    Failed,
    /// Over: [`FinalOutcome::GaveUp`].
    GaveUp,
    /// Over: [`FinalOutcome::Cancelled`] (its webhook was switched off or deleted).
    Cancelled,
}

impl DeliveryState {
    /// Every state, in the order above.
    pub const ALL: [DeliveryState; 6] = [
        DeliveryState::Pending,
        DeliveryState::Delivered,
        DeliveryState::Gone,
        DeliveryState::Failed,
        DeliveryState::GaveUp,
        DeliveryState::Cancelled,
    ];

    /// The state of `delivery`.
    pub fn of(delivery: &Delivery) -> DeliveryState {
        match delivery.outcome() {
            None => DeliveryState::Pending,
            Some(FinalOutcome::Delivered { .. }) => DeliveryState::Delivered,
            Some(FinalOutcome::Gone) => DeliveryState::Gone,
            Some(FinalOutcome::GaveUp { .. }) => DeliveryState::GaveUp,
            Some(FinalOutcome::Cancelled { .. }) => DeliveryState::Cancelled,
            Some(_) => DeliveryState::Failed,
        }
    }

    /// The name stored in a database column: `pending`, `delivered`, `gone`, `failed`,
    /// `gave_up`, `cancelled`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Gone => "gone",
            DeliveryState::Failed => "failed",
            DeliveryState::GaveUp => "gave_up",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    /// The state named `name` (see [`as_str`](DeliveryState::as_str)).
    pub fn from_name(name: &str) -> Option<DeliveryState> {
        DeliveryState::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored delivery, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryRecord {
    /// The delivery: id, webhook, policy, every attempt, the final outcome once over.
    pub delivery: Delivery,
    /// Where it goes.
    pub url: WebhookUrl,
    /// The event it carries.
    pub event: EventId,
    /// The event's kind.
    pub kind: EventKind,
    /// Where it stands.
    pub state: DeliveryState,
    /// When it was enqueued (the store's clock).
    pub created_at: SystemTime,
    /// While pending, when it can next be claimed: the next attempt's time, or the end of
    /// the lease a worker holds. `None` once over.
    pub due_at: Option<SystemTime>,
    /// Whether a worker holds a lease on it that has not run out: a pending delivery being
    /// attempted, or one cancelled while its attempt was in flight.
    pub leased: bool,
    /// When it ended, once over.
    pub finished_at: Option<SystemTime>,
    /// For a pending delivery of an [ordered](Pacing::ordered) webhook that is not the
    /// head of its queue: the delivery it waits behind (the oldest pending one of that
    /// webhook), so that a log page can say why it has not been attempted.
    pub waiting_behind: Option<DeliveryId>,
    /// For a resend ([`DeliveryStore::resend`], [`DeliveryStore::recover`]): the delivery
    /// it sends again (also [`Delivery::resent_from`]).
    pub resent_from: Option<DeliveryId>,
    /// The account it was published for, if any ([`NewDelivery::account`]; a resend keeps
    /// it).
    pub account: Option<crate::AccountId>,
}

/// Which slice of a list to read: up to `limit` items after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Page {
    /// The most items to return.
    pub limit: usize,
    /// How many to skip.
    pub offset: usize,
}

impl Page {
    /// The first `limit` items.
    pub const fn first(limit: usize) -> Page {
        Page { limit, offset: 0 }
    }

    /// The page after this one.
    #[must_use]
    pub const fn next(self) -> Page {
        Page {
            limit: self.limit,
            offset: self.offset.saturating_add(self.limit),
        }
    }
}

/// How many deliveries are in each state ([`DeliveryStore::counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct StoreCounts {
    /// Waiting for an attempt (leased ones included).
    pub pending: u64,
    /// Delivered.
    pub delivered: u64,
    /// Gone (410).
    pub gone: u64,
    /// Failed without retry.
    pub failed: u64,
    /// Gave up after the policy's last attempt.
    pub gave_up: u64,
    /// Cancelled (the webhook was switched off or deleted).
    pub cancelled: u64,
    /// Stored bodies, one per event — of the whole store, whatever the webhook asked.
    pub bodies: u64,
}

impl StoreCounts {
    /// The count for `state`.
    pub fn get(&self, state: DeliveryState) -> u64 {
        match state {
            DeliveryState::Pending => self.pending,
            DeliveryState::Delivered => self.delivered,
            DeliveryState::Gone => self.gone,
            DeliveryState::Failed => self.failed,
            DeliveryState::GaveUp => self.gave_up,
            DeliveryState::Cancelled => self.cancelled,
        }
    }

    /// Adds `n` to the count of `state`.
    pub fn add(&mut self, state: DeliveryState, n: u64) {
        let slot = match state {
            DeliveryState::Pending => &mut self.pending,
            DeliveryState::Delivered => &mut self.delivered,
            DeliveryState::Gone => &mut self.gone,
            DeliveryState::Failed => &mut self.failed,
            DeliveryState::GaveUp => &mut self.gave_up,
            DeliveryState::Cancelled => &mut self.cancelled,
        };
        *slot = slot.saturating_add(n);
    }

    /// All deliveries, pending or over.
    pub fn total(&self) -> u64 {
        DeliveryState::ALL.iter().map(|s| self.get(*s)).sum()
    }
}

/// What [`DeliveryStore::prune`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct Pruned {
    /// Finished deliveries removed.
    pub deliveries: u64,
    /// Bodies removed (no delivery used them any more).
    pub bodies: u64,
}

/// The checks every store makes before a finish: the claim is for this delivery, the step
/// fits it. Returns the state to store and, for a retry, the wait (at most
/// [`MAX_WAIT`](crate::MAX_WAIT)).
pub(crate) fn check_finish(
    claim: &Claim,
    delivery: &Delivery,
    step: &Step,
) -> Result<(DeliveryState, Option<Duration>), StoreError> {
    if claim.id != delivery.id() {
        return Err(StoreError::Mismatch {
            claim: claim.id,
            delivery: delivery.id(),
        });
    }
    let state = DeliveryState::of(delivery);
    match (step, state) {
        (Step::Retry { after }, DeliveryState::Pending) => {
            Ok((state, Some((*after).min(crate::MAX_WAIT))))
        }
        (Step::Done(_), DeliveryState::Pending) | (Step::Retry { .. }, _) => {
            Err(StoreError::InvalidStep(delivery.id()))
        }
        (Step::Done(_), state) => Ok((state, None)),
    }
}

/// Whether [`DeliveryStore::recover`] resends a delivery that ended in `state`.
pub(crate) fn recoverable(state: DeliveryState) -> bool {
    matches!(
        state,
        DeliveryState::Failed | DeliveryState::GaveUp | DeliveryState::Cancelled
    )
}

/// A duration as whole microseconds, saturating.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The migrations a schema at `found` still needs, each with the version it brings the schema
/// to; [`StoreError::SchemaTooNew`] when the schema is past what `migrations` know.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn pending_migrations<'a>(
    migrations: &'a [&'a str],
    found: i64,
) -> Result<impl Iterator<Item = (i64, &'a str)> + 'a, StoreError> {
    let supported = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    let done = usize::try_from(found.max(0)).unwrap_or(0);
    Ok((1..=supported)
        .zip(migrations)
        .skip(done)
        .map(|(version, sql)| (version, *sql)))
}

/// A claim's lease, at most [`MAX_WAIT`](crate::MAX_WAIT): what every store leases for.
pub(crate) fn bounded_lease(lease: Duration) -> Duration {
    lease.min(crate::MAX_WAIT)
}

/// The time `since` after the epoch, saturating where [`SystemTime`] ends (platforms differ)
/// instead of panicking as `UNIX_EPOCH + since` would.
pub(crate) fn epoch_plus(since: Duration) -> SystemTime {
    add_saturating(SystemTime::UNIX_EPOCH, since)
}

/// `time + by`, or the latest time [`SystemTime`] holds on the way there.
pub(crate) fn add_saturating(time: SystemTime, by: Duration) -> SystemTime {
    if let Some(sum) = time.checked_add(by) {
        return sum;
    }
    // Past the end: go as far as it goes, halving the step each time one does not fit.
    let (mut time, mut step) = (time, by);
    while !step.is_zero() {
        match time.checked_add(step) {
            Some(next) => time = next,
            None => step /= 2,
        }
    }
    time
}
