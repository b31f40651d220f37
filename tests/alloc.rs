//! Allocation counts: what the hot paths promise not to allocate.
//!
//! A counting global allocator (the only unsafe code in the project, test-only: it forwards to
//! the system allocator and counts, per thread, so parallel tests do not disturb each other).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use posthook::{Event, EventKind, ListId, ListScope, Registry, Source, Webhook};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Bytes allocated and not yet freed on this thread, and the most there were.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn grow(by: isize) {
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + by);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches only a
// thread-local `Cell` with a const initialiser, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        grow(layout.size() as isize);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        grow(-(layout.size() as isize));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        grow(new_size as isize - layout.size() as isize);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many allocations `f` makes on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

/// The most bytes `f` held at once on this thread, beyond what was live before.
fn peak_bytes<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get) - base;
    (usize::try_from(peak).unwrap_or(0), out)
}

/// Rejecting a body costs no more memory than accepting one of the same size: an invalid
/// 9.8 MB body (bad UTF-8, or a bad escape, at its end) peaks no higher than a valid one.
#[test]
fn rejecting_a_form_costs_no_more_than_accepting_it() {
    let note = "a".repeat(9_800_000);
    let valid = format!(
        "type=subscriber_note&date_time=2024-05-01T10%3A00%3A00%2B02%3A00&initiated_from=admin&note={note}"
    );
    let bad_utf8 = format!("{valid}%FF");
    let bad_escape = format!("{valid}%G1");
    let (accepting, accepted) = peak_bytes(|| posthook::Form::parse(valid.as_bytes()));
    assert!(accepted.is_ok());
    for bad in [&bad_utf8, &bad_escape] {
        let (rejecting, rejected) = peak_bytes(|| posthook::Form::parse(bad.as_bytes()));
        assert!(rejected.is_err());
        assert!(
            rejecting <= accepting + 4096,
            "rejecting peaked at {rejecting} bytes, accepting at {accepting}"
        );
    }
    let (accepting, accepted) = peak_bytes(|| Event::decode(valid.as_bytes()));
    assert!(accepted.is_ok(), "{accepted:?}");
    let (rejecting, rejected) = peak_bytes(|| Event::decode(bad_utf8.as_bytes()));
    assert!(rejected.is_err());
    assert!(
        rejecting <= accepting + 4096,
        "decoding: rejecting peaked at {rejecting} bytes, accepting at {accepting}"
    );
}

#[test]
fn the_counter_counts() {
    let (n, v) = allocations(|| vec![1u8; 10]);
    assert_eq!((n, v.len()), (1, 10));
}

#[test]
fn matches_allocates_nothing() {
    let mut registry = Registry::new();
    for i in 0..2_000u64 {
        let kind = EventKind::ALL[(i % 25) as usize];
        let scope = if i % 10 == 0 {
            ListScope::All
        } else {
            ListScope::from_list_id(i % 7 + 1)
        };
        let source = Source::ALL[(i % 4) as usize];
        registry.insert(
            Webhook::builder(format!("hook {i}"), "https://example.com/h")
                .events([kind, EventKind::Open])
                .sources([source, Source::Api])
                .scope(scope)
                .build()
                .unwrap(),
        );
    }
    let events: Vec<Event> = EventKind::ALL
        .into_iter()
        .flat_map(|kind| {
            Source::ALL.into_iter().flat_map(move |source| {
                (0..9).map(move |list| {
                    let at = chrono::DateTime::parse_from_rfc3339("2024-05-01T10:00:00+02:00");
                    Event::new(kind, source, at.unwrap()).with_list(ListId::new(list))
                })
            })
        })
        .collect();
    let (n, total) = allocations(|| {
        let mut total = 0;
        for event in &events {
            total += registry.matches(event).count();
        }
        total
    });
    assert!(total > 10_000, "the events reach webhooks: {total}");
    assert_eq!(
        n,
        0,
        "matches allocated {n} times over {} events",
        events.len()
    );
}

#[test]
fn encoding_an_event_allocates_only_its_body() {
    for kind in EventKind::ALL {
        let event = Event::sample(kind);
        let (n, body) = allocations(|| event.encode());
        assert!(!body.is_empty());
        // The body's buffer: the first 1 KiB, and a few growth steps for the larger samples.
        assert!(n <= 4, "{kind}: {n} allocations for {} bytes", body.len());
    }
}

#[test]
fn planning_shares_a_webhooks_headers_and_secrets_instead_of_copying_them() {
    let registry = |headers: bool| {
        let mut registry = Registry::new();
        for i in 0..200 {
            let mut hook = Webhook::builder(format!("hook {i}"), "https://example.com/h")
                .events([EventKind::Subscribe])
                .sources(Source::ALL);
            if headers {
                hook = hook
                    .header("Authorization", "Bearer 9f2c")
                    .header("X-Tenant", format!("tenant-{i}"));
                #[cfg(feature = "signing")]
                {
                    let secret = posthook::sign::SigningSecret::from_bytes(&[7; 32]).unwrap();
                    hook = hook.signing_secret(secret);
                }
            }
            registry.insert(hook.build().unwrap());
        }
        registry
    };
    let event = Event::sample(EventKind::Subscribe);
    let (plain, with_headers) = (registry(false), registry(true));
    let (without, plan) = allocations(|| posthook::DispatchPlan::new(&plain, &event));
    assert_eq!(plan.len(), 200);
    let (with, plan) = allocations(|| posthook::DispatchPlan::new(&with_headers, &event));
    assert_eq!(plan.len(), 200);
    assert_eq!(plan.deliveries()[7].headers()["x-tenant"], "tenant-7");
    assert_eq!(
        with, without,
        "a plan of webhooks with headers (and secrets) allocates no more than one without"
    );
}
