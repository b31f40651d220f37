//! The durable pipeline end to end, over real HTTP: `Outbox::publish` from concurrent
//! publishing tasks → the store (PostgreSQL or SQLite) → `Worker`s → `HttpTransport` (signed
//! requests) → a bare hyper receiver on 127.0.0.1 that records when each delivery arrived.
//!
//! ```text
//! POSTHOOK_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench --bench pipeline --all-features -- [--scenario throughput|fairness|processes]
//!     [--store pg|sqlite|both] [--events 10000] [--workers 4] [--publishers 16]
//!     [--paced-rate 100] [--paced-secs 10] [--publish-batch 1] [--processes 1,3]
//! ```
//!
//! - **throughput** (the default): 10 webhooks, all matching, all on the receiver; `--events`
//!   events published by `--publishers` tasks while `--workers` workers deliver them. Prints
//!   deliveries/s end to end (first publish → last arrival), the publishing rate (deliveries
//!   stored per second over the publish phase), the CPU time of this process (less the
//!   receiver's thread) and of every `postgres` process per 1,000 deliveries, then the
//!   publish → arrival latency at a paced `--paced-rate` events/s (× 10 deliveries).
//! - **fairness**: webhook H hangs until the attempt deadline; 10,000 deliveries to H are
//!   enqueued first, then paced events reach F (which answers at once) and H. Prints F's
//!   publish → arrival latency and the most attempts H's receiver held at once.
//! - **processes** (PostgreSQL only): the workers run in child processes (this binary again,
//!   told by `POSTHOOK_PIPELINE_CHILD` to be a worker over a schema), 1 then 3 of them.
//!
//! Every delivery id published must arrive (distinct ids counted), or the run fails. The
//! settings of `HttpTransport`, `Dispatcher` and `Worker` are their defaults, except the
//! address policy (loopback allowed) and a signing secret. Each run works in a fresh
//! PostgreSQL schema of its own, dropped at the end (without `POSTHOOK_POSTGRES_URL`,
//! PostgreSQL is skipped with one line), or a fresh SQLite file in a temporary directory.
//!
//! Not criterion: each figure is one timed run of the whole pipeline.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hyper::body::{Body, Incoming};
use hyper_util::rt::TokioIo;
use posthook::sign::SigningSecret;
use posthook::{
    AddressClass, AddressPolicy, DELIVERY_ID_HEADER, DeliveryReport, DeliveryStore, Dispatcher,
    Durability, Event, EventKind, HttpTransport, Outbox, PostgresStore, Published, Registry,
    Source, SqliteStore, StoreError, TokioTimer, Wakeup, Webhook, WebhookId, Worker, WorkerStats,
};
use tokio::task::JoinHandle;

// ---------------------------------------------------------------------------------------
// Knobs

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Throughput,
    Fairness,
    Processes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Postgres,
    Sqlite,
}

#[derive(Debug, Clone)]
struct Args {
    scenario: Scenario,
    stores: Vec<StoreKind>,
    /// Events of the throughput run (10 deliveries each).
    events: usize,
    workers: usize,
    publishers: usize,
    /// Events per second of the paced latency run, and for how long.
    paced_rate: u64,
    paced_secs: u64,
    /// Events per publish call: 1 is `Outbox::publish` (concurrent calls share commits by
    /// themselves), more is `Outbox::publish_all` with that many events.
    publish_batch: usize,
    /// Worker processes of the `processes` scenario.
    processes: Vec<usize>,
    /// Fairness: deliveries to H enqueued first, then paced events for `fair_secs`.
    fair_pending: usize,
    fair_rate: u64,
    fair_secs: u64,
}

impl Args {
    fn parse() -> Args {
        let mut args = Args {
            scenario: Scenario::Throughput,
            stores: vec![StoreKind::Postgres, StoreKind::Sqlite],
            events: 10_000,
            workers: 4,
            publishers: 16,
            paced_rate: 100,
            paced_secs: 10,
            publish_batch: 1,
            processes: vec![1, 3],
            fair_pending: 10_000,
            fair_rate: 10,
            fair_secs: 10,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "--bench" {
                continue; // cargo bench passes it to every harness = false bench
            }
            let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
            let number = |v: String| -> usize {
                v.replace(['_', ','], "")
                    .parse()
                    .unwrap_or_else(|_| panic!("{flag}: not a number: {v}"))
            };
            match flag.as_str() {
                "--scenario" => {
                    args.scenario = match value().as_str() {
                        "throughput" => Scenario::Throughput,
                        "fairness" => Scenario::Fairness,
                        "processes" => Scenario::Processes,
                        other => panic!("--scenario throughput|fairness|processes, not {other}"),
                    }
                }
                "--store" => {
                    args.stores = match value().as_str() {
                        "pg" | "postgres" => vec![StoreKind::Postgres],
                        "sqlite" => vec![StoreKind::Sqlite],
                        "both" => vec![StoreKind::Postgres, StoreKind::Sqlite],
                        other => panic!("--store pg|sqlite|both, not {other}"),
                    }
                }
                "--events" => args.events = number(value()).max(1),
                "--workers" => args.workers = number(value()).max(1),
                "--publishers" => args.publishers = number(value()).max(1),
                "--paced-rate" => args.paced_rate = number(value()).max(1) as u64,
                "--paced-secs" => args.paced_secs = number(value()) as u64,
                "--publish-batch" => args.publish_batch = number(value()).max(1),
                "--processes" => {
                    args.processes = value()
                        .split(',')
                        .map(|v| number(v.into()).max(1))
                        .collect()
                }
                "--fair-pending" => args.fair_pending = number(value()),
                "--fair-rate" => args.fair_rate = number(value()).max(1) as u64,
                "--fair-secs" => args.fair_secs = number(value()).max(1) as u64,
                "--max-in-flight" => {
                    let max = std::num::NonZeroU32::new(number(value()) as u32)
                        .expect("--max-in-flight above 0");
                    MAX_IN_FLIGHT.set(max).expect("--max-in-flight once");
                }
                other => panic!(
                    "unknown argument {other} (--scenario, --store, --events, --workers, \
                     --publishers, --paced-rate, --paced-secs, --publish-batch, --processes, \
                     --fair-pending, --fair-rate, --fair-secs)"
                ),
            }
        }
        args
    }
}

/// Webhooks per event in the throughput and paced runs.
const FANOUT: usize = 10;

// ---------------------------------------------------------------------------------------
// The receiver

/// What a receiver saw.
struct Log {
    /// (delivery id, arrival) for every request, in arrival order (repeats included).
    arrivals: Mutex<Vec<(u128, Instant)>>,
    /// Requests without a readable `X-Posthook-Delivery`.
    unnamed: AtomicU64,
    /// Requests being held now (a hanging receiver), and the most at once.
    held: AtomicUsize,
    max_held: AtomicUsize,
    /// Held requests given up by the client before the receiver answered (the connection
    /// closed and hyper dropped the request's future).
    abandoned: AtomicU64,
}

impl Log {
    fn new(capacity: usize) -> Log {
        Log {
            arrivals: Mutex::new(Vec::with_capacity(capacity)),
            unnamed: AtomicU64::new(0),
            held: AtomicUsize::new(0),
            max_held: AtomicUsize::new(0),
            abandoned: AtomicU64::new(0),
        }
    }

    fn len(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }

    /// Everything recorded so far, leaving the log empty (with the same capacity).
    fn take(&self) -> Vec<(u128, Instant)> {
        let mut arrivals = self.arrivals.lock().unwrap();
        let capacity = arrivals.capacity();
        std::mem::replace(&mut *arrivals, Vec::with_capacity(capacity))
    }
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// `204` at once.
    Now,
    /// Holds the request this long (or until the client goes away), then `204`.
    Hang(Duration),
}

struct Receiver {
    addr: SocketAddr,
    log: Arc<Log>,
    /// `/proc/self/task/TID/stat` of the receiver's one thread.
    thread_stat: Option<PathBuf>,
}

impl Receiver {
    /// Starts a receiver on a thread of its own with a current-thread tokio runtime (one
    /// thread in all, so its CPU time can be told apart from the pipeline's).
    fn start(answer: Answer, capacity: usize) -> Receiver {
        let log = Arc::new(Log::new(capacity));
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = log.clone();
        std::thread::Builder::new()
            .name("receiver".into())
            .spawn(move || {
                let thread_stat = std::fs::read_link("/proc/thread-self")
                    .ok()
                    .map(|p| Path::new("/proc").join(p).join("stat"));
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    tx.send((listener.local_addr().unwrap(), thread_stat))
                        .unwrap();
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        let log = shared.clone();
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(move |request| {
                                handle(request, log.clone(), answer)
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
            })
            .expect("a receiver thread");
        let (addr, thread_stat) = rx.recv().expect("the receiver's address");
        Receiver {
            addr,
            log,
            thread_stat,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// CPU seconds of the receiver's thread so far.
    fn cpu(&self) -> f64 {
        self.thread_stat.as_deref().map_or(0.0, stat_cpu)
    }
}

/// Decrements the held count when the request ends, however it ends.
struct Held<'a> {
    log: &'a Log,
    answered: bool,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.log.held.fetch_sub(1, Ordering::SeqCst);
        if !self.answered {
            self.log.abandoned.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn handle(
    request: http::Request<Incoming>,
    log: Arc<Log>,
    answer: Answer,
) -> Result<http::Response<String>, Infallible> {
    let at = Instant::now();
    let id = request
        .headers()
        .get(DELIVERY_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| u128::from_str_radix(v, 16).ok());
    match id {
        Some(id) => log.arrivals.lock().unwrap().push((id, at)),
        None => {
            log.unnamed.fetch_add(1, Ordering::Relaxed);
        }
    }
    // Read the body (a request read to its end keeps the connection reusable).
    let mut body = request.into_body();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if frame.is_err() {
            break;
        }
    }
    if let Answer::Hang(hang) = answer {
        let now = log.held.fetch_add(1, Ordering::SeqCst) + 1;
        log.max_held.fetch_max(now, Ordering::SeqCst);
        let mut held = Held {
            log: &log,
            answered: false,
        };
        tokio::time::sleep(hang).await;
        held.answered = true;
    }
    let mut response = http::Response::new(String::new());
    *response.status_mut() = http::StatusCode::NO_CONTENT;
    Ok(response)
}

/// The receiver's own ceiling: a plain reqwest client, `concurrency` requests in flight,
/// the same body and headers as the dispatcher's. Requests per second.
async fn receiver_ceiling(requests: usize, concurrency: usize) -> f64 {
    let receiver = Receiver::start(Answer::Now, requests);
    let url = receiver.url("hook");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a client");
    let body = Event::sample(EventKind::Subscribe).encode();
    let send = |n: usize| {
        client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "user-agent",
                concat!("posthook/", env!("CARGO_PKG_VERSION")),
            )
            .header(DELIVERY_ID_HEADER, format!("{n:032x}"))
            .body(body.clone())
            .send()
    };
    // Warm the connections up, then time.
    let mut warm = futures_util::stream::iter(0..concurrency * 4)
        .map(send)
        .buffer_unordered(concurrency);
    while let Some(r) = warm.next().await {
        r.expect("a response");
    }
    let started = Instant::now();
    let mut sends = futures_util::stream::iter(0..requests)
        .map(send)
        .buffer_unordered(concurrency);
    let mut ok = 0;
    while let Some(r) = sends.next().await {
        if r.expect("a response").status().is_success() {
            ok += 1;
        }
    }
    let rate = requests as f64 / started.elapsed().as_secs_f64();
    assert_eq!(ok, requests, "the receiver failed requests");
    rate
}

// ---------------------------------------------------------------------------------------
// CPU and load, from /proc

/// Clock ticks per second of `/proc/*/stat` (USER_HZ).
fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of a `/proc/.../stat` file, in seconds (0 when it cannot be read).
fn stat_cpu(path: &Path) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command's closing parenthesis start at field 3 (state); utime and
    // stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / ticks_per_second()
}

/// utime + stime of every process whose `comm` is `postgres` (the whole server: its
/// backends, WAL writer, checkpointer, autovacuum — and anyone else's queries).
fn postgres_cpu() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|e| stat_cpu(&e.path().join("stat")))
        .sum()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// CPU seconds so far: this process (all threads, receivers included), the receivers'
/// threads, child worker processes, every `postgres` process.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    process: f64,
    receivers: f64,
    children: f64,
    postgres: f64,
}

impl Cpu {
    fn now(receivers: &[&Receiver], children: &[u32]) -> Cpu {
        Cpu {
            process: stat_cpu(Path::new("/proc/self/stat")),
            receivers: receivers.iter().map(|r| r.cpu()).sum(),
            children: children
                .iter()
                .map(|pid| stat_cpu(&Path::new("/proc").join(pid.to_string()).join("stat")))
                .sum(),
            postgres: postgres_cpu(),
        }
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            process: self.process - before.process,
            receivers: self.receivers - before.receivers,
            children: self.children - before.children,
            postgres: self.postgres - before.postgres,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Stores

/// Fresh stores: a new PostgreSQL schema each (all dropped at the end), or a new SQLite
/// file each in a temporary directory.
struct Stores {
    pg: Option<(String, sqlx::PgPool)>,
    schemas: Vec<(String, sqlx::PgPool)>,
    dir: PathBuf,
    files: usize,
}

impl Stores {
    async fn new() -> Stores {
        let pg = match std::env::var("POSTHOOK_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => {
                let admin = sqlx::PgPool::connect(&url)
                    .await
                    .expect("connect to POSTHOOK_POSTGRES_URL");
                Some((url, admin))
            }
            _ => None,
        };
        let dir = std::env::temp_dir().join(format!("posthook-pipeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Stores {
            pg,
            schemas: Vec::new(),
            dir,
            files: 0,
        }
    }

    /// A migrated PostgreSQL store in a new schema, over a pool like `PostgresStore::connect`'s
    /// (10 connections, 10 s to get one); and the schema's name.
    async fn postgres(&mut self) -> (PostgresStore, String) {
        let (url, admin) = self.pg.as_ref().expect("POSTHOOK_POSTGRES_URL");
        let schema = format!("posthook_pipeline_{}", posthook::EventId::random().unwrap());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(admin)
            .await
            .unwrap();
        let store = PostgresStore::from_pool(pg_pool(url, &schema).await);
        self.schemas.push((schema.clone(), store.pool().clone()));
        store.migrate().await.unwrap();
        (store, schema)
    }

    /// A new SQLite file, `Durability::ProcessCrash` (WAL, `synchronous = NORMAL`).
    async fn sqlite(&mut self) -> SqliteStore {
        self.files += 1;
        let file = self.dir.join(format!("outbox-{}.db", self.files));
        SqliteStore::open(file, Durability::ProcessCrash)
            .await
            .unwrap()
    }

    async fn clean_up(self) {
        if let Some((_, admin)) = &self.pg {
            for (schema, pool) in self.schemas {
                pool.close().await;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                    .execute(admin)
                    .await
                    .unwrap();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn pg_pool(url: &str, schema: &str) -> sqlx::PgPool {
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(10))
        // As `PostgresStore::connect_with` sets up its pool (its defaults: no JIT, no bitmap scans).
        .connect_with(options.options([
            ("search_path", schema),
            ("jit", "off"),
            ("enable_bitmapscan", "off"),
        ]))
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// The pipeline

/// Counts what the workers' sink heard.
#[derive(Default)]
struct Tally {
    delivered: AtomicU64,
    not_delivered: AtomicU64,
    store_errors: AtomicU64,
}

impl Tally {
    /// Every final outcome was a delivery.
    fn check(&self) -> Result<(), String> {
        match self.not_delivered.load(Ordering::Relaxed) {
            0 => Ok(()),
            n => Err(format!("{n} deliveries ended other than delivered")),
        }
    }
}

struct TallySink(Arc<Tally>);

impl posthook::OutcomeSink for TallySink {
    fn outcome(&self, report: &DeliveryReport) {
        if report.outcome.is_delivered() {
            self.0.delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            self.0.not_delivered.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn store_error(&self, _: &StoreError) {
        self.0.store_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// `n` workers on tasks of this runtime, default settings, woken by `wakeup`.
struct Workers {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<WorkerStats>>,
    tally: Arc<Tally>,
}

impl Workers {
    fn start<S: DeliveryStore + Clone + 'static>(
        store: &S,
        n: usize,
        wakeup: &Wakeup,
        transport: &HttpTransport,
        secret: &SigningSecret,
    ) -> Workers {
        let tally = Arc::new(Tally::default());
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let tasks = (0..n)
            .map(|_| {
                let dispatcher = Dispatcher::new(transport.clone(), TokioTimer::new())
                    .signing_secret(secret.clone());
                let worker = Worker::new(store.clone(), dispatcher)
                    .wakeup(wakeup.clone())
                    .on_outcome(TallySink(tally.clone()));
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    worker
                        .run(async move {
                            let _ = stopped.wait_for(|s| *s).await;
                        })
                        .await
                })
            })
            .collect();
        Workers { stop, tasks, tally }
    }

    /// Stops them (they let their attempts in flight end); the sum of their stats.
    async fn stop(self) -> WorkerStats {
        self.stop.send(true).unwrap();
        let mut sum = WorkerStats::default();
        for task in self.tasks {
            let s = task.await.unwrap();
            sum.claimed += s.claimed;
            sum.retrying += s.retrying;
            sum.done += s.done;
            sum.stale += s.stale;
            sum.store_errors += s.store_errors;
        }
        sum
    }

    /// Stops them now, attempts in flight and all (the fairness run).
    fn abort(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

fn transport() -> HttpTransport {
    HttpTransport::builder()
        .address_policy(AddressPolicy::public_only().allow(AddressClass::Loopback))
        .build()
        .expect("a transport")
}

/// `--max-in-flight N`: every webhook's in-flight limit (else the default,
/// `Pacing::DEFAULT_MAX_IN_FLIGHT`).
static MAX_IN_FLIGHT: std::sync::OnceLock<std::num::NonZeroU32> = std::sync::OnceLock::new();

/// `n` webhooks on `url`, all taking `events`, from any source; their ids.
fn webhooks(
    registry: &mut Registry,
    n: usize,
    name: &str,
    url: &str,
    events: &[EventKind],
) -> Vec<WebhookId> {
    (0..n)
        .map(|i| {
            let mut webhook = Webhook::builder(format!("{name} {i}"), &format!("{url}/{i}"))
                .events(events.iter().copied())
                .sources(Source::ALL);
            if let Some(&max) = MAX_IN_FLIGHT.get() {
                webhook = webhook.max_in_flight(max);
            }
            registry.insert(webhook.build().expect("a webhook"))
        })
        .collect()
}

/// Publishes `events`, in order. Today one `Outbox::publish` per event; when
/// `Outbox::publish_all` lands this is the one place to change (`--publish-batch N` then
/// hands it N events per call):
///
/// ```text
/// outbox.publish_all(registry, events).await
/// ```
async fn publish_events<S: DeliveryStore>(
    outbox: &Outbox<S>,
    registry: &Registry,
    events: &[Event],
) -> Result<Vec<Published>, StoreError> {
    if events.len() > 1 {
        return outbox.publish_all(registry, events).await;
    }
    let mut published = Vec::with_capacity(events.len());
    for event in events {
        published.push(outbox.publish(registry, event).await?);
    }
    Ok(published)
}

/// `events` copies of `event` published by `publishers` tasks, `batch` events per call.
/// Returns every delivery id and when the last publish returned.
async fn publish_concurrently<S: DeliveryStore + Clone + 'static>(
    outbox: &Outbox<S>,
    registry: &Arc<Registry>,
    event: &Event,
    events: usize,
    publishers: usize,
    batch: usize,
) -> (Vec<u128>, Instant) {
    let tasks: Vec<_> = (0..publishers)
        .map(|p| {
            let share = events / publishers + usize::from(p < events % publishers);
            let (outbox, registry, event) = (outbox.clone(), registry.clone(), event.clone());
            tokio::spawn(async move {
                let mut ids = Vec::with_capacity(share * FANOUT);
                let mut left = share;
                while left > 0 {
                    let n = left.min(batch);
                    let chunk = vec![event.clone(); n];
                    for published in publish_events(&outbox, &registry, &chunk)
                        .await
                        .expect("publish")
                    {
                        ids.extend(published.deliveries.iter().map(|d| d.get()));
                    }
                    left -= n;
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(events * FANOUT);
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    (ids, Instant::now())
}

/// Waits until `log` holds every id of `expected` (repeats allowed); an error after
/// `timeout`, or after 60 s without a new arrival.
async fn await_arrivals(log: &Log, expected: usize, timeout: Duration) -> Result<(), String> {
    let started = Instant::now();
    let (mut seen, mut progress) = (0, Instant::now());
    loop {
        let n = log.len();
        if n >= expected {
            return Ok(());
        }
        if n != seen {
            (seen, progress) = (n, Instant::now());
        }
        if started.elapsed() > timeout || progress.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "only {n} of {expected} requests arrived after {:.0?}",
                started.elapsed()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every id published arrived (each at least once, nothing else). The first arrival of
/// each id, and how many repeats there were.
fn check_arrivals(
    published: &[u128],
    arrivals: &[(u128, Instant)],
) -> Result<(HashMap<u128, Instant>, usize), String> {
    let mut first = HashMap::with_capacity(arrivals.len());
    for &(id, at) in arrivals {
        first.entry(id).or_insert(at);
    }
    let repeats = arrivals.len() - first.len();
    let wanted: HashSet<u128> = published.iter().copied().collect();
    if wanted.len() != published.len() {
        return Err(format!(
            "{} delivery ids were published twice",
            published.len() - wanted.len()
        ));
    }
    let missing = wanted.iter().filter(|id| !first.contains_key(id)).count();
    let strangers = first.keys().filter(|id| !wanted.contains(id)).count();
    if missing > 0 || strangers > 0 || first.len() != wanted.len() {
        return Err(format!(
            "{} distinct ids arrived for {} published: {missing} missing, {strangers} unknown",
            first.len(),
            wanted.len()
        ));
    }
    Ok((first, repeats))
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// A store under test.
trait Bench: DeliveryStore + Clone + 'static {}
impl<S: DeliveryStore + Clone + 'static> Bench for S {}

struct Ctx {
    args: Args,
    transport: HttpTransport,
    secret: SigningSecret,
    receiver: Receiver,
}

/// Throughput: publish `args.events` × 10 from `args.publishers` tasks while the workers
/// deliver; everything must arrive.
async fn throughput<S: Bench>(ctx: &Ctx, name: &str, store: S) -> Result<(), String> {
    let args = &ctx.args;
    let total = args.events * FANOUT;
    let mut registry = Registry::new();
    webhooks(
        &mut registry,
        FANOUT,
        "hook",
        &ctx.receiver.url("hook"),
        &[EventKind::Subscribe],
    );
    let registry = Arc::new(registry);
    let outbox = Outbox::new(store.clone());
    let event = Event::sample(EventKind::Subscribe);
    ctx.receiver.log.take();

    let load = loadavg();
    let workers = Workers::start(
        &store,
        args.workers,
        outbox.wakeup(),
        &ctx.transport,
        &ctx.secret,
    );
    tokio::time::sleep(Duration::from_millis(200)).await; // let them go idle
    let cpu = Cpu::now(&[&ctx.receiver], &[]);
    let started = Instant::now();
    let (ids, published_at) = publish_concurrently(
        &outbox,
        &registry,
        &event,
        args.events,
        args.publishers,
        args.publish_batch,
    )
    .await;
    let publish_phase = published_at - started;
    let timeout = Duration::from_secs(60) + Duration::from_millis(total as u64 * 3);
    let waited = await_arrivals(&ctx.receiver.log, total, timeout).await;
    let cpu = Cpu::now(&[&ctx.receiver], &[]).since(cpu);
    let tally = workers.tally.clone();
    let stats = workers.stop().await;
    waited?;
    let arrivals = ctx.receiver.log.take();
    let (first, repeats) = check_arrivals(&ids, &arrivals)?;
    let unnamed = ctx.receiver.log.unnamed.swap(0, Ordering::Relaxed);
    if unnamed > 0 {
        return Err(format!("{unnamed} requests came without a delivery id"));
    }
    let last = first.values().max().copied().unwrap_or(started);
    let end_to_end = last - started;
    let load_end = loadavg();

    let per_k = |s: f64| s * 1000.0 / total as f64;
    println!(
        "{name:<8} throughput: {} events x {FANOUT} = {total} deliveries, {} publishers, \
         {} workers, publish batch {}",
        args.events, args.publishers, args.workers, args.publish_batch
    );
    println!(
        "{name:<8}   end to end (first publish -> last arrival): {:>7.0} deliveries/s ({:.2} s)",
        total as f64 / end_to_end.as_secs_f64(),
        end_to_end.as_secs_f64()
    );
    println!(
        "{name:<8}   publishing (workers running):             {:>7.0} deliveries/s stored ({:.2} s, {:.0} events/s)",
        total as f64 / publish_phase.as_secs_f64(),
        publish_phase.as_secs_f64(),
        args.events as f64 / publish_phase.as_secs_f64()
    );
    println!(
        "{name:<8}   CPU per 1,000 deliveries: this process {:.3} s (of which the receiver's \
         thread {:.3} s; pipeline alone {:.3} s); postgres (every `postgres` process on the \
         machine) {:.3} s",
        per_k(cpu.process),
        per_k(cpu.receivers),
        per_k(cpu.process - cpu.receivers),
        per_k(cpu.postgres)
    );
    println!(
        "{name:<8}   all {total} ids arrived ({repeats} repeats); workers: claimed {}, \
         retrying {}, stale {}, store errors {}; load average {load} -> {load_end}",
        stats.claimed, stats.retrying, stats.stale, stats.store_errors,
    );
    tally.check()
}

/// Publishes `count` copies of `event` at `rate` per second, each on a task of its own (a
/// slow publish does not hold the next back). For each: when its publish was called, how
/// long the call took, and what it stored.
async fn paced_publish<S: Bench>(
    outbox: &Outbox<S>,
    registry: &Arc<Registry>,
    event: &Event,
    rate: u64,
    count: usize,
) -> Result<Vec<(Instant, Duration, Published)>, String> {
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        interval.tick().await;
        let (outbox, registry, event) = (outbox.clone(), registry.clone(), event.clone());
        tasks.push(tokio::spawn(async move {
            let at = Instant::now();
            let published = publish_events(&outbox, &registry, std::slice::from_ref(&event)).await;
            (at, at.elapsed(), published)
        }));
    }
    let mut out = Vec::with_capacity(count);
    for task in tasks {
        let (at, took, published) = task.await.unwrap();
        let published = published.map_err(|e| format!("publish: {e}"))?;
        out.extend(published.into_iter().map(|p| (at, took, p)));
    }
    Ok(out)
}

/// Publish → arrival at a paced `args.paced_rate` events/s × 10 webhooks.
async fn paced<S: Bench>(ctx: &Ctx, name: &str, store: S) -> Result<(), String> {
    let args = &ctx.args;
    let count = (args.paced_rate * args.paced_secs) as usize;
    if count == 0 {
        return Ok(());
    }
    let mut registry = Registry::new();
    webhooks(
        &mut registry,
        FANOUT,
        "hook",
        &ctx.receiver.url("hook"),
        &[EventKind::Subscribe],
    );
    let registry = Arc::new(registry);
    let outbox = Outbox::new(store.clone());
    ctx.receiver.log.take();
    let load = loadavg();
    let workers = Workers::start(
        &store,
        args.workers,
        outbox.wakeup(),
        &ctx.transport,
        &ctx.secret,
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let event = Event::sample(EventKind::Subscribe);
    let cpu = Cpu::now(&[&ctx.receiver], &[]);
    let published = paced_publish(&outbox, &registry, &event, args.paced_rate, count).await?;
    let total = count * FANOUT;
    let waited = await_arrivals(&ctx.receiver.log, total, Duration::from_secs(60)).await;
    let cpu = Cpu::now(&[&ctx.receiver], &[]).since(cpu);
    let tally = workers.tally.clone();
    workers.stop().await;
    waited?;
    let arrivals = ctx.receiver.log.take();
    let ids: Vec<u128> = published
        .iter()
        .flat_map(|(_, _, p)| p.deliveries.iter().map(|d| d.get()))
        .collect();
    let (first, _) = check_arrivals(&ids, &arrivals)?;
    let mut latencies: Vec<Duration> = published
        .iter()
        .flat_map(|(at, _, p)| p.deliveries.iter().map(move |d| (*at, d.get())))
        .map(|(at, id)| first[&id] - at)
        .collect();
    latencies.sort();
    let mut calls: Vec<Duration> = published.iter().map(|(_, took, _)| *took).collect();
    calls.sort();
    println!(
        "{name:<8} paced {} events/s x {FANOUT} = {} deliveries/s for {} s, {} workers: \
         publish -> arrival p50 {}, p99 {}, max {}; the publish call p50 {}, p99 {}; CPU per \
         1,000 deliveries: pipeline {:.3} s, postgres {:.3} s; load average {load} -> {}",
        args.paced_rate,
        args.paced_rate as usize * FANOUT,
        args.paced_secs,
        args.workers,
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
        ms(percentile(&calls, 0.50)),
        ms(percentile(&calls, 0.99)),
        (cpu.process - cpu.receivers) * 1000.0 / total as f64,
        cpu.postgres * 1000.0 / total as f64,
        loadavg(),
    );
    tally.check()
}

/// Fairness: H hangs until the attempt deadline and has `fair_pending` deliveries waiting
/// before the workers start; then paced events reach F (which answers at once) and H.
async fn fairness<S: Bench>(ctx: &Ctx, name: &str, store: S) -> Result<(), String> {
    let args = &ctx.args;
    let paced = (args.fair_rate * args.fair_secs) as usize;
    // H holds each request until the client gives up (the attempt deadline), 60 s at most.
    let h = Receiver::start(
        Answer::Hang(Duration::from_secs(60)),
        args.fair_pending + paced,
    );
    let f = Receiver::start(Answer::Now, paced);
    let mut registry = Registry::new();
    let h_id = webhooks(
        &mut registry,
        1,
        "H (hangs)",
        &h.url("hang"),
        &[EventKind::Subscribe, EventKind::Unsubscribe],
    )[0];
    let f_id = webhooks(
        &mut registry,
        1,
        "F (fast)",
        &f.url("fast"),
        &[EventKind::Unsubscribe],
    )[0];
    let registry = Arc::new(registry);
    let both = Event::sample(EventKind::Unsubscribe);
    let order: Vec<Option<WebhookId>> = registry.matches(&both).map(|w| w.id()).collect();
    let f_at = order
        .iter()
        .position(|&id| id == Some(f_id))
        .expect("F matches");
    assert!(order.contains(&Some(h_id)), "H matches");
    let outbox = Outbox::new(store.clone());

    // H's backlog first, no worker running.
    let enqueued = Instant::now();
    let (backlog, _) = publish_concurrently(
        &outbox,
        &registry,
        &Event::sample(EventKind::Subscribe),
        args.fair_pending,
        args.publishers,
        args.publish_batch,
    )
    .await;
    let enqueued = enqueued.elapsed();
    let load = loadavg();
    let workers = Workers::start(
        &store,
        args.workers,
        outbox.wakeup(),
        &ctx.transport,
        &ctx.secret,
    );
    let started = Instant::now();
    let published = paced_publish(&outbox, &registry, &both, args.fair_rate, paced).await?;
    let f_sent: Vec<(Instant, u128)> = published
        .iter()
        .map(|(at, _, p)| (*at, p.deliveries[f_at].get()))
        .collect();
    // Give F's last deliveries up to 10 s more, then stop everything.
    let window = Duration::from_secs(args.fair_secs + 10);
    while f.log.len() < paced && started.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waited = started.elapsed();
    workers.abort();
    let arrivals = f.log.take();
    let mut first = HashMap::new();
    for (id, at) in arrivals {
        first.entry(id).or_insert(at);
    }
    let mut latencies: Vec<Duration> = f_sent
        .iter()
        .filter_map(|(at, id)| first.get(id).map(|arrived| *arrived - *at))
        .collect();
    latencies.sort();
    // Deliveries that never arrived count as later than any that did.
    let pct = |q: f64| -> String {
        let i = ((q * f_sent.len() as f64).ceil() as usize).clamp(1, f_sent.len()) - 1;
        match latencies.get(i) {
            Some(d) => ms(*d),
            None => format!("not arrived within {:.0} s", waited.as_secs_f64()),
        }
    };
    println!(
        "{name:<8} fairness: {} deliveries to H (hangs until the {} s attempt deadline) \
         enqueued first ({:.1} s), then {} events/s for {} s reaching F and H; {} workers",
        backlog.len(),
        10,
        enqueued.as_secs_f64(),
        args.fair_rate,
        args.fair_secs,
        args.workers,
    );
    println!(
        "{name:<8}   F: {} of {} arrived within {:.1} s; publish -> arrival p50 {}, p99 {}",
        latencies.len(),
        f_sent.len(),
        waited.as_secs_f64(),
        pct(0.50),
        pct(0.99),
    );
    println!(
        "{name:<8}   H: at most {} attempts held at once, {} requests arrived, {} given up by \
         the client before H answered; load average {load} -> {}",
        h.log.max_held.load(Ordering::SeqCst),
        h.log.len(),
        h.log.abandoned.load(Ordering::Relaxed),
        loadavg(),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Worker processes

/// Set in a child process: the PostgreSQL schema to work over.
const CHILD_ENV: &str = "POSTHOOK_PIPELINE_CHILD";
const CHILD_WORKERS_ENV: &str = "POSTHOOK_PIPELINE_WORKERS";
const CHILD_SECRET_ENV: &str = "POSTHOOK_PIPELINE_SECRET";

/// A worker process: `POSTHOOK_PIPELINE_WORKERS` workers over the schema, woken by
/// `LISTEN`/`NOTIFY` (`PostgresStore::listen`), until its standard input closes. Says
/// `ready` on standard output once listening, and what its workers did at the end.
fn child(schema: &str) {
    let workers = std::env::var(CHILD_WORKERS_ENV)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4);
    let secret = SigningSecret::parse(&std::env::var(CHILD_SECRET_ENV).expect("the secret"))
        .expect("a whsec_ secret");
    let url = std::env::var("POSTHOOK_POSTGRES_URL").expect("POSTHOOK_POSTGRES_URL");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let store = PostgresStore::from_pool(pg_pool(&url, schema).await);
        let wakeup = Wakeup::new();
        let listening = {
            let (store, wakeup) = (store.clone(), wakeup.clone());
            tokio::spawn(async move { store.listen(wakeup).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let workers = Workers::start(&store, workers, &wakeup, &transport(), &secret);
        println!("ready");
        let _ = tokio::task::spawn_blocking(|| {
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        })
        .await;
        let stats = workers.stop().await;
        listening.abort();
        println!(
            "stats {} {} {} {}",
            stats.claimed, stats.retrying, stats.stale, stats.store_errors
        );
    });
}

/// The throughput run with the workers in `n` child processes (`args.workers` workers
/// each), for each `n` of `args.processes`; this process only publishes and receives.
async fn processes(ctx: &Ctx, stores: &mut Stores) -> Result<(), String> {
    use std::io::BufRead;
    let args = &ctx.args;
    let total = args.events * FANOUT;
    for &n in &args.processes {
        let (store, schema) = stores.postgres().await;
        let mut registry = Registry::new();
        webhooks(
            &mut registry,
            FANOUT,
            "hook",
            &ctx.receiver.url("hook"),
            &[EventKind::Subscribe],
        );
        let registry = Arc::new(registry);
        let outbox = Outbox::new(store.clone());
        ctx.receiver.log.take();
        let exe = std::env::current_exe().expect("this binary");
        let mut children: Vec<(Child, std::io::BufReader<std::process::ChildStdout>)> = (0..n)
            .map(|_| {
                let mut child = Command::new(&exe)
                    .env(CHILD_ENV, &schema)
                    .env(CHILD_WORKERS_ENV, args.workers.to_string())
                    .env(CHILD_SECRET_ENV, ctx.secret.to_whsec())
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("a worker process");
                let out = std::io::BufReader::new(child.stdout.take().unwrap());
                (child, out)
            })
            .collect();
        tokio::task::block_in_place(|| {
            for (_, out) in &mut children {
                let mut line = String::new();
                out.read_line(&mut line).expect("ready");
                assert_eq!(line.trim(), "ready", "a worker process did not start");
            }
        });
        let pids: Vec<u32> = children.iter().map(|(c, _)| c.id()).collect();
        let load = loadavg();
        let cpu = Cpu::now(&[&ctx.receiver], &pids);
        let started = Instant::now();
        let (ids, published_at) = publish_concurrently(
            &outbox,
            &registry,
            &Event::sample(EventKind::Subscribe),
            args.events,
            args.publishers,
            args.publish_batch,
        )
        .await;
        let publish_phase = published_at - started;
        let timeout = Duration::from_secs(60) + Duration::from_millis(total as u64 * 3);
        let waited = await_arrivals(&ctx.receiver.log, total, timeout).await;
        let cpu = Cpu::now(&[&ctx.receiver], &pids).since(cpu);
        let mut stats = Vec::new();
        tokio::task::block_in_place(|| {
            for (mut child, mut out) in children {
                drop(child.stdin.take()); // the signal to stop
                let mut line = String::new();
                let _ = out.read_line(&mut line);
                stats.push(line.trim().trim_start_matches("stats ").to_owned());
                let _ = child.wait();
            }
        });
        waited?;
        let arrivals = ctx.receiver.log.take();
        let (first, repeats) = check_arrivals(&ids, &arrivals)?;
        let last = first.values().max().copied().unwrap_or(started);
        let end_to_end = last - started;
        let per_k = |s: f64| s * 1000.0 / total as f64;
        println!(
            "postgres {n} worker process(es) x {} workers: {:>7.0} deliveries/s end to end \
             ({:.2} s; publishing {:.0} deliveries/s); CPU per 1,000 deliveries: worker \
             processes {:.3} s, this process less the receiver {:.3} s, postgres {:.3} s; \
             {repeats} repeats; workers' claimed/retrying/stale/store errors: {}; load \
             average {load} -> {}",
            args.workers,
            total as f64 / end_to_end.as_secs_f64(),
            end_to_end.as_secs_f64(),
            total as f64 / publish_phase.as_secs_f64(),
            per_k(cpu.children),
            per_k(cpu.process - cpu.receivers),
            per_k(cpu.postgres),
            stats.join(", "),
            loadavg(),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------

async fn run(args: Args) -> Vec<String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    println!(
        "pipeline bench: {} CPU(s), load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    let ceiling = receiver_ceiling(20_000, 64).await;
    println!(
        "receiver ceiling: {ceiling:.0} requests/s (plain reqwest, 64 in flight, 20,000 requests)"
    );
    let capacity =
        (args.events * FANOUT).max((args.paced_rate * args.paced_secs) as usize * FANOUT) + 1024;
    let ctx = Ctx {
        transport: transport(),
        secret: SigningSecret::generate().expect("a secret"),
        receiver: Receiver::start(Answer::Now, capacity),
        args,
    };
    let mut stores = Stores::new().await;
    let mut failures = Vec::new();
    let mut record = |name: &str, result: Result<(), String>| {
        if let Err(e) = result {
            eprintln!("{name}: FAILED: {e}");
            failures.push(format!("{name}: {e}"));
        }
    };
    for &kind in &ctx.args.stores {
        match (kind, ctx.args.scenario) {
            (StoreKind::Postgres, _) if stores.pg.is_none() => {
                println!("postgres: skipped (POSTHOOK_POSTGRES_URL is not set)");
            }
            (StoreKind::Postgres, Scenario::Throughput) => {
                let (store, _) = stores.postgres().await;
                record("postgres", throughput(&ctx, "postgres", store).await);
                let (store, _) = stores.postgres().await;
                record("postgres", paced(&ctx, "postgres", store).await);
            }
            (StoreKind::Postgres, Scenario::Fairness) => {
                let (store, _) = stores.postgres().await;
                record("postgres", fairness(&ctx, "postgres", store).await);
            }
            (StoreKind::Postgres, Scenario::Processes) => {
                record("postgres", processes(&ctx, &mut stores).await);
            }
            (StoreKind::Sqlite, Scenario::Throughput) => {
                let store = stores.sqlite().await;
                record("sqlite", throughput(&ctx, "sqlite", store).await);
                let store = stores.sqlite().await;
                record("sqlite", paced(&ctx, "sqlite", store).await);
            }
            (StoreKind::Sqlite, Scenario::Fairness) => {
                let store = stores.sqlite().await;
                record("sqlite", fairness(&ctx, "sqlite", store).await);
            }
            (StoreKind::Sqlite, Scenario::Processes) => {
                println!("sqlite: the processes scenario is PostgreSQL only");
            }
        }
    }
    stores.clean_up().await;
    failures
}

fn main() {
    if let Ok(schema) = std::env::var(CHILD_ENV) {
        child(&schema);
        return;
    }
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let failures = runtime.block_on(run(args));
    // Stop the hanging receivers' requests and any worker left behind.
    runtime.shutdown_timeout(Duration::from_secs(1));
    if !failures.is_empty() {
        eprintln!("pipeline bench FAILED:");
        for f in &failures {
            eprintln!("  {f}");
        }
        std::process::exit(1);
    }
}
