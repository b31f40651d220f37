//! [`PostgresStore`]: the store for many workers on many machines (feature `postgres`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};

use super::sql::{self, PacingColumns, error, get};
use super::{
    Claim, ClaimToken, Claimed, DeliveryRecord, DeliveryState, DeliveryStore, Finish, Finished,
    NewEvent, Page, Pruned, StoreCounts, StoreError, bounded_lease, check_finish, micros,
};
use crate::{CancelReason, Delivery, DeliveryId, FinalOutcome, Step, WebhookId};

/// The schema, one entry per version; applied in order by [`PostgresStore::migrate`].
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE posthook_bodies (
        event_id text PRIMARY KEY,
        kind text NOT NULL,
        body bytea NOT NULL,
        created_at timestamptz NOT NULL
    );
    CREATE TABLE posthook_deliveries (
        seq bigserial NOT NULL,
        id text PRIMARY KEY,
        event_id text NOT NULL REFERENCES posthook_bodies (event_id),
        webhook_id bigint,
        url text NOT NULL,
        kind text NOT NULL,
        state text NOT NULL,
        delivery jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        due_at timestamptz,
        lease_token text,
        lapsed boolean NOT NULL DEFAULT false,
        finished_at timestamptz
    );
    CREATE INDEX posthook_deliveries_due ON posthook_deliveries (due_at) WHERE state = 'pending';
    CREATE INDEX posthook_deliveries_webhook ON posthook_deliveries (webhook_id, created_at, seq);
    CREATE INDEX posthook_deliveries_event ON posthook_deliveries (event_id);
    CREATE INDEX posthook_deliveries_finished ON posthook_deliveries (finished_at)
        WHERE state <> 'pending';",
    // v2: pacing. One lane per webhook (lane 0, unlimited: the deliveries without a webhook), with the
    // pacing of its latest enqueue, its token bucket, and when a claim should look at it
    // next; each delivery points at its lane. Claims go lane by lane through the per-lane
    // indexes, never through one webhook's backlog (so the global due index goes).
    "CREATE TABLE posthook_lanes (
        id bigserial PRIMARY KEY,
        webhook_id bigint UNIQUE,
        max_in_flight integer NOT NULL,
        rate integer,
        ordered boolean NOT NULL DEFAULT false,
        tokens double precision,
        tokens_at timestamptz,
        next_at timestamptz,
        served_at timestamptz NOT NULL DEFAULT '-infinity'
    );
    CREATE INDEX posthook_lanes_ready ON posthook_lanes (next_at);
    INSERT INTO posthook_lanes (id, webhook_id, max_in_flight, next_at) VALUES (0, NULL, 2147483647, now());
    INSERT INTO posthook_lanes (webhook_id, max_in_flight, next_at)
        SELECT DISTINCT webhook_id, 16, now() FROM posthook_deliveries WHERE webhook_id IS NOT NULL;
    ALTER TABLE posthook_deliveries ADD COLUMN lane bigint;
    UPDATE posthook_deliveries d SET lane = COALESCE(
        (SELECT l.id FROM posthook_lanes l WHERE l.webhook_id = d.webhook_id), 0);
    DROP INDEX posthook_deliveries_due;
    CREATE INDEX posthook_deliveries_lane_due ON posthook_deliveries (lane, due_at)
        WHERE state = 'pending';
    CREATE INDEX posthook_deliveries_lane_head ON posthook_deliveries (lane, seq)
        WHERE state = 'pending';
    CREATE INDEX posthook_deliveries_lane_leased ON posthook_deliveries (lane, due_at)
        WHERE state = 'pending' AND lease_token IS NOT NULL;
    CREATE TABLE posthook_lane_wakes (lane bigint NOT NULL);
    CREATE INDEX posthook_lane_wakes_lane ON posthook_lane_wakes (lane);",
    // v3: resends. A resent delivery points at the one it resends (so that recover resends
    // nothing twice), and the ended deliveries that recover may resend are found per
    // webhook by when they ended.
    "ALTER TABLE posthook_deliveries ADD COLUMN resent_from text;
    CREATE INDEX posthook_deliveries_resent ON posthook_deliveries (resent_from)
        WHERE resent_from IS NOT NULL;
    CREATE INDEX posthook_deliveries_recoverable ON posthook_deliveries (webhook_id, finished_at)
        WHERE state IN ('failed', 'gave_up', 'cancelled');",
    // v4: the webhook store. Every account's webhooks (a sequence: an id is never given
    // twice), the columns its filters read, and the change feed (written under one lock, so
    // that its numbers follow commit order).
    "CREATE TABLE posthook_webhooks (
        id bigserial PRIMARY KEY,
        account bigint NOT NULL,
        version bigint NOT NULL,
        name text NOT NULL,
        url text NOT NULL,
        events text NOT NULL,
        listid bigint NOT NULL,
        active boolean NOT NULL,
        webhook text NOT NULL,
        settings text NOT NULL,
        cdate text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX posthook_webhooks_account ON posthook_webhooks (account, id);
    CREATE TABLE posthook_webhook_changes (
        seq bigserial PRIMARY KEY,
        account bigint NOT NULL,
        webhook_id bigint NOT NULL,
        kind text NOT NULL,
        version bigint NOT NULL,
        at timestamptz NOT NULL
    );",
    // v5: the account a delivery was published for, and an account's log.
    "ALTER TABLE posthook_deliveries ADD COLUMN account bigint;
    CREATE INDEX posthook_deliveries_account ON posthook_deliveries (account, created_at, seq)
        WHERE account IS NOT NULL;",
    // v6: a delivery cancelled while its attempt is in flight still holds its lease, and it
    // counts against its webhook's in-flight limit until the attempt finishes.
    "CREATE INDEX posthook_deliveries_lane_cancelled_leased ON posthook_deliveries (lane, due_at)
        WHERE state = 'cancelled' AND lease_token IS NOT NULL;",
    // v7: a webhook switched off or deleted through the webhook store: its lane holds the
    // final outcome (JSON) that every delivery enqueued to it from then on gets, and claims
    // take nothing from it.
    "ALTER TABLE posthook_lanes ADD COLUMN off text;",
    // v8: the per-account in-flight limit. A lane knows its webhook's account (from the
    // latest enqueue that named one; an existing lane from its latest delivery); one row
    // per account, which the claim that leases for the account locks (`SKIP LOCKED`) and
    // touches, so that no concurrent claim counts the account's leases from a stale
    // snapshot; `held`: a claim left the lane waiting for a free slot of its account (a
    // finish in the account wakes it). The live leases of an account are counted through a
    // small index of the leased deliveries.
    "ALTER TABLE posthook_lanes ADD COLUMN account bigint;
    ALTER TABLE posthook_lanes ADD COLUMN held boolean NOT NULL DEFAULT false;
    UPDATE posthook_lanes l SET account = (SELECT d.account FROM posthook_deliveries d
        WHERE d.webhook_id = l.webhook_id AND d.account IS NOT NULL
        ORDER BY d.created_at DESC, d.seq DESC LIMIT 1) WHERE l.id <> 0;
    CREATE TABLE posthook_accounts (account bigint PRIMARY KEY, claimed_at timestamptz);
    INSERT INTO posthook_accounts (account)
        SELECT DISTINCT account FROM posthook_lanes WHERE account IS NOT NULL;
    CREATE INDEX posthook_lanes_account_held ON posthook_lanes (account) WHERE held;
    CREATE INDEX posthook_deliveries_account_leased ON posthook_deliveries (account, due_at)
        WHERE lease_token IS NOT NULL;",
    // v9: a lane's live leases, pending or cancelled in flight, read from one index in the
    // order they end, so that a claim counts them with an index scan that stops at the
    // lane's limit (and marks the entries of the updated rows it steps over as dead, which
    // a bitmap scan of the two per-state indexes never did: every claim rechecked every
    // delivery leased since the last VACUUM, 5 ms a lane at 8,000 of them).
    // Only a pending delivery, or one cancelled while its attempt is in flight, holds a
    // lease token (the batch finish relies on it): checked for every row written from now
    // on (`NOT VALID`: an existing table is not scanned for it).
    "CREATE INDEX IF NOT EXISTS posthook_deliveries_lane_live ON posthook_deliveries (lane, due_at)
        WHERE lease_token IS NOT NULL;
    DROP INDEX IF EXISTS posthook_deliveries_lane_leased;
    DROP INDEX IF EXISTS posthook_deliveries_lane_cancelled_leased;
    ALTER TABLE posthook_deliveries DROP CONSTRAINT IF EXISTS posthook_deliveries_leased_state;
    ALTER TABLE posthook_deliveries ADD CONSTRAINT posthook_deliveries_leased_state
        CHECK (lease_token IS NULL OR state IN ('pending', 'cancelled')) NOT VALID;",
];

/// The wakes a finish leaves (`f`: the deliveries whose lease it ended, with their `lane`):
/// one for each lane, which has a free slot, and one for each lane of the same account that
/// a claim held back for want of a slot of the account.
macro_rules! freed {
    () => {
        "freed AS (INSERT INTO posthook_lane_wakes (lane) SELECT lane FROM f UNION \
         SELECT h.id FROM posthook_lanes h WHERE h.held AND h.account IN \
         (SELECT l.account FROM posthook_lanes l WHERE l.id IN (SELECT lane FROM f)) \
         RETURNING lane)"
    };
}

/// A key for `pg_advisory_xact_lock`, with the webhook's id: recovers of one webhook run one
/// at a time, so that none resends what another is resending.
const RECOVER_LOCK: i64 = 0x0072_6563_6f76_6572; // "recover"

/// The `NOTIFY` channel of new deliveries.
const CHANNEL: &str = "posthook_deliveries";

/// A key for `pg_advisory_xact_lock`: migrations of concurrent workers run one at a time.
const MIGRATION_LOCK: i64 = 0x706f_7374_686f_6f6b; // "posthook"

/// The `SET` list that cancels a pending delivery `d` with the final outcome `$outcome`
/// (JSON text): a lease that has not run out is kept (its attempt may be in flight, and its
/// finish records it).
macro_rules! cancel_set {
    ($outcome:literal) => {
        concat!(
            "state = 'cancelled', delivery = jsonb_set(d.delivery, '{outcome}', ",
            $outcome,
            "::jsonb), lapsed = false, finished_at = now(), ",
            "lease_token = CASE WHEN d.due_at > now() THEN d.lease_token END, ",
            "due_at = CASE WHEN d.lease_token IS NOT NULL AND d.due_at > now() THEN d.due_at END"
        )
    };
}

/// `timestamptz` as microseconds since the epoch.
macro_rules! us {
    ($e:literal) => {
        concat!("(EXTRACT(EPOCH FROM ", $e, ") * 1000000)::int8")
    };
}

const RECORD_COLUMNS: &str = concat!(
    "d.id, d.event_id, d.url, d.kind, d.state, d.delivery::text AS delivery, d.account, ",
    us!("d.created_at"),
    " AS created_us, ",
    us!("d.due_at"),
    " AS due_us, ",
    us!("d.finished_at"),
    " AS finished_us, (d.lease_token IS NOT NULL AND d.due_at > now()) AS leased, ",
    "CASE WHEN d.state = 'pending' AND l.ordered THEN (SELECT h.id FROM posthook_deliveries h ",
    "WHERE h.lane = d.lane AND h.state = 'pending' ORDER BY h.seq LIMIT 1) END AS head ",
    "FROM posthook_deliveries d LEFT JOIN posthook_lanes l ON l.id = d.lane"
);

/// The store for many workers on many machines: PostgreSQL (feature `postgres`; sqlx,
/// no TLS — run it on a trusted network or through a local proxy).
///
/// - **Claims** are one statement per round (at most three rounds), lane by lane: the
///   webhooks whose turn has come (`posthook_lanes`, locked `FOR UPDATE SKIP LOCKED`, the
///   one served longest ago first), each with an equal share of the claim within its
///   [`Pacing`](crate::Pacing) (in-flight limit counted from the live leases in the
///   database, token bucket, ordered head), through per-webhook partial indexes: workers
///   anywhere never wait on each other, never get the same delivery while its lease runs,
///   and one webhook's backlog is never scanned (a claim reads at most its share, plus one,
///   of each lane's due deliveries).
/// - **Time** is the database's `now()`: leases and due times do not depend on the
///   workers' clocks.
/// - **Transactional outbox**: [`enqueue_in`](PostgresStore::enqueue_in) writes an event's
///   deliveries inside *your* open transaction, so the business change and its webhooks
///   commit or roll back together.
/// - **Wake-ups across processes**: every enqueue sends a `NOTIFY` at commit;
///   [`listen`](PostgresStore::listen) turns it into a [`Wakeup`](crate::Wakeup) for the
///   workers of a process, so they need not wait for their next poll.
/// - **Short transactions**: no transaction outlives a statement or two; none is held
///   across an HTTP call (the worker claims, lets go, sends, then finishes).
/// - **NUL in text**: a delivery is stored as `jsonb`, which cannot hold the character NUL
///   (`U+0000`): a NUL in an attempt's error message or a failure's reason is stored, and
///   read back, as `U+FFFD` (`�`). Every other character is kept as it is, and the finish
///   never fails for it. (The memory and SQLite stores keep NUL too.)
///
/// ```no_run
/// use posthook::{PostgresOptions, PostgresStore};
///
/// # async fn run() -> Result<(), posthook::StoreError> {
/// let store = PostgresStore::connect("postgres://app@127.0.0.1/app").await?;
/// // Or: a bigger pool, and the tables in a schema of their own.
/// let options = PostgresOptions::new().max_connections(32).schema("webhooks");
/// let store = PostgresStore::connect_with("postgres://app@127.0.0.1/app", options).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The most webhooks an account may have (its [`WebhookStore`](crate::WebhookStore)).
    max_webhooks: u32,
    /// The most deliveries of one account leased at once.
    max_in_flight_per_account: NonZeroU32,
}

/// How [`PostgresStore::connect_with`] sets up its pool: its size, how long to wait for a
/// connection, and the schema that holds posthook's tables.
///
/// | option | default |
/// |---|---|
/// | [`max_connections`](PostgresOptions::max_connections) | 10 |
/// | [`acquire_timeout`](PostgresOptions::acquire_timeout) | 10 s |
/// | [`schema`](PostgresOptions::schema) | none: the connection's own `search_path` (normally `public`) |
/// | [`jit`](PostgresOptions::jit) | off: PostgreSQL's JIT compiler is not used by posthook's connections |
/// | [`bitmap_scans`](PostgresOptions::bitmap_scans) | off: posthook's statements are planned without bitmap scans |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// The most connections the pool opens (at least 1). Each worker's claim and finish,
    /// each `publish` commit, and [`PostgresStore::listen`] (one, for as long as it runs)
    /// take one while they run.
    pub max_connections: u32,
    /// How long a call waits for a free connection before it fails with
    /// [`StoreError::Unavailable`].
    pub acquire_timeout: Duration,
    /// The schema that holds the tables, created if it does not exist; every connection of
    /// the pool gets it as its only `search_path`. `None`: the connection's own
    /// `search_path`. The name is taken as it is (quoted: case and any character kept).
    /// Two stores on two schemas of one database are two separate queues (their
    /// [`listen`](PostgresStore::listen) bells are shared: a worker may wake for the other
    /// schema's work, and then claims nothing).
    pub schema: Option<String>,
    /// Whether PostgreSQL may JIT-compile posthook's statements (its `jit` setting, for
    /// this pool's connections). Off by default: once a store holds a backlog of some
    /// 100,000 deliveries the planner's cost estimate for the claim passes `jit_above_cost`
    /// and every claim is compiled again, which costs far more than it saves. Measured on
    /// PostgreSQL 15 (`cargo bench --bench claim_backlog`, 100,000 pending deliveries,
    /// claims of 100): median 328 ms a claim with JIT, 7.9–12.5 ms without.
    pub jit: bool,
    /// Whether PostgreSQL may plan posthook's statements with bitmap scans (its
    /// `enable_bitmapscan` setting, for this pool's connections). Off by default. Every
    /// read posthook makes is a lookup by key in one of its indexes, and its rows are
    /// updated at every claim and finish; a bitmap scan, unlike an index scan, neither
    /// stops at a `LIMIT` nor marks the index entries of dead row versions as dead, so it
    /// rechecks each version written since the last `VACUUM`. Measured in the pipeline
    /// bench (PostgreSQL 15, autovacuum on): a lane's live-lease count read 1,200–8,000
    /// index entries (1–5 ms a lane, each claim), the lease combined the primary key with
    /// a 39,000-entry index, and a finish of 4 deliveries read 12,527 rows; 1,128
    /// deliveries/s end to end with bitmap scans, 2,386/s without.
    pub bitmap_scans: bool,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions::new()
    }
}

impl PostgresOptions {
    /// The defaults: 10 connections, a 10 s wait for one, no schema of its own, no JIT, no
    /// bitmap scans.
    pub const fn new() -> PostgresOptions {
        PostgresOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            schema: None,
            jit: false,
            bitmap_scans: false,
        }
    }

    /// With a pool of up to `max_connections` connections (`0` counts as 1).
    #[must_use]
    pub fn max_connections(mut self, max_connections: u32) -> PostgresOptions {
        self.max_connections = max_connections.max(1);
        self
    }

    /// Waiting at most `timeout` for a free connection.
    #[must_use]
    pub fn acquire_timeout(mut self, timeout: Duration) -> PostgresOptions {
        self.acquire_timeout = timeout;
        self
    }

    /// With the tables in `schema` (created if it does not exist).
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> PostgresOptions {
        self.schema = Some(schema.into());
        self
    }

    /// Lets PostgreSQL JIT-compile posthook's statements (`true`), or not (`false`, the
    /// default; see [`jit`](PostgresOptions::jit)).
    #[must_use]
    pub fn with_jit(mut self, jit: bool) -> PostgresOptions {
        self.jit = jit;
        self
    }

    /// Lets PostgreSQL plan posthook's statements with bitmap scans (`true`), or not
    /// (`false`, the default; see [`bitmap_scans`](PostgresOptions::bitmap_scans)).
    #[must_use]
    pub fn with_bitmap_scans(mut self, bitmap_scans: bool) -> PostgresOptions {
        self.bitmap_scans = bitmap_scans;
        self
    }
}

/// `name` as a quoted SQL identifier.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl PostgresStore {
    /// Connects a pool to `url` with the default [`PostgresOptions`] (up to 10
    /// connections, waiting at most 10 s for one, the connection's own `search_path`) and
    /// brings the schema up to date ([`migrate`](PostgresStore::migrate)).
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with(url, PostgresOptions::new()).await
    }

    /// Connects a pool to `url` as `options` say, creates the [schema](PostgresOptions::schema)
    /// if there is one and it does not exist yet, and brings the tables up to date
    /// ([`migrate`](PostgresStore::migrate)).
    ///
    /// (A URL can also set the `search_path` itself, with
    /// `?options=-c%20search_path%3Dwebhooks`; the schema must then exist. `options.schema`
    /// wins over it.)
    pub async fn connect_with(
        url: &str,
        options: PostgresOptions,
    ) -> Result<PostgresStore, StoreError> {
        let mut connect = PgConnectOptions::from_str(url).map_err(error)?;
        if let Some(schema) = &options.schema {
            connect = connect.options([("search_path", quote_identifier(schema))]);
        }
        if !options.jit {
            connect = connect.options([("jit", "off")]);
        }
        if !options.bitmap_scans {
            connect = connect.options([("enable_bitmapscan", "off")]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(error)?;
        let store = PostgresStore::from_pool(pool);
        if let Some(schema) = &options.schema {
            store.create_schema(schema).await?;
        }
        store.migrate().await?;
        Ok(store)
    }

    /// Creates `schema` unless it exists (one connection at a time, under the migration
    /// lock; a role without the right to create schemas can use one made for it).
    async fn create_schema(&self, schema: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        let exists: bool =
            sqlx::query("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS e")
                .bind(schema)
                .fetch_one(&mut *tx)
                .await
                .map_err(error)
                .and_then(|row| get(&row, "e"))?;
        if !exists {
            let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_identifier(schema));
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .map_err(error)?;
        }
        tx.commit().await.map_err(error)
    }

    /// A store over a pool you configured (e.g. with a `search_path`). Call
    /// [`migrate`](PostgresStore::migrate) once before use.
    ///
    /// Give the pool's connections `jit = off` and `enable_bitmapscan = off`, as
    /// [`connect`](PostgresStore::connect) does (`PgConnectOptions::options([("jit",
    /// "off"), ("enable_bitmapscan", "off")])`), unless the server has them off already:
    /// with JIT, a claim at a large backlog is compiled every time (see
    /// [`PostgresOptions::jit`]); with bitmap scans, claims and finishes recheck every row
    /// version written since the last `VACUUM` (see [`PostgresOptions::bitmap_scans`]).
    pub fn from_pool(pool: PgPool) -> PostgresStore {
        PostgresStore {
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
    /// counted over every lease in the database (every worker of every process: the claim
    /// that leases for an account locks its row in `posthook_accounts`); the due deliveries
    /// of other accounts are claimed meanwhile. It counts the deliveries to a webhook
    /// published for an account ([`NewDelivery::account`](crate::NewDelivery::account)).
    /// Each store value applies its own setting to its own claims: give every process the
    /// same one.
    #[must_use]
    pub fn with_max_in_flight_per_account(mut self, max: NonZeroU32) -> Self {
        self.max_in_flight_per_account = max;
        self
    }

    /// The most deliveries of one account a claim leases at once
    /// ([`with_max_in_flight_per_account`](PostgresStore::with_max_in_flight_per_account)).
    pub fn max_in_flight_per_account(&self) -> NonZeroU32 {
        self.max_in_flight_per_account
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or updates the tables in the connection's current schema, recording the
    /// version in `posthook_schema_version`; does nothing when they are current. Concurrent
    /// calls (many workers starting at once) wait for each other. A schema newer than this
    /// library is [`StoreError::SchemaTooNew`].
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        sqlx::query("CREATE TABLE IF NOT EXISTS posthook_schema_version (version bigint NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        let found: i64 =
            sqlx::query("SELECT COALESCE(MAX(version), 0)::int8 AS v FROM posthook_schema_version")
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
            sqlx::query("INSERT INTO posthook_schema_version (version) VALUES ($1)")
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(error)?;
        }
        tx.commit().await.map_err(error)
    }

    /// Rings `wakeup` whenever deliveries are enqueued anywhere on this database: every
    /// enqueue that stores new deliveries sends a `NOTIFY posthook_deliveries` (at commit),
    /// and this `LISTEN`s for it on a connection of its own (taken from the pool). Hand the
    /// same [`Wakeup`](crate::Wakeup) to the workers of this process
    /// ([`Worker::wakeup`](crate::Worker::wakeup)) and a new event goes out within
    /// milliseconds even when it was published by another process; the idle poll remains
    /// the fallback. Runs until the listening fails for good (a lost connection is
    /// reconnected, and the bell rung, since notifications may have been missed meanwhile);
    /// spawn it on a task:
    ///
    /// ```no_run
    /// # async fn run(store: posthook::PostgresStore, wakeup: posthook::Wakeup) {
    /// tokio::spawn(async move { store.listen(wakeup).await });
    /// # }
    /// ```
    pub async fn listen(&self, wakeup: crate::Wakeup) -> StoreError {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(listener) => listener,
            Err(e) => return error(e),
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            return error(e);
        }
        wakeup.notify(); // whatever was enqueued before we listened
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => wakeup.notify(),
                Ok(None) => wakeup.notify(), // reconnecting: some may have been missed
                Err(e) => return error(e),
            }
        }
    }

    /// [`DeliveryStore::enqueue`] on your connection, inside the transaction you have
    /// open on it: the transactional outbox. The deliveries exist once you commit, and
    /// never if you roll back. (`&mut *tx` gives the connection of a
    /// `sqlx::Transaction`.) Returns how many deliveries were new.
    ///
    /// ```no_run
    /// # async fn run(pool: sqlx::PgPool, event: posthook::NewEvent) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = pool.begin().await?;
    /// sqlx::query("UPDATE contacts SET unsubscribed = true WHERE id = $1").bind(7_i64).execute(&mut *tx).await?;
    /// posthook::PostgresStore::enqueue_in(&mut tx, &event).await?;
    /// tx.commit().await?; // the change and its webhooks, together
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_in(
        conn: &mut PgConnection,
        event: &NewEvent,
    ) -> Result<usize, StoreError> {
        PostgresStore::enqueue_all_in(conn, std::slice::from_ref(event)).await
    }

    /// [`enqueue_in`](PostgresStore::enqueue_in) for many events: every body in one
    /// multi-row insert, the deliveries in multi-row inserts of up to
    /// 4,096 rows (`UNNEST` over arrays, prepared once per connection), one `NOTIFY`.
    /// Returns how many deliveries were new, in all.
    pub async fn enqueue_all_in(
        conn: &mut PgConnection,
        events: &[NewEvent],
    ) -> Result<usize, StoreError> {
        let events: Vec<&NewEvent> = events
            .iter()
            .filter(|e| !e.deliveries().is_empty())
            .collect();
        if events.is_empty() {
            return Ok(0);
        }
        let event_ids: Vec<String> = events.iter().map(|e| e.id().to_string()).collect();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind().as_str()).collect();
        let bodies: Vec<&[u8]> = events.iter().map(|e| e.body().as_ref()).collect();
        sqlx::query(
            "INSERT INTO posthook_bodies (event_id, kind, body, created_at) \
             SELECT b.event_id, b.kind, b.body, now() \
             FROM UNNEST($1::text[], $2::text[], $3::bytea[]) AS b(event_id, kind, body) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&event_ids)
        .bind(&kinds)
        .bind(&bodies)
        .execute(&mut *conn)
        .await
        .map_err(error)?;
        let total: usize = events.iter().map(|e| e.deliveries().len()).sum();
        let mut new = 0u64;
        let mut chunk = DeliveryRows::with_capacity(total.min(ENQUEUE_CHUNK));
        for (event, event_id) in events.iter().zip(&event_ids) {
            for d in event.deliveries() {
                chunk.push(event_id, event.kind().as_str(), d)?;
                if chunk.ids.len() == ENQUEUE_CHUNK {
                    new += chunk.insert(conn).await?;
                }
            }
        }
        if !chunk.ids.is_empty() {
            new += chunk.insert(conn).await?;
        }
        if new > 0 {
            // Delivered to listeners at commit, dropped on rollback (see `listen`).
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&mut *conn)
                .await
                .map_err(error)?;
        }
        if usize::try_from(new).unwrap_or(usize::MAX) < total {
            // Some ids were stored already: leave no body of this call without a delivery.
            sqlx::query(
                "DELETE FROM posthook_bodies b WHERE b.event_id = ANY($1) AND NOT EXISTS \
                 (SELECT 1 FROM posthook_deliveries d WHERE d.event_id = b.event_id)",
            )
            .bind(&event_ids)
            .execute(&mut *conn)
            .await
            .map_err(error)?;
        }
        Ok(usize::try_from(new).unwrap_or(usize::MAX))
    }
}

impl PostgresStore {
    /// In the caller's transaction, marks `webhook`'s lane switched off — `off`: the reason
    /// its pending and future deliveries are cancelled for — or back on (`None`), creating
    /// the lane (with `pacing`) if the webhook has none yet. A lane marked off is made ready,
    /// so that the next claim cancels what is pending in it (a delivery another process
    /// enqueued while this transaction committed), and claims take nothing from it.
    pub(crate) async fn mark_lane(
        conn: &mut PgConnection,
        webhook: WebhookId,
        pacing: &crate::Pacing,
        off: Option<CancelReason>,
    ) -> Result<(), StoreError> {
        let outcome = off
            .map(|reason| sql::outcome_json(&FinalOutcome::Cancelled { reason }))
            .transpose()?;
        let (limit, rate, ordered) = sql::pacing_columns(pacing);
        sqlx::query(
            "INSERT INTO posthook_lanes \
               (webhook_id, max_in_flight, rate, ordered, tokens, tokens_at, next_at, off) \
             VALUES ($1, $2, $3, $4, $3, now(), now(), $5) \
             ON CONFLICT (webhook_id) DO UPDATE SET off = excluded.off, next_at = now() \
             WHERE posthook_lanes.off IS DISTINCT FROM excluded.off",
        )
        .bind(sql::webhook_column(Some(webhook)))
        .bind(limit)
        .bind(rate)
        .bind(ordered)
        .bind(outcome)
        .execute(&mut *conn)
        .await
        .map_err(error)?;
        Ok(())
    }
}

/// The most claim statements one [`DeliveryStore::claim`] makes.
const CLAIM_ROUNDS: usize = 3;

/// One claim round ($1 token, $2 lease in µs, $3 the most deliveries, $4 the per-account
/// in-flight limit), one statement:
///
/// 1. `ready`: up to $3 lanes whose `next_at` has come or with a wake (an enqueue or a
///    finish committed since), served longest ago first, locked `SKIP LOCKED` (a lane
///    another claim holds is skipped); `woken`: their wakes go (this statement's snapshot
///    shows what every wake it sees stands for);
/// 2. `swept`: in a lane switched off, up to 1,000 pending deliveries cancelled (the lane
///    stays ready until none is left), per
///    lane through a `LATERAL` on the per-lane index, run for the lanes switched off only
///    (a plain join made the planner expect the whole table, and its estimate turned on
///    JIT: 1.2–1.65 s per claim at a backlog of 100,000; with the `off IS NOT NULL` test
///    inside the `LATERAL`, a planner without statistics scanned every pending delivery
///    of every ready lane to test it: 1.7 s a claim);
/// 3. `accts`: the accounts of those lanes, their rows locked `SKIP LOCKED`, and `acct`
///    their live leases, up to $4 (more cannot change the plan), in the order they end, from
///    the index of leased deliveries;
/// 4. `plan0`: each lane's live leases (up to its limit, in the order they end, from the
///    lane's part of the index of leases: an index scan that stops at the limit), tokens, and `w0` = min(limit − live, tokens,
///    ceil($3 / lanes)); `plan`: `want`, what the account leaves of `w0` after the lanes
///    of the same account before it (in turn order), so that the lanes of one account
///    together stay within $4;
/// 5. `picked`: up to `want + 1` due deliveries per lane from the per-lane index (the one
///    past `want` only says "more is due"), or for an ordered lane its head if due;
/// 6. `claimed`: leases the first `want` of them, at most $3 in all (the lanes' shares,
///    rounded up, can add up to more: the lanes' first deliveries go first, then their
///    second, …, in turn order), found by primary key from an array of their ids (a join
///    with `picked` let a planner without statistics loop over the whole table: 2.3 s a
///    claim); `touched`: the row of every account it leased for gets a new version;
///    `more`: the lanes where something picked was not leased (more is due);
/// 7. `lanes`: tokens spent, `served_at`, and when to look at the lane again — at its
///    earliest lease end when at its limit, at its account's earliest lease end when the
///    account is at its limit (`held`: a finish in the account wakes it sooner), the next
///    token when rate-limited, at once if more is due, else its earliest due time (none:
///    never, until an enqueue or a finish).
///
/// `raced`: the lane row (or the account row) this statement locked is newer than its
/// snapshot (another claim, or an enqueue that changed the pacing, committed in between):
/// the snapshot may not show that claim's leases or that enqueue's deliveries, so this
/// statement takes nothing from the lane (counting live leases from a stale snapshot would
/// exceed the limit) and marks it to be looked at again at once, by a claim with a fresh
/// snapshot. An account row another claim holds is skipped the same way.
const CLAIM: &str = concat!(
    "WITH ready AS (SELECT l.id, l.xmin AS locked_xmin, l.rate, l.ordered, l.off, l.account, ",
    "l.served_at, CASE WHEN l.ordered THEN 1 ELSE l.max_in_flight END AS lim, ",
    "CASE WHEN l.rate IS NOT NULL THEN LEAST(l.rate::float8, COALESCE(l.tokens, l.rate::float8) ",
    "+ l.rate * GREATEST(0, EXTRACT(EPOCH FROM now() - COALESCE(l.tokens_at, now()))::float8)) ",
    "END AS tokens ",
    "FROM posthook_lanes l WHERE l.id IN (SELECT x.id FROM posthook_lanes x WHERE x.next_at <= now() ",
    "UNION SELECT w.lane FROM posthook_lane_wakes w) ",
    "ORDER BY l.served_at, l.id LIMIT $3::int8 FOR UPDATE SKIP LOCKED), ",
    "woken AS (DELETE FROM posthook_lane_wakes w WHERE w.lane IN (SELECT id FROM ready) ",
    "RETURNING w.lane), ",
    "swept AS (UPDATE posthook_deliveries d SET ",
    cancel_set!("s.off"),
    " FROM (SELECT r.id AS lane, r.off, x.id FROM (SELECT id, off FROM ready WHERE off IS NOT NULL) r ",
    "CROSS JOIN LATERAL (SELECT x.id FROM posthook_deliveries x WHERE x.lane = r.id ",
    "AND x.state = 'pending' LIMIT 1000 FOR UPDATE SKIP LOCKED) x) s ",
    "WHERE d.id = s.id AND d.state = 'pending' RETURNING d.lane), ",
    "sweptn AS (SELECT lane, count(*) AS n FROM swept GROUP BY lane), ",
    "accts AS (SELECT a.account, a.xmin AS locked_xmin FROM posthook_accounts a ",
    "WHERE a.account IN (SELECT r.account FROM ready r WHERE r.off IS NULL) ",
    "FOR UPDATE SKIP LOCKED), ",
    "acct AS (SELECT a.account, (SELECT x.xmin FROM posthook_accounts x WHERE x.account = a.account) ",
    "IS DISTINCT FROM a.locked_xmin AS raced, live.n, live.first_end ",
    "FROM accts a CROSS JOIN LATERAL (SELECT count(*) AS n, min(s.due_at) AS first_end FROM ",
    "(SELECT d.due_at FROM posthook_deliveries d WHERE d.account = a.account ",
    "AND d.lease_token IS NOT NULL AND d.due_at > now() AND d.lane <> 0 ",
    "AND d.state IN ('pending', 'cancelled') ORDER BY d.due_at LIMIT $4::int8) s) live), ",
    "plan0 AS (SELECT r.id, r.rate, r.ordered, r.off, r.lim, r.tokens, r.account, r.served_at, ",
    "live.n AS live, live.first_end, ",
    "(SELECT x.xmin FROM posthook_lanes x WHERE x.id = r.id) IS DISTINCT FROM r.locked_xmin ",
    "AS raced, ",
    "CASE WHEN r.off IS NOT NULL OR (SELECT x.xmin FROM posthook_lanes x WHERE x.id = r.id) ",
    "IS DISTINCT FROM r.locked_xmin THEN 0 ELSE ",
    "GREATEST(0, LEAST(r.lim - live.n, COALESCE(floor(r.tokens)::int8, $3::int8), ",
    "ceil($3::int8::float8 / (SELECT count(*) FROM ready))::int8)) END AS w0 ",
    "FROM ready r CROSS JOIN LATERAL (SELECT count(*) AS n, min(s.due_at) AS first_end FROM ",
    "(SELECT d.due_at FROM posthook_deliveries d WHERE d.lane = r.id ",
    "AND d.lease_token IS NOT NULL AND d.due_at > now() AND d.state IN ('pending', 'cancelled') ",
    "ORDER BY d.due_at LIMIT r.lim) s) live), ",
    "plan AS (SELECT p.id, p.rate, p.ordered, p.off, p.lim, p.tokens, p.account, p.served_at, p.live, ",
    "p.first_end, p.raced, a.n AS acct_live, a.first_end AS acct_first_end, ",
    "(p.account IS NOT NULL AND (a.account IS NULL OR a.raced)) AS acct_blocked, ",
    "CASE WHEN p.account IS NULL THEN p.w0 WHEN a.account IS NULL OR a.raced THEN 0 ",
    "ELSE GREATEST(0, LEAST(p.w0, $4::int8 - a.n - COALESCE(sum(p.w0) OVER (PARTITION BY p.account ",
    "ORDER BY p.served_at, p.id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)))::int8 END ",
    "AS want FROM plan0 p LEFT JOIN acct a ON a.account = p.account), ",
    "picked AS (SELECT p.id AS lane, c.id, ",
    "row_number() OVER (PARTITION BY p.id ORDER BY c.due_at, c.seq) AS rn ",
    "FROM plan p CROSS JOIN LATERAL (SELECT d.id, d.due_at, d.seq FROM posthook_deliveries d ",
    "WHERE NOT p.ordered AND p.off IS NULL AND d.lane = p.id AND d.state = 'pending' ",
    "AND d.due_at <= now() ",
    "ORDER BY d.due_at LIMIT CASE WHEN p.live >= p.lim THEN 0 ELSE p.want + 1 END ",
    "FOR UPDATE SKIP LOCKED) c ",
    "UNION ALL SELECT p.id, h.id, 1 FROM plan p CROSS JOIN LATERAL (SELECT d.id, d.due_at ",
    "FROM posthook_deliveries d WHERE p.ordered AND p.off IS NULL AND d.lane = p.id ",
    "AND d.state = 'pending' ",
    "ORDER BY d.seq LIMIT 1) h WHERE h.due_at <= now()), ",
    "claimed AS (UPDATE posthook_deliveries d SET lapsed = (d.lease_token IS NOT NULL), ",
    "lease_token = $1, due_at = now() + $2::int8 * interval '1 microsecond' ",
    "WHERE d.id = ANY (ARRAY(SELECT k.id FROM picked k JOIN plan p ON p.id = k.lane ",
    "WHERE k.rn <= p.want ORDER BY k.rn, p.served_at, p.id LIMIT $3::int8)) ",
    "AND d.state = 'pending' AND d.due_at <= now() ",
    "RETURNING d.id, d.lane, d.event_id, d.url, d.kind, d.delivery::text AS delivery, d.lapsed, ",
    us!("now() - d.created_at"),
    " AS age_us), ",
    "taken AS (SELECT lane, count(*) AS n FROM claimed GROUP BY lane), ",
    "acct_taken AS (SELECT p.account, count(*) AS n FROM claimed c JOIN plan p ON p.id = c.lane ",
    "WHERE p.account IS NOT NULL GROUP BY p.account), ",
    "touched AS (UPDATE posthook_accounts a SET claimed_at = now() FROM acct_taken t ",
    "WHERE a.account = t.account RETURNING a.account), ",
    "more AS (SELECT k.lane FROM picked k LEFT JOIN taken t ON t.lane = k.lane ",
    "WHERE k.rn > COALESCE(t.n, 0) GROUP BY k.lane), ",
    "lanes AS (UPDATE posthook_lanes l SET tokens = p.tokens - COALESCE(t.n, 0), tokens_at = now(), ",
    "served_at = CASE WHEN t.n > 0 THEN now() ELSE l.served_at END, ",
    "held = COALESCE(p.off IS NULL AND NOT p.raced AND NOT p.acct_blocked AND m.lane IS NOT NULL ",
    "AND p.live + COALESCE(t.n, 0) < p.lim AND p.acct_live + COALESCE(tk.n, 0) >= $4::int8, false), ",
    "next_at = CASE WHEN p.off IS NOT NULL THEN CASE WHEN sw.n >= 1000 THEN now() END ",
    "WHEN p.raced THEN now() ",
    "WHEN p.acct_blocked AND m.lane IS NOT NULL THEN now() ",
    "WHEN p.live + COALESCE(t.n, 0) >= p.lim THEN LEAST(p.first_end, ",
    "CASE WHEN t.n > 0 THEN now() + $2::int8 * interval '1 microsecond' END) ",
    "WHEN m.lane IS NOT NULL AND p.acct_live + COALESCE(tk.n, 0) >= $4::int8 THEN ",
    "LEAST(p.acct_first_end, CASE WHEN tk.n > 0 THEN now() + $2::int8 * interval '1 microsecond' END) ",
    "WHEN m.lane IS NOT NULL AND p.tokens - COALESCE(t.n, 0) < 1 THEN ",
    "now() + (1 - (p.tokens - COALESCE(t.n, 0))) / p.rate * interval '1 second' ",
    "WHEN m.lane IS NOT NULL THEN now() ",
    "ELSE LEAST((SELECT min(d.due_at) FROM posthook_deliveries d WHERE d.lane = l.id ",
    "AND d.state = 'pending' AND d.due_at > now()), ",
    "CASE WHEN t.n > 0 THEN now() + $2::int8 * interval '1 microsecond' END) END ",
    "FROM plan p LEFT JOIN taken t ON t.lane = p.id LEFT JOIN more m ON m.lane = p.id ",
    "LEFT JOIN acct_taken tk ON tk.account = p.account LEFT JOIN sweptn sw ON sw.lane = p.id ",
    "WHERE l.id = p.id RETURNING l.id) ",
    "SELECT id, event_id, url, kind, delivery, lapsed, age_us FROM claimed"
);

/// How long a connection keeps one prepared claim statement (and so the plan PostgreSQL
/// cached for it) before it prepares a new one.
const CLAIM_PLAN_LIFE: Duration = Duration::from_secs(5);

/// [`CLAIM`], with a comment that changes every [`CLAIM_PLAN_LIFE`]: a new text is a new
/// prepared statement on each connection, planned again from the tables as they are now.
///
/// Prepared once for good, a connection kept the generic plan it made at its first claims,
/// while the tables were nearly empty, and used it on a backlog of thousands (15–16 ms a
/// claim to run, against 2.6–2.9 ms for a fresh plan); planned afresh at every call, a claim
/// spends 3.7–4.2 ms planning, more than running. A generic plan made on the grown tables is
/// as fast as a fresh one (4.6–5.6 ms against 5.7–6.2 ms, on a backlog of 31,000): the
/// statement is kept, and renewed. Each renewal costs PostgreSQL's five custom plans before
/// it picks a generic one. See BENCHMARKS.md, "Session 9".
fn claim_statement() -> String {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    let generation = start.elapsed().as_secs() / CLAIM_PLAN_LIFE.as_secs();
    format!("{CLAIM} /* posthook claim, plan {generation} */")
}

/// Deliveries per multi-row insert: bounds the arrays a batch builds (and binds) at once.
const ENQUEUE_CHUNK: usize = 4096;

impl PostgresStore {
    /// The counts of the deliveries where `condition` (on `$1`, bound to `value`) holds,
    /// and the whole store's bodies.
    async fn counts_where(
        &self,
        condition: &'static str,
        value: Option<i64>,
    ) -> Result<StoreCounts, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT state, COUNT(*)::int8 AS n FROM posthook_deliveries \
             WHERE {condition} GROUP BY state"
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
        let bodies: i64 = sqlx::query("SELECT COUNT(*)::int8 AS n FROM posthook_bodies")
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

/// The columns of up to [`ENQUEUE_CHUNK`] deliveries, as arrays for one `UNNEST` insert.
struct DeliveryRows<'a> {
    ids: Vec<String>,
    events: Vec<&'a str>,
    kinds: Vec<&'a str>,
    hooks: Vec<Option<i64>>,
    urls: Vec<&'a str>,
    states: Vec<&'static str>,
    json: Vec<String>,
    limits: Vec<i32>,
    rates: Vec<Option<i32>>,
    ordered: Vec<bool>,
    accounts: Vec<Option<i64>>,
}

impl<'a> DeliveryRows<'a> {
    fn with_capacity(n: usize) -> Self {
        DeliveryRows {
            ids: Vec::with_capacity(n),
            events: Vec::with_capacity(n),
            kinds: Vec::with_capacity(n),
            hooks: Vec::with_capacity(n),
            urls: Vec::with_capacity(n),
            states: Vec::with_capacity(n),
            json: Vec::with_capacity(n),
            limits: Vec::with_capacity(n),
            rates: Vec::with_capacity(n),
            ordered: Vec::with_capacity(n),
            accounts: Vec::with_capacity(n),
        }
    }

    fn push(
        &mut self,
        event: &'a str,
        kind: &'a str,
        d: &'a super::NewDelivery,
    ) -> Result<(), StoreError> {
        self.ids.push(d.delivery.id().to_string());
        self.events.push(event);
        self.kinds.push(kind);
        self.hooks
            .push(sql::webhook_column(d.delivery.webhook_id()));
        self.urls.push(d.url.as_str());
        self.states.push(DeliveryState::of(&d.delivery).as_str());
        self.json.push(to_jsonb(&d.delivery)?);
        let (limit, rate, ordered) = sql::pacing_columns(&d.pacing);
        self.limits.push(limit);
        self.rates.push(rate);
        self.ordered.push(ordered);
        self.accounts.push(d.account.map(account_column));
        Ok(())
    }

    /// Inserts the rows held and empties the arrays; how many were new. First their
    /// webhooks' lanes ([`lanes_of`]); then, in one statement, the deliveries and one wake
    /// per lane: the wakes commit with the deliveries, and the next claim after the commit
    /// makes their lanes ready. No lane row is locked for the rest of the transaction
    /// (unless the chunk changes a webhook's pacing), so neither claims nor other
    /// publishers wait for an application's open transaction.
    async fn insert(&mut self, conn: &mut PgConnection) -> Result<u64, StoreError> {
        // The latest pacing of each webhook in the chunk.
        let mut hooks: BTreeMap<i64, (PacingColumns, Option<i64>)> = BTreeMap::new();
        for (i, hook) in self.hooks.iter().enumerate() {
            if let Some(hook) = hook {
                let pacing = (self.limits[i], self.rates[i], self.ordered[i]);
                let slot = hooks.entry(*hook).or_insert((pacing, self.accounts[i]));
                slot.0 = pacing;
                slot.1 = self.accounts[i].or(slot.1);
            }
        }
        let mut off = HashSet::new();
        let lanes = lanes_of(conn, &hooks, &mut off).await?;
        let lane_ids: Vec<i64> = self
            .hooks
            .iter()
            .map(|hook| hook.and_then(|h| lanes.get(&h).copied()).unwrap_or(0))
            .collect();
        let new = sqlx::query(
            "WITH input AS (SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], \
               $5::text[], $6::text[], $7::text[], $8::int8[], $9::int8[]) WITH ORDINALITY \
               AS d(id, event_id, webhook_id, url, kind, state, delivery, lane, account, ord)), \
             wake AS (INSERT INTO posthook_lane_wakes (lane) SELECT DISTINCT lane FROM input \
               RETURNING lane) \
             INSERT INTO posthook_deliveries \
               (id, event_id, webhook_id, url, kind, state, delivery, created_at, due_at, finished_at, \
                lane, account) \
             SELECT d.id, d.event_id, d.webhook_id, d.url, d.kind, d.state, d.delivery::jsonb, now(), \
               CASE WHEN d.state = 'pending' THEN now() END, \
               CASE WHEN d.state <> 'pending' THEN now() END, d.lane, d.account \
             FROM input d ORDER BY d.ord \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&self.ids)
        .bind(&self.events)
        .bind(&self.hooks)
        .bind(&self.urls)
        .bind(&self.kinds)
        .bind(&self.states)
        .bind(&self.json)
        .bind(&lane_ids)
        .bind(&self.accounts)
        .execute(&mut *conn)
        .await
        .map_err(error)?
        .rows_affected();
        if !off.is_empty() {
            // Switched off or deleted through the webhook store: stored as ended, with the
            // outcome the lane holds (only this chunk's rows: they are this transaction's).
            let ids: Vec<&str> = self
                .ids
                .iter()
                .zip(&lane_ids)
                .filter(|(_, lane)| off.contains(lane))
                .map(|(id, _)| id.as_str())
                .collect();
            sqlx::query(concat!(
                "UPDATE posthook_deliveries d SET ",
                cancel_set!("l.off"),
                " FROM posthook_lanes l WHERE d.id = ANY($1) AND l.id = d.lane ",
                "AND l.off IS NOT NULL AND d.state = 'pending'"
            ))
            .bind(&ids)
            .execute(&mut *conn)
            .await
            .map_err(error)?;
        }
        self.accounts.clear();
        self.ids.clear();
        self.events.clear();
        self.kinds.clear();
        self.hooks.clear();
        self.urls.clear();
        self.states.clear();
        self.json.clear();
        self.limits.clear();
        self.rates.clear();
        self.ordered.clear();
        Ok(new)
    }
}

/// The lane ids of `hooks` (webhook → its latest pacing in a chunk), creating the lanes
/// that are new, and in `off` those switched off through the webhook store; a lane whose
/// pacing differs is updated (the latest enqueue wins) and made ready. A lane another transaction is creating at the same moment is waited for (once
/// per webhook ever) and read again.
async fn lanes_of(
    conn: &mut PgConnection,
    hooks: &BTreeMap<i64, (PacingColumns, Option<i64>)>,
    off: &mut HashSet<i64>,
) -> Result<HashMap<i64, i64>, StoreError> {
    let mut lanes = HashMap::with_capacity(hooks.len());
    let mut stale: Vec<i64> = Vec::new();
    for _ in 0..3 {
        let missing: Vec<(&i64, &(PacingColumns, Option<i64>))> = hooks
            .iter()
            .filter(|(h, _)| !lanes.contains_key(*h))
            .collect();
        if missing.is_empty() {
            break;
        }
        let ids: Vec<i64> = missing.iter().map(|(h, _)| **h).collect();
        let limits: Vec<i32> = missing.iter().map(|(_, p)| p.0.0).collect();
        let rates: Vec<Option<i32>> = missing.iter().map(|(_, p)| p.0.1).collect();
        let ordered: Vec<bool> = missing.iter().map(|(_, p)| p.0.2).collect();
        let accounts: Vec<Option<i64>> = missing.iter().map(|(_, p)| p.1).collect();
        // An account's row is there before its first delivery can be claimed (`DO
        // NOTHING` takes no lock: a claim holding the row does not hold up the enqueue).
        let rows = sqlx::query(
            "WITH input AS (SELECT * FROM UNNEST($1::int8[], $2::int4[], $3::int4[], $4::bool[], \
               $5::int8[]) AS i(webhook_id, max_in_flight, rate, ordered, account)), \
             acc AS (INSERT INTO posthook_accounts (account) SELECT DISTINCT account FROM input \
               WHERE account IS NOT NULL ORDER BY account ON CONFLICT (account) DO NOTHING \
               RETURNING account), \
             ins AS (INSERT INTO posthook_lanes \
               (webhook_id, max_in_flight, rate, ordered, tokens, tokens_at, next_at, account) \
               SELECT webhook_id, max_in_flight, rate, ordered, rate, now(), now(), account \
               FROM input ORDER BY webhook_id ON CONFLICT (webhook_id) DO NOTHING \
               RETURNING id, webhook_id) \
             SELECT id, webhook_id, true AS fresh, NULL::text AS off FROM ins \
             UNION ALL SELECT l.id, l.webhook_id, (l.max_in_flight = i.max_in_flight \
               AND l.rate IS NOT DISTINCT FROM i.rate AND l.ordered = i.ordered \
               AND l.account IS NOT DISTINCT FROM COALESCE(i.account, l.account)) AS fresh, l.off \
             FROM posthook_lanes l JOIN input i ON i.webhook_id = l.webhook_id",
        )
        .bind(&ids)
        .bind(&limits)
        .bind(&rates)
        .bind(&ordered)
        .bind(&accounts)
        .fetch_all(&mut *conn)
        .await
        .map_err(error)?;
        for row in &rows {
            let id: i64 = get(row, "id")?;
            lanes.insert(get::<_, i64>(row, "webhook_id")?, id);
            if !get::<_, bool>(row, "fresh")? {
                stale.push(id);
            }
            if get::<_, Option<String>>(row, "off")?.is_some() {
                off.insert(id);
            }
        }
    }
    if lanes.len() < hooks.len() {
        return Err(StoreError::database(
            "a webhook's lane could not be created",
        ));
    }
    if !stale.is_empty() {
        let by_id: HashMap<i64, i64> = lanes.iter().map(|(h, id)| (*id, *h)).collect();
        let pacing = |id: &i64| hooks[&by_id[id]];
        sqlx::query(
            "UPDATE posthook_lanes l SET max_in_flight = u.m, rate = u.r, ordered = u.o, \
               account = COALESCE(u.a, l.account), next_at = LEAST(l.next_at, now()) \
             FROM UNNEST($1::int8[], $2::int4[], $3::int4[], $4::bool[], $5::int8[]) \
               AS u(id, m, r, o, a) \
             WHERE l.id = u.id",
        )
        .bind(&stale)
        .bind(stale.iter().map(|id| pacing(id).0.0).collect::<Vec<_>>())
        .bind(stale.iter().map(|id| pacing(id).0.1).collect::<Vec<_>>())
        .bind(stale.iter().map(|id| pacing(id).0.2).collect::<Vec<_>>())
        .bind(stale.iter().map(|id| pacing(id).1).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await
        .map_err(error)?;
    }
    Ok(lanes)
}

/// The batch finish, one statement; returns the ids it updated and, of the others, those
/// that exist (stale rather than unknown).
///
/// The rows are found by primary key. Only a pending or a cancelled delivery holds a lease
/// token, so `state <> 'cancelled'` says "pending" here; written as `state = 'pending'`, it
/// let the planner read the rows from the per-lane index of pending deliveries (whose
/// predicate it matches) and filter them by id: 5,011 rows read to finish 39, 70 ms.
async fn finish_rows(
    pool: &PgPool,
    ids: Vec<String>,
    tokens: Vec<String>,
    json: Vec<String>,
    states: Vec<&'static str>,
    retry_us: Vec<Option<i64>>,
) -> Result<(HashSet<String>, HashSet<String>), StoreError> {
    let updated: HashSet<String> = sqlx::query(concat!(
        "WITH f AS (UPDATE posthook_deliveries d SET delivery = u.delivery::jsonb, state = u.state, \
           lease_token = NULL, lapsed = false, \
           due_at = CASE WHEN u.retry_us IS NULL THEN NULL \
             ELSE now() + u.retry_us * interval '1 microsecond' END, \
           finished_at = CASE WHEN u.retry_us IS NULL THEN now() END \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[]) \
           AS u(id, token, delivery, state, retry_us) \
         WHERE d.id = ANY ($1) AND d.id = u.id AND d.lease_token = u.token \
           AND d.state <> 'cancelled' \
         RETURNING d.id, d.lane), ",
        freed!(),
        " SELECT id FROM f"
    ))
    .bind(&ids)
    .bind(tokens)
    .bind(json)
    .bind(states)
    .bind(retry_us)
    .fetch_all(pool)
    .await
    .map_err(error)?
    .iter()
    .map(|row| get(row, "id"))
    .collect::<Result<_, _>>()?;
    let others: Vec<&String> = ids.iter().filter(|id| !updated.contains(*id)).collect();
    let mut existing = HashSet::new();
    if !others.is_empty() {
        for row in sqlx::query("SELECT id FROM posthook_deliveries WHERE id = ANY($1)")
            .bind(others)
            .fetch_all(pool)
            .await
            .map_err(error)?
        {
            existing.insert(get::<_, String>(&row, "id")?);
        }
    }
    Ok((updated, existing))
}

/// The finish of a delivery that was cancelled while this claim's attempt was in flight:
/// records the attempt; `None` when the claim is simply stale.
async fn finish_cancelled(
    pool: &PgPool,
    claim: &Claim,
    delivery: &Delivery,
) -> Result<Option<Finished>, StoreError> {
    let id = claim.id.to_string();
    let token = claim.token.to_string();
    let row = sqlx::query(
        "SELECT delivery::text AS delivery FROM posthook_deliveries \
         WHERE id = $1 AND lease_token = $2 AND state = 'cancelled'",
    )
    .bind(&id)
    .bind(&token)
    .fetch_optional(pool)
    .await
    .map_err(error)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let json: String = get(&row, "delivery")?;
    let (stored, finished) = sql::record_in_flight(&id, &json, delivery)?;
    // The lease ends: its lane has a free slot, so the statement leaves a wake for it.
    let done = sqlx::query(concat!(
        "WITH f AS (UPDATE posthook_deliveries SET delivery = $1::jsonb, state = $2, \
         lease_token = NULL, lapsed = false, due_at = NULL, finished_at = now() \
         WHERE id = $3 AND lease_token = $4 AND state = 'cancelled' RETURNING lane), ",
        freed!(),
        " SELECT COUNT(*)::int8 AS n FROM f"
    ))
    .bind(to_jsonb(&stored)?)
    .bind(DeliveryState::of(&stored).as_str())
    .bind(&id)
    .bind(&token)
    .fetch_one(pool)
    .await
    .map_err(error)
    .and_then(|row| get::<_, i64>(&row, "n"))?;
    Ok((done == 1).then_some(finished))
}

/// The columns [`resend_rows`] reads.
const RESEND_COLUMNS: &str = "d.id, d.event_id, d.webhook_id, d.url, d.kind, d.delivery::text AS delivery, d.lane, d.account";

/// Inserts a resend of each of `rows` (as selected by [`RESEND_COLUMNS`]) in the caller's
/// transaction, due at once, with a wake for their lanes and a `NOTIFY`; the new ids, in
/// order.
async fn resend_rows(
    conn: &mut PgConnection,
    rows: &[PgRow],
) -> Result<Vec<DeliveryId>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let n = rows.len();
    let mut accounts: Vec<Option<i64>> = Vec::with_capacity(n);
    let (mut ids, mut from, mut events, mut hooks, mut urls, mut kinds, mut json, mut lanes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut new_ids = Vec::with_capacity(n);
    for row in rows {
        let id: String = get(row, "id")?;
        let event: String = get(row, "event_id")?;
        let url: String = get(row, "url")?;
        let kind: String = get(row, "kind")?;
        let text: String = get(row, "delivery")?;
        let parts = sql::parts(&id, &event, &url, &kind, &text)?;
        let new_id = DeliveryId::new(super::random_u128()?);
        let resend = parts.delivery.resend(new_id);
        ids.push(new_id.to_string());
        json.push(to_jsonb(&resend)?);
        from.push(id);
        events.push(event);
        hooks.push(get::<_, Option<i64>>(row, "webhook_id")?);
        urls.push(url);
        kinds.push(kind);
        lanes.push(get::<_, Option<i64>>(row, "lane")?.unwrap_or(0));
        accounts.push(get::<_, Option<i64>>(row, "account")?);
        new_ids.push(new_id);
    }
    sqlx::query(
        "WITH input AS (SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], \
           $5::text[], $6::text[], $7::int8[], $8::text[], $9::int8[]) WITH ORDINALITY \
           AS d(id, event_id, webhook_id, url, kind, delivery, lane, resent_from, account, ord)), \
         wake AS (INSERT INTO posthook_lane_wakes (lane) SELECT DISTINCT lane FROM input \
           RETURNING lane) \
         INSERT INTO posthook_deliveries \
           (id, event_id, webhook_id, url, kind, state, delivery, created_at, due_at, lane, \
            resent_from, account) \
         SELECT d.id, d.event_id, d.webhook_id, d.url, d.kind, 'pending', d.delivery::jsonb, \
           now(), now(), d.lane, d.resent_from, d.account FROM input d ORDER BY d.ord",
    )
    .bind(&ids)
    .bind(&events)
    .bind(&hooks)
    .bind(&urls)
    .bind(&kinds)
    .bind(&json)
    .bind(&lanes)
    .bind(&from)
    .bind(&accounts)
    .execute(&mut *conn)
    .await
    .map_err(error)?;
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(&mut *conn)
        .await
        .map_err(error)?;
    Ok(new_ids)
}

/// A delivery as its `jsonb` column: its JSON, with every NUL (`U+0000`) in its text —
/// an attempt's error message, a failure's reason, whatever else it holds — as `U+FFFD`,
/// since `jsonb` refuses `\u0000` (and a finish that fails would lose the attempt).
fn to_jsonb(delivery: &Delivery) -> Result<String, StoreError> {
    let json = sql::to_json(delivery)?;
    // serde_json writes a NUL as `\u0000` and nothing else; text without one (nearly all)
    // goes as it is. The match may be a literal `\\u0000`: then the walk changes nothing.
    if !json.contains("\\u0000") {
        return Ok(json);
    }
    let mut value: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| StoreError::corrupt(delivery.id(), e))?;
    replace_nul(&mut value);
    serde_json::to_string(&value).map_err(|e| StoreError::corrupt(delivery.id(), e))
}

/// Every NUL in the strings (and keys) of `value` as `U+FFFD`.
fn replace_nul(value: &mut serde_json::Value) {
    use serde_json::Value;
    fn clean(s: &str) -> String {
        s.replace('\0', "\u{FFFD}")
    }
    match value {
        Value::String(s) if s.contains('\0') => *s = clean(s),
        Value::Array(items) => items.iter_mut().for_each(replace_nul),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (clean(&k), v))
                    .collect();
            }
            map.values_mut().for_each(replace_nul);
        }
        _ => {}
    }
}

fn record(row: &PgRow) -> Result<DeliveryRecord, StoreError> {
    let id: String = get(row, "id")?;
    let event: String = get(row, "event_id")?;
    let url: String = get(row, "url")?;
    let kind: String = get(row, "kind")?;
    let json: String = get(row, "delivery")?;
    let parts = sql::parts(&id, &event, &url, &kind, &json)?;
    let state = sql::state(&id, &get::<_, String>(row, "state")?)?;
    let pending = state == DeliveryState::Pending;
    let leasable = pending || state == DeliveryState::Cancelled;
    let resent_from = parts.delivery.resent_from();
    let due: Option<i64> = get(row, "due_us")?;
    let finished: Option<i64> = get(row, "finished_us")?;
    Ok(DeliveryRecord {
        delivery: parts.delivery,
        url: parts.url,
        event: parts.event,
        kind: parts.kind,
        state,
        created_at: sql::time_us(get(row, "created_us")?),
        due_at: due.filter(|_| pending).map(sql::time_us),
        leased: leasable && get::<_, bool>(row, "leased")?,
        finished_at: finished.map(sql::time_us),
        waiting_behind: sql::waiting_behind(&id, get(row, "head")?)?,
        resent_from,
        account: get::<_, Option<i64>>(row, "account")?
            .map(|a| crate::AccountId::new(u64::from_ne_bytes(a.to_ne_bytes()))),
    })
}

#[async_trait::async_trait]
impl DeliveryStore for PostgresStore {
    async fn enqueue(&self, event: &NewEvent) -> Result<usize, StoreError> {
        self.enqueue_all(std::slice::from_ref(event)).await
    }

    async fn enqueue_all(&self, events: &[NewEvent]) -> Result<usize, StoreError> {
        if events.iter().all(|e| e.deliveries().is_empty()) {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await.map_err(error)?;
        let new = PostgresStore::enqueue_all_in(&mut tx, events).await?;
        tx.commit().await.map_err(error)?;
        Ok(new)
    }

    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let token = ClaimToken::random()?;
        // Rounds: a lane that got its full share while another had less work than its share
        // leaves room, which the next round gives to the lanes still ready.
        let mut rows = Vec::new();
        for _ in 0..CLAIM_ROUNDS {
            let want = max - rows.len();
            let round = sqlx::query(sqlx::AssertSqlSafe(claim_statement()))
                .bind(token.to_string())
                .bind(micros(bounded_lease(lease)))
                .bind(i64::try_from(want).unwrap_or(i64::MAX))
                .bind(i64::from(self.max_in_flight_per_account.get()))
                .fetch_all(&self.pool)
                .await
                .map_err(error)?;
            let got = round.len();
            rows.extend(round);
            if got == 0 || rows.len() >= max {
                break;
            }
        }
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
        let found =
            sqlx::query("SELECT event_id, body FROM posthook_bodies WHERE event_id = ANY($1)")
                .bind(events)
                .fetch_all(&self.pool)
                .await
                .map_err(error)?;
        for row in &found {
            let body: Vec<u8> = get(row, "body")?;
            bodies.insert(get(row, "event_id")?, Bytes::from(body));
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
            claimed.push(Claimed::new(
                Claim::new(parts.delivery.id(), token),
                parts.delivery,
                parts.url,
                body,
                parts.kind,
                sql::span_us(get(row, "age_us")?),
                get(row, "lapsed")?,
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
        let (state, retry) = check_finish(claim, delivery, step)?;
        let json = to_jsonb(delivery)?;
        let id = claim.id.to_string();
        // The lease ends: its lane has a free slot (and, for a retry, work due later), so
        // the same statement leaves a wake for it (see `CLAIM`): no lane row is locked.
        let done: i64 = match retry {
            Some(after) => sqlx::query(concat!(
                "WITH f AS (UPDATE posthook_deliveries SET delivery = $1::jsonb, lease_token = NULL, \
                 lapsed = false, due_at = now() + $2 * interval '1 microsecond' \
                 WHERE id = $3 AND lease_token = $4 AND state = 'pending' RETURNING lane), ",
                freed!(),
                " SELECT COUNT(*)::int8 AS n FROM f"
            ),
            )
            .bind(json)
            .bind(micros(after)),
            None => sqlx::query(concat!(
                "WITH f AS (UPDATE posthook_deliveries SET delivery = $1::jsonb, state = $2, \
                 lease_token = NULL, lapsed = false, due_at = NULL, finished_at = now() \
                 WHERE id = $3 AND lease_token = $4 AND state = 'pending' RETURNING lane), ",
                freed!(),
                " SELECT COUNT(*)::int8 AS n FROM f"
            ),
            )
            .bind(json)
            .bind(state.as_str()),
        }
        .bind(&id)
        .bind(claim.token.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(error)
        .and_then(|row| get(&row, "n"))?;
        if done == 1 {
            return Ok(if retry.is_some() {
                Finished::Retrying
            } else {
                Finished::Done
            });
        }
        let exists = sqlx::query("SELECT 1 FROM posthook_deliveries WHERE id = $1")
            .bind(&id)
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?;
        match exists {
            Some(_) => Ok(finish_cancelled(&self.pool, claim, delivery)
                .await?
                .unwrap_or(Finished::Stale)),
            None => Err(StoreError::UnknownDelivery(claim.id)),
        }
    }

    async fn finish_all(&self, batch: &[Finish]) -> Vec<Result<Finished, StoreError>> {
        let mut results: Vec<Option<Result<Finished, StoreError>>> = vec![None; batch.len()];
        let mut seen = HashSet::with_capacity(batch.len());
        if !batch.iter().all(|f| seen.insert(f.claim.id)) {
            // The same delivery twice (a lapsed and a current claim): one at a time.
            let mut results = Vec::with_capacity(batch.len());
            for f in batch {
                results.push(self.finish(&f.claim, &f.delivery, &f.step).await);
            }
            return results;
        }
        // Checked ones go into one statement: (index, id, retry?).
        let mut rows: Vec<(usize, String, bool)> = Vec::with_capacity(batch.len());
        let (mut ids, mut tokens, mut json, mut states, mut retry_us) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, f) in batch.iter().enumerate() {
            let checked = check_finish(&f.claim, &f.delivery, &f.step)
                .and_then(|(state, retry)| Ok((state, retry, to_jsonb(&f.delivery)?)));
            match checked {
                Err(e) => results[i] = Some(Err(e)),
                Ok((state, retry, text)) => {
                    let id = f.claim.id.to_string();
                    rows.push((i, id.clone(), retry.is_some()));
                    ids.push(id);
                    tokens.push(f.claim.token.to_string());
                    json.push(text);
                    states.push(state.as_str());
                    retry_us.push(retry.map(micros));
                }
            }
        }
        if !rows.is_empty() {
            match finish_rows(&self.pool, ids, tokens, json, states, retry_us).await {
                Err(e) => {
                    for (i, _, _) in &rows {
                        results[*i] = Some(Err(e.clone()));
                    }
                }
                Ok((updated, existing)) => {
                    for (i, id, retry) in rows {
                        results[i] = Some(if updated.contains(&id) {
                            Ok(if retry {
                                Finished::Retrying
                            } else {
                                Finished::Done
                            })
                        } else if existing.contains(&id) {
                            let f = &batch[i];
                            finish_cancelled(&self.pool, &f.claim, &f.delivery)
                                .await
                                .map(|done| done.unwrap_or(Finished::Stale))
                        } else {
                            Err(StoreError::UnknownDelivery(batch[i].claim.id))
                        });
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::database("finish_all: no result"))))
            .collect()
    }

    async fn delivery(&self, id: DeliveryId) -> Result<DeliveryRecord, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} WHERE d.id = $1"
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
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} WHERE d.webhook_id = $1 \
             ORDER BY d.created_at DESC, d.seq DESC LIMIT $2 OFFSET $3"
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
            None => self.counts_where("$1::int8 IS NULL", None).await,
            Some(_) => {
                self.counts_where("webhook_id = $1", sql::webhook_column(webhook))
                    .await
            }
        }
    }

    async fn recent_for_account(
        &self,
        account: crate::AccountId,
        page: Page,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RECORD_COLUMNS} WHERE d.account = $1 \
             ORDER BY d.created_at DESC, d.seq DESC LIMIT $2 OFFSET $3"
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
        self.counts_where("account = $1", Some(account_column(account)))
            .await
    }

    async fn cancel(&self, webhook: WebhookId, reason: CancelReason) -> Result<u64, StoreError> {
        let outcome = sql::outcome_json(&FinalOutcome::Cancelled { reason })?;
        let hook = sql::webhook_column(Some(webhook));
        // In rounds, skipping the rows a claim or a finish holds at that moment (waiting
        // for them could deadlock with a batch finish), until none of the webhook's
        // deliveries is pending. A lease that has not run out is kept: its attempt may be
        // in flight, and its finish records it.
        let mut cancelled = 0u64;
        loop {
            let done = sqlx::query(concat!(
                "WITH locked AS (SELECT d.id FROM posthook_deliveries d \
                   JOIN posthook_lanes l ON d.lane = l.id \
                   WHERE l.webhook_id = $2 AND d.state = 'pending' \
                   FOR UPDATE OF d SKIP LOCKED) \
                 UPDATE posthook_deliveries d SET ",
                cancel_set!("$1"),
                " FROM locked WHERE d.id = locked.id AND d.state = 'pending'"
            ))
            .bind(&outcome)
            .bind(hook)
            .execute(&self.pool)
            .await
            .map_err(error)?;
            cancelled += done.rows_affected();
            let left: bool = sqlx::query(
                "SELECT EXISTS (SELECT 1 FROM posthook_deliveries d \
                   JOIN posthook_lanes l ON d.lane = l.id \
                   WHERE l.webhook_id = $1 AND d.state = 'pending') AS left",
            )
            .bind(hook)
            .fetch_one(&self.pool)
            .await
            .map_err(error)
            .and_then(|row| get(&row, "left"))?;
            if !left {
                return Ok(cancelled);
            }
            // Held by a statement that ends in a moment.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn resend(&self, id: DeliveryId) -> Result<DeliveryId, StoreError> {
        let mut tx = self.pool.begin().await.map_err(error)?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RESEND_COLUMNS} FROM posthook_deliveries d WHERE d.id = $1"
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
        let since_us = since
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, micros);
        let hook = sql::webhook_column(Some(webhook));
        let mut tx = self.pool.begin().await.map_err(error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1 # $2)")
            .bind(RECOVER_LOCK)
            .bind(hook)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RESEND_COLUMNS} FROM posthook_deliveries d \
             WHERE d.webhook_id = $1 AND d.state IN ('failed', 'gave_up', 'cancelled') \
             AND d.finished_at >= to_timestamp($2::float8 / 1000000) \
             AND NOT EXISTS (SELECT 1 FROM posthook_deliveries c WHERE c.resent_from = d.id) \
             AND NOT (d.state = 'cancelled' AND d.lease_token IS NOT NULL AND d.due_at > now()) \
             ORDER BY d.created_at, d.seq"
        )))
        .bind(hook)
        .bind(since_us)
        .fetch_all(&mut *tx)
        .await
        .map_err(error)?;
        let new = resend_rows(&mut tx, &rows).await?;
        tx.commit().await.map_err(error)?;
        Ok(new)
    }

    async fn prune(&self, older_than: Duration) -> Result<Pruned, StoreError> {
        let age = micros(older_than);
        let mut tx = self.pool.begin().await.map_err(error)?;
        let deliveries = sqlx::query(
            "DELETE FROM posthook_deliveries WHERE state <> 'pending' \
             AND finished_at <= now() - $1 * interval '1 microsecond'",
        )
        .bind(age)
        .execute(&mut *tx)
        .await
        .map_err(error)?
        .rows_affected();
        let bodies = sqlx::query(
            "DELETE FROM posthook_bodies b WHERE b.created_at <= now() - $1 * interval '1 microsecond' \
             AND NOT EXISTS (SELECT 1 FROM posthook_deliveries d WHERE d.event_id = b.event_id)",
        )
        .bind(age)
        .execute(&mut *tx)
        .await
        .map_err(error)?
        .rows_affected();
        tx.commit().await.map_err(error)?;
        Ok(Pruned { deliveries, bodies })
    }
}
