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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_off_racing_workers() {
    cancel::switch_off_racing_workers(posthook::MemoryStore::new()).await;
}
