//! `Form::parse`: any bytes give a form or an error, never a panic; a form encodes to a
//! body that parses back to the same pairs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthook::Form;

fuzz_target!(|body: &[u8]| {
    if let Ok(form) = Form::parse(body) {
        let again = Form::parse(&form.encode()).expect("an encoded form parses");
        assert_eq!(again, form);
    }
});
