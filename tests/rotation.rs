//! Secret rotation with an overlap: `Webhook::rotate` and `Dispatcher::signing_secret_until`
//! on a clock the test moves. Before the cutoff every attempt carries a signature per secret,
//! each verifying with its own secret alone; from the cutoff on, the new one only — decided
//! at each attempt by the dispatcher's `Timer::now`. And Python's `standardwebhooks` agrees.
#![cfg(feature = "signing")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::StatusCode;
use posthook::sign::{SignError, SigningSecret, verify};
use posthook::{
    Delivery, DeliveryId, Dispatcher, Event, EventKind, FinalOutcome, Registry, RetryPolicy,
    Source, Step, Timer, Transport, TransportError, Webhook,
};
use proptest::prelude::*;

/// A clock the test sets; a sleep moves it forward by the time asked for, at once.
#[derive(Clone)]
struct Clock(Arc<Mutex<SystemTime>>);

impl Clock {
    fn at(now: SystemTime) -> Clock {
        Clock(Arc::new(Mutex::new(now)))
    }

    fn set(&self, now: SystemTime) {
        *self.0.lock().unwrap() = now;
    }
}

#[async_trait::async_trait]
impl Timer for Clock {
    async fn sleep(&self, duration: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += duration;
    }

    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

/// A received request: its headers and body.
#[derive(Clone)]
struct Seen {
    headers: http::HeaderMap,
    body: Bytes,
}

/// Answers the scripted statuses in turn (then 200), and keeps every request.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    fn answering(statuses: &[u16]) -> Receiver {
        let receiver = Receiver::default();
        receiver
            .script
            .lock()
            .unwrap()
            .extend(statuses.iter().rev());
        receiver
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn last(&self) -> Seen {
        self.seen().pop().expect("a request")
    }
}

#[async_trait::async_trait]
impl Transport for Receiver {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let (parts, body) = request.into_parts();
        self.seen.lock().unwrap().push(Seen {
            headers: parts.headers,
            body,
        });
        let status = self.script.lock().unwrap().pop().unwrap_or(200);
        let mut response = http::Response::new(Bytes::new());
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        Ok(response)
    }
}

fn secret(byte: u8) -> SigningSecret {
    SigningSecret::from_bytes(&[byte; 32]).unwrap()
}

fn unix(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

const START: u64 = 1_700_000_000;

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(START)
}

fn hook(old: &SigningSecret) -> Webhook {
    Webhook::builder("ERP", "https://erp.example.com/hooks")
        .events([EventKind::Subscribe])
        .sources(Source::ALL)
        .retry_policy(
            RetryPolicy::default()
                .with_initial_backoff(Duration::from_secs(3600))
                .with_jitter(0)
                .with_max_attempts(3),
        )
        .signing_secret(old.clone())
        .build()
        .unwrap()
}

/// The `v1,` signatures of a request.
fn signatures(seen: &Seen) -> Vec<String> {
    seen.headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .map(str::to_owned)
        .collect()
}

/// Which of `secrets` the request verifies with, each on its own.
fn verifies_with(seen: &Seen, secrets: &[&SigningSecret]) -> Vec<bool> {
    let now: i64 = seen.headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    secrets
        .iter()
        .map(|s| verify(&[s], &seen.headers, &seen.body, now, 300).is_ok())
        .collect()
}

#[tokio::test]
async fn both_secrets_sign_until_the_cutoff_then_only_the_new_one() {
    let (old, new, stranger) = (secret(1), secret(2), secret(3));
    let mut webhook = hook(&old);
    let cutoff = start() + Duration::from_secs(600);
    webhook.rotate(new.clone(), cutoff);
    let mut registry = Registry::new();
    registry.insert(webhook);
    let clock = Clock::at(start());
    let receiver = Receiver::default();
    let dispatcher = Dispatcher::new(receiver.clone(), clock.clone());
    let event = Event::sample(EventKind::Subscribe);

    for before in [start(), cutoff - Duration::from_secs(1)] {
        clock.set(before);
        assert!(dispatcher.dispatch(&registry, &event).await.all_delivered());
        let seen = receiver.last();
        assert_eq!(seen.headers["webhook-timestamp"], unix(before).to_string());
        let sigs = signatures(&seen);
        assert_eq!(sigs.len(), 2, "{sigs:?}");
        assert!(sigs.iter().all(|s| s.starts_with("v1,")));
        assert_ne!(sigs[0], sigs[1]);
        assert_eq!(
            verifies_with(&seen, &[&new, &old, &stranger]),
            [true, true, false]
        );
    }

    // At the cutoff and after it, by themselves: nothing was called.
    for after in [cutoff, cutoff + Duration::from_secs(86_400)] {
        clock.set(after);
        assert!(dispatcher.dispatch(&registry, &event).await.all_delivered());
        let seen = receiver.last();
        assert_eq!(signatures(&seen).len(), 1);
        assert_eq!(
            verifies_with(&seen, &[&new, &old, &stranger]),
            [true, false, false]
        );
        let now = unix(after);
        assert_eq!(
            verify(&[&old], &seen.headers, &seen.body, now, 300),
            Err(SignError::NoMatch)
        );
    }
}

#[tokio::test]
async fn each_attempt_decides_by_its_own_time() {
    // The first attempt is before the cutoff, its retry an hour later, after it.
    let (old, new) = (secret(1), secret(2));
    let mut webhook = hook(&old);
    webhook.rotate(new.clone(), start() + Duration::from_secs(1800));
    let mut registry = Registry::new();
    registry.insert(webhook);
    let receiver = Receiver::answering(&[503]);
    let dispatcher = Dispatcher::new(receiver.clone(), Clock::at(start()));
    let report = dispatcher
        .dispatch(&registry, &Event::sample(EventKind::Subscribe))
        .await;
    assert!(report.all_delivered(), "{report:?}");
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].headers["webhook-id"], seen[1].headers["webhook-id"]);
    assert_eq!(verifies_with(&seen[0], &[&new, &old]), [true, true]);
    assert_eq!(
        seen[1].headers["webhook-timestamp"],
        (START + 3600).to_string()
    );
    assert_eq!(verifies_with(&seen[1], &[&new, &old]), [true, false]);
}

#[tokio::test]
async fn attempt_webhook_and_send_sample_follow_the_rotation_too() {
    let (old, new) = (secret(1), secret(2));
    let mut webhook = hook(&old);
    let cutoff = start() + Duration::from_secs(60);
    webhook.rotate(new.clone(), cutoff);
    let clock = Clock::at(start());
    let receiver = Receiver::default();
    let dispatcher = Dispatcher::new(receiver.clone(), clock.clone());

    for (now, expected) in [(start(), [true, true]), (cutoff, [true, false])] {
        clock.set(now);
        let mut delivery = Delivery::new(DeliveryId::new(7), webhook.id(), RetryPolicy::never());
        let step = dispatcher
            .attempt_webhook(
                &mut delivery,
                &webhook,
                Bytes::from_static(b"a=1"),
                Duration::ZERO,
            )
            .await;
        assert!(matches!(step, Step::Done(FinalOutcome::Delivered { .. })));
        assert_eq!(verifies_with(&receiver.last(), &[&new, &old]), expected);

        let report = dispatcher.send_sample(&webhook, EventKind::Open).await;
        assert!(report.outcome.is_delivered());
        assert_eq!(verifies_with(&receiver.last(), &[&new, &old]), expected);
    }
}

#[tokio::test]
async fn the_dispatchers_own_secrets_rotate_the_same_way() {
    let (old, new) = (secret(1), secret(2));
    let cutoff = start() + Duration::from_secs(60);
    let clock = Clock::at(start());
    let receiver = Receiver::default();
    let dispatcher = Dispatcher::new(receiver.clone(), clock.clone())
        .signing_secret(new.clone())
        .signing_secret_until(old.clone(), cutoff);
    let url = posthook::WebhookUrl::parse("https://erp.example.com/hooks").unwrap();

    assert!(
        dispatcher
            .deliver(None, &url, Bytes::from_static(b"a=1"))
            .await
            .outcome
            .is_delivered()
    );
    assert_eq!(verifies_with(&receiver.last(), &[&new, &old]), [true, true]);
    clock.set(cutoff);
    dispatcher
        .deliver(None, &url, Bytes::from_static(b"a=1"))
        .await;
    assert_eq!(
        verifies_with(&receiver.last(), &[&new, &old]),
        [true, false]
    );
    assert_eq!(signatures(&receiver.last()).len(), 1);

    // With every secret past its end, nothing goes out unsigned: the delivery fails.
    let expired =
        Dispatcher::new(receiver.clone(), clock.clone()).signing_secret_until(old.clone(), cutoff);
    let sent = receiver.seen().len();
    let report = expired
        .deliver(None, &url, Bytes::from_static(b"a=1"))
        .await;
    assert_eq!(
        report.outcome,
        FinalOutcome::Failed {
            reason: "signing: every signing secret has expired".into()
        }
    );
    assert_eq!(receiver.seen().len(), sent, "nothing sent");
}

#[test]
fn rotate_keeps_the_earlier_end_and_retire_expired_drops_the_ended() {
    let (s0, s1, s2) = (secret(1), secret(2), secret(3));
    let t = |secs: u64| start() + Duration::from_secs(secs);
    let mut hook = hook(&s0);
    assert_eq!(
        hook.signing_secrets_with_expiry().collect::<Vec<_>>(),
        [(&s0, None)]
    );
    hook.rotate(s1.clone(), t(100));
    hook.rotate(s2.clone(), t(200));
    // s0 was to stop at 100 already: a later rotation does not extend it.
    assert_eq!(
        hook.signing_secrets_with_expiry().collect::<Vec<_>>(),
        [(&s2, None), (&s1, Some(t(200))), (&s0, Some(t(100)))]
    );
    assert_eq!(hook.signing_secrets(), [s2.clone(), s1.clone(), s0.clone()]);
    let at = |secs| {
        hook.signing_secrets_at(t(secs))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(at(99), [s2.clone(), s1.clone(), s0.clone()]);
    assert_eq!(at(100), [s2.clone(), s1.clone()]);
    assert_eq!(at(200), std::slice::from_ref(&s2));

    // Built again from what a store kept: the same webhook.
    let mut rebuilt = Webhook::builder(hook.name(), hook.url().as_str())
        .events(hook.events())
        .sources(hook.sources())
        .retry_policy(hook.retry_policy().unwrap().clone());
    for (secret, until) in hook.signing_secrets_with_expiry() {
        rebuilt = match until {
            Some(until) => rebuilt.signing_secret_until(secret.clone(), until),
            None => rebuilt.signing_secret(secret.clone()),
        };
    }
    assert_eq!(rebuilt.build().unwrap(), hook);

    let mut retired = hook.clone();
    assert_eq!(retired.retire_expired(t(99)), 0);
    assert_eq!(retired, hook);
    assert_eq!(retired.retire_expired(t(150)), 1);
    assert_eq!(retired.signing_secrets(), [s2.clone(), s1.clone()]);
    assert_eq!(retired.retire_expired(t(150)), 0);
    assert_eq!(retired.retire_expired(t(1_000)), 1);
    assert_eq!(
        retired.signing_secrets_with_expiry().collect::<Vec<_>>(),
        [(&s2, None)]
    );
    // A webhook without secrets of its own gets the new one only.
    let mut bare = Webhook::builder("n", "https://example.com/h")
        .events([EventKind::Open])
        .sources(Source::ALL)
        .build()
        .unwrap();
    assert_eq!(bare.retire_expired(t(0)), 0);
    bare.rotate(s1.clone(), t(10));
    assert_eq!(
        bare.signing_secrets_with_expiry().collect::<Vec<_>>(),
        [(&s1, None)]
    );
}

#[test]
fn rotated_secrets_appear_in_no_debug_and_no_json() {
    let (old, new) = (secret(1), secret(2));
    let mut hook = hook(&old);
    hook.rotate(new.clone(), start());
    let mut texts = vec![
        format!("{hook:?}"),
        format!("{:?}", hook.to_builder()),
        serde_json::to_string(&hook).unwrap(),
    ];
    let dispatcher = Dispatcher::new(Receiver::default(), Clock::at(start()))
        .signing_secret(new.clone())
        .signing_secret_until(old.clone(), start());
    texts.push(format!("{dispatcher:?}"));
    for text in &texts {
        for s in [&old, &new] {
            let whsec = s.to_whsec();
            assert!(!text.contains(&whsec), "{text}");
            assert!(!text.contains(whsec.trim_start_matches("whsec_")), "{text}");
        }
    }
    assert!(texts[0].contains("signing_secrets: 2"), "{}", texts[0]);
    let back: Webhook = serde_json::from_str(&texts[2]).unwrap();
    assert!(back.signing_secrets().is_empty());
}

proptest! {
    /// Whatever the rotations, the secrets that sign at a time are the newest one and every
    /// older one whose overlap (the earliest cutoff given since it was replaced) is later.
    #[test]
    fn signing_secrets_at_follows_the_rotations(
        cutoffs in prop::collection::vec(0u64..1_000, 0..6),
        now in 0u64..1_100,
    ) {
        let t = |secs: u64| start() + Duration::from_secs(secs);
        let mut hook = hook(&secret(0));
        // The model: (secret byte, end).
        let mut model: Vec<(u8, Option<u64>)> = vec![(0, None)];
        for (i, &cutoff) in cutoffs.iter().enumerate() {
            let byte = u8::try_from(i + 1).unwrap();
            hook.rotate(secret(byte), t(cutoff));
            for (_, end) in &mut model {
                *end = Some(end.map_or(cutoff, |end| end.min(cutoff)));
            }
            model.insert(0, (byte, None));
        }
        let expected: Vec<SigningSecret> = model
            .iter()
            .filter(|(_, end)| end.is_none_or(|end| now < end))
            .map(|&(byte, _)| secret(byte))
            .collect();
        let got: Vec<SigningSecret> = hook.signing_secrets_at(t(now)).cloned().collect();
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(hook.signing_secrets().len(), model.len());
        let mut retired = hook.clone();
        prop_assert_eq!(retired.retire_expired(t(now)), model.len() - expected.len());
        prop_assert_eq!(retired.signing_secrets(), expected.as_slice());
        let still: Vec<SigningSecret> = retired.signing_secrets_at(t(now)).cloned().collect();
        prop_assert_eq!(still, expected);
    }
}

// ---- Python's standardwebhooks verifies what posthook signs. ----

/// Runs `python3` with `script`, `input` on stdin; `None` when Python or the package is
/// not there (and `POSTHOOK_REQUIRE_PYTHON` is not `1`).
fn python(script: &str, input: &str) -> Option<String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    let required = std::env::var("POSTHOOK_REQUIRE_PYTHON").is_ok_and(|v| v == "1");
    let available = Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !available {
        assert!(
            !required,
            "POSTHOOK_REQUIRE_PYTHON=1 but `python3 -c 'import standardwebhooks'` fails"
        );
        println!("skipped: python standardwebhooks not installed");
        return None;
    }
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).unwrap())
}

/// For each case, `ok` or `fail: <the library's message>`.
const VERIFY: &str = r#"
import json, sys
from standardwebhooks.webhooks import Webhook

for case in json.load(sys.stdin):
    try:
        Webhook(case["secret"]).verify(case["body"].encode(), case["headers"], json_parse=False)
        print("ok")
    except Exception as e:
        print("fail: " + str(e))
"#;

#[tokio::test]
async fn python_standardwebhooks_accepts_either_secret_during_the_overlap() {
    // Timestamps near the real time: the library checks them against its own clock (5 min).
    let real = SystemTime::now();
    let (old, new, stranger) = (
        SigningSecret::generate().unwrap(),
        SigningSecret::generate().unwrap(),
        SigningSecret::generate().unwrap(),
    );
    let mut webhook = hook(&old);
    let cutoff = real - Duration::from_secs(60);
    webhook.rotate(new.clone(), cutoff);
    let mut registry = Registry::new();
    registry.insert(webhook);
    let clock = Clock::at(real - Duration::from_secs(120));
    let receiver = Receiver::default();
    let dispatcher = Dispatcher::new(receiver.clone(), clock.clone());
    let event = Event::sample(EventKind::Subscribe);
    assert!(dispatcher.dispatch(&registry, &event).await.all_delivered());
    let during = receiver.last();
    clock.set(real);
    assert!(dispatcher.dispatch(&registry, &event).await.all_delivered());
    let after = receiver.last();

    let case = |seen: &Seen, secret: &SigningSecret| {
        let headers: serde_json::Map<String, serde_json::Value> = seen
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().into()))
            .collect();
        serde_json::json!({
            "secret": secret.to_whsec(),
            "body": std::str::from_utf8(&seen.body).unwrap(),
            "headers": headers,
        })
    };
    let cases = serde_json::json!([
        case(&during, &new),
        case(&during, &old),
        case(&during, &stranger),
        case(&after, &new),
        case(&after, &old),
    ]);
    let Some(out) = python(VERIFY, &cases.to_string()) else {
        return;
    };
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "ok",
            "ok",
            "fail: No matching signature found",
            "ok",
            "fail: No matching signature found",
        ],
        "{out}"
    );
}
