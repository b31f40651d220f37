//! The endpoint-health rule (pure): streaks, both thresholds, resets.

use std::time::{Duration, SystemTime};

use posthook::{EndpointHealth, FinalOutcome, HealthChange, WebhookId};
use proptest::prelude::*;

fn failed() -> FinalOutcome {
    FinalOutcome::Failed {
        reason: "HTTP 500".into(),
    }
}

fn delivered() -> FinalOutcome {
    FinalOutcome::Delivered {
        status: http::StatusCode::OK,
    }
}

#[test]
fn defaults_are_five_days_and_five_deliveries() {
    let h = EndpointHealth::default();
    assert_eq!(h.failing_for(), Duration::from_secs(5 * 86_400));
    assert_eq!(h.min_failures(), 5);
    assert_eq!(EndpointHealth::new(Duration::ZERO, 0).min_failures(), 1);
}

#[test]
fn gone_ends_a_streak_and_webhooks_are_tracked_apart() {
    let mut h = EndpointHealth::new(Duration::ZERO, 2);
    let (a, b) = (WebhookId::new(1), WebhookId::new(2));
    let t = SystemTime::UNIX_EPOCH;
    assert_eq!(h.record(a, &failed(), t), None);
    assert_eq!(h.record(b, &failed(), t), None);
    assert_eq!(h.record(a, &FinalOutcome::Gone, t), None);
    assert_eq!(h.streak(a), None);
    assert!(matches!(
        h.record(b, &failed(), t),
        Some(HealthChange::Disable { failures: 2, .. })
    ));
    assert_eq!(h.failing(), 1);
    h.forget(b);
    assert_eq!(h.failing(), 0);
}

proptest! {
    /// Replays outcomes of one webhook at increasing times and checks the rule against a
    /// model: a change exactly when the current streak (since the last success) has at least
    /// `min` failures and has lasted at least `span`.
    #[test]
    fn disables_exactly_when_both_thresholds_are_met(
        span_secs in 0u64..1_000,
        min in 1u32..6,
        steps in prop::collection::vec((any::<bool>(), 0u64..400), 0..40),
    ) {
        let mut h = EndpointHealth::new(Duration::from_secs(span_secs), min);
        let id = WebhookId::new(9);
        let mut now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut model: Option<(SystemTime, u32)> = None;
        for (ok, gap) in steps {
            now += Duration::from_secs(gap);
            let outcome = if ok { delivered() } else { failed() };
            let change = h.record(id, &outcome, now);
            if ok {
                model = None;
                prop_assert_eq!(change, None);
            } else {
                let (since, n) = model.map_or((now, 1), |(s, n)| (s, n + 1));
                model = Some((since, n));
                let lasted = now.duration_since(since).unwrap();
                let due = n >= min && lasted >= Duration::from_secs(span_secs);
                prop_assert_eq!(change.is_some(), due);
                if let Some(HealthChange::Disable { failures, since: s, webhook_id }) = change {
                    prop_assert_eq!(failures, n);
                    prop_assert_eq!(webhook_id, id);
                    let unix = since.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
                    prop_assert_eq!(s, unix);
                }
            }
            prop_assert_eq!(h.streak(id).map(|s| s.failures), model.map(|m| m.1));
        }
    }
}
