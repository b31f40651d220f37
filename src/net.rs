//! Address policy: which IP addresses a webhook may be delivered to (the SSRF guard).
//!
//! A webhook URL is chosen by a user of your application, so without a guard it can point the
//! delivery at your own network: `http://127.0.0.1:6379/`, `http://169.254.169.254/` (cloud
//! metadata), `http://10.0.0.5/admin`. [`AddressClass::of`] sorts an address into the
//! range it belongs to, and an [`AddressPolicy`] says which classes, and which networks
//! besides, may be reached. The check is pure: apply it to a URL's literal IP
//! ([`WebhookUrl::ip`](crate::WebhookUrl::ip)) before sending, and to every address a host
//! name resolves to inside your transport, right before it connects (checking before
//! resolving alone leaves DNS rebinding open).
//!
//! The classes come from one table, [`AddressClass::table`], that follows the IANA IPv4 and
//! IPv6 Special-Purpose Address Registries; the most specific row that holds an address
//! decides its class, and an address in no row is [`AddressClass::Public`].
//!
//! ```
//! use std::net::IpAddr;
//! use posthook::{AddressClass, AddressPolicy};
//!
//! let policy = AddressPolicy::public_only();
//! let metadata: IpAddr = "169.254.169.254".parse().unwrap();
//! assert_eq!(AddressClass::of(metadata), AddressClass::LinkLocal);
//! assert_eq!(AddressClass::special_range(metadata).unwrap().rfc(), "RFC 3927");
//! let err = policy.check(metadata).unwrap_err();
//! assert_eq!(err.to_string(), "address 169.254.169.254 is link-local: blocked by the address policy");
//! // An IPv4 address mapped into IPv6 is judged as the IPv4 address.
//! assert!(policy.check("::ffff:127.0.0.1".parse().unwrap()).is_err());
//! assert!(policy.check("93.184.216.34".parse().unwrap()).is_ok());
//!
//! // A receiver on the Docker bridge: that network, and nothing else private.
//! let docker = AddressPolicy::public_only().allow_network("172.17.0.0/16".parse()?);
//! assert!(docker.check("172.17.0.2".parse().unwrap()).is_ok());
//! assert!(docker.check("172.18.0.2".parse().unwrap()).is_err());
//! # Ok::<(), posthook::NetworkParseError>(())
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::WebhookUrl;

/// The kind of range an IP address belongs to.
///
/// Serde writes the variant in snake case: `"public"`, `"loopback"`, `"private"`,
/// `"link_local"`, `"shared_nat"`, `"unspecified"`, `"multicast"`, `"reserved"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AddressClass {
    /// A globally reachable address: what a webhook normally points at.
    Public,
    /// This host: `127.0.0.0/8`, `::1`.
    Loopback,
    /// Private networks: `10/8`, `172.16/12`, `192.168/16`, IPv6 unique local `fc00::/7` and
    /// the deprecated site-local `fec0::/10`.
    Private,
    /// Link-local: `169.254/16` (cloud metadata lives here), `fe80::/10`.
    LinkLocal,
    /// Carrier-grade NAT shared space, `100.64/10`.
    SharedNat,
    /// The unspecified address, `0.0.0.0/8` and `::`.
    Unspecified,
    /// Multicast and broadcast: `224/4`, `255.255.255.255`, `ff00::/8`.
    Multicast,
    /// Every other range that is not globally reachable: documentation (`192.0.2/24`,
    /// `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`), benchmarking
    /// (`198.18/15`, `2001:2::/48`), reserved (`240/4`), protocol assignments (`192.0.0/24`,
    /// `2001::/23`), discard-only and dummy prefixes, SRv6 SIDs (`5f00::/16`), Teredo.
    Reserved,
}

impl AddressClass {
    /// Every class, in declaration order.
    pub const ALL: [AddressClass; 8] = [
        AddressClass::Public,
        AddressClass::Loopback,
        AddressClass::Private,
        AddressClass::LinkLocal,
        AddressClass::SharedNat,
        AddressClass::Unspecified,
        AddressClass::Multicast,
        AddressClass::Reserved,
    ];

    /// The class of `ip`: that of the most specific row of [`AddressClass::table`] holding
    /// it, or [`AddressClass::Public`] when no row does.
    ///
    /// IPv4 addresses mapped or translated into IPv6 (`::ffff:a.b.c.d`, `64:ff9b::a.b.c.d`)
    /// are classed as the IPv4 address they carry; a 6to4 address (`2002:aabb:ccdd::/48`) is
    /// classed as the IPv4 address it carries when that one is not public, since a relay
    /// would deliver there.
    pub fn of(ip: IpAddr) -> AddressClass {
        AddressClass::special_range(ip).map_or(AddressClass::Public, SpecialRange::class)
    }

    /// The row of [`AddressClass::table`] that decides the class of `ip` (for an IPv4 address
    /// carried in IPv6, see [`AddressClass::of`], an IPv4 row), or `None` for an address in
    /// no special-purpose range.
    pub fn special_range(ip: IpAddr) -> Option<&'static SpecialRange> {
        match ip {
            IpAddr::V4(v4) => most_specific(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                if let Some(v4) = carried_v4(v6) {
                    return most_specific(IpAddr::V4(v4));
                }
                if let Some(v4) = six_to_four(v6) {
                    let inner = most_specific(IpAddr::V4(v4));
                    if inner.is_some_and(|row| row.class != AddressClass::Public) {
                        return inner;
                    }
                }
                most_specific(IpAddr::V6(v6))
            }
        }
    }

    /// The special-purpose address table, IPv4 rows first. It follows the IANA IPv4 and IPv6
    /// Special-Purpose Address Registries: each row not "globally reachable" there is given
    /// the class that says why, each row that is (such as `192.0.0.9/32` inside
    /// `192.0.0.0/24`) is [`AddressClass::Public`]. Rows whose reachability the registries
    /// leave undefined (Teredo, the deprecated 6to4 relay anycast) are
    /// [`AddressClass::Reserved`], except 6to4 (`2002::/16`), judged by the address it
    /// carries. Multicast (`224.0.0.0/4`, `ff00::/8`, RFC 5771 and RFC 4291), the deprecated
    /// site-local `fec0::/10` and the IETF-reserved `::/8` come from the address space
    /// registries. IPv4-mapped (`::ffff:0:0/96`) and translated (`64:ff9b::/96`) addresses are
    /// not rows: they are judged by the IPv4 rows.
    pub const fn table() -> &'static [SpecialRange] {
        &SPECIAL_PURPOSE
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

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The IPv4 address an IPv4-mapped (`::ffff:0:0/96`) or NAT64 (`64:ff9b::/96`) address
/// carries in its last 32 bits.
fn carried_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = ip.to_bits();
    let prefix = bits >> 32;
    (prefix == 0xffff || prefix == 0x0064_ff9b_0000_0000_0000_0000)
        .then(|| Ipv4Addr::from_bits(bits as u32))
}

/// The IPv4 address a 6to4 address (`2002::/16`) carries in bits 16..48.
fn six_to_four(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = ip.to_bits();
    (bits >> 112 == 0x2002).then(|| Ipv4Addr::from_bits((bits >> 80) as u32))
}

fn most_specific(ip: IpAddr) -> Option<&'static SpecialRange> {
    // The rows of the address's family only, as (bits, mask, prefix length, row): a check
    // on every delivery's URL, and again in the transport, so it should cost little.
    let mut best: Option<(u8, usize)> = None;
    match ip {
        IpAddr::V4(ip) => {
            let bits = ip.to_bits();
            for &(net, mask, len, row) in &V4_ROWS {
                if bits & mask == net && best.is_none_or(|(b, _)| len > b) {
                    best = Some((len, row));
                }
            }
        }
        IpAddr::V6(ip) => {
            let bits = ip.to_bits();
            for &(net, mask, len, row) in &V6_ROWS {
                if bits & mask == net && best.is_none_or(|(b, _)| len > b) {
                    best = Some((len, row));
                }
            }
        }
    }
    best.map(|(_, row)| &SPECIAL_PURPOSE[row])
}

/// How many rows of the table are of each family.
const fn family_counts() -> (usize, usize) {
    let (mut v4, mut v6, mut i) = (0, 0, 0);
    while i < SPECIAL_PURPOSE.len() {
        match SPECIAL_PURPOSE[i].network.addr {
            IpAddr::V4(_) => v4 += 1,
            IpAddr::V6(_) => v6 += 1,
        }
        i += 1;
    }
    (v4, v6)
}

const FAMILY_COUNTS: (usize, usize) = family_counts();

/// The IPv4 rows: (network bits, mask, prefix length, index in the table).
static V4_ROWS: [(u32, u32, u8, usize); FAMILY_COUNTS.0] = {
    let mut rows = [(0, 0, 0, 0); FAMILY_COUNTS.0];
    let (mut i, mut n) = (0, 0);
    while i < SPECIAL_PURPOSE.len() {
        let network = SPECIAL_PURPOSE[i].network;
        if let IpAddr::V4(addr) = network.addr {
            let mask = mask_v4(network.len);
            rows[n] = (addr.to_bits() & mask, mask, network.len, i);
            n += 1;
        }
        i += 1;
    }
    rows
};

/// The IPv6 rows, as [`V4_ROWS`].
static V6_ROWS: [(u128, u128, u8, usize); FAMILY_COUNTS.1] = {
    let mut rows = [(0, 0, 0, 0); FAMILY_COUNTS.1];
    let (mut i, mut n) = (0, 0);
    while i < SPECIAL_PURPOSE.len() {
        let network = SPECIAL_PURPOSE[i].network;
        if let IpAddr::V6(addr) = network.addr {
            let mask = mask_v6(network.len);
            rows[n] = (addr.to_bits() & mask, mask, network.len, i);
            n += 1;
        }
        i += 1;
    }
    rows
};

/// One row of the special-purpose address table ([`AddressClass::table`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpecialRange {
    network: IpNetwork,
    class: AddressClass,
    name: &'static str,
    rfc: &'static str,
}

impl SpecialRange {
    /// The address block.
    pub const fn network(&self) -> IpNetwork {
        self.network
    }

    /// The class its addresses get.
    pub const fn class(&self) -> AddressClass {
        self.class
    }

    /// The block's name in the registry, e.g. `"Private-Use"`.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The RFC that defines the block, e.g. `"RFC 1918"`.
    pub const fn rfc(&self) -> &'static str {
        self.rfc
    }
}

const fn v4(
    [a, b, c, d]: [u8; 4],
    len: u8,
    class: AddressClass,
    name: &'static str,
    rfc: &'static str,
) -> SpecialRange {
    let network = IpNetwork {
        addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        len,
    };
    SpecialRange {
        network,
        class,
        name,
        rfc,
    }
}

const fn v6(
    segments: [u16; 8],
    len: u8,
    class: AddressClass,
    name: &'static str,
    rfc: &'static str,
) -> SpecialRange {
    let [a, b, c, d, e, f, g, h] = segments;
    let network = IpNetwork {
        addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
        len,
    };
    SpecialRange {
        network,
        class,
        name,
        rfc,
    }
}

use AddressClass::{
    LinkLocal, Loopback, Multicast, Private, Public, Reserved, SharedNat, Unspecified,
};

/// The table [`AddressClass::table`] returns; its order does not matter (the most specific
/// row wins), but it is kept in the registries' order, IPv4 first.
#[rustfmt::skip]
const SPECIAL_PURPOSE: [SpecialRange; 53] = [
    // IANA IPv4 Special-Purpose Address Registry.
    v4([0, 0, 0, 0], 8, Unspecified, "This network", "RFC 791"),
    v4([0, 0, 0, 0], 32, Unspecified, "This host on this network", "RFC 1122"),
    v4([10, 0, 0, 0], 8, Private, "Private-Use", "RFC 1918"),
    v4([100, 64, 0, 0], 10, SharedNat, "Shared Address Space", "RFC 6598"),
    v4([127, 0, 0, 0], 8, Loopback, "Loopback", "RFC 1122"),
    v4([169, 254, 0, 0], 16, LinkLocal, "Link Local", "RFC 3927"),
    v4([172, 16, 0, 0], 12, Private, "Private-Use", "RFC 1918"),
    v4([192, 0, 0, 0], 24, Reserved, "IETF Protocol Assignments", "RFC 6890"),
    v4([192, 0, 0, 0], 29, Reserved, "IPv4 Service Continuity Prefix", "RFC 7335"),
    v4([192, 0, 0, 8], 32, Reserved, "IPv4 dummy address", "RFC 7600"),
    v4([192, 0, 0, 9], 32, Public, "Port Control Protocol Anycast", "RFC 7723"),
    v4([192, 0, 0, 10], 32, Public, "Traversal Using Relays around NAT Anycast", "RFC 8155"),
    v4([192, 0, 0, 170], 32, Reserved, "NAT64/DNS64 Discovery", "RFC 8880"),
    v4([192, 0, 0, 171], 32, Reserved, "NAT64/DNS64 Discovery", "RFC 8880"),
    v4([192, 0, 2, 0], 24, Reserved, "Documentation (TEST-NET-1)", "RFC 5737"),
    v4([192, 31, 196, 0], 24, Public, "AS112-v4", "RFC 7535"),
    v4([192, 52, 193, 0], 24, Public, "AMT", "RFC 7450"),
    v4([192, 88, 99, 0], 24, Reserved, "Deprecated (6to4 Relay Anycast)", "RFC 7526"),
    v4([192, 88, 99, 2], 32, Reserved, "6a44-relay anycast address", "RFC 6751"),
    v4([192, 168, 0, 0], 16, Private, "Private-Use", "RFC 1918"),
    v4([192, 175, 48, 0], 24, Public, "Direct Delegation AS112 Service", "RFC 7534"),
    v4([198, 18, 0, 0], 15, Reserved, "Benchmarking", "RFC 2544"),
    v4([198, 51, 100, 0], 24, Reserved, "Documentation (TEST-NET-2)", "RFC 5737"),
    v4([203, 0, 113, 0], 24, Reserved, "Documentation (TEST-NET-3)", "RFC 5737"),
    // IANA IPv4 Multicast Address Space Registry.
    v4([224, 0, 0, 0], 4, Multicast, "Multicast", "RFC 5771"),
    v4([240, 0, 0, 0], 4, Reserved, "Reserved", "RFC 1112"),
    v4([255, 255, 255, 255], 32, Multicast, "Limited Broadcast", "RFC 919"),
    // IANA IPv6 Address Space: ::/8 is reserved by the IETF (it holds the deprecated
    // IPv4-compatible addresses, `::a.b.c.d`).
    v6([0, 0, 0, 0, 0, 0, 0, 0], 8, Reserved, "Reserved by IETF", "RFC 4291"),
    // IANA IPv6 Special-Purpose Address Registry.
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, Loopback, "Loopback Address", "RFC 4291"),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, Unspecified, "Unspecified Address", "RFC 4291"),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, Reserved, "IPv4-IPv6 Translat. (local use)", "RFC 8215"),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, Reserved, "Discard-Only Address Block", "RFC 6666"),
    v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64, Reserved, "Dummy IPv6 Prefix", "RFC 9780"),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, Reserved, "IETF Protocol Assignments", "RFC 2928"),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, Reserved, "TEREDO", "RFC 4380"),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128, Public, "Port Control Protocol Anycast", "RFC 7723"),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128, Public, "Traversal Using Relays around NAT Anycast", "RFC 8155"),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128, Public, "DNS-SD Service Registration Protocol Anycast", "RFC 9665"),
    v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, Reserved, "Benchmarking", "RFC 5180"),
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32, Public, "AMT", "RFC 7450"),
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48, Public, "AS112-v6", "RFC 7535"),
    v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28, Reserved, "Deprecated (previously ORCHID)", "RFC 4843"),
    v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, Public, "ORCHIDv2", "RFC 7343"),
    v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28, Public, "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374"),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, Reserved, "Documentation", "RFC 3849"),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, Public, "6to4", "RFC 3056"),
    v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48, Public, "Direct Delegation AS112 Service", "RFC 7534"),
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Reserved, "Documentation", "RFC 9637"),
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, Reserved, "Segment Routing (SRv6) SIDs", "RFC 9602"),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, Private, "Unique-Local", "RFC 4193"),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, LinkLocal, "Link-Local Unicast", "RFC 4291"),
    // IANA IPv6 Address Space: deprecated site-local, still a private network where used.
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, Private, "Site-Local (deprecated)", "RFC 3879"),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Multicast, "Multicast", "RFC 4291"),
];

// Every row is a network: a prefix no longer than its address, no bit set past it.
const _: () = {
    let mut i = 0;
    while i < SPECIAL_PURPOSE.len() {
        let network = SPECIAL_PURPOSE[i].network;
        let max = match network.addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        assert!(network.len <= max, "a row's prefix is too long");
        assert!(
            addr_eq(network.first(), network.addr),
            "a row has bits set past its prefix"
        );
        i += 1;
    }
};

/// An IPv4 or IPv6 network: an address prefix, written `a.b.c.d/n` or `x::y/n`.
///
/// The address must be the network's first one: bits past the prefix length must be zero,
/// so `10.0.0.1/8` is an error ([`NetworkParseError::HostBits`], which names the network
/// meant, `10.0.0.0/8`) rather than silently read as `10.0.0.0/8`. Serde writes and reads the
/// text form.
///
/// An IPv4 address and its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`) are the same address to
/// [`IpNetwork::contains`].
///
/// ```
/// use posthook::IpNetwork;
///
/// let vpn: IpNetwork = "10.8.0.0/24".parse()?;
/// assert!(vpn.contains("10.8.0.7".parse().unwrap()));
/// assert!(vpn.contains("::ffff:10.8.0.7".parse().unwrap()));
/// assert!(!vpn.contains("10.8.1.7".parse().unwrap()));
/// assert_eq!(vpn.to_string(), "10.8.0.0/24");
/// assert_eq!(
///     "10.8.0.1/24".parse::<IpNetwork>().unwrap_err().to_string(),
///     "network 10.8.0.1/24 has bits set past its prefix: write 10.8.0.0/24"
/// );
/// # Ok::<(), posthook::NetworkParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNetwork {
    addr: IpAddr,
    len: u8,
}

impl IpNetwork {
    /// The network of the `len`-bit prefix starting at `addr`: `len` is at most 32 for IPv4,
    /// 128 for IPv6, and `addr` has no bit set past it.
    pub const fn new(addr: IpAddr, len: u8) -> Result<IpNetwork, NetworkParseError> {
        let max: u32 = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if len as u32 > max {
            return Err(NetworkParseError::LengthTooLong {
                length: len as u32,
                max,
            });
        }
        let network = IpNetwork { addr, len };
        let first = network.first();
        if !addr_eq(first, addr) {
            return Err(NetworkParseError::HostBits {
                address: addr,
                network: IpNetwork { addr: first, len },
            });
        }
        Ok(network)
    }

    /// The network's first address.
    pub const fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub const fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is in
    /// an IPv4 network when `a.b.c.d` is, and an IPv4 address is in an IPv6 network when its
    /// mapped form is.
    pub const fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => self.contains_exact(IpAddr::V4(v4)),
                None => false,
            },
            (IpAddr::V6(_), IpAddr::V4(v4)) => self.contains_exact(IpAddr::V6(v4.to_ipv6_mapped())),
            _ => self.contains_exact(ip),
        }
    }

    /// Whether `ip`, of the same family, is in this network.
    const fn contains_exact(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_v4(self.len);
                ip.to_bits() & mask == net.to_bits()
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.len);
                ip.to_bits() & mask == net.to_bits()
            }
            _ => false,
        }
    }

    /// The address with every bit past the prefix cleared.
    const fn first(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from_bits(a.to_bits() & mask_v4(self.len))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from_bits(a.to_bits() & mask_v6(self.len))),
        }
    }
}

const fn addr_eq(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.to_bits() == b.to_bits(),
        (IpAddr::V6(a), IpAddr::V6(b)) => a.to_bits() == b.to_bits(),
        _ => false,
    }
}

const fn mask_v4(len: u8) -> u32 {
    match u32::MAX.checked_shl(32 - len as u32) {
        Some(mask) => mask,
        None => 0,
    }
}

const fn mask_v6(len: u8) -> u128 {
    match u128::MAX.checked_shl(128 - len as u32) {
        Some(mask) => mask,
        None => 0,
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpNetwork {
    type Err = NetworkParseError;

    fn from_str(text: &str) -> Result<IpNetwork, NetworkParseError> {
        if text.is_empty() {
            return Err(NetworkParseError::Empty);
        }
        let Some((addr, len)) = text.split_once('/') else {
            return Err(NetworkParseError::MissingLength(text.to_owned()));
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| NetworkParseError::InvalidAddress(text.to_owned()))?;
        if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NetworkParseError::InvalidLength(text.to_owned()));
        }
        let length: u32 = len
            .parse()
            .map_err(|_| NetworkParseError::InvalidLength(text.to_owned()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        match u8::try_from(length) {
            Ok(len) if length <= max => IpNetwork::new(addr, len),
            _ => Err(NetworkParseError::LengthTooLong { length, max }),
        }
    }
}

impl Serialize for IpNetwork {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNetwork {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<IpNetwork, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a text is not an [`IpNetwork`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NetworkParseError {
    /// The text is empty.
    #[error("empty network: expected an address, '/' and a prefix length, e.g. 10.0.0.0/8")]
    Empty,
    /// No `/` and prefix length.
    #[error("network {0:?} has no prefix length: expected e.g. 10.0.0.0/8")]
    MissingLength(String),
    /// The part before `/` is not an IPv4 or IPv6 address.
    #[error("network {0:?}: the part before '/' is not an IPv4 or IPv6 address")]
    InvalidAddress(String),
    /// The part after `/` is not a decimal number.
    #[error("network {0:?}: the prefix length is not a number")]
    InvalidLength(String),
    /// The prefix length is longer than the address (32 bits for IPv4, 128 for IPv6).
    #[error("prefix length /{length} is longer than the {max} bits of the address")]
    LengthTooLong {
        /// The length given.
        length: u32,
        /// The address's bits.
        max: u32,
    },
    /// The address has bits set past the prefix length.
    #[error(
        "network {address}/{} has bits set past its prefix: write {network}",
        network.prefix_len()
    )]
    HostBits {
        /// The address given.
        address: IpAddr,
        /// The network meant: the given prefix with those bits cleared.
        network: IpNetwork,
    },
}

/// Which addresses a delivery may reach: [`AddressClass`]es, and networks allowed whatever
/// their class.
///
/// [`AddressPolicy::public_only`] (the default) reaches public addresses only.
/// [`AddressPolicy::allow_all`] turns the guard off. For local development, allow this host
/// in one call: `AddressPolicy::public_only().allow(AddressClass::Loopback)`. For a receiver
/// on a private network (a Docker bridge, a VPN), allow that network only, not every private
/// address: `AddressPolicy::public_only().allow_network("172.17.0.0/16".parse()?)`.
///
/// An address is allowed when its class is allowed or when it is inside one of the allowed
/// networks ([`IpNetwork::contains`]: an IPv4-mapped IPv6 address matches the IPv4
/// networks; a NAT64 address, `64:ff9b::a.b.c.d`, only matches IPv6 networks, though its
/// class is that of `a.b.c.d`).
///
/// Serde writes `{"allow": [classes], "networks": ["a.b.c.d/n", ...]}` (see
/// [`AddressClass`] for the class names); reading, a missing `allow` means `["public"]`, a
/// missing `networks` none, and an unknown key is an error.
///
/// ```
/// use posthook::{AddressClass, AddressPolicy};
///
/// let policy: AddressPolicy =
///     serde_json::from_str(r#"{"allow": ["public", "loopback"], "networks": ["10.8.0.0/24"]}"#)?;
/// assert!(policy.allows(AddressClass::Loopback));
/// assert!(policy.check("10.8.0.5".parse().unwrap()).is_ok());
/// let public_only: AddressPolicy = serde_json::from_str("{}")?;
/// assert_eq!(public_only, AddressPolicy::public_only());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AddressPolicy {
    allowed: u32,
    /// Sorted, without repeats, so that equal policies compare equal.
    networks: Vec<IpNetwork>,
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
            networks: Vec::new(),
        }
    }

    /// Every address: no guard.
    pub const fn allow_all() -> AddressPolicy {
        let mut allowed = 0;
        let mut i = 0;
        while i < AddressClass::ALL.len() {
            allowed |= AddressClass::ALL[i].bit();
            i += 1;
        }
        AddressPolicy {
            allowed,
            networks: Vec::new(),
        }
    }

    /// This policy, also allowing `class`.
    #[must_use]
    pub const fn allow(mut self, class: AddressClass) -> AddressPolicy {
        self.allowed |= class.bit();
        self
    }

    /// This policy, also allowing every address in `network`, whatever its class.
    #[must_use]
    pub fn allow_network(mut self, network: IpNetwork) -> AddressPolicy {
        if let Err(at) = self.networks.binary_search(&network) {
            self.networks.insert(at, network);
        }
        self
    }

    /// Whether `class` may be reached.
    pub const fn allows(&self, class: AddressClass) -> bool {
        self.allowed & class.bit() != 0
    }

    /// The networks allowed whatever their class, in order.
    pub fn networks(&self) -> &[IpNetwork] {
        &self.networks
    }

    /// `Ok` when `ip` may be reached (its class is allowed, or it is in an allowed network);
    /// otherwise an error naming the address and its class.
    pub fn check(&self, ip: IpAddr) -> Result<(), BlockedAddress> {
        let class = AddressClass::of(ip);
        if self.allows(class) || self.networks.iter().any(|n| n.contains(ip)) {
            Ok(())
        } else {
            Err(BlockedAddress { ip, class })
        }
    }

    /// Checks what can be judged from the URL alone: a literal IP host (read as HTTP clients
    /// read it, so `http://2130706433/` is 127.0.0.1), and the names `localhost` and
    /// `*.localhost`, which always mean this host (RFC 6761) and are judged as `127.0.0.1`.
    /// Other names must be checked after resolving, in the transport.
    pub fn check_url(&self, url: &WebhookUrl) -> Result<(), BlockedAddress> {
        if let Some(ip) = url.ip() {
            return self.check(ip);
        }
        let host = url.host().trim_end_matches('.').as_bytes();
        let suffix = b".localhost";
        let is_localhost = host.eq_ignore_ascii_case(&suffix[1..])
            || (host.len() > suffix.len()
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix));
        if is_localhost {
            return self.check(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        Ok(())
    }
}

/// The serde shape of an [`AddressPolicy`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFields {
    #[serde(default = "public_only_classes")]
    allow: Vec<AddressClass>,
    #[serde(default)]
    networks: Vec<IpNetwork>,
}

fn public_only_classes() -> Vec<AddressClass> {
    vec![AddressClass::Public]
}

impl Serialize for AddressPolicy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PolicyFields {
            allow: AddressClass::ALL
                .into_iter()
                .filter(|&class| self.allows(class))
                .collect(),
            networks: self.networks.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AddressPolicy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<AddressPolicy, D::Error> {
        let fields = PolicyFields::deserialize(deserializer)?;
        let mut policy = AddressPolicy {
            allowed: 0,
            networks: Vec::new(),
        };
        for class in fields.allow {
            policy = policy.allow(class);
        }
        for network in fields.networks {
            policy = policy.allow_network(network);
        }
        Ok(policy)
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
