//! The "Add" / "Edit" form: what was typed, read with posthook's own form decoder (it keeps
//! the repeated `events` and `sources` checkboxes), and checked field by field so that every
//! problem shows beside its field at once. The list must be one the menu offers: a tampered
//! `list=99` is refused like any other field error. An edit carries the version of the
//! webhook it was filled from (a hidden field), which the save names to the store.

use posthook::{
    EventKind, EventSet, Form, ListId, ListScope, Source, SourceSet, StoredWebhook, UrlError,
    Webhook, WebhookId, WebhookUrl,
};

use crate::hooks::LISTS;

/// The form as typed: kept as it is, to show it again next to the errors.
#[derive(Debug, Clone, Default)]
pub struct WebhookForm {
    /// `"0"` for all lists, else the list id.
    pub list: String,
    pub name: String,
    pub url: String,
    pub events: EventSet,
    pub sources: SourceSet,
    /// The version of the webhook the edit form was filled from.
    pub version: Option<u64>,
}

/// What is wrong with the form as a whole (a tampered or broken body).
#[derive(Debug, Clone)]
pub enum FormProblem {
    /// Not an `application/x-www-form-urlencoded` body.
    Unreadable,
    /// An `events` value that is no event id.
    UnknownEvent(String),
    /// A `sources` value that is no source id.
    UnknownSource(String),
    /// posthook refused the webhook for a reason the fields did not show.
    Refused(posthook::Error),
    /// An edit without the version it was filled from.
    NoVersion,
    /// The account has as many webhooks as it may (the limit).
    Limit(u32),
}

/// What is wrong with a submitted form, field by field.
#[derive(Debug, Default)]
pub struct Problems {
    pub form: Option<FormProblem>,
    pub list: bool,
    pub name: bool,
    pub url: Option<UrlError>,
    pub events: bool,
    pub sources: bool,
}

impl WebhookForm {
    /// Reads a posted `application/x-www-form-urlencoded` body. Unknown event or source ids
    /// (a tampered form) are reported, not ignored.
    pub fn parse(body: &[u8]) -> (WebhookForm, Problems) {
        let mut form = WebhookForm::default();
        let mut problems = Problems::default();
        let pairs = match Form::parse(body) {
            Ok(pairs) => pairs,
            Err(_) => {
                problems.form = Some(FormProblem::Unreadable);
                return (form, problems);
            }
        };
        for (key, value) in pairs.iter() {
            match key {
                "list" => form.list = value.to_owned(),
                "name" => form.name = value.to_owned(),
                "url" => form.url = value.to_owned(),
                "version" => form.version = value.parse().ok(),
                "events" => match value.parse::<EventKind>() {
                    Ok(kind) => {
                        form.events.insert(kind);
                    }
                    Err(_) => problems.form = Some(FormProblem::UnknownEvent(value.to_owned())),
                },
                "sources" => match value.parse::<Source>() {
                    Ok(source) => {
                        form.sources.insert(source);
                    }
                    Err(_) => problems.form = Some(FormProblem::UnknownSource(value.to_owned())),
                },
                _ => {}
            }
        }
        (form, problems)
    }

    /// The form filled in with `stored`'s settings and version, for "Edit".
    pub fn of(stored: &StoredWebhook) -> WebhookForm {
        let hook = &stored.webhook;
        WebhookForm {
            version: Some(stored.version),
            list: hook.scope().list_id().to_string(),
            name: hook.name().to_owned(),
            url: hook.url().as_str().to_owned(),
            events: hook.events(),
            sources: hook.sources(),
        }
    }

    /// The scope chosen: all lists, or one of the lists the menu offers (`None` for
    /// anything else).
    fn scope(&self) -> Option<ListScope> {
        match self.list.trim() {
            "" | "0" => Some(ListScope::All),
            id => offered_list(id).map(ListScope::List),
        }
    }

    /// The webhook, or every problem with the form.
    pub fn build(
        &self,
        mut problems: Problems,
        id: Option<WebhookId>,
    ) -> Result<Webhook, Problems> {
        let scope = self.scope();
        problems.list = scope.is_none();
        problems.name = self.name.trim().is_empty();
        problems.url = WebhookUrl::parse(&self.url).err();
        problems.events = self.events.is_empty();
        problems.sources = self.sources.is_empty();
        let ok = problems.form.is_none()
            && !problems.list
            && !problems.name
            && problems.url.is_none()
            && !problems.events
            && !problems.sources;
        if !ok {
            return Err(problems);
        }
        let mut builder = Webhook::builder(self.name.trim(), &self.url)
            .events(self.events)
            .sources(self.sources)
            .scope(scope.unwrap_or_default());
        if let Some(id) = id {
            builder = builder.id(id);
        }
        builder.build().map_err(|error| Problems {
            form: Some(FormProblem::Refused(error)),
            ..problems
        })
    }
}

/// The list `id` names, if it is one of the lists this application offers.
pub fn offered_list(id: &str) -> Option<ListId> {
    let id = id.trim().parse::<ListId>().ok()?;
    LISTS.iter().any(|(n, _)| *n == id.get()).then_some(id)
}
