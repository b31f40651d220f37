//! The contact block: `contact[...]`, tags and custom fields.

use super::block::{Block, block, fill};

const FIELDS_PREFIX: &str = "contact[fields][";

block! {
    @scalars
    /// The contact an event is about: `contact[id]`, `contact[email]`, ..., `contact[tags]`
    /// (one string, tags joined by `", "`) and custom fields `contact[fields][<id or tag>]`.
    ///
    /// Events write `contact[ip]`; automation webhooks write `contact[ip4]`. Both are kept.
    ///
    /// ```
    /// use posthook::Contact;
    ///
    /// let c = Contact::new()
    ///     .with_email("giulia@example.com")
    ///     .with_tags(["vip", "newsletter"])
    ///     .with_field("utm_source", "newsletter");
    /// assert_eq!(c.tags_text(), Some("vip, newsletter"));
    /// assert_eq!(c.tags(), ["vip", "newsletter"]);
    /// assert_eq!(c.field("utm_source"), Some("newsletter"));
    /// ```
    pub struct Contact {
        /// The contact id.
        id, with_id, set_id => "contact[id]";
        /// The email address.
        email, with_email, set_email => "contact[email]";
        /// The first name.
        first_name, with_first_name, set_first_name => "contact[first_name]";
        /// The last name.
        last_name, with_last_name, set_last_name => "contact[last_name]";
        /// The phone number, as entered.
        phone, with_phone, set_phone => "contact[phone]";
        /// The IP address the contact subscribed from (events).
        ip, with_ip, set_ip => "contact[ip]";
        /// The organisation name.
        orgname, with_orgname, set_orgname => "contact[orgname]";
        /// The customer account name.
        customer_acct_name, with_customer_acct_name, set_customer_acct_name => "contact[customer_acct_name]";
        /// The tags as one string, joined by `", "` (see [`Contact::tags`]).
        tags_text, with_tags_text, set_tags_text => "contact[tags]";
        /// The IPv4 address (automation webhooks).
        ip4, with_ip4, set_ip4 => "contact[ip4]";
    }
    extra {
        /// Custom fields in received order: (id or personalization tag, value).
        fields: Vec<(String, String)>,
    }
}

impl Contact {
    /// The tags: `contact[tags]` split at commas, trimmed, empty pieces dropped.
    pub fn tags(&self) -> Vec<&str> {
        self.tags_text
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// This contact with `contact[tags]` set to `tags` joined by `", "` (present and empty
    /// when there is none, as ActiveCampaign writes it).
    #[must_use]
    pub fn with_tags<I>(mut self, tags: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut text = String::new();
        for tag in tags {
            if !text.is_empty() {
                text.push_str(", ");
            }
            text.push_str(tag.as_ref());
        }
        self.tags_text = Some(text);
        self
    }

    /// The custom field `key` (a field id like `"1"` or a personalization tag like
    /// `"utm_source"`): the value of `contact[fields][<key>]`.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The custom fields, in order: `(key, value)`.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets custom field `key` to `value`, replacing its value if present, else appending.
    pub fn set_field(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let (key, value) = (key.into(), value.into());
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
        self
    }

    /// This contact with custom field `key` set to `value` (see [`Contact::set_field`]).
    #[must_use]
    pub fn with_field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_field(key, value);
        self
    }

    /// Removes custom field `key`, returning its value.
    pub fn remove_field(&mut self, key: &str) -> Option<String> {
        let i = self.fields.iter().position(|(k, _)| k == key)?;
        Some(self.fields.remove(i).1)
    }
}

/// The custom-field key inside `contact[fields][<key>]`.
fn field_key(key: &str) -> Option<&str> {
    key.strip_prefix(FIELDS_PREFIX)?.strip_suffix(']')
}

impl Block for Contact {
    fn owns(key: &str) -> bool {
        Self::KEYS.contains(&key) || field_key(key).is_some()
    }

    fn accept(&mut self, key: &str, value: String) -> Option<String> {
        if let Some(slot) = self.slot(key) {
            return fill(slot, value);
        }
        match field_key(key) {
            Some(k) if self.field(k).is_none() => {
                self.fields.push((k.to_owned(), value));
                None
            }
            _ => Some(value),
        }
    }

    fn write(&self, w: &mut crate::FormWriter) {
        self.write_scalars(w);
        for (k, v) in &self.fields {
            w.pair_nested(
                crate::form::escaped!(FIELDS_PREFIX),
                k,
                crate::form::escaped!("]"),
                v,
            );
        }
    }

    fn is_empty(&self) -> bool {
        self.scalars_empty() && self.fields.is_empty()
    }
}
