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

/// Defines a block: a struct of `Option<String>` fields (absent / present, possibly empty),
/// each with a getter, a consuming `with_` builder and a `set_` setter, its wire keys in
/// order, and the [`Block`] impl. `@scalars` skips the `Block` impl for blocks that add
/// fields of their own.
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
                match self.slot(key) {
                    Some(slot) => crate::payload::block::fill(slot, value),
                    None => Some(value),
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
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
        pub struct $name {
            $( $field: Option<String>, )*
            $( $( $(#[$xmeta])* $xfield: $xty, )* )?
        }

        impl $name {
            /// The wire keys of the block's fields, in the order they are written.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// An empty block.
            pub fn new() -> Self {
                Self::default()
            }

            /// The value of one of [`Self::KEYS`], if present.
            pub fn get(&self, key: &str) -> Option<&str> {
                match key {
                    $( $key => self.$field.as_deref(), )*
                    _ => None,
                }
            }

            crate::payload::block::scalar_accessors! {
                $( $(#[$fmeta])* $field, $with, $set => $key; )*
            }

            /// The slot of `Self::KEYS[i]`.
            #[allow(unused_assignments)] // The last `n += 1`.
            pub(crate) fn slot_at(&mut self, i: usize) -> Option<&mut Option<String>> {
                let mut n = 0;
                $(
                    if i == n {
                        return Some(&mut self.$field);
                    }
                    n += 1;
                )*
                None
            }

            fn slot(&mut self, key: &str) -> Option<&mut Option<String>> {
                match key {
                    $( $key => Some(&mut self.$field), )*
                    _ => None,
                }
            }

            fn write_scalars(&self, w: &mut crate::FormWriter) {
                $(
                    if let Some(value) = &self.$field {
                        w.pair_escaped(crate::form::escaped!($key), value);
                    }
                )*
            }

            fn scalars_empty(&self) -> bool {
                true $( && self.$field.is_none() )*
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
