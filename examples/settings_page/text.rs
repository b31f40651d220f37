//! The page's own words, in English and in Italian (`?lang=it`). Event and source labels
//! come from posthook itself (`label()` / `label_it()`).

use posthook::{EventKind, Source};
use serde::{Deserialize, Serialize};

/// The language of a page, from `?lang=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    It,
}

/// The query string that selects a language: `?lang=it`.
#[derive(Debug, Default, Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

impl LangQuery {
    pub fn lang(&self) -> Lang {
        match self.lang.as_deref() {
            Some("it") => Lang::It,
            _ => Lang::En,
        }
    }
}

impl Lang {
    /// What to append to a path to stay in this language.
    pub fn query(self) -> &'static str {
        match self {
            Lang::En => "",
            Lang::It => "?lang=it",
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::It => "it",
        }
    }

    pub fn text(self) -> &'static Text {
        match self {
            Lang::En => &EN,
            Lang::It => &IT,
        }
    }

    pub fn event(self, kind: EventKind) -> &'static str {
        match self {
            Lang::En => kind.label(),
            Lang::It => kind.label_it(),
        }
    }

    pub fn source(self, source: Source) -> &'static str {
        match self {
            Lang::En => source.label(),
            Lang::It => source.label_it(),
        }
    }

    /// The other language: what the language switch leads to.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::It,
            Lang::It => Lang::En,
        }
    }

    /// The product document's note beside an event, if it has one.
    pub fn event_note(self, kind: EventKind) -> Option<&'static str> {
        match (self, kind) {
            (Lang::En, EventKind::Forward) => Some("(through the ActiveCampaign forward link)"),
            (Lang::It, EventKind::Forward) => Some("(tramite il link di inoltro ActiveCampaign)"),
            (Lang::En, EventKind::Share) => Some("(on Facebook or Twitter)"),
            (Lang::It, EventKind::Share) => Some("(su Facebook o Twitter)"),
            _ => None,
        }
    }

    /// What a source means, as the product document explains it.
    pub fn source_help(self, source: Source) -> &'static str {
        match (self, source) {
            (Lang::En, Source::Contact) => {
                "runs when a contact causes the action (for example, subscribes, opens a campaign, ...)"
            }
            (Lang::En, Source::Admin) => {
                "runs when an admin user causes the action (for example, adds a contact in the admin area)"
            }
            (Lang::En, Source::Api) => {
                "runs when an API call causes the action (for example, adds a contact with the contact_add API call)"
            }
            (Lang::En, _) => {
                "runs when the automated system causes the action (for example, bounces, automation emails, ...)"
            }
            (Lang::It, Source::Contact) => {
                "viene eseguito quando un contatto genera l'azione (ad esempio, si iscrive, apre una campagna, ecc.)"
            }
            (Lang::It, Source::Admin) => {
                "viene eseguito quando un utente amministratore genera l'azione (ad esempio, aggiunge un contatto dall'area di amministrazione)"
            }
            (Lang::It, Source::Api) => {
                "viene eseguito quando la chiamata API genera l'azione (ad esempio, aggiunge un contatto con la chiamata API contact_add)"
            }
            (Lang::It, _) => {
                "viene eseguito quando il sistema automatizzato genera l'azione (ad esempio mancati recapiti, email di automazione, ecc.)"
            }
        }
    }
}

/// A word for one and for many: "1 attempt", "3 attempts"; "1 consegnato", "4 consegnati".
#[derive(Debug, Serialize)]
pub struct Plural {
    pub one: &'static str,
    pub many: &'static str,
}

impl Plural {
    pub fn word(&self, n: u64) -> &'static str {
        if n == 1 { self.one } else { self.many }
    }

    /// `n` and its word.
    pub fn count(&self, n: impl TryInto<u64>) -> String {
        let n = n.try_into().unwrap_or(u64::MAX);
        format!("{n} {}", self.word(n))
    }
}

/// `text` cut to at most `max` characters, an ellipsis marking the cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let end = text
                .char_indices()
                .nth(max.saturating_sub(1))
                .map_or(text.len(), |(i, _)| i);
            format!("{}\u{2026}", &text[..end])
        }
    }
}

/// Every fixed string of the pages.
#[derive(Debug, Serialize)]
pub struct Text {
    pub title: &'static str,
    pub add: &'static str,
    pub add_title: &'static str,
    pub edit: &'static str,
    pub edit_title: &'static str,
    pub save: &'static str,
    pub cancel: &'static str,
    pub back: &'static str,
    pub list: &'static str,
    pub all_lists: &'static str,
    pub name: &'static str,
    pub url: &'static str,
    pub events: &'static str,
    pub sources: &'static str,
    pub state: &'static str,
    pub last_delivery: &'static str,
    pub none_yet: &'static str,
    pub no_webhooks: &'static str,
    pub active: &'static str,
    pub deactivated_gone: &'static str,
    pub deactivated_manual: &'static str,
    pub deactivated_failing: &'static str,
    pub deactivated_other: &'static str,
    pub deactivate: &'static str,
    pub reactivate: &'static str,
    pub send_sample: &'static str,
    pub all_its_events: &'static str,
    pub test_url: &'static str,
    pub log: &'static str,
    pub log_empty: &'static str,
    pub when: &'static str,
    pub kind: &'static str,
    pub attempts: &'static str,
    pub outcome: &'static str,
    pub pending: &'static str,
    pub retry_at: &'static str,
    pub delivered: &'static str,
    pub gone: &'static str,
    pub failed: &'static str,
    pub gave_up: &'static str,
    pub simulate: &'static str,
    pub simulate_help: &'static str,
    pub source: &'static str,
    pub no_list: &'static str,
    pub publish: &'static str,
    pub try_urls: &'static str,
    pub receiver_ok: &'static str,
    pub receiver_flaky: &'static str,
    pub receiver_down: &'static str,
    pub receiver_reject: &'static str,
    pub receiver_gone: &'static str,
    pub footer_dev: &'static str,
    pub footer_store: &'static str,
    pub blank_name: &'static str,
    pub no_events: &'static str,
    pub no_sources: &'static str,
    pub bad_list: &'static str,
    pub bad_form: &'static str,
    pub not_found: &'static str,
    pub sample_result: &'static str,
    pub test_result: &'static str,
    pub published: &'static str,
    pub now_deactivated: &'static str,
    pub all_events: &'static str,
    pub language: &'static str,
    pub delete: &'static str,
    pub delete_title: &'static str,
    pub delete_question: &'static str,
    pub delete_explain: &'static str,
    pub deleted_title: &'static str,
    pub log_kept: &'static str,
    pub was_deleted: &'static str,
    pub deactivated_title: &'static str,
    pub cancelled: &'static str,
    pub cancel_manual: &'static str,
    pub cancel_gone: &'static str,
    pub cancel_failing: &'static str,
    pub cancel_deleted: &'static str,
    pub lapsed: &'static str,
    pub resend: &'static str,
    pub resend_of: &'static str,
    pub resent_title: &'static str,
    pub not_ended: &'static str,
    pub reactivate_first: &'static str,
    pub no_such_delivery: &'static str,
    pub recover: &'static str,
    pub recover_help: &'static str,
    pub recover_since: &'static str,
    pub since_hour: &'static str,
    pub since_day: &'static str,
    pub since_week: &'static str,
    pub recovered_title: &'static str,
    pub recovered_none: &'static str,
    pub counts: &'static str,
    pub count_pending: &'static str,
    pub count_delivered: &'static str,
    pub count_failed: &'static str,
    pub count_gave_up: &'static str,
    pub count_gone: &'static str,
    pub count_cancelled: &'static str,
    pub actions: &'static str,
    pub pending_deliveries: &'static str,
    pub attempts_n: Plural,
    pub failures_n: Plural,
    pub delivered_n: Plural,
    pub queued_n: Plural,
    pub pending_cancelled_n: Plural,
    pub recovered_n: Plural,
    pub problems_n: Plural,
    pub ended_other: &'static str,
    pub cancel_other: &'static str,
    pub troubleshooting: &'static str,
    pub advice_invalid_url: &'static str,
    pub advice_dns: &'static str,
    pub advice_blocked: &'static str,
    pub advice_refused: &'static str,
    pub advice_connect_timeout: &'static str,
    pub advice_connect_failed: &'static str,
    pub advice_tls: &'static str,
    pub advice_no_answer: &'static str,
    pub advice_broken: &'static str,
    pub advice_redirect: &'static str,
    pub advice_gone: &'static str,
    pub advice_server_error: &'static str,
    pub advice_refused_request: &'static str,
    pub advice_ok: &'static str,
    pub advice_general: &'static str,
    pub sent_title: &'static str,
    pub sent_pairs: &'static str,
    pub sent_raw: &'static str,
    pub field_key: &'static str,
    pub field_value: &'static str,
    pub no_limits: &'static str,
    pub url_hint_before: &'static str,
    pub url_hint_after: &'static str,
    pub error_summary: &'static str,
    pub unknown_event: &'static str,
    pub unknown_source: &'static str,
    pub unreadable_form: &'static str,
    pub sample_kind: &'static str,
    pub automation: &'static str,
    pub automation_help: &'static str,
    pub automation_once: &'static str,
    pub series_id: &'static str,
    pub contact_email: &'static str,
    pub contact_first_name: &'static str,
    pub automation_send: &'static str,
    pub automation_result: &'static str,
    pub blank_series: &'static str,
    pub store_error: &'static str,
    pub detail_in_log: &'static str,
    pub render_error: &'static str,
    pub sample_of: &'static str,
    pub webhooks_n: Plural,
    pub showing: &'static str,
    pub page: &'static str,
    pub page_of: &'static str,
    pub previous: &'static str,
    pub next: &'static str,
    pub pages_nav: &'static str,
    pub filters: &'static str,
    pub search: &'static str,
    pub any_event: &'static str,
    pub any_state: &'static str,
    pub state_active: &'static str,
    pub state_off: &'static str,
    pub filter: &'static str,
    pub clear_filters: &'static str,
    pub no_match: &'static str,
    pub no_version: &'static str,
    pub limit_reached: &'static str,
    pub save_mine: &'static str,
    pub conflict_title: &'static str,
    pub conflict_explain: &'static str,
    pub conflict_caption: &'static str,
    pub conflict_field: &'static str,
    pub conflict_yours: &'static str,
    pub conflict_stored: &'static str,
    pub version: &'static str,
    pub differs: &'static str,
    pub reedit_stored: &'static str,
    pub saved_at: &'static str,
}

pub static EN: Text = Text {
    title: "Manage webhooks",
    add: "Add",
    add_title: "Add a webhook",
    edit: "Edit",
    edit_title: "Edit webhook",
    save: "Save",
    cancel: "Cancel",
    back: "All webhooks",
    list: "List",
    all_lists: "All lists",
    name: "Name",
    url: "URL",
    events: "Events",
    sources: "Sources",
    state: "State",
    last_delivery: "Last delivery",
    none_yet: "none yet",
    no_webhooks: "No webhooks yet. Click \u{201c}Add\u{201d} to create one.",
    active: "active",
    deactivated_gone: "deactivated: 410 Gone",
    deactivated_manual: "deactivated by hand",
    deactivated_failing: "deactivated: failing since",
    deactivated_other: "deactivated",
    deactivate: "Deactivate",
    reactivate: "Reactivate",
    send_sample: "Send sample data",
    all_its_events: "each of its events",
    test_url: "Test URL",
    log: "Delivery log",
    log_empty: "No deliveries yet.",
    when: "When",
    kind: "Event",
    attempts: "Attempts",
    outcome: "Outcome",
    pending: "pending",
    retry_at: "next attempt at",
    delivered: "delivered",
    gone: "410 Gone: webhook deactivated",
    failed: "failed",
    gave_up: "gave up",
    simulate: "Simulate activity",
    simulate_help: "Publishes an event through the outbox; the background worker delivers it to every matching webhook, retrying as needed.",
    source: "Source",
    no_list: "no list",
    publish: "Publish",
    try_urls: "URLs to try (this app's built-in receiver)",
    receiver_ok: "answers 204 and verifies the signature",
    receiver_flaky: "answers 503 twice per delivery, then 204",
    receiver_down: "always answers 500: retried, then given up",
    receiver_reject: "always answers 400: failed at once; 3 failed deliveries in a row over 30 s switch the webhook off",
    receiver_gone: "answers 410 Gone",
    footer_dev: "Development mode: loopback allowed (deliveries may go to 127.0.0.1).",
    footer_store: "Data directory",
    blank_name: "Enter a name.",
    no_events: "Select at least one event.",
    no_sources: "Select at least one source.",
    bad_list: "Choose a list from the menu.",
    bad_form: "The form could not be read",
    not_found: "No such webhook.",
    sample_result: "Send sample data",
    test_result: "Test URL",
    published: "Published",
    now_deactivated: "The endpoint answered 410 Gone: the webhook is now deactivated.",
    all_events: "all 25 events",
    language: "Italiano",
    delete: "Delete",
    delete_title: "Delete webhook",
    delete_question: "Delete webhook",
    delete_explain: "Its pending deliveries are cancelled; its delivery log stays.",
    deleted_title: "Webhook deleted",
    log_kept: "Its delivery log stays in the store until it is pruned.",
    was_deleted: "This webhook was deleted.",
    deactivated_title: "Webhook deactivated",
    cancelled: "cancelled",
    cancel_manual: "the webhook was deactivated by hand",
    cancel_gone: "the webhook was deactivated (410 Gone)",
    cancel_failing: "the webhook was deactivated after",
    cancel_deleted: "the webhook was deleted",
    lapsed: "the worker stopped before finishing the attempt",
    resend: "Resend",
    resend_of: "resend of",
    resent_title: "Sent again as delivery",
    not_ended: "This delivery has not ended yet: it can be sent again once it has.",
    reactivate_first: "The webhook is deactivated: reactivate it first, then send again.",
    no_such_delivery: "No such delivery of this webhook.",
    recover: "Recover",
    recover_help: "Sends again every delivery of this webhook that ended failed, given up or cancelled in the chosen time, each once (a delivery already sent again is left out).",
    recover_since: "Failed, given up or cancelled in",
    since_hour: "the last hour",
    since_day: "the last 24 hours",
    since_week: "the last 7 days",
    recovered_title: "Recover",
    recovered_none: "nothing to send again",
    counts: "Deliveries",
    count_pending: "pending",
    count_delivered: "delivered",
    count_failed: "failed",
    count_gave_up: "gave up",
    count_gone: "410 Gone",
    count_cancelled: "cancelled",
    actions: "Actions",
    pending_deliveries: "Pending deliveries",
    attempts_n: Plural {
        one: "attempt",
        many: "attempts",
    },
    failures_n: Plural {
        one: "failed delivery in a row",
        many: "failed deliveries in a row",
    },
    delivered_n: Plural {
        one: "delivered",
        many: "delivered",
    },
    queued_n: Plural {
        one: "webhook to deliver, queued in the outbox",
        many: "webhooks to deliver, queued in the outbox",
    },
    pending_cancelled_n: Plural {
        one: "pending delivery cancelled",
        many: "pending deliveries cancelled",
    },
    recovered_n: Plural {
        one: "delivery sent again",
        many: "deliveries sent again",
    },
    problems_n: Plural {
        one: "problem",
        many: "problems",
    },
    ended_other: "ended",
    cancel_other: "the webhook was switched off",
    troubleshooting: "Troubleshooting",
    advice_invalid_url: "Correct the URL at the marked character: letters and digits, $-_.+!*'(), and ; / ? : @ = & in their URL roles are allowed; write anything else as a %HH escape.",
    advice_dns: "Check the host name for typos; a name created a moment ago may take a while to resolve everywhere.",
    advice_blocked: "Webhooks may not point at this network (loopback, private, link-local, ...): use the receiver's public address.",
    advice_refused: "Is the receiver running, on that port?",
    advice_connect_timeout: "A firewall may be dropping the connection, or the host is down.",
    advice_connect_failed: "Check that the host can be reached from this server (network, firewall, routing).",
    advice_tls: "Check the receiver's certificate (issuer, expiry, name) and that the port speaks HTTPS.",
    advice_no_answer: "The receiver must answer quickly: it should reply first and do the slow work afterwards.",
    advice_broken: "The connection broke during the exchange: try again; if it keeps happening, ask the receiver's developer.",
    advice_redirect: "Webhooks do not follow redirects: use the final URL.",
    advice_gone: "The receiver says this URL is gone for good: a delivery there deactivates the webhook. Ask for the new URL.",
    advice_server_error: "The receiver failed or is overloaded; real deliveries are retried. If it keeps failing, tell its developer.",
    advice_refused_request: "The receiver refused the request: check with its developer that the URL is right and takes POST requests with a form body.",
    advice_ok: "The URL takes POST requests. If webhooks still do not arrive, check that the webhook's events, sources and list match the activity.",
    advice_general: "Test the URL with a service such as Request Catcher to make sure it responds and can receive POST requests; if the problem is with the URL, work with the developer or the third-party application to fix it.",
    sent_title: "What was sent",
    sent_pairs: "Fields, decoded",
    sent_raw: "Raw body",
    field_key: "Key",
    field_value: "Value",
    no_limits: "No field is ever cut: there is no limit on the length of a note or any other field.",
    url_hint_before: "Letters and digits are allowed in the URL, and these special characters:",
    url_hint_after: "(and ; / ? : @ = & in their URL roles; anything else as a %HH escape).",
    error_summary: "Nothing was saved:",
    unknown_event: "unknown event",
    unknown_source: "unknown source",
    unreadable_form: "the form's body is not a valid form",
    sample_kind: "Sample of",
    automation: "Automation webhook action",
    automation_help: "Runs only when a contact reaches the automation's webhook step: it posts the contact's data and the automation id (seriesid) to the URL. No webhook in the developer settings is needed for it.",
    automation_once: "Here one attempt is made, within 5 seconds.",
    series_id: "Automation id (seriesid)",
    contact_email: "Contact email",
    contact_first_name: "Contact first name",
    automation_send: "Run the webhook step",
    automation_result: "Automation step",
    blank_series: "Enter the automation id.",
    store_error: "The database did not answer",
    detail_in_log: "the technical details are in the server's log",
    render_error: "500 Internal Server Error: the page could not be put together (the details are in the server's log).",
    sample_of: "sample",
    webhooks_n: Plural {
        one: "webhook",
        many: "webhooks",
    },
    showing: "Showing",
    page: "Page",
    page_of: "of",
    previous: "Previous",
    next: "Next",
    pages_nav: "Pages of the list",
    filters: "Find webhooks",
    search: "Name or URL contains",
    any_event: "Any event",
    any_state: "Any state",
    state_active: "Active",
    state_off: "Deactivated",
    filter: "Filter",
    clear_filters: "Clear filters",
    no_match: "No webhook matches these filters.",
    no_version: "the form does not say which version of the webhook it edits: open Edit again",
    limit_reached: "This account has as many webhooks as it may have",
    save_mine: "Save mine over it",
    conflict_title: "Not saved: someone else saved this webhook while you were editing it.",
    conflict_explain: "Compare the two versions. Edit the stored one again, or keep editing yours below and save it over the stored one.",
    conflict_caption: "Your version and the stored one",
    conflict_field: "Field",
    conflict_yours: "Yours, as typed",
    conflict_stored: "Stored now",
    version: "version",
    differs: "differs",
    reedit_stored: "Edit the stored version",
    saved_at: "saved",
};

pub static IT: Text = Text {
    title: "Gestisci webhook",
    add: "Aggiungi",
    add_title: "Aggiungi un webhook",
    edit: "Modifica",
    edit_title: "Modifica webhook",
    save: "Salva",
    cancel: "Annulla",
    back: "Tutti i webhook",
    list: "Lista",
    all_lists: "Tutte le liste",
    name: "Nome",
    url: "URL",
    events: "Azioni/eventi",
    sources: "Origini",
    state: "Stato",
    last_delivery: "Ultimo invio",
    none_yet: "nessuno",
    no_webhooks: "Nessun webhook. Fai clic su \u{201c}Aggiungi\u{201d} per crearne uno.",
    active: "attivo",
    deactivated_gone: "disattivato: 410 (non più disponibile)",
    deactivated_manual: "disattivato manualmente",
    deactivated_failing: "disattivato: in errore dal",
    deactivated_other: "disattivato",
    deactivate: "Disattiva",
    reactivate: "Riattiva",
    send_sample: "Invia dati di esempio",
    all_its_events: "ognuno dei suoi eventi",
    test_url: "Testa l'URL",
    log: "Registro degli invii",
    log_empty: "Ancora nessun invio.",
    when: "Quando",
    kind: "Evento",
    attempts: "Tentativi",
    outcome: "Esito",
    pending: "in corso",
    retry_at: "prossimo tentativo alle",
    delivered: "consegnato",
    gone: "410 (non più disponibile): webhook disattivato",
    failed: "non riuscito",
    gave_up: "abbandonato",
    simulate: "Simula attività",
    simulate_help: "Pubblica un evento tramite l'outbox; il worker in background lo consegna a ogni webhook corrispondente, ritentando se serve.",
    source: "Origine",
    no_list: "nessuna lista",
    publish: "Pubblica",
    try_urls: "URL da provare (il ricevitore integrato di questa app)",
    receiver_ok: "risponde 204 e verifica la firma",
    receiver_flaky: "risponde 503 due volte per invio, poi 204",
    receiver_down: "risponde sempre 500: ritentato, poi abbandonato",
    receiver_reject: "risponde sempre 400: fallisce subito; 3 invii falliti di fila in 30 s disattivano il webhook",
    receiver_gone: "risponde 410 (non più disponibile)",
    footer_dev: "Modalità sviluppo: loopback consentito (gli invii possono andare a 127.0.0.1).",
    footer_store: "Cartella dei dati",
    blank_name: "Inserisci un nome.",
    no_events: "Seleziona almeno un evento.",
    no_sources: "Seleziona almeno un'origine.",
    bad_list: "Scegli una lista dal menu.",
    bad_form: "Impossibile leggere il modulo",
    not_found: "Webhook inesistente.",
    sample_result: "Invia dati di esempio",
    test_result: "Test dell'URL",
    published: "Pubblicato",
    now_deactivated: "L'endpoint ha risposto 410 (non più disponibile): il webhook ora è disattivato.",
    all_events: "tutti i 25 eventi",
    language: "English",
    delete: "Elimina",
    delete_title: "Elimina webhook",
    delete_question: "Eliminare il webhook",
    delete_explain: "I suoi invii in corso vengono annullati; il registro degli invii resta.",
    deleted_title: "Webhook eliminato",
    log_kept: "Il suo registro degli invii resta nel database finché non viene ripulito.",
    was_deleted: "Questo webhook è stato eliminato.",
    deactivated_title: "Webhook disattivato",
    cancelled: "annullato",
    cancel_manual: "il webhook è stato disattivato manualmente",
    cancel_gone: "il webhook è stato disattivato (410, non più disponibile)",
    cancel_failing: "il webhook è stato disattivato dopo",
    cancel_deleted: "il webhook è stato eliminato",
    lapsed: "il worker si è fermato prima di finire il tentativo",
    resend: "Invia di nuovo",
    resend_of: "reinvio di",
    resent_title: "Inviato di nuovo come invio",
    not_ended: "Questo invio non è ancora terminato: si potrà inviare di nuovo quando lo sarà.",
    reactivate_first: "Il webhook è disattivato: riattivalo, poi invia di nuovo.",
    no_such_delivery: "Questo webhook non ha un invio con questo identificativo.",
    recover: "Recupera",
    recover_help: "Invia di nuovo, una volta sola, ogni invio di questo webhook che è terminato come non riuscito, abbandonato o annullato nel periodo scelto (quelli già inviati di nuovo sono esclusi).",
    recover_since: "Non riusciti, abbandonati o annullati",
    since_hour: "nell'ultima ora",
    since_day: "nelle ultime 24 ore",
    since_week: "negli ultimi 7 giorni",
    recovered_title: "Recupero",
    recovered_none: "niente da inviare di nuovo",
    counts: "Invii",
    count_pending: "in corso",
    count_delivered: "consegnati",
    count_failed: "non riusciti",
    count_gave_up: "abbandonati",
    count_gone: "410 (non più disponibile)",
    count_cancelled: "annullati",
    actions: "Azioni",
    pending_deliveries: "Invii in corso",
    attempts_n: Plural {
        one: "tentativo",
        many: "tentativi",
    },
    failures_n: Plural {
        one: "invio fallito di fila",
        many: "invii falliti di fila",
    },
    delivered_n: Plural {
        one: "consegnato",
        many: "consegnati",
    },
    queued_n: Plural {
        one: "webhook da servire, in coda nell'outbox",
        many: "webhook da servire, in coda nell'outbox",
    },
    pending_cancelled_n: Plural {
        one: "invio in corso annullato",
        many: "invii in corso annullati",
    },
    recovered_n: Plural {
        one: "invio rimesso in coda",
        many: "invii rimessi in coda",
    },
    problems_n: Plural {
        one: "problema",
        many: "problemi",
    },
    ended_other: "terminato",
    cancel_other: "il webhook è stato disattivato",
    troubleshooting: "Risoluzione dei problemi",
    advice_invalid_url: "Correggi l'URL al carattere segnato: sono ammessi lettere e cifre, $-_.+!*'(), e ; / ? : @ = & nei loro ruoli nell'URL; scrivi ogni altro carattere come escape %HH.",
    advice_dns: "Controlla che il nome host non contenga errori di battitura; un nome appena creato può richiedere un po' di tempo per risolversi ovunque.",
    advice_blocked: "I webhook non possono puntare a questa rete (loopback, privata, link-local, ...): usa l'indirizzo pubblico del ricevitore.",
    advice_refused: "Il ricevitore è avviato, su quella porta?",
    advice_connect_timeout: "Un firewall potrebbe scartare la connessione, oppure l'host è spento.",
    advice_connect_failed: "Controlla che l'host sia raggiungibile da questo server (rete, firewall, instradamento).",
    advice_tls: "Controlla il certificato del ricevitore (emittente, scadenza, nome) e che la porta parli HTTPS.",
    advice_no_answer: "Il ricevitore deve rispondere rapidamente: dovrebbe rispondere subito e fare il lavoro lungo dopo.",
    advice_broken: "La connessione si è interrotta durante lo scambio: riprova; se succede ancora, chiedi allo sviluppatore del ricevitore.",
    advice_redirect: "I webhook non seguono i reindirizzamenti: usa l'URL finale.",
    advice_gone: "Il ricevitore dice che questo URL non esiste più: un invio lì disattiva il webhook. Chiedi il nuovo URL.",
    advice_server_error: "Il ricevitore ha un errore o è sovraccarico; gli invii veri vengono ritentati. Se continua, avvisa il suo sviluppatore.",
    advice_refused_request: "Il ricevitore ha rifiutato la richiesta: verifica con il suo sviluppatore che l'URL sia giusto e accetti richieste POST con un modulo.",
    advice_ok: "L'URL riceve le richieste POST. Se i webhook continuano a non arrivare, controlla che eventi, origini e lista del webhook corrispondano all'attività.",
    advice_general: "Ti consigliamo di testare l'URL utilizzando un servizio come Request Catcher per assicurarti che sia reattivo e possa ricevere le richieste POST; se il problema è nell'URL, collabora con lo sviluppatore o con l'applicazione di terze parti per risolverlo.",
    sent_title: "Dati inviati",
    sent_pairs: "Campi, decodificati",
    sent_raw: "Corpo grezzo",
    field_key: "Chiave",
    field_value: "Valore",
    no_limits: "Non ci sono limiti sul numero di caratteri inclusi in una nota o in un altro campo di un webhook.",
    url_hint_before: "Nell'URL del webhook puoi utilizzare caratteri alfanumerici, oltre ai seguenti caratteri speciali:",
    url_hint_after: "(e ; / ? : @ = & nei loro ruoli nell'URL; ogni altro carattere come escape %HH).",
    error_summary: "Non è stato salvato nulla:",
    unknown_event: "evento sconosciuto",
    unknown_source: "origine sconosciuta",
    unreadable_form: "il corpo del modulo non è valido",
    sample_kind: "Esempio di",
    automation: "Azione di automazione webhook",
    automation_help: "Viene attivata solo quando un contatto completa il passaggio dell'azione di automazione del webhook: invia all'URL i dati del contatto e l'ID dell'automazione (seriesid). Non è necessario creare un webhook in \u{201c}Impostazioni sviluppatore\u{201d} per attivarla.",
    automation_once: "Qui si fa un solo tentativo, entro 5 secondi.",
    series_id: "ID dell'automazione (seriesid)",
    contact_email: "Email del contatto",
    contact_first_name: "Nome del contatto",
    automation_send: "Esegui il passaggio webhook",
    automation_result: "Passaggio di automazione",
    blank_series: "Inserisci l'ID dell'automazione.",
    store_error: "Il database non ha risposto",
    detail_in_log: "i dettagli tecnici sono nel log del server",
    render_error: "500 Errore interno del server: non è stato possibile comporre la pagina (i dettagli sono nel log del server).",
    sample_of: "esempio",
    webhooks_n: Plural {
        one: "webhook",
        many: "webhook",
    },
    showing: "Visualizzati",
    page: "Pagina",
    page_of: "di",
    previous: "Precedente",
    next: "Successiva",
    pages_nav: "Pagine dell'elenco",
    filters: "Trova webhook",
    search: "Il nome o l'URL contiene",
    any_event: "Qualsiasi evento",
    any_state: "Qualsiasi stato",
    state_active: "Attivi",
    state_off: "Disattivati",
    filter: "Filtra",
    clear_filters: "Azzera i filtri",
    no_match: "Nessun webhook corrisponde a questi filtri.",
    no_version: "il modulo non indica quale versione del webhook modifica: apri di nuovo Modifica",
    limit_reached: "Questo account ha già il numero massimo di webhook",
    save_mine: "Salva la mia al suo posto",
    conflict_title: "Non salvato: qualcun altro ha salvato questo webhook mentre lo modificavi.",
    conflict_explain: "Confronta le due versioni. Modifica di nuovo quella salvata, oppure continua con la tua qui sotto e salvala al posto di quella salvata.",
    conflict_caption: "La tua versione e quella salvata",
    conflict_field: "Campo",
    conflict_yours: "La tua, come l'hai scritta",
    conflict_stored: "Salvata ora",
    version: "versione",
    differs: "diverso",
    reedit_stored: "Modifica la versione salvata",
    saved_at: "salvata il",
};
