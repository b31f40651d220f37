//! The PostgreSQL claim at a large backlog: 100,000 pending deliveries over 10 webhooks
//! (two accounts), then claims of 100 (each finished at once, so the backlog stays), timed
//! through `PostgresStore::claim`, and `EXPLAIN (ANALYZE, BUFFERS)` of a claim statement
//! read from a file (`benches/claim_backlog/before.sql`: the statement before the fix,
//! `after.sql`: after; snapshots of `CLAIM` in src/store/postgres.rs), in a transaction
//! that is rolled back.
//!
//! ```text
//! POSTHOOK_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench --bench claim_backlog --features postgres,tokio -- \
//!   [--jit on|off] [--explain benches/claim_backlog/before.sql]...
//! ```
//!
//! It works in the schema `posthook_claim_backlog`, dropped at the start and at the end.

use std::time::{Duration, Instant};

use bytes::Bytes;
use posthook::{
    AccountId, AttemptOutcome, Delivery, DeliveryId, DeliveryStore, EventId, EventKind, NewEvent,
    PostgresStore, RetryPolicy, WebhookId, WebhookUrl,
};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const SCHEMA: &str = "posthook_claim_backlog";

#[tokio::main]
async fn main() {
    let Ok(url) = std::env::var("POSTHOOK_POSTGRES_URL") else {
        eprintln!("claim_backlog: POSTHOOK_POSTGRES_URL is not set; nothing to do");
        return;
    };
    let args: Vec<String> = std::env::args().collect();
    let mut jit = "on".to_owned();
    let mut explain = Vec::new();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--jit" => {
                jit = args[i + 1].clone();
                i += 1;
            }
            "--explain" => {
                explain.push(args[i + 1].clone());
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}"
    )))
    .execute(&admin)
    .await
    .expect("schema");
    let options: PgConnectOptions = url.parse().expect("url");
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options.options([("search_path", SCHEMA), ("jit", jit.as_str())]))
        .await
        .expect("connect");
    let store = PostgresStore::from_pool(pool.clone());
    store.migrate().await.expect("migrate");

    let hook_url = WebhookUrl::parse("https://receiver.example.com/hook").unwrap();
    let started = Instant::now();
    let mut batch = Vec::new();
    for n in 0..10_000u64 {
        let mut event = NewEvent::new(
            EventId::random().unwrap(),
            EventKind::Subscribe,
            Bytes::from(format!("type=subscribe&n={n}")),
        );
        for hook in 0..10u64 {
            let id = DeliveryId::new(EventId::random().unwrap().get());
            event.push(
                Delivery::new(id, Some(WebhookId::new(1 + hook)), RetryPolicy::default()),
                hook_url.clone(),
            );
        }
        event.set_account(AccountId::new(1 + n % 2));
        batch.push(event);
        if batch.len() == 1_000 {
            store.enqueue_all(&batch).await.expect("enqueue");
            batch.clear();
        }
    }
    sqlx::query("ANALYZE")
        .execute(&pool)
        .await
        .expect("analyze");
    println!(
        "backlog: 100,000 pending deliveries over 10 webhooks in {:.1} s; jit = {jit}",
        started.elapsed().as_secs_f64()
    );

    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let claimed = store
            .claim(100, Duration::from_secs(60))
            .await
            .expect("claim");
        times.push(t.elapsed());
        for mut c in claimed {
            let step = c
                .delivery
                .record(AttemptOutcome::Status(http::StatusCode::OK), c.age);
            store
                .finish(&c.claim, &c.delivery, &step)
                .await
                .expect("finish");
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "claim(100) x30: min {:.1} ms, median {:.1} ms, max {:.1} ms",
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );

    for file in explain {
        let sql = std::fs::read_to_string(&file).expect("read the statement");
        let mut tx = pool.begin().await.expect("begin");
        let token = posthook::ClaimToken::random().unwrap().to_string();
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (ANALYZE, BUFFERS) {sql}"
        )))
        .bind(token)
        .bind(60_000_000i64)
        .bind(100i64);
        if sql.contains("$4") {
            q = q.bind(32i64);
        }
        let rows = q.fetch_all(&mut *tx).await.expect("explain");
        println!("--- EXPLAIN (ANALYZE, BUFFERS) {file}, jit = {jit}");
        for row in rows {
            let line: String = row.get(0);
            if line.starts_with("Planning")
                || line.starts_with("Execution")
                || line.starts_with("JIT")
                || line.trim_start().starts_with("Functions")
                || line.trim_start().starts_with("Timing")
                || line.trim_start().starts_with("Options")
            {
                println!("{line}");
            }
        }
        tx.rollback().await.expect("rollback");
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"
    )))
    .execute(&admin)
    .await
    .expect("drop");
}
