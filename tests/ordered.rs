//! Ordered delivery under failures: a property test over fault scripts on the memory
//! store with a manual clock. Whatever each attempt gives (delivered, retried, failed for
//! good, or a worker that dies mid-attempt so its lease lapses), an ordered webhook never
//! has two attempts in flight, every claim is of its oldest pending delivery, and the
//! deliveries end in publish order.

use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use posthook::{
    AttemptOutcome, Delivery, DeliveryId, DeliveryState, DeliveryStore, EventId, EventKind,
    ManualClock, MemoryStore, NewEvent, Pacing, RetryPolicy, WebhookId, WebhookUrl,
};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Fault {
    Ok,
    Unavailable,
    BadRequest,
    Lapse,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        3 => Just(Fault::Ok),
        3 => Just(Fault::Unavailable),
        1 => Just(Fault::BadRequest),
        1 => Just(Fault::Lapse),
    ]
}

fn run(events: usize, other: usize, script: &[Fault], steps: &[u64]) -> Result<(), TestCaseError> {
    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(clock.clone());
    let url = WebhookUrl::parse("https://receiver.example.com/hook").unwrap();
    let ordered = Pacing::DEFAULT
        .with_ordered(true)
        .with_max_in_flight(NonZeroU32::new(8).unwrap()); // ordered wins: 1
    let policy = RetryPolicy::default()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_secs(1))
        .with_jitter(0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut published = Vec::new();
        for n in 0..events {
            let mut event = NewEvent::new(
                EventId::random().unwrap(),
                EventKind::Subscribe,
                Bytes::from(format!("n={n}")),
            );
            let id = DeliveryId::new(EventId::random().unwrap().get());
            event.push_paced(
                Delivery::new(id, Some(WebhookId::new(1)), policy.clone()),
                url.clone(),
                ordered,
            );
            // Another webhook's deliveries in between, unordered: they never hold the lane.
            for _ in 0..other {
                event.push(
                    Delivery::new(
                        DeliveryId::new(EventId::random().unwrap().get()),
                        Some(WebhookId::new(2)),
                        policy.clone(),
                    ),
                    url.clone(),
                );
            }
            store.enqueue(&event).await.unwrap();
            published.push(id);
            clock.advance(Duration::from_millis(1));
        }
        let lease = Duration::from_secs(30);
        let mut ended: Vec<DeliveryId> = Vec::new();
        let mut faults = script.iter().cycle();
        let mut step = steps.iter().cycle();
        for _ in 0..10_000 {
            if ended.len() == events {
                break;
            }
            let claimed = store.claim(50, lease).await.unwrap();
            let mine: Vec<_> = claimed
                .into_iter()
                .filter(|c| c.delivery.webhook_id() == Some(WebhookId::new(1)))
                .collect();
            prop_assert!(mine.len() <= 1, "two attempts in flight: {}", mine.len());
            let head = published.iter().find(|id| !ended.contains(id)).copied();
            if mine.is_empty() {
                // Nothing due: the head waits for its retry. Time passes (a script of zero
                // steps would otherwise never reach it).
                clock.advance(Duration::from_secs(1));
            }
            if let Some(mut c) = mine.into_iter().next() {
                prop_assert_eq!(Some(c.delivery.id()), head, "not the oldest pending");
                let step = if c.lapsed {
                    // As the worker does: the lapsed attempt counts, the policy goes on.
                    c.delivery.record(AttemptOutcome::Lapsed, c.age)
                } else {
                    let outcome = match faults.next().copied().unwrap_or(Fault::Ok) {
                        Fault::Lapse => {
                            clock.advance(lease + Duration::from_secs(1));
                            continue;
                        }
                        Fault::Ok => StatusCode::OK,
                        Fault::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                        Fault::BadRequest => StatusCode::BAD_REQUEST,
                    };
                    c.delivery.record(AttemptOutcome::Status(outcome), c.age)
                };
                store.finish(&c.claim, &c.delivery, &step).await.unwrap();
                if c.delivery.is_done() {
                    ended.push(c.delivery.id());
                }
                // No other attempt while it is not over.
                if !c.delivery.is_done() {
                    let more = store.claim(50, lease).await.unwrap();
                    prop_assert!(
                        more.iter()
                            .all(|m| m.delivery.webhook_id() != Some(WebhookId::new(1))),
                        "a later delivery went while the head waits for its retry"
                    );
                    for id in &published {
                        if Some(*id) != head && !ended.contains(id) {
                            let record = store.delivery(*id).await.unwrap();
                            prop_assert_eq!(record.waiting_behind, head);
                        }
                    }
                }
            }
            clock.advance(Duration::from_millis(*step.next().unwrap_or(&100)));
        }
        prop_assert_eq!(&ended, &published, "not in publish order, or not all ended");
        let counts = store.counts(Some(WebhookId::new(1))).await.unwrap();
        prop_assert_eq!(counts.pending, 0);
        for id in &published {
            let record = store.delivery(*id).await.unwrap();
            prop_assert!(record.state != DeliveryState::Pending);
            prop_assert_eq!(record.waiting_behind, None);
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn ordered_deliveries_end_in_publish_order(
        events in 1usize..8,
        other in 0usize..3,
        script in prop::collection::vec(fault(), 1..24),
        steps in prop::collection::vec(0u64..3_000, 1..8),
    ) {
        run(events, other, &script, &steps)?;
    }
}
