//! A receiving endpoint: verifies (with `--secret`), decodes and prints every webhook it
//! gets — the other half of the quickstart, for trying posthook's format with any sender.
//!
//! ```text
//! cargo run --example receiver --features http,signing -- --secret whsec_... 8080
//! cargo run --example send_sample_data --features http,signing -- \
//!     --secret whsec_... --allow-private http://127.0.0.1:8080/
//! ```
//!
//! Listens on 127.0.0.1 (port 0 by default: it prints the one it got). With
//! `--exit-after N` it exits 0 once N webhooks were received and checked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use posthook::receive::{ReceivedBody, Receiver};
use posthook::sign::SigningSecret;

struct Shared {
    receiver: Receiver,
    received: AtomicUsize,
    exit_after: Option<usize>,
    done: tokio::sync::Notify,
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let received = match shared.receiver.receive(&headers, &body, SystemTime::now()) {
        Ok(received) => received,
        Err(error) => {
            println!("refused  {error}");
            return StatusCode::BAD_REQUEST;
        }
    };
    let id = received.delivery_id.as_deref().unwrap_or("-");
    let signed = if received.verified {
        "verified"
    } else {
        "unsigned"
    };
    match &received.body {
        ReceivedBody::Event(event) => {
            let email = event.contact().and_then(|c| c.email()).unwrap_or("-");
            let list = event.list().map_or(String::from("-"), |l| l.to_string());
            let (kind, source) = (event.kind(), event.source());
            println!("{signed} {id} {kind:<20} from {source:<6} list {list:<4} contact {email}");
        }
        ReceivedBody::Automation(step) => {
            println!("{signed} {id} automation series {}", step.series_id())
        }
        _ => println!("{signed} {id} probe"),
    }
    let n = shared.received.fetch_add(1, Ordering::SeqCst) + 1;
    if shared.exit_after == Some(n) {
        println!("received {n}: done");
        shared.done.notify_one(); // stops the server once this answer is out
    }
    StatusCode::NO_CONTENT
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut receiver, mut port, mut exit_after) = (Receiver::new(), 0u16, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--secret" => {
                receiver = receiver.secret(SigningSecret::parse(
                    &args.next().ok_or("--secret needs a value")?,
                )?)
            }
            "--exit-after" => {
                exit_after = Some(args.next().ok_or("--exit-after needs a count")?.parse()?)
            }
            _ => {
                port = arg.parse().map_err(|_| {
                    format!(
                        "usage: receiver [--secret whsec_...] [--exit-after N] [PORT], not {arg:?}"
                    )
                })?
            }
        }
    }
    let shared = Arc::new(Shared {
        receiver,
        received: AtomicUsize::new(0),
        exit_after,
        done: tokio::sync::Notify::new(),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}/", listener.local_addr()?);
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(Arc::clone(&shared));
    let done = async move { shared.done.notified().await };
    axum::serve(listener, app)
        .with_graceful_shutdown(done)
        .await?;
    Ok(())
}
