//! "Test URL": a diagnosis of why a URL does or does not take webhooks, in plain words.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::Uri;
use serde::{Deserialize, Serialize};

use super::{Dispatcher, Either, PROBE_BODY, race};
use crate::transport::{Timer, Transport, TransportError, TransportErrorKind};
use crate::{AddressClass, WebhookUrl};

/// How many bytes of a non-2xx answer a [`Diagnosis`] keeps.
pub const EXCERPT_BYTES: usize = 256;

/// One address a host name resolved to, with its class and the policy's verdict.
///
/// Serialized as `{"ip": "10.0.0.1", "class": "private", "allowed": false}`; when read
/// back, the class is worked out again from the address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ResolvedAddressJson", into = "ResolvedAddressJson")]
#[non_exhaustive]
pub struct ResolvedAddress {
    /// The address.
    pub ip: IpAddr,
    /// Its class.
    pub class: AddressClass,
    /// Whether the dispatcher's address policy allows it.
    pub allowed: bool,
}

#[derive(Serialize, Deserialize)]
struct ResolvedAddressJson {
    ip: IpAddr,
    #[serde(default, skip_deserializing)]
    class: &'static str,
    allowed: bool,
}

impl From<ResolvedAddress> for ResolvedAddressJson {
    fn from(address: ResolvedAddress) -> Self {
        ResolvedAddressJson {
            ip: address.ip,
            class: address.class.as_str(),
            allowed: address.allowed,
        }
    }
}

impl From<ResolvedAddressJson> for ResolvedAddress {
    fn from(json: ResolvedAddressJson) -> Self {
        ResolvedAddress {
            ip: json.ip,
            class: AddressClass::of(json.ip),
            allowed: json.allowed,
        }
    }
}

/// What a probe found: the first thing that went wrong, or that all went well.
///
/// Serialized with a `"finding"` tag (`{"finding": "refused", "message": "..."}`), for an
/// application's "Test URL" button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Finding {
    /// The URL is not one a webhook may have.
    InvalidUrl {
        /// What is wrong, with its byte offset.
        message: String,
        /// The byte offset of the fault.
        offset: usize,
    },
    /// The host name does not resolve.
    Dns {
        /// The resolver's answer.
        message: String,
    },
    /// The host is, or resolves to, an address the policy forbids.
    Blocked {
        /// Which address and why.
        message: String,
    },
    /// Nothing listens on that port.
    Refused {
        /// The transport's message.
        message: String,
    },
    /// The connection was not established in time.
    ConnectTimeout {
        /// The transport's message.
        message: String,
    },
    /// No connection, for another reason (reset, unreachable).
    ConnectFailed {
        /// The transport's message.
        message: String,
    },
    /// The TLS handshake failed.
    Tls {
        /// What is wrong with the certificate or the handshake.
        message: String,
    },
    /// Connected, but no answer came in time.
    NoAnswer {
        /// The transport's message.
        message: String,
    },
    /// The connection broke mid-exchange, or the transport failed otherwise.
    Broken {
        /// The transport's message.
        message: String,
    },
    /// The receiver answered with a redirect, which webhooks never follow.
    Redirect {
        /// The status (`301`, `302`, `307`, `308`, ...).
        status: u16,
        /// Where it points, if it said.
        location: Option<String>,
    },
    /// The receiver answered, but not with `2xx`.
    NotOk {
        /// The status.
        status: u16,
        /// The first bytes of its answer ([`EXCERPT_BYTES`] at most), as text.
        excerpt: String,
    },
    /// The receiver took the request: `2xx`.
    Ok {
        /// The status.
        status: u16,
    },
}

impl Finding {
    /// Whether the URL takes webhooks.
    pub fn is_ok(&self) -> bool {
        matches!(self, Finding::Ok { .. })
    }

    /// A short id: `"invalid_url"`, `"dns"`, `"blocked"`, `"refused"`, `"connect_timeout"`,
    /// `"connect_failed"`, `"tls"`, `"no_answer"`, `"broken"`, `"redirect"`, `"not_ok"`,
    /// `"ok"` (the serde tag).
    pub fn as_str(&self) -> &'static str {
        match self {
            Finding::InvalidUrl { .. } => "invalid_url",
            Finding::Dns { .. } => "dns",
            Finding::Blocked { .. } => "blocked",
            Finding::Refused { .. } => "refused",
            Finding::ConnectTimeout { .. } => "connect_timeout",
            Finding::ConnectFailed { .. } => "connect_failed",
            Finding::Tls { .. } => "tls",
            Finding::NoAnswer { .. } => "no_answer",
            Finding::Broken { .. } => "broken",
            Finding::Redirect { .. } => "redirect",
            Finding::NotOk { .. } => "not_ok",
            Finding::Ok { .. } => "ok",
        }
    }

    fn of_error(error: &TransportError) -> Finding {
        let message = error.message().to_owned();
        match error.kind() {
            TransportErrorKind::Dns => Finding::Dns { message },
            TransportErrorKind::Blocked => Finding::Blocked { message },
            TransportErrorKind::Refused => Finding::Refused { message },
            TransportErrorKind::ConnectTimeout => Finding::ConnectTimeout { message },
            TransportErrorKind::Connect => Finding::ConnectFailed { message },
            TransportErrorKind::Tls => Finding::Tls { message },
            TransportErrorKind::Timeout => Finding::NoAnswer { message },
            _ => Finding::Broken { message },
        }
    }
}

/// What [`Dispatcher::diagnose`] found out about a URL: the addresses its host resolves to
/// (when the transport resolves names), the [`Finding`], and how long the exchange took.
///
/// `Display` is the plain-words diagnosis a person reads:
/// `"refused: connection refused by 127.0.0.1:9 (nothing listens on that port). Is the
/// receiver running, on that port?"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Diagnosis {
    /// The URL as given.
    pub url: String,
    /// The addresses the host resolved to, each with its class (empty for a literal IP, an
    /// invalid URL, or a transport that does not resolve names itself).
    pub addresses: Vec<ResolvedAddress>,
    /// What was found.
    pub finding: Finding,
    /// From sending the request to its answer or failure, by the [`Timer`]'s monotonic
    /// clock where it has one, else by its wall clock (`None` when nothing was sent).
    pub elapsed: Option<Duration>,
}

impl Diagnosis {
    /// Whether the URL takes webhooks.
    pub fn is_ok(&self) -> bool {
        self.finding.is_ok()
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let took = |f: &mut fmt::Formatter<'_>| match self.elapsed {
            Some(elapsed) => write!(f, " in {} ms", elapsed.as_millis()),
            None => Ok(()),
        };
        match &self.finding {
            Finding::InvalidUrl { message, .. } => write!(f, "invalid URL: {message}"),
            Finding::Dns { message } => {
                write!(f, "DNS failure: {message}. Check the host name for typos.")
            }
            Finding::Blocked { message } => write!(
                f,
                "blocked: {message}. Webhooks may not point at this network."
            ),
            Finding::Refused { message } => write!(
                f,
                "refused: {message}. Is the receiver running, on that port?"
            ),
            Finding::ConnectTimeout { message } => write!(
                f,
                "connect timeout: {message}. A firewall may be dropping the connection."
            ),
            Finding::ConnectFailed { message } => write!(f, "no connection: {message}."),
            Finding::Tls { message } => write!(f, "TLS failure: {message}."),
            Finding::NoAnswer { message } => write!(
                f,
                "no answer: connected, but {message}. The receiver must answer quickly."
            ),
            Finding::Broken { message } => write!(f, "failed: {message}."),
            Finding::Redirect { status, location } => {
                write!(f, "redirect: HTTP {status}")?;
                if let Some(location) = location {
                    write!(f, " to {location}")?;
                }
                write!(f, ". Webhooks do not follow redirects: use the final URL.")
            }
            Finding::NotOk { status, excerpt } => {
                write!(f, "HTTP {status}")?;
                took(f)?;
                if *status == 410 {
                    write!(
                        f,
                        ": the receiver says it is gone for good (a delivery would deactivate the webhook)"
                    )?;
                } else {
                    write!(f, ": the receiver did not accept the request")?;
                }
                if excerpt.is_empty() {
                    Ok(())
                } else {
                    write!(f, ". It answered: {excerpt:?}")
                }
            }
            Finding::Ok { status } => {
                write!(f, "OK: HTTP {status}")?;
                took(f)
            }
        }
    }
}

impl<T: Transport, S: Timer> Dispatcher<T, S> {
    /// "Test URL": validates `url` (pointing at the bad character), resolves its host
    /// (listing every address with its class, when the transport resolves names), checks
    /// the address policy, posts [`PROBE_BODY`] once within the attempt timeout, and says
    /// what happened in a [`Diagnosis`]: an invalid URL, a DNS failure, a blocked address,
    /// refused, a connect timeout, no answer, a TLS failure, a redirect (with its
    /// `Location`), a non-2xx answer (with its first bytes), or OK with the time taken.
    ///
    /// Unlike [`probe`](Dispatcher::probe), it takes the URL as typed, so that a settings
    /// page can show what is wrong with it, and never retries.
    pub async fn diagnose(&self, url: &str) -> Diagnosis {
        let mut diagnosis = Diagnosis {
            url: url.to_owned(),
            addresses: Vec::new(),
            finding: Finding::Ok { status: 0 },
            elapsed: None,
        };
        let url = match WebhookUrl::parse(url) {
            Ok(url) => url,
            Err(error) => {
                diagnosis.finding = Finding::InvalidUrl {
                    message: error.to_string(),
                    offset: error.offset(),
                };
                return diagnosis;
            }
        };
        let policy = self.effective_address_policy();
        if let Err(blocked) = policy.check_url(&url) {
            diagnosis.finding = Finding::Blocked {
                message: blocked.to_string(),
            };
            return diagnosis;
        }
        if url.ip().is_none() {
            match self.transport.resolve(url.host()).await {
                Some(Ok(addresses)) => {
                    diagnosis.addresses = addresses
                        .into_iter()
                        .map(|ip| ResolvedAddress {
                            ip,
                            class: AddressClass::of(ip),
                            allowed: policy.check(ip).is_ok(),
                        })
                        .collect();
                }
                Some(Err(error)) => {
                    diagnosis.finding = Finding::of_error(&error);
                    return diagnosis;
                }
                None => {}
            }
        }
        let request = Uri::try_from(url.as_str())
            .map_err(|e| format!("the URL cannot be sent over HTTP: {e}"))
            .and_then(|uri| {
                #[cfg(feature = "signing")]
                let secrets: &super::Secrets = &self.signing;
                #[cfg(not(feature = "signing"))]
                let secrets: &super::Secrets = &super::Secrets;
                self.request(
                    uri,
                    self.ids.next(),
                    Bytes::from_static(PROBE_BODY),
                    secrets,
                    None,
                )
            });
        let request = match request {
            Ok(request) => request,
            Err(message) => {
                diagnosis.finding = Finding::Broken { message };
                return diagnosis;
            }
        };
        let timeout = self.attempt_timeout;
        let (started, wall) = (self.timer.monotonic(), self.timer.now());
        let answer = race(self.transport.send(request), || self.timer.sleep(timeout)).await;
        diagnosis.elapsed = Some(match (started, self.timer.monotonic()) {
            (Some(start), Some(end)) => end.saturating_sub(start),
            _ => since(wall, self.timer.now()),
        });
        diagnosis.finding = match answer {
            Either::Left(Ok(response)) => {
                let status = response.status();
                if status.is_success() {
                    Finding::Ok {
                        status: status.as_u16(),
                    }
                } else if status.is_redirection() {
                    Finding::Redirect {
                        status: status.as_u16(),
                        location: response
                            .headers()
                            .get(http::header::LOCATION)
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                    }
                } else {
                    let body = response.body();
                    let excerpt = &body[..body.len().min(EXCERPT_BYTES)];
                    Finding::NotOk {
                        status: status.as_u16(),
                        excerpt: String::from_utf8_lossy(excerpt).into_owned(),
                    }
                }
            }
            Either::Left(Err(error)) => Finding::of_error(&error),
            Either::Right(()) => Finding::NoAnswer {
                message: format!("no response within {timeout:?}"),
            },
        };
        diagnosis
    }
}

fn since(start: SystemTime, end: SystemTime) -> Duration {
    end.duration_since(start).unwrap_or_default()
}
