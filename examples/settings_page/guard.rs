//! What keeps other websites out, as three middlewares:
//!
//! - [`headers`], on every response: a `Content-Security-Policy` with no inline script and no
//!   framing, `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin` (not `no-referrer`: under it, browsers send
//!   `Origin: null` with the page's own form posts).
//! - [`host`], on every request: the `Host` must be one this app was started for (its own
//!   address, `localhost` on its port, and each `--host NAME`); any other gets `421
//!   Misdirected Request`. Through DNS rebinding a website's own name can point at
//!   127.0.0.1; its requests then carry its name as `Host`, and are refused here.
//! - [`session`], on the page's routes (not on the built-in receiver, whose callers are
//!   webhook senders): every request gets its browser session (a cookie is set for a new
//!   one); every POST must come from this page: `Sec-Fetch-Site` absent or `same-origin`,
//!   `Origin` absent or this page's own, a known session, and the session's form token in
//!   the body (compared in constant time). Anything else gets `403` and changes nothing.
//!
//! These answers come before any page, in plain text, in both languages: the one `?lang=`
//! asks for first (a request from another website may ask for none).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use posthook::Form;

use crate::AppState;
use crate::session::{COOKIE, SessionRef, same_token};
use crate::text::{Lang, LangQuery};

/// The body limit of a POST (the forms' fields have no limit of their own).
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The form field that carries the session's token.
pub const TOKEN_FIELD: &str = "csrf";

/// Scripts and styles from this app's own files only; no inline script, no framing, forms
/// posting only here.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The `Host` values this app answers to, lower-case.
#[derive(Debug, Clone)]
pub struct Hosts {
    allowed: Arc<BTreeSet<String>>,
    /// What a refusal names: the app's own address.
    own: Arc<str>,
}

impl Hosts {
    /// `own` (`127.0.0.1:PORT`), `localhost:PORT`, and each of `names`: as given, and with
    /// the port added when it has none (`--host example.test` allows `example.test` and
    /// `example.test:PORT`).
    pub fn new(own: &str, port: u16, names: &[String]) -> Hosts {
        let mut allowed = BTreeSet::from([own.to_ascii_lowercase(), format!("localhost:{port}")]);
        for name in names {
            let name = name.to_ascii_lowercase();
            if !name.contains(':') || name.ends_with(']') {
                allowed.insert(format!("{name}:{port}"));
            }
            allowed.insert(name);
        }
        Hosts {
            allowed: Arc::new(allowed),
            own: own.into(),
        }
    }

    pub fn allows(&self, host: &str) -> bool {
        self.allowed.contains(&host.to_ascii_lowercase())
    }
}

/// The request's `Host` (or the authority of an absolute-form target).
fn request_host(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
}

/// A refusal in plain text, in both languages: the one `?lang=` asks for first (these
/// answers come before any page, and a request from elsewhere may ask for none).
fn plain(status: StatusCode, lang: Lang, (en, it): (String, String)) -> Response {
    let content_type = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    let text = match lang {
        Lang::En => format!("{en}\n{it}"),
        Lang::It => format!("{it}\n{en}"),
    };
    (status, content_type, text).into_response()
}

/// The language `?lang=` of `uri` asks for.
fn lang_of(uri: &axum::http::Uri) -> Lang {
    Query::<LangQuery>::try_from_uri(uri)
        .map(|q| q.lang())
        .unwrap_or_default()
}

/// The guard's plain-text answers, each in English and in Italian.
pub mod answers {
    pub fn no_host() -> (String, String) {
        (
            "400 Bad Request: the request has no Host header.\n".to_owned(),
            "400 Richiesta non valida: la richiesta non ha l'intestazione Host.\n".to_owned(),
        )
    }

    pub fn misdirected(own: &str) -> (String, String) {
        (
            format!(
                "421 Misdirected Request: this settings_page answers for {own} only \
                 (start it with --host NAME to add a name).\n"
            ),
            format!(
                "421 Richiesta mal indirizzata: questa settings_page risponde solo per {own} \
                 (avviala con --host NOME per aggiungere un nome).\n"
            ),
        )
    }

    pub fn too_large() -> (String, String) {
        (
            "413 Payload Too Large: the form is over 2 MiB; nothing was changed.\n".to_owned(),
            "413 Contenuto troppo grande: il modulo supera 2 MiB; non è cambiato nulla.\n"
                .to_owned(),
        )
    }

    pub fn no_randomness(error: &str) -> (String, String) {
        (
            format!("500 Internal Server Error: no random numbers for a session: {error}\n"),
            format!(
                "500 Errore interno del server: il sistema non dà numeri casuali per una \
                 sessione (dettaglio tecnico: {error})\n"
            ),
        )
    }

    pub fn no_session_layer() -> (String, String) {
        (
            "500 Internal Server Error: no session (the session layer is missing).\n".to_owned(),
            "500 Errore interno del server: nessuna sessione (manca il livello delle sessioni).\n"
                .to_owned(),
        )
    }
}

pub async fn host(State(hosts): State<Hosts>, request: Request, next: Next) -> Response {
    let lang = lang_of(request.uri());
    match request_host(&request) {
        None => plain(StatusCode::BAD_REQUEST, lang, answers::no_host()),
        Some(host) if hosts.allows(host) => next.run(request).await,
        Some(_) => plain(
            StatusCode::MISDIRECTED_REQUEST,
            lang,
            answers::misdirected(&hosts.own),
        ),
    }
}

/// Why a POST was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    CrossSite,
    ForeignOrigin,
    NoSession,
    BadToken,
}

impl Refusal {
    /// In English and in Italian.
    pub fn text(self) -> (String, String) {
        let (en, it) = match self {
            Refusal::CrossSite | Refusal::ForeignOrigin => (
                "403 Forbidden: this form was sent from another website; nothing was changed.\n",
                "403 Accesso negato: questo modulo è stato inviato da un altro sito; non è \
                 cambiato nulla.\n",
            ),
            Refusal::NoSession | Refusal::BadToken => (
                "403 Forbidden: this form is out of date (or not from this page); nothing was \
                 changed. Go back, reload the page and send it again.\n",
                "403 Accesso negato: questo modulo è scaduto (o non viene da questa pagina); non è \
                 cambiato nulla. Torna indietro, ricarica la pagina e invialo di nuovo.\n",
            ),
        };
        (en.to_owned(), it.to_owned())
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h [u8]> {
    headers.get(name).map(HeaderValue::as_bytes)
}

/// `Sec-Fetch-Site` and `Origin`, when the browser sent them, must say "this page".
fn check_origin(headers: &HeaderMap) -> Result<(), Refusal> {
    if let Some(site) = header_str(headers, "sec-fetch-site") {
        if site != b"same-origin" {
            return Err(Refusal::CrossSite);
        }
    }
    if let Some(origin) = header_str(headers, "origin") {
        let host = header_str(headers, "host").unwrap_or_default();
        // Plain HTTP here; `https://` too, for a TLS proxy in front (`--host NAME`).
        let own = |scheme: &[u8]| origin.eq_ignore_ascii_case(&[scheme, host].concat());
        if !own(b"http://") && !own(b"https://") {
            return Err(Refusal::ForeignOrigin);
        }
    }
    Ok(())
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub async fn session(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let lang = lang_of(request.uri());
    let found = session_cookie(request.headers()).and_then(|id| app.sessions.find(id));
    if is_safe(request.method()) {
        let (session, new) = match found {
            Some(session) => (session, false),
            None => match app.sessions.create() {
                Ok(session) => (session, true),
                Err(error) => {
                    let text = answers::no_randomness(&error.to_string());
                    return plain(StatusCode::INTERNAL_SERVER_ERROR, lang, text);
                }
            },
        };
        let mut request = request;
        request.extensions_mut().insert(session.clone());
        let mut response = next.run(request).await;
        if new {
            let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", session.id);
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        return response;
    }
    let refuse = |why: Refusal| plain(StatusCode::FORBIDDEN, lang, why.text());
    if let Err(why) = check_origin(request.headers()) {
        return refuse(why);
    }
    let Some(session) = found else {
        return refuse(Refusal::NoSession);
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, lang, answers::too_large());
    };
    let token_ok = Form::parse(&body).is_ok_and(|form| {
        form.get(TOKEN_FIELD)
            .is_some_and(|token| same_token(token.as_bytes(), session.token.as_bytes()))
    });
    if !token_ok {
        return refuse(Refusal::BadToken);
    }
    let mut request = Request::from_parts(parts, Body::from(body));
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// What every page handler is given: the page's language and the browser's session.
#[derive(Debug, Clone)]
pub struct Visit {
    pub lang: Lang,
    pub session: SessionRef,
}

impl<S: Send + Sync> FromRequestParts<S> for Visit {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let lang = lang_of(&parts.uri);
        let session = parts
            .extensions
            .get::<SessionRef>()
            .cloned()
            .ok_or_else(|| {
                let text = answers::no_session_layer();
                plain(StatusCode::INTERNAL_SERVER_ERROR, lang, text)
            })?;
        Ok(Visit { lang, session })
    }
}
