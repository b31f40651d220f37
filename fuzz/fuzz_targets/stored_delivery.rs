//! A delivery as the SQL stores keep it (its JSON column), and a stored webhook's API JSON:
//! a corrupt row is an error, never a panic; a delivery that reads writes the same JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthook::Delivery;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(delivery) = serde_json::from_slice::<Delivery>(bytes) {
        let json = serde_json::to_vec(&delivery).expect("a delivery writes JSON");
        let again: Delivery = serde_json::from_slice(&json).expect("and reads it back");
        assert_eq!(again, delivery);
        let _ = posthook::DeliveryState::of(&delivery);
        let _ = delivery.next_attempt();
    }
});
