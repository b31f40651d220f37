//! [`Pacing`]: how a store hands out the deliveries of one webhook.

use std::fmt;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

/// How a store hands out the deliveries of one webhook — how many attempts may
/// be in flight at once (across every worker of the store), how many may start per second,
/// and whether they go one at a time in publish order.
///
/// A webhook carries its pacing ([`WebhookBuilder::max_in_flight`](crate::WebhookBuilder::max_in_flight),
/// [`rate_limit`](crate::WebhookBuilder::rate_limit), [`ordered`](crate::WebhookBuilder::ordered));
/// the [`Outbox`](crate::Outbox) stores it with each delivery, and every
/// [`DeliveryStore`](crate::DeliveryStore) of this crate keeps it per webhook (the last
/// published wins) and applies it to its claims:
///
/// - **In-flight limit** (default [`Pacing::DEFAULT_MAX_IN_FLIGHT`]): a claim never leases a
///   webhook more deliveries than its limit minus the leases it holds already, whichever
///   worker or process holds them. A lease that runs out stops counting. So an endpoint
///   that hangs until every attempt's deadline holds at most its limit of the workers'
///   slots, and the others' deliveries go on.
/// - **In turn**: a claim takes the due deliveries of the webhooks with work in turn (the
///   one served longest ago first, an equal share each, then what is left of the claim to
///   those that have more), not the earliest due across all: one webhook's backlog of
///   100,000 does not delay another's next delivery.
/// - **Rate limit** (off by default; Svix's `throttleRate`): at most `n` attempts start per
///   second, with a burst of `n`. Deliveries over it wait in the store; they never fail.
/// - **Ordered** (off by default): deliveries go one at a time, in publish order. The
///   oldest pending delivery is the head; the others wait until it is delivered, gives up
///   or fails, however long its retries take, and the delivery log says which one they
///   wait behind ([`DeliveryRecord::waiting_behind`](crate::DeliveryRecord::waiting_behind)).
///   An ordered webhook has an in-flight limit of 1 whatever its `max_in_flight`.
///
/// Deliveries without a webhook id are not paced (no limit, no rate, unordered).
///
/// In-process [`Dispatcher::dispatch`](crate::Dispatcher::dispatch) has its own
/// concurrency limits (`max_concurrency`, `global_concurrency`); pacing is the store's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Pacing {
    /// The most attempts in flight at once, across all workers.
    pub max_in_flight: NonZeroU32,
    /// The most attempts started per second, if any.
    pub rate_limit: Option<RateLimit>,
    /// One at a time, in publish order.
    pub ordered: bool,
}

impl Pacing {
    /// The default in-flight limit per webhook: 16.
    pub const DEFAULT_MAX_IN_FLIGHT: NonZeroU32 = NonZeroU32::new(16).unwrap();

    /// [`DEFAULT_MAX_IN_FLIGHT`](Pacing::DEFAULT_MAX_IN_FLIGHT), no rate limit, unordered.
    pub const DEFAULT: Pacing = Pacing {
        max_in_flight: Pacing::DEFAULT_MAX_IN_FLIGHT,
        rate_limit: None,
        ordered: false,
    };

    /// No limit at all (`u32::MAX` in flight, no rate limit, unordered): what a delivery
    /// stored by hand ([`NewDelivery::new`](crate::NewDelivery::new),
    /// [`NewEvent::push`](crate::NewEvent::push)) gets. Deliveries published through the
    /// [`Outbox`](crate::Outbox) get their webhook's pacing, [`Pacing::DEFAULT`] unless set.
    pub const UNLIMITED: Pacing = Pacing {
        max_in_flight: NonZeroU32::MAX,
        rate_limit: None,
        ordered: false,
    };

    /// With an in-flight limit of `max`.
    #[must_use]
    pub const fn with_max_in_flight(mut self, max: NonZeroU32) -> Pacing {
        self.max_in_flight = max;
        self
    }

    /// With a rate limit (or none).
    #[must_use]
    pub const fn with_rate_limit(mut self, limit: Option<RateLimit>) -> Pacing {
        self.rate_limit = limit;
        self
    }

    /// Ordered or not.
    #[must_use]
    pub const fn with_ordered(mut self, ordered: bool) -> Pacing {
        self.ordered = ordered;
        self
    }

    /// The in-flight limit that applies: 1 when ordered, else `max_in_flight`.
    pub const fn effective_max_in_flight(&self) -> u32 {
        if self.ordered {
            1
        } else {
            self.max_in_flight.get()
        }
    }
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing::DEFAULT
    }
}

/// At most `n` attempts started per second (a token bucket of `n`, refilled continuously).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RateLimit(NonZeroU32);

impl RateLimit {
    /// `n` attempts per second.
    pub const fn per_second(n: NonZeroU32) -> RateLimit {
        RateLimit(n)
    }

    /// Attempts per second.
    pub const fn get(self) -> u32 {
        self.0.get()
    }
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", self.0)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per second", self.0)
    }
}
