//! `Event::decode`: any bytes give an event or an error; a decoded event encodes to a body
//! that decodes to the same event (decode → encode loses nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthook::Event;

fuzz_target!(|body: &[u8]| {
    if let Ok(event) = Event::decode(body) {
        let again = Event::decode(&event.encode()).expect("an encoded event decodes");
        assert_eq!(again, event);
    }
});
