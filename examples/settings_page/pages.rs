//! The handlers: plain async functions over typed extractors, one per page or form. Every
//! form posts and redirects (POST-redirect-GET); what an action found is kept as a notice in
//! the browser's own session and shown once by the page it redirects to. No GET changes
//! anything: "Delete" is a page that asks, and its button posts. Every handler gets a
//! [`Visit`]: the page's language and the browser's session (see guard.rs for what a POST
//! must show before it gets here).

use std::time::{Duration, SystemTime};

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use bytes::Bytes;
use minijinja::context;
use minijinja::value::Serde;
use posthook::{
    AutomationPayload, Deactivation, DeliveryId, DeliveryRecord, DeliveryState, DeliveryStore,
    Event, EventKind, FinalOutcome, Form, Page, Source, StoreError, StoredWebhook, UrlError,
    Webhook, WebhookFilter, WebhookId, WebhookStoreError, WebhookUrl,
};
use serde::Serialize;

use crate::form::{FormProblem, Problems, WebhookForm, offered_list};
use crate::guard::Visit;
use crate::hooks::{LISTS, list_name};
use crate::outbox::Last;
use crate::text::{Lang, cut};
use crate::{ATTEMPT_TIMEOUT, AppState, explain};

/// What an action found, shown once on the page it redirects to.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Notice {
    pub ok: bool,
    pub title: String,
    pub lines: Vec<String>,
    /// Troubleshooting: what to do about what was found.
    pub advice: Vec<String>,
    /// The bodies that were sent, decoded and raw.
    pub sent: Vec<SentBody>,
}

impl Notice {
    fn new(ok: bool, title: String, lines: Vec<String>) -> Notice {
        Notice {
            ok,
            title,
            lines,
            ..Notice::default()
        }
    }
}

/// One body as it was sent: its `(key, value)` pairs as `Form::parse` reads them, and the
/// raw `application/x-www-form-urlencoded` text.
#[derive(Debug, Clone, Serialize)]
pub struct SentBody {
    pub label: String,
    pub pairs: Vec<(String, String)>,
    pub raw: String,
}

impl SentBody {
    fn of(label: String, body: &[u8]) -> SentBody {
        let pairs = Form::parse(body).map_or_else(
            |_| Vec::new(),
            |form| {
                form.iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            },
        );
        SentBody {
            label,
            pairs,
            raw: String::from_utf8_lossy(body).into_owned(),
        }
    }
}

/// The pages notices are kept for.
const LIST_PAGE: &str = "/webhooks";
const AUTOMATION_PAGE: &str = "/automation";

fn hook_page(id: WebhookId) -> String {
    format!("/webhooks/{id}")
}

/// How many characters of a name or a URL the list shows (the detail page shows all).
const LIST_NAME_CHARS: usize = 60;
const LIST_URL_CHARS: usize = 60;
/// A name in a title, a link or a question.
const SHORT_CHARS: usize = 80;
/// From how many bytes a name or URL may scroll in its box on the detail page.
const SCROLL_FROM: usize = 300;

// ---- the list -------------------------------------------------------------------------

#[derive(Serialize)]
struct Row {
    id: u64,
    /// In full on the detail page, cut in the list.
    name: String,
    /// Always cut: for titles and links.
    name_short: String,
    url: String,
    /// On the detail page, the name or the URL may be long enough to scroll in its box,
    /// which is then focusable (to scroll it with the keyboard).
    long_name: bool,
    long_url: bool,
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

/// Webhooks per page of the list.
pub const PER_PAGE: usize = 50;

/// How many characters of a search are used.
const SEARCH_CHARS: usize = 200;

/// The list's filters and page, from the query string (`?q=&event=&state=&page=&lang=`):
/// anything unknown or out of range reads as "any" (or page 1).
#[derive(Debug, Default, Clone)]
struct ListQuery {
    search: String,
    event: Option<EventKind>,
    /// `Some(true)`: active ones; `Some(false)`: switched off.
    active: Option<bool>,
    /// From 1.
    page: usize,
}

impl ListQuery {
    fn parse(query: Option<&str>) -> ListQuery {
        let form = Form::parse(query.unwrap_or("").as_bytes()).ok();
        let field = |key: &str| form.as_ref().and_then(|f| f.get(key)).unwrap_or("");
        ListQuery {
            search: cut_plain(field("q").trim(), SEARCH_CHARS),
            event: field("event").parse().ok(),
            active: match field("state") {
                "active" => Some(true),
                "off" => Some(false),
                _ => None,
            },
            page: field("page").parse().unwrap_or(1).max(1),
        }
    }

    fn filter(&self) -> WebhookFilter {
        let mut filter = WebhookFilter::new();
        if !self.search.is_empty() {
            filter = filter.search(self.search.clone());
        }
        if let Some(kind) = self.event {
            filter = filter.event(kind);
        }
        if let Some(active) = self.active {
            filter = filter.active(active);
        }
        filter
    }

    fn is_filtered(&self) -> bool {
        !self.search.is_empty() || self.event.is_some() || self.active.is_some()
    }

    /// `/webhooks?...` with these filters, page `page`, in `lang`.
    fn href(&self, page: usize, lang: Lang) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if !self.search.is_empty() {
            pairs.push(("q", self.search.clone()));
        }
        if let Some(kind) = self.event {
            pairs.push(("event", kind.as_str().to_owned()));
        }
        match self.active {
            Some(true) => pairs.push(("state", "active".to_owned())),
            Some(false) => pairs.push(("state", "off".to_owned())),
            None => {}
        }
        if page > 1 {
            pairs.push(("page", page.to_string()));
        }
        if lang == Lang::It {
            pairs.push(("lang", "it".to_owned()));
        }
        match serde_urlencoded::to_string(&pairs) {
            Ok(query) if !query.is_empty() => format!("{LIST_PAGE}?{query}"),
            _ => LIST_PAGE.to_owned(),
        }
    }
}

/// `text` cut to at most `max` characters, without a mark (a search is used as cut).
fn cut_plain(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The paging of the list, as the template shows it.
#[derive(Serialize)]
struct Paging {
    /// "120 webhooks".
    total_text: String,
    total: u64,
    /// "Showing 51–100" (empty when nothing is shown).
    showing: String,
    page: usize,
    pages: usize,
    /// "Page 2 of 3".
    page_text: String,
    previous: Option<String>,
    next: Option<String>,
}

#[derive(Serialize)]
struct FilterView {
    search: String,
    events: Vec<Opt>,
    states: Vec<Opt>,
    filtered: bool,
    /// The same page in the other language.
    other_lang: String,
}

pub async fn list(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
    visit: Visit,
) -> Response {
    let lang = visit.lang;
    let t = lang.text();
    let mut wanted = ListQuery::parse(query.as_deref());
    let filter = wanted.filter();
    let mut page = Page::first(PER_PAGE);
    page.offset = (wanted.page - 1).saturating_mul(PER_PAGE);
    let mut found = match app.hooks.list(&filter, page).await {
        Ok(found) => found,
        Err(error) => return app.error(&visit, &error.to_string()),
    };
    let pages = usize::try_from(found.total)
        .unwrap_or(usize::MAX)
        .div_ceil(PER_PAGE)
        .max(1);
    if wanted.page > pages {
        // Past the end (a stale link): the last page.
        wanted.page = pages;
        page.offset = (pages - 1) * PER_PAGE;
        found = match app.hooks.list(&filter, page).await {
            Ok(found) => found,
            Err(error) => return app.error(&visit, &error.to_string()),
        };
    }
    let ids: Vec<WebhookId> = found.webhooks.iter().map(StoredWebhook::id).collect();
    let last = app.deliveries.last_of(&ids).await;
    let rows: Vec<Row> = found
        .webhooks
        .iter()
        .map(|stored| {
            row(
                &stored.webhook,
                lang,
                false,
                last.get(&stored.id()).copied(),
            )
        })
        .collect();
    let first = page.offset + 1;
    let paging = Paging {
        total_text: t.webhooks_n.count(found.total),
        total: found.total,
        showing: if rows.is_empty() {
            String::new()
        } else {
            format!("{} {first}\u{2013}{}", t.showing, page.offset + rows.len())
        },
        page: wanted.page,
        pages,
        page_text: format!("{} {} {} {pages}", t.page, wanted.page, t.page_of),
        previous: (wanted.page > 1).then(|| wanted.href(wanted.page - 1, lang)),
        next: (wanted.page < pages).then(|| wanted.href(wanted.page + 1, lang)),
    };
    let mut filter_events = vec![opt("", t.any_event, wanted.event.is_none())];
    filter_events
        .extend(EventKind::ALL.map(|k| opt(k.as_str(), lang.event(k), wanted.event == Some(k))));
    let states = vec![
        opt("", t.any_state, wanted.active.is_none()),
        opt("active", t.state_active, wanted.active == Some(true)),
        opt("off", t.state_off, wanted.active == Some(false)),
    ];
    let filters = FilterView {
        search: wanted.search.clone(),
        events: filter_events,
        states,
        filtered: wanted.is_filtered(),
        other_lang: wanted.href(wanted.page, lang.other()),
    };
    let kinds = EventKind::ALL.map(|k| opt(k.as_str(), lang.event(k), k == EventKind::Subscribe));
    let sources = Source::ALL.map(|s| opt(s.as_str(), lang.source(s), false));
    let mut lists = vec![opt("0", t.no_list, false)];
    lists.extend(
        LISTS
            .iter()
            .map(|(id, name)| opt(&id.to_string(), name, *id == 1)),
    );
    let receiver = &app.base;
    app.render(
        "list.html",
        &visit,
        context! {
            rows => Serde(rows),
            paging => Serde(paging),
            filters => Serde(filters),
            notice => Serde(app.take_notice(&visit, LIST_PAGE)),
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

/// A webhook as the pages show it; `full` keeps its whole name and URL; `last`, its latest
/// delivery (the list shows it).
fn row(hook: &Webhook, lang: Lang, full: bool, last: Option<Last>) -> Row {
    let id = hook.id().unwrap_or(WebhookId::new(0));
    let last = last.map(|last| LastView {
        class: state_class(last.state),
        outcome: state_word(last.state, lang).to_owned(),
        when: time(last.at),
    });
    let (name, url) = if full {
        (hook.name().to_owned(), hook.url().as_str().to_owned())
    } else {
        (
            cut(hook.name(), LIST_NAME_CHARS),
            cut(hook.url().as_str(), LIST_URL_CHARS),
        )
    };
    Row {
        id: id.get(),
        name,
        name_short: cut(hook.name(), SHORT_CHARS),
        long_name: full && hook.name().len() > SCROLL_FROM,
        long_url: full && hook.url().as_str().len() > SCROLL_FROM,
        url,
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

/// A delivery state in a word, for the list.
fn state_word(state: DeliveryState, lang: Lang) -> &'static str {
    let t = lang.text();
    match state {
        DeliveryState::Pending => t.pending,
        DeliveryState::Delivered => t.delivered,
        DeliveryState::Gone => t.count_gone,
        DeliveryState::GaveUp => t.gave_up,
        DeliveryState::Cancelled => t.cancelled,
        _ => t.failed,
    }
}

fn state_class(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "ok",
        DeliveryState::Cancelled => "cancelled",
        _ => "bad",
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
                "{} {} ({})",
                t.deactivated_failing,
                time(since),
                t.failures_n.count(u64::from(failures))
            )
        }
        Some(other) => match lang {
            Lang::En => format!("{} ({})", t.deactivated_other, other.as_str()),
            Lang::It => t.deactivated_other.to_owned(),
        },
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
        Some(outcome) => explain::final_outcome(outcome, record.delivery.attempts(), lang),
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

fn clock(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at)
        .format("%H:%M:%S")
        .to_string()
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
                    result: explain::attempt(&a.outcome, lang),
                    ok: a.outcome.status().is_some_and(|s| s.is_success()),
                    took: a.duration.map_or_else(String::new, millis),
                })
                .collect(),
            outcome: outcome_text(record, lang),
            class: outcome_class(record),
        })
        .collect()
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
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

pub async fn detail(State(app): State<AppState>, Path(id): Path<u64>, visit: Visit) -> Response {
    let (lang, id) = (visit.lang, WebhookId::new(id));
    let hook = match app.hook(&visit, id).await {
        Ok(stored) => stored.webhook,
        Err(page) => return page,
    };
    let mut kinds = vec![opt("", lang.text().all_its_events, true)];
    kinds.extend(
        hook.events()
            .iter()
            .map(|k| opt(k.as_str(), lang.event(k), false)),
    );
    app.render(
        "detail.html",
        &visit,
        context! {
            hook => Serde(row(&hook, lang, true, None)),
            notice => Serde(app.take_notice(&visit, &hook_page(id))),
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
    visit: Visit,
) -> Response {
    let id = WebhookId::new(id);
    let log = log_rows(&app, id, visit.lang).await;
    let page = context! { log => Serde(log), hook_id => id.get() };
    app.render("log.html", &visit, page)
}

/// How long "Send sample data" waits for the worker to deliver the samples.
const SAMPLE_WAIT: Duration = Duration::from_secs(15);

/// "Send sample data": the sample of one kind, or of each of the webhook's kinds; the
/// notice shows each body that was sent, decoded and raw.
pub async fn send_sample(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    visit: Visit,
    body: Bytes,
) -> Response {
    let (lang, id) = (visit.lang, WebhookId::new(id));
    let t = lang.text();
    let hook = match app.hook(&visit, id).await {
        Ok(stored) => stored.webhook,
        Err(page) => return page,
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
    let mut sent = Vec::with_capacity(kinds.len());
    for kind in kinds.iter().copied() {
        match app.deliveries.enqueue_sample(&hook, kind).await {
            Ok((delivery, body)) => {
                queued.push((kind, delivery));
                sent.push(SentBody::of(lang.event(kind).to_owned(), &body));
            }
            Err(error) => return app.error(&visit, &error.to_string()),
        }
    }
    let (mut delivered, mut lines, mut gone) = (0u64, Vec::new(), false);
    for (kind, delivery) in queued {
        let result = match app.deliveries.wait_done(delivery, SAMPLE_WAIT).await {
            Ok(record) => {
                let outcome = record.delivery.outcome();
                delivered += u64::from(outcome.is_some_and(FinalOutcome::is_delivered));
                gone |= outcome.is_some_and(FinalOutcome::is_gone);
                match record.delivery.attempts().last() {
                    Some(attempt) => explain::attempt(&attempt.outcome, lang),
                    None => outcome_text(&record, lang),
                }
            }
            Err(error) => store_failure(lang, &error.to_string()),
        };
        lines.push(format!("{}: {result}", lang.event(kind)));
    }
    if gone {
        // The worker deactivates it too (it sees every outcome); this page says so.
        app.deactivate(id, Deactivation::Gone).await;
        lines.insert(0, t.now_deactivated.to_owned());
    }
    let title = sample_title(delivered, kinds.len(), lang);
    let ok = delivered == kinds.len() as u64;
    let notice = Notice {
        sent,
        ..Notice::new(ok, title, lines)
    };
    app.set_notice(&visit, &hook_page(id), notice);
    redirect(&hook_page(id), lang)
}

/// "Send sample data: 1/1 delivered", "Invia dati di esempio: 4/4 consegnati": the word
/// agrees with the number delivered ("0/2 consegnati", "1/2 consegnato").
pub fn sample_title(delivered: u64, total: usize, lang: Lang) -> String {
    let t = lang.text();
    let word = t.delivered_n.word(delivered);
    format!("{}: {delivered}/{total} {word}", t.sample_result)
}

/// "Test URL" in words, with what to do about it.
async fn test_notice(app: &AppState, url: &str, lang: Lang) -> Notice {
    let diagnosis = app.dispatcher.diagnose(url).await;
    let text = explain::diagnosis(&diagnosis, ATTEMPT_TIMEOUT, lang);
    Notice {
        advice: text.advice,
        ..Notice::new(
            text.ok,
            format!("{}: {}", lang.text().test_result, cut(url, SHORT_CHARS)),
            vec![text.summary],
        )
    }
}

/// "Test URL": the probe's diagnosis, in plain words.
pub async fn test_url(State(app): State<AppState>, Path(id): Path<u64>, visit: Visit) -> Response {
    let (lang, id) = (visit.lang, WebhookId::new(id));
    let url = match app.hook(&visit, id).await {
        Ok(stored) => stored.webhook.url().as_str().to_owned(),
        Err(page) => return page,
    };
    let notice = test_notice(&app, &url, lang).await;
    app.set_notice(&visit, &hook_page(id), notice);
    redirect(&hook_page(id), lang)
}

/// Switches a webhook off (by hand), which cancels its pending deliveries, or back on
/// (which does not bring them back: "Recover" does).
pub async fn set_active(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    visit: Visit,
    body: Bytes,
) -> Response {
    let (lang, id) = (visit.lang, WebhookId::new(id));
    let active = Form::parse(&body).is_ok_and(|form| form.get("active") == Some("1"));
    if let Err(page) = app.hook(&visit, id).await {
        return page;
    }
    if active {
        // A fresh start: the failures before it no longer count towards switching it off.
        app.forget_failures(id);
    }
    // Off in the store and the registries, then its pending deliveries cancelled: no
    // publish matches it from here on, no worker attempts it again.
    let on = if active {
        Ok(())
    } else {
        Err(Deactivation::Manual)
    };
    let switched = match app.hooks.switch(id, on).await {
        Ok(switched) => switched,
        Err(error) => return app.error(&visit, &error.to_string()),
    };
    // `None`: already as asked (a form posted twice): a 410 or failing reason stays.
    if let Some(cancelled) = switched.and_then(|s| s.cancelled) {
        let t = lang.text();
        let line = t.pending_cancelled_n.count(cancelled);
        let notice = Notice::new(true, t.deactivated_title.to_owned(), vec![line]);
        app.set_notice(&visit, &hook_page(id), notice);
    }
    redirect(&hook_page(id), lang)
}

// ---- "Delete", "Resend", "Recover" -----------------------------------------------------

/// "Delete": the page that asks first (a GET changes nothing).
pub async fn delete_form(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    visit: Visit,
) -> Response {
    let id = WebhookId::new(id);
    let hook = match app.hook(&visit, id).await {
        Ok(stored) => stored.webhook,
        Err(page) => return page,
    };
    let pending = app
        .deliveries
        .store
        .counts(Some(id))
        .await
        .map_or(0, |c| c.pending);
    let page = context! {
        hook => Serde(row(&hook, visit.lang, true, None)),
        pending => pending,
    };
    app.render("delete.html", &visit, page)
}

/// "Delete", confirmed: out of the store and the registries, its pending deliveries
/// cancelled; its delivery log stays in the store.
pub async fn delete(State(app): State<AppState>, Path(id): Path<u64>, visit: Visit) -> Response {
    let (lang, id) = (visit.lang, WebhookId::new(id));
    let (before, cancelled) = match app.hooks.delete(id).await {
        Ok(Some(deleted)) => deleted,
        Ok(None) => return app.no_webhook(&visit, id).await,
        Err(error) => return app.error(&visit, &error.to_string()),
    };
    let t = lang.text();
    let notice = Notice::new(
        true,
        format!(
            "{}: {}",
            t.deleted_title,
            cut(before.webhook.name(), SHORT_CHARS)
        ),
        vec![
            t.pending_cancelled_n.count(cancelled),
            t.log_kept.to_owned(),
        ],
    );
    app.set_notice(&visit, LIST_PAGE, notice);
    redirect(LIST_PAGE, lang)
}

/// "Resend" on one delivery of the log: the same event to the same webhook, as a new
/// delivery linked to it (`Outbox::resend`), made by the worker like any other.
pub async fn resend(
    State(app): State<AppState>,
    Path((id, delivery)): Path<(u64, String)>,
    visit: Visit,
) -> Response {
    let (lang, id) = (visit.lang, WebhookId::new(id));
    let t = lang.text();
    let hook = match app.hook(&visit, id).await {
        Ok(stored) => stored.webhook,
        Err(page) => return page,
    };
    let page = hook_page(id);
    let refuse = |why: &str| {
        let notice = Notice::new(false, t.resend.to_owned(), vec![why.to_owned()]);
        app.set_notice(&visit, &page, notice);
        redirect(&page, lang)
    };
    let Ok(delivery) = delivery.parse::<DeliveryId>() else {
        return refuse(t.no_such_delivery);
    };
    let record = match app.deliveries.store.delivery(delivery).await {
        Ok(record) => record,
        Err(StoreError::UnknownDelivery(_)) => return refuse(t.no_such_delivery),
        Err(error) => return app.error(&visit, &error.to_string()),
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
            let notice = Notice::new(
                true,
                format!("{} {new}", t.resent_title),
                vec![format!("{} {delivery}", t.resend_of)],
            );
            app.set_notice(&visit, &page, notice);
            redirect(&page, lang)
        }
        Err(error) => app.error(&visit, &error.to_string()),
    }
}

/// "Recover": every delivery of the webhook that ended failed, given up or cancelled in
/// the chosen time, sent again, each once (`Outbox::recover`).
pub async fn recover(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    visit: Visit,
    body: Bytes,
) -> Response {
    let (lang, id) = (visit.lang, WebhookId::new(id));
    let t = lang.text();
    let hook = match app.hook(&visit, id).await {
        Ok(stored) => stored.webhook,
        Err(page) => return page,
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
            cut(chosen.as_deref().unwrap_or(""), 20)
        )),
        Some(_) if !hook.is_active() => Some(t.reactivate_first.to_owned()),
        Some(_) => None,
    };
    if let Some(problem) = problem {
        let notice = Notice::new(false, t.recovered_title.to_owned(), vec![problem]);
        app.set_notice(&visit, &hook_page(id), notice);
        return redirect(&hook_page(id), lang);
    }
    let since = SystemTime::now() - back.unwrap_or_default();
    let resent = match app.deliveries.outbox.recover(id, since).await {
        Ok(resent) => resent,
        Err(error) => return app.error(&visit, &error.to_string()),
    };
    let what = match resent.len() {
        0 => t.recovered_none.to_owned(),
        n => t.recovered_n.count(n),
    };
    let notice = Notice::new(true, format!("{}: {what}", t.recovered_title), Vec::new());
    app.set_notice(&visit, &hook_page(id), notice);
    redirect(&hook_page(id), lang)
}

// ---- "Add" and "Edit" ------------------------------------------------------------------

#[derive(Serialize)]
struct FormView {
    title: &'static str,
    /// "Add" on a new webhook (as the product document has it), "Save" on an edit.
    submit: &'static str,
    action: String,
    /// The same form in the other language: the language switch posts what was typed here.
    other_action: String,
    list_options: Vec<Opt>,
    name: String,
    url: String,
    events: Vec<Check>,
    sources: Vec<Check>,
    /// The version the form was filled from (an edit): saved with it.
    version: Option<u64>,
    /// A save over a newer version, refused: both versions.
    conflict: Option<ConflictView>,
    /// The edit form of the stored version, in this language.
    reedit: String,
    /// Every problem, for the summary at the top (each links to its field).
    errors: Vec<FieldError>,
    form_error: Option<String>,
    list_error: Option<&'static str>,
    name_error: Option<&'static str>,
    url_error: Option<UrlErrorView>,
    events_error: Option<&'static str>,
    sources_error: Option<&'static str>,
}

#[derive(Serialize)]
struct Check {
    id: String,
    value: &'static str,
    label: &'static str,
    /// The product document's note beside an event.
    note: Option<&'static str>,
    /// What a source means.
    help: Option<&'static str>,
    checked: bool,
}

#[derive(Debug, Clone, Serialize)]
struct FieldError {
    /// The id of the field it is about.
    target: &'static str,
    message: String,
}

/// How many characters of the URL the error echo shows on each side of the bad one.
const ECHO_CHARS: usize = 20;

/// A URL error: the message, and the URL cut around the character it points at (about
/// [`ECHO_CHARS`] on each side), the cuts marked.
#[derive(Debug, Clone, Serialize)]
struct UrlErrorView {
    message: String,
    cut_before: bool,
    before: String,
    bad: String,
    after: String,
    cut_after: bool,
}

fn url_error_view(url: &str, error: &UrlError, lang: Lang) -> UrlErrorView {
    let offset = error.offset().min(url.len());
    let offset = (0..=offset)
        .rev()
        .find(|&i| url.is_char_boundary(i))
        .unwrap_or(0);
    let bad_len = url[offset..].chars().next().map_or(0, char::len_utf8);
    let (head, tail) = (&url[..offset], &url[offset + bad_len..]);
    let start = head
        .char_indices()
        .rev()
        .nth(ECHO_CHARS - 1)
        .map_or(0, |(i, _)| i);
    let end = tail
        .char_indices()
        .nth(ECHO_CHARS)
        .map_or(tail.len(), |(i, _)| i);
    let bad = &url[offset..offset + bad_len];
    let bad = match bad.chars().next() {
        Some(' ') => "\u{2423}".to_owned(),
        Some(c) if c.is_control() => c.escape_default().to_string(),
        _ => bad.to_owned(),
    };
    UrlErrorView {
        message: explain::url_error(error, lang),
        cut_before: start > 0,
        before: head[start..].to_owned(),
        bad,
        after: tail[..end].to_owned(),
        cut_after: end < tail.len(),
    }
}

pub fn form_problem_text(problem: &FormProblem, lang: Lang) -> String {
    let t = lang.text();
    let what = match problem {
        FormProblem::Unreadable => t.unreadable_form.to_owned(),
        FormProblem::UnknownEvent(id) => format!("{} {:?}", t.unknown_event, cut(id, 40)),
        FormProblem::UnknownSource(id) => format!("{} {:?}", t.unknown_source, cut(id, 40)),
        FormProblem::Refused(why) => cut(&explain::webhook_error(why, lang), 200),
        FormProblem::NoVersion => t.no_version.to_owned(),
        FormProblem::Limit(limit) => format!("{} ({limit})", t.limit_reached),
    };
    format!("{}: {what}", t.bad_form)
}

/// Where the form posts, in `lang`.
fn form_action(id: Option<WebhookId>, lang: Lang) -> String {
    match id {
        None => format!("/webhooks/new{}", lang.query()),
        Some(id) => format!("/webhooks/{id}/edit{}", lang.query()),
    }
}

fn form_view(
    lang: Lang,
    id: Option<WebhookId>,
    form: &WebhookForm,
    problems: &Problems,
) -> FormView {
    let t = lang.text();
    let title = if id.is_none() {
        t.add_title
    } else {
        t.edit_title
    };
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
    let form_error = problems.form.as_ref().map(|p| form_problem_text(p, lang));
    let list_error = problems.list.then_some(t.bad_list);
    let name_error = problems.name.then_some(t.blank_name);
    let url_error = problems
        .url
        .as_ref()
        .map(|e| url_error_view(&form.url, e, lang));
    let events_error = problems.events.then_some(t.no_events);
    let sources_error = problems.sources.then_some(t.no_sources);
    let errors = [
        ("list", form_error.clone()),
        ("list", list_error.map(str::to_owned)),
        ("name", name_error.map(str::to_owned)),
        ("url", url_error.as_ref().map(|e| e.message.clone())),
        ("events-group", events_error.map(str::to_owned)),
        ("sources-group", sources_error.map(str::to_owned)),
    ]
    .into_iter()
    .filter_map(|(target, message)| message.map(|message| FieldError { target, message }))
    .collect();
    FormView {
        title,
        submit: if id.is_none() { t.add } else { t.save },
        action: form_action(id, lang),
        other_action: form_action(id, lang.other()),
        list_options,
        name: form.name.clone(),
        url: form.url.clone(),
        events: EventKind::ALL
            .iter()
            .map(|&k| Check {
                id: format!("event-{}", k.as_str()),
                value: k.as_str(),
                label: lang.event(k),
                note: lang.event_note(k),
                help: None,
                checked: form.events.contains(k),
            })
            .collect(),
        sources: Source::ALL
            .iter()
            .map(|&s| Check {
                id: format!("source-{}", s.as_str()),
                value: s.as_str(),
                label: lang.source(s),
                note: None,
                help: Some(lang.source_help(s)),
                checked: form.sources.contains(s),
            })
            .collect(),
        version: form.version,
        conflict: None,
        reedit: id.map_or_else(String::new, |id| {
            format!("/webhooks/{id}/edit{}", lang.query())
        }),
        errors,
        form_error,
        list_error,
        name_error,
        url_error,
        events_error,
        sources_error,
    }
}

pub async fn new_form(State(app): State<AppState>, visit: Visit) -> Response {
    let form = WebhookForm {
        list: "0".into(),
        ..WebhookForm::default()
    };
    form_page(&app, &visit, None, &form, &Problems::default(), None)
}

pub async fn edit_form(State(app): State<AppState>, Path(id): Path<u64>, visit: Visit) -> Response {
    let id = WebhookId::new(id);
    let form = match app.hook(&visit, id).await {
        Ok(stored) => WebhookForm::of(&stored),
        Err(page) => return page,
    };
    form_page(&app, &visit, Some(id), &form, &Problems::default(), None)
}

pub async fn create(State(app): State<AppState>, visit: Visit, body: Bytes) -> Response {
    save(app, &visit, None, &body).await
}

pub async fn update(
    State(app): State<AppState>,
    Path(id): Path<u64>,
    visit: Visit,
    body: Bytes,
) -> Response {
    save(app, &visit, Some(WebhookId::new(id)), &body).await
}

/// The form, with what was typed, its problems and, after "Test URL", the diagnosis.
fn form_page(
    app: &AppState,
    visit: &Visit,
    id: Option<WebhookId>,
    form: &WebhookForm,
    problems: &Problems,
    tested: Option<Notice>,
) -> Response {
    let view = form_view(visit.lang, id, form, problems);
    let page = context! { form => Serde(view), tested => Serde(tested) };
    app.render("form.html", visit, page)
}

/// "Add" / "Save"; "Test URL" on the URL as typed; or the language switch: the form again
/// in the other language with what was typed (nothing saved for either). "Save" names the
/// version the form was filled from: saved over a newer one, it is refused, and both are
/// shown side by side ([`conflict_page`]).
async fn save(app: AppState, visit: &Visit, id: Option<WebhookId>, body: &[u8]) -> Response {
    let current = match id {
        Some(id) => match app.hook(visit, id).await {
            Ok(stored) => Some(stored),
            Err(page) => return page,
        },
        None => None,
    };
    let (form, mut problems) = WebhookForm::parse(body);
    let action = Form::parse(body)
        .ok()
        .and_then(|f| f.get("do").map(str::to_owned));
    match action.as_deref() {
        Some("test") => {
            let tested = test_notice(&app, &form.url, visit.lang).await;
            let problems = Problems::default();
            return form_page(&app, visit, id, &form, &problems, Some(tested));
        }
        Some("lang") => return form_page(&app, visit, id, &form, &Problems::default(), None),
        _ => {}
    }
    if current.is_some() && form.version.is_none() && problems.form.is_none() {
        problems.form = Some(FormProblem::NoVersion);
    }
    let hook = match form.build(problems, id) {
        Ok(hook) => hook,
        Err(problems) => {
            let page = form_page(&app, visit, id, &form, &problems, None);
            return (StatusCode::UNPROCESSABLE_ENTITY, page).into_response();
        }
    };
    let (Some(id), Some(current), Some(expected)) = (id, current, form.version) else {
        return match app.hooks.create(hook).await {
            Ok(_) => redirect(LIST_PAGE, visit.lang),
            Err(WebhookStoreError::LimitReached { limit, .. }) => {
                let problems = Problems {
                    form: Some(FormProblem::Limit(limit)),
                    ..Problems::default()
                };
                let page = form_page(&app, visit, None, &form, &problems, None);
                (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
            }
            Err(error) => app.error(visit, &error.to_string()),
        };
    };
    // Editing changes the subscription only: a deactivation stays on record ("Reactivate"
    // lifts it), and so do the settings the form does not show (headers, secrets, retry
    // policy set through the API). (If the stored version is not the form's, the store
    // refuses the save anyway.)
    let hook = hook.with_settings_of(&current.webhook);
    match app.hooks.update(id, expected, hook).await {
        Ok(_) => redirect(LIST_PAGE, visit.lang),
        Err(WebhookStoreError::Conflict { expected, current }) => {
            conflict_page(&app, visit, &form, expected, &current)
        }
        Err(WebhookStoreError::NotFound { .. }) => app.no_webhook(visit, id).await,
        Err(error) => app.error(visit, &error.to_string()),
    }
}

/// A save over a newer version, refused (`409`): what was typed beside what is stored,
/// field by field, with a link to edit the stored one again; the form below keeps what was
/// typed, now naming the stored version, so that saving it again is a choice made knowing.
fn conflict_page(
    app: &AppState,
    visit: &Visit,
    form: &WebhookForm,
    expected: u64,
    current: &StoredWebhook,
) -> Response {
    let lang = visit.lang;
    let t = lang.text();
    let stored = &current.webhook;
    let typed_list = match form.list.trim() {
        "" | "0" => t.all_lists.to_owned(),
        id => crate::form::offered_list(id).map_or_else(|| cut(id, 20), list_name),
    };
    let stored_list = match stored.scope().list() {
        None => t.all_lists.to_owned(),
        Some(list) => list_name(list),
    };
    let events = |set: posthook::EventSet| {
        let labels: Vec<&str> = set.iter().map(|k| lang.event(k)).collect();
        labels.join(", ")
    };
    let sources = |set: posthook::SourceSet| {
        let labels: Vec<&str> = set.iter().map(|s| lang.source(s)).collect();
        labels.join(", ")
    };
    let rows = [
        (
            "name",
            t.name,
            cut(form.name.trim(), COMPARE_CHARS),
            cut(stored.name(), COMPARE_CHARS),
        ),
        (
            "url",
            t.url,
            cut(&form.url, COMPARE_CHARS),
            cut(stored.url().as_str(), COMPARE_CHARS),
        ),
        ("list", t.list, typed_list, stored_list),
        (
            "events",
            t.events,
            events(form.events),
            events(stored.events()),
        ),
        (
            "sources",
            t.sources,
            sources(form.sources),
            sources(stored.sources()),
        ),
    ]
    .into_iter()
    .map(|(key, label, yours, stored)| CompareRow {
        key,
        label,
        differs: yours != stored,
        yours,
        stored,
    })
    .collect();
    let conflict = ConflictView {
        yours_version: expected,
        stored_version: current.version,
        stored_state: state_text(stored, lang),
        stored_at: time(current.updated_at),
        rows,
    };
    // The form as typed, now naming the stored version.
    let form = WebhookForm {
        version: Some(current.version),
        ..form.clone()
    };
    let mut view = form_view(lang, Some(current.id()), &form, &Problems::default());
    view.submit = t.save_mine;
    view.conflict = Some(conflict);
    let page = context! { form => Serde(view), tested => Serde(None::<Notice>) };
    (StatusCode::CONFLICT, app.render("form.html", visit, page)).into_response()
}

/// How many characters of a name or URL the side-by-side view shows.
const COMPARE_CHARS: usize = 200;

#[derive(Serialize)]
struct ConflictView {
    /// The version the form was filled from.
    yours_version: u64,
    stored_version: u64,
    stored_state: String,
    stored_at: String,
    rows: Vec<CompareRow>,
}

#[derive(Serialize)]
struct CompareRow {
    key: &'static str,
    label: &'static str,
    yours: String,
    stored: String,
    differs: bool,
}

// ---- "Simulate activity" ---------------------------------------------------------------

/// Publishes one event of the chosen kind, source and list through the outbox.
pub async fn simulate(State(app): State<AppState>, visit: Visit, body: Bytes) -> Response {
    let lang = visit.lang;
    let t = lang.text();
    let form = Form::parse(&body).ok();
    let field = |key: &str| form.as_ref().and_then(|f| f.get(key)).unwrap_or("");
    let list = match field("list") {
        "" | "0" => Some(None),
        id => offered_list(id).map(Some),
    };
    let (Ok(kind), Ok(source), Some(list)) = (
        field("kind").parse::<EventKind>(),
        field("source").parse::<Source>(),
        list,
    ) else {
        let lines = vec![format!(
            "{} {:?}, {} {:?}, {} {:?}",
            t.kind,
            cut(field("kind"), 40),
            t.source,
            cut(field("source"), 40),
            t.list,
            cut(field("list"), 40)
        )];
        app.set_notice(
            &visit,
            LIST_PAGE,
            Notice::new(false, t.bad_form.to_owned(), lines),
        );
        return redirect(LIST_PAGE, lang);
    };
    let event = match with_source(Event::sample(kind).with_list(list), source) {
        Ok(event) => event,
        Err(error) => return app.error(&visit, &error),
    };
    // A switch-off or a delete comes wholly before this publish or wholly after it, never
    // between its match and its commit (hooks.rs).
    let published = app.hooks.publish(&app.deliveries.outbox, &event).await;
    let queued = match published {
        Ok(queued) => queued,
        Err(error) => return app.error(&visit, &error.to_string()),
    };
    let list = list.map_or_else(|| t.no_list.to_owned(), list_name);
    let title = format!(
        "{}: {} \u{b7} {} \u{b7} {list}",
        t.published,
        lang.event(kind),
        lang.source(source)
    );
    let lines = vec![t.queued_n.count(queued)];
    app.set_notice(&visit, LIST_PAGE, Notice::new(true, title, lines));
    redirect(LIST_PAGE, lang)
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

// ---- the automation "webhook" action ----------------------------------------------------

/// The automation step's form: where it posts, and the contact it posts.
#[derive(Serialize)]
struct AutomationView {
    url: String,
    series_id: String,
    email: String,
    first_name: String,
    url_error: Option<UrlErrorView>,
    series_error: Option<&'static str>,
    errors: Vec<FieldError>,
}

/// The page of the automation "webhook" action, filled in with the sample contact and
/// the built-in receiver.
pub async fn automation_page(State(app): State<AppState>, visit: Visit) -> Response {
    let sample = AutomationPayload::sample();
    let view = AutomationView {
        url: format!("{}/_receiver", app.base),
        series_id: sample.series_id().to_owned(),
        email: sample.contact().email().unwrap_or_default().to_owned(),
        first_name: sample.contact().first_name().unwrap_or_default().to_owned(),
        url_error: None,
        series_error: None,
        errors: Vec::new(),
    };
    let notice = app.take_notice(&visit, AUTOMATION_PAGE);
    let page = context! { auto => Serde(view), notice => Serde(notice) };
    app.render("automation.html", &visit, page)
}

/// The automation step, run: the sample contact with the email and name typed, and the
/// automation id, posted through `Dispatcher::send_automation` (one attempt, 5 s); the
/// notice says how it went and shows the body.
pub async fn automation_send(State(app): State<AppState>, visit: Visit, body: Bytes) -> Response {
    let lang = visit.lang;
    let t = lang.text();
    let form = Form::parse(&body).ok();
    let field = |key: &str| {
        form.as_ref()
            .and_then(|f| f.get(key))
            .unwrap_or("")
            .to_owned()
    };
    let mut view = AutomationView {
        url: field("url"),
        series_id: field("seriesid"),
        email: field("email"),
        first_name: field("first_name"),
        url_error: None,
        series_error: None,
        errors: Vec::new(),
    };
    let url = WebhookUrl::parse(&view.url);
    if let Err(error) = &url {
        view.url_error = Some(url_error_view(&view.url, error, lang));
    }
    if view.series_id.trim().is_empty() {
        view.series_error = Some(t.blank_series);
    }
    let (Ok(url), None) = (url, view.series_error) else {
        view.errors = [
            (
                "auto-url",
                view.url_error.as_ref().map(|e| e.message.clone()),
            ),
            ("auto-series", view.series_error.map(str::to_owned)),
        ]
        .into_iter()
        .filter_map(|(target, message)| message.map(|message| FieldError { target, message }))
        .collect();
        let page = context! { auto => Serde(view) };
        let page = app.render("automation.html", &visit, page);
        return (StatusCode::UNPROCESSABLE_ENTITY, page).into_response();
    };
    let mut contact = AutomationPayload::sample().contact().clone();
    if !view.email.trim().is_empty() {
        contact = contact.with_email(view.email.trim());
    }
    if !view.first_name.trim().is_empty() {
        contact = contact.with_first_name(view.first_name.trim());
    }
    let payload = AutomationPayload::new(view.series_id.trim()).with_contact(contact);
    let report = app.dispatcher.send_automation(&url, &payload).await;
    let outcome = explain::final_outcome(&report.outcome, &report.attempts, lang);
    let lines = report
        .attempts
        .iter()
        .map(|a| {
            let took = a
                .duration
                .map_or_else(String::new, |d| format!(" ({})", millis(d)));
            format!(
                "{} {}: {}{took}",
                t.attempts_n.one,
                a.number,
                explain::attempt(&a.outcome, lang)
            )
        })
        .collect();
    let notice = Notice {
        sent: vec![SentBody::of(
            format!("seriesid={}", cut(payload.series_id(), 40)),
            &payload.encode(),
        )],
        ..Notice::new(
            report.outcome.is_delivered(),
            format!("{}: {outcome}", t.automation_result),
            lines,
        )
    };
    app.set_notice(&visit, AUTOMATION_PAGE, notice);
    redirect(AUTOMATION_PAGE, lang)
}

/// What the store (or the machine) failed to do, for the page: in English with posthook's
/// own message; in Italian without it (it is English), which goes to the server's log.
pub fn store_failure(lang: Lang, detail: &str) -> String {
    eprintln!("settings_page: {detail}");
    let t = lang.text();
    match lang {
        Lang::En => format!("{}: {}", t.store_error, cut(detail, 300)),
        Lang::It => format!("{}: {}.", t.store_error, t.detail_in_log),
    }
}

pub fn redirect(path: &str, lang: Lang) -> Response {
    Redirect::to(&format!("{path}{}", lang.query())).into_response()
}

impl AppState {
    pub fn render(&self, template: &str, visit: &Visit, page: minijinja::Value) -> Response {
        let lang = visit.lang;
        let ctx = context! {
            t => Serde(lang.text()),
            lang => lang.code(),
            q => lang.query(),
            other_lang => lang.other().query(),
            csrf => &*visit.session.token,
            data_dir => &self.data_dir,
            ..page
        };
        match self
            .templates
            .get_template(template)
            .and_then(|t| t.render(ctx))
        {
            Ok(html) => Html(html).into_response(),
            Err(error) => {
                eprintln!("settings_page: template {template}: {error:#}");
                let text = lang.text().render_error;
                (StatusCode::INTERNAL_SERVER_ERROR, text).into_response()
            }
        }
    }

    fn set_notice(&self, visit: &Visit, page: &str, notice: Notice) {
        self.sessions.set_notice(&visit.session, page, notice);
    }

    fn take_notice(&self, visit: &Visit, page: &str) -> Option<Notice> {
        self.sessions.take_notice(&visit.session, page)
    }

    /// Webhook `id` of this app's account as it is now; else the page to answer: `404` (see
    /// [`no_webhook`](AppState::no_webhook)), or `500` if the store failed.
    async fn hook(&self, visit: &Visit, id: WebhookId) -> Result<StoredWebhook, Response> {
        match self.hooks.get(id).await {
            Ok(Some(stored)) => Ok(stored),
            Ok(None) => Err(self.no_webhook(visit, id).await),
            Err(error) => Err(self.error(visit, &error.to_string())),
        }
    }

    /// The answer for a webhook that is not there: `404`, saying so if it was deleted.
    async fn no_webhook(&self, visit: &Visit, id: WebhookId) -> Response {
        let t = visit.lang.text();
        let deleted = self.hooks.was_deleted(id).await;
        let message = if deleted { t.was_deleted } else { t.not_found };
        let page = self.render("error.html", visit, context! { message });
        (StatusCode::NOT_FOUND, page).into_response()
    }

    /// A `500` page for what the store (or the machine) failed to do.
    fn error(&self, visit: &Visit, detail: &str) -> Response {
        let message = store_failure(visit.lang, detail);
        let page = self.render("error.html", visit, context! { message });
        (StatusCode::INTERNAL_SERVER_ERROR, page).into_response()
    }
}
