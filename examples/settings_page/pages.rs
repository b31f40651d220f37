//! The handlers: plain async functions over typed extractors, one per page or form. Every
//! form posts and redirects (POST-redirect-GET); what an action found is kept as a notice
//! and shown once by the page it redirects to. No GET changes anything: "Delete" is a page
//! that asks, and its button posts.

use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use bytes::Bytes;
use minijinja::context;
use minijinja::value::Serde;
use posthook::{
    AttemptOutcome, CancelReason, Deactivation, DeliveryId, DeliveryRecord, DeliveryStore, Event,
    EventKind, FinalOutcome, Form, ListId, Source, StoreError, Webhook, WebhookId,
};
use serde::Serialize;

use crate::AppState;
use crate::form::{Problems, WebhookForm};
use crate::hooks::{LISTS, list_name};
use crate::text::{Lang, LangQuery};

/// What an action found, shown once on the page it redirects to.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub ok: bool,
    pub title: String,
    pub lines: Vec<String>,
}

// ---- the list -------------------------------------------------------------------------

#[derive(Serialize)]
struct Row {
    id: u64,
    name: String,
    url: String,
    list: String,
    events: String,
    sources: String,
    active: bool,
    state: String,
    last: Option<LastView>,
}

#[derive(Serialize)]
struct LastView {
    /// `ok`, `bad`, `pending` or `cancelled`: how the outcome is shown.
    class: &'static str,
    outcome: String,
    when: String,
}

#[derive(Serialize)]
struct Opt {
    value: String,
    label: String,
    selected: bool,
}

pub async fn list(State(app): State<AppState>, Query(q): Query<LangQuery>) -> Response {
    let lang = q.lang();
    let hooks: Vec<Webhook> = app.hooks().await.registry().iter().cloned().collect();
    let mut rows = Vec::with_capacity(hooks.len());
    for hook in &hooks {
        rows.push(row(&app, hook, lang).await);
    }
    let kinds = EventKind::ALL.map(|k| opt(k.as_str(), lang.event(k), k == EventKind::Subscribe));
    let sources = Source::ALL.map(|s| opt(s.as_str(), lang.source(s), false));
    let mut lists = vec![opt("0", lang.text().no_list, false)];
    lists.extend(
        LISTS
            .iter()
            .map(|(id, name)| opt(&id.to_string(), name, *id == 1)),
    );
    let receiver = &app.base;
    app.render(
        "list.html",
        lang,
        context! {
            rows => Serde(rows),
            notice => Serde(app.take_notice(None)),
            kinds => Serde(kinds),
            sources => Serde(sources),
            lists => Serde(lists),
            receiver => receiver,
        },
    )
}

fn opt(value: &str, label: &str, selected: bool) -> Opt {
    let (value, label) = (value.to_owned(), label.to_owned());
    Opt {
        value,
        label,
        selected,
    }
}

async fn row(app: &AppState, hook: &Webhook, lang: Lang) -> Row {
    let id = hook.id().unwrap_or(WebhookId::new(0));
    let recent = app.deliveries.recent(id, 1).await;
    let last = recent.first().map(|record| LastView {
        class: outcome_class(record),
        outcome: outcome_text(record, lang),
        when: time(last_activity(record)),
    });
    Row {
        id: id.get(),
        name: hook.name().to_owned(),
        url: hook.url().as_str().to_owned(),
        list: match hook.scope().list() {
            None => lang.text().all_lists.to_owned(),
            Some(list) => list_name(list),
        },
        events: events_text(hook, lang),
        sources: hook
            .sources()
            .iter()
            .map(|s| lang.source(s))
            .collect::<Vec<_>>()
            .join(", "),
        active: hook.is_active(),
        state: state_text(hook, lang),
        last,
    }
}

fn events_text(hook: &Webhook, lang: Lang) -> String {
    let events = hook.events();
    if events.len() == EventKind::ALL.len() {
        return lang.text().all_events.to_owned();
    }
    let labels: Vec<&str> = events.iter().map(|k| lang.event(k)).collect();
    match labels.len() {
        0..=3 => labels.join(", "),
        n => format!("{}, +{}", labels[..3].join(", "), n - 3),
    }
}

fn state_text(hook: &Webhook, lang: Lang) -> String {
    let t = lang.text();
    match hook.deactivation() {
        None => t.active.to_owned(),
        Some(Deactivation::Gone) => t.deactivated_gone.to_owned(),
        Some(Deactivation::Manual) => t.deactivated_manual.to_owned(),
        Some(Deactivation::Failing { since, failures }) => {
            let since = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(since);
            format!(
                "{} {} ({failures} {})",
                t.deactivated_failing,
                time(since),
                t.failures
            )
        }
        Some(other) => format!("{} ({})", t.deactivated_other, other.as_str()),
    }
}

/// A time as people read it, in UTC.
fn time(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// When an attempt was made: the delivery's start plus the attempt's offset.
fn attempt_time(record: &DeliveryRecord, offset: Duration) -> SystemTime {
    record.created_at + offset
}

/// When a delivery last did something: its end, its last attempt, or its creation.
fn last_activity(record: &DeliveryRecord) -> SystemTime {
    let last_attempt = record.delivery.attempts().last();
    let attempted = last_attempt.map(|a| attempt_time(record, a.at));
    record
        .finished_at
        .or(attempted)
        .unwrap_or(record.created_at)
}

fn outcome_text(record: &DeliveryRecord, lang: Lang) -> String {
    let t = lang.text();
    let now = SystemTime::now();
    match record.delivery.outcome() {
        None => match record.due_at {
            Some(due) if due > now && !record.leased => {
                format!("{} ({} {})", t.pending, t.retry_at, clock(due))
            }
            _ => t.pending.to_owned(),
        },
        Some(FinalOutcome::Delivered { status }) => {
            format!("{} (HTTP {})", t.delivered, status.as_u16())
        }
        Some(FinalOutcome::Gone) => t.gone.to_owned(),
        Some(FinalOutcome::Failed { reason }) => format!("{}: {reason}", t.failed),
        Some(FinalOutcome::GaveUp { last }) => format!(
            "{} ({} {}): {}",
            t.gave_up,
            record.delivery.attempts().len(),
            t.attempts.to_lowercase(),
            attempt_text(last, lang)
        ),
        Some(FinalOutcome::Cancelled { reason }) => {
            format!("{}: {}", t.cancelled, cancel_text(reason, lang))
        }
        Some(other) => other.to_string(),
    }
}

/// Why a delivery was cancelled, in words.
fn cancel_text(reason: &CancelReason, lang: Lang) -> String {
    let t = lang.text();
    match reason {
        CancelReason::SwitchedOff(Deactivation::Manual) => t.cancel_manual.to_owned(),
        CancelReason::SwitchedOff(Deactivation::Gone) => t.cancel_gone.to_owned(),
        CancelReason::SwitchedOff(Deactivation::Failing { failures, .. }) => {
            format!("{} {failures} {}", t.cancel_failing, t.failures)
        }
        CancelReason::Deleted => t.cancel_deleted.to_owned(),
        other => other.to_string(),
    }
}

/// The CSS class of a delivery's outcome.
fn outcome_class(record: &DeliveryRecord) -> &'static str {
    match record.delivery.outcome() {
        None => "pending",
        Some(o) if o.is_delivered() => "ok",
        Some(o) if o.is_cancelled() => "cancelled",
        Some(_) => "bad",
    }
}

/// `n` and the word for one or many: "1 delivery", "3 deliveries".
fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

fn clock(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at)
        .format("%H:%M:%S")
        .to_string()
}

fn attempt_text(outcome: &AttemptOutcome, lang: Lang) -> String {
    if let AttemptOutcome::Lapsed = outcome {
        return lang.text().lapsed.to_owned();
    }
    match outcome.status() {
        Some(status) => format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
        None => outcome.to_string(),
    }
}

// ---- one webhook: actions and its delivery log -----------------------------------------

#[derive(Serialize)]
struct LogRow {
    id: String,
    /// The delivery this one sends again.
    resent_from: Option<String>,
    /// Over, so "Resend" is offered.
    ended: bool,
    when: String,
    kind: String,
    kind_id: &'static str,
    attempts: Vec<AttemptRow>,
    outcome: String,
    class: &'static str,
}

#[derive(Serialize)]
struct AttemptRow {
    number: u32,
    when: String,
    result: String,
    ok: bool,
    took: String,
}

async fn log_rows(app: &AppState, id: WebhookId, lang: Lang) -> Vec<LogRow> {
    let records = app.deliveries.recent(id, 50).await;
    records
        .iter()
        .map(|record| LogRow {
            id: record.delivery.id().to_string(),
            resent_from: record.resent_from.map(|id| id.to_string()),
            ended: record.delivery.is_done(),
            when: time(record.created_at),
            kind: lang.event(record.kind).to_owned(),
            kind_id: record.kind.as_str(),
            attempts: record
                .delivery
                .attempts()
                .iter()
                .map(|a| AttemptRow {
                    number: a.number,
                    when: clock(attempt_time(record, a.at)),
                    result: attempt_text(&a.outcome, lang),
                    ok: a.outcome.status().is_some_and(|s| s.is_success()),
                    took: a.duration.map_or_else(String::new, |d| {
                        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
                    }),
                })
                .collect(),
            outcome: outcome_text(record, lang),
            class: outcome_class(record),
        })
        .collect()
}

#[derive(Serialize)]
struct CountView {
    state: &'static str,
    label: &'static str,
    n: u64,
}

/// How many deliveries of webhook `id` are in each state (empty if the store fails).
async fn counts(app: &AppState, id: WebhookId, lang: Lang) -> Vec<CountView> {
    let t = lang.text();
    let counts = match app.deliveries.store.counts(Some(id)).await {
        Ok(counts) => counts,
        Err(error) => {
            eprintln!("could not count the deliveries of webhook {id}: {error}");
            return Vec::new();
        }
    };
    [
        ("pending", t.count_pending, counts.pending),
        ("delivered", t.count_delivered, counts.delivered),
        ("failed", t.count_failed, counts.failed),
        ("gave_up", t.count_gave_up, counts.gave_up),
        ("gone", t.count_gone, counts.gone),
        ("cancelled", t.count_cancelled, counts.cancelled),
    ]
    .into_iter()
    .map(|(state, label, n)| CountView { state, label, n })
    .collect()
}

/// The choices of "Recover": (form value, how far back).
const SINCE: [(&str, Duration); 3] = [
    ("1h", Duration::from_secs(3600)),
    ("24h", Duration::from_secs(24 * 3600)),
    ("7d", Duration::from_secs(7 * 24 * 3600)),
];

fn since_options(lang: Lang) -> Vec<Opt> {
    let t = lang.text();
    let labels = [t.since_hour, t.since_day, t.since_week];
    SINCE
        .iter()
        .zip(labels)
        .map(|((value, _), label)| opt(value, label, *value == "24h"))
        .collect()
}

pub async fn detail(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    Query(q): Query<LangQuery>,
) -> Response {
    let (lang, id) = (q.lang(), WebhookId::new(id));
    let Some(hook) = app.hook(id).await else {
        return app.no_webhook(lang, id).await;
    };
    let mut kinds = vec![opt("", lang.text().all_its_events, true)];
    kinds.extend(
        hook.events()
            .iter()
            .map(|k| opt(k.as_str(), lang.event(k), false)),
    );
    app.render(
        "detail.html",
        lang,
        context! {
            hook => Serde(row(&app, &hook, lang).await),
            notice => Serde(app.take_notice(Some(id))),
            kinds => Serde(kinds),
            since => Serde(since_options(lang)),
            counts => Serde(counts(&app, id, lang).await),
            hook_id => id.get(),
            log => Serde(log_rows(&app, id, lang).await),
        },
    )
}

/// The log table alone, for the page's little refresh script.
pub async fn log_fragment(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    Query(q): Query<LangQuery>,
) -> Response {
    let (lang, id) = (q.lang(), WebhookId::new(id));
    let log = log_rows(&app, id, lang).await;
    let page = context! { log => Serde(log), hook_id => id.get() };
    app.render("log.html", lang, page)
}

/// How long "Send sample data" waits for the worker to deliver the samples.
const SAMPLE_WAIT: Duration = Duration::from_secs(15);

/// "Send sample data": the sample of one kind, or of each of the webhook's kinds.
pub async fn send_sample(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    Query(q): Query<LangQuery>,
    body: Bytes,
) -> Response {
    let (lang, id) = (q.lang(), WebhookId::new(id));
    let Some(hook) = app.hook(id).await else {
        return app.no_webhook(lang, id).await;
    };
    let chosen = Form::parse(&body)
        .ok()
        .and_then(|form| form.get("kind").and_then(|k| k.parse::<EventKind>().ok()));
    let kinds: Vec<EventKind> = match chosen {
        Some(kind) => vec![kind],
        None => hook.events().iter().collect(),
    };
    // Each sample is a delivery in the store, made by the worker; wait for their ends.
    let mut queued = Vec::with_capacity(kinds.len());
    for kind in kinds.iter().copied() {
        match app.deliveries.enqueue_sample(&hook, kind).await {
            Ok(delivery) => queued.push((kind, delivery)),
            Err(error) => return app.error(lang, &error.to_string()),
        }
    }
    let (mut delivered, mut lines, mut gone) = (0, Vec::new(), false);
    for (kind, delivery) in queued {
        let result = match app.deliveries.wait_done(delivery, SAMPLE_WAIT).await {
            Ok(record) => {
                let outcome = record.delivery.outcome();
                delivered += usize::from(outcome.is_some_and(FinalOutcome::is_delivered));
                gone |= outcome.is_some_and(FinalOutcome::is_gone);
                match record.delivery.attempts().last() {
                    Some(attempt) => attempt_text(&attempt.outcome, lang),
                    None => outcome_text(&record, lang),
                }
            }
            Err(error) => error.to_string(),
        };
        lines.push(format!("{}: {result}", lang.event(kind)));
    }
    if gone {
        // The worker deactivates it too (it sees every outcome); this page says so.
        app.deactivate(id, Deactivation::Gone).await;
        lines.insert(0, lang.text().now_deactivated.to_owned());
    }
    let title = format!(
        "{}: {delivered}/{} {}",
        lang.text().sample_result,
        kinds.len(),
        lang.text().delivered
    );
    let ok = delivered == kinds.len();
    app.set_notice(Some(id), Notice { ok, title, lines });
    redirect(&format!("/webhooks/{id}"), lang)
}

/// "Test URL": the probe's diagnosis, in plain words.
pub async fn test_url(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    Query(q): Query<LangQuery>,
) -> Response {
    let (lang, id) = (q.lang(), WebhookId::new(id));
    let Some(url) = app.hook(id).await.map(|h| h.url().as_str().to_owned()) else {
        return app.no_webhook(lang, id).await;
    };
    let diagnosis = app.dispatcher.diagnose(&url).await;
    let notice = Notice {
        ok: diagnosis.is_ok(),
        title: format!("{}: {url}", lang.text().test_result),
        lines: vec![diagnosis.to_string()],
    };
    app.set_notice(Some(id), notice);
    redirect(&format!("/webhooks/{id}"), lang)
}

/// Switches a webhook off (by hand), which cancels its pending deliveries, or back on
/// (which does not bring them back: "Recover" does).
pub async fn set_active(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    Query(q): Query<LangQuery>,
    body: Bytes,
) -> Response {
    let (lang, id) = (q.lang(), WebhookId::new(id));
    let active = Form::parse(&body).is_ok_and(|form| form.get("active") == Some("1"));
    let mut hooks = app.hooks().await;
    let Some(was_active) = hooks.get(id).map(Webhook::is_active) else {
        drop(hooks);
        return app.no_webhook(lang, id).await;
    };
    let cancelled = match (was_active, active) {
        (false, true) => {
            // A fresh start: the failures before it no longer count towards switching it off.
            app.forget_failures(id);
            hooks.set_active(id, true);
            None
        }
        (true, false) => {
            // Off in the registry, then its pending deliveries cancelled in the store, under
            // the lock: no publish matches it from here on, no worker attempts it again.
            let outbox = &app.deliveries.outbox;
            match outbox
                .switch_off(hooks.registry_mut(), id, Deactivation::Manual)
                .await
            {
                Ok(cancelled) => Some(cancelled),
                Err(error) => {
                    drop(hooks);
                    // Off in the registry even so; saved, so that it stays off.
                    let _ = app.save_hook(id).await;
                    return app.error(lang, &error.to_string());
                }
            }
        }
        // Already as asked (a form posted twice): a 410 or failing reason stays on record.
        _ => return redirect(&format!("/webhooks/{id}"), lang),
    };
    drop(hooks);
    if let Err(error) = app.save_hook(id).await {
        return app.error(lang, &error.to_string());
    }
    if let Some(cancelled) = cancelled {
        let t = lang.text();
        let line = count(cancelled, t.pending_cancelled_one, t.pending_cancelled_many);
        let notice = Notice {
            ok: true,
            title: t.deactivated_title.to_owned(),
            lines: vec![line],
        };
        app.set_notice(Some(id), notice);
    }
    redirect(&format!("/webhooks/{id}"), lang)
}

// ---- "Delete", "Resend", "Recover" -----------------------------------------------------

/// "Delete": the page that asks first (a GET changes nothing).
pub async fn delete_form(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    Query(q): Query<LangQuery>,
) -> Response {
    let (lang, id) = (q.lang(), WebhookId::new(id));
    let Some(hook) = app.hook(id).await else {
        return app.no_webhook(lang, id).await;
    };
    let pending = app
        .deliveries
        .store
        .counts(Some(id))
        .await
        .map_or(0, |c| c.pending);
    let page = context! {
        hook => Serde(row(&app, &hook, lang).await),
        pending => pending,
    };
    app.render("delete.html", lang, page)
}

/// "Delete", confirmed: out of the registry, its pending deliveries cancelled
/// (`Outbox::delete`), its row removed; its delivery log stays in the store.
pub async fn delete(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    Query(q): Query<LangQuery>,
) -> Response {
    let (lang, id) = (q.lang(), WebhookId::new(id));
    let mut hooks = app.hooks().await;
    let Some(before) = hooks.get(id).cloned() else {
        drop(hooks);
        return app.no_webhook(lang, id).await;
    };
    let outbox = &app.deliveries.outbox;
    let (_, cancelled) = match outbox.delete(hooks.registry_mut(), id).await {
        Ok(done) => done,
        Err(error) => {
            // `delete` takes it from the registry before it cancels: put it back, so that
            // the page and the file still agree, and say what failed.
            hooks.put(before);
            return app.error(lang, &error.to_string());
        }
    };
    hooks.forget(id);
    // Under the lock: an "Edit" of it cannot save it back in between.
    let saved = crate::hooks::remove(app.deliveries.store.pool(), id).await;
    drop(hooks);
    if let Err(error) = saved {
        return app.error(lang, &error.to_string());
    }
    let t = lang.text();
    let notice = Notice {
        ok: true,
        title: format!("{}: {}", t.deleted_title, before.name()),
        lines: vec![
            count(cancelled, t.pending_cancelled_one, t.pending_cancelled_many),
            t.log_kept.to_owned(),
        ],
    };
    app.set_notice(None, notice);
    redirect("/webhooks", lang)
}

/// "Resend" on one delivery of the log: the same event to the same webhook, as a new
/// delivery linked to it (`Outbox::resend`), made by the worker like any other.
pub async fn resend(
    State(app): State<AppState>,
    Path((id, delivery)): Path<(u64, String)>,
    Query(q): Query<LangQuery>,
) -> Response {
    let (lang, id) = (q.lang(), WebhookId::new(id));
    let t = lang.text();
    let Some(hook) = app.hook(id).await else {
        return app.no_webhook(lang, id).await;
    };
    let page = format!("/webhooks/{id}");
    let refuse = |why: &str| {
        let notice = Notice {
            ok: false,
            title: t.resend.to_owned(),
            lines: vec![why.to_owned()],
        };
        app.set_notice(Some(id), notice);
        redirect(&page, lang)
    };
    let Ok(delivery) = delivery.parse::<DeliveryId>() else {
        return refuse(t.no_such_delivery);
    };
    let record = match app.deliveries.store.delivery(delivery).await {
        Ok(record) => record,
        Err(StoreError::UnknownDelivery(_)) => return refuse(t.no_such_delivery),
        Err(error) => return app.error(lang, &error.to_string()),
    };
    if record.delivery.webhook_id() != Some(id) {
        return refuse(t.no_such_delivery);
    }
    if !record.delivery.is_done() {
        return refuse(t.not_ended);
    }
    // A deactivated webhook gets nothing, resends included (the worker would send them).
    if !hook.is_active() {
        return refuse(t.reactivate_first);
    }
    match app.deliveries.outbox.resend(delivery).await {
        Ok(new) => {
            let notice = Notice {
                ok: true,
                title: format!("{} {new}", t.resent_title),
                lines: vec![format!("{} {delivery}", t.resend_of)],
            };
            app.set_notice(Some(id), notice);
            redirect(&page, lang)
        }
        Err(error) => app.error(lang, &error.to_string()),
    }
}

/// "Recover": every delivery of the webhook that ended failed, given up or cancelled in
/// the chosen time, sent again, each once (`Outbox::recover`).
pub async fn recover(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    Query(q): Query<LangQuery>,
    body: Bytes,
) -> Response {
    let (lang, id) = (q.lang(), WebhookId::new(id));
    let t = lang.text();
    let Some(hook) = app.hook(id).await else {
        return app.no_webhook(lang, id).await;
    };
    let chosen = Form::parse(&body)
        .ok()
        .and_then(|form| form.get("since").map(str::to_owned));
    let back = SINCE
        .iter()
        .find(|(value, _)| Some(*value) == chosen.as_deref())
        .map(|(_, back)| *back);
    let problem = match back {
        None => Some(format!(
            "{}: since={}",
            t.bad_form,
            chosen.as_deref().unwrap_or("")
        )),
        Some(_) if !hook.is_active() => Some(t.reactivate_first.to_owned()),
        Some(_) => None,
    };
    if let Some(problem) = problem {
        let notice = Notice {
            ok: false,
            title: t.recovered_title.to_owned(),
            lines: vec![problem],
        };
        app.set_notice(Some(id), notice);
        return redirect(&format!("/webhooks/{id}"), lang);
    }
    let since = SystemTime::now() - back.unwrap_or_default();
    let resent = match app.deliveries.outbox.recover(id, since).await {
        Ok(resent) => resent,
        Err(error) => return app.error(lang, &error.to_string()),
    };
    let what = match resent.len() {
        0 => t.recovered_none.to_owned(),
        n => count(n as u64, t.recovered_one, t.recovered_many),
    };
    let notice = Notice {
        ok: true,
        title: format!("{}: {what}", t.recovered_title),
        lines: Vec::new(),
    };
    app.set_notice(Some(id), notice);
    redirect(&format!("/webhooks/{id}"), lang)
}

// ---- "Add" and "Edit" ------------------------------------------------------------------

#[derive(Serialize)]
struct FormView {
    title: &'static str,
    /// "Add" on a new webhook (as the product document has it), "Save" on an edit.
    submit: &'static str,
    action: String,
    list_options: Vec<Opt>,
    name: String,
    url: String,
    events: Vec<Check>,
    sources: Vec<Check>,
    form_error: Option<String>,
    list_error: Option<&'static str>,
    name_error: Option<&'static str>,
    url_error: Option<UrlErrorView>,
    events_error: Option<&'static str>,
    sources_error: Option<&'static str>,
}

#[derive(Serialize)]
struct Check {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

/// A URL error: the message, and the URL cut around the character it points at.
#[derive(Serialize)]
struct UrlErrorView {
    message: String,
    before: String,
    bad: String,
    after: String,
}

fn url_error_view(url: &str, error: &posthook::UrlError, lang: Lang) -> UrlErrorView {
    let offset = error.offset().min(url.len());
    let offset = (0..=offset)
        .rev()
        .find(|&i| url.is_char_boundary(i))
        .unwrap_or(0);
    let bad = url[offset..].chars().next().map_or(0, char::len_utf8);
    let message = match (lang, error.kind()) {
        (Lang::It, posthook::UrlErrorKind::InvalidCharacter(c)) => {
            format!("carattere non valido {c:?} al byte {offset}")
        }
        _ => error.to_string(),
    };
    UrlErrorView {
        message,
        before: url[..offset].to_owned(),
        bad: url[offset..offset + bad].replace(' ', "\u{2423}"),
        after: url[offset + bad..].to_owned(),
    }
}

fn form_view(
    lang: Lang,
    title: &'static str,
    action: String,
    form: &WebhookForm,
    problems: &Problems,
) -> FormView {
    let t = lang.text();
    let mut list_options = vec![opt(
        "0",
        t.all_lists,
        matches!(form.list.as_str(), "" | "0"),
    )];
    list_options.extend(LISTS.iter().map(|(id, name)| {
        let value = id.to_string();
        let selected = form.list == value;
        Opt {
            value,
            label: (*name).to_owned(),
            selected,
        }
    }));
    FormView {
        title,
        submit: if title == t.add_title { t.add } else { t.save },
        action,
        list_options,
        name: form.name.clone(),
        url: form.url.clone(),
        events: EventKind::ALL
            .iter()
            .map(|&k| Check {
                value: k.as_str(),
                label: lang.event(k),
                checked: form.events.contains(k),
            })
            .collect(),
        sources: Source::ALL
            .iter()
            .map(|&s| Check {
                value: s.as_str(),
                label: lang.source(s),
                checked: form.sources.contains(s),
            })
            .collect(),
        form_error: problems
            .form
            .as_ref()
            .map(|e| format!("{}: {e}", t.bad_form)),
        list_error: problems.list.then_some(t.bad_list),
        name_error: problems.name.then_some(t.blank_name),
        url_error: problems
            .url
            .as_ref()
            .map(|e| url_error_view(&form.url, e, lang)),
        events_error: problems.events.then_some(t.no_events),
        sources_error: problems.sources.then_some(t.no_sources),
    }
}

pub async fn new_form(State(app): State<AppState>, Query(q): Query<LangQuery>) -> Response {
    let lang = q.lang();
    let form = WebhookForm {
        list: "0".into(),
        ..WebhookForm::default()
    };
    let action = format!("/webhooks/new{}", lang.query());
    let view = form_view(
        lang,
        lang.text().add_title,
        action,
        &form,
        &Problems::default(),
    );
    app.render("form.html", lang, context! { form => Serde(view) })
}

pub async fn edit_form(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    Query(q): Query<LangQuery>,
) -> Response {
    let (lang, id) = (q.lang(), WebhookId::new(id));
    let Some(form) = app.hook(id).await.as_ref().map(WebhookForm::of) else {
        return app.no_webhook(lang, id).await;
    };
    let action = format!("/webhooks/{id}/edit{}", lang.query());
    let view = form_view(
        lang,
        lang.text().edit_title,
        action,
        &form,
        &Problems::default(),
    );
    app.render("form.html", lang, context! { form => Serde(view) })
}

pub async fn create(
    State(app): State<AppState>,
    Query(q): Query<LangQuery>,
    body: Bytes,
) -> Response {
    save(app, q.lang(), None, &body).await
}

pub async fn update(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    Query(q): Query<LangQuery>,
    body: Bytes,
) -> Response {
    save(app, q.lang(), Some(WebhookId::new(id)), &body).await
}

/// The form again, with what was typed, its problems and, after "Test URL", the diagnosis.
fn form_again(
    app: &AppState,
    lang: Lang,
    id: Option<WebhookId>,
    form: &WebhookForm,
    problems: &Problems,
    tested: Option<Notice>,
) -> Response {
    let (title, action) = match id {
        None => (
            lang.text().add_title,
            format!("/webhooks/new{}", lang.query()),
        ),
        Some(id) => (
            lang.text().edit_title,
            format!("/webhooks/{id}/edit{}", lang.query()),
        ),
    };
    let view = form_view(lang, title, action, form, problems);
    let page = context! { form => Serde(view), tested => Serde(tested) };
    app.render("form.html", lang, page)
}

/// "Add" / "Save", or "Test URL" on the URL as typed (nothing saved).
async fn save(app: AppState, lang: Lang, id: Option<WebhookId>, body: &[u8]) -> Response {
    if let Some(id) = id {
        if app.hook(id).await.is_none() {
            return app.no_webhook(lang, id).await;
        }
    }
    let (form, problems) = WebhookForm::parse(body);
    let test = Form::parse(body).is_ok_and(|f| f.get("do") == Some("test"));
    if test {
        let diagnosis = app.dispatcher.diagnose(&form.url).await;
        let tested = Notice {
            ok: diagnosis.is_ok(),
            title: format!("{}: {}", lang.text().test_result, form.url),
            lines: vec![diagnosis.to_string()],
        };
        let problems = Problems::default();
        return form_again(&app, lang, id, &form, &problems, Some(tested));
    }
    let mut hook = match form.build(problems, id) {
        Ok(hook) => hook,
        Err(problems) => {
            let page = form_again(&app, lang, id, &form, &problems, None);
            return (StatusCode::UNPROCESSABLE_ENTITY, page).into_response();
        }
    };
    let id = {
        let mut hooks = app.hooks().await;
        if let Some(id) = id {
            // Looked up again under the lock that puts it: deleted since, it stays deleted.
            let Some(previous) = hooks.get(id) else {
                drop(hooks);
                return app.no_webhook(lang, id).await;
            };
            // Editing keeps a deactivation (a 410 stays on record); "Reactivate" lifts it.
            if let Some(reason) = previous.deactivation() {
                hook.deactivate(reason);
            }
        }
        hooks.put(hook)
    };
    match app.save_hook(id).await {
        Ok(()) => redirect("/webhooks", lang),
        Err(error) => app.error(lang, &error.to_string()),
    }
}

// ---- "Simulate activity" ---------------------------------------------------------------

/// Publishes one event of the chosen kind, source and list through the outbox.
pub async fn simulate(
    State(app): State<AppState>,
    Query(q): Query<LangQuery>,
    body: Bytes,
) -> Response {
    let lang = q.lang();
    let form = Form::parse(&body).ok();
    let field = |key: &str| form.as_ref().and_then(|f| f.get(key)).unwrap_or("");
    let (Ok(kind), Ok(source)) = (
        field("kind").parse::<EventKind>(),
        field("source").parse::<Source>(),
    ) else {
        let lines = vec![format!(
            "kind {:?}, source {:?}",
            field("kind"),
            field("source")
        )];
        let title = lang.text().bad_form.to_owned();
        app.set_notice(
            None,
            Notice {
                ok: false,
                title,
                lines,
            },
        );
        return redirect("/webhooks", lang);
    };
    let list = field("list").parse::<u64>().ok().and_then(ListId::new);
    let event = match with_source(Event::sample(kind).with_list(list), source) {
        Ok(event) => event,
        Err(error) => return app.error(lang, &error),
    };
    // Published under the webhooks lock: a switch-off or a delete (which hold it too) comes
    // wholly before this publish or wholly after it, never between its match and its commit.
    let hooks = app.hooks().await;
    let published = app.deliveries.publish(hooks.registry(), &event).await;
    drop(hooks);
    let queued = match published {
        Ok(queued) => queued,
        Err(error) => return app.error(lang, &error.to_string()),
    };
    let list = list.map_or_else(|| lang.text().no_list.to_owned(), list_name);
    let title = format!(
        "{}: {} \u{b7} {} \u{b7} {list}",
        lang.text().published,
        lang.event(kind),
        lang.source(source)
    );
    let lines = vec![format!("{queued} {}", lang.text().queued)];
    app.set_notice(
        None,
        Notice {
            ok: true,
            title,
            lines,
        },
    );
    redirect("/webhooks", lang)
}

/// `event` as if started by `source`. posthook's `Event` has no setter for the source yet,
/// so this goes through the wire form: encode, change `initiated_from`, decode.
fn with_source(event: Event, source: Source) -> Result<Event, String> {
    let body = event.encode();
    let form = Form::parse(&body).map_err(|e| e.to_string())?;
    let pairs: Vec<(&str, &str)> = form
        .iter()
        .map(|(k, v)| {
            if k == "initiated_from" {
                (k, source.as_str())
            } else {
                (k, v)
            }
        })
        .collect();
    let body = serde_urlencoded::to_string(pairs).map_err(|e| e.to_string())?;
    Event::decode(body.as_bytes()).map_err(|e| e.to_string())
}

pub fn redirect(path: &str, lang: Lang) -> Response {
    Redirect::to(&format!("{path}{}", lang.query())).into_response()
}

impl AppState {
    pub fn render(&self, template: &str, lang: Lang, page: minijinja::Value) -> Response {
        let other = match lang {
            Lang::En => Lang::It,
            Lang::It => Lang::En,
        };
        let ctx = context! {
            t => Serde(lang.text()),
            lang => lang.code(),
            q => lang.query(),
            other_lang => other.query(),
            data_dir => &self.data_dir,
            ..page
        };
        match self
            .templates
            .get_template(template)
            .and_then(|t| t.render(ctx))
        {
            Ok(html) => Html(html).into_response(),
            Err(error) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("template {template}: {error:#}"),
            )
                .into_response(),
        }
    }

    /// Webhook `id` as it is now.
    async fn hook(&self, id: WebhookId) -> Option<Webhook> {
        self.hooks().await.get(id).cloned()
    }

    /// The answer for a webhook that is not there: `404`, saying so if it was deleted.
    async fn no_webhook(&self, lang: Lang, id: WebhookId) -> Response {
        let t = lang.text();
        let deleted = self.hooks().await.was_deleted(id);
        let message = if deleted { t.was_deleted } else { t.not_found };
        let page = self.render("error.html", lang, context! { message });
        (StatusCode::NOT_FOUND, page).into_response()
    }

    fn error(&self, lang: Lang, message: &str) -> Response {
        let page = self.render("error.html", lang, context! { message });
        (StatusCode::INTERNAL_SERVER_ERROR, page).into_response()
    }
}
