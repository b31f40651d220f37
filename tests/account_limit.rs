//! The per-account in-flight limit under any order of claims, finishes and lapsed leases:
//! a property test on the memory store with a manual clock. Whatever the script, no account
//! ever holds more live leases than the limit, an account below its limit with due work
//! gets a claim's free capacity, and every delivery ends exactly once.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use posthook::{
    AccountId, AttemptOutcome, Claimed, Delivery, DeliveryId, DeliveryStore, EventId, EventKind,
    Finished, ManualClock, MemoryStore, NewEvent, Pacing, RetryPolicy, WebhookId, WebhookUrl,
};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Act {
    /// A claim of up to this many deliveries.
    Claim(usize),
    /// The finish of the held lease at this index (modulo how many are held): delivered,
    /// or a 503 to retry.
    Finish(usize, bool),
    /// Every lease runs out (the workers holding them died).
    Lapse,
    /// Time passes: retries become due.
    Wait,
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        3 => (1usize..24).prop_map(Act::Claim),
        4 => (0usize..64, prop::bool::weighted(0.8)).prop_map(|(i, ok)| Act::Finish(i, ok)),
        1 => Just(Act::Lapse),
        1 => Just(Act::Wait),
    ]
}

const LEASE: Duration = Duration::from_secs(30);

/// `accounts[a]` = the deliveries of each of account `a`'s webhooks.
fn run(limit: u32, accounts: &[Vec<usize>], script: &[Act]) -> Result<(), TestCaseError> {
    let clock = ManualClock::default();
    let store = MemoryStore::with_clock(clock.clone())
        .with_max_in_flight_per_account(NonZeroU32::new(limit).unwrap());
    let url = WebhookUrl::parse("https://receiver.example.com/hook").unwrap();
    let policy = RetryPolicy::default()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_secs(1))
        .with_jitter(0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Webhook id -> its account.
        let mut owner: HashMap<WebhookId, usize> = HashMap::new();
        let mut total = 0u64;
        let mut hook = 0u64;
        for (account, webhooks) in accounts.iter().enumerate() {
            for &deliveries in webhooks {
                hook += 1;
                let webhook = WebhookId::new(hook);
                owner.insert(webhook, account);
                let mut event = NewEvent::new(
                    EventId::random().unwrap(),
                    EventKind::Subscribe,
                    Bytes::from(format!("hook={hook}")),
                );
                // Before the pushes: it marks the deliveries pushed after it too.
                event.set_account(AccountId::new(account as u64 + 1));
                for _ in 0..deliveries {
                    let id = DeliveryId::new(EventId::random().unwrap().get());
                    event.push_paced(
                        Delivery::new(id, Some(webhook), policy.clone()),
                        url.clone(),
                        Pacing::DEFAULT,
                    );
                }
                store.enqueue(&event).await.unwrap();
                total += deliveries as u64;
            }
        }
        let account_of = |c: &Claimed| owner[&c.delivery.webhook_id().unwrap()];

        let mut held: Vec<Claimed> = Vec::new();
        let mut ended = 0u64;
        let finish = async |held: &mut Vec<Claimed>, i: usize, ok: bool| {
            let mut c = held.swap_remove(i);
            let step = if c.lapsed {
                c.delivery.record(AttemptOutcome::Lapsed, c.age)
            } else {
                let status = if ok {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                c.delivery.record(AttemptOutcome::Status(status), c.age)
            };
            store.finish(&c.claim, &c.delivery, &step).await.unwrap();
            u64::from(c.delivery.is_done())
        };
        let script = script.iter().copied().chain(std::iter::repeat(Act::Wait));
        for (round, act) in script.enumerate() {
            if round > 2_000 {
                break;
            }
            match act {
                Act::Claim(n) => {
                    let before = per_account(&held, &account_of, accounts.len());
                    let claimed = store.claim(n, LEASE).await.unwrap();
                    prop_assert!(claimed.len() <= n);
                    held.extend(claimed);
                    let after = per_account(&held, &account_of, accounts.len());
                    for (account, &count) in after.iter().enumerate() {
                        prop_assert!(
                            count <= limit as usize,
                            "account {} holds {} leases, limit {}",
                            account,
                            count,
                            limit
                        );
                    }
                    let took: usize = after.iter().sum::<usize>() - before.iter().sum::<usize>();
                    if took < n {
                        // Capacity was left: then no account below its limit had due work.
                        let more = store.claim(n - took, LEASE).await.unwrap();
                        prop_assert!(more.is_empty(), "a second claim found due work");
                    }
                }
                Act::Finish(i, ok) if !held.is_empty() => {
                    let i = i % held.len();
                    ended += finish(&mut held, i, ok).await;
                }
                Act::Finish(..) => {}
                Act::Lapse => {
                    clock.advance(LEASE + Duration::from_secs(1));
                    // A late finish counts while no one has claimed the delivery again.
                    for c in held.drain(..) {
                        let mut delivery = c.delivery.clone();
                        let step = delivery.record(AttemptOutcome::Status(StatusCode::OK), c.age);
                        let finished = store.finish(&c.claim, &delivery, &step).await.unwrap();
                        ended += u64::from(finished == Finished::Done);
                    }
                }
                Act::Wait => {
                    if ended == total {
                        break;
                    }
                    // Drain: everything held is delivered, time passes, claim again.
                    while !held.is_empty() {
                        ended += finish(&mut held, 0, true).await;
                    }
                    clock.advance(Duration::from_secs(2));
                    held.extend(store.claim(64, LEASE).await.unwrap());
                    let after = per_account(&held, &account_of, accounts.len());
                    prop_assert!(after.iter().all(|&c| c <= limit as usize));
                }
            }
        }
        prop_assert_eq!(ended, total, "every delivery ends once");
        let counts = store.counts(None).await.unwrap();
        prop_assert_eq!(counts.pending, 0);
        prop_assert_eq!(counts.delivered + counts.gave_up, total);
        Ok(())
    })
}

fn per_account(
    held: &[Claimed],
    account_of: &impl Fn(&Claimed) -> usize,
    accounts: usize,
) -> Vec<usize> {
    let mut counts = vec![0; accounts];
    for c in held {
        counts[account_of(c)] += 1;
    }
    counts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn no_account_holds_more_than_its_limit(
        limit in 1u32..5,
        accounts in prop::collection::vec(prop::collection::vec(1usize..8, 1..4), 1..4),
        script in prop::collection::vec(act(), 1..64),
    ) {
        run(limit, &accounts, &script)?;
    }
}
