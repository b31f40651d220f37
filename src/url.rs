//! Webhook URLs and the allowed character set.
//!
//! ActiveCampaign accepts in a webhook URL the ASCII letters and digits, the RFC 1738 "safe" and
//! "extra" characters `$-_.+!*'(),`, the reserved characters `;/?:@=&` in their reserved roles,
//! and `%HH` escapes. Everything else (space, control characters, `"<>{}|\^~[]#`, the backtick,
//! any non-ASCII character, a broken escape) is rejected, and [`UrlError`] says which character
//! and at which byte offset.
//!
//! The scheme is `http` or `https` (either case), a host is required, the port is optional
//! (1–65535). Loopback and private hosts are valid URLs: refusing to deliver to them is the
//! delivery side's job, not the validator's.
//!
//! ```
//! use posthook::{UrlErrorKind, WebhookUrl};
//!
//! let url = WebhookUrl::parse("https://hooks.zapier.com/hooks/catch/123/abc/?key=s3cr%2Bt").unwrap();
//! assert_eq!(url.host(), "hooks.zapier.com");
//! assert!(url.is_https());
//!
//! let err = WebhookUrl::parse("https://example.com/a b").unwrap_err();
//! assert_eq!(err.offset(), 21);
//! assert_eq!(err.character(), Some(' '));
//! assert_eq!(err.to_string(), "invalid character ' ' at byte 21");
//! assert!(matches!(err.kind(), UrlErrorKind::InvalidCharacter(' ')));
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Byte classes of the allowed set.
const ALNUM: u8 = 1;
/// `$-_.+!*'(),`: RFC 1738 "safe" and "extra".
const SAFE: u8 = 2;
/// `;/?:@=&`: reserved, in their roles.
const RESERVED: u8 = 4;
/// `%`: starts an escape.
const PERCENT: u8 = 8;

/// The class of every byte; 0 means "not allowed anywhere".
static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = if c.is_ascii_alphanumeric() {
            ALNUM
        } else {
            match c {
                b'$' | b'-' | b'_' | b'.' | b'+' | b'!' | b'*' | b'\'' | b'(' | b')' | b',' => SAFE,
                b';' | b'/' | b'?' | b':' | b'@' | b'=' | b'&' => RESERVED,
                b'%' => PERCENT,
                _ => 0,
            }
        };
        b += 1;
    }
    table
};

/// What is wrong with a webhook URL. The offset is in [`UrlError::offset`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlErrorKind {
    /// The input is empty.
    Empty,
    /// The input does not start with `scheme://`.
    MissingScheme,
    /// The scheme is not `http` or `https`.
    UnsupportedScheme(String),
    /// A character outside the allowed set.
    InvalidCharacter(char),
    /// A `%` not followed by two hex digits; the offset is that of the `%`.
    InvalidEscape,
    /// Nothing between `://` and the path.
    MissingHost,
    /// A character that is allowed in a URL but not in a host name.
    InvalidHostCharacter(char),
    /// The host is not a valid domain or IPv4 address.
    InvalidHost,
    /// The port is empty, not a number, `0` or above 65535.
    InvalidPort,
    /// The policy requires `https` and the scheme is `http`.
    InsecureScheme,
    /// The policy allows only port 443 and the URL names another.
    PortNotAllowed(u16),
}

/// Why a string is not a valid webhook URL, and where.
///
/// The message names the problem and the byte offset, e.g. `invalid character ' ' at byte 21`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError {
    kind: UrlErrorKind,
    offset: usize,
}

impl UrlError {
    fn new(kind: UrlErrorKind, offset: usize) -> UrlError {
        UrlError { kind, offset }
    }

    /// What is wrong.
    pub fn kind(&self) -> &UrlErrorKind {
        &self.kind
    }

    /// The byte offset in the input where the problem is (for a broken escape, its `%`).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The offending character, where one character is at fault.
    pub fn character(&self) -> Option<char> {
        match self.kind {
            UrlErrorKind::InvalidCharacter(c) | UrlErrorKind::InvalidHostCharacter(c) => Some(c),
            UrlErrorKind::InvalidEscape => Some('%'),
            _ => None,
        }
    }
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match &self.kind {
            UrlErrorKind::Empty => write!(f, "empty URL at byte {at}"),
            UrlErrorKind::MissingScheme => {
                write!(
                    f,
                    "missing scheme at byte {at}: the URL must start with http:// or https://"
                )
            }
            UrlErrorKind::UnsupportedScheme(s) => {
                write!(
                    f,
                    "unsupported scheme {s:?} at byte {at}: only http and https are allowed"
                )
            }
            UrlErrorKind::InvalidCharacter(c) => write!(f, "invalid character {c:?} at byte {at}"),
            UrlErrorKind::InvalidEscape => {
                write!(
                    f,
                    "invalid percent-escape at byte {at}: '%' must be followed by two hex digits"
                )
            }
            UrlErrorKind::MissingHost => write!(f, "missing host at byte {at}"),
            UrlErrorKind::InvalidHostCharacter(c) => {
                write!(f, "invalid character {c:?} in host at byte {at}")
            }
            UrlErrorKind::InvalidHost => write!(f, "invalid host at byte {at}"),
            UrlErrorKind::InvalidPort => {
                write!(
                    f,
                    "invalid port at byte {at}: expected a number from 1 to 65535"
                )
            }
            UrlErrorKind::InsecureScheme => {
                write!(f, "insecure scheme at byte {at}: the policy requires https")
            }
            UrlErrorKind::PortNotAllowed(p) => {
                write!(
                    f,
                    "port {p} at byte {at} is not allowed: the policy requires port 443"
                )
            }
        }
    }
}

impl std::error::Error for UrlError {}

/// Extra rules a URL must follow beyond the allowed character set.
///
/// The default accepts `http` and `https` on any port. [`UrlPolicy::activecampaign`] is
/// ActiveCampaign's own rule: `https` only, on port 443.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    https_only_443: bool,
}

impl UrlPolicy {
    /// `http` and `https` on any port (the default).
    pub const fn permissive() -> UrlPolicy {
        UrlPolicy {
            https_only_443: false,
        }
    }

    /// ActiveCampaign's rule: `https` only, and only port 443.
    pub const fn activecampaign() -> UrlPolicy {
        UrlPolicy {
            https_only_443: true,
        }
    }

    /// Whether this policy requires `https` on port 443.
    pub const fn requires_https_443(self) -> bool {
        self.https_only_443
    }
}

/// A validated webhook URL: `http` or `https`, a host, and only allowed characters.
///
/// It keeps the text exactly as given ([`WebhookUrl::as_str`]); serde writes that string and
/// validates it on the way in. Equality and hashing are by that text.
///
/// **Cheap to clone.** The URL is shared behind an [`Arc`]: a clone (every delivery plan
/// takes one per webhook) copies a pointer. The WHATWG parse that reqwest and the `url`
/// crate work with ([`as_url`](WebhookUrl::as_url)) is made on first use and kept with it,
/// so a webhook that receives a million events is parsed for sending once, not a million
/// times; a URL that never sends pays nothing for it.
#[derive(Clone)]
pub struct WebhookUrl {
    inner: Arc<Inner>,
}

struct Inner {
    text: Box<str>,
    https: bool,
    host_start: u32,
    host_end: u32,
    port: Option<u16>,
    ip: Option<IpAddr>,
    /// The WHATWG parse, made on first use.
    url: OnceLock<Option<Box<url::Url>>>,
}

impl PartialEq for WebhookUrl {
    fn eq(&self, other: &WebhookUrl) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.as_str() == other.as_str()
    }
}

impl Eq for WebhookUrl {}

impl Hash for WebhookUrl {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl WebhookUrl {
    /// Validates `input` with the default (permissive) policy.
    pub fn parse(input: &str) -> Result<WebhookUrl, UrlError> {
        WebhookUrl::parse_with(input, UrlPolicy::default())
    }

    /// Validates `input` with `policy`.
    pub fn parse_with(input: &str, policy: UrlPolicy) -> Result<WebhookUrl, UrlError> {
        if input.is_empty() {
            return Err(UrlError::new(UrlErrorKind::Empty, 0));
        }
        check_characters(input)?;
        let bytes = input.as_bytes();

        // Scheme: `http` or `https`, then `://`.
        let missing = || UrlError::new(UrlErrorKind::MissingScheme, 0);
        let colon = input.find(':').ok_or_else(missing)?;
        let (scheme, rest) = (&input[..colon], &input[colon + 1..]);
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else if is_scheme(scheme) && !rest.starts_with(|c: char| c.is_ascii_digit()) {
            // `mailto:`, `ftp://`, `javascript:`; but `example.com:8080/` lacks a scheme.
            let kind = UrlErrorKind::UnsupportedScheme(scheme.to_owned());
            return Err(UrlError::new(kind, 0));
        } else {
            return Err(missing());
        };
        if !rest.starts_with("//") {
            return Err(missing());
        }

        // Authority: up to the first '/' or '?'.
        let auth_start = colon + 3;
        let auth_end = bytes[auth_start..]
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .map_or(bytes.len(), |i| auth_start + i);
        let authority = &input[auth_start..auth_end];
        let host_start = match authority.rfind('@') {
            Some(at) => {
                if let Some(first) = authority[..at].find('@') {
                    let offset = auth_start + first;
                    return Err(UrlError::new(UrlErrorKind::InvalidCharacter('@'), offset));
                }
                auth_start + at + 1
            }
            None => auth_start,
        };
        let host_port = &input[host_start..auth_end];
        let (host_end, port_text) = match host_port.find(':') {
            Some(i) => (
                host_start + i,
                Some((host_start + i + 1, &host_port[i + 1..])),
            ),
            None => (auth_end, None),
        };
        if host_end == host_start {
            return Err(UrlError::new(UrlErrorKind::MissingHost, host_start));
        }
        for (i, c) in input[host_start..host_end].char_indices() {
            if !(c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_') {
                let kind = UrlErrorKind::InvalidHostCharacter(c);
                return Err(UrlError::new(kind, host_start + i));
            }
        }
        let port = match port_text {
            None => None,
            Some((at, text)) => {
                Some(parse_port(text).ok_or(UrlError::new(UrlErrorKind::InvalidPort, at))?)
            }
        };

        // The host as HTTP clients will read it (WHATWG rules: "2130706433" is 127.0.0.1).
        let parsed = url::Url::parse(input)
            .map_err(|_| UrlError::new(UrlErrorKind::InvalidHost, host_start))?;
        let ip = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(UrlError::new(UrlErrorKind::MissingHost, host_start)),
        };

        if policy.https_only_443 {
            if !https {
                return Err(UrlError::new(UrlErrorKind::InsecureScheme, 0));
            }
            if let (Some(p), Some((at, _))) = (port, port_text) {
                if p != 443 {
                    return Err(UrlError::new(UrlErrorKind::PortNotAllowed(p), at));
                }
            }
        }

        Ok(WebhookUrl {
            inner: Arc::new(Inner {
                text: input.into(),
                https,
                host_start: host_start as u32,
                host_end: host_end as u32,
                port,
                ip,
                url: OnceLock::new(),
            }),
        })
    }

    /// The URL exactly as given.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.inner.text
    }

    /// The URL as the [`url`] crate (and so reqwest) reads it, by the WHATWG rules: parsed
    /// on first use and kept with the URL (clones share it). Its text may differ from
    /// [`as_str`](WebhookUrl::as_str): it is normalized (a lower-case host, a `/` path
    /// when there was none, `2130706433` read as `127.0.0.1`). Always `Some` for a URL that
    /// [`parse`](WebhookUrl::parse) accepted (it parsed the same text).
    pub fn as_url(&self) -> Option<&url::Url> {
        // Validation parsed this same text already, so this is `Some`.
        self.inner
            .url
            .get_or_init(|| url::Url::parse(self.as_str()).ok().map(Box::new))
            .as_deref()
    }

    /// Whether `uri` is this URL: the same scheme (in any case), authority, path and query,
    /// as text — what `http::Uri::try_from(url.as_str())` gives (a URL written without a
    /// path is the path `/`). A sender handed both can then use
    /// [`as_url`](WebhookUrl::as_url) instead of parsing the URI again.
    pub fn is_uri_of(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return false;
        };
        let path = uri.path_and_query().map_or("", |p| p.as_str());
        // Only a path proper counts: were a URI put together from an authority `a` and a
        // path `.b/`, its text would read as another host (`http` 1 refuses such a path
        // today; this does not rely on it).
        if !(path.is_empty() || path.starts_with('/') || path.starts_with('?')) {
            return false;
        }
        let text = self.as_str().as_bytes();
        let (scheme, authority, path) = (
            scheme.as_bytes(),
            authority.as_str().as_bytes(),
            path.as_bytes(),
        );
        let (s, a) = (scheme.len(), authority.len());
        if text.len() < s + 3 + a {
            return false;
        }
        // No path written is the path `/` (what `http::Uri` and the `url` crate make of it).
        let rest = &text[s + 3 + a..];
        text[..s].eq_ignore_ascii_case(scheme)
            && &text[s..s + 3] == b"://"
            && &text[s + 3..s + 3 + a] == authority
            && (rest == path || (rest.is_empty() && path == b"/"))
    }

    /// Whether the scheme is `https`.
    #[inline]
    pub fn is_https(&self) -> bool {
        self.inner.https
    }

    /// The scheme, lower-case: `"http"` or `"https"`.
    #[inline]
    pub fn scheme(&self) -> &'static str {
        if self.inner.https { "https" } else { "http" }
    }

    /// The host as written (domain name or IPv4 address).
    #[inline]
    pub fn host(&self) -> &str {
        let inner = &*self.inner;
        &inner.text[inner.host_start as usize..inner.host_end as usize]
    }

    /// The host as an IP address, when it is one, read the way HTTP clients read it
    /// (`http://2130706433/` is `127.0.0.1`).
    #[inline]
    pub fn ip(&self) -> Option<IpAddr> {
        self.inner.ip
    }

    /// The port written in the URL, if any.
    #[inline]
    pub fn port(&self) -> Option<u16> {
        self.inner.port
    }

    /// The port written in the URL, or the scheme's default (80 or 443).
    #[inline]
    pub fn port_or_default(&self) -> u16 {
        let inner = &*self.inner;
        inner.port.unwrap_or(if inner.https { 443 } else { 80 })
    }

    /// Whether the URL satisfies `policy`.
    pub fn satisfies(&self, policy: UrlPolicy) -> bool {
        let inner = &*self.inner;
        !policy.https_only_443 || (inner.https && inner.port.is_none_or(|p| p == 443))
    }
}

/// Checks every byte against the allowed set and every `%` for two hex digits.
fn check_characters(input: &str) -> Result<(), UrlError> {
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match CLASS[bytes[i] as usize] {
            0 => {
                let c = input[i..]
                    .chars()
                    .next()
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                return Err(UrlError::new(UrlErrorKind::InvalidCharacter(c), i));
            }
            PERCENT => {
                let ok = bytes.len() > i + 2
                    && bytes[i + 1].is_ascii_hexdigit()
                    && bytes[i + 2].is_ascii_hexdigit();
                if !ok {
                    return Err(UrlError::new(UrlErrorKind::InvalidEscape, i));
                }
                i += 3;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// RFC 3986 scheme syntax: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|&p| p != 0)
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WebhookUrl").field(&self.as_str()).finish()
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for WebhookUrl {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for WebhookUrl {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<WebhookUrl> for str {
    fn eq(&self, other: &WebhookUrl) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<WebhookUrl> for &str {
    fn eq(&self, other: &WebhookUrl) -> bool {
        *self == other.as_str()
    }
}

impl AsRef<str> for WebhookUrl {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl FromStr for WebhookUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WebhookUrl::parse(s)
    }
}

impl TryFrom<&str> for WebhookUrl {
    type Error = UrlError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        WebhookUrl::parse(s)
    }
}

impl Serialize for WebhookUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WebhookUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        WebhookUrl::parse(&s).map_err(serde::de::Error::custom)
    }
}
