//! [`Event::decode`]'s one pass: each pair routed as soon as its value is decoded, with no
//! [`Form`](crate::Form) in between, and each modelled key recognised by its raw spelling,
//! without decoding it.
//!
//! It handles what real bodies hold: the common keys once each, block keys in any order,
//! custom fields, `updated_fields[0..n]` in order, unknown keys. Anything else (a malformed
//! body, a missing or bad common key, a bad `list`, `updated_fields[i]` out of order or
//! repeated) returns `None`, and the general decode (`Event::decode_form`) decides and says
//! what is wrong. Where this returns an event, it is the one the general decode returns: a
//! property test holds them to it.

use std::sync::OnceLock;

use chrono::NaiveDateTime;
use hashbrown::HashTable;

use super::block::fill;
use super::{Blocks, Event, ListKey, OccurredAt, parse_list, updated_index};
use crate::form::{decode_text, depth, key_end, value_end};
use crate::{EventKind, FormLimits, Source};

/// What a modelled key fills.
#[derive(Debug, Clone, Copy)]
enum Route {
    Type,
    DateTime,
    InitiatedFrom,
    InitiatedBy,
    Note,
    Tag,
    List,
    /// Block `.0`'s `KEYS[.1]` ([`Blocks::fill_with`]).
    Block(u8, u8),
}

/// One spelling of a modelled key: as decoded, or as [`FormWriter`](crate::FormWriter)
/// escapes it.
#[derive(Debug)]
struct Entry {
    spelling: Box<[u8]>,
    key: &'static str,
    depth: usize,
    route: Route,
    /// The escaped spelling of the key written after this one (in a block's `KEYS` order),
    /// an index into [`Keys::entries`]: a body written in that order (ActiveCampaign's,
    /// this crate's) names it next, so it is tried before the hash table.
    next: Option<u32>,
}

/// Every modelled key under its two spellings (one when they are the same), found by the raw
/// bytes of a key.
#[derive(Debug)]
struct Keys {
    entries: Vec<Entry>,
    /// Positions in `entries`, by the hash of their spelling.
    index: HashTable<u32>,
}

/// A hash of a short key: its length and its first and last eight bytes (they overlap below
/// sixteen), mixed by one multiplication. The keys differ in those places.
fn hash(key: &[u8]) -> u64 {
    let (head, tail) = match (key.first_chunk::<8>(), key.last_chunk::<8>()) {
        (Some(head), Some(tail)) => (u64::from_le_bytes(*head), u64::from_le_bytes(*tail)),
        _ => {
            let short = key.iter().fold(0u64, |h, &b| h << 8 | u64::from(b));
            (short, 0)
        }
    };
    let mixed =
        (head ^ tail.rotate_left(23) ^ key.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    mixed ^ (mixed >> 29)
}

impl Keys {
    fn build() -> Keys {
        let mut keys = Keys {
            entries: Vec::new(),
            index: HashTable::new(),
        };
        // The event's own keys first: they take precedence over the blocks', as in
        // `Event::accept`; then the blocks in routing order, the first owner of a key winning.
        let common = [
            ("type", Route::Type),
            ("date_time", Route::DateTime),
            ("initiated_from", Route::InitiatedFrom),
            ("initiated_by", Route::InitiatedBy),
            ("note", Route::Note),
            ("tag", Route::Tag),
            ("list", Route::List),
        ];
        let mut previous = Vec::new();
        for (key, route) in common {
            previous = keys.add(key, route, &previous);
        }
        for (block, block_keys) in Blocks::KEYS.iter().enumerate() {
            for (slot, key) in block_keys.iter().enumerate() {
                let (Ok(block), Ok(slot)) = (u8::try_from(block), u8::try_from(slot)) else {
                    continue;
                };
                previous = keys.add(key, Route::Block(block, slot), &previous);
            }
        }
        keys
    }

    /// Adds `key` as decoded and as escaped, unless a spelling is there already, and makes
    /// it the next key of the entries in `previous`; returns the entries added.
    fn add(&mut self, key: &'static str, route: Route, previous: &[u32]) -> Vec<u32> {
        let mut writer = crate::FormWriter::new();
        writer.pair(key, "");
        let escaped = writer.finish();
        let escaped = escaped.strip_suffix(b"=").unwrap_or(&escaped);
        let mut added = Vec::new();
        for spelling in [key.as_bytes(), escaped] {
            if self.find(spelling).is_some() {
                continue;
            }
            let Ok(at) = u32::try_from(self.entries.len()) else {
                continue;
            };
            self.entries.push(Entry {
                spelling: spelling.into(),
                key,
                depth: depth(key.as_bytes()),
                route,
                next: None,
            });
            let entries = &self.entries;
            self.index.insert_unique(hash(spelling), at, |&i| {
                entries.get(i as usize).map_or(0, |e| hash(&e.spelling))
            });
            added.push(at);
        }
        // The escaped spelling (added last) is the one to predict.
        if let Some(&next) = added.last() {
            for &i in previous {
                if let Some(entry) = self.entries.get_mut(i as usize) {
                    entry.next = Some(next);
                }
            }
        }
        added
    }

    fn find(&self, spelling: &[u8]) -> Option<&Entry> {
        let at = self.index.find(hash(spelling), |&i| {
            self.entries
                .get(i as usize)
                .is_some_and(|e| *e.spelling == *spelling)
        })?;
        self.entries.get(*at as usize)
    }

    /// The entry of `spelling`, trying first the one `after` predicts.
    #[inline]
    fn find_after(&self, after: Option<&Entry>, spelling: &[u8]) -> Option<&Entry> {
        let predicted = after
            .and_then(|e| e.next)
            .and_then(|i| self.entries.get(i as usize));
        match predicted {
            Some(e) if *e.spelling == *spelling => Some(e),
            _ => self.find(spelling),
        }
    }
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(Keys::build)
}

/// The event in `body`, or `None` to let the general decode decide (see the module docs).
pub(super) fn decode(body: &[u8], limits: FormLimits) -> Option<Event> {
    // A body that is not UTF-8 has a field that is not: the general decode says which.
    let body = std::str::from_utf8(body).ok()?;
    let bytes = body.as_bytes();
    let keys = keys();
    let mut event = Event::new(
        EventKind::ALL[0],
        Source::Contact,
        OccurredAt::Legacy(NaiveDateTime::default()),
    );
    event.list_key = ListKey::Absent;
    let mut common = Common::default();
    let mut key = String::new();
    let mut last = None;
    let mut fields = 0;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'&' {
            i += 1;
            continue;
        }
        if fields == limits.max_fields {
            return None;
        }
        fields += 1;
        let end = key_end(bytes, i);
        let raw_key = body.get(i..end)?;
        let raw_value = match bytes.get(end) {
            Some(b'=') => {
                i = value_end(bytes, end + 1);
                body.get(end + 1..i)?
            }
            _ => {
                i = end;
                ""
            }
        };
        let entry = match keys.find_after(last, raw_key.as_bytes()) {
            Some(entry) => Some(entry),
            None => {
                key.clear();
                decode_text(raw_key, &mut key)?;
                // Only as decoded: a key that decodes to `deal%5Bid%5D` is that text, an
                // unknown key, not `deal[id]`.
                keys.find(key.as_bytes())
                    .filter(|e| *e.spelling == *e.key.as_bytes())
            }
        };
        last = entry;
        match entry {
            Some(entry) if entry.depth > limits.max_depth => return None,
            Some(entry) => common.route(&mut event, entry, raw_value)?,
            None => {
                if key.len() > limits.max_depth && depth(key.as_bytes()) > limits.max_depth {
                    return None;
                }
                let value = text(raw_value)?;
                match updated_index(&key) {
                    Some(i) if i == event.updated_fields.len() => event.updated_fields.push(value),
                    Some(_) => return None,
                    None => event.accept(&key, value).ok()?,
                }
            }
        }
    }
    event.kind = common.kind?;
    event.source = common.source?;
    event.occurred_at = common.occurred_at?;
    Some(event)
}

/// A raw value decoded into a `String` of its own, allocated once (decoding never lengthens).
#[inline]
fn text(raw: &str) -> Option<String> {
    let mut value = String::with_capacity(raw.len());
    decode_text(raw, &mut value)?;
    Some(value)
}

/// The common keys, each taken from its first occurrence.
#[derive(Default)]
struct Common {
    kind: Option<EventKind>,
    source: Option<Source>,
    occurred_at: Option<OccurredAt>,
    /// Where a common key's value is decoded, to be parsed.
    scratch: String,
}

impl Common {
    /// Fills what `entry` names with the value `raw` decodes to; a repeat goes among the
    /// unknown pairs.
    #[inline]
    fn route(&mut self, event: &mut Event, entry: &Entry, raw: &str) -> Option<()> {
        let back = match entry.route {
            Route::Type if self.kind.is_none() => {
                self.kind = Some(self.scratch(raw)?.parse().ok()?);
                None
            }
            Route::DateTime if self.occurred_at.is_none() => {
                self.occurred_at = Some(self.scratch(raw)?.parse().ok()?);
                None
            }
            Route::InitiatedFrom if self.source.is_none() => {
                self.source = Some(self.scratch(raw)?.parse().ok()?);
                None
            }
            Route::Type | Route::DateTime | Route::InitiatedFrom => Some(text(raw)?),
            Route::InitiatedBy => fill(&mut event.initiated_by, text(raw)?),
            Route::Note => fill(&mut event.note, text(raw)?),
            Route::Tag => fill(&mut event.tag, text(raw)?),
            Route::List if event.list_key == ListKey::Absent => {
                (event.list, event.list_key) = parse_list(self.scratch(raw)?).ok()?;
                None
            }
            Route::List => Some(text(raw)?),
            Route::Block(block, slot) => {
                // Straight into the block's text: no allocation of its own.
                let filled = event.blocks.fill_with(block.into(), slot.into(), |text| {
                    // A block's first value makes room for a few (a full deal holds ~500
                    // bytes), so that the text is not regrown at every field.
                    text.reserve(if text.capacity() == 0 {
                        raw.len().max(256)
                    } else {
                        raw.len()
                    });
                    decode_text(raw, text)
                })?;
                if filled { None } else { Some(text(raw)?) }
            }
        };
        if let Some(value) = back {
            event.extra.push((entry.key.to_owned(), value));
        }
        Some(())
    }

    /// `raw` decoded into the scratch buffer.
    fn scratch(&mut self, raw: &str) -> Option<&str> {
        self.scratch.clear();
        decode_text(raw, &mut self.scratch)?;
        Some(&self.scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block key is found under both spellings, routed to the block that
    /// `Blocks::accept` gives it.
    #[test]
    fn every_modelled_key_is_found_under_both_spellings() {
        let keys = keys();
        for block_keys in Blocks::KEYS {
            for key in *block_keys {
                let escaped = crate::Form::from_iter([(*key, "")]).to_string();
                for spelling in [*key, escaped.trim_end_matches('=')] {
                    let entry = keys.find(spelling.as_bytes()).expect(spelling);
                    assert_eq!(entry.key, *key);
                    let mut blocks = Blocks::default();
                    let Route::Block(b, s) = entry.route else {
                        panic!("{key} is not routed to a block");
                    };
                    assert_eq!(
                        blocks.fill_with(b.into(), s.into(), |t| {
                            t.push('v');
                            Some(())
                        }),
                        Some(true)
                    );
                    let mut expected = Blocks::default();
                    assert_eq!(expected.accept(key, "v".into()), None);
                    assert_eq!(blocks, expected, "{key}");
                }
            }
        }
        assert!(
            keys.find(b"deal%5bid%5d").is_none(),
            "lower-case hex is decoded first"
        );
        // Each key predicts the next one of its block, by its escaped spelling.
        for block_keys in Blocks::KEYS {
            for pair in block_keys.windows(2) {
                let entry = keys.find(pair[0].as_bytes()).unwrap();
                let next = &keys.entries[entry.next.unwrap() as usize];
                assert_eq!(next.key, pair[1]);
                assert_eq!(
                    *next.spelling,
                    *crate::FormWriter::escape(pair[1]).as_bytes()
                );
            }
        }
    }
}
