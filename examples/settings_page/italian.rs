//! The Italian page speaks Italian where things fail, too: every kind of message the page
//! shows (its fixed words, URL errors, transport failures, attempts, outcomes, cancel
//! reasons, "Test URL" findings and their advice, form problems, store failures, the
//! guard's plain-text refusals), rendered in Italian, holds no word of a list of English
//! ones; and the plurals agree with their numbers.
//!
//! `cargo test --all-features --example settings_page`.
//!
//! Words Italian uses as they are (webhook, URL, HTTP, DNS, TLS, host, loopback, outbox,
//! worker, link-local, escape, endpoint, gateway, timeout, OK, API, seriesid, the product
//! name "Request Catcher") are not on the list.

use std::time::Duration;

use posthook::{
    AttemptOutcome, CancelReason, Deactivation, Diagnosis, FinalOutcome, TransportError,
    TransportErrorKind, UrlPolicy, WebhookUrl,
};
use serde_json::json;

use crate::explain;
use crate::form::FormProblem;
use crate::guard::{Refusal, answers};
use crate::pages::{form_problem_text, sample_title, store_failure};
use crate::text::{EN, IT, Lang};

/// English words that have no place in an Italian message (whole words, any case).
const ENGLISH: &[&str] = &[
    "the",
    "and",
    "not",
    "is",
    "was",
    "are",
    "this",
    "that",
    "with",
    "from",
    "only",
    "within",
    "did",
    "does",
    "failed",
    "failure",
    "retried",
    "retry",
    "delivered",
    "delivery",
    "deliveries",
    "attempt",
    "attempts",
    "refused",
    "error",
    "request",
    "answer",
    "answered",
    "connection",
    "connected",
    "gave",
    "pending",
    "cancelled",
    "switched",
    "deleted",
    "bad",
    "internal",
    "unavailable",
    "forbidden",
    "misdirected",
    "payload",
    "large",
    "gone",
    "found",
    "invalid",
    "character",
    "missing",
    "blocked",
    "unknown",
    "webhooks",
    "nothing",
    "redirect",
    "unsupported",
    "scheme",
    "port",
    "policy",
];

/// The English words found in `text`.
fn english_in(text: &str) -> Vec<String> {
    let text = text.replace("Request Catcher", "");
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .flat_map(|w| w.split('\''))
        .filter(|w| ENGLISH.iter().any(|e| e.eq_ignore_ascii_case(w)))
        .map(str::to_owned)
        .collect()
}

#[track_caller]
fn assert_italian(what: &str, text: &str) {
    let found = english_in(text);
    assert!(found.is_empty(), "{what}: English {found:?} in {text:?}");
}

/// Every string in a `Text` (the plurals' two forms included), by field name.
fn strings(text: &crate::text::Text) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let serde_json::Value::Object(fields) = serde_json::to_value(text).expect("Text serializes")
    else {
        panic!("Text is not an object");
    };
    for (name, value) in fields {
        match value {
            serde_json::Value::String(s) => found.push((name, s)),
            serde_json::Value::Object(plural) => {
                for (form, value) in plural {
                    let s = value.as_str().expect("a plural's forms are strings");
                    found.push((format!("{name}.{form}"), s.to_owned()));
                }
            }
            other => panic!("{name}: {other}"),
        }
    }
    found
}

#[test]
fn the_list_knows_english_when_it_sees_it() {
    assert!(!english_in("non riuscito: HTTP 400 Bad Request: not retried").is_empty());
    assert!(!english_in("the receiver did not answer within 10 s").is_empty());
    assert!(english_in("non riuscito: HTTP 400 richiesta non valida: non ritentato").is_empty());
    assert!(english_in("un servizio come Request Catcher").is_empty());
}

#[test]
fn every_fixed_word_of_the_page() {
    let it = strings(&IT);
    assert_eq!(it.len(), strings(&EN).len());
    for (name, s) in &it {
        assert!(!s.trim().is_empty(), "{name} is blank");
        assert_italian(name, s);
    }
    // The list would see English: the English words trip it (a sample).
    let en: Vec<_> = strings(&EN)
        .into_iter()
        .filter(|(_, s)| !english_in(s).is_empty())
        .collect();
    assert!(en.len() > 50, "{}", en.len());
}

#[test]
fn plurals_agree() {
    let t = &IT;
    assert_eq!(t.delivered_n.count(1u64), "1 consegnato");
    assert_eq!(t.delivered_n.count(4u64), "4 consegnati");
    assert_eq!(t.attempts_n.count(1u64), "1 tentativo");
    assert_eq!(t.attempts_n.count(3u64), "3 tentativi");
    assert_eq!(t.failures_n.count(1u64), "1 invio fallito di fila");
    assert_eq!(t.failures_n.count(3u64), "3 invii falliti di fila");
    assert_eq!(
        t.pending_cancelled_n.count(0u64),
        "0 invii in corso annullati"
    );
    assert_eq!(
        t.pending_cancelled_n.count(1u64),
        "1 invio in corso annullato"
    );
    assert_eq!(t.recovered_n.count(2u64), "2 invii rimessi in coda");
    assert_eq!(t.problems_n.count(1u64), "1 problema");
    assert_eq!(t.problems_n.count(3u64), "3 problemi");
    assert_eq!(t.webhooks_n.count(10_000u64), "10000 webhook");
    assert_eq!(
        sample_title(4, 4, Lang::It),
        "Invia dati di esempio: 4/4 consegnati"
    );
    assert_eq!(
        sample_title(1, 1, Lang::It),
        "Invia dati di esempio: 1/1 consegnato"
    );
    assert_eq!(
        sample_title(0, 2, Lang::It),
        "Invia dati di esempio: 0/2 consegnati"
    );
    assert_eq!(
        sample_title(1, 1, Lang::En),
        "Send sample data: 1/1 delivered"
    );
}

#[test]
fn url_errors() {
    let permissive = [
        "",
        "example.com/hook",
        "ftp://example.com/",
        "https://example.com/a b",
        "https://example.com/a%zz",
        "https:///path",
        "https://exa..mple.com/",
        "https://exa!mple.com/",
        "https://-example.com/",
        "https://example.com:99999/",
        "https://example.com:/",
        "javascript:alert(1)",
        "https://ex\u{e0}mple.com/",
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for url in permissive {
        let Err(error) = WebhookUrl::parse(url) else {
            continue;
        };
        kinds.insert(format!("{:?}", error.kind()));
        assert_italian(url, &explain::url_error(&error, Lang::It));
    }
    let strict = UrlPolicy::activecampaign();
    for url in ["http://example.com/", "https://example.com:8443/"] {
        let error = WebhookUrl::parse_with(url, strict).expect_err(url);
        kinds.insert(format!("{:?}", error.kind()));
        assert_italian(url, &explain::url_error(&error, Lang::It));
    }
    assert!(kinds.len() >= 9, "{kinds:?}");
    let error = WebhookUrl::parse("https://example.com/a b").expect_err("space");
    assert_eq!(
        explain::url_error(&error, Lang::It),
        "carattere non valido ' ' al byte 21"
    );
}

fn transport_kinds() -> [TransportErrorKind; 8] {
    [
        TransportErrorKind::Dns,
        TransportErrorKind::Blocked,
        TransportErrorKind::Refused,
        TransportErrorKind::ConnectTimeout,
        TransportErrorKind::Connect,
        TransportErrorKind::Timeout,
        TransportErrorKind::Tls,
        TransportErrorKind::Io,
    ]
}

/// What attempts can get: each transport failure (with posthook's English message, which
/// must not show), a lapsed lease, and statuses.
fn outcomes() -> Vec<AttemptOutcome> {
    let mut outcomes: Vec<AttemptOutcome> = transport_kinds()
        .into_iter()
        .map(|kind| {
            AttemptOutcome::Error(TransportError::new(
                kind,
                "the receiver did not answer within 10 s: connection refused",
            ))
        })
        .collect();
    outcomes.push(AttemptOutcome::Lapsed);
    for code in [
        100, 200, 204, 301, 302, 307, 400, 401, 403, 404, 405, 408, 409, 410, 413, 422, 429, 451,
        500, 501, 502, 503, 504, 599,
    ] {
        let status = http::StatusCode::from_u16(code).expect("a status");
        outcomes.push(AttemptOutcome::Status(status));
    }
    outcomes
}

fn attempts(last: &AttemptOutcome, n: u32) -> Vec<posthook::Attempt> {
    (1..=n)
        .map(|number| {
            let attempt = json!({
                "number": number,
                "outcome": serde_json::to_value(last).expect("serializes"),
                "at": { "secs": 0, "nanos": 0 },
            });
            serde_json::from_value(attempt).expect("an attempt")
        })
        .collect()
}

#[test]
fn attempts_and_transport_failures() {
    for outcome in outcomes() {
        assert_italian(
            &format!("{outcome:?}"),
            &explain::attempt(&outcome, Lang::It),
        );
    }
    for kind in transport_kinds() {
        let error = TransportError::new(kind, "did not answer within 10 s");
        assert_italian(&format!("{kind:?}"), &explain::transport(&error, Lang::It));
    }
    let status = |code| AttemptOutcome::Status(http::StatusCode::from_u16(code).expect("status"));
    assert_eq!(
        explain::attempt(&status(400), Lang::It),
        "HTTP 400 richiesta non valida"
    );
    assert_eq!(explain::attempt(&status(599), Lang::It), "HTTP 599");
    assert_eq!(
        explain::attempt(&status(400), Lang::En),
        "HTTP 400 Bad Request"
    );
}

#[test]
fn final_outcomes_and_cancel_reasons() {
    let reasons = [
        CancelReason::SwitchedOff(Deactivation::Manual),
        CancelReason::SwitchedOff(Deactivation::Gone),
        CancelReason::SwitchedOff(Deactivation::Failing {
            since: 0,
            failures: 1,
        }),
        CancelReason::SwitchedOff(Deactivation::Failing {
            since: 0,
            failures: 3,
        }),
        CancelReason::Deleted,
    ];
    for reason in reasons {
        assert_italian(&format!("{reason:?}"), &explain::cancel(&reason, Lang::It));
        let outcome = FinalOutcome::Cancelled { reason };
        let text = explain::final_outcome(&outcome, &[], Lang::It);
        assert_italian(&format!("{outcome:?}"), &text);
    }
    assert_eq!(
        explain::cancel(
            &CancelReason::SwitchedOff(Deactivation::Failing {
                since: 0,
                failures: 1
            }),
            Lang::It
        ),
        "il webhook è stato disattivato dopo 1 invio fallito di fila"
    );
    let english = "not retried: the policy allows one attempt".to_owned();
    for last in outcomes() {
        for n in [0, 1, 3] {
            let tried = attempts(&last, n);
            for outcome in [
                FinalOutcome::Failed {
                    reason: english.clone(),
                },
                FinalOutcome::GaveUp { last: last.clone() },
                FinalOutcome::Gone,
                FinalOutcome::Delivered {
                    status: http::StatusCode::NO_CONTENT,
                },
            ] {
                let text = explain::final_outcome(&outcome, &tried, Lang::It);
                assert_italian(&format!("{outcome:?} after {n}"), &text);
            }
        }
    }
    let one = attempts(&AttemptOutcome::Status(http::StatusCode::BAD_GATEWAY), 1);
    let three = attempts(&AttemptOutcome::Status(http::StatusCode::BAD_GATEWAY), 3);
    let gave_up = FinalOutcome::GaveUp {
        last: AttemptOutcome::Status(http::StatusCode::BAD_GATEWAY),
    };
    assert_eq!(
        explain::final_outcome(&gave_up, &three, Lang::It),
        "abbandonato (3 tentativi): HTTP 502 gateway non valido"
    );
    assert_eq!(
        explain::final_outcome(&gave_up, &one, Lang::It),
        "abbandonato (1 tentativo): HTTP 502 gateway non valido"
    );
    let failed = FinalOutcome::Failed { reason: english };
    let rejected = attempts(&AttemptOutcome::Status(http::StatusCode::BAD_REQUEST), 1);
    assert_eq!(
        explain::final_outcome(&failed, &rejected, Lang::It),
        "non riuscito: HTTP 400 richiesta non valida: non ritentato"
    );
}

fn diagnosis(url: &str, finding: serde_json::Value, addresses: serde_json::Value) -> Diagnosis {
    serde_json::from_value(json!({
        "url": url,
        "addresses": addresses,
        "finding": finding,
        "elapsed": { "secs": 0, "nanos": 12_000_000 },
    }))
    .expect("a diagnosis")
}

#[test]
fn test_url_findings_and_their_advice() {
    let english = "the receiver did not answer within 10 s: connection refused";
    let url = "https://hooks.example.com/in";
    let findings = [
        json!({ "finding": "dns", "message": english }),
        json!({ "finding": "blocked", "message": english }),
        json!({ "finding": "refused", "message": english }),
        json!({ "finding": "connect_timeout", "message": english }),
        json!({ "finding": "connect_failed", "message": english }),
        json!({ "finding": "tls", "message": english }),
        json!({ "finding": "no_answer", "message": english }),
        json!({ "finding": "broken", "message": english }),
        json!({ "finding": "redirect", "status": 302, "location": "https://elsewhere.example/" }),
        json!({ "finding": "redirect", "status": 301, "location": null }),
        json!({ "finding": "not_ok", "status": 400, "excerpt": "" }),
        json!({ "finding": "not_ok", "status": 410, "excerpt": "" }),
        json!({ "finding": "not_ok", "status": 503, "excerpt": "" }),
        json!({ "finding": "not_ok", "status": 429, "excerpt": "" }),
        json!({ "finding": "ok", "status": 204 }),
    ];
    let mut seen = 0;
    for finding in findings {
        let d = diagnosis(url, finding.clone(), json!([]));
        let text = explain::diagnosis(&d, Duration::from_secs(10), Lang::It);
        assert_italian(&format!("{finding}"), &text.summary);
        for advice in &text.advice {
            assert_italian(&format!("{finding} (advice)"), advice);
        }
        assert_eq!(text.ok, d.is_ok());
        seen += 1;
    }
    assert_eq!(seen, 15);
    // An invalid URL: posthook's message is English; the Italian one comes from the URL.
    let bad = "https://example.com/a%zz";
    let finding =
        json!({ "finding": "invalid_url", "message": "invalid escape at byte 21", "offset": 21 });
    let text = explain::diagnosis(
        &diagnosis(bad, finding, json!([])),
        Duration::from_secs(10),
        Lang::It,
    );
    assert!(
        text.summary
            .starts_with("URL non valido: escape non valido al byte 21"),
        "{}",
        text.summary
    );
    assert_italian("invalid URL", &text.summary);
    // Blocked, with the address that is: its class in Italian.
    let blocked = diagnosis(
        "http://10.1.2.3/in",
        json!({ "finding": "blocked", "message": english }),
        json!([]),
    );
    let text = explain::diagnosis(&blocked, Duration::from_secs(10), Lang::It);
    assert_eq!(
        text.summary,
        "bloccato: 10.1.2.3 è un indirizzo privato, vietato ai webhook"
    );
    // No answer: the time is said in Italian.
    let slow = diagnosis(
        url,
        json!({ "finding": "no_answer", "message": english }),
        json!([]),
    );
    let text = explain::diagnosis(&slow, Duration::from_secs(10), Lang::It);
    assert_eq!(
        text.summary,
        "nessuna risposta: connesso, ma il ricevitore non ha risposto entro 10 s"
    );
}

#[test]
fn form_problems_and_store_failures() {
    let problems = [
        FormProblem::Unreadable,
        FormProblem::UnknownEvent("nope".into()),
        FormProblem::UnknownSource("nope".into()),
        FormProblem::Refused(posthook::Error::Webhook(posthook::WebhookError::BlankName)),
        FormProblem::Refused(posthook::Error::Webhook(posthook::WebhookError::NoEvents)),
        FormProblem::Refused(posthook::Error::Webhook(posthook::WebhookError::NoSources)),
        FormProblem::Refused(posthook::Error::Url(
            WebhookUrl::parse("https://example.com/a b").expect_err("space"),
        )),
        FormProblem::NoVersion,
        FormProblem::Limit(100),
    ];
    for problem in problems {
        assert_italian(
            &format!("{problem:?}"),
            &form_problem_text(&problem, Lang::It),
        );
    }
    let detail = "the delivery store is unavailable: database is locked";
    let it = store_failure(Lang::It, detail);
    assert_italian("store failure", &it);
    assert_eq!(
        it,
        "Il database non ha risposto: i dettagli tecnici sono nel log del server."
    );
    assert!(store_failure(Lang::En, detail).contains("database is locked"));
}

#[test]
fn the_guards_refusals_in_both_languages() {
    let all = [
        answers::no_host(),
        answers::misdirected("127.0.0.1:8080"),
        answers::too_large(),
        answers::no_randomness("getrandom: unavailable"),
        answers::no_session_layer(),
        Refusal::CrossSite.text(),
        Refusal::ForeignOrigin.text(),
        Refusal::NoSession.text(),
        Refusal::BadToken.text(),
    ];
    for (en, it) in all {
        assert!(en.ends_with('\n') && it.ends_with('\n'), "{en}{it}");
        assert_eq!(en[..4], it[..4], "the same status: {en}{it}");
        assert!(!english_in(&en).is_empty(), "{en}");
        // The technical detail (a system's message) may be English; the words are not.
        let words = it.split("(dettaglio tecnico").next().unwrap_or_default();
        assert_italian(&en, words);
    }
}
