//! `parse_retry_after`: any header value gives a wait or none, never a panic, at any time.
#![no_main]

use std::time::{Duration, SystemTime};

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use posthook::parse_retry_after;

fuzz_target!(|bytes: &[u8]| {
    let Some((&first, rest)) = bytes.split_first() else { return };
    let Ok(value) = HeaderValue::from_bytes(rest) else { return };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(first) << 30);
    let _ = parse_retry_after(&value, now);
    let _ = parse_retry_after(&value, SystemTime::UNIX_EPOCH);
});
