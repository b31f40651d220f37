//! The `DeliveryStore` contract on `MemoryStore`, with a manual clock.

#[path = "support/cancel.rs"]
mod cancel;
#[path = "support/contract.rs"]
mod contract;
#[path = "support/http.rs"]
mod wire;

use contract::Clockwork;
use posthook::{ManualClock, MemoryStore};

fn store() -> (MemoryStore, Clockwork) {
    let clock = ManualClock::default();
    (
        MemoryStore::with_clock(clock.clone()),
        Clockwork::Manual(clock),
    )
}

#[tokio::test]
async fn enqueue_is_idempotent() {
    contract::enqueue_is_idempotent(&store().0).await;
}

#[tokio::test]
async fn enqueue_all_stores_a_batch() {
    contract::enqueue_all_stores_a_batch(&store().0, 20_000).await;
}

#[tokio::test]
async fn one_body_per_event() {
    contract::one_body_per_event(&store().0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_in_flight_limit_is_held() {
    let store = store()
        .0
        .with_max_in_flight_per_account(std::num::NonZeroU32::new(5).unwrap());
    assert_eq!(store.max_in_flight_per_account().get(), 5);
    contract::account_in_flight_limit_is_held(&store, 5).await;
}

#[test]
fn the_default_per_account_limit() {
    assert_eq!(
        MemoryStore::new().max_in_flight_per_account().get(),
        posthook::DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_exclusive() {
    contract::claims_are_exclusive(&store().0, 10_000, 8).await;
}

#[tokio::test]
async fn expired_lease_redelivers() {
    let (store, clock) = store();
    contract::expired_lease_redelivers(&store, &clock).await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (store, clock) = store();
    contract::retry_after_is_honoured(&store, &clock).await;
}

#[tokio::test]
async fn last_attempt_is_final() {
    let (store, clock) = store();
    contract::last_attempt_is_final(&store, &clock).await;
}

#[tokio::test]
async fn outcomes_and_misuse() {
    contract::outcomes_and_misuse(&store().0).await;
}

#[tokio::test]
async fn delivery_log() {
    let (store, clock) = store();
    contract::delivery_log(&store, &clock).await;
}

#[tokio::test]
async fn pruning_leaves_live_deliveries() {
    let (store, clock) = store();
    contract::pruning_leaves_live_deliveries(&store, &clock).await;
}

#[tokio::test]
async fn finish_all_in_one_batch() {
    contract::finish_all_in_one_batch(&store().0).await;
}

#[tokio::test]
async fn made_up_token_is_stale() {
    contract::made_up_token_is_stale(&store().0).await;
}

#[tokio::test]
async fn in_flight_limit_is_held() {
    let (store, clock) = store();
    contract::in_flight_limit_is_held(&store, &clock).await;
}

#[tokio::test]
async fn claims_take_webhooks_in_turn() {
    contract::claims_take_webhooks_in_turn(&store().0).await;
}

#[tokio::test]
async fn a_claim_takes_at_most_max() {
    contract::a_claim_takes_at_most_max(&store().0).await;
}

#[tokio::test]
async fn rate_limit_waits() {
    let (store, clock) = store();
    contract::rate_limit_waits(&store, &clock).await;
}

#[tokio::test]
async fn ordered_goes_one_at_a_time() {
    let (store, clock) = store();
    contract::ordered_goes_one_at_a_time(&store, &clock).await;
}

#[tokio::test]
async fn a_backlog_at_its_limit_does_not_delay_another_webhook() {
    contract::a_backlog_at_its_limit_does_not_delay_another_webhook(&store().0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_claims_hold_the_limit() {
    contract::racing_claims_hold_the_limit(&store().0).await;
}

#[tokio::test]
async fn cancel_ends_pending_deliveries() {
    contract::cancel_ends_pending_deliveries(&store().0).await;
}

#[tokio::test]
async fn resend_sends_again() {
    contract::resend_sends_again(&store().0).await;
}

#[tokio::test]
async fn recover_resends_what_failed_since() {
    let (store, clock) = store();
    contract::recover_resends_what_failed_since(&store, &clock).await;
}

#[tokio::test]
async fn deliveries_per_account() {
    let (store, clock) = store();
    contract::deliveries_per_account(&store, &clock).await;
}

#[tokio::test]
async fn a_cancelled_attempt_in_flight_holds_its_slot() {
    let (store, clock) = store();
    contract::a_cancelled_attempt_in_flight_holds_its_slot(&store, &clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_off_racing_workers() {
    cancel::switch_off_racing_workers(posthook::MemoryStore::new()).await;
}

#[tokio::test]
async fn a_huge_retry_wait_is_bounded() {
    let (store, clock) = store();
    contract::a_huge_retry_wait_is_bounded(&store, &clock).await;
}

#[tokio::test]
async fn a_lease_of_duration_max_is_bounded() {
    let (store, clock) = store();
    contract::a_lease_of_duration_max_is_bounded(&store, &clock).await;
}

#[tokio::test]
async fn a_retry_after_beyond_the_bound_is_clamped() {
    let (store, clock) = store();
    contract::a_retry_after_beyond_the_bound_is_clamped(&store, &clock).await;
}

#[tokio::test]
async fn any_error_text_is_kept() {
    contract::any_error_text_is_kept(&store().0, contract::Nul::Kept).await;
}

/// A manual clock moved past the end of `SystemTime` stops there: no panic, in the clock
/// or in the store reading it.
#[tokio::test]
async fn a_clock_at_the_end_of_time_does_not_panic() {
    use posthook::{Clock, DeliveryStore, RetryPolicy};
    use std::time::Duration;

    let (store, clock) = store();
    let Clockwork::Manual(manual) = &clock else {
        unreachable!()
    };
    manual.advance(Duration::MAX);
    let end = manual.now();
    manual.advance(Duration::from_secs(1));
    assert_eq!(manual.now(), end, "the clock stays at the end");
    let event = contract::event(1, 1, &RetryPolicy::default());
    store.enqueue(&event).await.unwrap();
    let mut claimed = store.claim(10, Duration::MAX).await.unwrap();
    let c = &mut claimed[0];
    let record = store.delivery(c.claim.id).await.unwrap();
    assert!(record.leased && record.due_at.is_some());
    let step = c.delivery.record(
        posthook::AttemptOutcome::Status(http::StatusCode::SERVICE_UNAVAILABLE),
        c.age,
    );
    store.finish(&c.claim, &c.delivery, &step).await.unwrap();
    let log = store
        .recent(posthook::WebhookId::new(1), posthook::Page::first(10))
        .await
        .unwrap();
    assert_eq!(
        log[0].due_at,
        Some(end),
        "due at the end of time, not past it"
    );
}
