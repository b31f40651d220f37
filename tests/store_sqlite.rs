//! The `DeliveryStore` contract on `SqliteStore` (SQLite's own clock), and what only a
//! file-backed store can show: reopening, bad rows, a closed database, schema versions.
#![cfg(feature = "sqlite")]

#[path = "support/cancel.rs"]
mod cancel;
#[path = "support/contract.rs"]
mod contract;
#[path = "support/crash.rs"]
mod crash;
#[path = "support/temp.rs"]
mod temp;
#[path = "support/http.rs"]
mod wire;

use std::time::Duration;

use contract::Clockwork;
use posthook::{DeliveryStore, Durability, RetryPolicy, SqliteStore, StoreError};
use temp::TempDir;

async fn store() -> (SqliteStore, TempDir) {
    let dir = TempDir::new("posthook-sqlite");
    let store = SqliteStore::open(dir.path().join("outbox.db"), Durability::ProcessCrash)
        .await
        .unwrap();
    (store, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_in_flight_limit_is_held() {
    let (store, _dir) = store().await;
    assert_eq!(
        store.max_in_flight_per_account().get(),
        posthook::DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT
    );
    let store = store.with_max_in_flight_per_account(std::num::NonZeroU32::new(5).unwrap());
    assert_eq!(store.max_in_flight_per_account().get(), 5);
    contract::account_in_flight_limit_is_held(&store, 5).await;
}

#[tokio::test]
async fn enqueue_is_idempotent() {
    contract::enqueue_is_idempotent(&store().await.0).await;
}

#[tokio::test]
async fn enqueue_all_stores_a_batch() {
    contract::enqueue_all_stores_a_batch(&store().await.0, 20_000).await;
}

#[tokio::test]
async fn one_body_per_event() {
    contract::one_body_per_event(&store().await.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_exclusive() {
    contract::claims_are_exclusive(&store().await.0, 10_000, 8).await;
}

#[tokio::test]
async fn expired_lease_redelivers() {
    contract::expired_lease_redelivers(&store().await.0, &Clockwork::Real).await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    contract::retry_after_is_honoured(&store().await.0, &Clockwork::Real).await;
}

#[tokio::test]
async fn last_attempt_is_final() {
    contract::last_attempt_is_final(&store().await.0, &Clockwork::Real).await;
}

#[tokio::test]
async fn outcomes_and_misuse() {
    contract::outcomes_and_misuse(&store().await.0).await;
}

#[tokio::test]
async fn delivery_log() {
    contract::delivery_log(&store().await.0, &Clockwork::Real).await;
}

#[tokio::test]
async fn pruning_leaves_live_deliveries() {
    contract::pruning_leaves_live_deliveries(&store().await.0, &Clockwork::Real).await;
}

#[tokio::test]
async fn finish_all_in_one_batch() {
    contract::finish_all_in_one_batch(&store().await.0).await;
}

#[tokio::test]
async fn made_up_token_is_stale() {
    contract::made_up_token_is_stale(&store().await.0).await;
}

#[tokio::test]
async fn deliveries_survive_reopening_the_file() {
    let dir = TempDir::new("posthook-sqlite");
    let path = dir.path().join("outbox.db");
    let store = SqliteStore::open(&path, Durability::PowerLoss)
        .await
        .unwrap();
    let event = contract::event(3, 1, &RetryPolicy::default());
    store.enqueue(&event).await.unwrap();
    store.pool().close().await;
    drop(store);
    let store = SqliteStore::open(&path, Durability::ProcessCrash)
        .await
        .unwrap();
    let counts = store.counts(None).await.unwrap();
    assert_eq!((counts.pending, counts.bodies), (3, 1));
    let claimed = store.claim(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len(), 3);
    assert!(claimed.iter().all(|c| c.body == *event.body()));
}

#[tokio::test]
async fn a_bad_row_is_a_typed_error() {
    let (store, _dir) = store().await;
    let event = contract::event(1, 1, &RetryPolicy::default());
    let id = event.deliveries()[0].delivery.id();
    store.enqueue(&event).await.unwrap();
    sqlx::query("UPDATE posthook_deliveries SET delivery = '{not json'")
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
    sqlx::query("UPDATE posthook_deliveries SET state = 'lost'")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(
        store.counts(None).await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn a_closed_database_is_unavailable() {
    let (store, _dir) = store().await;
    store.pool().close().await;
    let err = store.claim(10, Duration::from_secs(60)).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(err.is_transient());
    let event = contract::event(1, 1, &RetryPolicy::default());
    assert!(store.enqueue(&event).await.unwrap_err().is_transient());
}

#[tokio::test]
async fn migrations_are_versioned() {
    let dir = TempDir::new("posthook-sqlite");
    let path = dir.path().join("outbox.db");
    let store = SqliteStore::open(&path, Durability::ProcessCrash)
        .await
        .unwrap();
    store.migrate().await.unwrap(); // current: nothing to do
    sqlx::query("INSERT INTO posthook_schema_version (version) VALUES (99)")
        .execute(store.pool())
        .await
        .unwrap();
    store.pool().close().await;
    let err = SqliteStore::open(&path, Durability::ProcessCrash)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}

/// Migration v8 on a file that already holds deliveries: the lanes of a v7 file (made here
/// by taking v8 back out) learn their account from their deliveries, and the per-account
/// limit holds on that backlog at once.
#[tokio::test]
async fn migration_v8_on_an_existing_backlog() {
    let dir = TempDir::new("posthook-sqlite-v8");
    let path = dir.path().join("outbox.db");
    let store = SqliteStore::open(&path, Durability::ProcessCrash)
        .await
        .unwrap();
    contract::backlog_of_two_accounts(&store).await;
    sqlx::raw_sql(
        "DROP INDEX posthook_lanes_account_held; DROP INDEX posthook_deliveries_account_leased;
         ALTER TABLE posthook_lanes DROP COLUMN account;
         ALTER TABLE posthook_lanes DROP COLUMN held;
         DELETE FROM posthook_schema_version WHERE version >= 8;",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store.pool().close().await;
    let store = SqliteStore::open(&path, Durability::ProcessCrash)
        .await
        .unwrap()
        .with_max_in_flight_per_account(std::num::NonZeroU32::new(4).unwrap());
    contract::the_limit_holds_on_an_old_backlog(&store, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_process_loses_nothing() {
    let dir = TempDir::new("posthook-sqlite-crash");
    let path = dir.path().join("outbox.db");
    let store = SqliteStore::open(&path, Durability::ProcessCrash)
        .await
        .unwrap();
    crash::scenario(&store, |child| child.env("POSTHOOK_CRASH_SQLITE", &path)).await;
}

/// The worker process of `a_killed_worker_process_loses_nothing` (does nothing otherwise).
#[tokio::test]
async fn crash_child() {
    crash::in_child("POSTHOOK_CRASH_SQLITE", |path| async move {
        let store = SqliteStore::open(path, Durability::ProcessCrash)
            .await
            .unwrap();
        crash::child(store).await;
    })
    .await;
}

#[tokio::test]
async fn in_flight_limit_is_held() {
    let (store, _dir) = store().await;
    contract::in_flight_limit_is_held(&store, &Clockwork::Real).await;
}

#[tokio::test]
async fn claims_take_webhooks_in_turn() {
    let (store, _dir) = store().await;
    contract::claims_take_webhooks_in_turn(&store).await;
}

#[tokio::test]
async fn a_claim_takes_at_most_max() {
    let (store, _dir) = store().await;
    contract::a_claim_takes_at_most_max(&store).await;
}

#[tokio::test]
async fn rate_limit_waits() {
    let (store, _dir) = store().await;
    contract::rate_limit_waits(&store, &Clockwork::Real).await;
}

#[tokio::test]
async fn ordered_goes_one_at_a_time() {
    let (store, _dir) = store().await;
    contract::ordered_goes_one_at_a_time(&store, &Clockwork::Real).await;
}

/// Two stores on one file (two processes' pools) hold one in-flight limit between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_hold_one_limit() {
    let (a, dir) = store().await;
    let b = SqliteStore::open(dir.path().join("outbox.db"), Durability::ProcessCrash)
        .await
        .unwrap();
    let pacing =
        posthook::Pacing::DEFAULT.with_max_in_flight(std::num::NonZeroU32::new(3).unwrap());
    a.enqueue(&contract::paced(40, 1, pacing)).await.unwrap();
    let lease = Duration::from_secs(60);
    let mut total = 0;
    for _ in 0..5 {
        let (x, y) = tokio::join!(a.claim(10, lease), b.claim(10, lease));
        total += x.unwrap().len() + y.unwrap().len();
    }
    assert_eq!(total, 3);
}

/// The fairness scenario: a webhook at its limit with 10,000 pending does not delay
/// another's deliveries, claim after claim.
#[tokio::test]
async fn a_backlog_at_its_limit_does_not_delay_another_webhook() {
    let (store, _dir) = store().await;
    contract::a_backlog_at_its_limit_does_not_delay_another_webhook(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_claims_hold_the_limit() {
    let (store, _dir) = store().await;
    contract::racing_claims_hold_the_limit(&store).await;
}

#[tokio::test]
async fn cancel_ends_pending_deliveries() {
    contract::cancel_ends_pending_deliveries(&store().await.0).await;
}

#[tokio::test]
async fn resend_sends_again() {
    contract::resend_sends_again(&store().await.0).await;
}

#[tokio::test]
async fn recover_resends_what_failed_since() {
    let (store, _dir) = store().await;
    contract::recover_resends_what_failed_since(&store, &Clockwork::Real).await;
}

#[tokio::test]
async fn deliveries_per_account() {
    let (store, _dir) = store().await;
    contract::deliveries_per_account(&store, &Clockwork::Real).await;
}

#[tokio::test]
async fn a_cancelled_attempt_in_flight_holds_its_slot() {
    let (store, _dir) = store().await;
    contract::a_cancelled_attempt_in_flight_holds_its_slot(&store, &Clockwork::Real).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_off_racing_workers() {
    let (store, _dir) = store().await;
    cancel::switch_off_racing_workers(store).await;
}

/// Group commit survives a crash: a *publishing* process (16 tasks calling
/// `Outbox::publish`, sharing commits) prints the delivery ids of every call that returned;
/// it is SIGKILLed mid-run, between and during commits. Every delivery it acknowledged is
/// in the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_publisher_loses_no_acknowledged_event() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = TempDir::new("posthook-sqlite-publisher");
    let path = dir.path().join("outbox.db");
    // The schema first, so that the child only publishes.
    drop(
        SqliteStore::open(&path, Durability::ProcessCrash)
            .await
            .unwrap(),
    );
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "publisher_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("POSTHOOK_PUBLISHER_SQLITE", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.strip_prefix("acked ").map(str::to_owned))
            .filter(|id| id.len() == 32) // not a line cut by the kill
            .collect::<Vec<String>>()
    });
    // Let it publish a while, then kill it without warning.
    let store = SqliteStore::open(&path, Durability::ProcessCrash)
        .await
        .unwrap();
    let mut waited = 0;
    while store.counts(None).await.unwrap().pending < 3_000 {
        assert!(child.try_wait().unwrap().is_none(), "the publisher exited");
        assert!(waited < 60_000, "the publisher published nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 20;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let acked = lines.join().unwrap();
    assert!(acked.len() >= 1_000, "only {} acknowledged", acked.len());
    for id in &acked {
        let id: posthook::DeliveryId = id.parse().unwrap();
        let record = store.delivery(id).await.unwrap_or_else(|e| {
            panic!("acknowledged delivery {id} is not in the store after the crash: {e}")
        });
        assert_eq!(record.state, posthook::DeliveryState::Pending);
    }
}

/// The process of `a_killed_publisher_loses_no_acknowledged_event` (does nothing
/// otherwise): publishes until killed, printing each acknowledged delivery id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_child() {
    crash::in_child("POSTHOOK_PUBLISHER_SQLITE", |path| async move {
        use posthook::{Event, EventKind, Outbox, Registry, Source, Webhook};
        use std::io::Write;

        let store = SqliteStore::open(path, Durability::ProcessCrash)
            .await
            .unwrap();
        let registry: std::sync::Arc<Registry> = std::sync::Arc::new(
            (0..3)
                .map(|n| {
                    Webhook::builder(format!("hook {n}"), "https://receiver.example.com/hook")
                        .events([EventKind::Subscribe])
                        .sources(Source::ALL)
                        .build()
                        .unwrap()
                })
                .collect(),
        );
        let outbox = Outbox::new(store);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (outbox, registry) = (outbox.clone(), std::sync::Arc::clone(&registry));
                tokio::spawn(async move {
                    let event = Event::sample(EventKind::Subscribe);
                    for _ in 0..100_000 {
                        let published = outbox.publish(&registry, &event).await.unwrap();
                        let mut out = std::io::stdout().lock();
                        for id in published.deliveries {
                            writeln!(out, "acked {id}").unwrap();
                        }
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn a_huge_retry_wait_is_bounded() {
    contract::a_huge_retry_wait_is_bounded(&store().await.0, &Clockwork::Real).await;
}

#[tokio::test]
async fn a_lease_of_duration_max_is_bounded() {
    contract::a_lease_of_duration_max_is_bounded(&store().await.0, &Clockwork::Real).await;
}

#[tokio::test]
async fn a_retry_after_beyond_the_bound_is_clamped() {
    contract::a_retry_after_beyond_the_bound_is_clamped(&store().await.0, &Clockwork::Real).await;
}

#[tokio::test]
async fn any_error_text_is_kept() {
    contract::any_error_text_is_kept(&store().await.0, contract::Nul::Kept).await;
}
