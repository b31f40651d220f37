//! `Dispatcher::diagnose`: the "Test URL" diagnosis, over real HTTP on loopback and over a
//! scripted transport.

#[path = "support/server.rs"]
#[cfg(feature = "http")]
mod server;

use std::time::Duration;

use bytes::Bytes;
use posthook::{Diagnosis, Dispatcher, Finding, Timer, Transport, TransportError};

/// A timer that never fires: the deadline is left to the transport.
struct Never;
#[async_trait::async_trait]
impl Timer for Never {
    async fn sleep(&self, _: Duration) {
        std::future::pending::<()>().await;
    }
}

/// Answers every request with one status, header and body.
struct Answer(u16, Option<(&'static str, &'static str)>, &'static str);
#[async_trait::async_trait]
impl Transport for Answer {
    async fn send(&self, _: http::Request<Bytes>) -> Result<http::Response<Bytes>, TransportError> {
        let mut response = http::Response::builder().status(self.0);
        if let Some((name, value)) = self.1 {
            response = response.header(name, value);
        }
        Ok(response
            .body(Bytes::from_static(self.2.as_bytes()))
            .unwrap())
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn an_invalid_url_points_at_the_character() {
    let dispatcher = Dispatcher::new(Answer(200, None, ""), Never);
    let url = "https://example.com/hook?name=Mario Rossi";
    let diagnosis = block_on(dispatcher.diagnose(url));
    assert_eq!(
        diagnosis.finding,
        Finding::InvalidUrl {
            message: String::from("invalid character ' ' at byte 35"),
            offset: 35
        }
    );
    assert_eq!(diagnosis.elapsed, None, "nothing was sent");
    assert_eq!(
        diagnosis.to_string(),
        "invalid URL: invalid character ' ' at byte 35"
    );
    assert_eq!(&url[35..36], " ");
}

#[test]
fn a_literal_private_address_is_blocked_without_sending() {
    let dispatcher = Dispatcher::new(Answer(200, None, ""), Never);
    let diagnosis = block_on(dispatcher.diagnose("http://10.1.2.3/hook"));
    assert_eq!(diagnosis.finding.as_str(), "blocked");
    assert_eq!(
        diagnosis.to_string(),
        "blocked: address 10.1.2.3 is private: blocked by the address policy. \
         Webhooks may not point at this network."
    );
}

#[test]
fn a_redirect_names_its_location_and_an_error_shows_its_first_bytes() {
    let redirect = Dispatcher::new(
        Answer(301, Some(("location", "https://new.example.com/hook")), ""),
        Never,
    );
    let diagnosis = block_on(redirect.diagnose("https://old.example.com/hook"));
    assert_eq!(
        diagnosis.finding,
        Finding::Redirect {
            status: 301,
            location: Some(String::from("https://new.example.com/hook"))
        }
    );
    assert!(
        diagnosis
            .to_string()
            .starts_with("redirect: HTTP 301 to https://new.example.com/hook."),
        "{diagnosis}"
    );

    let long = "x".repeat(1000).leak();
    let failing = Dispatcher::new(Answer(500, None, long), Never);
    let diagnosis = block_on(failing.diagnose("https://example.com/hook"));
    match &diagnosis.finding {
        Finding::NotOk { status, excerpt } => {
            assert_eq!(*status, 500);
            assert_eq!(excerpt.len(), posthook::EXCERPT_BYTES);
        }
        other => panic!("{other:?}"),
    }
    let gone = Dispatcher::new(Answer(410, None, ""), Never);
    let diagnosis = block_on(gone.diagnose("https://example.com/hook"));
    assert!(
        diagnosis.to_string().contains("gone for good"),
        "{diagnosis}"
    );
}

#[test]
fn a_diagnosis_round_trips_through_json() {
    let dispatcher = Dispatcher::new(Answer(204, None, ""), Never);
    let diagnosis = block_on(dispatcher.diagnose("https://example.com/hook"));
    assert!(diagnosis.is_ok());
    let json = serde_json::to_value(&diagnosis).unwrap();
    assert_eq!(json["finding"]["finding"], "ok");
    assert_eq!(json["finding"]["status"], 204);
    let back: Diagnosis = serde_json::from_value(json).unwrap();
    assert_eq!(back, diagnosis);
}

#[cfg(feature = "http")]
mod http_transport {
    use std::net::IpAddr;
    use std::time::Duration;

    use posthook::http_transport::StaticResolver;
    use posthook::{
        AddressClass, AddressPolicy, Diagnosis, Dispatcher, Finding, HttpTransport, TokioTimer,
    };

    use super::server::{Reply, Server};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn dispatcher(policy: AddressPolicy) -> Dispatcher<HttpTransport, TokioTimer> {
        let resolver = StaticResolver::new()
            .with("receiver.test", [ip("127.0.0.1")])
            .with("rebinding.test", [ip("127.0.0.1"), ip("10.0.0.7")]);
        let transport = HttpTransport::builder()
            .address_policy(policy)
            .resolver(resolver)
            .build()
            .unwrap();
        Dispatcher::new(transport, TokioTimer::new()).attempt_timeout(Duration::from_millis(500))
    }

    fn loopback() -> AddressPolicy {
        AddressPolicy::public_only().allow(AddressClass::Loopback)
    }

    #[tokio::test]
    async fn ok_lists_the_addresses_and_the_time_taken() {
        let server = Server::start(Reply::Status(200)).await;
        let url = format!("http://receiver.test:{}/hook", server.port());
        let diagnosis = dispatcher(loopback()).diagnose(&url).await;
        assert_eq!(diagnosis.finding, Finding::Ok { status: 200 });
        assert!(diagnosis.elapsed.is_some());
        assert_eq!(diagnosis.addresses.len(), 1);
        assert_eq!(diagnosis.addresses[0].class, AddressClass::Loopback);
        assert!(diagnosis.addresses[0].allowed);
        assert!(
            diagnosis.to_string().starts_with("OK: HTTP 200 in "),
            "{diagnosis}"
        );
        assert_eq!(server.requests()[0].body.as_ref(), posthook::PROBE_BODY);
    }

    #[tokio::test]
    async fn each_failure_stage_has_its_own_finding() {
        let hang = Server::start(Reply::Hang).await;
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let d = dispatcher(loopback());
        let cases: Vec<(String, &str)> = vec![
            (String::from("http://nowhere.test/"), "dns"),
            (format!("http://rebinding.test:{}/", hang.port()), "blocked"),
            (format!("http://127.0.0.1:{closed}/"), "refused"),
            (format!("http://127.0.0.1:{}/", hang.port()), "no_answer"),
            (format!("https://127.0.0.1:{}/", hang.port()), "tls"),
        ];
        for (url, expected) in cases {
            let diagnosis: Diagnosis = d.diagnose(&url).await;
            assert_eq!(diagnosis.finding.as_str(), expected, "{url}: {diagnosis}");
            assert!(!diagnosis.is_ok());
        }
        // The rebinding name lists both answers, the forbidden one marked.
        let diagnosis = d
            .diagnose(&format!("http://rebinding.test:{}/", hang.port()))
            .await;
        let verdicts: Vec<(IpAddr, bool)> = diagnosis
            .addresses
            .iter()
            .map(|a| (a.ip, a.allowed))
            .collect();
        assert_eq!(verdicts, [(ip("127.0.0.1"), true), (ip("10.0.0.7"), false)]);
        assert_eq!(
            diagnosis.to_string(),
            "blocked: rebinding.test resolves to 10.0.0.7, which is private: blocked by the \
             address policy (it also resolves to 127.0.0.1 (loopback)). Webhooks may not point \
             at this network."
        );
        let diagnosis = d.diagnose(&format!("http://127.0.0.1:{closed}/")).await;
        assert_eq!(
            diagnosis.to_string(),
            format!(
                "refused: connection refused by 127.0.0.1:{closed} (nothing listens on that \
                 port). Is the receiver running, on that port?"
            )
        );
        assert_eq!(
            hang.requests().len(),
            1,
            "only the no-answer case reached it over HTTP"
        );
    }
}
