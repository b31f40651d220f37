//! Errors as ActiveCampaign writes them:
//! `{"errors": [{"title", "detail", "code", "source": {"pointer"}}]}`.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::webhook_store::WebhookStoreError;

/// One object of `errors`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ErrorObject {
    title: String,
    detail: String,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<ErrorSource>,
}

/// Where the error is: a JSON pointer into the body (`/data/attributes/url`, as
/// ActiveCampaign writes it) or a query parameter.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
enum ErrorSource {
    Pointer(String),
    Parameter(String),
}

impl ErrorObject {
    pub(crate) fn new(
        code: &'static str,
        title: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        ErrorObject {
            title: title.into(),
            detail: detail.into(),
            code,
            source: None,
        }
    }

    /// At `pointer` in the body.
    pub(crate) fn at(mut self, pointer: impl Into<String>) -> Self {
        self.source = Some(ErrorSource::Pointer(pointer.into()));
        self
    }

    /// In query parameter `name`.
    pub(crate) fn parameter(mut self, name: impl Into<String>) -> Self {
        self.source = Some(ErrorSource::Parameter(name.into()));
        self
    }
}

/// A refused request: its status, its `errors`, and the headers that go with some.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    status: StatusCode,
    errors: Vec<ErrorObject>,
    /// The current version, for a 412's `ETag`.
    etag: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    errors: &'a [ErrorObject],
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, errors: Vec<ErrorObject>) -> ApiError {
        ApiError {
            status,
            errors,
            etag: None,
        }
    }

    pub(crate) fn one(status: StatusCode, error: ErrorObject) -> ApiError {
        ApiError::new(status, vec![error])
    }

    /// 401: no token, or not one of ours.
    pub(crate) fn unauthorized(detail: &str) -> ApiError {
        ApiError::one(
            StatusCode::UNAUTHORIZED,
            ErrorObject::new("unauthorized", "Unauthorized", detail),
        )
    }

    /// 404 for webhook `id`, the same whether it never was, was deleted or is another
    /// account's.
    pub(crate) fn webhook_not_found(id: &str) -> ApiError {
        ApiError::one(
            StatusCode::NOT_FOUND,
            ErrorObject::new(
                "not_found",
                "Not Found",
                format!("No Result found for Webhook with id {id}"),
            ),
        )
    }

    /// 400: the body is not JSON, or not `{"webhook": {...}}`.
    pub(crate) fn bad_body(detail: impl Into<String>) -> ApiError {
        ApiError::one(
            StatusCode::BAD_REQUEST,
            ErrorObject::new("bad_request", "The request body is not valid", detail).at(""),
        )
    }

    /// 412: `If-Match` named another version than the stored one.
    pub(crate) fn precondition_failed(current: u64, detail: impl Into<String>) -> ApiError {
        let mut error = ApiError::one(
            StatusCode::PRECONDITION_FAILED,
            ErrorObject::new("precondition_failed", "The webhook has changed", detail),
        );
        error.etag = Some(current);
        error
    }

    /// The answer to a store's refusal.
    pub(crate) fn from_store(error: &WebhookStoreError, id: &str) -> ApiError {
        match error {
            WebhookStoreError::NotFound { .. } => ApiError::webhook_not_found(id),
            WebhookStoreError::Conflict { current, .. } => ApiError::precondition_failed(
                current.version,
                format!(
                    "version {} is stored: read the webhook again and retry",
                    current.version
                ),
            ),
            WebhookStoreError::LimitReached { limit, .. } => ApiError::one(
                StatusCode::CONFLICT,
                ErrorObject::new(
                    "limit_reached",
                    "Too many webhooks",
                    format!("an account may have at most {limit} webhooks: delete one first"),
                ),
            ),
            error if error.is_transient() => ApiError::one(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorObject::new(
                    "unavailable",
                    "Service Unavailable",
                    "the webhook store cannot be reached: try again shortly",
                ),
            ),
            _ => ApiError::one(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorObject::new(
                    "store_error",
                    "Internal Server Error",
                    "the webhook store failed",
                ),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&Body {
            errors: &self.errors,
        })
        .unwrap_or_else(|_| b"{\"errors\":[]}".to_vec());
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Api-Token"),
                );
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        if let Some(version) = self.etag {
            if let Ok(value) = HeaderValue::from_str(&super::etag(version)) {
                headers.insert(header::ETAG, value);
            }
        }
        response
    }
}
