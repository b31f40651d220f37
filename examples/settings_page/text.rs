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
    pub failures: &'static str,
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
    pub queued: &'static str,
    pub now_deactivated: &'static str,
    pub all_events: &'static str,
    pub language: &'static str,
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
    failures: "failed deliveries in a row",
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
    queued: "webhook(s) to deliver, queued in the outbox",
    now_deactivated: "The endpoint answered 410 Gone: the webhook is now deactivated.",
    all_events: "all 25 events",
    language: "Italiano",
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
    deactivated_gone: "disattivato: 410 Gone",
    deactivated_manual: "disattivato manualmente",
    deactivated_failing: "disattivato: in errore dal",
    failures: "invii falliti di fila",
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
    gone: "410 Gone: webhook disattivato",
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
    receiver_gone: "risponde 410 Gone",
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
    queued: "webhook da servire, in coda nell'outbox",
    now_deactivated: "L'endpoint ha risposto 410 Gone: il webhook ora è disattivato.",
    all_events: "tutti i 25 eventi",
    language: "English",
};
