//! JSON building blocks for the typed, lossless log records.
//!
//! The records must (a) borrow strings from the input instead of allocating, (b) never reject a
//! record because AWS added a field or a producer used an odd type, and (c) serialise back to the
//! same JSON. [`json_record!`] generates structs with those properties: every known key is parsed
//! into its typed field; a key we do not know, an explicit `null`, a value of an unexpected type
//! or a duplicate key is kept verbatim (as raw JSON text) in `extra`, so nothing is ever lost.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

/// A JSON string that borrows from the input unless it contained escapes.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'a> Text<'a> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_owned(self) -> Text<'static> {
        Text(Cow::Owned(self.0.into_owned()))
    }
}

impl Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text(Cow::Borrowed(s))
    }
}

impl PartialEq<str> for Text<'_> {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}
impl PartialEq<&str> for Text<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A boolean that some producers write as a string (`"true"`); the original form is kept so the
/// record serialises back unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MaybeBool<'a> {
    Bool(bool),
    Str(Text<'a>),
}

impl MaybeBool<'_> {
    /// The boolean value; strings are compared case-insensitively with `true` / `false`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            MaybeBool::Bool(b) => Some(*b),
            MaybeBool::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            MaybeBool::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            MaybeBool::Str(_) => None,
        }
    }
}

impl Serialize for MaybeBool<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MaybeBool::Bool(b) => s.serialize_bool(*b),
            MaybeBool::Str(t) => t.serialize(s),
        }
    }
}

/// Conversion of one already-delimited JSON value into a typed field. `None` means "not this
/// type": the caller then keeps the raw text in `extra`.
pub trait FromRaw<'a>: Sized {
    fn from_raw(raw: &'a RawValue) -> Option<Self>;
}

impl<'a> FromRaw<'a> for &'a RawValue {
    fn from_raw(raw: &'a RawValue) -> Option<Self> {
        Some(raw)
    }
}

impl<'a> FromRaw<'a> for Text<'a> {
    fn from_raw(raw: &'a RawValue) -> Option<Self> {
        let s = raw.get();
        let b = s.as_bytes();
        if b.len() < 2 || b[0] != b'"' {
            return None;
        }
        // Fast path: a string without escapes is its own content (serde_json already validated it).
        if memchr::memchr(b'\\', b).is_none() {
            return Some(Text(Cow::Borrowed(&s[1..s.len() - 1])));
        }
        serde_json::from_str(s).ok()
    }
}

impl<'a> FromRaw<'a> for MaybeBool<'a> {
    fn from_raw(raw: &'a RawValue) -> Option<Self> {
        match raw.get() {
            "true" => Some(MaybeBool::Bool(true)),
            "false" => Some(MaybeBool::Bool(false)),
            _ => Text::from_raw(raw).map(MaybeBool::Str),
        }
    }
}

/// Parses through serde; used for nested records and lists of them.
pub(crate) fn from_raw_serde<'a, T: de::Deserialize<'a>>(raw: &'a RawValue) -> Option<T> {
    serde_json::from_str(raw.get()).ok()
}

impl<'a, T: de::Deserialize<'a>> FromRaw<'a> for Vec<T> {
    fn from_raw(raw: &'a RawValue) -> Option<Self> {
        from_raw_serde(raw)
    }
}

/// Keys and raw values that did not map onto a typed field (unknown, `null`, odd type, duplicate).
pub type Extra<'a> = Vec<(Text<'a>, &'a RawValue)>;

/// Looks a key up in `extra`.
pub fn extra_get<'a>(extra: &Extra<'a>, key: &str) -> Option<&'a RawValue> {
    extra
        .iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| *v)
}

/// Generates a lossless record struct; see the module docs.
macro_rules! json_record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident<'a> {
            $( $(#[$fmeta:meta])* $key:literal => $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default)]
        pub struct $name<'a> {
            $( $(#[$fmeta])* pub $field: Option<$ty>, )*
            /// Unknown, `null`, oddly typed or duplicate keys, verbatim.
            pub extra: $crate::event::json::Extra<'a>,
        }

        impl<'a> $name<'a> {
            /// The JSON keys this struct types (everything else goes to `extra`).
            #[allow(dead_code)]
            pub const KEYS: &'static [&'static str] = &[$($key),*];
        }

        impl<'a> serde::de::Deserialize<'a> for $name<'a> {
            fn deserialize<D: serde::de::Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'a> serde::de::Visitor<'a> for V {
                    type Value = $name<'a>;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a JSON object (", stringify!($name), ")"))
                    }
                    fn visit_map<M: serde::de::MapAccess<'a>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                        let mut out = $name::default();
                        while let Some(key) = map.next_key::<$crate::event::json::Text<'a>>()? {
                            let raw: &'a serde_json::value::RawValue = map.next_value()?;
                            let typed = match key.as_str() {
                                $( $key if out.$field.is_none() && raw.get() != "null" => {
                                    match <$ty as $crate::event::json::FromRaw<'a>>::from_raw(raw) {
                                        Some(v) => { out.$field = Some(v); true }
                                        None => false,
                                    }
                                } )*
                                _ => false,
                            };
                            if !typed {
                                out.extra.push((key, raw));
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(V)
            }
        }

        impl<'a> $crate::event::json::FromRaw<'a> for $name<'a> {
            fn from_raw(raw: &'a serde_json::value::RawValue) -> Option<Self> {
                $crate::event::json::from_raw_serde(raw)
            }
        }

        impl serde::ser::Serialize for $name<'_> {
            fn serialize<S: serde::ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(None)?;
                $( if let Some(v) = &self.$field { m.serialize_entry($key, v)?; } )*
                for (k, v) in &self.extra {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    };
}
pub(crate) use json_record;

/// One element of a JSON array (or one top-level value) that should be a record object.
/// Anything else becomes `NotObject` so the caller can count it as malformed and carry on.
pub enum Element<R> {
    Record(R),
    NotObject(&'static str),
}

impl<'de, R: de::Deserialize<'de>> de::Deserialize<'de> for Element<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<R>(std::marker::PhantomData<R>);
        impl<'de, R: de::Deserialize<'de>> Visitor<'de> for V<R> {
            type Value = Element<R>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                R::deserialize(de::value::MapAccessDeserializer::new(map)).map(Element::Record)
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Element::NotObject("an array"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Element::NotObject("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Element::NotObject("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Element::NotObject("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Element::NotObject("a number"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Element::NotObject("a string"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Element::NotObject("null"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}
