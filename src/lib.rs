//! # posthook
//!
//! Outgoing webhooks the way ActiveCampaign offers them, for any Rust application: typed
//! events and subscriptions, a URL validator for the allowed character set, a matcher, the
//! exact `application/x-www-form-urlencoded` payload, and delivery behind your own transport.
//!
//! The core is sans-IO: plain data and plain functions, no clock reads, no sockets.
//!
//! ```
//! use posthook::{EventKind, ListId, ListScope, Source, Webhook};
//!
//! // "Send to Zapier whenever a contact of any list unsubscribes."
//! let hook = Webhook::builder("Zapier", "https://hooks.zapier.com/hooks/catch/123/abc/")
//!     .events([EventKind::Unsubscribe])
//!     .sources(Source::ALL)
//!     .scope(ListScope::All)
//!     .build()?;
//!
//! assert!(hook.wants(EventKind::Unsubscribe, Source::Contact, ListId::new(3)));
//! assert!(!hook.wants(EventKind::Subscribe, Source::Contact, ListId::new(3)));
//!
//! // A bad URL says what and where.
//! let err = Webhook::builder("bad", "https://example.com/{id}").events([EventKind::Open])
//!     .sources([Source::Api]).build().unwrap_err();
//! assert_eq!(err.to_string(), "invalid character '{' at byte 20");
//! # Ok::<(), posthook::Error>(())
//! ```
//!
//! ## Map
//!
//! | concept | types |
//! |---|---|
//! | what happened | [`EventKind`] (25), [`EventSet`], [`Source`] (4), [`SourceSet`], [`ListId`], [`ListScope`] |
//! | who wants it | [`Webhook`], [`WebhookBuilder`], [`WebhookUrl`] ([`UrlError`]), [`WebhookEnvelope`] (API JSON) |
//! | who gets it | [`Registry`]: [`Registry::matches`] in time proportional to the answer |
//! | the payload | [`Event`] and its blocks ([`Contact`], [`Deal`], ...), [`AutomationPayload`], [`Form`], [`FormWriter`] |
//! | delivery | [`Dispatcher`], [`DispatchPlan`], [`Transport`], [`Timer`], [`Delivery`], [`RetryPolicy`] (exponential or a schedule), [`DispatchReport`]; `HttpTransport` (feature `http`) |
//! | "Test URL" | [`Dispatcher::diagnose`] → [`Diagnosis`] |
//! | endpoint health | [`EndpointHealth`] (pure): failing webhooks switched off as [`Deactivation::Failing`] |
//! | receiving | [`receive::Receiver`]: signature (feature `signing`), delivery id and body ([`Event`] or [`AutomationPayload`]) in one call |
//! | hygiene | [`AddressPolicy`] (SSRF guard: [`AddressClass::table`], [`IpNetwork`] allow-list), `sign` (feature `signing`: Standard Webhooks signatures) |
//!
//! | durable delivery | [`Outbox`], [`Worker`], [`DeliveryStore`] ([`store`]): [`MemoryStore`], `SqliteStore` (feature `sqlite`), `PostgresStore` (feature `postgres`); [`DeliveryRecord`] (the delivery log) |
//! | accounts | [`AccountId`], [`WebhookStore`] ([`webhook_store`]: versions, filters, a change feed, on the same three stores), [`Registries`] (every account's registry, kept current), [`Outbox::publish_for`] |
//!
//! Features, all off by default: `signing` (HMAC-SHA256 signatures and their verification),
//! `tokio` (`TokioTimer`), `http` (`HttpTransport`), `tracing` (a span per delivery and an event per attempt),
//! `sqlite` (`SqliteStore`: sqlx with SQLite bundled), `postgres` (`PostgresStore`: sqlx, no TLS),
//! `api` (`posthook::api`: ActiveCampaign API v3's webhook endpoints as an axum `Router`
//! over any [`WebhookStore`], authenticated per account by `Api-Token`).
//!
//! ## Delivery
//!
//! A [`Dispatcher`] sends an event to every matching webhook, all at once, through a
//! [`Transport`] (one HTTP exchange) and waits through a [`Timer`]. With the `http` feature,
//! `HttpTransport` is real HTTP(S) that cannot be pointed at your own network (every
//! resolved address is checked against the [`AddressPolicy`]), and `TokioTimer` waits on
//! tokio; without it, bring your own client or an in-memory fake. Each delivery is a pure
//! [`Delivery`] state machine that ends in exactly one [`FinalOutcome`]: `2xx` delivered;
//! `410 Gone` deactivates the webhook; `429`, `5xx`, timeouts and connection errors retried
//! per the [`RetryPolicy`] ([`RetryPolicy::never`] for ActiveCampaign's one attempt);
//! redirects, other `4xx` and blocked addresses failed. The report lists every delivery with
//! its attempts. A `Retry-After` on
//! `429`/`503` sets the next wait.
//!
//! Under load: [`Dispatcher::dispatch`] takes a [`DispatchPlan`] (owned: ids, URLs, per-webhook
//! settings, the body) when called and holds no borrow of the registry while it retries —
//! with a shared registry, take the plan under its lock and [`Dispatcher::run_plan`] without
//! it. The fan-out costs the same per delivery at any size; concurrency caps
//! ([`Dispatcher::max_concurrency`], [`Dispatcher::global_concurrency`]) count attempts in
//! flight, not deliveries waiting out a backoff; a transport that panics fails one delivery,
//! not the dispatch. Each attempt has a deadline: the dispatcher races its [`Timer`] against
//! the transport, or, for a transport that keeps deadlines itself
//! ([`Transport::enforces_timeout`], as `HttpTransport` does), hands it the deadline with
//! the webhook's URL ([`Transport::send_attempt`]; the URL keeps its parse,
//! [`WebhookUrl::as_url`]). Share a dispatcher between tasks in an `Arc`. With
//! [`Dispatcher::endpoint_health`], webhooks that keep failing are reported for
//! [`DispatchReport::apply_health`].
//!
//! A webhook's own settings, on its [`WebhookBuilder`], replace or add to the dispatcher's
//! for its deliveries: a [`RetryPolicy`] ([`WebhookBuilder::retry_policy`]), an attempt
//! timeout ([`WebhookBuilder::attempt_timeout`]), [`Pacing`] in the stores
//! ([`WebhookBuilder::max_in_flight`], [`WebhookBuilder::rate_limit`],
//! [`WebhookBuilder::ordered`]), HTTP headers sent with every attempt after posthook's own
//! ([`WebhookBuilder::header`]: never one posthook or the connection sets, refused by name;
//! part of the API JSON), and, with feature `signing`, signing secrets
//! (`WebhookBuilder::signing_secret`) that rotate with an overlap (`Webhook::rotate`: the
//! old ones sign beside the new one until a time you choose, then stop by themselves, by the
//! dispatcher's [`Timer::now`] at each attempt).
//!
#![cfg_attr(feature = "tokio", doc = "```")]
#![cfg_attr(not(feature = "tokio"), doc = "```ignore")]
//! use bytes::Bytes;
//! use posthook::{
//!     Dispatcher, Event, EventKind, FinalOutcome, Registry, Source, TokioTimer, Transport,
//!     TransportError, Webhook,
//! };
//!
//! /// An endpoint that has gone away for good (`HttpTransport` in production).
//! struct GoneAway;
//! #[async_trait::async_trait]
//! impl Transport for GoneAway {
//!     async fn send(&self, _: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
//!         let mut response = http::Response::new(Bytes::new());
//!         *response.status_mut() = http::StatusCode::GONE;
//!         Ok(response)
//!     }
//! }
//!
//! let mut registry = Registry::new();
//! let id = registry.insert(
//!     Webhook::builder("old CRM", "https://old-crm.example.com/hook")
//!         .events([EventKind::Unsubscribe])
//!         .sources(Source::ALL)
//!         .build()?,
//! );
//! let event = Event::sample(EventKind::Unsubscribe);
//! let dispatcher = Dispatcher::new(GoneAway, TokioTimer::new());
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
//! let report = runtime.block_on(dispatcher.dispatch(&registry, &event));
//! assert_eq!(report.deliveries[0].outcome, FinalOutcome::Gone);
//! assert_eq!(report.deliveries[0].attempts.len(), 1); // 410 is never retried
//!
//! // The dispatcher only reads the registry; the caller applies the 410.
//! assert_eq!(report.deactivate_gone(&mut registry), 1);
//! assert!(!registry.get(id).unwrap().is_active());
//! assert_eq!(registry.matches(&event).count(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Durable delivery
//!
//! The [`Dispatcher`] keeps deliveries in futures: a process that dies loses them. The
//! [`Outbox`] keeps them in a [`DeliveryStore`] instead. [`Outbox::publish`] matches an
//! event, encodes it once and stores one body and one [`Delivery`] per matching webhook
//! (random 128-bit ids) before anything is sent; [`Worker`]s — in this process or others —
//! claim due deliveries with a lease, make the attempts through a [`Dispatcher`], and put
//! the results back: a retry is due again later, a final outcome is stored and handed to
//! your [`OutcomeSink`]. A killed worker loses nothing: its leases run out and another
//! worker takes over (at least once; receivers drop repeats by the delivery id). Leases
//! and due times follow the store's clock. The store is also the delivery log: every
//! attempt of every delivery, per webhook ([`DeliveryStore::recent`]).
//!
//! Publishing is **group-committed**: concurrent [`Outbox::publish`] calls share commits
//! (whatever arrives while one commit is in flight goes into the next, each caller told
//! when its own event is stored), and [`Outbox::publish_all`] stores many events in one
//! ([`DeliveryStore::enqueue_all`]). Claims are **fair**: each webhook's [`Pacing`] — an
//! in-flight limit held across every worker of the store (16 by default), an optional rate
//! limit, optional ordered delivery — is kept by the store, and a claim takes the webhooks
//! with due work in turn, so one endpoint's backlog or hang cannot delay another's
//! deliveries.
//!
//! **Operator controls.** [`Outbox::switch_off`] (by hand) and [`Outbox::delete`] take a
//! webhook out of the registry and [cancel](DeliveryStore::cancel) its pending deliveries:
//! each ends [`FinalOutcome::Cancelled`] with its [`CancelReason`], and from the commit on no
//! worker claims one (an attempt already in flight finishes and is recorded). A worker
//! cancels by itself when a receiver answers `410 Gone` or the endpoint-health rule switches
//! a webhook off; [`Dispatcher::cancel`] does the same for in-process dispatch.
//! [`Outbox::resend`] sends one delivery again and [`Outbox::recover`] every failed, given-up
//! or cancelled delivery of a webhook since a time, each as a new delivery linked to the
//! first ([`DeliveryRecord::resent_from`]) that receivers see under the first one's id
//! ([`Delivery::message_id`]). A worker that dies mid-attempt shows in the log as an
//! [`AttemptOutcome::Lapsed`] attempt, not as a timeout.
//!
//! | store | feature | pick it for |
//! |---|---|---|
//! | [`MemoryStore`] | — | tests ([`ManualClock`]), small apps that may lose the queue on exit |
//! | `SqliteStore` | `sqlite` | one process, no server: one file in WAL mode |
//! | `PostgresStore` | `postgres` | many workers on many machines; enqueue in the transaction of the change (`PostgresStore::enqueue_in`) |
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use posthook::{
//!     DeliveryReport, Dispatcher, Event, EventKind, MemoryStore, Outbox, Registry, Source,
//!     Transport, TransportError, Webhook, Worker,
//! };
//!
//! struct Ok200;
//! #[async_trait::async_trait]
//! impl Transport for Ok200 {
//!     async fn send(&self, _: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
//!         Ok(http::Response::new(Bytes::new()))
//!     }
//! }
//! struct Tokio;
//! #[async_trait::async_trait]
//! impl posthook::Timer for Tokio {
//!     async fn sleep(&self, d: Duration) { tokio::time::sleep(d).await }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
//! let mut registry = Registry::new();
//! registry.insert(Webhook::builder("CRM", "https://crm.example.com/hook")
//!     .events([EventKind::Subscribe]).sources(Source::ALL).build()?);
//!
//! let store = MemoryStore::new(); // or SqliteStore / PostgresStore
//! let outbox = Outbox::new(store.clone());
//! let worker = Worker::new(store, Dispatcher::new(Ok200, Tokio))
//!     .wakeup(outbox.wakeup().clone())
//!     .on_outcome(|r: &DeliveryReport| println!("{} -> {}", r.id, r.outcome));
//!
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let running = worker.run(async { let _ = stopped.await; });
//! let publishing = async {
//!     outbox.publish(&registry, &Event::sample(EventKind::Subscribe)).await?;
//!     tokio::time::sleep(Duration::from_millis(50)).await;
//!     let _ = stop.send(());
//!     Ok::<(), posthook::StoreError>(())
//! };
//! let (stats, published) = tokio::join!(running, publishing);
//! published?;
//! assert_eq!(stats.done, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "api")]
#[cfg_attr(docsrs, doc(cfg(feature = "api")))]
pub mod api;
mod delivery;
mod dispatch;
mod error;
mod event;
mod form;
mod health;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http_transport;
mod macros;
mod net;
mod outbox;
mod pacing;
mod payload;
pub mod receive;
mod registry;
mod sample;
mod scope;
#[cfg(feature = "signing")]
#[cfg_attr(docsrs, doc(cfg(feature = "signing")))]
pub mod sign;
mod source;
pub mod store;
mod transport;
mod url;
mod webhook;
pub mod webhook_store;
mod worker;

pub use crate::delivery::MAX_WAIT;
pub use crate::delivery::{
    Attempt, AttemptMeta, AttemptOutcome, CancelReason, Delivery, DeliveryId, FinalOutcome,
    InvalidDeliveryId, RetryPolicy, Step, Verdict, parse_retry_after,
};
pub use crate::dispatch::{
    DELIVERY_ID_HEADER, DeliveryReport, Diagnosis, DispatchPlan, DispatchReport, Dispatcher,
    EXCERPT_BYTES, Finding, PROBE_BODY, PlannedDelivery, ResolvedAddress,
};
pub use crate::error::{
    Error, InvalidListId, UnknownEventKind, UnknownSource, UrlError, UrlErrorKind, WebhookError,
};
pub use crate::event::{EventKind, EventSet, EventSetIter};
pub use crate::form::{Form, FormError, FormLimits, FormWriter};
pub use crate::health::{EndpointHealth, HealthChange, Streak};
#[cfg(feature = "http")]
pub use crate::http_transport::BuildError;
#[cfg(feature = "http")]
pub use crate::http_transport::{HttpTransport, HttpTransportBuilder};
pub use crate::net::{
    AddressClass, AddressPolicy, BlockedAddress, IpNetwork, NetworkParseError, SpecialRange,
};
pub use crate::outbox::{Outbox, Published};
pub use crate::pacing::{Pacing, RateLimit};
pub use crate::payload::{
    AutomationPayload, Bounce, Campaign, Contact, Deal, DealNote, DealStatus, DecodeError, Event,
    Forward, Link, ListInfo, OccurredAt, Pipeline, Reply, Share, SignupForm, Sms, Stage, Task,
    TaskType, Unsubscribe,
};
pub use crate::registry::{Matches, Registry, RegistryIter};
pub use crate::scope::{ListId, ListScope};
pub use crate::source::{Source, SourceSet, SourceSetIter};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use crate::store::PostgresOptions;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use crate::store::PostgresStore;
pub use crate::store::{
    Claim, ClaimToken, Claimed, Clock, DEFAULT_MAX_IN_FLIGHT_PER_ACCOUNT, DeliveryRecord,
    DeliveryState, DeliveryStore, EventId, Finish, Finished, ManualClock, MemoryStore, NewDelivery,
    NewEvent, Page, Pruned, StoreCounts, StoreError, SystemClock,
};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use crate::store::{Durability, SqliteStore};
#[cfg(feature = "tokio")]
pub use crate::transport::TokioTimer;
pub use crate::transport::{SendFuture, Timer, Transport, TransportError, TransportErrorKind};
pub use crate::url::{UrlPolicy, WebhookUrl};
pub use crate::webhook::{Deactivation, Webhook, WebhookBuilder, WebhookEnvelope, WebhookId};
pub use crate::webhook_store::{
    AccountId, Change, ChangeKind, DEFAULT_MAX_WEBHOOKS, Registries, StoredWebhook, WebhookFilter,
    WebhookPage, WebhookStore, WebhookStoreError,
};
pub use crate::worker::{OutcomeSink, Wakeup, Worker, WorkerStats};

#[cfg(all(doctest, feature = "http", feature = "signing"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Every public type is `Send + Sync`.
#[allow(dead_code)]
const fn assert_send_sync() {
    const fn check<T: Send + Sync>() {}
    check::<Error>();
    check::<EventKind>();
    check::<EventSet>();
    check::<AddressPolicy>();
    check::<Diagnosis>();
    check::<Finding>();
    check::<ResolvedAddress>();
    #[cfg(feature = "http")]
    check::<HttpTransport>();
    #[cfg(feature = "http")]
    check::<http_transport::BuildError>();
    #[cfg(feature = "http")]
    check::<http_transport::BlockedName>();
    check::<IpNetwork>();
    check::<NetworkParseError>();
    check::<SpecialRange>();
    check::<BlockedAddress>();
    check::<EventSetIter>();
    check::<SourceSetIter>();
    check::<Form>();
    check::<FormError>();
    check::<Event>();
    check::<OccurredAt>();
    check::<DecodeError>();
    check::<AutomationPayload>();
    check::<Contact>();
    check::<Campaign>();
    check::<Link>();
    check::<Forward>();
    check::<Share>();
    check::<Reply>();
    check::<Bounce>();
    check::<Unsubscribe>();
    check::<SignupForm>();
    check::<Deal>();
    check::<DealStatus>();
    check::<DealNote>();
    check::<Task>();
    check::<Pipeline>();
    check::<Stage>();
    check::<TaskType>();
    check::<ListInfo>();
    check::<Sms>();
    check::<ListId>();
    check::<ListScope>();
    check::<Matches<'static>>();
    check::<RegistryIter<'static>>();
    check::<Registry>();
    check::<Source>();
    check::<SourceSet>();
    check::<UrlError>();
    check::<WebhookUrl>();
    check::<Webhook>();
    check::<WebhookBuilder>();
    check::<WebhookId>();
    check::<TransportError>();
    check::<Attempt>();
    check::<AttemptOutcome>();
    check::<AttemptMeta>();
    check::<Delivery>();
    check::<DeliveryId>();
    check::<FinalOutcome>();
    check::<InvalidDeliveryId>();
    check::<RetryPolicy>();
    check::<Step>();
    check::<Verdict>();
    check::<DeliveryReport>();
    check::<DispatchReport>();
    check::<DispatchPlan>();
    check::<PlannedDelivery>();
    check::<EndpointHealth>();
    check::<HealthChange>();
    check::<Streak>();
    check::<Dispatcher<Box<dyn Transport>, Box<dyn Timer>>>();
    check::<TransportErrorKind>();
    check::<receive::Receiver>();
    check::<receive::Received>();
    check::<receive::ReceivedBody>();
    check::<receive::ReceiveError>();
    check::<MemoryStore>();
    check::<StoreError>();
    check::<NewEvent>();
    check::<Claimed>();
    check::<DeliveryRecord>();
    check::<Outbox<MemoryStore>>();
    check::<Wakeup>();
    check::<Worker<MemoryStore, Box<dyn Transport>, Box<dyn Timer>>>();
    #[cfg(feature = "sqlite")]
    check::<SqliteStore>();
    #[cfg(feature = "postgres")]
    check::<PostgresStore>();
    #[cfg(feature = "postgres")]
    check::<PostgresOptions>();
}
const _: () = assert_send_sync();
