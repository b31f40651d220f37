//! `--seed-webhooks N` (for trying the page at scale, see BENCHMARKS.md): fills a fresh data
//! directory with N webhooks of the app's account, each with three ended deliveries in its
//! log, before the app starts serving.
//!
//! Webhook `i` (from 0) is named `NAME #i` with `NAME` one of [`NAMES`] in turn (`i % 8`),
//! posts to `https://crm-IIIII.example/hooks` (`i + 1` in five digits), receives `subscribe`
//! and `EventKind::ALL[i % 25]` from every source, on all lists (even `i`) or list
//! `1 + i % 3`, and is switched off by hand when `i % 4 == 3`. Its deliveries got 204, 204,
//! then 500 when `i % 5 == 0` (one attempt each: failed), else 204. The URLs do not resolve:
//! a delivery published to them fails.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use http::StatusCode;
use posthook::{
    AccountId, AttemptOutcome, Deactivation, Delivery, DeliveryId, DeliveryStore, Event, EventId,
    EventKind, Finish, ListId, ListScope, NewEvent, Page, RetryPolicy, Source, SqliteStore,
    Webhook, WebhookFilter, WebhookStore,
};

/// The names the seeded webhooks take in turn.
pub const NAMES: [&str; 8] = [
    "Zapier",
    "HubSpot",
    "Salesforce",
    "Slack",
    "Mailchimp",
    "Pipedrive",
    "Segment",
    "Intercom",
];

/// Deliveries per seeded webhook.
const PER_WEBHOOK: usize = 3;

/// How many webhooks get their deliveries in one commit.
const CHUNK: usize = 500;

/// Webhook `i` of the seed.
fn webhook(i: usize) -> Result<Webhook, posthook::Error> {
    let scope = if i % 2 == 0 {
        ListScope::All
    } else {
        ListId::new(1 + (i % 3) as u64).map_or(ListScope::All, ListScope::List)
    };
    let mut hook = Webhook::builder(
        format!("{} #{i}", NAMES[i % NAMES.len()]),
        &format!("https://crm-{:05}.example/hooks", i + 1),
    )
    .events([
        EventKind::Subscribe,
        EventKind::ALL[i % EventKind::ALL.len()],
    ])
    .sources(Source::ALL)
    .scope(scope)
    .build()?;
    if i % 4 == 3 {
        hook.deactivate(Deactivation::Manual);
    }
    Ok(hook)
}

/// Seeds `n` webhooks into `store` for `account`; refuses a data directory that has
/// webhooks or pending deliveries already (the seed finishes the deliveries it claims).
pub async fn seed(
    store: &SqliteStore,
    account: AccountId,
    n: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let listed = store
        .list(account, &WebhookFilter::new(), Page::first(1))
        .await?;
    if listed.total > 0 || store.counts(None).await?.pending > 0 {
        return Err(
            "--seed-webhooks needs a fresh --data DIR (this one has webhooks or \
                    pending deliveries)"
                .into(),
        );
    }
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push((i, store.create(account, webhook(i)?).await?));
    }
    let body = Event::sample(EventKind::Subscribe).encode();
    let mut deliveries = 0;
    for chunk in ids.chunks(CHUNK) {
        let mut status = HashMap::new();
        let mut events = Vec::with_capacity(PER_WEBHOOK);
        for round in 0..PER_WEBHOOK {
            let mut event = NewEvent::new(EventId::random()?, EventKind::Subscribe, body.clone());
            for (i, stored) in chunk {
                let id = DeliveryId::new(EventId::random()?.get());
                let delivery = Delivery::new(id, Some(stored.id()), RetryPolicy::never());
                event.push(delivery, stored.webhook.url().clone());
                let failed = round == PER_WEBHOOK - 1 && i % 5 == 0;
                let code = if failed {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                };
                status.insert(id, code);
            }
            event.set_account(account);
            events.push(event);
        }
        store.enqueue_all(&events).await?;
        // Each delivery "attempted" at once, with the status chosen above.
        loop {
            let claimed = store.claim(1_000, Duration::from_secs(60)).await?;
            if claimed.is_empty() {
                break;
            }
            let mut finishes = Vec::with_capacity(claimed.len());
            for c in claimed {
                let code = status.get(&c.delivery.id()).copied();
                let code = code.unwrap_or(StatusCode::NO_CONTENT);
                let mut delivery = c.delivery;
                let step = delivery.record(AttemptOutcome::Status(code), c.age);
                finishes.push(Finish::new(c.claim, delivery, step));
            }
            for finished in store.finish_all(&finishes).await {
                finished?;
            }
            deliveries += finishes.len();
        }
    }
    eprintln!(
        "seeded {n} webhooks and {deliveries} deliveries in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
