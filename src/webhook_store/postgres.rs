//! [`WebhookStore`] on [`PostgresStore`]: the webhooks in the same database as the
//! deliveries, shared by every process; `NOTIFY` on every change.

use std::time::{Duration, SystemTime};

use sqlx::postgres::{PgConnection, PgListener, PgRow};
use sqlx::{AssertSqlSafe, Row};

use super::memory::{cdate, with_identity};
use super::sql::{self, Bind, Columns, account_column, id_column};
use super::{
    AccountId, Change, ChangeKind, StoredWebhook, WebhookFilter, WebhookPage, WebhookStore,
    WebhookStoreError,
};
use crate::store::{Page, StoreError};
use crate::{PostgresStore, Webhook, WebhookId};

/// The `NOTIFY` channel of webhook changes.
const CHANNEL: &str = "posthook_webhooks";

/// A key for `pg_advisory_xact_lock`: webhook writes run one at a time, so that the change
/// feed's numbers follow commit order (a reader never skips a change committed late).
const WRITE_LOCK: i64 = 0x0077_6562_686f_6f6b; // "webhook"

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

const COLUMNS: &str = "id, account, version, webhook, settings, cdate, \
    (EXTRACT(EPOCH FROM created_at) * 1000000)::int8 AS created_us, \
    (EXTRACT(EPOCH FROM updated_at) * 1000000)::int8 AS updated_us";

fn error(e: sqlx::Error) -> WebhookStoreError {
    WebhookStoreError::Store(crate::store::sql_error(e))
}

fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, WebhookStoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column)
        .map_err(|e| WebhookStoreError::Store(StoreError::corrupt(format!("(column {column})"), e)))
}

fn time_us(us: i64) -> SystemTime {
    crate::store::epoch_plus(Duration::from_micros(u64::try_from(us).unwrap_or(0)))
}

fn row_to_stored(row: &PgRow) -> Result<StoredWebhook, WebhookStoreError> {
    Ok(sql::stored(
        get(row, "id")?,
        get(row, "account")?,
        get(row, "version")?,
        &get::<String>(row, "webhook")?,
        &get::<String>(row, "settings")?,
        get(row, "cdate")?,
        time_us(get(row, "created_us")?),
        time_us(get(row, "updated_us")?),
    )?)
}

/// The write lock, then the current row (locked).
async fn begin_write(
    conn: &mut PgConnection,
    account: AccountId,
    id: Option<WebhookId>,
) -> Result<Option<StoredWebhook>, WebhookStoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITE_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(error)?;
    let Some(id) = id else { return Ok(None) };
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM posthook_webhooks WHERE id = $1 AND account = $2 FOR UPDATE"
    )))
    .bind(id_column(id))
    .bind(account_column(account))
    .fetch_optional(&mut *conn)
    .await
    .map_err(error)?
    .ok_or(WebhookStoreError::NotFound { account, id })?;
    row_to_stored(&row).map(Some)
}

async fn record(
    conn: &mut PgConnection,
    account: AccountId,
    id: i64,
    kind: ChangeKind,
    version: i64,
) -> Result<(), WebhookStoreError> {
    sqlx::query(
        "WITH c AS (INSERT INTO posthook_webhook_changes (account, webhook_id, kind, version, at) \
         VALUES ($1, $2, $3, $4, now()) RETURNING seq) SELECT pg_notify($5, seq::text) FROM c",
    )
    .bind(account_column(account))
    .bind(id)
    .bind(kind.as_str())
    .bind(version)
    .bind(CHANNEL)
    .execute(&mut *conn)
    .await
    .map_err(error)?;
    Ok(())
}

/// `q` with the filter's values bound.
fn bind_filter<'q>(mut q: Query<'q>, binds: &[Bind]) -> Query<'q> {
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t.clone()),
            Bind::Int(n) => q.bind(*n),
            Bind::Bool(v) => q.bind(*v),
        };
    }
    q
}

/// `sql` with its `?` placeholders numbered `$first`, `$first + 1`, ...
fn numbered(sql: &str, first: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = first;
    for c in sql.chars() {
        if c == '?' {
            out.push('$');
            out.push_str(&n.to_string());
            n += 1;
        } else {
            out.push(c);
        }
    }
    out
}

/// A column in ASCII lower case (PostgreSQL's `lower` follows the locale).
fn ascii_lower(column: &str) -> String {
    format!("translate({column}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')")
}

impl PostgresStore {
    /// Rings `wakeup` whenever any process changes a webhook (PostgreSQL `LISTEN` on the
    /// store's channel), and once when it starts listening: give it to
    /// [`Registries::follow`](crate::Registries::follow) so that a change made anywhere is
    /// matched here at once. Runs until the connection fails, and returns that error
    /// (call again to listen again).
    pub async fn listen_webhooks(&self, wakeup: crate::Wakeup) -> StoreError {
        let mut listener = match PgListener::connect_with(self.pool()).await {
            Ok(listener) => listener,
            Err(e) => return crate::store::sql_error(e),
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            return crate::store::sql_error(e);
        }
        wakeup.notify();
        loop {
            match listener.try_recv().await {
                Ok(_) => wakeup.notify(),
                Err(e) => return crate::store::sql_error(e),
            }
        }
    }
}

impl PostgresStore {
    /// Cancels what is pending of a webhook whose lane was just marked off. An error is not
    /// the caller's: the switch-off has committed, claims take nothing from the lane, and
    /// the next claim that looks at it cancels what is left.
    async fn cancel_after_commit(&self, id: WebhookId, reason: crate::CancelReason) {
        let _ = crate::DeliveryStore::cancel(self, id, reason).await;
    }
}

#[async_trait::async_trait]
impl WebhookStore for PostgresStore {
    async fn create(
        &self,
        account: AccountId,
        webhook: Webhook,
    ) -> Result<StoredWebhook, WebhookStoreError> {
        let limit = self.max_webhooks();
        let columns = Columns::of(&webhook)?;
        let mut tx = self.pool().begin().await.map_err(error)?;
        begin_write(&mut tx, account, None).await?;
        let count: i64 =
            sqlx::query("SELECT COUNT(*)::int8 AS n FROM posthook_webhooks WHERE account = $1")
                .bind(account_column(account))
                .fetch_one(&mut *tx)
                .await
                .map_err(error)
                .and_then(|row| get(&row, "n"))?;
        if count >= i64::from(limit) {
            return Err(WebhookStoreError::LimitReached { account, limit });
        }
        let now: i64 = sqlx::query("SELECT (EXTRACT(EPOCH FROM now()) * 1000000)::int8 AS now")
            .fetch_one(&mut *tx)
            .await
            .map_err(error)
            .and_then(|row| get(&row, "now"))?;
        let created = cdate(time_us(now));
        let id: i64 = sqlx::query(
            "INSERT INTO posthook_webhooks (account, version, name, url, events, listid, active, \
             webhook, settings, cdate, created_at, updated_at) \
             VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now()) RETURNING id",
        )
        .bind(account_column(account))
        .bind(&columns.name)
        .bind(&columns.url)
        .bind(&columns.events)
        .bind(columns.listid)
        .bind(columns.active)
        .bind(&columns.api)
        .bind(&columns.settings)
        .bind(&created)
        .fetch_one(&mut *tx)
        .await
        .map_err(error)
        .and_then(|row| get(&row, "id"))?;
        record(&mut tx, account, id, ChangeKind::Created, 1).await?;
        tx.commit().await.map_err(error)?;
        let id = WebhookId::new(u64::try_from(id).unwrap_or(0));
        Ok(StoredWebhook {
            account,
            webhook: with_identity(webhook, id, created),
            version: 1,
            created_at: time_us(now),
            updated_at: time_us(now),
        })
    }

    async fn get(
        &self,
        account: AccountId,
        id: WebhookId,
    ) -> Result<StoredWebhook, WebhookStoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM posthook_webhooks WHERE id = $1 AND account = $2"
        )))
        .bind(id_column(id))
        .bind(account_column(account))
        .fetch_optional(self.pool())
        .await
        .map_err(error)?
        .ok_or(WebhookStoreError::NotFound { account, id })?;
        row_to_stored(&row)
    }

    async fn update(
        &self,
        account: AccountId,
        id: WebhookId,
        expected: u64,
        webhook: Webhook,
    ) -> Result<StoredWebhook, WebhookStoreError> {
        let columns = Columns::of(&webhook)?;
        let mut tx = self.pool().begin().await.map_err(error)?;
        let current = begin_write(&mut tx, account, Some(id))
            .await?
            .ok_or(WebhookStoreError::NotFound { account, id })?;
        super::expect_version(current, Some(expected))?;
        let version = i64::try_from(expected)
            .unwrap_or(i64::MAX)
            .saturating_add(1);
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE posthook_webhooks SET version = $1, name = $2, url = $3, events = $4, \
             listid = $5, active = $6, webhook = $7, settings = $8, updated_at = now() \
             WHERE id = $9 AND account = $10 RETURNING {COLUMNS}"
        )))
        .bind(version)
        .bind(&columns.name)
        .bind(&columns.url)
        .bind(&columns.events)
        .bind(columns.listid)
        .bind(columns.active)
        .bind(&columns.api)
        .bind(&columns.settings)
        .bind(id_column(id))
        .bind(account_column(account))
        .fetch_one(&mut *tx)
        .await
        .map_err(error)?;
        let stored = row_to_stored(&row)?;
        record(
            &mut tx,
            account,
            id_column(id),
            ChangeKind::Updated,
            version,
        )
        .await?;
        let off = super::off_reason(&webhook);
        PostgresStore::mark_lane(&mut tx, id, &webhook.pacing(), off)
            .await
            .map_err(WebhookStoreError::Store)?;
        tx.commit().await.map_err(error)?;
        if let Some(reason) = off {
            self.cancel_after_commit(id, reason).await;
        }
        Ok(stored)
    }

    async fn delete(
        &self,
        account: AccountId,
        id: WebhookId,
        expected: Option<u64>,
    ) -> Result<StoredWebhook, WebhookStoreError> {
        let mut tx = self.pool().begin().await.map_err(error)?;
        let current = begin_write(&mut tx, account, Some(id))
            .await?
            .ok_or(WebhookStoreError::NotFound { account, id })?;
        let current = super::expect_version(current, expected)?;
        sqlx::query("DELETE FROM posthook_webhooks WHERE id = $1 AND account = $2")
            .bind(id_column(id))
            .bind(account_column(account))
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        let version = i64::try_from(current.version).unwrap_or(i64::MAX);
        record(
            &mut tx,
            account,
            id_column(id),
            ChangeKind::Deleted,
            version,
        )
        .await?;
        let reason = crate::CancelReason::Deleted;
        PostgresStore::mark_lane(&mut tx, id, &current.webhook.pacing(), Some(reason))
            .await
            .map_err(WebhookStoreError::Store)?;
        tx.commit().await.map_err(error)?;
        self.cancel_after_commit(id, reason).await;
        Ok(current)
    }

    async fn list(
        &self,
        account: AccountId,
        filter: &WebhookFilter,
        page: Page,
    ) -> Result<WebhookPage, WebhookStoreError> {
        let (conditions, binds) = sql::where_clause(filter, ascii_lower);
        let conditions = numbered(&conditions, 2);
        let next = binds.len() + 2;
        let count_sql = format!(
            "SELECT COUNT(*)::int8 AS n FROM posthook_webhooks WHERE account = $1{conditions}"
        );
        let total: i64 = bind_filter(
            sqlx::query(AssertSqlSafe(count_sql)).bind(account_column(account)),
            &binds,
        )
        .fetch_one(self.pool())
        .await
        .map_err(error)
        .and_then(|row| get(&row, "n"))?;
        let list_sql = format!(
            "SELECT {COLUMNS} FROM posthook_webhooks WHERE account = $1{conditions} \
             ORDER BY id LIMIT ${next} OFFSET ${}",
            next + 1
        );
        let rows = bind_filter(
            sqlx::query(AssertSqlSafe(list_sql)).bind(account_column(account)),
            &binds,
        )
        .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(page.offset).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await
        .map_err(error)?;
        let webhooks = rows.iter().map(row_to_stored).collect::<Result<_, _>>()?;
        Ok(WebhookPage {
            webhooks,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    async fn changes(&self, after: u64, limit: usize) -> Result<Vec<Change>, WebhookStoreError> {
        let rows = sqlx::query(
            "SELECT seq, account, webhook_id, kind, version FROM posthook_webhook_changes \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await
        .map_err(error)?;
        rows.iter().map(change).collect()
    }

    async fn last_change(&self) -> Result<u64, WebhookStoreError> {
        let seq: Option<i64> = sqlx::query("SELECT MAX(seq) AS seq FROM posthook_webhook_changes")
            .fetch_one(self.pool())
            .await
            .map_err(error)
            .and_then(|row| get(&row, "seq"))?;
        Ok(seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
    }

    fn max_webhooks(&self) -> u32 {
        self.max_webhooks_per_account()
    }

    async fn all_after(
        &self,
        after: Option<WebhookId>,
        limit: usize,
    ) -> Result<Vec<StoredWebhook>, WebhookStoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM posthook_webhooks WHERE id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(after.map_or(0, id_column))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await
        .map_err(error)?;
        rows.iter().map(row_to_stored).collect()
    }
}

/// A change-feed row.
fn change(row: &PgRow) -> Result<Change, WebhookStoreError> {
    let kind: String = get(row, "kind")?;
    Ok(Change {
        seq: u64::try_from(get::<i64>(row, "seq")?).unwrap_or(0),
        account: AccountId::new(u64::from_ne_bytes(
            get::<i64>(row, "account")?.to_ne_bytes(),
        )),
        id: WebhookId::new(u64::try_from(get::<i64>(row, "webhook_id")?).unwrap_or(0)),
        kind: ChangeKind::from_name(&kind).ok_or_else(|| {
            WebhookStoreError::Store(StoreError::corrupt("(change)", format!("kind {kind:?}")))
        })?,
        version: u64::try_from(get::<i64>(row, "version")?).unwrap_or(0),
    })
}
