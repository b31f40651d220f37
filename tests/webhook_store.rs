//! The `WebhookStore` contract, on `MemoryStore`, `SqliteStore` and `PostgresStore`: every
//! property one async fn, run against each store; and `Registries` following a store.

#[path = "support/pg.rs"]
#[cfg(feature = "postgres")]
mod pg;
#[path = "support/temp.rs"]
mod temp;

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use posthook::{
    AccountId, CancelReason, ChangeKind, Deactivation, DeliveryId, DeliveryState, DeliveryStore,
    Event, EventKind, FinalOutcome, ListScope, Outbox, Page, Registries, RetryPolicy, Source,
    Webhook, WebhookFilter, WebhookId, WebhookStore, WebhookStoreError,
};

const ACME: AccountId = AccountId::new(1);
const GLOBEX: AccountId = AccountId::new(2);

fn hook(name: &str, url: &str) -> Webhook {
    Webhook::builder(name, url)
        .events([EventKind::Subscribe, EventKind::Open])
        .sources(Source::ALL)
        .build()
        .unwrap()
}

/// Create, read, update with a version, delete: versions count, stale writes are refused
/// with the current webhook, ids are never given twice.
async fn versions_and_ids<S: WebhookStore>(store: &S) {
    let created = store
        .create(ACME, hook("CRM", "https://crm.example.com/hook"))
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    assert_eq!(created.account, ACME);
    let id = created.id();
    assert_eq!(created.webhook.id(), Some(id));
    let cdate = created.webhook.cdate().unwrap().to_owned();
    assert_eq!(cdate.len(), "2016-01-01T12:00:00-00:00".len(), "{cdate}");
    assert!(cdate.ends_with("-00:00"), "{cdate}");
    let read = store.get(ACME, id).await.unwrap();
    assert_eq!(read.webhook, created.webhook);
    assert_eq!(read.version, 1);

    let renamed = hook("CRM (new)", "https://crm.example.com/v2");
    let updated = store.update(ACME, id, 1, renamed.clone()).await.unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.webhook.name(), "CRM (new)");
    assert_eq!(updated.webhook.cdate(), Some(cdate.as_str()), "cdate kept");
    assert!(updated.updated_at >= updated.created_at);

    // A second editor, still at version 1: refused, and told what is there now.
    match store
        .update(ACME, id, 1, hook("Other", "https://other.example.com/"))
        .await
    {
        Err(WebhookStoreError::Conflict { expected, current }) => {
            assert_eq!(expected, 1);
            assert_eq!(current.version, 2);
            assert_eq!(current.webhook.name(), "CRM (new)");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        store.delete(ACME, id, Some(1)).await,
        Err(WebhookStoreError::Conflict { .. })
    ));
    let deleted = store.delete(ACME, id, Some(2)).await.unwrap();
    assert_eq!(deleted.webhook.name(), "CRM (new)");
    assert!(matches!(
        store.get(ACME, id).await,
        Err(WebhookStoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete(ACME, id, None).await,
        Err(WebhookStoreError::NotFound { .. })
    ));
    let again = store
        .create(ACME, hook("CRM", "https://crm.example.com/hook"))
        .await
        .unwrap();
    assert!(again.id() > id, "an id is never given twice");
}

/// One account never sees nor changes another's webhooks.
async fn accounts_are_apart<S: WebhookStore>(store: &S) {
    let mine = store
        .create(ACME, hook("mine", "https://acme.example.com/"))
        .await
        .unwrap();
    let theirs = store
        .create(GLOBEX, hook("theirs", "https://globex.example.com/"))
        .await
        .unwrap();
    assert_ne!(mine.id(), theirs.id(), "ids are unique across accounts");
    let not_found = |r: Result<_, WebhookStoreError>| matches!(r, Err(WebhookStoreError::NotFound { account, .. }) if account == GLOBEX);
    assert!(not_found(store.get(GLOBEX, mine.id()).await));
    assert!(not_found(
        store
            .update(GLOBEX, mine.id(), 1, hook("x", "https://x.example.com/"))
            .await
    ));
    assert!(not_found(store.delete(GLOBEX, mine.id(), None).await));
    assert_eq!(store.get(ACME, mine.id()).await.unwrap().version, 1);
    let listed = store
        .list(GLOBEX, &WebhookFilter::new(), Page::first(100))
        .await
        .unwrap();
    assert_eq!(listed.total, 1);
    assert_eq!(listed.webhooks[0].id(), theirs.id());
}

/// Filters and pages, checked against `WebhookFilter::matches` over every webhook.
async fn filters_and_pages<S: WebhookStore>(store: &S) {
    let mut all = Vec::new();
    for n in 0..30u64 {
        let kinds = [EventKind::ALL[(n % 25) as usize], EventKind::DealTaskAdd];
        let name = match n % 3 {
            0 => format!("Zapier {n}"),
            1 => format!("zapier_{n}%"),
            _ => format!("Make {n}"),
        };
        let url = format!("https://hooks{}.example.com/{n}", n % 4);
        let mut webhook = Webhook::builder(name, &url)
            .events(kinds)
            .sources(Source::ALL)
            .scope(ListScope::from_list_id(n % 3))
            .build()
            .unwrap();
        if n % 5 == 0 {
            webhook.deactivate(Deactivation::Manual);
        }
        all.push(store.create(ACME, webhook).await.unwrap());
    }
    store
        .create(GLOBEX, hook("Zapier", "https://hooks0.example.com/"))
        .await
        .unwrap();
    let filters = [
        WebhookFilter::new(),
        WebhookFilter::new().name("zapier"),
        WebhookFilter::new().name("ZAPIER_1"),
        WebhookFilter::new().name("%"),
        WebhookFilter::new().name("_"),
        WebhookFilter::new().url("HOOKS2"),
        WebhookFilter::new().search("make 1"),
        WebhookFilter::new().search("hooks3"),
        WebhookFilter::new().event(EventKind::DealTaskAdd),
        WebhookFilter::new().event(EventKind::ContactTagAdded),
        WebhookFilter::new().scope(ListScope::All),
        WebhookFilter::new().scope(ListScope::from_list_id(2)),
        WebhookFilter::new().active(false),
        WebhookFilter::new()
            .active(true)
            .name("zapier")
            .url("hooks1"),
    ];
    for filter in &filters {
        let want: Vec<WebhookId> = all
            .iter()
            .filter(|s| filter.matches(&s.webhook))
            .map(|s| s.id())
            .collect();
        let mut got = Vec::new();
        let mut page = Page::first(7);
        loop {
            let listed = store.list(ACME, filter, page).await.unwrap();
            assert_eq!(listed.total, want.len() as u64, "{filter:?}");
            if listed.webhooks.is_empty() {
                break;
            }
            got.extend(listed.webhooks.iter().map(|s| s.id()));
            page = page.next();
        }
        assert_eq!(got, want, "{filter:?}");
    }
}

/// Everything a webhook carries comes back: its own retry policy, timeout, pacing,
/// headers, signing secrets with their ends, and why it is off.
async fn a_webhook_comes_back_whole<S: WebhookStore>(store: &S) {
    let mut builder = Webhook::builder("Full", "https://full.example.com/hook?token=a$b")
        .events(EventKind::ALL)
        .sources([Source::Api, Source::System])
        .scope(ListScope::from_list_id(42))
        .retry_policy(RetryPolicy::svix())
        .attempt_timeout(Duration::from_millis(2500))
        .max_in_flight(NonZeroU32::new(3).unwrap())
        .rate_limit(NonZeroU32::new(50).unwrap())
        .ordered(true)
        .header("authorization", "Bearer abc")
        .header("x-tenant", "7");
    #[cfg(feature = "signing")]
    {
        let until = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        builder = builder
            .signing_secret(posthook::sign::SigningSecret::generate().unwrap())
            .signing_secret_until(posthook::sign::SigningSecret::generate().unwrap(), until);
    }
    let mut webhook = builder.build().unwrap();
    webhook.deactivate(Deactivation::Failing {
        since: 1_700_000_000,
        failures: 12,
    });
    let stored = store.create(ACME, webhook.clone()).await.unwrap();
    let read = store.get(ACME, stored.id()).await.unwrap();
    let mut want = webhook;
    want.set_id(stored.id());
    // The cdate is the store's.
    assert_eq!(read.webhook.cdate(), stored.webhook.cdate());
    let (mut got, mut want) = (read.webhook.clone(), want);
    got.set_id(WebhookId::new(0));
    want.set_id(WebhookId::new(0));
    assert_eq!(
        serde_json::to_value(&got).unwrap()["deactivated"],
        serde_json::to_value(&want).unwrap()["deactivated"]
    );
    assert_eq!(got.retry_policy(), want.retry_policy());
    assert_eq!(got.attempt_timeout(), want.attempt_timeout());
    assert_eq!(got.pacing(), want.pacing());
    assert_eq!(got.headers(), want.headers());
    assert_eq!(got.deactivation(), want.deactivation());
    assert_eq!(got.scope(), want.scope());
    assert_eq!(got.events(), want.events());
    #[cfg(feature = "signing")]
    {
        let secrets = |w: &Webhook| {
            w.signing_secrets_with_expiry()
                .map(|(s, until)| (s.to_whsec(), until))
                .collect::<Vec<_>>()
        };
        assert_eq!(secrets(&got), secrets(&want));
        assert_eq!(got.signing_secrets().len(), 2);
    }
}

/// The feed has every change in order; `last_change` is its end.
async fn the_change_feed<S: WebhookStore>(store: &S) {
    let start = store.last_change().await.unwrap();
    let a = store
        .create(ACME, hook("a", "https://a.example.com/"))
        .await
        .unwrap();
    let b = store
        .create(GLOBEX, hook("b", "https://b.example.com/"))
        .await
        .unwrap();
    store
        .update(ACME, a.id(), 1, hook("a2", "https://a.example.com/"))
        .await
        .unwrap();
    store.delete(GLOBEX, b.id(), None).await.unwrap();
    let changes = store.changes(start, 100).await.unwrap();
    let seen: Vec<(AccountId, WebhookId, ChangeKind, u64)> = changes
        .iter()
        .map(|c| (c.account, c.id, c.kind, c.version))
        .collect();
    assert_eq!(
        seen,
        vec![
            (ACME, a.id(), ChangeKind::Created, 1),
            (GLOBEX, b.id(), ChangeKind::Created, 1),
            (ACME, a.id(), ChangeKind::Updated, 2),
            (GLOBEX, b.id(), ChangeKind::Deleted, 1),
        ]
    );
    assert!(changes.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.last_change().await.unwrap(), changes[3].seq);
    assert_eq!(
        store.changes(changes[1].seq, 1).await.unwrap(),
        vec![changes[2]]
    );
    assert!(store.changes(changes[3].seq, 10).await.unwrap().is_empty());
}

/// An account may have `max_webhooks` webhooks; a delete makes room.
async fn the_limit_per_account<S: WebhookStore>(store: &S) {
    let limit = store.max_webhooks();
    assert_eq!(limit, 3, "the test store's limit");
    let mut ids = Vec::new();
    for n in 0..3 {
        let s = store
            .create(ACME, hook(&format!("{n}"), "https://l.example.com/"))
            .await
            .unwrap();
        ids.push(s.id());
    }
    assert!(matches!(
        store
            .create(ACME, hook("4", "https://l.example.com/"))
            .await,
        Err(WebhookStoreError::LimitReached { limit: 3, .. })
    ));
    store
        .create(GLOBEX, hook("other", "https://l.example.com/"))
        .await
        .expect("another account has its own limit");
    store.delete(ACME, ids[0], None).await.unwrap();
    store
        .create(ACME, hook("4", "https://l.example.com/"))
        .await
        .expect("a delete makes room");
}

/// `Registries` loads every account and follows the feed: a created webhook matches, a
/// switched-off or deleted one stops matching, each account matches only its own.
async fn registries_follow_the_store<S: WebhookStore>(store: &S) {
    let early = store
        .create(ACME, hook("early", "https://early.example.com/"))
        .await
        .unwrap();
    let registries = Registries::new();
    registries.load(store).await.unwrap();
    let event = Event::sample(EventKind::Subscribe);
    let matching = |account| {
        registries.with(account, |r| {
            let mut ids: Vec<WebhookId> = r.matches(&event).filter_map(|w| w.id()).collect();
            ids.sort();
            ids
        })
    };
    assert_eq!(matching(ACME), vec![early.id()]);
    assert!(matching(GLOBEX).is_empty());

    let late = store
        .create(GLOBEX, hook("late", "https://late.example.com/"))
        .await
        .unwrap();
    assert!(matching(GLOBEX).is_empty(), "not before a refresh");
    assert_eq!(registries.refresh(store).await.unwrap(), 1);
    assert_eq!(matching(GLOBEX), vec![late.id()]);
    assert_eq!(matching(ACME), vec![early.id()], "each account its own");

    let mut off = early.webhook.clone();
    off.deactivate(Deactivation::Manual);
    store.update(ACME, early.id(), 1, off).await.unwrap();
    store.delete(GLOBEX, late.id(), None).await.unwrap();
    registries.refresh(store).await.unwrap();
    assert!(matching(ACME).is_empty(), "switched off");
    assert!(matching(GLOBEX).is_empty(), "deleted");
    assert_eq!(registries.len(), 1, "the switched-off one is still held");
    assert_eq!(registries.seq(), store.last_change().await.unwrap());
    assert_eq!(registries.refresh(store).await.unwrap(), 0);
}

/// The state and the cancel reason (if any) of a delivery, from the store's log.
async fn ended<S: DeliveryStore>(
    store: &S,
    id: DeliveryId,
) -> (DeliveryState, Option<CancelReason>) {
    let record = store.delivery(id).await.unwrap();
    let reason = match record.delivery.outcome() {
        Some(FinalOutcome::Cancelled { reason }) => Some(*reason),
        _ => None,
    };
    (record.state, reason)
}

/// A switch-off or a delete through the webhook store is enforced by the store: what is
/// pending is cancelled with the reason, and what a process with a stale registry enqueues
/// afterwards is stored cancelled, never claimed; switching back on ends it.
async fn switch_off_is_enforced_by_the_store<S>(store: &S)
where
    S: WebhookStore + DeliveryStore + Clone + 'static,
{
    let created = store
        .create(ACME, hook("CRM", "https://crm.example.com/hook"))
        .await
        .unwrap();
    let id = created.id();
    // A process that loaded the webhooks once and never caught up.
    let stale = Registries::new();
    stale.load(store).await.unwrap();
    let outbox = Outbox::new(store.clone());
    let event = Event::sample(EventKind::Subscribe);
    let publish = || async {
        let published = outbox.publish_for(&stale, ACME, &event).await.unwrap();
        assert_eq!(
            published.deliveries.len(),
            1,
            "the stale registry still matches"
        );
        published.deliveries[0]
    };

    let before = publish().await;
    assert_eq!(ended(store, before).await, (DeliveryState::Pending, None));

    let mut off = created.webhook.clone();
    off.deactivate(Deactivation::Manual);
    store.update(ACME, id, 1, off).await.unwrap();
    let switched = Some(CancelReason::SwitchedOff(Deactivation::Manual));
    assert_eq!(
        ended(store, before).await,
        (DeliveryState::Cancelled, switched)
    );
    let after = publish().await;
    assert_eq!(
        ended(store, after).await,
        (DeliveryState::Cancelled, switched),
        "enqueued after the switch-off: stored cancelled"
    );
    assert!(
        store
            .claim(10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty(),
        "nothing of a switched-off webhook is claimed"
    );

    // A rename of the switched-off webhook keeps it off.
    let mut renamed = hook("CRM (off)", "https://crm.example.com/hook");
    renamed.deactivate(Deactivation::Manual);
    store.update(ACME, id, 2, renamed.clone()).await.unwrap();
    assert_eq!(
        ended(store, publish().await).await.0,
        DeliveryState::Cancelled
    );

    // Back on: enqueued and claimed as before.
    renamed.activate();
    store.update(ACME, id, 3, renamed).await.unwrap();
    let on = publish().await;
    assert_eq!(ended(store, on).await, (DeliveryState::Pending, None));
    let claimed = store.claim(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.delivery.id()).collect::<Vec<_>>(),
        vec![on]
    );

    // Deleted: the in-flight attempt keeps its lease; later enqueues are cancelled.
    store.delete(ACME, id, None).await.unwrap();
    let deleted = Some(CancelReason::Deleted);
    assert_eq!(ended(store, on).await, (DeliveryState::Cancelled, deleted));
    assert_eq!(
        ended(store, publish().await).await,
        (DeliveryState::Cancelled, deleted)
    );
    assert!(
        store
            .claim(10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );
    // Another webhook of the account is not affected.
    let other = store
        .create(ACME, hook("Other", "https://other.example.com/"))
        .await
        .unwrap();
    stale.refresh(store).await.unwrap();
    let published = outbox.publish_for(&stale, ACME, &event).await.unwrap();
    assert_eq!(published.deliveries.len(), 1);
    assert_eq!(
        ended(store, published.deliveries[0]).await.0,
        DeliveryState::Pending
    );
    let claimed = store.claim(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery.webhook_id(), Some(other.id()));
}

/// `deactivate` (what a worker writes back on a 410): off whatever the version, pending
/// deliveries cancelled, a 410 never replaced, and no update when nothing changes.
async fn deactivate_writes_back<S>(store: &S)
where
    S: WebhookStore + DeliveryStore + Clone + 'static,
{
    let created = store
        .create(ACME, hook("CRM", "https://crm.example.com/hook"))
        .await
        .unwrap();
    let id = created.id();
    // Someone renamed it meanwhile: the write-back does not need the version.
    store
        .update(ACME, id, 1, hook("CRM 2", "https://crm.example.com/hook"))
        .await
        .unwrap();
    let registries = Registries::new();
    registries.load(store).await.unwrap();
    let outbox = Outbox::new(store.clone());
    let published = outbox
        .publish_for(&registries, ACME, &Event::sample(EventKind::Subscribe))
        .await
        .unwrap();
    assert_eq!(published.deliveries.len(), 1);
    let pending = published.deliveries[0];

    let gone = store
        .deactivate(ACME, id, Deactivation::Gone)
        .await
        .unwrap();
    assert_eq!(gone.version, 3);
    assert_eq!(gone.webhook.name(), "CRM 2", "the rename is kept");
    assert_eq!(gone.webhook.deactivation(), Some(Deactivation::Gone));
    assert_eq!(
        ended(store, pending).await,
        (
            DeliveryState::Cancelled,
            Some(CancelReason::SwitchedOff(Deactivation::Gone))
        )
    );
    let last = store.last_change().await.unwrap();
    // A 410 is not replaced by a manual switch-off or a failing streak: nothing is written.
    for reason in [
        Deactivation::Manual,
        Deactivation::Failing {
            since: 1_700_000_000,
            failures: 5,
        },
        Deactivation::Gone,
    ] {
        let again = store.deactivate(ACME, id, reason).await.unwrap();
        assert_eq!(again.version, 3, "{reason:?}");
        assert_eq!(again.webhook.deactivation(), Some(Deactivation::Gone));
    }
    assert_eq!(
        store.last_change().await.unwrap(),
        last,
        "no change in the feed"
    );
    // Another account's id, or a missing one, is NotFound.
    assert!(matches!(
        store
            .deactivate(AccountId::new(99), id, Deactivation::Gone)
            .await,
        Err(WebhookStoreError::NotFound { .. })
    ));
}

macro_rules! suite {
    ($module:ident, $store:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn versions_and_ids() {
                let Some((store, _guard)) = $store(None).await else {
                    return;
                };
                super::versions_and_ids(&store).await;
            }

            #[tokio::test]
            async fn accounts_are_apart() {
                let Some((store, _guard)) = $store(None).await else {
                    return;
                };
                super::accounts_are_apart(&store).await;
            }

            #[tokio::test]
            async fn filters_and_pages() {
                let Some((store, _guard)) = $store(None).await else {
                    return;
                };
                super::filters_and_pages(&store).await;
            }

            #[tokio::test]
            async fn a_webhook_comes_back_whole() {
                let Some((store, _guard)) = $store(None).await else {
                    return;
                };
                super::a_webhook_comes_back_whole(&store).await;
            }

            #[tokio::test]
            async fn the_change_feed() {
                let Some((store, _guard)) = $store(None).await else {
                    return;
                };
                super::the_change_feed(&store).await;
            }

            #[tokio::test]
            async fn the_limit_per_account() {
                let Some((store, _guard)) = $store(Some(3)).await else {
                    return;
                };
                super::the_limit_per_account(&store).await;
            }

            #[tokio::test]
            async fn switch_off_is_enforced_by_the_store() {
                let Some((store, _guard)) = $store(None).await else {
                    return;
                };
                super::switch_off_is_enforced_by_the_store(&store).await;
            }

            #[tokio::test]
            async fn deactivate_writes_back() {
                let Some((store, _guard)) = $store(None).await else {
                    return;
                };
                super::deactivate_writes_back(&store).await;
            }

            #[tokio::test]
            async fn registries_follow_the_store() {
                let Some((store, _guard)) = $store(None).await else {
                    return;
                };
                super::registries_follow_the_store(&store).await;
            }
        }
    };
}

async fn memory(limit: Option<u32>) -> Option<(posthook::MemoryStore, ())> {
    let store = posthook::MemoryStore::new();
    Some((
        limit.map_or(store.clone(), |l| store.with_max_webhooks(l)),
        (),
    ))
}

suite!(memory_store, memory);

#[cfg(feature = "sqlite")]
async fn sqlite(limit: Option<u32>) -> Option<(posthook::SqliteStore, temp::TempDir)> {
    let dir = temp::TempDir::new("posthook-webhooks");
    let store = posthook::SqliteStore::open(
        dir.path().join("webhooks.db"),
        posthook::Durability::ProcessCrash,
    )
    .await
    .unwrap();
    Some((
        limit.map_or(store.clone(), |l| store.with_max_webhooks(l)),
        dir,
    ))
}

#[cfg(feature = "sqlite")]
suite!(sqlite_store, sqlite);

#[cfg(feature = "postgres")]
async fn postgres(limit: Option<u32>) -> Option<(posthook::PostgresStore, pg::Schema)> {
    let schema = pg::schema().await?;
    let store = schema.store(4).await;
    Some((
        limit.map_or(store.clone(), |l| store.with_max_webhooks(l)),
        schema,
    ))
}

#[cfg(feature = "postgres")]
suite!(postgres_store, postgres);
