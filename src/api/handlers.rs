//! The handlers: authenticate, read the request, ask the store, answer in
//! ActiveCampaign's shapes.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;

use super::error::{ApiError, ErrorObject};
use super::json::{Fields, WebhookJson, build};
use super::{MAX_PAGE_LIMIT, Shared, etag};
use crate::store::Page;
use crate::webhook_store::{StoredWebhook, WebhookFilter, WebhookStoreError};
use crate::{AccountId, CancelReason, EventKind, ListScope, WebhookId};

/// How often an update without `If-Match` reads again after someone else's write got in
/// between its read and its write.
const UPDATE_TRIES: usize = 3;

/// The account of the request's `Api-Token`.
fn account(shared: &Shared, headers: &HeaderMap) -> Result<AccountId, ApiError> {
    let Some(token) = headers.get("api-token") else {
        return Err(ApiError::unauthorized(
            "an Api-Token header with the account's API token is required",
        ));
    };
    shared
        .tokens
        .account(token.as_bytes())
        .ok_or_else(|| ApiError::unauthorized("the Api-Token is not valid"))
}

/// The body, or 413 over the limit (400 when it could not be read).
fn body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::one(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorObject::new(
                    "payload_too_large",
                    "Payload Too Large",
                    format!("the request body is over {limit} bytes"),
                ),
            )
        } else {
            ApiError::bad_body("the request body could not be read")
        }
    })
}

/// The webhook id of the path: anything but a number is an id no account has.
fn webhook_id(path: &str) -> Result<WebhookId, ApiError> {
    path.parse::<u64>()
        .ok()
        .filter(|&id| id > 0)
        .map(WebhookId::new)
        .ok_or_else(|| ApiError::webhook_not_found(path))
}

/// What `If-Match` asks for.
#[derive(Debug)]
enum IfMatch {
    /// No `If-Match`: apply to whatever is stored.
    Absent,
    /// `If-Match: *`: any version.
    Any,
    /// These versions (strong entity tags `"<n>"`; other tags match none).
    Versions(Vec<u64>),
}

impl IfMatch {
    fn parse(headers: &HeaderMap) -> Result<IfMatch, ApiError> {
        let malformed = || {
            ApiError::one(
                StatusCode::BAD_REQUEST,
                ErrorObject::new(
                    "bad_request",
                    "The If-Match header is not valid",
                    r#"If-Match takes the ETag of the webhook, e.g. "3" (quotes included), or *"#,
                ),
            )
        };
        let mut versions = Vec::new();
        let mut seen = false;
        for value in headers.get_all(header::IF_MATCH) {
            let text = value.to_str().map_err(|_| malformed())?;
            for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                seen = true;
                if tag == "*" {
                    return Ok(IfMatch::Any);
                }
                // A weak tag never matches in the strong comparison If-Match uses.
                let (weak, quoted) = match tag.strip_prefix("W/") {
                    Some(rest) => (true, rest),
                    None => (false, tag),
                };
                let inner = quoted
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .filter(|t| !t.contains('"'))
                    .ok_or_else(malformed)?;
                if let (false, Ok(version)) = (weak, inner.parse::<u64>()) {
                    versions.push(version);
                }
            }
        }
        Ok(if seen {
            IfMatch::Versions(versions)
        } else {
            IfMatch::Absent
        })
    }

    /// 412 unless `current` is a version asked for.
    fn check(&self, current: u64) -> Result<(), ApiError> {
        match self {
            IfMatch::Absent | IfMatch::Any => Ok(()),
            IfMatch::Versions(versions) if versions.contains(&current) => Ok(()),
            IfMatch::Versions(_) => Err(ApiError::precondition_failed(
                current,
                format!(
                    "version {current} is stored, not the one If-Match names: \
                     read the webhook again and retry"
                ),
            )),
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    webhook: WebhookJson<'a>,
}

/// `{"webhook": {...}}` with its `ETag`.
fn webhook_response(status: StatusCode, stored: &StoredWebhook) -> Response {
    let mut response = (
        status,
        Json(Envelope {
            webhook: WebhookJson::new(&stored.webhook),
        }),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&etag(stored.version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn answer(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Serialize)]
struct ListJson<'a> {
    webhooks: Vec<WebhookJson<'a>>,
    meta: ListMeta,
}

#[derive(Serialize)]
struct ListMeta {
    /// ActiveCampaign writes the total as a string.
    total: String,
}

/// `GET /api/3/webhooks`.
pub(crate) async fn list(
    State(shared): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    answer(
        async {
            let account = account(&shared, &headers)?;
            let (filter, page) = list_query(query.as_deref().unwrap_or(""))?;
            let found = shared
                .store
                .list(account, &filter, page)
                .await
                .map_err(|e| ApiError::from_store(&e, ""))?;
            Ok(Json(ListJson {
                webhooks: found
                    .webhooks
                    .iter()
                    .map(|s| WebhookJson::new(&s.webhook))
                    .collect(),
                meta: ListMeta {
                    total: found.total.to_string(),
                },
            })
            .into_response())
        }
        .await,
    )
}

/// The filter and page of a list's query string.
fn list_query(query: &str) -> Result<(WebhookFilter, Page), ApiError> {
    let bad = |parameter: &str, detail: &str| {
        ApiError::one(
            StatusCode::BAD_REQUEST,
            ErrorObject::new("bad_request", "A query parameter is not valid", detail)
                .parameter(parameter),
        )
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| bad("", "the query string is not form-encoded"))?;
    let mut filter = WebhookFilter::new();
    let mut page = Page::first(super::DEFAULT_PAGE_LIMIT);
    for (key, value) in pairs {
        match key.as_str() {
            "filters[name]" => filter = filter.name(value),
            "filters[url]" => filter = filter.url(value),
            "filters[listid]" => {
                let id: u64 = value.trim().parse().map_err(|_| {
                    bad(
                        "filters[listid]",
                        "filters[listid] must be a list id: a whole number, 0 for all lists",
                    )
                })?;
                filter = filter.scope(ListScope::from_list_id(id));
            }
            "limit" => {
                let limit: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("limit", "limit must be a whole number from 0 to 100"))?;
                page.limit = limit.min(MAX_PAGE_LIMIT);
            }
            "offset" => {
                page.offset = value
                    .trim()
                    .parse()
                    .map_err(|_| bad("offset", "offset must be a whole number"))?;
            }
            // ActiveCampaign ignores parameters it does not know; so does this.
            _ => {}
        }
    }
    Ok((filter, page))
}

/// `POST /api/3/webhooks`.
pub(crate) async fn create(
    State(shared): State<Shared>,
    headers: HeaderMap,
    request: Result<Bytes, BytesRejection>,
) -> Response {
    answer(
        async {
            let account = account(&shared, &headers)?;
            let bytes = body(request, shared.body_limit)?;
            let fields = Fields::parse(&bytes)?;
            let webhook = build(&fields, None, shared.policy)?;
            let stored = shared
                .store
                .create(account, webhook)
                .await
                .map_err(|e| ApiError::from_store(&e, ""))?;
            let mut response = webhook_response(StatusCode::CREATED, &stored);
            let location = format!("/api/3/webhooks/{}", stored.id());
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            Ok(response)
        }
        .await,
    )
}

/// `GET /api/3/webhooks/{id}`.
pub(crate) async fn read(
    State(shared): State<Shared>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    answer(
        async {
            let account = account(&shared, &headers)?;
            let path = path.map(|Path(p)| p).unwrap_or_default();
            let id = webhook_id(&path)?;
            let stored = shared
                .store
                .get(account, id)
                .await
                .map_err(|e| ApiError::from_store(&e, &path))?;
            Ok(webhook_response(StatusCode::OK, &stored))
        }
        .await,
    )
}

/// `PUT /api/3/webhooks/{id}`: the fields given replace the stored ones.
pub(crate) async fn update(
    State(shared): State<Shared>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    request: Result<Bytes, BytesRejection>,
) -> Response {
    answer(
        async {
            let account = account(&shared, &headers)?;
            let bytes = body(request, shared.body_limit)?;
            let path = path.map(|Path(p)| p).unwrap_or_default();
            let id = webhook_id(&path)?;
            let precondition = IfMatch::parse(&headers)?;
            let fields = Fields::parse(&bytes)?;
            let store_error = |e: &WebhookStoreError| ApiError::from_store(e, &path);
            let mut current = shared
                .store
                .get(account, id)
                .await
                .map_err(|e| store_error(&e))?;
            for _ in 0..UPDATE_TRIES {
                precondition.check(current.version)?;
                let webhook = build(&fields, Some(&current.webhook), shared.policy)?;
                match shared
                    .store
                    .update(account, id, current.version, webhook)
                    .await
                {
                    Ok(stored) => return Ok(webhook_response(StatusCode::OK, &stored)),
                    // Changed between the read and the write: with If-Match, that is the
                    // answer; without, apply the request to what is there now.
                    Err(WebhookStoreError::Conflict { current: now, .. })
                        if matches!(precondition, IfMatch::Absent | IfMatch::Any) =>
                    {
                        current = *now;
                    }
                    Err(error) => return Err(store_error(&error)),
                }
            }
            Err(ApiError::one(
                StatusCode::CONFLICT,
                ErrorObject::new(
                    "conflict",
                    "The webhook keeps changing",
                    "the webhook changed while this update was applied: try again",
                ),
            ))
        }
        .await,
    )
}

/// `DELETE /api/3/webhooks/{id}`: `{}`.
pub(crate) async fn delete(
    State(shared): State<Shared>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    answer(
        async {
            let account = account(&shared, &headers)?;
            let path = path.map(|Path(p)| p).unwrap_or_default();
            let id = webhook_id(&path)?;
            let precondition = IfMatch::parse(&headers)?;
            let store_error = |e: &WebhookStoreError| ApiError::from_store(e, &path);
            let expected = match &precondition {
                IfMatch::Absent | IfMatch::Any => None,
                IfMatch::Versions(versions) if versions.len() == 1 => Some(versions[0]),
                IfMatch::Versions(_) => {
                    let current = shared
                        .store
                        .get(account, id)
                        .await
                        .map_err(|e| store_error(&e))?;
                    precondition.check(current.version)?;
                    Some(current.version)
                }
            };
            shared
                .store
                .delete(account, id, expected)
                .await
                .map_err(|e| store_error(&e))?;
            if let Some(deliveries) = &shared.deliveries {
                if let Err(error) = deliveries.cancel(id, CancelReason::Deleted).await {
                    let status = if error.is_transient() {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    };
                    return Err(ApiError::one(
                        status,
                        ErrorObject::new(
                            "cancel_failed",
                            "Deleted; its pending deliveries were not cancelled",
                            format!(
                                "webhook {id} is deleted, but cancelling its pending \
                                 deliveries failed; they may still be sent"
                            ),
                        ),
                    ));
                }
            }
            Ok(Json(serde_json::json!({})).into_response())
        }
        .await,
    )
}

#[derive(Serialize)]
struct EventsJson {
    #[serde(rename = "webhookEvents")]
    webhook_events: Vec<&'static str>,
    meta: EventsMeta,
}

#[derive(Serialize)]
struct EventsMeta {
    /// A number here, as ActiveCampaign writes it.
    total: usize,
}

/// `GET /api/3/webhook/events` (and `/api/3/webhooks/events`): the 25 ids, sorted, as
/// ActiveCampaign lists them.
pub(crate) async fn events(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    answer(account(&shared, &headers).map(|_| {
        let mut ids: Vec<&'static str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        ids.sort_unstable();
        Json(EventsJson {
            meta: EventsMeta { total: ids.len() },
            webhook_events: ids,
        })
        .into_response()
    }))
}

/// A served path with a method it does not take (axum adds `Allow`).
pub(crate) async fn method_not_allowed() -> Response {
    ApiError::one(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorObject::new(
            "method_not_allowed",
            "Method Not Allowed",
            "this path does not take this method: see the Allow header",
        ),
    )
    .into_response()
}
