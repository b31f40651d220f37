//! The "Manage webhooks" page of the product document, as a small web application: the list
//! of webhooks, "Add" / "Edit" with every event and source, "Send sample data", "Test URL",
//! "Delete" (after a confirmation), each webhook's delivery log with "Resend" on every ended
//! delivery and "Recover" for everything that failed since a time, and a panel that
//! publishes events through an outbox that a background worker delivers (with retries), and
//! the automation "webhook" action. Deactivating or deleting a webhook cancels its pending
//! deliveries. The list is paged (50 a page) and searchable (name or URL, event, state),
//! the filters in the query string. `?lang=it` shows it in Italian.
//!
//! ```text
//! cargo run --example settings_page --features http,signing,sqlite -- [--port 8080] [--data DIR]
//!     [--account N] [--failing-for SECONDS] [--host NAME]... [--log-timing]
//! ```
//!
//! It listens on 127.0.0.1 and prints its address. It answers only requests whose `Host` is
//! that address, `localhost` on its port, or a `--host NAME` (any other gets `421`), and only
//! POSTs that come from its own pages (a session token in every form, `Origin` and
//! `Sec-Fetch-Site` checked): see guard.rs. Webhooks (posthook's `WebhookStore`, account
//! `--account N`, 1 by default), deliveries and the delivery log are kept in one SQLite file
//! in `DIR` (a temporary directory by default), which one running app holds at a time
//! (`DIR/settings_page.lock`). Every page answer carries `Server-Timing: app;dur=MS`, the
//! time the app took; `--log-timing` also prints it per request on stderr.
//! `--seed-webhooks N` fills a fresh `DIR` with N webhooks and their logs first (see
//! seed.rs). A built-in receiver (`/_receiver`,
//! `/_receiver/flaky`, `/_receiver/down`, `/_receiver/reject`, `/_receiver/gone`) gives URLs
//! to try: to reach it, this app's transport allows loopback addresses, which a production
//! one must not.

// An application, not a library: `pub` in its modules means "shared with main.rs".
#![allow(unreachable_pub)]

mod explain;
mod form;
mod guard;
mod hooks;
#[cfg(test)]
mod italian;
mod outbox;
mod pages;
mod receiver;
mod seed;
mod session;
mod text;

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use posthook::receive::Receiver;
use posthook::sign::SigningSecret;
use posthook::{
    AccountId, AddressClass, AddressPolicy, Deactivation, DeliveryReport, Dispatcher,
    EndpointHealth, FinalOutcome, HealthChange, HttpTransport, OutcomeSink, RetryPolicy,
    SqliteStore, StoreError, TokioTimer, WebhookId, Worker,
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
    /// The webhooks: the store, and the registries publishing matches against (see
    /// hooks.rs for how a switch-off and a publish are kept apart).
    hooks: Arc<Hooks>,
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
    /// Forgets the failure streak of webhook `id` (it was switched back on).
    fn forget_failures(&self, id: WebhookId) {
        if let Some(worker) = self.worker.get() {
            worker.dispatcher().with_endpoint_health(|h| h.forget(id));
        }
    }

    /// Switches a webhook off for `reason` (a `410 Gone`, or failing for too long) in the
    /// store and the registries. The worker that saw the outcome has cancelled the
    /// webhook's pending deliveries already; what a publish queued in between is cancelled
    /// now.
    async fn deactivate(&self, id: WebhookId, reason: Deactivation) {
        if let Err(error) = self.hooks.switch(id, Err(reason)).await {
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
    account: AccountId,
    failing_for: Duration,
    hosts: Vec<String>,
    log_timing: bool,
    /// Fill the data directory with this many webhooks first (seed.rs).
    seed: Option<usize>,
}

const USAGE: &str = "usage: settings_page [--port PORT] [--data DIR] [--account N] \
     [--failing-for SECONDS] [--host NAME]... [--log-timing]";

fn args() -> Result<Args, String> {
    let (mut port, mut data, mut failing_for) = (8080, None, Duration::from_secs(30));
    let (mut account, mut log_timing, mut seed) = (AccountId::new(1), false, None);
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
            "--account" => {
                let v = value(&mut args, &arg)?;
                account = v
                    .parse()
                    .map_err(|_| format!("not an account number: {v:?}\n{USAGE}"))?;
            }
            "--log-timing" => log_timing = true,
            "--seed-webhooks" => {
                let v = value(&mut args, &arg)?;
                let n = v
                    .parse()
                    .map_err(|_| format!("not a number of webhooks: {v:?}\n{USAGE}"))?;
                seed = Some(n);
            }
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
        account,
        failing_for,
        hosts,
        log_timing,
        seed,
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
    let store = deliveries.store.clone();
    let moved = hooks::migrate_old_tables(&store, args.account).await?;
    if moved > 0 {
        eprintln!("moved {moved} webhooks of an older settings_page into the webhook store");
    }
    if let Some(n) = args.seed {
        seed::seed(&store, args.account, n).await?;
    }
    let hooks = Hooks::open(store, args.account)
        .await
        .map_err(|e| format!("cannot read the webhooks in {}: {e}", data.display()))?;
    let app = AppState {
        hooks: Arc::new(hooks),
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
    // Changes made by someone else (another process on the file): every second.
    let polled = Arc::clone(&app.hooks);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(hooks::POLL).await;
            polled.refresh().await;
        }
    });

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
        .layer(axum::middleware::from_fn_with_state(
            args.log_timing,
            timing,
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

/// How long the app took over a page: `Server-Timing: app;dur=MS` on the answer (the
/// browser's developer tools show it), and a line on stderr with `--log-timing`.
async fn timing(State(log): State<bool>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let target = log.then(|| format!("{} {}", request.method(), request.uri()));
    let mut response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        response.headers_mut().insert("server-timing", value);
    }
    if let Some(target) = target {
        eprintln!("{target} {} {ms:.2} ms", response.status().as_u16());
    }
    response
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
