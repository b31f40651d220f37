//! `whsec_` secrets: any text gives a secret or an error; a secret's text parses back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthook::sign::SigningSecret;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    if let Ok(secret) = SigningSecret::parse(text) {
        let again = SigningSecret::parse(&secret.to_whsec()).expect("its own text parses");
        assert_eq!(again.to_whsec(), secret.to_whsec());
    }
    let _ = SigningSecret::from_bytes(bytes);
});
