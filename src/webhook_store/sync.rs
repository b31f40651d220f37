//! [`Registries`]: every account's [`Registry`], kept in step with a [`WebhookStore`].

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::{PoisonError, RwLock};
use std::task::Poll;
use std::time::Duration;

use super::{AccountId, ChangeKind, WebhookStore, WebhookStoreError};
use crate::{Registry, Timer, Wakeup, Webhook, WebhookId};

/// How many changes or webhooks one store call reads.
const BATCH: usize = 1_000;

/// The registry of every account, kept in step with a [`WebhookStore`]: [`load`] reads
/// everything once, [`refresh`] applies the changes since (one webhook at a time: no
/// rebuild, however many webhooks there are), and [`follow`] does so until told to stop —
/// at once when a [`Wakeup`] rings (`PostgresStore::listen_webhooks` rings one on every
/// change, in every process), else every poll interval — with a full check now and then.
///
/// Publishing reads it under a short read lock ([`Registries::with`], around
/// [`Outbox::prepare`](crate::Outbox::prepare)); applying a change takes the write lock for
/// that one webhook.
///
/// [`load`]: Registries::load
/// [`refresh`]: Registries::refresh
/// [`follow`]: Registries::follow
#[derive(Debug, Default)]
pub struct Registries {
    inner: RwLock<State>,
    /// Held for a whole `load` or `refresh`: one at a time, so that an older read never
    /// lands after a newer one.
    updating: futures_util::lock::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    by_account: HashMap<AccountId, Registry>,
    /// Which account each webhook is in.
    owner: HashMap<WebhookId, AccountId>,
    /// The last change applied.
    seq: u64,
}

/// An empty registry, for accounts that have none.
static EMPTY: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(Registry::new);

impl Registries {
    /// No account, nothing loaded.
    pub fn new() -> Registries {
        Registries::default()
    }

    /// Runs `f` on `account`'s registry (an empty one if it has no webhook), under the read
    /// lock: keep `f` short and do not await in it.
    pub fn with<R>(&self, account: AccountId, f: impl FnOnce(&Registry) -> R) -> R {
        let state = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        f(state.by_account.get(&account).unwrap_or(&EMPTY))
    }

    /// How many webhooks, of every account.
    pub fn len(&self) -> usize {
        self.read().owner.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of the last change applied.
    pub fn seq(&self) -> u64 {
        self.read().seq
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads every webhook of every account from `store`, replacing what was held, and
    /// notes the change it is current as of. Built aside and swapped in at once: publishing
    /// goes on meanwhile against the previous registries.
    pub async fn load<S: WebhookStore + ?Sized>(&self, store: &S) -> Result<(), WebhookStoreError> {
        let _updating = self.updating.lock().await;
        let seq = store.last_change().await?;
        let mut state = State {
            seq,
            ..State::default()
        };
        let mut after = None;
        // Each account's webhooks gathered first, then its registry built in bulk
        // (`collect()`: each posting list made once, at its exact size).
        let mut gathered: HashMap<AccountId, Vec<Webhook>> = HashMap::new();
        loop {
            let page = store.all_after(after, BATCH).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id());
            let full = page.len() == BATCH;
            for stored in page {
                state.owner.insert(stored.id(), stored.account);
                gathered
                    .entry(stored.account)
                    .or_default()
                    .push(stored.webhook);
            }
            if !full {
                break;
            }
        }
        state.by_account = gathered
            .into_iter()
            .map(|(account, hooks)| (account, hooks.into_iter().collect()))
            .collect();
        *self.write() = state;
        // Changes made while loading: applying them again is harmless.
        self.apply_changes(store).await?;
        Ok(())
    }

    /// Applies the changes made since the last one applied (each webhook read again from
    /// the store, so that a change applied twice does no harm); how many it applied.
    pub async fn refresh<S: WebhookStore + ?Sized>(
        &self,
        store: &S,
    ) -> Result<usize, WebhookStoreError> {
        let _updating = self.updating.lock().await;
        self.apply_changes(store).await
    }

    /// [`refresh`](Registries::refresh), its lock held.
    async fn apply_changes<S: WebhookStore + ?Sized>(
        &self,
        store: &S,
    ) -> Result<usize, WebhookStoreError> {
        let mut applied = 0;
        loop {
            let after = self.seq();
            let changes = store.changes(after, BATCH).await?;
            let Some(last) = changes.last().map(|c| c.seq) else {
                return Ok(applied);
            };
            let full = changes.len() == BATCH;
            // The latest change of each webhook is enough.
            let mut latest: Vec<(AccountId, WebhookId, ChangeKind)> = Vec::new();
            let mut seen = HashMap::new();
            for change in changes.iter().rev() {
                if seen.insert(change.id, ()).is_none() {
                    latest.push((change.account, change.id, change.kind));
                }
            }
            for (account, id, kind) in latest {
                let now = match kind {
                    ChangeKind::Deleted => None,
                    _ => match store.get(account, id).await {
                        Ok(stored) => Some(stored),
                        Err(WebhookStoreError::NotFound { .. }) => None,
                        Err(other) => return Err(other),
                    },
                };
                let mut state = self.write();
                if let Some(owner) = state.owner.remove(&id) {
                    if let Some(registry) = state.by_account.get_mut(&owner) {
                        registry.remove(id);
                    }
                }
                if let Some(stored) = now {
                    state.owner.insert(id, stored.account);
                    state
                        .by_account
                        .entry(stored.account)
                        .or_default()
                        .insert(stored.webhook);
                }
                applied += 1;
            }
            {
                let mut state = self.write();
                state.seq = state.seq.max(last);
                state.by_account.retain(|_, registry| !registry.is_empty());
            }
            if !full {
                return Ok(applied);
            }
        }
    }

    /// Keeps the registries in step with `store` until `shutdown` completes: loads
    /// everything, then applies the changes whenever `wakeup` rings (if given) or `poll`
    /// has passed, and loads everything again every `full_check` (a safety net for a feed
    /// a process missed). Errors do not stop it: it tries again at the next turn. Waits
    /// through `timer`.
    pub async fn follow<S: WebhookStore + ?Sized>(
        &self,
        store: &S,
        timer: &dyn Timer,
        poll: Duration,
        full_check: Duration,
        wakeup: Option<&Wakeup>,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut shutdown = pin!(shutdown);
        let mut loaded = self.load(store).await.is_ok();
        let mut since_full = Duration::ZERO;
        loop {
            let seen = wakeup.map(Wakeup::rung);
            let sleep = timer.sleep(poll);
            let mut sleep = pin!(sleep);
            let stop = poll_fn(|cx| {
                if shutdown.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(true);
                }
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(false);
                }
                match (wakeup, seen) {
                    (Some(bell), Some(seen)) => bell.poll_rung(seen, cx).map(|()| false),
                    _ => Poll::Pending,
                }
            })
            .await;
            if stop {
                return;
            }
            since_full = since_full.saturating_add(poll);
            if !loaded || since_full >= full_check {
                loaded = self.load(store).await.is_ok();
                since_full = Duration::ZERO;
            } else {
                let _ = self.refresh(store).await;
            }
        }
    }
}
