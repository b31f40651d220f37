//! What the SQLite and PostgreSQL stores share: error mapping and row decoding.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use super::{DeliveryState, EventId, StoreError};
use crate::{Delivery, DeliveryId, EventKind, WebhookUrl};

/// A sqlx error as a [`StoreError`]: connection trouble, and the failures that trying the
/// same statement again resolves (a deadlock, a serialization failure: PostgreSQL's
/// `40P01` and `40001`; SQLite's busy database), are `Unavailable`; the rest `Database`.
pub(crate) fn error(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if matches!(db.code().as_deref(), Some("40P01" | "40001" | "5" | "6")) {
            return StoreError::unavailable(e);
        }
    }
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::unavailable(e),
        other => StoreError::database(other),
    }
}

/// Reads a column, a decoding failure being a bad row.
pub(super) fn get<'r, R, T>(row: &'r R, column: &str) -> Result<T, StoreError>
where
    R: sqlx::Row,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    row.try_get(column)
        .map_err(|e| StoreError::corrupt(format!("(column {column})"), e))
}

/// A delivery as its JSON column.
pub(super) fn to_json(delivery: &Delivery) -> Result<String, StoreError> {
    serde_json::to_string(delivery).map_err(|e| StoreError::corrupt(delivery.id(), e))
}

/// A final outcome as JSON, for the `outcome` field of a delivery's JSON column.
pub(super) fn outcome_json(outcome: &crate::FinalOutcome) -> Result<String, StoreError> {
    serde_json::to_string(outcome).map_err(|e| StoreError::corrupt("(outcome)", e))
}

/// The finish of an attempt that was in flight when its delivery (stored as `json`) was
/// cancelled: the delivery to store, and what the finish says.
pub(super) fn record_in_flight(
    id: &str,
    json: &str,
    attempted: &Delivery,
) -> Result<(Delivery, super::Finished), StoreError> {
    let mut stored: Delivery =
        serde_json::from_str(json).map_err(|e| StoreError::corrupt(id, e))?;
    stored.record_in_flight(attempted);
    let finished = if attempted.is_done() {
        super::Finished::Done
    } else {
        super::Finished::Cancelled
    };
    Ok((stored, finished))
}

/// The stored text columns of a delivery row, decoded and checked against each other.
pub(super) struct Parts {
    pub(super) delivery: Delivery,
    pub(super) url: WebhookUrl,
    pub(super) event: EventId,
    pub(super) kind: EventKind,
}

pub(super) fn parts(
    id: &str,
    event: &str,
    url: &str,
    kind: &str,
    json: &str,
) -> Result<Parts, StoreError> {
    let delivery: Delivery = serde_json::from_str(json).map_err(|e| StoreError::corrupt(id, e))?;
    let want = DeliveryId::from_str(id).map_err(|e| StoreError::corrupt(id, e))?;
    if delivery.id() != want {
        return Err(StoreError::corrupt(
            id,
            format!("the JSON holds delivery {}", delivery.id()),
        ));
    }
    Ok(Parts {
        delivery,
        url: WebhookUrl::parse(url).map_err(|e| StoreError::corrupt(id, e))?,
        event: EventId::from_str(event).map_err(|e| StoreError::corrupt(id, e))?,
        kind: EventKind::from_str(kind).map_err(|e| StoreError::corrupt(id, e))?,
    })
}

/// A state column.
pub(super) fn state(id: &str, name: &str) -> Result<DeliveryState, StoreError> {
    DeliveryState::from_name(name)
        .ok_or_else(|| StoreError::corrupt(id, format!("unknown state {name:?}")))
}

/// A count column (never negative).
pub(super) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Microseconds since the epoch (or a non-negative span) as a time or duration.
pub(super) fn time_us(us: i64) -> SystemTime {
    super::epoch_plus(span_us(us))
}

pub(super) fn span_us(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// A webhook id in a signed 64-bit column (bit for bit; AC ids are far below 2^63).
pub(super) fn webhook_column(id: Option<crate::WebhookId>) -> Option<i64> {
    id.map(|id| i64::from_ne_bytes(id.get().to_ne_bytes()))
}

/// `n` placeholders `?, ?, ...` for an `IN (...)` list (SQLite).
#[cfg(feature = "sqlite")]
pub(super) fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

/// A record's `waiting_behind`: the head of its ordered lane (`head`, when the query found
/// one), unless it is the head itself.
pub(super) fn waiting_behind(
    id: &str,
    head: Option<String>,
) -> Result<Option<DeliveryId>, StoreError> {
    match head {
        Some(head) if head != id => DeliveryId::from_str(&head)
            .map(Some)
            .map_err(|e| StoreError::corrupt(&head, e)),
        _ => Ok(None),
    }
}

/// A pacing's columns: the in-flight limit, the rate (if any), ordered.
pub(super) type PacingColumns = (i32, Option<i32>, bool);

/// A pacing's [`PacingColumns`].
pub(super) fn pacing_columns(pacing: &crate::Pacing) -> PacingColumns {
    let clamp = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    (
        clamp(pacing.max_in_flight.get()),
        pacing.rate_limit.map(|r| clamp(r.get())),
        pacing.ordered,
    )
}
