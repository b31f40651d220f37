//! The webhook JSON: what a request may send (checked field by field, every problem
//! reported) and what a response writes.

use http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::{ApiError, ErrorObject};
use crate::webhook::check_header;
use crate::{
    Deactivation, EventKind, EventSet, ListScope, Source, SourceSet, UrlPolicy, Webhook, WebhookUrl,
};

/// The fields of `{"webhook": {...}}` the API reads; each `None` when absent. Other keys
/// (`id`, `cdate`, `links`, ...) are ignored, as the server sets them.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    name: Option<Value>,
    url: Option<Value>,
    events: Option<Value>,
    sources: Option<Value>,
    listid: Option<Value>,
    headers: Option<Value>,
}

impl Fields {
    /// The fields of a request body: 400 unless it is JSON of the form `{"webhook": {...}}`.
    pub(crate) fn parse(body: &[u8]) -> Result<Fields, ApiError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_body(format!(
                "the body is not JSON (line {}, column {}): {}",
                e.line(),
                e.column(),
                short(&e)
            ))
        })?;
        let Value::Object(mut outer) = value else {
            return Err(ApiError::bad_body(
                r#"the body must be a JSON object: {"webhook": {...}}"#,
            ));
        };
        let Some(Value::Object(mut webhook)) = outer.remove("webhook") else {
            return Err(ApiError::bad_body(
                r#"the body must hold the webhook as an object: {"webhook": {...}}"#,
            ));
        };
        let mut take = |key: &str| webhook.remove(key);
        Ok(Fields {
            name: take("name"),
            url: take("url"),
            events: take("events"),
            sources: take("sources"),
            listid: take("listid"),
            headers: take("headers"),
        })
    }
}

/// serde_json's message without its " at line L column C" (given apart).
fn short(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn pointer(field: &str) -> String {
    format!("/data/attributes/{field}")
}

/// A JSON pointer token: `~` and `/` escaped (RFC 6901).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The field's name in a title, and the verb that goes with it.
fn noun(field: &str) -> (&str, &'static str) {
    match field {
        "url" => ("URL", "is"),
        "listid" => ("list id", "is"),
        "events" | "sources" | "headers" => (field, "are"),
        _ => (field, "is"),
    }
}

fn missing(field: &str) -> ErrorObject {
    let (noun, verb) = noun(field);
    ErrorObject::new(
        "field_missing",
        format!("The webhook {noun} {verb} required"),
        format!("{field} is required"),
    )
    .at(pointer(field))
}

fn invalid(field: &str, detail: impl Into<String>) -> ErrorObject {
    let (noun, verb) = noun(field);
    ErrorObject::new(
        "field_invalid",
        format!("The webhook {noun} {verb} invalid"),
        detail,
    )
    .at(pointer(field))
}

/// The webhook the request describes: the fields it gives, the others from `base` (an
/// update) or required (a create: `name`, `url`, `events`, `sources`). 422 with one error
/// per problem found.
pub(crate) fn build(
    fields: &Fields,
    base: Option<&Webhook>,
    policy: UrlPolicy,
) -> Result<Webhook, ApiError> {
    let mut errors = Vec::new();

    let name = match (&fields.name, base) {
        (Some(Value::String(name)), _) => {
            if name.trim().is_empty() {
                errors.push(invalid("name", "the name is blank"));
            }
            Some(name.clone())
        }
        (Some(_), _) => {
            errors.push(invalid("name", "the name must be a string"));
            None
        }
        (None, Some(base)) => Some(base.name().to_owned()),
        (None, None) => {
            errors.push(missing("name"));
            None
        }
    };

    let url = match (&fields.url, base) {
        (Some(Value::String(url)), _) => match WebhookUrl::parse_with(url, policy) {
            Ok(_) => Some(url.clone()),
            Err(error) => {
                let detail = match error.character() {
                    Some(c) => format!("{error} (U+{:04X})", u32::from(c)),
                    None => error.to_string(),
                };
                errors.push(invalid("url", detail));
                None
            }
        },
        (Some(_), _) => {
            errors.push(invalid("url", "the URL must be a string"));
            None
        }
        (None, Some(base)) => Some(base.url().as_str().to_owned()),
        (None, None) => {
            errors.push(missing("url"));
            None
        }
    };

    let events = match (&fields.events, base) {
        (Some(value), _) => ids(value, "events", &mut errors, |id| {
            id.parse::<EventKind>().map_err(|e| e.to_string())
        })
        .map(|kinds| kinds.into_iter().collect::<EventSet>()),
        (None, Some(base)) => Some(base.events()),
        (None, None) => {
            errors.push(missing("events"));
            None
        }
    };
    if events.is_some_and(|e| e.is_empty()) {
        errors.push(invalid("events", "at least one event is required"));
    }

    let sources = match (&fields.sources, base) {
        (Some(value), _) => ids(value, "sources", &mut errors, |id| {
            id.parse::<Source>().map_err(|e| e.to_string())
        })
        .map(|sources| sources.into_iter().collect::<SourceSet>()),
        (None, Some(base)) => Some(base.sources()),
        (None, None) => {
            errors.push(missing("sources"));
            None
        }
    };
    if sources.is_some_and(|s| s.is_empty()) {
        errors.push(invalid("sources", "at least one source is required"));
    }

    let scope = match &fields.listid {
        Some(value) => list_scope(value).unwrap_or_else(|| {
            errors.push(invalid(
                "listid",
                "listid must be a list id: a whole number, 0 for all lists",
            ));
            ListScope::All
        }),
        None => base.map_or(ListScope::All, Webhook::scope),
    };

    let headers: Vec<(String, String)> = match &fields.headers {
        Some(Value::Object(map)) => header_pairs(map, &mut errors),
        Some(Value::Null) => Vec::new(),
        Some(_) => {
            errors.push(invalid(
                "headers",
                r#"headers must be an object: {"name": "value", ...}"#,
            ));
            Vec::new()
        }
        None => base.map_or_else(Vec::new, |base| {
            base.headers()
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect()
        }),
    };

    let (Some(name), Some(url), Some(events), Some(sources), true) =
        (name, url, events, sources, errors.is_empty())
    else {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, errors));
    };
    let mut builder = Webhook::builder(name, &url)
        .url_policy(policy)
        .events(events)
        .sources(sources)
        .scope(scope);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    // Everything was checked above; a refusal here would still be the request's fault.
    let built = builder.build().map_err(|e| {
        ApiError::one(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorObject::new("field_invalid", "The webhook is invalid", e.to_string()),
        )
    })?;
    Ok(match base {
        Some(base) => built.updated_from(base),
        None => built,
    })
}

/// A list of ids, each parsed by `parse`; an error for each one that is not an id.
fn ids<T>(
    value: &Value,
    field: &str,
    errors: &mut Vec<ErrorObject>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Option<Vec<T>> {
    let Value::Array(items) = value else {
        errors.push(invalid(
            field,
            format!(
                "{field} must be a list of ids, e.g. [\"{}\"]",
                example(field)
            ),
        ));
        return None;
    };
    let before = errors.len();
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{}/{i}", pointer(field));
        match item {
            Value::String(id) => match parse(id) {
                Ok(v) => parsed.push(v),
                Err(detail) => errors.push(invalid(field, detail).at(at)),
            },
            _ => errors.push(invalid(field, format!("{field}[{i}] must be a string id")).at(at)),
        }
    }
    (errors.len() == before).then_some(parsed)
}

fn example(field: &str) -> &'static str {
    if field == "events" {
        "subscribe"
    } else {
        "public"
    }
}

/// `listid` as ActiveCampaign takes it: a number or a numeric string; `0`, `"0"` or
/// `null` for all lists.
fn list_scope(value: &Value) -> Option<ListScope> {
    let id = match value {
        Value::Null => 0,
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some(ListScope::from_list_id(id))
}

/// The headers of `{"name": "value", ...}`, each checked as a webhook's own header.
fn header_pairs(map: &Map<String, Value>, errors: &mut Vec<ErrorObject>) -> Vec<(String, String)> {
    let mut pairs = Vec::with_capacity(map.len());
    for (name, value) in map {
        let at = format!("{}/{}", pointer("headers"), escape(name));
        let Value::String(value) = value else {
            errors.push(
                invalid(
                    "headers",
                    format!("header {name:?}: the value must be a string"),
                )
                .at(at),
            );
            continue;
        };
        match check_header(name, value.as_bytes()) {
            Ok(_) => pairs.push((name.clone(), value.clone())),
            Err(error) => errors.push(invalid("headers", error.to_string()).at(at)),
        }
    }
    pairs
}

/// A webhook as the API writes it: ActiveCampaign's fields in its order (`cdate`,
/// `listid`, `name`, `url`, `events`, `sources`, `links`, `id`), ids and `listid` as
/// strings, plus `deactivated` when it is off and `headerNames`, the names of its own
/// headers (never their values), when it has some. Never a signing secret.
#[derive(Serialize)]
pub(crate) struct WebhookJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cdate: Option<&'a str>,
    listid: ListScope,
    name: &'a str,
    url: &'a str,
    events: EventSet,
    sources: SourceSet,
    #[serde(skip_serializing_if = "Option::is_none")]
    deactivated: Option<Deactivation>,
    #[serde(rename = "headerNames", skip_serializing_if = "Vec::is_empty")]
    header_names: Vec<&'a str>,
    links: Links,
    id: String,
}

#[derive(Serialize)]
struct Links {
    #[serde(rename = "self")]
    this: String,
}

impl<'a> WebhookJson<'a> {
    pub(crate) fn new(webhook: &'a Webhook) -> WebhookJson<'a> {
        let id = webhook.id().map_or(0, |id| id.get());
        WebhookJson {
            cdate: webhook.cdate(),
            listid: webhook.scope(),
            name: webhook.name(),
            url: webhook.url().as_str(),
            events: webhook.events(),
            sources: webhook.sources(),
            deactivated: webhook.deactivation(),
            header_names: webhook.headers().keys().map(|n| n.as_str()).collect(),
            links: Links {
                this: format!("/api/3/webhooks/{id}"),
            },
            id: id.to_string(),
        }
    }
}
