//! [`MemoryStore`]: the store in a process's memory, for tests and small apps.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{
    Claim, ClaimToken, Claimed, DeliveryRecord, DeliveryState, DeliveryStore, EventId, Finished,
    NewEvent, Page, Pruned, StoreCounts, StoreError, add_saturating, bounded_lease, check_finish,
    epoch_plus,
};
use crate::{CancelReason, Delivery, DeliveryId, EventKind, Pacing, Step, WebhookId, WebhookUrl};

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

    /// Moves the clock `by` forward (to the latest time [`SystemTime`] holds, at most).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = add_saturating(*now, by);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Default for ManualClock {
    /// A clock standing at 2025-01-01T00:00:00Z.
    fn default() -> Self {
        ManualClock::new(epoch_plus(Duration::from_secs(1_735_689_600)))
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
/// Claims apply each webhook's [`Pacing`] (in-flight limit, in turn, rate limit, order)
/// and the per-account in-flight limit
/// ([`with_max_in_flight_per_account`](MemoryStore::with_max_in_flight_per_account)),
/// in `O(log n)` per delivery claimed; the per-webhook log is kept in enqueue order.
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
    /// Its webhooks, as a [`WebhookStore`](crate::WebhookStore).
    hooks: Arc<Mutex<crate::webhook_store::memory::Hooks>>,
    /// The most webhooks an account may have.
    max_webhooks: u32,
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
    /// One lane per webhook: its pending deliveries and its pacing.
    lanes: HashMap<Option<WebhookId>, Lane>,
    /// The lanes that may have work, by (when, last served): the one served longest ago
    /// first among those whose time has come.
    ready: BTreeSet<(Duration, u64, Option<WebhookId>)>,
    /// Every delivery of a webhook, in enqueue order.
    by_webhook: HashMap<Option<WebhookId>, Vec<DeliveryId>>,
    /// Every delivery published for an account, in enqueue order.
    by_account: HashMap<crate::AccountId, Vec<DeliveryId>>,
    /// Enqueue order.
    seq: u64,
    /// Claims made (a lane's turn).
    turn: u64,
    /// The live leases of each account, and its lanes waiting for a free slot.
    accounts: HashMap<crate::AccountId, Account>,
    /// The most deliveries of one account leased at once.
    max_per_account: usize,
    /// The webhooks switched off or deleted through the webhook store, and why: what is
    /// enqueued to them is stored cancelled.
    off: HashMap<WebhookId, CancelReason>,
}

/// The leases of one account's deliveries (those to a webhook) and the lanes held back
/// by the per-account in-flight limit.
#[derive(Default)]
struct Account {
    /// Leases handed out, by lease end (those ended are lapsed, and stop counting).
    leases: BTreeSet<(Duration, DeliveryId)>,
    /// The lanes of the account that have due work but no slot: a finish looks at them.
    held: BTreeSet<Option<WebhookId>>,
}

impl Account {
    /// Leases still running at `now`, and the first of them to end.
    fn live(&self, now: Duration) -> (usize, Option<Duration>) {
        let mut live = self.leases.range(
            (
                now.saturating_add(Duration::from_nanos(1)),
                DeliveryId::new(0),
            )..,
        );
        let first = live.next().map(|(end, _)| *end);
        (first.map_or(0, |_| 1 + live.count()), first)
    }
}

/// The pending deliveries of one webhook and how they are handed out.
struct Lane {
    pacing: Pacing,
    /// The account its deliveries are published for (the latest enqueue that named one).
    account: Option<crate::AccountId>,
    /// Pending deliveries by (when claimable: due, or lease end; enqueue order).
    queue: BTreeSet<(Duration, u64, DeliveryId)>,
    /// Pending deliveries in enqueue order (the head of an ordered lane is the first).
    order: BTreeSet<(u64, DeliveryId)>,
    /// Leases handed out, by lease end (those ended are lapsed, and stop counting).
    leases: BTreeSet<(Duration, DeliveryId)>,
    /// The rate limit's bucket, and when it was last filled.
    tokens: f64,
    tokens_at: Duration,
    /// The claim that last served it.
    served: u64,
    /// Its key in `ready`, if any.
    ready: Option<(Duration, u64)>,
}

impl Lane {
    fn new(pacing: Pacing, now: Duration) -> Lane {
        Lane {
            pacing,
            account: None,
            queue: BTreeSet::new(),
            order: BTreeSet::new(),
            leases: BTreeSet::new(),
            tokens: pacing.rate_limit.map_or(0.0, |r| f64::from(r.get())),
            tokens_at: now,
            served: 0,
            ready: None,
        }
    }

    /// Leases still running at `now`.
    fn live_leases(&self, now: Duration) -> usize {
        self.leases
            .range(
                (
                    now.saturating_add(Duration::from_nanos(1)),
                    DeliveryId::new(0),
                )..,
            )
            .count()
    }

    fn room(&self, now: Duration) -> usize {
        let limit = self.pacing.effective_max_in_flight() as usize;
        limit.saturating_sub(self.live_leases(now))
    }

    /// Fills the rate limit's bucket up to `now`; the whole tokens in it (unlimited
    /// without a rate limit).
    fn refill(&mut self, now: Duration) -> usize {
        let Some(rate) = self.pacing.rate_limit else {
            return usize::MAX;
        };
        let rate = f64::from(rate.get());
        let elapsed = now.saturating_sub(self.tokens_at).as_secs_f64();
        self.tokens = (self.tokens + rate * elapsed).min(rate);
        self.tokens_at = now;
        self.tokens.floor() as usize
    }

    /// When its next claim may take something: `None` when it has nothing pending.
    /// `account`: its account's room and first lease end, when the account limits it; at
    /// no room, the lane waits for that lease end (a finish in the account looks sooner).
    fn next_at(
        &mut self,
        now: Duration,
        entries: &HashMap<DeliveryId, Entry>,
        account: Option<(usize, Option<Duration>)>,
    ) -> Option<Duration> {
        let first = if self.pacing.ordered {
            let (_, head) = self.order.first()?;
            entries.get(head)?.due
        } else {
            self.queue.first()?.0
        };
        if self.room(now) == 0 {
            // At its limit: look again when a lease may lapse (a finish looks sooner).
            let lapse = self
                .leases
                .range(
                    (
                        now.saturating_add(Duration::from_nanos(1)),
                        DeliveryId::new(0),
                    )..,
                )
                .next()
                .map_or(now, |(end, _)| *end);
            return Some(lapse.max(first));
        }
        if let Some((0, lapse)) = account {
            return Some(lapse.unwrap_or(now).max(first));
        }
        let mut at = first;
        if self.refill(now) == 0 {
            if let Some(rate) = self.pacing.rate_limit {
                let wait = (1.0 - self.tokens).max(0.0) / f64::from(rate.get());
                at = at.max(now.saturating_add(Duration::from_secs_f64(wait)));
            }
        }
        Some(at)
    }
}

struct Entry {
    /// Enqueue order.
    seq: u64,
    delivery: Delivery,
    url: WebhookUrl,
    event: EventId,
    kind: EventKind,
    created: Duration,
    /// While pending: when it can be claimed.
    due: Duration,
    token: Option<ClaimToken>,
    finished: Option<Duration>,
    account: Option<crate::AccountId>,
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
            inner: Arc::new(Mutex::new(Inner {
                max_per_account: super::DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT as usize,
                ..Inner::default()
            })),
            clock: Arc::new(clock),
            hooks: Arc::default(),
            max_webhooks: crate::DEFAULT_MAX_WEBHOOKS,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data: every method
        // below changes the maps only after its checks.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets an account have at most `max` webhooks (default
    /// [`DEFAULT_MAX_WEBHOOKS`](crate::DEFAULT_MAX_WEBHOOKS)), as a
    /// [`WebhookStore`](crate::WebhookStore).
    #[must_use]
    pub fn with_max_webhooks(mut self, max: u32) -> Self {
        self.max_webhooks = max;
        self
    }

    pub(crate) fn max_webhooks_per_account(&self) -> u32 {
        self.max_webhooks
    }

    /// Lets a claim lease at most `max` deliveries of one account at once (default
    /// [`DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT`](crate::DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT)),
    /// counted over every lease of the store (every worker that shares it); the due
    /// deliveries of other accounts are claimed meanwhile. It counts the deliveries to a
    /// webhook published for an account ([`NewDelivery::account`](crate::NewDelivery::account));
    /// the others are not limited by it. It is the store's setting, shared by its clones.
    #[must_use]
    pub fn with_max_in_flight_per_account(self, max: NonZeroU32) -> Self {
        self.lock().max_per_account = max.get() as usize;
        self
    }

    /// The most deliveries of one account a claim leases at once
    /// ([`with_max_in_flight_per_account`](MemoryStore::with_max_in_flight_per_account)).
    pub fn max_in_flight_per_account(&self) -> NonZeroU32 {
        let max = u32::try_from(self.lock().max_per_account).unwrap_or(u32::MAX);
        NonZeroU32::new(max).unwrap_or(NonZeroU32::MIN)
    }

    /// Its webhooks (the [`WebhookStore`](crate::WebhookStore) side), and the time now.
    /// Marks `webhook` switched off (`off`: the reason its pending and future deliveries
    /// are cancelled for, and cancels what is pending) or back on (`None`): what the webhook
    /// store does on an update or a delete, under the same lock as every enqueue.
    pub(crate) fn mark_off(&self, webhook: WebhookId, off: Option<CancelReason>) {
        let now = self.now();
        let mut inner = self.lock();
        match off {
            Some(reason) => {
                inner.off.insert(webhook, reason);
                cancel_locked(&mut inner, now, webhook, reason);
            }
            None => {
                inner.off.remove(&webhook);
            }
        }
    }

    pub(crate) fn hooks(
        &self,
    ) -> (
        MutexGuard<'_, crate::webhook_store::memory::Hooks>,
        SystemTime,
    ) {
        let now = self.clock.now();
        (self.hooks.lock().unwrap_or_else(|e| e.into_inner()), now)
    }

    fn now(&self) -> Duration {
        self.clock
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }
}

impl Entry {
    fn record(&self, now: Duration, waiting_behind: Option<DeliveryId>) -> DeliveryRecord {
        let state = DeliveryState::of(&self.delivery);
        let pending = state == DeliveryState::Pending;
        let leasable = pending || state == DeliveryState::Cancelled;
        DeliveryRecord {
            delivery: self.delivery.clone(),
            url: self.url.clone(),
            event: self.event,
            kind: self.kind,
            state,
            created_at: epoch_plus(self.created),
            due_at: pending.then(|| epoch_plus(self.due)),
            leased: leasable && self.token.is_some() && self.due > now,
            finished_at: self.finished.map(epoch_plus),
            waiting_behind,
            resent_from: self.delivery.resent_from(),
            account: self.account,
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
        inner.seq += 1;
        let seq = inner.seq;
        let key = d.delivery.webhook_id();
        // Deliveries without a webhook are not paced (as in the SQL stores' lane 0).
        let pacing = if key.is_some() {
            d.pacing
        } else {
            Pacing::UNLIMITED
        };
        let mut delivery = d.delivery.clone();
        if let Some(reason) = key.and_then(|k| inner.off.get(&k)) {
            if !delivery.is_done() {
                delivery.cancel(*reason);
            }
        }
        let state = DeliveryState::of(&delivery);
        let lane = inner
            .lanes
            .entry(key)
            .or_insert_with(|| Lane::new(pacing, now));
        if lane.pacing != pacing {
            // The latest pacing of the webhook wins; a new rate starts with a full bucket.
            if lane.pacing.rate_limit != pacing.rate_limit {
                lane.tokens = pacing.rate_limit.map_or(0.0, |r| f64::from(r.get()));
                lane.tokens_at = now;
            }
            lane.pacing = pacing;
        }
        if key.is_some() && d.account.is_some() {
            lane.account = d.account;
        }
        if state == DeliveryState::Pending {
            lane.queue.insert((now, seq, id));
            lane.order.insert((seq, id));
        }
        inner.by_webhook.entry(key).or_default().push(id);
        if let Some(account) = d.account {
            inner.by_account.entry(account).or_default().push(id);
        }
        inner.entries.insert(
            id,
            Entry {
                seq,
                delivery,
                url: d.url.clone(),
                event: event.id(),
                kind: event.kind(),
                created: now,
                due: now,
                token: None,
                finished: (state != DeliveryState::Pending).then_some(now),
                account: d.account,
            },
        );
        if state == DeliveryState::Pending {
            inner.reschedule(key, now);
        }
        new += 1;
    }
    new
}

/// [`DeliveryStore::cancel`] under the lock.
fn cancel_locked(
    inner: &mut Inner,
    now: Duration,
    webhook: WebhookId,
    reason: CancelReason,
) -> u64 {
    let key = Some(webhook);
    let Some(ids) = inner.by_webhook.get(&key) else {
        return 0;
    };

    let mut cancelled = 0u64;
    for id in ids {
        let Some(entry) = inner.entries.get_mut(id) else {
            continue;
        };
        if entry.delivery.is_done() {
            continue;
        }
        entry.delivery.cancel(reason);
        entry.finished = Some(now);
        let in_flight = entry.token.is_some() && entry.due > now;
        if let Some(lane) = inner.lanes.get_mut(&key) {
            lane.queue.remove(&(entry.due, entry.seq, *id));
            lane.order.remove(&(entry.seq, *id));
            if !in_flight {
                // A live lease stays: it counts against the limit until its finish.
                lane.leases.remove(&(entry.due, *id));
            }
        }
        if !in_flight {
            // Not (or no longer) leased: nothing in flight to record.
            if let Some(account) = key.and(entry.account) {
                if let Some(a) = inner.accounts.get_mut(&account) {
                    a.leases.remove(&(entry.due, *id));
                }
            }
            entry.token = None;
        }
        cancelled += 1;
    }
    inner.reschedule(key, now);
    cancelled
}

/// The event of a resend of `id` as `new_id`: the same body, URL and pacing.
fn resend_event(inner: &Inner, id: DeliveryId, new_id: DeliveryId) -> Result<NewEvent, StoreError> {
    let entry = inner
        .entries
        .get(&id)
        .ok_or(StoreError::UnknownDelivery(id))?;
    let body = inner
        .bodies
        .get(&entry.event)
        .ok_or_else(|| StoreError::corrupt(entry.event, "the event's body is missing"))?;
    let pacing = inner
        .lanes
        .get(&entry.delivery.webhook_id())
        .map_or(Pacing::UNLIMITED, |lane| lane.pacing);
    let mut event = NewEvent::new(entry.event, entry.kind, body.bytes.clone());
    event.push_paced(entry.delivery.resend(new_id), entry.url.clone(), pacing);
    if let Some(account) = entry.account {
        event.set_account(account);
    }
    Ok(event)
}

impl Inner {
    /// Puts lane `key` back in `ready` at the time its next claim may take something.
    fn reschedule(&mut self, key: Option<WebhookId>, now: Duration) {
        let Some(lane) = self.lanes.get_mut(&key) else {
            return;
        };
        if let Some((at, served)) = lane.ready.take() {
            self.ready.remove(&(at, served, key));
        }
        let account = lane.account.map(|a| {
            let (live, first) = self.accounts.get(&a).map_or((0, None), |a| a.live(now));
            (a, self.max_per_account.saturating_sub(live), first)
        });
        let at = lane.next_at(
            now,
            &self.entries,
            account.map(|(_, room, first)| (room, first)),
        );
        if let Some((a, room, _)) = account {
            let held = room == 0 && at.is_some();
            let entry = self.accounts.entry(a).or_default();
            if held {
                entry.held.insert(key);
            } else {
                entry.held.remove(&key);
            }
        }
        if let Some(at) = at {
            lane.ready = Some((at, lane.served));
            self.ready.insert((at, lane.served, key));
        }
    }

    /// A lease of `account` (if the lease counts against one) moved from `from` to `to`
    /// (`None`: it ended); when it ended, the lanes the account held back are looked at
    /// again.
    fn move_lease(
        &mut self,
        account: Option<crate::AccountId>,
        id: DeliveryId,
        from: Option<Duration>,
        to: Option<Duration>,
        now: Duration,
    ) {
        let Some(account) = account else {
            return;
        };
        let a = self.accounts.entry(account).or_default();
        if let Some(from) = from {
            a.leases.remove(&(from, id));
        }
        if let Some(to) = to {
            a.leases.insert((to, id));
            return;
        }
        let held = std::mem::take(&mut a.held);
        for key in held {
            self.reschedule(key, now);
        }
    }

    /// The room account `account` leaves at `now` (unlimited for `None`).
    fn account_room(&self, account: Option<crate::AccountId>, now: Duration) -> usize {
        let Some(account) = account else {
            return usize::MAX;
        };
        let live = self.accounts.get(&account).map_or(0, |a| a.live(now).0);
        self.max_per_account.saturating_sub(live)
    }

    /// Which of lane `key`'s deliveries a claim may take now, at most `max`.
    fn claimable(
        &mut self,
        key: Option<WebhookId>,
        now: Duration,
        max: usize,
    ) -> Vec<(Duration, u64, DeliveryId)> {
        let Some(account) = self.lanes.get(&key).map(|lane| lane.account) else {
            return Vec::new();
        };
        let account_room = self.account_room(account, now);
        let Some(lane) = self.lanes.get_mut(&key) else {
            return Vec::new();
        };
        let take = max
            .min(lane.room(now))
            .min(account_room)
            .min(lane.refill(now));
        if take == 0 {
            return Vec::new();
        }
        if lane.pacing.ordered {
            let Some(&(seq, head)) = lane.order.first() else {
                return Vec::new();
            };
            return match self.entries.get(&head) {
                Some(entry) if entry.due <= now => vec![(entry.due, seq, head)],
                _ => Vec::new(),
            };
        }
        lane.queue
            .iter()
            .take_while(|(at, _, _)| *at <= now)
            .take(take)
            .copied()
            .collect()
    }

    /// The head of an ordered lane that `entry` waits behind, if any.
    fn waiting_behind(&self, entry: &Entry) -> Option<DeliveryId> {
        if entry.delivery.is_done() {
            return None;
        }
        let lane = self.lanes.get(&entry.delivery.webhook_id())?;
        if !lane.pacing.ordered {
            return None;
        }
        let (_, head) = lane.order.first()?;
        (*head != entry.delivery.id()).then_some(*head)
    }

    fn record(&self, entry: &Entry, now: Duration) -> DeliveryRecord {
        entry.record(now, self.waiting_behind(entry))
    }
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
        let until = now.saturating_add(bounded_lease(lease));
        let mut inner = self.lock();
        let inner = &mut *inner;
        // The lanes whose time has come, the one served longest ago first, an equal share
        // each; then what is left of the claim to those that had more, round by round.
        let mut claimed = Vec::with_capacity(max.min(1024));
        let mut exhausted: Vec<Option<WebhookId>> = Vec::new();
        while claimed.len() < max {
            let lanes: Vec<Option<WebhookId>> = inner
                .ready
                .iter()
                .take_while(|(at, _, _)| *at <= now)
                .filter(|(_, _, key)| !exhausted.contains(key))
                .take(max - claimed.len())
                .map(|(_, _, key)| *key)
                .collect();
            if lanes.is_empty() {
                break;
            }
            let share = (max - claimed.len()).div_ceil(lanes.len());
            for key in lanes {
                let want = share.min(max - claimed.len());
                let due = if want == 0 {
                    Vec::new()
                } else {
                    inner.claimable(key, now, want)
                };
                if due.len() < want {
                    exhausted.push(key);
                }
                for (at, seq, id) in due {
                    let Some(entry) = inner.entries.get_mut(&id) else {
                        continue;
                    };
                    let Some(body) = inner.bodies.get(&entry.event) else {
                        // It stays claimable, and the error says why it is stuck.
                        return Err(StoreError::corrupt(
                            entry.event,
                            "the event's body is missing",
                        ));
                    };
                    let lapsed = entry.token.is_some();
                    entry.token = Some(token);
                    entry.due = until;
                    let account = key.and(entry.account);
                    if let Some(lane) = inner.lanes.get_mut(&key) {
                        lane.queue.remove(&(at, seq, id));
                        lane.queue.insert((until, seq, id));
                        lane.leases.remove(&(at, id));
                        lane.leases.insert((until, id));
                        if lane.pacing.rate_limit.is_some() {
                            lane.tokens -= 1.0;
                        }
                    }
                    claimed.push(Claimed::new(
                        Claim::new(id, token),
                        entry.delivery.clone(),
                        entry.url.clone(),
                        body.bytes.clone(),
                        entry.kind,
                        now.saturating_sub(entry.created),
                        lapsed,
                    ));
                    inner.move_lease(account, id, Some(at), Some(until), now);
                }
                inner.turn += 1;
                if let Some(lane) = inner.lanes.get_mut(&key) {
                    lane.served = inner.turn;
                }
                inner.reschedule(key, now);
            }
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
        if entry.token != Some(claim.token) {
            return Ok(Finished::Stale);
        }
        if entry.delivery.is_done() {
            if !entry.delivery.outcome().is_some_and(|o| o.is_cancelled()) {
                return Ok(Finished::Stale);
            }
            // Cancelled while this attempt was in flight: record it; its lease ends.
            entry.delivery.record_in_flight(delivery);
            entry.token = None;
            entry.finished = Some(now);
            let (key, due) = (entry.delivery.webhook_id(), entry.due);
            let account = key.and(entry.account);
            if let Some(lane) = inner.lanes.get_mut(&key) {
                lane.leases.remove(&(due, claim.id));
            }
            inner.move_lease(account, claim.id, Some(due), None, now);
            inner.reschedule(key, now);
            return Ok(if delivery.is_done() {
                Finished::Done
            } else {
                Finished::Cancelled
            });
        }
        let key = entry.delivery.webhook_id();
        let account = key.and(entry.account);
        let (old_due, seq) = (entry.due, entry.seq);
        entry.delivery = delivery.clone();
        entry.token = None;
        let lane = inner.lanes.get_mut(&key);
        let finished = match retry {
            Some(after) => {
                entry.due = now.saturating_add(after);
                if let Some(lane) = lane {
                    lane.queue.remove(&(old_due, seq, claim.id));
                    lane.leases.remove(&(old_due, claim.id));
                    lane.queue.insert((entry.due, seq, claim.id));
                }
                Finished::Retrying
            }
            None => {
                debug_assert_ne!(state, DeliveryState::Pending);
                entry.finished = Some(now);
                if let Some(lane) = lane {
                    lane.queue.remove(&(old_due, seq, claim.id));
                    lane.leases.remove(&(old_due, claim.id));
                    lane.order.remove(&(seq, claim.id));
                }
                Finished::Done
            }
        };
        inner.move_lease(account, claim.id, Some(old_due), None, now);
        inner.reschedule(key, now);
        Ok(finished)
    }

    async fn delivery(&self, id: DeliveryId) -> Result<DeliveryRecord, StoreError> {
        let now = self.now();
        let inner = self.lock();
        inner
            .entries
            .get(&id)
            .map(|e| inner.record(e, now))
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
            .map(|e| inner.record(e, now))
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

    async fn recent_for_account(
        &self,
        account: crate::AccountId,
        page: Page,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let now = self.now();
        let inner = self.lock();
        let Some(ids) = inner.by_account.get(&account) else {
            return Ok(Vec::new());
        };
        Ok(ids
            .iter()
            .rev()
            .filter_map(|id| inner.entries.get(id))
            .skip(page.offset)
            .take(page.limit)
            .map(|e| inner.record(e, now))
            .collect())
    }

    async fn counts_for_account(
        &self,
        account: crate::AccountId,
    ) -> Result<StoreCounts, StoreError> {
        let inner = self.lock();
        let mut counts = StoreCounts {
            bodies: inner.bodies.len() as u64,
            ..StoreCounts::default()
        };
        for entry in inner
            .by_account
            .get(&account)
            .into_iter()
            .flatten()
            .filter_map(|id| inner.entries.get(id))
        {
            counts.add(DeliveryState::of(&entry.delivery), 1);
        }
        Ok(counts)
    }

    async fn cancel(&self, webhook: WebhookId, reason: CancelReason) -> Result<u64, StoreError> {
        let now = self.now();
        let mut inner = self.lock();
        Ok(cancel_locked(&mut inner, now, webhook, reason))
    }

    async fn resend(&self, id: DeliveryId) -> Result<DeliveryId, StoreError> {
        let new_id = DeliveryId::new(super::random_u128()?);
        let now = self.now();
        let mut inner = self.lock();
        let event = resend_event(&inner, id, new_id)?;
        insert(&mut inner, now, &event);
        Ok(new_id)
    }

    async fn recover(
        &self,
        webhook: WebhookId,
        since: SystemTime,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        let since = since.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let now = self.now();
        let mut inner = self.lock();
        let Some(ids) = inner.by_webhook.get(&Some(webhook)) else {
            return Ok(Vec::new());
        };
        let resent: std::collections::HashSet<DeliveryId> = ids
            .iter()
            .filter_map(|id| inner.entries.get(id)?.delivery.resent_from())
            .collect();
        let old: Vec<DeliveryId> = ids
            .iter()
            .filter(|id| !resent.contains(id))
            .filter(|id| {
                inner.entries.get(id).is_some_and(|e| {
                    let in_flight = e.token.is_some() && e.due > now;
                    super::recoverable(DeliveryState::of(&e.delivery))
                        && e.finished.is_some_and(|f| f >= since)
                        && !in_flight
                })
            })
            .copied()
            .collect();
        let mut events = Vec::with_capacity(old.len());
        let mut new_ids = Vec::with_capacity(old.len());
        for id in old {
            let new_id = DeliveryId::new(super::random_u128()?);
            events.push(resend_event(&inner, id, new_id)?);
            new_ids.push(new_id);
        }
        for event in &events {
            insert(&mut inner, now, event);
        }
        Ok(new_ids)
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
            for ids in inner.by_account.values_mut() {
                ids.retain(|id| entries.contains_key(id));
            }
            inner.by_account.retain(|_, ids| !ids.is_empty());
        }
        Ok(pruned)
    }
}
