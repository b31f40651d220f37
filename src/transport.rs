//! The two things the dispatcher needs from the outside world: a [`Transport`] that performs
//! one HTTP exchange, and a [`Timer`] that waits.
//!
//! posthook has no HTTP client and no async runtime of its own. You plug in yours — reqwest,
//! hyper, ureq on a blocking pool, an in-memory fake in tests — by implementing [`Transport`],
//! and your runtime's sleep by implementing [`Timer`]. Both are object-safe
//! (`#[async_trait]`), and both have blanket impls for `&T`, `Box<T>` and `Arc<T>`.
//!
//! ```
//! use bytes::Bytes;
//! use posthook::{Transport, TransportError};
//!
//! /// Answers every request with `204 No Content`, without touching the network.
//! struct NoContent;
//!
//! #[async_trait::async_trait]
//! impl Transport for NoContent {
//!     async fn send(
//!         &self,
//!         _request: http::Request<Bytes>,
//!     ) -> Result<http::Response<Bytes>, TransportError> {
//!         let mut response = http::Response::new(Bytes::new());
//!         *response.status_mut() = http::StatusCode::NO_CONTENT;
//!         Ok(response)
//!     }
//! }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Performs one HTTP exchange: sends a request, returns the response.
///
/// # The contract
///
/// - **One exchange.** `send` sends `request` once and returns the response it got, whatever
///   its status (a `500` or a `410` is an `Ok` response, not an error). The body of the
///   response may be left empty: the dispatcher only reads the status.
/// - **No redirects.** A `3xx` answer is returned as it is; the transport must not follow it.
///   (A webhook URL names the receiver; following a redirect would post the event somewhere
///   else, and ActiveCampaign does not follow them either.) The dispatcher treats a `3xx` as
///   a failure that is not retried.
/// - **No retries.** The transport must not retry, not even on a connection error: retries,
///   their number and their spacing belong to the dispatcher's
///   [`RetryPolicy`](crate::RetryPolicy), which also keeps the account of every attempt.
/// - **No deadline needed.** The dispatcher races every call against its
///   [`Timer`] and drops the future when the deadline passes, so the transport need not
///   enforce one (it may, and should then answer [`TransportError::timeout`]). Dropping the
///   future must cancel the exchange or at least be harmless.
/// - **Concurrency.** `send` takes `&self` and may be called many times concurrently (the
///   dispatcher fans one event out to all its webhooks at once). Share a connection pool
///   inside; no `&mut` is ever needed.
/// - **Errors.** When no response arrives, return a [`TransportError`] of the kind that says
///   why ([`connect`](TransportError::connect), [`timeout`](TransportError::timeout),
///   [`tls`](TransportError::tls), [`io`](TransportError::io),
///   [`other`](TransportError::other)); the kind decides whether the delivery is retried.
///
/// The request the dispatcher builds is a `POST` with an absolute URI (scheme, host, port,
/// path and query as the webhook's URL has them), a `Content-Type`, a `User-Agent`, an
/// `X-Posthook-Delivery` id and the form body as [`Bytes`] (cheap to clone: every delivery of
/// one event shares the same buffer).
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Sends `request` once and returns the response, or why there is none.
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError>;
}

/// `Transport` and `Timer` through a reference, a `Box` or an `Arc`.
macro_rules! forward {
    ($($wrapper:ty),*) => {$(
        #[async_trait::async_trait]
        impl<T: Transport + ?Sized> Transport for $wrapper {
            async fn send(
                &self,
                request: http::Request<Bytes>,
            ) -> Result<http::Response<Bytes>, TransportError> {
                (**self).send(request).await
            }
        }

        #[async_trait::async_trait]
        impl<T: Timer + ?Sized> Timer for $wrapper {
            async fn sleep(&self, duration: Duration) {
                (**self).sleep(duration).await;
            }

            fn now(&self) -> SystemTime {
                (**self).now()
            }
        }
    )*};
}

forward!(&T, Box<T>, Arc<T>);

/// Waits: the only way the dispatcher lets time pass.
///
/// The dispatcher reads no clock. It waits through `sleep` for two things: the deadline of
/// each attempt (raced against [`Transport::send`]) and the backoff between attempts. With
/// tokio, `tokio::time::sleep(duration).await` is the whole implementation; in tests, a timer
/// that returns at once (and records what it was asked) checks backoff without sleeping.
/// Mind that the same timer keeps each attempt's deadline: with a timer that returns at once,
/// a transport that is not ready on its first poll times out on every attempt.
///
/// # The contract
///
/// - `sleep` completes once `duration` has passed (or at once, for a fake timer); it may be
///   dropped before that, and must then stop waiting harmlessly.
/// - It takes `&self` and may be called many times concurrently.
#[async_trait::async_trait]
pub trait Timer: Send + Sync {
    /// Completes after `duration`.
    async fn sleep(&self, duration: Duration);

    /// The wall-clock time, read only to stamp signatures (`webhook-timestamp`, with the
    /// `signing` feature). The default reads [`SystemTime::now`]; a test timer can return a
    /// fixed time.
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Why a [`Transport`] got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// No connection: DNS failure, refused, reset or unreachable. Retried.
    Connect,
    /// No response in time (the transport's own deadline, or the dispatcher's). Retried.
    Timeout,
    /// The TLS handshake failed: a bad or expired certificate, a name mismatch, no common
    /// protocol. Retried, as every connection error is: the receiver may renew its
    /// certificate within the retry schedule, and the final outcome names the fault.
    Tls,
    /// The connection broke while the request or the response was in flight. Retried.
    Io,
    /// Anything else the transport could not do. Retried (at-least-once: when in doubt, try
    /// again).
    Other,
}

impl TransportErrorKind {
    /// The kind as a short id: `"connect"`, `"timeout"`, `"tls"`, `"io"` or `"other"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransportErrorKind::Connect => "connect",
            TransportErrorKind::Timeout => "timeout",
            TransportErrorKind::Tls => "tls",
            TransportErrorKind::Io => "io",
            TransportErrorKind::Other => "other",
        }
    }

    /// Whether a delivery that failed this way is tried again (per the
    /// [`RetryPolicy`](crate::RetryPolicy)): today every kind is, since a transport error
    /// means no answer came, and "timeouts and connection errors are retried". A later kind
    /// may not be.
    pub const fn is_retryable(self) -> bool {
        match self {
            TransportErrorKind::Connect
            | TransportErrorKind::Timeout
            | TransportErrorKind::Tls
            | TransportErrorKind::Io
            | TransportErrorKind::Other => true,
        }
    }
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A [`Transport`] got no response: the kind of failure and a message for people.
///
/// Displayed as `"<kind> error: <message>"`, e.g. `"connect error: connection refused"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[error("{kind} error: {message}")]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
}

impl TransportError {
    /// An error of `kind` with `message`.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> TransportError {
        TransportError {
            kind,
            message: message.into(),
        }
    }

    /// No connection could be made ([`TransportErrorKind::Connect`]).
    pub fn connect(message: impl Into<String>) -> TransportError {
        TransportError::new(TransportErrorKind::Connect, message)
    }

    /// No response in time ([`TransportErrorKind::Timeout`]).
    pub fn timeout(message: impl Into<String>) -> TransportError {
        TransportError::new(TransportErrorKind::Timeout, message)
    }

    /// The TLS handshake failed ([`TransportErrorKind::Tls`]).
    pub fn tls(message: impl Into<String>) -> TransportError {
        TransportError::new(TransportErrorKind::Tls, message)
    }

    /// The connection broke mid-exchange ([`TransportErrorKind::Io`]).
    pub fn io(message: impl Into<String>) -> TransportError {
        TransportError::new(TransportErrorKind::Io, message)
    }

    /// Any other failure ([`TransportErrorKind::Other`]).
    pub fn other(message: impl Into<String>) -> TransportError {
        TransportError::new(TransportErrorKind::Other, message)
    }

    /// The kind of failure.
    #[inline]
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The message, as the transport wrote it.
    #[inline]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether a delivery that failed this way is tried again (see [`TransportErrorKind`]).
    #[inline]
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

/// The [`Timer`] of a tokio application: `tokio::time::sleep`, and the system clock for
/// [`Timer::now`]. Needs the `tokio` feature, and a tokio runtime with its time driver
/// enabled where the dispatcher's futures run.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct TokioTimer;

#[cfg(feature = "tokio")]
impl TokioTimer {
    /// The timer.
    pub const fn new() -> TokioTimer {
        TokioTimer
    }
}

#[cfg(feature = "tokio")]
#[async_trait::async_trait]
impl Timer for TokioTimer {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}
