//! Why a received body is not an event.

use thiserror::Error;

use crate::{FormError, InvalidListId, UnknownEventKind, UnknownSource};

/// Why [`Event::decode`](crate::Event::decode) or
/// [`AutomationPayload::decode`](crate::AutomationPayload::decode) rejected a body: which key,
/// or which byte, is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A required key (`type`, `date_time`, `initiated_from`; `seriesid` for automation
    /// bodies) is absent.
    #[error("missing key `{key}`")]
    MissingKey {
        /// The key.
        key: &'static str,
    },
    /// `type` is not one of the 25 kinds.
    #[error("in `type`: {0}")]
    UnknownKind(#[source] UnknownEventKind),
    /// `initiated_from` is not a source.
    #[error("in `initiated_from`: {0}")]
    UnknownSource(#[source] UnknownSource),
    /// `list` is not a list id (a decimal number, `0` for none).
    #[error("in `list`: {0}")]
    BadList(#[source] InvalidListId),
    /// `date_time` is neither `YYYY-MM-DDTHH:MM:SS±HH:MM` nor `YYYY-MM-DD HH:MM:SS`.
    #[error(
        "in `date_time`: {text:?} is neither YYYY-MM-DDTHH:MM:SS+HH:MM nor YYYY-MM-DD HH:MM:SS"
    )]
    BadDate {
        /// The text received.
        text: String,
    },
    /// The body is not a valid form: a bad `%` escape, invalid UTF-8, too many fields or a
    /// key nested too deep (the byte offset is in the [`FormError`]).
    #[error(transparent)]
    Form(#[from] FormError),
}

impl DecodeError {
    /// The key at fault, when the error is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            DecodeError::MissingKey { key } => Some(key),
            DecodeError::UnknownKind(_) => Some("type"),
            DecodeError::UnknownSource(_) => Some("initiated_from"),
            DecodeError::BadList(_) => Some("list"),
            DecodeError::BadDate { .. } => Some("date_time"),
            DecodeError::Form(_) => None,
        }
    }

    /// The byte offset in the body, when the form itself is malformed.
    pub fn offset(&self) -> Option<usize> {
        match self {
            DecodeError::Form(
                FormError::InvalidEscape { offset }
                | FormError::InvalidUtf8 { offset }
                | FormError::TooDeep { offset, .. },
            ) => Some(*offset),
            _ => None,
        }
    }
}
