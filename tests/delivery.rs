//! The pure delivery state machine: verdicts, the retry policy and its properties.

use std::time::Duration;

use http::StatusCode;
use posthook::{
    AttemptOutcome, Delivery, DeliveryId, FinalOutcome, RetryPolicy, Step, TransportError,
    TransportErrorKind, Verdict, WebhookId,
};
use proptest::prelude::*;

fn status(code: u16) -> AttemptOutcome {
    AttemptOutcome::Status(StatusCode::from_u16(code).expect("a valid status"))
}

/// Drives a delivery with `results` (in order, as long as it asks for more), each attempt
/// `at` the sum of the waits so far; returns the final outcome and the waits.
fn drive(
    policy: RetryPolicy,
    results: impl IntoIterator<Item = AttemptOutcome>,
) -> (Delivery, Option<FinalOutcome>, Vec<Duration>) {
    let mut d = Delivery::new(DeliveryId::new(0xfeed), Some(WebhookId::new(1)), policy);
    let mut at = Duration::ZERO;
    let mut waits = Vec::new();
    for result in results {
        match d.record(result, at) {
            Step::Retry { after } => {
                waits.push(after);
                at += after;
            }
            Step::Done(outcome) => return (d, Some(outcome), waits),
        }
    }
    (d, None, waits)
}

#[test]
fn verdicts_follow_the_status_table() {
    for code in 200..300 {
        assert_eq!(status(code).verdict(), Verdict::Success, "{code}");
    }
    assert_eq!(status(410).verdict(), Verdict::Gone);
    for code in [429, 500, 502, 503, 504, 599] {
        assert_eq!(status(code).verdict(), Verdict::Retry, "{code}");
    }
    for code in [
        100, 101, 300, 301, 302, 303, 307, 308, 400, 401, 403, 404, 408, 409, 422, 499,
    ] {
        assert_eq!(status(code).verdict(), Verdict::Fail, "{code}");
    }
    for error in [
        TransportError::connect("refused"),
        TransportError::timeout("slow"),
        TransportError::io("reset"),
        TransportError::other("?"),
        TransportError::tls("expired certificate"),
        TransportError::dns("no such host"),
        TransportError::refused("connection refused"),
        TransportError::connect_timeout("no answer within 5s"),
    ] {
        assert_eq!(AttemptOutcome::Error(error).verdict(), Verdict::Retry);
    }
}

#[test]
fn a_blocked_address_fails_at_once_without_retry() {
    let blocked = TransportError::blocked("evil.example.test resolves to 10.0.0.1 (private)");
    assert!(!blocked.is_retryable());
    assert_eq!(
        AttemptOutcome::Error(blocked.clone()).verdict(),
        Verdict::Fail
    );
    let mut delivery = Delivery::new(DeliveryId::new(1), None, RetryPolicy::default());
    let step = delivery.record(AttemptOutcome::Error(blocked), Duration::ZERO);
    assert!(
        matches!(step, Step::Done(FinalOutcome::Failed { .. })),
        "{step:?}"
    );
    assert_eq!(delivery.attempts().len(), 1);
}

#[test]
fn transport_error_kinds_say_whether_a_connection_was_made() {
    use TransportErrorKind as K;
    for kind in [
        K::Dns,
        K::Blocked,
        K::Refused,
        K::ConnectTimeout,
        K::Connect,
    ] {
        assert!(kind.before_connection(), "{kind}");
    }
    for kind in [K::Timeout, K::Tls, K::Io, K::Other] {
        assert!(!kind.before_connection(), "{kind}");
    }
    let json = serde_json::to_string(&TransportError::connect_timeout("x")).unwrap();
    assert_eq!(json, r#"{"kind":"connect_timeout","message":"x"}"#);
}

#[test]
fn transport_errors_display_kind_and_message() {
    let e = TransportError::connect("connection refused");
    assert_eq!(e.to_string(), "connect error: connection refused");
    assert_eq!(e.kind(), TransportErrorKind::Connect);
    assert_eq!(e.message(), "connection refused");
    assert!(e.is_retryable());
    assert!(
        TransportError::tls("bad cert").is_retryable(),
        "a connection error: retried"
    );
}

#[test]
fn default_policy_waits_30s_2m_8m_32m() {
    let p = RetryPolicy::default();
    assert_eq!(p.max_attempts(), 5);
    let waits: Vec<_> = (1..=6).map(|n| p.delay_before(n)).collect();
    assert_eq!(
        waits,
        [
            Some(Duration::ZERO),
            Some(Duration::from_secs(30)),
            Some(Duration::from_secs(120)),
            Some(Duration::from_secs(480)),
            Some(Duration::from_secs(1920)),
            None,
        ]
    );
    assert_eq!(p.delay_before(0), None);
}

#[test]
fn backoff_is_capped_and_never_overflows() {
    let p = RetryPolicy::default()
        .with_max_attempts(u32::MAX)
        .with_multiplier(u32::MAX)
        .with_initial_backoff(Duration::MAX)
        .with_max_backoff(Duration::from_secs(3600));
    assert_eq!(p.delay_before(2), Some(Duration::from_secs(3600)));
    assert_eq!(p.delay_before(u32::MAX), Some(Duration::from_secs(3600)));
}

#[test]
fn no_wait_is_longer_than_max_wait() {
    use posthook::{AttemptMeta, MAX_WAIT};

    assert_eq!(MAX_WAIT, Duration::from_secs(365 * 24 * 3600));
    let unbounded = RetryPolicy::default()
        .with_initial_backoff(Duration::MAX)
        .with_max_backoff(Duration::MAX);
    assert_eq!(unbounded.delay_before(2), Some(MAX_WAIT));
    assert_eq!(
        unbounded
            .clone()
            .with_jitter(50)
            .delay_for(DeliveryId::new(9), 3)
            .map(|d| d <= MAX_WAIT),
        Some(true)
    );
    let schedule = RetryPolicy::schedule([Duration::MAX]);
    assert_eq!(schedule.delay_before(2), Some(MAX_WAIT));
    // The policy's own wait, and a receiver's Retry-After beyond it: clamped, recorded as asked.
    let mut d = Delivery::new(DeliveryId::new(1), None, unbounded);
    assert_eq!(
        d.record(status(503), Duration::ZERO),
        Step::Retry { after: MAX_WAIT }
    );
    let policy = RetryPolicy::default().with_max_backoff(Duration::MAX);
    let mut d = Delivery::new(DeliveryId::new(2), None, policy);
    let asked = Duration::from_secs(u64::MAX);
    let meta = AttemptMeta::new().with_retry_after(Some(asked));
    assert_eq!(
        d.record_with(status(429), Duration::ZERO, meta),
        Step::Retry { after: MAX_WAIT }
    );
    assert_eq!(d.attempts()[0].retry_after, Some(asked));
    // Below the bound nothing changes: a day is a day.
    let day = Duration::from_secs(24 * 3600);
    let meta = AttemptMeta::new().with_retry_after(Some(day));
    assert_eq!(
        d.record_with(status(503), Duration::ZERO, meta),
        Step::Retry { after: day }
    );
}

#[test]
fn five_hundreds_then_ok_is_delivered_on_the_third_attempt() {
    let (d, outcome, waits) = drive(
        RetryPolicy::default(),
        [status(500), status(503), status(204)],
    );
    assert_eq!(
        outcome,
        Some(FinalOutcome::Delivered {
            status: StatusCode::NO_CONTENT
        })
    );
    assert_eq!(waits, [Duration::from_secs(30), Duration::from_secs(120)]);
    let numbers: Vec<_> = d.attempts().iter().map(|a| a.number).collect();
    assert_eq!(numbers, [1, 2, 3]);
    let ats: Vec<_> = d.attempts().iter().map(|a| a.at).collect();
    assert_eq!(
        ats,
        [
            Duration::ZERO,
            Duration::from_secs(30),
            Duration::from_secs(150)
        ]
    );
}

#[test]
fn retryable_failures_give_up_after_max_attempts_with_the_last_result() {
    let (d, outcome, _) = drive(
        RetryPolicy::default().with_max_attempts(3),
        std::iter::repeat(status(503)),
    );
    assert_eq!(outcome, Some(FinalOutcome::GaveUp { last: status(503) }));
    assert_eq!(d.attempts().len(), 3);
}

#[test]
fn gone_and_permanent_failures_end_at_once() {
    let (d, outcome, _) = drive(RetryPolicy::default(), [status(410), status(200)]);
    assert_eq!(outcome, Some(FinalOutcome::Gone));
    assert_eq!(d.attempts().len(), 1);

    let (_, outcome, _) = drive(RetryPolicy::default(), [status(302)]);
    let Some(FinalOutcome::Failed { reason }) = outcome else {
        panic!("a redirect fails: {outcome:?}");
    };
    assert!(reason.contains("redirects are not followed"), "{reason}");

    let (_, outcome, _) = drive(RetryPolicy::default(), [status(400)]);
    assert!(matches!(outcome, Some(FinalOutcome::Failed { .. })));
}

#[test]
fn recording_after_the_end_changes_nothing() {
    let mut d = Delivery::new(DeliveryId::new(1), None, RetryPolicy::default());
    let first = d.record(status(200), Duration::ZERO);
    let again = d.record(status(500), Duration::from_secs(1));
    assert_eq!(first, again);
    assert_eq!(d.attempts().len(), 1);
    assert_eq!(d.fail("cancelled"), d.outcome().cloned().expect("over"));
    assert_eq!(d.next_attempt(), None);
}

#[test]
fn fail_ends_a_delivery_without_an_attempt() {
    let mut d = Delivery::new(DeliveryId::new(1), None, RetryPolicy::default());
    assert_eq!(d.next_attempt(), Some(1));
    let outcome = d.fail("bad URL");
    assert_eq!(
        outcome,
        FinalOutcome::Failed {
            reason: "bad URL".into()
        }
    );
    assert!(d.attempts().is_empty());
    assert_eq!(d.record(status(200), Duration::ZERO), Step::Done(outcome));
}

#[test]
fn jitter_is_deterministic_and_only_shortens() {
    let p = RetryPolicy::default().with_jitter(50);
    let a = DeliveryId::new(1);
    let b = DeliveryId::new(2);
    for n in 2..=5 {
        let base = p.delay_before(n).expect("within the policy");
        let ja = p.delay_for(a, n).expect("within the policy");
        assert_eq!(Some(ja), p.delay_for(a, n));
        assert!(ja <= base && ja >= base / 2, "{ja:?} vs {base:?}");
    }
    let spread: Vec<_> = (2..=5)
        .map(|n| (p.delay_for(a, n), p.delay_for(b, n)))
        .collect();
    assert!(spread.iter().any(|(x, y)| x != y), "{spread:?}");
}

#[test]
fn delivery_ids_display_and_parse_as_hex() {
    let id = DeliveryId::new(0xabc);
    assert_eq!(id.to_string(), "00000000000000000000000000000abc");
    assert_eq!(id.to_string().parse::<DeliveryId>(), Ok(id));
    assert!("".parse::<DeliveryId>().is_err());
    assert!("xyz".parse::<DeliveryId>().is_err());
    assert!("+1".parse::<DeliveryId>().is_err());
    assert!("0".repeat(33).parse::<DeliveryId>().is_err());
}

#[test]
fn a_delivery_round_trips_through_json_between_attempts() {
    let mut d = Delivery::new(
        DeliveryId::new(u128::MAX),
        Some(WebhookId::new(9)),
        RetryPolicy::default(),
    );
    d.record(
        AttemptOutcome::Error(TransportError::timeout("10s")),
        Duration::ZERO,
    );
    d.record(status(503), Duration::from_secs(40));
    let json = serde_json::to_string(&d).expect("serializes");
    let back: Delivery = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, d);
    let mut back = back;
    assert!(matches!(
        back.record(status(200), Duration::from_secs(200)),
        Step::Done(FinalOutcome::Delivered { .. })
    ));
    assert_eq!(back.attempts().len(), 3);
}

fn any_outcome() -> impl Strategy<Value = AttemptOutcome> {
    prop_oneof![
        (100u16..=599).prop_map(status),
        prop::sample::select(vec![200u16, 204, 302, 400, 404, 410, 429, 500, 503]).prop_map(status),
        any::<u8>().prop_map(|k| AttemptOutcome::Error(match k % 5 {
            0 => TransportError::connect("refused"),
            1 => TransportError::timeout("slow"),
            2 => TransportError::tls("cert"),
            3 => TransportError::io("reset"),
            _ => TransportError::other("?"),
        })),
    ]
}

fn any_policy() -> impl Strategy<Value = RetryPolicy> {
    (0u32..8, 0u64..100_000, 0u32..10, 0u64..1_000_000, 0u8..=120).prop_map(
        |(max, initial, mult, cap, jitter)| {
            RetryPolicy::default()
                .with_max_attempts(max)
                .with_initial_backoff(Duration::from_millis(initial))
                .with_multiplier(mult)
                .with_max_backoff(Duration::from_millis(cap))
                .with_jitter(jitter)
        },
    )
}

proptest! {
    #[test]
    fn every_delivery_ends_in_one_outcome_within_max_attempts(
        policy in any_policy(),
        results in prop::collection::vec(any_outcome(), 0..12),
        id in any::<u128>(),
    ) {
        let max = policy.max_attempts() as usize;
        let mut d = Delivery::new(DeliveryId::new(id), None, policy.clone());
        let mut at = Duration::ZERO;
        let mut outcomes = Vec::new();
        for result in &results {
            let verdict = result.verdict();
            let before = d.attempts().len();
            match d.record(result.clone(), at) {
                Step::Retry { after } => {
                    prop_assert!(outcomes.is_empty());
                    prop_assert_eq!(verdict, Verdict::Retry);
                    prop_assert!(after <= policy.max_backoff());
                    prop_assert_eq!(Some(after), policy.delay_for(DeliveryId::new(id), before as u32 + 2));
                    at += after;
                }
                Step::Done(outcome) => {
                    if outcomes.is_empty() {
                        let expected_kind = match verdict {
                            Verdict::Success => matches!(outcome, FinalOutcome::Delivered { .. }),
                            Verdict::Gone => outcome == FinalOutcome::Gone,
                            Verdict::Fail => matches!(outcome, FinalOutcome::Failed { .. }),
                            // One attempt allowed: "failed"; more than one: "gave up".
                            Verdict::Retry if max == 1 => matches!(outcome, FinalOutcome::Failed { .. }),
                            Verdict::Retry => outcome == FinalOutcome::GaveUp { last: result.clone() },
                            _ => false,
                        };
                        prop_assert!(expected_kind, "{:?} after {:?}", outcome, verdict);
                        if verdict == Verdict::Retry {
                            prop_assert_eq!(d.attempts().len(), max);
                        }
                    } else {
                        // Recording after the end changes nothing.
                        prop_assert_eq!(&outcome, &outcomes[0]);
                        prop_assert_eq!(d.attempts().len(), before);
                    }
                    outcomes.push(outcome);
                }
            }
            prop_assert!(d.attempts().len() <= max);
        }
        // Attempts are numbered 1, 2, ... with offsets that never go back.
        for (i, a) in d.attempts().iter().enumerate() {
            prop_assert_eq!(a.number as usize, i + 1);
        }
        prop_assert!(d.attempts().windows(2).all(|w| w[0].at <= w[1].at));
        prop_assert_eq!(d.is_done(), !outcomes.is_empty());
        prop_assert_eq!(d.outcome(), outcomes.first());
        // Only the last attempt may be a success, a 410 or a permanent failure.
        let n = d.attempts().len();
        for a in d.attempts().iter().take(n.saturating_sub(1)) {
            prop_assert_eq!(a.outcome.verdict(), Verdict::Retry);
        }
    }

    #[test]
    fn delays_are_non_decreasing_and_capped(policy in any_policy()) {
        let policy = policy.with_jitter(0);
        let delays: Vec<_> = (1..=policy.max_attempts()).map(|n| policy.delay_before(n)).collect();
        prop_assert!(delays.iter().all(|d| d.is_some_and(|d| d <= policy.max_backoff())));
        prop_assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        prop_assert_eq!(policy.delay_before(policy.max_attempts() + 1), None);
    }

    #[test]
    fn jittered_delays_stay_within_their_band(policy in any_policy(), id in any::<u128>(), n in 1u32..8) {
        if let Some(base) = policy.delay_before(n) {
            let j = policy.delay_for(DeliveryId::new(id), n).expect("same range as delay_before");
            prop_assert!(j <= base);
            let floor = base.as_nanos() * u128::from(100 - policy.jitter_percent()) / 100;
            prop_assert!(j.as_nanos() + 1 >= floor, "{:?} below {} ns", j, floor);
        } else {
            prop_assert_eq!(policy.delay_for(DeliveryId::new(id), n), None);
        }
    }

    #[test]
    fn never_makes_exactly_one_attempt(results in prop::collection::vec(any_outcome(), 1..6)) {
        let (d, outcome, waits) = drive(RetryPolicy::never(), results.clone());
        prop_assert!(outcome.is_some());
        prop_assert!(waits.is_empty());
        prop_assert_eq!(d.attempts().len(), 1);
        prop_assert_eq!(&d.attempts()[0].outcome, &results[0]);
    }
}

#[test]
fn backoff_follows_the_formula_far_out_and_never_jumps_to_the_cap() {
    use std::time::Duration;
    let hour = Duration::from_secs(3600);
    // A zero first wait stays zero, however many attempts.
    let zero = posthook::RetryPolicy::default()
        .with_max_attempts(100)
        .with_initial_backoff(Duration::ZERO);
    assert!((1..=100).all(|n| zero.delay_before(n) == Some(Duration::ZERO)));
    // 1 ns doubling: attempt 34 waits 2^32 ns, not the cap.
    let tiny = posthook::RetryPolicy::default()
        .with_max_attempts(40)
        .with_initial_backoff(Duration::from_nanos(1))
        .with_multiplier(2)
        .with_max_backoff(hour);
    assert_eq!(tiny.delay_before(34), Some(Duration::from_nanos(1 << 32)));
    assert_eq!(tiny.delay_before(40), Some(Duration::from_nanos(1 << 38)));
    // A huge factor reaches the cap and stays there.
    let steep = posthook::RetryPolicy::default()
        .with_max_attempts(u32::MAX)
        .with_initial_backoff(Duration::from_millis(1))
        .with_multiplier(100_000)
        .with_max_backoff(hour);
    assert_eq!(steep.delay_before(3), Some(Duration::from_secs(100)));
    assert_eq!(steep.delay_before(4), Some(hour));
    assert_eq!(steep.delay_before(u32::MAX), Some(hour));
    // A factor of 1 is a constant wait, computed at once even for the last attempt.
    let flat = steep.clone().with_multiplier(1);
    assert_eq!(flat.delay_before(u32::MAX), Some(Duration::from_millis(1)));
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Records `result` with a `Retry-After` of `asked` and returns the step.
fn asked(policy: RetryPolicy, result: AttemptOutcome, asked: Option<Duration>) -> (Delivery, Step) {
    let mut d = Delivery::new(DeliveryId::new(3), None, policy);
    let meta = posthook::AttemptMeta::new().with_retry_after(asked);
    let step = d.record_with(result, Duration::ZERO, meta);
    (d, step)
}

#[test]
fn retry_after_sets_the_next_wait_never_below_the_policy_delay_nor_below_what_was_asked() {
    let policy = RetryPolicy::default(); // 30 s first, at most 1 h
    for code in [429, 503] {
        let (d, step) = asked(policy.clone(), status(code), Some(secs(600)));
        assert_eq!(step, Step::Retry { after: secs(600) }, "{code}");
        assert_eq!(d.attempts()[0].retry_after, Some(secs(600)));
        // Never below the policy's own delay.
        let (_, step) = asked(policy.clone(), status(code), Some(secs(1)));
        assert_eq!(step, Step::Retry { after: secs(30) });
        // Beyond max_backoff: what it asked ("not before"), not the policy's longest wait.
        let (_, step) = asked(policy.clone(), status(code), Some(secs(7200)));
        assert_eq!(step, Step::Retry { after: secs(7200) });
        let (_, step) = asked(policy.clone(), status(code), Some(secs(86_400)));
        assert_eq!(
            step,
            Step::Retry {
                after: secs(86_400)
            }
        );
    }
    // Other retryable answers ignore it, and do not record it.
    let (d, step) = asked(policy.clone(), status(500), Some(secs(600)));
    assert_eq!(step, Step::Retry { after: secs(30) });
    assert_eq!(d.attempts()[0].retry_after, None);
    // It gives no extra attempt.
    let (_, step) = asked(RetryPolicy::never(), status(429), Some(secs(5)));
    assert!(
        matches!(step, Step::Done(FinalOutcome::Failed { .. })),
        "{step:?}"
    );
}

#[test]
fn retry_after_reads_seconds_and_http_dates_as_of_the_given_time() {
    use http::HeaderValue;
    use posthook::parse_retry_after;
    use std::time::SystemTime;
    let now = SystemTime::UNIX_EPOCH + secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
    let parse = |s: &'static str| parse_retry_after(&HeaderValue::from_static(s), now);
    assert_eq!(parse("0"), Some(secs(0)));
    assert_eq!(parse(" 42 "), Some(secs(42)));
    assert_eq!(parse("99999999999999999999999"), Some(secs(u64::MAX)));
    assert_eq!(parse("Sun, 06 Nov 1994 08:51:37 GMT"), Some(secs(120)));
    assert_eq!(parse("Sunday, 06-Nov-94 08:50:37 GMT"), Some(secs(60)));
    assert_eq!(parse("Sun Nov  6 08:49:47 1994"), Some(secs(10)));
    // A date already past: retry as soon as the policy allows.
    assert_eq!(parse("Sun, 06 Nov 1994 08:00:00 GMT"), Some(secs(0)));
    for bad in ["", "-1", "1.5", "soon", "Sun, 06 Nov 1994"] {
        assert_eq!(parse(bad), None, "{bad:?}");
    }
}

#[test]
fn a_schedule_waits_exactly_its_list_then_gives_up() {
    let (d, outcome, waits) = drive(RetryPolicy::svix(), std::iter::repeat(status(503)));
    let (m, h) = (60, 3600);
    assert_eq!(
        waits,
        [5, 5 * m, 30 * m, 2 * h, 5 * h, 10 * h, 10 * h].map(secs)
    );
    assert_eq!(d.attempts().len(), 8);
    assert_eq!(outcome, Some(FinalOutcome::GaveUp { last: status(503) }));
    // Cut short, stretched, capped.
    let short = RetryPolicy::schedule([secs(1), secs(2), secs(3)]).with_max_attempts(2);
    assert_eq!(drive(short, std::iter::repeat(status(500))).2, [secs(1)]);
    let long = RetryPolicy::schedule([secs(1), secs(2)]).with_max_attempts(5);
    assert_eq!(
        drive(long, std::iter::repeat(status(500))).2,
        [1, 2, 2, 2].map(secs)
    );
    let capped = RetryPolicy::svix().with_max_backoff(secs(60));
    assert!(capped.waits().is_some());
    assert!((2..=8).all(|n| capped.delay_before(n).unwrap() <= secs(60)));
    // Jitter applies the same way.
    let jittered = RetryPolicy::svix().with_jitter(50);
    for n in 2..=8 {
        let base = RetryPolicy::svix().delay_before(n).unwrap();
        let j = jittered.delay_for(DeliveryId::new(9), n).unwrap();
        assert!(j <= base && j >= base / 2, "{n}: {j:?} of {base:?}");
    }
    // An empty schedule is one attempt.
    assert_eq!(RetryPolicy::schedule([]).max_attempts(), 1);
}

#[test]
fn policies_round_trip_through_json_and_old_json_still_reads() {
    for policy in [
        RetryPolicy::default(),
        RetryPolicy::never(),
        RetryPolicy::svix().with_jitter(10),
    ] {
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(serde_json::from_str::<RetryPolicy>(&json).unwrap(), policy);
    }
    assert!(
        !serde_json::to_string(&RetryPolicy::default())
            .unwrap()
            .contains("schedule")
    );
    let old = r#"{"max_attempts":5,"initial_backoff":{"secs":30,"nanos":0},"multiplier":4,
        "max_backoff":{"secs":3600,"nanos":0},"jitter_percent":0}"#;
    assert_eq!(
        serde_json::from_str::<RetryPolicy>(old).unwrap(),
        RetryPolicy::default()
    );
    // An attempt written before durations were recorded still reads.
    let attempt = r#"{"number":1,"outcome":{"status":503},"at":{"secs":0,"nanos":0}}"#;
    let a: posthook::Attempt = serde_json::from_str(attempt).unwrap();
    assert_eq!((a.duration, a.retry_after), (None, None));
}

#[test]
fn a_retryable_failure_with_one_attempt_allowed_reads_failed_not_gave_up() {
    for policy in [
        RetryPolicy::never(),
        RetryPolicy::default().with_max_attempts(1),
    ] {
        let (_, outcome, _) = drive(policy, [status(503)]);
        let Some(FinalOutcome::Failed { reason }) = outcome else {
            panic!("failed: {outcome:?}");
        };
        assert!(reason.contains("503"), "{reason}");
    }
    // Two attempts: gave up.
    let (_, outcome, _) = drive(
        RetryPolicy::default().with_max_attempts(2),
        [status(503), status(503)],
    );
    assert_eq!(outcome, Some(FinalOutcome::GaveUp { last: status(503) }));
}

#[test]
fn record_failed_records_the_attempt_and_ends_failed() {
    let mut d = Delivery::new(DeliveryId::new(1), None, RetryPolicy::default());
    let outcome = d.record_failed(
        AttemptOutcome::Error(TransportError::other("the transport panicked: boom")),
        Duration::ZERO,
        "the transport panicked: boom",
    );
    assert!(matches!(&outcome, FinalOutcome::Failed { reason } if reason.contains("boom")));
    assert_eq!(d.attempts().len(), 1);
    assert_eq!(d.record(status(200), secs(1)), Step::Done(outcome));
}

fn any_schedule() -> impl Strategy<Value = RetryPolicy> {
    (
        prop::collection::vec(0u64..10_000_000, 0..9),
        prop::option::of(1u32..12),
        0u8..=100,
    )
        .prop_map(|(waits, max, jitter)| {
            let p = RetryPolicy::schedule(waits.into_iter().map(Duration::from_millis))
                .with_jitter(jitter);
            match max {
                Some(max) => p.with_max_attempts(max),
                None => p,
            }
        })
}

proptest! {
    #[test]
    fn retry_after_waits_are_never_shorter_than_asked_nor_than_the_policy_delay(
        policy in prop_oneof![any_policy(), any_schedule()],
        results in prop::collection::vec((any_outcome(), prop::option::of(0u64..10_000_000)), 1..12),
        id in any::<u128>(),
    ) {
        let mut d = Delivery::new(DeliveryId::new(id), None, policy.clone());
        for (result, asked) in results {
            let asked = asked.map(Duration::from_millis);
            let before = d.attempts().len() as u32;
            let meta = posthook::AttemptMeta::new().with_retry_after(asked);
            let honoured = matches!(result.status().map(|s| s.as_u16()), Some(429 | 503));
            match d.record_with(result, Duration::ZERO, meta) {
                Step::Retry { after } => {
                    let delay = policy.delay_for(DeliveryId::new(id), before + 2).unwrap();
                    prop_assert!(after >= delay);
                    prop_assert!(after <= posthook::MAX_WAIT);
                    match asked.filter(|_| honoured) {
                        Some(a) => prop_assert_eq!(after, a.max(delay).min(posthook::MAX_WAIT)),
                        None => {
                            prop_assert!(after <= delay.max(policy.max_backoff()));
                            prop_assert_eq!(after, delay);
                        }
                    }
                }
                Step::Done(_) => break,
            }
            prop_assert!(d.attempts().len() as u32 <= policy.max_attempts());
        }
    }

    #[test]
    fn a_schedule_gives_its_waits_in_order_then_repeats_the_last(policy in any_schedule()) {
        let waits = policy.waits().unwrap().to_vec();
        for n in 2..=policy.max_attempts() {
            let i = (n - 2) as usize;
            let expected = waits.get(i).or(waits.last()).copied().unwrap_or(Duration::ZERO);
            prop_assert_eq!(policy.delay_before(n), Some(expected.min(policy.max_backoff())));
        }
        prop_assert_eq!(policy.delay_before(policy.max_attempts() + 1), None);
        let json = serde_json::to_string(&policy).unwrap();
        prop_assert_eq!(serde_json::from_str::<RetryPolicy>(&json).unwrap(), policy);
    }
}
