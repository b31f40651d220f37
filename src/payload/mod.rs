//! Events: one occurrence of an [`EventKind`], with its typed data, and its form body.
//!
//! An [`Event`] holds the common keys (`type`, `date_time`, `initiated_from`, `initiated_by`,
//! `list`), typed blocks ([`Contact`], [`Campaign`], [`Deal`], [`Task`], ...) and every pair
//! the model does not know, in order. [`Event::encode`] writes the body ActiveCampaign posts;
//! [`Event::decode`] reads one back. Decode → encode loses nothing.
//!
//! ```
//! use posthook::{Contact, Event, EventKind, ListId, OccurredAt, Source};
//!
//! let at: OccurredAt = "2023-07-12T06:49:04-05:00".parse()?;
//! let event = Event::new(EventKind::Subscribe, Source::Contact, at)
//!     .with_list(ListId::new(3))
//!     .with_contact(Contact::new().with_email("søren@example.com").with_tags(["vip", "R&D"]));
//! let body = event.encode();
//! assert_eq!(
//!     &body[..],
//!     b"type=subscribe&date_time=2023-07-12T06%3A49%3A04-05%3A00&initiated_from=public&list=3\
//!       &contact%5Bemail%5D=s%C3%B8ren%40example.com&contact%5Btags%5D=vip%2C+R%26D"
//! );
//! let back = Event::decode(&body)?;
//! assert_eq!(back, event);
//! assert_eq!(back.contact().unwrap().tags(), ["vip", "R&D"]);
//! # Ok::<(), posthook::DecodeError>(())
//! ```
//!
//! The wire rules (order, `list`, `initiated_by`, repeats, collisions, dates) are on [`Event`].

mod automation;
mod block;
mod campaign;
mod contact;
mod deal;
mod error;
mod fast;
mod list;

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

pub use self::automation::AutomationPayload;
pub use self::campaign::{Bounce, Campaign, Forward, Link, Reply, Share, SignupForm, Unsubscribe};
pub use self::contact::Contact;
pub use self::deal::{Deal, DealNote, DealStatus, Pipeline, Stage, Task, TaskType};
pub use self::error::DecodeError;
pub use self::list::{ListInfo, Sms};

use self::block::{Block, fill};
use crate::error::InvalidListId;
use crate::{EventKind, Form, FormLimits, FormWriter, ListId, Source};

/// When an event happened, as the payload's `date_time` writes it.
///
/// ActiveCampaign writes ISO 8601 with an offset (`2023-07-12T06:49:04-05:00`), and in its API
/// the UTC form `-00:00` (RFC 3339's "unknown local offset"); its legacy samples wrote
/// `2013-01-01 12:00:00`. Each is written back in the form it came in. Whole seconds only:
/// [`From`] drops fractions of a second, and an offset with seconds is rounded to the minute
/// toward zero, keeping the instant (the local time moves with it). Years 0000–9999 are
/// written in four digits; others as chrono writes them (`+12345-...`), which decode refuses.
///
/// ```
/// use posthook::OccurredAt;
///
/// let iso: OccurredAt = "2023-07-12T06:49:04-05:00".parse().unwrap();
/// assert_eq!(iso.to_string(), "2023-07-12T06:49:04-05:00");
/// let legacy: OccurredAt = "2013-01-01 12:00:00".parse().unwrap();
/// assert!(matches!(legacy, OccurredAt::Legacy(_)));
/// let utc: OccurredAt = "2016-01-01T12:00:00-00:00".parse().unwrap();
/// assert_eq!(utc.to_string(), "2016-01-01T12:00:00-00:00");
/// assert!("2023-07-12T06:49:04Z".parse::<OccurredAt>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OccurredAt {
    /// ISO 8601 with an offset.
    Iso(DateTime<FixedOffset>),
    /// The legacy `YYYY-MM-DD HH:MM:SS` form, without an offset.
    Legacy(NaiveDateTime),
    /// ISO 8601 with the offset `-00:00`: the time in UTC, the local offset unknown
    /// (RFC 3339, section 4.3).
    IsoUnknownOffset(NaiveDateTime),
}

const ISO_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%:z";
const LEGACY_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

impl OccurredAt {
    /// The fast path of `from_str`: the two wire forms digit by digit, fixed widths, without
    /// chrono's format interpreter. Whatever it accepts, `from_str`'s general path accepts
    /// too, with the same value (it writes back byte for byte); `None` hands anything else
    /// (an out-of-range field, a leap second, another width) to that path.
    fn parse_exact(text: &str) -> Option<OccurredAt> {
        let b = text.as_bytes();
        let num = |at: usize, len: usize| -> Option<u32> {
            let digits = b.get(at..at + len)?;
            digits.iter().try_fold(0u32, |n, &d| {
                d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
            })
        };
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 2)?, num(8, 2)?)?;
        let time = NaiveTime::from_hms_opt(num(11, 2)?, num(14, 2)?, num(17, 2)?)?;
        let local = NaiveDateTime::new(date, time);
        match (b[10], b.len()) {
            (b' ', 19) => Some(OccurredAt::Legacy(local)),
            (b'T', 25) if b[22] == b':' && (b[19] == b'+' || b[19] == b'-') => {
                let (hours, minutes) = (num(20, 2)?, num(23, 2)?);
                if minutes > 59 {
                    return None;
                }
                let seconds = (hours * 3600 + minutes * 60) as i32;
                if b[19] == b'-' && seconds == 0 {
                    return Some(OccurredAt::IsoUnknownOffset(local));
                }
                let offset = if b[19] == b'+' {
                    FixedOffset::east_opt(seconds)?
                } else {
                    FixedOffset::west_opt(seconds)?
                };
                Some(OccurredAt::Iso(local.and_local_timezone(offset).single()?))
            }
            _ => None,
        }
    }

    /// The local date and time, without the offset.
    pub fn naive_local(&self) -> NaiveDateTime {
        match self {
            OccurredAt::Iso(t) => t.naive_local(),
            OccurredAt::Legacy(t) | OccurredAt::IsoUnknownOffset(t) => *t,
        }
    }

    /// The offset, when the ISO form carried one.
    pub fn offset(&self) -> Option<FixedOffset> {
        match self {
            OccurredAt::Iso(t) => Some(*t.offset()),
            OccurredAt::IsoUnknownOffset(_) => FixedOffset::east_opt(0),
            OccurredAt::Legacy(_) => None,
        }
    }
}

impl From<DateTime<FixedOffset>> for OccurredAt {
    /// The ISO form, with fractions of a second dropped and an offset with seconds rounded
    /// to the minute toward zero (the instant is kept).
    fn from(t: DateTime<FixedOffset>) -> Self {
        let t = t.with_nanosecond(0).unwrap_or(t);
        let secs = t.offset().local_minus_utc();
        let t = match FixedOffset::east_opt(secs / 60 * 60) {
            Some(minutes) if secs % 60 != 0 => t.with_timezone(&minutes),
            _ => t,
        };
        OccurredAt::Iso(t)
    }
}

impl From<NaiveDateTime> for OccurredAt {
    /// The legacy form, with fractions of a second dropped.
    fn from(t: NaiveDateTime) -> Self {
        OccurredAt::Legacy(t.with_nanosecond(0).unwrap_or(t))
    }
}

impl FromStr for OccurredAt {
    type Err = DecodeError;

    /// Reads exactly `YYYY-MM-DDTHH:MM:SS±HH:MM` (`-00:00` included) or
    /// `YYYY-MM-DD HH:MM:SS`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match OccurredAt::parse_exact(text) {
            Some(at) => Ok(at),
            None => OccurredAt::parse_general(text),
        }
    }
}

impl OccurredAt {
    /// `from_str` through chrono's format strings, then a check that the value writes back
    /// to the same text.
    fn parse_general(text: &str) -> Result<OccurredAt, DecodeError> {
        let parsed = if let Some(utc) = text.strip_suffix("-00:00") {
            NaiveDateTime::parse_from_str(utc, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(OccurredAt::IsoUnknownOffset)
        } else if text.as_bytes().get(10) == Some(&b' ') {
            NaiveDateTime::parse_from_str(text, LEGACY_FORMAT)
                .ok()
                .map(OccurredAt::Legacy)
        } else {
            DateTime::parse_from_str(text, ISO_FORMAT)
                .ok()
                .map(OccurredAt::Iso)
        };
        // Only what writes back byte for byte (chrono also takes e.g. one-digit months).
        match parsed {
            Some(at) if at.to_string() == text => Ok(at),
            _ => Err(DecodeError::BadDate {
                text: text.to_owned(),
            }),
        }
    }
}

impl OccurredAt {
    /// Writes the wire text into `buf` and returns it: `YYYY-MM-DDTHH:MM:SS±HH:MM` or
    /// `YYYY-MM-DD HH:MM:SS`; `None` for a year outside 0000–9999, which four digits cannot
    /// hold (the caller falls back to chrono's formatting).
    fn write_wire(self, buf: &mut [u8; 25]) -> Option<&str> {
        fn two(buf: &mut [u8], at: usize, n: u32) {
            buf[at] = b'0' + (n / 10 % 10) as u8;
            buf[at + 1] = b'0' + (n % 10) as u8;
        }
        let t = self.naive_local();
        let (date, time) = (t.date(), t.time());
        let year = u32::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
        two(buf, 0, year / 100);
        two(buf, 2, year % 100);
        buf[4] = b'-';
        two(buf, 5, date.month());
        buf[7] = b'-';
        two(buf, 8, date.day());
        buf[10] = if self.offset().is_some() { b'T' } else { b' ' };
        two(buf, 11, time.hour());
        buf[13] = b':';
        two(buf, 14, time.minute());
        buf[16] = b':';
        two(buf, 17, time.second());
        let len = match self.offset() {
            Some(_) if matches!(self, OccurredAt::IsoUnknownOffset(_)) => {
                buf[19..25].copy_from_slice(b"-00:00");
                25
            }
            Some(offset) => {
                let secs = offset.local_minus_utc();
                buf[19] = if secs < 0 { b'-' } else { b'+' };
                let mins = secs.unsigned_abs() / 60;
                two(buf, 20, mins / 60);
                buf[22] = b':';
                two(buf, 23, mins % 60);
                25
            }
            None => 19,
        };
        // Only ASCII digits and punctuation were written.
        std::str::from_utf8(&buf[..len]).ok()
    }
}

impl fmt::Display for OccurredAt {
    /// `YYYY-MM-DDTHH:MM:SS±HH:MM` or `YYYY-MM-DD HH:MM:SS` (years 0000 to 9999), written
    /// byte by byte: the same text as chrono's `%Y-%m-%dT%H:%M:%S%:z`, without parsing a
    /// format string on every event.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.write_wire(&mut [0; 25]) {
            return f.write_str(text);
        }
        match self {
            OccurredAt::Iso(t) => write!(f, "{}", t.format(ISO_FORMAT)),
            OccurredAt::Legacy(t) => write!(f, "{}", t.format(LEGACY_FORMAT)),
            OccurredAt::IsoUnknownOffset(t) => write!(f, "{}-00:00", t.format("%Y-%m-%dT%H:%M:%S")),
        }
    }
}

/// `n` in decimal, written into `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[at..]).unwrap_or_default()
}

/// How the `list` key goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ListKey {
    /// Not written (a received body had none).
    Absent,
    /// Written as the id, `0` for none.
    Written,
    /// Written as received (a non-canonical spelling like `007` or an empty value).
    Verbatim(Box<str>),
}

/// `Some(block)` only when it holds a key: an empty block is no block.
#[inline]
fn present<T: Block>(block: &Option<Box<T>>) -> Option<&T> {
    block.as_deref().filter(|b| !b.is_empty())
}

/// Defines the blocks an [`Event`] carries: storage, accessors, equality and decode routing.
macro_rules! event_blocks {
    ($( $field:ident : $ty:ident, $with:ident, $set:ident, $mut_:ident; )*) => {
        #[derive(Debug, Clone, Default)]
        struct Blocks {
            $( $field: Option<Box<$ty>>, )*
        }

        impl PartialEq for Blocks {
            fn eq(&self, other: &Self) -> bool {
                true $( && present(&self.$field) == present(&other.$field) )*
            }
        }

        impl Eq for Blocks {}

        impl Blocks {
            /// Every block's [`KEYS`](Contact::KEYS), in routing order: block `b`'s `KEYS[i]`
            /// is filled through [`Blocks::fill_with`]`(b, i, ..)`.
            const KEYS: &'static [&'static [&'static str]] = &[$( $ty::KEYS, )*];

            /// Fills block `block`'s `KEYS[slot]` if absent, with what `write` appends (the
            /// block added empty if absent): see [`block::Texts::fill_with`].
            #[allow(unused_assignments)] // The last `n += 1`.
            fn fill_with(
                &mut self,
                block: usize,
                slot: usize,
                write: impl FnOnce(&mut String) -> Option<()>,
            ) -> Option<bool> {
                let mut n = 0;
                $(
                    if block == n {
                        return self.$field.get_or_insert_default().texts.fill_with(slot, write);
                    }
                    n += 1;
                )*
                None
            }

            /// Routes a block key to its block; hands the value back when no block takes it.
            fn accept(&mut self, key: &str, value: String) -> Option<String> {
                $(
                    if $ty::owns(key) {
                        return self.$field.get_or_insert_default().accept(key, value);
                    }
                )*
                Some(value)
            }
        }

        impl Event {
            $(
                #[doc = concat!("The [`", stringify!($ty), "`] block, if any of its keys is present.")]
                #[inline]
                pub fn $field(&self) -> Option<&$ty> {
                    present(&self.blocks.$field)
                }

                #[doc = concat!("This event with the [`", stringify!($ty), "`] block `block`.")]
                #[must_use]
                pub fn $with(mut self, block: $ty) -> Self {
                    self.blocks.$field = Some(Box::new(block));
                    self
                }

                #[doc = concat!("Sets (`Some`) or removes (`None`) the [`", stringify!($ty), "`] block.")]
                pub fn $set(&mut self, block: Option<$ty>) -> &mut Self {
                    self.blocks.$field = block.map(Box::new);
                    self
                }

                #[doc = concat!("The [`", stringify!($ty), "`] block to change in place, added empty if absent.")]
                pub fn $mut_(&mut self) -> &mut $ty {
                    self.blocks.$field.get_or_insert_default()
                }
            )*
        }
    };
}

event_blocks! {
    contact: Contact, with_contact, set_contact, contact_mut;
    campaign: Campaign, with_campaign, set_campaign, campaign_mut;
    link: Link, with_link, set_link, link_mut;
    forward: Forward, with_forward, set_forward, forward_mut;
    share: Share, with_share, set_share, share_mut;
    reply: Reply, with_reply, set_reply, reply_mut;
    bounce: Bounce, with_bounce, set_bounce, bounce_mut;
    unsubscribe: Unsubscribe, with_unsubscribe, set_unsubscribe, unsubscribe_mut;
    form: SignupForm, with_form, set_form, form_mut;
    deal: Deal, with_deal, set_deal, deal_mut;
    deal_note: DealNote, with_deal_note, set_deal_note, deal_note_mut;
    task: Task, with_task, set_task, task_mut;
    pipeline: Pipeline, with_pipeline, set_pipeline, pipeline_mut;
    stage: Stage, with_stage, set_stage, stage_mut;
    task_type: TaskType, with_task_type, set_task_type, task_type_mut;
    list_info: ListInfo, with_list_info, set_list_info, list_info_mut;
    sms: Sms, with_sms, set_sms, sms_mut;
}

/// One occurrence of an event: what happened, who started it, on which list, when, and its
/// data: typed blocks and the pairs the model does not know.
///
/// # The wire rules
///
/// - **Lossless fields.** A block field reads as an `Option<&str>`: `None` when the key is
///   absent, `Some("")` when present and empty (a block keeps its values in one text). Ids like `"007"` and values like `"100.00"` stay as
///   received; typed accessors ([`Deal::status`], [`Contact::tags`], [`Event::list`]) read them.
/// - **Order.** Encode writes the common keys in ActiveCampaign's order, then the blocks in one
///   fixed order (contact, campaign, link, forward, share, `result`/`message`, bounce,
///   unsubscribe, form, `note`, `tag`, deal, `note[...]`, task, pipeline, stage, tasktype,
///   `list[...]`, sms, `updated_fields[...]`; for `deal_task_*` the deal comes before the
///   contact, as the reference lists it), then the unknown pairs in the order received. A body
///   whose modelled keys came in another order decodes to the same event; its re-encoding has
///   the same pairs in this order.
/// - **`list`.** ActiveCampaign always writes `list` (`0` when not list-scoped), so an event made
///   with [`Event::new`] writes `list=0` when [`Event::list`] is `None`. A decoded event
///   remembers whether `list` was there: a body without `list` re-encodes without it
///   ([`Event::with_list`] puts it back). A non-canonical spelling (`007`, empty) is written
///   back as received; anything else that is not digits is [`DecodeError::BadList`].
/// - **`initiated_by`.** Written only when present ([`Event::initiated_by`] is `Some`), as
///   received; `Some("")` writes `initiated_by=`.
/// - **Scalar and block with one name.** `list` (common) and `list[id]` ([`ListInfo`]) in
///   `list_add`; `note` ([`Event::note`], `subscriber_note`) and `note[id]`/`note[text]`
///   ([`DealNote`], `deal_note_add`): different keys, both kept.
/// - **Every kind reads every block.** Decode fills a block whenever its keys are there, whatever
///   the kind; [`Event::sample`] shows which blocks each kind carries.
/// - **Repeats.** The first occurrence of a modelled key fills the model; a repeat is kept among
///   the unknown pairs ([`Event::extra`]), so it is written back too. `updated_fields[i]` fill
///   [`Event::updated_fields`] for `i` in `0..n` (each index present); other indices are extra.
/// - **Dates.** `date_time` is exactly `YYYY-MM-DDTHH:MM:SS±HH:MM` or the legacy
///   `YYYY-MM-DD HH:MM:SS`, written back in the form received ([`OccurredAt`]); anything else
///   (fractions, `Z`) is [`DecodeError::BadDate`], so that re-encoding is exact.
/// - **Empty blocks.** A block with no key present is no block: its accessor returns `None`,
///   equality ignores it, encode writes nothing for it.
/// - **Round trip.** `Event::decode(&e.encode()) == Ok(e)` for every event decode returns and
///   every event built with the setters and [`Event::push_pair`] (years 0000 to 9999, offsets
///   in whole minutes, and at most [`FormLimits::default`]'s 10,000 pairs: past that use
///   [`Event::decode_with`] and larger limits). The one way out: a modelled key kept in
///   [`Event::extra`] as a repeat whose slot was cleared afterwards comes back in its slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    kind: EventKind,
    source: Source,
    list: Option<ListId>,
    list_key: ListKey,
    occurred_at: OccurredAt,
    initiated_by: Option<String>,
    note: Option<String>,
    tag: Option<String>,
    blocks: Blocks,
    updated_fields: Vec<String>,
    extra: Vec<(String, String)>,
}

/// The top-level scalar keys an [`Event`] models, each written only when present.
impl Event {
    block::scalar_accessors! {
    /// Who started it (e.g. `"admin"`), when the key is present.
    initiated_by, with_initiated_by, set_initiated_by => "initiated_by";
    /// The contact note (in `subscriber_note`). The deal note of `deal_note_add` is
    /// [`Event::deal_note`].
    note, with_note, set_note => "note";
    /// The tag added or removed (in `contact_tag_added` / `contact_tag_removed`).
    tag, with_tag, set_tag => "tag";
    }
}

const UPDATED_FIELDS: &str = "updated_fields[";

/// `i` for a key `updated_fields[i]` with `i` in canonical decimal.
fn updated_index(key: &str) -> Option<usize> {
    let digits = key.strip_prefix(UPDATED_FIELDS)?.strip_suffix(']')?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    canonical.then(|| digits.parse().ok()).flatten()
}

/// Reads the `list` value: `(list, how it goes back on the wire)`.
fn parse_list(text: &str) -> Result<(Option<ListId>, ListKey), DecodeError> {
    if text.is_empty() {
        return Ok((None, ListKey::Verbatim(text.into())));
    }
    let id: u64 = text
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse().ok())
        .flatten()
        .ok_or_else(|| DecodeError::BadList(InvalidListId::new(text)))?;
    let key = if text == "0" || !text.starts_with('0') {
        ListKey::Written
    } else {
        ListKey::Verbatim(text.into())
    };
    Ok((ListId::new(id), key))
}

impl Event {
    /// An event of `kind` from `source`, at `occurred_at`, on no list (`list=0` on the wire).
    pub fn new(kind: EventKind, source: Source, occurred_at: impl Into<OccurredAt>) -> Event {
        Event {
            kind,
            source,
            list: None,
            list_key: ListKey::Written,
            occurred_at: occurred_at.into(),
            initiated_by: None,
            note: None,
            tag: None,
            blocks: Blocks::default(),
            updated_fields: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// This event on `list` (`None`: on no list, `0` on the wire). The `list` key is written
    /// from now on, even if a decoded body had none.
    #[must_use]
    pub fn with_list(mut self, list: Option<ListId>) -> Event {
        self.list = list;
        self.list_key = ListKey::Written;
        self
    }

    /// What happened.
    #[inline]
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// Who or what started it.
    #[inline]
    pub fn source(&self) -> Source {
        self.source
    }

    /// The list it happened on, if any.
    #[inline]
    pub fn list(&self) -> Option<ListId> {
        self.list
    }

    /// When it happened.
    #[inline]
    pub fn occurred_at(&self) -> OccurredAt {
        self.occurred_at
    }

    /// The names of the changed fields (`updated_fields[0]`, `updated_fields[1]`, ... in
    /// `deal_update`).
    #[inline]
    pub fn updated_fields(&self) -> &[String] {
        &self.updated_fields
    }

    /// This event with `updated_fields` set to `fields`, in order.
    #[must_use]
    pub fn with_updated_fields<I>(mut self, fields: I) -> Event
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.updated_fields = fields.into_iter().map(Into::into).collect();
        self
    }

    /// The pairs the model does not know (and repeats of modelled keys), in received order.
    #[inline]
    pub fn extra(&self) -> &[(String, String)] {
        &self.extra
    }

    /// Adds one pair the way [`Event::decode`] reads it: a modelled key whose slot is empty
    /// fills it (`initiated_by`, `list`, a block field, a custom field, the next
    /// `updated_fields[i]`); any other pair is kept in [`Event::extra`]. Only `list` can fail.
    ///
    /// ```
    /// use posthook::{Event, EventKind};
    ///
    /// let mut e = Event::sample(EventKind::Subscribe);
    /// e.push_pair("contact[fields][utm_medium]", "email")?;
    /// e.push_pair("x_trace", "abc")?;
    /// assert_eq!(e.contact().unwrap().field("utm_medium"), Some("email"));
    /// assert_eq!(e.extra(), [("x_trace".to_owned(), "abc".to_owned())]);
    /// # Ok::<(), posthook::DecodeError>(())
    /// ```
    pub fn push_pair(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<&mut Self, DecodeError> {
        let (key, value) = (key.into(), value.into());
        if let Some(i) = updated_index(&key) {
            if i == self.updated_fields.len() {
                self.updated_fields.push(value);
                self.pull_updated_fields();
            } else {
                self.extra.push((key, value));
            }
            return Ok(self);
        }
        self.accept(&key, value)?;
        Ok(self)
    }

    /// Moves `updated_fields[n]`, `[n + 1]`, ... from the extra pairs to the list, so that
    /// `push_pair` ends where decode would.
    fn pull_updated_fields(&mut self) {
        while let Some(pos) = self
            .extra
            .iter()
            .position(|(k, _)| updated_index(k) == Some(self.updated_fields.len()))
        {
            let (_, value) = self.extra.remove(pos);
            self.updated_fields.push(value);
        }
    }

    /// Routes one pair that is not `updated_fields[i]`.
    fn accept(&mut self, key: &str, value: String) -> Result<(), DecodeError> {
        let back = match key {
            "initiated_by" => fill(&mut self.initiated_by, value),
            "note" => fill(&mut self.note, value),
            "tag" => fill(&mut self.tag, value),
            "list" if self.list_key == ListKey::Absent => {
                (self.list, self.list_key) = parse_list(&value)?;
                None
            }
            "type" | "date_time" | "initiated_from" | "list" => Some(value),
            _ => self.blocks.accept(key, value),
        };
        if let Some(value) = back {
            self.extra.push((key.to_owned(), value));
        }
        Ok(())
    }

    /// Reads a received body.
    ///
    /// `type`, `date_time` and `initiated_from` are required; everything else may be absent;
    /// keys come in any order; unknown keys are kept ([`Event::extra`]). See the
    /// [type docs](Event#the-wire-rules) for the rules.
    ///
    /// ```
    /// use posthook::{DecodeError, Event, EventKind};
    ///
    /// let e = Event::decode(b"type=update&date_time=2013-01-01+12%3A00%3A00&initiated_from=admin")?;
    /// assert_eq!(e.kind(), EventKind::Update);
    /// assert_eq!(e.list(), None);
    ///
    /// let err = Event::decode(b"type=update&initiated_from=admin").unwrap_err();
    /// assert_eq!(err, DecodeError::MissingKey { key: "date_time" });
    /// assert_eq!(err.to_string(), "missing key `date_time`");
    /// # Ok::<(), DecodeError>(())
    /// ```
    pub fn decode(body: &[u8]) -> Result<Event, DecodeError> {
        Event::decode_with(body, FormLimits::default())
    }

    /// Reads a received body with guards other than the default [`FormLimits`] (at most
    /// 10,000 pairs, keys at most 8 levels deep).
    pub fn decode_with(body: &[u8], limits: FormLimits) -> Result<Event, DecodeError> {
        match fast::decode(body, limits) {
            Some(event) => Ok(event),
            None => Event::decode_form(body, limits),
        }
    }

    /// The general decode: the body parsed into a [`Form`] first, then each rule applied in
    /// turn, so that the error is the first rule broken.
    fn decode_form(body: &[u8], limits: FormLimits) -> Result<Event, DecodeError> {
        let form = Form::parse_with(body, limits)?;
        let required = |key: &'static str| form.get(key).ok_or(DecodeError::MissingKey { key });
        let kind = required("type")?
            .parse::<EventKind>()
            .map_err(DecodeError::UnknownKind)?;
        let occurred_at: OccurredAt = required("date_time")?.parse()?;
        let source = required("initiated_from")?
            .parse::<Source>()
            .map_err(DecodeError::UnknownSource)?;
        let mut event = Event::new(kind, source, occurred_at);
        event.list_key = ListKey::Absent;

        // `updated_fields[0..n]`: the indices that are all present, whatever their order.
        let mut seen = Vec::new();
        for i in form.iter().filter_map(|(k, _)| updated_index(k)) {
            if i < form.len() {
                seen.resize(seen.len().max(i + 1), false);
                seen[i] = true;
            }
        }
        let n = seen.iter().position(|s| !s).unwrap_or(seen.len());
        let mut updated: Vec<Option<String>> = vec![None; n];

        let mut common = [
            ("type", false),
            ("date_time", false),
            ("initiated_from", false),
        ];
        for (key, value) in form.iter() {
            if let Some(first) = common.iter_mut().find(|(k, seen)| *k == key && !*seen) {
                first.1 = true;
                continue;
            }
            match updated_index(key) {
                Some(i) if i < n && updated[i].is_none() => updated[i] = Some(value.to_owned()),
                Some(_) => event.extra.push((key.to_owned(), value.to_owned())),
                None => event.accept(key, value.to_owned())?,
            }
        }
        event.updated_fields = updated.into_iter().flatten().collect();
        Ok(event)
    }

    /// The form body, as ActiveCampaign writes it: common keys, blocks, unknown pairs (see
    /// the [type docs](Event#the-wire-rules)). Encode once and share the [`Bytes`] across deliveries.
    pub fn encode(&self) -> Bytes {
        let mut buf = [0; 25];
        let fallback;
        let date = match self.occurred_at.write_wire(&mut buf) {
            Some(date) => date,
            None => {
                fallback = self.occurred_at.to_string();
                fallback.as_str()
            }
        };
        // One pass. Room for 2 KiB from the start: most event bodies fit, so the writer
        // neither reallocates nor copies (a 1,396-byte deal body grew twice from the writer's
        // first 1 KiB); a larger body grows as it goes.
        let mut w = FormWriter::with_capacity(2048);
        self.write(date, &mut w);
        w.finish()
    }

    /// Writes each pair of the body, in order; `date` is the formatted `date_time`.
    fn write(&self, date: &str, w: &mut FormWriter) {
        use crate::form::escaped;
        fn block<T: Block>(b: &Option<Box<T>>, w: &mut FormWriter) {
            if let Some(b) = b {
                b.write(w);
            }
        }
        w.pair_escaped(escaped!("type"), self.kind.as_str());
        w.pair_escaped(escaped!("date_time"), date);
        w.pair_escaped(escaped!("initiated_from"), self.source.as_str());
        if let Some(by) = &self.initiated_by {
            w.pair_escaped(escaped!("initiated_by"), by);
        }
        match &self.list_key {
            ListKey::Absent => {}
            ListKey::Written => {
                let mut digits = [0; 20];
                let list = decimal(self.list.map_or(0, ListId::get), &mut digits);
                w.pair_escaped(escaped!("list"), list);
            }
            ListKey::Verbatim(text) => w.pair_escaped(escaped!("list"), text),
        }
        let b = &self.blocks;
        let deal_first = matches!(
            self.kind,
            EventKind::DealTaskAdd | EventKind::DealTaskComplete
        );
        if deal_first {
            block(&b.deal, w);
        }
        block(&b.contact, w);
        block(&b.campaign, w);
        block(&b.link, w);
        block(&b.forward, w);
        block(&b.share, w);
        block(&b.reply, w);
        block(&b.bounce, w);
        block(&b.unsubscribe, w);
        block(&b.form, w);
        if let Some(note) = &self.note {
            w.pair_escaped(escaped!("note"), note);
        }
        if let Some(tag) = &self.tag {
            w.pair_escaped(escaped!("tag"), tag);
        }
        if !deal_first {
            block(&b.deal, w);
        }
        block(&b.deal_note, w);
        block(&b.task, w);
        block(&b.pipeline, w);
        block(&b.stage, w);
        block(&b.task_type, w);
        block(&b.list_info, w);
        block(&b.sms, w);
        for (i, field) in self.updated_fields.iter().enumerate() {
            let mut digits = [0; 20];
            let index = decimal(i as u64, &mut digits);
            w.pair_nested(escaped!(UPDATED_FIELDS), index, escaped!("]"), field);
        }
        for (k, v) in &self.extra {
            w.pair(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OccurredAt;
    use proptest::prelude::*;

    /// Texts near the two wire forms: digits anywhere a digit goes (out-of-range fields
    /// included), now and then another separator or length.
    fn near_wire() -> impl Strategy<Value = String> {
        let digits = |n: usize| proptest::collection::vec(0u8..10, n);
        (
            digits(4),
            digits(2),
            digits(2),
            prop::sample::select(vec![' ', 'T', 't', 'x']),
            digits(6),
            prop::sample::select(vec!["", "+", "-", "Z", "+1"]),
            digits(4),
            any::<bool>(),
        )
            .prop_map(|(y, mo, d, sep, hms, sign, off, cut)| {
                let s = |v: &[u8]| v.iter().map(|d| char::from(b'0' + d)).collect::<String>();
                let mut text = format!(
                    "{}-{}-{}{sep}{}:{}:{}",
                    s(&y),
                    s(&mo),
                    s(&d),
                    s(&hms[..2]),
                    s(&hms[2..4]),
                    s(&hms[4..])
                );
                if !sign.is_empty() {
                    text.push_str(&format!("{sign}{}:{}", s(&off[..2]), s(&off[2..])));
                }
                if cut {
                    text.pop();
                }
                text
            })
    }

    /// A body of pairs drawn from the keys decode treats specially (common keys, repeats,
    /// `updated_fields[i]` in and out of order, `list`, block keys, custom fields, unknown
    /// keys) with values good and bad, each escaped or not, now and then a raw fault.
    fn near_event_body() -> impl Strategy<Value = Vec<u8>> {
        let key = prop::sample::select(vec![
            "type",
            "date_time",
            "initiated_from",
            "initiated_by",
            "list",
            "note",
            "tag",
            "updated_fields[0]",
            "updated_fields[1]",
            "updated_fields[2]",
            "updated_fields[01]",
            "deal[id]",
            "deal[title]",
            "note[id]",
            "contact[email]",
            "contact[fields][7]",
            "contact[fields]",
            "result",
            "message",
            "list[id]",
            "sms[id]",
            "x[y]",
            "zz",
            // Decodes, once escaped, to the escaped spelling of a block key: not that key.
            "deal%5Bid%5D",
            "note%5Bid%5D",
        ]);
        let value = prop::sample::select(vec![
            "",
            "deal_update",
            "subscribe",
            "nope",
            "admin",
            "public",
            "2013-01-01 12:00:00",
            "2023-07-12T06:49:04-05:00",
            "2023-07-12T06:49:04Z",
            "0",
            "3",
            "007",
            "x",
            "a b&c",
            "é",
        ]);
        let raw = prop::sample::select(vec!["", "%", "%G1", "%C3", "&&", "=="]);
        let pairs = proptest::collection::vec((key, value, any::<bool>(), raw, any::<u8>()), 0..10);
        (any::<u8>(), pairs).prop_map(|(head, pairs)| {
            let mut body = Vec::new();
            // Mostly a valid head, so that most bodies are events.
            if head > 40 {
                body.extend_from_slice(
                    b"type=deal_update&date_time=2013-01-01+12%3A00%3A00&initiated_from=admin",
                );
            }
            for (key, value, escape, raw, dice) in pairs {
                if !body.is_empty() {
                    body.push(b'&');
                }
                let (k, v) = if escape {
                    let enc = |t: &str| crate::Form::from_iter([(t, "")]).to_string();
                    let (k, v) = (enc(key), enc(value));
                    (
                        k.trim_end_matches('=').to_owned(),
                        v.trim_end_matches('=').to_owned(),
                    )
                } else {
                    (key.to_owned(), value.to_owned())
                };
                body.extend_from_slice(k.as_bytes());
                body.push(b'=');
                body.extend_from_slice(v.as_bytes());
                if dice < 8 {
                    body.extend_from_slice(raw.as_bytes());
                }
            }
            body
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Decode's one-pass path returns an event only where the general path returns the
        /// same event, and falls back for nothing a well-formed body in canonical order holds.
        #[test]
        fn the_fast_decode_agrees_with_the_form_decode(body in near_event_body()) {
            let limits = crate::FormLimits { max_fields: 11, max_depth: 2 };
            let general = super::Event::decode_form(&body, limits);
            if let Some(fast) = super::fast::decode(&body, limits) {
                prop_assert_eq!(Ok(fast), general.clone());
            }
            prop_assert_eq!(super::Event::decode_with(&body, limits), general);
        }
    }

    proptest! {
        /// The fast path accepts only what the general path accepts, with the same value.
        #[test]
        fn the_fast_date_path_agrees_with_chrono(text in near_wire()) {
            if let Some(fast) = OccurredAt::parse_exact(&text) {
                prop_assert_eq!(Ok(fast), OccurredAt::parse_general(&text));
            }
        }

        /// And it takes every valid date the general path takes in the two wire forms.
        #[test]
        fn the_fast_date_path_takes_the_wire_forms(
            secs in 0i64..253_402_300_799,
            offset in -86_399i32..86_400,
            legacy in any::<bool>(),
        ) {
            let utc = chrono::DateTime::from_timestamp(secs, 0).unwrap();
            let text = if legacy {
                utc.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string()
            } else {
                let offset = chrono::FixedOffset::east_opt(offset / 60 * 60).unwrap();
                utc.with_timezone(&offset).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
            };
            let general = OccurredAt::parse_general(&text);
            prop_assert!(general.is_ok(), "{}", text);
            prop_assert_eq!(OccurredAt::parse_exact(&text).ok_or(()), general.map_err(|_| ()));
        }
    }
}
