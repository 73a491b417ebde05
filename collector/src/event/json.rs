//! JSON building blocks for the typed, lossless log records.
//!
//! The records must (a) borrow strings from the input instead of allocating, (b) never reject a
//! record because AWS added a field or a producer used an odd type, and (c) serialise back to the
//! same JSON. [`json_record!`] generates structs with those properties: every known key is parsed
//! into its typed field; a key we do not know, an explicit `null`, a value of an unexpected type
//! or a duplicate key is kept verbatim in `extra`, so nothing is ever lost. Each
//! value is read in a single pass over the input.

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

/// A value kept verbatim in `extra`: raw JSON text borrowed from the input, or (for a value whose
/// type did not match its typed field and was therefore already consumed) the parsed value.
#[derive(Clone, Debug)]
pub enum Json<'a> {
    Raw(&'a RawValue),
    Value(serde_json::Value),
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Raw(r) => r.serialize(s),
            Json::Value(v) => v.serialize(s),
        }
    }
}

impl<'a> Json<'a> {
    /// The raw text, when the value was kept unparsed (always the case for unknown keys).
    pub fn raw(&self) -> Option<&'a RawValue> {
        match self {
            Json::Raw(r) => Some(r),
            Json::Value(_) => None,
        }
    }

    /// The value as an owned tree.
    pub fn to_value(&self) -> serde_json::Value {
        match self {
            Json::Raw(r) => serde_json::from_str(r.get()).unwrap_or(serde_json::Value::Null),
            Json::Value(v) => v.clone(),
        }
    }
}

/// Keys and values that did not map onto a typed field (unknown, `null`, odd type, duplicate).
pub type Extra<'a> = Vec<(Text<'a>, Json<'a>)>;

/// Looks a key up in `extra`.
pub fn extra_get<'e, 'a>(extra: &'e Extra<'a>, key: &str) -> Option<&'e Json<'a>> {
    extra
        .iter()
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, v)| v)
}

/// Raw text of an unknown key in `extra` (unknown keys are always kept raw).
pub fn extra_raw<'a>(extra: &Extra<'a>, key: &str) -> Option<&'a RawValue> {
    extra_get(extra, key).and_then(Json::raw)
}

/// How a typed field reads its value from a JSON object, in one pass over the input.
/// `Ok(Err(json))` means "present but not of this type": the value goes to `extra` unchanged.
pub trait Field<'a>: Sized {
    fn read<M: MapAccess<'a>>(map: &mut M) -> Result<Result<Self, Json<'a>>, M::Error>;

    /// Like [`Field::read`] but stores into `slot`, returning the value for `extra` on a type
    /// mismatch. Nested records override it to fill the slot in place: records are large
    /// structs, and moving them through return values showed up as a tenth of parse time.
    fn read_into<M: MapAccess<'a>>(
        slot: &mut Option<Self>,
        map: &mut M,
    ) -> Result<Option<Json<'a>>, M::Error> {
        Ok(match Self::read(map)? {
            Ok(v) => {
                *slot = Some(v);
                None
            }
            Err(j) => Some(j),
        })
    }
}

/// A record type that can be filled in place from a JSON object's entries.
pub trait MapRecord<'a>: Default {
    fn fill<M: MapAccess<'a>>(&mut self, map: M) -> Result<(), M::Error>;
}

/// Deserialises one array element / top-level value into a reused record slot. Returns
/// `Ok(None)` when the value was an object (the slot is filled), else what it was instead.
pub struct ElementSeed<'s, R>(pub &'s mut R);

impl<'de, R: MapRecord<'de>> de::DeserializeSeed<'de> for ElementSeed<'_, R> {
    type Value = Option<&'static str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, R: MapRecord<'de>> Visitor<'de> for ElementSeed<'_, R> {
    type Value = Option<&'static str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
        *self.0 = R::default();
        self.0.fill(map)?;
        Ok(None)
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Some("an array"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Some("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Some("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Some("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Some("a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Some("a string"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Some("null"))
    }
}

/// Scalars a string-typed field accepts.
trait FromScalar<'de>: Sized {
    fn from_str(s: Cow<'de, str>) -> Self;
    fn from_bool(b: bool) -> Option<Self>;
}

impl<'de> FromScalar<'de> for Text<'de> {
    fn from_str(s: Cow<'de, str>) -> Self {
        Text(s)
    }
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
}

impl<'de> FromScalar<'de> for MaybeBool<'de> {
    fn from_str(s: Cow<'de, str>) -> Self {
        MaybeBool::Str(Text(s))
    }
    fn from_bool(b: bool) -> Option<Self> {
        Some(MaybeBool::Bool(b))
    }
}

/// Reads a string (or bool) field; any other JSON value is handed back for `extra`.
struct ScalarSeed<T>(std::marker::PhantomData<T>);

impl<'de, T: FromScalar<'de>> de::DeserializeSeed<'de> for ScalarSeed<T> {
    type Value = Result<T, Json<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: FromScalar<'de>> Visitor<'de> for ScalarSeed<T> {
    type Value = Result<T, Json<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Ok(T::from_str(Cow::Borrowed(v))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Ok(T::from_str(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Ok(T::from_str(Cow::Owned(v))))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(T::from_bool(v).ok_or(Json::Value(v.into())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Err(Json::Value(v.into())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Err(Json::Value(v.into())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Err(Json::Value(v.into())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err(Json::Value(serde_json::Value::Null)))
    }
    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
        let v = de::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(Err(Json::Value(v)))
    }
    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
        let v = de::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Err(Json::Value(v)))
    }
}

impl<'a> Field<'a> for Text<'a> {
    fn read<M: MapAccess<'a>>(map: &mut M) -> Result<Result<Self, Json<'a>>, M::Error> {
        map.next_value_seed(ScalarSeed::<Text<'a>>(std::marker::PhantomData))
    }
}

impl<'a> Field<'a> for MaybeBool<'a> {
    fn read<M: MapAccess<'a>>(map: &mut M) -> Result<Result<Self, Json<'a>>, M::Error> {
        map.next_value_seed(ScalarSeed::<MaybeBool<'a>>(std::marker::PhantomData))
    }
}

/// Free-form objects stay raw; `null` goes to `extra` so the typed field means "has a value".
impl<'a> Field<'a> for &'a RawValue {
    fn read<M: MapAccess<'a>>(map: &mut M) -> Result<Result<Self, Json<'a>>, M::Error> {
        let raw: &'a RawValue = map.next_value()?;
        Ok(if raw.get() == "null" {
            Err(Json::Raw(raw))
        } else {
            Ok(raw)
        })
    }
}

/// Lists are small and rare: delimit raw, then parse; a list that does not fit stays raw.
impl<'a, T: de::Deserialize<'a>> Field<'a> for Vec<T> {
    fn read<M: MapAccess<'a>>(map: &mut M) -> Result<Result<Self, Json<'a>>, M::Error> {
        let raw: &'a RawValue = map.next_value()?;
        Ok(serde_json::from_str(raw.get()).map_err(|_| Json::Raw(raw)))
    }
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

            /// Reads the object's entries (one pass over the input).
            pub fn from_map<M: serde::de::MapAccess<'a>>(map: M) -> Result<Self, M::Error> {
                let mut out = $name::default();
                $crate::event::json::MapRecord::fill(&mut out, map)?;
                Ok(out)
            }
        }

        impl<'a> $crate::event::json::MapRecord<'a> for $name<'a> {
            fn fill<M: serde::de::MapAccess<'a>>(&mut self, mut map: M) -> Result<(), M::Error> {
                use $crate::event::json::{Field, Json, Text};
                while let Some(key) = map.next_key::<Text<'a>>()? {
                    match key.as_str() {
                        $( $key if self.$field.is_none() => {
                            if let Some(j) = <$ty as Field<'a>>::read_into(&mut self.$field, &mut map)? {
                                self.extra.push((key, j));
                            }
                        } )*
                        _ => {
                            let raw: &'a serde_json::value::RawValue = map.next_value()?;
                            self.extra.push((key, Json::Raw(raw)));
                        }
                    }
                }
                Ok(())
            }
        }

        impl<'a> serde::de::Deserialize<'a> for $name<'a> {
            fn deserialize<D: serde::de::Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'a> serde::de::Visitor<'a> for V {
                    type Value = $name<'a>;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a JSON object (", stringify!($name), ")"))
                    }
                    fn visit_map<M: serde::de::MapAccess<'a>>(self, map: M) -> Result<Self::Value, M::Error> {
                        $name::from_map(map)
                    }
                }
                d.deserialize_map(V)
            }
        }

        /// A nested record: parsed in place when it is an object, kept for `extra` otherwise.
        impl<'a> $crate::event::json::Field<'a> for $name<'a> {
            fn read<M: serde::de::MapAccess<'a>>(
                map: &mut M,
            ) -> Result<Result<Self, $crate::event::json::Json<'a>>, M::Error> {
                let mut slot = None;
                Ok(match Self::read_into(&mut slot, map)? {
                    None => Ok(slot.unwrap_or_default()),
                    Some(j) => Err(j),
                })
            }

            fn read_into<M: serde::de::MapAccess<'a>>(
                slot: &mut Option<Self>,
                map: &mut M,
            ) -> Result<Option<$crate::event::json::Json<'a>>, M::Error> {
                use serde::de::{self as de, Deserializer, MapAccess, SeqAccess, Visitor};
                use $crate::event::json::{Json, MapRecord};
                struct Seed<'s, 'de>(&'s mut $name<'de>);
                impl<'de> de::DeserializeSeed<'de> for Seed<'_, 'de> {
                    type Value = Option<Json<'de>>;
                    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                        d.deserialize_any(self)
                    }
                }
                impl<'de> Visitor<'de> for Seed<'_, 'de> {
                    type Value = Option<Json<'de>>;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("any JSON value")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                        Ok(Some(Json::Value(v.into())))
                    }
                    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                        Ok(Some(Json::Value(v.into())))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                        Ok(Some(Json::Value(v.into())))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                        Ok(Some(Json::Value(v.into())))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                        Ok(Some(Json::Value(v.into())))
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                        Ok(Some(Json::Value(serde_json::Value::Null)))
                    }
                    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
                        let v = de::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                        Ok(Some(Json::Value(v)))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                        self.0.fill(map)?;
                        Ok(None)
                    }
                }
                let inner = slot.insert($name::default());
                let mismatch = map.next_value_seed(Seed(inner))?;
                if mismatch.is_some() {
                    *slot = None;
                }
                Ok(mismatch)
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
