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
use std::collections::hash_map::Entry as MapEntry;
use std::fmt;
use std::iter::FusedIterator;

use crate::{
    Deactivation, Event, EventKind, EventSet, ListId, ListScope, Source, SourceSet, Webhook,
    WebhookId,
};

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
/// sources, the webhook's position is posted in one posting list: for a list-aware kind and a
/// single-list scope, the list of (kind, source, that list); otherwise (all-lists scope, or a
/// kind that ignores lists) the head list of (kind, source). Each webhook is in each posting
/// list at most once, so an event's answer — head list, plus the list of its own list when the
/// kind is list-aware — holds every match exactly once, with no deduplication. Inactive
/// webhooks are kept but taken out of the posting lists, so matching never looks at them. Each
/// webhook remembers where its postings are, so it leaves the index without a search.
///
/// With `p` = |events| × |sources| of a webhook (at most 100):
///
/// | operation | cost |
/// |---|---|
/// | [`matches`](Registry::matches) | one hash lookup (list-aware kind on a list), then O(1) per webhook yielded; no allocation |
/// | [`insert`](Registry::insert) | O(p) amortized (an upsert also removes the old one's postings) |
/// | [`remove`](Registry::remove) | O(p + p′): its postings, and those of the webhook moved into its place |
/// | [`set_active`](Registry::set_active), [`deactivate`](Registry::deactivate) | O(p) when the state changes, O(1) otherwise |
/// | [`get`](Registry::get), [`contains`](Registry::contains), [`len`](Registry::len) | O(1) |
/// | [`iter`](Registry::iter), [`Clone`], [`shrink_to_fit`](Registry::shrink_to_fit) | O(n) |
///
/// # Memory
///
/// Measured by the `registry` bench (1,000,000 webhooks over 10,000 lists, 1–3 kinds and 1–4
/// sources each, so about 5 (kind, source) pairs per webhook), counting the bytes live on the
/// heap: the registry takes **321 bytes per webhook**. 179 of them are the webhook itself
/// (128 inline, the rest its name and URL); the other **142 bytes are the index**: the id map
/// (~35), a 48-byte record per webhook (its sets, its scope and up to six posting positions
/// inline; more go to the heap), the posting lists (4 bytes per pair, plus growth slack) and
/// the map of per-list posting lists (~40 bytes per (list, kind, source) in use, plus the
/// list). The process's resident set grows by 365 bytes per webhook (allocator overhead
/// included). Removing webhooks does not give memory back by itself: see
/// [`shrink_to_fit`](Registry::shrink_to_fit). Figures and method in `BENCHMARKS.md`.
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
    /// Beside each webhook: what the index needs to know of it, and where its postings are.
    meta: Vec<Meta>,
    /// Where each id's webhook is in `hooks`.
    ids: HashMap<WebhookId, u32>,
    /// Per (kind, source) pair: all-lists webhooks for a list-aware kind, every webhook for
    /// a kind that ignores lists. Empty until first used.
    heads: Vec<Vec<u32>>,
    /// Per (list, pair): webhooks scoped to that list, for list-aware kinds only.
    lists: HashMap<(ListId, u8), Vec<u32>>,
    /// Greater than every id seen so far: the next fresh id.
    next_id: u64,
}

/// The index's view of one webhook, kept apart from the webhook so that moving postings
/// around touches a small record.
#[derive(Clone)]
struct Meta {
    events: EventSet,
    sources: SourceSet,
    scope: ListScope,
    /// For the `i`-th (kind, source) pair of events × sources (kinds, then sources, in
    /// declaration order): its position in that pair's posting list. Meaningful only while
    /// the webhook is active.
    positions: Positions,
}

impl Meta {
    fn of(hook: &Webhook) -> Meta {
        let (events, sources) = (hook.events(), hook.sources());
        Meta {
            events,
            sources,
            scope: hook.scope(),
            positions: Positions::new(events.len() * sources.len()),
        }
    }

    /// The (kind, source) pairs, in the order of `positions`.
    fn pairs(&self) -> impl Iterator<Item = (EventKind, Source)> + use<> {
        let sources = self.sources;
        self.events
            .iter()
            .flat_map(move |kind| sources.iter().map(move |source| (kind, source)))
    }

    /// The index of the pair (kind, source) in `positions`.
    #[inline]
    fn ordinal(&self, kind: EventKind, source: Source) -> usize {
        let events = self.events.bits();
        let sources = u32::from(self.sources.bits());
        let kind_rank = (events & ((1u32 << kind.index()) - 1)).count_ones();
        let source_rank = (sources & ((1u32 << source.index()) - 1)).count_ones();
        (kind_rank * sources.count_ones() + source_rank) as usize
    }
}

/// Posting positions: inline for up to six pairs (most webhooks), else on the heap.
#[derive(Clone)]
enum Positions {
    Inline { len: u8, slots: [u32; 6] },
    Heap(Box<[u32]>),
}

impl Positions {
    fn new(len: usize) -> Positions {
        match u8::try_from(len) {
            Ok(len) if len <= 6 => Positions::Inline { len, slots: [0; 6] },
            _ => Positions::Heap(vec![0; len].into_boxed_slice()),
        }
    }

    #[inline]
    fn as_slice(&self) -> &[u32] {
        match self {
            Positions::Inline { len, slots } => &slots[..usize::from(*len)],
            Positions::Heap(slots) => slots,
        }
    }

    #[inline]
    fn as_mut_slice(&mut self) -> &mut [u32] {
        match self {
            Positions::Inline { len, slots } => &mut slots[..usize::from(*len)],
            Positions::Heap(slots) => slots,
        }
    }
}

/// Where the postings of a webhook for one (kind, source) pair live.
#[derive(Clone, Copy)]
enum Bucket {
    Head(usize),
    List(ListId, u8),
}

impl Bucket {
    #[inline]
    fn of(kind: EventKind, source: Source, scope: ListScope) -> Bucket {
        let pair = pair(kind, source);
        match scope {
            ListScope::List(list) if kind.is_list_aware() => Bucket::List(list, pair as u8),
            _ => Bucket::Head(pair),
        }
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// An empty registry with room for `capacity` webhooks before the storage grows.
    pub fn with_capacity(capacity: usize) -> Registry {
        Registry {
            hooks: Vec::with_capacity(capacity),
            meta: Vec::with_capacity(capacity),
            ids: HashMap::with_capacity(capacity),
            ..Registry::default()
        }
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
        self.ids.contains_key(&id)
    }

    /// The webhook with this id.
    ///
    /// There is no `get_mut`: a change to events, sources or scope must go through
    /// [`insert`](Registry::insert) (an upsert by id) so the index follows it.
    #[inline]
    pub fn get(&self, id: WebhookId) -> Option<&Webhook> {
        let slot = *self.ids.get(&id)?;
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
    /// If it would hold more than `u32::MAX` webhooks (about 1.5 TB of them).
    pub fn insert(&mut self, mut hook: Webhook) -> WebhookId {
        let id = match hook.id() {
            Some(id) => {
                self.next_id = self.next_id.max(id.get().saturating_add(1));
                id
            }
            None => {
                // Normally the first candidate is free at once. Once an id of u64::MAX was
                // seen, the search wraps around to the lowest free id instead of failing.
                let mut candidate = self.next_id.max(1);
                while self.ids.contains_key(&WebhookId::new(candidate)) {
                    candidate = candidate.checked_add(1).unwrap_or(1);
                }
                self.next_id = candidate.saturating_add(1);
                let id = WebhookId::new(candidate);
                hook.set_id(id);
                id
            }
        };
        let meta = Meta::of(&hook);
        match self.ids.entry(id) {
            MapEntry::Occupied(occupied) => {
                let slot = *occupied.get();
                self.unindex(slot);
                self.hooks[slot as usize] = hook;
                self.meta[slot as usize] = meta;
                self.index(slot);
            }
            MapEntry::Vacant(vacant) => {
                let slot = u32::try_from(self.hooks.len())
                    .expect("posthook: a registry holds at most u32::MAX webhooks");
                vacant.insert(slot);
                self.hooks.push(hook);
                self.meta.push(meta);
                self.index(slot);
            }
        }
        id
    }

    /// Removes the webhook with this id and returns it.
    pub fn remove(&mut self, id: WebhookId) -> Option<Webhook> {
        let slot = self.ids.remove(&id)?;
        self.unindex(slot);
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
        let pair = pair(kind, source);
        let head = self.heads.get(pair).map_or(&[][..], Vec::as_slice);
        let scoped = match list {
            Some(list) if kind.is_list_aware() => self
                .lists
                .get(&(list, pair as u8))
                .map_or(&[][..], Vec::as_slice),
            _ => &[],
        };
        Matches {
            hooks: &self.hooks,
            head: head.iter(),
            scoped: scoped.iter(),
        }
    }

    /// Gives back the memory that removals and deactivations left unused.
    pub fn shrink_to_fit(&mut self) {
        self.hooks.shrink_to_fit();
        self.meta.shrink_to_fit();
        self.ids.shrink_to_fit();
        for postings in &mut self.heads {
            postings.shrink_to_fit();
        }
        for postings in self.lists.values_mut() {
            postings.shrink_to_fit();
        }
        self.lists.shrink_to_fit();
    }

    /// Applies `change` to the webhook's state and brings the index in line.
    fn update(&mut self, id: WebhookId, change: impl FnOnce(&mut Webhook)) -> bool {
        let Some(&slot) = self.ids.get(&id) else {
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

    /// Posts the webhook in `slot` if it is active.
    fn index(&mut self, slot: u32) {
        if self.hooks[slot as usize].is_active() {
            self.post(slot);
        }
    }

    /// Takes the webhook in `slot` out of the posting lists if it is in them.
    fn unindex(&mut self, slot: u32) {
        if self.hooks[slot as usize].is_active() {
            self.unpost(slot);
        }
    }

    fn post(&mut self, slot: u32) {
        if self.heads.is_empty() {
            self.heads = vec![Vec::new(); PAIRS];
        }
        let meta = &mut self.meta[slot as usize];
        let scope = meta.scope;
        for ((kind, source), position) in meta.pairs().zip(meta.positions.as_mut_slice()) {
            let postings = match Bucket::of(kind, source, scope) {
                Bucket::Head(pair) => &mut self.heads[pair],
                Bucket::List(list, pair) => self.lists.entry((list, pair)).or_default(),
            };
            *position = postings.len() as u32;
            postings.push(slot);
        }
    }

    fn unpost(&mut self, slot: u32) {
        let meta = &self.meta[slot as usize];
        let (scope, pairs) = (meta.scope, meta.pairs());
        for ((kind, source), i) in pairs.zip(0..) {
            let position = self.meta[slot as usize].positions.as_slice()[i] as usize;
            let bucket = Bucket::of(kind, source, scope);
            let postings = match bucket {
                Bucket::Head(pair) => &mut self.heads[pair],
                Bucket::List(list, pair) => match self.lists.get_mut(&(list, pair)) {
                    Some(postings) => postings,
                    None => unreachable!("posting list of an active webhook"),
                },
            };
            debug_assert_eq!(postings[position], slot);
            postings.swap_remove(position);
            if let Some(&moved) = postings.get(position) {
                // Another webhook (not `slot`: a webhook is in a posting list once) took this
                // position: tell it.
                let moved = &mut self.meta[moved as usize];
                let ordinal = moved.ordinal(kind, source);
                moved.positions.as_mut_slice()[ordinal] = position as u32;
            } else if postings.is_empty() {
                if let Bucket::List(list, pair) = bucket {
                    self.lists.remove(&(list, pair));
                }
            }
        }
    }

    /// The webhook that was in `from` is now in `to`: repoint its postings and its id.
    fn relocate(&mut self, from: u32, to: u32) {
        let hook = &self.hooks[to as usize];
        if let Some(id) = hook.id() {
            self.ids.insert(id, to);
        }
        if !hook.is_active() {
            return;
        }
        let meta = &self.meta[to as usize];
        for ((kind, source), &position) in meta.pairs().zip(meta.positions.as_slice()) {
            let postings = match Bucket::of(kind, source, meta.scope) {
                Bucket::Head(pair) => &mut self.heads[pair],
                Bucket::List(list, pair) => match self.lists.get_mut(&(list, pair)) {
                    Some(postings) => postings,
                    None => unreachable!("posting list of an active webhook"),
                },
            };
            debug_assert_eq!(postings[position as usize], from);
            postings[position as usize] = to;
        }
    }
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
    /// Inserts each webhook (an upsert by id, see [`Registry::insert`]).
    fn extend<I: IntoIterator<Item = Webhook>>(&mut self, hooks: I) {
        for hook in hooks {
            self.insert(hook);
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
    scoped: std::slice::Iter<'a, u32>,
}

impl<'a> Iterator for Matches<'a> {
    type Item = &'a Webhook;

    #[inline]
    fn next(&mut self) -> Option<&'a Webhook> {
        loop {
            if let Some(&slot) = self.head.next() {
                return Some(&self.hooks[slot as usize]);
            }
            if self.scoped.len() == 0 {
                return None;
            }
            // Go on with the event's list: the hot path stays one slice.
            self.head = std::mem::take(&mut self.scoped);
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.head.len() + self.scoped.len();
        (len, Some(len))
    }

    fn fold<B, F: FnMut(B, &'a Webhook) -> B>(self, init: B, mut f: F) -> B {
        let hooks = self.hooks;
        let acc = self
            .head
            .fold(init, |acc, &slot| f(acc, &hooks[slot as usize]));
        self.scoped
            .fold(acc, |acc, &slot| f(acc, &hooks[slot as usize]))
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

    impl Registry {
        /// Checks the index against the webhooks: every active webhook is posted once per
        /// pair, in the right list, at the position it remembers; nothing else is posted.
        fn check(&self) {
            assert_eq!(self.hooks.len(), self.meta.len());
            assert_eq!(self.hooks.len(), self.ids.len());
            let mut expected = 0;
            for (slot, (hook, meta)) in self.hooks.iter().zip(&self.meta).enumerate() {
                assert_eq!(self.ids[&hook.id().unwrap()] as usize, slot);
                assert_eq!((meta.events, meta.sources), (hook.events(), hook.sources()));
                assert_eq!(meta.scope, hook.scope());
                if !hook.is_active() {
                    continue;
                }
                for ((kind, source), &position) in meta.pairs().zip(meta.positions.as_slice()) {
                    let postings = match Bucket::of(kind, source, meta.scope) {
                        Bucket::Head(pair) => &self.heads[pair],
                        Bucket::List(list, pair) => &self.lists[&(list, pair)],
                    };
                    assert_eq!(postings[position as usize] as usize, slot);
                    assert_eq!(meta.ordinal(kind, source), {
                        let i = meta.pairs().position(|p| p == (kind, source));
                        i.unwrap()
                    });
                    expected += 1;
                }
            }
            let posted: usize = self.heads.iter().map(Vec::len).sum::<usize>()
                + self.lists.values().map(Vec::len).sum::<usize>();
            assert_eq!(posted, expected, "stray postings");
            assert!(
                self.lists.values().all(|p| !p.is_empty()),
                "empty list kept"
            );
        }
    }

    #[test]
    fn the_index_stays_consistent_under_churn() {
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut registry = Registry::new();
        for step in 0..2000 {
            let id = WebhookId::new(1 + next(40));
            match next(6) {
                0..=2 => {
                    let events: EventSet = (0..1 + next(4))
                        .map(|_| EventKind::ALL[next(25) as usize])
                        .collect();
                    let sources: SourceSet = (0..1 + next(4))
                        .map(|_| Source::ALL[next(4) as usize])
                        .collect();
                    let mut hook = Webhook::builder("h", "https://example.com/h")
                        .events(events)
                        .sources(sources)
                        .scope(ListScope::from_list_id(next(4)))
                        .build()
                        .unwrap();
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
    }
}
