//! Outbox throughput and latency, per store: deliveries per second through 1 and 4
//! workers (batch claims, an in-memory transport that answers 200 at once), and the delay
//! from `publish` to the first attempt with an idle worker.
//!
//! `cargo bench --bench outbox --all-features` (PostgreSQL too when `POSTHOOK_POSTGRES_URL`
//! is set; it works in a schema of its own, dropped at the end). Not criterion: each figure
//! is one timed run of a whole pipeline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use posthook::{
    DeliveryReport, DeliveryStore, Dispatcher, Durability, Event, EventKind, MemoryStore, Outbox,
    PostgresStore, Registry, Source, SqliteStore, TokioTimer, Transport, TransportError, Wakeup,
    Webhook, Worker,
};

/// Answers 200 at once; remembers when each request came.
#[derive(Default)]
struct Instant200 {
    first: Mutex<Vec<Instant>>,
}

#[async_trait::async_trait]
impl Transport for Instant200 {
    async fn send(&self, _: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
        self.first.lock().unwrap().push(Instant::now());
        Ok(http::Response::new(Bytes::new()))
    }
}

/// Counts final outcomes; says when there are enough.
#[derive(Default)]
struct Count {
    done: AtomicUsize,
    notify: tokio::sync::Notify,
}

fn registry(hooks: usize) -> Registry {
    (0..hooks)
        .map(|n| {
            Webhook::builder(format!("hook {n}"), "https://receiver.example.com/hook")
                .events([EventKind::Subscribe])
                .sources(Source::ALL)
                .build()
                .unwrap()
        })
        .collect()
}

/// Deliveries per second: `events` × `fanout` deliveries enqueued, then drained by
/// `workers` workers. Returns (enqueue/s, deliveries/s).
async fn throughput<S: DeliveryStore + Clone + 'static>(
    store: &S,
    workers: usize,
    events: usize,
    fanout: usize,
) -> (f64, f64) {
    let registry = registry(fanout);
    let outbox = Outbox::new(store.clone());
    let event = Event::sample(EventKind::Subscribe);
    let started = Instant::now();
    for _ in 0..events {
        outbox.publish(&registry, &event).await.unwrap();
    }
    let enqueue = (events * fanout) as f64 / started.elapsed().as_secs_f64();

    let total = events * fanout;
    let count = Arc::new(Count::default());
    let transport = Arc::new(Instant200::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let count = count.clone();
        let sink = move |_: &DeliveryReport| {
            if count.done.fetch_add(1, Ordering::SeqCst) + 1 == total {
                count.notify.notify_one();
            }
        };
        let worker = Worker::new(
            store.clone(),
            Dispatcher::new(transport.clone(), TokioTimer::new()),
        )
        .batch(64)
        .concurrency(128)
        .on_outcome(sink);
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            worker
                .run(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        }));
    }
    while count.done.load(Ordering::SeqCst) < total {
        let _ = tokio::time::timeout(Duration::from_millis(100), count.notify.notified()).await;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    stop.send(true).unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    (enqueue, rate)
}

/// Publish → first attempt, `samples` times, with one idle worker: (median, p99).
async fn latency<S: DeliveryStore + Clone + 'static>(
    store: &S,
    samples: usize,
    bell: bool,
    poll: Duration,
    external: Option<Wakeup>,
) -> (Duration, Duration) {
    let registry = registry(1);
    let outbox = Outbox::new(store.clone());
    let transport = Arc::new(Instant200::default());
    let mut worker = Worker::new(
        store.clone(),
        Dispatcher::new(transport.clone(), TokioTimer::new()),
    )
    .idle_poll(poll);
    if bell {
        worker = worker.wakeup(outbox.wakeup().clone());
    }
    if let Some(wakeup) = external {
        worker = worker.wakeup(wakeup);
    }
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        worker
            .run(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    let event = Event::sample(EventKind::Subscribe);
    let mut delays = Vec::with_capacity(samples);
    for n in 0..samples {
        // Let the worker go idle, at a point of its poll interval that varies.
        tokio::time::sleep(Duration::from_millis(7 + (n as u64 * 13) % 50)).await;
        let before = Instant::now();
        outbox.publish(&registry, &event).await.unwrap();
        loop {
            if let Some(at) = transport.first.lock().unwrap().get(n) {
                delays.push(at.duration_since(before));
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    delays.sort();
    (delays[samples / 2], delays[samples * 99 / 100])
}

/// A `/proc/self/status` field, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One event published to `hooks` webhooks: the time of `publish` (match, encode, one
/// delivery each, one commit) and the peak memory it added (`VmHWM`, reset first through
/// `/proc/self/clear_refs`), per delivery.
async fn fanout<S: DeliveryStore + Clone + 'static>(name: &str, store: &S, hooks: usize) {
    let registry = registry(hooks);
    let outbox = Outbox::new(store.clone());
    let event = Event::sample(EventKind::Subscribe);
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kib("VmRSS:");
    let started = Instant::now();
    let published = outbox.publish(&registry, &event).await.unwrap();
    let took = started.elapsed();
    let peak = status_kib("VmHWM:").saturating_sub(before);
    assert_eq!(published.deliveries.len(), hooks);
    println!(
        "{name:<8} publish one event to {hooks} webhooks: {took:?}, peak memory +{:.1} MiB ({} bytes per delivery; the body is {} bytes)",
        peak as f64 / 1024.0,
        peak * 1024 / hooks as u64,
        event.encode().len()
    );
}

async fn report<S: DeliveryStore + Clone + 'static>(name: &str, fresh: impl AsyncFn() -> S) {
    let store = fresh().await;
    fanout(name, &store, 100_000).await;
    // The same webhooks again (their lanes exist: the steady state of a product whose
    // webhooks were delivered to before).
    fanout(name, &store, 100_000).await;
    if std::env::args().any(|a| a == "--fanout-only") {
        return;
    }
    for workers in [1, 4] {
        let store = fresh().await;
        let (enqueue, rate) = throughput(&store, workers, 2_000, 10).await;
        println!(
            "{name:<8} {workers} worker(s): {rate:>8.0} deliveries/s   (enqueue {enqueue:>8.0}/s, 2,000 events x 10)"
        );
    }
    for (bell, poll) in [(true, 50), (false, 50), (false, 20)] {
        let store = fresh().await;
        let (median, p99) = latency(&store, 200, bell, Duration::from_millis(poll), None).await;
        let how = if bell {
            String::from("wake-up bell")
        } else {
            format!("{poll} ms poll only")
        };
        println!("{name:<8} publish -> first attempt ({how}): median {median:?}, p99 {p99:?}");
    }
}

/// A migrated store in a new schema (dropped at the end).
async fn fresh_pg(
    admin: &sqlx::PgPool,
    url: &str,
    schemas: &Mutex<Vec<(String, sqlx::PgPool)>>,
) -> PostgresStore {
    let schema = format!("posthook_bench_{}", posthook::EventId::random().unwrap());
    let create = format!("CREATE SCHEMA {schema}");
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(admin)
        .await
        .unwrap();
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        // As `PostgresStore::connect_with` sets up its pool (its defaults: JIT off).
        .connect_with(options.options([
            ("search_path", schema.as_str()),
            ("jit", "off"),
            ("enable_bitmapscan", "off"),
        ]))
        .await
        .unwrap();
    schemas.lock().unwrap().push((schema, pool.clone()));
    let store = PostgresStore::from_pool(pool);
    store.migrate().await.unwrap();
    store
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    report("memory", async || MemoryStore::new()).await;

    let dir = std::env::temp_dir().join(format!("posthook-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = AtomicUsize::new(0);
    report("sqlite", async || {
        let file = dir.join(format!("outbox-{}.db", n.fetch_add(1, Ordering::SeqCst)));
        SqliteStore::open(file, Durability::ProcessCrash)
            .await
            .unwrap()
    })
    .await;
    std::fs::remove_dir_all(&dir).unwrap();

    let Ok(url) = std::env::var("POSTHOOK_POSTGRES_URL") else {
        println!("postgres: skipped (POSTHOOK_POSTGRES_URL is not set)");
        return;
    };
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let schemas = Mutex::new(Vec::new());
    report("postgres", async || fresh_pg(&admin, &url, &schemas).await).await;
    // Another process's worker: not the outbox's bell, but LISTEN/NOTIFY.
    let store = fresh_pg(&admin, &url, &schemas).await;
    let wakeup = Wakeup::new();
    let listening = {
        let (store, wakeup) = (store.clone(), wakeup.clone());
        tokio::spawn(async move { store.listen(wakeup).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (median, p99) = latency(&store, 200, false, Duration::from_millis(50), Some(wakeup)).await;
    println!(
        "postgres publish -> first attempt (LISTEN/NOTIFY, 50 ms poll): median {median:?}, p99 {p99:?}"
    );
    listening.abort();
    for (schema, pool) in schemas.into_inner().unwrap() {
        pool.close().await;
        let drop = format!("DROP SCHEMA {schema} CASCADE");
        sqlx::query(sqlx::AssertSqlSafe(drop))
            .execute(&admin)
            .await
            .unwrap();
    }
}
