//! The contact block: `contact[...]`, tags and custom fields.

use super::block::{Block, block};

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
        /// Where each custom field is, by key, once there are many.
        field_index: FieldIndex,
    }
}

/// From this many custom fields on, lookups go through a hash index.
const INDEX_FROM: usize = 16;

/// The positions of a contact's custom fields by key, built once the contact has
/// [`INDEX_FROM`] of them, so that decoding a body with thousands of fields stays linear
/// (a hostile body of 10,000 fields took 340 ms with a scan per field). A cache, not part of
/// the value: equality and hashing ignore it.
#[derive(Clone, Default)]
struct FieldIndex(Option<std::collections::HashMap<String, usize>>);

impl PartialEq for FieldIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for FieldIndex {}

impl std::hash::Hash for FieldIndex {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl std::fmt::Debug for FieldIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "indexed" } else { "-" })
    }
}

impl Contact {
    /// The tags: `contact[tags]` split at commas, trimmed, empty pieces dropped.
    pub fn tags(&self) -> Vec<&str> {
        self.tags_text()
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
        self.set_tags_text(Some(text));
        self
    }

    /// The custom field `key` (a field id like `"1"` or a personalization tag like
    /// `"utm_source"`): the value of `contact[fields][<key>]`.
    pub fn field(&self, key: &str) -> Option<&str> {
        let at = match &self.field_index.0 {
            Some(index) => index.get(key).copied(),
            None => self.fields.iter().position(|(k, _)| k == key),
        };
        at.map(|i| self.fields[i].1.as_str())
    }

    /// The position of custom field `key`; builds the index once there are many fields.
    fn find_field(&mut self, key: &str) -> Option<usize> {
        if self.fields.len() < INDEX_FROM {
            return self.fields.iter().position(|(k, _)| k == key);
        }
        let fields = &self.fields;
        let index = self.field_index.0.get_or_insert_with(|| {
            // In reverse, so that the first of any repeated key wins, as in a scan.
            let entries = fields.iter().enumerate().rev();
            entries.map(|(i, (k, _))| (k.clone(), i)).collect()
        });
        index.get(key).copied()
    }

    /// Appends a custom field known to be absent.
    fn push_field(&mut self, key: String, value: String) {
        if let Some(index) = &mut self.field_index.0 {
            index.insert(key.clone(), self.fields.len());
        }
        self.fields.push((key, value));
    }

    /// The custom fields, in order: `(key, value)`.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets custom field `key` to `value`, replacing its value if present, else appending.
    pub fn set_field(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let (key, value) = (key.into(), value.into());
        match self.find_field(&key) {
            Some(i) => self.fields[i].1 = value,
            None => self.push_field(key, value),
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
        let i = self.find_field(key)?;
        // Positions after `i` shift: the index is rebuilt when next needed.
        self.field_index.0 = None;
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
        if let Some(i) = Self::index(key) {
            if self.texts.is_set(i) {
                return Some(value);
            }
            self.texts.set(i, Some(&value));
            return None;
        }
        match field_key(key) {
            Some(k) if self.find_field(k).is_none() => {
                self.push_field(k.to_owned(), value);
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
