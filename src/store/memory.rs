//! [`MemoryStore`]: the store in a process's memory, for tests and small apps.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{
    Claim, ClaimToken, Claimed, DeliveryRecord, DeliveryState, DeliveryStore, EventId, Finished,
    NewEvent, Page, Pruned, StoreCounts, StoreError, check_finish,
};
use crate::{Delivery, DeliveryId, EventKind, Step, WebhookId, WebhookUrl};

/// The clock a [`MemoryStore`] reads for due times and leases.
pub trait Clock: Send + Sync {
    /// The time now.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock ([`SystemTime::now`]).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SystemClock;

impl SystemClock {
    /// The clock.
    pub const fn new() -> SystemClock {
        SystemClock
    }
}

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told: for tests of leases and retries without sleeping.
/// Clones share the same time.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use posthook::{Clock, ManualClock};
///
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_030));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: SystemTime) -> ManualClock {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock `by` forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Default for ManualClock {
    /// A clock standing at 2025-01-01T00:00:00Z.
    fn default() -> Self {
        ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_735_689_600))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every delivery in a process's memory, behind one mutex: for tests (with a
/// [`ManualClock`], leases and retries run without sleeping) and small apps that accept
/// losing the queue when the process exits. Clones share the same store.
///
/// Claims take the earliest due first, in `O(log n)` each; the per-webhook log is kept in
/// enqueue order.
///
/// ```
/// use posthook::{ManualClock, MemoryStore};
///
/// let clock = ManualClock::default();
/// let store = MemoryStore::with_clock(clock.clone());
/// # let _ = store;
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryStore")
            .field("deliveries", &inner.entries.len())
            .field("bodies", &inner.bodies.len())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<DeliveryId, Entry>,
    bodies: HashMap<EventId, Body>,
    /// Pending deliveries by the time they can be claimed (due, or lease end).
    queue: BTreeSet<(Duration, DeliveryId)>,
    /// Every delivery of a webhook, in enqueue order.
    by_webhook: HashMap<Option<WebhookId>, Vec<DeliveryId>>,
}

struct Entry {
    delivery: Delivery,
    url: WebhookUrl,
    event: EventId,
    kind: EventKind,
    created: Duration,
    /// While pending: when it can be claimed.
    due: Duration,
    token: Option<ClaimToken>,
    finished: Option<Duration>,
}

struct Body {
    bytes: Bytes,
    users: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store on the system clock.
    pub fn new() -> MemoryStore {
        MemoryStore::with_clock(SystemClock)
    }

    /// An empty store on `clock` (a [`ManualClock`] in tests).
    pub fn with_clock(clock: impl Clock + 'static) -> MemoryStore {
        MemoryStore {
            inner: Arc::new(Mutex::new(Inner::default())),
            clock: Arc::new(clock),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data: every method
        // below changes the maps only after its checks.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Duration {
        self.clock
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }
}

fn time(d: Duration) -> SystemTime {
    UNIX_EPOCH + d
}

impl Entry {
    fn record(&self, now: Duration) -> DeliveryRecord {
        let state = DeliveryState::of(&self.delivery);
        let pending = state == DeliveryState::Pending;
        DeliveryRecord {
            delivery: self.delivery.clone(),
            url: self.url.clone(),
            event: self.event,
            kind: self.kind,
            state,
            created_at: time(self.created),
            due_at: pending.then(|| time(self.due)),
            leased: pending && self.token.is_some() && self.due > now,
            finished_at: self.finished.map(time),
            waiting_behind: None,
        }
    }
}

/// Stores `event`'s deliveries that are not stored yet; how many were new.
fn insert(inner: &mut Inner, now: Duration, event: &NewEvent) -> usize {
    let mut new = 0;
    for d in event.deliveries() {
        let id = d.delivery.id();
        if inner.entries.contains_key(&id) {
            continue;
        }
        inner
            .bodies
            .entry(event.id())
            .or_insert_with(|| Body {
                bytes: event.body().clone(),
                users: 0,
            })
            .users += 1;
        let state = DeliveryState::of(&d.delivery);
        if state == DeliveryState::Pending {
            inner.queue.insert((now, id));
        }
        inner
            .by_webhook
            .entry(d.delivery.webhook_id())
            .or_default()
            .push(id);
        inner.entries.insert(
            id,
            Entry {
                delivery: d.delivery.clone(),
                url: d.url.clone(),
                event: event.id(),
                kind: event.kind(),
                created: now,
                due: now,
                token: None,
                finished: (state != DeliveryState::Pending).then_some(now),
            },
        );
        new += 1;
    }
    new
}

#[async_trait::async_trait]
impl DeliveryStore for MemoryStore {
    async fn enqueue(&self, event: &NewEvent) -> Result<usize, StoreError> {
        let now = self.now();
        Ok(insert(&mut self.lock(), now, event))
    }

    async fn enqueue_all(&self, events: &[NewEvent]) -> Result<usize, StoreError> {
        let now = self.now();
        let mut inner = self.lock();
        Ok(events.iter().map(|e| insert(&mut inner, now, e)).sum())
    }

    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let token = ClaimToken::random()?;
        let now = self.now();
        let until = now.saturating_add(lease);
        let mut inner = self.lock();
        let inner = &mut *inner;
        let due: Vec<(Duration, DeliveryId)> = inner
            .queue
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(max)
            .copied()
            .collect();
        let mut claimed = Vec::with_capacity(due.len());
        for key in due {
            inner.queue.remove(&key);
            let Some(entry) = inner.entries.get_mut(&key.1) else {
                continue;
            };
            let Some(body) = inner.bodies.get(&entry.event) else {
                // Put it back: it stays claimable, and the error says why it is stuck.
                inner.queue.insert(key);
                return Err(StoreError::corrupt(
                    entry.event,
                    "the event's body is missing",
                ));
            };
            let lapsed = entry.token.is_some();
            entry.token = Some(token);
            entry.due = until;
            inner.queue.insert((until, key.1));
            claimed.push(Claimed::new(
                Claim::new(key.1, token),
                entry.delivery.clone(),
                entry.url.clone(),
                body.bytes.clone(),
                entry.kind,
                now.saturating_sub(entry.created),
                lapsed,
            ));
        }
        Ok(claimed)
    }

    async fn finish(
        &self,
        claim: &Claim,
        delivery: &Delivery,
        step: &Step,
    ) -> Result<Finished, StoreError> {
        let (state, retry) = check_finish(claim, delivery, step)?;
        let now = self.now();
        let mut inner = self.lock();
        let inner = &mut *inner;
        let entry = inner
            .entries
            .get_mut(&claim.id)
            .ok_or(StoreError::UnknownDelivery(claim.id))?;
        if entry.token != Some(claim.token) || entry.delivery.is_done() {
            return Ok(Finished::Stale);
        }
        inner.queue.remove(&(entry.due, claim.id));
        entry.delivery = delivery.clone();
        entry.token = None;
        match retry {
            Some(after) => {
                entry.due = now.saturating_add(after);
                inner.queue.insert((entry.due, claim.id));
                Ok(Finished::Retrying)
            }
            None => {
                debug_assert_ne!(state, DeliveryState::Pending);
                entry.finished = Some(now);
                Ok(Finished::Done)
            }
        }
    }

    async fn delivery(&self, id: DeliveryId) -> Result<DeliveryRecord, StoreError> {
        let now = self.now();
        let inner = self.lock();
        inner
            .entries
            .get(&id)
            .map(|e| e.record(now))
            .ok_or(StoreError::UnknownDelivery(id))
    }

    async fn recent(
        &self,
        webhook: WebhookId,
        page: Page,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let now = self.now();
        let inner = self.lock();
        let Some(ids) = inner.by_webhook.get(&Some(webhook)) else {
            return Ok(Vec::new());
        };
        Ok(ids
            .iter()
            .rev()
            .filter_map(|id| inner.entries.get(id))
            .skip(page.offset)
            .take(page.limit)
            .map(|e| e.record(now))
            .collect())
    }

    async fn counts(&self, webhook: Option<WebhookId>) -> Result<StoreCounts, StoreError> {
        let inner = self.lock();
        let mut counts = StoreCounts {
            bodies: inner.bodies.len() as u64,
            ..StoreCounts::default()
        };
        let mut add = |e: &Entry| counts.add(DeliveryState::of(&e.delivery), 1);
        match webhook {
            None => inner.entries.values().for_each(&mut add),
            Some(w) => inner
                .by_webhook
                .get(&Some(w))
                .into_iter()
                .flatten()
                .filter_map(|id| inner.entries.get(id))
                .for_each(&mut add),
        }
        Ok(counts)
    }

    async fn prune(&self, older_than: Duration) -> Result<Pruned, StoreError> {
        let now = self.now();
        let cutoff = now.saturating_sub(older_than);
        let mut inner = self.lock();
        let inner = &mut *inner;
        let old: Vec<DeliveryId> = inner
            .entries
            .iter()
            .filter(|(_, e)| e.finished.is_some_and(|f| f <= cutoff) && e.delivery.is_done())
            .map(|(id, _)| *id)
            .collect();
        let mut pruned = Pruned::default();
        for id in &old {
            if let Some(entry) = inner.entries.remove(id) {
                pruned.deliveries += 1;
                if let Some(body) = inner.bodies.get_mut(&entry.event) {
                    body.users = body.users.saturating_sub(1);
                    if body.users == 0 {
                        inner.bodies.remove(&entry.event);
                        pruned.bodies += 1;
                    }
                }
            }
        }
        if !old.is_empty() {
            let entries = &inner.entries;
            for ids in inner.by_webhook.values_mut() {
                ids.retain(|id| entries.contains_key(id));
            }
            inner.by_webhook.retain(|_, ids| !ids.is_empty());
        }
        Ok(pruned)
    }
}
