//! The [`Worker`]: takes due deliveries from a [`DeliveryStore`], makes their attempts
//! through a [`Dispatcher`], and puts the results back.
//!
//! A worker claims a batch (each delivery leased to it), makes the attempts concurrently
//! (at most [`concurrency`](Worker::concurrency) at once, claiming more as they finish),
//! and [finishes](DeliveryStore::finish) each: a retry goes back to the store, due later;
//! a final outcome is stored and handed to your [`OutcomeSink`] (deactivate a webhook on
//! `410 Gone`, show a failure in your UI; endpoint health plugs in there too). When nothing
//! is due it sleeps through the dispatcher's [`Timer`] for the
//! [idle poll](Worker::idle_poll) interval, or until a [`Wakeup`] (which the
//! [`Outbox`](crate::Outbox) rings on every publish) says there is work.
//!
//! Run as many workers as you like, in one process or many: the store's leases keep them
//! apart. [`Worker::run`] stops when its shutdown future completes: it claims nothing
//! more and lets the attempts in flight finish. A worker that is killed instead loses
//! nothing either: its leases run out, another worker claims those deliveries and records
//! the lapsed attempt (it counts against the retry policy) before trying again.
//!
//! Like the dispatcher, the worker spawns no task and needs no particular runtime; the
//! store may (SQLite and PostgreSQL need tokio).
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use posthook::{
//!     Dispatcher, Event, EventKind, MemoryStore, Outbox, Registry, Source, Transport,
//!     TransportError, Webhook, Worker,
//! };
//!
//! struct Ok200;
//! #[async_trait::async_trait]
//! impl Transport for Ok200 {
//!     async fn send(&self, _: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
//!         Ok(http::Response::new(Bytes::new()))
//!     }
//! }
//! struct Tokio;
//! #[async_trait::async_trait]
//! impl posthook::Timer for Tokio {
//!     async fn sleep(&self, d: Duration) { tokio::time::sleep(d).await }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
//! let mut registry = Registry::new();
//! registry.insert(Webhook::builder("CRM", "https://crm.example.com/hook")
//!     .events([EventKind::Subscribe]).sources(Source::ALL).build()?);
//!
//! let store = MemoryStore::new();
//! let outbox = Outbox::new(store.clone());
//! let worker = Worker::new(store.clone(), Dispatcher::new(Ok200, Tokio))
//!     .wakeup(outbox.wakeup().clone())
//!     .on_outcome(|report: &posthook::DeliveryReport| println!("{}: {}", report.id, report.outcome));
//!
//! outbox.publish(&registry, &Event::sample(EventKind::Subscribe)).await?;
//! let stats = worker.run_once().await?;
//! assert_eq!(stats.done, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::store::{Claimed, DeliveryStore, Finish, Finished, StoreError};
use crate::{
    AttemptOutcome, CancelReason, Deactivation, DeliveryReport, Dispatcher, FinalOutcome, Step,
    Timer, Transport, Webhook, WebhookId, WebhookUrl,
};

/// Where a [`Worker`] hands every final outcome, and the store errors it met.
///
/// Called once per delivery that ends (after the store has recorded the end), with the
/// delivery's webhook id, URL, outcome and attempts: deactivate the webhook on
/// [`FinalOutcome::Gone`](crate::FinalOutcome::Gone), show failures in your UI, feed an
/// endpoint-health tracker. A closure `Fn(&DeliveryReport)` is a sink.
pub trait OutcomeSink: Send + Sync {
    /// A delivery ended with `report.outcome`.
    fn outcome(&self, report: &DeliveryReport);

    /// The dispatcher's [`EndpointHealth`](crate::EndpointHealth) rule says a webhook
    /// should be switched off ([`HealthChange::Disable`](crate::HealthChange)): apply it to
    /// your registry (`Registry::deactivate(change.webhook_id(), change.deactivation())`)
    /// and persist it. Called after [`outcome`](OutcomeSink::outcome) for the delivery that
    /// tipped the streak. The default does nothing.
    fn health(&self, change: &crate::HealthChange) {
        let _ = change;
    }

    /// The store failed (the worker goes on: it waits an idle interval and tries again;
    /// an attempt whose finish failed is repeated once its lease runs out). The default
    /// does nothing.
    fn store_error(&self, error: &StoreError) {
        let _ = error;
    }
}

impl<F: Fn(&DeliveryReport) + Send + Sync> OutcomeSink for F {
    fn outcome(&self, report: &DeliveryReport) {
        self(report);
    }
}

/// A sink that drops everything (the default).
struct NoSink;

impl OutcomeSink for NoSink {
    fn outcome(&self, _: &DeliveryReport) {}
}

/// Tells idle workers in this process that there is work: [`Outbox`](crate::Outbox)
/// rings it on every publish, so a new event goes out at once rather than at the next idle
/// poll. Clones ring the same bell. (Workers in other processes find the work at their
/// next poll, or at once with PostgreSQL's `LISTEN`/`NOTIFY`: `PostgresStore::listen`
/// rings a bell whenever anyone enqueues.)
#[derive(Clone, Default)]
pub struct Wakeup {
    inner: Arc<Mutex<Bell>>,
}

#[derive(Default)]
struct Bell {
    rung: u64,
    waiting: Vec<Waker>,
}

impl fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wakeup").finish_non_exhaustive()
    }
}

impl Wakeup {
    /// A new bell.
    pub fn new() -> Wakeup {
        Wakeup::default()
    }

    /// Wakes every worker waiting on this bell.
    pub fn notify(&self) {
        let waiting = {
            let mut bell = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            bell.rung = bell.rung.wrapping_add(1);
            std::mem::take(&mut bell.waiting)
        };
        waiting.into_iter().for_each(Waker::wake);
    }

    pub(crate) fn rung(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).rung
    }

    /// Ready once the bell has rung since `seen`.
    pub(crate) fn poll_rung(&self, seen: u64, cx: &mut Context<'_>) -> Poll<()> {
        let mut bell = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if bell.rung != seen {
            return Poll::Ready(());
        }
        if !bell.waiting.iter().any(|w| w.will_wake(cx.waker())) {
            bell.waiting.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// What a worker did ([`Worker::run`], [`Worker::run_once`], [`Worker::run_until_idle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Deliveries claimed.
    pub claimed: u64,
    /// Deliveries recorded as due again later.
    pub retrying: u64,
    /// Deliveries that ended (handed to the sink).
    pub done: u64,
    /// Finishes refused as stale (the lease had run out and another worker took over).
    pub stale: u64,
    /// Store calls that failed.
    pub store_errors: u64,
    /// Webhooks the endpoint-health rule switched off (handed to [`OutcomeSink::health`]).
    pub health_changes: u64,
    /// Attempts that were in flight when their delivery was cancelled (recorded; the
    /// delivery stays cancelled: [`Finished::Cancelled`]).
    pub cancelled: u64,
}

impl WorkerStats {
    fn add(&mut self, other: WorkerStats) {
        self.claimed += other.claimed;
        self.retrying += other.retrying;
        self.done += other.done;
        self.stale += other.stale;
        self.store_errors += other.store_errors;
        self.health_changes += other.health_changes;
        self.cancelled += other.cancelled;
    }
}

/// Drives deliveries from a [`DeliveryStore`] through a [`Dispatcher`]: claims a batch
/// (leased), makes the attempts concurrently, finishes each, hands final outcomes to the
/// [`OutcomeSink`], sleeps through the [`Timer`] (or until a [`Wakeup`]) when nothing is
/// due. See the crate docs, [*Durable delivery*](crate#durable-delivery).
///
/// | option | default |
/// |---|---|
/// | [`batch`](Worker::batch) | 32 deliveries per claim |
/// | [`concurrency`](Worker::concurrency) | 64 attempts in flight |
/// | [`lease`](Worker::lease) | 60 s (keep it well above the dispatcher's attempt timeout) |
/// | [`idle_poll`](Worker::idle_poll) | 50 ms |
/// | [`on_outcome`](Worker::on_outcome) | none |
///
/// The attempts use the dispatcher's transport, timer, attempt timeout, address policy
/// and signing; the retry policy is each delivery's own (set when it was published).
pub struct Worker<St, T, S> {
    store: St,
    dispatcher: Dispatcher<T, S>,
    sink: Box<dyn OutcomeSink>,
    wakeup: Option<Wakeup>,
    batch: usize,
    concurrency: usize,
    lease: Duration,
    idle_poll: Duration,
    webhooks: Option<WebhookLookup>,
    /// The streak (its start) each webhook's pending deliveries were last cancelled for by
    /// the health rule: the rule repeats its change on every failure of a streak, and only
    /// the first may cancel (the webhook may have been switched on again since).
    health_cancels: Mutex<std::collections::HashMap<WebhookId, u64>>,
}

/// Finds a delivery's webhook, for its own attempt timeout and signing secrets.
type WebhookLookup = Box<dyn Fn(WebhookId) -> Option<Webhook> + Send + Sync>;

impl<St, T, S> fmt::Debug for Worker<St, T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("dispatcher", &self.dispatcher)
            .field("batch", &self.batch)
            .field("concurrency", &self.concurrency)
            .field("lease", &self.lease)
            .field("idle_poll", &self.idle_poll)
            .field("webhooks", &self.webhooks.is_some())
            .finish_non_exhaustive()
    }
}

/// One attempt made, waiting for its finish.
struct Attempted {
    finish: Finish,
    url: WebhookUrl,
}

impl<St, T, S> Worker<St, T, S> {
    /// A worker taking deliveries from `store` and sending them with `dispatcher`.
    pub fn new(store: St, dispatcher: Dispatcher<T, S>) -> Worker<St, T, S> {
        Worker {
            store,
            dispatcher,
            sink: Box::new(NoSink),
            wakeup: None,
            batch: 32,
            concurrency: 64,
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_millis(50),
            webhooks: None,
            health_cancels: Mutex::default(),
        }
    }

    /// Looks up the webhook of each delivery before its attempt, so that it gets the
    /// webhook's own attempt timeout ([`Webhook::attempt_timeout`]) and, with feature
    /// `signing`, its own signing secrets, as [`Dispatcher::dispatch`] gives them. The
    /// attempt still goes to the URL stored with the delivery. Without a lookup (the
    /// default), or when it finds nothing (a webhook removed since), the dispatcher's
    /// timeout and secrets apply. The retry policy is the one stored with the delivery
    /// ([`Outbox`](crate::Outbox) stores the webhook's own).
    ///
    /// For a registry shared behind a lock: `move |id| registry.read().unwrap().get(id).cloned()`.
    #[must_use]
    pub fn webhooks(
        mut self,
        lookup: impl Fn(WebhookId) -> Option<Webhook> + Send + Sync + 'static,
    ) -> Self {
        self.webhooks = Some(Box::new(lookup));
        self
    }

    /// Claims up to `batch` deliveries at a time (at least 1).
    #[must_use]
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Makes up to `concurrency` attempts at once (at least 1; a batch never exceeds it).
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// Leases each claimed delivery for `lease`: the longest one attempt and its finish may
    /// take before another worker may take the delivery over. Keep it well above the
    /// dispatcher's attempt timeout.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// When nothing is due, looks again after `interval` (the upper bound of the delay
    /// between a publish in another process and its first attempt).
    #[must_use]
    pub fn idle_poll(mut self, interval: Duration) -> Self {
        self.idle_poll = interval;
        self
    }

    /// Wakes up at once when `wakeup` rings (give it the [`Outbox::wakeup`](crate::Outbox::wakeup)
    /// of the same process).
    #[must_use]
    pub fn wakeup(mut self, wakeup: Wakeup) -> Self {
        self.wakeup = Some(wakeup);
        self
    }

    /// Hands every final outcome (and store error) to `sink`.
    #[must_use]
    pub fn on_outcome(mut self, sink: impl OutcomeSink + 'static) -> Self {
        self.sink = Box::new(sink);
        self
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.store
    }

    /// The dispatcher.
    pub fn dispatcher(&self) -> &Dispatcher<T, S> {
        &self.dispatcher
    }

    fn per_claim(&self) -> usize {
        self.batch.min(self.concurrency)
    }
}

impl<St: DeliveryStore, T: Transport, S: Timer> Worker<St, T, S> {
    /// Claims one batch, makes its attempts (concurrently, up to the
    /// [concurrency](Worker::concurrency)) and finishes each; returns what happened. For
    /// tests, benchmarks and your own loops; [`run`](Worker::run) is the loop.
    pub async fn run_once(&self) -> Result<WorkerStats, StoreError> {
        let claimed = self.store.claim(self.per_claim(), self.lease).await?;
        let flush = |batch| self.flush(batch);
        let mut work = Pipeline::new();
        work.stats.claimed = claimed.len() as u64;
        work.attempts
            .extend(claimed.into_iter().map(|c| Box::pin(self.attempt(c))));
        poll_fn(|cx| {
            work.poll(cx, &flush);
            if work.is_idle() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        Ok(work.stats)
    }

    /// Works until nothing is due and nothing is in flight, then returns what it did: for
    /// scripts, tests and one-off jobs ("send what is queued, then exit"), which need not
    /// poll [`counts`](DeliveryStore::counts).
    ///
    /// It claims a batch, makes its attempts, finishes them, and claims again, until a claim
    /// comes back empty. A retry due at once (a zero backoff) is due, so it is made in the
    /// same call; **a delivery scheduled for later is not due**: a retry in 30 s, one leased
    /// to another worker (or whose finish failed here: its lease must run out first), one
    /// its webhook's [`Pacing`](crate::Pacing) holds back (in-flight limit, rate, order).
    /// The call returns without waiting for those; they stay pending in the store, for the
    /// next call or for [`run`](Worker::run). It never sleeps on the idle poll. A store
    /// error on a claim ends the call with that error; a failed finish is counted in
    /// [`WorkerStats::store_errors`] (and handed to the sink) and the call goes on.
    ///
    /// A delivery whose policy retries at once, without end, keeps it busy for as long;
    /// every policy has a last attempt, so it does end.
    pub async fn run_until_idle(&self) -> Result<WorkerStats, StoreError> {
        let mut stats = WorkerStats::default();
        loop {
            let round = self.run_once().await?;
            stats.add(round);
            if round.claimed == 0 {
                return Ok(stats);
            }
        }
    }

    /// Runs until `shutdown` completes: claims due deliveries, keeps up to
    /// [concurrency](Worker::concurrency) attempts in flight, finishes them (whatever
    /// attempts ended while the previous finish was being written go to the store together,
    /// [`DeliveryStore::finish_all`]), and sleeps through the dispatcher's timer when
    /// nothing is due. On shutdown it claims nothing more, lets the attempts in flight
    /// finish, and returns what it did. Store errors do not stop it (they go to
    /// [`OutcomeSink::store_error`]; it waits an idle interval and goes on).
    ///
    /// ```no_run
    /// # async fn run(worker: posthook::Worker<posthook::MemoryStore, Box<dyn posthook::Transport>, Box<dyn posthook::Timer>>) {
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// // ... hand `stop` to whatever ends the process (a signal handler, an admin call) ...
    /// let stats = worker.run(async { let _ = stopped.await; }).await;
    /// # }
    /// ```
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> WorkerStats {
        let mut shutdown = pin!(shutdown);
        let mut stopping = false;
        let flush = |batch| self.flush(batch);
        let mut work = Pipeline::new();
        let per_claim = self.per_claim();
        // Claim once half a batch fits: attempts that hang to their deadline (at most their
        // webhook's in-flight limit each) must not keep the others from being claimed.
        let threshold = per_claim.div_ceil(2);
        loop {
            let room = self.concurrency.saturating_sub(work.busy());
            let mut idle = false;
            if !stopping && (room >= threshold || work.is_idle()) {
                let seen = self.wakeup.as_ref().map(Wakeup::rung);
                let want = room.min(per_claim);
                let claimed = work.drive(self.store.claim(want, self.lease), &flush).await;
                match claimed {
                    Ok(batch) => {
                        work.stats.claimed += batch.len() as u64;
                        let full = batch.len() == want;
                        work.attempts
                            .extend(batch.into_iter().map(|c| Box::pin(self.attempt(c))));
                        if full {
                            continue; // there may be more due
                        }
                    }
                    Err(error) => {
                        work.stats.store_errors += 1;
                        self.sink.store_error(&error);
                    }
                }
                idle = true;
                // Nothing (more) is due: wait for an attempt or a finish to end, the bell,
                // the idle interval or the shutdown.
                let sleep = self.dispatcher.timer().sleep(self.idle_poll);
                let mut sleep = pin!(sleep);
                poll_fn(|cx| {
                    if !stopping && shutdown.as_mut().poll(cx).is_ready() {
                        stopping = true;
                        return Poll::Ready(());
                    }
                    if work.poll(cx, &flush) {
                        return Poll::Ready(());
                    }
                    if sleep.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(());
                    }
                    match (&self.wakeup, seen) {
                        (Some(bell), Some(seen)) => bell.poll_rung(seen, cx),
                        _ => Poll::Pending,
                    }
                })
                .await;
            }
            if stopping && work.is_idle() {
                return work.stats;
            }
            if !idle {
                // Full: wait for an attempt or a finish to end (or the shutdown).
                poll_fn(|cx| {
                    if !stopping && shutdown.as_mut().poll(cx).is_ready() {
                        stopping = true;
                        return Poll::Ready(());
                    }
                    if work.poll(cx, &flush) || work.is_idle() {
                        return Poll::Ready(());
                    }
                    Poll::Pending
                })
                .await;
                if stopping && work.is_idle() {
                    return work.stats;
                }
            }
        }
    }

    /// One claimed delivery's attempt (or, when its last lease lapsed, the record of that).
    async fn attempt(&self, claimed: Claimed) -> Attempted {
        let Claimed {
            claim,
            mut delivery,
            url,
            body,
            age,
            lapsed,
            ..
        } = claimed;
        let step = if lapsed {
            // The previous holder's lease ran out mid-attempt: that attempt counts (as a
            // lapse, retried like a timeout), and the policy says when to go on.
            delivery.record(AttemptOutcome::Lapsed, age)
        } else {
            let webhook = match (&self.webhooks, delivery.webhook_id()) {
                (Some(lookup), Some(id)) => lookup(id),
                _ => None,
            };
            match webhook {
                Some(webhook) => {
                    self.dispatcher
                        .attempt_stored(&mut delivery, &url, &webhook, body, age)
                        .await
                }
                None => {
                    self.dispatcher
                        .attempt(&mut delivery, &url, body, age)
                        .await
                }
            }
        };
        Attempted {
            finish: Finish::new(claim, delivery, step),
            url,
        }
    }

    /// Finishes a batch of attempts in the store (transient errors retried twice), then
    /// hands the final outcomes to the sink.
    async fn flush(&self, batch: Vec<Attempted>) -> WorkerStats {
        let mut stats = WorkerStats::default();
        let (finishes, urls): (Vec<Finish>, Vec<WebhookUrl>) =
            batch.into_iter().map(|a| (a.finish, a.url)).unzip();
        let mut results = self.finish_all(&finishes).await;
        for round in 1..=2u32 {
            let again: Vec<usize> = (0..results.len())
                .filter(|&i| matches!(&results[i], Err(e) if e.is_transient()))
                .collect();
            if again.is_empty() {
                break;
            }
            for &i in &again {
                if let Err(error) = &results[i] {
                    stats.store_errors += 1;
                    self.sink.store_error(error);
                }
            }
            let sleep = self.idle_poll.saturating_mul(round);
            self.dispatcher.timer().sleep(sleep).await;
            let retry: Vec<Finish> = again.iter().map(|&i| finishes[i].clone()).collect();
            for (i, result) in again.into_iter().zip(self.finish_all(&retry).await) {
                results[i] = result;
            }
        }
        // Webhooks switched off by these outcomes (410, or the health rule): their pending
        // deliveries are cancelled in the store.
        let mut switched_off: Vec<(WebhookId, Deactivation)> = Vec::new();
        for ((finish, url), result) in finishes.into_iter().zip(urls).zip(results) {
            match result {
                Ok(Finished::Done) => {
                    stats.done += 1;
                    let Finish { delivery, step, .. } = finish;
                    if let Step::Done(outcome) = step {
                        let (id, webhook_id) = (delivery.id(), delivery.webhook_id());
                        let (_, attempts) = delivery.into_parts();
                        if let (Some(webhook), FinalOutcome::Gone) = (webhook_id, &outcome) {
                            switched_off.push((webhook, Deactivation::Gone));
                        }
                        let change = webhook_id.and_then(|webhook| {
                            let now = self.dispatcher.timer().now();
                            self.dispatcher
                                .with_endpoint_health(|h| h.record(webhook, &outcome, now))
                                .flatten()
                        });
                        self.sink.outcome(&DeliveryReport {
                            id,
                            webhook_id,
                            url,
                            outcome,
                            attempts,
                        });
                        if let Some(change) = change {
                            stats.health_changes += 1;
                            if self.first_of_its_streak(&change) {
                                switched_off.push((change.webhook_id(), change.deactivation()));
                            }
                            self.sink.health(&change);
                        }
                    }
                }
                Ok(Finished::Retrying) => stats.retrying += 1,
                Ok(Finished::Cancelled) => stats.cancelled += 1,
                Ok(_) => stats.stale += 1,
                Err(error) => {
                    // The lease will run out; the delivery is claimed again then.
                    stats.store_errors += 1;
                    self.sink.store_error(&error);
                }
            }
        }
        switched_off.dedup_by_key(|(webhook, _)| *webhook);
        for (webhook, why) in switched_off {
            if let Err(error) = self
                .store
                .cancel(webhook, CancelReason::SwitchedOff(why))
                .await
            {
                stats.store_errors += 1;
                self.sink.store_error(&error);
            }
        }
        stats
    }

    /// Whether `change` is the first the health rule gave for its streak (later ones of the
    /// same streak cancel nothing).
    fn first_of_its_streak(&self, change: &crate::HealthChange) -> bool {
        let since = match change.deactivation() {
            Deactivation::Failing { since, .. } => since,
            _ => return true,
        };
        let mut seen = self
            .health_cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        seen.insert(change.webhook_id(), since) != Some(since)
    }

    /// The store's batch finish, with exactly one result per finish.
    async fn finish_all(&self, batch: &[Finish]) -> Vec<Result<Finished, StoreError>> {
        let mut results = self.store.finish_all(batch).await;
        if results.len() != batch.len() {
            let wrong = StoreError::database(format!(
                "finish_all gave {} results for {} finishes",
                results.len(),
                batch.len()
            ));
            results.resize(batch.len(), Err(wrong));
        }
        results
    }
}

/// The work of one worker: attempts in flight, attempts waiting for their finish, and the
/// one finish being written.
struct Pipeline<A, F> {
    attempts: Vec<Pin<Box<A>>>,
    waiting: Vec<Attempted>,
    flushing: Option<Pin<Box<F>>>,
    flushing_len: usize,
    stats: WorkerStats,
}

impl<A: Future<Output = Attempted>, F: Future<Output = WorkerStats>> Pipeline<A, F> {
    fn new() -> Self {
        Pipeline {
            attempts: Vec::new(),
            waiting: Vec::new(),
            flushing: None,
            flushing_len: 0,
            stats: WorkerStats::default(),
        }
    }

    /// Claimed deliveries not finished yet.
    fn busy(&self) -> usize {
        self.attempts.len() + self.waiting.len() + self.flushing_len
    }

    fn is_idle(&self) -> bool {
        self.busy() == 0
    }

    /// Moves everything on; whether anything ended.
    fn poll(&mut self, cx: &mut Context<'_>, flush: &impl Fn(Vec<Attempted>) -> F) -> bool {
        let Pipeline {
            attempts, waiting, ..
        } = self;
        let before = attempts.len();
        attempts.retain_mut(|a| match a.as_mut().poll(cx) {
            Poll::Ready(done) => {
                waiting.push(done);
                false
            }
            Poll::Pending => true,
        });
        let mut progress = attempts.len() != before;
        loop {
            if let Some(f) = &mut self.flushing {
                match f.as_mut().poll(cx) {
                    Poll::Ready(stats) => {
                        self.stats.add(stats);
                        self.flushing = None;
                        self.flushing_len = 0;
                        progress = true;
                    }
                    Poll::Pending => break,
                }
            }
            if self.waiting.is_empty() {
                break;
            }
            self.flushing_len = self.waiting.len();
            self.flushing = Some(Box::pin(flush(std::mem::take(&mut self.waiting))));
        }
        progress
    }

    /// Awaits `fut` while keeping the work going.
    async fn drive<O>(
        &mut self,
        fut: impl Future<Output = O>,
        flush: &impl Fn(Vec<Attempted>) -> F,
    ) -> O {
        let mut fut = pin!(fut);
        poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            self.poll(cx, flush);
            Poll::Pending
        })
        .await
    }
}
