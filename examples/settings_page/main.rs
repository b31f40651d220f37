//! The "Manage webhooks" page of the product document, as a small web application: the list
//! of webhooks, "Add" / "Edit" with every event and source, "Send sample data", "Test URL",
//! "Delete" (after a confirmation), each webhook's delivery log with "Resend" on every ended
//! delivery and "Recover" for everything that failed since a time, and a panel that
//! publishes events through an outbox that a background worker delivers (with retries), and
//! the automation "webhook" action. Deactivating or deleting a webhook cancels its pending
//! deliveries. `?lang=it` shows it in Italian.
//!
//! ```text
//! cargo run --example settings_page --features http,signing,sqlite -- [--port 8080] [--data DIR]
//!     [--failing-for SECONDS] [--host NAME]...
//! ```
//!
//! It listens on 127.0.0.1 and prints its address. It answers only requests whose `Host` is
//! that address, `localhost` on its port, or a `--host NAME` (any other gets `421`), and only
//! POSTs that come from its own pages (a session token in every form, `Origin` and
//! `Sec-Fetch-Site` checked): see guard.rs. Webhooks, deliveries and the delivery log are
//! kept in one SQLite file in `DIR` (a temporary directory by default), which one running
//! app holds at a time (`DIR/settings_page.lock`). A built-in receiver (`/_receiver`,
//! `/_receiver/flaky`, `/_receiver/down`, `/_receiver/reject`, `/_receiver/gone`) gives URLs
//! to try: to reach it, this app's transport allows loopback addresses, which a production
//! one must not.

// An application, not a library: `pub` in its modules means "shared with main.rs".
#![allow(unreachable_pub)]

mod explain;
mod form;
mod guard;
mod hooks;
mod outbox;
mod pages;
mod receiver;
mod session;
mod text;

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::{get, post};
use posthook::receive::Receiver;
use posthook::sign::SigningSecret;
use posthook::{
    AddressClass, AddressPolicy, Deactivation, DeliveryReport, Dispatcher, EndpointHealth,
    FinalOutcome, HealthChange, HttpTransport, OutcomeSink, RetryPolicy, SqliteStore, StoreError,
    TokioTimer, WebhookId, Worker,
};

use crate::guard::Hosts;
use crate::hooks::Hooks;
use crate::outbox::Deliveries;
use crate::session::Sessions;

/// Each attempt's deadline, and "Test URL"'s.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

type AppWorker = Worker<SqliteStore, HttpTransport, TokioTimer>;

/// Everything the handlers share: one `Clone` struct of `Arc`s.
#[derive(Clone)]
struct AppState {
    /// The webhooks. An async lock: posthook's `Outbox::switch_off` and `Outbox::delete`
    /// change the registry and then the store, and the lock is held across both; publishing
    /// holds it too, so a publish never matches a webhook that is being switched off or
    /// deleted and commits after its deliveries were cancelled.
    hooks: Arc<tokio::sync::Mutex<Hooks>>,
    deliveries: Arc<Deliveries>,
    dispatcher: Arc<Dispatcher<HttpTransport, TokioTimer>>,
    /// The background worker (set once it is built): its dispatcher keeps the
    /// endpoint-health streaks.
    worker: Arc<OnceLock<Arc<AppWorker>>>,
    templates: Arc<minijinja::Environment<'static>>,
    /// Each browser's session: its form token and its notices.
    sessions: Arc<Sessions>,
    /// `http://127.0.0.1:PORT`, for the built-in receiver's URLs.
    base: String,
    data_dir: String,
}

impl AppState {
    async fn hooks(&self) -> tokio::sync::MutexGuard<'_, Hooks> {
        self.hooks.lock().await
    }

    /// Forgets the failure streak of webhook `id` (it was switched back on).
    fn forget_failures(&self, id: WebhookId) {
        if let Some(worker) = self.worker.get() {
            worker.dispatcher().with_endpoint_health(|h| h.forget(id));
        }
    }

    /// Saves webhook `id` as it is now.
    async fn save_hook(&self, id: WebhookId) -> Result<(), sqlx::Error> {
        let Some(json) = self.hooks().await.json(id) else {
            return Ok(());
        };
        hooks::save(self.deliveries.store.pool(), id, &json).await
    }

    /// Switches a webhook off for `reason` (a `410 Gone`, or failing for too long) in the
    /// registry, and saves it. The worker that saw the outcome has cancelled the webhook's
    /// pending deliveries in the store already.
    async fn deactivate(&self, id: WebhookId, reason: Deactivation) {
        if !self.hooks().await.deactivate(id, reason) {
            return;
        }
        if let Err(error) = self.save_hook(id).await {
            eprintln!("could not save the deactivation of webhook {id}: {error}");
        }
    }

    /// [`deactivate`](AppState::deactivate) in the background: the worker's outcome sink
    /// cannot wait.
    fn deactivate_later(&self, id: WebhookId, reason: Deactivation) {
        let app = self.clone();
        tokio::spawn(async move { app.deactivate(id, reason).await });
    }
}

fn templates() -> Result<minijinja::Environment<'static>, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("list.html", include_str!("templates/list.html")),
        ("form.html", include_str!("templates/form.html")),
        ("detail.html", include_str!("templates/detail.html")),
        ("delete.html", include_str!("templates/delete.html")),
        ("log.html", include_str!("templates/log.html")),
        ("error.html", include_str!("templates/error.html")),
        ("automation.html", include_str!("templates/automation.html")),
        ("sent.html", include_str!("templates/sent.html")),
    ] {
        env.add_template(name, source)?;
    }
    Ok(env)
}

/// The worker's outcome sink: what a delivery's end means for its webhook. A `410 Gone`
/// deactivates it for good; the endpoint-health rule of the worker's dispatcher switches it
/// off once its deliveries have failed for long enough.
struct Apply(AppState);

impl OutcomeSink for Apply {
    fn outcome(&self, report: &DeliveryReport) {
        if let (Some(id), FinalOutcome::Gone) = (report.webhook_id, &report.outcome) {
            self.0.deactivate_later(id, Deactivation::Gone);
        }
    }

    fn health(&self, change: &HealthChange) {
        self.0
            .deactivate_later(change.webhook_id(), change.deactivation());
    }

    fn store_error(&self, error: &StoreError) {
        eprintln!("delivery store: {error}");
    }
}

struct Args {
    port: u16,
    data: Option<PathBuf>,
    failing_for: Duration,
    hosts: Vec<String>,
}

const USAGE: &str =
    "usage: settings_page [--port PORT] [--data DIR] [--failing-for SECONDS] [--host NAME]...";

fn args() -> Result<Args, String> {
    let (mut port, mut data, mut failing_for) = (8080, None, Duration::from_secs(30));
    let mut hosts = Vec::new();
    let mut args = std::env::args().skip(1);
    let value = |args: &mut dyn Iterator<Item = String>, arg: &str| {
        args.next()
            .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let v = value(&mut args, &arg)?;
                port = v.parse().map_err(|_| {
                    format!("not a port: {v:?} (a number from 0 to 65535)\n{USAGE}")
                })?;
            }
            "--data" => data = Some(PathBuf::from(value(&mut args, &arg)?)),
            "--failing-for" => {
                let v = value(&mut args, &arg)?;
                let secs = v
                    .parse()
                    .map_err(|_| format!("not a number of seconds: {v:?}\n{USAGE}"))?;
                failing_for = Duration::from_secs(secs);
            }
            "--host" => {
                let v = value(&mut args, &arg)?;
                let ok = !v.is_empty()
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
                if !ok {
                    return Err(format!(
                        "not a host name: {v:?} (letters, digits, '-', '.', and ':PORT')\n{USAGE}"
                    ));
                }
                hosts.push(v);
            }
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
        }
    }
    Ok(Args {
        port,
        data,
        failing_for,
        hosts,
    })
}

/// The data directory's lock, held for the app's life: one running app per directory.
/// The file keeps the holder's process id, for the message a second app prints.
fn lock_data_dir(dir: &Path) -> Result<File, String> {
    let path = dir.join("settings_page.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // `File::try_lock` is Rust 1.89; this example needs feature `sqlite`, whose sqlx needs
    // Rust 1.94 already (see the README), so the crate's 1.85 does not apply here.
    #[allow(clippy::incompatible_msrv)]
    let locked = file.try_lock();
    match locked {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => String::new(),
                pid => format!(" (process {pid})"),
            };
            return Err(format!(
                "another settings_page is using {}{holder}: stop it, or give this one another --data DIR",
                dir.display()
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(format!("cannot lock {}: {e}", path.display()));
        }
    }
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    written.map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(file)
}

/// The signing secret, kept in the data directory so that a restart keeps it.
fn secret(dir: &std::path::Path) -> Result<SigningSecret, Box<dyn std::error::Error>> {
    let path = dir.join("signing-secret.txt");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(SigningSecret::parse(text.trim())?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = SigningSecret::generate()?;
            std::fs::write(&path, secret.to_whsec())?;
            Ok(secret)
        }
        Err(e) => Err(e.into()),
    }
}

/// Errors in plain words (`settings_page: ...`), never as Debug output; exit status 2.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("settings_page: {error}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().skip(1).any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let args = args()?;
    let data = match args.data {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("posthook-settings-{}", std::process::id())),
    };
    std::fs::create_dir_all(&data)
        .map_err(|e| format!("cannot create the data directory {}: {e}", data.display()))?;
    let _lock = lock_data_dir(&data)?;
    let secret = secret(&data).map_err(|e| {
        format!(
            "cannot read or write the signing secret in {}: {e}",
            data.display()
        )
    })?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let address = listener.local_addr()?;
    let base = format!("http://{address}");
    let hosts = Hosts::new(&address.to_string(), address.port(), &args.hosts);

    // Development mode: the built-in receiver is on 127.0.0.1, so loopback is allowed.
    let dispatcher = || -> Result<_, Box<dyn std::error::Error>> {
        let transport = HttpTransport::builder()
            .address_policy(AddressPolicy::public_only().allow(AddressClass::Loopback))
            .build()?;
        Ok(Dispatcher::new(transport, TokioTimer::new())
            .attempt_timeout(ATTEMPT_TIMEOUT)
            // The automation action makes one attempt, as ActiveCampaign does.
            .automation_retry_policy(RetryPolicy::never())
            .signing_secret(secret.clone()))
    };
    // The worker's dispatcher keeps the endpoint-health tracker: webhooks whose deliveries
    // fail for 30 s (`--failing-for`) over 3 deliveries in a row are switched off (the
    // default rule is 5 days and 5 deliveries; this one is short, to try it out).
    let health = EndpointHealth::new(args.failing_for, 3);
    // Short waits, so that a person watching the page sees the retries happen.
    let retries = RetryPolicy::default()
        .with_max_attempts(4)
        .with_initial_backoff(Duration::from_secs(2))
        .with_multiplier(2)
        .with_max_backoff(Duration::from_secs(10));

    let deliveries = Deliveries::open(&data, retries)
        .await
        .map_err(|e| format!("cannot open the store in {}: {e}", data.display()))?;
    let app = AppState {
        hooks: Arc::new(tokio::sync::Mutex::new(
            Hooks::load(deliveries.store.pool()).await?,
        )),
        deliveries: Arc::new(deliveries),
        dispatcher: Arc::new(dispatcher()?),
        worker: Arc::default(),
        templates: Arc::new(templates()?),
        sessions: Arc::default(),
        base: base.clone(),
        data_dir: data.display().to_string(),
    };
    // The background worker: claims due deliveries from the store, attempts them, stores
    // what they got, and hands each final outcome to `ended`.
    let worker = Worker::new(
        app.deliveries.store.clone(),
        dispatcher()?.endpoint_health(health),
    )
    .wakeup(app.deliveries.outbox.wakeup().clone())
    .on_outcome(Apply(app.clone()));
    let worker = Arc::new(worker);
    let _ = app.worker.set(Arc::clone(&worker));
    tokio::spawn(async move { worker.run(std::future::pending()).await });

    let router = Router::new()
        .route("/", get(async || axum::response::Redirect::to("/webhooks")))
        .route("/webhooks", get(pages::list))
        .route("/webhooks/new", get(pages::new_form).post(pages::create))
        .route("/webhooks/{id}", get(pages::detail))
        .route(
            "/webhooks/{id}/edit",
            get(pages::edit_form).post(pages::update),
        )
        .route("/webhooks/{id}/sample", post(pages::send_sample))
        .route("/webhooks/{id}/test", post(pages::test_url))
        .route("/webhooks/{id}/active", post(pages::set_active))
        .route(
            "/webhooks/{id}/delete",
            get(pages::delete_form).post(pages::delete),
        )
        .route("/webhooks/{id}/recover", post(pages::recover))
        .route(
            "/webhooks/{id}/deliveries/{delivery}/resend",
            post(pages::resend),
        )
        .route("/webhooks/{id}/log", get(pages::log_fragment))
        .route("/simulate", post(pages::simulate))
        .route(
            "/automation",
            get(pages::automation_page).post(pages::automation_send),
        )
        .layer(axum::extract::DefaultBodyLimit::max(guard::BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::session,
        ))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .with_state(app)
        .merge(receiver::routes(Receiver::new().secret(secret)))
        .layer(axum::middleware::from_fn_with_state(hosts, guard::host))
        .layer(axum::middleware::from_fn(guard::headers));

    println!("listening on {base}/");
    println!("data in {}", data.display());
    axum::serve(listener, router).await?;
    Ok(())
}

/// The page's styles and its one script, served as files: the policy allows no inline ones.
async fn stylesheet() -> impl axum::response::IntoResponse {
    let css = include_str!("static/app.css");
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], css)
}

async fn script() -> impl axum::response::IntoResponse {
    let js = include_str!("static/app.js");
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        js,
    )
}
