//! Error types: one small error per operation, and the umbrella [`Error`].

use thiserror::Error;

pub use crate::url::{UrlError, UrlErrorKind};

/// An event id that is not one of the 25 kinds.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown event kind {id:?}")]
pub struct UnknownEventKind {
    id: String,
}

impl UnknownEventKind {
    pub(crate) fn new(id: &str) -> Self {
        UnknownEventKind { id: id.to_owned() }
    }

    /// The id that was not recognised.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A source id that is not `public`, `admin`, `api` or `system`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown source {id:?}: expected public, admin, api or system")]
pub struct UnknownSource {
    id: String,
}

impl UnknownSource {
    pub(crate) fn new(id: &str) -> Self {
        UnknownSource { id: id.to_owned() }
    }

    /// The id that was not recognised.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Text that is not a list id (a positive decimal integer).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid list id {input:?}: expected a positive integer")]
pub struct InvalidListId {
    input: String,
}

impl InvalidListId {
    pub(crate) fn new(input: &str) -> Self {
        InvalidListId {
            input: input.to_owned(),
        }
    }

    /// The text that was not a list id.
    pub fn input(&self) -> &str {
        &self.input
    }
}

/// Why a [`Webhook`](crate::Webhook) could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The name is empty or only white space.
    #[error("webhook name is blank")]
    BlankName,
    /// The webhook subscribes to no event.
    #[error("webhook has no events: select at least one")]
    NoEvents,
    /// The webhook listens to no source.
    #[error("webhook has no sources: select at least one")]
    NoSources,
    /// A header of its own ([`WebhookBuilder::header`](crate::WebhookBuilder::header)) is
    /// one that posthook or the HTTP connection sets: `content-type`, `content-length`,
    /// `content-encoding`, `host`, `user-agent`, `expect`, `x-posthook-*`, `webhook-*`, or a
    /// hop-by-hop header.
    #[error("header {name:?} cannot be a webhook's own: posthook or the connection sets it")]
    ReservedHeader {
        /// The header's name, as it was given.
        name: String,
    },
    /// A header of its own has a name that is not a header name, or a value a header cannot
    /// carry unchanged (a line break, a control or non-ASCII character, white space at an end).
    #[error("invalid header {name:?}: {reason}")]
    InvalidHeader {
        /// The header's name, as it was given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Any error of this crate.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A webhook URL is not valid.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A webhook definition is incomplete.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    /// An unknown event id.
    #[error(transparent)]
    UnknownEventKind(#[from] UnknownEventKind),
    /// An unknown source id.
    #[error(transparent)]
    UnknownSource(#[from] UnknownSource),
    /// An invalid list id.
    #[error(transparent)]
    InvalidListId(#[from] InvalidListId),
    /// A form body is malformed.
    #[error(transparent)]
    Form(#[from] crate::FormError),
    /// A received event or automation body could not be decoded.
    #[error(transparent)]
    Decode(#[from] crate::DecodeError),
}
