//! `HttpTransport` against real HTTP servers on 127.0.0.1: what reaches the server, what
//! never does, and how each failure is reported. Every connection goes to loopback.
#![cfg(feature = "http")]

#[path = "support/server.rs"]
mod server;

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use posthook::http_transport::{BodyCut, StaticResolver};
use posthook::{
    AddressClass, AddressPolicy, Dispatcher, Event, EventKind, FinalOutcome, HttpTransport,
    RetryPolicy, TokioTimer, Transport, TransportError, TransportErrorKind, WebhookUrl,
};
use server::{Reply, Server};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

/// Loopback allowed: the tests' receivers all live on 127.0.0.1.
fn loopback() -> AddressPolicy {
    AddressPolicy::public_only().allow(AddressClass::Loopback)
}

fn transport(policy: AddressPolicy, resolver: StaticResolver) -> HttpTransport {
    HttpTransport::builder()
        .address_policy(policy)
        .resolver(resolver)
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a transport")
}

fn post(url: &str, body: &'static [u8]) -> http::Request<Bytes> {
    http::Request::post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Bytes::from_static(body))
        .expect("a request")
}

async fn send_err(transport: &HttpTransport, url: &str) -> TransportError {
    transport
        .send(post(url, b"a=1"))
        .await
        .expect_err("no response expected")
}

#[tokio::test]
async fn a_delivery_reaches_the_server_with_the_exact_body_and_headers() {
    let server = Server::start(Reply::Status(204)).await;
    let dispatcher = Dispatcher::new(
        transport(loopback(), StaticResolver::new()),
        TokioTimer::new(),
    );
    let event = Event::sample(EventKind::DealUpdate);
    let url = WebhookUrl::parse(&server.url("/hooks/ac?tenant=7")).unwrap();
    let report = dispatcher.deliver(None, &url, event.encode()).await;

    assert_eq!(
        report.outcome,
        FinalOutcome::Delivered {
            status: http::StatusCode::NO_CONTENT
        }
    );
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let got = &seen[0];
    assert_eq!(got.method, http::Method::POST);
    assert_eq!(
        got.uri.path_and_query().unwrap().as_str(),
        "/hooks/ac?tenant=7"
    );
    assert_eq!(got.body, event.encode(), "the exact form body");
    assert_eq!(
        got.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert!(
        got.headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("posthook/")
    );
    assert_eq!(
        got.headers[posthook::DELIVERY_ID_HEADER].to_str().unwrap(),
        report.id.to_string()
    );
    assert_eq!(Event::decode(&got.body).unwrap(), event);
}

#[tokio::test]
async fn a_name_resolves_through_the_resolver_to_a_checked_address() {
    let server = Server::start(Reply::Status(200)).await;
    let resolver = StaticResolver::new().with("receiver.test", [ip("127.0.0.1")]);
    let transport = transport(loopback(), resolver);
    let url = format!("http://receiver.test:{}/hook", server.port());
    let response = transport.send(post(&url, b"a=1")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        server.requests()[0].headers["host"],
        format!("receiver.test:{}", server.port())
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let target = Server::start(Reply::Status(200)).await;
    let redirector = Server::start(Reply::Redirect(target.url("/elsewhere"))).await;
    let dispatcher = Dispatcher::new(
        transport(loopback(), StaticResolver::new()),
        TokioTimer::new(),
    );
    let url = WebhookUrl::parse(&redirector.url("/hook")).unwrap();
    let report = dispatcher
        .deliver(None, &url, Bytes::from_static(b"a=1"))
        .await;

    assert!(
        matches!(report.outcome, FinalOutcome::Failed { .. }),
        "{:?}",
        report.outcome
    );
    assert_eq!(report.attempts.len(), 1, "a redirect is not retried");
    assert_eq!(
        report.attempts[0].outcome.status(),
        Some(http::StatusCode::FOUND)
    );
    assert_eq!(redirector.requests().len(), 1);
    assert_eq!(target.accepted(), 0, "the redirect's target saw nothing");
}

/// A name the resolver maps to forbidden addresses is refused before any connection: the
/// listener the name would lead to (on the same port) accepts nothing.
#[tokio::test]
async fn names_resolving_to_forbidden_addresses_are_refused_before_connecting() {
    let server = Server::start(Reply::Status(200)).await;
    let cases: [(&str, Vec<IpAddr>, &str); 4] = [
        (
            "loopback.test",
            vec![ip("127.0.0.1")],
            "127.0.0.1, which is loopback",
        ),
        (
            "private.test",
            vec![ip("10.0.0.1")],
            "10.0.0.1, which is private",
        ),
        (
            "metadata.test",
            vec![ip("::ffff:169.254.169.254")],
            "::ffff:169.254.169.254, which is link-local",
        ),
        // One allowed answer and one forbidden: what a rebinding attack looks like.
        (
            "rebinding.test",
            vec![ip("127.0.0.1"), ip("10.0.0.1")],
            "10.0.0.1, which is private",
        ),
    ];
    let mut resolver = StaticResolver::new();
    for (host, addresses, _) in &cases {
        resolver.insert(*host, addresses.iter().copied());
    }
    // Loopback is allowed only for the rebinding case, so its first answer would pass.
    for (host, _, says) in &cases {
        let policy = if *host == "rebinding.test" {
            loopback()
        } else {
            AddressPolicy::public_only()
        };
        let transport = transport(policy, resolver.clone());
        let url = format!("http://{host}:{}/hook", server.port());
        let error = send_err(&transport, &url).await;
        assert_eq!(error.kind(), TransportErrorKind::Blocked, "{host}: {error}");
        assert!(!error.is_retryable());
        assert!(error.message().contains(host), "names the host: {error}");
        assert!(
            error.message().contains(says),
            "names the address and class: {error}"
        );
    }
    assert_eq!(server.accepted(), 0, "no connection was made");
}

#[tokio::test]
async fn literal_addresses_are_checked_before_the_request_leaves() {
    let server = Server::start(Reply::Status(200)).await;
    let transport = transport(AddressPolicy::public_only(), StaticResolver::new());
    for url in [
        server.url("/"),
        format!("http://2130706433:{}/", server.port()),
        format!("http://[::ffff:127.0.0.1]:{}/", server.port()),
    ] {
        let error = send_err(&transport, &url).await;
        assert_eq!(error.kind(), TransportErrorKind::Blocked, "{url}: {error}");
        assert!(error.message().contains("127.0.0.1"), "{error}");
    }
    assert_eq!(server.accepted(), 0);
}

#[tokio::test]
async fn a_dispatcher_over_http_transport_checks_urls_by_the_transport_policy() {
    let server = Server::start(Reply::Status(200)).await;
    let resolver = StaticResolver::new().with("evil.example.test", [ip("127.0.0.1")]);
    let strict = Dispatcher::new(
        transport(AddressPolicy::public_only(), resolver.clone()),
        TokioTimer::new(),
    );
    assert_eq!(
        strict.effective_address_policy(),
        &AddressPolicy::public_only()
    );
    // A name: refused by the transport, one attempt, never retried.
    let url = WebhookUrl::parse(&format!("http://evil.example.test:{}/", server.port())).unwrap();
    let report = strict.deliver(None, &url, Bytes::from_static(b"a=1")).await;
    assert!(
        matches!(report.outcome, FinalOutcome::Failed { .. }),
        "{:?}",
        report.outcome
    );
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(
        report.attempts[0].outcome.error().map(TransportError::kind),
        Some(TransportErrorKind::Blocked)
    );
    assert_eq!(server.accepted(), 0);

    // One call allows loopback for both checks: the dispatcher's and the transport's.
    let relaxed = Dispatcher::new(transport(loopback(), resolver), TokioTimer::new());
    assert_eq!(relaxed.effective_address_policy(), &loopback());
    for url in [
        server.url("/literal"),
        format!("http://evil.example.test:{}/", server.port()),
    ] {
        let url = WebhookUrl::parse(&url).unwrap();
        let report = relaxed
            .deliver(None, &url, Bytes::from_static(b"a=1"))
            .await;
        assert!(report.outcome.is_delivered(), "{url}: {:?}", report.outcome);
    }
}

/// The shape a blocked destination ends in, literal or name: one attempt of kind
/// `Blocked` (its message naming the address), `Failed` with the reason
/// `"blocked error: <message>: not retried"`, under a policy that would retry.
fn assert_blocked_shape(url: &str, report: &posthook::DeliveryReport) -> String {
    assert_eq!(report.attempts.len(), 1, "{url}: one attempt");
    let error = report.attempts[0]
        .outcome
        .error()
        .expect("a transport error");
    assert_eq!(error.kind(), TransportErrorKind::Blocked, "{url}: {error}");
    assert!(
        error.message().contains("blocked by the address policy"),
        "{url}: {error}"
    );
    let FinalOutcome::Failed { reason } = &report.outcome else {
        panic!("{url}: {:?}", report.outcome);
    };
    assert_eq!(
        reason,
        &format!("blocked error: {}: not retried", error.message())
    );
    error.message().to_owned()
}

#[tokio::test]
async fn a_blocked_literal_and_a_blocked_name_end_alike() {
    let server = Server::start(Reply::Status(200)).await;
    let resolver = StaticResolver::new().with("evil.example.test", [ip("127.0.0.1")]);
    let dispatcher = Dispatcher::new(
        transport(AddressPolicy::public_only(), resolver),
        TokioTimer::new(),
    )
    .retry_policy(RetryPolicy::default());
    let port = server.port();
    // Literals (and `localhost`), refused by the dispatcher before the transport sees them;
    // a name, refused by the transport after resolving.
    let cases = [
        (
            format!("http://127.0.0.1:{port}/"),
            "address 127.0.0.1 is loopback",
        ),
        // (`http://[::1]/` is not a webhook URL: `[` is outside ActiveCampaign's set.)
        (
            format!("http://2130706433:{port}/"),
            "address 127.0.0.1 is loopback",
        ),
        (
            format!("http://10.1.2.3:{port}/"),
            "address 10.1.2.3 is private",
        ),
        (
            format!("http://localhost:{port}/"),
            "address 127.0.0.1 is loopback",
        ),
        (
            format!("http://evil.example.test:{port}/"),
            "evil.example.test resolves to 127.0.0.1, which is loopback",
        ),
    ];
    for (url, says) in &cases {
        let report = dispatcher
            .deliver(
                None,
                &WebhookUrl::parse(url).unwrap(),
                Bytes::from_static(b"a=1"),
            )
            .await;
        let message = assert_blocked_shape(url, &report);
        assert!(message.starts_with(says), "{url}: {message}");
    }
    assert_eq!(server.accepted(), 0, "nothing reached the server");
}

#[tokio::test]
async fn an_unknown_name_is_a_dns_error() {
    let transport = transport(AddressPolicy::public_only(), StaticResolver::new());
    let error = send_err(&transport, "http://nowhere.test/hook").await;
    assert_eq!(error.kind(), TransportErrorKind::Dns, "{error}");
    assert_eq!(
        error.message(),
        "nowhere.test does not resolve: no such host"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let transport = transport(loopback(), StaticResolver::new());
    let error = send_err(&transport, &format!("http://127.0.0.1:{port}/")).await;
    assert_eq!(error.kind(), TransportErrorKind::Refused, "{error}");
    assert!(error.kind().before_connection());
    assert_eq!(
        error.message(),
        format!("connection refused by 127.0.0.1:{port} (nothing listens on that port)")
    );
}

#[tokio::test]
async fn a_server_that_never_answers_hits_the_deadline() {
    let server = Server::start(Reply::Hang).await;
    // The transport's own timeout.
    let transport = HttpTransport::builder()
        .address_policy(loopback())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = send_err(&transport, &server.url("/")).await;
    assert_eq!(error.kind(), TransportErrorKind::Timeout, "{error}");
    assert!(
        !error.kind().before_connection(),
        "it connected, then got no answer"
    );

    // The dispatcher's deadline, with the transport's left long.
    let dispatcher = Dispatcher::new(
        transport_with_timeout(Duration::from_secs(60)),
        TokioTimer::new(),
    )
    .attempt_timeout(Duration::from_millis(300))
    .retry_policy(RetryPolicy::never());
    let url = WebhookUrl::parse(&server.url("/")).unwrap();
    let report = dispatcher
        .deliver(None, &url, Bytes::from_static(b"a=1"))
        .await;
    assert!(!report.outcome.is_delivered());
    assert_eq!(
        report.attempts[0].outcome.error().map(TransportError::kind),
        Some(TransportErrorKind::Timeout)
    );
    assert_eq!(server.requests().len(), 2, "both requests arrived");
}

fn transport_with_timeout(timeout: Duration) -> HttpTransport {
    HttpTransport::builder()
        .address_policy(loopback())
        .timeout(timeout)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_100_mb_response_is_cut_at_the_limit() {
    const HUNDRED_MB: u64 = 100 * 1024 * 1024;
    let server = Server::start(Reply::Stream(HUNDRED_MB)).await;
    let transport = transport(loopback(), StaticResolver::new());
    let response = transport
        .send(post(&server.url("/"), b"a=1"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body().len(), 64 * 1024, "the default limit");
    assert_eq!(
        response.extensions().get::<BodyCut>(),
        Some(&BodyCut::Limit(64 * 1024))
    );
    // The connection is closed after the limit, so the server stops: what it produced is
    // what fits in the socket buffers, far from the 100 MB it was asked for.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        server.streamed() < HUNDRED_MB / 4,
        "the server streamed {} bytes",
        server.streamed()
    );

    let small = HttpTransport::builder()
        .address_policy(loopback())
        .max_response_bytes(10)
        .build()
        .unwrap();
    let texty = Server::start(Reply::Body(500, "database is down: connection refused")).await;
    let response = small.send(post(&texty.url("/"), b"a=1")).await.unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.body().as_ref(), b"database i");
}

#[tokio::test]
async fn https_to_a_plain_http_port_is_a_tls_error_that_says_so() {
    let server = Server::start(Reply::Status(200)).await;
    let transport = transport(loopback(), StaticResolver::new());
    let error = send_err(&transport, &format!("https://127.0.0.1:{}/", server.port())).await;
    assert_eq!(error.kind(), TransportErrorKind::Tls, "{error}");
    assert_eq!(
        error.message(),
        format!(
            "127.0.0.1:{} does not speak TLS (a plain-HTTP port?)",
            server.port()
        )
    );
}

#[tokio::test]
async fn connections_are_pooled_and_sends_run_concurrently() {
    let server = Server::start(Reply::Status(200)).await;
    let transport = transport(loopback(), StaticResolver::new());
    for _ in 0..20 {
        let response = transport
            .send(post(&server.url("/"), b"a=1"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        server.accepted(),
        1,
        "twenty sequential sends share one connection"
    );

    let slow = Server::start(Reply::Slow(Duration::from_millis(100))).await;
    let sends = (0..16).map(|_| {
        let transport = transport.clone();
        let url = slow.url("/");
        tokio::spawn(async move { transport.send(post(&url, b"a=1")).await })
    });
    for send in futures_util::future::join_all(sends).await {
        assert_eq!(send.unwrap().unwrap().status(), 200);
    }
    assert_eq!(slow.requests().len(), 16);
    assert!(
        slow.accepted() > 1,
        "concurrent sends open connections of their own"
    );
}

/// The child half of `the_environment_proxy_is_ignored`: run in a process of its own with
/// `HTTP_PROXY` and friends set, it sends to the target directly.
#[tokio::test]
async fn child_sends_with_proxy_variables_set() {
    let Ok(target) = std::env::var("POSTHOOK_TEST_PROXY_CHILD_TARGET") else {
        return; // only meaningful as the child of the test below
    };
    let transport = transport(loopback(), StaticResolver::new());
    let response = transport.send(post(&target, b"a=1")).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_environment_proxy_is_ignored() {
    let target = Server::start(Reply::Status(200)).await;
    let proxy = Server::start(Reply::Status(502)).await;
    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_sends_with_proxy_variables_set",
            "--nocapture",
        ])
        .env("POSTHOOK_TEST_PROXY_CHILD_TARGET", target.url("/via-env?"))
        .env("HTTP_PROXY", proxy.url(""))
        .env("http_proxy", proxy.url(""))
        .env("HTTPS_PROXY", proxy.url(""))
        .env("ALL_PROXY", proxy.url(""))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "child failed: {out}");
    assert!(out.contains("1 passed"), "the child ran its test: {out}");
    assert_eq!(
        target.requests().len(),
        1,
        "the target got the request directly"
    );
    assert_eq!(
        proxy.accepted(),
        0,
        "the proxy from the environment was not used"
    );
}

#[tokio::test]
async fn an_explicit_proxy_is_used() {
    let proxy = Server::start(Reply::Status(200)).await;
    let transport = HttpTransport::builder()
        .address_policy(AddressPolicy::public_only())
        .resolver(StaticResolver::new().with("receiver.test", [ip("93.184.216.34")]))
        .proxy(proxy.url(""))
        .build()
        .unwrap();
    // The proxy forwards plain-HTTP requests; this test proxy just answers 200 itself.
    let response = transport
        .send(post("http://receiver.test/hook", b"a=1"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = proxy.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].uri.to_string(), "http://receiver.test/hook");
    // Literal IPs are still checked, proxy or not.
    let error = send_err(&transport, "http://10.0.0.1/hook").await;
    assert_eq!(error.kind(), TransportErrorKind::Blocked);
    assert_eq!(proxy.requests().len(), 1);
}

#[test]
fn builder_errors_are_typed() {
    let error = HttpTransport::builder()
        .add_root_certificate_pem("not a certificate")
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "root certificate: no PEM certificate found"
    );
    let error = HttpTransport::builder()
        .proxy("::not a url")
        .build()
        .unwrap_err();
    assert!(
        error.to_string().starts_with("proxy ::not a url:"),
        "{error}"
    );
}

#[test]
fn debug_shows_the_policy_and_nothing_secret() {
    let transport = HttpTransport::builder()
        .proxy("http://user:hunter2@proxy.test:3128")
        .build()
        .unwrap();
    let debug = format!("{transport:?}");
    assert!(debug.contains("HttpTransport"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
    let debug = format!(
        "{:?}",
        HttpTransport::builder().proxy("http://user:hunter2@proxy.test:3128")
    );
    assert!(!debug.contains("hunter2"), "{debug}");
}

/// A TLS server on 127.0.0.1 with a certificate made for the test, answering `200` to one
/// request per connection.
mod tls {
    use std::sync::Arc;

    use rcgen::{CertificateParams, KeyPair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;

    /// Starts the server; returns its port and the certificate's PEM.
    pub(crate) async fn start(name: &str, expired: bool) -> (u16, String) {
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.self_signed(&key).expect("a certificate");
        let pem = cert.pem();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key"),
            )
            .expect("a server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer =
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = tls.write_all(answer).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        (port, pem)
    }
}

fn tls_transport(root: Option<&str>) -> HttpTransport {
    let mut builder = HttpTransport::builder()
        .address_policy(loopback())
        .resolver(StaticResolver::new().with("receiver.test", [ip("127.0.0.1")]));
    if let Some(pem) = root {
        builder = builder.add_root_certificate_pem(pem);
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn tls_delivers_to_a_trusted_certificate() {
    let (port, pem) = tls::start("receiver.test", false).await;
    let response = tls_transport(Some(&pem))
        .send(post(&format!("https://receiver.test:{port}/hook"), b"a=1"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn tls_errors_say_what_is_wrong_with_the_certificate() {
    let url = |port: u16| format!("https://receiver.test:{port}/hook");

    let (port, _) = tls::start("receiver.test", false).await;
    let error = send_err(&tls_transport(None), &url(port)).await;
    assert_eq!(error.kind(), TransportErrorKind::Tls, "{error}");
    assert_eq!(
        error.message(),
        format!("the certificate of receiver.test:{port} is signed by an unknown issuer")
    );

    let (port, pem) = tls::start("other.test", false).await;
    let error = send_err(&tls_transport(Some(&pem)), &url(port)).await;
    assert_eq!(
        error.message(),
        format!("the certificate of receiver.test:{port} is for another name (name mismatch)")
    );

    let (port, pem) = tls::start("receiver.test", true).await;
    let error = send_err(&tls_transport(Some(&pem)), &url(port)).await;
    assert_eq!(
        error.message(),
        format!("the certificate of receiver.test:{port} has expired")
    );
    assert!(error.is_retryable(), "a receiver may renew its certificate");
}

#[tokio::test]
async fn an_allow_listed_network_passes_and_nothing_else_does() {
    let server = Server::start(Reply::Status(200)).await;
    let network: posthook::IpNetwork = "127.0.0.0/8".parse().unwrap();
    let policy = AddressPolicy::public_only().allow_network(network);
    assert!(
        !policy.allows(AddressClass::Loopback),
        "the class itself stays forbidden"
    );
    let resolver = StaticResolver::new()
        .with("docker-receiver.test", [ip("127.0.0.1")])
        .with("half-private.test", [ip("127.0.0.1"), ip("10.0.0.1")]);
    let dispatcher = Dispatcher::new(transport(policy, resolver), TokioTimer::new());
    for url in [
        server.url("/literal"),
        format!("http://docker-receiver.test:{}/name", server.port()),
    ] {
        let url = WebhookUrl::parse(&url).unwrap();
        let report = dispatcher
            .deliver(None, &url, Bytes::from_static(b"a=1"))
            .await;
        assert!(report.outcome.is_delivered(), "{url}: {:?}", report.outcome);
    }
    let url = WebhookUrl::parse(&format!("http://half-private.test:{}/", server.port())).unwrap();
    let report = dispatcher
        .deliver(None, &url, Bytes::from_static(b"a=1"))
        .await;
    assert_eq!(
        report.attempts[0].outcome.error().map(TransportError::kind),
        Some(TransportErrorKind::Blocked),
        "10.0.0.1 is outside the allow-list"
    );
    assert_eq!(server.requests().len(), 2);
}

/// A listener whose accept queue is full drops new connection attempts (Linux drops the SYN):
/// the connect timeout fires, on loopback, without any other host.
#[tokio::test]
async fn a_connection_that_is_never_accepted_is_a_connect_timeout() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    // Fill the accept queue; the listener never accepts.
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let connect = tokio::net::TcpStream::connect(addr);
        if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
            fillers.push(stream);
        }
    }
    let transport = HttpTransport::builder()
        .address_policy(loopback())
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = send_err(&transport, &format!("http://{addr}/")).await;
    if fillers.is_empty() {
        panic!("could not fill the accept queue: {error}");
    }
    assert_eq!(error.kind(), TransportErrorKind::ConnectTimeout, "{error}");
    assert_eq!(error.message(), format!("no connection to {addr} in time"));
    drop(listener);
}

#[tokio::test]
async fn an_attempt_deadline_bounds_the_body_too() {
    let server = Server::start(Reply::StallBody).await;
    // The transport's own timeout is long; the attempt's deadline is what ends it.
    let transport = transport_with_timeout(Duration::from_secs(60));
    assert!(transport.enforces_timeout());
    let url = WebhookUrl::parse(&server.url("/stall")).unwrap();
    let request = post(url.as_str(), b"a=1");
    let sent = transport.send_attempt(&url, request, Duration::from_millis(300));
    // A guard against a hang, not a timing claim: the deadline is 300 ms.
    let response = tokio::time::timeout(Duration::from_secs(20), sent)
        .await
        .expect("the exchange ended")
        .expect("the status line and headers arrived");
    assert_eq!(response.status(), 200);
    assert_eq!(response.body().as_ref(), b"ok, and then");
    match response.extensions().get::<BodyCut>() {
        Some(BodyCut::Error(reason)) => assert!(!reason.is_empty()),
        other => panic!("expected the body cut by the deadline, got {other:?}"),
    }
}

#[tokio::test]
async fn an_attempt_goes_to_its_request_uri_when_the_url_handed_over_is_another() {
    let here = Server::start(Reply::Status(204)).await;
    let elsewhere = Server::start(Reply::Status(204)).await;
    let transport = transport(loopback(), StaticResolver::new());
    let handed = WebhookUrl::parse(&elsewhere.url("/x")).unwrap();
    // `as_url` parsed (and kept) for the URL handed over, but the request is for `here`.
    assert!(handed.as_url().is_some());
    let request = post(&here.url("/y"), b"a=1");
    assert!(!handed.is_uri_of(request.uri()));
    let response = transport
        .send_attempt(&handed, request, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(here.requests().len(), 1);
    assert_eq!(here.requests()[0].uri.path(), "/y");
    assert!(elsewhere.requests().is_empty());
}

#[tokio::test]
async fn a_literal_ip_is_checked_when_the_kept_parse_is_used() {
    // The dispatcher's path: the request built from the URL, the URL handed over.
    let transport = transport(AddressPolicy::public_only(), StaticResolver::new());
    let url = WebhookUrl::parse("http://2130706433:9/hook").unwrap();
    let request = post(url.as_str(), b"a=1");
    assert!(url.is_uri_of(request.uri()));
    let error = transport
        .send_attempt(&url, request, Duration::from_secs(5))
        .await
        .expect_err("blocked");
    assert_eq!(error.kind(), TransportErrorKind::Blocked, "{error}");
}

#[tokio::test]
async fn an_attempt_deadline_longer_than_the_transports_own_applies() {
    let server = Server::start(Reply::Slow(Duration::from_millis(600))).await;
    // The transport alone gives up after 200 ms...
    let transport = transport_with_timeout(Duration::from_millis(200));
    let error = send_err(&transport, &server.url("/slow")).await;
    assert_eq!(error.kind(), TransportErrorKind::Timeout, "{error}");
    assert!(error.to_string().contains("200ms"), "{error}");
    // ...but an attempt with a deadline of its own waits for it.
    let url = WebhookUrl::parse(&server.url("/slow")).unwrap();
    let response = transport
        .send_attempt(&url, post(url.as_str(), b"a=1"), Duration::from_secs(10))
        .await
        .expect("answered within the attempt's deadline");
    assert_eq!(response.status(), 200);
}

/// A name is judged the same with or without its final dot: the system resolver finds
/// `localhost.` as it finds `localhost`, so the transport refuses it as loopback (a blocked
/// address, not retried) instead of failing to resolve it (a DNS error, retried).
#[tokio::test]
async fn a_trailing_dot_does_not_hide_a_name_from_the_address_policy() {
    use posthook::http_transport::{Resolve, SystemResolver};
    let plain = SystemResolver::new().resolve("localhost").await.unwrap();
    assert!(!plain.is_empty());
    for dotted in ["localhost.", "LocalHost."] {
        let got = SystemResolver::new().resolve(dotted).await.unwrap();
        assert_eq!(got, plain, "{dotted}");
    }
    let server = Server::start(Reply::Status(204)).await;
    let port = server
        .url("/")
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let guarded = HttpTransport::builder()
        .address_policy(AddressPolicy::public_only())
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for host in ["localhost", "localhost.", "LOCALHOST."] {
        let error = send_err(&guarded, &format!("http://{host}:{port}/hook")).await;
        assert_eq!(error.kind(), TransportErrorKind::Blocked, "{host}: {error}");
        assert!(!error.is_retryable());
    }
}

/// The status decides: a receiver that answers and then trickles its body holds the attempt
/// for the body budget only, not until the attempt's deadline.
#[tokio::test]
async fn a_body_that_never_ends_is_cut_after_its_budget_not_the_deadline() {
    let server = Server::start(Reply::StallBody).await;
    let transport = HttpTransport::builder()
        .address_policy(loopback())
        .timeout(Duration::from_secs(600))
        .body_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let url = WebhookUrl::parse(&server.url("/stall")).unwrap();
    let sent = transport.send_attempt(&url, post(url.as_str(), b"a=1"), Duration::from_secs(600));
    // A guard against a hang, not a timing claim: the deadline is 10 minutes.
    let response = tokio::time::timeout(Duration::from_secs(30), sent)
        .await
        .expect("decided on the status, not held until the deadline")
        .expect("the status line and headers arrived");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.body().as_ref(),
        b"ok, and then",
        "what came is kept"
    );
    match response.extensions().get::<BodyCut>() {
        Some(BodyCut::Error(reason)) => {
            assert!(reason.contains("did not end within 200ms"), "{reason}")
        }
        other => panic!("expected the body cut by its budget, got {other:?}"),
    }
}
