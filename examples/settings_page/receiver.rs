//! The built-in receiver, URLs to point webhooks at while trying the page:
//!
//! | path | answers |
//! |---|---|
//! | `/_receiver` | `204` once the signature checks out (`401` if it does not) |
//! | `/_receiver/flaky` | `503` on the first two attempts of each delivery, then `204` |
//! | `/_receiver/down` | `500`, always |
//! | `/_receiver/reject` | `400`, always (a failure that is not retried) |
//! | `/_receiver/gone` | `410 Gone` |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use posthook::DELIVERY_ID_HEADER;
use posthook::receive::Receiver;

#[derive(Clone)]
pub struct Inbox {
    receiver: Arc<Receiver>,
    /// Attempts seen per delivery id, for `/flaky`.
    seen: Arc<Mutex<HashMap<String, u32>>>,
}

pub fn routes<S>(receiver: Receiver) -> Router<S> {
    let inbox = Inbox {
        receiver: Arc::new(receiver),
        seen: Arc::default(),
    };
    Router::new()
        .route("/_receiver", post(verified))
        .route("/_receiver/flaky", post(flaky))
        .route("/_receiver/down", post(down))
        .route("/_receiver/reject", post(reject))
        .route("/_receiver/gone", post(gone))
        .with_state(inbox)
}

async fn verified(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> StatusCode {
    match inbox.receiver.receive(&headers, &body, SystemTime::now()) {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(error) => {
            eprintln!("/_receiver refused a request: {error}");
            StatusCode::UNAUTHORIZED
        }
    }
}

async fn flaky(State(inbox): State<Inbox>, headers: HeaderMap) -> StatusCode {
    let id = headers
        .get(DELIVERY_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let mut seen = inbox.seen.lock().unwrap_or_else(|e| e.into_inner());
    let attempts = seen.entry(id).or_insert(0);
    *attempts += 1;
    if *attempts <= 2 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::NO_CONTENT
    }
}

async fn down() -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn reject() -> StatusCode {
    StatusCode::BAD_REQUEST
}

async fn gone() -> StatusCode {
    StatusCode::GONE
}
