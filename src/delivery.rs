//! Delivery as a pure state machine: attempts in, "retry after T" or "done" out.
//!
//! A [`Delivery`] is one event (or automation body, or sample) on its way to one URL. It
//! reads no clock and does no I/O: whoever drives it — the [`Dispatcher`](crate::Dispatcher),
//! or your own worker pulling deliveries from a queue — performs an attempt, tells the
//! delivery what happened with [`Delivery::record`], and gets back a [`Step`]: wait
//! `after` and try again, or done with exactly one [`FinalOutcome`].
//!
//! **Time** comes in as an argument: `at` in [`Delivery::record`] is the offset of the
//! attempt from the start of the delivery, by the caller's clock. It is stored in the
//! [`Attempt`] for the record and never read back to make decisions; delays in [`Step::Retry`]
//! are relative ("wait this long from now"). A delivery serializes (serde), so it can sit in a
//! database or a queue between attempts.
//!
//! How a result is judged: see [`Verdict`].
//!
//! ```
//! use std::time::Duration;
//! use http::StatusCode;
//! use posthook::{AttemptOutcome, Delivery, DeliveryId, FinalOutcome, RetryPolicy, Step};
//!
//! let mut delivery = Delivery::new(DeliveryId::new(7), None, RetryPolicy::default());
//! // First attempt, at the start: the receiver is down.
//! let step = delivery.record(AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE), Duration::ZERO);
//! assert_eq!(step, Step::Retry { after: Duration::from_secs(30) });
//! // Thirty seconds later: it is back.
//! let step = delivery.record(AttemptOutcome::Status(StatusCode::OK), Duration::from_secs(30));
//! assert_eq!(step, Step::Done(FinalOutcome::Delivered { status: StatusCode::OK }));
//! assert_eq!(delivery.attempts().len(), 2);
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, StatusCode};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::transport::TransportError;
use crate::{Deactivation, WebhookId};

/// The longest wait posthook makes or stores: 365 days.
///
/// Every wait and lease is clamped to it, the same way everywhere: the wait of a
/// [`Step::Retry`] that [`Delivery::record_with`] returns (the policy's own delay, and a
/// receiver's `Retry-After`), [`RetryPolicy::delay_before`], and, in every
/// [`DeliveryStore`](crate::DeliveryStore) of this crate, the `after` of a
/// [`Step::Retry`] given to [`finish`](crate::DeliveryStore::finish) (a hand-made step too)
/// and the `lease` of a [`claim`](crate::DeliveryStore::claim). It is clamped, never
/// refused: a finish never fails because a wait is long.
///
/// Why a year:
///
/// - It is far longer than any wait a delivery needs: the default policy waits about 42
///   minutes in all, [Svix's schedule](RetryPolicy::svix) about 27 hours, a lease a minute.
///   A longer wait (`Retry-After: 99999999999999999999`, `with_max_backoff(Duration::MAX)`,
///   `claim(_, Duration::MAX)`) means "not for a very long time", which a year still says.
/// - "now + a year" fits every clock a store uses, with room to spare: PostgreSQL's
///   `interval` and `timestamptz`, SQLite's milliseconds in 64 bits, [`SystemTime`] on every
///   platform. So no store overflows, panics or refuses a wait, and the three agree.
///
/// [`Attempt::retry_after`] still records what the receiver asked for.
pub const MAX_WAIT: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// How many times to try a delivery, and how long to wait in between.
///
/// Two forms. **Exponential** (the default): the delay before attempt `n` (`n ≥ 2`) is
/// `initial_backoff × multiplier^(n-2)`, capped at `max_backoff`; attempt 1 goes at once.
/// **A schedule** ([`RetryPolicy::schedule`], [`RetryPolicy::svix`]): a list of waits, the
/// `i`-th before attempt `i + 1`, also capped at `max_backoff` (by default the longest wait
/// of the list).
///
/// Both forms take jitter the same way. Optional jitter shortens each delay by up to a
/// percentage, by an amount derived from the [`DeliveryId`] and the attempt number: two
/// deliveries of the same event spread out, and the same delivery always gets the same
/// delays (reproducible in tests and after a restart).
///
/// [`RetryPolicy::default`]: 5 attempts, 30 s initial backoff, ×4, at most 1 h, no jitter —
/// waits of 30 s, 2 min, 8 min and 32 min (about 42 minutes in all).
/// [`RetryPolicy::never`]: one attempt, ActiveCampaign's own behaviour ("webhooks are never
/// retried").
///
/// ```
/// use std::time::Duration;
/// use posthook::RetryPolicy;
///
/// let p = RetryPolicy::default();
/// assert_eq!(p.delay_before(1), Some(Duration::ZERO));
/// assert_eq!(p.delay_before(2), Some(Duration::from_secs(30)));
/// assert_eq!(p.delay_before(5), Some(Duration::from_secs(32 * 60)));
/// assert_eq!(p.delay_before(6), None); // there is no sixth attempt
/// assert_eq!(RetryPolicy::never().max_attempts(), 1);
///
/// // Svix's schedule: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h later.
/// let svix = RetryPolicy::svix();
/// assert_eq!(svix.max_attempts(), 8);
/// assert_eq!(svix.delay_before(3), Some(Duration::from_secs(5 * 60)));
/// assert_eq!(svix.delay_before(8), Some(Duration::from_secs(10 * 3600)));
/// ```
///
/// Serde writes the five numbers of the exponential form, and `schedule` (a list of
/// durations) only for a schedule; JSON written before schedules existed still reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    multiplier: u32,
    max_backoff: Duration,
    jitter_percent: u8,
    /// The waits of a schedule, shared between the clones of a policy (a fan-out clones the
    /// policy once per delivery).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "schedule_serde"
    )]
    schedule: Option<Arc<[Duration]>>,
}

/// Serde for a schedule as a plain list of durations.
mod schedule_serde {
    use std::sync::Arc;
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(
        schedule: &Option<Arc<[Duration]>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        schedule.as_deref().serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Arc<[Duration]>>, D::Error> {
        Ok(Option::<Vec<Duration>>::deserialize(deserializer)?.map(Arc::from))
    }
}

impl Default for RetryPolicy {
    /// 5 attempts; waits of 30 s, 2 min, 8 min, 32 min (×4 from 30 s, capped at 1 h); no jitter.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(30),
            multiplier: 4,
            max_backoff: Duration::from_secs(60 * 60),
            jitter_percent: 0,
            schedule: None,
        }
    }
}

impl RetryPolicy {
    /// One attempt, never retried: what ActiveCampaign does.
    pub const fn never() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            initial_backoff: Duration::ZERO,
            multiplier: 1,
            max_backoff: Duration::ZERO,
            jitter_percent: 0,
            schedule: None,
        }
    }

    /// A schedule: the first attempt at once, then one retry after each wait of `waits`, in
    /// order (`waits.len() + 1` attempts in all; none for an empty list). Waits are capped at
    /// [`max_backoff`](RetryPolicy::max_backoff), which starts as the longest of them.
    ///
    /// [`with_max_attempts`](RetryPolicy::with_max_attempts) cuts the list short or, past
    /// its end, repeats its last wait; [`with_initial_backoff`](RetryPolicy::with_initial_backoff)
    /// and [`with_multiplier`](RetryPolicy::with_multiplier) do not apply to a schedule.
    ///
    /// ```
    /// use std::time::Duration;
    /// use posthook::RetryPolicy;
    ///
    /// let p = RetryPolicy::schedule([Duration::from_secs(1), Duration::from_secs(60)]);
    /// assert_eq!(p.max_attempts(), 3);
    /// assert_eq!(p.delay_before(2), Some(Duration::from_secs(1)));
    /// assert_eq!(p.delay_before(3), Some(Duration::from_secs(60)));
    /// assert_eq!(p.with_max_attempts(4).delay_before(4), Some(Duration::from_secs(60)));
    /// ```
    pub fn schedule(waits: impl IntoIterator<Item = Duration>) -> RetryPolicy {
        let waits: Arc<[Duration]> = waits.into_iter().collect();
        let attempts = u32::try_from(waits.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        RetryPolicy {
            max_attempts: attempts,
            initial_backoff: waits.first().copied().unwrap_or(Duration::ZERO),
            multiplier: 1,
            max_backoff: waits.iter().copied().max().unwrap_or(Duration::ZERO),
            jitter_percent: 0,
            schedule: Some(waits),
        }
    }

    /// Svix's schedule: at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h
    /// (8 attempts over about 27 hours and a half).
    pub fn svix() -> RetryPolicy {
        const MIN: u64 = 60;
        const HOUR: u64 = 60 * MIN;
        RetryPolicy::schedule(
            [
                5,
                5 * MIN,
                30 * MIN,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                10 * HOUR,
            ]
            .map(Duration::from_secs),
        )
    }

    /// The waits of a schedule ([`RetryPolicy::schedule`]); `None` for the exponential form.
    pub fn waits(&self) -> Option<&[Duration]> {
        self.schedule.as_deref()
    }

    /// This policy with at most `max_attempts` attempts in all (the first one included);
    /// `0` counts as `1`.
    #[must_use]
    pub const fn with_max_attempts(mut self, max_attempts: u32) -> RetryPolicy {
        self.max_attempts = if max_attempts == 0 { 1 } else { max_attempts };
        self
    }

    /// This policy waiting `initial_backoff` before the second attempt.
    #[must_use]
    pub const fn with_initial_backoff(mut self, initial_backoff: Duration) -> RetryPolicy {
        self.initial_backoff = initial_backoff;
        self
    }

    /// This policy multiplying the wait by `multiplier` after each retry; `0` counts as `1`
    /// (a constant wait).
    #[must_use]
    pub const fn with_multiplier(mut self, multiplier: u32) -> RetryPolicy {
        self.multiplier = if multiplier == 0 { 1 } else { multiplier };
        self
    }

    /// This policy never waiting longer than `max_backoff` between two attempts (and never
    /// longer than [`MAX_WAIT`], whatever `max_backoff` says).
    #[must_use]
    pub const fn with_max_backoff(mut self, max_backoff: Duration) -> RetryPolicy {
        self.max_backoff = max_backoff;
        self
    }

    /// This policy shortening each wait by up to `percent` % (capped at 100), by an amount
    /// derived from the delivery id and the attempt number. `0` turns jitter off.
    #[must_use]
    pub const fn with_jitter(mut self, percent: u8) -> RetryPolicy {
        self.jitter_percent = if percent > 100 { 100 } else { percent };
        self
    }

    /// The most attempts a delivery gets, the first one included (at least 1).
    #[inline]
    pub const fn max_attempts(&self) -> u32 {
        if self.max_attempts == 0 {
            1
        } else {
            self.max_attempts
        }
    }

    /// The wait before the second attempt.
    #[inline]
    pub const fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// The factor between two successive waits (at least 1).
    #[inline]
    pub const fn multiplier(&self) -> u32 {
        if self.multiplier == 0 {
            1
        } else {
            self.multiplier
        }
    }

    /// The longest wait between two attempts.
    #[inline]
    pub const fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// The jitter, in percent of each wait (0 = none).
    #[inline]
    pub const fn jitter_percent(&self) -> u8 {
        if self.jitter_percent > 100 {
            100
        } else {
            self.jitter_percent
        }
    }

    /// The wait before attempt `attempt` (1-based), without jitter: zero for the first,
    /// `None` for `0` or past [`max_attempts`](RetryPolicy::max_attempts). Never above
    /// [`max_backoff`](RetryPolicy::max_backoff), nor above [`MAX_WAIT`]; non-decreasing in `attempt` for the
    /// exponential form (a schedule's waits come in the order of its list).
    pub fn delay_before(&self, attempt: u32) -> Option<Duration> {
        if attempt == 0 || attempt > self.max_attempts() {
            return None;
        }
        if attempt == 1 {
            return Some(Duration::ZERO);
        }
        if let Some(waits) = &self.schedule {
            let index = usize::try_from(attempt - 2).unwrap_or(usize::MAX);
            let wait = waits.get(index).or(waits.last()).copied();
            return Some(wait.unwrap_or(Duration::ZERO).min(self.cap()));
        }
        // initial × multiplier^(attempt - 2), in nanoseconds, saturating: once the product
        // reaches the cap it stays there, and a zero initial wait stays zero.
        let cap = self.cap().as_nanos();
        let mut nanos = self.initial_backoff.as_nanos().min(cap);
        for _ in 2..attempt {
            // At most ~128 rounds: with a factor of 2 or more the product reaches any cap
            // (below 2^128 ns) by then; with a factor of 1 it never changes.
            if nanos == 0 || nanos >= cap || self.multiplier() == 1 {
                break;
            }
            nanos = nanos.saturating_mul(u128::from(self.multiplier())).min(cap);
        }
        Some(duration_from_nanos(nanos))
    }

    /// The longest wait this policy makes: its `max_backoff`, within [`MAX_WAIT`].
    fn cap(&self) -> Duration {
        self.max_backoff.min(MAX_WAIT)
    }

    /// The wait before attempt `attempt` of delivery `id`, jitter applied: between
    /// `(100 - jitter_percent)` % and 100 % of [`delay_before`](RetryPolicy::delay_before),
    /// the same every time for the same `id` and `attempt`.
    pub fn delay_for(&self, id: DeliveryId, attempt: u32) -> Option<Duration> {
        let base = self.delay_before(attempt)?;
        let jitter = u128::from(self.jitter_percent());
        if jitter == 0 || base.is_zero() {
            return Some(base);
        }
        // A fraction in [0, 1] in thousandths, from the id and the attempt.
        let seed = (id.0 as u64) ^ ((id.0 >> 64) as u64) ^ u64::from(attempt).rotate_left(32);
        let thousandths = u128::from(splitmix64(seed) % 1001);
        let nanos = base.as_nanos();
        let cut = nanos / 100_000 * jitter * thousandths
            + nanos % 100_000 * jitter * thousandths / 100_000;
        Some(duration_from_nanos(nanos.saturating_sub(cut)))
    }
}

/// A 64-bit mix (splitmix64's finalizer): a fixed, well-spread function of its input.
const fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn duration_from_nanos(nanos: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits a u32.
    let sub = u32::try_from(nanos % NANOS_PER_SEC).unwrap_or(0);
    Duration::new(secs, sub)
}

/// The id of one delivery: the same for all its attempts (receivers use it to drop
/// duplicates), different between deliveries.
///
/// Opaque 128 bits, displayed (and serialized) as 32 lower-case hex digits; the dispatcher
/// sends it in the `X-Posthook-Delivery` header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryId(u128);

impl DeliveryId {
    /// An id from its 128 bits.
    #[inline]
    pub const fn new(id: u128) -> DeliveryId {
        DeliveryId(id)
    }

    /// The id's 128 bits.
    #[inline]
    pub const fn get(self) -> u128 {
        self.0
    }

    /// The 32 lower-case hex digits of [`Display`](fmt::Display), without formatting.
    pub(crate) fn to_hex(self) -> [u8; 32] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            let nibble = (self.0 >> (124 - 4 * i)) & 0xf;
            *byte = DIGITS[nibble as usize];
        }
        out
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeliveryId({self})")
    }
}

/// Text that is not a delivery id (1 to 32 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid delivery id {input:?}: expected 1 to 32 hex digits")]
pub struct InvalidDeliveryId {
    input: String,
}

impl InvalidDeliveryId {
    /// The text that was not a delivery id.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl FromStr for DeliveryId {
    type Err = InvalidDeliveryId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
        let parsed = if ok {
            u128::from_str_radix(s, 16).ok()
        } else {
            None
        };
        parsed.map(DeliveryId).ok_or_else(|| InvalidDeliveryId {
            input: s.to_owned(),
        })
    }
}

impl Serialize for DeliveryId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeliveryId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Serde for a [`StatusCode`] as its number.
mod status_serde {
    use http::StatusCode;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        status: &StatusCode,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(status.as_u16())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<StatusCode, D::Error> {
        let code = u16::deserialize(deserializer)?;
        StatusCode::from_u16(code).map_err(serde::de::Error::custom)
    }
}

/// What one attempt got: a response status, or a transport error (a missed deadline is a
/// [`TransportError::timeout`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The receiver answered with this status.
    Status(#[serde(with = "status_serde")] StatusCode),
    /// No answer: the transport failed, or the deadline passed.
    Error(TransportError),
    /// The worker that held the lease on this delivery did not finish it before the lease
    /// ran out (it was killed, or stalled): whether the receiver got the request is not
    /// known. Recorded by the [`Worker`](crate::Worker) that claims the delivery next;
    /// it counts as an attempt and is retried like a timeout. Its own kind, so that a
    /// delivery log can tell "the worker died" from "the receiver was slow".
    Lapsed,
}

impl AttemptOutcome {
    /// How this result is judged (see [`Verdict`]).
    pub fn verdict(&self) -> Verdict {
        match self {
            AttemptOutcome::Status(status) => Verdict::of_status(*status),
            AttemptOutcome::Error(error) if error.is_retryable() => Verdict::Retry,
            AttemptOutcome::Error(_) => Verdict::Fail,
            AttemptOutcome::Lapsed => Verdict::Retry,
        }
    }

    /// The status, when there was a response.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            AttemptOutcome::Status(status) => Some(*status),
            AttemptOutcome::Error(_) | AttemptOutcome::Lapsed => None,
        }
    }

    /// The transport error, when there was no response.
    pub fn error(&self) -> Option<&TransportError> {
        match self {
            AttemptOutcome::Status(_) | AttemptOutcome::Lapsed => None,
            AttemptOutcome::Error(error) => Some(error),
        }
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptOutcome::Status(status) => write!(f, "HTTP {status}"),
            AttemptOutcome::Error(error) => fmt::Display::fmt(error, f),
            AttemptOutcome::Lapsed => f.write_str(
                "the lease ran out before the attempt was finished (the worker stopped?)",
            ),
        }
    }
}

impl From<StatusCode> for AttemptOutcome {
    fn from(status: StatusCode) -> Self {
        AttemptOutcome::Status(status)
    }
}

impl From<TransportError> for AttemptOutcome {
    fn from(error: TransportError) -> Self {
        AttemptOutcome::Error(error)
    }
}

impl From<Result<StatusCode, TransportError>> for AttemptOutcome {
    fn from(result: Result<StatusCode, TransportError>) -> Self {
        match result {
            Ok(status) => AttemptOutcome::Status(status),
            Err(error) => AttemptOutcome::Error(error),
        }
    }
}

/// The wait a `Retry-After` header asks for, as of `now`: `Some` for a number of seconds
/// (`120`) or an HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`, or the two obsolete forms),
/// `Duration::ZERO` for a date already past, `None` for anything else.
///
/// Pure: the caller says what time it is (the [`Dispatcher`](crate::Dispatcher) passes
/// [`Timer::now`](crate::Timer::now)). The dispatcher reads the header of `429` and `503`
/// answers only, and [`Delivery::record_with`] waits at least that long (within [`MAX_WAIT`]).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderValue;
/// use posthook::parse_retry_after;
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 UTC
/// assert_eq!(parse_retry_after(&HeaderValue::from_static("120"), now), Some(Duration::from_secs(120)));
/// let date = HeaderValue::from_static("Wed, 21 Oct 2015 07:29:00 GMT");
/// assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(60)));
/// assert_eq!(parse_retry_after(&HeaderValue::from_static("soon"), now), None);
/// ```
pub fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: seconds; a number too large for u64 is "a very long time".
        let secs = text.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether an answer with this outcome may set the next wait through `Retry-After`: `429`
/// and `503`.
fn honours_retry_after(outcome: &AttemptOutcome) -> bool {
    matches!(
        outcome.status(),
        Some(StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE)
    )
}

/// How one attempt's result is judged:
///
/// | result | verdict |
/// |---|---|
/// | `2xx` | success: [`FinalOutcome::Delivered`] |
/// | `410 Gone` | gone: [`FinalOutcome::Gone`], deactivate the webhook for good, no retry |
/// | `429`, `5xx`, any transport error but a blocked address (DNS, refused, connect timeout, connection, TLS, timeout, I/O, other) | retry, while the [`RetryPolicy`] allows, then [`FinalOutcome::GaveUp`] ([`FinalOutcome::Failed`] when the policy allows one attempt only) |
/// | `3xx` (redirects are not followed), other `4xx`, `1xx`, an address the [`AddressPolicy`](crate::AddressPolicy) blocks ([`TransportErrorKind::Blocked`](crate::TransportErrorKind::Blocked)) | [`FinalOutcome::Failed`], no retry |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// `2xx`: delivered.
    Success,
    /// `410 Gone`: the receiver asks never to be called again; deactivate the webhook.
    Gone,
    /// `429`, `5xx`, a timeout, a DNS, connection, TLS or I/O error: try again if the policy
    /// allows.
    Retry,
    /// A redirect (`3xx`, not followed), any other `4xx`, a `1xx`, a blocked address: failed
    /// for good.
    Fail,
}

impl Verdict {
    /// The verdict on a response with `status`.
    pub fn of_status(status: StatusCode) -> Verdict {
        if status.is_success() {
            Verdict::Success
        } else if status == StatusCode::GONE {
            Verdict::Gone
        } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Verdict::Retry
        } else {
            Verdict::Fail
        }
    }
}

/// One attempt of a delivery, for the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Attempt {
    /// 1 for the first attempt, 2 for the first retry, ...
    pub number: u32,
    /// What it got.
    pub outcome: AttemptOutcome,
    /// When it was made: the offset from the start of the delivery, as the caller gave it to
    /// [`Delivery::record`]. (The [`Dispatcher`](crate::Dispatcher) reads no clock: it passes
    /// the sum of the waits it made through its [`Timer`](crate::Timer) — backoff delays and
    /// missed deadlines — a lower bound of the real time — unless its timer has a
    /// [monotonic clock](crate::Timer::monotonic): then the time elapsed by that clock.)
    pub at: Duration,
    /// How long the attempt took, when the driver had a clock to tell
    /// ([`AttemptMeta::duration`]); `None` otherwise (and in JSON written without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
    /// The wait the receiver asked for with `Retry-After` (a `429` or `503` answer), if it
    /// did. The wait actually made is this (never shorter than the policy's own delay, even
    /// when longer than its [`max_backoff`](RetryPolicy::max_backoff)), and never above
    /// [`MAX_WAIT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<Duration>,
}

/// What a driver knows about an attempt besides its outcome, for [`Delivery::record_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AttemptMeta {
    /// The wait a `Retry-After` header asked for ([`parse_retry_after`]). Used only for
    /// `429` and `503` answers.
    pub retry_after: Option<Duration>,
    /// How long the attempt took, by the driver's clock.
    pub duration: Option<Duration>,
}

impl AttemptMeta {
    /// Nothing known.
    pub const fn new() -> AttemptMeta {
        AttemptMeta {
            retry_after: None,
            duration: None,
        }
    }

    /// With the wait `Retry-After` asked for.
    #[must_use]
    pub const fn with_retry_after(mut self, retry_after: Option<Duration>) -> AttemptMeta {
        self.retry_after = retry_after;
        self
    }

    /// With the attempt's duration.
    #[must_use]
    pub const fn with_duration(mut self, duration: Option<Duration>) -> AttemptMeta {
        self.duration = duration;
        self
    }
}

/// How a delivery ended: exactly one of these per delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
#[non_exhaustive]
pub enum FinalOutcome {
    /// The receiver answered `2xx`.
    Delivered {
        /// The status it answered.
        #[serde(with = "status_serde")]
        status: StatusCode,
    },
    /// The receiver answered `410 Gone`: deactivate the webhook for good
    /// ([`Registry::deactivate`](crate::Registry::deactivate) with
    /// [`Deactivation::Gone`](crate::Deactivation::Gone)).
    Gone,
    /// Failed without (further) retry: a redirect, a `4xx` other than `410`/`429`, a blocked
    /// address, a URL that cannot be sent at all, a transport that panicked, or a retryable
    /// result under a policy that allows one attempt only ([`RetryPolicy::never`]).
    Failed {
        /// Why, for people.
        reason: String,
    },
    /// Every attempt the policy allows — more than one — failed in a retryable way.
    GaveUp {
        /// What the last attempt got.
        last: AttemptOutcome,
    },
    /// Cancelled before it ended: its webhook was switched off or deleted. Nothing is
    /// attempted after a cancel; an attempt already in flight is recorded (and, if it
    /// ended the delivery, its outcome replaces this one).
    Cancelled {
        /// Why.
        reason: CancelReason,
    },
}

/// Why a delivery was [cancelled](FinalOutcome::Cancelled).
///
/// Serde writes `{"switched_off": "manual"}` (with the [`Deactivation`] as it writes it)
/// and `"deleted"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CancelReason {
    /// Its webhook was switched off: by hand, by a `410 Gone` answer, or by the
    /// [`EndpointHealth`](crate::EndpointHealth) rule.
    SwitchedOff(Deactivation),
    /// Its webhook was deleted.
    Deleted,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::SwitchedOff(Deactivation::Gone) => {
                f.write_str("the webhook was switched off: its endpoint answered 410 Gone")
            }
            CancelReason::SwitchedOff(Deactivation::Manual) => {
                f.write_str("the webhook was switched off")
            }
            CancelReason::SwitchedOff(Deactivation::Failing { failures, .. }) => write!(
                f,
                "the webhook was switched off after {failures} failed deliveries in a row"
            ),
            CancelReason::Deleted => f.write_str("the webhook was deleted"),
        }
    }
}

impl FinalOutcome {
    /// Whether the receiver got it (`2xx`).
    pub fn is_delivered(&self) -> bool {
        matches!(self, FinalOutcome::Delivered { .. })
    }

    /// Whether the receiver answered `410 Gone`.
    pub fn is_gone(&self) -> bool {
        matches!(self, FinalOutcome::Gone)
    }

    /// Whether it was cancelled ([`FinalOutcome::Cancelled`]).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, FinalOutcome::Cancelled { .. })
    }
}

impl fmt::Display for FinalOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FinalOutcome::Delivered { status } => write!(f, "delivered (HTTP {status})"),
            FinalOutcome::Gone => f.write_str("gone (HTTP 410): deactivate the webhook"),
            FinalOutcome::Failed { reason } => write!(f, "failed: {reason}"),
            FinalOutcome::GaveUp { last } => write!(f, "gave up; last attempt: {last}"),
            FinalOutcome::Cancelled { reason } => write!(f, "cancelled: {reason}"),
        }
    }
}

/// What to do after recording an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)] // a delivery either goes on or ends: there is no third way
pub enum Step {
    /// Wait `after` (from now), then make the next attempt.
    Retry {
        /// How long to wait.
        after: Duration,
    },
    /// The delivery is over.
    Done(FinalOutcome),
}

/// One delivery: its id, its webhook, its policy, its attempts so far and, once over, its
/// one [`FinalOutcome`].
///
/// ```
/// use std::time::Duration;
/// use http::StatusCode;
/// use posthook::{AttemptOutcome, Delivery, DeliveryId, FinalOutcome, RetryPolicy, Step, TransportError};
///
/// let policy = RetryPolicy::default().with_max_attempts(2);
/// let mut d = Delivery::new(DeliveryId::new(1), None, policy);
/// assert!(matches!(d.record(TransportError::connect("refused").into(), Duration::ZERO), Step::Retry { .. }));
/// let step = d.record(AttemptOutcome::Status(StatusCode::BAD_GATEWAY), Duration::from_secs(30));
/// assert!(matches!(step, Step::Done(FinalOutcome::GaveUp { .. })));
/// assert!(d.is_done());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    id: DeliveryId,
    webhook_id: Option<WebhookId>,
    policy: RetryPolicy,
    attempts: Vec<Attempt>,
    outcome: Option<FinalOutcome>,
    /// For a resend: the delivery it resends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resent_from: Option<DeliveryId>,
    /// For a resend: the id of the first delivery of the chain, the one receivers see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_id: Option<DeliveryId>,
}

impl Delivery {
    /// A delivery not yet attempted. `webhook_id` is `None` for sends that have no
    /// subscription (automation steps, probes).
    pub fn new(id: DeliveryId, webhook_id: Option<WebhookId>, policy: RetryPolicy) -> Delivery {
        Delivery {
            id,
            webhook_id,
            policy,
            attempts: Vec::new(),
            outcome: None,
            resent_from: None,
            message_id: None,
        }
    }

    /// A new delivery `id` that sends this one's event again to the same webhook, with the
    /// same retry policy and no attempt yet: what a store's
    /// [`resend`](crate::DeliveryStore::resend) makes. It is linked to this one
    /// ([`resent_from`](Delivery::resent_from)) and keeps its
    /// [`message_id`](Delivery::message_id).
    pub fn resend(&self, id: DeliveryId) -> Delivery {
        Delivery {
            resent_from: Some(self.id),
            message_id: Some(self.message_id()),
            ..Delivery::new(id, self.webhook_id, self.policy.clone())
        }
    }

    /// For a resend, the delivery it sends again.
    #[inline]
    pub fn resent_from(&self) -> Option<DeliveryId> {
        self.resent_from
    }

    /// The id receivers see, in [`DELIVERY_ID_HEADER`](crate::DELIVERY_ID_HEADER) and the
    /// signature's `webhook-id`: the delivery's own [`id`](Delivery::id), except for a
    /// resend, which carries the id of the first delivery it resends (a resend of a resend
    /// too). Standard Webhooks asks for it ("the same when the same webhook is being
    /// resent"): a receiver that drops duplicates by id keeps doing so, so that a resend
    /// of a delivery it did process is not processed twice, while one it never accepted
    /// (failed, gave up, cancelled) is new to it. To make a receiver process an event
    /// again, publish it again.
    #[inline]
    pub fn message_id(&self) -> DeliveryId {
        self.message_id.unwrap_or(self.id)
    }

    /// The id, the same for every attempt.
    #[inline]
    pub fn id(&self) -> DeliveryId {
        self.id
    }

    /// The webhook it is for, if any.
    #[inline]
    pub fn webhook_id(&self) -> Option<WebhookId> {
        self.webhook_id
    }

    /// The retry policy.
    #[inline]
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The attempts so far, in order.
    #[inline]
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// How it ended, once it has.
    #[inline]
    pub fn outcome(&self) -> Option<&FinalOutcome> {
        self.outcome.as_ref()
    }

    /// Whether it is over.
    #[inline]
    pub fn is_done(&self) -> bool {
        self.outcome.is_some()
    }

    /// The number of the next attempt, or `None` once it is over.
    pub fn next_attempt(&self) -> Option<u32> {
        if self.is_done() {
            None
        } else {
            Some(self.attempt_count().saturating_add(1))
        }
    }

    fn attempt_count(&self) -> u32 {
        u32::try_from(self.attempts.len()).unwrap_or(u32::MAX)
    }

    /// Records the result of the next attempt, made `at` after the start of the delivery,
    /// and says what comes next: [`record_with`](Delivery::record_with) with nothing else
    /// known.
    ///
    /// Once the delivery is over, nothing more is recorded: the call returns the same
    /// [`Step::Done`] again (so a driver that records twice cannot create a second outcome).
    pub fn record(&mut self, outcome: AttemptOutcome, at: Duration) -> Step {
        self.record_with(outcome, at, AttemptMeta::new())
    }

    /// Records the result of the next attempt, made `at` after the start of the delivery,
    /// with what else the driver knows (`meta`), and says what comes next.
    ///
    /// A `429` or `503` whose `Retry-After` asked for a wait ([`AttemptMeta::retry_after`])
    /// makes the next wait that long — longer than the policy's
    /// [`max_backoff`](RetryPolicy::max_backoff) if that is what it asked (a receiver that
    /// says "not before" is not asked earlier), never shorter than the policy's own delay;
    /// it gives no extra attempt. No wait is ever longer than [`MAX_WAIT`]. A retryable result under a policy of one attempt
    /// ends [`FinalOutcome::Failed`]; after more than one attempt, [`FinalOutcome::GaveUp`].
    ///
    /// Once the delivery is over, nothing more is recorded.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::StatusCode;
    /// use posthook::{AttemptMeta, AttemptOutcome, Delivery, DeliveryId, RetryPolicy, Step};
    ///
    /// let mut d = Delivery::new(DeliveryId::new(1), None, RetryPolicy::default());
    /// let meta = AttemptMeta::new().with_retry_after(Some(Duration::from_secs(300)));
    /// let step = d.record_with(AttemptOutcome::Status(StatusCode::TOO_MANY_REQUESTS), Duration::ZERO, meta);
    /// assert_eq!(step, Step::Retry { after: Duration::from_secs(300) }); // not the policy's 30 s
    /// assert_eq!(d.attempts()[0].retry_after, Some(Duration::from_secs(300)));
    /// ```
    pub fn record_with(
        &mut self,
        outcome: AttemptOutcome,
        at: Duration,
        meta: AttemptMeta,
    ) -> Step {
        if let Some(done) = &self.outcome {
            return Step::Done(done.clone());
        }
        let number = self.attempt_count().saturating_add(1);
        let retry_after = meta.retry_after.filter(|_| honours_retry_after(&outcome));
        let attempt = |outcome| Attempt {
            number,
            outcome,
            at,
            duration: meta.duration,
            retry_after,
        };
        let done = match outcome.verdict() {
            Verdict::Success => FinalOutcome::Delivered {
                status: outcome.status().unwrap_or(StatusCode::OK),
            },
            Verdict::Gone => FinalOutcome::Gone,
            Verdict::Fail => FinalOutcome::Failed {
                reason: failure_reason(&outcome),
            },
            Verdict::Retry => {
                let next = number
                    .checked_add(1)
                    .and_then(|next| self.policy.delay_for(self.id, next));
                match next {
                    Some(delay) => {
                        let after = match retry_after {
                            // "Not before": never earlier than asked, whatever the
                            // policy's longest wait (MAX_WAIT bounds it below).
                            Some(asked) => asked.max(delay),
                            None => delay,
                        }
                        .min(MAX_WAIT);
                        self.push_attempt(attempt(outcome));
                        return Step::Retry { after };
                    }
                    None if number <= 1 => FinalOutcome::Failed {
                        reason: format!(
                            "{outcome}: not retried (the retry policy allows one attempt)"
                        ),
                    },
                    None => FinalOutcome::GaveUp {
                        last: outcome.clone(),
                    },
                }
            }
        };
        self.push_attempt(attempt(outcome));
        self.outcome = Some(done.clone());
        Step::Done(done)
    }

    /// Keeps `attempt`. Most deliveries make one: the first gets room for one, not the
    /// four a `Vec` starts with (a fan-out of 100,000 keeps 26 MB less in flight).
    fn push_attempt(&mut self, attempt: Attempt) {
        if self.attempts.capacity() == 0 {
            self.attempts.reserve_exact(1);
        }
        self.attempts.push(attempt);
    }

    /// Records the next attempt, made `at` after the start, and ends the delivery as
    /// [`FinalOutcome::Failed`] with `reason`, whatever the attempt's verdict: for an attempt
    /// that went wrong on the sender's side (the dispatcher uses it when the transport
    /// panics). Returns the final outcome; once the delivery is over, records nothing.
    pub fn record_failed(
        &mut self,
        outcome: AttemptOutcome,
        at: Duration,
        reason: impl Into<String>,
    ) -> FinalOutcome {
        if let Some(done) = &self.outcome {
            return done.clone();
        }
        let number = self.attempt_count().saturating_add(1);
        self.push_attempt(Attempt {
            number,
            outcome,
            at,
            duration: None,
            retry_after: None,
        });
        let done = FinalOutcome::Failed {
            reason: reason.into(),
        };
        self.outcome = Some(done.clone());
        done
    }

    /// Ends the delivery as [`FinalOutcome::Failed`] with `reason`, without (another)
    /// attempt — e.g. its URL cannot be sent at all, or the application cancels it. Returns
    /// the final outcome: the earlier one if the delivery was already over.
    pub fn fail(&mut self, reason: impl Into<String>) -> FinalOutcome {
        self.outcome
            .get_or_insert_with(|| FinalOutcome::Failed {
                reason: reason.into(),
            })
            .clone()
    }

    /// Ends the delivery as [`FinalOutcome::Cancelled`] with `reason`, without (another)
    /// attempt. Returns the final outcome: the earlier one if the delivery was already over.
    pub fn cancel(&mut self, reason: CancelReason) -> FinalOutcome {
        self.outcome
            .get_or_insert(FinalOutcome::Cancelled { reason })
            .clone()
    }

    /// Records an attempt that was in flight when the delivery was cancelled: the
    /// attempts of `attempted` (this delivery as the attempt left it) replace these; if
    /// that attempt ended the delivery, its outcome replaces the cancel, else the cancel
    /// stays. For stores, when a finish comes for a delivery cancelled while leased.
    pub fn record_in_flight(&mut self, attempted: &Delivery) {
        self.attempts.clone_from(&attempted.attempts);
        if let Some(done) = &attempted.outcome {
            self.outcome = Some(done.clone());
        }
    }

    /// The final outcome (if over) and the attempts, taking the delivery apart.
    pub fn into_parts(self) -> (Option<FinalOutcome>, Vec<Attempt>) {
        (self.outcome, self.attempts)
    }
}

/// Why an attempt with a [`Verdict::Fail`] is not retried.
fn failure_reason(outcome: &AttemptOutcome) -> String {
    match outcome {
        AttemptOutcome::Status(status) if status.is_redirection() => {
            format!("HTTP {status}: redirects are not followed")
        }
        AttemptOutcome::Status(status) if status.is_informational() => {
            format!("HTTP {status}: an informational status is not an answer")
        }
        AttemptOutcome::Status(status) => format!("HTTP {status}: not retried"),
        AttemptOutcome::Error(error) => format!("{error}: not retried"),
        AttemptOutcome::Lapsed => format!("{outcome}: not retried"),
    }
}
