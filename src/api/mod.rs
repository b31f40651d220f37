//! ActiveCampaign API v3's webhook endpoints, served (feature `api`): an axum
//! [`Router`] over any [`WebhookStore`], authenticated per account by the `Api-Token`
//! header, in ActiveCampaign's JSON and error shapes, so that clients written for
//! ActiveCampaign work against it unchanged.
//!
//! | method and path | answers |
//! |---|---|
//! | `GET /api/3/webhooks` | `200 {"webhooks": [...], "meta": {"total": "N"}}`: `filters[name]`, `filters[url]` (contain, ignoring ASCII case), `filters[listid]` (`0`: all lists), `limit` (default 20, at most 100), `offset` |
//! | `POST /api/3/webhooks` | `201 {"webhook": {...}}` from a body `{"webhook": {"name", "url", "events", "sources", "listid"}}`, with `Location` and `ETag` |
//! | `GET /api/3/webhooks/{id}` | `200 {"webhook": {...}}`, with `ETag` |
//! | `PUT /api/3/webhooks/{id}` | `200 {"webhook": {...}}`: the fields given replace the stored ones, the others stay (ActiveCampaign's update); `If-Match` optional |
//! | `DELETE /api/3/webhooks/{id}` | `200 {}`; `If-Match` optional |
//! | `GET /api/3/webhook/events`, `GET /api/3/webhooks/events` | `200 {"webhookEvents": ["bounce", ...], "meta": {"total": 25}}`: the 25 ids |
//!
//! `docs/openapi.yaml` in the repository describes exactly this (a test holds it to the
//! router), for generating clients.
//!
//! **Accounts.** Every request carries `Api-Token: <token>`; the [`Tokens`] given to
//! [`Api::new`] say which account each token is (they keep SHA-256 digests, compared in
//! constant time). The account sees and changes only its own webhooks: another account's
//! id is `404`, with the same body as an id that never was.
//!
//! **The webhook JSON** is ActiveCampaign's: `id` and `listid` as strings, `cdate`
//! (`2016-01-01T12:00:00-00:00`), `events`, `sources`, and `links`, here an object with
//! the webhook's own path (`{"self": "/api/3/webhooks/1"}`; ActiveCampaign documents an
//! empty `links`, which its clients ignore). Two fields beyond ActiveCampaign's:
//! `deactivated` (`"gone"`, `"manual"`, `{"failing": ...}`) for a webhook that is off, and
//! `headerNames`, the names of the webhook's own HTTP headers. A request may set those
//! headers with `"headers": {"name": "value"}` (write-only: responses never carry the
//! values, which often hold a receiver's credentials; an update without `headers` keeps
//! them, `"headers": {}` or `null` removes them). Signing secrets, retry policies and
//! pacing are never in the JSON, and an update keeps them. The API does not switch
//! webhooks on or off: an update keeps `deactivated` as it is (ActiveCampaign's way back
//! from a 410 is to delete the webhook and create it again).
//!
//! **Versions.** Every webhook response has `ETag: "<version>"`
//! ([`StoredWebhook::version`](crate::StoredWebhook::version)). A `PUT` or `DELETE` with
//! `If-Match: "<version>"` applies only if the webhook is still at that version, else
//! `412` (with the current `ETag`): two editors never silently undo each other. Without
//! `If-Match` (ActiveCampaign's clients send none) the change applies to whatever is
//! stored.
//!
//! **Errors** are ActiveCampaign's
//! `{"errors": [{"title", "detail", "code", "source": {"pointer": "/data/attributes/url"}}]}`
//! (a query parameter's as `"source": {"parameter": "limit"}`), one object per problem:
//!
//! | status | when |
//! |---|---|
//! | `400` | a body that is not JSON or not `{"webhook": {...}}`; a bad `limit`, `offset` or `filters[listid]`; a malformed `If-Match` |
//! | `401` | no `Api-Token`, or not a token of [`Tokens`] (with `WWW-Authenticate: Api-Token`) |
//! | `404` | no such webhook in this account (deleted, never made, another account's, not a number) |
//! | `409` | the account has as many webhooks as the store allows ([`WebhookStore::max_webhooks`]) |
//! | `412` | `If-Match` names another version |
//! | `413` | a body over the limit ([`DEFAULT_BODY_LIMIT`], 64 KiB; [`Api::body_limit`]) |
//! | `422` | a field is missing or wrong: a URL outside the allowed set (the detail names the character, its code point and its byte, e.g. `invalid character ' ' at byte 21 (U+0020)`), an unknown event or source (named, pointer `/data/attributes/events/2`), a blank name, no events or no sources, a `listid` that is not a number, a header the webhook cannot have |
//! | `503` | the store cannot be reached ([`WebhookStoreError::is_transient`](crate::WebhookStoreError::is_transient)), with `Retry-After: 1` |
//! | `500` | the store failed otherwise; never for anything a request holds |
//!
//! Changes go to the store only: each process's [`Registries`](crate::Registries) pick
//! them up from its change feed. With [`Api::deliveries`], a `DELETE` also cancels the
//! webhook's pending deliveries in that [`DeliveryStore`].
//!
//! ```
//! use posthook::api::{Api, Tokens};
//! use posthook::{AccountId, MemoryStore};
//!
//! let store = MemoryStore::new(); // or SqliteStore, PostgresStore: the WebhookStore
//! let tokens = Tokens::new()
//!     .token(AccountId::new(1), "acme-api-token")
//!     .token(AccountId::new(2), "globex-api-token");
//! let app: axum::Router = Api::new(store.clone(), tokens)
//!     .deliveries(store) // a DELETE cancels pending deliveries
//!     .into_router();
//! # let _ = app;
//! ```
//!
//! Served, and called as ActiveCampaign is:
//!
//! ```no_run
//! # async fn run(app: axum::Router) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! // curl -H 'Api-Token: acme-api-token' http://127.0.0.1:8080/api/3/webhooks
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

use crate::{DeliveryStore, UrlPolicy, WebhookStore};

mod auth;
mod error;
mod handlers;
mod json;

pub use self::auth::Tokens;

/// The largest request body taken by default: 64 KiB (a webhook is well under 1 KiB).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// How many webhooks `GET /api/3/webhooks` returns without a `limit`: 20, as
/// ActiveCampaign.
pub const DEFAULT_PAGE_LIMIT: usize = 20;

/// The most webhooks one `GET /api/3/webhooks` returns: 100, as ActiveCampaign (a larger
/// `limit` is taken as 100).
pub const MAX_PAGE_LIMIT: usize = 100;

/// The webhook API over a [`WebhookStore`]: configure, then
/// [`into_router`](Api::into_router). See the [module docs](self).
pub struct Api {
    shared: Shared,
}

/// What every handler reads.
#[derive(Clone)]
pub(crate) struct Shared {
    store: Arc<dyn WebhookStore>,
    tokens: Arc<Tokens>,
    policy: UrlPolicy,
    deliveries: Option<Arc<dyn DeliveryStore>>,
    body_limit: usize,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("tokens", &self.shared.tokens)
            .field("url_policy", &self.shared.policy)
            .field("deliveries", &self.shared.deliveries.is_some())
            .field("body_limit", &self.shared.body_limit)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The API over `store` (a [`MemoryStore`](crate::MemoryStore), `SqliteStore`,
    /// `PostgresStore`, an `Arc` of one, or your own), for the accounts of `tokens`.
    pub fn new(store: impl WebhookStore + 'static, tokens: Tokens) -> Api {
        Api {
            shared: Shared {
                store: Arc::new(store),
                tokens: Arc::new(tokens),
                policy: UrlPolicy::default(),
                deliveries: None,
                body_limit: DEFAULT_BODY_LIMIT,
            },
        }
    }

    /// Takes request bodies of at most `bytes` (default [`DEFAULT_BODY_LIMIT`]); a larger
    /// one is `413`.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Api {
        self.shared.body_limit = bytes;
        self
    }

    /// Checks webhook URLs against `policy` too (default: the allowed character set only;
    /// [`UrlPolicy::activecampaign`] for ActiveCampaign's https on port 443). A URL it
    /// refuses is `422`.
    #[must_use]
    pub fn url_policy(mut self, policy: UrlPolicy) -> Api {
        self.shared.policy = policy;
        self
    }

    /// Cancels the pending deliveries of every webhook deleted through the API in `store`
    /// ([`DeliveryStore::cancel`], [`CancelReason::Deleted`](crate::CancelReason::Deleted)),
    /// after the delete. When the cancel fails the webhook stays deleted and the `DELETE`
    /// answers `503` (or `500`) saying so.
    #[must_use]
    pub fn deliveries(mut self, store: impl DeliveryStore + 'static) -> Api {
        self.shared.deliveries = Some(Arc::new(store));
        self
    }

    /// The router: the routes of the [module docs](self), under `/api/3`, with the body
    /// limit as a [`DefaultBodyLimit`] layer. Merge it into your application's router or
    /// serve it alone. A path it serves with a method it does not is `405` with `Allow`;
    /// other paths are left to the router it is merged into.
    pub fn into_router(self) -> Router {
        let limit = self.shared.body_limit;
        Router::new()
            .route(
                "/api/3/webhooks",
                get(handlers::list).post(handlers::create),
            )
            .route(
                "/api/3/webhooks/{id}",
                get(handlers::read)
                    .put(handlers::update)
                    .delete(handlers::delete),
            )
            .route("/api/3/webhook/events", get(handlers::events))
            .route("/api/3/webhooks/events", get(handlers::events))
            .method_not_allowed_fallback(handlers::method_not_allowed)
            .layer(DefaultBodyLimit::max(limit))
            .with_state(self.shared)
    }
}

/// [`Api::new`]`(store, tokens).into_router()`.
pub fn router(store: impl WebhookStore + 'static, tokens: Tokens) -> Router {
    Api::new(store, tokens).into_router()
}

/// The `ETag` of `version`: `"<version>"`.
pub(crate) fn etag(version: u64) -> String {
    format!("\"{version}\"")
}
