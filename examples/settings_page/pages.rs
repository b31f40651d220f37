//! The handlers: plain async functions over typed extractors, one per page or form. Every
//! form posts and redirects (POST-redirect-GET); what an action found is kept as a notice
//! and shown once by the page it redirects to.

use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use bytes::Bytes;
use minijinja::context;
use minijinja::value::Serde;
use posthook::{
    AttemptOutcome, Deactivation, DeliveryRecord, Event, EventKind, FinalOutcome, Form, ListId,
    Source, Webhook, WebhookId,
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
    ok: bool,
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
    let hooks: Vec<Webhook> = app.hooks().registry().iter().cloned().collect();
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
        ok: record
            .delivery
            .outcome()
            .is_some_and(FinalOutcome::is_delivered),
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
            attempt_text(last)
        ),
        Some(other) => other.to_string(),
    }
}

fn clock(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at)
        .format("%H:%M:%S")
        .to_string()
}

fn attempt_text(outcome: &AttemptOutcome) -> String {
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
                    result: attempt_text(&a.outcome),
                    ok: a.outcome.status().is_some_and(|s| s.is_success()),
                    took: a.duration.map_or_else(String::new, |d| {
                        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
                    }),
                })
                .collect(),
            outcome: outcome_text(record, lang),
            class: match record.delivery.outcome() {
                None => "pending",
                Some(o) if o.is_delivered() => "ok",
                Some(_) => "bad",
            },
        })
        .collect()
}

pub async fn detail(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    Query(q): Query<LangQuery>,
) -> Response {
    let (lang, id) = (q.lang(), WebhookId::new(id));
    let Some(hook) = app.hooks().get(id).cloned() else {
        return app.not_found(lang);
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
    app.render("log.html", lang, context! { log => Serde(log) })
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
    let Some(hook) = app.hooks().get(id).cloned() else {
        return app.not_found(lang);
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
                    Some(attempt) => attempt_text(&attempt.outcome),
                    None => outcome_text(&record, lang),
                }
            }
            Err(error) => error.to_string(),
        };
        lines.push(format!("{}: {result}", lang.event(kind)));
    }
    if gone {
        // The worker deactivates it too (it sees every outcome); this page says so.
        app.deactivate(id, Deactivation::Gone);
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
    let Some(url) = app.hooks().get(id).map(|h| h.url().as_str().to_owned()) else {
        return app.not_found(lang);
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

/// Switches a webhook off (by hand) or back on.
pub async fn set_active(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    Query(q): Query<LangQuery>,
    body: Bytes,
) -> Response {
    let (lang, id) = (q.lang(), WebhookId::new(id));
    let active = Form::parse(&body).is_ok_and(|form| form.get("active") == Some("1"));
    if active {
        // A fresh start: the failures before it no longer count towards switching it off.
        app.forget_failures(id);
    }
    if !app.hooks().set_active(id, active) {
        return app.not_found(lang);
    }
    match app.save_hook(id).await {
        Ok(()) => redirect(&format!("/webhooks/{id}"), lang),
        Err(error) => app.error(lang, &error.to_string()),
    }
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
    let Some(form) = app.hooks().get(id).map(WebhookForm::of) else {
        return app.not_found(lang);
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
    let previous = match id.map(|id| app.hooks().get(id).map(Webhook::deactivation)) {
        None => None,
        Some(None) => return app.not_found(lang),
        Some(Some(reason)) => reason,
    };
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
    // Editing keeps a deactivation (a 410 stays on record); "Reactivate" lifts it.
    if let Some(reason) = previous {
        hook.deactivate(reason);
    }
    let id = app.hooks().put(hook);
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
    let registry = app.hooks().registry().clone();
    let queued = match app.deliveries.publish(&registry, &event).await {
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

    fn not_found(&self, lang: Lang) -> Response {
        let page = self.render(
            "error.html",
            lang,
            context! { message => lang.text().not_found },
        );
        (StatusCode::NOT_FOUND, page).into_response()
    }

    fn error(&self, lang: Lang, message: &str) -> Response {
        let page = self.render("error.html", lang, context! { message });
        (StatusCode::INTERNAL_SERVER_ERROR, page).into_response()
    }
}
