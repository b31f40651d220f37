//! The one table that drives every block: `block!` turns a list of `(field, wire key)` into the
//! struct, its accessors and setters, and the decode/encode hooks ([`Block`]).

/// What encode and decode need from a block; implemented by `block!` (and by hand for
/// [`Contact`](crate::Contact), which adds custom fields).
pub(crate) trait Block: Default {
    /// Whether `key` belongs to this block.
    fn owns(key: &str) -> bool;
    /// Takes the value of `key` if its slot is empty; hands it back otherwise (a repeated key,
    /// which the caller keeps among the unknown pairs).
    fn accept(&mut self, key: &str, value: String) -> Option<String>;
    /// Writes each present pair, in wire order.
    fn write(&self, w: &mut crate::FormWriter);
    /// Whether no key is present.
    fn is_empty(&self) -> bool;
}

/// Fills an empty slot; hands the value back when the slot is taken.
#[inline]
pub(crate) fn fill(slot: &mut Option<String>, value: String) -> Option<String> {
    if slot.is_some() {
        return Some(value);
    }
    *slot = Some(value);
    None
}

/// Where a field's value is in its block's text, or that it is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// An absent field.
    pub(crate) const ABSENT: Span = Span {
        start: usize::MAX,
        end: usize::MAX,
    };

    fn is_absent(self) -> bool {
        self.start == usize::MAX
    }
}

/// 1, for counting a macro's repetitions in a constant.
pub(crate) const fn one(_: &str) -> usize {
    1
}

/// The position of `key` in `keys` (at compile time); `keys.len()` if absent.
pub(crate) const fn index_of(keys: &[&str], key: &str) -> usize {
    let mut i = 0;
    while i < keys.len() {
        let (a, b) = (keys[i].as_bytes(), key.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    keys.len()
}

/// The values of a block's fields, all in one `String`: one allocation per block, where there
/// was one per field. A value set again is appended; the text is compacted when more than
/// half of it is left over.
#[derive(Clone)]
pub(crate) struct Texts<const N: usize> {
    text: String,
    spans: [Span; N],
    /// Bytes of `text` no field points at (values replaced or removed).
    waste: usize,
}

impl<const N: usize> Default for Texts<N> {
    fn default() -> Self {
        Texts {
            text: String::new(),
            spans: [Span::ABSENT; N],
            waste: 0,
        }
    }
}

impl<const N: usize> Texts<N> {
    /// Field `i`'s value, if present.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&str> {
        let span = *self.spans.get(i)?;
        if span.is_absent() {
            return None;
        }
        self.text.get(span.start..span.end)
    }

    /// Whether field `i` is present.
    #[inline]
    pub(crate) fn is_set(&self, i: usize) -> bool {
        self.spans.get(i).is_some_and(|s| !s.is_absent())
    }

    /// Whether no field is present.
    pub(crate) fn is_empty(&self) -> bool {
        self.spans.iter().all(|s| s.is_absent())
    }

    /// Sets (`Some`) or removes (`None`) field `i`.
    pub(crate) fn set(&mut self, i: usize, value: Option<&str>) {
        let Some(slot) = self.spans.get_mut(i) else {
            return;
        };
        if !slot.is_absent() {
            self.waste += slot.end - slot.start;
        }
        *slot = Span::ABSENT;
        self.compact();
        if let Some(value) = value {
            let _ = self.fill_with(i, |text| {
                text.push_str(value);
                Some(())
            });
        }
    }

    /// Fills field `i` if it is absent, with what `write` appends to the text: `Some(true)`.
    /// `Some(false)` when it is present (nothing written), `None` when `write` fails (then
    /// the field stays absent and what it wrote is dropped). `write` may only append.
    #[inline]
    pub(crate) fn fill_with(
        &mut self,
        i: usize,
        write: impl FnOnce(&mut String) -> Option<()>,
    ) -> Option<bool> {
        if self.spans.get(i)?.is_absent() {
            let start = self.text.len();
            if write(&mut self.text).is_none() {
                self.text.truncate(start);
                return None;
            }
            let end = self.text.len();
            debug_assert!(end >= start, "a fill may only append");
            *self.spans.get_mut(i)? = Span { start, end };
            Some(true)
        } else {
            Some(false)
        }
    }

    /// Drops the text no field points at, once it is more than half of the text.
    fn compact(&mut self) {
        if self.waste <= self.text.len() / 2 + 32 {
            return;
        }
        let mut text = String::with_capacity(self.text.len() - self.waste);
        for span in &mut self.spans {
            if span.is_absent() {
                continue;
            }
            let start = text.len();
            text.push_str(self.text.get(span.start..span.end).unwrap_or_default());
            *span = Span {
                start,
                end: text.len(),
            };
        }
        self.text = text;
        self.waste = 0;
    }
}

/// Defines a block: a struct of fields that are absent or present (possibly empty), their
/// values kept in one [`Texts`], each with a getter, a consuming `with_` builder and a `set_`
/// setter, its wire keys in order, and the [`Block`] impl. `@scalars` skips the `Block` impl
/// for blocks that add fields of their own.
macro_rules! block {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident, $with:ident, $set:ident => $key:literal; )*
        }
    ) => {
        block!(@scalars $(#[$meta])* pub struct $name {
            $( $(#[$fmeta])* $field, $with, $set => $key; )*
        });

        impl crate::payload::block::Block for $name {
            #[inline]
            fn owns(key: &str) -> bool {
                Self::KEYS.contains(&key)
            }

            fn accept(&mut self, key: &str, value: String) -> Option<String> {
                match Self::index(key) {
                    Some(i) if !self.texts.is_set(i) => {
                        self.texts.set(i, Some(&value));
                        None
                    }
                    _ => Some(value),
                }
            }

            fn write(&self, w: &mut crate::FormWriter) {
                self.write_scalars(w);
            }

            fn is_empty(&self) -> bool {
                self.scalars_empty()
            }
        }
    };
    (
        @scalars
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident, $with:ident, $set:ident => $key:literal; )*
        }
        $( extra { $( $(#[$xmeta:meta])* $xfield:ident : $xty:ty, )* } )?
    ) => {
        $(#[$meta])*
        ///
        /// Each field is `None` when its key is absent and `Some("")` when it is present but
        /// empty, so every byte received is written back.
        #[derive(Clone, Default)]
        pub struct $name {
            /// The fields' values, field `i` being [`Self::KEYS`]`[i]`.
            pub(crate) texts: crate::payload::block::Texts<{ 0 $( + crate::payload::block::one($key) )* }>,
            $( $( $(#[$xmeta])* $xfield: $xty, )* )?
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    $( .field(stringify!($field), &self.$field()) )*
                    $( $( .field(stringify!($xfield), &self.$xfield) )* )?
                    .finish()
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                true $( && self.$field() == other.$field() )*
                    $( $( && self.$xfield == other.$xfield )* )?
            }
        }

        impl Eq for $name {}

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                $( self.$field().hash(state); )*
                $( $( self.$xfield.hash(state); )* )?
            }
        }

        impl $name {
            /// The wire keys of the block's fields, in the order they are written.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// The same keys, escaped for the wire.
            const ESCAPED_KEYS: &'static [&'static str] = &[$(crate::form::escaped!($key)),*];

            /// An empty block.
            pub fn new() -> Self {
                Self::default()
            }

            /// The value of one of [`Self::KEYS`], if present.
            pub fn get(&self, key: &str) -> Option<&str> {
                self.texts.get(Self::index(key)?)
            }

            $(
                $(#[$fmeta])*
                #[doc = concat!("\n\nWire key: `", $key, "`.")]
                #[inline]
                pub fn $field(&self) -> Option<&str> {
                    self.texts.get(const { crate::payload::block::index_of(Self::KEYS, $key) })
                }

                #[doc = concat!("`self` with `", $key, "` set to `value`.")]
                #[must_use]
                pub fn $with(mut self, value: impl Into<String>) -> Self {
                    let i = const { crate::payload::block::index_of(Self::KEYS, $key) };
                    self.texts.set(i, Some(&value.into()));
                    self
                }

                #[doc = concat!("Sets (`Some`) or removes (`None`) `", $key, "`.")]
                pub fn $set(&mut self, value: Option<String>) -> &mut Self {
                    let i = const { crate::payload::block::index_of(Self::KEYS, $key) };
                    self.texts.set(i, value.as_deref());
                    self
                }
            )*

            /// The position of `key` in [`Self::KEYS`].
            fn index(key: &str) -> Option<usize> {
                match key {
                    $( $key => Some(const { crate::payload::block::index_of(Self::KEYS, $key) }), )*
                    _ => None,
                }
            }

            fn write_scalars(&self, w: &mut crate::FormWriter) {
                for (i, key) in Self::ESCAPED_KEYS.iter().enumerate() {
                    if let Some(value) = self.texts.get(i) {
                        w.pair_escaped(key, value);
                    }
                }
            }

            fn scalars_empty(&self) -> bool {
                self.texts.is_empty()
            }
        }
    };
}

/// Getter, consuming `with_` builder and `set_` setter for `Option<String>` fields, each
/// documented with its wire key. Expands inside an `impl` block.
macro_rules! scalar_accessors {
    ($( $(#[$fmeta:meta])* $field:ident, $with:ident, $set:ident => $key:literal; )*) => {
        $(
            $(#[$fmeta])*
            #[doc = concat!("\n\nWire key: `", $key, "`.")]
            #[inline]
            pub fn $field(&self) -> Option<&str> {
                self.$field.as_deref()
            }

            #[doc = concat!("`self` with `", $key, "` set to `value`.")]
            #[must_use]
            pub fn $with(mut self, value: impl Into<String>) -> Self {
                self.$field = Some(value.into());
                self
            }

            #[doc = concat!("Sets (`Some`) or removes (`None`) `", $key, "`.")]
            pub fn $set(&mut self, value: Option<String>) -> &mut Self {
                self.$field = value;
                self
            }
        )*
    };
}

pub(crate) use {block, scalar_accessors};

#[cfg(test)]
mod tests {
    use super::Texts;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of sets, removals and fills reads back as a plain array of
        /// `Option<String>` would, and the text never holds much more than the values.
        #[test]
        fn texts_behave_as_separate_strings(ops in proptest::collection::vec(
            (0usize..5, prop::option::of("[a-zé]{0,12}"), any::<bool>()),
            0..60,
        )) {
            let mut texts = Texts::<4>::default();
            let mut model: [Option<String>; 4] = Default::default();
            for (i, value, fill) in ops {
                if fill {
                    let value = value.unwrap_or_default();
                    // A value that starts with `z` fails midway: nothing of it stays.
                    let fails = value.starts_with('z');
                    let filled = texts.fill_with(i, |t| {
                        t.push_str(&value);
                        (!fails).then_some(())
                    });
                    let expected = model.get_mut(i).map(|slot| {
                        let empty = slot.is_none();
                        if empty && !fails {
                            *slot = Some(value);
                        }
                        empty
                    });
                    if fails {
                        prop_assert!(filled.is_none() || filled == Some(false));
                    } else {
                        prop_assert_eq!(filled, expected);
                    }
                } else {
                    texts.set(i, value.as_deref());
                    if let Some(slot) = model.get_mut(i) {
                        *slot = value;
                    }
                }
                for (j, slot) in model.iter().enumerate() {
                    prop_assert_eq!(texts.get(j), slot.as_deref());
                    prop_assert_eq!(texts.is_set(j), slot.is_some());
                }
                prop_assert_eq!(texts.is_empty(), model.iter().all(Option::is_none));
                let live: usize = model.iter().flatten().map(String::len).sum();
                // Compacted once more than half is left over (and 32 bytes): at most twice the
                // values, 64 bytes and the value just appended.
                prop_assert!(texts.text.len() <= 2 * live + 64 + 12, "{} for {}", texts.text.len(), live);
            }
            prop_assert_eq!(texts.get(4), None);
        }
    }
}
