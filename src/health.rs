//! Endpoint health: switch off a webhook whose deliveries keep failing (pure).
//!
//! [`EndpointHealth`] keeps, per webhook, the streak of its current failures: how many
//! deliveries in a row ended failed ([`FinalOutcome::Failed`] or [`FinalOutcome::GaveUp`]) and
//! when the first of them ended. A delivered one ends the streak. When a streak has lasted at
//! least [`failing_for`](EndpointHealth::failing_for) **and** counts at least
//! [`min_failures`](EndpointHealth::min_failures) deliveries, the rule says to disable the
//! webhook: a [`HealthChange::Disable`], which becomes [`Deactivation::Failing`] in the
//! [`Registry`](crate::Registry) ([`DispatchReport::apply_health`](crate::DispatchReport::apply_health)).
//! Both thresholds matter: an endpoint that failed twice five days apart has not been
//! failing for five days, and a burst of failures in one minute is not an outage.
//!
//! Like the [`Delivery`](crate::Delivery) state machine it reads no clock: each outcome comes
//! with the time it ended (the [`Dispatcher`](crate::Dispatcher) passes
//! [`Timer::now`](crate::Timer::now)). It keeps state only for webhooks that are failing.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use posthook::{EndpointHealth, FinalOutcome, HealthChange, WebhookId};
//!
//! let day = Duration::from_secs(86_400);
//! let mut health = EndpointHealth::new(5 * day, 3);
//! let hook = WebhookId::new(7);
//! let failed = FinalOutcome::Failed { reason: "HTTP 500".into() };
//! let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//!
//! assert_eq!(health.record(hook, &failed, t0), None);
//! assert_eq!(health.record(hook, &failed, t0 + day), None);
//! // Three failures, but only six days later is the streak five days old.
//! assert_eq!(health.record(hook, &failed, t0 + 2 * day), None);
//! let change = health.record(hook, &failed, t0 + 6 * day);
//! assert_eq!(
//!     change,
//!     Some(HealthChange::Disable { webhook_id: hook, since: 1_700_000_000, failures: 4 })
//! );
//! ```

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::{Deactivation, FinalOutcome, WebhookId};

/// The current streak of failures of one webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Streak {
    /// Deliveries in a row that failed.
    pub failures: u32,
    /// When the first of them ended.
    pub since: SystemTime,
}

/// What the health rule says to do with a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "change")]
#[non_exhaustive]
pub enum HealthChange {
    /// Switch it off: its deliveries have been failing long enough, often enough.
    Disable {
        /// The webhook.
        webhook_id: WebhookId,
        /// When the streak began, in Unix seconds (as [`Deactivation::Failing`] keeps it).
        since: u64,
        /// How many deliveries in a row had failed.
        failures: u32,
    },
}

impl HealthChange {
    /// The webhook it is about.
    pub fn webhook_id(&self) -> WebhookId {
        match self {
            HealthChange::Disable { webhook_id, .. } => *webhook_id,
        }
    }

    /// The reason to record in the registry: [`Deactivation::Failing`].
    pub fn deactivation(&self) -> Deactivation {
        match *self {
            HealthChange::Disable {
                since, failures, ..
            } => Deactivation::Failing { since, failures },
        }
    }
}

/// The rule that disables failing endpoints, and the streaks it watches.
///
/// [`EndpointHealth::default`]: 5 days (Svix's) and at least 5 deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHealth {
    failing_for: Duration,
    min_failures: u32,
    streaks: HashMap<WebhookId, Streak>,
}

impl Default for EndpointHealth {
    /// Failing for 5 days over at least 5 deliveries.
    fn default() -> Self {
        EndpointHealth::new(Duration::from_secs(5 * 86_400), 5)
    }
}

impl EndpointHealth {
    /// A rule that disables a webhook once its failures have lasted at least `failing_for`
    /// over at least `min_failures` deliveries (`0` counts as `1`).
    pub fn new(failing_for: Duration, min_failures: u32) -> EndpointHealth {
        EndpointHealth {
            failing_for,
            min_failures: min_failures.max(1),
            streaks: HashMap::new(),
        }
    }

    /// How long a streak must last.
    pub fn failing_for(&self) -> Duration {
        self.failing_for
    }

    /// How many failed deliveries a streak must count.
    pub fn min_failures(&self) -> u32 {
        self.min_failures
    }

    /// The current streak of `webhook`, if it is failing.
    pub fn streak(&self, webhook: WebhookId) -> Option<Streak> {
        self.streaks.get(&webhook).copied()
    }

    /// How many webhooks are failing now.
    pub fn failing(&self) -> usize {
        self.streaks.len()
    }

    /// Forgets the streak of `webhook` (e.g. when the application switches it back on, or
    /// removes it).
    pub fn forget(&mut self, webhook: WebhookId) {
        self.streaks.remove(&webhook);
    }

    /// Takes in the final outcome of one delivery to `webhook`, ended `at`, and says whether
    /// to disable it. Delivered ends the streak; failed or gave up extends it; `410 Gone`
    /// ends it too (the webhook is deactivated as [`Deactivation::Gone`] anyway).
    ///
    /// A streak that meets the rule gives a [`HealthChange::Disable`] on every failure from
    /// then on, until [`forget`](EndpointHealth::forget) or a success; applying it again
    /// changes nothing.
    pub fn record(
        &mut self,
        webhook: WebhookId,
        outcome: &FinalOutcome,
        at: SystemTime,
    ) -> Option<HealthChange> {
        match outcome {
            FinalOutcome::Delivered { .. } | FinalOutcome::Gone => {
                self.forget(webhook);
                None
            }
            FinalOutcome::Failed { .. } | FinalOutcome::GaveUp { .. } => {
                self.record_failure(webhook, at)
            }
            // Says nothing about the endpoint.
            FinalOutcome::Cancelled { .. } => None,
        }
    }

    /// One failed delivery to `webhook`, ended `at`; says whether to disable it.
    pub fn record_failure(&mut self, webhook: WebhookId, at: SystemTime) -> Option<HealthChange> {
        let streak = self.streaks.entry(webhook).or_insert(Streak {
            failures: 0,
            since: at,
        });
        streak.failures = streak.failures.saturating_add(1);
        // A clock that went back counts as no time passed.
        let lasted = at.duration_since(streak.since).unwrap_or(Duration::ZERO);
        if streak.failures >= self.min_failures && lasted >= self.failing_for {
            let since = streak
                .since
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            Some(HealthChange::Disable {
                webhook_id: webhook,
                since,
                failures: streak.failures,
            })
        } else {
            None
        }
    }

    /// One delivered delivery to `webhook`: its streak ends.
    pub fn record_success(&mut self, webhook: WebhookId) {
        self.forget(webhook);
    }
}
