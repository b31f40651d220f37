//! The address policy: a table of addresses and their classes, the special-purpose table row
//! by row, networks and the allow-list, and properties.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use posthook::{AddressClass as C, AddressPolicy, IpNetwork, NetworkParseError, WebhookUrl};
use proptest::prelude::*;

const TABLE: &[(&str, C)] = &[
    ("93.184.216.34", C::Public),
    ("8.8.8.8", C::Public),
    ("1.1.1.1", C::Public),
    ("172.15.255.255", C::Public),
    ("172.32.0.1", C::Public),
    ("100.63.255.255", C::Public),
    ("100.128.0.0", C::Public),
    ("192.169.0.1", C::Public),
    ("127.0.0.1", C::Loopback),
    ("127.255.255.254", C::Loopback),
    ("10.0.0.5", C::Private),
    ("172.16.0.1", C::Private),
    ("172.31.255.255", C::Private),
    ("192.168.1.20", C::Private),
    ("169.254.169.254", C::LinkLocal),
    ("100.64.0.1", C::SharedNat),
    ("100.127.255.255", C::SharedNat),
    ("0.0.0.0", C::Unspecified),
    ("0.1.2.3", C::Unspecified),
    ("224.0.0.1", C::Multicast),
    ("239.255.255.250", C::Multicast),
    ("255.255.255.255", C::Multicast),
    ("255.255.255.254", C::Reserved),
    ("192.0.2.1", C::Reserved),
    ("198.51.100.7", C::Reserved),
    ("203.0.113.9", C::Reserved),
    ("198.18.0.1", C::Reserved),
    ("240.0.0.1", C::Reserved),
    ("192.0.0.8", C::Reserved),
    ("2606:4700::1111", C::Public),
    ("2a00:1450:4001::200e", C::Public),
    ("::1", C::Loopback),
    ("::", C::Unspecified),
    ("fc00::1", C::Private),
    ("fd12:3456:789a::1", C::Private),
    ("fe80::1", C::LinkLocal),
    ("febf::1", C::LinkLocal),
    ("ff02::1", C::Multicast),
    ("2001:db8::1", C::Reserved),
    ("::ffff:127.0.0.1", C::Loopback),
    ("::ffff:169.254.169.254", C::LinkLocal),
    ("::ffff:8.8.8.8", C::Public),
    ("64:ff9b::10.0.0.1", C::Private),
    ("64:ff9b::8.8.4.4", C::Public),
    ("::127.0.0.1", C::Reserved),
    // ::/8 is reserved by the IETF, not only ::/16.
    ("ff:ffff::1", C::Reserved),
    ("192.0.0.9", C::Public),
    ("192.0.0.10", C::Public),
    ("2002:7f00:1::1", C::Loopback),
    ("2002:a00:1::1", C::Private),
    ("2002:808:808::1", C::Public),
    ("2001:0:4136:e378::1", C::Reserved),
    ("64:ff9b:1::a00:1", C::Reserved),
    ("fec0::1", C::Private),
    ("100::1", C::Reserved),
    // Measured gaps: these were judged public before the table.
    ("3fff::1", C::Reserved),
    ("3fff:fff:ffff::1", C::Reserved),
    ("2001:2::1", C::Reserved),
    ("5f00::1", C::Reserved),
    ("5f00:ffff::1", C::Reserved),
    ("100:0:0:1::1", C::Reserved),
    ("2001:100::1", C::Reserved),
    ("2001:1ff:ffff::1", C::Reserved),
    ("2001:10::1", C::Reserved),
    // Globally reachable inside 2001::/23.
    ("2001:1::1", C::Public),
    ("2001:1::2", C::Public),
    ("2001:1::3", C::Public),
    ("2001:3::1", C::Public),
    ("2001:4:112::1", C::Public),
    ("2001:20::1", C::Public),
    ("2001:30::1", C::Public),
    ("2001:200::1", C::Public),
];

#[test]
fn table_of_addresses() {
    for &(text, class) in TABLE {
        let ip: IpAddr = text.parse().unwrap();
        assert_eq!(C::of(ip), class, "{text}");
        let public_only = AddressPolicy::public_only().check(ip);
        assert_eq!(public_only.is_ok(), class == C::Public, "{text}");
        if let Err(err) = public_only {
            assert_eq!((err.ip(), err.class()), (ip, class));
            assert!(err.to_string().contains(class.as_str()), "{err}");
        }
        assert!(AddressPolicy::allow_all().check(ip).is_ok());
    }
}

#[test]
fn policies_compose() {
    let local = AddressPolicy::public_only().allow(C::Loopback);
    assert!(local.check("127.0.0.1".parse().unwrap()).is_ok());
    assert!(local.check("10.0.0.1".parse().unwrap()).is_err());
    assert!(local.allows(C::Public));
    assert_eq!(AddressPolicy::default(), AddressPolicy::public_only());
}

/// Every row of the table, an address inside it that no more specific row holds (with the
/// class and RFC expected, written from the registries, not read from the table), and one
/// address just outside it where that means something.
type Row = (
    &'static str,
    &'static str,
    C,
    &'static str,
    Option<(&'static str, C)>,
);

#[rustfmt::skip]
const ROWS: &[Row] = &[
    ("0.0.0.0/8", "0.1.2.3", C::Unspecified, "RFC 791", Some(("1.0.0.0", C::Public))),
    ("0.0.0.0/32", "0.0.0.0", C::Unspecified, "RFC 1122", Some(("0.0.0.1", C::Unspecified))),
    ("10.0.0.0/8", "10.20.30.40", C::Private, "RFC 1918", Some(("11.0.0.0", C::Public))),
    ("100.64.0.0/10", "100.127.255.255", C::SharedNat, "RFC 6598", Some(("100.128.0.0", C::Public))),
    ("127.0.0.0/8", "127.0.0.1", C::Loopback, "RFC 1122", Some(("128.0.0.0", C::Public))),
    ("169.254.0.0/16", "169.254.169.254", C::LinkLocal, "RFC 3927", Some(("169.255.0.0", C::Public))),
    ("172.16.0.0/12", "172.31.255.255", C::Private, "RFC 1918", Some(("172.32.0.0", C::Public))),
    ("192.0.0.0/24", "192.0.0.200", C::Reserved, "RFC 6890", Some(("192.0.1.0", C::Public))),
    ("192.0.0.0/29", "192.0.0.7", C::Reserved, "RFC 7335", Some(("192.0.0.8", C::Reserved))),
    ("192.0.0.8/32", "192.0.0.8", C::Reserved, "RFC 7600", None),
    ("192.0.0.9/32", "192.0.0.9", C::Public, "RFC 7723", Some(("192.0.0.11", C::Reserved))),
    ("192.0.0.10/32", "192.0.0.10", C::Public, "RFC 8155", None),
    ("192.0.0.170/32", "192.0.0.170", C::Reserved, "RFC 8880", Some(("192.0.0.169", C::Reserved))),
    ("192.0.0.171/32", "192.0.0.171", C::Reserved, "RFC 8880", None),
    ("192.0.2.0/24", "192.0.2.1", C::Reserved, "RFC 5737", Some(("192.0.3.0", C::Public))),
    ("192.31.196.0/24", "192.31.196.1", C::Public, "RFC 7535", None),
    ("192.52.193.0/24", "192.52.193.1", C::Public, "RFC 7450", None),
    ("192.88.99.0/24", "192.88.99.1", C::Reserved, "RFC 7526", Some(("192.88.100.0", C::Public))),
    ("192.88.99.2/32", "192.88.99.2", C::Reserved, "RFC 6751", None),
    ("192.168.0.0/16", "192.168.1.20", C::Private, "RFC 1918", Some(("192.169.0.0", C::Public))),
    ("192.175.48.0/24", "192.175.48.1", C::Public, "RFC 7534", None),
    ("198.18.0.0/15", "198.19.255.255", C::Reserved, "RFC 2544", Some(("198.20.0.0", C::Public))),
    ("198.51.100.0/24", "198.51.100.7", C::Reserved, "RFC 5737", Some(("198.51.101.0", C::Public))),
    ("203.0.113.0/24", "203.0.113.9", C::Reserved, "RFC 5737", Some(("203.0.114.0", C::Public))),
    ("224.0.0.0/4", "239.255.255.250", C::Multicast, "RFC 5771", Some(("223.255.255.255", C::Public))),
    ("240.0.0.0/4", "255.255.255.254", C::Reserved, "RFC 1112", None),
    ("255.255.255.255/32", "255.255.255.255", C::Multicast, "RFC 919", None),
    ("::/8", "::127.0.0.1", C::Reserved, "RFC 4291", Some(("100:1::", C::Public))),
    ("::1/128", "::1", C::Loopback, "RFC 4291", Some(("::2", C::Reserved))),
    ("::/128", "::", C::Unspecified, "RFC 4291", None),
    ("64:ff9b:1::/48", "64:ff9b:1::a00:1", C::Reserved, "RFC 8215", Some(("64:ff9b:2::", C::Reserved))),
    ("100::/64", "100::1", C::Reserved, "RFC 6666", None),
    ("100:0:0:1::/64", "100:0:0:1::1", C::Reserved, "RFC 9780", Some(("100:0:0:2::", C::Public))),
    ("2001::/23", "2001:1ff:ffff::1", C::Reserved, "RFC 2928", Some(("2001:200::", C::Public))),
    ("2001::/32", "2001:0:4136:e378::1", C::Reserved, "RFC 4380", None),
    ("2001:1::1/128", "2001:1::1", C::Public, "RFC 7723", Some(("2001:1::4", C::Reserved))),
    ("2001:1::2/128", "2001:1::2", C::Public, "RFC 8155", None),
    ("2001:1::3/128", "2001:1::3", C::Public, "RFC 9665", None),
    ("2001:2::/48", "2001:2::1", C::Reserved, "RFC 5180", None),
    ("2001:3::/32", "2001:3:ffff::1", C::Public, "RFC 7450", Some(("2001:4::", C::Reserved))),
    ("2001:4:112::/48", "2001:4:112::1", C::Public, "RFC 7535", Some(("2001:4:113::", C::Reserved))),
    ("2001:10::/28", "2001:1f::1", C::Reserved, "RFC 4843", None),
    ("2001:20::/28", "2001:2f:ffff::1", C::Public, "RFC 7343", Some(("2001:1f:ffff::", C::Reserved))),
    ("2001:30::/28", "2001:30::1", C::Public, "RFC 9374", Some(("2001:40::", C::Reserved))),
    ("2001:db8::/32", "2001:db8::1", C::Reserved, "RFC 3849", Some(("2001:db9::", C::Public))),
    ("2002::/16", "2002:808:808::1", C::Public, "RFC 3056", Some(("2003::", C::Public))),
    ("2620:4f:8000::/48", "2620:4f:8000::1", C::Public, "RFC 7534", None),
    ("3fff::/20", "3fff:fff::1", C::Reserved, "RFC 9637", Some(("3fff:1000::", C::Public))),
    ("5f00::/16", "5f00::1", C::Reserved, "RFC 9602", Some(("5f01::", C::Public))),
    ("fc00::/7", "fdff::1", C::Private, "RFC 4193", Some(("fe00::", C::Public))),
    ("fe80::/10", "febf::1", C::LinkLocal, "RFC 4291", Some(("fec0::", C::Private))),
    ("fec0::/10", "fec0::1", C::Private, "RFC 3879", None),
    ("ff00::/8", "ff02::1", C::Multicast, "RFC 4291", Some(("feff::", C::Private))),
];

#[test]
fn every_row_of_the_table() {
    let table = C::table();
    assert_eq!(
        table.len(),
        ROWS.len(),
        "a row of the table without a test, or the reverse"
    );
    for &(network, inside, class, rfc, outside) in ROWS {
        let row = table
            .iter()
            .find(|r| r.network().to_string() == network)
            .unwrap_or_else(|| panic!("{network} is not in the table"));
        assert_eq!((row.class(), row.rfc()), (class, rfc), "{network}");
        assert!(!row.name().is_empty());
        // Each row is a valid network: no bit set past its prefix.
        let n = row.network();
        assert_eq!(IpNetwork::new(n.addr(), n.prefix_len()), Ok(n));

        let ip: IpAddr = inside.parse().unwrap();
        assert!(n.contains(ip), "{inside} in {network}");
        assert_eq!(C::of(ip), class, "{inside}");
        assert_eq!(
            C::special_range(ip),
            Some(row),
            "{inside} is decided by {network}"
        );
        if let Some((outside, outside_class)) = outside {
            let ip: IpAddr = outside.parse().unwrap();
            assert!(!n.contains(ip), "{outside} outside {network}");
            assert_eq!(C::of(ip), outside_class, "{outside}");
        }
    }
}

#[test]
fn the_broadcast_address_is_the_only_multicast_in_240_4() {
    let at = |s: &str| C::special_range(s.parse().unwrap()).unwrap();
    assert_eq!(at("255.255.255.255").class(), C::Multicast);
    assert_eq!(at("255.255.255.255").name(), "Limited Broadcast");
    assert_eq!(at("255.255.255.254").class(), C::Reserved);
    assert_eq!(at("255.255.255.254").rfc(), "RFC 1112");
    assert_eq!(at("240.0.0.0").class(), C::Reserved);
}

#[test]
fn carried_ipv4_addresses_are_decided_by_ipv4_rows() {
    let range = |s: &str| C::special_range(s.parse().unwrap()).map(|r| r.network().to_string());
    assert_eq!(range("::ffff:10.1.2.3").as_deref(), Some("10.0.0.0/8"));
    assert_eq!(range("64:ff9b::c000:9").as_deref(), Some("192.0.0.9/32"));
    assert_eq!(range("2002:a00:1::1").as_deref(), Some("10.0.0.0/8"));
    // A 6to4 address of a public IPv4 address is decided by the 6to4 row.
    assert_eq!(range("2002:808:808::1").as_deref(), Some("2002::/16"));
    assert_eq!(range("::ffff:8.8.8.8"), None);
    assert_eq!(range("2606:4700::1111"), None);
}

#[test]
fn networks_parse_display_and_say_what_is_wrong() {
    for (text, want) in [
        (
            "10.0.0.0/33",
            NetworkParseError::LengthTooLong {
                length: 33,
                max: 32,
            },
        ),
        (
            "::1/129",
            NetworkParseError::LengthTooLong {
                length: 129,
                max: 128,
            },
        ),
        (
            "10.0.0.0/999",
            NetworkParseError::LengthTooLong {
                length: 999,
                max: 32,
            },
        ),
        (
            "10.0.0/8",
            NetworkParseError::InvalidAddress("10.0.0/8".into()),
        ),
        ("abc", NetworkParseError::MissingLength("abc".into())),
        ("abc/8", NetworkParseError::InvalidAddress("abc/8".into())),
        ("", NetworkParseError::Empty),
        (
            "10.0.0.0/",
            NetworkParseError::InvalidLength("10.0.0.0/".into()),
        ),
        (
            "10.0.0.0/+8",
            NetworkParseError::InvalidLength("10.0.0.0/+8".into()),
        ),
        (
            "10.0.0.0/-1",
            NetworkParseError::InvalidLength("10.0.0.0/-1".into()),
        ),
        (
            "10.0.0.0/8/8",
            NetworkParseError::InvalidLength("10.0.0.0/8/8".into()),
        ),
        (
            "10.0.0.0/1000",
            NetworkParseError::InvalidLength("10.0.0.0/1000".into()),
        ),
        (
            " 10.0.0.0/8",
            NetworkParseError::InvalidAddress(" 10.0.0.0/8".into()),
        ),
        (
            "fe80::1%eth0/64",
            NetworkParseError::InvalidAddress("fe80::1%eth0/64".into()),
        ),
    ] {
        assert_eq!(text.parse::<IpNetwork>(), Err(want), "{text:?}");
    }
    let err = "172.17.0.1/16".parse::<IpNetwork>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "network 172.17.0.1/16 has bits set past its prefix: write 172.17.0.0/16"
    );
    let NetworkParseError::HostBits { network, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(network, "172.17.0.0/16".parse().unwrap());
    assert!(
        "10.0.0.0/33"
            .parse::<IpNetwork>()
            .unwrap_err()
            .to_string()
            .contains("/33")
    );
    assert!("2001:db8::1/64".parse::<IpNetwork>().is_err());

    for text in [
        "0.0.0.0/0",
        "10.0.0.0/8",
        "192.0.2.7/32",
        "::/0",
        "2001:db8::/32",
        "::1/128",
    ] {
        let network: IpNetwork = text.parse().unwrap();
        assert_eq!(network.to_string(), text);
        let json = serde_json::to_string(&network).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<IpNetwork>(&json).unwrap(), network);
    }
    assert!(serde_json::from_str::<IpNetwork>("\"10.0.0.1/8\"").is_err());
    assert!(serde_json::from_str::<IpNetwork>("8").is_err());
}

#[test]
fn contains_treats_mapped_ipv4_as_ipv4() {
    let v4: IpNetwork = "10.8.0.0/24".parse().unwrap();
    assert!(v4.contains("10.8.0.255".parse().unwrap()));
    assert!(v4.contains("::ffff:10.8.0.1".parse().unwrap()));
    assert!(
        !v4.contains("::10.8.0.1".parse().unwrap()),
        "IPv4-compatible is not mapped"
    );
    assert!(!v4.contains("64:ff9b::10.8.0.1".parse().unwrap()));
    assert!(!v4.contains("10.8.1.0".parse().unwrap()));
    let mapped: IpNetwork = "::ffff:10.8.0.0/120".parse().unwrap();
    assert!(mapped.contains("10.8.0.9".parse().unwrap()));
    assert!(!mapped.contains("10.8.1.9".parse().unwrap()));
    let all_v4: IpNetwork = "0.0.0.0/0".parse().unwrap();
    assert!(all_v4.contains("255.255.255.255".parse().unwrap()));
    assert!(!all_v4.contains("2001:db8::1".parse().unwrap()));
}

#[test]
fn allowed_networks_open_exactly_themselves() {
    let docker = AddressPolicy::public_only().allow_network("172.17.0.0/16".parse().unwrap());
    assert!(docker.check("172.17.0.2".parse().unwrap()).is_ok());
    assert!(docker.check("::ffff:172.17.0.2".parse().unwrap()).is_ok());
    assert!(docker.check("8.8.8.8".parse().unwrap()).is_ok());
    let err = docker.check("172.18.0.2".parse().unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "address 172.18.0.2 is private: blocked by the address policy"
    );
    assert!(docker.check("127.0.0.1".parse().unwrap()).is_err());
    assert!(
        docker
            .check_url(&WebhookUrl::parse("http://172.17.0.3:8080/hook").unwrap())
            .is_ok()
    );
    assert!(
        docker
            .check_url(&WebhookUrl::parse("http://10.0.0.1/").unwrap())
            .is_err()
    );
    assert!(!docker.allows(C::Private));

    let vpn = AddressPolicy::public_only().allow_network("fd00:1::/32".parse().unwrap());
    assert!(vpn.check("fd00:1::5".parse().unwrap()).is_ok());
    assert!(vpn.check("fd00:2::5".parse().unwrap()).is_err());

    // A network allowing this host also opens `localhost` URLs.
    let lo = AddressPolicy::public_only().allow_network("127.0.0.1/32".parse().unwrap());
    assert!(
        lo.check_url(&WebhookUrl::parse("http://localhost:3000/").unwrap())
            .is_ok()
    );

    // The order the networks were allowed in does not matter, nor repeats.
    let (a, b): (IpNetwork, IpNetwork) =
        ("10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap());
    let ab = AddressPolicy::public_only()
        .allow_network(a)
        .allow_network(b);
    let ba = AddressPolicy::public_only()
        .allow_network(b)
        .allow_network(a)
        .allow_network(b);
    assert_eq!(ab, ba);
    assert_eq!(ab.networks(), &[a, b]);
    assert_ne!(ab, AddressPolicy::public_only());
}

#[test]
fn policies_are_usable_in_statics() {
    static LOCAL: AddressPolicy = AddressPolicy::public_only().allow(C::Loopback);
    static OPEN: AddressPolicy = AddressPolicy::allow_all();
    assert!(LOCAL.check("127.0.0.1".parse().unwrap()).is_ok());
    assert!(LOCAL.check("10.0.0.1".parse().unwrap()).is_err());
    assert!(OPEN.check("10.0.0.1".parse().unwrap()).is_ok());
}

/// The test's own reading of "inside a network": the address as 128 bits, IPv4 (and
/// IPv4-mapped IPv6) under `::ffff:0:0/96`.
fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) | 0xffff_0000_0000,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn inside(network: &IpNetwork, ip: IpAddr) -> bool {
    let (base, len) = match network.addr() {
        IpAddr::V4(_) => (bits(network.addr()), 96 + u32::from(network.prefix_len())),
        IpAddr::V6(_) => (bits(network.addr()), u32::from(network.prefix_len())),
    };
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    bits(ip) & mask == base & mask
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<u128>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        any::<u32>().prop_map(|b| IpAddr::V6(Ipv4Addr::from(b).to_ipv6_mapped())),
    ]
}

fn any_network() -> impl Strategy<Value = IpNetwork> {
    prop_oneof![
        (any::<u32>(), 0u8..=32).prop_map(|(b, len)| {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            IpNetwork::new(IpAddr::V4(Ipv4Addr::from(b & mask)), len).unwrap()
        }),
        (any::<u128>(), 0u8..=128).prop_map(|(b, len)| {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            IpNetwork::new(IpAddr::V6(Ipv6Addr::from(b & mask)), len).unwrap()
        }),
    ]
}

const CLASSES: [C; 8] = C::ALL;

proptest! {
    #[test]
    fn networks_round_trip_through_text_and_serde(network in any_network()) {
        let text = network.to_string();
        prop_assert_eq!(text.parse::<IpNetwork>(), Ok(network));
        let json = serde_json::to_string(&network).unwrap();
        prop_assert_eq!(serde_json::from_str::<IpNetwork>(&json).unwrap(), network);
        prop_assert!(network.contains(network.addr()));
    }

    #[test]
    fn host_bits_are_refused_with_the_network_meant(network in any_network(), noise in any::<u128>()) {
        let host_bits = match network.addr() {
            IpAddr::V4(_) => u128::from(u32::MAX.checked_shr(u32::from(network.prefix_len())).unwrap_or(0)),
            IpAddr::V6(_) => u128::MAX.checked_shr(u32::from(network.prefix_len())).unwrap_or(0),
        };
        let noise = noise & host_bits;
        prop_assume!(noise != 0);
        let addr = match network.addr() {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) | noise as u32)),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) | noise)),
        };
        prop_assert!(network.contains(addr));
        let text = format!("{addr}/{}", network.prefix_len());
        prop_assert_eq!(
            text.parse::<IpNetwork>(),
            Err(NetworkParseError::HostBits { address: addr, network })
        );
    }

    #[test]
    fn contains_agrees_with_a_bitwise_reading(network in any_network(), ip in any_ip()) {
        prop_assert_eq!(network.contains(ip), inside(&network, ip));
    }

    #[test]
    fn check_allows_iff_the_class_or_a_network_allows(
        ip in any_ip(),
        near in proptest::option::of(any::<u128>()),
        networks in proptest::collection::vec(any_network(), 0..4),
        classes in proptest::collection::vec(proptest::sample::select(&CLASSES[..]), 0..4),
    ) {
        // Half the time, put the address inside the first network.
        let ip = match (near, networks.first()) {
            (Some(noise), Some(n)) => match n.addr() {
                IpAddr::V4(a) => {
                    let host = u32::MAX.checked_shr(u32::from(n.prefix_len())).unwrap_or(0);
                    IpAddr::V4(Ipv4Addr::from(u32::from(a) | (noise as u32 & host)))
                }
                IpAddr::V6(a) => {
                    let host = u128::MAX.checked_shr(u32::from(n.prefix_len())).unwrap_or(0);
                    IpAddr::V6(Ipv6Addr::from(u128::from(a) | (noise & host)))
                }
            },
            _ => ip,
        };
        let mut policy = AddressPolicy::public_only();
        for &class in &classes {
            policy = policy.allow(class);
        }
        for &network in &networks {
            policy = policy.allow_network(network);
        }
        let class = C::of(ip);
        let expected = class == C::Public
            || classes.contains(&class)
            || networks.iter().any(|n| inside(n, ip));
        let result = policy.check(ip);
        prop_assert_eq!(result.is_ok(), expected);
        if let Err(blocked) = result {
            prop_assert_eq!((blocked.ip(), blocked.class()), (ip, class));
        }
        prop_assert!(AddressPolicy::allow_all().check(ip).is_ok());
        let json = serde_json::to_string(&policy).unwrap();
        prop_assert_eq!(serde_json::from_str::<AddressPolicy>(&json).unwrap(), policy);
    }

    #[test]
    fn the_class_is_the_class_of_the_row_that_decides(ip in any_ip()) {
        let row = C::special_range(ip);
        prop_assert_eq!(C::of(ip), row.map_or(C::Public, |r| r.class()));
        if let Some(row) = row {
            // The row holds the address (or, for one carried in IPv6, the IPv4 one it carries),
            // and no longer row of the same family holds it too.
            let v6 = match ip { IpAddr::V6(v6) => Some(v6), IpAddr::V4(_) => None };
            let carried = v6.and_then(|v6| {
                let b = u128::from(v6);
                let v4 = Ipv4Addr::from(b as u32);
                match b >> 32 {
                    0xffff | 0x0064_ff9b_0000_0000_0000_0000 => Some(v4),
                    _ if b >> 112 == 0x2002 => Some(Ipv4Addr::from((b >> 80) as u32)),
                    _ => None,
                }
            });
            let held = row.network().contains(ip)
                || carried.is_some_and(|v4| row.network().contains(IpAddr::V4(v4)));
            prop_assert!(held, "{} not in {}", ip, row.network());
            let judged = if row.network().addr().is_ipv4() {
                carried.map_or(ip, IpAddr::V4)
            } else {
                ip
            };
            for other in C::table() {
                if other.network().addr().is_ipv4() == row.network().addr().is_ipv4()
                    && other.network().prefix_len() > row.network().prefix_len()
                {
                    prop_assert!(
                        !inside(&other.network(), judged),
                        "{} is also in the longer {}", ip, other.network()
                    );
                }
            }
        }
    }
}

#[test]
fn literal_hosts_of_urls_are_judged_as_clients_read_them() {
    let policy = AddressPolicy::public_only();
    for (url, ok) in [
        ("http://127.0.0.1:8080/hook", false),
        ("http://2130706433/", false),
        ("http://0x7f.1/", false),
        ("http://169.254.169.254/latest/meta-data/", false),
        ("http://10.1.2.3/", false),
        ("https://93.184.216.34/hook", true),
    ] {
        let ip = WebhookUrl::parse(url).unwrap().ip().unwrap();
        assert_eq!(policy.check(ip).is_ok(), ok, "{url}");
    }
}

proptest! {
    #[test]
    fn mapped_and_translated_v4_is_judged_as_v4(bits in any::<u32>()) {
        let v4 = Ipv4Addr::from(bits);
        let class = C::of(IpAddr::V4(v4));
        prop_assert_eq!(C::of(IpAddr::V6(v4.to_ipv6_mapped())), class);
        let [a, b, c, d] = v4.octets();
        let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
        prop_assert_eq!(C::of(IpAddr::V6(nat64)), class);
    }

    #[test]
    fn v4_classes_agree_with_std(bits in any::<u32>()) {
        let ip = Ipv4Addr::from(bits);
        let class = C::of(IpAddr::V4(ip));
        if ip.is_loopback() { prop_assert_eq!(class, C::Loopback); }
        if ip.is_private() { prop_assert_eq!(class, C::Private); }
        if ip.is_link_local() { prop_assert_eq!(class, C::LinkLocal); }
        if ip.is_multicast() || ip.is_broadcast() { prop_assert_eq!(class, C::Multicast); }
        if ip.is_documentation() { prop_assert_eq!(class, C::Reserved); }
        if class == C::Public {
            prop_assert!(!(ip.is_loopback() || ip.is_private() || ip.is_link_local()
                || ip.is_multicast() || ip.is_broadcast() || ip.is_documentation()
                || ip.is_unspecified()));
        }
    }

    #[test]
    fn v6_classes_agree_with_std(segments in any::<[u16; 8]>()) {
        let ip = Ipv6Addr::from(segments);
        let class = C::of(IpAddr::V6(ip));
        if ip.to_ipv4_mapped().is_none() {
            if ip.is_loopback() { prop_assert_eq!(class, C::Loopback); }
            if ip.is_multicast() { prop_assert_eq!(class, C::Multicast); }
            if ip.is_unique_local() { prop_assert_eq!(class, C::Private); }
            if ip.is_unicast_link_local() { prop_assert_eq!(class, C::LinkLocal); }
        }
        prop_assert_eq!(AddressPolicy::public_only().check(IpAddr::V6(ip)).is_ok(), class == C::Public);
    }
}

#[test]
fn check_url_judges_literal_ips_and_localhost_names() {
    let policy = AddressPolicy::public_only();
    let check = |url: &str| policy.check_url(&WebhookUrl::parse(url).unwrap());
    assert!(check("http://LOCALHOST:3000/").is_err());
    assert!(check("http://localhost./").is_err());
    assert!(check("http://a.b.localhost/").is_err());
    assert!(check("http://notlocalhost.com/").is_ok());
    assert!(check("http://Api.LocalHost:8080/").is_err());
    assert!(check("http://xlocalhost/").is_ok());
    assert!(check("http://localhost.example.com/").is_ok());
    assert!(check("https://hooks.zapier.com/hooks/catch/1/a/").is_ok());
    let err = check("http://192.168.0.10/").unwrap_err();
    assert_eq!(err.class(), C::Private);
    assert!(
        AddressPolicy::allow_all()
            .check_url(&WebhookUrl::parse("http://localhost/").unwrap())
            .is_ok()
    );
}

#[test]
fn policies_serialize_as_classes_and_networks() {
    let policy = AddressPolicy::public_only()
        .allow(C::Loopback)
        .allow_network("172.17.0.0/16".parse().unwrap())
        .allow_network("fd00::/8".parse().unwrap());
    let json = serde_json::to_string(&policy).unwrap();
    assert_eq!(
        json,
        r#"{"allow":["public","loopback"],"networks":["172.17.0.0/16","fd00::/8"]}"#
    );
    assert_eq!(
        serde_json::from_str::<AddressPolicy>(&json).unwrap(),
        policy
    );
    let all = serde_json::to_string(&AddressPolicy::allow_all()).unwrap();
    assert_eq!(
        all,
        r#"{"allow":["public","loopback","private","link_local","shared_nat","unspecified","multicast","reserved"],"networks":[]}"#
    );
    assert_eq!(
        serde_json::from_str::<AddressPolicy>(&all).unwrap(),
        AddressPolicy::allow_all()
    );
    assert_eq!(
        serde_json::from_str::<AddressPolicy>("{}").unwrap(),
        AddressPolicy::public_only()
    );
    // Networks only: nothing public.
    let internal: AddressPolicy =
        serde_json::from_str(r#"{"allow":[],"networks":["10.0.0.0/8"]}"#).unwrap();
    assert!(internal.check("10.1.2.3".parse().unwrap()).is_ok());
    assert!(internal.check("8.8.8.8".parse().unwrap()).is_err());
    for bad in [
        r#"{"allow":["everything"]}"#,
        r#"{"networks":["10.0.0.1/8"]}"#,
        r#"{"alow":["public"]}"#,
        r#"{"allow":"public"}"#,
    ] {
        assert!(serde_json::from_str::<AddressPolicy>(bad).is_err(), "{bad}");
    }
}

/// The most specific row of the table containing `ip`, by a plain scan of the public table.
fn naive_row(ip: IpAddr) -> Option<&'static posthook::SpecialRange> {
    let mut best: Option<&'static posthook::SpecialRange> = None;
    for row in C::table() {
        let same_family = row.network().addr().is_ipv4() == ip.is_ipv4();
        let longer = best.is_none_or(|b| row.network().prefix_len() > b.network().prefix_len());
        if same_family && row.network().contains(ip) && longer {
            best = Some(row);
        }
    }
    best
}

proptest! {
    #[test]
    fn the_table_lookup_finds_the_most_specific_row(
        pick in any::<proptest::sample::Index>(),
        noise in any::<u128>(),
        anywhere in any::<bool>(),
    ) {
        let table = C::table();
        let network = table[pick.index(table.len())].network();
        let ip = match (network.addr(), anywhere) {
            (IpAddr::V4(_), true) => IpAddr::V4(Ipv4Addr::from(noise as u32)),
            (IpAddr::V6(_), true) => IpAddr::V6(Ipv6Addr::from(noise)),
            (IpAddr::V4(a), false) => {
                let host = u32::MAX.checked_shr(u32::from(network.prefix_len())).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(a.to_bits() | (noise as u32 & host)))
            }
            (IpAddr::V6(a), false) => {
                let host = u128::MAX.checked_shr(u32::from(network.prefix_len())).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(a.to_bits() | (noise & host)))
            }
        };
        // IPv6 forms that carry an IPv4 address are judged by the IPv4 rows (tested above).
        let carries_v4 = match ip {
            IpAddr::V6(v6) => {
                let bits = v6.to_bits();
                bits >> 32 == 0xffff || bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 || bits >> 112 == 0x2002
            }
            IpAddr::V4(_) => false,
        };
        prop_assume!(!carries_v4);
        prop_assert_eq!(C::special_range(ip), naive_row(ip), "{}", ip);
    }
}
