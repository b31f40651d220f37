//! Delivery that holds under load (issue 8): plans that borrow no registry, slots given back
//! during backoff, `Retry-After`, list schedules, per-webhook settings, endpoint health,
//! panicking transports, durations; and a property over arbitrary registries and faults.
//!
//! All over a scripted in-memory transport and fake timers: no network, no real sleeping,
//! no timing assertions.

use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::StatusCode;
use posthook::{
    Deactivation, DispatchPlan, Dispatcher, EndpointHealth, Event, EventKind, FinalOutcome, ListId,
    ListScope, Registry, RetryPolicy, Source, Timer, Transport, TransportError, Webhook, WebhookId,
    WebhookUrl,
};
use proptest::prelude::*;

/// What the transport does for one request.
#[derive(Clone, Debug)]
enum Reply {
    Status(u16),
    /// A status with a `Retry-After` header.
    After(u16, String),
    Error(TransportError),
    /// Never answers (the deadline ends it).
    Hang,
    /// Panics inside `send`.
    Panic,
}

#[derive(Debug, Clone)]
struct Seen {
    uri: String,
    headers: http::HeaderMap,
    body: Bytes,
}

/// Scripted replies per URL (200 once a script runs out); records every request.
#[derive(Default)]
struct Scripted {
    scripts: Mutex<HashMap<String, VecDeque<Reply>>>,
    seen: Mutex<Vec<Seen>>,
}

impl Scripted {
    fn script(self, url: &str, replies: impl IntoIterator<Item = Reply>) -> Self {
        self.scripts
            .lock()
            .unwrap()
            .insert(url.to_owned(), replies.into_iter().collect());
        self
    }

    fn seen_by(&self, url: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|s| s.uri == url).cloned().collect()
    }
}

#[async_trait::async_trait]
impl Transport for Scripted {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let uri = request.uri().to_string();
        self.seen.lock().unwrap().push(Seen {
            uri: uri.clone(),
            headers: request.headers().clone(),
            body: request.body().clone(),
        });
        let reply = self
            .scripts
            .lock()
            .unwrap()
            .get_mut(&uri)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Reply::Status(200));
        let respond = |code: u16| {
            let mut response = http::Response::new(Bytes::new());
            *response.status_mut() = StatusCode::from_u16(code).unwrap();
            response
        };
        match reply {
            Reply::Status(code) => Ok(respond(code)),
            Reply::After(code, value) => {
                let mut response = respond(code);
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, value.parse().unwrap());
                Ok(response)
            }
            Reply::Error(error) => Err(error),
            Reply::Hang => std::future::pending().await,
            Reply::Panic => panic!("scripted panic in the transport"),
        }
    }
}

const NOW: u64 = 1_700_000_000;

/// Returns at once; records every wait; its clocks advance by the waits (a fake of time).
#[derive(Default)]
struct FakeTimer {
    sleeps: Mutex<Vec<Duration>>,
    /// Time passed: the sum of the waits, plus what `advance` adds.
    elapsed: Mutex<Duration>,
}

impl FakeTimer {
    fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }

    fn advance(&self, by: Duration) {
        *self.elapsed.lock().unwrap() += by;
    }
}

#[async_trait::async_trait]
impl Timer for FakeTimer {
    async fn sleep(&self, duration: Duration) {
        self.sleeps.lock().unwrap().push(duration);
        self.advance(duration);
    }

    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW) + *self.elapsed.lock().unwrap()
    }

    fn monotonic(&self) -> Option<Duration> {
        Some(*self.elapsed.lock().unwrap())
    }
}

fn hook(url: &str) -> Webhook {
    Webhook::builder(url, url)
        .events([EventKind::Subscribe])
        .sources(Source::ALL)
        .build()
        .unwrap()
}

fn subscribe() -> Event {
    Event::sample(EventKind::Subscribe)
}

fn url(s: &str) -> WebhookUrl {
    WebhookUrl::parse(s).unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const A: &str = "https://a.example.com/hook";
const B: &str = "https://b.example.com/hook";

#[tokio::test]
async fn retry_after_in_seconds_sets_the_next_wait_and_is_recorded() {
    let transport =
        Scripted::default().script(A, [Reply::After(429, "120".into()), Reply::Status(200)]);
    let d = Dispatcher::new(transport, FakeTimer::default());
    let report = d.deliver(None, &url(A), Bytes::new()).await;
    assert!(report.outcome.is_delivered());
    assert_eq!(d.timer().sleeps(), [secs(120)], "not the policy's 30 s");
    assert_eq!(report.attempts[0].retry_after, Some(secs(120)));
    // The clock is there: offsets are real, durations known.
    assert_eq!(report.attempts[1].at, secs(120));
    assert!(report.attempts.iter().all(|a| a.duration.is_some()));
}

#[tokio::test]
async fn retry_after_as_a_date_is_read_as_of_the_timer_clock_and_honoured() {
    let in_ten_minutes =
        httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW + 600));
    let transport = Scripted::default().script(
        A,
        [
            Reply::After(503, in_ten_minutes),
            // Asks for less than the policy's own delay (2 min), then more than max_backoff.
            Reply::After(503, "1".into()),
            Reply::After(429, "999999".into()),
            Reply::Status(204),
        ],
    );
    let d = Dispatcher::new(transport, FakeTimer::default());
    let report = d.deliver(None, &url(A), Bytes::new()).await;
    assert!(report.outcome.is_delivered(), "{:?}", report.outcome);
    assert_eq!(
        d.timer().sleeps(),
        [secs(600), secs(120), secs(999_999)],
        "the date's wait; the policy's 2 min; what was asked, beyond max_backoff"
    );
    let asked: Vec<_> = report.attempts.iter().map(|a| a.retry_after).collect();
    assert_eq!(
        asked,
        [Some(secs(600)), Some(secs(1)), Some(secs(999_999)), None]
    );
}

#[tokio::test]
async fn retry_after_on_other_statuses_is_ignored() {
    let transport =
        Scripted::default().script(A, [Reply::After(500, "600".into()), Reply::Status(200)]);
    let d = Dispatcher::new(transport, FakeTimer::default());
    let report = d.deliver(None, &url(A), Bytes::new()).await;
    assert_eq!(d.timer().sleeps(), [secs(30)]);
    assert_eq!(report.attempts[0].retry_after, None);
}

#[tokio::test]
async fn the_list_schedule_waits_exactly_its_list() {
    let transport = Scripted::default().script(A, std::iter::repeat_n(Reply::Status(503), 20));
    let d = Dispatcher::new(transport, FakeTimer::default()).retry_policy(RetryPolicy::svix());
    let report = d.deliver(None, &url(A), Bytes::new()).await;
    let (m, h) = (60, 3600);
    assert_eq!(
        d.timer().sleeps(),
        [5, 5 * m, 30 * m, 2 * h, 5 * h, 10 * h, 10 * h].map(secs)
    );
    assert_eq!(report.attempts.len(), 8);
    assert!(matches!(report.outcome, FinalOutcome::GaveUp { .. }));
    let ats: Vec<_> = report.attempts.iter().map(|a| a.at.as_secs()).collect();
    assert_eq!(ats, [0, 5, 305, 2105, 9305, 27305, 63305, 99305]);
}

#[tokio::test]
async fn per_webhook_retry_policy_and_attempt_timeout_override_the_dispatcher() {
    let mut registry = Registry::new();
    let own = registry.insert(
        hook(A)
            .to_builder()
            .retry_policy(RetryPolicy::schedule([secs(1), secs(2)]))
            .attempt_timeout(secs(3))
            .build()
            .unwrap(),
    );
    let default = registry.insert(hook(B));
    assert_eq!(
        registry.get(own).unwrap().retry_policy(),
        Some(&RetryPolicy::schedule([secs(1), secs(2)]))
    );
    assert_eq!(registry.get(own).unwrap().attempt_timeout(), Some(secs(3)));
    let transport = Scripted::default()
        .script(A, std::iter::repeat_n(Reply::Hang, 10))
        .script(B, std::iter::repeat_n(Reply::Hang, 10));
    let d = Dispatcher::new(transport, FakeTimer::default())
        .retry_policy(RetryPolicy::default().with_max_attempts(2))
        .attempt_timeout(secs(7));
    let report = d.dispatch(&registry, &subscribe()).await;
    let of = |id| {
        report
            .deliveries
            .iter()
            .find(|r| r.webhook_id == Some(id))
            .unwrap()
            .clone()
    };
    let (mine, theirs) = (of(own), of(default));
    assert_eq!(mine.attempts.len(), 3);
    assert_eq!(theirs.attempts.len(), 2);
    for a in &mine.attempts {
        assert!(a.outcome.error().unwrap().message().contains("3s"), "{a:?}");
    }
    for a in &theirs.attempts {
        assert!(a.outcome.error().unwrap().message().contains("7s"), "{a:?}");
    }
    let mut sleeps = d.timer().sleeps();
    sleeps.sort();
    let mut expected = vec![secs(3), secs(1), secs(3), secs(2), secs(3)];
    expected.extend([secs(7), secs(30), secs(7)]);
    expected.sort();
    assert_eq!(sleeps, expected);
}

#[test]
fn per_webhook_settings_are_not_in_the_api_json() {
    let w = hook(A)
        .to_builder()
        .retry_policy(RetryPolicy::never())
        .attempt_timeout(secs(1))
        .build()
        .unwrap();
    let json = serde_json::to_string(&w).unwrap();
    assert!(
        !json.contains("retry") && !json.contains("timeout"),
        "{json}"
    );
    assert_eq!(json, serde_json::to_string(&hook(A)).unwrap());
    let back: Webhook = serde_json::from_str(&json).unwrap();
    assert_eq!((back.retry_policy(), back.attempt_timeout()), (None, None));
    assert_eq!(back, hook(A));
    // to_builder keeps them.
    assert_eq!(w.to_builder().build().unwrap(), w);
}

/// Answers 200 after a while (a tokio sleep); counts attempts in flight.
struct Slow {
    dead: HashSet<String>,
    now: AtomicUsize,
    max: AtomicUsize,
}

#[async_trait::async_trait]
impl Transport for Slow {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(secs(1)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        let mut response = http::Response::new(Bytes::new());
        if self.dead.contains(&request.uri().to_string()) {
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        Ok(response)
    }
}

/// tokio's clock, paused in the test: it jumps when every task waits.
struct PausedTokio(tokio::time::Instant);

impl PausedTokio {
    fn new() -> PausedTokio {
        PausedTokio(tokio::time::Instant::now())
    }
}

#[async_trait::async_trait]
impl Timer for PausedTokio {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    fn monotonic(&self) -> Option<Duration> {
        Some(tokio::time::Instant::now().saturating_duration_since(self.0))
    }
}

#[tokio::test(start_paused = true)]
async fn a_dead_endpoint_in_backoff_does_not_keep_others_from_running() {
    let mut registry = Registry::new();
    let dead = ["https://dead1.example.com/", "https://dead2.example.com/"];
    let live: Vec<String> = (0..4)
        .map(|i| format!("https://live{i}.example.com/"))
        .collect();
    for u in dead.iter().copied().chain(live.iter().map(String::as_str)) {
        registry.insert(hook(u));
    }
    let plan = DispatchPlan::new(&registry, &subscribe());
    let first_two: HashSet<_> = plan.deliveries()[..2]
        .iter()
        .map(|p| p.url().as_str().to_owned())
        .collect();
    assert_eq!(
        first_two,
        dead.iter().map(|s| s.to_string()).collect(),
        "precondition: the dead endpoints take the two slots first"
    );
    let transport = Slow {
        dead: dead.iter().map(|s| s.to_string()).collect(),
        now: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
    };
    // 5 attempts, 60 s apart: a dead endpoint is in backoff for 4 minutes in all.
    let policy = RetryPolicy::default()
        .with_initial_backoff(secs(60))
        .with_multiplier(1);
    let d = Dispatcher::new(transport, PausedTokio::new())
        .retry_policy(policy)
        .max_concurrency(NonZeroUsize::new(2).unwrap());
    let report = d.run_plan(plan).await;
    assert_eq!(d.transport().max.load(Ordering::SeqCst), 2, "the cap holds");
    for r in &report.deliveries {
        if live.iter().any(|l| r.url == **l) {
            assert!(r.outcome.is_delivered());
            // Done during the dead endpoints' first wait, not after their whole schedule.
            let end = r.elapsed().unwrap();
            assert!(end < secs(60), "{}: done at {end:?}", r.url);
        } else {
            assert!(matches!(r.outcome, FinalOutcome::GaveUp { .. }));
            assert_eq!(r.attempts.len(), 5);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_global_limit_holds_across_concurrent_dispatches() {
    let mut registry = Registry::new();
    for i in 0..5 {
        registry.insert(hook(&format!("https://h{i}.example.com/")));
    }
    let d = Arc::new(
        Dispatcher::new(
            Slow {
                dead: HashSet::new(),
                now: AtomicUsize::new(0),
                max: AtomicUsize::new(0),
            },
            PausedTokio::new(),
        )
        .global_concurrency(NonZeroUsize::new(3).unwrap()),
    );
    // Spawned: the dispatcher is shared through an Arc, the plans are owned.
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let d = d.clone();
            let plan = d.plan(&registry, &subscribe());
            tokio::spawn(async move { d.run_plan(plan).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().all_delivered());
    }
    assert_eq!(d.transport().max.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn dispatch_does_not_hold_the_registry_across_its_deliveries() {
    let registry = std::sync::RwLock::new(Registry::new());
    registry.write().unwrap().insert(hook(A));
    let transport = Scripted::default().script(A, [Reply::Status(503), Reply::Status(200)]);
    let d = Dispatcher::new(transport, FakeTimer::default());
    let running = {
        let guard = registry.read().unwrap();
        d.dispatch(&guard, &subscribe())
    };
    // A writer gets in while the deliveries are yet to run.
    registry.write().unwrap().insert(hook(B));
    let report = running.await;
    assert_eq!(report.deliveries.len(), 1);
    assert!(report.all_delivered());
}

#[tokio::test]
async fn a_panicking_transport_fails_one_delivery_and_the_others_complete() {
    let mut registry = Registry::new();
    let urls: Vec<String> = (0..5)
        .map(|i| format!("https://h{i}.example.com/"))
        .collect();
    for u in &urls {
        registry.insert(hook(u));
    }
    let transport = Scripted::default().script(&urls[2], [Reply::Panic, Reply::Status(200)]);
    let d = Dispatcher::new(transport, FakeTimer::default());
    let report = d.dispatch(&registry, &subscribe()).await;
    assert_eq!(report.deliveries.len(), 5);
    for r in &report.deliveries {
        if r.url == *urls[2] {
            let FinalOutcome::Failed { reason } = &r.outcome else {
                panic!("{:?}", r.outcome)
            };
            assert!(
                reason.contains("scripted panic in the transport"),
                "{reason}"
            );
            assert_eq!(r.attempts.len(), 1, "not retried");
        } else {
            assert!(r.outcome.is_delivered());
        }
    }
    assert_eq!(d.transport().seen_by(&urls[2]).len(), 1);
}

#[tokio::test]
async fn probe_reports_the_time_taken_when_the_timer_has_a_clock() {
    let d = Dispatcher::new(Scripted::default(), FakeTimer::default());
    let report = d.probe(&url(A)).await;
    assert_eq!(report.elapsed(), Some(Duration::ZERO));
    assert_eq!(report.attempts[0].duration, Some(Duration::ZERO));
    // Without a clock there is nothing to tell.
    struct NoClock;
    #[async_trait::async_trait]
    impl Timer for NoClock {
        async fn sleep(&self, _: Duration) {}
    }
    let report = Dispatcher::new(Scripted::default(), NoClock)
        .probe(&url(A))
        .await;
    assert_eq!(report.elapsed(), None);
}

#[tokio::test]
async fn automation_sends_have_a_retry_policy_of_their_own() {
    let transport = Scripted::default().script(A, [Reply::Status(503), Reply::Status(200)]);
    let d = Dispatcher::new(transport, FakeTimer::default())
        .automation_retry_policy(RetryPolicy::never());
    assert_eq!(d.policy(), &RetryPolicy::default());
    let report = d
        .send_automation(&url(A), &posthook::AutomationPayload::sample())
        .await;
    assert!(matches!(report.outcome, FinalOutcome::Failed { .. }));
    assert_eq!(report.attempts.len(), 1);
    // By default they follow the dispatcher's policy.
    let transport = Scripted::default().script(A, [Reply::Status(503), Reply::Status(200)]);
    let d = Dispatcher::new(transport, FakeTimer::default());
    assert_eq!(d.automation_policy(), d.policy());
    let report = d
        .send_automation(&url(A), &posthook::AutomationPayload::sample())
        .await;
    assert!(report.outcome.is_delivered());
}

#[tokio::test]
async fn delivery_ids_are_unpredictable_unless_seeded() {
    let mut registry = Registry::new();
    for i in 0..50 {
        registry.insert(hook(&format!("https://h{i}.example.com/")));
    }
    let d = Dispatcher::new(Scripted::default(), FakeTimer::default());
    let ids: Vec<u128> = d
        .dispatch(&registry, &subscribe())
        .await
        .deliveries
        .iter()
        .map(|r| r.id.get())
        .collect();
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
    // No visible counter: neither half of the ids runs in sequence.
    let mut lows: Vec<u64> = ids.iter().map(|&id| id as u64).collect();
    let mut highs: Vec<u64> = ids.iter().map(|&id| (id >> 64) as u64).collect();
    lows.sort();
    highs.sort();
    assert!(lows.windows(2).any(|w| w[1] - w[0] > 1_000_000));
    assert!(highs.windows(2).any(|w| w[1] - w[0] > 1_000_000));
    // Seeded dispatchers repeat their ids (for tests only).
    let seeded =
        |seed| Dispatcher::new(Scripted::default(), FakeTimer::default()).delivery_id_seed(seed);
    let (x, y) = (seeded(5), seeded(5));
    assert_eq!(x.probe(&url(A)).await.id, y.probe(&url(A)).await.id);
}

mod health {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn setup(replies: Vec<Reply>) -> (Registry, WebhookId, Dispatcher<Scripted, FakeTimer>) {
        let mut registry = Registry::new();
        let id = registry.insert(hook(A));
        let d = Dispatcher::new(Scripted::default().script(A, replies), FakeTimer::default())
            .retry_policy(RetryPolicy::never())
            .endpoint_health(EndpointHealth::new(5 * DAY, 3));
        (registry, id, d)
    }

    #[tokio::test]
    async fn a_streak_disables_only_after_both_thresholds() {
        let (mut registry, id, d) = setup(vec![Reply::Status(500); 10]);
        // Three failures within a day: enough deliveries, not long enough.
        for _ in 0..3 {
            let report = d.dispatch(&registry, &subscribe()).await;
            assert!(report.health.is_empty());
            d.timer().advance(DAY / 4);
        }
        // Six days later: long enough, and now a fourth failure.
        d.timer().advance(6 * DAY);
        let report = d.dispatch(&registry, &subscribe()).await;
        assert_eq!(report.health.len(), 1);
        assert_eq!(report.apply_health(&mut registry), 1);
        assert_eq!(
            registry.get(id).unwrap().deactivation(),
            Some(Deactivation::Failing {
                since: NOW,
                failures: 4
            })
        );
        assert_eq!(registry.matches(&subscribe()).count(), 0);
        // Applying again changes nothing.
        assert_eq!(report.apply_health(&mut registry), 0);
    }

    #[tokio::test]
    async fn long_but_too_few_failures_do_not_disable() {
        let (registry, id, d) = setup(vec![Reply::Status(500); 10]);
        for _ in 0..2 {
            let report = d.dispatch(&registry, &subscribe()).await;
            assert!(report.health.is_empty());
            d.timer().advance(10 * DAY);
        }
        assert_eq!(
            d.with_endpoint_health(|h| h.streak(id).map(|s| s.failures)),
            Some(Some(2))
        );
    }

    #[tokio::test]
    async fn a_success_in_between_resets_the_streak() {
        let mut replies = vec![Reply::Status(500); 2];
        replies.push(Reply::Status(200));
        replies.extend(vec![Reply::Status(500); 2]);
        let (registry, id, d) = setup(replies);
        for _ in 0..5 {
            let report = d.dispatch(&registry, &subscribe()).await;
            assert!(report.health.is_empty(), "{:?}", report.health);
            d.timer().advance(3 * DAY);
        }
        let streak = d.with_endpoint_health(|h| h.streak(id)).flatten().unwrap();
        assert_eq!(streak.failures, 2, "counted from after the success");
        assert_eq!(
            streak.since,
            SystemTime::UNIX_EPOCH + Duration::from_secs(NOW) + 9 * DAY
        );
    }

    #[tokio::test]
    async fn manual_and_gone_are_never_overwritten_by_failing() {
        for earlier in [Deactivation::Manual, Deactivation::Gone] {
            let (mut registry, id, d) = setup(vec![Reply::Status(500); 10]);
            for _ in 0..3 {
                d.dispatch(&registry, &subscribe()).await;
                d.timer().advance(3 * DAY);
            }
            // A plan taken before the application switched the webhook off.
            let plan = d.plan(&registry, &subscribe());
            registry.deactivate(id, earlier);
            let report = d.run_plan(plan).await;
            assert_eq!(report.health.len(), 1, "the rule says disable");
            assert_eq!(report.apply_health(&mut registry), 0);
            assert_eq!(registry.get(id).unwrap().deactivation(), Some(earlier));
        }
        // And on a webhook directly.
        let mut w = hook(A);
        w.deactivate(Deactivation::Manual);
        w.deactivate(Deactivation::Failing {
            since: 1,
            failures: 9,
        });
        assert_eq!(w.deactivation(), Some(Deactivation::Manual));
        w.activate();
        w.deactivate(Deactivation::Failing {
            since: 1,
            failures: 9,
        });
        w.deactivate(Deactivation::Manual);
        assert_eq!(
            w.deactivation(),
            Some(Deactivation::Manual),
            "Manual replaces Failing"
        );
    }

    #[test]
    fn failing_serializes_beside_the_old_forms() {
        let json = serde_json::to_string(&Deactivation::Failing {
            since: NOW,
            failures: 7,
        })
        .unwrap();
        assert_eq!(json, r#"{"failing":{"since":1700000000,"failures":7}}"#);
        assert_eq!(
            serde_json::to_string(&Deactivation::Gone).unwrap(),
            r#""gone""#
        );
        assert_eq!(
            serde_json::from_str::<Deactivation>(r#""manual""#).unwrap(),
            Deactivation::Manual
        );
        let mut w = hook(A);
        w.deactivate(Deactivation::Failing {
            since: NOW,
            failures: 7,
        });
        let back: Webhook = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
        assert_eq!(back.deactivation(), w.deactivation());
    }
}

#[cfg(feature = "signing")]
mod signing {
    use posthook::sign::{SigningSecret, verify};

    use super::*;

    fn secret(byte: u8) -> SigningSecret {
        SigningSecret::from_bytes(&[byte; 32]).unwrap()
    }

    fn now() -> i64 {
        NOW as i64
    }

    #[tokio::test]
    async fn a_webhooks_own_secrets_sign_its_deliveries_and_others_fall_back() {
        let (own, older, shared) = (secret(1), secret(2), secret(3));
        let mut registry = Registry::new();
        registry.insert(
            hook(A)
                .to_builder()
                .signing_secret(own.clone())
                .signing_secret(older.clone())
                .build()
                .unwrap(),
        );
        registry.insert(hook(B));
        let d = Dispatcher::new(Scripted::default(), FakeTimer::default())
            .signing_secret(shared.clone());
        assert!(d.dispatch(&registry, &subscribe()).await.all_delivered());

        let a = &d.transport().seen_by(A)[0];
        let signatures = a.headers["webhook-signature"].to_str().unwrap();
        assert_eq!(
            signatures.split(' ').count(),
            2,
            "two secrets, two signatures"
        );
        assert_eq!(verify(&[&own], &a.headers, &a.body, now(), 300), Ok(()));
        assert_eq!(verify(&[&older], &a.headers, &a.body, now(), 300), Ok(()));
        assert!(verify(&[&shared], &a.headers, &a.body, now(), 300).is_err());

        let b = &d.transport().seen_by(B)[0];
        assert_eq!(verify(&[&shared], &b.headers, &b.body, now(), 300), Ok(()));
        assert!(verify(&[&own], &b.headers, &b.body, now(), 300).is_err());
    }

    #[tokio::test]
    async fn sample_data_is_signed_with_the_webhooks_secret() {
        let own = secret(4);
        let w = hook(A)
            .to_builder()
            .signing_secret(own.clone())
            .build()
            .unwrap();
        let d = Dispatcher::new(Scripted::default(), FakeTimer::default());
        d.send_sample(&w, EventKind::Open).await;
        let seen = &d.transport().seen_by(A)[0];
        assert_eq!(
            verify(&[&own], &seen.headers, &seen.body, now(), 300),
            Ok(())
        );
    }

    #[test]
    fn secrets_appear_in_no_debug_and_no_json() {
        let s = secret(9);
        let whsec = s.to_whsec();
        let base64 = whsec.trim_start_matches("whsec_").to_owned();
        let w = hook(A)
            .to_builder()
            .signing_secret(s.clone())
            .signing_secret(secret(8))
            .build()
            .unwrap();
        assert_eq!(w.signing_secrets().len(), 2);
        let d =
            Dispatcher::new(Scripted::default(), FakeTimer::default()).signing_secret(s.clone());
        let mut registry = Registry::new();
        registry.insert(w.clone());
        let plan = DispatchPlan::new(&registry, &subscribe());
        for text in [
            format!("{w:?}"),
            format!("{:?}", w.to_builder()),
            format!("{d:?}"),
            format!("{plan:?}"),
            serde_json::to_string(&w).unwrap(),
        ] {
            assert!(!text.contains("whsec_"), "{text}");
            assert!(!text.contains(&base64), "{text}");
        }
        assert!(format!("{w:?}").contains("signing_secrets: 2"), "{w:?}");
        assert!(format!("{d:?}").contains("signing_secrets: 1"), "{d:?}");
        // The JSON carries no secret: read back, the webhook has none.
        let back: Webhook = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
        assert!(back.signing_secrets().is_empty());
    }
}

// ---- The property: whatever the registry, the event and the faults. ----

fn any_reply() -> impl Strategy<Value = Reply> {
    let status = prop::sample::select(vec![200u16, 201, 204, 301, 400, 404, 410, 429, 500, 503]);
    prop_oneof![
        4 => status.clone().prop_map(Reply::Status),
        2 => (prop::sample::select(vec![429u16, 503]), 0u64..100_000).prop_map(|(s, secs)| Reply::After(s, secs.to_string())),
        1 => (status, 0u64..100_000).prop_map(|(s, secs)| Reply::After(
            s,
            httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW + secs))
        )),
        1 => Just(Reply::Error(TransportError::connect("refused"))),
        1 => Just(Reply::Error(TransportError::blocked("10.0.0.1"))),
        1 => Just(Reply::Hang),
        1 => Just(Reply::Panic),
    ]
}

#[derive(Debug, Clone)]
struct HookSpec {
    kinds: Vec<EventKind>,
    sources: Vec<Source>,
    list: Option<u64>,
    active: bool,
    max_attempts: Option<u32>,
    script: Vec<Reply>,
}

fn any_hook() -> impl Strategy<Value = HookSpec> {
    let kinds = prop::sample::subsequence(
        vec![
            EventKind::Subscribe,
            EventKind::Unsubscribe,
            EventKind::Open,
        ],
        1..=3,
    );
    let sources = prop::sample::subsequence(Source::ALL.to_vec(), 1..=4);
    (
        kinds,
        sources,
        prop::option::of(1u64..4),
        prop::bool::weighted(0.9),
        prop::option::of(1u32..5),
        prop::collection::vec(any_reply(), 0..8),
    )
        .prop_map(
            |(kinds, sources, list, active, max_attempts, script)| HookSpec {
                kinds,
                sources,
                list,
                active,
                max_attempts,
                script,
            },
        )
}

fn quiet_scripted_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let scripted = info
                .payload()
                .downcast_ref::<&str>()
                .is_some_and(|m| m.contains("scripted panic"));
            if !scripted {
                default(info);
            }
        }));
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_matched_webhook_gets_exactly_one_final_outcome(
        hooks in prop::collection::vec(any_hook(), 0..12),
        kind in prop::sample::select(vec![EventKind::Subscribe, EventKind::Unsubscribe, EventKind::Open]),
        source in prop::sample::select(Source::ALL.to_vec()),
        list in prop::option::of(1u64..4),
        cap in prop::option::of(1usize..4),
    ) {
        quiet_scripted_panics();
        let mut registry = Registry::new();
        let mut transport = Scripted::default();
        let default_policy = RetryPolicy::default()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(10))
            .with_max_backoff(Duration::from_secs(60));
        let mut limits = HashMap::new();
        for (i, spec) in hooks.iter().enumerate() {
            let url = format!("https://h{i}.example.com/");
            let mut builder = Webhook::builder(format!("h{i}"), &url)
                .events(&spec.kinds)
                .sources(&spec.sources)
                .scope(spec.list.map_or(ListScope::All, |l| ListScope::List(ListId::new(l).unwrap())));
            if let Some(max) = spec.max_attempts {
                builder = builder.retry_policy(RetryPolicy::svix().with_max_attempts(max));
            }
            let id = registry.insert(builder.build().unwrap());
            if !spec.active {
                registry.deactivate(id, Deactivation::Manual);
            }
            limits.insert(id, spec.max_attempts.unwrap_or(default_policy.max_attempts()));
            transport = transport.script(&url, spec.script.clone());
        }
        let occurred = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05+01:00").unwrap();
        let event = Event::new(kind, source, occurred).with_list(list.and_then(ListId::new));
        let in_order: Vec<WebhookId> = registry.matches(&event).map(|h| h.id().unwrap()).collect();
        let expected: HashSet<WebhookId> = in_order.iter().copied().collect();

        let mut d = Dispatcher::new(transport, FakeTimer::default()).retry_policy(default_policy);
        if let Some(cap) = cap {
            d = d.max_concurrency(NonZeroUsize::new(cap).unwrap());
        }
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let report = runtime.block_on(d.dispatch(&registry, &event));

        // Exactly one report per matched webhook; no delivery twice.
        prop_assert_eq!(report.deliveries.len(), expected.len());
        let reported: HashSet<WebhookId> = report.deliveries.iter().map(|r| r.webhook_id.unwrap()).collect();
        prop_assert_eq!(&reported, &expected);
        // In the order the registry gave them, whatever order they finished in.
        let order: Vec<WebhookId> = report.deliveries.iter().map(|r| r.webhook_id.unwrap()).collect();
        prop_assert_eq!(&order, &in_order);
        let ids: HashSet<_> = report.deliveries.iter().map(|r| r.id).collect();
        prop_assert_eq!(ids.len(), report.deliveries.len());
        let body = event.encode();
        for r in &report.deliveries {
            let id = r.webhook_id.unwrap();
            prop_assert!(r.attempts.len() as u32 <= limits[&id], "{:?}", r);
            prop_assert!(!r.attempts.is_empty());
            let seen = d.transport().seen_by(r.url.as_str());
            prop_assert_eq!(seen.len(), r.attempts.len());
            for s in &seen {
                let id = r.id.to_string();
                prop_assert_eq!(&s.headers[posthook::DELIVERY_ID_HEADER], id.as_str());
            }
            if r.outcome.is_delivered() {
                let last = r.attempts.last().unwrap();
                prop_assert!(last.outcome.status().is_some_and(|s| s.is_success()));
                prop_assert_eq!(&seen.last().unwrap().body, &body);
            }
        }
    }
}

#[tokio::test]
async fn a_worker_attempts_with_the_webhooks_own_timeout() {
    use posthook::{Delivery, DeliveryId, Step};
    let w = hook(A)
        .to_builder()
        .retry_policy(RetryPolicy::schedule([secs(9)]))
        .attempt_timeout(secs(2))
        .build()
        .unwrap();
    let transport = Scripted::default().script(A, [Reply::Hang, Reply::Status(200)]);
    let d = Dispatcher::new(transport, FakeTimer::default());
    let mut delivery = Delivery::new(
        DeliveryId::new(7),
        w.id(),
        w.retry_policy().unwrap().clone(),
    );
    let body = Bytes::from_static(b"type=subscribe");
    let step = d
        .attempt_webhook(&mut delivery, &w, body.clone(), Duration::ZERO)
        .await;
    assert_eq!(step, Step::Retry { after: secs(9) });
    assert_eq!(d.timer().sleeps(), [secs(2)], "the webhook's deadline");
    let step = d.attempt_webhook(&mut delivery, &w, body, secs(11)).await;
    assert!(matches!(step, Step::Done(FinalOutcome::Delivered { .. })));
}
