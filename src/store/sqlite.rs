//! [`SqliteStore`]: the embedded store, one SQLite file (feature `sqlite`).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use sqlx::AssertSqlSafe;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};

use super::sql::{self, error, get};
use super::{
    Claim, ClaimToken, Claimed, DeliveryRecord, DeliveryState, DeliveryStore, Finish, Finished,
    NewEvent, Page, Pruned, StoreCounts, StoreError, bounded_lease, check_finish, micros,
};
use crate::{CancelReason, Delivery, DeliveryId, FinalOutcome, Pacing, Step, WebhookId};

/// Milliseconds since the Unix epoch by SQLite's clock (stable within one statement).
macro_rules! now_ms {
    () => {
        "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
    };
}

/// The `SET` list that cancels a pending delivery with the final outcome `$outcome` (an SQL
/// expression giving its JSON): a lease that has not run out is kept (its attempt may be in
/// flight, and its finish records it). A row whose JSON does not decode keeps it (its reads
/// say it is corrupt) rather than failing the cancel of every other delivery.
macro_rules! cancel_set {
    ($outcome:literal) => {
        concat!(
            "state = 'cancelled', delivery = CASE WHEN json_valid(delivery) ",
            "THEN json_set(delivery, '$.outcome', json(",
            $outcome,
            ")) ELSE delivery END, lapsed = 0, finished_ms = ",
            now_ms!(),
            ", lease_token = CASE WHEN due_ms > ",
            now_ms!(),
            " THEN lease_token END, due_ms = CASE WHEN lease_token IS NOT NULL AND due_ms > ",
            now_ms!(),
            " THEN due_ms END"
        )
    };
}

/// The schema, one entry per version; applied in order by [`SqliteStore::migrate`].
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE posthook_bodies (
        event_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        body BLOB NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE posthook_deliveries (
        id TEXT PRIMARY KEY,
        event_id TEXT NOT NULL REFERENCES posthook_bodies (event_id),
        webhook_id INTEGER,
        url TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        delivery TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        due_ms INTEGER,
        lease_token TEXT,
        lapsed INTEGER NOT NULL DEFAULT 0,
        finished_ms INTEGER
    );
    CREATE INDEX posthook_deliveries_due ON posthook_deliveries (due_ms) WHERE state = 'pending';
    CREATE INDEX posthook_deliveries_webhook ON posthook_deliveries (webhook_id, created_ms);
    CREATE INDEX posthook_deliveries_event ON posthook_deliveries (event_id);
    CREATE INDEX posthook_deliveries_finished ON posthook_deliveries (finished_ms)
        WHERE state <> 'pending';",
    // v2: pacing. One lane per webhook (lane 0: the deliveries without a webhook), with the
    // pacing of its latest enqueue, its token bucket, and when a claim should look at it
    // next; each delivery points at its lane. Claims go lane by lane through the per-lane
    // indexes, never through one webhook's backlog (so the global due index goes).
    "CREATE TABLE posthook_lanes (
        id INTEGER PRIMARY KEY,
        webhook_id INTEGER UNIQUE,
        max_in_flight INTEGER NOT NULL,
        rate INTEGER,
        ordered INTEGER NOT NULL DEFAULT 0,
        tokens REAL,
        tokens_ms INTEGER,
        next_ms INTEGER,
        served_ms INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX posthook_lanes_ready ON posthook_lanes (next_ms);
    INSERT INTO posthook_lanes (id, webhook_id, max_in_flight, next_ms) VALUES (0, NULL, 2147483647, 0);
    INSERT INTO posthook_lanes (webhook_id, max_in_flight, next_ms)
        SELECT DISTINCT webhook_id, 16, 0 FROM posthook_deliveries WHERE webhook_id IS NOT NULL;
    ALTER TABLE posthook_deliveries ADD COLUMN lane INTEGER;
    UPDATE posthook_deliveries SET lane = COALESCE((SELECT l.id FROM posthook_lanes l
        WHERE l.webhook_id = posthook_deliveries.webhook_id), 0);
    DROP INDEX posthook_deliveries_due;
    CREATE INDEX posthook_deliveries_lane_due ON posthook_deliveries (lane, due_ms)
        WHERE state = 'pending';
    CREATE INDEX posthook_deliveries_lane_head ON posthook_deliveries (lane)
        WHERE state = 'pending';
    CREATE INDEX posthook_deliveries_lane_leased ON posthook_deliveries (lane, due_ms)
        WHERE state = 'pending' AND lease_token IS NOT NULL;",
    // v3: resends. A resent delivery points at the one it resends (so that recover resends
    // nothing twice), and the ended deliveries that recover may resend are found per
    // webhook by when they ended.
    "ALTER TABLE posthook_deliveries ADD COLUMN resent_from TEXT;
    CREATE INDEX posthook_deliveries_resent ON posthook_deliveries (resent_from)
        WHERE resent_from IS NOT NULL;
    CREATE INDEX posthook_deliveries_recoverable ON posthook_deliveries (webhook_id, finished_ms)
        WHERE state IN ('failed', 'gave_up', 'cancelled');",
    // v4: the webhook store. Every account's webhooks (AUTOINCREMENT: an id is never given
    // twice), the columns its filters read, and the change feed.
    "CREATE TABLE posthook_webhooks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account INTEGER NOT NULL,
        version INTEGER NOT NULL,
        name TEXT NOT NULL,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        listid INTEGER NOT NULL,
        active INTEGER NOT NULL,
        webhook TEXT NOT NULL,
        settings TEXT NOT NULL,
        cdate TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE INDEX posthook_webhooks_account ON posthook_webhooks (account, id);
    CREATE TABLE posthook_webhook_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        account INTEGER NOT NULL,
        webhook_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        version INTEGER NOT NULL,
        at_ms INTEGER NOT NULL
    );",
    // v5: the account a delivery was published for, and an account's log.
    "ALTER TABLE posthook_deliveries ADD COLUMN account INTEGER;
    CREATE INDEX posthook_deliveries_account ON posthook_deliveries (account, created_ms)
        WHERE account IS NOT NULL;",
    // v6: a delivery cancelled while its attempt is in flight still holds its lease, and it
    // counts against its webhook's in-flight limit until the attempt finishes.
    "CREATE INDEX posthook_deliveries_lane_cancelled_leased ON posthook_deliveries (lane, due_ms)
        WHERE state = 'cancelled' AND lease_token IS NOT NULL;",
    // v7: a webhook switched off or deleted through the webhook store: its lane holds the
    // final outcome (JSON) that every delivery enqueued to it from then on gets.
    "ALTER TABLE posthook_lanes ADD COLUMN off TEXT;",
    // v8: the per-account in-flight limit. A lane knows its webhook's account (from the
    // latest enqueue that named one; an existing lane from its latest delivery), and `held`
    // says a claim left it waiting for a free slot of that account (a finish in the
    // account makes it ready); the live leases of an account are counted through a small
    // index of the leased deliveries.
    "ALTER TABLE posthook_lanes ADD COLUMN account INTEGER;
    ALTER TABLE posthook_lanes ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    UPDATE posthook_lanes SET account = (SELECT d.account FROM posthook_deliveries d
        WHERE d.webhook_id = posthook_lanes.webhook_id AND d.account IS NOT NULL
        ORDER BY d.created_ms DESC, d.rowid DESC LIMIT 1) WHERE id <> 0;
    CREATE INDEX posthook_lanes_account_held ON posthook_lanes (account) WHERE held = 1;
    CREATE INDEX posthook_deliveries_account_leased ON posthook_deliveries (account, due_ms)
        WHERE lease_token IS NOT NULL;",
];

/// How much a commit survives, the trade of SQLite's `synchronous` setting in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous = NORMAL`: a commit is in the write-ahead log when it returns, and
    /// the log is synced at checkpoints. A killed **process** loses nothing that was
    /// committed (the operating system still writes the file); a power loss or a kernel
    /// crash may roll back the last commits (never corrupt the file) — an enqueue that had
    /// returned may then be lost. The default: many times the throughput of `Full`.
    #[default]
    ProcessCrash,
    /// `synchronous = FULL`: every commit syncs the log to disk before it returns; it
    /// survives a power loss too, at the cost of one `fsync` per commit.
    PowerLoss,
}

/// The embedded store: one SQLite file (in WAL mode), no server; for one process, or a few
/// on one machine sharing the file. Feature `sqlite` (sqlx, SQLite bundled).
///
/// Time is SQLite's own clock (`julianday('now')`, the machine's wall clock, in
/// milliseconds), read in the statements themselves. Writes are serialized by SQLite; every
/// statement is short and no transaction is held across an HTTP call.
///
/// ```no_run
/// use posthook::{Durability, SqliteStore};
///
/// # async fn run() -> Result<(), posthook::StoreError> {
/// let store = SqliteStore::open("webhooks.db", Durability::ProcessCrash).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The most webhooks an account may have (its [`WebhookStore`](crate::WebhookStore)).
    max_webhooks: u32,
    /// The most deliveries of one account leased at once.
    max_in_flight_per_account: NonZeroU32,
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path` in WAL mode, and brings its schema up
    /// to date ([`migrate`](SqliteStore::migrate)).
    pub async fn open(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<SqliteStore, StoreError> {
        let synchronous = match durability {
            Durability::ProcessCrash => SqliteSynchronous::Normal,
            Durability::PowerLoss => SqliteSynchronous::Full,
        };
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(error)?;
        let store = SqliteStore::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// A store over a pool you configured (WAL mode is strongly advised). Call
    /// [`migrate`](SqliteStore::migrate) once before use.
    pub fn from_pool(pool: SqlitePool) -> SqliteStore {
        SqliteStore {
            pool,
            max_webhooks: crate::DEFAULT_MAX_WEBHOOKS,
            max_in_flight_per_account: NonZeroU32::new(super::DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT)
                .unwrap_or(NonZeroU32::MIN),
        }
    }

    /// Lets an account have at most `max` webhooks (default
    /// [`DEFAULT_MAX_WEBHOOKS`](crate::DEFAULT_MAX_WEBHOOKS)), as a
    /// [`WebhookStore`](crate::WebhookStore).
    #[must_use]
    pub fn with_max_webhooks(mut self, max: u32) -> Self {
        self.max_webhooks = max;
        self
    }

    pub(crate) fn max_webhooks_per_account(&self) -> u32 {
        self.max_webhooks
    }

    /// Lets a claim lease at most `max` deliveries of one account at once (default
    /// [`DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT`](crate::DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT)),
    /// counted over every lease in the file (every worker and process sharing it: claims
    /// run in one write transaction); the due deliveries of other accounts are claimed
    /// meanwhile. It counts the deliveries to a webhook published for an account
    /// ([`NewDelivery::account`](crate::NewDelivery::account)). Each store value applies
    /// its own setting to its own claims: give every process the same one.
    #[must_use]
    pub fn with_max_in_flight_per_account(mut self, max: NonZeroU32) -> Self {
        self.max_in_flight_per_account = max;
        self
    }

    /// The most deliveries of one account a claim leases at once
    /// ([`with_max_in_flight_per_account`](SqliteStore::with_max_in_flight_per_account)).
    pub fn max_in_flight_per_account(&self) -> NonZeroU32 {
        self.max_in_flight_per_account
    }

    /// The connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates or updates the tables, recording the version in `posthook_schema_version`;
    /// does nothing when they are current. A schema newer than this library is
    /// [`StoreError::SchemaTooNew`].
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error)?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS posthook_schema_version (version INTEGER NOT NULL)",
        )
        .execute(&mut *tx)
        .await
        .map_err(error)?;
        let found: i64 =
            sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM posthook_schema_version")
                .fetch_one(&mut *tx)
                .await
                .map_err(error)
                .and_then(|row| get(&row, "v"))?;
        // An error drops `tx`, which rolls it back.
        for (version, migration) in super::pending_migrations(MIGRATIONS, found)? {
            sqlx::raw_sql(migration)
                .execute(&mut *tx)
                .await
                .map_err(error)?;
            sqlx::query("INSERT INTO posthook_schema_version (version) VALUES (?)")
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(error)?;
        }
        tx.commit().await.map_err(error)
    }
}

fn record(row: &SqliteRow) -> Result<DeliveryRecord, StoreError> {
    let id: String = get(row, "id")?;
    let event: String = get(row, "event_id")?;
    let url: String = get(row, "url")?;
    let kind: String = get(row, "kind")?;
    let json: String = get(row, "delivery")?;
    let parts = sql::parts(&id, &event, &url, &kind, &json)?;
    let state = sql::state(&id, &get::<_, String>(row, "state")?)?;
    let due: Option<i64> = get(row, "due_ms")?;
    let token: Option<String> = get(row, "lease_token")?;
    let now: i64 = get(row, "now_ms")?;
    let finished: Option<i64> = get(row, "finished_ms")?;
    let pending = state == DeliveryState::Pending;
    let leasable = pending || state == DeliveryState::Cancelled;
    let resent_from = parts.delivery.resent_from();
    Ok(DeliveryRecord {
        delivery: parts.delivery,
        url: parts.url,
        event: parts.event,
        kind: parts.kind,
        state,
        created_at: sql::time_us(get::<_, i64>(row, "created_ms")?.saturating_mul(1000)),
        due_at: due
            .filter(|_| pending)
            .map(|d| sql::time_us(d.saturating_mul(1000))),
        leased: leasable && token.is_some() && due.is_some_and(|d| d > now),
        finished_at: finished.map(|f| sql::time_us(f.saturating_mul(1000))),
        waiting_behind: sql::waiting_behind(&id, get(row, "head")?)?,
        resent_from,
        account: get::<_, Option<i64>>(row, "account")?
            .map(|a| crate::AccountId::new(u64::from_ne_bytes(a.to_ne_bytes()))),
    })
}

const RECORD_COLUMNS: &str = concat!(
    "d.id, d.event_id, d.url, d.kind, d.state, d.delivery, d.created_ms, d.due_ms, ",
    "d.lease_token, d.finished_ms, d.account, ",
    now_ms!(),
    " AS now_ms, CASE WHEN d.state = 'pending' AND l.ordered THEN (SELECT h.id ",
    "FROM posthook_deliveries h INDEXED BY posthook_deliveries_lane_head ",
    "WHERE h.lane = d.lane AND h.state = 'pending' ORDER BY h.rowid LIMIT 1) END AS head ",
    "FROM posthook_deliveries d LEFT JOIN posthook_lanes l ON l.id = d.lane"
);

/// One finish on `conn` (the pool's, or a batch's transaction).
async fn finish_on(
    conn: &mut SqliteConnection,
    claim: &Claim,
    delivery: &Delivery,
    step: &Step,
) -> Result<Finished, StoreError> {
    let (state, retry) = check_finish(claim, delivery, step)?;
    let json = sql::to_json(delivery)?;
    let id = claim.id.to_string();
    let done = match retry {
        Some(after) => sqlx::query(concat!(
            "UPDATE posthook_deliveries SET delivery = ?, lease_token = NULL, lapsed = 0, due_ms = ",
            now_ms!(),
            " + ? WHERE id = ? AND lease_token = ? AND state = 'pending'"
        ))
        .bind(json)
        .bind(millis(after)),
        None => sqlx::query(concat!(
            "UPDATE posthook_deliveries SET delivery = ?, state = ?, lease_token = NULL, ",
            "lapsed = 0, due_ms = NULL, finished_ms = ",
            now_ms!(),
            " WHERE id = ? AND lease_token = ? AND state = 'pending'"
        ))
        .bind(json)
        .bind(state.as_str()),
    }
    .bind(&id)
    .bind(claim.token.to_string())
    .execute(&mut *conn)
    .await
    .map_err(error)?;
    if done.rows_affected() == 1 {
        // The lease ended: its lane has a free slot (and, for a retry, work due later).
        wake_lane_of(conn, &id).await?;
        return Ok(if retry.is_some() {
            Finished::Retrying
        } else {
            Finished::Done
        });
    }
    let row =
        sqlx::query("SELECT state, lease_token, delivery FROM posthook_deliveries WHERE id = ?")
            .bind(&id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(error)?
            .ok_or(StoreError::UnknownDelivery(claim.id))?;
    let token: Option<String> = get(&row, "lease_token")?;
    let state_now: String = get(&row, "state")?;
    if state_now != DeliveryState::Cancelled.as_str() || token != Some(claim.token.to_string()) {
        return Ok(Finished::Stale);
    }
    // Cancelled while this attempt was in flight: record it.
    let json: String = get(&row, "delivery")?;
    let (stored, finished) = sql::record_in_flight(&id, &json, delivery)?;
    sqlx::query(concat!(
        "UPDATE posthook_deliveries SET delivery = ?, state = ?, lease_token = NULL, lapsed = 0, ",
        "due_ms = NULL, finished_ms = ",
        now_ms!(),
        " WHERE id = ? AND lease_token = ?"
    ))
    .bind(sql::to_json(&stored)?)
    .bind(DeliveryState::of(&stored).as_str())
    .bind(&id)
    .bind(claim.token.to_string())
    .execute(&mut *conn)
    .await
    .map_err(error)?;
    // The lease ended: its lane has a free slot.
    wake_lane_of(conn, &id).await?;
    Ok(finished)
}

/// The statement that makes a lane ready now (its `next_ms` at most now), for the lane
/// picked by `WHERE`.
macro_rules! wake_lane_sql {
    ($where:literal) => {
        concat!(
            "UPDATE posthook_lanes SET next_ms = MIN(COALESCE(next_ms, ",
            now_ms!(),
            "), ",
            now_ms!(),
            ") WHERE ",
            $where
        )
    };
}

/// Makes lane `lane` ready now: it has work, or a free slot.
async fn wake_lane(conn: &mut SqliteConnection, lane: i64) -> Result<(), StoreError> {
    sqlx::query(wake_lane_sql!("id = ?"))
        .bind(lane)
        .execute(&mut *conn)
        .await
        .map_err(error)?;
    Ok(())
}

/// Makes the lane of delivery `id` ready now (its lease ended: a free slot), and the
/// lanes of its account held back by the per-account limit.
async fn wake_lane_of(conn: &mut SqliteConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query(wake_lane_sql!(
        "id = (SELECT lane FROM posthook_deliveries WHERE id = ?1) OR (held = 1 AND account = \
         (SELECT l.account FROM posthook_lanes l WHERE l.id = \
         (SELECT lane FROM posthook_deliveries WHERE id = ?1)))"
    ))
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(error)?;
    Ok(())
}

/// Inserts a resend of each of `rows` (as selected by [`RESEND_COLUMNS`]) in the caller's
/// transaction, due at once; the new ids, in order.
async fn resend_rows(
    conn: &mut SqliteConnection,
    rows: &[SqliteRow],
) -> Result<Vec<DeliveryId>, StoreError> {
    let mut ids = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = get(row, "id")?;
        let event: String = get(row, "event_id")?;
        let url: String = get(row, "url")?;
        let kind: String = get(row, "kind")?;
        let json: String = get(row, "delivery")?;
        let lane: Option<i64> = get(row, "lane")?;
        let parts = sql::parts(&id, &event, &url, &kind, &json)?;
        let new_id = DeliveryId::new(super::random_u128()?);
        let resend = parts.delivery.resend(new_id);
        sqlx::query(concat!(
            "INSERT INTO posthook_deliveries (id, event_id, webhook_id, url, kind, state, delivery, ",
            "created_ms, due_ms, lane, resent_from, account) VALUES (?, ?, ?, ?, ?, 'pending', ?, ",
            now_ms!(),
            ", ",
            now_ms!(),
            ", ?, ?, ?)"
        ))
        .bind(new_id.to_string())
        .bind(&event)
        .bind(sql::webhook_column(resend.webhook_id()))
        .bind(&url)
        .bind(&kind)
        .bind(sql::to_json(&resend)?)
        .bind(lane.unwrap_or(0))
        .bind(&id)
        .bind(get::<_, Option<i64>>(row, "account")?)
        .execute(&mut *conn)
        .await
        .map_err(error)?;
        wake_lane(conn, lane.unwrap_or(0)).await?;
        ids.push(new_id);
    }
    Ok(ids)
}

/// The columns [`resend_rows`] reads.
const RESEND_COLUMNS: &str = "d.id, d.event_id, d.url, d.kind, d.delivery, d.lane, d.account";

/// One event's body and deliveries on `conn`, inside the caller's transaction; how many
/// deliveries were new.
async fn enqueue_on(
    conn: &mut SqliteConnection,
    event: &NewEvent,
    lanes: &HashMap<Option<WebhookId>, i64>,
) -> Result<usize, StoreError> {
    if event.deliveries().is_empty() {
        return Ok(0);
    }
    let event_id = event.id().to_string();
    sqlx::query(concat!(
        "INSERT INTO posthook_bodies (event_id, kind, body, created_ms) VALUES (?, ?, ?, ",
        now_ms!(),
        ") ON CONFLICT DO NOTHING"
    ))
    .bind(&event_id)
    .bind(event.kind().as_str())
    .bind(event.body().as_ref())
    .execute(&mut *conn)
    .await
    .map_err(error)?;
    let mut new = 0;
    for chunk in event.deliveries().chunks(INSERT_ROWS) {
        let mut q = sqlx::query(AssertSqlSafe(insert_deliveries_sql(chunk.len())));
        for d in chunk {
            q = q
                .bind(d.delivery.id().to_string())
                .bind(&event_id)
                .bind(sql::webhook_column(d.delivery.webhook_id()))
                .bind(d.url.as_str())
                .bind(event.kind().as_str())
                .bind(DeliveryState::of(&d.delivery).as_str())
                .bind(sql::to_json(&d.delivery)?)
                .bind(lanes.get(&d.delivery.webhook_id()).copied().unwrap_or(0))
                .bind(d.account.map(account_column));
        }
        new += q.execute(&mut *conn).await.map_err(error)?.rows_affected() as usize;
    }
    if new == 0 {
        // Every id was stored already: leave no body of this call behind.
        sqlx::query(
            "DELETE FROM posthook_bodies WHERE event_id = ? AND NOT EXISTS \
                 (SELECT 1 FROM posthook_deliveries d WHERE d.event_id = posthook_bodies.event_id)",
        )
        .bind(&event_id)
        .execute(&mut *conn)
        .await
        .map_err(error)?;
    }
    Ok(new)
}

impl SqliteStore {
    /// The counts of the deliveries where `condition` (on `?1`, bound to `value`) holds,
    /// and the whole store's bodies.
    async fn counts_where(
        &self,
        condition: &'static str,
        value: Option<i64>,
    ) -> Result<StoreCounts, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT state, COUNT(*) AS n FROM posthook_deliveries WHERE {condition} GROUP BY state"
        )))
        .bind(value)
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        let mut counts = StoreCounts::default();
        for row in &rows {
            let name: String = get(row, "state")?;
            counts.add(sql::state("(counts)", &name)?, sql::count(get(row, "n")?));
        }
        let bodies: i64 = sqlx::query("SELECT COUNT(*) AS n FROM posthook_bodies")
            .fetch_one(&self.pool)
            .await
            .map_err(error)
            .and_then(|row| get(&row, "n"))?;
        counts.bodies = sql::count(bodies);
        Ok(counts)
    }
}

/// An account id in a signed 64-bit column (bit for bit).
fn account_column(account: crate::AccountId) -> i64 {
    i64::from_ne_bytes(account.get().to_ne_bytes())
}

/// Rows per multi-row insert (9 parameters each, far below SQLite's limit of 32,766): one
/// statement, prepared once and cached, for every full chunk.
const INSERT_ROWS: usize = 256;

/// The insert of `rows` deliveries, each `(id, event_id, webhook_id, url, kind, state,
/// delivery, lane)`, due at once when pending, finished at once otherwise.
fn insert_deliveries_sql(rows: usize) -> String {
    let mut sql = String::from(
        "WITH v(id, event_id, webhook_id, url, kind, state, delivery, lane, account) AS (VALUES ",
    );
    for i in 0..rows {
        sql.push_str(if i == 0 {
            "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        });
    }
    sql.push_str(concat!(
        ") INSERT INTO posthook_deliveries (id, event_id, webhook_id, url, kind, state, ",
        "delivery, created_ms, due_ms, finished_ms, lane, account) SELECT id, event_id, ",
        "webhook_id, url, kind, state, delivery, ",
        now_ms!(),
        ", CASE WHEN state = 'pending' THEN ",
        now_ms!(),
        " END, CASE WHEN state <> 'pending' THEN ",
        now_ms!(),
        " END, lane, account FROM v WHERE true ON CONFLICT (id) DO NOTHING"
    ));
    sql
}

/// The upsert of `rows` lanes, each `(webhook_id, max_in_flight, rate, ordered, tokens)`,
/// made ready at once, returning each lane's id and webhook.
fn upsert_lanes_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO posthook_lanes (webhook_id, max_in_flight, rate, ordered, tokens, account, tokens_ms, next_ms) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(concat!(
            "(?, ?, ?, ?, ?, ?, ",
            now_ms!(),
            ", ",
            now_ms!(),
            ")"
        ));
    }
    sql.push_str(concat!(
        " ON CONFLICT (webhook_id) DO UPDATE SET max_in_flight = excluded.max_in_flight, ",
        "rate = excluded.rate, ordered = excluded.ordered, ",
        "account = COALESCE(excluded.account, account), ",
        "next_ms = MIN(COALESCE(next_ms, excluded.next_ms), excluded.next_ms) ",
        "RETURNING id, webhook_id, off IS NOT NULL AS off"
    ));
    sql
}

/// Upserts the lanes of a batch's webhooks, each with the latest pacing the batch gives it,
/// and makes them ready; their ids (lane 0, the deliveries without a webhook, is there from
/// the migration), and in `off` those switched off through the webhook store.
async fn upsert_lanes(
    conn: &mut SqliteConnection,
    events: &[NewEvent],
    off: &mut Vec<i64>,
) -> Result<HashMap<Option<WebhookId>, i64>, StoreError> {
    let mut latest: HashMap<Option<WebhookId>, (Pacing, Option<crate::AccountId>)> = HashMap::new();
    for d in events.iter().flat_map(|e| e.deliveries()) {
        let slot = latest
            .entry(d.delivery.webhook_id())
            .or_insert((d.pacing, d.account));
        slot.0 = d.pacing;
        slot.1 = d.account.or(slot.1);
    }
    let mut lanes = HashMap::with_capacity(latest.len());
    if latest.remove(&None).is_some() {
        wake_lane(conn, 0).await?;
        lanes.insert(None, 0);
    }
    let hooks: Vec<(WebhookId, (Pacing, Option<crate::AccountId>))> = latest
        .into_iter()
        .filter_map(|(hook, pacing)| hook.map(|h| (h, pacing)))
        .collect();
    for chunk in hooks.chunks(INSERT_ROWS) {
        let mut q = sqlx::query(AssertSqlSafe(upsert_lanes_sql(chunk.len())));
        for (hook, (pacing, account)) in chunk {
            let (limit, rate, ordered) = sql::pacing_columns(pacing);
            q = q
                .bind(sql::webhook_column(Some(*hook)))
                .bind(limit)
                .bind(rate)
                .bind(ordered)
                .bind(rate.map(f64::from))
                .bind(account.map(account_column));
        }
        for row in q.fetch_all(&mut *conn).await.map_err(error)? {
            let id: i64 = get(&row, "id")?;
            let hook: Option<i64> = get(&row, "webhook_id")?;
            let hook = hook.map(|h| WebhookId::new(u64::from_ne_bytes(h.to_ne_bytes())));
            lanes.insert(hook, id);
            if get::<_, bool>(&row, "off")? {
                off.push(id);
            }
        }
    }
    Ok(lanes)
}

/// Cancels what is pending in `lane`, a lane switched off, with the outcome it holds.
async fn cancel_lane(conn: &mut SqliteConnection, lane: i64) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "UPDATE posthook_deliveries SET ",
        cancel_set!("(SELECT l.off FROM posthook_lanes l WHERE l.id = posthook_deliveries.lane)"),
        " WHERE lane = ?1 AND state = 'pending'"
    ))
    .bind(lane)
    .execute(&mut *conn)
    .await
    .map_err(error)?;
    Ok(())
}

impl SqliteStore {
    /// In the caller's (write) transaction, marks `webhook`'s lane switched off — `off`: the
    /// reason its pending and future deliveries are cancelled for, and cancels what is
    /// pending — or back on (`None`), creating the lane (with `pacing`) if it has none yet.
    pub(crate) async fn mark_lane(
        conn: &mut SqliteConnection,
        webhook: WebhookId,
        pacing: &Pacing,
        off: Option<CancelReason>,
    ) -> Result<(), StoreError> {
        let outcome = off
            .map(|reason| sql::outcome_json(&FinalOutcome::Cancelled { reason }))
            .transpose()?;
        let (limit, rate, ordered) = sql::pacing_columns(pacing);
        let lane: Option<i64> = sqlx::query(concat!(
            "INSERT INTO posthook_lanes (webhook_id, max_in_flight, rate, ordered, tokens, ",
            "tokens_ms, next_ms, off) VALUES (?1, ?2, ?3, ?4, ?5, ",
            now_ms!(),
            ", ",
            now_ms!(),
            ", ?6) ON CONFLICT (webhook_id) DO UPDATE SET off = excluded.off ",
            "WHERE posthook_lanes.off IS NOT excluded.off RETURNING id"
        ))
        .bind(sql::webhook_column(Some(webhook)))
        .bind(limit)
        .bind(rate)
        .bind(ordered)
        .bind(rate.map(f64::from))
        .bind(outcome)
        .fetch_optional(&mut *conn)
        .await
        .map_err(error)
        .and_then(|row| row.map(|row| get(&row, "id")).transpose())?;
        if let (Some(lane), Some(_)) = (lane, off) {
            cancel_lane(conn, lane).await?;
        }
        Ok(())
    }
}

/// The most rounds of one claim (see [`claim_on`]).
const CLAIM_ROUNDS: usize = 3;

/// A claim inside its write transaction, at one `now`: in rounds, the ready lanes (served
/// longest ago first), each leased up to min(limit − live leases, tokens, its share) of its
/// due deliveries (the head only, if due, for an ordered lane), through the per-lane
/// indexes; then each lane's tokens, `served_ms` and `next_ms` (when a claim should look at
/// it again) are stored. A round whose lanes had less work than their shares leaves room
/// for the next.
async fn claim_on(
    conn: &mut SqliteConnection,
    max: usize,
    lease_ms: i64,
    token: ClaimToken,
    per_account: i64,
) -> Result<Vec<SqliteRow>, StoreError> {
    let now: i64 = sqlx::query(concat!("SELECT ", now_ms!(), " AS now"))
        .fetch_one(&mut *conn)
        .await
        .map_err(error)
        .and_then(|row| get(&row, "now"))?;
    let lease_end = now.saturating_add(lease_ms);
    let token = token.to_string();
    let mut rows: Vec<SqliteRow> = Vec::new();
    // Each account's live leases and first lease end, read once per claim (the claim holds
    // the write lock: nobody else leases meanwhile), kept up to date as it leases.
    let mut accounts: HashMap<i64, (i64, Option<i64>)> = HashMap::new();
    for _ in 0..CLAIM_ROUNDS {
        let room = max - rows.len();
        let lanes = sqlx::query(
            "SELECT id, max_in_flight, rate, ordered, tokens, tokens_ms, account FROM posthook_lanes \
             WHERE next_ms <= ? ORDER BY served_ms, id LIMIT ?",
        )
        .bind(now)
        .bind(i64::try_from(room).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(error)?;
        if lanes.is_empty() {
            break;
        }
        let share = room.div_ceil(lanes.len());
        let before = rows.len();
        for lane in &lanes {
            let id: i64 = get(lane, "id")?;
            let ordered: bool = get(lane, "ordered")?;
            let limit: i64 = if ordered {
                1
            } else {
                get(lane, "max_in_flight")?
            };
            let rate: Option<i64> = get(lane, "rate")?;
            let tokens = match rate {
                None => None,
                Some(rate) => {
                    let rate = rate as f64;
                    let tokens: Option<f64> = get(lane, "tokens")?;
                    let at: Option<i64> = get(lane, "tokens_ms")?;
                    let elapsed = (now - at.unwrap_or(now)).max(0) as f64 / 1000.0;
                    Some(rate.min(tokens.unwrap_or(rate) + rate * elapsed))
                }
            };
            let live = sqlx::query(
                "SELECT COUNT(*) AS n, MIN(due_ms) AS first_end FROM posthook_deliveries \
                 WHERE lane = ?1 AND lease_token IS NOT NULL AND due_ms > ?2 \
                 AND state IN ('pending', 'cancelled')",
            )
            .bind(id)
            .bind(now)
            .fetch_one(&mut *conn)
            .await
            .map_err(error)?;
            let (live, first_end): (i64, Option<i64>) =
                (get(&live, "n")?, get(&live, "first_end")?);
            let account: Option<i64> = if id == 0 { None } else { get(lane, "account")? };
            let account_live = match account {
                None => None,
                Some(account) => Some(match accounts.get(&account) {
                    Some(known) => *known,
                    None => {
                        let row = sqlx::query(
                            "SELECT COUNT(*) AS n, MIN(due_ms) AS first_end \
                             FROM posthook_deliveries \
                             INDEXED BY posthook_deliveries_account_leased \
                             WHERE account = ?1 AND lease_token IS NOT NULL AND due_ms > ?2 \
                             AND lane <> 0 AND state IN ('pending', 'cancelled')",
                        )
                        .bind(account)
                        .bind(now)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(error)?;
                        let known = (get(&row, "n")?, get(&row, "first_end")?);
                        accounts.insert(account, known);
                        known
                    }
                }),
            };
            let account_room = account_live.map_or(i64::MAX, |(n, _)| per_account - n);
            let want = (limit - live)
                .min(account_room)
                .min(tokens.map_or(i64::MAX, |t| t.floor() as i64))
                .min(i64::try_from(share).unwrap_or(i64::MAX))
                // The shares, rounded up, can add up to more than the claim's room.
                .min(i64::try_from(max - rows.len()).unwrap_or(i64::MAX))
                .max(0);
            let candidates: Vec<String> = if live >= limit {
                Vec::new()
            } else if ordered {
                let head = sqlx::query(
                    "SELECT id, due_ms FROM posthook_deliveries \
                     INDEXED BY posthook_deliveries_lane_head \
                     WHERE lane = ? AND state = 'pending' ORDER BY rowid LIMIT 1",
                )
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(error)?;
                match head {
                    Some(head)
                        if get::<_, Option<i64>>(&head, "due_ms")?.is_some_and(|d| d <= now) =>
                    {
                        vec![get(&head, "id")?]
                    }
                    _ => Vec::new(),
                }
            } else {
                sqlx::query(
                    "SELECT id FROM posthook_deliveries WHERE lane = ? AND state = 'pending' \
                     AND due_ms <= ? ORDER BY due_ms LIMIT ?",
                )
                .bind(id)
                .bind(now)
                .bind(want + 1)
                .fetch_all(&mut *conn)
                .await
                .map_err(error)?
                .iter()
                .map(|row| get(row, "id"))
                .collect::<Result<_, _>>()?
            };
            let take = usize::try_from(want).unwrap_or(0).min(candidates.len());
            let more = candidates.len() > take;
            if take > 0 {
                let query = format!(
                    "UPDATE posthook_deliveries SET lapsed = (lease_token IS NOT NULL), \
                     lease_token = ?, due_ms = ? WHERE id IN ({}) \
                     RETURNING id, event_id, url, kind, delivery, lapsed, ? - created_ms AS age_ms",
                    sql::placeholders(take)
                );
                let mut q = sqlx::query(AssertSqlSafe(query))
                    .bind(&token)
                    .bind(lease_end);
                for c in &candidates[..take] {
                    q = q.bind(c);
                }
                rows.extend(q.bind(now).fetch_all(&mut *conn).await.map_err(error)?);
            }
            let taken = take as i64;
            let left = tokens.map(|t| t - taken as f64);
            let leased_end = (taken > 0).then_some(lease_end);
            let account_full = match (account, account_live) {
                (Some(account), Some((n, first))) => {
                    let now_live = (n + taken, min_some(first, leased_end));
                    accounts.insert(account, now_live);
                    now_live.0 >= per_account
                }
                _ => false,
            };
            // Due work, but no slot left in its account: it waits for the account's first
            // lease end, or for a finish in the account (which wakes the lanes held).
            let held = account_full && more && live + taken < limit;
            let next = if live + taken >= limit {
                min_some(first_end, leased_end)
            } else if held {
                account
                    .and_then(|a| accounts.get(&a))
                    .and_then(|(_, first)| *first)
            } else if more {
                match (left, rate) {
                    (Some(left), Some(rate)) if left < 1.0 => {
                        let wait = ((1.0 - left) / rate as f64 * 1000.0).ceil() as i64;
                        Some(now + wait.max(1))
                    }
                    _ => Some(now),
                }
            } else {
                // Its next due delivery, or a lease end (the new ones included).
                sqlx::query(
                    "SELECT MIN(due_ms) AS next FROM posthook_deliveries \
                     WHERE lane = ? AND state = 'pending' AND due_ms > ?",
                )
                .bind(id)
                .bind(now)
                .fetch_one(&mut *conn)
                .await
                .map_err(error)
                .and_then(|row| get::<_, Option<i64>>(&row, "next"))?
            };
            sqlx::query(
                "UPDATE posthook_lanes SET tokens = ?, tokens_ms = ?, next_ms = ?, held = ?, \
                 served_ms = CASE WHEN ? THEN ? ELSE served_ms END WHERE id = ?",
            )
            .bind(left)
            .bind(now)
            .bind(next)
            .bind(held)
            .bind(taken > 0)
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(error)?;
        }
        if rows.len() == before || rows.len() >= max {
            break;
        }
    }
    Ok(rows)
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn millis(d: Duration) -> i64 {
    micros(d) / 1000 + i64::from(d.subsec_micros() % 1000 != 0)
}

#[async_trait::async_trait]
impl DeliveryStore for SqliteStore {
    async fn enqueue(&self, event: &NewEvent) -> Result<usize, StoreError> {
        self.enqueue_all(std::slice::from_ref(event)).await
    }

    async fn enqueue_all(&self, events: &[NewEvent]) -> Result<usize, StoreError> {
        if events.iter().all(|e| e.deliveries().is_empty()) {
            return Ok(0);
        }
        // One write transaction, one commit, for the whole batch.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error)?;
        let mut off = Vec::new();
        let lanes = upsert_lanes(&mut tx, events, &mut off).await?;
        let mut new = 0usize;
        for event in events {
            new = new.saturating_add(enqueue_on(&mut tx, event, &lanes).await?);
        }
        for lane in off {
            // Switched off or deleted through the webhook store: stored as ended, with the
            // outcome the lane holds.
            cancel_lane(&mut tx, lane).await?;
        }
        tx.commit().await.map_err(error)?;
        Ok(new)
    }

    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let token = ClaimToken::random()?;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error)?;
        let per_account = i64::from(self.max_in_flight_per_account.get());
        let rows = claim_on(
            &mut tx,
            max,
            millis(bounded_lease(lease)),
            token,
            per_account,
        )
        .await?;
        tx.commit().await.map_err(error)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut events: Vec<String> = Vec::new();
        for row in &rows {
            let event: String = get(row, "event_id")?;
            if !events.contains(&event) {
                events.push(event);
            }
        }
        let mut bodies: HashMap<String, Bytes> = HashMap::with_capacity(events.len());
        for chunk in events.chunks(500) {
            let query = format!(
                "SELECT event_id, body FROM posthook_bodies WHERE event_id IN ({})",
                sql::placeholders(chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(query));
            for e in chunk {
                q = q.bind(e);
            }
            for row in q.fetch_all(&self.pool).await.map_err(error)? {
                let body: Vec<u8> = get(&row, "body")?;
                bodies.insert(get(&row, "event_id")?, Bytes::from(body));
            }
        }
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = get(row, "id")?;
            let event: String = get(row, "event_id")?;
            let url: String = get(row, "url")?;
            let kind: String = get(row, "kind")?;
            let json: String = get(row, "delivery")?;
            let parts = sql::parts(&id, &event, &url, &kind, &json)?;
            let body = bodies
                .get(&event)
                .cloned()
                .ok_or_else(|| StoreError::corrupt(&event, "the event's body is missing"))?;
            let age: i64 = get(row, "age_ms")?;
            let lapsed: bool = get(row, "lapsed")?;
            claimed.push(Claimed::new(
                Claim::new(parts.delivery.id(), token),
                parts.delivery,
                parts.url,
                body,
                parts.kind,
                sql::span_us(age.saturating_mul(1000)),
                lapsed,
            ));
        }
        Ok(claimed)
    }

    async fn finish(
        &self,
        claim: &Claim,
        delivery: &Delivery,
        step: &Step,
    ) -> Result<Finished, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error)?;
        let finished = finish_on(&mut tx, claim, delivery, step).await?;
        tx.commit().await.map_err(error)?;
        Ok(finished)
    }

    async fn finish_all(&self, batch: &[Finish]) -> Vec<Result<Finished, StoreError>> {
        // One write transaction, one commit, for the whole batch.
        let mut tx = match self.pool.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => tx,
            Err(e) => return vec![Err(error(e)); batch.len()],
        };
        let mut results = Vec::with_capacity(batch.len());
        for f in batch {
            results.push(finish_on(&mut tx, &f.claim, &f.delivery, &f.step).await);
        }
        if let Err(e) = tx.commit().await {
            let e = error(e);
            return results.into_iter().map(|_| Err(e.clone())).collect();
        }
        results
    }

    async fn delivery(&self, id: DeliveryId) -> Result<DeliveryRecord, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} WHERE d.id = ?"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(error)?
        .ok_or(StoreError::UnknownDelivery(id))?;
        record(&row)
    }

    async fn recent(
        &self,
        webhook: WebhookId,
        page: Page,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} WHERE d.webhook_id = ? \
             ORDER BY d.created_ms DESC, d.rowid DESC LIMIT ? OFFSET ?"
        )))
        .bind(sql::webhook_column(Some(webhook)))
        .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(page.offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        rows.iter().map(record).collect()
    }

    async fn counts(&self, webhook: Option<WebhookId>) -> Result<StoreCounts, StoreError> {
        // Two statements, so that one webhook's count uses its index.
        match webhook {
            None => self.counts_where("?1 IS NULL", None).await,
            Some(_) => {
                self.counts_where("webhook_id = ?1", sql::webhook_column(webhook))
                    .await
            }
        }
    }

    async fn recent_for_account(
        &self,
        account: crate::AccountId,
        page: Page,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} WHERE d.account = ? \
             ORDER BY d.created_ms DESC, d.rowid DESC LIMIT ? OFFSET ?"
        )))
        .bind(account_column(account))
        .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(page.offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        rows.iter().map(record).collect()
    }

    async fn counts_for_account(
        &self,
        account: crate::AccountId,
    ) -> Result<StoreCounts, StoreError> {
        self.counts_where("account = ?1", Some(account_column(account)))
            .await
    }

    async fn cancel(&self, webhook: WebhookId, reason: CancelReason) -> Result<u64, StoreError> {
        let outcome = sql::outcome_json(&FinalOutcome::Cancelled { reason })?;
        // A lease that has not run out is kept: its attempt may be in flight, and its
        // finish records it.
        let done = sqlx::query(concat!(
            "UPDATE posthook_deliveries SET ",
            cancel_set!("?1"),
            " WHERE lane = (SELECT id FROM posthook_lanes WHERE webhook_id = ?2) ",
            "AND state = 'pending'"
        ))
        .bind(outcome)
        .bind(sql::webhook_column(Some(webhook)))
        .execute(&self.pool)
        .await
        .map_err(error)?;
        Ok(done.rows_affected())
    }

    async fn resend(&self, id: DeliveryId) -> Result<DeliveryId, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error)?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RESEND_COLUMNS} FROM posthook_deliveries d WHERE d.id = ?"
        )))
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(error)?
        .ok_or(StoreError::UnknownDelivery(id))?;
        let new = resend_rows(&mut tx, std::slice::from_ref(&row)).await?;
        tx.commit().await.map_err(error)?;
        new.into_iter()
            .next()
            .ok_or_else(|| StoreError::database("resend inserted nothing"))
    }

    async fn recover(
        &self,
        webhook: WebhookId,
        since: SystemTime,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        let since_ms = since
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| micros(d) / 1000);
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error)?;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RESEND_COLUMNS} FROM posthook_deliveries d \
             INDEXED BY posthook_deliveries_recoverable \
             WHERE d.webhook_id = ? AND d.state IN ('failed', 'gave_up', 'cancelled') \
             AND d.finished_ms >= ? AND NOT EXISTS (SELECT 1 FROM posthook_deliveries c \
             WHERE c.resent_from = d.id) \
             AND NOT (d.state = 'cancelled' AND d.lease_token IS NOT NULL AND d.due_ms > {now}) \
             ORDER BY d.created_ms, d.rowid",
            now = now_ms!()
        )))
        .bind(sql::webhook_column(Some(webhook)))
        .bind(since_ms)
        .fetch_all(&mut *tx)
        .await
        .map_err(error)?;
        let new = resend_rows(&mut tx, &rows).await?;
        tx.commit().await.map_err(error)?;
        Ok(new)
    }

    async fn prune(&self, older_than: Duration) -> Result<Pruned, StoreError> {
        let age = millis(older_than);
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error)?;
        let deliveries = sqlx::query(concat!(
            "DELETE FROM posthook_deliveries WHERE state <> 'pending' AND finished_ms <= ",
            now_ms!(),
            " - ?"
        ))
        .bind(age)
        .execute(&mut *tx)
        .await
        .map_err(error)?
        .rows_affected();
        let bodies = sqlx::query(concat!(
            "DELETE FROM posthook_bodies WHERE created_ms <= ",
            now_ms!(),
            " - ? AND NOT EXISTS (SELECT 1 FROM posthook_deliveries d ",
            "WHERE d.event_id = posthook_bodies.event_id)"
        ))
        .bind(age)
        .execute(&mut *tx)
        .await
        .map_err(error)?
        .rows_affected();
        tx.commit().await.map_err(error)?;
        Ok(Pruned { deliveries, bodies })
    }
}
