//! Delivery without a network: an in-memory receiver that fails, rate-limits and says "gone",
//! and what the dispatcher makes of it. Swap `Receiver` for an HTTP client to go live.
//!
//! ```text
//! cargo run --example deliver
//! ```

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use posthook::{Dispatcher, Event, EventKind, Registry, RetryPolicy, Source, Timer, Transport};
use posthook::{TransportError, Webhook};

/// Answers by host: `flaky` 503 then 200, `busy` 429 then 200, `gone` 410, `down` refuses.
#[derive(Default)]
struct Receiver {
    flaky_calls: Mutex<u32>,
    busy_calls: Mutex<u32>,
}

#[async_trait::async_trait]
impl Transport for Receiver {
    async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, TransportError> {
        let count = |calls: &Mutex<u32>| {
            let mut n = calls.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            *n
        };
        let status = match request.uri().host().unwrap_or("") {
            "flaky.example.com" if count(&self.flaky_calls) == 1 => StatusCode::SERVICE_UNAVAILABLE,
            "busy.example.com" if count(&self.busy_calls) == 1 => StatusCode::TOO_MANY_REQUESTS,
            "gone.example.com" => StatusCode::GONE,
            "down.example.com" => return Err(TransportError::connect("connection refused")),
            _ => StatusCode::OK,
        };
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = status;
        Ok(response)
    }
}

/// Waits no real time: prints what it was asked to wait.
struct Impatient;

#[async_trait::async_trait]
impl Timer for Impatient {
    async fn sleep(&self, duration: Duration) {
        if duration > Duration::from_secs(1) {
            println!("  (would wait {duration:?} before retrying)");
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut registry = Registry::new();
    for host in ["ok", "flaky", "busy", "gone", "down"] {
        let url = format!("https://{host}.example.com/hooks/ac");
        let hook = Webhook::builder(host, &url)
            .events([EventKind::Subscribe])
            .sources(Source::ALL);
        registry.insert(hook.build()?);
    }
    let dispatcher = Dispatcher::new(Receiver::default(), Impatient)
        .retry_policy(RetryPolicy::default().with_max_attempts(3));

    let event = Event::sample(EventKind::Subscribe);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let report = runtime.block_on(dispatcher.dispatch(&registry, &event));
    for delivery in &report.deliveries {
        println!(
            "{} -> {} after {} attempt(s) [delivery {}]",
            delivery.url,
            delivery.outcome,
            delivery.attempts.len(),
            delivery.id
        );
    }
    let deactivated = report.deactivate_gone(&mut registry);
    println!(
        "deactivated for good (410): {deactivated}; still active: {}",
        registry.iter().filter(|w| w.is_active()).count()
    );
    Ok(())
}
