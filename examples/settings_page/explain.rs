//! posthook's typed results in the page's words: URL errors (`UrlErrorKind`), transport
//! failures (`TransportErrorKind`), attempts, final outcomes (`FinalOutcome`), cancel reasons
//! (`CancelReason`) and "Test URL" findings (`Finding`), with troubleshooting advice. English
//! keeps posthook's own messages; Italian is written here from the typed values, never by
//! reading the English text.

use std::time::Duration;

use posthook::{
    AddressClass, Attempt, AttemptOutcome, CancelReason, Deactivation, Diagnosis, FinalOutcome,
    Finding, TransportError, TransportErrorKind, UrlError, UrlErrorKind, Verdict, WebhookError,
    WebhookUrl,
};

use crate::text::{Lang, cut};

/// What is wrong with a URL, and at which byte.
pub fn url_error(error: &UrlError, lang: Lang) -> String {
    if lang == Lang::En {
        return error.to_string();
    }
    let at = error.offset();
    match error.kind() {
        UrlErrorKind::Empty => "URL vuoto".to_owned(),
        UrlErrorKind::MissingScheme => {
            format!("manca lo schema al byte {at}: l'URL deve iniziare con http:// o https://")
        }
        UrlErrorKind::UnsupportedScheme(scheme) => format!(
            "schema {:?} non supportato al byte {at}: sono ammessi solo http e https",
            cut(scheme, 20)
        ),
        UrlErrorKind::InvalidCharacter(c) => format!("carattere non valido {c:?} al byte {at}"),
        UrlErrorKind::InvalidEscape => format!(
            "escape non valido al byte {at}: '%' deve essere seguito da due cifre esadecimali"
        ),
        UrlErrorKind::MissingHost => format!("manca l'host al byte {at}"),
        UrlErrorKind::InvalidHostCharacter(c) => {
            format!("carattere non valido {c:?} nell'host al byte {at}")
        }
        UrlErrorKind::InvalidHost => format!("host non valido al byte {at}"),
        UrlErrorKind::InvalidPort => {
            format!("porta non valida al byte {at}: serve un numero da 1 a 65535")
        }
        UrlErrorKind::InsecureScheme => {
            format!("schema non sicuro al byte {at}: è richiesto https")
        }
        UrlErrorKind::PortNotAllowed(port) => {
            format!("la porta {port} al byte {at} non è ammessa: è richiesta la porta 443")
        }
        _ => format!("URL non valido al byte {at}"),
    }
}

/// A transport failure.
pub fn transport(error: &TransportError, lang: Lang) -> String {
    if lang == Lang::En {
        return error.to_string();
    }
    match error.kind() {
        TransportErrorKind::Dns => "errore DNS: il nome host non si risolve",
        TransportErrorKind::Blocked => "bloccato: l'indirizzo è in una rete vietata ai webhook",
        TransportErrorKind::Refused => {
            "connessione rifiutata: nessun programma è in ascolto su quella porta"
        }
        TransportErrorKind::ConnectTimeout => "connessione non stabilita in tempo",
        TransportErrorKind::Connect => "connessione non riuscita: rete o host irraggiungibile",
        TransportErrorKind::Timeout => "nessuna risposta in tempo",
        TransportErrorKind::Tls => "errore TLS: certificato o handshake non validi",
        TransportErrorKind::Io => "connessione interrotta durante lo scambio",
        _ => "errore di trasporto",
    }
    .to_owned()
}

/// The reason phrase of an HTTP status: the standard English one, or in Italian (an
/// unusual status has none in Italian: the number alone says it).
pub fn status_reason(code: u16, lang: Lang) -> Option<&'static str> {
    if lang == Lang::En {
        return http::StatusCode::from_u16(code)
            .ok()
            .and_then(|s| s.canonical_reason());
    }
    Some(match code {
        200 => "OK",
        201 => "creato",
        202 => "accettato",
        204 => "nessun contenuto",
        301 => "spostato in modo permanente",
        302 => "trovato altrove",
        303 => "vedi altro indirizzo",
        307 => "reindirizzamento temporaneo",
        308 => "reindirizzamento permanente",
        400 => "richiesta non valida",
        401 => "non autorizzato",
        403 => "accesso negato",
        404 => "non trovato",
        405 => "metodo non consentito",
        408 => "tempo scaduto per la richiesta",
        409 => "conflitto",
        410 => "non più disponibile",
        413 => "contenuto troppo grande",
        415 => "tipo di contenuto non supportato",
        422 => "contenuto non elaborabile",
        429 => "troppe richieste",
        500 => "errore interno del server",
        501 => "non implementato",
        502 => "gateway non valido",
        503 => "servizio non disponibile",
        504 => "timeout del gateway",
        _ => return None,
    })
}

/// `HTTP 503 Service Unavailable` / `HTTP 503 servizio non disponibile`.
pub fn status(code: u16, lang: Lang) -> String {
    match status_reason(code, lang) {
        Some(reason) => format!("HTTP {code} {reason}"),
        None => format!("HTTP {code}"),
    }
}

/// What one attempt got: a status, a failure, or a lapsed lease.
pub fn attempt(outcome: &AttemptOutcome, lang: Lang) -> String {
    match outcome {
        AttemptOutcome::Status(code) => status(code.as_u16(), lang),
        AttemptOutcome::Error(error) => transport(error, lang),
        AttemptOutcome::Lapsed => lang.text().lapsed.to_owned(),
        _ => match lang {
            Lang::En => outcome.to_string(),
            Lang::It => "esito sconosciuto".to_owned(),
        },
    }
}

/// Why posthook refused a webhook the form's own checks let through.
pub fn webhook_error(error: &posthook::Error, lang: Lang) -> String {
    let t = lang.text();
    match (lang, error) {
        (Lang::En, error) => error.to_string(),
        (Lang::It, posthook::Error::Url(error)) => url_error(error, lang),
        (Lang::It, posthook::Error::Webhook(WebhookError::BlankName)) => t.blank_name.to_owned(),
        (Lang::It, posthook::Error::Webhook(WebhookError::NoEvents)) => t.no_events.to_owned(),
        (Lang::It, posthook::Error::Webhook(WebhookError::NoSources)) => t.no_sources.to_owned(),
        (Lang::It, posthook::Error::Webhook(_)) => {
            "un'intestazione del webhook non è valida o è riservata".to_owned()
        }
        (Lang::It, _) => "posthook ha rifiutato il webhook".to_owned(),
    }
}

/// How a delivery that is over ended, from its outcome and its attempts.
pub fn final_outcome(outcome: &FinalOutcome, attempts: &[Attempt], lang: Lang) -> String {
    let t = lang.text();
    match outcome {
        FinalOutcome::Delivered { status } => {
            format!("{} (HTTP {})", t.delivered, status.as_u16())
        }
        FinalOutcome::Gone => t.gone.to_owned(),
        FinalOutcome::Failed { reason } => match lang {
            Lang::En => format!("{}: {reason}", t.failed),
            Lang::It => format!("{}: {}", t.failed, failed_it(attempts)),
        },
        FinalOutcome::GaveUp { last } => format!(
            "{} ({}): {}",
            t.gave_up,
            t.attempts_n.count(attempts.len()),
            attempt(last, lang)
        ),
        FinalOutcome::Cancelled { reason } => {
            format!("{}: {}", t.cancelled, cancel(reason, lang))
        }
        other => match lang {
            Lang::En => other.to_string(),
            Lang::It => t.ended_other.to_owned(),
        },
    }
}

/// Why a delivery failed without (further) retry, in Italian, from its last attempt.
fn failed_it(attempts: &[Attempt]) -> String {
    let Some(last) = attempts.last() else {
        return "nessun tentativo: l'URL non può essere inviato".to_owned();
    };
    let what = attempt(&last.outcome, Lang::It);
    match &last.outcome {
        AttemptOutcome::Status(status) if status.is_redirection() => {
            format!("{what}: i reindirizzamenti non vengono seguiti")
        }
        AttemptOutcome::Status(status) if status.is_informational() => {
            format!("{what}: uno stato informativo non è una risposta")
        }
        outcome if outcome.verdict() == Verdict::Retry => {
            format!("{what}: non ritentato (la politica consente un solo tentativo)")
        }
        _ => format!("{what}: non ritentato"),
    }
}

/// Why a delivery was cancelled.
pub fn cancel(reason: &CancelReason, lang: Lang) -> String {
    let t = lang.text();
    match reason {
        CancelReason::SwitchedOff(Deactivation::Manual) => t.cancel_manual.to_owned(),
        CancelReason::SwitchedOff(Deactivation::Gone) => t.cancel_gone.to_owned(),
        CancelReason::SwitchedOff(Deactivation::Failing { failures, .. }) => {
            format!(
                "{} {}",
                t.cancel_failing,
                t.failures_n.count(u64::from(*failures))
            )
        }
        CancelReason::Deleted => t.cancel_deleted.to_owned(),
        other => match lang {
            Lang::En => other.to_string(),
            Lang::It => t.cancel_other.to_owned(),
        },
    }
}

/// An address class, as a word.
pub fn address_class(class: AddressClass, lang: Lang) -> &'static str {
    match (lang, class) {
        (Lang::En, class) => class.as_str(),
        (Lang::It, AddressClass::Public) => "pubblico",
        (Lang::It, AddressClass::Loopback) => "di loopback",
        (Lang::It, AddressClass::Private) => "privato",
        (Lang::It, AddressClass::LinkLocal) => "link-local",
        (Lang::It, AddressClass::SharedNat) => "di NAT condiviso",
        (Lang::It, AddressClass::Unspecified) => "non specificato",
        (Lang::It, AddressClass::Multicast) => "multicast",
        (Lang::It, _) => "riservato",
    }
}

/// How many characters of a receiver's answer a diagnosis shows.
pub const EXCERPT_CHARS: usize = 100;

/// "Test URL" in words: what was found, and what to do about it.
#[derive(Debug, Clone)]
pub struct DiagnosisText {
    pub ok: bool,
    pub summary: String,
    pub advice: Vec<String>,
}

/// A receiver's answer as a short line: control characters as spaces, cut.
fn excerpt(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cut(line.trim(), EXCERPT_CHARS)
}

pub fn diagnosis(d: &Diagnosis, timeout: Duration, lang: Lang) -> DiagnosisText {
    let it = lang == Lang::It;
    let parsed = WebhookUrl::parse(&d.url);
    let host = parsed.as_ref().map_or("", |u| u.host()).to_owned();
    let took = d
        .elapsed
        .map_or_else(String::new, |e| format!(" in {} ms", e.as_millis()));
    let (summary, advice): (String, &str) = match &d.finding {
        Finding::InvalidUrl { message, offset } => {
            let what = match (&parsed, lang) {
                (Err(error), _) => url_error(error, lang),
                (Ok(_), Lang::En) => message.clone(),
                (Ok(_), Lang::It) => format!("errore al byte {offset}"),
            };
            let summary = match lang {
                Lang::En => format!("invalid URL: {what}"),
                Lang::It => format!("URL non valido: {what}"),
            };
            (summary, lang.text().advice_invalid_url)
        }
        Finding::Dns { message } => {
            let summary = if it {
                format!(
                    "errore DNS: il nome host «{}» non si risolve",
                    cut(&host, 80)
                )
            } else {
                format!("DNS failure: {message}")
            };
            (summary, lang.text().advice_dns)
        }
        Finding::Blocked { message } => {
            let blocked = d
                .addresses
                .iter()
                .find(|a| !a.allowed)
                .map(|a| a.ip)
                .or_else(|| parsed.as_ref().ok().and_then(WebhookUrl::ip));
            let summary = match (lang, blocked) {
                (Lang::En, _) => format!("blocked: {message}"),
                (Lang::It, Some(ip)) => format!(
                    "bloccato: {ip} è un indirizzo {}, vietato ai webhook",
                    address_class(AddressClass::of(ip), lang)
                ),
                (Lang::It, None) => "bloccato: l'indirizzo è vietato ai webhook".to_owned(),
            };
            (summary, lang.text().advice_blocked)
        }
        Finding::Refused { message } => {
            let summary = if it {
                "connessione rifiutata: nessun programma è in ascolto su quella porta".to_owned()
            } else {
                format!("refused: {message}")
            };
            (summary, lang.text().advice_refused)
        }
        Finding::ConnectTimeout { message } => {
            let summary = if it {
                "connessione non stabilita in tempo".to_owned()
            } else {
                format!("connect timeout: {message}")
            };
            (summary, lang.text().advice_connect_timeout)
        }
        Finding::ConnectFailed { message } => {
            let summary = if it {
                "nessuna connessione: rete o host irraggiungibile, o connessione interrotta"
                    .to_owned()
            } else {
                format!("no connection: {message}")
            };
            (summary, lang.text().advice_connect_failed)
        }
        Finding::Tls { message } => {
            let summary = if it {
                "errore TLS: il certificato o l'handshake non sono validi".to_owned()
            } else {
                format!("TLS failure: {message}")
            };
            (summary, lang.text().advice_tls)
        }
        Finding::NoAnswer { message } => {
            let summary = if it {
                format!(
                    "nessuna risposta: connesso, ma il ricevitore non ha risposto entro {} s",
                    timeout.as_secs()
                )
            } else {
                format!("no answer: connected, but {message}")
            };
            (summary, lang.text().advice_no_answer)
        }
        Finding::Broken { message } => {
            let summary = if it {
                "non riuscito: la connessione si è interrotta durante lo scambio".to_owned()
            } else {
                format!("failed: {message}")
            };
            (summary, lang.text().advice_broken)
        }
        Finding::Redirect { status, location } => {
            let to = location.as_deref().map(|l| cut(l, 80));
            let summary = match (lang, to) {
                (Lang::En, Some(to)) => format!("redirect: HTTP {status} to {to}"),
                (Lang::En, None) => format!("redirect: HTTP {status}"),
                (Lang::It, Some(to)) => format!("reindirizzamento: HTTP {status} verso {to}"),
                (Lang::It, None) => format!("reindirizzamento: HTTP {status}"),
            };
            (summary, lang.text().advice_redirect)
        }
        Finding::NotOk {
            status,
            excerpt: body,
        } => {
            let mut summary = match (lang, *status) {
                (Lang::En, 410) => format!(
                    "HTTP 410{took}: the receiver says it is gone for good (a delivery would deactivate the webhook)"
                ),
                (Lang::En, _) => {
                    format!("HTTP {status}{took}: the receiver did not accept the request")
                }
                (Lang::It, 410) => format!(
                    "HTTP 410{took}: il ricevitore dice che non esiste più (un invio disattiverebbe il webhook)"
                ),
                (Lang::It, _) => {
                    format!("HTTP {status}{took}: il ricevitore non ha accettato la richiesta")
                }
            };
            let body = excerpt(body);
            if !body.is_empty() {
                let said = if it { "Ha risposto" } else { "It answered" };
                summary.push_str(&format!(". {said}: \u{ab}{body}\u{bb}"));
            }
            let advice = match *status {
                410 => lang.text().advice_gone,
                429 | 500..=599 => lang.text().advice_server_error,
                _ => lang.text().advice_refused_request,
            };
            (summary, advice)
        }
        Finding::Ok { status } => (format!("OK: HTTP {status}{took}"), lang.text().advice_ok),
        _ => {
            let summary = if it {
                "risultato sconosciuto".to_owned()
            } else {
                d.to_string()
            };
            (summary, lang.text().advice_broken)
        }
    };
    let mut advice = vec![advice.to_owned()];
    if !d.is_ok() {
        advice.push(lang.text().advice_general.to_owned());
    }
    DiagnosisText {
        ok: d.is_ok(),
        summary,
        advice,
    }
}
