//! [`WebhookStore`] on [`SqliteStore`]: the webhooks in the same file as the deliveries.

use std::time::{Duration, SystemTime};

use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{AssertSqlSafe, Row};

use super::memory::{cdate, with_identity};
use super::sql::{self, Bind, Columns, account_column, id_column};
use super::{
    AccountId, Change, ChangeKind, StoredWebhook, WebhookFilter, WebhookPage, WebhookStore,
    WebhookStoreError,
};
use crate::store::{Page, StoreError};
use crate::{SqliteStore, Webhook, WebhookId};

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

const NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

const COLUMNS: &str = "id, account, version, webhook, settings, cdate, created_ms, updated_ms";

fn error(e: sqlx::Error) -> WebhookStoreError {
    WebhookStoreError::Store(crate::store::sql_error(e))
}

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, WebhookStoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column)
        .map_err(|e| WebhookStoreError::Store(StoreError::corrupt(format!("(column {column})"), e)))
}

fn time_ms(ms: i64) -> SystemTime {
    crate::store::epoch_plus(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

fn row_to_stored(row: &SqliteRow) -> Result<StoredWebhook, WebhookStoreError> {
    Ok(sql::stored(
        get(row, "id")?,
        get(row, "account")?,
        get(row, "version")?,
        &get::<String>(row, "webhook")?,
        &get::<String>(row, "settings")?,
        get(row, "cdate")?,
        time_ms(get(row, "created_ms")?),
        time_ms(get(row, "updated_ms")?),
    )?)
}

async fn find(
    conn: &mut SqliteConnection,
    account: AccountId,
    id: WebhookId,
) -> Result<StoredWebhook, WebhookStoreError> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM posthook_webhooks WHERE id = ? AND account = ?"
    )))
    .bind(id_column(id))
    .bind(account_column(account))
    .fetch_optional(&mut *conn)
    .await
    .map_err(error)?
    .ok_or(WebhookStoreError::NotFound { account, id })?;
    row_to_stored(&row)
}

async fn record(
    conn: &mut SqliteConnection,
    account: AccountId,
    id: i64,
    kind: ChangeKind,
    version: i64,
) -> Result<(), WebhookStoreError> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO posthook_webhook_changes (account, webhook_id, kind, version, at_ms) \
         VALUES (?, ?, ?, ?, {NOW_MS})"
    )))
    .bind(account_column(account))
    .bind(id)
    .bind(kind.as_str())
    .bind(version)
    .execute(&mut *conn)
    .await
    .map_err(error)?;
    Ok(())
}

#[async_trait::async_trait]
impl WebhookStore for SqliteStore {
    async fn create(
        &self,
        account: AccountId,
        webhook: Webhook,
    ) -> Result<StoredWebhook, WebhookStoreError> {
        let limit = self.max_webhooks();
        let columns = Columns::of(&webhook)?;
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error)?;
        let count: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM posthook_webhooks WHERE account = ?")
                .bind(account_column(account))
                .fetch_one(&mut *tx)
                .await
                .map_err(error)
                .and_then(|row| get(&row, "n"))?;
        if count >= i64::from(limit) {
            return Err(WebhookStoreError::LimitReached { account, limit });
        }
        let now: i64 = sqlx::query(AssertSqlSafe(format!("SELECT {NOW_MS} AS now")))
            .fetch_one(&mut *tx)
            .await
            .map_err(error)
            .and_then(|row| get(&row, "now"))?;
        let created = cdate(time_ms(now));
        let id: i64 = sqlx::query(
            "INSERT INTO posthook_webhooks (account, version, name, url, events, listid, active, \
             webhook, settings, cdate, created_ms, updated_ms) \
             VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
        .bind(now)
        .bind(now)
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
            created_at: time_ms(now),
            updated_at: time_ms(now),
        })
    }

    async fn get(
        &self,
        account: AccountId,
        id: WebhookId,
    ) -> Result<StoredWebhook, WebhookStoreError> {
        let mut conn = self.pool().acquire().await.map_err(error)?;
        find(&mut conn, account, id).await
    }

    async fn update(
        &self,
        account: AccountId,
        id: WebhookId,
        expected: u64,
        webhook: Webhook,
    ) -> Result<StoredWebhook, WebhookStoreError> {
        let columns = Columns::of(&webhook)?;
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error)?;
        let current = find(&mut tx, account, id).await?;
        super::expect_version(current, Some(expected))?;
        let version = i64::try_from(expected)
            .unwrap_or(i64::MAX)
            .saturating_add(1);
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE posthook_webhooks SET version = ?, name = ?, url = ?, events = ?, listid = ?, \
             active = ?, webhook = ?, settings = ?, updated_ms = {NOW_MS} \
             WHERE id = ? AND account = ? RETURNING {COLUMNS}"
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
        SqliteStore::mark_lane(&mut tx, id, &webhook.pacing(), super::off_reason(&webhook))
            .await
            .map_err(WebhookStoreError::Store)?;
        tx.commit().await.map_err(error)?;
        Ok(stored)
    }

    async fn delete(
        &self,
        account: AccountId,
        id: WebhookId,
        expected: Option<u64>,
    ) -> Result<StoredWebhook, WebhookStoreError> {
        let mut tx = self
            .pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error)?;
        let current = find(&mut tx, account, id).await?;
        let current = super::expect_version(current, expected)?;
        sqlx::query("DELETE FROM posthook_webhooks WHERE id = ? AND account = ?")
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
        let pacing = current.webhook.pacing();
        SqliteStore::mark_lane(&mut tx, id, &pacing, Some(crate::CancelReason::Deleted))
            .await
            .map_err(WebhookStoreError::Store)?;
        tx.commit().await.map_err(error)?;
        Ok(current)
    }

    async fn list(
        &self,
        account: AccountId,
        filter: &WebhookFilter,
        page: Page,
    ) -> Result<WebhookPage, WebhookStoreError> {
        // SQLite's LIKE ignores ASCII case already.
        let (conditions, binds) = sql::where_clause(filter, |column| column.to_owned());
        let bind_all = |q: Query<'static>| bind_filter(q, &binds);
        let mut conn = self.pool().acquire().await.map_err(error)?;
        let count_sql =
            format!("SELECT COUNT(*) AS n FROM posthook_webhooks WHERE account = ?{conditions}");
        let total: i64 =
            bind_all(sqlx::query(AssertSqlSafe(count_sql)).bind(account_column(account)))
                .fetch_one(&mut *conn)
                .await
                .map_err(error)
                .and_then(|row| get(&row, "n"))?;
        let list_sql = format!(
            "SELECT {COLUMNS} FROM posthook_webhooks WHERE account = ?{conditions} \
             ORDER BY id LIMIT ? OFFSET ?"
        );
        let rows = bind_all(sqlx::query(AssertSqlSafe(list_sql)).bind(account_column(account)))
            .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(page.offset).unwrap_or(i64::MAX))
            .fetch_all(&mut *conn)
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
             WHERE seq > ? ORDER BY seq LIMIT ?",
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
            "SELECT {COLUMNS} FROM posthook_webhooks WHERE id > ? ORDER BY id LIMIT ?"
        )))
        .bind(after.map_or(0, id_column))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await
        .map_err(error)?;
        rows.iter().map(row_to_stored).collect()
    }
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

/// A change-feed row.
fn change(row: &SqliteRow) -> Result<Change, WebhookStoreError> {
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
