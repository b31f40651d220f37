//! The dispatcher at scale: `Dispatcher::dispatch` of one event to 1, 100, 10,000 and
//! 100,000 webhooks, against the same requests sent through a bare `FuturesUnordered`
//! (the baseline), on one core (a current-thread tokio runtime).
//!
//! The transport is in memory. Two modes:
//!
//! - `ready`: every reply is there at once (the first poll of `send` answers `200`);
//! - `released`: each `send` waits on a oneshot; a releaser task on the same runtime
//!   completes them one at a time, in order, yielding after each, as responses arriving
//!   from the network would. Every release wakes one delivery.
//!
//! The timer's `sleep` never ends (no deadline passes; no retry happens): the bench measures
//! the dispatcher, not a timer wheel. Allocations per delivery are counted with a counting
//! global allocator, outside the timed loop, and printed. Run with
//!
//! ```text
//! cargo bench --bench dispatch
//! ```
//!
//! Without `--bench` on the command line (`cargo test --benches`), it runs fan-outs of 1 and
//! 100 only, as a smoke test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use posthook::{
    DELIVERY_ID_HEADER, Dispatcher, Event, EventKind, Registry, Source, Timer, Transport,
    TransportError, Webhook,
};
use tokio::sync::{mpsc, oneshot};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Mode {
    Ready,
    Released,
}

/// Answers 200, at once or when released.
struct Memory {
    mode: Mode,
    /// Where `send` hands its oneshot to the releaser (released mode).
    releaser: Mutex<Option<mpsc::UnboundedSender<oneshot::Sender<()>>>>,
}

impl Memory {
    fn new(mode: Mode) -> Memory {
        Memory {
            mode,
            releaser: Mutex::new(None),
        }
    }

    /// Starts the releaser of this round (released mode); the returned guard ends it.
    fn start(&self) -> Option<tokio::task::JoinHandle<()>> {
        if self.mode == Mode::Ready {
            return None;
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<oneshot::Sender<()>>();
        *self.releaser.lock().unwrap() = Some(tx);
        Some(tokio::spawn(async move {
            while let Some(reply) = rx.recv().await {
                let _ = reply.send(());
                tokio::task::yield_now().await;
            }
        }))
    }

    fn stop(&self) {
        self.releaser.lock().unwrap().take();
    }
}

#[async_trait::async_trait]
impl Transport for Memory {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        black_box(&request);
        if self.mode == Mode::Released {
            let (tx, rx) = oneshot::channel();
            let releaser = self.releaser.lock().unwrap().clone();
            if let Some(releaser) = releaser {
                let _ = releaser.send(tx);
            }
            let _ = rx.await;
        }
        Ok(http::Response::new(Bytes::new()))
    }
}

/// Deadlines that never pass.
struct NeverTimer;

#[async_trait::async_trait]
impl Timer for NeverTimer {
    async fn sleep(&self, _: Duration) {
        std::future::pending::<()>().await;
    }
}

fn registry(n: usize) -> Registry {
    let mut registry = Registry::with_capacity(n);
    for i in 0..n {
        registry.insert(
            Webhook::builder(
                format!("hook {i}"),
                &format!("https://h{i}.example.com/hook"),
            )
            .events([EventKind::Subscribe])
            .sources(Source::ALL)
            .build()
            .unwrap(),
        );
    }
    registry
}

/// The baseline: the same requests (method, URI, the three headers, the shared body),
/// sent through a bare `FuturesUnordered`, statuses collected.
async fn baseline(transport: &Memory, registry: &Registry, event: &Event) -> usize {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let body = event.encode();
    let user_agent = HeaderValue::from_static("posthook/bench");
    let mut running: FuturesUnordered<_> = registry
        .matches(event)
        .map(|hook| {
            let mut request = http::Request::new(body.clone());
            *request.method_mut() = http::Method::POST;
            *request.uri_mut() = http::Uri::try_from(hook.url().as_str()).unwrap();
            let id = format!("{:032x}", COUNTER.fetch_add(1, Ordering::Relaxed));
            let headers = request.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
            headers.insert(USER_AGENT, user_agent.clone());
            headers.insert(
                HeaderName::from_static(DELIVERY_ID_HEADER),
                HeaderValue::from_str(&id).unwrap(),
            );
            transport.send(request)
        })
        .collect();
    let mut statuses = Vec::new();
    while let Some(reply) = running.next().await {
        statuses.push(reply.map(|r| r.status()));
    }
    statuses.len()
}

struct Case {
    n: usize,
    registry: Registry,
}

fn one_round(
    runtime: &tokio::runtime::Runtime,
    dispatcher: &Dispatcher<Memory, NeverTimer>,
    case: &Case,
    event: &Event,
    bare: bool,
) -> usize {
    runtime.block_on(async {
        let transport = dispatcher.transport();
        let releaser = transport.start();
        let delivered = if bare {
            baseline(transport, &case.registry, event).await
        } else {
            let report = dispatcher.dispatch(&case.registry, event).await;
            debug_assert!(report.all_delivered());
            report.deliveries.len()
        };
        transport.stop();
        if let Some(releaser) = releaser {
            let _ = releaser.await;
        }
        delivered
    })
}

fn bench(c: &mut Criterion) {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if full {
        &[1, 100, 10_000, 100_000]
    } else {
        &[1, 100]
    };
    let cases: Vec<Case> = sizes
        .iter()
        .map(|&n| Case {
            n,
            registry: registry(n),
        })
        .collect();
    let event = Event::sample(EventKind::Subscribe);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut allocs: HashMap<(Mode, bool, usize), f64> = HashMap::new();
    {
        let dispatcher = Dispatcher::new(Memory::new(Mode::Ready), NeverTimer);
        let hook = cases[0].registry.iter().next().unwrap();
        println!(
            "future sizes: deliver {} bytes, dispatch {} bytes",
            std::mem::size_of_val(&dispatcher.deliver(None, hook.url(), Bytes::new())),
            std::mem::size_of_val(&dispatcher.dispatch(&cases[0].registry, &event)),
        );
    }

    for mode in [Mode::Ready, Mode::Released] {
        let dispatcher = Dispatcher::new(Memory::new(mode), NeverTimer);
        let name = match mode {
            Mode::Ready => "dispatch_ready",
            Mode::Released => "dispatch_released",
        };
        let mut group = c.benchmark_group(name);
        for case in &cases {
            let n = case.n;
            group.throughput(Throughput::Elements(n as u64));
            if n >= 10_000 {
                group.sampling_mode(SamplingMode::Flat);
                group.sample_size(10);
                group.warm_up_time(Duration::from_secs(1));
                group.measurement_time(Duration::from_secs(if n >= 100_000 { 8 } else { 4 }));
            } else {
                group.sampling_mode(SamplingMode::Auto);
                group.sample_size(30);
                group.warm_up_time(Duration::from_secs(1));
                group.measurement_time(Duration::from_secs(3));
            }
            for bare in [false, true] {
                // Allocations per delivery, once, outside the timed loop.
                let before = ALLOCS.load(Ordering::Relaxed);
                assert_eq!(one_round(&runtime, &dispatcher, case, &event, bare), n);
                let count = ALLOCS.load(Ordering::Relaxed) - before;
                allocs.insert((mode, bare, n), count as f64 / n as f64);
                let id = if bare {
                    "futures_unordered"
                } else {
                    "posthook"
                };
                group.bench_function(format!("{id}/{n}"), |b| {
                    b.iter(|| one_round(&runtime, &dispatcher, case, &event, bare));
                });
            }
        }
        group.finish();
    }
    let mut keys: Vec<_> = allocs.keys().copied().collect();
    keys.sort_by_key(|&(mode, bare, n)| (mode == Mode::Released, bare, n));
    for key in keys {
        let (mode, bare, n) = key;
        println!(
            "allocations per delivery: {mode:?} {} fan-out {n}: {:.1}",
            if bare {
                "futures_unordered"
            } else {
                "posthook"
            },
            allocs[&key]
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
