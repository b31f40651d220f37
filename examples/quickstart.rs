//! Real webhooks end to end, on this machine: a receiver on 127.0.0.1 that verifies and
//! decodes, three subscriptions, a few events delivered over HTTP with signatures.
//!
//! ```text
//! cargo run --example quickstart --features http,signing
//! ```
//!
//! Exits 1 if any delivery that should have arrived did not.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use posthook::receive::{ReceivedBody, Receiver};
use posthook::sign::SigningSecret;
use posthook::{AddressClass, AddressPolicy, Dispatcher, Event, EventKind as K, HttpTransport};
use posthook::{ListId, ListScope, Registry, Source, TokioTimer, Webhook};

type Inbox = Arc<Mutex<Vec<String>>>;

/// The receiving end: verify the signature, decode the form, note what came.
async fn receive(
    State((receiver, inbox)): State<(Receiver, Inbox)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    match receiver.receive(&headers, &body, SystemTime::now()) {
        Ok(received) => {
            let ReceivedBody::Event(event) = received.body else {
                return StatusCode::BAD_REQUEST;
            };
            let who = event.contact().and_then(|c| c.email()).unwrap_or("-");
            let line = format!(
                "{:<19} list {:<4} {who:<22} signed: {}",
                event.kind(),
                event.list().map_or("-".into(), |l| l.to_string()),
                received.verified
            );
            inbox.lock().unwrap().push(line);
            StatusCode::NO_CONTENT
        }
        Err(error) => {
            eprintln!("receiver refused a request: {error}");
            StatusCode::UNAUTHORIZED
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let secret = SigningSecret::generate()?;
    let inbox = Inbox::default();
    let state = (Receiver::new().secret(secret.clone()), Arc::clone(&inbox));
    let app = axum::Router::new().fallback(receive).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("receiver listening on {base}\n");

    // Three subscriptions, the patterns of the product document.
    let newsletter = ListId::new(3).ok_or("list ids are never 0")?;
    let mut registry = Registry::new();
    for hook in [
        Webhook::builder("Zapier: unsubscribes, any list", &format!("{base}/zapier"))
            .events([K::Unsubscribe])
            .sources(Source::ALL)
            .scope(ListScope::All),
        Webhook::builder(
            "Newsletter engagement, list 3",
            &format!("{base}/newsletter"),
        )
        .events([K::Open, K::Click])
        .sources([Source::Contact])
        .scope(ListScope::List(newsletter)),
        Webhook::builder("CRM: deals", &format!("{base}/crm"))
            .events([K::DealAdd, K::DealUpdate])
            .sources([Source::Admin, Source::Api]),
    ] {
        registry.insert(hook.build()?);
    }

    // Loopback is allowed for this local demo only; the default refuses it.
    let transport = HttpTransport::builder()
        .address_policy(AddressPolicy::public_only().allow(AddressClass::Loopback))
        .build()?;
    let dispatcher = Dispatcher::new(transport, TokioTimer::new()).signing_secret(secret);

    let events = [K::Unsubscribe, K::Open, K::Click, K::DealAdd, K::Subscribe].map(Event::sample);
    let elsewhere = Event::sample(K::Click).with_list(ListId::new(5)); // list 5: nobody listens
    let mut failed = 0;
    for event in events.iter().chain([&elsewhere]) {
        let report = dispatcher.dispatch(&registry, event).await;
        println!(
            "sent {:<12} list {:<4} -> {} delivery(ies)",
            event.kind(),
            event.list().map_or("-".into(), |l| l.to_string()),
            report.deliveries.len()
        );
        for delivery in &report.deliveries {
            let hook = delivery
                .webhook_id
                .and_then(|id| registry.get(id))
                .map_or("?", |w| w.name());
            println!(
                "     {:?} to \"{hook}\" after {} attempt(s)",
                delivery.outcome,
                delivery.attempts.len()
            );
            failed += usize::from(!delivery.outcome.is_delivered());
        }
    }

    println!("\nthe receiver got, verified and decoded:");
    let inbox = inbox.lock().unwrap();
    for line in inbox.iter() {
        println!("  {line}");
    }
    let expected = 4; // unsubscribe, open, click on list 3, deal_add; not subscribe, not list 5
    println!("\n{} received, {failed} failed", inbox.len());
    Ok(if failed == 0 && inbox.len() == expected {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
