//! The `DeliveryStore` contract: one async fn per property, run against every store
//! (tests/store_memory.rs, tests/store_sqlite.rs, tests/store_postgres.rs).
//!
//! Time: each property takes a `Clockwork` that lets time pass — a `ManualClock` moved by
//! hand for the memory store, real sleeps for the databases (whose clock is their own).
//! With real time, nothing asserts how long anything took: "not due before" is checked at
//! once after a finish with a wait far longer than the check takes, and "due after" by
//! polling until it is.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use posthook::{
    AttemptOutcome, CancelReason, Claim, ClaimToken, Claimed, Deactivation, Delivery, DeliveryId,
    DeliveryState, DeliveryStore, EventId, EventKind, FinalOutcome, Finish, Finished, ManualClock,
    NewEvent, Page, RetryPolicy, Step, StoreError, TransportError, WebhookId, WebhookUrl,
};

/// How time passes for a store.
pub(crate) enum Clockwork {
    /// The store reads this clock: move it.
    Manual(ManualClock),
    /// The store reads a real clock: sleep.
    Real,
}

impl Clockwork {
    pub(crate) async fn pass(&self, d: Duration) {
        match self {
            Clockwork::Manual(clock) => clock.advance(d),
            Clockwork::Real => tokio::time::sleep(d).await,
        }
    }

    /// A wait "long" against the time a check takes: at once with a manual clock.
    fn long(&self) -> Duration {
        match self {
            Clockwork::Manual(_) => Duration::from_secs(3600),
            Clockwork::Real => Duration::from_secs(2),
        }
    }

    /// The store's time now.
    pub(crate) fn now(&self) -> std::time::SystemTime {
        match self {
            Clockwork::Manual(clock) => posthook::Clock::now(clock),
            Clockwork::Real => std::time::SystemTime::now(),
        }
    }

    fn short(&self) -> Duration {
        match self {
            Clockwork::Manual(_) => Duration::from_secs(1),
            Clockwork::Real => Duration::from_millis(20),
        }
    }
}

/// Claims until something comes, letting time pass in between (at most ~30 s of real time).
pub(crate) async fn claim_eventually<S: DeliveryStore>(
    store: &S,
    clock: &Clockwork,
    lease: Duration,
) -> Vec<Claimed> {
    for _ in 0..3000 {
        let claimed = store.claim(100, lease).await.expect("claim");
        if !claimed.is_empty() {
            return claimed;
        }
        clock.pass(Duration::from_millis(10)).await;
    }
    panic!("nothing became due");
}

pub(crate) fn url() -> WebhookUrl {
    WebhookUrl::parse("https://receiver.example.com/hook").unwrap()
}

fn random() -> u128 {
    EventId::random().unwrap().get()
}

/// An event with `n` deliveries to webhook `hook`, with `policy`.
pub(crate) fn event(n: usize, hook: u64, policy: &RetryPolicy) -> NewEvent {
    let body = Bytes::from(format!("type=subscribe&n={n}&r={}", random()));
    let mut event = NewEvent::new(EventId::new(random()), EventKind::Subscribe, body);
    for _ in 0..n {
        let id = DeliveryId::new(random());
        event.push(
            Delivery::new(id, Some(WebhookId::new(hook)), policy.clone()),
            url(),
        );
    }
    event
}

fn ok(claimed: &mut Claimed) -> Step {
    claimed
        .delivery
        .record(AttemptOutcome::Status(StatusCode::OK), claimed.age)
}

fn unavailable(claimed: &mut Claimed) -> Step {
    claimed.delivery.record(
        AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE),
        claimed.age,
    )
}

/// Enqueueing the same ids again changes nothing, under the same event id or another.
pub(crate) async fn enqueue_is_idempotent<S: DeliveryStore>(store: &S) {
    let event = event(3, 1, &RetryPolicy::default());
    assert_eq!(store.enqueue(&event).await.unwrap(), 3);
    assert_eq!(store.enqueue(&event).await.unwrap(), 0);
    let mut again = NewEvent::new(EventId::new(random()), event.kind(), Bytes::from("other"));
    for d in event.deliveries() {
        again.push(d.delivery.clone(), d.url.clone());
    }
    assert_eq!(store.enqueue(&again).await.unwrap(), 0);
    let counts = store.counts(None).await.unwrap();
    assert_eq!((counts.pending, counts.bodies, counts.total()), (3, 1, 3));
    // Nothing enqueued twice is claimed twice.
    let claimed = store.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len(), 3);
    assert!(claimed.iter().all(|c| c.body == *event.body()));
    // An event without deliveries stores nothing.
    let empty = NewEvent::new(EventId::new(random()), EventKind::Open, Bytes::from("x"));
    assert_eq!(store.enqueue(&empty).await.unwrap(), 0);
    assert_eq!(store.counts(None).await.unwrap().bodies, 1);
}

/// One stored body per event, shared by every delivery of it.
pub(crate) async fn one_body_per_event<S: DeliveryStore>(store: &S) {
    // An in-flight limit above 1,000: the claims below never finish what they take.
    let a = paced(1000, 1, max_in_flight(1000));
    let b = event(5, 2, &RetryPolicy::default());
    assert_eq!(store.enqueue(&a).await.unwrap(), 1000);
    assert_eq!(store.enqueue(&b).await.unwrap(), 5);
    assert_eq!(store.counts(None).await.unwrap().bodies, 2);
    let mut seen = 0;
    loop {
        let claimed = store.claim(300, Duration::from_secs(60)).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        for c in &claimed {
            let want = if c.delivery.webhook_id() == Some(WebhookId::new(1)) {
                a.body()
            } else {
                b.body()
            };
            assert_eq!(&c.body, want);
            assert_eq!(c.kind, EventKind::Subscribe);
            assert!(!c.lapsed);
        }
        seen += claimed.len();
    }
    assert_eq!(seen, 1005);
}

/// `workers` concurrent claimers over `n` deliveries: every delivery is claimed by one and
/// finished exactly once.
pub(crate) async fn claims_are_exclusive<S: DeliveryStore + Clone + 'static>(
    store: &S,
    n: usize,
    workers: usize,
) {
    let event = event(n, 1, &RetryPolicy::default());
    assert_eq!(store.enqueue(&event).await.unwrap(), n);
    let finished: Arc<Mutex<HashMap<DeliveryId, usize>>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let store = store.clone();
        let finished = finished.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let claimed = store.claim(50, Duration::from_secs(600)).await.unwrap();
                if claimed.is_empty() {
                    break;
                }
                for mut c in claimed {
                    let step = ok(&mut c);
                    let done = store.finish(&c.claim, &c.delivery, &step).await.unwrap();
                    assert_eq!(done, Finished::Done, "{:?}", c.claim.id);
                    *finished.lock().unwrap().entry(c.claim.id).or_default() += 1;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let finished = std::mem::take(&mut *finished.lock().unwrap());
    assert_eq!(finished.len(), n);
    assert!(finished.values().all(|&times| times == 1));
    for d in event.deliveries() {
        assert_eq!(finished.get(&d.delivery.id()), Some(&1));
    }
    let counts = store.counts(None).await.unwrap();
    assert_eq!((counts.delivered, counts.pending), (n as u64, 0));
}

/// A claimed delivery is invisible until its lease runs out; then it is claimed again
/// (lapsed), and the first holder's finish is refused as stale.
pub(crate) async fn expired_lease_redelivers<S: DeliveryStore>(store: &S, clock: &Clockwork) {
    let event = event(1, 1, &RetryPolicy::default());
    store.enqueue(&event).await.unwrap();
    let lease = clock.long();
    let mut first = store.claim(10, lease).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(!first[0].lapsed);
    assert!(
        store.claim(10, lease).await.unwrap().is_empty(),
        "leased: invisible"
    );
    assert!(store.delivery(first[0].claim.id).await.unwrap().leased);

    clock.pass(lease).await;
    let mut second = claim_eventually(store, clock, Duration::from_secs(600)).await;
    assert_eq!(second.len(), 1);
    let (late, current) = (&mut first[0], &mut second[0]);
    assert_eq!(late.claim.id, current.claim.id);
    assert_ne!(late.claim.token, current.claim.token);
    assert!(current.lapsed, "the lapsed lease is reported");

    let step = ok(late);
    let refused = store
        .finish(&late.claim, &late.delivery, &step)
        .await
        .unwrap();
    assert_eq!(refused, Finished::Stale);
    let record = store.delivery(current.claim.id).await.unwrap();
    assert_eq!(record.state, DeliveryState::Pending);
    assert!(
        record.delivery.attempts().is_empty(),
        "the stale finish changed nothing"
    );

    let step = ok(current);
    assert_eq!(
        store
            .finish(&current.claim, &current.delivery, &step)
            .await
            .unwrap(),
        Finished::Done
    );
    // Finishing twice is stale too.
    assert_eq!(
        store
            .finish(&current.claim, &current.delivery, &step)
            .await
            .unwrap(),
        Finished::Stale
    );
    let record = store.delivery(current.claim.id).await.unwrap();
    assert_eq!(record.state, DeliveryState::Delivered);
    assert_eq!(record.delivery.attempts().len(), 1);
    assert!(record.finished_at.is_some() && record.due_at.is_none() && !record.leased);
}

/// `Retry { after }` makes the delivery due again `after` from now: not before, and it
/// does come back.
pub(crate) async fn retry_after_is_honoured<S: DeliveryStore>(store: &S, clock: &Clockwork) {
    let after = clock.long();
    let policy = RetryPolicy::default().with_initial_backoff(after);
    store.enqueue(&event(1, 1, &policy)).await.unwrap();
    let mut claimed = store.claim(10, Duration::from_secs(600)).await.unwrap();
    let c = &mut claimed[0];
    let step = unavailable(c);
    assert_eq!(step, Step::Retry { after });
    assert_eq!(
        store.finish(&c.claim, &c.delivery, &step).await.unwrap(),
        Finished::Retrying
    );
    assert!(
        store
            .claim(10, Duration::from_secs(600))
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    let record = store.delivery(c.claim.id).await.unwrap();
    assert_eq!(record.state, DeliveryState::Pending);
    assert!(!record.leased);
    assert_eq!(record.delivery.attempts().len(), 1);
    if let Clockwork::Manual(_) = clock {
        // Exactly: due at `after`, not a millisecond before.
        clock.pass(after - Duration::from_millis(1)).await;
        assert!(
            store
                .claim(10, Duration::from_secs(600))
                .await
                .unwrap()
                .is_empty()
        );
        clock.pass(Duration::from_millis(1)).await;
    }
    let again = claim_eventually(store, clock, Duration::from_secs(600)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].claim.id, c.claim.id);
    assert!(!again[0].lapsed);
    assert_eq!(again[0].delivery.attempts().len(), 1);
    assert_eq!(again[0].delivery.next_attempt(), Some(2));
}

/// The policy's last attempt gives the final outcome, and the delivery is never claimed
/// again.
pub(crate) async fn last_attempt_is_final<S: DeliveryStore>(store: &S, clock: &Clockwork) {
    let policy = RetryPolicy::default()
        .with_max_attempts(3)
        .with_initial_backoff(clock.short())
        .with_multiplier(1);
    let event = event(1, 1, &policy);
    let id = event.deliveries()[0].delivery.id();
    store.enqueue(&event).await.unwrap();
    for attempt in 1..=3 {
        let mut claimed = claim_eventually(store, clock, Duration::from_secs(600)).await;
        let c = &mut claimed[0];
        assert_eq!(c.delivery.next_attempt(), Some(attempt));
        let step = unavailable(c);
        let finished = store.finish(&c.claim, &c.delivery, &step).await.unwrap();
        if attempt < 3 {
            assert!(matches!(step, Step::Retry { .. }));
            assert_eq!(finished, Finished::Retrying);
        } else {
            assert!(matches!(step, Step::Done(FinalOutcome::GaveUp { .. })));
            assert_eq!(finished, Finished::Done);
        }
    }
    let record = store.delivery(id).await.unwrap();
    assert_eq!(record.state, DeliveryState::GaveUp);
    assert_eq!(record.delivery.attempts().len(), 3);
    clock.pass(clock.short() * 3).await;
    assert!(
        store
            .claim(10, Duration::from_secs(600))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.counts(None).await.unwrap().gave_up, 1);
}

/// Each final outcome lands in its state; a step that does not fit the delivery, or a
/// claim of another delivery, is an error that changes nothing.
pub(crate) async fn outcomes_and_misuse<S: DeliveryStore>(store: &S) {
    let event = event(4, 1, &RetryPolicy::default());
    store.enqueue(&event).await.unwrap();
    let mut claimed = store.claim(10, Duration::from_secs(600)).await.unwrap();
    assert_eq!(claimed.len(), 4);
    // Misuse first.
    let (a, b) = (claimed[0].clone(), claimed[1].clone());
    let wrong = Claim::new(b.claim.id, a.claim.token);
    let mut done = a.delivery.clone();
    let step = done.record(AttemptOutcome::Status(StatusCode::OK), a.age);
    assert!(matches!(
        store.finish(&wrong, &done, &step).await,
        Err(StoreError::Mismatch { .. })
    ));
    let retry = Step::Retry {
        after: Duration::from_secs(1),
    };
    assert!(matches!(
        store.finish(&a.claim, &done, &retry).await,
        Err(StoreError::InvalidStep(_))
    ));
    let unknown = Claim::new(DeliveryId::new(random()), a.claim.token);
    let mut stranger = Delivery::new(unknown.id, None, RetryPolicy::default());
    let step_u = stranger.record(AttemptOutcome::Status(StatusCode::OK), Duration::ZERO);
    assert!(matches!(
        store.finish(&unknown, &stranger, &step_u).await,
        Err(StoreError::UnknownDelivery(id)) if id == unknown.id
    ));
    assert!(matches!(
        store.delivery(unknown.id).await,
        Err(StoreError::UnknownDelivery(_))
    ));
    // Then the four outcomes.
    let outcomes = [
        AttemptOutcome::Status(StatusCode::OK),
        AttemptOutcome::Status(StatusCode::GONE),
        AttemptOutcome::Status(StatusCode::BAD_REQUEST),
        AttemptOutcome::Error(TransportError::blocked("private address")),
    ];
    for (c, outcome) in claimed.iter_mut().zip(outcomes) {
        let step = c.delivery.record(outcome, c.age);
        assert_eq!(
            store.finish(&c.claim, &c.delivery, &step).await.unwrap(),
            Finished::Done
        );
    }
    let counts = store.counts(Some(WebhookId::new(1))).await.unwrap();
    assert_eq!(
        (counts.delivered, counts.gone, counts.failed, counts.pending),
        (1, 1, 2, 0)
    );
    let record = store.delivery(claimed[1].claim.id).await.unwrap();
    assert_eq!(record.state, DeliveryState::Gone);
    assert_eq!(record.delivery.outcome(), Some(&FinalOutcome::Gone));
    assert_eq!(record.url, url());
    assert_eq!(record.event, event.id());
    assert_eq!(record.kind, EventKind::Subscribe);
}

/// The delivery log: one webhook's deliveries newest first, a page at a time; counts per
/// webhook.
pub(crate) async fn delivery_log<S: DeliveryStore>(store: &S, clock: &Clockwork) {
    let mut ids = Vec::new();
    for _ in 0..5 {
        let e = event(2, 7, &RetryPolicy::default());
        ids.extend(e.deliveries().iter().map(|d| d.delivery.id()));
        store.enqueue(&e).await.unwrap();
        store
            .enqueue(&event(1, 8, &RetryPolicy::default()))
            .await
            .unwrap();
        clock.pass(Duration::from_millis(5)).await;
    }
    ids.reverse(); // newest first
    let hook = WebhookId::new(7);
    let first = store.recent(hook, Page::first(4)).await.unwrap();
    let second = store.recent(hook, Page::first(4).next()).await.unwrap();
    let third = store
        .recent(hook, Page::first(4).next().next())
        .await
        .unwrap();
    let got: Vec<DeliveryId> = [first, second, third]
        .iter()
        .flatten()
        .map(|r| r.delivery.id())
        .collect();
    assert_eq!(got, ids);
    let all = store.recent(hook, Page::first(100)).await.unwrap();
    assert!(all.windows(2).all(|w| w[0].created_at >= w[1].created_at));
    assert!(all.iter().all(|r| r.delivery.webhook_id() == Some(hook)));
    assert!(
        store
            .recent(WebhookId::new(99), Page::first(10))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.counts(Some(hook)).await.unwrap().pending, 10);
    assert_eq!(
        store.counts(Some(WebhookId::new(8))).await.unwrap().pending,
        5
    );
    assert_eq!(store.counts(None).await.unwrap().pending, 15);
}

/// Pruning removes finished deliveries older than the age, and the bodies no delivery
/// uses; pending deliveries and their bodies stay.
pub(crate) async fn pruning_leaves_live_deliveries<S: DeliveryStore>(store: &S, clock: &Clockwork) {
    let a = event(2, 1, &RetryPolicy::default());
    let b = event(1, 1, &RetryPolicy::default());
    store.enqueue(&a).await.unwrap();
    store.enqueue(&b).await.unwrap();
    let a_done = a.deliveries()[0].delivery.id();
    let a_live = a.deliveries()[1].delivery.id();
    let b_done = b.deliveries()[0].delivery.id();
    let claimed = store.claim(10, clock.long()).await.unwrap();
    for mut c in claimed {
        if c.claim.id == a_live {
            continue; // stays leased, pending
        }
        let step = ok(&mut c);
        store.finish(&c.claim, &c.delivery, &step).await.unwrap();
    }
    // Not old enough yet.
    let pruned = store.prune(Duration::from_secs(3600)).await.unwrap();
    assert_eq!((pruned.deliveries, pruned.bodies), (0, 0));
    clock.pass(Duration::from_millis(20)).await;
    let pruned = store.prune(Duration::from_millis(1)).await.unwrap();
    assert_eq!((pruned.deliveries, pruned.bodies), (2, 1));
    assert!(matches!(
        store.delivery(a_done).await,
        Err(StoreError::UnknownDelivery(_))
    ));
    assert!(matches!(
        store.delivery(b_done).await,
        Err(StoreError::UnknownDelivery(_))
    ));
    let live = store.delivery(a_live).await.unwrap();
    assert_eq!(live.state, DeliveryState::Pending);
    let counts = store.counts(None).await.unwrap();
    assert_eq!((counts.pending, counts.bodies, counts.total()), (1, 1, 1));
    // The live one still has its body when it is claimed again.
    clock.pass(clock.long()).await;
    let again = claim_eventually(store, clock, Duration::from_secs(600)).await;
    assert_eq!(again[0].body, *a.body());
    assert!(again[0].lapsed);
}

/// A lapsed claim's token, and any made-up token, never finishes a delivery.
pub(crate) async fn made_up_token_is_stale<S: DeliveryStore>(store: &S) {
    let e = event(1, 1, &RetryPolicy::default());
    store.enqueue(&e).await.unwrap();
    let mut d = e.deliveries()[0].delivery.clone();
    let step = d.record(AttemptOutcome::Status(StatusCode::OK), Duration::ZERO);
    let forged = Claim::new(d.id(), ClaimToken::new(random()));
    assert_eq!(
        store.finish(&forged, &d, &step).await.unwrap(),
        Finished::Stale
    );
    assert_eq!(store.counts(None).await.unwrap().pending, 1);
}

/// A batch finish gives one result per finish, in order, each as `finish` would.
pub(crate) async fn finish_all_in_one_batch<S: DeliveryStore>(store: &S) {
    let e = event(4, 1, &RetryPolicy::default());
    store.enqueue(&e).await.unwrap();
    let mut claimed = store.claim(10, Duration::from_secs(600)).await.unwrap();
    assert_eq!(claimed.len(), 4);
    let done_step = ok(&mut claimed[0]);
    let retry_step = unavailable(&mut claimed[1]);
    let stale_step = ok(&mut claimed[2]);
    let mut batch = vec![
        Finish::new(claimed[0].claim, claimed[0].delivery.clone(), done_step),
        Finish::new(claimed[1].claim, claimed[1].delivery.clone(), retry_step),
        Finish::new(
            Claim::new(claimed[2].claim.id, ClaimToken::new(random())),
            claimed[2].delivery.clone(),
            stale_step.clone(),
        ),
    ];
    let mut stranger = Delivery::new(DeliveryId::new(random()), None, RetryPolicy::default());
    let step = stranger.record(AttemptOutcome::Status(StatusCode::OK), Duration::ZERO);
    batch.push(Finish::new(
        Claim::new(stranger.id(), claimed[0].claim.token),
        stranger,
        step,
    ));
    // A step that does not fit: Done for a delivery that is not over.
    batch.push(Finish::new(
        claimed[3].claim,
        claimed[3].delivery.clone(),
        stale_step,
    ));
    let results = store.finish_all(&batch).await;
    assert_eq!(results.len(), 5);
    assert_eq!(results[0].as_ref().unwrap(), &Finished::Done);
    assert_eq!(results[1].as_ref().unwrap(), &Finished::Retrying);
    assert_eq!(results[2].as_ref().unwrap(), &Finished::Stale);
    assert!(matches!(results[3], Err(StoreError::UnknownDelivery(_))));
    assert!(matches!(results[4], Err(StoreError::InvalidStep(_))));
    let counts = store.counts(None).await.unwrap();
    assert_eq!((counts.delivered, counts.pending), (1, 3));
    // The same delivery twice in a batch: the first finishes, the second is stale.
    let twice = vec![batch[0].clone(), batch[0].clone()];
    let results = store.finish_all(&twice).await;
    assert_eq!(results[0].as_ref().unwrap(), &Finished::Stale); // already done above
    assert_eq!(results[1].as_ref().unwrap(), &Finished::Stale);
    let step = ok(&mut claimed[3]);
    let last = Finish::new(claimed[3].claim, claimed[3].delivery.clone(), step);
    let results = store.finish_all(&[last.clone(), last]).await;
    assert_eq!(results[0].as_ref().unwrap(), &Finished::Done);
    assert_eq!(results[1].as_ref().unwrap(), &Finished::Stale);
    assert!(store.finish_all(&[]).await.is_empty());
}

/// `enqueue_all`: many events in one call, each body once, the same ids again change
/// nothing, events without deliveries store nothing; and a fan-out of `fan_out` deliveries
/// of one event goes in one call.
pub(crate) async fn enqueue_all_stores_a_batch<S: DeliveryStore>(store: &S, fan_out: usize) {
    let policy = RetryPolicy::default();
    let a = event(3, 1, &policy);
    let empty = NewEvent::new(EventId::new(random()), EventKind::Open, Bytes::from("x"));
    let b = event(2, 2, &policy);
    let batch = [a.clone(), empty, b.clone()];
    assert_eq!(store.enqueue_all(&batch).await.unwrap(), 5);
    assert_eq!(store.enqueue_all(&batch).await.unwrap(), 0);
    assert_eq!(store.enqueue_all(&[]).await.unwrap(), 0);
    let counts = store.counts(None).await.unwrap();
    assert_eq!((counts.pending, counts.bodies), (5, 2));
    // One stored event and one new one: only the new one's deliveries (and body) are added.
    let c = event(4, 3, &policy);
    assert_eq!(store.enqueue_all(&[a.clone(), c.clone()]).await.unwrap(), 4);
    let counts = store.counts(None).await.unwrap();
    assert_eq!((counts.pending, counts.bodies), (9, 3));
    for e in [&a, &b, &c] {
        for d in e.deliveries() {
            let record = store.delivery(d.delivery.id()).await.unwrap();
            assert_eq!(record.event, e.id());
            assert_eq!(record.state, DeliveryState::Pending);
        }
    }
    // A large fan-out, one body.
    let big = event(fan_out, 4, &policy);
    assert_eq!(store.enqueue_all(&[big]).await.unwrap(), fan_out);
    let counts = store.counts(Some(WebhookId::new(4))).await.unwrap();
    assert_eq!(counts.pending, fan_out as u64);
    assert_eq!(counts.bodies, 4);
}

/// An event with `n` deliveries to webhook `hook`, paced by `pacing`.
pub(crate) fn paced(n: usize, hook: u64, pacing: posthook::Pacing) -> NewEvent {
    let body = Bytes::from(format!("type=subscribe&n={n}&r={}", random()));
    let mut event = NewEvent::new(EventId::new(random()), EventKind::Subscribe, body);
    for _ in 0..n {
        let id = DeliveryId::new(random());
        let policy = RetryPolicy::default().with_initial_backoff(Duration::from_millis(200));
        event.push_paced(
            Delivery::new(id, Some(WebhookId::new(hook)), policy),
            url(),
            pacing,
        );
    }
    event
}

fn of_hook(claimed: &[Claimed], hook: u64) -> usize {
    claimed
        .iter()
        .filter(|c| c.delivery.webhook_id() == Some(WebhookId::new(hook)))
        .count()
}

fn max_in_flight(n: u32) -> posthook::Pacing {
    posthook::Pacing::DEFAULT.with_max_in_flight(std::num::NonZeroU32::new(n).unwrap())
}

/// A webhook never holds more leases than its in-flight limit, across claims (and so
/// across workers); a finish frees a slot, a lapsed lease stops counting.
pub(crate) async fn in_flight_limit_is_held<S: DeliveryStore>(store: &S, clock: &Clockwork) {
    store
        .enqueue(&paced(40, 1, max_in_flight(3)))
        .await
        .unwrap();
    store
        .enqueue(&paced(5, 2, posthook::Pacing::DEFAULT))
        .await
        .unwrap();
    let lease = clock.long();
    let mut first = store.claim(100, lease).await.unwrap();
    assert_eq!((of_hook(&first, 1), of_hook(&first, 2)), (3, 5));
    assert!(store.claim(100, lease).await.unwrap().is_empty());
    // A finish frees one slot.
    let i = first
        .iter()
        .position(|c| c.delivery.webhook_id() == Some(WebhookId::new(1)))
        .unwrap();
    let mut done = first.remove(i);
    let step = ok(&mut done);
    assert_eq!(
        store
            .finish(&done.claim, &done.delivery, &step)
            .await
            .unwrap(),
        Finished::Done
    );
    let again = store.claim(100, lease).await.unwrap();
    assert_eq!((of_hook(&again, 1), of_hook(&again, 2)), (1, 0));
    // The leases run out: they stop counting, and hook 1 gets 3 again (lapsed or not).
    clock.pass(lease + clock.short()).await;
    let after = claim_eventually(store, clock, lease).await;
    assert_eq!(of_hook(&after, 1), 3, "{after:?}");
    assert!(of_hook(&after, 2) <= 5);
}

/// A claim takes webhooks in turn: a later webhook's deliveries are not stuck behind an
/// earlier one's backlog.
pub(crate) async fn claims_take_webhooks_in_turn<S: DeliveryStore>(store: &S) {
    store
        .enqueue(&paced(300, 1, max_in_flight(1000)))
        .await
        .unwrap();
    store
        .enqueue(&paced(10, 2, max_in_flight(1000)))
        .await
        .unwrap();
    let claimed = store.claim(20, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len(), 20);
    assert!(
        of_hook(&claimed, 2) >= 5,
        "webhook 2 got {} of 20 behind webhook 1's backlog",
        of_hook(&claimed, 2)
    );
    // The rest, webhook 1's mostly, in one claim: its limit leaves room for all of it.
    let rest = store.claim(1000, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len() + rest.len(), 310);
}

/// A claim takes at most `max`, however many webhooks share it (an equal share each,
/// rounded up, must not add up to more), and what a claim left due is taken by the next.
pub(crate) async fn a_claim_takes_at_most_max<S: DeliveryStore>(store: &S) {
    for hook in 1..=10 {
        store
            .enqueue(&paced(10, hook, max_in_flight(1000)))
            .await
            .unwrap();
    }
    let mut taken = 0;
    for max in [32, 7, 1, 15] {
        let claimed = store.claim(max, Duration::from_secs(60)).await.unwrap();
        assert_eq!(claimed.len(), max, "a claim of {max} with 100 due");
        taken += claimed.len();
    }
    let rest = store.claim(1000, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        taken + rest.len(),
        100,
        "everything left due is claimed at once"
    );
}

/// A rate-limited webhook gets at most its rate per second (a burst of the rate, then
/// refilled with time); the deliveries over it wait, none fails.
pub(crate) async fn rate_limit_waits<S: DeliveryStore>(store: &S, clock: &Clockwork) {
    let pacing = max_in_flight(100).with_rate_limit(Some(posthook::RateLimit::per_second(
        std::num::NonZeroU32::new(5).unwrap(),
    )));
    store.enqueue(&paced(30, 1, pacing)).await.unwrap();
    let lease = Duration::from_secs(60);
    let mut total = 0;
    let first = store.claim(100, lease).await.unwrap();
    assert!((1..=5).contains(&first.len()), "{}", first.len());
    total += first.len();
    for mut c in first {
        let step = ok(&mut c);
        store.finish(&c.claim, &c.delivery, &step).await.unwrap();
    }
    // At once: at most the token that refilled meanwhile.
    let now = store.claim(100, lease).await.unwrap();
    assert!(now.len() <= 1, "{}", now.len());
    total += now.len();
    // A second later: about 5 more, never more than 6.
    clock.pass(Duration::from_millis(1100)).await;
    let later = store.claim(100, lease).await.unwrap();
    assert!((1..=6).contains(&later.len()), "{}", later.len());
    total += later.len();
    let counts = store.counts(None).await.unwrap();
    assert!(total <= 12, "{total}");
    assert_eq!(counts.pending + counts.delivered, 30);
    assert_eq!(counts.failed + counts.gave_up, 0);
}

/// An ordered webhook's deliveries go one at a time in publish order; a failing head holds
/// the rest (and the log says which one they wait behind) until it is over.
pub(crate) async fn ordered_goes_one_at_a_time<S: DeliveryStore>(store: &S, clock: &Clockwork) {
    let pacing = posthook::Pacing::DEFAULT.with_ordered(true);
    let events: Vec<NewEvent> = (0..3).map(|_| paced(1, 1, pacing)).collect();
    for e in &events {
        store.enqueue(e).await.unwrap();
        clock.pass(Duration::from_millis(5)).await; // distinct enqueue times
    }
    let ids: Vec<DeliveryId> = events
        .iter()
        .map(|e| e.deliveries()[0].delivery.id())
        .collect();
    let lease = Duration::from_secs(60);
    let mut head = store.claim(10, lease).await.unwrap();
    assert_eq!(head.len(), 1);
    assert_eq!(head[0].delivery.id(), ids[0]);
    assert!(store.claim(10, lease).await.unwrap().is_empty());
    // The head fails and is retried later: the others still wait behind it.
    let mut h = head.pop().unwrap();
    let step = unavailable(&mut h);
    assert!(matches!(step, Step::Retry { .. }));
    store.finish(&h.claim, &h.delivery, &step).await.unwrap();
    assert!(store.claim(10, lease).await.unwrap().is_empty());
    let second = store.delivery(ids[1]).await.unwrap();
    assert_eq!(second.state, DeliveryState::Pending);
    assert_eq!(second.waiting_behind, Some(ids[0]));
    assert_eq!(store.delivery(ids[0]).await.unwrap().waiting_behind, None);
    // Its retry comes, before any of the others.
    let mut retry = claim_eventually(store, clock, lease).await;
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].delivery.id(), ids[0]);
    let mut h = retry.pop().unwrap();
    let step = ok(&mut h);
    store.finish(&h.claim, &h.delivery, &step).await.unwrap();
    // Then the second, then the third.
    for id in &ids[1..] {
        let mut next = store.claim(10, lease).await.unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].delivery.id(), *id);
        assert_eq!(store.delivery(*id).await.unwrap().waiting_behind, None);
        let mut n = next.pop().unwrap();
        let step = ok(&mut n);
        store.finish(&n.claim, &n.delivery, &step).await.unwrap();
    }
    assert_eq!(store.counts(None).await.unwrap().delivered, 3);
}

/// The fairness scenario: a webhook at its limit with 10,000 pending does not delay
/// another's deliveries, claim after claim.
pub(crate) async fn a_backlog_at_its_limit_does_not_delay_another_webhook<S: DeliveryStore>(
    store: &S,
) {
    let policy = RetryPolicy::default();
    store
        .enqueue(&paced(10_000, 1, posthook::Pacing::DEFAULT))
        .await
        .unwrap();
    let lease = Duration::from_secs(60);
    let first = store.claim(100, lease).await.unwrap();
    assert_eq!(first.len(), 16, "webhook 1's default in-flight limit");
    for _ in 0..3 {
        store.enqueue(&event(10, 2, &policy)).await.unwrap();
        let claimed = store.claim(100, lease).await.unwrap();
        assert_eq!(claimed.len(), 10);
        assert!(
            claimed
                .iter()
                .all(|c| c.delivery.webhook_id() == Some(WebhookId::new(2)))
        );
        for mut c in claimed {
            let step = c
                .delivery
                .record(AttemptOutcome::Status(StatusCode::OK), c.age);
            store.finish(&c.claim, &c.delivery, &step).await.unwrap();
        }
    }
    assert_eq!(store.counts(None).await.unwrap().pending, 10_000);
}

/// Concurrent claims (as from many workers) never lease a webhook more than its limit:
/// round after round, eight claims race on a fresh webhook limited to 4.
pub(crate) async fn racing_claims_hold_the_limit<S: DeliveryStore + Clone + 'static>(store: &S) {
    for round in 0..15u64 {
        let hook = 100 + round;
        store
            .enqueue(&paced(100, hook, max_in_flight(4)))
            .await
            .unwrap();
        let claims: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.claim(10, Duration::from_secs(60)).await })
            })
            .collect();
        let mut leased = 0;
        for claim in claims {
            leased += of_hook(&claim.await.unwrap().unwrap(), hook);
        }
        assert!(
            leased <= 4,
            "round {round}: {leased} leases of a webhook limited to 4"
        );
        // Whatever the race left, the next claim fills the limit.
        let more = store.claim(10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(leased + of_hook(&more, hook), 4, "round {round}");
    }
}

/// One delivery of each webhook's event claimed and answered `503` (a retry).
fn retrying(claimed: &mut Claimed) -> Step {
    unavailable(claimed)
}

/// Cancel ends every pending delivery of one webhook (leased or not), and only its; nothing
/// cancelled is claimed again; an attempt in flight at the cancel is recorded by its finish
/// (the delivery stays cancelled after a retryable answer, takes the answer's outcome after
/// a final one); the log keeps them all; later deliveries are not affected.
pub(crate) async fn cancel_ends_pending_deliveries<S: DeliveryStore>(store: &S) {
    let policy = RetryPolicy::default();
    let a = event(4, 21, &policy);
    let b = event(2, 22, &policy);
    store.enqueue(&a).await.unwrap();
    store.enqueue(&b).await.unwrap();
    // Two of webhook 21's deliveries leased (in flight), two not.
    let mut leased: Vec<Claimed> = Vec::new();
    for _ in 0..20 {
        let claimed = store.claim(10, Duration::from_secs(60)).await.unwrap();
        let mut mine: Vec<Claimed> = claimed
            .into_iter()
            .filter(|c| c.delivery.webhook_id() == Some(WebhookId::new(21)))
            .collect();
        leased.append(&mut mine);
        if leased.len() >= 2 {
            break;
        }
    }
    assert!(leased.len() >= 2, "claimed {}", leased.len());
    let reason = CancelReason::SwitchedOff(Deactivation::Manual);
    assert_eq!(store.cancel(WebhookId::new(21), reason).await.unwrap(), 4);
    assert_eq!(
        store.cancel(WebhookId::new(21), reason).await.unwrap(),
        0,
        "nothing left to cancel"
    );
    let counts = store.counts(Some(WebhookId::new(21))).await.unwrap();
    assert_eq!((counts.pending, counts.cancelled), (0, 4), "{counts:?}");
    let other = store.counts(Some(WebhookId::new(22))).await.unwrap();
    assert_eq!(
        other.pending, 2,
        "another webhook's deliveries are untouched"
    );

    // A cancelled delivery is never claimed again.
    let later = store.claim(100, Duration::from_secs(60)).await.unwrap();
    assert!(
        later
            .iter()
            .all(|c| c.delivery.webhook_id() != Some(WebhookId::new(21))),
        "a cancelled delivery was claimed"
    );

    // The log: every one cancelled with the reason; the in-flight ones still leased.
    for record in store
        .recent(WebhookId::new(21), Page::first(10))
        .await
        .unwrap()
    {
        assert_eq!(record.state, DeliveryState::Cancelled);
        assert_eq!(
            record.delivery.outcome(),
            Some(&FinalOutcome::Cancelled { reason })
        );
        assert!(record.due_at.is_none());
        assert!(record.finished_at.is_some());
        let in_flight = leased.iter().any(|c| c.claim.id == record.delivery.id());
        assert_eq!(record.leased, in_flight, "{:?}", record.delivery.id());
    }

    // The attempts in flight finish: a 503 is recorded and the delivery stays cancelled; a
    // 200 is recorded and delivers it.
    let mut first = leased.remove(0);
    let step = retrying(&mut first);
    assert!(matches!(step, Step::Retry { .. }));
    assert_eq!(
        store
            .finish(&first.claim, &first.delivery, &step)
            .await
            .unwrap(),
        Finished::Cancelled
    );
    let record = store.delivery(first.claim.id).await.unwrap();
    assert_eq!(record.state, DeliveryState::Cancelled);
    assert_eq!(record.delivery.attempts().len(), 1);
    assert_eq!(
        record.delivery.attempts()[0].outcome,
        AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE)
    );
    assert!(record.delivery.outcome().unwrap().is_cancelled());
    assert!(!record.leased);
    // The same finish again: stale.
    assert_eq!(
        store
            .finish(&first.claim, &first.delivery, &step)
            .await
            .unwrap(),
        Finished::Stale
    );

    let mut second = leased.remove(0);
    let step = ok(&mut second);
    assert_eq!(
        store
            .finish(&second.claim, &second.delivery, &step)
            .await
            .unwrap(),
        Finished::Done
    );
    let record = store.delivery(second.claim.id).await.unwrap();
    assert_eq!(record.state, DeliveryState::Delivered);
    assert_eq!(record.delivery.attempts().len(), 1);

    // A made-up token on a cancelled delivery changes nothing.
    let other_id = store
        .recent(WebhookId::new(21), Page::first(10))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.state == DeliveryState::Cancelled && r.delivery.attempts().is_empty())
        .unwrap();
    let made_up = Claim::new(other_id.delivery.id(), ClaimToken::new(1));
    let mut d = other_id.delivery.clone();
    // (Reopened by hand: the finish must still refuse it.)
    let step = d.record(AttemptOutcome::Status(StatusCode::OK), Duration::ZERO);
    assert_eq!(
        store.finish(&made_up, &d, &step).await.unwrap(),
        Finished::Stale
    );

    // Deliveries enqueued after the cancel go out as usual.
    let c = event(1, 21, &policy);
    store.enqueue(&c).await.unwrap();
    let claimed = store.claim(100, Duration::from_secs(60)).await.unwrap();
    assert!(
        claimed
            .iter()
            .any(|x| x.claim.id == c.deliveries()[0].delivery.id())
    );
    let counts = store.counts(Some(WebhookId::new(21))).await.unwrap();
    assert_eq!(
        (counts.pending, counts.cancelled, counts.delivered),
        (1, 3, 1)
    );
}

/// Resend: a new pending delivery of the same event to the same place, linked to the
/// first, carrying the first's id to receivers, claimed with the same body; unknown ids are
/// errors.
pub(crate) async fn resend_sends_again<S: DeliveryStore>(store: &S) {
    let e = event(1, 31, &RetryPolicy::default().with_max_attempts(3));
    let first = e.deliveries()[0].delivery.id();
    store.enqueue(&e).await.unwrap();
    let mut claimed = store.claim(10, Duration::from_secs(60)).await.unwrap();
    let mut job = claimed.pop().unwrap();
    let step = ok(&mut job);
    store
        .finish(&job.claim, &job.delivery, &step)
        .await
        .unwrap();

    let again = store.resend(first).await.unwrap();
    assert_ne!(again, first);
    let record = store.delivery(again).await.unwrap();
    assert_eq!(record.state, DeliveryState::Pending);
    assert_eq!(record.resent_from, Some(first));
    assert_eq!(record.delivery.resent_from(), Some(first));
    assert_eq!(
        record.delivery.message_id(),
        first,
        "receivers see the first id"
    );
    assert_eq!(record.delivery.webhook_id(), Some(WebhookId::new(31)));
    assert_eq!(record.delivery.policy().max_attempts(), 3);
    assert!(record.delivery.attempts().is_empty());
    assert_eq!((record.event, record.kind), (e.id(), e.kind()));
    assert_eq!(record.url, url());
    let original = store.delivery(first).await.unwrap();
    assert_eq!(
        original.state,
        DeliveryState::Delivered,
        "the first is unchanged"
    );
    assert_eq!(original.resent_from, None);

    let claimed = store.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].claim.id, again);
    assert_eq!(&claimed[0].body, e.body());
    // A resend of the resend keeps the first id for receivers.
    let third = store.resend(again).await.unwrap();
    let record = store.delivery(third).await.unwrap();
    assert_eq!(record.resent_from, Some(again));
    assert_eq!(record.delivery.message_id(), first);
    let counts = store.counts(Some(WebhookId::new(31))).await.unwrap();
    assert_eq!((counts.pending, counts.delivered, counts.bodies), (2, 1, 1));

    let unknown = DeliveryId::new(random());
    assert!(matches!(
        store.resend(unknown).await,
        Err(StoreError::UnknownDelivery(id)) if id == unknown
    ));
}

/// Recover resends the webhook's failed, given-up and cancelled deliveries that ended at or
/// after `since` — not the delivered or gone ones, not the older ones, not another
/// webhook's — and resends nothing twice.
pub(crate) async fn recover_resends_what_failed_since<S: DeliveryStore>(
    store: &S,
    clock: &Clockwork,
) {
    let hook = WebhookId::new(41);
    let end = |claimed: &mut Claimed, status: u16| {
        claimed.delivery.record(
            AttemptOutcome::Status(StatusCode::from_u16(status).unwrap()),
            claimed.age,
        )
    };
    // Before `since`: one failed (400).
    let old = event(1, 41, &RetryPolicy::never());
    store.enqueue(&old).await.unwrap();
    let mut c = store.claim(10, Duration::from_secs(60)).await.unwrap();
    let mut job = c.pop().unwrap();
    let step = end(&mut job, 400);
    store
        .finish(&job.claim, &job.delivery, &step)
        .await
        .unwrap();
    clock.pass(clock.short()).await;
    let since = clock.now();
    clock.pass(clock.short()).await;

    // After: failed (400), gave up (503 twice), delivered, gone, and cancelled; and another
    // webhook's failure.
    let policy = RetryPolicy::default()
        .with_max_attempts(2)
        .with_initial_backoff(Duration::ZERO)
        .with_jitter(0);
    let e = event(4, 41, &policy);
    let other = event(1, 42, &RetryPolicy::never());
    store.enqueue(&e).await.unwrap();
    store.enqueue(&other).await.unwrap();
    let ids: Vec<DeliveryId> = e.deliveries().iter().map(|d| d.delivery.id()).collect();
    let statuses: HashMap<DeliveryId, u16> =
        ids.iter().copied().zip([400, 503, 200, 410]).collect();
    let mut open = ids.len() + 1;
    for _ in 0..100 {
        if open == 0 {
            break;
        }
        for mut job in store.claim(10, Duration::from_secs(60)).await.unwrap() {
            let status = statuses.get(&job.claim.id).copied().unwrap_or(400);
            let step = end(&mut job, status);
            if matches!(step, Step::Done(_)) {
                open -= 1;
            }
            store
                .finish(&job.claim, &job.delivery, &step)
                .await
                .unwrap();
        }
        clock.pass(Duration::from_millis(5)).await;
    }
    assert_eq!(open, 0, "every delivery ended");
    let cancelled = event(1, 41, &RetryPolicy::default());
    store.enqueue(&cancelled).await.unwrap();
    store
        .cancel(hook, CancelReason::SwitchedOff(Deactivation::Manual))
        .await
        .unwrap();
    let counts = store.counts(Some(hook)).await.unwrap();
    assert_eq!(
        (
            counts.failed,
            counts.gave_up,
            counts.delivered,
            counts.gone,
            counts.cancelled
        ),
        (2, 1, 1, 1, 1),
        "{counts:?}"
    );

    let recovered = store.recover(hook, since).await.unwrap();
    assert_eq!(recovered.len(), 3, "failed, gave up, cancelled since then");
    let mut from = Vec::new();
    for id in &recovered {
        let record = store.delivery(*id).await.unwrap();
        assert_eq!(record.state, DeliveryState::Pending);
        assert_eq!(record.delivery.webhook_id(), Some(hook));
        from.push(record.resent_from.unwrap());
    }
    from.sort();
    let mut want = vec![ids[0], ids[1], cancelled.deliveries()[0].delivery.id()];
    want.sort();
    assert_eq!(from, want);
    assert!(
        store.recover(hook, since).await.unwrap().is_empty(),
        "recovering again resends nothing twice"
    );
    // From the beginning: only the old one is left to resend.
    let earliest = store.recover(hook, std::time::UNIX_EPOCH).await.unwrap();
    assert_eq!(earliest.len(), 1);
    assert_eq!(
        store.delivery(earliest[0]).await.unwrap().resent_from,
        Some(old.deliveries()[0].delivery.id())
    );
    assert_eq!(
        store.counts(Some(WebhookId::new(42))).await.unwrap().failed,
        1
    );
    assert!(
        store
            .recover(WebhookId::new(999), since)
            .await
            .unwrap()
            .is_empty()
    );
}

// ---- The edges: one bound on waits and leases, any error text kept. ----

/// `due_at` of a pending delivery is `MAX_WAIT` after the moment the wait began: at least
/// `MAX_WAIT` after its enqueue, and not much more (the real clocks tick meanwhile).
fn assert_due_at_the_bound(record: &posthook::DeliveryRecord, clock: &Clockwork) {
    let due = record.due_at.expect("pending: due at some time");
    let ahead = due
        .duration_since(record.created_at)
        .expect("due after it was made");
    match clock {
        // Nothing moved the clock since the enqueue: exactly the bound.
        Clockwork::Manual(_) => assert_eq!(ahead, posthook::MAX_WAIT),
        Clockwork::Real => assert!(
            ahead >= posthook::MAX_WAIT && ahead <= posthook::MAX_WAIT + Duration::from_secs(60),
            "due {ahead:?} after its enqueue"
        ),
    }
}

/// The reads a log page makes, all working on a delivery that waits for the bound.
async fn reads_work<S: DeliveryStore>(store: &S, id: DeliveryId, hook: u64, clock: &Clockwork) {
    let record = store.delivery(id).await.expect("delivery()");
    assert_eq!(record.state, DeliveryState::Pending);
    assert_due_at_the_bound(&record, clock);
    let recent = store
        .recent(WebhookId::new(hook), Page::first(10))
        .await
        .expect("recent()");
    let listed = recent
        .iter()
        .find(|r| r.delivery.id() == id)
        .expect("listed");
    assert_eq!(listed.due_at, record.due_at);
    let counts = store
        .counts(Some(WebhookId::new(hook)))
        .await
        .expect("counts()");
    assert_eq!(counts.pending, 1);
    // Not due for a year: no claim takes it.
    assert!(
        store
            .claim(10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A retry wait far beyond `MAX_WAIT` — from a policy whose backoff has no cap, and a
/// hand-made `Step::Retry { after: Duration::MAX }` — is clamped to it: the finish
/// succeeds, the reads work, `due_at` is the bound.
pub(crate) async fn a_huge_retry_wait_is_bounded<S: DeliveryStore>(store: &S, clock: &Clockwork) {
    let unbounded = RetryPolicy::default()
        .with_initial_backoff(Duration::MAX)
        .with_max_backoff(Duration::MAX);
    for (hook, by_hand) in [(41, false), (42, true)] {
        store.enqueue(&event(1, hook, &unbounded)).await.unwrap();
        let mut claimed = store.claim(10, Duration::from_secs(600)).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let c = &mut claimed[0];
        let mut step = unavailable(c);
        assert_eq!(
            step,
            Step::Retry {
                after: posthook::MAX_WAIT
            },
            "the delivery clamps its own wait"
        );
        if by_hand {
            step = Step::Retry {
                after: Duration::MAX,
            };
        }
        assert_eq!(
            store.finish(&c.claim, &c.delivery, &step).await.unwrap(),
            Finished::Retrying
        );
        reads_work(store, c.claim.id, hook, clock).await;
    }
    // The whole batch path clamps the same way.
    store.enqueue(&event(1, 43, &unbounded)).await.unwrap();
    let mut claimed = store.claim(10, Duration::from_secs(600)).await.unwrap();
    let c = &mut claimed[0];
    unavailable(c);
    let step = Step::Retry {
        after: Duration::MAX,
    };
    let results = store
        .finish_all(&[Finish::new(c.claim, c.delivery.clone(), step)])
        .await;
    assert_eq!(results[0].as_ref().unwrap(), &Finished::Retrying);
    reads_work(store, c.claim.id, 43, clock).await;
}

/// A lease of `Duration::MAX` is a lease of `MAX_WAIT`: the claim succeeds, the reads work
/// (leased, due at the bound), and the holder still finishes.
pub(crate) async fn a_lease_of_duration_max_is_bounded<S: DeliveryStore>(
    store: &S,
    clock: &Clockwork,
) {
    store
        .enqueue(&event(1, 44, &RetryPolicy::default()))
        .await
        .unwrap();
    let mut claimed = store.claim(10, Duration::MAX).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let c = &mut claimed[0];
    let record = store.delivery(c.claim.id).await.unwrap();
    assert!(record.leased);
    reads_work(store, c.claim.id, 44, clock).await;
    let step = ok(c);
    assert_eq!(
        store.finish(&c.claim, &c.delivery, &step).await.unwrap(),
        Finished::Done
    );
    let record = store.delivery(c.claim.id).await.unwrap();
    assert_eq!(record.state, DeliveryState::Delivered);
    assert!(record.due_at.is_none() && !record.leased);
}

/// A receiver's `Retry-After: 99999999999999999999`, under a policy without a backoff cap:
/// the wait made is `MAX_WAIT`, the attempt records what was asked, and the store keeps
/// both.
pub(crate) async fn a_retry_after_beyond_the_bound_is_clamped<S: DeliveryStore>(
    store: &S,
    clock: &Clockwork,
) {
    let policy = RetryPolicy::default().with_max_backoff(Duration::MAX);
    store.enqueue(&event(1, 45, &policy)).await.unwrap();
    let mut claimed = store.claim(10, Duration::from_secs(600)).await.unwrap();
    let c = &mut claimed[0];
    let header = http::HeaderValue::from_static("99999999999999999999");
    let asked = posthook::parse_retry_after(&header, std::time::SystemTime::now());
    assert_eq!(asked, Some(Duration::from_secs(u64::MAX)));
    let meta = posthook::AttemptMeta::new().with_retry_after(asked);
    let step = c.delivery.record_with(
        AttemptOutcome::Status(StatusCode::TOO_MANY_REQUESTS),
        c.age,
        meta,
    );
    assert_eq!(
        step,
        Step::Retry {
            after: posthook::MAX_WAIT
        }
    );
    assert_eq!(
        store.finish(&c.claim, &c.delivery, &step).await.unwrap(),
        Finished::Retrying
    );
    reads_work(store, c.claim.id, 45, clock).await;
    let record = store.delivery(c.claim.id).await.unwrap();
    assert_eq!(record.delivery.attempts()[0].retry_after, asked);
}

/// How a store keeps NUL (`U+0000`) in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nul {
    /// As it is (memory, SQLite).
    Kept,
    /// As `U+FFFD` (PostgreSQL: `jsonb` cannot hold NUL).
    Replaced,
}

impl Nul {
    fn stored(self, text: &str) -> String {
        match self {
            Nul::Kept => text.to_owned(),
            Nul::Replaced => text.replace('\0', "\u{FFFD}"),
        }
    }
}

/// Error texts no store may lose: NUL (alone, at the ends, next to a backslash, and a
/// literal `\u0000` that is not one), right-to-left text with bidi controls, other control
/// characters, astral characters, and 100 KB of text.
fn odd_texts() -> Vec<String> {
    vec![
        "connection reset\0 by peer".to_owned(),
        "\0".to_owned(),
        "\0\0leading and trailing\0".to_owned(),
        "a backslash before a NUL: \\\0, and a literal \\u0000 that is no NUL".to_owned(),
        "שגיאה: החיבור נדחה \u{202E}evil.exe\u{202C} — خطأ في الاتصال".to_owned(),
        "controls \u{1}\u{7}\u{8}\t\r\n\u{1b}[31m\u{7f} and quotes \" ' `".to_owned(),
        "astral 🦀𝕏 and a BOM \u{feff} and U+FFFD \u{fffd} itself".to_owned(),
        "x".repeat(100 * 1024 - 1) + "\0",
    ]
}

/// Any error text survives a finish: in a retried attempt's error, a `Failed` reason, a
/// `GaveUp`'s last outcome, and in a delivery enqueued with such an attempt already made.
/// Every finish succeeds; the text reads back exactly (`Nul::Kept`) or with NUL as
/// `U+FFFD` (`Nul::Replaced`), from `delivery()`, `recent()` and the next claim.
pub(crate) async fn any_error_text_is_kept<S: DeliveryStore>(store: &S, nul: Nul) {
    let texts = odd_texts();
    let hook = 46;
    let policy = RetryPolicy::default()
        .with_max_attempts(2)
        .with_initial_backoff(Duration::ZERO);
    // One delivery per text, and one enqueued with an attempt of every text already made.
    let mut e = event(texts.len(), hook, &policy);
    let mut made = Delivery::new(
        DeliveryId::new(random()),
        Some(WebhookId::new(hook)),
        RetryPolicy::default().with_max_attempts(100),
    );
    for text in &texts {
        let step = made.record(TransportError::io(text.clone()).into(), Duration::ZERO);
        assert!(matches!(step, Step::Retry { .. }));
    }
    let made_id = made.id();
    e.push(made, url());
    assert_eq!(store.enqueue(&e).await.unwrap(), texts.len() + 1);
    let stored = store
        .delivery(made_id)
        .await
        .expect("enqueued with odd text");
    let messages: Vec<String> = stored
        .delivery
        .attempts()
        .iter()
        .map(|a| a.outcome.error().unwrap().message().to_owned())
        .collect();
    let want: Vec<String> = texts.iter().map(|t| nul.stored(t)).collect();
    assert_eq!(messages, want);

    // First attempts: a retryable error with the text.
    let by_id: HashMap<DeliveryId, String> = e.deliveries()[..texts.len()]
        .iter()
        .zip(&texts)
        .map(|(d, t)| (d.delivery.id(), t.clone()))
        .collect();
    let claimed = store.claim(100, Duration::from_secs(600)).await.unwrap();
    assert_eq!(claimed.len(), texts.len() + 1);
    for mut c in claimed {
        let Some(text) = by_id.get(&c.claim.id) else {
            continue; // the one enqueued with its attempts: checked above
        };
        let step = c
            .delivery
            .record(TransportError::connect(text.clone()).into(), c.age);
        assert!(matches!(step, Step::Retry { .. }));
        assert_eq!(
            store
                .finish(&c.claim, &c.delivery, &step)
                .await
                .expect("finish"),
            Finished::Retrying
        );
    }
    // Second attempts, in one batch: half fail for good with the text as their reason,
    // half give up on another error with it.
    let mut claimed = claim_eventually_some(store, &by_id).await;
    claimed.sort_by_key(|c| c.claim.id);
    let mut batch = Vec::new();
    for (i, c) in claimed.iter_mut().enumerate() {
        let text = &by_id[&c.claim.id];
        // What the first attempt stored reads back in the claim too.
        let first = c.delivery.attempts()[0].outcome.error().unwrap().message();
        assert_eq!(first, nul.stored(text));
        let step = if i % 2 == 0 {
            let outcome = TransportError::other(text.clone()).into();
            Step::Done(c.delivery.record_failed(outcome, c.age, text.clone()))
        } else {
            c.delivery
                .record(TransportError::timeout(text.clone()).into(), c.age)
        };
        assert!(matches!(step, Step::Done(_)));
        batch.push(Finish::new(c.claim, c.delivery.clone(), step));
    }
    for result in store.finish_all(&batch).await {
        assert_eq!(result.expect("finish_all"), Finished::Done);
    }
    let log = store
        .recent(WebhookId::new(hook), Page::first(100))
        .await
        .unwrap();
    assert_eq!(log.len(), texts.len() + 1);
    for record in log.iter().filter(|r| by_id.contains_key(&r.delivery.id())) {
        let text = nul.stored(&by_id[&record.delivery.id()]);
        let messages: Vec<&str> = record
            .delivery
            .attempts()
            .iter()
            .map(|a| a.outcome.error().unwrap().message())
            .collect();
        assert_eq!(messages, [text.as_str(), text.as_str()]);
        match record.delivery.outcome().unwrap() {
            FinalOutcome::Failed { reason } => {
                assert_eq!(record.state, DeliveryState::Failed);
                assert_eq!(reason, &text);
            }
            FinalOutcome::GaveUp { last } => {
                assert_eq!(record.state, DeliveryState::GaveUp);
                assert_eq!(last.error().unwrap().message(), text);
            }
            other => panic!("{other:?}"),
        }
        // The same through delivery().
        let one = store.delivery(record.delivery.id()).await.unwrap();
        assert_eq!(&one.delivery, &record.delivery);
    }
    let counts = store.counts(Some(WebhookId::new(hook))).await.unwrap();
    assert_eq!(
        (counts.failed, counts.gave_up, counts.pending),
        (4, 4, 1),
        "{counts:?}"
    );
}

/// Claims until every delivery of `wanted` is back (their retries are due at once).
async fn claim_eventually_some<S: DeliveryStore>(
    store: &S,
    wanted: &HashMap<DeliveryId, String>,
) -> Vec<Claimed> {
    let mut got = Vec::new();
    for _ in 0..500 {
        for c in store.claim(100, Duration::from_secs(600)).await.unwrap() {
            if wanted.contains_key(&c.claim.id) {
                got.push(c);
            }
        }
        if got.len() == wanted.len() {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} of {} came back", got.len(), wanted.len());
}

/// Deliveries published for an account are its log: `recent_for_account` (newest first,
/// paged) and `counts_for_account` read only those; a resend stays the account's; a
/// delivery published for no account is in no account's log.
pub(crate) async fn deliveries_per_account<S: DeliveryStore>(store: &S, clock: &Clockwork) {
    let (acme, globex) = (posthook::AccountId::new(11), posthook::AccountId::new(12));
    let mut mine = Vec::new();
    for n in 0..5 {
        let mut e = event(2, 60 + n % 2, &RetryPolicy::default());
        e.set_account(acme);
        mine.extend(e.deliveries().iter().map(|d| d.delivery.id()));
        store.enqueue(&e).await.unwrap();
        let mut theirs = event(1, 70, &RetryPolicy::default());
        theirs.set_account(globex);
        store.enqueue(&theirs).await.unwrap();
        store
            .enqueue(&event(1, 80, &RetryPolicy::default()))
            .await
            .unwrap();
        clock.pass(Duration::from_millis(5)).await;
    }
    mine.reverse();
    let first = store
        .recent_for_account(acme, Page::first(6))
        .await
        .unwrap();
    let second = store
        .recent_for_account(acme, Page::first(6).next())
        .await
        .unwrap();
    let got: Vec<DeliveryId> = first
        .iter()
        .chain(&second)
        .map(|r| r.delivery.id())
        .collect();
    assert_eq!(got.len(), 10);
    // Newest first by event; within one event the order of its deliveries is the store's.
    let mut sorted_got = got.clone();
    sorted_got.sort();
    let mut sorted_mine = mine.clone();
    sorted_mine.sort();
    assert_eq!(sorted_got, sorted_mine);
    assert!(first.iter().chain(&second).all(|r| r.account == Some(acme)));
    assert!(
        first
            .iter()
            .chain(&second)
            .collect::<Vec<_>>()
            .windows(2)
            .all(|w| w[0].created_at >= w[1].created_at)
    );
    let counts = store.counts_for_account(acme).await.unwrap();
    assert_eq!((counts.pending, counts.total()), (10, 10));
    assert_eq!(store.counts_for_account(globex).await.unwrap().pending, 5);
    assert_eq!(
        store
            .counts_for_account(posthook::AccountId::new(99))
            .await
            .unwrap()
            .total(),
        0
    );
    let none = store
        .recent(WebhookId::new(80), Page::first(10))
        .await
        .unwrap();
    assert!(none.iter().all(|r| r.account.is_none()));
    // A resend stays the account's.
    let again = store.resend(mine[0]).await.unwrap();
    assert_eq!(store.delivery(again).await.unwrap().account, Some(acme));
    assert_eq!(store.counts_for_account(acme).await.unwrap().pending, 11);
}

/// An attempt in flight when its delivery is cancelled still holds its slot: a webhook
/// limited to one attempt at a time gets no other until that attempt finishes, and recover
/// leaves it out meanwhile (the attempt may yet deliver it). Recover resends in enqueue
/// order, whatever order the deliveries ended in.
pub(crate) async fn a_cancelled_attempt_in_flight_holds_its_slot<S: DeliveryStore>(
    store: &S,
    clock: &Clockwork,
) {
    let one = posthook::Pacing::DEFAULT.with_max_in_flight(std::num::NonZeroU32::MIN);
    let hook = WebhookId::new(91);
    let first = paced(1, 91, one);
    store.enqueue(&first).await.unwrap();
    let mut claimed = store.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let mut in_flight = claimed.pop().unwrap();
    let since = clock.now() - Duration::from_secs(1);
    store
        .cancel(hook, CancelReason::SwitchedOff(Deactivation::Manual))
        .await
        .unwrap();
    // Switched on again: a new delivery, and a recover, while the attempt is in flight.
    let second = paced(1, 91, one);
    store.enqueue(&second).await.unwrap();
    assert!(
        store.recover(hook, since).await.unwrap().is_empty(),
        "the delivery in flight is not resent"
    );
    assert!(
        store
            .claim(10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty(),
        "the attempt in flight holds the webhook's one slot"
    );
    let step = unavailable(&mut in_flight);
    assert_eq!(
        store
            .finish(&in_flight.claim, &in_flight.delivery, &step)
            .await
            .unwrap(),
        Finished::Cancelled
    );
    let next = claim_eventually(store, clock, Duration::from_secs(60)).await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].claim.id, second.deliveries()[0].delivery.id());

    // Recover's order: D1 enqueued before D2, D2 ends first; the resends go D1, D2.
    let hook = WebhookId::new(92);
    let d1 = event(1, 92, &RetryPolicy::never());
    store.enqueue(&d1).await.unwrap();
    clock.pass(clock.short()).await;
    let d2 = event(1, 92, &RetryPolicy::never());
    store.enqueue(&d2).await.unwrap();
    let since = clock.now() - Duration::from_secs(1);
    let ids = [
        d1.deliveries()[0].delivery.id(),
        d2.deliveries()[0].delivery.id(),
    ];
    let mut jobs: Vec<Claimed> = Vec::new();
    for _ in 0..100 {
        jobs.extend(
            store
                .claim(10, Duration::from_secs(60))
                .await
                .unwrap()
                .into_iter()
                .filter(|c| ids.contains(&c.claim.id)),
        );
        if jobs.len() == 2 {
            break;
        }
        clock.pass(Duration::from_millis(5)).await;
    }
    jobs.sort_by_key(|j| ids.iter().position(|id| *id == j.claim.id));
    for mut job in jobs.into_iter().rev() {
        let step = job
            .delivery
            .record(AttemptOutcome::Status(StatusCode::BAD_REQUEST), job.age);
        store
            .finish(&job.claim, &job.delivery, &step)
            .await
            .unwrap();
        clock.pass(clock.short()).await;
    }
    let resent = store.recover(hook, since).await.unwrap();
    let from: Vec<Option<DeliveryId>> = {
        let mut from = Vec::new();
        for id in &resent {
            from.push(store.delivery(*id).await.unwrap().resent_from);
        }
        from
    };
    assert_eq!(from, vec![Some(ids[0]), Some(ids[1])], "enqueue order");
}

/// An event of account `account` with `n` deliveries to webhook `hook`, paced by `pacing`.
pub(crate) fn for_account(n: usize, hook: u64, account: u64, pacing: posthook::Pacing) -> NewEvent {
    let mut event = paced(n, hook, pacing);
    event.set_account(posthook::AccountId::new(account));
    event
}

/// With a per-account in-flight limit of `limit` (the store's setting): an account with a
/// big backlog over three webhooks never has more than `limit` deliveries leased at once
/// across two concurrent claimers; another account's due deliveries are claimed while the
/// first is at its limit; a finish frees one slot, and the next claim takes exactly one more.
pub(crate) async fn account_in_flight_limit_is_held<S: DeliveryStore + Clone + 'static>(
    store: &S,
    limit: usize,
) {
    let lease = Duration::from_secs(600);
    let (busy, calm) = (501u64, 502u64);
    let busy_hooks = [5011u64, 5012, 5013];
    for hook in busy_hooks {
        store
            .enqueue(&for_account(40, hook, busy, posthook::Pacing::DEFAULT))
            .await
            .unwrap();
    }
    let is_busy = |c: &Claimed| {
        c.delivery
            .webhook_id()
            .is_some_and(|h| busy_hooks.contains(&h.get()))
    };

    // Two claimers at once, a few claims each.
    let claimers: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut all = Vec::new();
                for _ in 0..4 {
                    all.extend(store.claim(8, lease).await.unwrap());
                    tokio::task::yield_now().await;
                }
                all
            })
        })
        .collect();
    let mut held: Vec<Claimed> = Vec::new();
    for claimer in claimers {
        held.extend(claimer.await.unwrap());
    }
    assert!(held.iter().all(&is_busy), "only the busy account has work");
    assert!(
        held.len() <= limit,
        "{} leases of an account limited to {limit}",
        held.len()
    );
    // Whatever the race left, the next claims fill the limit, and never go past it.
    for _ in 0..3 {
        held.extend(store.claim(100, lease).await.unwrap());
    }
    assert_eq!(held.len(), limit, "the account is at its limit");

    // Another account's delivery is claimed while the first is at its limit.
    let other = for_account(2, 5021, calm, posthook::Pacing::DEFAULT);
    store.enqueue(&other).await.unwrap();
    let mut next = store.claim(100, lease).await.unwrap();
    assert_eq!(next.len(), 2, "the calm account's deliveries go out");
    assert!(next.iter().all(|c| !is_busy(c)));
    for c in &mut next {
        let step = ok(c);
        store.finish(&c.claim, &c.delivery, &step).await.unwrap();
    }

    // A finish frees one slot: the next claim takes exactly one more of the busy account.
    let mut done = held.pop().unwrap();
    let step = ok(&mut done);
    assert_eq!(
        store
            .finish(&done.claim, &done.delivery, &step)
            .await
            .unwrap(),
        Finished::Done
    );
    let mut more = Vec::new();
    for _ in 0..3 {
        more.extend(store.claim(100, lease).await.unwrap());
    }
    assert_eq!(more.len(), 1, "one slot was freed");
    assert!(is_busy(&more[0]));
}

/// A backlog stored before a schema migration: 3 webhooks × 10 deliveries of account 601,
/// one webhook × 2 of account 602.
pub(crate) async fn backlog_of_two_accounts<S: DeliveryStore>(store: &S) {
    for hook in [6011u64, 6012, 6013] {
        store
            .enqueue(&for_account(10, hook, 601, posthook::Pacing::DEFAULT))
            .await
            .unwrap();
    }
    store
        .enqueue(&for_account(2, 6021, 602, posthook::Pacing::DEFAULT))
        .await
        .unwrap();
}

/// After the migration, on [`backlog_of_two_accounts`]: the claims lease `limit` of account
/// 601 (its lanes learned their account from the stored deliveries) and both of 602, and
/// nothing more until a finish.
pub(crate) async fn the_limit_holds_on_an_old_backlog<S: DeliveryStore>(store: &S, limit: usize) {
    let lease = Duration::from_secs(600);
    let mut claimed = Vec::new();
    for _ in 0..3 {
        claimed.extend(store.claim(100, lease).await.unwrap());
    }
    let calm = claimed
        .iter()
        .filter(|c| c.delivery.webhook_id().map(|h| h.get()) == Some(6021))
        .count();
    assert_eq!(calm, 2, "the other account's deliveries are claimed");
    assert_eq!(
        claimed.len() - calm,
        limit,
        "the busy account's lanes know their account"
    );
}
