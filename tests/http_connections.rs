//! How many connections `HttpTransport` opens, keeps and shares, counted by real receivers
//! on 127.0.0.1 that count their sockets: a fan-out to one host with the defaults stays
//! within the per-host limit and reuses its connections; a slow host sustained fails
//! nothing; a host that hangs cannot hold the deliveries queued for it forever; a TLS
//! receiver that offers HTTP/2 is spoken to in HTTP/2. No test asserts a duration.
#![cfg(feature = "http")]

use std::convert::Infallible;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use posthook::http_transport::StaticResolver;
use posthook::{
    AddressClass, AddressPolicy, Dispatcher, Event, EventKind, FinalOutcome, HttpTransport,
    Registry, RetryPolicy, Source, TokioTimer, Transport, TransportErrorKind, Webhook,
};
use tokio::io::{AsyncRead, AsyncWrite};

/// The default per-host limit.
const LIMIT: usize = 32;

fn loopback() -> AddressPolicy {
    AddressPolicy::public_only().allow(AddressClass::Loopback)
}

/// How a counting receiver answers.
#[derive(Clone, Copy)]
enum Answer {
    /// `204` after this wait.
    After(Duration),
    /// Never.
    Hang,
}

/// What a receiver saw: sockets accepted, open now, open at most at once; requests and
/// their HTTP versions.
#[derive(Default)]
struct Counts {
    opened: AtomicUsize,
    open: AtomicUsize,
    most_open: AtomicUsize,
    requests: AtomicUsize,
    versions: Mutex<Vec<http::Version>>,
}

struct Receiver {
    port: u16,
    counts: Arc<Counts>,
}

impl Receiver {
    fn opened(&self) -> usize {
        self.counts.opened.load(Ordering::SeqCst)
    }

    fn most_open(&self) -> usize {
        self.counts.most_open.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.counts.requests.load(Ordering::SeqCst)
    }

    fn versions(&self) -> Vec<http::Version> {
        self.counts.versions.lock().unwrap().clone()
    }
}

/// A receiver on 127.0.0.1: a raw `TcpListener` that counts every socket it accepts and
/// every one still open, in front of hyper (HTTP/1.1 or HTTP/2, whichever the client
/// speaks; over TLS when `tls` is given, offering `h2` and `http/1.1`).
async fn receiver(answer: Answer, tls: Option<tokio_rustls::TlsAcceptor>) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let counts = Arc::new(Counts::default());
    let shared = Arc::clone(&counts);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            shared.opened.fetch_add(1, Ordering::SeqCst);
            let now = shared.open.fetch_add(1, Ordering::SeqCst) + 1;
            shared.most_open.fetch_max(now, Ordering::SeqCst);
            let (counts, tls) = (Arc::clone(&shared), tls.clone());
            tokio::spawn(async move {
                match tls {
                    None => serve(tcp, answer, &counts).await,
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(tcp).await {
                            serve(stream, answer, &counts).await;
                        }
                    }
                }
                counts.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Receiver { port, counts }
}

async fn serve(
    io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    answer: Answer,
    counts: &Arc<Counts>,
) {
    let counts = Arc::clone(counts);
    let service = hyper::service::service_fn(move |request: http::Request<_>| {
        let counts = Arc::clone(&counts);
        async move {
            counts.versions.lock().unwrap().push(request.version());
            let body = axum::body::to_bytes(Body::new(request.into_body()), 1 << 20).await;
            assert!(body.is_ok(), "the body arrives whole");
            counts.requests.fetch_add(1, Ordering::SeqCst);
            match answer {
                Answer::After(wait) => tokio::time::sleep(wait).await,
                Answer::Hang => std::future::pending().await,
            }
            let mut response = http::Response::new(Body::empty());
            *response.status_mut() = http::StatusCode::NO_CONTENT;
            Ok::<_, Infallible>(response)
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// `count` webhooks on one URL.
fn registry(url: &str, count: usize) -> Registry {
    let mut registry = Registry::new();
    for n in 0..count {
        registry.insert(
            Webhook::builder(format!("hook {n}"), url)
                .events([EventKind::Subscribe])
                .sources(Source::ALL)
                .build()
                .unwrap(),
        );
    }
    registry
}

/// The transport with its defaults, loopback allowed.
fn default_transport() -> HttpTransport {
    HttpTransport::builder()
        .address_policy(loopback())
        .build()
        .unwrap()
}

/// The failures of a report, for the assertion message.
fn failures(report: &posthook::DispatchReport) -> Vec<String> {
    report
        .deliveries
        .iter()
        .filter(|d| !matches!(d.outcome, FinalOutcome::Delivered { .. }))
        .map(|d| format!("{:?}", d.outcome))
        .take(5)
        .collect()
}

/// On a current-thread runtime, the counts are exact: see the multi-threaded test below
/// for the other.
#[tokio::test]
async fn a_fan_out_of_1000_to_one_host_opens_at_most_the_limit_and_the_next_opens_none() {
    let receiver = receiver(Answer::After(Duration::ZERO), None).await;
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    let registry = registry(&url, 1_000);
    let dispatcher = Dispatcher::new(default_transport(), TokioTimer::new());
    let event = Event::sample(EventKind::Subscribe);

    let report = dispatcher.dispatch(&registry, &event).await;
    assert!(report.all_delivered(), "{:?}", failures(&report));
    assert_eq!(receiver.requests(), 1_000);
    let first = receiver.opened();
    assert!(
        receiver.most_open() <= LIMIT,
        "{} sockets open at once",
        receiver.most_open()
    );
    assert!(first <= LIMIT, "{first} sockets opened for one host");

    let report = dispatcher.dispatch(&registry, &event).await;
    assert!(report.all_delivered(), "{:?}", failures(&report));
    assert_eq!(receiver.requests(), 2_000);
    assert_eq!(
        receiver.opened(),
        first,
        "the second dispatch reuses the first one's connections"
    );
    assert!(receiver.most_open() <= LIMIT);
    assert!(
        receiver
            .versions()
            .iter()
            .all(|&v| v == http::Version::HTTP_11)
    );
}

#[tokio::test]
async fn a_slow_receiver_sustained_over_dispatches_in_a_row_fails_nothing() {
    let receiver = receiver(Answer::After(Duration::from_millis(50)), None).await;
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    let registry = registry(&url, 1_000);
    // No retries: a single failure would show as one.
    let dispatcher =
        Dispatcher::new(default_transport(), TokioTimer::new()).retry_policy(RetryPolicy::never());
    let event = Event::sample(EventKind::Subscribe);
    for round in 0..4 {
        let report = dispatcher.dispatch(&registry, &event).await;
        assert!(
            report.all_delivered(),
            "round {round}: {:?}",
            failures(&report)
        );
        assert!(report.deliveries.iter().all(|d| d.attempts.len() == 1));
    }
    assert_eq!(receiver.requests(), 4_000);
    assert!(receiver.opened() <= LIMIT, "{} opened", receiver.opened());
    assert!(receiver.most_open() <= LIMIT);
}

/// On a multi-threaded runtime hyper puts an HTTP/1.1 connection back into its pool on a
/// task of its own when the connection was not ready at once; a turn handed over before
/// that task ran opens a connection more (which the pool closes again once it has its
/// fill of idle ones). A few per thousand exchanges, never one per exchange: four
/// dispatches of 1,000 stay well under twice the limit, where the unlimited transport
/// opened thousands per dispatch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_multi_threaded_runtime_connections_stay_near_the_limit() {
    let receiver = receiver(Answer::After(Duration::ZERO), None).await;
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    let registry = Arc::new(registry(&url, 1_000));
    let dispatcher = Arc::new(
        Dispatcher::new(default_transport(), TokioTimer::new()).retry_policy(RetryPolicy::never()),
    );
    for round in 0..4 {
        // On a worker thread, as an application's task would run it.
        let (dispatcher, registry) = (Arc::clone(&dispatcher), Arc::clone(&registry));
        let report = tokio::spawn(async move {
            let event = Event::sample(EventKind::Subscribe);
            dispatcher.dispatch(&registry, &event).await
        })
        .await
        .unwrap();
        assert!(
            report.all_delivered(),
            "round {round}: {:?}",
            failures(&report)
        );
    }
    assert_eq!(receiver.requests(), 4_000);
    assert!(
        receiver.opened() < 2 * LIMIT,
        "{} opened",
        receiver.opened()
    );
    assert!(
        receiver.most_open() < 2 * LIMIT,
        "{} open",
        receiver.most_open()
    );
}

/// The wait for a turn is not part of the attempt: deliveries queued behind others for
/// longer than the attempt timeout still get their full attempt.
#[tokio::test]
async fn the_wait_for_a_connection_does_not_count_against_the_attempt_deadline() {
    let receiver = receiver(Answer::After(Duration::from_millis(100)), None).await;
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    let registry = registry(&url, 20);
    let transport = HttpTransport::builder()
        .address_policy(loopback())
        .max_connections_per_host(NonZeroUsize::new(2).unwrap())
        .build()
        .unwrap();
    // Ten rounds of 100 ms on two connections: the last in line waits about 900 ms, well
    // past its 500 ms attempt deadline, and is delivered all the same.
    let dispatcher = Dispatcher::new(transport, TokioTimer::new())
        .attempt_timeout(Duration::from_millis(500))
        .retry_policy(RetryPolicy::never());
    let report = dispatcher
        .dispatch(&registry, &Event::sample(EventKind::Subscribe))
        .await;
    assert!(report.all_delivered(), "{:?}", failures(&report));
    assert_eq!(receiver.opened(), 2);
}

/// A host that never answers: the exchanges in flight end at their deadline, the ones
/// waiting for a turn at the wait's bound, with an error that says so; nothing more than
/// the limit ever reaches the host.
#[tokio::test]
async fn a_host_that_hangs_holds_a_queued_delivery_no_longer_than_the_wait_bound() {
    let receiver = receiver(Answer::Hang, None).await;
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    let transport = HttpTransport::builder()
        .address_policy(loopback())
        .max_connections_per_host(NonZeroUsize::new(1).unwrap())
        .connection_wait_timeout(Duration::from_millis(200))
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let post = || {
        http::Request::post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::from_static(b"a=1"))
            .unwrap()
    };
    let (first, second) = tokio::join!(transport.send(post()), async {
        // Polled after the first has taken the host's only turn.
        tokio::task::yield_now().await;
        transport.send(post()).await
    });
    let first = first.expect_err("the host never answers");
    assert_eq!(first.kind(), TransportErrorKind::Timeout, "{first}");
    let second = second.expect_err("no turn came free");
    assert_eq!(
        second.kind(),
        TransportErrorKind::ConnectTimeout,
        "{second}"
    );
    assert!(
        second.message().starts_with(&format!(
            "no connection to 127.0.0.1:{} came free within 200ms (1 exchanges in flight",
            receiver.port
        )),
        "{second}"
    );
    assert!(second.kind().before_connection());
    assert_eq!(receiver.requests(), 1, "the queued request never left");
    assert_eq!(receiver.opened(), 1);
}

/// A TLS server with a certificate for `receiver.test`, offering `h2` and `http/1.1`.
fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, String) {
    use tokio_rustls::rustls;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["receiver.test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        cert.pem(),
    )
}

#[tokio::test]
async fn a_tls_receiver_that_offers_h2_is_spoken_to_in_h2_over_one_connection() {
    let (acceptor, pem) = tls_acceptor();
    let receiver = receiver(Answer::After(Duration::from_millis(20)), Some(acceptor)).await;
    let transport = HttpTransport::builder()
        .address_policy(loopback())
        .resolver(StaticResolver::new().with("receiver.test", ["127.0.0.1".parse().unwrap()]))
        .add_root_certificate_pem(pem)
        .build()
        .unwrap();
    let url = format!("https://receiver.test:{}/hook", receiver.port);
    let post = || {
        http::Request::post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::from_static(b"a=1"))
            .unwrap()
    };
    let response = transport.send(post()).await.unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.version(), http::Version::HTTP_2);

    // Fifty at once: one connection carries them all.
    let sends = (0..50).map(|_| transport.send(post()));
    for response in futures_util::future::join_all(sends).await {
        let response = response.unwrap();
        assert_eq!(response.version(), http::Version::HTTP_2);
    }
    assert_eq!(receiver.requests(), 51);
    assert_eq!(receiver.opened(), 1, "HTTP/2 multiplexes on one connection");
    assert!(
        receiver
            .versions()
            .iter()
            .all(|&v| v == http::Version::HTTP_2)
    );
}

#[tokio::test]
async fn plain_http_stays_http_1_1() {
    let receiver = receiver(Answer::After(Duration::ZERO), None).await;
    let url = format!("http://127.0.0.1:{}/hook", receiver.port);
    let request = http::Request::post(&url).body(Bytes::new()).unwrap();
    let response = default_transport().send(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_11);
    assert_eq!(receiver.versions(), [http::Version::HTTP_11]);
}
