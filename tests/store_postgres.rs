//! The `DeliveryStore` contract on `PostgresStore` (the database's clock), the
//! transactional outbox, and what only a server can show. Each test has a schema of its
//! own; without `POSTHOOK_POSTGRES_URL` they are skipped (one line says so).
#![cfg(feature = "postgres")]

#[path = "support/contract.rs"]
mod contract;
#[path = "support/pg.rs"]
mod pg;

use std::time::Duration;

use contract::Clockwork;
use posthook::{DeliveryStore, PostgresStore, RetryPolicy, StoreError};

macro_rules! store {
    ($connections:expr) => {{
        let Some(schema) = pg::schema().await else {
            return;
        };
        (schema.store($connections).await, schema)
    }};
}

#[tokio::test]
async fn enqueue_is_idempotent() {
    let (store, _schema) = store!(2);
    contract::enqueue_is_idempotent(&store).await;
}

#[tokio::test]
async fn one_body_per_event() {
    let (store, _schema) = store!(2);
    contract::one_body_per_event(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_exclusive() {
    let (store, _schema) = store!(9);
    contract::claims_are_exclusive(&store, 10_000, 8).await;
}

#[tokio::test]
async fn expired_lease_redelivers() {
    let (store, _schema) = store!(2);
    contract::expired_lease_redelivers(&store, &Clockwork::Real).await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (store, _schema) = store!(2);
    contract::retry_after_is_honoured(&store, &Clockwork::Real).await;
}

#[tokio::test]
async fn last_attempt_is_final() {
    let (store, _schema) = store!(2);
    contract::last_attempt_is_final(&store, &Clockwork::Real).await;
}

#[tokio::test]
async fn outcomes_and_misuse() {
    let (store, _schema) = store!(2);
    contract::outcomes_and_misuse(&store).await;
}

#[tokio::test]
async fn delivery_log() {
    let (store, _schema) = store!(2);
    contract::delivery_log(&store, &Clockwork::Real).await;
}

#[tokio::test]
async fn pruning_leaves_live_deliveries() {
    let (store, _schema) = store!(2);
    contract::pruning_leaves_live_deliveries(&store, &Clockwork::Real).await;
}

#[tokio::test]
async fn made_up_token_is_stale() {
    let (store, _schema) = store!(2);
    contract::made_up_token_is_stale(&store).await;
}

#[tokio::test]
async fn a_bad_row_is_a_typed_error() {
    let (store, _schema) = store!(2);
    let event = contract::event(1, 1, &RetryPolicy::default());
    let id = event.deliveries()[0].delivery.id();
    store.enqueue(&event).await.unwrap();
    sqlx::query("UPDATE posthook_deliveries SET delivery = '{\"id\": 5}'::jsonb")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(
        store.delivery(id).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.claim(10, Duration::from_secs(60)).await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn a_closed_pool_is_unavailable() {
    let (store, _schema) = store!(2);
    store.pool().close().await;
    let err = store.claim(10, Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
}

#[tokio::test]
async fn no_server_is_unavailable() {
    // Nothing listens on port 1: a typed error, no panic (no server needed for this one).
    let err = PostgresStore::connect("postgres://postgres@127.0.0.1:1/test")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn migrations_are_versioned_and_concurrent() {
    let (store, schema) = store!(2);
    let other = schema.store(2).await; // a second worker starting: nothing to do
    let (a, b) = tokio::join!(store.migrate(), other.migrate());
    a.unwrap();
    b.unwrap();
    sqlx::query("INSERT INTO posthook_schema_version (version) VALUES (99)")
        .execute(store.pool())
        .await
        .unwrap();
    let err = store.migrate().await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}
