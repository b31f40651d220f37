//! "Send sample data": posts the sample payload of each event kind to a URL, one line per
//! delivery with its status and time.
//!
//! ```text
//! cargo run --example send_sample_data --features http,signing -- https://example.com/hook
//! cargo run --example send_sample_data --features http,signing -- \
//!     --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw --allow-private http://127.0.0.1:8080/ subscribe deal_add
//! ```
//!
//! All 25 kinds by default. Exits 0 when every sample was taken (`2xx`), 1 otherwise, 2 on
//! bad arguments.

use std::process::ExitCode;
use std::time::Instant;

use posthook::sign::SigningSecret;
use posthook::{AddressClass, AddressPolicy, Dispatcher, EventKind, HttpTransport, TokioTimer};
use posthook::{Source, Webhook};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let allow_private = args.iter().any(|a| a == "--allow-private");
    args.retain(|a| a != "--allow-private");
    let secret = match args.iter().position(|a| a == "--secret") {
        Some(at) if at + 1 < args.len() => {
            let text = args.remove(at + 1);
            args.remove(at);
            Some(SigningSecret::parse(&text)?)
        }
        Some(_) => return usage(),
        None => None,
    };
    if args.is_empty() {
        return usage();
    }
    let url = args.remove(0);
    let kinds: Vec<EventKind> = if args.is_empty() {
        EventKind::ALL.to_vec()
    } else {
        args.iter().map(|id| id.parse()).collect::<Result<_, _>>()?
    };
    let webhook = Webhook::builder("sample data", &url)
        .events(kinds.iter().copied())
        .sources(Source::ALL)
        .build()?;

    let mut policy = AddressPolicy::public_only();
    if allow_private {
        policy = policy
            .allow(AddressClass::Loopback)
            .allow(AddressClass::Private);
    }
    let transport = HttpTransport::builder().address_policy(policy).build()?;
    let mut dispatcher = Dispatcher::new(transport, TokioTimer::new());
    if let Some(secret) = secret {
        dispatcher = dispatcher.signing_secret(secret);
    }

    let mut failed = 0;
    for kind in kinds {
        let started = Instant::now();
        let report = dispatcher.send_sample(&webhook, kind).await;
        let took = started.elapsed().as_millis();
        let result = match report.attempts.last() {
            Some(attempt) => attempt.outcome.to_string(),
            None => format!("{:?}", report.outcome),
        };
        if !report.outcome.is_delivered() {
            failed += 1;
        }
        println!("{:<22} {result:<40} {took:>5} ms", kind.as_str());
    }
    println!("{failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn usage() -> Result<ExitCode, Box<dyn std::error::Error>> {
    eprintln!("usage: send_sample_data [--secret whsec_...] [--allow-private] URL [KIND ...]");
    Ok(ExitCode::from(2))
}
