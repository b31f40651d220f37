//! Standard Webhooks signatures (HMAC-SHA256), behind the `signing` feature.
//!
//! ActiveCampaign signs nothing: a receiver can only trust a secret in the URL. posthook can
//! sign every delivery the way the [Standard Webhooks] specification says, so that receivers
//! can use any of its libraries to verify:
//!
//! - the secret is 24 to 64 random bytes ([`SigningSecret::generate`] makes one), shown to
//!   users as `whsec_` + base64 (read with or without its `=` padding);
//! - the signed content is `{webhook-id}.{webhook-timestamp}.{body}`;
//! - three headers carry it: `webhook-id` (the same across retries, an idempotency key;
//!   visible ASCII other than `.` and `,`),
//!   `webhook-timestamp` (Unix seconds of the attempt) and `webhook-signature`
//!   (`v1,` + base64 of the HMAC; several, space-separated, while a secret is rotated).
//!
//! Signing and verifying are pure: the time comes in as an argument.
//!
//! ```
//! use posthook::sign::{SigningSecret, SignatureHeaders, verify};
//!
//! // The specification's own example.
//! let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//! let body = br#"{"test": 2432232314}"#;
//! let headers = SignatureHeaders::sign(&[&secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body)?;
//! assert_eq!(headers.signature(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//!
//! let mut map = http::HeaderMap::new();
//! headers.apply(&mut map);
//! verify(&[&secret], &map, body, 1_614_265_400, 300)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, STANDARD_PAD_INDIFFERENT};
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use thiserror::Error;

/// The `webhook-id` header.
pub const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
/// The `webhook-timestamp` header.
pub const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
/// The `webhook-signature` header.
pub const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");

const PREFIX: &str = "whsec_";

/// What went wrong signing or verifying.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SignError {
    /// The secret is not `whsec_` + base64, or its key is not 24 to 64 bytes.
    #[error("invalid signing secret: {0}")]
    InvalidSecret(&'static str),
    /// The message id is empty or has a character other than visible ASCII (`!` to `~`), or
    /// a `.` or `,`.
    #[error(
        "invalid webhook id {0:?}: it must be visible ASCII characters ('!' to '~') other than '.' and ','"
    )]
    InvalidId(String),
    /// The operating system gave no random bytes for [`SigningSecret::generate`].
    #[error("the operating system's random number generator failed")]
    Randomness,
    /// No secret was given.
    #[error("no signing secret given")]
    NoSecret,
    /// A header the signature needs is absent or not text.
    #[error("missing or unreadable header `{0}`")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer.
    #[error("invalid webhook-timestamp {0:?}")]
    InvalidTimestamp(String),
    /// The timestamp is further from `now` than the tolerance (a replay or a skewed clock).
    #[error("webhook-timestamp {timestamp} is {distance} s from now: more than {tolerance} s")]
    OutsideTolerance {
        /// The received timestamp.
        timestamp: i64,
        /// How far it is from now, in seconds.
        distance: u64,
        /// The tolerance, in seconds.
        tolerance: u64,
    },
    /// No `v1` signature in the header matches any secret.
    #[error("no signature matches")]
    NoMatch,
}

/// An HMAC-SHA256 signing secret. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

impl SigningSecret {
    /// A secret from raw key bytes (24 to 64 of them: at least 192 bits, as the specification
    /// asks).
    pub fn from_bytes(key: &[u8]) -> Result<SigningSecret, SignError> {
        if !(24..=64).contains(&key.len()) {
            return Err(SignError::InvalidSecret("the key must be 24 to 64 bytes"));
        }
        Ok(SigningSecret { key: key.to_vec() })
    }

    /// A fresh 32-byte secret from the operating system's random number generator (through
    /// the `getrandom` crate). Show it to the user with [`SigningSecret::to_whsec`] and
    /// store that text: [`SigningSecret::parse`] reads it back.
    ///
    /// ```
    /// use posthook::sign::SigningSecret;
    ///
    /// let secret = SigningSecret::generate()?;
    /// let shown = secret.to_whsec();
    /// assert!(shown.starts_with("whsec_"));
    /// assert_eq!(SigningSecret::parse(&shown)?, secret);
    /// # Ok::<(), posthook::sign::SignError>(())
    /// ```
    pub fn generate() -> Result<SigningSecret, SignError> {
        let mut key = vec![0; 32];
        getrandom::fill(&mut key).map_err(|_| SignError::Randomness)?;
        Ok(SigningSecret { key })
    }

    /// Reads `whsec_` + base64 (the prefix may be left out, and so may the base64 `=`
    /// padding, as the Standard Webhooks libraries allow).
    pub fn parse(text: &str) -> Result<SigningSecret, SignError> {
        let encoded = text.strip_prefix(PREFIX).unwrap_or(text);
        let key = STANDARD_PAD_INDIFFERENT
            .decode(encoded)
            .map_err(|_| SignError::InvalidSecret("not base64"))?;
        SigningSecret::from_bytes(&key)
    }

    /// The secret as users see it: `whsec_` + base64.
    pub fn to_whsec(&self) -> String {
        format!("{PREFIX}{}", BASE64.encode(&self.key))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length; the constructor cannot fail for it.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningSecret({} bytes, redacted)", self.key.len())
    }
}

/// Signing secrets, newest first, each with the time it stops signing if it does: a
/// webhook's or a dispatcher's. Shared: a clone (one per planned delivery of a webhook with
/// secrets) copies a pointer. `Debug` shows how many, never one.
#[derive(Clone, PartialEq, Eq, Default)]
pub(crate) struct Secrets(Option<Arc<Keys>>);

/// The secrets of a non-empty [`Secrets`].
#[derive(Clone, PartialEq, Eq, Default)]
struct Keys {
    keys: Vec<SigningSecret>,
    /// Empty while no secret has an end (most often); else one per key.
    until: Vec<Option<SystemTime>>,
}

/// The secrets of whatever has none.
pub(crate) static NO_SECRETS: Secrets = Secrets(None);

impl Secrets {
    /// How many secrets, expired ones included.
    pub(crate) fn len(&self) -> usize {
        self.keys().len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Every secret, newest first, expired ones included.
    pub(crate) fn keys(&self) -> &[SigningSecret] {
        self.0.as_deref().map_or(&[], |k| k.keys.as_slice())
    }

    fn ends(&self) -> &[Option<SystemTime>] {
        self.0.as_deref().map_or(&[], |k| k.until.as_slice())
    }

    /// Each secret with the time it stops signing (`None`: it does not).
    pub(crate) fn with_expiry(
        &self,
    ) -> impl ExactSizeIterator<Item = (&SigningSecret, Option<SystemTime>)> + '_ {
        let ends = self.ends();
        self.keys()
            .iter()
            .enumerate()
            .map(move |(i, key)| (key, ends.get(i).copied().flatten()))
    }

    /// The secrets that sign at `now`: those without an end, and those whose end is later.
    pub(crate) fn at(&self, now: SystemTime) -> impl Iterator<Item = &SigningSecret> + '_ {
        self.with_expiry()
            .filter(move |&(_, until)| signs_at(until, now))
            .map(|(key, _)| key)
    }

    fn keys_mut(&mut self) -> &mut Keys {
        Arc::make_mut(self.0.get_or_insert_with(Arc::default))
    }

    /// Adds an older secret (after the others), signing until `until` if given.
    pub(crate) fn push(&mut self, key: SigningSecret, until: Option<SystemTime>) {
        let keys = self.keys_mut();
        if until.is_some() || !keys.until.is_empty() {
            keys.until.resize(keys.keys.len(), None);
            keys.until.push(until);
        }
        keys.keys.push(key);
    }

    /// Makes `key` the newest, without an end; every other one stops at `keep_until`, or
    /// earlier if it was to stop earlier already.
    pub(crate) fn rotate(&mut self, key: SigningSecret, keep_until: SystemTime) {
        let keys = self.keys_mut();
        keys.until.resize(keys.keys.len(), None);
        for end in &mut keys.until {
            *end = Some(end.map_or(keep_until, |end| end.min(keep_until)));
        }
        keys.until.insert(0, None);
        keys.keys.insert(0, key);
    }

    /// Drops the secrets that no longer sign at `now`; returns how many.
    pub(crate) fn retire_expired(&mut self, now: SystemTime) -> usize {
        let expired = self
            .ends()
            .iter()
            .filter(|&&end| !signs_at(end, now))
            .count();
        if expired == 0 {
            return 0;
        }
        let keys = self.keys_mut();
        let mut ends = keys.until.iter();
        keys.keys
            .retain(|_| ends.next().is_none_or(|&end| signs_at(end, now)));
        keys.until.retain(|&end| signs_at(end, now));
        if keys.until.iter().all(Option::is_none) {
            keys.until = Vec::new();
        }
        if keys.keys.is_empty() {
            self.0 = None;
        }
        expired
    }
}

/// Whether a secret that stops at `until` still signs at `now`.
fn signs_at(until: Option<SystemTime>, now: SystemTime) -> bool {
    until.is_none_or(|until| now < until)
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} secrets, redacted", self.len())
    }
}

/// The three headers of a signed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    id: HeaderValue,
    timestamp: i64,
    signature: HeaderValue,
}

impl SignatureHeaders {
    /// Signs `body` for the delivery `id` at `timestamp` (Unix seconds of this attempt) with
    /// each secret (the newest first, an old one beside it while rotating).
    ///
    /// `id` must be one or more visible ASCII characters (`!` to `~`) other than `.` (it
    /// separates the signed parts) and `,` (it separates repeated header values): what every
    /// receiver reads back unchanged from the `webhook-id` header. Anything else is
    /// [`SignError::InvalidId`], so that whatever `sign` accepts, [`verify`] accepts back.
    pub fn sign(
        secrets: &[&SigningSecret],
        id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> Result<SignatureHeaders, SignError> {
        if secrets.is_empty() {
            return Err(SignError::NoSecret);
        }
        let invalid = || SignError::InvalidId(id.to_owned());
        let allowed = |b: u8| b.is_ascii_graphic() && b != b'.' && b != b',';
        if id.is_empty() || !id.bytes().all(allowed) {
            return Err(invalid());
        }
        let id_value = HeaderValue::from_str(id).map_err(|_| invalid())?;
        let mut signature = String::new();
        for secret in secrets {
            if !signature.is_empty() {
                signature.push(' ');
            }
            signature.push_str("v1,");
            let tag = secret.mac(id, timestamp, body).finalize().into_bytes();
            BASE64.encode_string(tag, &mut signature);
        }
        // Base64, `v1,` and spaces are all header-safe.
        let signature = HeaderValue::from_str(&signature).map_err(|_| invalid())?;
        Ok(SignatureHeaders {
            id: id_value,
            timestamp,
            signature,
        })
    }

    /// The `webhook-signature` value.
    pub fn signature(&self) -> &str {
        self.signature.to_str().unwrap_or_default()
    }

    /// The `webhook-timestamp` value.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Sets the three headers on `headers`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(WEBHOOK_ID, self.id.clone());
        headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(self.timestamp));
        headers.insert(WEBHOOK_SIGNATURE, self.signature.clone());
    }
}

/// Verifies a received delivery: the timestamp is within `tolerance_secs` of `now` (Unix
/// seconds) and one `v1` signature of the header matches one of `secrets`, compared in
/// constant time.
pub fn verify(
    secrets: &[&SigningSecret],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<(), SignError> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(SignError::MissingHeader(name))
    };
    let id = header("webhook-id")?;
    let text = header("webhook-timestamp")?;
    let timestamp: i64 = text
        .parse()
        .map_err(|_| SignError::InvalidTimestamp(text.to_owned()))?;
    let distance = now.abs_diff(timestamp);
    if distance > tolerance_secs {
        return Err(SignError::OutsideTolerance {
            timestamp,
            distance,
            tolerance: tolerance_secs,
        });
    }
    let signatures = header("webhook-signature")?;
    for candidate in signatures.split(' ') {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(tag) = BASE64.decode(encoded) else {
            continue;
        };
        for secret in secrets {
            if secret.mac(id, timestamp, body).verify_slice(&tag).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignError::NoMatch)
}
