//! Webhook subscriptions: who gets which events, and where.
//!
//! A [`Webhook`] is a name, a [`WebhookUrl`], the [`EventSet`] and [`SourceSet`] it listens to,
//! and a [`ListScope`]. Build one with [`Webhook::builder`]; errors are deferred to
//! [`WebhookBuilder::build`], which reports the first one.
//!
//! Serde reads and writes the object of ActiveCampaign's API v3 (`{"webhook": {...}}` holds it;
//! [`WebhookEnvelope`] is that wrapper). `listid` is read as a string or a number, and `"0"`, `0`,
//! `null` or a missing `listid` mean all lists; it is written as a string. `id` and `cdate` are
//! read and written back.
//!
//! A webhook may also carry delivery settings of its own, which are not part of the API's
//! JSON (serde skips them): a [`RetryPolicy`] and an attempt timeout that override the
//! [`Dispatcher`](crate::Dispatcher)'s, and, with feature `signing`, signing secrets that
//! replace the dispatcher's for this webhook. Secrets never appear in `Debug` or in JSON.
//!
//! Its own HTTP headers ([`WebhookBuilder::header`]), sent with every attempt, are stored
//! with it: the JSON carries them as `"headers": {"name": "value", ...}` (names in lower
//! case; left out when there are none), read back through the same checks as the builder's.
//! `Debug` shows their names, not their values (they often carry a token).
//!
//! ```
//! use posthook::{EventKind, ListScope, Source, Webhook};
//!
//! let hook = Webhook::builder("Zapier: unsubscribes", "https://hooks.zapier.com/hooks/catch/1/a/")
//!     .events([EventKind::Unsubscribe])
//!     .sources(Source::ALL)
//!     .scope(ListScope::All)
//!     .build()?;
//! assert!(hook.is_active());
//! assert!(hook.events().contains(EventKind::Unsubscribe));
//! # Ok::<(), posthook::Error>(())
//! ```

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
#[cfg(feature = "signing")]
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, WebhookError};
use crate::url::{UrlPolicy, WebhookUrl};
use crate::{EventKind, EventSet, ListScope, RetryPolicy, Source, SourceSet};

/// The id of a webhook: ActiveCampaign's numeric `id`, also the key of a
/// `Registry`. Serde writes it as a string and reads a string or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebhookId(u64);

impl WebhookId {
    /// An id from its number.
    #[inline]
    pub const fn new(id: u64) -> WebhookId {
        WebhookId(id)
    }

    /// The id as a number.
    #[inline]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for WebhookId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(WebhookId)
    }
}

impl From<u64> for WebhookId {
    fn from(id: u64) -> Self {
        WebhookId(id)
    }
}

impl Serialize for WebhookId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for WebhookId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = WebhookId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a webhook id as a number or a numeric string")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<WebhookId, E> {
                Ok(WebhookId(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<WebhookId, E> {
                u64::try_from(v)
                    .map(WebhookId)
                    .map_err(|_| E::custom(format_args!("invalid webhook id {v}")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<WebhookId, E> {
                v.trim()
                    .parse()
                    .map_err(|_| E::custom(format_args!("invalid webhook id {v:?}")))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Why a webhook stopped receiving events.
///
/// Serde writes `"gone"` and `"manual"` as strings (as before) and
/// `{"failing": {"since": 1700000000, "failures": 12}}` for [`Deactivation::Failing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Deactivation {
    /// Its endpoint answered `410 Gone`: deactivated for good, as ActiveCampaign does.
    Gone,
    /// The application (or its user) switched it off.
    Manual,
    /// Its deliveries kept failing: the [`EndpointHealth`](crate::EndpointHealth) rule
    /// switched it off.
    Failing {
        /// When the streak of failures began: Unix seconds (UTC), by the clock the
        /// dispatcher was given ([`Timer::now`](crate::Timer::now)).
        since: u64,
        /// How many deliveries in a row had failed.
        failures: u32,
    },
}

impl Deactivation {
    /// The reason as a short id: `"gone"`, `"manual"` or `"failing"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Deactivation::Gone => "gone",
            Deactivation::Manual => "manual",
            Deactivation::Failing { .. } => "failing",
        }
    }
}

/// Why a webhook is off, in one byte; the details of `Failing` live in [`Overrides`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Off {
    Gone,
    Manual,
    Failing,
}

/// A webhook's own delivery settings, and the details of a `Failing` deactivation; boxed in
/// [`Webhook`], which most webhooks leave empty (so a webhook stays small in a registry).
#[derive(Clone, PartialEq, Eq, Default)]
struct Overrides {
    /// `since` and `failures` of [`Deactivation::Failing`].
    failing: Option<(u64, u32)>,
    retry_policy: Option<RetryPolicy>,
    attempt_timeout: Option<Duration>,
    pacing: Option<crate::Pacing>,
    /// Its own headers; `None` when it has none (never an empty map). Shared: a dispatch
    /// plan takes a reference, not a copy.
    headers: Option<Arc<HeaderMap>>,
    #[cfg(feature = "signing")]
    signing_secrets: crate::sign::Secrets,
}

impl Overrides {
    fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }

    fn secret_count(&self) -> usize {
        #[cfg(feature = "signing")]
        return self.signing_secrets.len();
        #[cfg(not(feature = "signing"))]
        0
    }
}

impl fmt::Debug for Overrides {
    /// Shows how many secrets there are, never a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overrides")
            .field("retry_policy", &self.retry_policy)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("pacing", &self.pacing)
            .field("headers", &HeaderNames(self.headers.as_deref()))
            .field("signing_secrets", &self.secret_count())
            .finish()
    }
}

/// The map of a webhook without headers of its own.
static NO_HEADERS: LazyLock<HeaderMap> = LazyLock::new(HeaderMap::new);

/// An empty header map, for whatever has no headers of its own.
pub(crate) fn no_headers() -> &'static HeaderMap {
    &NO_HEADERS
}

/// Shows the names of headers, not their values (they often carry a token).
pub(crate) struct HeaderNames<'a>(pub(crate) Option<&'a HeaderMap>);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.into_iter().flat_map(HeaderMap::keys))
            .finish()
    }
}

/// The headers posthook sets on every request, and those that belong to the connection
/// rather than to the message (RFC 9110, section 7.6.1, and `keep-alive`,
/// `proxy-connection`): a webhook cannot have any of them as its own.
const RESERVED_HEADERS: [&str; 15] = [
    "content-type",
    "content-length",
    "content-encoding",
    "host",
    "user-agent",
    "expect",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` (lower case, as [`HeaderName`] keeps it) is one a webhook cannot set.
fn is_reserved(name: &str) -> bool {
    RESERVED_HEADERS.contains(&name)
        || name.starts_with("webhook-")
        || name.starts_with("x-posthook-")
}

/// Checks a header of a webhook's own: a valid name that posthook does not own, and a value
/// of visible ASCII characters, spaces and tabs, with no white space at either end (what
/// every receiver reads back unchanged, and JSON holds as text).
pub(crate) fn check_header(
    name: &str,
    value: &[u8],
) -> Result<(HeaderName, HeaderValue), WebhookError> {
    let invalid = |reason| WebhookError::InvalidHeader {
        name: name.to_owned(),
        reason,
    };
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        invalid(if name.is_empty() {
            "the name is empty"
        } else {
            "not a header name: letters, digits and !#$%&'*+-.^_`|~ only"
        })
    })?;
    if is_reserved(header.as_str()) {
        return Err(WebhookError::ReservedHeader {
            name: name.to_owned(),
        });
    }
    if let Some(&b) = value
        .iter()
        .find(|&&b| !(b == b'\t' || (b' '..=b'~').contains(&b)))
    {
        return Err(invalid(if b.is_ascii() {
            "the value has a line break or another control character"
        } else {
            "the value has a character outside ASCII"
        }));
    }
    let blank = |b: Option<&u8>| b.is_some_and(|&b| b == b' ' || b == b'\t');
    if blank(value.first()) || blank(value.last()) {
        return Err(invalid(
            "the value starts or ends with white space (receivers would drop it)",
        ));
    }
    let value = HeaderValue::from_bytes(value)
        .map_err(|_| invalid("the value has a line break or another control character"))?;
    Ok((header, value))
}

/// A webhook subscription.
///
/// Equality compares everything, its own delivery settings too (which its JSON does not
/// carry). `Debug` shows how many signing secrets it has, never a secret, and the names of
/// its own headers, not their values.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    id: Option<WebhookId>,
    name: String,
    url: WebhookUrl,
    events: EventSet,
    sources: SourceSet,
    scope: ListScope,
    deactivated: Option<Off>,
    cdate: Option<String>,
    overrides: Option<Box<Overrides>>,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let overrides = self.overrides.as_deref();
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("sources", &self.sources)
            .field("scope", &self.scope)
            .field("deactivated", &self.deactivation())
            .field("cdate", &self.cdate)
            .field(
                "retry_policy",
                &overrides.and_then(|o| o.retry_policy.as_ref()),
            )
            .field(
                "attempt_timeout",
                &overrides.and_then(|o| o.attempt_timeout),
            )
            .field(
                "headers",
                &HeaderNames(overrides.and_then(|o| o.headers.as_deref())),
            )
            .field(
                "signing_secrets",
                &overrides.map_or(0, Overrides::secret_count),
            )
            .finish()
    }
}

impl Webhook {
    /// Starts a webhook named `name` that posts to `url`.
    ///
    /// Nothing is checked until [`WebhookBuilder::build`].
    pub fn builder(name: impl Into<String>, url: &str) -> WebhookBuilder {
        WebhookBuilder {
            id: None,
            name: name.into(),
            url: url.to_owned(),
            policy: UrlPolicy::default(),
            events: EventSet::empty(),
            sources: SourceSet::empty(),
            scope: ListScope::All,
            cdate: None,
            overrides: Overrides::default(),
            header_error: None,
        }
    }

    /// The id, once a store or a `Registry` gave it one.
    #[inline]
    pub fn id(&self) -> Option<WebhookId> {
        self.id
    }

    /// The name.
    #[inline]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where events are posted.
    #[inline]
    pub fn url(&self) -> &WebhookUrl {
        &self.url
    }

    /// The event kinds it receives (never empty).
    #[inline]
    pub fn events(&self) -> EventSet {
        self.events
    }

    /// The sources it listens to (never empty).
    #[inline]
    pub fn sources(&self) -> SourceSet {
        self.sources
    }

    /// The list scope: it filters only list-aware kinds.
    #[inline]
    pub fn scope(&self) -> ListScope {
        self.scope
    }

    /// Whether it receives events.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.deactivated.is_none()
    }

    fn set_deactivation(&mut self, reason: Option<Deactivation>) {
        let failing = match reason {
            Some(Deactivation::Failing { since, failures }) => Some((since, failures)),
            _ => None,
        };
        self.deactivated = reason.map(|r| match r {
            Deactivation::Gone => Off::Gone,
            Deactivation::Manual => Off::Manual,
            Deactivation::Failing { .. } => Off::Failing,
        });
        match (&mut self.overrides, failing) {
            (Some(extra), _) => {
                extra.failing = failing;
                if extra.is_empty() {
                    self.overrides = None;
                }
            }
            (None, Some(_)) => {
                self.overrides = Some(Box::new(Overrides {
                    failing,
                    ..Overrides::default()
                }));
            }
            (None, None) => {}
        }
    }

    /// Why it was deactivated, if it was.
    #[inline]
    pub fn deactivation(&self) -> Option<Deactivation> {
        Some(match self.deactivated? {
            Off::Gone => Deactivation::Gone,
            Off::Manual => Deactivation::Manual,
            Off::Failing => {
                let (since, failures) = self.overrides.as_deref()?.failing?;
                Deactivation::Failing { since, failures }
            }
        })
    }

    /// The creation date as the API wrote it (`cdate`), if known.
    #[inline]
    pub fn cdate(&self) -> Option<&str> {
        self.cdate.as_deref()
    }

    /// Its own retry policy, which replaces the dispatcher's for its deliveries, if set
    /// ([`WebhookBuilder::retry_policy`]).
    #[inline]
    pub fn retry_policy(&self) -> Option<&RetryPolicy> {
        self.overrides.as_deref()?.retry_policy.as_ref()
    }

    /// Its own per-attempt deadline, which replaces the dispatcher's, if set
    /// ([`WebhookBuilder::attempt_timeout`]).
    #[inline]
    pub fn attempt_timeout(&self) -> Option<Duration> {
        self.overrides.as_deref()?.attempt_timeout
    }

    /// How a store hands out its deliveries: in-flight limit, rate limit, order
    /// ([`Pacing::DEFAULT`](crate::Pacing::DEFAULT) unless its builder said otherwise; not part of the API JSON).
    pub fn pacing(&self) -> crate::Pacing {
        self.overrides
            .as_deref()
            .and_then(|o| o.pacing)
            .unwrap_or_default()
    }

    /// Its own HTTP headers, sent with every attempt of its deliveries after posthook's own
    /// ([`WebhookBuilder::header`]); empty unless its builder or its JSON gave some.
    #[inline]
    pub fn headers(&self) -> &HeaderMap {
        self.shared_headers().map_or(no_headers(), |h| &**h)
    }

    /// Its own headers, shared; `None` when it has none.
    #[inline]
    pub(crate) fn shared_headers(&self) -> Option<&Arc<HeaderMap>> {
        self.overrides.as_deref()?.headers.as_ref()
    }

    /// Its own signing secrets, newest first (several while rotating): its deliveries are
    /// signed with these instead of the dispatcher's; empty = the dispatcher's
    /// ([`WebhookBuilder::signing_secret`]).
    ///
    /// All of them, expired or not: an old secret kept by [`rotate`](Webhook::rotate) stays
    /// here past its end, no longer signing, until [`retire_expired`](Webhook::retire_expired)
    /// drops it. The ones that sign at a given time:
    /// [`signing_secrets_at`](Webhook::signing_secrets_at).
    #[cfg(feature = "signing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signing")))]
    #[inline]
    pub fn signing_secrets(&self) -> &[crate::sign::SigningSecret] {
        self.secrets().keys()
    }

    /// The secrets its attempts made at `now` are signed with, newest first: those without
    /// an end, and those whose end ([`rotate`](Webhook::rotate)) is after `now`. The
    /// dispatcher asks with [`Timer::now`](crate::Timer::now) at each attempt.
    #[cfg(feature = "signing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signing")))]
    pub fn signing_secrets_at(
        &self,
        now: SystemTime,
    ) -> impl Iterator<Item = &crate::sign::SigningSecret> + '_ {
        self.secrets().at(now)
    }

    /// Each of its secrets, newest first, with the time it stops signing: `None` for one
    /// without an end (the newest always), else the `keep_old_until` of the
    /// [`rotate`](Webhook::rotate) that made it old. What a settings page shows ("expires
    /// at …") and what an application stores beside each secret to build the webhook again
    /// ([`WebhookBuilder::signing_secret_until`]).
    #[cfg(feature = "signing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signing")))]
    pub fn signing_secrets_with_expiry(
        &self,
    ) -> impl ExactSizeIterator<Item = (&crate::sign::SigningSecret, Option<SystemTime>)> + '_ {
        self.secrets().with_expiry()
    }

    #[cfg(feature = "signing")]
    pub(crate) fn secrets(&self) -> &crate::sign::Secrets {
        self.overrides
            .as_deref()
            .map_or(&crate::sign::NO_SECRETS, |o| &o.signing_secrets)
    }

    /// Rotates its signing secret: `new` becomes the newest, and the secrets it had go on
    /// signing beside it until `keep_old_until` (each request carries one signature per
    /// secret in `webhook-signature`, so receivers that know either secret accept it), then
    /// stop by themselves — the dispatcher compares `keep_old_until` with
    /// [`Timer::now`](crate::Timer::now) at each attempt, so nothing has to be called at
    /// the cutoff. An old secret that was to stop earlier keeps its earlier end.
    ///
    /// A webhook without secrets of its own is signed with the dispatcher's; after `rotate`
    /// it has `new` only (give it the dispatcher's with
    /// [`WebhookBuilder::signing_secret`] first to overlap with those).
    ///
    /// Secrets are not part of the API JSON: store `new` and the ends
    /// ([`signing_secrets_with_expiry`](Webhook::signing_secrets_with_expiry)) yourself.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use posthook::sign::SigningSecret;
    /// use posthook::{EventKind, Source, Webhook};
    ///
    /// let old = SigningSecret::generate()?;
    /// let mut hook = Webhook::builder("ERP", "https://erp.example.com/hooks")
    ///     .events([EventKind::Subscribe])
    ///     .sources(Source::ALL)
    ///     .signing_secret(old.clone())
    ///     .build()?;
    /// let now = SystemTime::now();
    /// let cutoff = now + Duration::from_secs(24 * 3600);
    /// let new = SigningSecret::generate()?;
    /// hook.rotate(new.clone(), cutoff);
    ///
    /// // Both sign until the cutoff, the new one only after it.
    /// assert_eq!(hook.signing_secrets_at(now).collect::<Vec<_>>(), [&new, &old]);
    /// assert_eq!(hook.signing_secrets_at(cutoff).collect::<Vec<_>>(), [&new]);
    /// // The old one is kept until retired (say, by a daily job that saves the webhook).
    /// assert_eq!(hook.signing_secrets().len(), 2);
    /// assert_eq!(hook.retire_expired(cutoff), 1);
    /// assert_eq!(hook.signing_secrets(), [new]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "signing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signing")))]
    pub fn rotate(&mut self, new: crate::sign::SigningSecret, keep_old_until: SystemTime) {
        self.overrides
            .get_or_insert_with(Box::default)
            .signing_secrets
            .rotate(new, keep_old_until);
    }

    /// Drops the secrets that no longer sign at `now` (whose end is `now` or earlier), and
    /// returns how many: for applications that store their webhooks, to stop storing them.
    /// Signing does not need it (an expired secret signs nothing either way).
    #[cfg(feature = "signing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signing")))]
    pub fn retire_expired(&mut self, now: SystemTime) -> usize {
        let Some(overrides) = self.overrides.as_deref_mut() else {
            return 0;
        };
        let retired = overrides.signing_secrets.retire_expired(now);
        if overrides.is_empty() {
            self.overrides = None;
        }
        retired
    }

    /// Whether an event of `kind` from `source` on `list` must reach this webhook.
    ///
    /// The fixed rule: active, `kind` in its events, `source` in its sources, and for
    /// list-aware kinds only, its scope is all lists or `list`.
    #[inline]
    pub fn wants(&self, kind: EventKind, source: Source, list: Option<crate::ListId>) -> bool {
        self.is_active()
            && self.events.contains(kind)
            && self.sources.contains(source)
            && (!kind.is_list_aware() || self.scope.covers(list))
    }

    /// Sets the id.
    pub fn set_id(&mut self, id: WebhookId) {
        self.id = Some(id);
    }

    /// Sets the creation date as ActiveCampaign writes it (`None`: none).
    pub(crate) fn set_cdate(&mut self, cdate: Option<String>) {
        self.cdate = cdate;
    }

    /// Switches it off for `reason`.
    ///
    /// [`Deactivation::Gone`] is final as a reason: a later deactivation of any kind does
    /// not replace it, so the record of the 410 survives. [`Deactivation::Failing`] never
    /// replaces [`Deactivation::Manual`] (nor an earlier `Failing`); `Manual` replaces
    /// `Failing`.
    pub fn deactivate(&mut self, reason: Deactivation) {
        let keep = matches!(
            (self.deactivation(), reason),
            (Some(Deactivation::Gone), _)
                | (
                    Some(Deactivation::Manual | Deactivation::Failing { .. }),
                    Deactivation::Failing { .. }
                )
        );
        if !keep {
            self.set_deactivation(Some(reason));
        }
    }

    /// Switches it back on, whatever the reason it was off.
    ///
    /// posthook itself never reactivates a webhook; after a 410 only an explicit call of the
    /// application (say, once its user fixed the endpoint) does.
    pub fn activate(&mut self) {
        self.set_deactivation(None);
    }

    /// Switches it on or (manually) off.
    pub fn set_active(&mut self, active: bool) {
        if active {
            self.set_deactivation(None);
        } else if self.deactivated.is_none() {
            self.set_deactivation(Some(Deactivation::Manual));
        }
    }

    /// `self`'s API fields (name, URL, events, sources, list scope, its own headers) with
    /// everything else of `kept`: id, `cdate`, whether and why it is off, its own delivery
    /// settings and signing secrets. What an update through the API stores.
    #[cfg(feature = "api")]
    pub(crate) fn updated_from(mut self, kept: &Webhook) -> Webhook {
        let headers = self.overrides.take().and_then(|o| o.headers);
        let mut overrides = kept.overrides.as_deref().cloned().unwrap_or_default();
        overrides.headers = headers;
        self.overrides = (!overrides.is_empty()).then(|| Box::new(overrides));
        self.id = kept.id;
        self.cdate.clone_from(&kept.cdate);
        self.deactivated = kept.deactivated;
        self
    }

    /// This webhook's subscription — name, URL, events, sources, list scope — with
    /// everything else taken from `kept`: its id, `cdate`, whether and why it is off, its
    /// own retry policy, attempt timeout, pacing, headers and signing secrets. For a form
    /// that edits the subscription only: saving what it built would otherwise drop the
    /// settings the form does not show (headers or secrets set through an API).
    ///
    /// ```
    /// use posthook::{EventKind, Source, Webhook};
    ///
    /// let stored = Webhook::builder("CRM", "https://crm.example.com/hook")
    ///     .events([EventKind::Subscribe]).sources(Source::ALL)
    ///     .header("authorization", "Bearer abc").build()?;
    /// let edited = Webhook::builder("CRM (renamed)", "https://crm.example.com/v2")
    ///     .events([EventKind::Open]).sources(Source::ALL).build()?
    ///     .with_settings_of(&stored);
    /// assert_eq!(edited.name(), "CRM (renamed)");
    /// assert_eq!(edited.headers().len(), 1);
    /// # Ok::<(), posthook::Error>(())
    /// ```
    pub fn with_settings_of(mut self, kept: &Webhook) -> Webhook {
        self.overrides.clone_from(&kept.overrides);
        self.id = kept.id;
        self.cdate.clone_from(&kept.cdate);
        self.deactivated = kept.deactivated;
        self
    }

    /// A builder holding this webhook's settings, to change some and build again.
    pub fn to_builder(&self) -> WebhookBuilder {
        WebhookBuilder {
            id: self.id,
            name: self.name.clone(),
            url: self.url.as_str().to_owned(),
            policy: UrlPolicy::default(),
            events: self.events,
            sources: self.sources,
            scope: self.scope,
            cdate: self.cdate.clone(),
            overrides: self
                .overrides
                .as_deref()
                .map_or_else(Overrides::default, |o| Overrides {
                    // A built webhook starts active.
                    failing: None,
                    ..o.clone()
                }),
            header_error: None,
        }
    }
}

/// Builds a [`Webhook`]; see [`Webhook::builder`]. `Debug` shows how many signing secrets it
/// holds, never a secret, and the names of its headers, not their values.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct WebhookBuilder {
    id: Option<WebhookId>,
    name: String,
    url: String,
    policy: UrlPolicy,
    events: EventSet,
    sources: SourceSet,
    scope: ListScope,
    cdate: Option<String>,
    overrides: Overrides,
    /// The first header that failed its check, reported by `build`.
    header_error: Option<WebhookError>,
}

impl WebhookBuilder {
    /// The event kinds it receives (added to any given before): kinds or references to them,
    /// e.g. `[EventKind::Open]`, an [`EventSet`] or `EventKind::ALL.iter()`.
    pub fn events<I>(mut self, events: I) -> Self
    where
        I: IntoIterator,
        I::Item: Borrow<EventKind>,
    {
        self.events.extend(events.into_iter().map(|k| *k.borrow()));
        self
    }

    /// The sources it listens to (added to any given before): sources or references to them.
    pub fn sources<I>(mut self, sources: I) -> Self
    where
        I: IntoIterator,
        I::Item: Borrow<Source>,
    {
        self.sources
            .extend(sources.into_iter().map(|s| *s.borrow()));
        self
    }

    /// The list scope (default: all lists).
    pub fn scope(mut self, scope: ListScope) -> Self {
        self.scope = scope;
        self
    }

    /// The id, e.g. the one ActiveCampaign or your store gave it.
    pub fn id(mut self, id: WebhookId) -> Self {
        self.id = Some(id);
        self
    }

    /// The URL policy to check against (default: [`UrlPolicy::permissive`]).
    pub fn url_policy(mut self, policy: UrlPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The creation date, as the API writes it.
    pub fn cdate(mut self, cdate: impl Into<String>) -> Self {
        self.cdate = Some(cdate.into());
        self
    }

    /// Its own retry policy, replacing the dispatcher's for its deliveries (not part of the
    /// API JSON).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.overrides.retry_policy = Some(policy);
        self
    }

    /// Its own per-attempt deadline, replacing the dispatcher's (not part of the API JSON).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.overrides.attempt_timeout = Some(timeout);
        self
    }

    /// At most `max` attempts in flight at once, across every worker of the store (default
    /// [`Pacing::DEFAULT_MAX_IN_FLIGHT`](crate::Pacing::DEFAULT_MAX_IN_FLIGHT), 16). Not part
    /// of the API JSON. See [`Pacing`](crate::Pacing).
    pub fn max_in_flight(mut self, max: std::num::NonZeroU32) -> Self {
        let pacing = self.overrides.pacing.unwrap_or_default();
        self.overrides.pacing = Some(pacing.with_max_in_flight(max));
        self
    }

    /// At most `per_second` attempts started per second, held across workers by the store;
    /// deliveries over it wait, they never fail (Svix's `throttleRate`). Off by default.
    pub fn rate_limit(mut self, per_second: std::num::NonZeroU32) -> Self {
        let pacing = self.overrides.pacing.unwrap_or_default();
        let limit = Some(crate::RateLimit::per_second(per_second));
        self.overrides.pacing = Some(pacing.with_rate_limit(limit));
        self
    }

    /// Ordered delivery: one at a time, in publish order; a failing head holds the rest
    /// until it is delivered, gives up or fails. Off by default. See
    /// [`Pacing`](crate::Pacing).
    pub fn ordered(mut self, ordered: bool) -> Self {
        let pacing = self.overrides.pacing.unwrap_or_default();
        self.overrides.pacing = Some(pacing.with_ordered(ordered));
        self
    }

    /// Adds a signing secret of its own (call again for an older one while rotating: each
    /// request then carries one signature per secret). A webhook with secrets is signed with
    /// them instead of the dispatcher's. Not part of the API JSON, never shown by `Debug`.
    #[cfg(feature = "signing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signing")))]
    pub fn signing_secret(mut self, secret: crate::sign::SigningSecret) -> Self {
        self.overrides.signing_secrets.push(secret, None);
        self
    }

    /// Adds an older signing secret that signs until `until` and no longer from then on (as
    /// [`Webhook::rotate`] leaves the secrets it replaces): to build again a webhook stored
    /// in the middle of a rotation, from [`Webhook::signing_secrets_with_expiry`]. Not part
    /// of the API JSON, never shown by `Debug`.
    ///
    /// Give it a secret without an end too ([`signing_secret`](WebhookBuilder::signing_secret)):
    /// once every secret of a webhook has ended, its attempts fail unsent ("every signing
    /// secret has expired") — and once [`Webhook::retire_expired`] has dropped them all, it
    /// has none of its own, and the dispatcher's sign it.
    #[cfg(feature = "signing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signing")))]
    pub fn signing_secret_until(
        mut self,
        secret: crate::sign::SigningSecret,
        until: SystemTime,
    ) -> Self {
        self.overrides.signing_secrets.push(secret, Some(until));
        self
    }

    /// Adds an HTTP header of its own, sent with every attempt of its deliveries (dispatched,
    /// from a store through a [`Worker`](crate::Worker) that has
    /// [its webhooks](crate::Worker::webhooks), and "send sample data"), after posthook's own
    /// headers: an `Authorization` the receiver asks for, a tenant id. Call again for more;
    /// a name given again replaces its earlier value. Part of the API JSON (`"headers"`).
    ///
    /// `name` is text or an [`http::HeaderName`], matched without regard to case and kept in
    /// lower case; `value` is text, bytes or an [`http::HeaderValue`]. Checked by
    /// [`build`](WebhookBuilder::build), which refuses:
    ///
    /// - with [`WebhookError::ReservedHeader`], the headers posthook or the connection
    ///   sets, so that one of its own can never replace one of ours: `content-type`,
    ///   `content-length`, `content-encoding`, `host`, `user-agent`, `expect`,
    ///   [`x-posthook-*`](crate::DELIVERY_ID_HEADER), `webhook-*` (the Standard Webhooks
    ///   signature headers) and the hop-by-hop ones (`connection`, `keep-alive`,
    ///   `proxy-connection`, `proxy-authenticate`, `proxy-authorization`, `te`, `trailer`,
    ///   `transfer-encoding`, `upgrade`);
    /// - with [`WebhookError::InvalidHeader`], a name that is not a header name, and a value
    ///   with anything but visible ASCII characters, spaces and tabs (a line break, say), or
    ///   with white space at either end.
    ///
    /// Both errors carry the name as given.
    ///
    /// ```
    /// use posthook::{Error, EventKind, Source, Webhook, WebhookError};
    ///
    /// let hook = Webhook::builder("ERP", "https://erp.example.com/hooks")
    ///     .events([EventKind::Subscribe])
    ///     .sources(Source::ALL)
    ///     .header("Authorization", "Bearer 9f2c")
    ///     .header("X-Tenant", "acme")
    ///     .build()?;
    /// assert_eq!(hook.headers()["x-tenant"], "acme");
    ///
    /// let refused = hook.to_builder().header("Content-Type", "text/plain").build();
    /// assert_eq!(
    ///     refused,
    ///     Err(Error::Webhook(WebhookError::ReservedHeader { name: "Content-Type".into() }))
    /// );
    /// # Ok::<(), posthook::Error>(())
    /// ```
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<[u8]>) -> Self {
        if self.header_error.is_some() {
            return self;
        }
        match check_header(name.as_ref(), value.as_ref()) {
            Ok((name, value)) => {
                let headers = self.overrides.headers.get_or_insert_with(Arc::default);
                Arc::make_mut(headers).insert(name, value);
            }
            Err(error) => self.header_error = Some(error),
        }
        self
    }

    /// Removes every header of its own given so far (to set them again, say from a form).
    pub fn clear_headers(mut self) -> Self {
        self.overrides.headers = None;
        self.header_error = None;
        self
    }

    /// Checks everything and builds the webhook.
    ///
    /// # Errors
    ///
    /// [`Error::Webhook`] for a blank name, no events, no sources or a header it cannot have
    /// ([`header`](WebhookBuilder::header)); [`Error::Url`] for a URL outside the allowed set
    /// or the policy. A blank name is reported first, then the URL, then events, then
    /// sources, then the first header refused.
    pub fn build(self) -> Result<Webhook, Error> {
        if self.name.trim().is_empty() {
            return Err(WebhookError::BlankName.into());
        }
        let url = WebhookUrl::parse_with(&self.url, self.policy)?;
        if self.events.is_empty() {
            return Err(WebhookError::NoEvents.into());
        }
        if self.sources.is_empty() {
            return Err(WebhookError::NoSources.into());
        }
        if let Some(error) = self.header_error {
            return Err(error.into());
        }
        Ok(Webhook {
            id: self.id,
            name: self.name,
            url,
            events: self.events,
            sources: self.sources,
            scope: self.scope,
            deactivated: None,
            cdate: self.cdate,
            overrides: (!self.overrides.is_empty()).then(|| Box::new(self.overrides)),
        })
    }
}

/// The webhook object as the ActiveCampaign API v3 writes it.
#[derive(Serialize, Deserialize)]
struct ApiWebhook {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<WebhookId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cdate: Option<String>,
    name: String,
    url: String,
    events: EventSet,
    sources: SourceSet,
    #[serde(default)]
    listid: ListScope,
    /// Not in ActiveCampaign's shape: written only for a deactivated webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deactivated: Option<Deactivation>,
    /// Not in ActiveCampaign's shape: its own headers, written only when it has some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers: Option<BTreeMap<String, String>>,
}

impl Serialize for Webhook {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ApiWebhook {
            id: self.id,
            cdate: self.cdate.clone(),
            name: self.name.clone(),
            url: self.url.as_str().to_owned(),
            events: self.events,
            sources: self.sources,
            listid: self.scope,
            deactivated: self.deactivation(),
            headers: self.shared_headers().map(|headers| {
                headers
                    .iter()
                    .map(|(name, value)| {
                        // Checked when built: visible ASCII, so never lossy.
                        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                        (name.as_str().to_owned(), value)
                    })
                    .collect()
            }),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Webhook {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let api = ApiWebhook::deserialize(deserializer)?;
        let mut builder = Webhook::builder(api.name, &api.url)
            .events(api.events)
            .sources(api.sources)
            .scope(api.listid);
        for (name, value) in api.headers.into_iter().flatten() {
            builder = builder.header(name, value);
        }
        builder.id = api.id;
        builder.cdate = api.cdate;
        let mut hook = builder.build().map_err(serde::de::Error::custom)?;
        hook.set_deactivation(api.deactivated);
        Ok(hook)
    }
}

/// The `{"webhook": {...}}` wrapper of the ActiveCampaign API's requests and responses.
///
/// ```
/// use posthook::WebhookEnvelope;
///
/// let json = r#"{"webhook": {"name": "n", "url": "https://example.com/h",
///     "events": ["subscribe"], "sources": ["public"], "listid": "0"}}"#;
/// let envelope: WebhookEnvelope = serde_json::from_str(json).unwrap();
/// assert_eq!(envelope.webhook.name(), "n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebhookEnvelope {
    /// The webhook.
    pub webhook: Webhook,
}

impl WebhookEnvelope {
    /// Wraps `webhook`.
    pub fn new(webhook: Webhook) -> Self {
        WebhookEnvelope { webhook }
    }
}

impl From<Webhook> for WebhookEnvelope {
    fn from(webhook: Webhook) -> Self {
        WebhookEnvelope { webhook }
    }
}

/// What a [`WebhookStore`](crate::WebhookStore) keeps besides a webhook's API JSON: its own
/// delivery settings and signing secrets (which the API JSON never carries).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Default, Serialize, Deserialize)]
struct StoredSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_policy: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attempt_timeout_us: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pacing: Option<crate::Pacing>,
    /// `whsec_` secrets, newest first, each with the Unix milliseconds it stops signing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    secrets: Vec<(String, Option<u64>)>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl Webhook {
    /// The webhook as a store keeps it: its API JSON (without id and `cdate`, which the
    /// store keeps in columns of their own) and its settings JSON (retry policy, attempt
    /// timeout, pacing, signing secrets with their ends).
    pub(crate) fn to_stored(&self) -> Result<(String, String), serde_json::Error> {
        let mut api = self.clone();
        api.id = None;
        api.cdate = None;
        let api = serde_json::to_string(&api)?;
        let overrides = self.overrides.as_deref();
        #[cfg_attr(not(feature = "signing"), allow(unused_mut))]
        let mut settings = StoredSettings {
            retry_policy: overrides.and_then(|o| o.retry_policy.clone()),
            attempt_timeout_us: overrides
                .and_then(|o| o.attempt_timeout)
                .map(|t| u64::try_from(t.as_micros()).unwrap_or(u64::MAX)),
            pacing: overrides.and_then(|o| o.pacing),
            secrets: Vec::new(),
        };
        #[cfg(feature = "signing")]
        for (secret, until) in self.signing_secrets_with_expiry() {
            let until = until.map(|t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            });
            settings.secrets.push((secret.to_whsec(), until));
        }
        Ok((api, serde_json::to_string(&settings)?))
    }

    /// A webhook from what [`to_stored`](Webhook::to_stored) wrote, with its id and `cdate`.
    pub(crate) fn from_stored(
        api: &str,
        settings: &str,
        id: WebhookId,
        cdate: Option<String>,
    ) -> Result<Webhook, String> {
        let hook: Webhook = serde_json::from_str(api).map_err(|e| format!("webhook: {e}"))?;
        // Only where and what kind of error: the message of a data error quotes the value,
        // and the settings hold signing secrets.
        let settings: StoredSettings = serde_json::from_str(settings).map_err(|e| {
            format!(
                "its settings do not decode ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        })?;
        let deactivation = hook.deactivation();
        let mut builder = hook.to_builder();
        builder.id = Some(id);
        builder.cdate = cdate;
        if let Some(policy) = settings.retry_policy {
            builder = builder.retry_policy(policy);
        }
        if let Some(us) = settings.attempt_timeout_us {
            builder = builder.attempt_timeout(Duration::from_micros(us));
        }
        builder.overrides.pacing = settings.pacing;
        #[cfg(feature = "signing")]
        for (text, until) in settings.secrets {
            let secret = crate::sign::SigningSecret::parse(&text)
                .map_err(|e| format!("signing secret: {e}"))?;
            builder = match until {
                Some(ms) => builder.signing_secret_until(
                    secret,
                    crate::store::epoch_plus(Duration::from_millis(ms)),
                ),
                None => builder.signing_secret(secret),
            };
        }
        #[cfg(not(feature = "signing"))]
        if !settings.secrets.is_empty() {
            return Err(String::from(
                "it has signing secrets: posthook was built without feature `signing`",
            ));
        }
        let mut hook = builder.build().map_err(|e| e.to_string())?;
        hook.set_deactivation(deactivation);
        Ok(hook)
    }
}
