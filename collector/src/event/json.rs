//! JSON building blocks for the typed, lossless log records.
//!
//! The records must (a) borrow strings from the input instead of allocating, (b) never reject a
//! record because AWS added a field or a producer used an odd type, and (c) serialise back to the
//! same JSON. [`json_record!`] generates structs with those properties: every known key is parsed
//! into its typed field; a key we do not know, an explicit `null`, a value of an unexpected type
//! or a duplicate key is kept verbatim in `extra`, so nothing is ever lost. Each
//! value is read in a single pass over the input.

use super::jsonread::{Kind, Reader, Result as ReadResult};
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

/// A JSON value kept as its exact text, borrowed from the input (free-form objects such as
/// `requestParameters`, and unknown keys). The text is valid JSON: the readers checked it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    /// The JSON text.
    pub fn get(&self) -> &'a str {
        self.0
    }

    /// Text a [`Reader`] returned from [`Reader::raw`] (so already checked).
    pub(crate) fn from_checked(text: &'a str) -> Self {
        RawJson(text)
    }

    /// Checks `text` and keeps it raw.
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        let raw: &'a RawValue = serde_json::from_str(text)?;
        Ok(RawJson(raw.get()))
    }
}

impl fmt::Debug for RawJson<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for RawJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // serde_json writes a `RawValue` verbatim; making one re-checks the text, which only
        // output (not ingest) pays.
        let raw: &RawValue = serde_json::from_str(self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> de::Deserialize<'de> for RawJson<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'de RawValue = de::Deserialize::deserialize(d)?;
        Ok(RawJson(raw.get()))
    }
}

/// A value kept verbatim in `extra`: raw JSON text borrowed from the input, or (for a value whose
/// type did not match its typed field and was therefore already consumed) the parsed value.
#[derive(Clone, Debug)]
pub enum Json<'a> {
    Raw(RawJson<'a>),
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
    pub fn raw(&self) -> Option<RawJson<'a>> {
        match self {
            Json::Raw(r) => Some(*r),
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
pub fn extra_raw<'a>(extra: &Extra<'a>, key: &str) -> Option<RawJson<'a>> {
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
impl<'a> Field<'a> for RawJson<'a> {
    fn read<M: MapAccess<'a>>(map: &mut M) -> Result<Result<Self, Json<'a>>, M::Error> {
        let raw: RawJson<'a> = map.next_value()?;
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
        let raw: RawJson<'a> = map.next_value()?;
        Ok(serde_json::from_str(raw.get()).map_err(|_| Json::Raw(raw)))
    }
}

/// How a typed field reads its value with the ingest path's [`Reader`]; the outcome is the same
/// as [`Field`]'s (the serde path, kept for `serde_json::from_str` and tests).
/// `Ok(Some(json))` means "present but not of this type": the value goes to `extra` unchanged.
pub trait ReadField<'a>: Sized {
    fn read_field(slot: &mut Option<Self>, r: &mut Reader<'a>) -> ReadResult<Option<Json<'a>>>;
}

/// A record type that can be filled in place from an object read with a [`Reader`].
pub trait ReadRecord<'a>: Default {
    fn fill_from(&mut self, r: &mut Reader<'a>) -> ReadResult<()>;
}

/// The value at `r`, which does not fit its typed field, for `extra`: the same tree the serde
/// path builds (raw if serde_json cannot build it, e.g. a number out of range).
#[cold]
pub fn mismatch<'a>(r: &mut Reader<'a>) -> ReadResult<Option<Json<'a>>> {
    let raw = r.raw()?;
    Ok(Some(match serde_json::from_str(raw) {
        Ok(v) => Json::Value(v),
        Err(_) => Json::Raw(RawJson(raw)),
    }))
}

impl<'a> ReadField<'a> for Text<'a> {
    #[inline]
    fn read_field(slot: &mut Option<Self>, r: &mut Reader<'a>) -> ReadResult<Option<Json<'a>>> {
        if r.peek() != Some(b'"') {
            return mismatch(r);
        }
        *slot = Some(Text(r.string()?));
        Ok(None)
    }
}

impl<'a> ReadField<'a> for MaybeBool<'a> {
    fn read_field(slot: &mut Option<Self>, r: &mut Reader<'a>) -> ReadResult<Option<Json<'a>>> {
        *slot = Some(match r.peek() {
            Some(b'"') => MaybeBool::Str(Text(r.string()?)),
            Some(b't' | b'f') => MaybeBool::Bool(r.boolean()?),
            _ => return mismatch(r),
        });
        Ok(None)
    }
}

impl<'a> ReadField<'a> for RawJson<'a> {
    fn read_field(slot: &mut Option<Self>, r: &mut Reader<'a>) -> ReadResult<Option<Json<'a>>> {
        let raw = RawJson(r.raw()?);
        if raw.get() == "null" {
            return Ok(Some(Json::Raw(raw)));
        }
        *slot = Some(raw);
        Ok(None)
    }
}

/// Lists are read in place; one that is not an array of `T` stays raw (as with serde).
impl<'a, T: ReadField<'a>> ReadField<'a> for Vec<T> {
    fn read_field(slot: &mut Option<Self>, r: &mut Reader<'a>) -> ReadResult<Option<Json<'a>>> {
        let mark = r.mark();
        match read_list_at(r)? {
            Some(v) => {
                *slot = Some(v);
                Ok(None)
            }
            None => Ok(Some(Json::Raw(RawJson(r.raw_from(mark)?)))),
        }
    }
}

/// The array at `r` as a list of `T`; `Ok(None)` if the value is not an array or an element
/// does not fit `T` (the reader is then somewhere inside it: go back to a mark).
pub fn read_list_at<'a, T: ReadField<'a>>(r: &mut Reader<'a>) -> ReadResult<Option<Vec<T>>> {
    if r.peek() != Some(b'[') {
        return Ok(None);
    }
    r.begin_array()?;
    let mut out = Vec::new();
    let mut first = true;
    while r.next_element(first)? {
        first = false;
        let mut slot = None;
        match (T::read_field(&mut slot, r)?, slot) {
            (None, Some(v)) => out.push(v),
            _ => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// `raw` (checked JSON) as a list of `T`, or None if it is not an array of `T`.
pub fn read_list<'a, T: ReadField<'a>>(raw: &'a str) -> Option<Vec<T>> {
    read_list_at(&mut Reader::new(raw.as_bytes()))
        .ok()
        .flatten()
}

/// Reads one array element / top-level value into `slot` (reset first) when it is an object;
/// anything else is skipped (and checked) and named in the result.
pub fn read_element<'a, R: ReadRecord<'a>>(
    slot: &mut R,
    r: &mut Reader<'a>,
) -> ReadResult<Option<&'static str>> {
    let what = match r.kind()? {
        Kind::Object => {
            *slot = R::default();
            slot.fill_from(r)?;
            return Ok(None);
        }
        Kind::Array => "an array",
        Kind::String => "a string",
        Kind::Bool => "a boolean",
        Kind::Null => "null",
        Kind::Number => "a number",
    };
    r.raw()?;
    Ok(Some(what))
}

/// `text` as exactly one element (nothing but whitespace may follow).
pub fn parse_element<'a, R: ReadRecord<'a>>(text: &'a str) -> ReadResult<Element<R>> {
    let mut r = Reader::new(text.as_bytes());
    let mut rec = R::default();
    let what = read_element(&mut rec, &mut r)?;
    r.end()?;
    Ok(match what {
        None => Element::Record(rec),
        Some(what) => Element::NotObject(what),
    })
}

/// `key` is `lit`, compared eight bytes at a time against the literal's constant words: matching
/// on `&str` (or comparing arrays) called `memcmp` for every candidate key of the same length,
/// an eighth of DNS parse time.
#[inline(always)]
pub fn key_is<const N: usize>(key: &[u8], lit: &[u8; N]) -> bool {
    let Some(key) = key.first_chunk::<N>().filter(|_| key.len() == N) else {
        return false;
    };
    let mut i = 0;
    while i + 8 <= N {
        let a = u64::from_ne_bytes(*key[i..].first_chunk::<8>().unwrap());
        let b = u64::from_ne_bytes(*lit[i..].first_chunk::<8>().unwrap());
        if a != b {
            return false;
        }
        i += 8;
    }
    while i < N {
        if key[i] != lit[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The bytes of a key literal as an array, for [`key_is`] (`N` must be its length).
pub const fn key_bytes<const N: usize>(s: &str) -> [u8; N] {
    match s.as_bytes().first_chunk::<N>() {
        Some(b) if s.len() == N => *b,
        _ => panic!("key length mismatch"),
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
                            let raw: $crate::event::json::RawJson<'a> = map.next_value()?;
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

        impl<'a> $crate::event::json::ReadRecord<'a> for $name<'a> {
            fn fill_from(
                &mut self,
                r: &mut $crate::event::jsonread::Reader<'a>,
            ) -> $crate::event::jsonread::Result<()> {
                use $crate::event::json::{Json, RawJson, ReadField, Text};
                r.begin_object()?;
                let mut first = true;
                while let Some(key) = r.next_key(first)? {
                    first = false;
                    let k = key.as_bytes();
                    match () {
                        $( _ if $crate::event::json::key_is(
                            k,
                            &const { $crate::event::json::key_bytes::<{ $key.len() }>($key) },
                        ) && self.$field.is_none() => {
                            if let Some(j) = <$ty as ReadField<'a>>::read_field(&mut self.$field, r)? {
                                self.extra.push((Text(key), j));
                            }
                        } )*
                        _ => {
                            let raw = RawJson::from_checked(r.raw()?);
                            self.extra.push((Text(key), Json::Raw(raw)));
                        }
                    }
                }
                Ok(())
            }
        }

        /// A nested record read with the ingest path's reader: filled in place when it is an
        /// object, kept for `extra` otherwise.
        impl<'a> $crate::event::json::ReadField<'a> for $name<'a> {
            fn read_field(
                slot: &mut Option<Self>,
                r: &mut $crate::event::jsonread::Reader<'a>,
            ) -> $crate::event::jsonread::Result<Option<$crate::event::json::Json<'a>>> {
                if r.peek() != Some(b'{') {
                    return $crate::event::json::mismatch(r);
                }
                let inner = slot.insert($name::default());
                $crate::event::json::ReadRecord::fill_from(inner, r)?;
                Ok(None)
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

impl<R> Element<R> {
    pub fn as_ref(&self) -> Element<&R> {
        match self {
            Element::Record(r) => Element::Record(r),
            Element::NotObject(what) => Element::NotObject(what),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `key_is` against a literal of length `N`: equal, one byte changed at each position,
    /// one byte shorter and one longer.
    fn check<const N: usize>() {
        let text: String = (0..N).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let lit = key_bytes::<N>(&text);
        assert!(key_is(text.as_bytes(), &lit), "{text}");
        for i in 0..N {
            let mut other = text.clone().into_bytes();
            other[i] = b'_';
            assert!(!key_is(&other, &lit), "{text} at {i}");
        }
        assert!(!key_is(&text.as_bytes()[..N.saturating_sub(1)], &lit) || N == 0);
        assert!(!key_is(format!("{text}x").as_bytes(), &lit));
    }

    #[test]
    fn key_is_compares_whole_keys_of_every_length_class() {
        check::<1>();
        check::<5>();
        check::<7>();
        check::<8>();
        check::<9>();
        check::<15>();
        check::<16>();
        check::<17>();
        check::<28>();
    }
}
