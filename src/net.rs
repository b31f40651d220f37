//! Address policy: which IP addresses a webhook may be delivered to (the SSRF guard).
//!
//! A webhook URL is chosen by a user of your application, so without a guard it can point the
//! delivery at your own network: `http://127.0.0.1:6379/`, `http://169.254.169.254/` (cloud
//! metadata), `http://10.0.0.5/admin`. [`AddressClass::of`] sorts an address into the
//! range it belongs to, and an [`AddressPolicy`] says which classes may be reached. The check is
//! pure: apply it to a URL's literal IP ([`WebhookUrl::ip`](crate::WebhookUrl::ip)) before
//! sending, and to every address a host name resolves to inside your transport, right before it
//! connects (checking before resolving alone leaves DNS rebinding open).
//!
//! ```
//! use std::net::IpAddr;
//! use posthook::{AddressClass, AddressPolicy};
//!
//! let policy = AddressPolicy::public_only();
//! let metadata: IpAddr = "169.254.169.254".parse().unwrap();
//! assert_eq!(AddressClass::of(metadata), AddressClass::LinkLocal);
//! let err = policy.check(metadata).unwrap_err();
//! assert_eq!(err.to_string(), "address 169.254.169.254 is link-local: blocked by the address policy");
//! // An IPv4 address mapped into IPv6 is judged as the IPv4 address.
//! assert!(policy.check("::ffff:127.0.0.1".parse().unwrap()).is_err());
//! assert!(policy.check("93.184.216.34".parse().unwrap()).is_ok());
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use crate::WebhookUrl;

/// The kind of range an IP address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressClass {
    /// A globally routable address: what a webhook normally points at.
    Public,
    /// This host: `127.0.0.0/8`, `::1`.
    Loopback,
    /// Private networks: `10/8`, `172.16/12`, `192.168/16`, IPv6 unique local `fc00::/7`.
    Private,
    /// Link-local: `169.254/16` (cloud metadata lives here), `fe80::/10`.
    LinkLocal,
    /// Carrier-grade NAT shared space, `100.64/10`.
    SharedNat,
    /// The unspecified address, `0.0.0.0/8` and `::`.
    Unspecified,
    /// Multicast and broadcast: `224/4`, `255.255.255.255`, `ff00::/8`.
    Multicast,
    /// Documentation, benchmarking and reserved ranges: `192.0.2/24`, `198.51.100/24`,
    /// `203.0.113/24`, `198.18/15`, `240/4`, `192.0.0/24`, `2001:db8::/32`.
    Reserved,
}

impl AddressClass {
    /// The class of `ip`. IPv4 addresses mapped or translated into IPv6 (`::ffff:a.b.c.d`,
    /// `64:ff9b::a.b.c.d`) are classed as the IPv4 address they carry.
    pub fn of(ip: IpAddr) -> AddressClass {
        match ip {
            IpAddr::V4(ip) => class_v4(ip),
            IpAddr::V6(ip) => class_v6(ip),
        }
    }

    /// A short name: `"public"`, `"loopback"`, `"private"`, `"link-local"`, `"shared NAT"`,
    /// `"unspecified"`, `"multicast"`, `"reserved"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::SharedNat => "shared NAT",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Multicast => "multicast",
            AddressClass::Reserved => "reserved",
        }
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

fn class_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, c, d] = ip.octets();
    match (a, b, c) {
        // Globally reachable exceptions inside 192.0.0.0/24 (RFC 7723, RFC 8155).
        (192, 0, 0) if d == 9 || d == 10 => AddressClass::Public,
        (0, _, _) => AddressClass::Unspecified,
        (127, _, _) => AddressClass::Loopback,
        (10, _, _) | (192, 168, _) => AddressClass::Private,
        (172, 16..=31, _) => AddressClass::Private,
        (169, 254, _) => AddressClass::LinkLocal,
        (100, 64..=127, _) => AddressClass::SharedNat,
        (224..=239, _, _) | (255, 255, 255) => AddressClass::Multicast,
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) | (198, 18..=19, _) => {
            AddressClass::Reserved
        }
        (240..=255, _, _) => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

fn class_v6(ip: Ipv6Addr) -> AddressClass {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return class_v4(v4);
    }
    let segments = ip.segments();
    let v4_at = |hi: u16, lo: u16| {
        let ([a, b], [c, d]) = (hi.to_be_bytes(), lo.to_be_bytes());
        Ipv4Addr::new(a, b, c, d)
    };
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return class_v4(v4_at(segments[6], segments[7]));
    }
    // 6to4 (2002::/16) carries one in bits 16..48: judged as that address when it is not
    // public, since a relay would deliver there.
    if segments[0] == 0x2002 {
        let inner = class_v4(v4_at(segments[1], segments[2]));
        if inner != AddressClass::Public {
            return inner;
        }
    }
    match segments[0] {
        _ if ip.is_unspecified() => AddressClass::Unspecified,
        _ if ip.is_loopback() => AddressClass::Loopback,
        s if s & 0xfe00 == 0xfc00 => AddressClass::Private,
        // Site-local (deprecated, RFC 3879): still a private network where it is used.
        s if s & 0xffc0 == 0xfec0 => AddressClass::Private,
        s if s & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        // Local-use NAT64 (64:ff9b:1::/48), Teredo (2001::/32), discard-only (100::/64).
        0x64 if segments[1] == 0xff9b && segments[2] == 1 => AddressClass::Reserved,
        0x2001 if segments[1] == 0 => AddressClass::Reserved,
        0x100 if segments[1..4] == [0, 0, 0] => AddressClass::Reserved,
        s if s & 0xff00 == 0xff00 => AddressClass::Multicast,
        0x2001 if segments[1] == 0x0db8 => AddressClass::Reserved,
        // IPv4-compatible (deprecated) and other addresses in ::/8 other than the above.
        0 => AddressClass::Reserved,
        _ => AddressClass::Public,
    }
}

/// Which [`AddressClass`]es a delivery may reach.
///
/// [`AddressPolicy::public_only`] (the default) reaches public addresses only.
/// [`AddressPolicy::allow_all`] turns the guard off, e.g. for tests against a local server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressPolicy {
    allowed: u8,
}

impl Default for AddressPolicy {
    fn default() -> Self {
        AddressPolicy::public_only()
    }
}

impl AddressPolicy {
    /// Public addresses only.
    pub const fn public_only() -> AddressPolicy {
        AddressPolicy {
            allowed: AddressClass::Public.bit(),
        }
    }

    /// Every address: no guard.
    pub const fn allow_all() -> AddressPolicy {
        AddressPolicy { allowed: u8::MAX }
    }

    /// This policy, also allowing `class`.
    #[must_use]
    pub const fn allow(self, class: AddressClass) -> AddressPolicy {
        AddressPolicy {
            allowed: self.allowed | class.bit(),
        }
    }

    /// Whether `class` may be reached.
    pub const fn allows(self, class: AddressClass) -> bool {
        self.allowed & class.bit() != 0
    }

    /// `Ok` when `ip` may be reached; otherwise an error naming the address and its class.
    pub fn check(self, ip: IpAddr) -> Result<(), BlockedAddress> {
        let class = AddressClass::of(ip);
        if self.allows(class) {
            Ok(())
        } else {
            Err(BlockedAddress { ip, class })
        }
    }

    /// Checks what can be judged from the URL alone: a literal IP host (read as HTTP clients
    /// read it, so `http://2130706433/` is 127.0.0.1), and the names `localhost` and
    /// `*.localhost`, which always mean this host (RFC 6761) and are judged as `127.0.0.1`.
    /// Other names must be checked after resolving, in the transport.
    pub fn check_url(self, url: &WebhookUrl) -> Result<(), BlockedAddress> {
        if let Some(ip) = url.ip() {
            return self.check(ip);
        }
        let host = url.host().trim_end_matches('.').to_ascii_lowercase();
        if host == "localhost" || host.ends_with(".localhost") {
            return self.check(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        Ok(())
    }
}

/// An address the [`AddressPolicy`] does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("address {ip} is {class}: blocked by the address policy")]
pub struct BlockedAddress {
    ip: IpAddr,
    class: AddressClass,
}

impl BlockedAddress {
    /// The address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Its class.
    pub fn class(&self) -> AddressClass {
        self.class
    }
}
