//! `posthook::api` over real HTTP on 127.0.0.1: every endpoint and every error, in
//! ActiveCampaign's shapes; the same contract over `MemoryStore`, `SqliteStore` and
//! `PostgresStore`; `docs/openapi.yaml` held to the router; and the `api_server` example
//! end to end (create through the API, publish, a signed delivery arrives).
#![cfg(feature = "api")]

#[path = "support/pg.rs"]
#[cfg(feature = "postgres")]
mod pg;
#[path = "support/temp.rs"]
mod temp;

use std::collections::BTreeSet;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use posthook::api::{Api, Tokens};
use posthook::{
    AccountId, Deactivation, DeliveryStore, Event, EventKind, MemoryStore, Outbox, Registry,
    RetryPolicy, Source, StoreError, Webhook, WebhookStore, WebhookStoreError,
};
use serde_json::{Value, json};

const ACME: AccountId = AccountId::new(1);
const GLOBEX: AccountId = AccountId::new(2);
const ACME_TOKEN: &str = "acme-0123456789abcdef";
const GLOBEX_TOKEN: &str = "globex-fedcba9876543210";

fn tokens() -> Tokens {
    Tokens::new()
        .token(ACME, ACME_TOKEN)
        .token_sha256(GLOBEX, Tokens::sha256(GLOBEX_TOKEN))
}

/// Serves `router` on 127.0.0.1 (a free port) for the rest of the test.
async fn serve(router: axum::Router) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Client::new(format!("http://{addr}"))
}

/// A small HTTP/1.1 client (hyper) for one server.
struct Client {
    base: String,
    http: HyperClient<HttpConnector, Body>,
}

/// An answer: status, headers, body (and the body as JSON, `Null` when it is not).
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    json: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `errors` of an ActiveCampaign-shaped error body, each checked for its fields.
    fn errors(&self) -> &[Value] {
        let errors = self.json["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors array in {}: {}", self.status, self.text));
        assert!(!errors.is_empty(), "{}", self.text);
        for error in errors {
            for field in ["title", "detail", "code"] {
                assert!(error[field].is_string(), "{field} in {error}");
            }
        }
        errors
    }

    fn assert_error(&self, status: StatusCode, code: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.header("content-type"), Some("application/json"));
        let error = &self.errors()[0];
        assert_eq!(error["code"], code, "{}", self.text);
        error
    }
}

impl Client {
    fn new(base: String) -> Client {
        Client {
            base,
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn send_body(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Reply {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("Api-Token", token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .http
            .request(request.body(body).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(Body::new(body), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        Reply {
            status: parts.status,
            headers: parts.headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        self.send_body(method, path, token, headers, body).await
    }

    async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), &[], None).await
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(token), &[], Some(body))
            .await
    }

    async fn put(&self, path: &str, token: &str, body: &Value) -> Reply {
        self.send(Method::PUT, path, Some(token), &[], Some(body))
            .await
    }

    async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(Method::DELETE, path, Some(token), &[], None)
            .await
    }

    /// Creates a webhook for `token`'s account; its id.
    async fn create(&self, token: &str, name: &str, url: &str) -> String {
        let reply = self
            .post(
                "/api/3/webhooks",
                token,
                &json!({"webhook": {"name": name, "url": url,
                    "events": ["subscribe", "unsubscribe"], "sources": ["public", "api"]}}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        reply.json["webhook"]["id"].as_str().unwrap().to_owned()
    }
}

/// The webhook object's fields and their types, as ActiveCampaign writes them.
fn assert_webhook_shape(webhook: &Value) {
    let id = webhook["id"].as_str().expect("id as a string");
    assert!(id.parse::<u64>().is_ok(), "{webhook}");
    assert!(
        webhook["listid"].is_string(),
        "listid as a string: {webhook}"
    );
    let cdate = webhook["cdate"].as_str().expect("cdate");
    assert_eq!(cdate.len(), "2016-01-01T12:00:00-00:00".len(), "{cdate}");
    assert!(cdate.ends_with("-00:00"), "{cdate}");
    assert_eq!(webhook["links"]["self"], format!("/api/3/webhooks/{id}"));
    assert!(webhook["events"].is_array() && webhook["sources"].is_array());
    assert!(webhook["name"].is_string() && webhook["url"].is_string());
    assert!(
        webhook.get("headers").is_none(),
        "header values never: {webhook}"
    );
}

// ---- the contract, on every store ----------------------------------------------------

/// Create, read, list, a partial update, delete, as an ActiveCampaign client calls them.
async fn create_read_update_delete<S: WebhookStore + Clone + 'static>(store: S) {
    let client = serve(Api::new(store.clone(), tokens()).into_router()).await;

    let created = client
        .post(
            "/api/3/webhooks",
            ACME_TOKEN,
            &json!({"webhook": {"name": "My Hook", "url": "http://example.com/my-hook",
                "events": ["subscribe", "unsubscribe", "sent"], "sources": ["public", "system"],
                "id": "999", "cdate": "1999-01-01T00:00:00-00:00"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.header("content-type"), Some("application/json"));
    let webhook = &created.json["webhook"];
    assert_webhook_shape(webhook);
    let id = webhook["id"].as_str().unwrap().to_owned();
    assert_ne!(id, "999", "the server gives the id");
    assert_ne!(
        webhook["cdate"], "1999-01-01T00:00:00-00:00",
        "and the cdate"
    );
    assert_eq!(webhook["name"], "My Hook");
    assert_eq!(webhook["url"], "http://example.com/my-hook");
    assert_eq!(webhook["listid"], "0");
    assert_eq!(
        webhook["events"],
        json!(["sent", "subscribe", "unsubscribe"])
    );
    assert_eq!(webhook["sources"], json!(["public", "system"]));
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(
        created.header("location"),
        Some(format!("/api/3/webhooks/{id}").as_str())
    );
    // It is in the store, for this account.
    let stored = store
        .get(ACME, id.parse::<u64>().unwrap().into())
        .await
        .unwrap();
    assert_eq!(stored.webhook.name(), "My Hook");

    let read = client
        .get(&format!("/api/3/webhooks/{id}"), ACME_TOKEN)
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    assert_eq!(read.json["webhook"], created.json["webhook"]);
    assert_eq!(read.header("etag"), Some("\"1\""));

    let listed = client.get("/api/3/webhooks", ACME_TOKEN).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.json["webhooks"], json!([created.json["webhook"]]));
    assert_eq!(listed.json["meta"]["total"], "1", "the total as a string");

    // ActiveCampaign's update: the fields given replace, the others stay.
    let updated = client
        .put(
            &format!("/api/3/webhooks/{id}"),
            ACME_TOKEN,
            &json!({"webhook": {"name": "Renamed", "listid": 7,
                "headers": {"Authorization": "Bearer s3cret-value"}}}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    let webhook = &updated.json["webhook"];
    assert_webhook_shape(webhook);
    assert_eq!(webhook["id"], id.as_str());
    assert_eq!(webhook["name"], "Renamed");
    assert_eq!(webhook["listid"], "7");
    assert_eq!(webhook["url"], "http://example.com/my-hook", "kept");
    assert_eq!(
        webhook["events"],
        json!(["sent", "subscribe", "unsubscribe"])
    );
    assert_eq!(webhook["cdate"], created.json["webhook"]["cdate"], "kept");
    assert_eq!(webhook["headerNames"], json!(["authorization"]));
    assert!(!updated.text.contains("s3cret"), "{}", updated.text);
    assert_eq!(updated.header("etag"), Some("\"2\""));
    let stored = store.get(ACME, stored.id()).await.unwrap();
    assert_eq!(
        stored.webhook.headers()["authorization"],
        "Bearer s3cret-value"
    );
    assert_eq!(stored.version, 2);

    // An update without headers keeps them; `"headers": {}` removes them.
    let renamed = client
        .put(
            &format!("/api/3/webhooks/{id}"),
            ACME_TOKEN,
            &json!({"webhook": {"events": ["open"]}}),
        )
        .await;
    assert_eq!(
        renamed.json["webhook"]["headerNames"],
        json!(["authorization"])
    );
    assert_eq!(renamed.json["webhook"]["events"], json!(["open"]));
    let cleared = client
        .put(
            &format!("/api/3/webhooks/{id}"),
            ACME_TOKEN,
            &json!({"webhook": {"headers": {}}}),
        )
        .await;
    assert!(
        cleared.json["webhook"].get("headerNames").is_none(),
        "{}",
        cleared.text
    );

    let deleted = client
        .delete(&format!("/api/3/webhooks/{id}"), ACME_TOKEN)
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(deleted.json, json!({}));
    client
        .get(&format!("/api/3/webhooks/{id}"), ACME_TOKEN)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    client
        .delete(&format!("/api/3/webhooks/{id}"), ACME_TOKEN)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert!(matches!(
        store.get(ACME, stored.id()).await,
        Err(WebhookStoreError::NotFound { .. })
    ));
    let listed = client.get("/api/3/webhooks", ACME_TOKEN).await;
    assert_eq!(listed.json, json!({"webhooks": [], "meta": {"total": "0"}}));
}

/// Another account's webhook is a 404 with the same body as one that never was, for every
/// method; nothing of it changes; lists show each account its own.
async fn accounts_are_apart<S: WebhookStore + Clone + 'static>(store: S) {
    let client = serve(Api::new(store.clone(), tokens()).into_router()).await;
    let mine = client
        .create(ACME_TOKEN, "acme", "https://acme.example.com/")
        .await;
    let theirs = client
        .create(GLOBEX_TOKEN, "globex", "https://globex.example.com/")
        .await;
    let never = "987654321";
    let body = json!({"webhook": {"name": "taken over"}});
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(&body)),
        (Method::DELETE, None),
    ] {
        let foreign = client
            .send(
                method.clone(),
                &format!("/api/3/webhooks/{mine}"),
                Some(GLOBEX_TOKEN),
                &[],
                body,
            )
            .await;
        foreign.assert_error(StatusCode::NOT_FOUND, "not_found");
        let missing = client
            .send(
                method.clone(),
                &format!("/api/3/webhooks/{never}"),
                Some(GLOBEX_TOKEN),
                &[],
                body,
            )
            .await;
        // The same answer but for the id it names.
        assert_eq!(
            foreign.text.replace(&mine, "ID"),
            missing.text.replace(never, "ID"),
            "{method}"
        );
    }
    let read = client
        .get(&format!("/api/3/webhooks/{mine}"), ACME_TOKEN)
        .await;
    assert_eq!(read.json["webhook"]["name"], "acme", "unchanged");
    assert_eq!(read.header("etag"), Some("\"1\""));
    let globex = client.get("/api/3/webhooks", GLOBEX_TOKEN).await;
    assert_eq!(globex.json["meta"]["total"], "1");
    assert_eq!(globex.json["webhooks"][0]["id"], theirs.as_str());
    let acme = client.get("/api/3/webhooks", ACME_TOKEN).await;
    assert_eq!(acme.json["meta"]["total"], "1");
    assert_eq!(acme.json["webhooks"][0]["id"], mine.as_str());
}

/// What the store keeps beside the API fields — its own retry policy, signing secrets,
/// why it is off — survives an update through the API, and never shows in a response.
async fn an_update_keeps_the_rest<S: WebhookStore + Clone + 'static>(store: S) {
    let client = serve(Api::new(store.clone(), tokens()).into_router()).await;
    #[cfg_attr(not(feature = "signing"), allow(unused_mut))]
    let mut builder = Webhook::builder("Full", "https://full.example.com/hook")
        .events([EventKind::Subscribe])
        .sources(Source::ALL)
        .retry_policy(RetryPolicy::never())
        .header("x-tenant", "acme-tenant-value");
    #[cfg(feature = "signing")]
    let secret = posthook::sign::SigningSecret::generate().unwrap();
    #[cfg(feature = "signing")]
    {
        builder = builder.signing_secret(secret.clone());
    }
    let mut webhook = builder.build().unwrap();
    webhook.deactivate(Deactivation::Gone);
    let stored = store.create(ACME, webhook).await.unwrap();
    let path = format!("/api/3/webhooks/{}", stored.id());

    let read = client.get(&path, ACME_TOKEN).await;
    assert_eq!(read.json["webhook"]["deactivated"], "gone", "{}", read.text);
    let updated = client
        .put(
            &path,
            ACME_TOKEN,
            &json!({"webhook": {"url": "https://full.example.com/v2"}}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.json["webhook"]["deactivated"], "gone", "still off");
    for reply in [&read, &updated] {
        assert!(!reply.text.contains("acme-tenant-value"), "{}", reply.text);
        assert!(!reply.text.contains("whsec_"), "{}", reply.text);
    }
    let now = store.get(ACME, stored.id()).await.unwrap();
    assert_eq!(now.webhook.url().as_str(), "https://full.example.com/v2");
    assert_eq!(now.webhook.retry_policy(), Some(&RetryPolicy::never()));
    assert_eq!(now.webhook.deactivation(), Some(Deactivation::Gone));
    assert_eq!(now.webhook.headers()["x-tenant"], "acme-tenant-value");
    #[cfg(feature = "signing")]
    {
        assert_eq!(now.webhook.signing_secrets(), std::slice::from_ref(&secret));
        assert!(!read.text.contains(&secret.to_whsec()[6..]));
    }
}

macro_rules! suite {
    ($module:ident, $store:expr) => {
        mod $module {
            #[tokio::test]
            async fn create_read_update_delete() {
                let Some((store, _guard)) = $store().await else {
                    return;
                };
                super::create_read_update_delete(store).await;
            }

            #[tokio::test]
            async fn accounts_are_apart() {
                let Some((store, _guard)) = $store().await else {
                    return;
                };
                super::accounts_are_apart(store).await;
            }

            #[tokio::test]
            async fn an_update_keeps_the_rest() {
                let Some((store, _guard)) = $store().await else {
                    return;
                };
                super::an_update_keeps_the_rest(store).await;
            }
        }
    };
}

async fn memory() -> Option<(MemoryStore, ())> {
    Some((MemoryStore::new(), ()))
}

suite!(memory_store, super::memory);

#[cfg(feature = "sqlite")]
async fn sqlite() -> Option<(posthook::SqliteStore, temp::TempDir)> {
    let dir = temp::TempDir::new("posthook-api");
    let store = posthook::SqliteStore::open(
        dir.path().join("api.db"),
        posthook::Durability::ProcessCrash,
    )
    .await
    .unwrap();
    Some((store, dir))
}

#[cfg(feature = "sqlite")]
suite!(sqlite_store, super::sqlite);

#[cfg(feature = "postgres")]
async fn postgres() -> Option<(posthook::PostgresStore, pg::Schema)> {
    let schema = pg::schema().await?;
    let store = schema.store(4).await;
    Some((store, schema))
}

#[cfg(feature = "postgres")]
suite!(postgres_store, super::postgres);

// ---- the rest over MemoryStore ---------------------------------------------------------

/// `filters[name]`, `filters[url]`, `filters[listid]`, `limit` (default 20, at most 100),
/// `offset`, and `meta.total` counting every match on every page.
#[tokio::test]
async fn list_filters_and_pages() {
    let client = serve(Api::new(MemoryStore::new(), tokens()).into_router()).await;
    let mut ids = Vec::new();
    for n in 0..105u64 {
        let name = if n % 3 == 0 {
            format!("Zapier {n}")
        } else {
            format!("Make {n}")
        };
        let reply = client
            .post(
                "/api/3/webhooks",
                ACME_TOKEN,
                &json!({"webhook": {"name": name, "url": format!("https://hooks{}.example.com/{n}", n % 4),
                    "events": ["subscribe"], "sources": ["public"], "listid": (n % 5).to_string()}}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        ids.push(reply.json["webhook"]["id"].as_str().unwrap().to_owned());
    }
    client
        .create(
            GLOBEX_TOKEN,
            "Zapier (globex)",
            "https://hooks0.example.com/",
        )
        .await;

    let names = |reply: &Reply| -> Vec<String> {
        reply.json["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let page = client.get("/api/3/webhooks", ACME_TOKEN).await;
    assert_eq!(page.json["meta"]["total"], "105");
    let first: Vec<&str> = page.json["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(first, ids[..20], "20 by default, lowest id first");

    let page = client
        .get("/api/3/webhooks?limit=5&offset=100", ACME_TOKEN)
        .await;
    assert_eq!(page.json["meta"]["total"], "105");
    assert_eq!(
        names(&page),
        ["Make 100", "Make 101", "Zapier 102", "Make 103", "Make 104"]
    );
    let page = client.get("/api/3/webhooks?limit=1000", ACME_TOKEN).await;
    assert_eq!(
        page.json["webhooks"].as_array().unwrap().len(),
        100,
        "at most 100"
    );
    let page = client.get("/api/3/webhooks?limit=0", ACME_TOKEN).await;
    assert_eq!(page.json, json!({"webhooks": [], "meta": {"total": "105"}}));
    let page = client.get("/api/3/webhooks?offset=500", ACME_TOKEN).await;
    assert_eq!(page.json, json!({"webhooks": [], "meta": {"total": "105"}}));

    // filters[name]: contains, ignoring case; brackets percent-encoded or not.
    let page = client
        .get(
            "/api/3/webhooks?filters%5Bname%5D=zapIER&limit=100",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(page.json["meta"]["total"], "35");
    assert!(names(&page).iter().all(|n| n.starts_with("Zapier ")));
    let page = client
        .get(
            "/api/3/webhooks?filters[name]=Zapier%201&limit=100",
            ACME_TOKEN,
        )
        .await;
    // Zapier 12, 15, 18, 102 and the like: every Zapier whose number starts with 1.
    let want: Vec<String> = (0..105)
        .filter(|n| n % 3 == 0 && n.to_string().starts_with('1'))
        .map(|n| format!("Zapier {n}"))
        .collect();
    assert_eq!(names(&page), want);
    let page = client
        .get(
            "/api/3/webhooks?filters[url]=HOOKS2.example&limit=100",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(page.json["meta"]["total"], "26");
    assert!(
        page.json["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["url"].as_str().unwrap().contains("hooks2"))
    );
    let page = client
        .get("/api/3/webhooks?filters[listid]=3&limit=100", ACME_TOKEN)
        .await;
    assert_eq!(page.json["meta"]["total"], "21");
    assert!(
        page.json["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["listid"] == "3")
    );
    let page = client
        .get("/api/3/webhooks?filters[listid]=0&limit=100", ACME_TOKEN)
        .await;
    assert_eq!(page.json["meta"]["total"], "21", "0: bound to all lists");
    let page = client
        .get(
            "/api/3/webhooks?filters[name]=zapier&filters[listid]=0&limit=3",
            ACME_TOKEN,
        )
        .await;
    assert_eq!(page.json["meta"]["total"], "7", "0, 15, 30, ..., 90");
    assert_eq!(names(&page), ["Zapier 0", "Zapier 15", "Zapier 30"]);
    let page = client
        .get("/api/3/webhooks?filters[name]=nothing-like-it", ACME_TOKEN)
        .await;
    assert_eq!(page.json, json!({"webhooks": [], "meta": {"total": "0"}}));
    // Unknown parameters are ignored, as ActiveCampaign does.
    let page = client
        .get("/api/3/webhooks?orders[cdate]=DESC&limit=1", ACME_TOKEN)
        .await;
    assert_eq!(page.status, StatusCode::OK);

    for (query, parameter) in [
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("offset=1.5", "offset"),
        ("filters[listid]=all", "filters[listid]"),
    ] {
        let reply = client
            .get(&format!("/api/3/webhooks?{query}"), ACME_TOKEN)
            .await;
        let error = reply.assert_error(StatusCode::BAD_REQUEST, "bad_request");
        assert_eq!(error["source"]["parameter"], parameter, "{query}");
    }
}

/// Both paths list the 25 ids, sorted as ActiveCampaign lists them, with `meta.total` 25.
#[tokio::test]
async fn webhook_events_at_both_paths() {
    let client = serve(Api::new(MemoryStore::new(), tokens()).into_router()).await;
    let mut want: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    want.sort_unstable();
    for path in ["/api/3/webhook/events", "/api/3/webhooks/events"] {
        let reply = client.get(path, GLOBEX_TOKEN).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        assert_eq!(
            reply.json,
            json!({"webhookEvents": want, "meta": {"total": 25}}),
            "{path}"
        );
        client
            .send(Method::GET, path, None, &[], None)
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

/// Without a token, with an empty one, with a wrong one (one character off, or another
/// account's digest passed as the token): 401 on every endpoint, before anything else.
#[tokio::test]
async fn unauthorized_without_a_valid_token() {
    let store = MemoryStore::new();
    let client = serve(Api::new(store.clone(), tokens()).into_router()).await;
    let id = client
        .create(ACME_TOKEN, "acme", "https://acme.example.com/")
        .await;
    let wrong = format!("{}X", &ACME_TOKEN[..ACME_TOKEN.len() - 1]);
    let digest: String = Tokens::sha256(ACME_TOKEN)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let body = json!({"webhook": {"name": "x", "url": "https://x.example.com/",
        "events": ["open"], "sources": ["api"]}});
    let item = format!("/api/3/webhooks/{id}");
    for (method, path) in [
        (Method::GET, "/api/3/webhooks"),
        (Method::POST, "/api/3/webhooks"),
        (Method::GET, item.as_str()),
        (Method::PUT, item.as_str()),
        (Method::DELETE, item.as_str()),
        (Method::GET, "/api/3/webhook/events"),
        (Method::GET, "/api/3/webhooks/events"),
    ] {
        for token in [None, Some(""), Some(wrong.as_str()), Some(digest.as_str())] {
            let reply = client
                .send(method.clone(), path, token, &[], Some(&body))
                .await;
            reply.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
            assert_eq!(reply.header("www-authenticate"), Some("Api-Token"));
            assert!(!reply.text.contains("globex") && !reply.text.contains("acme"));
        }
    }
    let listed = store
        .list(
            ACME,
            &posthook::WebhookFilter::new(),
            posthook::Page::first(10),
        )
        .await
        .unwrap();
    assert_eq!(listed.total, 1, "nothing created, changed or deleted");
    assert_eq!(listed.webhooks[0].version, 1);
}

/// A URL outside the allowed set: 422 naming the character, its code point and its byte,
/// at `/data/attributes/url`; on create and on update.
#[tokio::test]
async fn a_bad_url_names_the_character_and_its_byte() {
    let client = serve(Api::new(MemoryStore::new(), tokens()).into_router()).await;
    let create = |url: &str| json!({"webhook": {"name": "n", "url": url, "events": ["open"], "sources": ["api"]}});
    for (url, detail) in [
        (
            "https://example.com/a b",
            "invalid character ' ' at byte 21 (U+0020)",
        ),
        (
            "https://example.com/{id}",
            "invalid character '{' at byte 20 (U+007B)",
        ),
        (
            "https://example.com/caffè",
            "invalid character 'è' at byte 24 (U+00E8)",
        ),
        (
            "https://example.com/%zz",
            "invalid percent-escape at byte 20",
        ),
        ("ftp://example.com/", "unsupported scheme \"ftp\" at byte 0"),
    ] {
        let reply = client
            .post("/api/3/webhooks", ACME_TOKEN, &create(url))
            .await;
        let error = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "field_invalid");
        assert!(
            error["detail"].as_str().unwrap().starts_with(detail),
            "{url}: {error}"
        );
        assert_eq!(error["source"]["pointer"], "/data/attributes/url");
        assert_eq!(error["title"], "The webhook URL is invalid");
        assert_eq!(reply.errors().len(), 1, "{}", reply.text);
    }
    let id = client
        .create(ACME_TOKEN, "ok", "https://example.com/ok")
        .await;
    let reply = client
        .put(
            &format!("/api/3/webhooks/{id}"),
            ACME_TOKEN,
            &json!({"webhook": {"url": "https://example.com/a|b"}}),
        )
        .await;
    let error = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "field_invalid");
    assert_eq!(error["detail"], "invalid character '|' at byte 21 (U+007C)");
    let read = client
        .get(&format!("/api/3/webhooks/{id}"), ACME_TOKEN)
        .await;
    assert_eq!(
        read.json["webhook"]["url"], "https://example.com/ok",
        "unchanged"
    );
    assert_eq!(read.header("etag"), Some("\"1\""));

    // With ActiveCampaign's policy, plain http is refused too.
    let client = serve(
        Api::new(MemoryStore::new(), tokens())
            .url_policy(posthook::UrlPolicy::activecampaign())
            .into_router(),
    )
    .await;
    let reply = client
        .post(
            "/api/3/webhooks",
            ACME_TOKEN,
            &create("http://example.com/"),
        )
        .await;
    let error = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "field_invalid");
    assert!(
        error["detail"].as_str().unwrap().contains("https"),
        "{error}"
    );
}

/// Unknown events and sources are named, each at its own pointer; a blank name, no events,
/// no sources, a missing field, a bad `listid` and a header a webhook cannot have are 422
/// too, every problem of a request in one answer.
#[tokio::test]
async fn every_bad_field_is_a_422() {
    let client = serve(Api::new(MemoryStore::new(), tokens()).into_router()).await;
    let reply = client
        .post(
            "/api/3/webhooks",
            ACME_TOKEN,
            &json!({"webhook": {"name": "n", "url": "https://example.com/",
                "events": ["subscribe", "contact_add", 7], "sources": ["public", "robot"]}}),
        )
        .await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "field_invalid");
    let errors: Vec<(String, String)> = reply
        .errors()
        .iter()
        .map(|e| {
            (
                e["source"]["pointer"].as_str().unwrap().to_owned(),
                e["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(errors.len(), 3, "{}", reply.text);
    assert_eq!(errors[0].0, "/data/attributes/events/1");
    assert!(errors[0].1.contains("\"contact_add\""), "{}", errors[0].1);
    assert_eq!(errors[1].0, "/data/attributes/events/2");
    assert_eq!(errors[2].0, "/data/attributes/sources/1");
    assert!(errors[2].1.contains("\"robot\""), "{}", errors[2].1);

    let cases: Vec<(Value, Vec<(&str, &str)>)> = vec![
        (
            json!({"name": "  ", "url": "https://e.example/", "events": [], "sources": []}),
            vec![
                ("field_invalid", "/data/attributes/name"),
                ("field_invalid", "/data/attributes/events"),
                ("field_invalid", "/data/attributes/sources"),
            ],
        ),
        (
            json!({}),
            vec![
                ("field_missing", "/data/attributes/name"),
                ("field_missing", "/data/attributes/url"),
                ("field_missing", "/data/attributes/events"),
                ("field_missing", "/data/attributes/sources"),
            ],
        ),
        (
            json!({"name": 5, "url": ["x"], "events": "open", "sources": ["api"], "listid": "all"}),
            vec![
                ("field_invalid", "/data/attributes/name"),
                ("field_invalid", "/data/attributes/url"),
                ("field_invalid", "/data/attributes/events"),
                ("field_invalid", "/data/attributes/listid"),
            ],
        ),
        (
            json!({"name": "n", "url": "https://e.example/", "events": ["open"], "sources": ["api"],
                "listid": -3, "headers": {"Content-Type": "text/plain", "x-ok": "fine", "x-bad": "a\nb"}}),
            vec![
                ("field_invalid", "/data/attributes/listid"),
                ("field_invalid", "/data/attributes/headers/Content-Type"),
                ("field_invalid", "/data/attributes/headers/x-bad"),
            ],
        ),
    ];
    for (webhook, want) in cases {
        let reply = client
            .post(
                "/api/3/webhooks",
                ACME_TOKEN,
                &json!({ "webhook": webhook }),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            reply.text
        );
        let got: Vec<(&str, &str)> = reply
            .errors()
            .iter()
            .map(|e| {
                (
                    e["code"].as_str().unwrap(),
                    e["source"]["pointer"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want, "{webhook}: {}", reply.text);
    }
    let listed = client.get("/api/3/webhooks", ACME_TOKEN).await;
    assert_eq!(listed.json["meta"]["total"], "0", "nothing was created");
}

/// A body that is not JSON, or not `{"webhook": {...}}`: 400, on create and on update.
#[tokio::test]
async fn bad_json_is_a_400() {
    let client = serve(Api::new(MemoryStore::new(), tokens()).into_router()).await;
    let id = client
        .create(ACME_TOKEN, "ok", "https://example.com/ok")
        .await;
    for body in [
        "{\"webhook\": {\"name\": ",
        "not json at all",
        "",
        "[]",
        "{\"hook\": {}}",
        "{\"webhook\": \"x\"}",
        "\u{FEFF}{}",
    ] {
        for (method, path) in [
            (Method::POST, "/api/3/webhooks".to_owned()),
            (Method::PUT, format!("/api/3/webhooks/{id}")),
        ] {
            let reply = client
                .send_body(method, &path, Some(ACME_TOKEN), &[], Body::from(body))
                .await;
            reply.assert_error(StatusCode::BAD_REQUEST, "bad_request");
        }
    }
    let reply = client
        .send_body(
            Method::POST,
            "/api/3/webhooks",
            Some(ACME_TOKEN),
            &[],
            Body::from("{\"webhook\": {\"name\": \"n\",\n  \"url\": }}"),
        )
        .await;
    let error = reply.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        error["detail"].as_str().unwrap().contains("line 2"),
        "{error}"
    );
}

/// A body over the limit — 10 MB with a length, or streamed without one — is 413, and
/// does not reach the store.
#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let store = MemoryStore::new();
    let client = serve(Api::new(store.clone(), tokens()).into_router()).await;
    let id = client
        .create(ACME_TOKEN, "ok", "https://example.com/ok")
        .await;
    let big = || {
        let name = "x".repeat(10 * 1024 * 1024);
        json!({"webhook": {"name": name, "url": "https://example.com/",
            "events": ["open"], "sources": ["api"]}})
        .to_string()
    };
    for (method, path) in [
        (Method::POST, "/api/3/webhooks".to_owned()),
        (Method::PUT, format!("/api/3/webhooks/{id}")),
    ] {
        let reply = client
            .send_body(
                method.clone(),
                &path,
                Some(ACME_TOKEN),
                &[],
                Body::from(big()),
            )
            .await;
        let error = reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
        assert!(
            error["detail"].as_str().unwrap().contains("65536"),
            "{error}"
        );
        // Streamed in 64 KiB chunks, with no length given.
        let chunks: Vec<Result<Bytes, std::io::Error>> = big()
            .into_bytes()
            .chunks(64 * 1024)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let stream = Body::from_stream(futures_util::stream::iter(chunks));
        let reply = client
            .send_body(method, &path, Some(ACME_TOKEN), &[], stream)
            .await;
        reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }
    let listed = client.get("/api/3/webhooks", ACME_TOKEN).await;
    assert_eq!(listed.json["meta"]["total"], "1");
    assert_eq!(listed.json["webhooks"][0]["name"], "ok");

    // A smaller limit of one's own.
    let client = serve(Api::new(store, tokens()).body_limit(100).into_router()).await;
    let body = json!({"webhook": {"name": "a name long enough to go over one hundred bytes in all",
        "url": "https://example.com/", "events": ["open"], "sources": ["api"]}});
    client
        .post("/api/3/webhooks", ACME_TOKEN, &body)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

/// `ETag: "<version>"` on every webhook answer; `If-Match` with a stale version is 412
/// (with the current ETag) on PUT and DELETE; without it, or with `*`, the change applies.
#[tokio::test]
async fn if_match_refuses_a_stale_version() {
    let client = serve(Api::new(MemoryStore::new(), tokens()).into_router()).await;
    let id = client
        .create(ACME_TOKEN, "v1", "https://example.com/")
        .await;
    let path = format!("/api/3/webhooks/{id}");
    let rename = |name: &str| json!({"webhook": {"name": name}});
    let put = |if_match: &'static str, name: &str| {
        let body = rename(name);
        let client = &client;
        let path = path.clone();
        async move {
            client
                .send(
                    Method::PUT,
                    &path,
                    Some(ACME_TOKEN),
                    &[("If-Match", if_match)],
                    Some(&body),
                )
                .await
        }
    };

    let reply = put("\"1\"", "v2").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("etag"), Some("\"2\""));
    // A second editor, still at version 1.
    let stale = put("\"1\"", "lost").await;
    let error = stale.assert_error(StatusCode::PRECONDITION_FAILED, "precondition_failed");
    assert!(
        error["detail"].as_str().unwrap().contains("version 2"),
        "{error}"
    );
    assert_eq!(stale.header("etag"), Some("\"2\""));
    // A weak tag never matches; one of several that does, does.
    put("W/\"2\"", "lost")
        .await
        .assert_error(StatusCode::PRECONDITION_FAILED, "precondition_failed");
    let reply = put("\"7\", \"2\"", "v3").await;
    assert_eq!(reply.header("etag"), Some("\"3\""), "{}", reply.text);
    let reply = put("*", "v4").await;
    assert_eq!(reply.header("etag"), Some("\"4\""), "{}", reply.text);
    // Without If-Match, as ActiveCampaign's clients call it.
    let reply = client.put(&path, ACME_TOKEN, &rename("v5")).await;
    assert_eq!(reply.header("etag"), Some("\"5\""), "{}", reply.text);
    put("5", "x")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let read = client.get(&path, ACME_TOKEN).await;
    assert_eq!(
        read.json["webhook"]["name"], "v5",
        "no refused update got in"
    );
    assert_eq!(read.header("etag"), Some("\"5\""));

    let delete = |if_match: &'static str| {
        let client = &client;
        let path = path.clone();
        async move {
            client
                .send(
                    Method::DELETE,
                    &path,
                    Some(ACME_TOKEN),
                    &[("If-Match", if_match)],
                    None,
                )
                .await
        }
    };
    let stale = delete("\"4\"").await;
    stale.assert_error(StatusCode::PRECONDITION_FAILED, "precondition_failed");
    assert_eq!(stale.header("etag"), Some("\"5\""));
    delete("\"3\", \"4\"")
        .await
        .assert_error(StatusCode::PRECONDITION_FAILED, "precondition_failed");
    assert_eq!(
        client.get(&path, ACME_TOKEN).await.status,
        StatusCode::OK,
        "still there"
    );
    let deleted = delete("\"5\"").await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(deleted.json, json!({}));
    delete("\"5\"")
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
}

/// The account's webhook limit: one more is 409; another account is not affected.
#[tokio::test]
async fn the_webhook_limit_per_account() {
    let client =
        serve(Api::new(MemoryStore::new().with_max_webhooks(2), tokens()).into_router()).await;
    client
        .create(ACME_TOKEN, "one", "https://example.com/1")
        .await;
    client
        .create(ACME_TOKEN, "two", "https://example.com/2")
        .await;
    let reply = client
        .post(
            "/api/3/webhooks",
            ACME_TOKEN,
            &json!({"webhook": {"name": "three", "url": "https://example.com/3",
                "events": ["open"], "sources": ["api"]}}),
        )
        .await;
    let error = reply.assert_error(StatusCode::CONFLICT, "limit_reached");
    assert!(
        error["detail"].as_str().unwrap().contains("at most 2"),
        "{error}"
    );
    client
        .create(GLOBEX_TOKEN, "theirs", "https://example.com/g")
        .await;
    let listed = client.get("/api/3/webhooks", ACME_TOKEN).await;
    assert_eq!(listed.json["meta"]["total"], "2");
}

/// A store that fails every call with `error`.
#[derive(Clone)]
struct Failing(StoreError);

#[async_trait::async_trait]
impl WebhookStore for Failing {
    async fn create(
        &self,
        _: AccountId,
        _: Webhook,
    ) -> Result<posthook::StoredWebhook, WebhookStoreError> {
        Err(self.0.clone().into())
    }
    async fn get(
        &self,
        _: AccountId,
        _: posthook::WebhookId,
    ) -> Result<posthook::StoredWebhook, WebhookStoreError> {
        Err(self.0.clone().into())
    }
    async fn update(
        &self,
        _: AccountId,
        _: posthook::WebhookId,
        _: u64,
        _: Webhook,
    ) -> Result<posthook::StoredWebhook, WebhookStoreError> {
        Err(self.0.clone().into())
    }
    async fn delete(
        &self,
        _: AccountId,
        _: posthook::WebhookId,
        _: Option<u64>,
    ) -> Result<posthook::StoredWebhook, WebhookStoreError> {
        Err(self.0.clone().into())
    }
    async fn list(
        &self,
        _: AccountId,
        _: &posthook::WebhookFilter,
        _: posthook::Page,
    ) -> Result<posthook::WebhookPage, WebhookStoreError> {
        Err(self.0.clone().into())
    }
    async fn changes(&self, _: u64, _: usize) -> Result<Vec<posthook::Change>, WebhookStoreError> {
        Err(self.0.clone().into())
    }
    async fn last_change(&self) -> Result<u64, WebhookStoreError> {
        Err(self.0.clone().into())
    }
    async fn all_after(
        &self,
        _: Option<posthook::WebhookId>,
        _: usize,
    ) -> Result<Vec<posthook::StoredWebhook>, WebhookStoreError> {
        Err(self.0.clone().into())
    }
}

/// A store that cannot be reached is 503 with `Retry-After` on every endpoint that reads
/// it; one that fails otherwise is 500 without its error text; neither for a bad request.
#[tokio::test]
async fn store_failures() {
    let body = json!({"webhook": {"name": "n", "url": "https://example.com/",
        "events": ["open"], "sources": ["api"]}});
    for (error, status, code) in [
        (
            StoreError::unavailable("connection refused (db.internal:5432)"),
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        ),
        (
            StoreError::database("relation posthook_webhooks does not exist"),
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
        ),
    ] {
        let client = serve(Api::new(Failing(error), tokens()).into_router()).await;
        for (method, path) in [
            (Method::GET, "/api/3/webhooks"),
            (Method::POST, "/api/3/webhooks"),
            (Method::GET, "/api/3/webhooks/1"),
            (Method::PUT, "/api/3/webhooks/1"),
            (Method::DELETE, "/api/3/webhooks/1"),
        ] {
            let reply = client
                .send(method.clone(), path, Some(ACME_TOKEN), &[], Some(&body))
                .await;
            reply.assert_error(status, code);
            assert!(!reply.text.contains("db.internal") && !reply.text.contains("relation"));
            if status == StatusCode::SERVICE_UNAVAILABLE {
                assert_eq!(reply.header("retry-after"), Some("1"), "{method} {path}");
            }
            // A bad body is still the client's fault, whatever the store: 400, not 5xx.
            if method == Method::POST || method == Method::PUT {
                client
                    .send_body(method, path, Some(ACME_TOKEN), &[], Body::from("{"))
                    .await
                    .assert_error(StatusCode::BAD_REQUEST, "bad_request");
            }
        }
        // The events need no store.
        let events = client.get("/api/3/webhook/events", ACME_TOKEN).await;
        assert_eq!(events.status, StatusCode::OK);
    }
}

/// With `Api::deliveries`, a DELETE cancels the webhook's pending deliveries; another
/// account's DELETE of the same id cancels nothing.
#[tokio::test]
async fn delete_cancels_pending_deliveries() {
    let store = MemoryStore::new();
    let client = serve(
        Api::new(store.clone(), tokens())
            .deliveries(store.clone())
            .into_router(),
    )
    .await;
    let id = client
        .create(ACME_TOKEN, "crm", "https://crm.example.com/")
        .await;
    let stored = store
        .get(ACME, id.parse::<u64>().unwrap().into())
        .await
        .unwrap();
    let mut registry = Registry::new();
    registry.insert(stored.webhook.clone());
    let outbox = Outbox::new(store.clone());
    for _ in 0..3 {
        outbox
            .publish(&registry, &Event::sample(EventKind::Subscribe))
            .await
            .unwrap();
    }
    assert_eq!(store.counts(Some(stored.id())).await.unwrap().pending, 3);

    let path = format!("/api/3/webhooks/{id}");
    client
        .delete(&path, GLOBEX_TOKEN)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(store.counts(Some(stored.id())).await.unwrap().pending, 3);
    let deleted = client.delete(&path, ACME_TOKEN).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    let counts = store.counts(Some(stored.id())).await.unwrap();
    assert_eq!((counts.pending, counts.cancelled), (0, 3));
}

/// A method a path does not take is 405 with `Allow`, in the same error shape; an id that
/// is not a number is 404.
#[tokio::test]
async fn other_methods_and_odd_ids() {
    let client = serve(Api::new(MemoryStore::new(), tokens()).into_router()).await;
    let id = client.create(ACME_TOKEN, "x", "https://example.com/").await;
    let reply = client
        .send(
            Method::PATCH,
            &format!("/api/3/webhooks/{id}"),
            Some(ACME_TOKEN),
            &[],
            None,
        )
        .await;
    reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let allow: BTreeSet<&str> = reply
        .header("allow")
        .unwrap()
        .split(',')
        .map(str::trim)
        .collect();
    assert_eq!(allow, BTreeSet::from(["DELETE", "GET", "HEAD", "PUT"]));
    let reply = client
        .send(
            Method::POST,
            "/api/3/webhook/events",
            Some(ACME_TOKEN),
            &[],
            None,
        )
        .await;
    reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    for odd in ["abc", "0", "-1", "1.0", "99999999999999999999999", "%FF"] {
        client
            .get(&format!("/api/3/webhooks/{odd}"), ACME_TOKEN)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
}

// ---- docs/openapi.yaml ---------------------------------------------------------------

/// Every path and method of `docs/openapi.yaml` is served (not 404, not 405), answers
/// with a status the file documents, and is refused without a token as the file says;
/// every other method on those paths is 405, and neighbouring paths are not served.
#[tokio::test]
async fn openapi_describes_what_is_served() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml")).unwrap();
    let doc: Value = serde_norway::from_str(&text).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.0"),
        "OpenAPI 3.0"
    );
    let paths = doc["paths"].as_object().unwrap();
    let client = serve(Api::new(MemoryStore::new(), tokens()).into_router()).await;
    let all = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ];
    let mut served = BTreeSet::new();
    for (template, item) in paths {
        let item = item.as_object().unwrap();
        for method in &all {
            let key = method.as_str().to_ascii_lowercase();
            // A fresh webhook for each call, so that `{id}` names one that exists.
            let id = client
                .create(ACME_TOKEN, "openapi", "https://example.com/")
                .await;
            let path = template.replace("{id}", &id);
            let body = json!({"webhook": {"name": "n", "url": "https://example.com/",
                "events": ["open"], "sources": ["api"]}});
            let reply = client
                .send(method.clone(), &path, Some(ACME_TOKEN), &[], Some(&body))
                .await;
            let Some(operation) = item.get(&key) else {
                assert_eq!(
                    reply.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {template} is served but not in docs/openapi.yaml"
                );
                continue;
            };
            served.insert(format!("{method} {template}"));
            let responses = operation["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {template}: no responses"));
            assert!(
                responses.contains_key(reply.status.as_str()),
                "{method} {template} answered {} ({}), not documented",
                reply.status,
                reply.text
            );
            assert!(
                reply.status.is_success(),
                "{method} {template}: {}",
                reply.text
            );
            let unauthorized = client
                .send(method.clone(), &path, None, &[], Some(&body))
                .await;
            assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);
            assert!(
                responses.contains_key("401"),
                "{method} {template}: 401 not documented"
            );
            assert!(operation["operationId"].is_string(), "{method} {template}");
        }
    }
    assert_eq!(
        served,
        BTreeSet::from(
            [
                "GET /api/3/webhooks",
                "POST /api/3/webhooks",
                "GET /api/3/webhooks/{id}",
                "PUT /api/3/webhooks/{id}",
                "DELETE /api/3/webhooks/{id}",
                "GET /api/3/webhook/events",
                "GET /api/3/webhooks/events",
            ]
            .map(String::from)
        )
    );
    for path in [
        "/api/3/webhook",
        "/api/3/webhooks/1/events",
        "/api/3/webhook/events/1",
        "/api/3/webhooks/",
        "/api/3",
        "/api/2/webhooks",
    ] {
        let reply = client.get(path, ACME_TOKEN).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path} is served but not described"
        );
    }
    // The schemas the file names exist.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in text
        .split("#/components/schemas/")
        .skip(1)
        .map(|rest| rest.split(['\'', '"', '\n']).next().unwrap())
    {
        assert!(
            schemas.contains_key(name),
            "schema {name} is referenced but not defined"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["ApiToken"],
        json!({"type": "apiKey", "in": "header", "name": "Api-Token"})
    );
}

// ---- the api_server example ------------------------------------------------------------

/// The example end to end: started with `--port 0`, it prints `listening on http://ADDR`
/// first; a webhook created through its API with a token receives a published event,
/// signed, from its worker; another token does not see the webhook.
#[cfg(all(feature = "http", feature = "signing", feature = "sqlite"))]
#[tokio::test]
async fn the_api_server_example() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    /// Killed when the test ends, however it ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    let binary = example_binary("api_server");
    let data = temp::TempDir::new("posthook-api-server");
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mut child = Command::new(&binary)
        .args([
            "--port",
            "0",
            "--allow-private",
            "--secret",
            secret,
            "--data",
        ])
        .arg(data.path())
        .args(["--token", &format!("1:{ACME_TOKEN}")])
        .args(["--token", &format!("2:{GLOBEX_TOKEN}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let stdout = child.stdout.take().unwrap();
    let _child = Killed(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    // The rest of its output (a line per delivery) is read in the background.
    let (said, mut hear) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = said.send(line);
        }
    });

    // A receiver that verifies the signature.
    let (got, mut arrived) = tokio::sync::mpsc::unbounded_channel();
    let receiver = posthook::receive::Receiver::new()
        .secret(posthook::sign::SigningSecret::parse(secret).unwrap());
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let got = got.clone();
            let verified = receiver
                .receive(&headers, &body, std::time::SystemTime::now())
                .is_ok();
            async move {
                let _ = got.send((verified, body));
                StatusCode::OK
            }
        }),
    );
    let router = router.route("/gone", axum::routing::post(|| async { StatusCode::GONE }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let client = Client::new(base);
    let reply = client
        .post(
            "/api/3/webhooks",
            ACME_TOKEN,
            &json!({"webhook": {"name": "local", "url": hook_url,
                "events": ["subscribe"], "sources": ["public", "admin", "api", "system"]}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let listed = client
        .get("/api/3/webhooks?filters[name]=loc", ACME_TOKEN)
        .await;
    assert_eq!(listed.json["meta"]["total"], "1", "{}", listed.text);
    let theirs = client.get("/api/3/webhooks", GLOBEX_TOKEN).await;
    assert_eq!(theirs.json["meta"]["total"], "0");

    // The registries follow the store (SQLite: polled); publish until the webhook matches.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let published = client
            .post("/api/3/_publish", ACME_TOKEN, &json!({"type": "subscribe"}))
            .await;
        assert_eq!(published.status, StatusCode::OK, "{}", published.text);
        if published.json["deliveries"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never matched: {}",
            published.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (verified, body) = tokio::time::timeout(Duration::from_secs(10), arrived.recv())
        .await
        .expect("no delivery arrived")
        .unwrap();
    assert!(verified, "signed with the --secret");
    assert!(body.starts_with(b"type=subscribe&"), "{body:?}");
    let line = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let line = hear.recv().await.expect("the example's output ended");
            if line.contains("delivered") {
                return line;
            }
        }
    })
    .await
    .expect("the example printed no delivery");
    assert!(line.contains("account 1"), "{line}");
    // Globex's publish matches nothing.
    let published = client
        .post(
            "/api/3/_publish",
            GLOBEX_TOKEN,
            &json!({"type": "subscribe"}),
        )
        .await;
    assert_eq!(published.json["deliveries"], 0, "{}", published.text);
    client
        .post("/api/3/_publish", "wrong", &json!({"type": "subscribe"}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    // A webhook whose endpoint answers 410 Gone is switched off in the store: the API
    // shows it deactivated, and publishing stops matching it.
    let gone_url = hook_url.replace("/hook", "/gone");
    let reply = client
        .post(
            "/api/3/webhooks",
            ACME_TOKEN,
            &json!({"webhook": {"name": "gone", "url": gone_url,
                "events": ["subscribe"], "sources": ["public", "admin", "api", "system"]}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    let gone_id = reply.json["webhook"]["id"].as_str().unwrap().to_owned();
    // Publishes until an event makes `n` deliveries (the registries follow the store).
    let publish_until = async |n: u64, never: &str| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while client
            .post("/api/3/_publish", ACME_TOKEN, &json!({"type": "subscribe"}))
            .await
            .json["deliveries"]
            != n
        {
            assert!(tokio::time::Instant::now() < deadline, "{never}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    publish_until(2, "the new webhook never matched").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = client
            .get(&format!("/api/3/webhooks/{gone_id}"), ACME_TOKEN)
            .await;
        if got.json["webhook"]["deactivated"] == "gone" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never switched off: {}",
            got.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    publish_until(1, "the gone webhook still matches").await;
}

/// The example's binary (`target/debug/deps/..` -> `target/debug/examples/NAME`), built
/// again with this test's features when its source is newer: `cargo test --test api`
/// alone does not build examples.
#[cfg(all(feature = "http", feature = "signing", feature = "sqlite"))]
fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(std::path::Path::parent).unwrap();
    let path = profile.join("examples").join(name);
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.rs"));
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&path).is_none_or(|built| modified(&source).is_some_and(|s| s > built)) {
        let features: Vec<&str> = [
            ("api", cfg!(feature = "api")),
            ("http", cfg!(feature = "http")),
            ("signing", cfg!(feature = "signing")),
            ("sqlite", cfg!(feature = "sqlite")),
            ("postgres", cfg!(feature = "postgres")),
            ("tokio", cfg!(feature = "tokio")),
            ("tracing", cfg!(feature = "tracing")),
        ]
        .into_iter()
        .filter_map(|(feature, on)| on.then_some(feature))
        .collect();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--example", name, "--features"])
            .arg(features.join(","))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(
            status.success() && path.is_file(),
            "could not build {}",
            path.display()
        );
    }
    path
}
