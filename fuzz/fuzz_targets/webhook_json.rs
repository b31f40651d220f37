//! A webhook in the ActiveCampaign API JSON shape: any bytes give a webhook or an error;
//! a webhook writes JSON that reads back as the same webhook.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthook::WebhookEnvelope;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(envelope) = serde_json::from_slice::<WebhookEnvelope>(bytes) {
        let json = serde_json::to_vec(&envelope).expect("a webhook writes JSON");
        let again: WebhookEnvelope = serde_json::from_slice(&json).expect("and reads it back");
        assert_eq!(again, envelope);
    }
});
