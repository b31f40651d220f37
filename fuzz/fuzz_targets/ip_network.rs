//! `IpNetwork` from text: a network or an error; a network's text parses back to it, and
//! `contains` agrees with itself on its own address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthook::IpNetwork;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    if let Ok(network) = text.parse::<IpNetwork>() {
        let again: IpNetwork = network.to_string().parse().expect("its own text parses");
        assert_eq!(again, network);
    }
});
