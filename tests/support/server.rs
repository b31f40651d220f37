//! A real HTTP server on 127.0.0.1 (axum), started by a test: it records every request
//! and every accepted connection, and answers as the test asks.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::serve::ListenerExt;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{HeaderMap, Method, StatusCode, Uri};

/// How the server answers.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// This status, empty body.
    Status(u16),
    /// This status and body.
    Body(u16, &'static str),
    /// `302 Found` with this `Location`.
    Redirect(String),
    /// Reads the request, then never answers.
    Hang,
    /// `200` with a body of this many bytes, streamed in 64 KiB chunks.
    Stream(u64),
    /// Waits this long, then `200`.
    Slow(Duration),
    /// `200` and the first bytes of a body whose rest never comes.
    StallBody,
    /// The n-th status to the n-th request (counting from the first the server got), the
    /// last one to every request after.
    Statuses(&'static [u16]),
}

/// One request the server got.
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

#[derive(Clone)]
struct Shared {
    reply: Reply,
    requests: Arc<Mutex<Vec<Recorded>>>,
    streamed: Arc<AtomicU64>,
}

/// A running server; it stops when the test's runtime ends.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    streamed: Arc<AtomicU64>,
}

impl Server {
    /// Starts a server on 127.0.0.1, port 0, answering every request with `reply`.
    pub(crate) async fn start(reply: Reply) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let shared = Shared {
            reply,
            requests: Arc::default(),
            streamed: Arc::default(),
        };
        let (requests, streamed) = (Arc::clone(&shared.requests), Arc::clone(&shared.streamed));
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let listener = listener.tap_io(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server {
            addr,
            accepted,
            requests,
            streamed,
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The port.
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many TCP connections it accepted.
    pub(crate) fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Every request it got, in order.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests").clone()
    }

    /// How many body bytes a [`Reply::Stream`] has handed to the connection so far.
    pub(crate) fn streamed(&self) -> u64 {
        self.streamed.load(Ordering::SeqCst)
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, 16 * 1024 * 1024).await.unwrap_or_default();
    let seen = {
        let mut requests = shared.requests.lock().expect("requests");
        requests.push(Recorded {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        });
        requests.len()
    };
    let status = |code: u16| StatusCode::from_u16(code).expect("a status");
    match shared.reply {
        Reply::Status(code) => response(status(code), Body::empty()),
        Reply::Statuses(codes) => {
            let code = codes.get(seen - 1).or(codes.last()).copied().unwrap_or(200);
            response(status(code), Body::empty())
        }
        Reply::Body(code, text) => response(status(code), Body::from(text)),
        Reply::Redirect(location) => {
            let mut r = response(StatusCode::FOUND, Body::empty());
            r.headers_mut()
                .insert(http::header::LOCATION, location.parse().expect("location"));
            r
        }
        Reply::Hang => std::future::pending().await,
        Reply::Slow(wait) => {
            tokio::time::sleep(wait).await;
            response(StatusCode::OK, Body::empty())
        }
        Reply::StallBody => {
            let first = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(b"ok, and then"))
            });
            let chunks = first.chain(futures_util::stream::pending());
            response(StatusCode::OK, Body::from_stream(chunks))
        }
        Reply::Stream(total) => {
            const CHUNK: u64 = 64 * 1024;
            let counter = shared.streamed;
            let chunks = futures_util::stream::unfold(0u64, move |sent| {
                let counter = Arc::clone(&counter);
                async move {
                    if sent >= total {
                        return None;
                    }
                    let n = CHUNK.min(total - sent);
                    counter.fetch_add(n, Ordering::SeqCst);
                    let chunk = Bytes::from(vec![b'x'; n as usize]);
                    Some((Ok::<_, std::io::Error>(chunk), sent + n))
                }
            });
            response(StatusCode::OK, Body::from_stream(chunks))
        }
    }
}

fn response(status: StatusCode, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r
}
