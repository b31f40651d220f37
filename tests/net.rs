//! The address policy: a table of addresses and their classes, and properties.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use posthook::{AddressClass as C, AddressPolicy, WebhookUrl};
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
    ("192.0.0.9", C::Public),
    ("192.0.0.10", C::Public),
    ("2002:7f00:1::1", C::Loopback),
    ("2002:a00:1::1", C::Private),
    ("2002:808:808::1", C::Public),
    ("2001:0:4136:e378::1", C::Reserved),
    ("64:ff9b:1::a00:1", C::Reserved),
    ("fec0::1", C::Private),
    ("100::1", C::Reserved),
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
    assert!(check("https://hooks.zapier.com/hooks/catch/1/a/").is_ok());
    let err = check("http://192.168.0.10/").unwrap_err();
    assert_eq!(err.class(), C::Private);
    assert!(
        AddressPolicy::allow_all()
            .check_url(&WebhookUrl::parse("http://localhost/").unwrap())
            .is_ok()
    );
}
