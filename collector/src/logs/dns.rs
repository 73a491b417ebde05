//! Route 53 Resolver query-log reader: JSON Lines as written to S3 / CloudWatch, pretty-printed
//! or concatenated objects (Firehose), CloudWatch Logs subscription batches, bare arrays.

use super::input::Chunked;
use super::jsonstream::{self, ValueHandler, Wrapper};
use super::{Ctx, Limits};
use crate::event::Record;
use crate::event::dns::DnsQuery;
use crate::event::json::{Element, parse_element, read_element};
use crate::event::jsonread::{self, Reader};
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

    /// A bare array of records.
    fn document(
        &mut self,
        ctx: &mut Ctx<'_>,
        line: u64,
        r: &mut Reader<'_>,
    ) -> jsonread::Result<()> {
        r.begin_array()?;
        let mut q = DnsQuery::default();
        let mut i = 0u64;
        while r.next_element(i == 0)? {
            let el = match read_element(&mut q, r)? {
                None => Element::Record(&q),
                Some(what) => Element::NotObject(what),
            };
            handle(ctx, line, Some(i), el);
            i += 1;
        }
        Ok(())
    }

    fn value(&mut self, ctx: &mut Ctx<'_>, line: u64, value: Element<&DnsQuery<'_>>) {
        handle(ctx, line, None, value);
    }
}

fn handle(ctx: &mut Ctx<'_>, line: u64, index: Option<u64>, value: Element<&DnsQuery<'_>>) {
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
        ctx.emit(line, index, Record::Dns(q));
        return;
    }
    match jsonstream::cwl_wrapper(&q.extra) {
        Wrapper::Control => ctx.skipped(Some(line), index, "CloudWatch Logs control message"),
        Wrapper::Bad => ctx.malformed(Some(line), index, "logEvents is not an array of log events"),
        Wrapper::Messages(events) => jsonstream::each_message(ctx, line, &events, |ctx, i, msg| {
            parse_element::<DnsQuery<'_>>(msg).map(|el| handle(ctx, line, i, el.as_ref()))
        }),
        Wrapper::None => ctx.malformed(
            Some(line),
            index,
            "JSON object is not a DNS query log record (no query_name)",
        ),
    }
}
