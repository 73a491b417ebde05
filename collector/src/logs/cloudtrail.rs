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
use crate::event::json::{Element, extra_raw, parse_element, read_element};
use crate::event::jsonread::{self, Reader};
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
        r: &mut Reader<'_>,
    ) -> jsonread::Result<()> {
        if r.peek() == Some(b'[') {
            records(ctx, line, r)
        } else {
            envelope(ctx, line, r)
        }
    }

    fn value(&mut self, ctx: &mut Ctx<'_>, line: u64, value: Element<&CloudTrailRecord<'_>>) {
        handle(ctx, line, None, value);
    }
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

fn handle(ctx: &mut Ctx<'_>, line: u64, index: Option<u64>, value: Element<&CloudTrailRecord<'_>>) {
    match value {
        Element::Record(r) => handle_record(ctx, line, index, r),
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
    if let Some(records_raw) = extra_raw(x, "Records") {
        // An envelope the sniffing did not catch (e.g. `Records` is not the first key).
        let mut r = Reader::new(records_raw.get().as_bytes());
        if let Err(e) = records(ctx, line, &mut r) {
            let (l, col) = e.position(records_raw.get().as_bytes());
            ctx.malformed(
                Some(line),
                index,
                format_args!("bad Records array: {} at line {l} column {col}", e.kind),
            );
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
        match parse_element::<CloudTrailRecord<'_>>(detail.get()) {
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
        Wrapper::Messages(events) => jsonstream::each_message(ctx, line, &events, |ctx, i, msg| {
            parse_element::<CloudTrailRecord<'_>>(msg).map(|el| handle(ctx, line, i, el.as_ref()))
        }),
        Wrapper::None => ctx.malformed(
            Some(line),
            index,
            "JSON object is not a CloudTrail record (no eventName, eventSource or eventVersion)",
        ),
    }
}

/// Streams the elements of a records array to [`handle_record`], with their index.
fn records(ctx: &mut Ctx<'_>, line: u64, r: &mut Reader<'_>) -> jsonread::Result<()> {
    r.begin_array()?;
    // One record slot, filled in place for every element: no per-record moves.
    let mut rec = CloudTrailRecord::default();
    let mut i = 0u64;
    while r.next_element(i == 0)? {
        match read_element(&mut rec, r)? {
            None => handle_record(ctx, line, Some(i), &rec),
            Some(what) => not_object(ctx, line, Some(i), what),
        }
        i += 1;
    }
    Ok(())
}

/// `{"Records": [...], ...}`: only `Records` matters; other keys are checked and ignored.
fn envelope(ctx: &mut Ctx<'_>, line: u64, r: &mut Reader<'_>) -> jsonread::Result<()> {
    r.begin_object()?;
    let mut first = true;
    while let Some(key) = r.next_key(first)? {
        first = false;
        if key == "Records" {
            records(ctx, line, r)?;
        } else {
            r.raw()?;
        }
    }
    Ok(())
}
