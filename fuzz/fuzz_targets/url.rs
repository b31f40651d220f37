//! `WebhookUrl::parse`: any text gives a URL or an error whose byte offset lies in the
//! text; a URL parses back from its own text; the address policy judges it without panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthook::{AddressPolicy, WebhookUrl};

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    match WebhookUrl::parse(text) {
        Ok(url) => {
            let again = WebhookUrl::parse(url.as_str()).expect("a URL parses from its text");
            assert_eq!(again, url);
            let _ = AddressPolicy::public_only().check_url(&url);
        }
        Err(error) => assert!(error.offset() <= text.len(), "{error}"),
    }
});
