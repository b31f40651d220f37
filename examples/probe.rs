//! "Test URL": what stands between a webhook URL and a working delivery, in plain words.
//!
//! ```text
//! cargo run --example probe --features http -- https://example.com/hook
//! cargo run --example probe --features http,signing -- --allow-private \
//!     --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw http://127.0.0.1:8080/hook
//! ```
//!
//! With `--secret`, the probe is signed as deliveries are, so that a receiver that verifies
//! signatures takes it.
//!
//! Exits 0 when the URL took the probe (`2xx`), 1 otherwise, 2 on bad arguments.

use std::process::ExitCode;

use posthook::sign::SigningSecret;
use posthook::{AddressClass, AddressPolicy, Dispatcher, HttpTransport, TokioTimer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let allow_private = take_flag(&mut args, "--allow-private");
    let secret = match args.iter().position(|a| a == "--secret") {
        Some(at) if at + 1 < args.len() => match SigningSecret::parse(&args.remove(at + 1)) {
            Ok(secret) => Some(secret),
            Err(error) => {
                eprintln!("--secret: {error}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    args.retain(|a| a != "--secret");
    let [url] = args.as_slice() else {
        eprintln!("usage: probe [--allow-private] [--secret whsec_...] URL");
        return ExitCode::from(2);
    };
    let mut policy = AddressPolicy::public_only();
    if allow_private {
        policy = policy
            .allow(AddressClass::Loopback)
            .allow(AddressClass::Private);
    }
    let transport = match HttpTransport::builder().address_policy(policy).build() {
        Ok(transport) => transport,
        Err(error) => {
            eprintln!("cannot set up HTTP: {error}");
            return ExitCode::from(2);
        }
    };
    let mut dispatcher = Dispatcher::new(transport, TokioTimer::new());
    if let Some(secret) = secret {
        dispatcher = dispatcher.signing_secret(secret);
    }
    let diagnosis = dispatcher.diagnose(url).await;

    println!("URL       {}", diagnosis.url);
    if let posthook::Finding::InvalidUrl { offset, .. } = diagnosis.finding {
        println!("          {}^", " ".repeat(offset));
    }
    for address in &diagnosis.addresses {
        let verdict = if address.allowed {
            "allowed"
        } else {
            "BLOCKED"
        };
        println!("resolves  {} ({}, {verdict})", address.ip, address.class);
    }
    println!("diagnosis {diagnosis}");
    if diagnosis.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Removes `flag` from `args`; says whether it was there.
fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != flag);
    args.len() != before
}
