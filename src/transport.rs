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

/// The future of [`Transport::send`] and [`Transport::send_attempt`], as `#[async_trait]`
/// makes it: for an implementation that writes the method out by hand (to do work before
/// the future is made, or to box a future of its own), `fn send<'a, 'b>(&'a self, request:
/// http::Request<Bytes>) -> SendFuture<'b> where 'a: 'b, Self: 'b`.
pub type SendFuture<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<http::Response<Bytes>, TransportError>> + Send + 'a,
    >,
>;

/// Performs one HTTP exchange: sends a request, returns the response.
///
/// # The contract
///
/// - **One exchange.** `send` sends `request` once and returns the response it got, whatever
///   its status (a `500` or a `410` is an `Ok` response, not an error). The body of the
///   response may be left empty: a delivery reads only the status and, on a `429` or
///   `503`, the `Retry-After` header; only [`Dispatcher::diagnose`](crate::Dispatcher::diagnose)
///   shows the first bytes of the body.
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
///   future must cancel the exchange or at least be harmless. A transport that bounds an
///   exchange itself (an HTTP client's timeout, a socket deadline) can say so with
///   [`enforces_timeout`](Transport::enforces_timeout): the dispatcher then hands it the
///   deadline through [`send_attempt`](Transport::send_attempt) and keeps no timer
///   of its own for the attempt, one timer registration less per attempt.
/// - **Concurrency.** `send` takes `&self` and may be called many times concurrently (the
///   dispatcher fans one event out to all its webhooks at once). Share a connection pool
///   inside; no `&mut` is ever needed.
/// - **Errors.** When no response arrives, return a [`TransportError`] of the kind that says
///   why ([`dns`](TransportError::dns), [`blocked`](TransportError::blocked),
///   [`refused`](TransportError::refused), [`connect_timeout`](TransportError::connect_timeout),
///   [`connect`](TransportError::connect), [`timeout`](TransportError::timeout),
///   [`tls`](TransportError::tls), [`io`](TransportError::io),
///   [`other`](TransportError::other)); the kind decides whether the delivery is retried
///   (all are, but [`Blocked`](TransportErrorKind::Blocked)).
/// - **Addresses.** A transport that resolves names itself should check every address
///   against an [`AddressPolicy`](crate::AddressPolicy) before it connects, and report the
///   policy it enforces through [`address_policy`](Transport::address_policy): the
///   dispatcher then judges literal IPs and `localhost` by the same policy.
///
/// The request the dispatcher builds is a `POST` with an absolute URI (scheme, host, port,
/// path and query as the webhook's URL has them), a `Content-Type`, a `User-Agent`, an
/// `X-Posthook-Delivery` id (and, when signed, the `webhook-id`, `webhook-timestamp` and
/// `webhook-signature` headers) and the form body as [`Bytes`] (cheap to clone: every
/// delivery of one event shares the same buffer).
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Sends `request` once and returns the response, or why there is none.
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError>;

    /// Sends one attempt of a delivery to `url`: `request` (built by the dispatcher for
    /// `url`), once, like [`send`](Transport::send), giving up when `timeout` has passed
    /// with a [`TransportError::timeout`] (or
    /// [`connect_timeout`](TransportError::connect_timeout) while connecting).
    ///
    /// The dispatcher calls it, instead of `send`, only when
    /// [`enforces_timeout`](Transport::enforces_timeout) is `true`, and then trusts it to end
    /// within `timeout` (and a little). `url` lets a transport use what the URL keeps
    /// parsed ([`WebhookUrl::as_url`](crate::WebhookUrl::as_url); check
    /// [`WebhookUrl::is_uri_of`](crate::WebhookUrl::is_uri_of) before trusting that the
    /// request's URI is that URL's). The default ignores `url` and `timeout` and calls
    /// `send`: override both methods or neither.
    async fn send_attempt(
        &self,
        url: &crate::WebhookUrl,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let _ = (url, timeout);
        self.send(request).await
    }

    /// Whether [`send_attempt`](Transport::send_attempt) keeps its deadline, so that the
    /// dispatcher need not race a [`Timer`] against it. The default is `false`: the
    /// dispatcher calls [`send`](Transport::send) and races its timer. The crate's
    /// `HttpTransport` answers `true`.
    fn enforces_timeout(&self) -> bool {
        false
    }

    /// How many headers the transport adds to the request's own header map before sending
    /// it (an HTTP client may add `accept`, `host`, `content-length`): a hint, so that the
    /// dispatcher makes room for them with its own and the map does not grow on the way
    /// out. The default is 0; the crate's `HttpTransport` answers 1 (reqwest adds `accept`
    /// to the map; `host` and `content-length` go into hyper's copy of it).
    fn added_headers(&self) -> usize {
        0
    }

    /// The address policy this transport enforces on every address it connects to, if it
    /// enforces one (the crate's `HttpTransport` does). A [`Dispatcher`](crate::Dispatcher)
    /// built over a transport that reports one uses it for its own check of the URL, unless
    /// given another with [`Dispatcher::address_policy`](crate::Dispatcher::address_policy):
    /// one policy, set in one place. The default is `None`.
    fn address_policy(&self) -> Option<&crate::AddressPolicy> {
        None
    }

    /// The addresses `host` (a name, not a literal IP) resolves to, the way this transport
    /// would resolve it before connecting — for diagnoses ([`Dispatcher::diagnose`](crate::Dispatcher::diagnose)
    /// lists them with their classes). `None` (the default) when the transport does not
    /// resolve names itself.
    async fn resolve(&self, host: &str) -> Option<Result<Vec<std::net::IpAddr>, TransportError>> {
        let _ = host;
        None
    }
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

            async fn send_attempt(
                &self,
                url: &crate::WebhookUrl,
                request: http::Request<Bytes>,
                timeout: Duration,
            ) -> Result<http::Response<Bytes>, TransportError> {
                (**self).send_attempt(url, request, timeout).await
            }

            fn enforces_timeout(&self) -> bool {
                (**self).enforces_timeout()
            }

            fn added_headers(&self) -> usize {
                (**self).added_headers()
            }

            fn address_policy(&self) -> Option<&crate::AddressPolicy> {
                (**self).address_policy()
            }

            async fn resolve(
                &self,
                host: &str,
            ) -> Option<Result<Vec<std::net::IpAddr>, TransportError>> {
                (**self).resolve(host).await
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

            fn monotonic(&self) -> Option<Duration> {
                (**self).monotonic()
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

    /// The wall-clock time, read to stamp signatures (`webhook-timestamp`, with the
    /// `signing` feature), to turn a `Retry-After` date into a wait, and to date the streaks
    /// of [`EndpointHealth`](crate::EndpointHealth). The default reads [`SystemTime::now`];
    /// a test timer can return a fixed time.
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    /// A monotonic clock, if the timer has one: the time elapsed since an origin of the
    /// timer's choosing (only differences are used). With it, the dispatcher records how long
    /// each attempt took ([`Attempt::duration`](crate::Attempt::duration)) and real offsets
    /// ([`Attempt::at`](crate::Attempt::at)); without it (the default, `None`), offsets are
    /// the sum of the waits made and durations are unknown. It must never go back.
    fn monotonic(&self) -> Option<Duration> {
        None
    }
}

/// Why a [`Transport`] got no response.
///
/// The kinds follow the stages of an exchange, so that a diagnosis can tell "the name does
/// not resolve" from "nothing listens there" from "it connected but never answered":
///
/// | kind | stage | retried |
/// |---|---|---|
/// | [`Dns`](TransportErrorKind::Dns) | resolving the host name | yes |
/// | [`Blocked`](TransportErrorKind::Blocked) | checking the addresses against the [`AddressPolicy`](crate::AddressPolicy) | **no** |
/// | [`Refused`](TransportErrorKind::Refused) | connecting: nothing listens on that port | yes |
/// | [`ConnectTimeout`](TransportErrorKind::ConnectTimeout) | connecting: no answer to the connection attempt in time | yes |
/// | [`Connect`](TransportErrorKind::Connect) | connecting, any other way (reset, unreachable) | yes |
/// | [`Tls`](TransportErrorKind::Tls) | the TLS handshake | yes |
/// | [`Timeout`](TransportErrorKind::Timeout) | connected (or the dispatcher's deadline): no response in time | yes |
/// | [`Io`](TransportErrorKind::Io) | the connection broke mid-exchange | yes |
/// | [`Other`](TransportErrorKind::Other) | anything else | yes |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The host name did not resolve (no such name, no address, or the resolver failed).
    /// Retried: DNS failures are often passing.
    Dns,
    /// The address policy forbids an address the host is, or resolves to (the SSRF guard).
    /// **Not retried**: the same name would be refused again, and trying it again would
    /// only keep probing the network it points at.
    Blocked,
    /// The connection was refused: the host answered, nothing listens on the port. Retried.
    Refused,
    /// The connection was not established in time. Retried.
    ConnectTimeout,
    /// No connection, for another reason: reset during the connect, network or host
    /// unreachable. Retried.
    Connect,
    /// No response in time (the transport's own deadline, or the dispatcher's), after the
    /// request was on its way. Retried.
    Timeout,
    /// The TLS handshake failed: an unknown issuer, an expired certificate, a name mismatch,
    /// a plain-HTTP port, no common protocol. Retried, as every connection error is: the
    /// receiver may renew its certificate within the retry schedule, and the final outcome
    /// names the fault.
    Tls,
    /// The connection broke while the request or the response was in flight. Retried.
    Io,
    /// Anything else the transport could not do. Retried (at-least-once: when in doubt, try
    /// again).
    Other,
}

impl TransportErrorKind {
    /// The kind as a short id: `"dns"`, `"blocked"`, `"refused"`, `"connect_timeout"`,
    /// `"connect"`, `"timeout"`, `"tls"`, `"io"` or `"other"` (the serde form too).
    pub const fn as_str(self) -> &'static str {
        match self {
            TransportErrorKind::Dns => "dns",
            TransportErrorKind::Blocked => "blocked",
            TransportErrorKind::Refused => "refused",
            TransportErrorKind::ConnectTimeout => "connect_timeout",
            TransportErrorKind::Connect => "connect",
            TransportErrorKind::Timeout => "timeout",
            TransportErrorKind::Tls => "tls",
            TransportErrorKind::Io => "io",
            TransportErrorKind::Other => "other",
        }
    }

    /// Whether no connection was ever made: the failure happened while resolving, checking
    /// or connecting (so the receiver cannot have seen the request).
    pub const fn before_connection(self) -> bool {
        matches!(
            self,
            TransportErrorKind::Dns
                | TransportErrorKind::Blocked
                | TransportErrorKind::Refused
                | TransportErrorKind::ConnectTimeout
                | TransportErrorKind::Connect
        )
    }

    /// Whether a delivery that failed this way is tried again (per the
    /// [`RetryPolicy`](crate::RetryPolicy)): every kind but
    /// [`Blocked`](TransportErrorKind::Blocked), since a transport error means no answer
    /// came, and "timeouts and connection errors are retried".
    pub const fn is_retryable(self) -> bool {
        match self {
            TransportErrorKind::Blocked => false,
            TransportErrorKind::Dns
            | TransportErrorKind::Refused
            | TransportErrorKind::ConnectTimeout
            | TransportErrorKind::Connect
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

    /// The host name did not resolve ([`TransportErrorKind::Dns`]).
    pub fn dns(message: impl Into<String>) -> TransportError {
        TransportError::new(TransportErrorKind::Dns, message)
    }

    /// The address policy refused the address ([`TransportErrorKind::Blocked`], not retried).
    pub fn blocked(message: impl Into<String>) -> TransportError {
        TransportError::new(TransportErrorKind::Blocked, message)
    }

    /// The connection was refused ([`TransportErrorKind::Refused`]).
    pub fn refused(message: impl Into<String>) -> TransportError {
        TransportError::new(TransportErrorKind::Refused, message)
    }

    /// The connection was not established in time ([`TransportErrorKind::ConnectTimeout`]).
    pub fn connect_timeout(message: impl Into<String>) -> TransportError {
        TransportError::new(TransportErrorKind::ConnectTimeout, message)
    }

    /// No connection could be made, for another reason ([`TransportErrorKind::Connect`]).
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

/// The [`Timer`] of a tokio application: `tokio::time::sleep`, the system clock for
/// [`Timer::now`], and `tokio::time::Instant` for [`Timer::monotonic`] (so a paused test
/// clock measures paused time). Needs the `tokio` feature, and a tokio runtime with its time driver
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

    fn monotonic(&self) -> Option<Duration> {
        static ORIGIN: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
        let now = tokio::time::Instant::now();
        Some(now.saturating_duration_since(*ORIGIN.get_or_init(|| now)))
    }
}
