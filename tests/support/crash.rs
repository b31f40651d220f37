//! The crash test, for any store that two processes can share: a worker *process* (this
//! test binary, re-invoked to run only its `crash_child` test) is killed with SIGKILL in the
//! middle of its attempts against a real local receiver; a second worker finishes every
//! delivery once the dead one's leases run out. The receiver saw every delivery id at
//! least once; the store reports each exactly once, as delivered. The workers send with the
//! crate's `HttpTransport` when the `http` feature is on, else with the test-only TCP one.
#![allow(dead_code)]

use std::collections::HashSet;
use std::future::Future;
use std::process::{Command, Stdio};
use std::time::Duration;

use posthook::{
    AddressClass, AddressPolicy, DeliveryState, DeliveryStore, Dispatcher, Event, EventKind,
    Outbox, Registry, RetryPolicy, Source, Transport, Webhook, Worker,
};

#[cfg(not(feature = "http"))]
use crate::wire::TcpTransport;
use crate::wire::{Receiver, Sleep};

/// Loopback only is allowed: the receiver is on 127.0.0.1.
fn loopback() -> AddressPolicy {
    AddressPolicy::public_only().allow(AddressClass::Loopback)
}

/// The crate's `HttpTransport` with the `http` feature, else the test-only TCP one.
fn transport() -> Box<dyn Transport> {
    #[cfg(feature = "http")]
    {
        let http = posthook::HttpTransport::builder().address_policy(loopback());
        Box::new(http.build().unwrap())
    }
    #[cfg(not(feature = "http"))]
    {
        Box::new(TcpTransport)
    }
}

/// A worker over `store` sending over HTTP to loopback, with a 2 s lease.
pub(crate) fn worker<S: DeliveryStore>(store: S) -> Worker<S, Box<dyn Transport>, Sleep> {
    let dispatcher = Dispatcher::new(transport(), Sleep)
        .address_policy(loopback())
        .attempt_timeout(Duration::from_secs(1));
    Worker::new(store, dispatcher)
        .lease(Duration::from_secs(2))
        .batch(4)
        .concurrency(8)
        .idle_poll(Duration::from_millis(20))
}

/// The child's side: work until killed (or, at the latest, for 60 s).
pub(crate) async fn child<S: DeliveryStore>(store: S) {
    worker(store)
        .run(tokio::time::sleep(Duration::from_secs(60)))
        .await;
}

/// The parent's side. `child` is the command that starts the child worker process on the
/// same store (this binary with an env var naming the store, and `CHILD_TEST`).
pub(crate) async fn scenario<S: DeliveryStore + Clone + 'static>(
    store: &S,
    child: impl FnOnce(&mut Command) -> &mut Command,
) {
    const EVENTS: usize = 80;
    const HOOKS: usize = 3;
    let receiver = Receiver::start(Duration::from_millis(20));
    let mut registry = Registry::new();
    for n in 0..HOOKS {
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
    let mut ids = Vec::new();
    for _ in 0..EVENTS {
        let published = outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await
            .unwrap();
        ids.extend(published.deliveries);
    }
    let total = EVENTS * HOOKS;
    assert_eq!(ids.len(), total);

    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(exe);
    command
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut process = child(&mut command).spawn().expect("start the child worker");
    // Kill it mid-flight: once the receiver has seen a few, long before it could be done.
    let mut waited = 0;
    while receiver.seen().len() < 24 {
        assert!(
            process.try_wait().unwrap().is_none(),
            "the child worker exited on its own"
        );
        assert!(waited < 60_000, "the child worker sent nothing");
        tokio::time::sleep(Duration::from_millis(2)).await;
        waited += 2;
    }
    process.kill().unwrap(); // SIGKILL
    process.wait().unwrap();
    let at_kill = store.counts(None).await.unwrap();
    assert!(
        at_kill.pending > 0,
        "the kill must leave work behind: {at_kill:?}"
    );

    // A second worker, here, finishes the rest once the dead one's leases run out.
    let survivor = worker(store.clone());
    let done = async {
        for _ in 0..3000 {
            if store.counts(None).await.unwrap().pending == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the second worker did not finish in 60 s");
    };
    survivor.run(done).await;

    let seen: HashSet<String> = receiver.seen().into_iter().collect();
    let mut lapsed = 0;
    for id in &ids {
        assert!(
            seen.contains(&id.to_string()),
            "{id} never reached the receiver"
        );
        let record = store.delivery(*id).await.unwrap();
        assert_eq!(record.state, DeliveryState::Delivered, "{id}");
        assert!(record.delivery.outcome().unwrap().is_delivered());
        let timed_out = |a: &posthook::Attempt| a.outcome == posthook::AttemptOutcome::Lapsed;
        lapsed += record
            .delivery
            .attempts()
            .iter()
            .filter(|a| timed_out(a))
            .count();
    }
    // The kill landed mid-flight (the worker keeps at least 4 attempts going): the dead
    // worker's attempts were recorded as lapsed.
    assert!(lapsed > 0, "no attempt was in flight at the kill");
    let counts = store.counts(None).await.unwrap();
    assert_eq!(
        (counts.delivered, counts.pending, counts.total()),
        (total as u64, 0, total as u64)
    );
}

/// Runs `f` only in the child process (when `var` is set), with its value.
pub(crate) async fn in_child<F: Future<Output = ()>>(var: &str, f: impl FnOnce(String) -> F) {
    if let Ok(value) = std::env::var(var) {
        f(value).await;
    }
}
