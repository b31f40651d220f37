//! The [`Outbox`]: publish an event durably — the store's twin of
//! [`Dispatcher::dispatch`](crate::Dispatcher::dispatch).
//!
//! [`Outbox::publish`] matches the event against a [`Registry`], encodes its body once,
//! gives each matching webhook a [`Delivery`] with a random, unpredictable 128-bit id (the
//! same on every attempt; receivers use it to drop repeats), and stores them all in one
//! call: one body, many deliveries. It sends nothing: [`Worker`](crate::Worker)s do, from
//! the store, in this process or others. When `publish` returns, the deliveries are in the
//! store and survive a crash.
//!
//! With PostgreSQL, [`Outbox::prepare`] builds the same [`NewEvent`] without storing it,
//! for `PostgresStore::enqueue_in` inside the transaction of the business change.
//!
//! ```
//! use posthook::{DeliveryStore, Event, EventKind, MemoryStore, Outbox, Registry, Source, Webhook};
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let mut registry = Registry::new();
//! for n in 0..3 {
//!     registry.insert(Webhook::builder(format!("hook {n}"), "https://example.com/hook")
//!         .events([EventKind::Subscribe]).sources(Source::ALL).build()?);
//! }
//! let outbox = Outbox::new(MemoryStore::new());
//! let published = outbox.publish(&registry, &Event::sample(EventKind::Subscribe)).await?;
//! assert_eq!(published.deliveries.len(), 3);
//! let counts = outbox.store().counts(None).await?;
//! assert_eq!((counts.pending, counts.bodies), (3, 1)); // three deliveries, one body
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

use crate::store::{DeliveryStore, EventId, NewEvent, StoreError, random_u128};
use crate::worker::Wakeup;
use crate::{
    CancelReason, Deactivation, Delivery, DeliveryId, Event, Registry, RetryPolicy, Webhook,
    WebhookId,
};

mod group;

use self::group::GroupCommit;

/// Publishes events into a [`DeliveryStore`]: matches, encodes once, stores one
/// [`Delivery`] per matching webhook with a random id. See the crate docs,
/// [*Durable delivery*](crate#durable-delivery).
#[derive(Debug, Clone)]
pub struct Outbox<S> {
    store: S,
    policy: RetryPolicy,
    wakeup: Wakeup,
    commits: Arc<GroupCommit>,
}

/// What [`Outbox::publish`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The event's id in the store (the key of its one body).
    pub event: EventId,
    /// One delivery per matching webhook, in the order [`Registry::matches`] gave them.
    pub deliveries: Vec<DeliveryId>,
}

impl<S> Outbox<S> {
    /// An outbox over `store`, with [`RetryPolicy::default`] for its deliveries.
    pub fn new(store: S) -> Outbox<S> {
        Outbox {
            store,
            policy: RetryPolicy::default(),
            wakeup: Wakeup::new(),
            commits: Arc::default(),
        }
    }

    /// The retry policy every delivery published from now on carries (stored with it),
    /// unless its webhook has its own ([`Webhook::retry_policy`](crate::Webhook::retry_policy)).
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The bell rung on every publish: hand a clone to the [`Worker`](crate::Worker)s of
    /// this process ([`Worker::wakeup`](crate::Worker::wakeup)).
    pub fn wakeup(&self) -> &Wakeup {
        &self.wakeup
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// How many commits [`publish`](Outbox::publish) has made through this outbox and its
    /// clones: fewer than the calls when concurrent calls shared commits.
    pub fn group_commits(&self) -> u64 {
        self.commits.commits()
    }

    /// The event as it would be stored: its body encoded once, one fresh [`Delivery`] per
    /// matching webhook (none when nothing matches), with the webhook's own retry policy or
    /// the outbox's. Store it yourself — e.g. with
    /// `PostgresStore::enqueue_in` in your transaction — then ring
    /// [`wakeup`](Outbox::wakeup).
    pub fn prepare(&self, registry: &Registry, event: &Event) -> Result<NewEvent, StoreError> {
        let mut new = NewEvent::new(EventId::random()?, event.kind(), bytes::Bytes::new());
        let mut hooks = registry.matches(event).peekable();
        if hooks.peek().is_none() {
            return Ok(new);
        }
        new = NewEvent::new(new.id(), event.kind(), event.encode());
        for hook in hooks {
            let id = DeliveryId::new(random_u128()?);
            // The webhook's own policy, as `Dispatcher::dispatch` uses it, else the outbox's.
            let policy = hook.retry_policy().unwrap_or(&self.policy).clone();
            new.push_paced(
                Delivery::new(id, hook.id(), policy),
                hook.url().clone(),
                hook.pacing(),
            );
        }
        Ok(new)
    }
}

impl<S: DeliveryStore> Outbox<S> {
    /// Stores `event`'s deliveries to every webhook of `registry` that must receive it
    /// ([`Registry::matches`]), with one shared body, and wakes this process's workers.
    /// Nothing is stored when nothing matches. When it returns `Ok`, the deliveries are
    /// committed.
    ///
    /// **Group commit.** Concurrent calls (from many tasks, on this outbox or its clones)
    /// share commits: while one commit is in flight, whatever arrives is queued and goes
    /// into the next one, up to 1,024 events or 65,536 deliveries per commit, each caller
    /// returning once the commit holding its own event is over, with that commit's result.
    /// A lone caller commits at once (nothing waits for company). No task is spawned: the
    /// waiting callers drive the commits. A call whose future is dropped before it returns
    /// may or may not have stored its event. For many events at hand, use
    /// [`publish_all`](Outbox::publish_all); inside your own transaction, `prepare` and
    /// `PostgresStore::enqueue_in`.
    pub async fn publish(
        &self,
        registry: &Registry,
        event: &Event,
    ) -> Result<Published, StoreError> {
        let new = self.prepare(registry, event)?;
        self.submit(new).await
    }

    /// Commits a prepared event with whatever else is being published (group commit).
    async fn submit(&self, new: NewEvent) -> Result<Published, StoreError> {
        let published = Published {
            event: new.id(),
            deliveries: new.deliveries().iter().map(|d| d.delivery.id()).collect(),
        };
        if !published.deliveries.is_empty() {
            self.commits.submit(&self.store, new).await?;
            self.wakeup.notify();
        }
        Ok(published)
    }

    /// [`publish`](Outbox::publish) for `account`: `event` is matched against that
    /// account's webhooks only, in `registries`, and its deliveries are the account's
    /// ([`DeliveryStore::recent_for_account`], [`DeliveryStore::counts_for_account`]) (kept current from a
    /// [`WebhookStore`](crate::WebhookStore): [`Registries::follow`](crate::Registries::follow)).
    /// The registry is read under its lock only while the event is matched and encoded;
    /// the commit waits without it.
    pub async fn publish_for(
        &self,
        registries: &crate::Registries,
        account: crate::AccountId,
        event: &Event,
    ) -> Result<Published, StoreError> {
        let mut new = registries.with(account, |registry| self.prepare(registry, event))?;
        new.set_account(account);
        self.submit(new).await
    }

    /// Publishes many events in one commit ([`DeliveryStore::enqueue_all`]: one transaction,
    /// all of them or none): one [`Published`] per event, in order (with no delivery for an
    /// event that matched nothing).
    pub async fn publish_all(
        &self,
        registry: &Registry,
        events: &[Event],
    ) -> Result<Vec<Published>, StoreError> {
        let mut prepared = Vec::with_capacity(events.len());
        let mut published = Vec::with_capacity(events.len());
        for event in events {
            let new = self.prepare(registry, event)?;
            published.push(Published {
                event: new.id(),
                deliveries: new.deliveries().iter().map(|d| d.delivery.id()).collect(),
            });
            if !new.deliveries().is_empty() {
                prepared.push(new);
            }
        }
        if !prepared.is_empty() {
            self.store.enqueue_all(&prepared).await?;
            self.wakeup.notify();
        }
        Ok(published)
    }

    /// Switches webhook `id` off in `registry` (`reason`: by hand, 410, health) and cancels
    /// its pending deliveries in the store ([`DeliveryStore::cancel`]), in that order: from
    /// the return on, no publish through `registry` matches it and no worker claims one of
    /// its deliveries (an attempt already in flight may finish, and is recorded). Returns
    /// how many deliveries were cancelled. Switching it on again
    /// ([`Registry::set_active`]) does not bring them back: [`recover`](Outbox::recover)
    /// does.
    ///
    /// Persist the registry change as you persist your webhooks; with the webhook unknown
    /// to `registry`, only the store's deliveries are cancelled.
    pub async fn switch_off(
        &self,
        registry: &mut Registry,
        id: WebhookId,
        reason: Deactivation,
    ) -> Result<u64, StoreError> {
        registry.deactivate(id, reason);
        self.store
            .cancel(id, CancelReason::SwitchedOff(reason))
            .await
    }

    /// Deletes webhook `id`: removes it from `registry` and cancels its pending deliveries
    /// ([`CancelReason::Deleted`]); its delivery log stays in the store until
    /// [pruning](DeliveryStore::prune). Returns the webhook (if `registry` held it) and how
    /// many deliveries were cancelled.
    pub async fn delete(
        &self,
        registry: &mut Registry,
        id: WebhookId,
    ) -> Result<(Option<Webhook>, u64), StoreError> {
        let removed = registry.remove(id);
        let cancelled = self.store.cancel(id, CancelReason::Deleted).await?;
        Ok((removed, cancelled))
    }

    /// Sends delivery `id` again ([`DeliveryStore::resend`]) and wakes this process's
    /// workers; the new delivery's id.
    pub async fn resend(&self, id: DeliveryId) -> Result<DeliveryId, StoreError> {
        let new = self.store.resend(id).await?;
        self.wakeup.notify();
        Ok(new)
    }

    /// Resends every delivery of `webhook` that ended failed, given up or cancelled since
    /// `since` ([`DeliveryStore::recover`]) and wakes this process's workers; the new
    /// deliveries' ids.
    pub async fn recover(
        &self,
        webhook: WebhookId,
        since: std::time::SystemTime,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        let new = self.store.recover(webhook, since).await?;
        if !new.is_empty() {
            self.wakeup.notify();
        }
        Ok(new)
    }
}
