//! The automation-step webhook body: the contact block and `seriesid`, no common keys.

use bytes::Bytes;

use super::DecodeError;
use super::block::{Block, fill};
use crate::{Contact, Form, FormLimits, FormWriter};

/// What an automation's "webhook" action posts when a contact reaches that step: the contact
/// block (`contact[id]`, `contact[email]`, ..., `contact[tags]`, `contact[ip4]`,
/// `contact[fields][<personalization tag>]`) and `seriesid` (the automation id). No `type`,
/// `date_time` or `initiated_*`.
///
/// Encode writes the contact block, then `seriesid`, then the unknown pairs in received order.
/// Decode requires `seriesid` (it is what tells this body from an event) and keeps every
/// other key; as in [`Event`](crate::Event), a repeated key is kept among the unknown pairs.
///
/// ```
/// use posthook::{AutomationPayload, Contact};
///
/// let p = AutomationPayload::new("12")
///     .with_contact(Contact::new().with_id("42").with_field("utm_source", "newsletter"));
/// assert_eq!(
///     &p.encode()[..],
///     b"contact%5Bid%5D=42&contact%5Bfields%5D%5Butm_source%5D=newsletter&seriesid=12"
/// );
/// assert_eq!(AutomationPayload::decode(&p.encode())?, p);
/// # Ok::<(), posthook::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutomationPayload {
    contact: Contact,
    series_id: String,
    extra: Vec<(String, String)>,
}

impl AutomationPayload {
    /// A body for automation `series_id`, with an empty contact.
    pub fn new(series_id: impl Into<String>) -> AutomationPayload {
        AutomationPayload {
            contact: Contact::new(),
            series_id: series_id.into(),
            extra: Vec::new(),
        }
    }

    /// The automation id (`seriesid`), as received.
    #[inline]
    pub fn series_id(&self) -> &str {
        &self.series_id
    }

    /// The contact.
    #[inline]
    pub fn contact(&self) -> &Contact {
        &self.contact
    }

    /// The contact, to change in place.
    #[inline]
    pub fn contact_mut(&mut self) -> &mut Contact {
        &mut self.contact
    }

    /// This body with `contact`.
    #[must_use]
    pub fn with_contact(mut self, contact: Contact) -> AutomationPayload {
        self.contact = contact;
        self
    }

    /// The pairs the model does not know (and repeats), in received order.
    #[inline]
    pub fn extra(&self) -> &[(String, String)] {
        &self.extra
    }

    /// Adds one pair the way decode reads it: a contact key whose slot is empty fills it,
    /// anything else is kept in [`AutomationPayload::extra`].
    pub fn push_pair(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let key = key.into();
        if let Some(value) = self.contact.accept(&key, value.into()) {
            self.extra.push((key, value));
        }
        self
    }

    /// Reads a received body; `seriesid` is required.
    pub fn decode(body: &[u8]) -> Result<AutomationPayload, DecodeError> {
        AutomationPayload::decode_with(body, FormLimits::default())
    }

    /// Reads a received body with guards other than the default [`FormLimits`].
    pub fn decode_with(body: &[u8], limits: FormLimits) -> Result<AutomationPayload, DecodeError> {
        let form = Form::parse_with(body, limits)?;
        let mut series_id = None;
        let mut payload = AutomationPayload::new(String::new());
        for (key, value) in form.iter() {
            if key == "seriesid" {
                if let Some(value) = fill(&mut series_id, value.to_owned()) {
                    payload.extra.push((key.to_owned(), value));
                }
            } else {
                payload.push_pair(key, value);
            }
        }
        payload.series_id = series_id.ok_or(DecodeError::MissingKey { key: "seriesid" })?;
        Ok(payload)
    }

    /// The form body: the contact block, `seriesid`, then the unknown pairs.
    pub fn encode(&self) -> Bytes {
        let mut w = FormWriter::with_capacity(256 + self.series_id.len());
        self.contact.write(&mut w);
        w.pair_escaped(crate::form::escaped!("seriesid"), &self.series_id);
        for (k, v) in &self.extra {
            w.pair(k, v);
        }
        w.finish()
    }
}
