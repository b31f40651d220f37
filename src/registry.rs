//! The matcher: which webhooks an event must reach.
//!
//! A [`Registry`] holds webhooks by [`WebhookId`] and keeps an inverted index over them, so
//! [`Registry::matches`] costs time in proportion to the webhooks it returns, not to the
//! webhooks registered.
//!
//! ```
//! use posthook::{Event, EventKind, ListId, ListScope, Registry, Source, Webhook};
//! # use chrono::DateTime;
//!
//! let mut registry = Registry::new();
//! let list = ListId::new(7);
//! let on_list = registry.insert(
//!     Webhook::builder("list 7 opens", "https://example.com/a")
//!         .events([EventKind::Open])
//!         .sources(Source::ALL)
//!         .scope(ListScope::from(list))
//!         .build()?,
//! );
//! let everywhere = registry.insert(
//!     Webhook::builder("all opens", "https://example.com/b")
//!         .events([EventKind::Open])
//!         .sources([Source::Contact])
//!         .build()?,
//! );
//!
//! # let now = DateTime::parse_from_rfc3339("2024-01-01T00:00:00+00:00").unwrap();
//! let open = Event::new(EventKind::Open, Source::Contact, now).with_list(list);
//! let mut ids: Vec<_> = registry.matches(&open).map(|w| w.id().unwrap()).collect();
//! ids.sort();
//! assert_eq!(ids, [on_list, everywhere]);
//!
//! // An open on another list reaches only the all-lists webhook.
//! let elsewhere = open.clone().with_list(ListId::new(8));
//! assert_eq!(registry.matches(&elsewhere).count(), 1);
//! # Ok::<(), posthook::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::iter::FusedIterator;

use hashbrown::HashTable;

use crate::{Deactivation, Event, EventKind, ListId, ListScope, Source, Webhook, WebhookId};
#[cfg(doc)]
use crate::{EventSet, SourceSet};

/// The number of (kind, source) pairs: one head posting list for each.
const PAIRS: usize = EventKind::ALL.len() * Source::ALL.len();

/// The (kind, source) pair as an index in `0..PAIRS`.
#[inline]
fn pair(kind: EventKind, source: Source) -> usize {
    kind.index() * Source::ALL.len() + source.index()
}

/// A set of webhooks, indexed by what they listen to.
///
/// # Rules
///
/// [`matches`](Registry::matches) yields the webhooks that are active, have the event's kind
/// in their events and its source in their sources, and — for
/// [list-aware](EventKind::is_list_aware) kinds only — have the scope [`ListScope::All`] or
/// the event's list. A list-aware event on no list reaches only all-lists webhooks; a kind that
/// is not list-aware ignores the scope. This is [`Webhook::wants`], answered from an index.
///
/// # Ids
///
/// [`insert`](Registry::insert) is an upsert keyed by [`WebhookId`], like
/// [`HashMap::insert`]. A webhook that already carries an id (read from the ActiveCampaign
/// API, or your store) keeps it and replaces any webhook the registry holds under that id. A
/// webhook without an id is given a fresh one, greater than every id the registry has seen,
/// and the id is written into it, so `registry.get(id).unwrap().id() == Some(id)` always holds.
///
/// # Index and cost
///
/// Webhooks are stored densely. For every (kind, source) pair of a webhook's events ×
/// sources whose kind ignores lists, or when its scope is all lists, its slot is posted in
/// the head list of (kind, source). For each list-aware kind of a single-list webhook, its
/// slot and its sources are posted once in the list posting of (that list, kind). Each
/// webhook is in each posting list at most once, so an event's answer — its head list, plus
/// the entries of its (list, kind) posting that have its source — holds every match exactly
/// once, with no deduplication. Inactive webhooks are kept but taken out of the posting
/// lists, so matching never looks at them. Each webhook remembers where its postings are (a
/// run of 4-byte positions in one shared array, compacted once half of it is left over from
/// removed webhooks), so it leaves the index without a search.
///
/// With `p` = |events| × |sources| of a webhook (at most 100):
///
/// | operation | cost |
/// |---|---|
/// | [`matches`](Registry::matches) | one hash lookup (list-aware kind on a list), then O(1) per webhook yielded, plus one look at each entry of the event's (list, kind) that lacks its source; no allocation |
/// | [`insert`](Registry::insert) | O(p) amortized (an upsert also removes the old one's postings) |
/// | [`Extend`], [`FromIterator`] into an empty registry | the bulk build: O(total p), the list postings sorted once; no growth slack |
/// | [`remove`](Registry::remove) | O(p + p′) amortized: its postings, and those of the webhook moved into its place |
/// | [`set_active`](Registry::set_active), [`deactivate`](Registry::deactivate) | O(p) when the state changes, O(1) otherwise |
/// | [`get`](Registry::get), [`contains`](Registry::contains), [`len`](Registry::len) | O(1) |
/// | [`iter`](Registry::iter), [`Clone`], [`shrink_to_fit`](Registry::shrink_to_fit) | O(n) |
///
/// # Memory
///
/// Measured by the `registry` bench (1,000,000 webhooks over 10,000 lists, 1–3 kinds and 1–4
/// sources each, so about 5 (kind, source) pairs per webhook), counting the bytes live on the
/// heap beyond those of the same webhooks in a `Vec`: the index takes **58 bytes per
/// webhook** when the registry is built by `collect()` (the bulk build), **76** when built one
/// [`insert`](Registry::insert) at a time (growth slack; [`shrink_to_fit`](Registry::shrink_to_fit)
/// gives it back). Per webhook: an 8-byte record (its sets and where its run of positions
/// starts), 4 bytes per posting in the head lists and 8 per list posting, 4 per position,
/// about 10 for the id table (4-byte entries: the id is read from the webhook) and about 5
/// for the map of (list, kind) postings. Removing webhooks does not give memory back by
/// itself: see [`shrink_to_fit`](Registry::shrink_to_fit). Figures and method in
/// `BENCHMARKS.md`.
///
/// # Sharing between threads
///
/// A `Registry` is plain data: `Send + Sync`, no interior mutability. Any number of threads
/// may call [`matches`](Registry::matches) on a shared `&Registry` at once. When readers must
/// go on while a writer updates it, there are two patterns:
///
/// * `RwLock<Registry>` — readers take the read lock, collect what they need from the
///   matches (ids, URLs, clones), and let go before any I/O; a writer takes the write lock
///   for one cheap update. Updates are visible to the next reader at once.
/// * copy-on-write, `RwLock<Arc<Registry>>` — readers clone the `Arc` under a momentary read
///   lock and match on that snapshot without holding any lock; a writer builds the next
///   version with [`Arc::make_mut`](std::sync::Arc::make_mut) (a full [`Clone`] while readers
///   still hold the old one: O(n), so batch the updates) and stores it. Readers never wait
///   for a writer; each sees a consistent snapshot.
///
/// ```
/// use std::sync::{Arc, RwLock};
/// use std::thread;
/// use posthook::{Event, EventKind, Registry, Source, Webhook};
/// # use chrono::DateTime;
///
/// let registry = Arc::new(RwLock::new(Registry::new()));
/// # let now = DateTime::parse_from_rfc3339("2024-01-01T00:00:00+00:00").unwrap();
/// let event = Event::new(EventKind::DealAdd, Source::Api, now);
///
/// let reader = {
///     let registry = Arc::clone(&registry);
///     let event = event.clone();
///     thread::spawn(move || {
///         // Hold the read lock only to collect the URLs, not while delivering.
///         let registry = registry.read().unwrap();
///         let urls: Vec<String> =
///             registry.matches(&event).map(|w| w.url().as_str().to_owned()).collect();
///         urls.len()
///     })
/// };
/// let id = registry.write().unwrap().insert(
///     Webhook::builder("deals", "https://example.com/deals")
///         .events([EventKind::DealAdd])
///         .sources([Source::Api])
///         .build()?,
/// );
/// assert!(reader.join().unwrap() <= 1);
/// assert_eq!(registry.read().unwrap().matches(&event).next().unwrap().id(), Some(id));
/// # Ok::<(), posthook::Error>(())
/// ```
///
/// Copy-on-write: a reader's snapshot stays as it was while the writer publishes.
///
/// ```
/// use std::sync::{Arc, RwLock};
/// use posthook::{Event, EventKind, Registry, Source, Webhook};
/// # use chrono::DateTime;
///
/// let current: RwLock<Arc<Registry>> = RwLock::default();
/// # let now = DateTime::parse_from_rfc3339("2024-01-01T00:00:00+00:00").unwrap();
/// let event = Event::new(EventKind::SmsSent, Source::System, now);
///
/// // A reader: take the snapshot, drop the lock, match at leisure.
/// let snapshot = Arc::clone(&current.read().unwrap());
///
/// // The writer: copy (only if a reader still holds this version), change, publish.
/// let mut next = Arc::clone(&current.read().unwrap());
/// Arc::make_mut(&mut next).insert(
///     Webhook::builder("sms", "https://example.com/sms")
///         .events([EventKind::SmsSent])
///         .sources([Source::System])
///         .build()?,
/// );
/// *current.write().unwrap() = next;
///
/// assert_eq!(snapshot.matches(&event).len(), 0);
/// assert_eq!(current.read().unwrap().matches(&event).len(), 1);
/// # Ok::<(), posthook::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    /// The webhooks, densely; a removal moves the last one into the hole.
    hooks: Vec<Webhook>,
    /// Beside each webhook: what the index needs to know of it, in 8 bytes.
    meta: Vec<Meta>,
    /// The slot of each webhook, found by the hash of its id (the id itself is read from the
    /// webhook, so the table holds 4 bytes per entry).
    ids: HashTable<u32>,
    /// Seeds the hash of ids (SipHash, randomly keyed: ids may come from outside).
    hasher: RandomState,
    /// Per (kind, source) pair: all-lists webhooks for a list-aware kind, every webhook for
    /// a kind that ignores lists. Empty until first used.
    heads: Vec<Vec<u32>>,
    /// Per (list, list-aware kind): the webhooks scoped to that list, each with its sources.
    lists: HashMap<(ListId, u8), Vec<Scoped>>,
    /// Every posted webhook's positions in its posting lists, one run per webhook (see
    /// [`Meta::start`]); runs of webhooks since unposted are garbage until compaction.
    positions: Vec<u32>,
    /// How many entries of `positions` belong to no webhook.
    garbage: usize,
    /// Greater than every id seen so far: the next fresh id.
    next_id: u64,
    /// Whether `next_id` ever reached `u64::MAX`; from then on a fresh id is searched for.
    next_id_reached_max: bool,
    /// How many times `positions` was compacted (the unit tests check that churn does it).
    #[cfg(test)]
    compactions: usize,
}

/// Bits of [`EventSet::bits`] for the kinds that honour a webhook's list.
const AWARE: u32 = {
    let mut bits = 0;
    let mut i = 0;
    while i < EventKind::ALL.len() {
        if EventKind::ALL[i].is_list_aware() {
            bits |= 1 << EventKind::ALL[i].index();
        }
        i += 1;
    }
    bits
};

/// The event bits in [`Meta::bits`].
const EVENTS: u32 = (1 << EventKind::ALL.len()) - 1;
/// Where the source bits start in [`Meta::bits`].
const SOURCES_SHIFT: u32 = EventKind::ALL.len() as u32;
/// Set in [`Meta::bits`] when the webhook's scope is one list.
const SCOPED: u32 = 1 << (SOURCES_SHIFT + Source::ALL.len() as u32);
/// [`Meta::start`] of a webhook that is in no posting list.
const UNPOSTED: u32 = u32::MAX;
/// Positions of unposted webhooks tolerated before a compaction is considered (few in the
/// unit tests, so that their churn compacts).
const GARBAGE_FLOOR: usize = if cfg!(test) { 8 } else { 4096 };

/// The index's view of one webhook, kept apart from the webhook so that moving postings
/// around touches a small record.
#[derive(Clone, Copy)]
struct Meta {
    /// Where the webhook's run of positions starts in [`Registry::positions`], or
    /// [`UNPOSTED`]. The run holds, first, the position in the list posting of each listed
    /// kind (ascending), then the position in the head list of each (head kind, source) pair
    /// (kinds, then sources, ascending).
    start: u32,
    /// Events (bits 0..25, as [`EventSet::bits`]), sources (the next 4 bits, as
    /// [`SourceSet::bits`]) and [`SCOPED`].
    bits: u32,
}

/// A list posting: the webhook's slot and its sources, so that an event's source is checked
/// without touching the webhook.
#[derive(Clone, Copy)]
struct Scoped {
    slot: u32,
    sources: u32,
}

/// The set bits of `bits`, lowest first, as indices.
#[inline]
fn ones(mut bits: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if bits == 0 {
            return None;
        }
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        Some(i)
    })
}

/// The bits of `bits` below bit `i`.
#[inline]
fn below(bits: u32, i: usize) -> u32 {
    bits & ((1u32 << i) - 1)
}

impl Meta {
    fn of(hook: &Webhook) -> Meta {
        let scoped = match hook.scope() {
            ListScope::List(_) => SCOPED,
            ListScope::All => 0,
        };
        Meta {
            start: UNPOSTED,
            bits: hook.events().bits() | u32::from(hook.sources().bits()) << SOURCES_SHIFT | scoped,
        }
    }

    #[inline]
    fn sources(self) -> u32 {
        (self.bits >> SOURCES_SHIFT) & ((1 << Source::ALL.len()) - 1)
    }

    /// The kinds posted in the webhook's list: its list-aware kinds, when it has one list.
    #[inline]
    fn listed(self) -> u32 {
        if self.bits & SCOPED != 0 && self.sources() != 0 {
            self.bits & AWARE
        } else {
            0
        }
    }

    /// The kinds posted in head lists, once per source.
    #[inline]
    fn headed(self) -> u32 {
        let events = if self.bits & SCOPED != 0 {
            self.bits & EVENTS & !AWARE
        } else {
            self.bits & EVENTS
        };
        if self.sources() == 0 { 0 } else { events }
    }

    /// The length of the webhook's run of positions.
    #[inline]
    fn count(self) -> usize {
        (self.listed().count_ones() + self.headed().count_ones() * self.sources().count_ones())
            as usize
    }

    /// Where, in the run, the position in the list posting of `kind` is.
    #[inline]
    fn list_ordinal(self, kind: usize) -> usize {
        below(self.listed(), kind).count_ones() as usize
    }

    /// Where, in the run, the position in the head list of (`kind`, `source`) is.
    #[inline]
    fn head_ordinal(self, kind: usize, source: usize) -> usize {
        let sources = self.sources();
        (self.listed().count_ones()
            + below(self.headed(), kind).count_ones() * sources.count_ones()
            + below(sources, source).count_ones()) as usize
    }
}

/// Pushes onto a posting or position list, growing it by a quarter (not doubling), so
/// that the slack stays near an eighth of its length on average.
#[inline]
fn push_lean<T>(list: &mut Vec<T>, value: T) {
    if list.len() == list.capacity() {
        list.reserve_exact(list.capacity() / 4 + 4);
    }
    list.push(value);
}

/// The list of a single-list scope.
#[inline]
fn list_of(hook: &Webhook) -> Option<ListId> {
    match hook.scope() {
        ListScope::List(list) => Some(list),
        ListScope::All => None,
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// An empty registry with room for `capacity` webhooks before the storage grows.
    pub fn with_capacity(capacity: usize) -> Registry {
        let mut registry = Registry::default();
        registry.reserve(capacity);
        registry
    }

    /// Makes room for `additional` more webhooks (their records, not their postings).
    fn reserve(&mut self, additional: usize) {
        self.hooks.reserve(additional);
        self.meta.reserve(additional);
        let (hooks, hasher) = (&self.hooks, &self.hasher);
        self.ids
            .reserve(additional, |&slot| hash_slot(hasher, hooks, slot));
    }

    /// The number of webhooks, active or not.
    #[inline]
    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    /// Whether it holds no webhook.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Whether it holds a webhook with this id.
    #[inline]
    pub fn contains(&self, id: WebhookId) -> bool {
        self.slot_of(id).is_some()
    }

    /// The webhook with this id.
    ///
    /// There is no `get_mut`: a change to events, sources or scope must go through
    /// [`insert`](Registry::insert) (an upsert by id) so the index follows it.
    #[inline]
    pub fn get(&self, id: WebhookId) -> Option<&Webhook> {
        let slot = self.slot_of(id)?;
        Some(&self.hooks[slot as usize])
    }

    /// Every webhook, active or not, in unspecified order.
    pub fn iter(&self) -> RegistryIter<'_> {
        RegistryIter {
            hooks: self.hooks.iter(),
        }
    }

    /// Adds `hook` and returns its id; replaces the webhook with the same id, if any.
    ///
    /// A webhook without an id is given a fresh one (greater than every id seen so far, or,
    /// once `u64::MAX` itself was used, the lowest free one), stored in it. An inactive webhook
    /// is kept but reaches no event until reactivated.
    ///
    /// # Panics
    ///
    /// If it would hold more than `u32::MAX` webhooks, or postings (about 1.5 TB of them).
    pub fn insert(&mut self, hook: Webhook) -> WebhookId {
        let (id, slot) = self.put(hook);
        if self.hooks[slot as usize].is_active() {
            self.post(slot);
        }
        id
    }

    /// Stores `hook` under its id (given one if it has none), replacing and unposting the
    /// webhook that had that id; posts nothing. Returns the id and the slot.
    fn put(&mut self, mut hook: Webhook) -> (WebhookId, u32) {
        let (id, fresh) = match hook.id() {
            Some(id) => {
                self.next_id = self.next_id.max(id.get().saturating_add(1));
                self.next_id_reached_max |= self.next_id == u64::MAX;
                (id, false)
            }
            None => {
                // Normally the first candidate is free at once. Once an id of u64::MAX was
                // seen, the search wraps around to the lowest free id instead of failing.
                // Until `next_id` reached u64::MAX it is above every id held: no need to
                // look. After, the search wraps around to the lowest free id.
                let mut candidate = self.next_id.max(1);
                if self.next_id_reached_max {
                    while self.contains(WebhookId::new(candidate)) {
                        candidate = candidate.checked_add(1).unwrap_or(1);
                    }
                }
                self.next_id = candidate.saturating_add(1);
                self.next_id_reached_max |= self.next_id == u64::MAX;
                let id = WebhookId::new(candidate);
                hook.set_id(id);
                (id, true)
            }
        };
        let meta = Meta::of(&hook);
        // A fresh id was just found free: no need to look for it again.
        if let Some(slot) = self.slot_of(id).filter(|_| !fresh) {
            self.unpost(slot);
            self.hooks[slot as usize] = hook;
            self.meta[slot as usize] = meta;
            return (id, slot);
        }
        let slot = u32::try_from(self.hooks.len())
            .ok()
            .filter(|&slot| slot != u32::MAX)
            .expect("posthook: a registry holds fewer than u32::MAX webhooks");
        self.hooks.push(hook);
        self.meta.push(meta);
        let (hooks, hasher) = (&self.hooks, &self.hasher);
        self.ids.insert_unique(hash_id(hasher, id), slot, |&slot| {
            hash_slot(hasher, hooks, slot)
        });
        (id, slot)
    }

    /// [`put`](Registry::put) for each webhook of `hooks` into an empty registry, with the
    /// same ids, slots and upserts, but the id table filled in the order of its buckets (a
    /// radix sort of the hashes) rather than at random: one pass over the table instead of a
    /// cache miss per webhook.
    fn put_all(&mut self, hooks: impl Iterator<Item = Webhook>) {
        debug_assert!(self.is_empty());
        let mut hooks = hooks;
        // Ids as `put` would give them; none is looked up, since until `next_id` reaches
        // u64::MAX a fresh id is above every id held.
        while !self.next_id_reached_max {
            let Some(mut hook) = hooks.next() else { break };
            match hook.id() {
                Some(id) => self.next_id = self.next_id.max(id.get().saturating_add(1)),
                None => {
                    let id = self.next_id.max(1);
                    self.next_id = id.saturating_add(1);
                    hook.set_id(WebhookId::new(id));
                }
            }
            self.next_id_reached_max |= self.next_id == u64::MAX;
            assert!(
                self.hooks.len() < u32::MAX as usize,
                "posthook: a registry holds fewer than u32::MAX webhooks"
            );
            self.meta.push(Meta::of(&hook));
            self.hooks.push(hook);
        }
        // The id table, bucket by bucket (radix sort by the bits that pick the bucket).
        let buckets = (self.ids.capacity().max(self.hooks.len()) * 8 / 7 + 1).next_power_of_two();
        let mask = (buckets - 1) as u64;
        let mut order: Vec<(u64, u32)> = self
            .hooks
            .iter()
            .zip(0..)
            .map(|(hook, slot)| (hash_slot_of(&self.hasher, hook), slot))
            .collect();
        radix_sort_by_bits(&mut order, mask);
        let mut dead = Vec::new();
        for (hash, slot) in order {
            let id = self.hooks[slot as usize].id();
            let (hooks, hasher) = (&self.hooks, &self.hasher);
            match self.ids.entry(
                hash,
                |&s| hooks[s as usize].id() == id,
                |&s| hash_slot(hasher, hooks, s),
            ) {
                hashbrown::hash_table::Entry::Vacant(vacant) => {
                    vacant.insert(slot);
                }
                hashbrown::hash_table::Entry::Occupied(occupied) => {
                    // The same id again, later in the input (slots of one hash come in
                    // order): as `put` does, the later webhook replaces the earlier one in
                    // the earlier one's slot.
                    let first = *occupied.get() as usize;
                    self.hooks.swap(first, slot as usize);
                    self.meta.swap(first, slot as usize);
                    dead.push(slot);
                }
            }
        }
        // Drop the replaced ones, last slot first, as `remove` would.
        dead.sort_unstable();
        for &slot in dead.iter().rev() {
            let last = (self.hooks.len() - 1) as u32;
            self.hooks.swap_remove(slot as usize);
            self.meta.swap_remove(slot as usize);
            if slot != last {
                self.relocate(last, slot);
            }
        }
        // Past u64::MAX, fresh ids need looking up: one at a time (posted by the caller).
        for hook in hooks {
            self.put(hook);
        }
    }

    /// Posts every active webhook of a registry in which none is posted yet, each posting
    /// list built at its exact size in one go: the bulk build behind [`Extend`] into an empty
    /// registry. The index it leaves is the one `post` would have built, but for the order
    /// within posting lists.
    fn post_all(&mut self) {
        debug_assert!(self.positions.is_empty() && self.lists.is_empty());
        let mut total = 0usize;
        let mut per_pair = [0usize; PAIRS];
        let mut listed = 0usize;
        for (hook, meta) in self.hooks.iter().zip(&mut self.meta) {
            let count = meta.count();
            if count == 0 || !hook.is_active() {
                continue;
            }
            meta.start = u32::try_from(total)
                .ok()
                .filter(|&start| start != UNPOSTED)
                .expect("posthook: a registry holds fewer than u32::MAX postings");
            total += count;
            listed += meta.listed().count_ones() as usize;
            for kind in ones(meta.headed()) {
                for source in ones(meta.sources()) {
                    per_pair[kind * Source::ALL.len() + source] += 1;
                }
            }
        }
        if total == 0 {
            return;
        }
        self.positions = vec![0; total];
        self.heads = per_pair.iter().map(|&n| Vec::with_capacity(n)).collect();
        // Heads: slot by slot, each webhook's head positions in the order of its run.
        let mut scoped: Vec<(ListId, u8, u32)> = Vec::with_capacity(listed);
        for (slot, (hook, meta)) in self.hooks.iter().zip(&self.meta).enumerate() {
            if meta.start == UNPOSTED {
                continue;
            }
            let slot = slot as u32;
            let listed = meta.listed();
            if let Some(list) = list_of(hook).filter(|_| listed != 0) {
                scoped.extend(ones(listed).map(|kind| (list, kind as u8, slot)));
            }
            let mut at = meta.start as usize + listed.count_ones() as usize;
            for kind in ones(meta.headed()) {
                for source in ones(meta.sources()) {
                    let postings = &mut self.heads[kind * Source::ALL.len() + source];
                    self.positions[at] = postings.len() as u32;
                    postings.push(slot);
                    at += 1;
                }
            }
        }
        // Lists: grouped by (list, kind), so that each posting list is made once, exactly.
        scoped.sort_unstable_by_key(|&(list, kind, slot)| {
            u128::from(list.get()) << 64 | u128::from(kind) << 32 | u128::from(slot)
        });
        let keys = scoped.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)).count();
        self.lists.reserve(keys);
        for group in scoped.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (list, kind, _) = group[0];
            let postings: Vec<Scoped> = group
                .iter()
                .enumerate()
                .map(|(position, &(_, _, slot))| {
                    let meta = self.meta[slot as usize];
                    self.positions[meta.start as usize + meta.list_ordinal(usize::from(kind))] =
                        position as u32;
                    Scoped {
                        slot,
                        sources: meta.sources(),
                    }
                })
                .collect();
            self.lists.insert((list, kind), postings);
        }
    }

    /// Removes the webhook with this id and returns it.
    pub fn remove(&mut self, id: WebhookId) -> Option<Webhook> {
        let hooks = &self.hooks;
        let entry = self
            .ids
            .find_entry(hash_id(&self.hasher, id), |&slot| {
                hooks[slot as usize].id() == Some(id)
            })
            .ok()?;
        let (slot, _) = entry.remove();
        self.unpost(slot);
        let last = (self.hooks.len() - 1) as u32;
        let removed = self.hooks.swap_remove(slot as usize);
        self.meta.swap_remove(slot as usize);
        if slot != last {
            // The last webhook moved into the hole: repoint its postings and its id.
            self.relocate(last, slot);
        }
        Some(removed)
    }

    /// Switches the webhook on or (manually) off, at once for [`matches`](Registry::matches);
    /// `false` if there is no such webhook.
    ///
    /// Like [`Webhook::set_active`]: switching off keeps an earlier reason (e.g.
    /// [`Deactivation::Gone`]); switching on clears any reason.
    pub fn set_active(&mut self, id: WebhookId, active: bool) -> bool {
        self.update(id, |hook| hook.set_active(active))
    }

    /// Switches the webhook off for `reason` (a `410 Gone` answer calls this with
    /// [`Deactivation::Gone`]), at once for [`matches`](Registry::matches); `false` if there is
    /// no such webhook.
    pub fn deactivate(&mut self, id: WebhookId, reason: Deactivation) -> bool {
        self.update(id, |hook| hook.deactivate(reason))
    }

    /// The active webhooks that `event` must reach, each once, in unspecified order.
    ///
    /// Costs one hash lookup (for a list-aware kind on a list) and O(1) per webhook yielded;
    /// allocates nothing.
    pub fn matches(&self, event: &Event) -> Matches<'_> {
        self.matches_parts(event.kind(), event.source(), event.list())
    }

    /// [`matches`](Registry::matches) for an event of `kind` from `source` on `list`, without
    /// an [`Event`] at hand.
    pub fn matches_parts(
        &self,
        kind: EventKind,
        source: Source,
        list: Option<ListId>,
    ) -> Matches<'_> {
        let head = self
            .heads
            .get(pair(kind, source))
            .map_or(&[][..], Vec::as_slice);
        let scoped = match list {
            Some(list) if kind.is_list_aware() => self
                .lists
                .get(&(list, kind.index() as u8))
                .map_or(&[][..], Vec::as_slice),
            _ => &[],
        };
        let source = 1 << source.index();
        let wanted = scoped.iter().filter(|p| p.sources & source != 0).count();
        Matches {
            hooks: &self.hooks,
            head: head.iter(),
            scoped: scoped.iter(),
            source,
            wanted,
        }
    }

    /// Gives back the memory that removals, deactivations and growth left unused.
    pub fn shrink_to_fit(&mut self) {
        self.compact();
        self.positions.shrink_to_fit();
        self.hooks.shrink_to_fit();
        self.meta.shrink_to_fit();
        let (hooks, hasher) = (&self.hooks, &self.hasher);
        self.ids
            .shrink_to_fit(|&slot| hash_slot(hasher, hooks, slot));
        for postings in &mut self.heads {
            postings.shrink_to_fit();
        }
        for postings in self.lists.values_mut() {
            postings.shrink_to_fit();
        }
        self.lists.shrink_to_fit();
    }

    /// The slot of the webhook with this id.
    #[inline]
    fn slot_of(&self, id: WebhookId) -> Option<u32> {
        let hooks = &self.hooks;
        self.ids
            .find(hash_id(&self.hasher, id), |&slot| {
                hooks[slot as usize].id() == Some(id)
            })
            .copied()
    }

    /// Applies `change` to the webhook's state and brings the index in line.
    fn update(&mut self, id: WebhookId, change: impl FnOnce(&mut Webhook)) -> bool {
        let Some(slot) = self.slot_of(id) else {
            return false;
        };
        let hook = &mut self.hooks[slot as usize];
        let was_active = hook.is_active();
        change(hook);
        match (was_active, hook.is_active()) {
            (false, true) => self.post(slot),
            (true, false) => self.unpost(slot),
            _ => {}
        }
        true
    }

    /// Posts the webhook in `slot` (which is in no posting list) and records its positions.
    fn post(&mut self, slot: u32) {
        let meta = self.meta[slot as usize];
        let count = meta.count();
        if count == 0 {
            return;
        }
        if self.heads.is_empty() {
            self.heads = vec![Vec::new(); PAIRS];
        }
        let start = u32::try_from(self.positions.len())
            .ok()
            .filter(|&start| start != UNPOSTED)
            .expect("posthook: a registry holds fewer than u32::MAX postings");
        self.positions.reserve(count);
        let listed = meta.listed();
        if let Some(list) = list_of(&self.hooks[slot as usize]).filter(|_| listed != 0) {
            let sources = meta.sources();
            for kind in ones(listed) {
                let postings = self.lists.entry((list, kind as u8)).or_default();
                push_lean(&mut self.positions, postings.len() as u32);
                push_lean(postings, Scoped { slot, sources });
            }
        }
        for kind in ones(meta.headed()) {
            for source in ones(meta.sources()) {
                let postings = &mut self.heads[kind * Source::ALL.len() + source];
                push_lean(&mut self.positions, postings.len() as u32);
                push_lean(postings, slot);
            }
        }
        self.meta[slot as usize].start = start;
    }

    /// Takes the webhook in `slot` out of the posting lists if it is in them.
    fn unpost(&mut self, slot: u32) {
        let meta = self.meta[slot as usize];
        if meta.start == UNPOSTED {
            return;
        }
        let (start, count) = (meta.start as usize, meta.count());
        let mut at = start;
        let listed = meta.listed();
        if let Some(list) = list_of(&self.hooks[slot as usize]).filter(|_| listed != 0) {
            for kind in ones(listed) {
                let position = self.positions[at] as usize;
                at += 1;
                let key = (list, kind as u8);
                let Some(postings) = self.lists.get_mut(&key) else {
                    unreachable!("posting list of a posted webhook")
                };
                debug_assert_eq!(postings[position].slot, slot);
                postings.swap_remove(position);
                if let Some(moved) = postings.get(position) {
                    // Another webhook took this position: tell it.
                    let moved = self.meta[moved.slot as usize];
                    self.positions[moved.start as usize + moved.list_ordinal(kind)] =
                        position as u32;
                } else if postings.is_empty() {
                    self.lists.remove(&key);
                }
            }
        }
        for kind in ones(meta.headed()) {
            for source in ones(meta.sources()) {
                let position = self.positions[at] as usize;
                at += 1;
                let postings = &mut self.heads[kind * Source::ALL.len() + source];
                debug_assert_eq!(postings[position], slot);
                postings.swap_remove(position);
                if let Some(&moved) = postings.get(position) {
                    let moved = self.meta[moved as usize];
                    self.positions[moved.start as usize + moved.head_ordinal(kind, source)] =
                        position as u32;
                }
            }
        }
        self.meta[slot as usize].start = UNPOSTED;
        if start + count == self.positions.len() {
            self.positions.truncate(start);
        } else {
            self.garbage += count;
            if self.garbage > GARBAGE_FLOOR && self.garbage * 2 > self.positions.len() {
                self.compact();
            }
        }
    }

    /// Copies the live runs of `positions` together, dropping the garbage: O(live
    /// positions), paid for by the at least as many positions unposted since the last one.
    fn compact(&mut self) {
        if self.garbage == 0 {
            return;
        }
        let mut live = Vec::with_capacity(self.positions.len() - self.garbage);
        for meta in &mut self.meta {
            if meta.start != UNPOSTED {
                let start = meta.start as usize;
                meta.start = live.len() as u32;
                live.extend_from_slice(&self.positions[start..start + meta.count()]);
            }
        }
        self.positions = live;
        self.garbage = 0;
        #[cfg(test)]
        {
            self.compactions += 1;
        }
    }

    /// The webhook that was in `from` is now in `to`: repoint its postings and its id.
    fn relocate(&mut self, from: u32, to: u32) {
        let hook = &self.hooks[to as usize];
        if let Some(id) = hook.id() {
            if let Some(slot) = self.ids.find_mut(hash_id(&self.hasher, id), |&s| s == from) {
                *slot = to;
            }
        }
        let meta = self.meta[to as usize];
        if meta.start == UNPOSTED {
            return;
        }
        let mut at = meta.start as usize;
        let listed = meta.listed();
        if let Some(list) = list_of(hook).filter(|_| listed != 0) {
            for kind in ones(listed) {
                let position = self.positions[at] as usize;
                at += 1;
                let Some(postings) = self.lists.get_mut(&(list, kind as u8)) else {
                    unreachable!("posting list of a posted webhook")
                };
                debug_assert_eq!(postings[position].slot, from);
                postings[position].slot = to;
            }
        }
        for kind in ones(meta.headed()) {
            for source in ones(meta.sources()) {
                let position = self.positions[at] as usize;
                at += 1;
                let postings = &mut self.heads[kind * Source::ALL.len() + source];
                debug_assert_eq!(postings[position], from);
                postings[position] = to;
            }
        }
    }
}

/// The hash under which an id is found in [`Registry::ids`].
#[inline]
fn hash_id(hasher: &RandomState, id: WebhookId) -> u64 {
    hasher.hash_one(id.get())
}

/// The hash of a webhook's entry in [`Registry::ids`].
#[inline]
fn hash_slot_of(hasher: &RandomState, hook: &Webhook) -> u64 {
    hasher.hash_one(hook.id().map_or(0, WebhookId::get))
}

/// Sorts `(hash, slot)` pairs by the bits of `hash` in `mask` (a run of low bits), stably:
/// an LSD radix sort, 11 bits a pass.
fn radix_sort_by_bits(pairs: &mut Vec<(u64, u32)>, mask: u64) {
    const BITS: u32 = 11;
    let bits = 64 - mask.leading_zeros();
    let mut from = std::mem::take(pairs);
    let mut to = vec![(0, 0); from.len()];
    let mut shift = 0;
    while shift < bits {
        let digit = |hash: u64| ((hash & mask) >> shift) as usize & ((1 << BITS) - 1);
        let mut starts = vec![0usize; 1 << BITS];
        for &(hash, _) in &from {
            starts[digit(hash)] += 1;
        }
        let mut total = 0;
        for start in &mut starts {
            (*start, total) = (total, total + *start);
        }
        for &pair in &from {
            let d = digit(pair.0);
            to[starts[d]] = pair;
            starts[d] += 1;
        }
        std::mem::swap(&mut from, &mut to);
        shift += BITS;
    }
    *pairs = from;
}

/// The hash of the entry for `slot`, from the id of the webhook there.
#[inline]
fn hash_slot(hasher: &RandomState, hooks: &[Webhook], slot: u32) -> u64 {
    hasher.hash_one(hooks[slot as usize].id().map_or(0, WebhookId::get))
}

impl fmt::Debug for Registry {
    /// Writes the webhooks by id.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.hooks.iter().map(|w| (w.id(), w)))
            .finish()
    }
}

impl Extend<Webhook> for Registry {
    /// Inserts each webhook (an upsert by id, see [`Registry::insert`]), with room made up
    /// front for as many as the iterator announces. Into an empty registry (and so for
    /// [`FromIterator`]) this is the bulk build: the webhooks are stored first, then each
    /// posting list is made at its exact size in one go — faster than one `insert` at a time,
    /// and with no growth slack in the index.
    fn extend<I: IntoIterator<Item = Webhook>>(&mut self, hooks: I) {
        let hooks = hooks.into_iter();
        self.reserve(hooks.size_hint().0);
        if self.is_empty() {
            self.put_all(hooks);
            self.post_all();
        } else {
            for hook in hooks {
                self.insert(hook);
            }
        }
    }
}

impl FromIterator<Webhook> for Registry {
    fn from_iter<I: IntoIterator<Item = Webhook>>(hooks: I) -> Self {
        let mut registry = Registry::new();
        registry.extend(hooks);
        registry
    }
}

impl<'a> IntoIterator for &'a Registry {
    type Item = &'a Webhook;
    type IntoIter = RegistryIter<'a>;

    fn into_iter(self) -> RegistryIter<'a> {
        self.iter()
    }
}

/// The webhooks an event must reach: see [`Registry::matches`].
///
/// Each active matching webhook once, in unspecified order (in fact: the all-lists or
/// list-agnostic posting list, then the event's list). Its length is known up front.
#[derive(Clone)]
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Matches<'a> {
    hooks: &'a [Webhook],
    head: std::slice::Iter<'a, u32>,
    /// The list posting of the event's (list, kind): entries without the event's source are
    /// skipped.
    scoped: std::slice::Iter<'a, Scoped>,
    /// The event's source, as a bit of [`Scoped::sources`].
    source: u32,
    /// How many of `scoped`'s entries are still to be yielded.
    wanted: usize,
}

impl<'a> Iterator for Matches<'a> {
    type Item = &'a Webhook;

    #[inline]
    fn next(&mut self) -> Option<&'a Webhook> {
        if let Some(&slot) = self.head.next() {
            return Some(&self.hooks[slot as usize]);
        }
        while self.wanted > 0 {
            let posting = self.scoped.next()?;
            if posting.sources & self.source != 0 {
                self.wanted -= 1;
                return Some(&self.hooks[posting.slot as usize]);
            }
        }
        None
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.head.len() + self.wanted;
        (len, Some(len))
    }

    fn fold<B, F: FnMut(B, &'a Webhook) -> B>(self, init: B, mut f: F) -> B {
        let (hooks, source) = (self.hooks, self.source);
        let acc = self
            .head
            .fold(init, |acc, &slot| f(acc, &hooks[slot as usize]));
        if self.wanted == 0 {
            return acc;
        }
        self.scoped
            .filter(|posting| posting.sources & source != 0)
            .fold(acc, |acc, posting| f(acc, &hooks[posting.slot as usize]))
    }
}

impl ExactSizeIterator for Matches<'_> {}

impl FusedIterator for Matches<'_> {}

impl fmt::Debug for Matches<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matches")
            .field("remaining", &self.len())
            .finish()
    }
}

/// Every webhook of a [`Registry`]: see [`Registry::iter`].
#[derive(Clone)]
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct RegistryIter<'a> {
    hooks: std::slice::Iter<'a, Webhook>,
}

impl<'a> Iterator for RegistryIter<'a> {
    type Item = &'a Webhook;

    #[inline]
    fn next(&mut self) -> Option<&'a Webhook> {
        self.hooks.next()
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.hooks.size_hint()
    }
}

impl DoubleEndedIterator for RegistryIter<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        self.hooks.next_back()
    }
}

impl ExactSizeIterator for RegistryIter<'_> {}

impl FusedIterator for RegistryIter<'_> {}

impl fmt::Debug for RegistryIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryIter")
            .field("remaining", &self.hooks.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventSet, SourceSet};

    impl Registry {
        /// Checks the index against the webhooks: every active webhook is posted once per
        /// pair, in the right list, at the position it remembers; nothing else is posted.
        fn check(&self) {
            assert_eq!(self.hooks.len(), self.meta.len());
            assert_eq!(self.hooks.len(), self.ids.len());
            let mut expected = 0;
            let mut runs = 0;
            for (slot, (hook, meta)) in self.hooks.iter().zip(&self.meta).enumerate() {
                let id = hook.id().unwrap();
                assert_eq!(self.slot_of(id), Some(slot as u32));
                let fresh = Meta::of(hook);
                assert_eq!(meta.bits, fresh.bits);
                if !hook.is_active() || meta.count() == 0 {
                    assert_eq!(meta.start, UNPOSTED);
                    continue;
                }
                assert_ne!(meta.start, UNPOSTED);
                runs += meta.count();
                let run = &self.positions[meta.start as usize..][..meta.count()];
                for kind in EventKind::ALL {
                    for source in Source::ALL {
                        if !hook.events().contains(kind) || !hook.sources().contains(source) {
                            continue;
                        }
                        let (k, s) = (kind.index(), source.index());
                        match hook.scope() {
                            ListScope::List(list) if kind.is_list_aware() => {
                                let postings = &self.lists[&(list, k as u8)];
                                let position = run[meta.list_ordinal(k)] as usize;
                                assert_eq!(postings[position].slot as usize, slot);
                                assert_eq!(postings[position].sources, meta.sources());
                            }
                            _ => {
                                let postings = &self.heads[pair(kind, source)];
                                let position = run[meta.head_ordinal(k, s)] as usize;
                                assert_eq!(postings[position] as usize, slot);
                                expected += 1;
                            }
                        }
                    }
                    if hook.events().contains(kind)
                        && kind.is_list_aware()
                        && matches!(hook.scope(), ListScope::List(_))
                    {
                        expected += 1;
                    }
                }
            }
            let posted: usize = self.heads.iter().map(Vec::len).sum::<usize>()
                + self.lists.values().map(Vec::len).sum::<usize>();
            assert_eq!(posted, expected, "stray postings");
            assert_eq!(
                self.positions.len(),
                runs + self.garbage,
                "garbage miscounted"
            );
            assert!(
                self.lists.values().all(|p| !p.is_empty()),
                "empty list kept"
            );
        }
    }

    /// A xorshift generator: `next(n)` is in `0..n`.
    fn xorshift(mut state: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        }
    }

    /// A webhook of random events and sources (at least one each), on list `0..lists`.
    fn random_hook(next: &mut impl FnMut(u64) -> u64, lists: u64) -> Webhook {
        let events: EventSet = (0..1 + next(4))
            .map(|_| EventKind::ALL[next(25) as usize])
            .collect();
        let sources: SourceSet = (0..1 + next(4))
            .map(|_| Source::ALL[next(4) as usize])
            .collect();
        Webhook::builder("h", "https://example.com/h")
            .events(events)
            .sources(sources)
            .scope(ListScope::from_list_id(next(lists)))
            .build()
            .unwrap()
    }

    #[test]
    fn the_bulk_build_is_the_index_insert_builds() {
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        let hooks: Vec<Webhook> = (0..3000)
            .map(|i| {
                let mut hook = random_hook(&mut next, 6);
                // Some ids given, some repeated (an upsert within the batch), most fresh.
                if next(4) == 0 {
                    hook.set_id(WebhookId::new(1 + next(500)));
                }
                if i % 7 == 0 {
                    hook.set_active(false);
                }
                hook
            })
            .collect();
        let bulk: Registry = hooks.iter().cloned().collect();
        bulk.check();
        let mut one_by_one = Registry::new();
        for hook in hooks {
            one_by_one.insert(hook);
        }
        assert_eq!(bulk.len(), one_by_one.len());
        for hook in one_by_one.iter() {
            let id = hook.id().unwrap();
            assert_eq!(
                bulk.get(id),
                Some(hook),
                "the later of two with one id wins"
            );
        }
        for kind in EventKind::ALL {
            for source in Source::ALL {
                for list in [None, ListId::new(1), ListId::new(3), ListId::new(9)] {
                    let ids = |r: &Registry| {
                        let mut ids: Vec<_> = r
                            .matches_parts(kind, source, list)
                            .map(|w| w.id().unwrap())
                            .collect();
                        ids.sort();
                        ids
                    };
                    assert_eq!(ids(&bulk), ids(&one_by_one), "{kind:?} {source:?} {list:?}");
                    assert_eq!(
                        bulk.matches_parts(kind, source, list).len(),
                        ids(&bulk).len()
                    );
                }
            }
        }
        // A bulk-built registry goes on like any other.
        let mut bulk = bulk;
        for id in 1..400 {
            bulk.remove(WebhookId::new(id));
            bulk.check();
        }
    }

    #[test]
    fn the_bulk_build_gives_ids_as_insert_does_past_the_last_id() {
        let hook = |id: Option<u64>| {
            let mut hook = Webhook::builder("h", "https://example.com/h")
                .events([EventKind::Open])
                .sources([Source::Api])
                .scope(ListScope::from_list_id(3))
                .build()
                .unwrap();
            if let Some(id) = id {
                hook.set_id(WebhookId::new(id));
            }
            hook
        };
        let input = [
            None,
            Some(7),
            None,
            Some(u64::MAX),
            None,
            None,
            Some(2),
            None,
        ]
        .map(hook);
        let bulk: Registry = input.iter().cloned().collect();
        bulk.check();
        let mut one_by_one = Registry::new();
        let ids: Vec<WebhookId> = input.into_iter().map(|h| one_by_one.insert(h)).collect();
        assert_eq!(bulk.len(), one_by_one.len());
        for id in ids {
            assert_eq!(bulk.get(id), one_by_one.get(id));
        }
    }

    #[test]
    fn the_index_stays_consistent_under_churn() {
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        let mut registry = Registry::new();
        for step in 0..2000 {
            let id = WebhookId::new(1 + next(40));
            match next(6) {
                0..=2 => {
                    let mut hook = random_hook(&mut next, 4);
                    // Mostly upserts by id; now and then a fresh id.
                    if next(8) != 0 {
                        hook.set_id(id);
                    }
                    registry.insert(hook);
                }
                3 => {
                    registry.remove(id);
                }
                4 => {
                    registry.set_active(id, next(2) == 0);
                }
                _ => {
                    registry.deactivate(id, Deactivation::Gone);
                }
            }
            registry.check();
            if step % 500 == 0 {
                registry.shrink_to_fit();
                registry.check();
                registry.clone().check();
            }
        }
        assert!(
            registry.compactions > 10,
            "churn compacted {}",
            registry.compactions
        );
    }
}
