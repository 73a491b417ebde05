//! Cloud-log readers (CloudTrail, VPC Flow Logs, Route 53 Resolver query logs).
//!
//! Every reader turns one object (a local file or an S3 object) into [`Event`]s handed to a
//! [`Sink`], and returns [`Counts`]. Bad input never stops a reader: a malformed record is
//! reported with its object and line / record index and reading continues with the next one; a
//! broken object (truncated gzip, unreadable file) is reported and the records read before the
//! damage are kept.

pub mod args;
pub mod checkpoint;
pub mod classify;
pub mod cloudtrail;
pub mod dirsource;
pub mod dns;
mod flowscan;
mod flowsplit;
pub mod input;
mod jsonstream;
pub mod s3;
pub mod scan;
pub mod source;
pub mod vpcflow;
mod vpcflow_parquet;

use crate::event::flow::FlowFormat;
use crate::event::{Event, Origin, Record, SourceKind};
use std::fmt;
use std::io::Read;

/// Size bounds that protect the collector from hostile or broken input.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest line / single JSON value accepted (longer ones are counted as malformed and
    /// skipped without being buffered). CloudTrail events are at most 256 KB; 8 MiB is generous.
    pub max_line: usize,
    /// Largest whole-document object (`{"Records":[...]}` or a bare JSON array) that is loaded.
    /// CloudTrail delivers files of a few MB; larger documents are refused, not buffered.
    pub max_document: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 8 << 20,
            max_document: 512 << 20,
        }
    }
}

/// Per-source reading options.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    pub limits: Limits,
    /// VPC flow-log format to use for files without a header line (default: v2).
    pub flow_format: Option<FlowFormat>,
}

/// A record or object that could not be read. `line`/`index` locate it inside `object`.
#[derive(Clone, Debug)]
pub struct Problem<'a> {
    pub source: SourceKind,
    pub object: &'a str,
    pub line: Option<u64>,
    pub index: Option<u64>,
    pub message: String,
}

impl fmt::Display for Problem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.object)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(i) = self.index {
            write!(f, " record #{i}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Receives what the readers produce.
pub trait Sink {
    fn event(&mut self, event: &Event<'_>);
    /// A record (or a whole object) that could not be parsed; it has been counted.
    fn malformed(&mut self, problem: &Problem<'_>) {
        let _ = problem;
    }
    /// An object or record deliberately not ingested (digest file, control message, ...).
    fn skipped(&mut self, problem: &Problem<'_>) {
        let _ = problem;
    }
}

/// Counters for one object or, summed, for a source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Objects (files / S3 objects) opened.
    pub objects: u64,
    /// Bytes read after decompression.
    pub bytes: u64,
    /// Records handed to the sink.
    pub records: u64,
    /// Objects or records recognised and deliberately skipped.
    pub skipped: u64,
    /// Records (or objects) that could not be parsed.
    pub malformed: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.objects += o.objects;
        self.bytes += o.bytes;
        self.records += o.records;
        self.skipped += o.skipped;
        self.malformed += o.malformed;
    }
}

/// What a reader needs while processing one object.
pub(crate) struct Ctx<'s> {
    pub source: SourceKind,
    pub object: &'s str,
    pub sink: &'s mut dyn Sink,
    pub counts: Counts,
    /// Line at which a read error cut the input, if a reader noticed (reported once, below).
    pub cut_at_line: Option<u64>,
}

impl<'s> Ctx<'s> {
    fn new(source: SourceKind, object: &'s str, sink: &'s mut dyn Sink) -> Self {
        Ctx {
            source,
            object,
            sink,
            counts: Counts {
                objects: 1,
                ..Counts::default()
            },
            cut_at_line: None,
        }
    }

    #[inline]
    pub fn emit(&mut self, line: u64, index: Option<u64>, record: Record<'_>) {
        self.counts.records += 1;
        let origin = Origin {
            object: self.object,
            line,
            index,
        };
        self.sink.event(&Event::new(origin, record));
    }

    pub fn malformed(&mut self, line: Option<u64>, index: Option<u64>, message: impl fmt::Display) {
        self.counts.malformed += 1;
        let p = Problem {
            source: self.source,
            object: self.object,
            line,
            index,
            message: message.to_string(),
        };
        self.sink.malformed(&p);
    }

    pub fn skipped(&mut self, line: Option<u64>, index: Option<u64>, message: impl fmt::Display) {
        self.counts.skipped += 1;
        let p = Problem {
            source: self.source,
            object: self.object,
            line,
            index,
            message: message.to_string(),
        };
        self.sink.skipped(&p);
    }
}

/// A Parquet object: loaded whole (Parquet's index is at its end), up to `max_document` bytes.
fn read_parquet<R: Read>(
    source: SourceKind,
    input: &mut input::Chunked<R>,
    opts: &ReadOptions,
    ctx: &mut Ctx<'_>,
) {
    if source != SourceKind::VpcFlow {
        ctx.malformed(
            None,
            None,
            format_args!("Parquet object: only VPC flow logs are read from Parquet, not {source}"),
        );
        return;
    }
    let complete = input.read_all(opts.limits.max_document);
    ctx.counts.bytes = input.data().len() as u64;
    if let Some(e) = input.take_error() {
        ctx.malformed(None, None, format_args!("cannot read Parquet object: {e}"));
        return;
    }
    if !complete {
        ctx.malformed(
            None,
            None,
            format_args!(
                "Parquet object larger than {} bytes; not read",
                opts.limits.max_document
            ),
        );
        return;
    }
    vpcflow_parquet::read(input.take_data().into(), ctx);
}

/// Reads one object of `source` from `reader` (gzip is detected from the content). `object` names
/// it in origins and error reports (a path or `s3://bucket/key`).
pub fn read_object(
    source: SourceKind,
    object: &str,
    reader: impl Read + 'static,
    opts: &ReadOptions,
    sink: &mut dyn Sink,
) -> Counts {
    let mut ctx = Ctx::new(source, object, sink);
    let r = match input::maybe_gunzip(reader) {
        Ok(r) => r,
        Err(e) => {
            ctx.malformed(None, None, format_args!("cannot read: {e}"));
            return ctx.counts;
        }
    };
    let mut input = input::Chunked::new(r);
    // Parquet (flow logs only) is recognised by its magic, after any gzip layer.
    input.fill_to(vpcflow_parquet::MAGIC.len(), opts.limits.max_line);
    if input.data().starts_with(vpcflow_parquet::MAGIC) {
        read_parquet(source, &mut input, opts, &mut ctx);
        return ctx.counts;
    }
    match source {
        SourceKind::CloudTrail => cloudtrail::read(&mut input, &mut ctx, &opts.limits),
        SourceKind::Dns => dns::read(&mut input, &mut ctx, &opts.limits),
        SourceKind::VpcFlow => vpcflow::read(
            &mut input,
            &mut ctx,
            &opts.limits,
            opts.flow_format.as_ref(),
        ),
    }
    ctx.counts.bytes = input.offset() + input.data().len() as u64;
    if let Some(e) = input.take_error() {
        // The records before the damage were delivered; the damage is reported (and counted) once,
        // at the line where it cut the input, whose partial content is dropped.
        let (line, bytes) = (ctx.cut_at_line, ctx.counts.bytes);
        ctx.malformed(
            line,
            None,
            format_args!("input cut short after {bytes} bytes: {e}"),
        );
    }
    ctx.counts
}
