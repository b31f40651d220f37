//! Events: one occurrence of an [`EventKind`], with its typed data.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDateTime};

use crate::{EventKind, ListId, Source};

/// When an event happened, as the payload's `date_time` writes it.
///
/// ActiveCampaign writes ISO 8601 with an offset (`2023-07-12T06:49:04-05:00`); its legacy
/// samples wrote `2013-01-01 12:00:00`. Both are kept as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OccurredAt {
    /// ISO 8601 with an offset.
    Iso(DateTime<FixedOffset>),
    /// The legacy `YYYY-MM-DD HH:MM:SS` form, without an offset.
    Legacy(NaiveDateTime),
}

impl From<DateTime<FixedOffset>> for OccurredAt {
    fn from(t: DateTime<FixedOffset>) -> Self {
        OccurredAt::Iso(t)
    }
}

impl fmt::Display for OccurredAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OccurredAt::Iso(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%S%:z")),
            OccurredAt::Legacy(t) => write!(f, "{}", t.format("%Y-%m-%d %H:%M:%S")),
        }
    }
}

/// One occurrence of an event: what happened, who started it, on which list, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    kind: EventKind,
    source: Source,
    list: Option<ListId>,
    occurred_at: OccurredAt,
}

impl Event {
    /// An event of `kind` from `source`, at `occurred_at`, on no list.
    pub fn new(kind: EventKind, source: Source, occurred_at: impl Into<OccurredAt>) -> Event {
        Event {
            kind,
            source,
            list: None,
            occurred_at: occurred_at.into(),
        }
    }

    /// This event on `list` (`None`: on no list, `0` on the wire).
    #[must_use]
    pub fn with_list(mut self, list: Option<ListId>) -> Event {
        self.list = list;
        self
    }

    /// What happened.
    #[inline]
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// Who or what started it.
    #[inline]
    pub fn source(&self) -> Source {
        self.source
    }

    /// The list it happened on, if any.
    #[inline]
    pub fn list(&self) -> Option<ListId> {
        self.list
    }

    /// When it happened.
    #[inline]
    pub fn occurred_at(&self) -> OccurredAt {
        self.occurred_at
    }
}
