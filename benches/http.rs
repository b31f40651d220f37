//! Delivery over real HTTP on loopback: the dispatcher on `HttpTransport` against a plain
//! reqwest loop with the same concurrency, the same body, the same headers (`Content-Type`,
//! the dispatcher's `User-Agent`, a 32-hex-digit `X-Posthook-Delivery`) and the same
//! receiver, in the same run. What the ratio measures is what posthook adds on top of the
//! client it drives: matching, the delivery state machine, the address check, the report.
//!
//! `cargo bench --bench http --features http`
//!
//! The receiver (axum, answering `204`) runs on a tokio runtime of its own, one worker
//! thread; each side sends from a current-thread runtime, so on a 2-core machine the client
//! and the server have a core each.

use std::hint::black_box;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use posthook::{
    AddressClass, AddressPolicy, DELIVERY_ID_HEADER, Dispatcher, Event, EventKind, HttpTransport,
    Registry, Source, TokioTimer, Transport, Webhook,
};

const DELIVERIES: usize = 1_000;
/// What the dispatcher sends as its `User-Agent`, so that the loops send the same bytes.
const USER_AGENT: &str = concat!("posthook/", env!("CARGO_PKG_VERSION"));

/// A fresh 32-hex-digit id for the loops' `X-Posthook-Delivery` header (the dispatcher's
/// ids are random; a counter costs the loops less, which favours the baseline).
fn delivery_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{:032x}", NEXT.fetch_add(1, Ordering::Relaxed))
}
const CONCURRENCY: usize = 32;

/// Starts the receiver on its own thread; returns its address.
fn receiver() -> SocketAddr {
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
            let app = axum::Router::new().fallback(|body: Bytes| async move {
                black_box(body);
                http::StatusCode::NO_CONTENT
            });
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().expect("the receiver's address")
}

fn http_loopback(c: &mut Criterion) {
    let addr = receiver();
    let url = format!("http://{addr}/hook");
    let event = Event::sample(EventKind::Subscribe);
    let body = event.encode();

    let mut registry = Registry::new();
    for n in 0..DELIVERIES {
        registry.insert(
            Webhook::builder(format!("hook {n}"), &url)
                .events([EventKind::Subscribe])
                .sources(Source::ALL)
                .build()
                .expect("a webhook"),
        );
    }
    let loopback = AddressPolicy::public_only().allow(AddressClass::Loopback);
    let transport = HttpTransport::builder()
        .address_policy(loopback)
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("a transport");
    let dispatcher = Dispatcher::new(transport, TokioTimer::new())
        .max_concurrency(NonZeroUsize::new(CONCURRENCY).unwrap());
    // The plain client gets the same TLS stack (rustls on ring) as HttpTransport.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let plain = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(CONCURRENCY)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");

    // Both must deliver everything, or the comparison means nothing.
    let report = runtime.block_on(dispatcher.dispatch(&registry, &event));
    assert_eq!(report.deliveries.len(), DELIVERIES);
    assert!(report.all_delivered());

    let mut group = c.benchmark_group("http_loopback_1000_deliveries");
    group.throughput(Throughput::Elements(DELIVERIES as u64));
    group.sample_size(20);
    group.bench_function("posthook Dispatcher::dispatch on HttpTransport", |b| {
        b.iter(|| {
            let report = runtime.block_on(dispatcher.dispatch(&registry, &event));
            assert!(report.all_delivered());
            report
        })
    });
    let direct = HttpTransport::builder()
        .address_policy(AddressPolicy::public_only().allow(AddressClass::Loopback))
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("a transport");
    group.bench_function("HttpTransport::send loop, same concurrency", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let sends = futures_util::stream::iter(0..DELIVERIES).map(|_| {
                    let request = http::Request::post(&url)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .header("user-agent", USER_AGENT)
                        .header(DELIVERY_ID_HEADER, delivery_id())
                        .body(body.clone())
                        .expect("a request");
                    direct.send(request)
                });
                let mut sends = sends.buffer_unordered(CONCURRENCY);
                let mut ok = 0;
                while let Some(response) = sends.next().await {
                    if response.expect("a response").status().is_success() {
                        ok += 1;
                    }
                }
                assert_eq!(ok, DELIVERIES);
            })
        })
    });
    group.bench_function("plain reqwest loop, same concurrency", |b| {
        b.iter_batched(
            || (),
            |()| {
                runtime.block_on(async {
                    let sends = futures_util::stream::iter(0..DELIVERIES).map(|_| {
                        plain
                            .post(&url)
                            .header("content-type", "application/x-www-form-urlencoded")
                            .header("user-agent", USER_AGENT)
                            .header(DELIVERY_ID_HEADER, delivery_id())
                            .body(body.clone())
                            .send()
                    });
                    let mut sends = sends.buffer_unordered(CONCURRENCY);
                    let mut ok = 0;
                    while let Some(response) = sends.next().await {
                        if response.expect("a response").status().is_success() {
                            ok += 1;
                        }
                    }
                    assert_eq!(ok, DELIVERIES);
                })
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, http_loopback);
criterion_main!(benches);
