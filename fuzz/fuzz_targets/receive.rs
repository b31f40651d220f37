//! `receive::Receiver` over fuzzed signature headers and body: an error or a result, never a
//! panic. The input is split at its first two NUL bytes: `webhook-id`, `webhook-timestamp`
//! and `webhook-signature` values from the first part (by lines), the body from the rest.
#![no_main]

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use posthook::receive::Receiver;
use posthook::sign::SigningSecret;

fuzz_target!(|bytes: &[u8]| {
    let (head, body) = match bytes.iter().position(|&b| b == 0) {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[][..]),
    };
    let mut headers = HeaderMap::new();
    let names = ["webhook-id", "webhook-timestamp", "webhook-signature", "content-type"];
    for (name, line) in names.iter().zip(head.split(|&b| b == b'\n')) {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.insert(*name, value);
        }
    }
    let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_614_265_330);
    let _ = Receiver::new().secret(secret).receive(&headers, body, now);
    let _ = Receiver::new().receive_event(&headers, body, now);
    let _ = posthook::sign::verify(&[], &headers, body, 1_614_265_330, 300);
});
