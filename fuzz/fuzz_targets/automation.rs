//! `AutomationPayload::decode`: any bytes give a payload or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthook::AutomationPayload;

fuzz_target!(|body: &[u8]| {
    if let Ok(step) = AutomationPayload::decode(body) {
        let again = AutomationPayload::decode(&step.encode()).expect("an encoded step decodes");
        assert_eq!(again, step);
    }
});
