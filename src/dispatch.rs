//! The async shell: a [`Dispatcher`] drives [`Delivery`] state machines through your
//! [`Transport`] and [`Timer`].
//!
//! It owns the things the pure core leaves out: concurrency (all deliveries of one event run
//! at once, optionally capped per event and across the dispatcher), the deadline of each
//! attempt (the transport call raced against the timer), and the wait between attempts
//! (through the timer). It spawns no task and depends on no runtime: the futures it returns
//! run on whatever executor awaits them, and are `Send` when the transport and the timer are.
//! It reads time only through the [`Timer`] ([`Timer::now`] for signatures, `Retry-After`
//! dates and health; [`Timer::monotonic`], when there is one, for durations).
//!
//! **Scale.** The deliveries of one event run in one future, over a
//! [`FuturesUnordered`](futures_util::stream::FuturesUnordered): a wake-up polls the
//! delivery it is for, not the others, so the cost per delivery does not grow with the
//! fan-out. A delivery waiting out its backoff holds no concurrency slot.
//!
//! **Panics.** A transport that panics ends that delivery [`FinalOutcome::Failed`] with the
//! panic's message (one attempt recorded); the other deliveries go on.

#[cfg(feature = "signing")]
use std::borrow::Cow;
use std::fmt;
use std::future::{Future, poll_fn};
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;
#[cfg(feature = "signing")]
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::FutureExt as _;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use serde::{Deserialize, Serialize};

use crate::delivery::{
    Attempt, AttemptMeta, AttemptOutcome, Delivery, DeliveryId, FinalOutcome, RetryPolicy, Step,
    parse_retry_after,
};
use crate::health::{EndpointHealth, HealthChange};
use crate::transport::{Timer, Transport, TransportError, TransportErrorKind};
use crate::{
    AddressPolicy, AutomationPayload, Deactivation, Event, EventKind, Registry, Webhook, WebhookId,
    WebhookUrl,
};

mod probe;

pub use probe::{Diagnosis, EXCERPT_BYTES, Finding, ResolvedAddress};

mod cancel;
mod ids;
mod limit;

use cancel::Cancels;

use ids::IdSource;
use limit::{Permit, Semaphore};

#[cfg(feature = "signing")]
use crate::sign::SigningSecret;

/// The header that carries the [`DeliveryId`], the same on every attempt of one delivery:
/// `X-Posthook-Delivery: 3f2a…` (32 hex digits). Receivers use it to drop duplicates.
pub const DELIVERY_ID_HEADER: &str = "x-posthook-delivery";

/// The body [`Dispatcher::probe`] posts: one pair that no ActiveCampaign payload has.
pub const PROBE_BODY: &[u8] = b"posthook_probe=1";

const FORM_CONTENT_TYPE: HeaderValue =
    HeaderValue::from_static("application/x-www-form-urlencoded");
const DEFAULT_USER_AGENT: &str = concat!("posthook/", env!("CARGO_PKG_VERSION"));

/// Sends events, automation-step bodies, sample data and probes, each delivery to its one
/// final outcome, and reports every one.
///
/// Built over a [`Transport`] (one HTTP exchange) and a [`Timer`] (waits), with options set
/// builder-style:
///
/// | option | default |
/// |---|---|
/// | [`retry_policy`](Dispatcher::retry_policy) | [`RetryPolicy::default`]: 5 attempts, 30 s → 32 min |
/// | [`attempt_timeout`](Dispatcher::attempt_timeout) | 10 s per attempt |
/// | [`automation_retry_policy`](Dispatcher::automation_retry_policy) | the retry policy |
/// | [`automation_timeout`](Dispatcher::automation_timeout) | 5 s per attempt (ActiveCampaign's) |
/// | [`user_agent`](Dispatcher::user_agent) | `posthook/<version>` |
/// | [`max_concurrency`](Dispatcher::max_concurrency) | unlimited attempts in flight per event |
/// | [`global_concurrency`](Dispatcher::global_concurrency) | unlimited attempts in flight in all |
/// | [`address_policy`](Dispatcher::address_policy) | the transport's, else public addresses only |
/// | [`endpoint_health`](Dispatcher::endpoint_health) | none: failing webhooks stay on |
/// | `signing_secret` (feature `signing`) | none: unsigned, unless the webhook has its own |
///
/// A [`Webhook`] may override the retry policy, the attempt timeout and (feature `signing`)
/// the signing secrets for its own deliveries, and add headers of its own
/// ([`WebhookBuilder::header`](crate::WebhookBuilder::header)).
///
/// **Sharing.** A dispatcher is `Send + Sync` when its transport and timer are, and its
/// methods take `&self`: put it in an [`Arc`](std::sync::Arc) to use it from many tasks
/// (`tokio::spawn` needs `'static` futures: move an `Arc<Dispatcher<..>>` clone and a
/// [`DispatchPlan`] into the task). The global concurrency limit and the health tracker are
/// then shared by all of them.
///
/// Each request is a `POST` to the webhook's URL with `Content-Type:
/// application/x-www-form-urlencoded`, the `User-Agent`, [`X-Posthook-Delivery`](DELIVERY_ID_HEADER)
/// and the body, then the webhook's own headers, if it has any. An event is encoded once; its
/// deliveries share the [`Bytes`].
///
/// Nothing is dropped silently: every delivery ends in exactly one [`FinalOutcome`], listed
/// in the report with its attempts. A URL that `http::Uri` cannot hold is a
/// [`FinalOutcome::Failed`] without an attempt, not a panic; a transport whose `send` panics
/// makes that one delivery [`FinalOutcome::Failed`] ("the transport panicked: …", one attempt
/// recorded, not retried) while the event's other deliveries go on.
///
/// With feature `http`, `Dispatcher::new(HttpTransport::new()?, TokioTimer::new())` is real
/// delivery. Here, an in-memory receiver on the crate's `TokioTimer` (feature `tokio`):
///
#[cfg_attr(feature = "tokio", doc = "```")]
#[cfg_attr(not(feature = "tokio"), doc = "```ignore")]
/// use std::time::Duration;
/// use bytes::Bytes;
/// use posthook::{
///     Dispatcher, Event, EventKind, Registry, Source, TokioTimer, Transport, TransportError,
///     Webhook,
/// };
///
/// /// A receiver that answers 200 to everything (`HttpTransport` in production).
/// struct Ok200;
/// #[async_trait::async_trait]
/// impl Transport for Ok200 {
///     async fn send(&self, _: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
///         Ok(http::Response::new(Bytes::new()))
///     }
/// }
///
/// let mut registry = Registry::new();
/// registry.insert(
///     Webhook::builder("CRM", "https://crm.example.com/hooks/ac")
///         .events([EventKind::Subscribe])
///         .sources(Source::ALL)
///         .build()?,
/// );
/// let dispatcher = Dispatcher::new(Ok200, TokioTimer::new()).attempt_timeout(Duration::from_secs(5));
///
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
/// let report = runtime.block_on(dispatcher.dispatch(&registry, &Event::sample(EventKind::Subscribe)));
/// assert_eq!(report.deliveries.len(), 1);
/// assert!(report.all_delivered());
/// // A 410 would be listed here; the caller applies it to its registry.
/// assert_eq!(report.deactivate_gone(&mut registry), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Dispatcher<T, S> {
    transport: T,
    timer: S,
    policy: RetryPolicy,
    automation_policy: Option<RetryPolicy>,
    attempt_timeout: Duration,
    automation_timeout: Duration,
    user_agent: HeaderValue,
    max_concurrency: usize,
    global: Option<(NonZeroUsize, Semaphore)>,
    ids: IdSource,
    /// Set by [`Dispatcher::address_policy`]; otherwise the transport's, or public only.
    address_policy: Option<AddressPolicy>,
    health: Option<Mutex<EndpointHealth>>,
    cancels: Cancels,
    #[cfg(feature = "signing")]
    signing: Secrets,
}

/// How many deliveries of one event start per turn of the executor.
const START_BATCH: usize = 256;

/// The policy of a dispatcher whose transport reports none and that was given none.
static PUBLIC_ONLY: AddressPolicy = AddressPolicy::public_only();

impl<T, S> fmt::Debug for Dispatcher<T, S> {
    /// The options; the signing secrets only as a count.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[cfg(feature = "signing")]
        let secrets = self.signing.len();
        #[cfg(not(feature = "signing"))]
        let secrets = 0;
        f.debug_struct("Dispatcher")
            .field("policy", &self.policy)
            .field("automation_policy", &self.automation_policy)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("automation_timeout", &self.automation_timeout)
            .field("user_agent", &self.user_agent)
            .field("max_concurrency", &self.max_concurrency)
            .field("global_concurrency", &self.global.as_ref().map(|g| g.0))
            .field("address_policy", &self.address_policy)
            .field("endpoint_health", &self.health.is_some())
            .field("signing_secrets", &secrets)
            .finish_non_exhaustive()
    }
}

impl<T, S> Dispatcher<T, S> {
    /// A dispatcher over `transport` and `timer`, with the default options.
    ///
    /// Delivery ids are unpredictable: 128 bits of a ChaCha20 stream under a key drawn from
    /// the operating system's random source when the dispatcher is made; they never repeat
    /// within a dispatcher and reveal neither a counter nor the dispatcher.
    pub fn new(transport: T, timer: S) -> Dispatcher<T, S> {
        Dispatcher {
            transport,
            timer,
            policy: RetryPolicy::default(),
            automation_policy: None,
            attempt_timeout: Duration::from_secs(10),
            automation_timeout: Duration::from_secs(5),
            user_agent: HeaderValue::from_static(DEFAULT_USER_AGENT),
            max_concurrency: usize::MAX,
            global: None,
            ids: IdSource::random(),
            address_policy: None,
            health: None,
            cancels: Cancels::default(),
            #[cfg(feature = "signing")]
            signing: Secrets::default(),
        }
    }

    /// Which addresses deliveries may go to. The default is the policy the transport
    /// enforces ([`Transport::address_policy`]; the `HttpTransport` of feature `http`
    /// reports its own), else [`AddressPolicy::public_only`]: no loopback, private,
    /// link-local or reserved address.
    ///
    /// The dispatcher judges what the URL shows ([`AddressPolicy::check_url`]): a literal IP
    /// or `localhost`; a delivery it refuses ends [`FinalOutcome::Failed`] after one attempt
    /// recorded as a [`TransportError::blocked`] (nothing is sent). Names that resolve to such
    /// addresses are refused by the transport, after resolving and before connecting
    /// (`HttpTransport` does; a transport of your own must), and end the same way: one
    /// attempt of kind [`Blocked`](TransportErrorKind::Blocked), then `Failed`.
    /// With `HttpTransport`, set the policy on the transport's builder and leave this alone:
    /// both checks then follow one policy. [`AddressPolicy::allow_all`] turns the guard off
    /// (tests against a local server).
    #[must_use]
    pub fn address_policy(mut self, policy: AddressPolicy) -> Self {
        self.address_policy = Some(policy);
        self
    }

    /// Signs every request with `secret` (Standard Webhooks: `webhook-id` is the delivery
    /// id, the same on every attempt; `webhook-timestamp` is [`Timer::now`] at the attempt).
    /// Call it again to add an older secret while rotating: each request then carries one
    /// signature per secret ([`signing_secret_until`](Dispatcher::signing_secret_until) for
    /// one that stops by itself). A webhook with secrets of its own
    /// ([`WebhookBuilder::signing_secret`](crate::WebhookBuilder::signing_secret)) is signed
    /// with those instead. `Debug` shows how many secrets there are, never one.
    #[cfg(feature = "signing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signing")))]
    #[must_use]
    pub fn signing_secret(mut self, secret: SigningSecret) -> Self {
        self.signing.push(secret, None);
        self
    }

    /// Adds an older secret that signs beside the others until `until`, and no longer from
    /// then on: rotation with an overlap for the dispatcher's secrets
    /// (`.signing_secret(new).signing_secret_until(old, cutoff)`). The dispatcher compares
    /// `until` with [`Timer::now`] at each attempt; nothing has to be called at the cutoff.
    /// Past it, an attempt is signed with the others; with none left, it fails without
    /// being sent ("every signing secret has expired").
    #[cfg(feature = "signing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signing")))]
    #[must_use]
    pub fn signing_secret_until(mut self, secret: SigningSecret, until: SystemTime) -> Self {
        self.signing.push(secret, Some(until));
        self
    }

    /// Retries event deliveries by `policy` ([`RetryPolicy::never`] for ActiveCampaign's own
    /// behaviour), and automation sends too unless
    /// [`automation_retry_policy`](Dispatcher::automation_retry_policy) says otherwise. A
    /// webhook's own policy ([`Webhook::retry_policy`]) comes first.
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Retries automation sends ([`send_automation`](Dispatcher::send_automation)) by
    /// `policy` (default: the [`retry_policy`](Dispatcher::retry_policy)).
    #[must_use]
    pub fn automation_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.automation_policy = Some(policy);
        self
    }

    /// Gives each attempt `timeout` to get a response (default 10 s); past it, the attempt
    /// is a [`TransportError::timeout`] and is retried like one. `Duration::ZERO` times out
    /// every attempt that is not answered on its first poll; use a large value, not zero,
    /// to leave the deadline to the transport. A webhook's own timeout
    /// ([`Webhook::attempt_timeout`]) comes first.
    #[must_use]
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The per-attempt deadline of [`send_automation`](Dispatcher::send_automation)
    /// (default 5 s: ActiveCampaign marks an automation webhook failed past 5 seconds).
    #[must_use]
    pub fn automation_timeout(mut self, timeout: Duration) -> Self {
        self.automation_timeout = timeout;
        self
    }

    /// Sends `user_agent` as the `User-Agent` (default `posthook/<version>`).
    #[must_use]
    pub fn user_agent(mut self, user_agent: HeaderValue) -> Self {
        self.user_agent = user_agent;
        self
    }

    /// Keeps at most `limit` attempts of one event in flight at a time (default: all at
    /// once). A slot is held only during an attempt: a delivery waiting out its backoff
    /// gives its slot back, so a dead endpoint's retries do not hold the live ones back.
    #[must_use]
    pub fn max_concurrency(mut self, limit: NonZeroUsize) -> Self {
        self.max_concurrency = limit.get();
        self
    }

    /// Keeps at most `limit` attempts in flight across everything this dispatcher does at
    /// once — every dispatch, delivery, automation send, sample, probe and
    /// [`attempt`](Dispatcher::attempt) — besides the per-event
    /// [`max_concurrency`](Dispatcher::max_concurrency). As there, a slot is held only
    /// during an attempt; waiters are served first come, first served.
    #[must_use]
    pub fn global_concurrency(mut self, limit: NonZeroUsize) -> Self {
        self.global = Some((limit, Semaphore::new(limit.get())));
        self
    }

    /// Watches the health of endpoints with `health`: every final outcome of a dispatched
    /// delivery ([`dispatch`](Dispatcher::dispatch), [`run_plan`](Dispatcher::run_plan)) is
    /// fed to it with [`Timer::now`], and the changes it calls for are listed in
    /// [`DispatchReport::health`], to apply with [`DispatchReport::apply_health`]. The
    /// tracker is shared by all the dispatches of this dispatcher.
    #[must_use]
    pub fn endpoint_health(mut self, health: EndpointHealth) -> Self {
        self.health = Some(Mutex::new(health));
        self
    }

    /// Derives delivery ids from `seed` instead of a random key: reproducible ids, for
    /// tests. Seeded ids are **predictable** — anyone who knows the seed knows every id —
    /// so never seed a dispatcher in production.
    #[must_use]
    pub fn delivery_id_seed(mut self, seed: u64) -> Self {
        self.ids = IdSource::seeded(seed);
        self
    }

    /// Cancels the deliveries to `webhook` that this dispatcher is running now (in any
    /// [`dispatch`](Dispatcher::dispatch), [`run_plan`](Dispatcher::run_plan) or
    /// [`deliver`](Dispatcher::deliver)): each ends [`FinalOutcome::Cancelled`] with
    /// `reason` before its next attempt, at once if it is waiting out a backoff; an attempt
    /// in flight finishes and is recorded (its outcome stands if it ended the delivery).
    /// Deliveries started after the call are not affected (switch the webhook off in the
    /// registry first, so that none start). The dispatcher does this by itself when a
    /// delivery is answered `410 Gone` and when its [endpoint
    /// health](Dispatcher::endpoint_health) rule switches a webhook off.
    pub fn cancel(&self, webhook: WebhookId, reason: crate::CancelReason) {
        self.cancels.cancel(webhook, reason);
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The timer.
    pub fn timer(&self) -> &S {
        &self.timer
    }

    /// The retry policy of event deliveries.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The retry policy of automation sends.
    pub fn automation_policy(&self) -> &RetryPolicy {
        self.automation_policy.as_ref().unwrap_or(&self.policy)
    }

    /// Runs `f` on the health tracker, if the dispatcher has one
    /// ([`endpoint_health`](Dispatcher::endpoint_health)): to look at the streaks, or to
    /// [`forget`](EndpointHealth::forget) a webhook the application switched back on.
    pub fn with_endpoint_health<R>(&self, f: impl FnOnce(&mut EndpointHealth) -> R) -> Option<R> {
        let health = self.health.as_ref()?;
        let mut health = health.lock().unwrap_or_else(PoisonError::into_inner);
        Some(f(&mut health))
    }

    /// The policy the dispatcher checks URLs with: its own, else the transport's, else
    /// [`AddressPolicy::public_only`].
    pub fn effective_address_policy(&self) -> &AddressPolicy
    where
        T: Transport,
    {
        self.address_policy
            .as_ref()
            .or_else(|| self.transport.address_policy())
            .unwrap_or(&PUBLIC_ONLY)
    }

    /// What `event` must reach in `registry`, owned: see [`DispatchPlan::new`].
    pub fn plan(&self, registry: &Registry, event: &Event) -> DispatchPlan {
        DispatchPlan::new(registry, event)
    }

    #[cfg(feature = "signing")]
    fn secrets_for<'a>(&'a self, own: &'a Secrets) -> &'a Secrets {
        if own.is_empty() { &self.signing } else { own }
    }
}

/// The deliveries one event must make, taken from a [`Registry`] and owned: the webhook
/// ids, URLs and per-webhook settings, and the encoded body (one buffer, shared).
///
/// Take it while you hold the registry (a read lock, say), let go of the registry, and run
/// it with [`Dispatcher::run_plan`]: the retries of a slow endpoint then never keep a writer
/// of the registry waiting.
///
/// ```
/// use std::sync::RwLock;
/// use posthook::{DispatchPlan, Event, EventKind, Registry, Source, Webhook};
///
/// let registry = RwLock::new(Registry::new());
/// registry.write().unwrap().insert(
///     Webhook::builder("CRM", "https://crm.example.com/hook")
///         .events([EventKind::Subscribe])
///         .sources(Source::ALL)
///         .build()?,
/// );
/// let event = Event::sample(EventKind::Subscribe);
/// let plan = DispatchPlan::new(&registry.read().unwrap(), &event); // the lock ends here
/// assert_eq!(plan.len(), 1);
/// assert_eq!(plan.body(), &event.encode());
/// // ... dispatcher.run_plan(plan).await, while writers go on.
/// # Ok::<(), posthook::Error>(())
/// ```
#[derive(Clone)]
pub struct DispatchPlan {
    kind: EventKind,
    body: Bytes,
    targets: Vec<PlannedDelivery>,
}

impl fmt::Debug for DispatchPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatchPlan")
            .field("kind", &self.kind)
            .field("body_len", &self.body.len())
            .field("targets", &self.targets)
            .finish()
    }
}

impl DispatchPlan {
    /// The deliveries `event` must make: one per webhook of [`Registry::matches`], in that
    /// order, each with the webhook's URL and own settings; the body encoded once (not at
    /// all when nothing matches).
    pub fn new(registry: &Registry, event: &Event) -> DispatchPlan {
        let targets: Vec<PlannedDelivery> =
            registry.matches(event).map(PlannedDelivery::new).collect();
        let body = if targets.is_empty() {
            Bytes::new()
        } else {
            event.encode()
        };
        DispatchPlan {
            kind: event.kind(),
            body,
            targets,
        }
    }

    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// The form body, shared by every delivery.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The deliveries, in the order of [`Registry::matches`].
    pub fn deliveries(&self) -> &[PlannedDelivery] {
        &self.targets
    }

    /// How many deliveries.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether the event reaches no webhook.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

/// One delivery of a [`DispatchPlan`]: a webhook's id, URL and own settings. `Debug` shows
/// how many signing secrets it carries, never a secret, and the names of its headers, not
/// their values.
#[derive(Clone)]
pub struct PlannedDelivery {
    webhook_id: Option<WebhookId>,
    url: WebhookUrl,
    retry_policy: Option<RetryPolicy>,
    attempt_timeout: Option<Duration>,
    /// Shared with the webhook: planning copies no header.
    headers: Option<Arc<HeaderMap>>,
    #[cfg(feature = "signing")]
    secrets: Secrets,
}

impl PlannedDelivery {
    /// The delivery `webhook` gets.
    pub fn new(webhook: &Webhook) -> PlannedDelivery {
        PlannedDelivery {
            webhook_id: webhook.id(),
            url: webhook.url().clone(),
            retry_policy: webhook.retry_policy().cloned(),
            attempt_timeout: webhook.attempt_timeout(),
            headers: webhook.shared_headers().cloned(),
            #[cfg(feature = "signing")]
            secrets: webhook.secrets().clone(),
        }
    }

    /// The webhook.
    pub fn webhook_id(&self) -> Option<WebhookId> {
        self.webhook_id
    }

    /// Where it goes.
    pub fn url(&self) -> &WebhookUrl {
        &self.url
    }

    /// The webhook's own retry policy, if it has one.
    pub fn retry_policy(&self) -> Option<&RetryPolicy> {
        self.retry_policy.as_ref()
    }

    /// The webhook's own attempt timeout, if it has one.
    pub fn attempt_timeout(&self) -> Option<Duration> {
        self.attempt_timeout
    }

    /// The webhook's own headers ([`Webhook::headers`]), sent with every attempt.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
            .as_deref()
            .unwrap_or_else(|| crate::webhook::no_headers())
    }

    fn secret_count(&self) -> usize {
        #[cfg(feature = "signing")]
        return self.secrets.len();
        #[cfg(not(feature = "signing"))]
        0
    }
}

impl fmt::Debug for PlannedDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlannedDelivery")
            .field("webhook_id", &self.webhook_id)
            .field("url", &self.url)
            .field("retry_policy", &self.retry_policy)
            .field("attempt_timeout", &self.attempt_timeout)
            .field(
                "headers",
                &crate::webhook::HeaderNames(self.headers.as_deref()),
            )
            .field("signing_secrets", &self.secret_count())
            .finish()
    }
}

/// One delivery to drive: where, by which policy and deadline, signed with what, with
/// which headers of the webhook's own.
struct Job<'a> {
    webhook_id: Option<WebhookId>,
    url: WebhookUrl,
    policy: RetryPolicy,
    timeout: Duration,
    headers: Option<Arc<HeaderMap>>,
    #[cfg(feature = "signing")]
    secrets: Cow<'a, Secrets>,
    #[cfg(not(feature = "signing"))]
    secrets: std::marker::PhantomData<&'a ()>,
    /// A slot under the event's limit, taken when the delivery was started, for its first
    /// attempt.
    slot: Option<Permit<'a>>,
    /// The cancel epoch when its plan started: cancels after it apply to the delivery.
    epoch: u64,
}

/// Where and how one attempt goes.
struct Target<'x> {
    url: &'x WebhookUrl,
    timeout: Duration,
    secrets: &'x Secrets,
    /// The webhook's own headers, if it has any.
    headers: Option<&'x HeaderMap>,
    /// Whether to check the URL against the address policy (on the first attempt).
    check_url: bool,
}

/// The concurrency limits a delivery's attempts obey.
#[derive(Clone, Copy)]
struct Limits<'a> {
    event: Option<&'a Semaphore>,
    global: Option<&'a Semaphore>,
}

impl<'a> Limits<'a> {
    /// Waits for a slot under each limit: the event's first (unless one is `held`), then the
    /// dispatcher's (always in that order, and only one attempt's worth at a time, so no two
    /// deliveries can wait on each other).
    async fn acquire(self, held: Option<Permit<'a>>) -> (Option<Permit<'a>>, Option<Permit<'a>>) {
        let event = match (held, self.event) {
            (Some(held), _) => Some(held),
            (None, Some(semaphore)) => Some(semaphore.acquire().await),
            (None, None) => None,
        };
        let global = match self.global {
            Some(semaphore) => Some(semaphore.acquire().await),
            None => None,
        };
        (event, global)
    }
}

/// What the transport call came to.
enum Sent {
    Response(http::Response<Bytes>),
    Error(TransportError),
    /// A [`TransportErrorKind::Timeout`] from a transport that keeps the deadline.
    TransportTimedOut(TransportError),
    Panicked(String),
    TimedOut,
}

impl<T: Transport, S: Timer> Dispatcher<T, S> {
    /// Delivers `event` to every webhook of `registry` that must receive it
    /// ([`Registry::matches`]), all at once, each to its final outcome.
    ///
    /// It takes the [`DispatchPlan`] when called, before the returned future first runs,
    /// and the future does not borrow the registry: drop a lock guard after the call and
    /// before awaiting. When the registry is shared (behind a lock, between tasks), the
    /// clearest way is [`plan`](Dispatcher::plan) (or [`DispatchPlan::new`]) under the lock,
    /// then [`run_plan`](Dispatcher::run_plan) without it.
    ///
    /// The body is encoded once and shared. The report has one [`DeliveryReport`] per
    /// matching webhook. The dispatcher only reads the registry: apply the `410 Gone`
    /// answers with [`DispatchReport::deactivate_gone`] (or [`Registry::deactivate`] with
    /// [`Deactivation::Gone`] for each of [`DispatchReport::gone`]), and the health changes
    /// with [`DispatchReport::apply_health`].
    pub fn dispatch<'a>(
        &'a self,
        registry: &Registry,
        event: &Event,
    ) -> impl Future<Output = DispatchReport> + use<'a, T, S> {
        self.run_plan(self.plan(registry, event))
    }

    /// Runs `plan`: every delivery at once (within
    /// [`max_concurrency`](Dispatcher::max_concurrency) and
    /// [`global_concurrency`](Dispatcher::global_concurrency) attempts in flight), each to
    /// its final outcome, with the webhook's own retry policy, attempt timeout and secrets
    /// where it has them. Borrows no registry.
    ///
    /// A wake-up polls only the delivery it is for: the cost per delivery is the same for a
    /// fan-out of ten and of a hundred thousand.
    pub async fn run_plan(&self, plan: DispatchPlan) -> DispatchReport {
        let DispatchPlan {
            kind,
            body,
            targets,
        } = plan;
        let count = targets.len();
        // Cancels from now on apply to every delivery of the plan, started or still queued.
        let epoch = self.cancels.epoch();
        let event_limit =
            (self.max_concurrency < count).then(|| Semaphore::new(self.max_concurrency));
        let limits = Limits {
            event: event_limit.as_ref(),
            global: self.global.as_ref().map(|g| &g.1),
        };
        let mut ids = self.ids.take(count);
        let mut start = |(index, target): (usize, PlannedDelivery), slot| {
            let job = Job {
                webhook_id: target.webhook_id,
                url: target.url,
                policy: target.retry_policy.unwrap_or_else(|| self.policy.clone()),
                timeout: target.attempt_timeout.unwrap_or(self.attempt_timeout),
                headers: target.headers,
                #[cfg(feature = "signing")]
                secrets: if target.secrets.is_empty() {
                    Cow::Borrowed(&self.signing)
                } else {
                    Cow::Owned(target.secrets)
                },
                #[cfg(not(feature = "signing"))]
                secrets: std::marker::PhantomData,
                slot,
                epoch,
            };
            let id = ids.next().unwrap_or(DeliveryId::new(0));
            self.drive(id, job, body.clone(), limits)
                .map(move |report| (index, report))
        };
        let mut waiting = targets.into_iter().enumerate();
        let mut running = FuturesUnordered::new();
        // Reports in the order they finish, with the index each belongs at.
        let mut done: Vec<DeliveryReport> = Vec::with_capacity(count);
        let mut order: Vec<usize> = Vec::with_capacity(count);
        let mut health = Vec::new();
        // Deliveries start in batches, at most a batch per turn of the executor, so that
        // the ones answered at once are done (and their memory reused) before the next
        // start; a turn ends after its batch only to let other tasks run, and comes back at
        // once. Under the event's limit a delivery starts only when a slot is free (a
        // delivery waiting out its backoff holds none): the others wait in the plan, not as
        // futures queued on the limit.
        poll_fn(|cx| {
            let mut budget = START_BATCH;
            loop {
                // Each start under the event's limit takes its slot now, so that a delivery
                // started but not yet polled is not counted free again.
                while budget > 0 && waiting.len() > 0 {
                    let slot = match &event_limit {
                        Some(limit) => match limit.try_acquire() {
                            Some(slot) => Some(slot),
                            None => break,
                        },
                        None => None,
                    };
                    if let Some(next) = waiting.next() {
                        running.push(start(next, slot));
                        budget -= 1;
                    }
                }
                while let Poll::Ready(Some((index, report))) = running.poll_next_unpin(cx) {
                    if let (Some(webhook), FinalOutcome::Gone) =
                        (report.webhook_id, &report.outcome)
                    {
                        self.cancel(
                            webhook,
                            crate::CancelReason::SwitchedOff(Deactivation::Gone),
                        );
                    }
                    if let Some(change) = self.observe_health(&report) {
                        self.cancel(
                            change.webhook_id(),
                            crate::CancelReason::SwitchedOff(change.deactivation()),
                        );
                        health.push(change);
                    }
                    done.push(report);
                    order.push(index);
                }
                // Slots freed while polling start the next deliveries in this turn (each
                // round starts at least one, so this ends).
                let free = event_limit
                    .as_ref()
                    .is_none_or(|limit| limit.available() > 0);
                if budget == 0 || waiting.len() == 0 || !free {
                    break;
                }
            }
            if waiting.len() > 0 && budget == 0 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else if waiting.len() == 0 && running.is_empty() {
                Poll::Ready(())
            } else {
                // A slot freed by a running delivery wakes this task (the delivery is
                // polled from here), and the next turn starts the next delivery.
                Poll::Pending
            }
        })
        .await;
        put_in_order(&mut done, &mut order);
        DispatchReport {
            kind,
            deliveries: done,
            health,
        }
    }

    /// Feeds a final outcome to the health tracker, if any.
    fn observe_health(&self, report: &DeliveryReport) -> Option<HealthChange> {
        let webhook = report.webhook_id?;
        let health = self.health.as_ref()?;
        let now = self.timer.now();
        let mut health = health.lock().unwrap_or_else(PoisonError::into_inner);
        health.record(webhook, &report.outcome, now)
    }

    fn job(
        &self,
        webhook_id: Option<WebhookId>,
        url: &WebhookUrl,
        policy: RetryPolicy,
        timeout: Duration,
    ) -> Job<'_> {
        Job {
            webhook_id,
            url: url.clone(),
            policy,
            timeout,
            headers: None,
            #[cfg(feature = "signing")]
            secrets: Cow::Borrowed(&self.signing),
            #[cfg(not(feature = "signing"))]
            secrets: std::marker::PhantomData,
            slot: None,
            epoch: self.cancels.epoch(),
        }
    }

    fn global_only(&self) -> Limits<'_> {
        Limits {
            event: None,
            global: self.global.as_ref().map(|g| &g.1),
        }
    }

    /// Delivers `body` (already form-encoded) to `url` with the retry policy and the attempt
    /// timeout: the building block of [`dispatch`](Dispatcher::dispatch), for bodies you
    /// encode yourself.
    pub async fn deliver(
        &self,
        webhook_id: Option<WebhookId>,
        url: &WebhookUrl,
        body: Bytes,
    ) -> DeliveryReport {
        let job = self.job(webhook_id, url, self.policy.clone(), self.attempt_timeout);
        self.drive(self.ids.next(), job, body, self.global_only())
            .await
    }

    /// Sends an automation step's webhook: `payload` (contact block and `seriesid`, no
    /// common keys) to `url`, with the
    /// [automation retry policy](Dispatcher::automation_retry_policy) and the
    /// [automation deadline](Dispatcher::automation_timeout) (5 s by default).
    pub async fn send_automation(
        &self,
        url: &WebhookUrl,
        payload: &AutomationPayload,
    ) -> DeliveryReport {
        let policy = self.automation_policy().clone();
        let job = self.job(None, url, policy, self.automation_timeout);
        self.drive(self.ids.next(), job, payload.encode(), self.global_only())
            .await
    }

    /// "Send sample data": posts [`Event::sample`]`(kind)` to `webhook`'s URL, active or not,
    /// within the webhook's attempt timeout (or the dispatcher's), signed with its secrets
    /// (or the dispatcher's), with its own headers.
    ///
    /// One attempt, never retried: someone is waiting for the answer, and a retry schedule
    /// would keep them waiting for minutes. A `410 Gone` is reported as
    /// [`FinalOutcome::Gone`]; deactivating is up to the caller.
    pub async fn send_sample(&self, webhook: &Webhook, kind: EventKind) -> DeliveryReport {
        let timeout = webhook.attempt_timeout().unwrap_or(self.attempt_timeout);
        #[allow(unused_mut)]
        let mut job = self.job(webhook.id(), webhook.url(), RetryPolicy::never(), timeout);
        job.headers = webhook.shared_headers().cloned();
        #[cfg(feature = "signing")]
        {
            job.secrets = Cow::Borrowed(self.secrets_for(webhook.secrets()));
        }
        self.drive(
            self.ids.next(),
            job,
            Event::sample(kind).encode(),
            self.global_only(),
        )
        .await
    }

    /// Checks that `url` answers: one `POST` of [`PROBE_BODY`], no retry, within the attempt
    /// timeout. The report says what came back (a status or a transport error) and, when
    /// the timer has a [monotonic clock](Timer::monotonic), how long it took
    /// ([`DeliveryReport::elapsed`], [`Attempt::duration`]).
    pub async fn probe(&self, url: &WebhookUrl) -> DeliveryReport {
        let job = self.job(None, url, RetryPolicy::never(), self.attempt_timeout);
        self.drive(
            self.ids.next(),
            job,
            Bytes::from_static(PROBE_BODY),
            self.global_only(),
        )
        .await
    }

    /// Makes the next attempt of `delivery` — sends `body` to `url`, within the attempt
    /// timeout, signed with the dispatcher's secrets — records it as made `at` after the
    /// start of the delivery, and returns what comes next. It does not wait (but for a slot
    /// under [`global_concurrency`](Dispatcher::global_concurrency)): for workers that keep
    /// deliveries in a queue or a database between attempts (a [`Delivery`] serializes),
    /// store it, schedule the next attempt `after` later, and call again. A delivery that is
    /// over is left as it is. A `Retry-After` on a `429`/`503` is read as of
    /// [`Timer::now`] and shapes `after`; a panicking transport ends it `Failed`.
    ///
    /// The body and URL must be the same on every attempt; the delivery id goes in the
    /// [`X-Posthook-Delivery`](DELIVERY_ID_HEADER) header.
    pub async fn attempt(
        &self,
        delivery: &mut Delivery,
        url: &WebhookUrl,
        body: Bytes,
        at: Duration,
    ) -> Step {
        let _permits = self.global_only().acquire(None).await;
        #[cfg(feature = "signing")]
        let secrets = &self.signing;
        #[cfg(not(feature = "signing"))]
        let secrets = &Secrets;
        let target = Target {
            url,
            timeout: self.attempt_timeout,
            secrets,
            headers: None,
            check_url: true,
        };
        self.attempt_once(delivery, target, body, at).await.0
    }

    /// [`attempt`](Dispatcher::attempt) for a delivery to `webhook`: to its URL, within its
    /// own attempt timeout (else the dispatcher's), signed with its own secrets (else the
    /// dispatcher's), with its own headers. Create the [`Delivery`] with the webhook's retry
    /// policy ([`Webhook::retry_policy`]) when it has one.
    pub async fn attempt_webhook(
        &self,
        delivery: &mut Delivery,
        webhook: &Webhook,
        body: Bytes,
        at: Duration,
    ) -> Step {
        self.attempt_stored(delivery, webhook.url(), webhook, body, at)
            .await
    }

    /// [`attempt_webhook`](Dispatcher::attempt_webhook) to a URL stored with the delivery
    /// (the worker's case): to `url`, with `webhook`'s attempt timeout, secrets and headers.
    pub(crate) async fn attempt_stored(
        &self,
        delivery: &mut Delivery,
        url: &WebhookUrl,
        webhook: &Webhook,
        body: Bytes,
        at: Duration,
    ) -> Step {
        let _permits = self.global_only().acquire(None).await;
        #[cfg(feature = "signing")]
        let secrets = self.secrets_for(webhook.secrets());
        #[cfg(not(feature = "signing"))]
        let secrets = &Secrets;
        let target = Target {
            url,
            timeout: webhook.attempt_timeout().unwrap_or(self.attempt_timeout),
            secrets,
            headers: webhook.shared_headers().map(|h| &**h),
            check_url: true,
        };
        self.attempt_once(delivery, target, body, at).await.0
    }

    /// The request of the next attempt, or the step that ends the delivery without one (it
    /// is over, or the URL cannot be sent) or with a blocked one (the URL is blocked: the
    /// same shape as a name the transport refuses). A plain function, so that nothing of
    /// the request's making is kept in the attempt's future across its wait.
    fn prepare(
        &self,
        delivery: &mut Delivery,
        target: &Target<'_>,
        body: Bytes,
        at: Duration,
    ) -> Result<Request<Bytes>, Step> {
        let url = target.url;
        if let Some(done) = delivery.outcome() {
            return Err(Step::Done(done.clone()));
        }
        if target.check_url {
            if let Err(blocked) = self.effective_address_policy().check_url(url) {
                // As a transport refuses a name that resolves to such an address: one
                // attempt, `Blocked`, never retried, so that a log shows both alike.
                let refused = AttemptOutcome::Error(TransportError::blocked(blocked.to_string()));
                return Err(delivery.record(refused, at));
            }
        }
        // Parsed at each attempt (most deliveries make one): not kept in the delivery's
        // future while it waits.
        let uri = match Uri::try_from(url.as_str()) {
            Ok(uri) => uri,
            Err(error) => {
                let reason = format!("the URL cannot be sent over HTTP: {error}");
                return Err(Step::Done(delivery.fail(reason)));
            }
        };
        // A resend carries the id of the delivery it resends (see `Delivery::message_id`).
        self.request(
            uri,
            delivery.message_id(),
            body,
            target.secrets,
            target.headers,
        )
        .map_err(|reason| Step::Done(delivery.fail(reason)))
    }

    /// One attempt; also says whether the deadline passed.
    // Not an `async fn`, on purpose: see `drive_as`.
    #[allow(clippy::manual_async_fn)]
    fn attempt_once<'a>(
        &'a self,
        delivery: &'a mut Delivery,
        target: Target<'a>,
        body: Bytes,
        at: Duration,
    ) -> impl Future<Output = (Step, bool)> + 'a {
        async move {
            let request = match self.prepare(delivery, &target, body, at) {
                Ok(request) => request,
                Err(step) => return (step, false),
            };
            let (url, timeout) = (target.url, target.timeout);
            let started = self.timer.monotonic();
            // A transport may panic making its future (work done before the first poll) as
            // well as polling it: both are caught, the first here, the second around the
            // future, so the future keeps nothing more than the transport's.
            let panicked = |panic: Box<dyn std::any::Any + Send>| {
                Sent::Panicked(panic_message(panic.as_ref()).to_owned())
            };
            let sent = if self.transport.enforces_timeout() {
                // The transport keeps the deadline: no timer of ours for this attempt.
                let made = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    self.transport.send_attempt(url, request, timeout)
                }));
                match made {
                    Err(panic) => panicked(panic),
                    Ok(sent) => match AssertUnwindSafe(sent).catch_unwind().await {
                        Ok(Ok(response)) => Sent::Response(response),
                        Ok(Err(error)) if error.kind() == TransportErrorKind::Timeout => {
                            Sent::TransportTimedOut(error)
                        }
                        Ok(Err(error)) => Sent::Error(error),
                        Err(panic) => panicked(panic),
                    },
                }
            } else {
                let made =
                    std::panic::catch_unwind(AssertUnwindSafe(|| self.transport.send(request)));
                match made {
                    Err(panic) => panicked(panic),
                    Ok(sent) => {
                        let sent = AssertUnwindSafe(sent).catch_unwind();
                        match race(sent, || self.timer.sleep(timeout)).await {
                            Either::Left(Ok(Ok(response))) => Sent::Response(response),
                            Either::Left(Ok(Err(error))) => Sent::Error(error),
                            Either::Left(Err(panic)) => panicked(panic),
                            Either::Right(()) => Sent::TimedOut,
                        }
                    }
                }
            };
            let duration = match (started, self.timer.monotonic()) {
                (Some(start), Some(end)) => Some(end.saturating_sub(start)),
                _ => None,
            };
            let meta = AttemptMeta::new().with_duration(duration);
            let (outcome, meta, timed_out) = match sent {
                Sent::Response(response) => {
                    let status = response.status();
                    let retry_after = if matches!(
                        status,
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    ) {
                        response
                            .headers()
                            .get(RETRY_AFTER)
                            .and_then(|value| parse_retry_after(value, self.timer.now()))
                    } else {
                        None
                    };
                    (
                        AttemptOutcome::Status(status),
                        meta.with_retry_after(retry_after),
                        false,
                    )
                }
                Sent::Error(error) => (AttemptOutcome::Error(error), meta, false),
                Sent::TransportTimedOut(error) => (AttemptOutcome::Error(error), meta, true),
                Sent::TimedOut => {
                    let message = format!("no response within {timeout:?}");
                    (
                        AttemptOutcome::Error(TransportError::timeout(message)),
                        meta,
                        true,
                    )
                }
                Sent::Panicked(message) => {
                    let reason = format!("the transport panicked: {message}");
                    let outcome = AttemptOutcome::Error(TransportError::other(reason.clone()));
                    return (
                        Step::Done(delivery.record_failed(outcome, at, reason)),
                        false,
                    );
                }
            };
            (delivery.record_with(outcome, at, meta), timed_out)
        }
    }

    /// Drives one delivery to its final outcome (in its own span, with feature `tracing`).
    fn drive<'a>(
        &'a self,
        id: DeliveryId,
        job: Job<'a>,
        body: Bytes,
        limits: Limits<'a>,
    ) -> impl Future<Output = DeliveryReport> + 'a {
        #[cfg(feature = "tracing")]
        {
            let span = tracing::info_span!(
                "posthook.delivery",
                delivery_id = %id,
                webhook_id = job.webhook_id.map(WebhookId::get),
                host = job.url.host(),
            );
            tracing::Instrument::instrument(self.drive_as(id, job, body, limits), span)
        }
        #[cfg(not(feature = "tracing"))]
        self.drive_as(id, job, body, limits)
    }

    // A plain fn returning an `async move` block, not an `async fn`: the block uses its
    // captures in place, where an `async fn` would keep its arguments twice.
    #[allow(clippy::manual_async_fn)]
    fn drive_as<'a>(
        &'a self,
        id: DeliveryId,
        job: Job<'a>,
        body: Bytes,
        limits: Limits<'a>,
    ) -> impl Future<Output = DeliveryReport> + 'a {
        // Taken apart before the future is made: it keeps what it uses, each once.
        let Job {
            webhook_id,
            url,
            policy,
            timeout,
            headers,
            secrets,
            slot,
            epoch,
        } = job;
        #[cfg(not(feature = "signing"))]
        let _ = secrets;
        let mut delivery = Delivery::new(id, webhook_id, policy);
        async move {
            // With a monotonic clock, `at` is the time elapsed since the start; without, the sum
            // of the waits made (backoff delays and missed deadlines), a lower bound of it.
            let mut since = Since::start(self.timer.monotonic());
            let mut slot = slot;
            // The URL is the same on every attempt: the address policy judges it once.
            let mut check_url = true;
            loop {
                if let Some(reason) = self.cancels.check(webhook_id, epoch) {
                    delivery.cancel(reason);
                    break;
                }
                let permits = limits.acquire(slot.take()).await;
                if let Some(reason) = self.cancels.check(webhook_id, epoch) {
                    delivery.cancel(reason);
                    break;
                }
                let at = since.at(self.timer.monotonic());
                #[cfg(feature = "signing")]
                let secrets: &Secrets = &secrets;
                #[cfg(not(feature = "signing"))]
                let secrets: &Secrets = &Secrets;
                let target = Target {
                    url: &url,
                    timeout,
                    secrets,
                    headers: headers.as_deref(),
                    check_url,
                };
                // Boxed: the attempt's state (request, response, deadline) would otherwise
                // double the size of every delivery's future, most of which wait or are done.
                let (step, timed_out) =
                    Box::pin(self.attempt_once(&mut delivery, target, body.clone(), at)).await;
                check_url = false;
                drop(permits);
                #[cfg(feature = "tracing")]
                trace_attempt(&delivery, &step);
                if timed_out {
                    since.waited(timeout);
                }
                match step {
                    Step::Retry { after } => {
                        if after.is_zero() {
                            // Even with no wait, let the executor run others (and notice a
                            // cancelled deadline) between attempts.
                            yield_now().await;
                        } else {
                            // A cancel ends the wait (and the delivery) at once.
                            let cancelled = self.cancels.wait(webhook_id, epoch);
                            if let Either::Right(reason) =
                                race(self.timer.sleep(after), || cancelled).await
                            {
                                delivery.cancel(reason);
                                break;
                            }
                        }
                        since.waited(after);
                    }
                    Step::Done(_) => break,
                }
            }
            // The ids from the delivery, not kept twice in this future.
            let (id, webhook_id) = (delivery.id(), delivery.webhook_id());
            let (outcome, attempts) = delivery.into_parts();
            DeliveryReport {
                id,
                webhook_id,
                url,
                outcome: outcome.unwrap_or_else(|| FinalOutcome::Failed {
                    reason: String::from("the delivery ended without an outcome"),
                }),
                attempts,
            }
        }
    }

    fn request(
        &self,
        uri: Uri,
        id: DeliveryId,
        body: Bytes,
        secrets: &Secrets,
        own: Option<&HeaderMap>,
    ) -> Result<Request<Bytes>, String> {
        let hex = id.to_hex();
        let mut request = Request::new(body);
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        // Room for ours (three, and three signature headers), those the transport adds and
        // the webhook's own: the map does not grow on the way out.
        let ours: usize = if secrets.is_empty() { 3 } else { 6 };
        let room = ours.saturating_add(self.transport.added_headers()).min(64);
        headers.reserve(room.saturating_add(own.map_or(0, HeaderMap::len)));
        headers.insert(CONTENT_TYPE, FORM_CONTENT_TYPE);
        headers.insert(USER_AGENT, self.user_agent.clone());
        let value = HeaderValue::from_bytes(&hex).map_err(|e| format!("delivery id: {e}"))?;
        headers.insert(HeaderName::from_static(DELIVERY_ID_HEADER), value);
        #[cfg(feature = "signing")]
        if !secrets.is_empty() {
            let id = std::str::from_utf8(&hex).map_err(|e| format!("delivery id: {e}"))?;
            // One reading of the clock: the timestamp and the secrets that sign at it.
            let now = self.timer.now();
            let since_epoch = now.duration_since(std::time::UNIX_EPOCH);
            let timestamp =
                since_epoch.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            let secrets: Vec<&SigningSecret> = secrets.at(now).collect();
            if secrets.is_empty() {
                return Err(String::from("signing: every signing secret has expired"));
            }
            let (body, headers) = (request.body().clone(), request.headers_mut());
            crate::sign::SignatureHeaders::sign(&secrets, id, timestamp, &body)
                .map_err(|e| format!("signing: {e}"))?
                .apply(headers);
        }
        // After ours, never over one of them: a webhook cannot have a header posthook sets
        // (refused when it was built).
        if let Some(own) = own {
            let headers = request.headers_mut();
            for (name, value) in own {
                if !headers.contains_key(name) {
                    headers.append(name.clone(), value.clone());
                }
            }
        }
        Ok(request)
    }
}

/// Where a delivery's time is counted from: its start on the timer's monotonic clock, or,
/// without one, the sum of the waits it made (backoff delays and missed deadlines), a lower
/// bound of the time elapsed.
enum Since {
    Start(Duration),
    Waits(Duration),
}

impl Since {
    fn start(monotonic: Option<Duration>) -> Since {
        monotonic.map_or(Since::Waits(Duration::ZERO), Since::Start)
    }

    /// The time elapsed, given the monotonic clock's reading now.
    fn at(&self, now: Option<Duration>) -> Duration {
        match (self, now) {
            (Since::Start(start), Some(now)) => now.saturating_sub(*start),
            (Since::Start(_), None) => Duration::ZERO,
            (Since::Waits(waited), _) => *waited,
        }
    }

    /// Counts a wait (only without a clock).
    fn waited(&mut self, wait: Duration) {
        if let Since::Waits(waited) = self {
            *waited = waited.saturating_add(wait);
        }
    }
}

// Signing secrets with their ends with feature `signing`; nothing without.
#[cfg(feature = "signing")]
use crate::sign::Secrets;
/// No signing secrets (feature `signing` is off).
#[cfg(not(feature = "signing"))]
#[derive(Clone, Copy)]
struct Secrets;

#[cfg(not(feature = "signing"))]
impl Secrets {
    fn is_empty(&self) -> bool {
        true
    }
}

/// Moves `items[i]` to position `order[i]`, in place, in O(n) swaps. `order` is a
/// permutation of `0..items.len()` (anything else stops short, never loops).
fn put_in_order<T>(items: &mut [T], order: &mut [usize]) {
    for i in 0..items.len().min(order.len()) {
        while order[i] != i {
            let j = order[i];
            if j >= items.len().min(order.len()) || order[j] == j {
                break;
            }
            items.swap(i, j);
            order.swap(i, j);
        }
    }
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)")
}

/// One event per attempt: its number, status or error kind, and the wait before the next.
#[cfg(feature = "tracing")]
fn trace_attempt(delivery: &Delivery, step: &Step) {
    let Some(attempt) = delivery.attempts().last() else {
        return;
    };
    // Only the attempt just made: a step that is Done with an earlier last attempt (a
    // delivery failed before an attempt) has nothing new.
    if attempt.number as usize != delivery.attempts().len() {
        return;
    }
    let next_wait = match step {
        Step::Retry { after } => Some(*after),
        Step::Done(_) => None,
    };
    match &attempt.outcome {
        AttemptOutcome::Status(status) => tracing::info!(
            attempt = attempt.number,
            status = status.as_u16(),
            next_wait = ?next_wait,
            "posthook attempt"
        ),
        AttemptOutcome::Error(error) => tracing::info!(
            attempt = attempt.number,
            error = error.kind().as_str(),
            next_wait = ?next_wait,
            "posthook attempt"
        ),
        AttemptOutcome::Lapsed => tracing::info!(
            attempt = attempt.number,
            error = "lapsed",
            next_wait = ?next_wait,
            "posthook attempt"
        ),
    }
}

/// How one delivery went: its id, where it went, its one final outcome and every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// The delivery id, sent with every attempt.
    pub id: DeliveryId,
    /// The webhook, for event deliveries and sample data; `None` for automation sends and
    /// probes.
    pub webhook_id: Option<WebhookId>,
    /// Where it was sent.
    pub url: WebhookUrl,
    /// How it ended.
    pub outcome: FinalOutcome,
    /// Every attempt, in order (none when the URL could not be sent at all).
    pub attempts: Vec<Attempt>,
}

impl DeliveryReport {
    /// How long the delivery took, from its start to the end of its last attempt, when the
    /// dispatcher's timer has a [monotonic clock](Timer::monotonic) (for a probe: the time
    /// the endpoint took to answer); `None` without a clock or without an attempt.
    pub fn elapsed(&self) -> Option<Duration> {
        let last = self.attempts.last()?;
        Some(last.at.saturating_add(last.duration?))
    }
}

/// How one event's deliveries went: one [`DeliveryReport`] per webhook it matched, and what
/// the [`EndpointHealth`] rule says about them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DispatchReport {
    /// The event's kind.
    pub kind: EventKind,
    /// One per matching webhook, in the order [`Registry::matches`] gave them.
    pub deliveries: Vec<DeliveryReport>,
    /// The webhooks to disable, when the dispatcher watches
    /// [endpoint health](Dispatcher::endpoint_health); apply with
    /// [`apply_health`](DispatchReport::apply_health).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<HealthChange>,
}

impl DispatchReport {
    /// Whether every delivery was answered `2xx` (true when there were none).
    pub fn all_delivered(&self) -> bool {
        self.deliveries.iter().all(|d| d.outcome.is_delivered())
    }

    /// The webhooks whose endpoint answered `410 Gone`: to deactivate for good.
    pub fn gone(&self) -> impl Iterator<Item = WebhookId> + '_ {
        self.deliveries
            .iter()
            .filter(|d| d.outcome.is_gone())
            .filter_map(|d| d.webhook_id)
    }

    /// Deactivates every webhook of [`gone`](DispatchReport::gone) in `registry` with
    /// [`Deactivation::Gone`]; returns how many it found there.
    pub fn deactivate_gone(&self, registry: &mut Registry) -> usize {
        self.gone()
            .filter(|&id| registry.deactivate(id, Deactivation::Gone))
            .count()
    }

    /// Applies the [`health`](DispatchReport::health) changes to `registry`: each webhook
    /// to disable is deactivated with [`Deactivation::Failing`], unless it is off already
    /// (a [`Deactivation::Manual`] or [`Deactivation::Gone`] is never replaced). Returns how
    /// many webhooks it switched off.
    pub fn apply_health(&self, registry: &mut Registry) -> usize {
        self.health
            .iter()
            .filter(|change| {
                let id = change.webhook_id();
                registry.get(id).is_some_and(Webhook::is_active)
                    && registry.deactivate(id, change.deactivation())
            })
            .count()
    }
}

/// Which of two futures finished first.
pub(crate) enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Returns `Pending` once (waking itself at once), so the executor can run other tasks.
async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

/// Runs `a` and the future `b()` makes together and returns the output of the first to
/// finish, dropping the other. `a` is polled first, and `b` is made only if `a` is not ready
/// on its first poll (an answer at once needs no deadline); when both are ready at once,
/// `a` wins (a response that is already there beats a deadline that is already past).
pub(crate) async fn race<A: Future, B: Future>(
    a: A,
    b: impl FnOnce() -> B,
) -> Either<A::Output, B::Output> {
    // One poll function, so that neither output is kept in this future between polls.
    let mut a = pin!(a);
    let mut make = Some(b);
    let mut b = pin!(None::<B>);
    poll_fn(move |cx| {
        if let Poll::Ready(out) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(out));
        }
        if let Some(make) = make.take() {
            b.set(Some(make()));
        }
        match b.as_mut().as_pin_mut().map(|b| b.poll(cx)) {
            Some(Poll::Ready(out)) => Poll::Ready(Either::Right(out)),
            _ => Poll::Pending,
        }
    })
    .await
}
