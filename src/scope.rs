//! List ids and the list scope of a webhook.
//!
//! ActiveCampaign writes "all lists" as list id `0`, so a [`ListId`] is never zero and
//! [`ListScope::All`] stands for the `0`.
//!
//! ```
//! use posthook::{ListId, ListScope};
//!
//! assert!(ListId::new(0).is_none());
//! let list = ListId::new(8).unwrap();
//! assert_eq!(list.get(), 8);
//! assert_eq!(ListScope::List(list).list_id(), 8);
//! assert_eq!(ListScope::All.list_id(), 0);
//! assert_eq!(ListScope::from_list_id(0), ListScope::All);
//! ```

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::InvalidListId;

/// A list id: a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListId(NonZeroU64);

impl ListId {
    /// A list id, or `None` for `0` (which means "all lists" on the wire).
    #[inline]
    pub const fn new(id: u64) -> Option<ListId> {
        match NonZeroU64::new(id) {
            Some(id) => Some(ListId(id)),
            None => None,
        }
    }

    /// The id as a number.
    #[inline]
    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Display for ListId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for ListId {
    type Err = InvalidListId;

    /// Parses a decimal id; `"0"`, a sign, blanks or anything not a number is an error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            if let Some(id) = s.parse().ok().and_then(ListId::new) {
                return Ok(id);
            }
        }
        Err(InvalidListId::new(s))
    }
}

impl From<ListId> for u64 {
    fn from(id: ListId) -> u64 {
        id.get()
    }
}

impl Serialize for ListId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.get())
    }
}

impl<'de> Deserialize<'de> for ListId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match ListScope::deserialize(deserializer)? {
            ListScope::List(id) => Ok(id),
            ListScope::All => Err(serde::de::Error::custom("list id 0 is not a list")),
        }
    }
}

/// Which lists a webhook listens to: all of them, or one.
///
/// The scope filters only [list-aware](crate::EventKind::is_list_aware) kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[allow(clippy::exhaustive_enums)] // AC has exactly these two: all lists, or one list.
pub enum ListScope {
    /// Every list (`listid` `0` on the wire).
    #[default]
    All,
    /// One list.
    List(ListId),
}

impl ListScope {
    /// The scope for a wire list id: `0` is [`ListScope::All`].
    #[inline]
    pub const fn from_list_id(id: u64) -> ListScope {
        match ListId::new(id) {
            Some(id) => ListScope::List(id),
            None => ListScope::All,
        }
    }

    /// The wire list id: `0` for [`ListScope::All`].
    #[inline]
    pub const fn list_id(self) -> u64 {
        match self {
            ListScope::All => 0,
            ListScope::List(id) => id.get(),
        }
    }

    /// The one list, if the scope is a single list.
    #[inline]
    pub const fn list(self) -> Option<ListId> {
        match self {
            ListScope::All => None,
            ListScope::List(id) => Some(id),
        }
    }

    /// Whether an event on `list` (`None`: no list) falls within this scope.
    #[inline]
    pub fn covers(self, list: Option<ListId>) -> bool {
        match self {
            ListScope::All => true,
            ListScope::List(id) => list == Some(id),
        }
    }
}

impl From<ListId> for ListScope {
    fn from(id: ListId) -> Self {
        ListScope::List(id)
    }
}

impl From<Option<ListId>> for ListScope {
    fn from(id: Option<ListId>) -> Self {
        id.map_or(ListScope::All, ListScope::List)
    }
}

impl fmt::Display for ListScope {
    /// Writes the wire id: `0` for all lists.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.list_id(), f)
    }
}

impl Serialize for ListScope {
    /// Writes the wire id as a string (`"0"` for all lists), as the AC API does.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.list_id())
    }
}

impl<'de> Deserialize<'de> for ListScope {
    /// Reads a number, a numeric string or null; `0`, `"0"`, `""` and null are all lists.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ListScope;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list id as a number or a string, or null")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ListScope, E> {
                Ok(ListScope::from_list_id(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ListScope, E> {
                u64::try_from(v)
                    .map(ListScope::from_list_id)
                    .map_err(|_| E::custom(format_args!("invalid list id {v}")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ListScope, E> {
                match v.trim() {
                    "" | "0" => Ok(ListScope::All),
                    s => s.parse::<ListId>().map(ListScope::List).map_err(E::custom),
                }
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<ListScope, E> {
                Ok(ListScope::All)
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<ListScope, E> {
                Ok(ListScope::All)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<ListScope, D::Error> {
                ListScope::deserialize(d)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}
