//! Route 53 Resolver query-log reader: JSON Lines as written to S3 / CloudWatch, pretty-printed
//! or concatenated objects (Firehose), CloudWatch Logs subscription batches, bare arrays.

use super::input::Chunked;
use super::jsonstream::{self, ValueHandler, Wrapper};
use super::{Ctx, Limits};
use crate::event::Record;
use crate::event::dns::DnsQuery;
use crate::event::json::Element;
use serde::de::{Deserializer as _, SeqAccess, Visitor};
use std::fmt;
use std::io::Read;

pub(crate) fn read<R: Read>(input: &mut Chunked<R>, ctx: &mut Ctx<'_>, limits: &Limits) {
    jsonstream::drive(input, ctx, limits, &mut Handler);
}

struct Handler;

impl ValueHandler for Handler {
    type Rec<'a> = DnsQuery<'a>;

    fn is_document(&self, head: &[u8]) -> bool {
        head.first() == Some(&b'[')
    }

    fn document(
        &mut self,
        ctx: &mut Ctx<'_>,
        line: u64,
        bytes: &[u8],
    ) -> Result<(), serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        (&mut de).deserialize_seq(Seq { ctx, line })?;
        de.end()
    }

    fn value(&mut self, ctx: &mut Ctx<'_>, line: u64, value: Element<DnsQuery<'_>>) {
        handle(ctx, line, None, value);
    }
}

fn handle(ctx: &mut Ctx<'_>, line: u64, index: Option<u64>, value: Element<DnsQuery<'_>>) {
    let q = match value {
        Element::Record(q) => q,
        Element::NotObject(what) => {
            ctx.malformed(
                Some(line),
                index,
                format_args!("expected a DNS query log record (JSON object), found {what}"),
            );
            return;
        }
    };
    if q.looks_like_query() {
        ctx.emit(line, index, Record::Dns(&q));
        return;
    }
    match jsonstream::cwl_wrapper(&q.extra) {
        Wrapper::Control => ctx.skipped(Some(line), index, "CloudWatch Logs control message"),
        Wrapper::Bad => ctx.malformed(Some(line), index, "logEvents is not an array of log events"),
        Wrapper::Messages(events) => {
            for (i, ev) in events.iter().enumerate() {
                let i = Some(i as u64);
                match ev
                    .message
                    .as_deref()
                    .map(serde_json::from_str::<Element<DnsQuery<'_>>>)
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
            "JSON object is not a DNS query log record (no query_name)",
        ),
    }
}

struct Seq<'c, 's> {
    ctx: &'c mut Ctx<'s>,
    line: u64,
}

impl<'de> Visitor<'de> for Seq<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of DNS query log records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0u64;
        while let Some(el) = seq.next_element::<Element<DnsQuery<'de>>>()? {
            handle(self.ctx, self.line, Some(i), el);
            i += 1;
        }
        Ok(())
    }
}
