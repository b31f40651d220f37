//! The matcher at scale: `Registry::matches` against a linear scan with `Webhook::wants`,
//! inserting and removing every webhook, and the memory a webhook takes.
//!
//! 1,000,000 webhooks over 10,000 lists (2% on all lists), 1–3 kinds and 1–4 sources each,
//! from a fixed seed. Run with
//!
//! ```text
//! cargo bench --bench registry -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Without `--bench` on the command line (`cargo test --benches`), it runs on 10,000 webhooks
//! as a smoke test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, FixedOffset};
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use posthook::{
    Event, EventKind, EventSet, ListId, ListScope, Registry, Source, SourceSet, Webhook, WebhookId,
};

const LISTS: u64 = 10_000;
const EVENTS: usize = 4096;

/// splitmix64: a tiny deterministic PRNG, so the bench needs no `rand`.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Data {
    /// The webhooks as inserted (without ids: the registry gives them).
    hooks: Vec<Webhook>,
    registry: Registry,
    /// Ids in a shuffled order, for removal.
    ids: Vec<WebhookId>,
    mixed: Vec<Event>,
    list_aware: Vec<Event>,
    not_list_aware: Vec<Event>,
}

fn now() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2024-05-06T07:08:09+02:00").unwrap()
}

fn webhook(rng: &mut SplitMix, i: usize) -> Webhook {
    let mut events = EventSet::empty();
    let kinds = 1 + rng.below(3) as usize;
    while events.len() < kinds {
        events.insert(EventKind::ALL[rng.below(25) as usize]);
    }
    let mut sources = SourceSet::empty();
    let count = 1 + rng.below(4) as usize;
    while sources.len() < count {
        sources.insert(Source::ALL[rng.below(4) as usize]);
    }
    let scope = if rng.below(100) < 2 {
        ListScope::All
    } else {
        ListScope::from_list_id(1 + rng.below(LISTS))
    };
    Webhook::builder(
        format!("hook {i}"),
        &format!("https://example.com/hooks/{i}"),
    )
    .events(events)
    .sources(sources)
    .scope(scope)
    .build()
    .unwrap()
}

fn event(rng: &mut SplitMix, kinds: &[EventKind]) -> Event {
    let kind = kinds[rng.below(kinds.len() as u64) as usize];
    let source = Source::ALL[rng.below(4) as usize];
    Event::new(kind, source, now()).with_list(ListId::new(1 + rng.below(LISTS)))
}

/// Counts the bytes live on the heap: forwards to the system allocator and keeps a total.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the count is one atomic add.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes live on the heap (requested sizes, without the allocator's own overhead).
fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn data() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        let n = if std::env::args().any(|a| a == "--bench") {
            1_000_000
        } else {
            10_000
        };
        let mut rng = SplitMix(0x5EED_0FB0_0C00);
        let hooks: Vec<Webhook> = (0..n).map(|i| webhook(&mut rng, i)).collect();
        // What the webhooks themselves take when cloned (a clone's strings are exact, the
        // generated ones are not): the part of a registry's bytes that is not the index.
        let live_before_clones = live();
        let clones: Vec<Webhook> = hooks.to_vec();
        let clone_bytes = (live() - live_before_clones) as f64 / n as f64;
        drop(clones);
        let live_before_registry = live();
        let mut registry = Registry::new();
        let mut ids: Vec<WebhookId> = hooks.iter().map(|w| registry.insert(w.clone())).collect();
        // Everything allocated since, less the id list the bench keeps for itself.
        let registry_live =
            live() - live_before_registry - ids.capacity() * std::mem::size_of::<WebhookId>();
        let live_before_bulk = live();
        let bulk: Registry = hooks.iter().cloned().collect();
        let bulk_live = live() - live_before_bulk;
        drop(bulk);
        println!("size_of::<Webhook>() = {}", std::mem::size_of::<Webhook>());
        println!(
            "memory ({n} webhooks, live heap bytes per webhook): a Vec<Webhook> of clones \
             {clone_bytes:.0}; a registry by insert() {:.0}, so an index of {:.0}; a registry \
             by collect() {:.0}, so an index of {:.0}",
            registry_live as f64 / n as f64,
            registry_live as f64 / n as f64 - clone_bytes,
            bulk_live as f64 / n as f64,
            bulk_live as f64 / n as f64 - clone_bytes,
        );
        for i in (1..ids.len()).rev() {
            ids.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let aware: Vec<EventKind> = EventKind::ALL
            .into_iter()
            .filter(|k| k.is_list_aware())
            .collect();
        let unaware: Vec<EventKind> = EventKind::ALL
            .into_iter()
            .filter(|k| !k.is_list_aware())
            .collect();
        let mut events = |kinds: &[EventKind]| -> Vec<Event> {
            (0..EVENTS).map(|_| event(&mut rng, kinds)).collect()
        };
        let mixed = events(&EventKind::ALL);
        let list_aware = events(&aware);
        let not_list_aware = events(&unaware);
        for (name, events) in [
            ("mixed", &mixed),
            ("list_aware", &list_aware),
            ("not_list_aware", &not_list_aware),
        ] {
            let total: usize = events.iter().map(|e| registry.matches(e).len()).sum();
            println!(
                "{name}: {:.1} matches per event on average",
                total as f64 / events.len() as f64
            );
        }
        Data {
            hooks,
            registry,
            ids,
            mixed,
            list_aware,
            not_list_aware,
        }
    })
}

/// Consumes the matches as a caller would: every `&Webhook` is produced and handed on.
#[inline]
fn consume<'a>(matches: impl Iterator<Item = &'a Webhook>) -> usize {
    let mut n = 0;
    for w in matches {
        black_box(w);
        n += 1;
    }
    n
}

fn matching(c: &mut Criterion) {
    let data = data();
    let registry = &data.registry;
    for (name, events) in [
        ("match/mixed", &data.mixed),
        ("match/list_aware", &data.list_aware),
        ("match/not_list_aware", &data.not_list_aware),
    ] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        group.sample_size(20);
        let mut i = 0;
        group.bench_function("registry", |b| {
            b.iter(|| {
                let e = &events[i % EVENTS];
                i += 1;
                consume(registry.matches(black_box(e)))
            })
        });
        let mut i = 0;
        group.bench_function("linear_scan", |b| {
            b.iter(|| {
                let e = &events[i % EVENTS];
                i += 1;
                let (kind, source, list) = (e.kind(), e.source(), e.list());
                consume(registry.iter().filter(|w| w.wants(kind, source, list)))
            })
        });
        group.finish();
    }
}

fn insert_remove(c: &mut Criterion) {
    let data = data();
    let mut group = c.benchmark_group("all");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(data.hooks.len() as u64));
    group.bench_function("insert_all", |b| {
        b.iter_batched(
            || data.hooks.clone(),
            |hooks| {
                let mut registry = Registry::new();
                for hook in hooks {
                    registry.insert(hook);
                }
                registry
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("collect_all", |b| {
        b.iter_batched(
            || data.hooks.clone(),
            |hooks| hooks.into_iter().collect::<Registry>(),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("remove_all_shuffled", |b| {
        b.iter_batched(
            || data.registry.clone(),
            |mut registry| {
                for &id in &data.ids {
                    black_box(registry.remove(id));
                }
                registry
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, matching, insert_remove);
criterion_main!(benches);
