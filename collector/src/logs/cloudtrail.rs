//! CloudTrail reader. Accepted shapes, detected from the content:
//! - the S3 delivery envelope `{"Records":[...]}` (read as a document, records streamed out of
//!   it one by one without building a list);
//! - a bare JSON array of records;
//! - one record per line (EventBridge / CloudWatch Logs exports), including EventBridge events
//!   (`{"detail-type": ..., "detail": {record}}`) and CloudWatch Logs subscription batches;
//! - pretty-printed or concatenated records.
//!
//! Digest files are recognised (by content; by key in [`super::classify`]) and skipped.

use super::input::Chunked;
use super::jsonstream::{self, ValueHandler, Wrapper};
use super::{Ctx, Limits};
use crate::event::Record;
use crate::event::cloudtrail::CloudTrailRecord;
use crate::event::json::{Element, ElementSeed, Text, extra_raw};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::io::Read;

pub(crate) fn read<R: Read>(input: &mut Chunked<R>, ctx: &mut Ctx<'_>, limits: &Limits) {
    jsonstream::drive(input, ctx, limits, &mut Handler);
}

struct Handler;

impl ValueHandler for Handler {
    type Rec<'a> = CloudTrailRecord<'a>;

    fn is_document(&self, head: &[u8]) -> bool {
        head.first() == Some(&b'[') || is_records_envelope(head)
    }

    fn document(
        &mut self,
        ctx: &mut Ctx<'_>,
        line: u64,
        bytes: &[u8],
    ) -> Result<(), serde_json::Error> {
        let array = bytes.first() == Some(&b'[');
        // Validating UTF-8 once up front (fast for mostly-ASCII logs) lets serde_json skip its
        // per-string check; invalid input takes the byte path, which locates the bad byte.
        match std::str::from_utf8(bytes) {
            Ok(text) => document(
                ctx,
                line,
                array,
                &mut serde_json::Deserializer::from_str(text),
            ),
            Err(_) => document(
                ctx,
                line,
                array,
                &mut serde_json::Deserializer::from_slice(bytes),
            ),
        }
    }

    fn value(&mut self, ctx: &mut Ctx<'_>, line: u64, value: Element<CloudTrailRecord<'_>>) {
        handle(ctx, line, None, value);
    }
}

fn document<'de, R: serde_json::de::Read<'de>>(
    ctx: &mut Ctx<'_>,
    line: u64,
    array: bool,
    de: &mut serde_json::Deserializer<R>,
) -> Result<(), serde_json::Error> {
    if array {
        RecordsSeq { ctx, line }.deserialize(&mut *de)?;
    } else {
        Envelope { ctx, line }.deserialize(&mut *de)?;
    }
    de.end()
}

/// `{` + optional whitespace + `"Records"`.
fn is_records_envelope(head: &[u8]) -> bool {
    match head.split_first() {
        Some((b'{', rest)) => {
            let i = rest
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(rest.len());
            rest[i..].starts_with(b"\"Records\"")
        }
        _ => false,
    }
}

fn handle(ctx: &mut Ctx<'_>, line: u64, index: Option<u64>, value: Element<CloudTrailRecord<'_>>) {
    match value {
        Element::Record(r) => handle_record(ctx, line, index, &r),
        Element::NotObject(what) => not_object(ctx, line, index, what),
    }
}

fn not_object(ctx: &mut Ctx<'_>, line: u64, index: Option<u64>, what: &str) {
    ctx.malformed(
        Some(line),
        index,
        format_args!("expected a CloudTrail record (JSON object), found {what}"),
    );
}

fn handle_record(ctx: &mut Ctx<'_>, line: u64, index: Option<u64>, rec: &CloudTrailRecord<'_>) {
    if rec.looks_like_event() {
        ctx.emit(line, index, Record::CloudTrail(rec));
        return;
    }
    let x = &rec.extra;
    if let Some(records) = extra_raw(x, "Records") {
        // An envelope the sniffing did not catch (e.g. `Records` is not the first key).
        let mut de = serde_json::Deserializer::from_str(records.get());
        if let Err(e) = (RecordsSeq { ctx, line }).deserialize(&mut de) {
            ctx.malformed(Some(line), index, format_args!("bad Records array: {e}"));
        }
        return;
    }
    if extra_raw(x, "digestPublicKeyFingerprint").is_some()
        || (extra_raw(x, "digestStartTime").is_some() && extra_raw(x, "logFiles").is_some())
    {
        ctx.skipped(Some(line), index, "CloudTrail digest file");
        return;
    }
    if let (Some(detail), Some(_)) = (extra_raw(x, "detail"), extra_raw(x, "detail-type")) {
        // EventBridge event: the CloudTrail record is `detail`.
        match serde_json::from_str::<Element<CloudTrailRecord<'_>>>(detail.get()) {
            Ok(Element::Record(r)) if r.looks_like_event() => {
                ctx.emit(line, index, Record::CloudTrail(&r))
            }
            _ => ctx.malformed(
                Some(line),
                index,
                "EventBridge event whose detail is not a CloudTrail record",
            ),
        }
        return;
    }
    match jsonstream::cwl_wrapper(x) {
        Wrapper::Control => ctx.skipped(Some(line), index, "CloudWatch Logs control message"),
        Wrapper::Bad => ctx.malformed(Some(line), index, "logEvents is not an array of log events"),
        Wrapper::Messages(events) => {
            for (i, ev) in events.iter().enumerate() {
                let i = Some(i as u64);
                match ev
                    .message
                    .as_deref()
                    .map(serde_json::from_str::<Element<CloudTrailRecord<'_>>>)
                {
                    Some(Ok(el)) => handle(ctx, line, i, el),
                    Some(Err(e)) => ctx.malformed(
                        Some(line),
                        i,
                        format_args!("log event message is not JSON: {e}"),
                    ),
                    None => ctx.malformed(Some(line), i, "log event without a message"),
                }
            }
        }
        Wrapper::None => ctx.malformed(
            Some(line),
            index,
            "JSON object is not a CloudTrail record (no eventName, eventSource or eventVersion)",
        ),
    }
}

/// Streams the elements of a records array to [`handle`], with their index.
struct RecordsSeq<'c, 's> {
    ctx: &'c mut Ctx<'s>,
    line: u64,
}

impl<'de> DeserializeSeed<'de> for RecordsSeq<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeq<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of CloudTrail records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // One record slot, filled in place for every element: no per-record moves or allocations.
        let mut rec = CloudTrailRecord::default();
        let mut i = 0u64;
        while let Some(shape) = seq.next_element_seed(ElementSeed(&mut rec))? {
            match shape {
                None => handle_record(self.ctx, self.line, Some(i), &rec),
                Some(what) => not_object(self.ctx, self.line, Some(i), what),
            }
            i += 1;
        }
        Ok(())
    }
}

/// `{"Records": [...], ...}`: only `Records` matters; other keys are ignored.
struct Envelope<'c, 's> {
    ctx: &'c mut Ctx<'s>,
    line: u64,
}

impl<'de> DeserializeSeed<'de> for Envelope<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Envelope<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CloudTrail log file object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (ctx, line) = (self.ctx, self.line);
        while let Some(key) = map.next_key::<Text<'de>>()? {
            if key == "Records" {
                map.next_value_seed(RecordsSeq {
                    ctx: &mut *ctx,
                    line,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}
