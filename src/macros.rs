//! Code shared by the id enums ([`EventKind`](crate::EventKind), [`Source`](crate::Source)) and
//! their bit sets ([`EventSet`](crate::EventSet), [`SourceSet`](crate::SourceSet)).

/// `Display`, `FromStr`, `TryFrom<&str>` and serde as the wire id, for an enum with
/// `as_str()` and `from_id()`; `$err::new(&str)` is the error for an unknown id.
macro_rules! wire_id {
    ($ty:ident, $err:ident) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $err;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::from_id(s).ok_or_else(|| $err::new(s))
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = $err;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use wire_id;

/// Defines a `Copy` bit set over an enum that has `ALL`, `index()` and an id string.
macro_rules! bit_set {
    ($(#[$doc:meta])* $name:ident, $iter:ident, $elem:ident, $bits:ty) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name($bits);

        impl $name {
            const FULL: $bits = if $elem::ALL.len() == <$bits>::BITS as usize {
                <$bits>::MAX
            } else {
                (1 << $elem::ALL.len()) - 1
            };

            /// The set of every member.
            #[inline]
            pub const fn all() -> Self {
                $name(Self::FULL)
            }

            /// The empty set.
            #[inline]
            pub const fn empty() -> Self {
                $name(0)
            }

            /// Whether `item` is in the set.
            #[inline]
            pub const fn contains(self, item: $elem) -> bool {
                self.0 & (1 << item.index()) != 0
            }

            /// Adds `item`; returns whether it was absent before.
            #[inline]
            pub fn insert(&mut self, item: $elem) -> bool {
                let absent = !self.contains(item);
                self.0 |= 1 << item.index();
                absent
            }

            /// Removes `item`; returns whether it was present.
            #[inline]
            pub fn remove(&mut self, item: $elem) -> bool {
                let present = self.contains(item);
                self.0 &= !(1 << item.index());
                present
            }

            /// This set with `item` added (for `const` and chained building).
            #[inline]
            #[must_use]
            pub const fn with(self, item: $elem) -> Self {
                $name(self.0 | (1 << item.index()))
            }

            /// The number of members.
            #[inline]
            pub const fn len(self) -> usize {
                self.0.count_ones() as usize
            }

            /// Whether the set has no member.
            #[inline]
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// Members in common with `other`.
            #[inline]
            #[must_use]
            pub const fn intersection(self, other: Self) -> Self {
                $name(self.0 & other.0)
            }

            /// Members of either set.
            #[inline]
            #[must_use]
            pub const fn union(self, other: Self) -> Self {
                $name(self.0 | other.0)
            }

            /// Members of `self` not in `other`.
            #[inline]
            #[must_use]
            pub const fn difference(self, other: Self) -> Self {
                $name(self.0 & !other.0)
            }

            /// The members, in the order of `ALL`.
            #[inline]
            pub const fn iter(self) -> $iter {
                $iter(self.0)
            }

            /// The raw bits: bit `i` stands for the `i`-th member of `ALL`.
            #[inline]
            pub const fn bits(self) -> $bits {
                self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_set().entries(self.iter()).finish()
            }
        }

        impl FromIterator<$elem> for $name {
            fn from_iter<I: IntoIterator<Item = $elem>>(iter: I) -> Self {
                let mut set = $name::empty();
                set.extend(iter);
                set
            }
        }

        impl Extend<$elem> for $name {
            fn extend<I: IntoIterator<Item = $elem>>(&mut self, iter: I) {
                for item in iter {
                    self.insert(item);
                }
            }
        }

        impl<'a> FromIterator<&'a $elem> for $name {
            fn from_iter<I: IntoIterator<Item = &'a $elem>>(iter: I) -> Self {
                iter.into_iter().copied().collect()
            }
        }

        impl<'a> Extend<&'a $elem> for $name {
            fn extend<I: IntoIterator<Item = &'a $elem>>(&mut self, iter: I) {
                self.extend(iter.into_iter().copied());
            }
        }

        impl IntoIterator for &$name {
            type Item = $elem;
            type IntoIter = $iter;

            #[inline]
            fn into_iter(self) -> $iter {
                self.iter()
            }
        }

        impl From<$elem> for $name {
            fn from(item: $elem) -> Self {
                $name::empty().with(item)
            }
        }

        impl IntoIterator for $name {
            type Item = $elem;
            type IntoIter = $iter;

            #[inline]
            fn into_iter(self) -> $iter {
                self.iter()
            }
        }

        #[doc = concat!("The members of a [`", stringify!($name), "`], in the order of `ALL`.")]
        #[derive(Debug, Clone)]
        pub struct $iter($bits);

        impl Iterator for $iter {
            type Item = $elem;

            #[inline]
            fn next(&mut self) -> Option<$elem> {
                if self.0 == 0 {
                    return None;
                }
                let index = self.0.trailing_zeros() as usize;
                self.0 &= self.0 - 1;
                Some($elem::ALL[index])
            }

            #[inline]
            fn size_hint(&self) -> (usize, Option<usize>) {
                let n = self.0.count_ones() as usize;
                (n, Some(n))
            }
        }

        impl DoubleEndedIterator for $iter {
            #[inline]
            fn next_back(&mut self) -> Option<$elem> {
                if self.0 == 0 {
                    return None;
                }
                let index = (<$bits>::BITS - 1 - self.0.leading_zeros()) as usize;
                self.0 &= !(1 << index);
                Some($elem::ALL[index])
            }
        }

        impl ExactSizeIterator for $iter {}

        impl std::iter::FusedIterator for $iter {}

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.iter())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl<'de> serde::de::Visitor<'de> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a list of ids")
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<$name, A::Error> {
                        let mut set = $name::empty();
                        while let Some(item) = seq.next_element::<$elem>()? {
                            set.insert(item);
                        }
                        Ok(set)
                    }
                }
                deserializer.deserialize_seq(Visitor)
            }
        }
    };
}

pub(crate) use bit_set;
