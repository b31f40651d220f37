//! Several worker *processes* on one PostgreSQL share the work, and a SIGKILL of one of them
//! loses nothing (issue 14, item 6).
//!
//! The test publishes 300 events × 5 webhooks (1,500 deliveries) into a schema of its own,
//! starts three worker processes (this test binary, re-run to execute only its ignored
//! `child_worker` test), SIGKILLs one once a third of the deliveries have arrived at a real
//! HTTP receiver on 127.0.0.1, and waits for the other two to finish. Every delivery id
//! arrived at least once, the store says each is delivered, the killed process's lapsed
//! leases were recorded as attempts, and every process delivered some of the work.
//!
//! Each child tags its requests with an `x-test-worker` header (a transport wrapper around
//! `HttpTransport`), so that the receiver knows which process sent what, and prints its
//! `WorkerStats` when it is stopped (its stdin closes). A guard kills every child on every
//! way out of the test; a child also stops by itself when its stdin closes (the parent died)
//! or after two minutes.
//!
//! Without `POSTHOOK_POSTGRES_URL` the test is skipped (one line says so). The figure for
//! 1 vs 3 processes (BENCHMARKS.md) is the ignored `figure_one_vs_three_processes`, run by
//! hand.
#![cfg(all(feature = "postgres", feature = "http"))]

#[path = "support/pg.rs"]
mod pg;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use posthook::{
    AddressClass, AddressPolicy, DeliveryId, DeliveryState, DeliveryStore, Dispatcher, Event,
    EventKind, HttpTransport, Outbox, PostgresStore, Registry, RetryPolicy, Source, StoreCounts,
    TokioTimer, Transport, TransportError, Wakeup, Webhook, WebhookUrl, Worker, WorkerStats,
};

/// The child's database URL (with the test's schema as its `search_path`); its presence
/// makes `child_worker` a worker process.
const CHILD_DB: &str = "POSTHOOK_PROCS_CHILD_DB";
/// The child's name (`a`, `b`, `c`), sent in [`WORKER_HEADER`] and printed with its stats.
const CHILD_NAME: &str = "POSTHOOK_PROCS_CHILD_NAME";
/// The child's lease, in milliseconds (its attempt timeout is half of it).
const CHILD_LEASE_MS: &str = "POSTHOOK_PROCS_CHILD_LEASE_MS";
/// The child's claim batch and attempts in flight: `batch,concurrency`.
const CHILD_SHAPE: &str = "POSTHOOK_PROCS_CHILD_SHAPE";
/// Which process sent a request.
const WORKER_HEADER: &str = "x-test-worker";
/// What a child prints first on each of its lines for the parent.
const PREFIX: &str = "posthook-child ";

// ---- the receiver ------------------------------------------------------------------------

/// What the receiver got.
#[derive(Default)]
struct Received {
    /// Requests per delivery id (more than 1: a repeat).
    by_id: HashMap<String, u32>,
    /// Requests per worker process (the `x-test-worker` header).
    by_worker: HashMap<String, u64>,
    /// All requests.
    total: u64,
    /// Requests whose body is not an event, or without a delivery id.
    bad: u64,
    /// Requests being answered now (arrived, answer not yet sent), per worker process.
    open: HashMap<String, u64>,
}

struct ReceiverState {
    received: Mutex<Received>,
    delay: Duration,
}

/// A real HTTP server on 127.0.0.1 (axum) answering `204 No Content` after `delay`.
struct Receiver {
    addr: std::net::SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    async fn start(delay: Duration) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ReceiverState {
            received: Mutex::default(),
            delay,
        });
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn with<R>(&self, f: impl FnOnce(&Received) -> R) -> R {
        f(&self.state.received.lock().unwrap())
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (id, worker) = (text(posthook::DELIVERY_ID_HEADER), text(WORKER_HEADER));
    {
        let mut got = state.received.lock().unwrap();
        got.total += 1;
        match id {
            Some(id) if Event::decode(&body).is_ok() => *got.by_id.entry(id).or_default() += 1,
            _ => got.bad += 1,
        }
        *got.by_worker
            .entry(worker.clone().unwrap_or_default())
            .or_default() += 1;
        *got.open
            .entry(worker.clone().unwrap_or_default())
            .or_default() += 1;
    }
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    let mut got = state.received.lock().unwrap();
    if let Some(open) = got.open.get_mut(&worker.unwrap_or_default()) {
        *open = open.saturating_sub(1);
    }
    StatusCode::NO_CONTENT
}

// ---- the child: one worker process -------------------------------------------------------

/// `HttpTransport` plus a header naming the process.
struct Tagged {
    inner: HttpTransport,
    name: HeaderValue,
}

impl Tagged {
    fn tag(&self, request: &mut http::Request<Bytes>) {
        let header = HeaderName::from_static(WORKER_HEADER);
        request.headers_mut().insert(header, self.name.clone());
    }
}

#[async_trait::async_trait]
impl Transport for Tagged {
    async fn send(
        &self,
        mut request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        self.tag(&mut request);
        self.inner.send(request).await
    }

    async fn send_attempt(
        &self,
        url: &WebhookUrl,
        mut request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<Bytes>, TransportError> {
        self.tag(&mut request);
        self.inner.send_attempt(url, request, timeout).await
    }

    fn enforces_timeout(&self) -> bool {
        self.inner.enforces_timeout()
    }

    fn added_headers(&self) -> usize {
        self.inner.added_headers() + 1
    }

    fn address_policy(&self) -> Option<&AddressPolicy> {
        self.inner.address_policy()
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A worker process, when started by [`Children::spawn`] (it returns at once otherwise):
/// connects to the schema, listens for `NOTIFY`, says `ready`, waits for `go` on its stdin,
/// then runs a `Worker` until its stdin closes (or two minutes pass), and prints its stats.
#[test]
#[ignore = "a worker process of worker_processes_share_the_work_and_survive_a_sigkill"]
fn child_worker() {
    let Ok(url) = std::env::var(CHILD_DB) else {
        return;
    };
    let name = std::env::var(CHILD_NAME).unwrap_or_else(|_| "?".into());
    let lease = Duration::from_millis(env_number(CHILD_LEASE_MS, 2_000));
    let shape = std::env::var(CHILD_SHAPE).unwrap_or_default();
    let (batch, concurrency) = shape
        .split_once(',')
        .and_then(|(b, c)| Some((b.parse().ok()?, c.parse().ok()?)))
        .unwrap_or((8usize, 16usize));

    // Stdin: the first line says go, its end says stop.
    let (go, gone) = tokio::sync::oneshot::channel::<()>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut lines = std::io::stdin().lock().lines();
        if let Some(Ok(_)) = lines.next() {
            let _ = go.send(());
        }
        for _ in lines {}
        let _ = stop.send(());
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = PostgresStore::connect(&url).await.expect("child: connect");
        let wakeup = Wakeup::new();
        tokio::spawn({
            let (store, wakeup) = (store.clone(), wakeup.clone());
            async move { store.listen(wakeup).await }
        });
        let policy = AddressPolicy::public_only().allow(AddressClass::Loopback);
        let transport = Tagged {
            inner: HttpTransport::builder()
                .address_policy(policy)
                .build()
                .unwrap(),
            name: HeaderValue::from_str(&name).unwrap(),
        };
        let dispatcher = Dispatcher::new(transport, TokioTimer::new()).attempt_timeout(lease / 2);
        let worker = Worker::new(store, dispatcher)
            .lease(lease)
            .batch(batch)
            .concurrency(concurrency)
            .idle_poll(Duration::from_millis(100))
            .wakeup(wakeup);
        println!("{PREFIX}{name} ready");
        if gone.await.is_err() {
            return; // stdin closed before go
        }
        let stats = worker
            .run(async {
                tokio::select! {
                    _ = stopped => {}
                    () = tokio::time::sleep(Duration::from_secs(120)) => {}
                }
            })
            .await;
        println!(
            "{PREFIX}{name} stats claimed={} done={} retrying={} stale={} store_errors={}",
            stats.claimed, stats.done, stats.retrying, stats.stale, stats.store_errors
        );
    });
}

// ---- the parent: the processes -----------------------------------------------------------

struct Process {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    /// The child's lines for the parent, without the prefix.
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn said(&self, what: &str) -> bool {
        let expected = format!("{} {what}", self.name);
        self.lines().iter().any(|l| l.starts_with(&expected))
    }

    /// The stats it printed when stopped.
    fn stats(&self) -> Option<WorkerStats> {
        let start = format!("{} stats ", self.name);
        let line = self.lines().into_iter().find(|l| l.starts_with(&start))?;
        let mut stats = WorkerStats::default();
        for pair in line[start.len()..].split_whitespace() {
            let (key, value) = pair.split_once('=')?;
            let value: u64 = value.parse().ok()?;
            match key {
                "claimed" => stats.claimed = value,
                "done" => stats.done = value,
                "retrying" => stats.retrying = value,
                "stale" => stats.stale = value,
                "store_errors" => stats.store_errors = value,
                _ => {}
            }
        }
        Some(stats)
    }
}

/// The worker processes; every one still running is killed (SIGKILL) and reaped on drop,
/// whichever way the test ends.
struct Children(Vec<Process>);

impl Drop for Children {
    fn drop(&mut self) {
        for process in &mut self.0 {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
    }
}

/// How the children work.
#[derive(Clone, Copy)]
struct Shape {
    lease: Duration,
    batch: usize,
    concurrency: usize,
}

impl Children {
    /// Starts `n` worker processes on `db` (named `a`, `b`, `c`, ...) and waits until each
    /// is connected and ready.
    fn spawn(n: usize, db: &str, shape: Shape) -> Children {
        let exe = std::env::current_exe().expect("the test binary");
        let mut children = Children(Vec::new());
        for i in 0..n {
            let name = char::from(b'a' + i as u8).to_string();
            let mut child = Command::new(&exe)
                .args([
                    "child_worker",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_DB, db)
                .env(CHILD_NAME, &name)
                .env(CHILD_LEASE_MS, shape.lease.as_millis().to_string())
                .env(
                    CHILD_SHAPE,
                    format!("{},{}", shape.batch, shape.concurrency),
                )
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start a worker process");
            let stdin = child.stdin.take();
            let stdout = child.stdout.take().unwrap();
            let lines: Arc<Mutex<Vec<String>>> = Arc::default();
            let record = lines.clone();
            let reader = std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    // libtest may print on the same line before ours.
                    if let Some(at) = line.find(PREFIX) {
                        record
                            .lock()
                            .unwrap()
                            .push(line[at + PREFIX.len()..].to_owned());
                    }
                }
            });
            children.0.push(Process {
                name,
                child,
                stdin,
                lines,
                reader: Some(reader),
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for process in &mut children.0 {
            while !process.said("ready") {
                if let Some(status) = process.child.try_wait().unwrap() {
                    panic!(
                        "worker process {} exited before ready: {status}",
                        process.name
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "worker process {} not ready within 30 s",
                    process.name
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        children
    }

    /// Tells every child to start working.
    fn go(&mut self) {
        for process in &mut self.0 {
            let stdin = process.stdin.as_mut().unwrap();
            stdin.write_all(b"go\n").expect("tell the child to go");
            stdin.flush().unwrap();
        }
    }

    /// Closes the stdin of the children still running (they stop gracefully and print
    /// their stats) and waits for them to exit (at most `within`).
    fn stop(&mut self, within: Duration) {
        for process in &mut self.0 {
            process.stdin = None;
        }
        let deadline = Instant::now() + within;
        for process in &mut self.0 {
            while process.child.try_wait().unwrap().is_none() {
                assert!(
                    Instant::now() < deadline,
                    "worker process {} did not stop within {within:?}",
                    process.name
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            // Its last lines (the stats) are read once its stdout is closed.
            if let Some(reader) = process.reader.take() {
                let _ = reader.join();
            }
        }
    }
}

// ---- the scenario ------------------------------------------------------------------------

struct Plan {
    processes: usize,
    events: usize,
    hooks: usize,
    receiver_delay: Duration,
    shape: Shape,
    /// SIGKILL child `a` once this many distinct deliveries have arrived.
    kill_at: Option<usize>,
    /// Give up waiting for the work to be done after this long.
    deadline: Duration,
}

struct Run {
    ids: Vec<DeliveryId>,
    receiver: Receiver,
    children: Children,
    /// From `go` to the store having nothing pending and the receiver every id.
    elapsed: Duration,
    /// The store's counts just after the kill.
    at_kill: Option<StoreCounts>,
    /// Requests child `a` had sent when it was killed.
    victim_requests: u64,
}

async fn publish(store: &PostgresStore, receiver: &Receiver, plan: &Plan) -> Vec<DeliveryId> {
    let mut registry = Registry::new();
    for n in 0..plan.hooks {
        registry.insert(
            Webhook::builder(format!("local {n}"), &receiver.url())
                .events([EventKind::Subscribe])
                .sources(Source::ALL)
                .build()
                .unwrap(),
        );
    }
    let policy = RetryPolicy::default()
        .with_initial_backoff(Duration::from_millis(50))
        .with_multiplier(1)
        .with_max_attempts(10);
    let outbox = Outbox::new(store.clone()).retry_policy(policy);
    let event = Event::sample(EventKind::Subscribe);
    let mut ids = Vec::with_capacity(plan.events * plan.hooks);
    for _ in 0..plan.events {
        let published = outbox.publish(&registry, &event).await.unwrap();
        ids.extend(published.deliveries);
    }
    assert_eq!(ids.len(), plan.events * plan.hooks);
    ids
}

/// Publishes, starts the processes, kills one if the plan says so, and waits until every
/// delivery is done in the store and has arrived.
async fn scenario(schema: &pg::Schema, plan: &Plan) -> Run {
    let store = schema.store(4).await;
    let receiver = Receiver::start(plan.receiver_delay).await;
    // Everything is published before the workers start: the queue is full from the first
    // claim, so the victim always has attempts in flight when it is killed.
    let ids = publish(&store, &receiver, plan).await;
    let total = ids.len();
    let db = schema.url();
    let shape = plan.shape;
    let processes = plan.processes;
    let mut children = tokio::task::spawn_blocking(move || Children::spawn(processes, &db, shape))
        .await
        .unwrap();
    let started = Instant::now();
    children.go();

    let distinct = || receiver.with(|r| r.by_id.len());
    let mut at_kill = None;
    let mut victim_requests = 0;
    if let Some(kill_at) = plan.kill_at {
        let victim_sent = || receiver.with(|r| r.by_worker.get("a").copied().unwrap_or(0));
        // Killed while the receiver holds one of its requests: that lease is surely live
        // and unfinished.
        let victim_open = || receiver.with(|r| r.open.get("a").copied().unwrap_or(0));
        let deadline = Instant::now() + plan.deadline;
        while distinct() < kill_at || victim_sent() == 0 || victim_open() == 0 {
            let victim = &mut children.0[0].child;
            assert!(
                victim.try_wait().unwrap().is_none(),
                "worker process a exited on its own"
            );
            assert!(
                Instant::now() < deadline,
                "{} of {total} deliveries arrived within {:?} ({} from process a)",
                distinct(),
                plan.deadline,
                victim_sent()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let victim = &mut children.0[0];
        victim.child.kill().expect("SIGKILL worker process a");
        victim.child.wait().unwrap();
        victim.stdin = None;
        victim_requests = victim_sent();
        at_kill = Some(store.counts(None).await.unwrap());
    }

    let deadline = Instant::now() + plan.deadline;
    loop {
        let counts = store.counts(None).await.unwrap();
        if counts.pending == 0 && distinct() >= total {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not done within {:?}: {counts:?}, {} of {total} ids arrived",
            plan.deadline,
            distinct()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let children = tokio::task::spawn_blocking(move || {
        children.stop(Duration::from_secs(20));
        children
    })
    .await
    .unwrap();
    Run {
        ids,
        receiver,
        children,
        elapsed,
        at_kill,
        victim_requests,
    }
}

/// The lapse a worker records for a lease that ran out mid-attempt.
fn is_lapse(attempt: &posthook::Attempt) -> bool {
    attempt.outcome == posthook::AttemptOutcome::Lapsed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_processes_share_the_work_and_survive_a_sigkill() {
    let Some(schema) = pg::schema().await else {
        return;
    };
    const EVENTS: usize = 300;
    const HOOKS: usize = 5;
    let total = EVENTS * HOOKS;
    let plan = Plan {
        processes: 3,
        events: EVENTS,
        hooks: HOOKS,
        receiver_delay: Duration::from_millis(5),
        shape: Shape {
            lease: Duration::from_secs(2),
            batch: 8,
            concurrency: 16,
        },
        kill_at: Some(total / 3),
        deadline: Duration::from_secs(60),
    };
    let run = scenario(&schema, &plan).await;
    let store = schema.store(2).await;

    // Every delivery arrived at least once, and nothing else did.
    let (by_id, by_worker, requests, bad) = run
        .receiver
        .with(|r| (r.by_id.clone(), r.by_worker.clone(), r.total, r.bad));
    assert_eq!(bad, 0, "requests without a delivery id or an event body");
    for id in &run.ids {
        assert!(
            by_id.get(&id.to_string()).is_some_and(|&n| n >= 1),
            "{id} never arrived"
        );
    }
    assert_eq!(by_id.len(), total, "ids that were never published arrived");
    let repeats = requests - total as u64;

    // The store: every delivery delivered, none pending, nothing else.
    let counts = store.counts(None).await.unwrap();
    assert_eq!(
        (counts.delivered, counts.pending, counts.total()),
        (total as u64, 0, total as u64),
        "{counts:?}"
    );
    let at_kill = run.at_kill.unwrap();
    assert!(
        at_kill.pending > 0,
        "the kill must leave work behind: {at_kill:?}"
    );

    // The killed process's leases ran out and were recorded as lapsed attempts.
    let (mut lapsed, mut retried) = (0, 0);
    for id in &run.ids {
        let record = store.delivery(*id).await.unwrap();
        assert_eq!(record.state, DeliveryState::Delivered, "{id}");
        let attempts = record.delivery.attempts();
        lapsed += attempts.iter().filter(|a| is_lapse(a)).count();
        retried += usize::from(attempts.len() > 1);
    }
    assert!(
        lapsed > 0,
        "no lapsed lease was recorded: process a had nothing in flight when killed?"
    );

    // Every process did some of the work: the victim before its death (by the receiver's
    // account), the survivors by the receiver's and by their own.
    assert!(run.victim_requests > 0);
    let mut survivors_done = 0;
    for process in &run.children.0[1..] {
        let sent = by_worker.get(&process.name).copied().unwrap_or(0);
        let stats = process
            .stats()
            .unwrap_or_else(|| panic!("process {} printed no stats", process.name));
        assert!(
            sent > 0 && stats.done > 0,
            "process {} did nothing: {sent} requests, {stats:?}",
            process.name
        );
        survivors_done += stats.done;
    }
    assert!(
        survivors_done < total as u64,
        "the survivors finished everything: the victim's finishes are missing"
    );
    assert!(
        !by_worker.contains_key(""),
        "a request without a worker tag"
    );

    let victim_done = total as u64 - survivors_done;
    println!(
        "{total} deliveries in {:.1?} by 3 processes ({} SIGKILLed after {} requests; \
         {victim_done} finished by it); requests per process {by_worker:?}; {repeats} repeats; \
         {lapsed} lapsed attempts recorded, {retried} deliveries with more than one attempt; \
         survivors' stats: {}",
        run.elapsed,
        run.children.0[0].name,
        run.victim_requests,
        run.children.0[1..]
            .iter()
            .map(|p| format!("{} {:?}", p.name, p.stats().unwrap()))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The figure for BENCHMARKS.md: 1 vs 3 worker processes on the same workload, a receiver
/// answering at once, no kill. Run by hand:
///
/// ```text
/// POSTHOOK_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test POSTHOOK_PROCS_FIGURE=1 \
///   cargo test --release --all-features --test worker_processes -- --ignored --nocapture figure
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand (POSTHOOK_PROCS_FIGURE=1)"]
async fn figure_one_vs_three_processes() {
    if std::env::var("POSTHOOK_PROCS_FIGURE").is_err() {
        println!("set POSTHOOK_PROCS_FIGURE=1 (and POSTHOOK_POSTGRES_URL) to measure");
        return;
    }
    let events = env_number("POSTHOOK_PROCS_EVENTS", 2_000) as usize;
    let rounds = env_number("POSTHOOK_PROCS_ROUNDS", 3);
    let loadavg = || {
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".into())
    };
    for round in 1..=rounds {
        for processes in [1, 3] {
            let Some(schema) = pg::schema().await else {
                return;
            };
            let plan = Plan {
                processes,
                events,
                hooks: 5,
                receiver_delay: Duration::ZERO,
                shape: Shape {
                    lease: Duration::from_secs(30),
                    batch: 64,
                    concurrency: 128,
                },
                kill_at: None,
                deadline: Duration::from_secs(300),
            };
            let before = loadavg();
            let run = scenario(&schema, &plan).await;
            let total = run.ids.len();
            let rate = total as f64 / run.elapsed.as_secs_f64();
            let repeats = run.receiver.with(|r| r.total) - total as u64;
            println!(
                "round {round}: {processes} process(es): {total} deliveries in {:.2?}: \
                 {rate:.0}/s ({repeats} repeats); load average before {before}, after {}",
                run.elapsed,
                loadavg()
            );
        }
    }
}
