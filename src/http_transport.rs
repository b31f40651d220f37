//! Real HTTP(S) delivery: [`HttpTransport`], a [`Transport`] on reqwest and rustls that
//! cannot be pointed at your own network (feature `http`).
//!
//! ```no_run
//! use posthook::{Dispatcher, Event, EventKind, HttpTransport, Registry, Source, TokioTimer, Webhook};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut registry = Registry::new();
//! registry.insert(
//!     Webhook::builder("CRM", "https://crm.example.com/hooks/ac")
//!         .events([EventKind::Subscribe])
//!         .sources(Source::ALL)
//!         .build()?,
//! );
//! let dispatcher = Dispatcher::new(HttpTransport::new()?, TokioTimer::new());
//! let report = dispatcher.dispatch(&registry, &Event::sample(EventKind::Subscribe)).await;
//! println!("{:?}", report.deliveries[0].outcome);
//! # Ok(())
//! # }
//! ```
//!
//! # What it guarantees
//!
//! - **Every address is checked.** The transport resolves host names itself (through a
//!   [`Resolve`]r you may replace), checks **every** address the name resolves to against its
//!   [`AddressPolicy`], refuses the name if **any** of them is forbidden (a mix of public and
//!   private answers is what a DNS-rebinding attack looks like), and connects only to the
//!   addresses it checked: there is no second lookup between the check and the connect.
//!   Literal IPs (`http://10.0.0.5/`, `http://[::1]/`, `http://2130706433/`), which never
//!   reach a resolver, are checked before the request leaves. A refusal is a
//!   [`TransportErrorKind::Blocked`](crate::TransportErrorKind::Blocked) error, never retried, naming the host, the address and
//!   its class; no connection is attempted.
//! - **No redirects.** A `3xx` is returned as it is (the dispatcher fails it without retry).
//! - **No environment proxy.** `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` are ignored. A
//!   proxy is used only when configured with [`HttpTransportBuilder::proxy`] — and mind that
//!   a proxy resolves the target's name itself, so for names **the address check is then up
//!   to the proxy** (literal IPs are still checked here). Use one that enforces its own
//!   egress rules.
//! - **Bounded.** A connect timeout, a timeout for the whole exchange, and at most
//!   [`max_response_bytes`](HttpTransportBuilder::max_response_bytes) of the response body
//!   are read (64 KiB by default; the rest is never read, and the connection is closed). A
//!   body cut short carries a [`BodyCut`] in the response's extensions.
//! - **Readable errors.** Failures map to the [`TransportErrorKind`](crate::TransportErrorKind) of their stage — DNS,
//!   blocked, refused, connect timeout, other connect failures, TLS (saying what: an
//!   unknown issuer, an expired certificate, a name mismatch, a plain-HTTP port), no answer,
//!   a broken connection — with a message for people, not a library's debug text.
//! - **Pooled.** Connections are kept per host and reused (for 90 s idle, so from one
//!   dispatch to the next); `send` may be called concurrently, and the transport is cheap
//!   to clone (clones share the pool and the limits).
//! - **Bounded per host.** At most
//!   [`max_connections_per_host`](HttpTransportBuilder::max_connections_per_host) (32)
//!   exchanges are in flight per scheme, host and port; the others wait their turn, first
//!   come first served, for one of the host's connections instead of opening their own.
//!   A fan-out of 1,000 webhooks on one host opens 32 connections and keeps them for the
//!   next one (the idle pool keeps as many as the limit), instead of thousands. An
//!   attempt's deadline starts when it holds its turn, so a delivery queued behind 999
//!   others on a healthy host does not fail for having queued; the wait itself is bounded
//!   by [`connection_wait_timeout`](HttpTransportBuilder::connection_wait_timeout) (60 s),
//!   so a host that hangs holds a delivery for at most that plus one attempt deadline. A
//!   host with no exchange in flight or waiting has no entry: 100,000 hosts leave nothing
//!   behind.
//! - **HTTP/2 when offered.** Over TLS the transport offers `h2` and `http/1.1` (ALPN), and
//!   a receiver that picks `h2` gets its exchanges multiplexed on one connection (the
//!   per-host limit still bounds how many are in flight). Plain `http://` is HTTP/1.1.
//!
//! On a multi-threaded runtime hyper may put an HTTP/1.1 connection back into its pool
//! only after the next in line has started (on a task of its own, when the connection was
//! not ready at once); the transport hands turns over on a task that lets that one run
//! first, which leaves a few extra connections per thousand exchanges on a loaded machine
//! (the pool closes them again once it has its fill). On a current-thread runtime the
//! counts are exact.
//!
//! TLS is rustls with the `ring` provider and Mozilla's root certificates (`webpki-roots`),
//! so it builds without system packages and trusts the same roots on every machine; add a
//! root of your own with [`HttpTransportBuilder::add_root_certificate_pem`].
//!
//! # The address policy is one policy
//!
//! A [`Dispatcher`](crate::Dispatcher) over an `HttpTransport` checks URLs by the transport's
//! policy (through [`Transport::address_policy`]): set it once, on the builder. To deliver to
//! a receiver on this machine while developing:
//!
//! ```
//! use posthook::{AddressClass, AddressPolicy, HttpTransport};
//!
//! let transport = HttpTransport::builder()
//!     .address_policy(AddressPolicy::public_only().allow(AddressClass::Loopback))
//!     .build()?;
//! # Ok::<(), posthook::http_transport::BuildError>(())
//! ```

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolving};

use crate::transport::{SendFuture, Transport, TransportError};
use crate::{AddressClass, AddressPolicy, BlockedAddress, WebhookUrl};

mod hosts;
use hosts::{Hold, HostLimits, host_key};

type BoxError = Box<dyn StdError + Send + Sync>;

/// Resolves a host name to IP addresses: the seam where [`HttpTransport`] checks every
/// address before it connects.
///
/// [`SystemResolver`] (the default) asks the operating system; [`StaticResolver`] answers
/// from a table (tests, pinned hosts). An implementation returns every address it found;
/// the transport checks them all, so a resolver need not know about the policy.
#[async_trait::async_trait]
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host` (a name, never a literal IP), or why there are none.
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError>;
}

/// A host name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host}: {reason}")]
pub struct ResolveError {
    host: String,
    reason: String,
}

impl ResolveError {
    /// `host` did not resolve, for `reason` (e.g. `"no such host"`).
    pub fn new(host: impl Into<String>, reason: impl Into<String>) -> ResolveError {
        ResolveError {
            host: host.into(),
            reason: reason.into(),
        }
    }

    /// The host name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Why it did not resolve.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// The operating system's resolver (`getaddrinfo`, on tokio's blocking pool).
///
/// A name is looked up without its final dot (`hooks.example.com.` as `hooks.example.com`):
/// glibc's hosts file lookup misses the dotted form, and a name must be judged the same
/// with or without it (every address it resolves to is checked against the policy either
/// way).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SystemResolver;

impl SystemResolver {
    /// The system resolver.
    pub const fn new() -> SystemResolver {
        SystemResolver
    }
}

#[async_trait::async_trait]
impl Resolve for SystemResolver {
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let name = match host.strip_suffix('.') {
            Some(name) if !name.is_empty() && !name.ends_with('.') => name,
            _ => host,
        };
        match tokio::net::lookup_host((name, 0)).await {
            Ok(addrs) => {
                let mut ips: Vec<IpAddr> = Vec::new();
                for addr in addrs {
                    if !ips.contains(&addr.ip()) {
                        ips.push(addr.ip());
                    }
                }
                Ok(ips)
            }
            Err(error) => Err(ResolveError::new(host, dns_reason(&error))),
        }
    }
}

/// The resolver's error in plain words ("no such host" rather than getaddrinfo's text).
fn dns_reason(error: &io::Error) -> String {
    let text = error.to_string();
    if text.contains("not known") || text.contains("No address") || text.contains("not found") {
        String::from("no such host")
    } else if text.contains("Temporary failure") {
        String::from("the name server did not answer (temporary failure)")
    } else {
        text
    }
}

/// A resolver that answers from a table: names it holds resolve to their addresses, other
/// names do not resolve. For tests (map `evil.example.test` to `127.0.0.1` without touching
/// the system) and for pinning hosts.
///
/// ```
/// use posthook::http_transport::StaticResolver;
///
/// let resolver = StaticResolver::new()
///     .with("receiver.test", ["127.0.0.1".parse().unwrap()])
///     .with("rebinding.test", ["93.184.216.34".parse().unwrap(), "10.0.0.1".parse().unwrap()]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    hosts: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// An empty table: nothing resolves.
    pub fn new() -> StaticResolver {
        StaticResolver::default()
    }

    /// This table, with `host` (case-insensitive) resolving to `addresses`.
    #[must_use]
    pub fn with(
        mut self,
        host: impl Into<String>,
        addresses: impl IntoIterator<Item = IpAddr>,
    ) -> StaticResolver {
        self.insert(host, addresses);
        self
    }

    /// Makes `host` (case-insensitive) resolve to `addresses` (none: the name exists but has
    /// no address).
    pub fn insert(&mut self, host: impl Into<String>, addresses: impl IntoIterator<Item = IpAddr>) {
        let host = host.into().trim_end_matches('.').to_ascii_lowercase();
        self.hosts.insert(host, addresses.into_iter().collect());
    }
}

#[async_trait::async_trait]
impl Resolve for StaticResolver {
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        let key = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts
            .get(&key)
            .cloned()
            .ok_or_else(|| ResolveError::new(host, "no such host"))
    }
}

/// A host name that resolves to an address the policy forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} resolves to {}, which is {}: blocked by the address policy{}",
    .blocked.ip(), .blocked.class(), others(.addresses, .blocked.ip()))]
pub struct BlockedName {
    host: String,
    blocked: BlockedAddress,
    addresses: Vec<IpAddr>,
}

fn others(addresses: &[IpAddr], blocked: IpAddr) -> String {
    let rest: Vec<String> = addresses
        .iter()
        .filter(|&&ip| ip != blocked)
        .map(|ip| format!("{ip} ({})", AddressClass::of(*ip)))
        .collect();
    if rest.is_empty() {
        String::new()
    } else {
        format!(" (it also resolves to {})", rest.join(", "))
    }
}

impl BlockedName {
    /// The host name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The first forbidden address, with its class.
    pub fn blocked(&self) -> &BlockedAddress {
        &self.blocked
    }

    /// Every address the name resolved to.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }
}

/// Why a response body is shorter than what the receiver sent: in the response's
/// extensions when [`HttpTransport`] stopped reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyCut {
    /// The body was longer than this many bytes, the
    /// [limit](HttpTransportBuilder::max_response_bytes); the rest was not read.
    Limit(usize),
    /// Reading the body failed after the status arrived (the status still counts).
    Error(String),
}

/// The [`HttpTransport`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A root certificate given to the builder is not a PEM certificate.
    #[error("root certificate: {0}")]
    Certificate(String),
    /// The proxy URL is not one reqwest can use.
    #[error("proxy {url}: {reason}")]
    Proxy {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The HTTP client could not be set up.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// The [`Resolve`]r handed to reqwest: resolves, then checks every address.
struct Guard {
    resolver: Arc<dyn Resolve>,
    policy: Arc<AddressPolicy>,
    /// The configured proxy's host, which is trusted and not checked.
    exempt: Option<String>,
}

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let resolver = Arc::clone(&self.resolver);
        let policy = Arc::clone(&self.policy);
        let exempt = self
            .exempt
            .as_deref()
            .is_some_and(|proxy| proxy.eq_ignore_ascii_case(&host));
        Box::pin(async move {
            let addresses = resolver.resolve(&host).await.map_err(BoxError::from)?;
            if addresses.is_empty() {
                return Err(ResolveError::new(host, "the name has no address").into());
            }
            if !exempt {
                for &ip in &addresses {
                    if let Err(blocked) = policy.check(ip) {
                        return Err(BlockedName {
                            host,
                            blocked,
                            addresses,
                        }
                        .into());
                    }
                }
            }
            let addrs: Addrs = Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Builds an [`HttpTransport`]. Every knob has a safe default:
///
/// | option | default |
/// |---|---|
/// | [`address_policy`](HttpTransportBuilder::address_policy) | [`AddressPolicy::public_only`] |
/// | [`resolver`](HttpTransportBuilder::resolver) | [`SystemResolver`] |
/// | [`connect_timeout`](HttpTransportBuilder::connect_timeout) | 5 s |
/// | [`timeout`](HttpTransportBuilder::timeout) | 10 s for the whole exchange (the dispatcher's attempt timeout) |
/// | [`max_response_bytes`](HttpTransportBuilder::max_response_bytes) | 64 KiB |
/// | [`body_timeout`](HttpTransportBuilder::body_timeout) | 1 s to read the body once the status has come |
/// | [`proxy`](HttpTransportBuilder::proxy) | none (the environment's is ignored) |
/// | [`max_connections_per_host`](HttpTransportBuilder::max_connections_per_host) | 32 exchanges in flight per host; the others wait for one of its connections |
/// | [`connection_wait_timeout`](HttpTransportBuilder::connection_wait_timeout) | 60 s of waiting for a host's connection, before the attempt's own deadline starts |
/// | [`pool_idle_timeout`](HttpTransportBuilder::pool_idle_timeout) | 90 s |
/// | [`pool_max_idle_per_host`](HttpTransportBuilder::pool_max_idle_per_host) | the per-host limit (32): every connection the limit allows is kept |
/// | HTTP version | HTTP/2 when a TLS receiver offers it (ALPN `h2`), else HTTP/1.1; plain `http://` is always HTTP/1.1 |
#[must_use]
pub struct HttpTransportBuilder {
    policy: AddressPolicy,
    resolver: Arc<dyn Resolve>,
    connect_timeout: Duration,
    timeout: Duration,
    max_response_bytes: usize,
    body_timeout: Duration,
    proxy: Option<String>,
    roots: Vec<String>,
    pool_idle_timeout: Duration,
    /// `None`: the per-host limit.
    pool_max_idle_per_host: Option<usize>,
    max_connections_per_host: NonZeroUsize,
    connection_wait_timeout: Duration,
}

/// The default per-host limit (see `BENCHMARKS.md`, "Many webhooks on one host").
const DEFAULT_CONNECTIONS_PER_HOST: NonZeroUsize = NonZeroUsize::new(32).unwrap();

impl fmt::Debug for HttpTransportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransportBuilder")
            .field("policy", &self.policy)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_connections_per_host", &self.max_connections_per_host)
            .field("connection_wait_timeout", &self.connection_wait_timeout)
            .field("proxy", &self.proxy.as_ref().map(|_| "configured"))
            .field("extra_roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

impl Default for HttpTransportBuilder {
    fn default() -> Self {
        HttpTransportBuilder {
            policy: AddressPolicy::public_only(),
            resolver: Arc::new(SystemResolver),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
            body_timeout: Duration::from_secs(1),
            proxy: None,
            roots: Vec::new(),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: None,
            max_connections_per_host: DEFAULT_CONNECTIONS_PER_HOST,
            connection_wait_timeout: Duration::from_secs(60),
        }
    }
}

impl HttpTransportBuilder {
    /// Which addresses may be connected to (default [`AddressPolicy::public_only`]). A
    /// dispatcher over this transport checks URLs by the same policy.
    pub fn address_policy(mut self, policy: AddressPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Resolves host names with `resolver` (default [`SystemResolver`]). Every address it
    /// returns is checked against the policy.
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// Gives up connecting after `timeout` (default 5 s):
    /// [`TransportErrorKind::ConnectTimeout`](crate::TransportErrorKind::ConnectTimeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Gives up on the whole exchange (connect, request, response, body) after `timeout`
    /// (default 10 s, the [`Dispatcher`](crate::Dispatcher)'s default attempt timeout):
    /// [`TransportErrorKind::Timeout`](crate::TransportErrorKind::Timeout). This bounds
    /// [`Transport::send`]; a dispatcher hands each attempt its own deadline
    /// ([`Transport::send_attempt`]), which applies instead. When the two are the same, the
    /// request needs no deadline of its own (reqwest would keep one in the request's
    /// extensions, two allocations per request).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads at most `limit` bytes of a response body (default 64 KiB); the rest is never
    /// read and the connection is closed. The dispatcher only needs the status; a probe
    /// shows the first bytes.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Reads the response body for at most `budget` once the status and headers have come
    /// (default 1 s, and never past the exchange's own deadline). The status decides the
    /// attempt; a body that has not ended by then is cut ([`BodyCut::Error`]) and its
    /// connection closed, so a receiver that answers and then trickles its body does not
    /// hold an attempt (and its concurrency slot) until the deadline.
    pub fn body_timeout(mut self, budget: Duration) -> Self {
        self.body_timeout = budget;
        self
    }

    /// Sends every request through the proxy at `url` (`http://proxy.internal:3128`). Off by
    /// default, and the environment's `HTTP_PROXY`/`HTTPS_PROXY` are never used.
    ///
    /// **A proxy resolves the target's host name itself**, so the address policy can no
    /// longer check where a name leads: only literal IPs are still checked here. Use a
    /// proxy that enforces its own egress rules. The proxy's own host is trusted.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.proxy = Some(url.into());
        self
    }

    /// Also trusts the root certificate(s) in `pem` (beside Mozilla's roots): a private
    /// CA, or a test server's self-signed certificate.
    pub fn add_root_certificate_pem(mut self, pem: impl Into<String>) -> Self {
        self.roots.push(pem.into());
        self
    }

    /// Closes pooled connections idle for longer than `timeout` (default 90 s).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Keeps at most `max` idle connections per host (default: the
    /// [per-host limit](HttpTransportBuilder::max_connections_per_host), so that every
    /// connection a burst needed is still there for the next one). Fewer than the limit
    /// closes connections a later burst opens again.
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = Some(max);
        self
    }

    /// Keeps at most `limit` exchanges in flight per host — per scheme, host and port, for
    /// every dispatch, delivery and worker on this transport and its clones (default 32).
    /// An attempt beyond the limit waits its turn (first come, first served) for one of
    /// the host's connections instead of opening one of its own, so a fan-out of 1,000
    /// webhooks on one host opens at most `limit` connections, and keeps them
    /// ([`pool_max_idle_per_host`](HttpTransportBuilder::pool_max_idle_per_host) follows
    /// the limit) for the next one.
    ///
    /// Over HTTP/1.1 that is at most `limit` connections to the host; over HTTP/2 (a TLS
    /// receiver that offers it) the exchanges share one connection, and the limit still
    /// bounds how many are in flight.
    ///
    /// The wait is not part of the attempt: an attempt's deadline (the dispatcher's
    /// attempt timeout, or [`timeout`](HttpTransportBuilder::timeout)) starts once it
    /// holds its turn, so deliveries queued behind many others on a healthy host do not
    /// time out for having queued. The wait is bounded on its own, by
    /// [`connection_wait_timeout`](HttpTransportBuilder::connection_wait_timeout).
    /// `NonZeroUsize::MAX` lifts the limit.
    pub fn max_connections_per_host(mut self, limit: NonZeroUsize) -> Self {
        self.max_connections_per_host = limit;
        self
    }

    /// Gives up waiting for one of a host's connections (an attempt beyond
    /// [`max_connections_per_host`](HttpTransportBuilder::max_connections_per_host))
    /// after `timeout` (default 60 s): a
    /// [`TransportErrorKind::ConnectTimeout`](crate::TransportErrorKind::ConnectTimeout)
    /// that says how many exchanges were in flight, retried like any connect failure. Nothing
    /// was sent. It is what keeps a host that hangs from holding the deliveries queued for
    /// it forever: those in flight end at their own deadline, those waiting at this one.
    pub fn connection_wait_timeout(mut self, timeout: Duration) -> Self {
        self.connection_wait_timeout = timeout;
        self
    }

    /// The transport.
    pub fn build(self) -> Result<HttpTransport, BuildError> {
        let policy = Arc::new(self.policy);
        let exempt = match &self.proxy {
            Some(proxy) => Some(
                url::Url::parse(proxy)
                    .map_err(|e| BuildError::Proxy {
                        url: proxy.clone(),
                        reason: e.to_string(),
                    })?
                    .host_str()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            None => None,
        };
        let guard = Guard {
            resolver: Arc::clone(&self.resolver),
            policy: Arc::clone(&policy),
            exempt,
        };
        let mut client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(&self.roots)?)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(guard)
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(
                self.pool_max_idle_per_host
                    .unwrap_or(self.max_connections_per_host.get()),
            )
            .tcp_nodelay(true);
        if let Some(url) = &self.proxy {
            let proxy = reqwest::Proxy::all(url).map_err(|e| BuildError::Proxy {
                url: url.clone(),
                reason: innermost(&e),
            })?;
            client = client.proxy(proxy);
        }
        let client = client
            .build()
            .map_err(|e| BuildError::Client(innermost(&e)))?;
        Ok(HttpTransport {
            client,
            resolver: self.resolver,
            policy,
            max_response_bytes: self.max_response_bytes,
            body_timeout: self.body_timeout,
            timeout: self.timeout,
            hosts: Arc::new(HostLimits::new(self.max_connections_per_host.get())),
            connection_wait_timeout: self.connection_wait_timeout,
        })
    }
}

/// rustls with ring, Mozilla's roots and the builder's own, offering HTTP/2 and HTTP/1.1
/// (ALPN): the receiver picks.
fn tls_config(extra_roots: &[String]) -> Result<rustls::ClientConfig, BuildError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for pem in extra_roots {
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| BuildError::Certificate(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| BuildError::Certificate(e.to_string()))?;
            found += 1;
        }
        if found == 0 {
            return Err(BuildError::Certificate(String::from(
                "no PEM certificate found",
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BuildError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A [`Transport`] over real HTTP(S): reqwest and rustls, every address checked against an
/// [`AddressPolicy`], no redirects, no environment proxy, bounded in time and in bytes.
/// See the [module docs](self).
///
/// Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    resolver: Arc<dyn Resolve>,
    policy: Arc<AddressPolicy>,
    max_response_bytes: usize,
    /// How long the body may take once the status has come.
    body_timeout: Duration,
    /// The client's whole-exchange timeout.
    timeout: Duration,
    /// Exchanges in flight per host, shared by clones.
    hosts: Arc<HostLimits>,
    connection_wait_timeout: Duration,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("policy", &*self.policy)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("max_connections_per_host", &self.hosts.limit())
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// A transport with the defaults (public addresses only, the system resolver).
    pub fn new() -> Result<HttpTransport, BuildError> {
        HttpTransport::builder().build()
    }

    /// A builder, to set the policy, the resolver, the limits or a proxy.
    pub fn builder() -> HttpTransportBuilder {
        HttpTransportBuilder::default()
    }

    /// The address policy every connection is checked against.
    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// Checks a URL's literal IP host, which reqwest connects to without resolving.
    fn check_literal(&self, url: &url::Url) -> Result<(), TransportError> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err(TransportError::other("the URL has no host")),
        };
        self.policy
            .check(ip)
            .map_err(|blocked| TransportError::blocked(blocked.to_string()))
    }

    /// Reads the body into `body`, at most `max_response_bytes`; why it is cut, if it is.
    async fn read_body(
        &self,
        response: &mut reqwest::Response,
        body: &mut BytesMut,
    ) -> Option<BodyCut> {
        let limit = self.max_response_bytes;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = limit - body.len();
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        return Some(BodyCut::Limit(limit));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return None,
                Err(error) => return Some(BodyCut::Error(innermost(&error))),
            }
        }
    }
}

impl HttpTransport {
    /// One exchange, in the host's turn; `timeout`, when not the client's, bounds this one
    /// from the moment the turn is held.
    ///
    /// Kept small on purpose (every attempt in flight holds this future, boxed): the
    /// request is turned into reqwest's before the first wait, in a plain function, so
    /// nothing of it is kept across the waits; an exchange that must wait for its host
    /// keeps its request and the wait in a box of their own.
    fn exchange(
        &self,
        known: Option<&WebhookUrl>,
        request: http::Request<Bytes>,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<http::Response<Bytes>, TransportError>> + Send + '_ {
        // Made before the future: it keeps reqwest's pending exchange, not the request.
        let start = self
            .outgoing(known, request, timeout)
            .map(|(outgoing, limit)| (self.start(outgoing), limit));
        async move {
            let (start, limit) = start?;
            let (pending, hold) = match start {
                Start::Now(pending, hold) => (pending, hold),
                Start::Queued(queued) => queued.await?,
            };
            let result = match pending.await {
                Ok(response) => Ok(self.answer(response).await),
                Err(error) => {
                    let target = match error.url() {
                        Some(url) => target(url),
                        None => String::from("the receiver"),
                    };
                    Err(classify(&error, &target, limit))
                }
            };
            // The turn ends with the body read: the connection is back in the pool for
            // the next in line.
            drop(hold);
            result
        }
    }

    /// The exchange, now when the host has a free turn, else once it has.
    fn start(
        &self,
        outgoing: reqwest::Request,
    ) -> Start<'_, impl Future<Output = reqwest::Result<reqwest::Response>> + Send + use<>> {
        let hold = self.hosts.try_hold(&host_key(outgoing.url()));
        match hold {
            // reqwest starts the deadline when the exchange is made: in the turn.
            Ok(hold) => Start::Now(self.client.execute(outgoing), hold),
            Err(mut hold) => Start::Queued(Box::pin(async move {
                let wait = self.connection_wait_timeout;
                if tokio::time::timeout(wait, hold.wait()).await.is_err() {
                    let in_flight = hold.in_flight();
                    drop(hold);
                    return Err(TransportError::connect_timeout(format!(
                        "no connection to {} came free within {wait:?} ({in_flight} exchanges \
                         in flight to it, the most this transport keeps per host)",
                        target(outgoing.url())
                    )));
                }
                Ok((self.client.execute(outgoing), hold))
            })),
        }
    }

    /// reqwest's request for `request`, after the literal-IP check, and the deadline that
    /// bounds it.
    fn outgoing(
        &self,
        known: Option<&WebhookUrl>,
        request: http::Request<Bytes>,
        timeout: Option<Duration>,
    ) -> Result<(reqwest::Request, Duration), TransportError> {
        let (parts, body) = request.into_parts();
        // The parse by the rules reqwest uses (the literal-IP check reads it too): kept by
        // the webhook's URL when the request was built from it, else made here.
        let kept = known
            .filter(|known| known.is_uri_of(&parts.uri))
            .and_then(WebhookUrl::as_url);
        let url = match kept {
            Some(url) => url.clone(),
            None => url::Url::parse(&absolute(&parts.uri))
                .map_err(|e| TransportError::other(format!("the URL cannot be sent: {e}")))?,
        };
        self.check_literal(&url)?;
        let mut outgoing = reqwest::Request::new(parts.method, url);
        *outgoing.headers_mut() = parts.headers;
        *outgoing.version_mut() = parts.version;
        *outgoing.body_mut() = Some(reqwest::Body::from(body));
        // An attempt's deadline is its own, longer or shorter than the client's; set on the
        // request only when it differs (reqwest keeps it in the request's extensions, an
        // allocation).
        let limit = match timeout {
            Some(timeout) if timeout != self.timeout => {
                *outgoing.timeout_mut() = Some(timeout);
                timeout
            }
            _ => self.timeout,
        };
        Ok((outgoing, limit))
    }

    /// The response as `http` has it, with at most `max_response_bytes` of its body.
    async fn answer(&self, mut response: reqwest::Response) -> http::Response<Bytes> {
        // Boxed: most answers have no body to read (`204`, `Content-Length: 0`), and every
        // attempt in flight would otherwise hold room for the read.
        let (body, cut) = if response.content_length() == Some(0) {
            (Bytes::new(), None)
        } else {
            let budget = self.body_timeout;
            let read = Box::pin(async {
                let mut body = BytesMut::new();
                let read = tokio::time::timeout(budget, self.read_body(&mut response, &mut body));
                let cut = read.await.unwrap_or_else(|_| {
                    Some(BodyCut::Error(format!(
                        "the body did not end within {budget:?} of the status"
                    )))
                });
                (body.freeze(), cut)
            });
            read.await
        };
        let (status, version) = (response.status(), response.version());
        let headers = std::mem::take(response.headers_mut());
        let mut answer = http::Response::new(body);
        *answer.status_mut() = status;
        *answer.version_mut() = version;
        *answer.headers_mut() = headers;
        if let Some(cut) = cut {
            answer.extensions_mut().insert(cut);
        }
        answer
    }

    /// The size of the future of one exchange, for the test that keeps it small.
    #[cfg(test)]
    fn exchange_future_size(&self) -> usize {
        std::mem::size_of_val(&self.exchange(None, http::Request::new(Bytes::new()), None))
    }
}

/// An exchange (`P`, reqwest's pending one) in its host's turn, or waiting for it.
enum Start<'a, P> {
    /// Made: the host had a free turn.
    Now(P, Hold<'a>),
    /// Waiting for a turn, with the request: makes the exchange once the turn is held.
    Queued(Queued<'a, P>),
}

/// The wait for a turn, boxed: only an exchange that must wait pays for its room.
type Queued<'a, P> =
    Pin<Box<dyn Future<Output = Result<(P, Hold<'a>), TransportError>> + Send + 'a>>;

/// The text of an absolute URI, written without `fmt`.
fn absolute(uri: &http::Uri) -> String {
    let (scheme, authority) = (uri.scheme_str().unwrap_or(""), uri.authority());
    let authority = authority.map_or("", |a| a.as_str());
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut text = String::with_capacity(scheme.len() + 3 + authority.len() + path.len());
    text.push_str(scheme);
    text.push_str("://");
    text.push_str(authority);
    text.push_str(path);
    text
}

#[async_trait::async_trait]
impl Transport for HttpTransport {
    // Both written out as `async_trait` would make them, boxing the exchange's own future:
    // an `async fn` here would keep the request in the box for the whole exchange.
    fn send<'life0, 'async_trait>(
        &'life0 self,
        request: http::Request<Bytes>,
    ) -> SendFuture<'async_trait>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.exchange(None, request, None))
    }

    /// Bounded by `timeout` (not by the transport's own
    /// [`timeout`](HttpTransportBuilder::timeout), which bounds [`send`](Transport::send)),
    /// body read included. A body that does not end in time is cut: the response comes
    /// back with its status and a [`BodyCut::Error`] (the receiver answered; the dispatcher
    /// judges the status).
    fn send_attempt<'life0, 'life1, 'async_trait>(
        &'life0 self,
        url: &'life1 WebhookUrl,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> SendFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.exchange(Some(url), request, Some(timeout)))
    }

    fn enforces_timeout(&self) -> bool {
        true
    }

    /// reqwest adds `accept` to the map it is given (hyper's `host` and `content-length`
    /// go into reqwest's own copy of it).
    fn added_headers(&self) -> usize {
        1
    }

    fn address_policy(&self) -> Option<&AddressPolicy> {
        Some(&self.policy)
    }

    async fn resolve(&self, host: &str) -> Option<Result<Vec<IpAddr>, TransportError>> {
        let resolved = self.resolver.resolve(host).await.map_err(|dns| {
            TransportError::dns(format!("{} does not resolve: {}", dns.host, dns.reason))
        });
        Some(resolved)
    }
}

/// `host:port` of a URL, for messages.
fn target(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The innermost message of an error chain: the one that says what happened.
fn innermost(error: &(dyn StdError + 'static)) -> String {
    let mut last: &(dyn StdError + 'static) = error;
    while let Some(next) = next_cause(last) {
        last = next;
    }
    last.to_string()
}

/// The cause of `error`, looking inside `io::Error`s (whose `source` skips the error they
/// wrap).
fn next_cause<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    if let Some(io) = error.downcast_ref::<io::Error>() {
        if let Some(inner) = io.get_ref() {
            return Some(inner as &(dyn StdError + 'static));
        }
        return None;
    }
    error.source()
}

/// Maps a reqwest error to the kind of its stage, with a message for people.
fn classify(error: &reqwest::Error, target: &str, timeout: Duration) -> TransportError {
    let mut io_kind = None;
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(blocked) = e.downcast_ref::<BlockedName>() {
            return TransportError::blocked(blocked.to_string());
        }
        if let Some(dns) = e.downcast_ref::<ResolveError>() {
            return TransportError::dns(format!("{} does not resolve: {}", dns.host, dns.reason));
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return TransportError::tls(describe_tls(tls, target));
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        cause = next_cause(e);
    }
    use io::ErrorKind as K;
    if error.is_timeout() {
        return if error.is_connect() {
            TransportError::connect_timeout(format!("no connection to {target} in time"))
        } else {
            TransportError::timeout(format!("{target} did not answer within {timeout:?}"))
        };
    }
    match io_kind {
        Some(K::ConnectionRefused) => {
            return TransportError::refused(format!(
                "connection refused by {target} (nothing listens on that port)"
            ));
        }
        Some(K::TimedOut) if error.is_connect() => {
            return TransportError::connect_timeout(format!("no connection to {target} in time"));
        }
        Some(K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe) => {
            let message = format!("the connection to {target} was reset");
            return if error.is_connect() {
                TransportError::connect(message)
            } else {
                TransportError::io(message)
            };
        }
        Some(K::HostUnreachable | K::NetworkUnreachable) => {
            return TransportError::connect(format!("{target} is unreachable"));
        }
        _ => {}
    }
    let detail = innermost(error);
    if error.is_connect() {
        TransportError::connect(format!("no connection to {target}: {detail}"))
    } else if error.is_body() || error.is_request() {
        TransportError::io(format!("the exchange with {target} broke: {detail}"))
    } else {
        TransportError::other(format!("{target}: {detail}"))
    }
}

/// What went wrong in a TLS handshake, in plain words.
fn describe_tls(error: &rustls::Error, target: &str) -> String {
    use rustls::{CertificateError as C, Error as E};
    match error {
        E::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => {
                format!("the certificate of {target} is signed by an unknown issuer")
            }
            C::Expired | C::ExpiredContext { .. } => {
                format!("the certificate of {target} has expired")
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                format!("the certificate of {target} is not valid yet")
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("the certificate of {target} is for another name (name mismatch)")
            }
            C::Revoked => format!("the certificate of {target} has been revoked"),
            other => format!("the certificate of {target} was rejected: {other:?}"),
        },
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => {
            format!("{target} does not speak TLS (a plain-HTTP port?)")
        }
        E::AlertReceived(alert) => {
            format!("{target} refused the TLS handshake (alert: {alert:?})")
        }
        E::PeerIncompatible(why) => {
            format!("{target} has no TLS version or cipher in common with us ({why:?})")
        }
        other => format!("the TLS handshake with {target} failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every attempt in flight holds this future in a box (about 1.5 KB once, past glibc's
    /// small-allocation cache of 1,032 bytes): it keeps reqwest's pending exchange and the
    /// answer, not the request, nor room for a body read.
    #[test]
    fn the_exchange_future_stays_small() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let transport = HttpTransport::new().expect("a transport");
        let size = transport.exchange_future_size();
        eprintln!("exchange future: {size} bytes");
        assert!(size <= 640, "the exchange future grew to {size} bytes");
    }
}
