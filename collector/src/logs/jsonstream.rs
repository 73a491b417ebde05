//! Reads a stream of JSON values: one per line (JSON Lines), pretty-printed over several lines,
//! or concatenated without separators (as Firehose writes them). Used by the CloudTrail and DNS
//! readers, which decide what each value means.
//!
//! Recovery after a syntax error: skip to the next line that starts (column 0) with `{` or `[`.
//! For JSON Lines that is the next record; inside a pretty-printed document whose nested lines
//! are indented it skips the rest of the broken document, so one defect is one malformed count.

use super::input::Chunked;
use super::{Ctx, Limits};
use crate::event::json::{Element, ReadRecord, read_element};
use crate::event::jsonread::{self, Reader};
use std::io::Read;

/// Bytes looked at to decide between the document path and the value path.
const SNIFF: usize = 64;

pub(crate) trait ValueHandler {
    type Rec<'a>: ReadRecord<'a>;

    /// Whether the value starting at `head` should be read as one whole document (loaded in
    /// full, up to `max_document`) rather than as a single bounded value.
    fn is_document(&self, head: &[u8]) -> bool;

    /// Processes a whole document (the rest of the input) with `r`. Records are emitted as they
    /// are parsed, so those before a syntax error are kept; the error is returned for reporting.
    fn document(
        &mut self,
        ctx: &mut Ctx<'_>,
        line: u64,
        r: &mut Reader<'_>,
    ) -> jsonread::Result<()>;

    /// Processes one top-level value that started at `line`.
    fn value(&mut self, ctx: &mut Ctx<'_>, line: u64, value: Element<&Self::Rec<'_>>);
}

fn count_lines(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}

/// Reads one top-level value from the start of `bytes` into `slot`; returns what it was if not
/// an object, and the bytes it took. (The record stays in place: records are large structs, and
/// moving them out showed in DNS profiles.)
fn read_value<'a, R: ReadRecord<'a>>(
    bytes: &'a [u8],
    slot: &mut R,
) -> jsonread::Result<(Option<&'static str>, usize)> {
    let mut r = Reader::new(bytes);
    let what = read_element(slot, &mut r)?;
    Ok((what, r.offset()))
}

pub(crate) fn drive<R: Read, H: ValueHandler>(
    input: &mut Chunked<R>,
    ctx: &mut Ctx<'_>,
    limits: &Limits,
    h: &mut H,
) {
    let max_value = limits.max_line;
    let mut line = 1u64; // line number of data()[0]
    loop {
        // Skip whitespace between values (refilling as needed).
        let data = input.data();
        match data.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(k) => {
                line += count_lines(&data[..k]);
                input.consume(k);
            }
            None => {
                line += count_lines(data);
                let n = data.len();
                input.consume(n);
                if input.fill(max_value) == 0 {
                    return;
                }
                continue;
            }
        }
        input.fill_to(SNIFF, max_value);
        let data = input.data();

        // CloudWatch Logs exports prefix each message with its timestamp: `2021-02-04T17:51:55.000Z {...}`.
        if data[0].is_ascii_digit() {
            let eol = memchr::memchr(b'\n', data).unwrap_or(data.len());
            if let Some(p) = memchr::memmem::find(&data[..eol], b" {") {
                input.consume(p + 1);
                continue;
            }
        }

        if h.is_document(&data[..data.len().min(SNIFF)]) {
            if !input.read_all(limits.max_document) {
                ctx.malformed(
                    Some(line),
                    None,
                    format_args!(
                        "document larger than {} bytes; not read",
                        limits.max_document
                    ),
                );
                while input.skip_line().1 {}
                return;
            }
            let data = input.data();
            let mut r = Reader::new(data);
            if let Err(e) = h.document(ctx, line, &mut r).and_then(|()| r.end()) {
                if e.is_eof() && input.has_error() {
                    // Cut by a read error (truncated gzip): reported once by the caller.
                    ctx.cut_at_line = Some(line + e.position(data).0 - 1);
                } else {
                    report(ctx, line, data, &e);
                }
            }
            let n = data.len();
            input.consume(n);
            return;
        }

        // JSON Lines: the value is read from its line first, so a broken line cannot swallow
        // the next ones. A value that runs past its line is read again over the whole buffer,
        // which also waits for more input.
        let eol = memchr::memchr(b'\n', data).unwrap_or(data.len());
        let outcome = {
            let mut rec = H::Rec::default();
            let next = match read_value(&data[..eol], &mut rec) {
                // On its line: no line breaks to count.
                Ok((what, off)) => Ok((what, off, 0)),
                Err(e) if e.is_eof() => read_value(data, &mut rec)
                    .map(|(what, off)| (what, off, count_lines(&data[..off]))),
                Err(e) => Err(e),
            };
            match next {
                Ok((what, bytes, lines)) => {
                    let value = match what {
                        None => Element::Record(&rec),
                        Some(what) => Element::NotObject(what),
                    };
                    h.value(ctx, line, value);
                    Outcome::Consumed { bytes, lines }
                }
                Err(e) if e.is_eof() && !input.at_end() => {
                    if data.len() >= max_value {
                        Outcome::TooLong
                    } else {
                        Outcome::NeedMore
                    }
                }
                Err(e) => Outcome::Error(e),
            }
        };
        match outcome {
            Outcome::Consumed { bytes, lines } => {
                line += lines;
                input.consume(bytes);
            }
            Outcome::NeedMore => {
                input.fill(max_value);
            }
            Outcome::TooLong => {
                ctx.malformed(
                    Some(line),
                    None,
                    format_args!("JSON value longer than {max_value} bytes; skipped"),
                );
                line += resync(input);
            }
            Outcome::Error(e) => {
                if e.is_eof() && input.has_error() {
                    // Cut by a read error (truncated gzip): reported once by the caller.
                    ctx.cut_at_line = Some(line);
                    let n = input.data().len();
                    input.consume(n);
                    return;
                }
                report(ctx, line, input.data(), &e);
                line += resync(input);
            }
        }
    }
}

enum Outcome {
    Consumed { bytes: usize, lines: u64 },
    NeedMore,
    TooLong,
    Error(jsonread::Error),
}

/// Reports `e`, found reading `data` (which starts at `line`), at its own line.
fn report(ctx: &mut Ctx<'_>, line: u64, data: &[u8], e: &jsonread::Error) {
    let (l, col) = e.position(data);
    let what = if e.is_eof() {
        "incomplete JSON at end of input"
    } else {
        "invalid JSON"
    };
    ctx.malformed(
        Some(line + l - 1),
        None,
        format_args!("{what}: {} at line {l} column {col}", e.kind),
    );
}

/// Skips the current line and following lines until one starts with `{` or `[`.
/// Returns the number of line breaks skipped.
fn resync<R: Read>(input: &mut Chunked<R>) -> u64 {
    let mut lines = 0;
    loop {
        let (_, found) = input.skip_line();
        if !found {
            return lines;
        }
        lines += 1;
        input.fill_to(1, 1 << 20);
        match input.data().first() {
            Some(b'{' | b'[') | None => return lines,
            _ => {}
        }
    }
}

crate::event::json::json_record! {
    /// One entry of a CloudWatch Logs subscription batch (`logEvents[]`).
    pub struct LogEvent<'a> {
        "id" => id: crate::event::json::Text<'a>,
        "message" => message: crate::event::json::Text<'a>,
    }
}

/// Wrapper forms shared by CloudTrail and DNS: CloudWatch Logs subscription payloads (as
/// delivered by Firehose: `{"messageType":"DATA_MESSAGE", ..., "logEvents":[{"message":"<json>"}]}`).
pub(crate) enum Wrapper<'a> {
    /// `messageType: CONTROL_MESSAGE`: CloudWatch's connectivity probe, carries no log data.
    Control,
    /// The JSON text of each message, with its index in `logEvents`.
    Messages(Vec<LogEvent<'a>>),
    /// `logEvents` present but not an array of objects.
    Bad,
    None,
}

pub(crate) fn cwl_wrapper<'a>(extra: &crate::event::json::Extra<'a>) -> Wrapper<'a> {
    use crate::event::json::extra_raw;
    if let Some(mt) = extra_raw(extra, "messageType")
        && mt.get() == "\"CONTROL_MESSAGE\""
    {
        return Wrapper::Control;
    }
    match extra_raw(extra, "logEvents") {
        Some(raw) => match crate::event::json::read_list::<LogEvent<'a>>(raw.get()) {
            Some(v) => Wrapper::Messages(v),
            None => Wrapper::Bad,
        },
        None => Wrapper::None,
    }
}

/// Reads each log event of a CloudWatch Logs batch with `read` (which parses the message as one
/// record and hands it on); an event without a message, or whose message is not JSON, is reported
/// as malformed with its index in `logEvents`.
pub(crate) fn each_message(
    ctx: &mut Ctx<'_>,
    line: u64,
    events: &[LogEvent<'_>],
    mut read: impl FnMut(&mut Ctx<'_>, Option<u64>, &str) -> jsonread::Result<()>,
) {
    for (i, ev) in events.iter().enumerate() {
        let i = Some(i as u64);
        let Some(message) = ev.message.as_deref() else {
            ctx.malformed(Some(line), i, "log event without a message");
            continue;
        };
        if let Err(e) = read(ctx, i, message) {
            let (l, col) = e.position(message.as_bytes());
            ctx.malformed(
                Some(line),
                i,
                format_args!(
                    "log event message is not JSON: {} at line {l} column {col}",
                    e.kind
                ),
            )
        }
    }
}
