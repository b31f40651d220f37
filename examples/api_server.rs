//! ActiveCampaign-compatible webhooks as a service: ActiveCampaign API v3's webhook
//! endpoints (`posthook::api`), a worker delivering over HTTP, and one SQLite file that is
//! both the `WebhookStore` and the `DeliveryStore`, in one binary.
//!
//! ```text
//! cargo run --example api_server --features api,http,signing,sqlite -- \
//!     --port 8080 --data ./api-data --token 1:acme-token --token 2:globex-token \
//!     [--secret whsec_...] [--allow-private] [--publish-every SECONDS]
//! ```
//!
//! - `--port PORT`: on 127.0.0.1 (`0`, the default, picks a free port). The first line on
//!   stdout is `listening on http://ADDR`; then one line per delivery that ended.
//! - `--data DIR`: the SQLite file (`DIR/posthook.db`), created if need be.
//! - `--token ACCOUNT:TOKEN` (repeatable, at least one): the `Api-Token` of an account
//!   (a number). The tokens are kept hashed, never in the file.
//! - `--secret whsec_...`: sign every delivery (Standard Webhooks); unsigned without.
//! - `--allow-private`: deliver to loopback and private addresses too (a receiver on this
//!   machine); refused by default, as in production.
//! - `--publish-every SECONDS`: publish a sample event for every account that often.
//!
//! Besides ActiveCampaign's endpoints the example has one of its own, to try deliveries
//! out: `POST /api/3/_publish` with `{"type": "subscribe"}` (any of the 25 kinds) publishes
//! that kind's sample event for the token's account; it answers
//! `{"event": "<id>", "deliveries": N}`. Webhooks created through the API are matched
//! within a second (the registries poll the store every 200 ms). A webhook whose endpoint
//! answers `410 Gone` is switched off in the store (`"deactivated": "gone"` in the API) and
//! its pending deliveries are cancelled.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use http::{HeaderMap, StatusCode};
use posthook::api::{Api, Tokens};
use posthook::sign::SigningSecret;
use posthook::{
    AccountId, AddressClass, AddressPolicy, Deactivation, DeliveryReport, DeliveryStore,
    Dispatcher, Durability, Event, EventKind, FinalOutcome, HealthChange, HttpTransport, Outbox,
    OutcomeSink, Registries, SqliteStore, StoreError, TokioTimer, Webhook, WebhookId, WebhookStore,
    Worker,
};
use serde_json::{Value, json};

const USAGE: &str = "usage: api_server --data DIR --token ACCOUNT:TOKEN [--token ...] \
                     [--port PORT] [--secret whsec_...] [--allow-private] [--publish-every SECONDS]";

struct Args {
    port: u16,
    data: PathBuf,
    tokens: Vec<(AccountId, String)>,
    secret: Option<SigningSecret>,
    allow_private: bool,
    publish_every: Option<Duration>,
}

fn args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        port: 0,
        data: PathBuf::new(),
        tokens: Vec::new(),
        secret: None,
        allow_private: false,
        publish_every: None,
    };
    let mut data = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--port" => parsed.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--data" => data = Some(PathBuf::from(value()?)),
            "--token" => {
                let text = value()?;
                let (account, token) = text.split_once(':').ok_or("--token takes ACCOUNT:TOKEN")?;
                let account = account
                    .parse()
                    .map_err(|e| format!("--token: the account must be a number: {e}"))?;
                if token.is_empty() {
                    return Err("--token: the token is empty".into());
                }
                parsed.tokens.push((account, token.to_owned()));
            }
            "--secret" => {
                let secret =
                    SigningSecret::parse(&value()?).map_err(|e| format!("--secret: {e}"))?;
                parsed.secret = Some(secret);
            }
            "--allow-private" => parsed.allow_private = true,
            "--publish-every" => {
                let seconds: f64 = value()?
                    .parse()
                    .map_err(|e| format!("--publish-every: {e}"))?;
                let every = Duration::try_from_secs_f64(seconds)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or("--publish-every takes a number of seconds above 0")?;
                parsed.publish_every = Some(every);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    parsed.data = data.ok_or("--data DIR is required")?;
    if parsed.tokens.is_empty() {
        return Err("at least one --token ACCOUNT:TOKEN is required".into());
    }
    Ok(parsed)
}

/// What the example's own route needs.
#[derive(Clone)]
struct App {
    tokens: Tokens,
    accounts: Arc<Vec<AccountId>>,
    registries: Arc<Registries>,
    outbox: Outbox<SqliteStore>,
}

impl App {
    /// Webhook `id`, from the registry of the account that has it.
    fn webhook(&self, id: WebhookId) -> Option<(AccountId, Webhook)> {
        self.accounts.iter().find_map(|&account| {
            self.registries
                .with(account, |registry| registry.get(id).cloned())
                .map(|webhook| (account, webhook))
        })
    }

    /// Publishes `kind`'s sample event for `account`: how many deliveries it stored.
    async fn publish(
        &self,
        account: AccountId,
        kind: EventKind,
    ) -> Result<(String, usize), String> {
        let event = Event::sample(kind);
        // Matched under the registries' read lock; stored after it is released.
        let prepared = self
            .registries
            .with(account, |registry| self.outbox.prepare(registry, &event))
            .map_err(|e| e.to_string())?;
        let deliveries = prepared.deliveries().len();
        if deliveries > 0 {
            self.outbox
                .store()
                .enqueue(&prepared)
                .await
                .map_err(|e| e.to_string())?;
            self.outbox.wakeup().notify();
        }
        Ok((prepared.id().to_string(), deliveries))
    }
}

/// The worker's outcomes: a line on stdout for each, and a webhook switched off in the
/// store when its endpoint answers `410 Gone` or the health rule says so, so that the API
/// shows it `deactivated` and every process stops matching it.
struct WriteBack {
    app: App,
    store: SqliteStore,
}

impl WriteBack {
    fn switch_off(&self, id: WebhookId, reason: Deactivation) {
        let Some((account, _)) = self.app.webhook(id) else {
            return;
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            match store.deactivate(account, id, reason).await {
                Ok(_) => println!(
                    "webhook {id} of account {account} switched off: {}",
                    reason.as_str()
                ),
                Err(error) => eprintln!("switching webhook {id} off failed: {error}"),
            }
        });
    }
}

impl OutcomeSink for WriteBack {
    fn outcome(&self, report: &DeliveryReport) {
        let account = report
            .webhook_id
            .and_then(|id| self.app.webhook(id))
            .map_or_else(|| "?".to_owned(), |(account, _)| account.to_string());
        let webhook = report
            .webhook_id
            .map_or_else(|| "?".to_owned(), |id| id.to_string());
        println!(
            "delivery {} of account {account}, webhook {webhook}, to {}: {} after {} attempt(s)",
            report.id,
            report.url,
            report.outcome,
            report.attempts.len()
        );
        if let (Some(id), FinalOutcome::Gone) = (report.webhook_id, &report.outcome) {
            self.switch_off(id, Deactivation::Gone);
        }
    }

    fn health(&self, change: &HealthChange) {
        self.switch_off(change.webhook_id(), change.deactivation());
    }

    fn store_error(&self, error: &StoreError) {
        eprintln!("store: {error}");
    }
}

/// An error in ActiveCampaign's shape.
fn error(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = json!({"errors": [{"title": status.canonical_reason().unwrap_or(""),
        "detail": detail, "code": code}]});
    (status, Json(body)).into_response()
}

/// `POST /api/3/_publish` (this example's own): `{"type": "<kind>"}`.
async fn publish(State(app): State<App>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let token = headers
        .get("api-token")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let Some(account) = app.tokens.account(token) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid Api-Token is required",
        );
    };
    let kind = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["type"].as_str().and_then(|t| t.parse::<EventKind>().ok()));
    let Some(kind) = kind else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "field_invalid",
            r#"the body must be {"type": "<one of the 25 event kinds>"}"#,
        );
    };
    match app.publish(account, kind).await {
        Ok((event, deliveries)) => {
            Json(json!({"event": event, "deliveries": deliveries})).into_response()
        }
        Err(detail) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &detail),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("api_server: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&args.data)?;
    // One file: the webhooks (WebhookStore) and their deliveries (DeliveryStore).
    let store = SqliteStore::open(args.data.join("posthook.db"), Durability::ProcessCrash).await?;
    let tokens = args
        .tokens
        .iter()
        .fold(Tokens::new(), |tokens, (account, token)| {
            tokens.token(*account, token)
        });
    let mut accounts: Vec<AccountId> = args.tokens.iter().map(|(a, _)| *a).collect();
    accounts.sort_unstable();
    accounts.dedup();

    // Every account's registry, loaded now and kept in step with the store.
    let registries = Arc::new(Registries::new());
    registries.load(&store).await?;
    {
        let (registries, store) = (registries.clone(), store.clone());
        tokio::spawn(async move {
            let timer = TokioTimer::new();
            let (poll, full_check) = (Duration::from_millis(200), Duration::from_secs(60));
            registries
                .follow(
                    &store,
                    &timer,
                    poll,
                    full_check,
                    None,
                    std::future::pending(),
                )
                .await;
        });
    }

    let outbox = Outbox::new(store.clone());
    let app = App {
        tokens: tokens.clone(),
        accounts: Arc::new(accounts),
        registries,
        outbox: outbox.clone(),
    };

    // The worker: claims due deliveries from the store and sends them, each with its
    // webhook's own headers and timeout (looked up in the registries).
    let mut policy = AddressPolicy::public_only();
    if args.allow_private {
        policy = policy
            .allow(AddressClass::Loopback)
            .allow(AddressClass::Private);
    }
    let transport = HttpTransport::builder().address_policy(policy).build()?;
    let mut dispatcher = Dispatcher::new(transport, TokioTimer::new());
    if let Some(secret) = args.secret {
        dispatcher = dispatcher.signing_secret(secret);
    }
    let lookup = app.clone();
    let worker = Worker::new(store.clone(), dispatcher)
        .wakeup(outbox.wakeup().clone())
        .webhooks(move |id| lookup.webhook(id).map(|(_, webhook)| webhook))
        .on_outcome(WriteBack {
            app: app.clone(),
            store: store.clone(),
        });
    tokio::spawn(async move { worker.run(std::future::pending()).await });

    if let Some(every) = args.publish_every {
        let app = app.clone();
        tokio::spawn(async move {
            for kind in EventKind::ALL.iter().cycle() {
                tokio::time::sleep(every).await;
                for &account in app.accounts.iter() {
                    match app.publish(account, *kind).await {
                        Ok((event, n)) => {
                            println!(
                                "published {kind} {event} for account {account}: {n} deliveries"
                            );
                        }
                        Err(error) => eprintln!("publish failed: {error}"),
                    }
                }
            }
        });
    }

    let router = Api::new(store.clone(), tokens)
        .deliveries(store)
        .into_router()
        .merge(
            Router::new()
                .route("/api/3/_publish", post(publish))
                .with_state(app),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}
