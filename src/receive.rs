//! The receiving side in one call: check a delivery's signature, then decode its body.
//!
//! An application that receives posthook (or ActiveCampaign) webhooks hands a [`Receiver`]
//! the request's headers, its raw body and the current time, and gets back the decoded
//! [`Event`] or [`AutomationPayload`] with the delivery id, or one [`ReceiveError`] that says
//! which step failed. Like the rest of the core it is pure: the time is an argument.
//!
//! The steps, in order:
//!
//! 1. the content type, when [`Receiver::require_form_content_type`] asks for it;
//! 2. with feature `signing` and at least one `Receiver::secret`, the [Standard Webhooks]
//!    signature: the three `webhook-*` headers present, the timestamp within
//!    [`Receiver::tolerance`] of now (5 minutes by default), a signature made with one of the
//!    secrets (give the new and the old one while rotating). An unsigned request then fails
//!    with [`ReceiveError::MissingSignature`]. A receiver without secrets verifies nothing;
//! 3. the delivery id: the `x-posthook-delivery` header ([`DELIVERY_ID_HEADER`]), else
//!    `webhook-id`; posthook sends the same id across the retries of a delivery, so a receiver
//!    can drop repeats;
//! 4. the body: an event (it has `type`), an automation-step body (no `type`, a `seriesid`),
//!    or the body of [`Dispatcher::probe`](crate::Dispatcher::probe) ([`PROBE_BODY`]).
//!
//! ```
//! # #[cfg(feature = "signing")] {
//! use std::time::{Duration, SystemTime};
//! use posthook::receive::{ReceiveError, ReceivedBody, Receiver};
//! use posthook::sign::{SignatureHeaders, SigningSecret};
//! use posthook::{Event, EventKind};
//!
//! let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//!
//! // The sender's side (a posthook Dispatcher with this signing secret does the same).
//! let event = Event::sample(EventKind::Subscribe);
//! let body = event.encode();
//! let sent = 1_700_000_000;
//! let mut headers = http::HeaderMap::new();
//! SignatureHeaders::sign(&[&secret], "msg_1", sent, &body)?.apply(&mut headers);
//!
//! // The receiver's side: headers, raw body, and the time now.
//! let receiver = Receiver::new().secret(secret);
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_003);
//! let received = receiver.receive(&headers, &body, now)?;
//! assert_eq!(received.body, ReceivedBody::Event(event));
//! assert_eq!(received.delivery_id.as_deref(), Some("msg_1"));
//! assert!(received.verified);
//!
//! // A changed body, or a replay an hour later, is refused.
//! let err = receiver.receive(&headers, b"type=subscribe", now).unwrap_err();
//! assert!(matches!(err, ReceiveError::SignatureMismatch));
//! let later = now + Duration::from_secs(3600);
//! let err = receiver.receive(&headers, &body, later).unwrap_err();
//! assert!(matches!(err, ReceiveError::OutsideTolerance { .. }), "{err}");
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Without secrets (or without the `signing` feature) a receiver only decodes:
//!
//! ```
//! use std::time::SystemTime;
//! use posthook::receive::{ReceivedBody, Receiver};
//!
//! let body = b"contact%5Bemail%5D=a%40example.com&seriesid=12";
//! let received = Receiver::new().receive(&http::HeaderMap::new(), body, SystemTime::now())?;
//! let ReceivedBody::Automation(step) = received.body else { panic!() };
//! assert_eq!(step.series_id(), "12");
//! assert_eq!(step.contact().email(), Some("a@example.com"));
//! assert!(!received.verified);
//! # Ok::<(), posthook::receive::ReceiveError>(())
//! ```
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::CONTENT_TYPE;
use thiserror::Error;

#[cfg(feature = "signing")]
use crate::sign::{SignError, SigningSecret};
use crate::{AutomationPayload, DELIVERY_ID_HEADER, DecodeError, Event, FormLimits, PROBE_BODY};

const FORM: &str = "application/x-www-form-urlencoded";

/// Checks and decodes received deliveries; see the [module](self) docs.
///
/// Built once (it holds the secrets) and used for every request; `Debug` does not show the
/// secrets.
#[derive(Debug, Clone)]
pub struct Receiver {
    #[cfg(feature = "signing")]
    secrets: Vec<SigningSecret>,
    tolerance: Duration,
    require_form: bool,
    limits: FormLimits,
}

impl Default for Receiver {
    fn default() -> Self {
        Receiver::new()
    }
}

impl Receiver {
    /// A receiver with no secret (it verifies nothing), a 5-minute tolerance, no content-type
    /// check and the default [`FormLimits`].
    pub fn new() -> Receiver {
        Receiver {
            #[cfg(feature = "signing")]
            secrets: Vec::new(),
            tolerance: Duration::from_secs(300),
            require_form: false,
            limits: FormLimits::default(),
        }
    }

    /// Also accepts signatures made with `secret`. With one secret or more, every request
    /// must be signed with one of them. While rotating, give the new secret and the old one.
    #[cfg(feature = "signing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signing")))]
    #[must_use]
    pub fn secret(mut self, secret: SigningSecret) -> Receiver {
        self.secrets.push(secret);
        self
    }

    /// How far the `webhook-timestamp` may be from now, either way, in whole seconds (5
    /// minutes by default): an older request is refused as a possible replay.
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Receiver {
        self.tolerance = tolerance;
        self
    }

    /// Whether to refuse a request whose `Content-Type` is not
    /// `application/x-www-form-urlencoded` (parameters such as `; charset=utf-8` allowed). Off
    /// by default.
    #[must_use]
    pub fn require_form_content_type(mut self, require: bool) -> Receiver {
        self.require_form = require;
        self
    }

    /// The guards the body is parsed with (the default [`FormLimits`] otherwise).
    #[must_use]
    pub fn limits(mut self, limits: FormLimits) -> Receiver {
        self.limits = limits;
        self
    }

    /// Checks a request (see the [module](self) docs for the steps) and decodes its body as
    /// an event, an automation-step body or a probe.
    pub fn receive(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Received, ReceiveError> {
        let (verified, delivery_id) = self.check(headers, body, now)?;
        let body = if body == PROBE_BODY {
            ReceivedBody::Probe
        } else {
            match Event::decode_with(body, self.limits) {
                Ok(event) => ReceivedBody::Event(event),
                Err(DecodeError::MissingKey { key: "type" }) => {
                    match AutomationPayload::decode_with(body, self.limits) {
                        Ok(step) => ReceivedBody::Automation(step),
                        Err(DecodeError::MissingKey { key: "seriesid" }) => {
                            return Err(ReceiveError::UnknownBody);
                        }
                        Err(error) => return Err(ReceiveError::Decode(error)),
                    }
                }
                Err(error) => return Err(ReceiveError::Decode(error)),
            }
        };
        Ok(Received {
            body,
            delivery_id,
            verified,
        })
    }

    /// Like [`Receiver::receive`], for an endpoint that only takes events: any other body is a
    /// [`ReceiveError::Decode`] (an automation-step body lacks `type`).
    pub fn receive_event(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Received<Event>, ReceiveError> {
        let (verified, delivery_id) = self.check(headers, body, now)?;
        let event = Event::decode_with(body, self.limits).map_err(ReceiveError::Decode)?;
        Ok(Received {
            body: event,
            delivery_id,
            verified,
        })
    }

    /// The steps before the body: content type, signature, delivery id.
    fn check(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(bool, Option<String>), ReceiveError> {
        if self.require_form {
            let value = headers.get(CONTENT_TYPE);
            let text = value.and_then(|v| v.to_str().ok());
            let essence = text.map(|t| t.split(';').next().unwrap_or_default().trim());
            if !essence.is_some_and(|e| e.eq_ignore_ascii_case(FORM)) {
                return Err(ReceiveError::ContentType {
                    found: value.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                });
            }
        }
        let verified = self.verify(headers, body, now)?;
        let mut delivery_id = None;
        for name in [DELIVERY_ID_HEADER, "webhook-id"] {
            if let Some(value) = headers.get(name) {
                let text = value
                    .to_str()
                    .map_err(|_| ReceiveError::InvalidHeader { header: name })?;
                delivery_id = Some(text.to_owned());
                break;
            }
        }
        Ok((verified, delivery_id))
    }

    #[cfg(feature = "signing")]
    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<bool, ReceiveError> {
        if self.secrets.is_empty() {
            return Ok(false);
        }
        let secrets: Vec<&SigningSecret> = self.secrets.iter().collect();
        let tolerance = self.tolerance.as_secs();
        match crate::sign::verify(&secrets, headers, body, unix_seconds(now), tolerance) {
            Ok(()) => Ok(true),
            Err(SignError::MissingHeader(header)) if headers.get(header).is_none() => {
                Err(ReceiveError::MissingSignature { header })
            }
            Err(SignError::MissingHeader(header)) => Err(ReceiveError::InvalidHeader { header }),
            Err(SignError::InvalidTimestamp(_)) => Err(ReceiveError::InvalidHeader {
                header: "webhook-timestamp",
            }),
            Err(SignError::OutsideTolerance {
                timestamp,
                distance,
                tolerance,
            }) => Err(ReceiveError::OutsideTolerance {
                timestamp,
                distance,
                tolerance,
            }),
            Err(_) => Err(ReceiveError::SignatureMismatch),
        }
    }

    #[cfg(not(feature = "signing"))]
    fn verify(&self, _: &HeaderMap, _: &[u8], _: SystemTime) -> Result<bool, ReceiveError> {
        Ok(false)
    }
}

/// Unix seconds of `time`, negative before 1970, saturating.
#[cfg(feature = "signing")]
fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// A checked and decoded delivery.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Received<B = ReceivedBody> {
    /// The decoded body.
    pub body: B,
    /// The delivery id: the `x-posthook-delivery` header, else `webhook-id`; `None` when the
    /// request has neither (ActiveCampaign sends none).
    pub delivery_id: Option<String>,
    /// Whether a signature was checked (and matched): `false` for a receiver without
    /// secrets.
    pub verified: bool,
}

/// What a received body was.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ReceivedBody {
    /// An event: the body has `type`.
    Event(Event),
    /// An automation step's webhook: no `type`, a `seriesid`.
    Automation(AutomationPayload),
    /// The body of [`Dispatcher::probe`](crate::Dispatcher::probe), [`PROBE_BODY`]: answer
    /// it with a 2xx and do nothing.
    Probe,
}

/// Which step of [`Receiver::receive`] failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The `Content-Type` is not `application/x-www-form-urlencoded` (only checked when
    /// [`Receiver::require_form_content_type`] asks for it).
    #[error("content type: expected application/x-www-form-urlencoded, got {}", found.as_deref().unwrap_or("none"))]
    ContentType {
        /// The header's value, if any.
        found: Option<String>,
    },
    /// The receiver has secrets but the request lacks a header of the signature: it is not
    /// signed.
    #[error("signature: the request is not signed (no `{header}` header)")]
    MissingSignature {
        /// The first missing header: `webhook-id`, `webhook-timestamp` or
        /// `webhook-signature`.
        header: &'static str,
    },
    /// A header is present but unreadable: not visible ASCII, or a `webhook-timestamp` that
    /// is not an integer.
    #[error("header `{header}` is not valid")]
    InvalidHeader {
        /// The header.
        header: &'static str,
    },
    /// The `webhook-timestamp` is further from now than the tolerance: a replay, or a clock
    /// that is off.
    #[error(
        "signature: webhook-timestamp {timestamp} is {distance} s from now, more than the {tolerance} s allowed"
    )]
    OutsideTolerance {
        /// The received timestamp (Unix seconds).
        timestamp: i64,
        /// How far it is from now, in seconds.
        distance: u64,
        /// The tolerance, in seconds.
        tolerance: u64,
    },
    /// No signature in `webhook-signature` was made with one of the receiver's secrets over
    /// this id, timestamp and body: the body was changed, or the secret is wrong.
    #[error("signature: no signature matches the receiver's secrets")]
    SignatureMismatch,
    /// The body is not a valid event or automation-step body.
    #[error("body: {0}")]
    Decode(#[source] DecodeError),
    /// The body has neither `type` (an event) nor `seriesid` (an automation step).
    #[error("body: neither an event (no `type`) nor an automation step (no `seriesid`)")]
    UnknownBody,
}
