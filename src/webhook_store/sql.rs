//! What the SQLite and PostgreSQL webhook stores share: the columns a webhook is kept in,
//! and the filters as SQL.

use std::time::SystemTime;

use super::{AccountId, StoredWebhook, WebhookFilter};
use crate::store::StoreError;
use crate::{Webhook, WebhookId};

/// The columns of one webhook row, made from a webhook.
pub(crate) struct Columns {
    pub(crate) name: String,
    pub(crate) url: String,
    /// `,subscribe,open,`: each kind between commas, for `LIKE '%,kind,%'`.
    pub(crate) events: String,
    pub(crate) listid: i64,
    pub(crate) active: bool,
    pub(crate) api: String,
    pub(crate) settings: String,
}

impl Columns {
    pub(crate) fn of(webhook: &Webhook) -> Result<Columns, StoreError> {
        let (api, settings) = webhook
            .to_stored()
            .map_err(|e| StoreError::corrupt("(webhook)", e))?;
        let mut events = String::from(",");
        for kind in webhook.events().iter() {
            events.push_str(kind.as_str());
            events.push(',');
        }
        Ok(Columns {
            name: webhook.name().to_owned(),
            url: webhook.url().as_str().to_owned(),
            events,
            listid: i64::try_from(webhook.scope().list_id()).unwrap_or(i64::MAX),
            active: webhook.is_active(),
            api,
            settings,
        })
    }
}

/// A stored webhook from its row's values.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stored(
    id: i64,
    account: i64,
    version: i64,
    api: &str,
    settings: &str,
    cdate: String,
    created: SystemTime,
    updated: SystemTime,
) -> Result<StoredWebhook, StoreError> {
    let webhook_id = WebhookId::new(u64::try_from(id).unwrap_or(0));
    let webhook = Webhook::from_stored(api, settings, webhook_id, Some(cdate))
        .map_err(|reason| StoreError::corrupt(format!("webhook {id}"), reason))?;
    Ok(StoredWebhook {
        account: AccountId::new(u64::from_ne_bytes(account.to_ne_bytes())),
        webhook,
        version: u64::try_from(version).unwrap_or(0),
        created_at: created,
        updated_at: updated,
    })
}

/// An account id in a signed 64-bit column (bit for bit).
pub(crate) fn account_column(account: AccountId) -> i64 {
    i64::from_ne_bytes(account.get().to_ne_bytes())
}

/// A webhook id in a signed 64-bit column.
pub(crate) fn id_column(id: WebhookId) -> i64 {
    i64::try_from(id.get()).unwrap_or(i64::MAX)
}

/// `text` for `LIKE '%…%' ESCAPE '\'`: its `%`, `_` and `\` escaped, in ASCII lower case.
pub(crate) fn like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c.to_ascii_lowercase());
    }
    out.push('%');
    out
}

/// The values a filter binds, in the order of [`where_clause`]'s placeholders.
pub(crate) enum Bind {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// The `AND …` conditions of `filter`, with `?` placeholders (the caller numbers them for
/// PostgreSQL), and their values; `lower` is the SQL that puts a column in ASCII lower case.
pub(crate) fn where_clause(
    filter: &WebhookFilter,
    lower: fn(&str) -> String,
) -> (String, Vec<Bind>) {
    let mut sql = String::new();
    let mut binds = Vec::new();
    let like_on = |column: &str| format!(" AND {} LIKE ? ESCAPE '\\'", lower(column));
    if let Some(name) = &filter.name {
        sql.push_str(&like_on("name"));
        binds.push(Bind::Text(like(name)));
    }
    if let Some(url) = &filter.url {
        sql.push_str(&like_on("url"));
        binds.push(Bind::Text(like(url)));
    }
    if let Some(search) = &filter.search {
        sql.push_str(&format!(
            " AND ({} LIKE ? ESCAPE '\\' OR {} LIKE ? ESCAPE '\\')",
            lower("name"),
            lower("url")
        ));
        binds.push(Bind::Text(like(search)));
        binds.push(Bind::Text(like(search)));
    }
    if let Some(kind) = filter.event {
        sql.push_str(" AND events LIKE ? ESCAPE '\\'");
        binds.push(Bind::Text(format!(
            "%,{},%",
            kind.as_str().replace('_', "\\_")
        )));
    }
    if let Some(scope) = filter.scope {
        sql.push_str(" AND listid = ?");
        binds.push(Bind::Int(
            i64::try_from(scope.list_id()).unwrap_or(i64::MAX),
        ));
    }
    if let Some(active) = filter.active {
        sql.push_str(" AND active = ?");
        binds.push(Bind::Bool(active));
    }
    (sql, binds)
}
