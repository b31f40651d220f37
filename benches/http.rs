//! Many webhooks on one host, over real HTTP on loopback: the dispatcher with its
//! **defaults** on an `HttpTransport` with its **defaults** (no tuning but allowing
//! loopback) against a plain reqwest loop at its best setting, measured in alternation in
//! one process, and a sustained run against a slow receiver.
//!
//! `cargo bench --bench http --features http` (both parts), or with `fanout` or
//! `sustained` after `--` for one. `POSTHOOK_BENCH_ROUNDS` sets the alternating rounds
//! (default 15), `POSTHOOK_BENCH_DISPATCHES` the sustained dispatches (default 40).
//! `POSTHOOK_BENCH_PER_HOST=64,128` adds posthook with those per-host limits to the
//! alternation (defaults, each variant, plain, defaults, …): what a default would give.
//!
//! - **fanout**: 1,000 deliveries of one `subscribe` body (1,000 webhooks on one URL) to an
//!   axum receiver on 127.0.0.1 answering `204`. First the plain loop is tried at a few
//!   concurrencies (pool size = concurrency) and the best is kept; then rounds of
//!   posthook, plain, posthook, plain, … each printed with the load average, and the
//!   medians and their ratio (plain ÷ posthook: 1.0 is as fast as the plain loop).
//! - **sustained**: 40 dispatches in a row of 1,000 deliveries to a receiver that waits
//!   50 ms before answering, with the defaults (10 s attempt timeout, retries as
//!   configured by default): failures, and the TCP connections the receiver accepted.
//!
//! The receiver runs on a tokio runtime of its own (one worker thread); each sender runs
//! on a current-thread runtime, so on a 2-core machine the client and the server have a
//! core each. The loops send the dispatcher's headers (`Content-Type`, its `User-Agent`, a
//! 32-hex-digit `X-Posthook-Delivery`).

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::serve::ListenerExt;
use bytes::Bytes;
use futures_util::StreamExt;
use posthook::{
    AddressClass, AddressPolicy, DELIVERY_ID_HEADER, Dispatcher, Event, EventKind, FinalOutcome,
    HttpTransport, Registry, Source, TokioTimer, Webhook,
};

const DELIVERIES: usize = 1_000;
/// What the dispatcher sends as its `User-Agent`, so that the loops send the same bytes.
const USER_AGENT: &str = concat!("posthook/", env!("CARGO_PKG_VERSION"));
/// The plain loop's settings tried (concurrency = pool size).
const BASELINES: [usize; 4] = [16, 32, 64, 128];

/// A fresh 32-hex-digit id for the loop's `X-Posthook-Delivery` header (a counter costs
/// the loop less than the dispatcher's random ids, which favours the baseline).
fn delivery_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{:032x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `/proc/loadavg`'s first three figures.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| String::from("?"))
}

/// CPU time this thread has used, in ms (`/proc/thread-self/schedstat`), or 0 where that
/// cannot be read.
fn thread_cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e6)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Starts a receiver answering `204` after `wait` on its own thread; returns its address
/// and the count of TCP connections it accepted.
fn receiver(wait: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let listener = listener.tap_io(move |_| {
                counter.fetch_add(1, Ordering::Relaxed);
            });
            let app = axum::Router::new().fallback(move |body: Bytes| async move {
                black_box(body);
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                http::StatusCode::NO_CONTENT
            });
            axum::serve(listener, app).await.unwrap();
        });
    });
    (rx.recv().expect("the receiver's address"), accepted)
}

fn registry(url: &str) -> Registry {
    let mut registry = Registry::new();
    for n in 0..DELIVERIES {
        registry.insert(
            Webhook::builder(format!("hook {n}"), url)
                .events([EventKind::Subscribe])
                .sources(Source::ALL)
                .build()
                .expect("a webhook"),
        );
    }
    registry
}

/// The dispatcher and transport with their defaults, loopback allowed: no tuning.
fn posthook_defaults() -> Dispatcher<HttpTransport, TokioTimer> {
    let transport = HttpTransport::builder()
        .address_policy(AddressPolicy::public_only().allow(AddressClass::Loopback))
        .build()
        .expect("a transport");
    Dispatcher::new(transport, TokioTimer::new())
}

/// The defaults but for the per-host limit (`POSTHOOK_BENCH_PER_HOST`).
fn posthook_per_host(limit: usize) -> Dispatcher<HttpTransport, TokioTimer> {
    let transport = HttpTransport::builder()
        .address_policy(AddressPolicy::public_only().allow(AddressClass::Loopback))
        .max_connections_per_host(std::num::NonZeroUsize::new(limit).expect("a limit above 0"))
        .build()
        .expect("a transport");
    Dispatcher::new(transport, TokioTimer::new())
}

fn plain_client(pool: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(pool)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client")
}

/// One round of the plain loop: 1,000 posts, `concurrency` in flight; its time.
async fn plain_round(client: &reqwest::Client, url: &str, body: &Bytes, concurrency: usize) -> f64 {
    let start = Instant::now();
    let sends = futures_util::stream::iter(0..DELIVERIES).map(|_| {
        client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("user-agent", USER_AGENT)
            .header(DELIVERY_ID_HEADER, delivery_id())
            .body(body.clone())
            .send()
    });
    let mut sends = sends.buffer_unordered(concurrency);
    let mut ok = 0;
    while let Some(response) = sends.next().await {
        if response.expect("a response").status().is_success() {
            ok += 1;
        }
    }
    assert_eq!(ok, DELIVERIES, "the plain loop must deliver everything");
    start.elapsed().as_secs_f64() * 1e3
}

fn fanout(runtime: &tokio::runtime::Runtime, rounds: usize, per_host: &[usize]) {
    let (addr, accepted) = receiver(Duration::ZERO);
    let url = format!("http://{addr}/hook");
    let registry = registry(&url);
    let event = Event::sample(EventKind::Subscribe);
    let body = event.encode();
    let dispatcher = posthook_defaults();
    let variants: Vec<(usize, Dispatcher<HttpTransport, TokioTimer>)> = per_host
        .iter()
        .map(|&limit| (limit, posthook_per_host(limit)))
        .collect();

    println!(
        "## fan-out of {DELIVERIES} to one host (load average {})",
        load()
    );
    // The plain loop's best setting: five rounds each (after one to warm up), by median.
    let mut best = (f64::INFINITY, 0);
    for concurrency in BASELINES {
        let client = plain_client(concurrency);
        runtime.block_on(plain_round(&client, &url, &body, concurrency));
        let mut times: Vec<f64> = (0..5)
            .map(|_| runtime.block_on(plain_round(&client, &url, &body, concurrency)))
            .collect();
        let m = median(&mut times);
        println!(
            "plain reqwest, concurrency = pool = {concurrency:>3}: median {m:.3} ms (load {})",
            load()
        );
        if m < best.0 {
            best = (m, concurrency);
        }
    }
    let concurrency = best.1;
    println!("baseline: plain reqwest at concurrency = pool = {concurrency}");
    let client = plain_client(concurrency);

    // Warm both up, then alternate.
    runtime.block_on(plain_round(&client, &url, &body, concurrency));
    let before = accepted.load(Ordering::Relaxed);
    let report = runtime.block_on(dispatcher.dispatch(&registry, &event));
    assert!(report.all_delivered(), "posthook must deliver everything");
    let opened_first = accepted.load(Ordering::Relaxed) - before;
    for (_, variant) in &variants {
        assert!(
            runtime
                .block_on(variant.dispatch(&registry, &event))
                .all_delivered()
        );
    }
    let mut variant_times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut ours_cpu, mut theirs_cpu) = (Vec::new(), Vec::new());
    let mut opened_ours = 0;
    for round in 1..=rounds {
        let before = accepted.load(Ordering::Relaxed);
        let cpu = thread_cpu_ms();
        let start = Instant::now();
        let report = runtime.block_on(dispatcher.dispatch(&registry, &event));
        let a = start.elapsed().as_secs_f64() * 1e3;
        ours_cpu.push(thread_cpu_ms() - cpu);
        opened_ours += accepted.load(Ordering::Relaxed) - before;
        assert!(report.all_delivered(), "posthook must deliver everything");
        for ((limit, variant), times) in variants.iter().zip(&mut variant_times) {
            let start = Instant::now();
            let report = runtime.block_on(variant.dispatch(&registry, &event));
            let t = start.elapsed().as_secs_f64() * 1e3;
            assert!(report.all_delivered(), "posthook must deliver everything");
            println!("round {round:>2}: posthook at {limit} per host {t:.3} ms");
            times.push(t);
        }
        let cpu = thread_cpu_ms();
        let b = runtime.block_on(plain_round(&client, &url, &body, concurrency));
        theirs_cpu.push(thread_cpu_ms() - cpu);
        println!(
            "round {round:>2}: posthook {a:.3} ms, plain {b:.3} ms, plain ÷ posthook {:.3} (load {})",
            b / a,
            load()
        );
        ours.push(a);
        theirs.push(b);
    }
    let (a, b) = (median(&mut ours), median(&mut theirs));
    println!(
        "medians: posthook {a:.3} ms, plain {b:.3} ms: plain ÷ posthook = {:.3} (load {})",
        b / a,
        load()
    );
    println!(
        "sender thread CPU per round, medians: posthook {:.3} ms, plain {:.3} ms",
        median(&mut ours_cpu),
        median(&mut theirs_cpu)
    );
    for ((limit, _), times) in variants.iter().zip(&mut variant_times) {
        let m = median(times);
        println!(
            "median: posthook at {limit} per host {m:.3} ms: plain ÷ it = {:.3}",
            b / m
        );
    }
    println!(
        "posthook connections opened: {opened_first} by its first dispatch, {opened_ours} by the {rounds} after"
    );
}

fn sustained(runtime: &tokio::runtime::Runtime, dispatches: usize) {
    let wait = Duration::from_millis(50);
    let (addr, accepted) = receiver(wait);
    let url = format!("http://{addr}/hook");
    let registry = registry(&url);
    let event = Event::sample(EventKind::Subscribe);
    let dispatcher = posthook_defaults();
    println!(
        "## sustained: {dispatches} dispatches in a row of {DELIVERIES} to a receiver that waits {wait:?} (load average {})",
        load()
    );
    let (mut failed, mut retried, mut times) = (0, 0, Vec::new());
    let start = Instant::now();
    for n in 1..=dispatches {
        let began = Instant::now();
        let report = runtime.block_on(dispatcher.dispatch(&registry, &event));
        times.push(began.elapsed().as_secs_f64() * 1e3);
        for delivery in &report.deliveries {
            if !matches!(delivery.outcome, FinalOutcome::Delivered { .. }) {
                failed += 1;
            }
            if delivery.attempts.len() > 1 {
                retried += 1;
            }
        }
        if n % 10 == 0 {
            println!(
                "after {n:>2} dispatches: {failed} failed, {retried} retried, {} connections opened (load {})",
                accepted.load(Ordering::Relaxed),
                load()
            );
        }
    }
    let total = start.elapsed().as_secs_f64();
    println!(
        "sustained: {} deliveries in {total:.1} s ({:.0}/s), median dispatch {:.0} ms; {failed} failed, {retried} retried, {} connections opened (load {})",
        dispatches * DELIVERIES,
        (dispatches * DELIVERIES) as f64 / total,
        median(&mut times),
        accepted.load(Ordering::Relaxed),
        load()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let only = |name: &str| {
        !args.iter().any(|a| a == "fanout" || a == "sustained") || args.iter().any(|a| a == name)
    };
    let number = |var: &str, default: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    // The plain client gets the same TLS stack (rustls on ring) as HttpTransport.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    if only("fanout") {
        let per_host: Vec<usize> = std::env::var("POSTHOOK_BENCH_PER_HOST")
            .unwrap_or_default()
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .filter(|&n| n > 0)
            .collect();
        fanout(&runtime, number("POSTHOOK_BENCH_ROUNDS", 15), &per_host);
    }
    if only("sustained") {
        sustained(&runtime, number("POSTHOOK_BENCH_DISPATCHES", 40));
    }
}
