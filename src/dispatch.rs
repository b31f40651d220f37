//! The async shell: a [`Dispatcher`] drives [`Delivery`] state machines through your
//! [`Transport`] and [`Timer`].
//!
//! It owns the three things the pure core leaves out: concurrency (all deliveries of one
//! event run at once, optionally capped), the deadline of each attempt (the transport call
//! raced against the timer), and the wait between attempts (through the timer). It reads no
//! clock, spawns no task and depends on no runtime: the futures it returns run on whatever
//! executor awaits them, and are `Send` when the transport and the timer are.

use std::fmt;
use std::future::{Future, poll_fn};
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroUsize;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use http::{Method, Request, Uri};
use serde::{Deserialize, Serialize};

use crate::delivery::{
    Attempt, AttemptOutcome, Delivery, DeliveryId, FinalOutcome, RetryPolicy, Step,
};
use crate::transport::{Timer, Transport, TransportError};
use crate::{
    AddressPolicy, AutomationPayload, Deactivation, Event, EventKind, Registry, Webhook, WebhookId,
    WebhookUrl,
};

mod probe;

pub use probe::{Diagnosis, EXCERPT_BYTES, Finding, ResolvedAddress};

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
/// | [`automation_timeout`](Dispatcher::automation_timeout) | 5 s per attempt (ActiveCampaign's) |
/// | [`user_agent`](Dispatcher::user_agent) | `posthook/<version>` |
/// | [`max_concurrency`](Dispatcher::max_concurrency) | unlimited |
///
/// Each request is a `POST` to the webhook's URL with `Content-Type:
/// application/x-www-form-urlencoded`, the `User-Agent`, [`X-Posthook-Delivery`](DELIVERY_ID_HEADER)
/// and the body. An event is encoded once; its deliveries share the [`Bytes`].
///
/// Nothing is dropped silently: every delivery ends in exactly one [`FinalOutcome`], listed
/// in the report with its attempts. A URL that `http::Uri` cannot hold is a
/// [`FinalOutcome::Failed`] without an attempt, not a panic.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use posthook::{
///     Dispatcher, Event, EventKind, Registry, Source, Timer, Transport, TransportError, Webhook,
/// };
///
/// /// A receiver that answers 200 to everything (a real one wraps an HTTP client).
/// struct Ok200;
/// #[async_trait::async_trait]
/// impl Transport for Ok200 {
///     async fn send(&self, _: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
///         Ok(http::Response::new(Bytes::new()))
///     }
/// }
///
/// /// tokio's sleep as the dispatcher's timer.
/// struct Tokio;
/// #[async_trait::async_trait]
/// impl Timer for Tokio {
///     async fn sleep(&self, duration: Duration) {
///         tokio::time::sleep(duration).await;
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
/// let dispatcher = Dispatcher::new(Ok200, Tokio).attempt_timeout(Duration::from_secs(5));
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
    attempt_timeout: Duration,
    automation_timeout: Duration,
    user_agent: HeaderValue,
    max_concurrency: usize,
    id_seed: u64,
    id_counter: AtomicU64,
    /// Set by [`Dispatcher::address_policy`]; otherwise the transport's, or public only.
    address_policy: Option<AddressPolicy>,
    #[cfg(feature = "signing")]
    signing: Vec<crate::sign::SigningSecret>,
}

/// The policy of a dispatcher whose transport reports none and that was given none.
static PUBLIC_ONLY: AddressPolicy = AddressPolicy::public_only();

impl<T, S> fmt::Debug for Dispatcher<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("policy", &self.policy)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("automation_timeout", &self.automation_timeout)
            .field("user_agent", &self.user_agent)
            .field("max_concurrency", &self.max_concurrency)
            .field("address_policy", &self.address_policy)
            .finish_non_exhaustive()
    }
}

impl<T, S> Dispatcher<T, S> {
    /// A dispatcher over `transport` and `timer`, with the default options.
    ///
    /// Delivery ids are this dispatcher's random 64-bit seed (from the standard library's
    /// hasher keys, not a clock) followed by a 64-bit counter: unique within a dispatcher,
    /// and unlikely to repeat across dispatchers.
    pub fn new(transport: T, timer: S) -> Dispatcher<T, S> {
        Dispatcher {
            transport,
            timer,
            policy: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(10),
            automation_timeout: Duration::from_secs(5),
            user_agent: HeaderValue::from_static(DEFAULT_USER_AGENT),
            max_concurrency: usize::MAX,
            id_seed: RandomState::new().hash_one(0x706f_7374_686f_6f6b_u64),
            id_counter: AtomicU64::new(0),
            address_policy: None,
            #[cfg(feature = "signing")]
            signing: Vec::new(),
        }
    }

    /// Which addresses deliveries may go to. The default is the policy the transport
    /// enforces ([`Transport::address_policy`]; the `HttpTransport` of feature `http`
    /// reports its own), else [`AddressPolicy::public_only`]: no loopback, private,
    /// link-local or reserved address.
    ///
    /// The dispatcher judges what the URL shows ([`AddressPolicy::check_url`]): a literal IP
    /// or `localhost`; a delivery it refuses ends [`FinalOutcome::Failed`] without an
    /// attempt. Names that resolve to such addresses are refused by the transport, after
    /// resolving and before connecting (`HttpTransport` does; a transport of your own must).
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
    /// signature per secret.
    #[cfg(feature = "signing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signing")))]
    #[must_use]
    pub fn signing_secret(mut self, secret: crate::sign::SigningSecret) -> Self {
        self.signing.push(secret);
        self
    }

    /// Retries event deliveries and automation sends by `policy` ([`RetryPolicy::never`] for
    /// ActiveCampaign's own behaviour).
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Gives each attempt `timeout` to get a response (default 10 s); past it, the attempt
    /// is a [`TransportError::timeout`] and is retried like one. `Duration::ZERO` times out
    /// every attempt that is not answered on its first poll; use a large value, not zero,
    /// to leave the deadline to the transport.
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

    /// Runs at most `limit` deliveries of one event at a time (default: all at once).
    #[must_use]
    pub fn max_concurrency(mut self, limit: NonZeroUsize) -> Self {
        self.max_concurrency = limit.get();
        self
    }

    /// Derives delivery ids from `seed` instead of a random one: reproducible ids (for tests).
    #[must_use]
    pub fn delivery_id_seed(mut self, seed: u64) -> Self {
        self.id_seed = seed;
        self
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The timer.
    pub fn timer(&self) -> &S {
        &self.timer
    }

    /// The retry policy of event deliveries and automation sends.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
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

    fn next_id(&self) -> DeliveryId {
        let n = self.id_counter.fetch_add(1, Ordering::Relaxed);
        DeliveryId::new((u128::from(self.id_seed) << 64) | u128::from(n))
    }
}

impl<T: Transport, S: Timer> Dispatcher<T, S> {
    /// Delivers `event` to every webhook of `registry` that must receive it
    /// ([`Registry::matches`]), all at once, each to its final outcome.
    ///
    /// The body is encoded once and shared. The report has one [`DeliveryReport`] per
    /// matching webhook. The dispatcher only reads the registry: apply the `410 Gone`
    /// answers with [`DispatchReport::deactivate_gone`] (or
    /// [`Registry::deactivate`] with [`Deactivation::Gone`] for each of
    /// [`DispatchReport::gone`]).
    pub async fn dispatch(&self, registry: &Registry, event: &Event) -> DispatchReport {
        let hooks: Vec<&Webhook> = registry.matches(event).collect();
        if hooks.is_empty() {
            return DispatchReport {
                kind: event.kind(),
                deliveries: Vec::new(),
            };
        }
        let body = event.encode();
        let runs = hooks
            .iter()
            .map(|hook| {
                self.run(
                    hook.id(),
                    hook.url(),
                    body.clone(),
                    self.policy.clone(),
                    self.attempt_timeout,
                )
            })
            .collect();
        DispatchReport {
            kind: event.kind(),
            deliveries: join_all(runs, self.max_concurrency).await,
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
        self.run(
            webhook_id,
            url,
            body,
            self.policy.clone(),
            self.attempt_timeout,
        )
        .await
    }

    /// Sends an automation step's webhook: `payload` (contact block and `seriesid`, no
    /// common keys) to `url`, with the retry policy and the
    /// [automation deadline](Dispatcher::automation_timeout) (5 s by default).
    pub async fn send_automation(
        &self,
        url: &WebhookUrl,
        payload: &AutomationPayload,
    ) -> DeliveryReport {
        self.run(
            None,
            url,
            payload.encode(),
            self.policy.clone(),
            self.automation_timeout,
        )
        .await
    }

    /// "Send sample data": posts [`Event::sample`]`(kind)` to `webhook`'s URL, active or not.
    ///
    /// One attempt, never retried: someone is waiting for the answer, and a retry schedule
    /// would keep them waiting for minutes. A `410 Gone` is reported as
    /// [`FinalOutcome::Gone`]; deactivating is up to the caller.
    pub async fn send_sample(&self, webhook: &Webhook, kind: EventKind) -> DeliveryReport {
        self.run(
            webhook.id(),
            webhook.url(),
            Event::sample(kind).encode(),
            RetryPolicy::never(),
            self.attempt_timeout,
        )
        .await
    }

    /// Checks that `url` answers: one `POST` of [`PROBE_BODY`], no retry, within the attempt
    /// timeout. The report says what came back (a status or a transport error); it measures
    /// no latency, as the dispatcher reads no clock.
    pub async fn probe(&self, url: &WebhookUrl) -> DeliveryReport {
        self.run(
            None,
            url,
            Bytes::from_static(PROBE_BODY),
            RetryPolicy::never(),
            self.attempt_timeout,
        )
        .await
    }

    /// Makes the next attempt of `delivery` — sends `body` to `url`, within the attempt
    /// timeout — records it as made `at` after the start of the delivery, and returns what
    /// comes next. It does not wait: for workers that keep deliveries in a queue or a
    /// database between attempts (a [`Delivery`] serializes), store it, schedule the next
    /// attempt `after` later, and call again. A delivery that is over is left as it is.
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
        self.attempt_within(delivery, url, body, at, self.attempt_timeout)
            .await
            .0
    }

    /// One attempt with `timeout`; also says whether the deadline passed.
    async fn attempt_within(
        &self,
        delivery: &mut Delivery,
        url: &WebhookUrl,
        body: Bytes,
        at: Duration,
        timeout: Duration,
    ) -> (Step, bool) {
        if let Some(done) = delivery.outcome() {
            return (Step::Done(done.clone()), false);
        }
        if let Err(blocked) = self.effective_address_policy().check_url(url) {
            return (Step::Done(delivery.fail(blocked.to_string())), false);
        }
        let uri = match Uri::try_from(url.as_str()) {
            Ok(uri) => uri,
            Err(error) => {
                let reason = format!("the URL cannot be sent over HTTP: {error}");
                return (Step::Done(delivery.fail(reason)), false);
            }
        };
        let request = match self.request(uri, delivery.id(), body) {
            Ok(request) => request,
            Err(reason) => return (Step::Done(delivery.fail(reason)), false),
        };
        let sent = select(self.transport.send(request), self.timer.sleep(timeout));
        let (outcome, timed_out) = match sent.await {
            Either::Left(Ok(response)) => (AttemptOutcome::Status(response.status()), false),
            Either::Left(Err(error)) => (AttemptOutcome::Error(error), false),
            Either::Right(()) => {
                let message = format!("no response within {timeout:?}");
                (
                    AttemptOutcome::Error(TransportError::timeout(message)),
                    true,
                )
            }
        };
        (delivery.record(outcome, at), timed_out)
    }

    /// Drives one delivery to its final outcome.
    async fn run(
        &self,
        webhook_id: Option<WebhookId>,
        url: &WebhookUrl,
        body: Bytes,
        policy: RetryPolicy,
        timeout: Duration,
    ) -> DeliveryReport {
        let id = self.next_id();
        let mut delivery = Delivery::new(id, webhook_id, policy);
        // The dispatcher reads no clock: `at` is the sum of the waits it has made (backoff
        // delays and missed deadlines), a lower bound of the real time.
        let mut at = Duration::ZERO;
        loop {
            let (step, timed_out) = self
                .attempt_within(&mut delivery, url, body.clone(), at, timeout)
                .await;
            if timed_out {
                at = at.saturating_add(timeout);
            }
            match step {
                Step::Retry { after } => {
                    if after.is_zero() {
                        // Even with no wait, let the executor run others (and notice a
                        // cancelled deadline) between attempts.
                        yield_now().await;
                    } else {
                        self.timer.sleep(after).await;
                    }
                    at = at.saturating_add(after);
                }
                Step::Done(_) => break,
            }
        }
        let (outcome, attempts) = delivery.into_parts();
        DeliveryReport {
            id,
            webhook_id,
            url: url.clone(),
            outcome: outcome.unwrap_or_else(|| FinalOutcome::Failed {
                reason: String::from("the delivery ended without an outcome"),
            }),
            attempts,
        }
    }

    fn request(&self, uri: Uri, id: DeliveryId, body: Bytes) -> Result<Request<Bytes>, String> {
        let mut request = Request::new(body);
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let id = id.to_string();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, FORM_CONTENT_TYPE);
        headers.insert(USER_AGENT, self.user_agent.clone());
        let value = HeaderValue::try_from(id.as_str()).map_err(|e| format!("delivery id: {e}"))?;
        headers.insert(HeaderName::from_static(DELIVERY_ID_HEADER), value);
        #[cfg(feature = "signing")]
        if !self.signing.is_empty() {
            let now = self.timer.now().duration_since(std::time::UNIX_EPOCH);
            let timestamp = now.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            let secrets: Vec<&crate::sign::SigningSecret> = self.signing.iter().collect();
            let (body, headers) = (request.body().clone(), request.headers_mut());
            crate::sign::SignatureHeaders::sign(&secrets, &id, timestamp, &body)
                .map_err(|e| format!("signing: {e}"))?
                .apply(headers);
        }
        Ok(request)
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

/// How one event's deliveries went: one [`DeliveryReport`] per webhook it matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DispatchReport {
    /// The event's kind.
    pub kind: EventKind,
    /// One per matching webhook, in the order [`Registry::matches`] gave them.
    pub deliveries: Vec<DeliveryReport>,
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
}

/// Which of two futures finished first.
pub(crate) enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Runs `a` and `b` together and returns the output of the first to finish, dropping the
/// other. `a` is polled first, so when both are ready at once, `a` wins (a response that is
/// already there beats a deadline that is already past).
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

pub(crate) async fn select<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(out) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(out));
        }
        if let Poll::Ready(out) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(out));
        }
        Poll::Pending
    })
    .await
}

/// A future of [`join_all`], running or finished.
enum Slot<F: Future> {
    Running(Pin<Box<F>>),
    Done(Option<F::Output>),
}

/// Runs `futures` together, at most `limit` at a time (in order: the next one starts when
/// one finishes), and returns their outputs in the order given.
///
/// Every wake-up polls every running future: O(running) per wake-up, which is fine for the
/// fan-out of one event (tens of webhooks), not for thousands.
async fn join_all<F: Future>(futures: Vec<F>, limit: usize) -> Vec<F::Output> {
    let limit = limit.max(1);
    let mut slots: Vec<Slot<F>> = futures
        .into_iter()
        .map(|f| Slot::Running(Box::pin(f)))
        .collect();
    poll_fn(move |cx| {
        let mut running = 0;
        let mut pending = false;
        for slot in &mut slots {
            if let Slot::Running(future) = slot {
                if running == limit {
                    pending = true;
                    break;
                }
                match future.as_mut().poll(cx) {
                    Poll::Ready(out) => *slot = Slot::Done(Some(out)),
                    Poll::Pending => {
                        running += 1;
                        pending = true;
                    }
                }
            }
        }
        if pending {
            return Poll::Pending;
        }
        Poll::Ready(
            slots
                .iter_mut()
                .filter_map(|slot| match slot {
                    Slot::Done(out) => out.take(),
                    Slot::Running(_) => None,
                })
                .collect(),
        )
    })
    .await
}
