//! VPC Flow Logs reader: space-separated text, any field order. The format comes from the
//! file's header line (S3 delivery writes one), else from configuration, else the v2 default.
//!
//! This is the highest-volume source, so the line parser works on bytes, borrows every string
//! field from the line and allocates nothing per record.

use super::flowscan::{fast_ipv4, fast_number, ipv4_in, is_sep, number_in, scan_token};
use super::flowsplit::Split;
use super::input::{BlockLines, Chunked, TextBlock, TextLine, for_each_text_block};
use super::{Ctx, Limits};
use crate::event::Record;
use crate::event::flow::{FlowAction, FlowDirection, FlowField, FlowFormat, FlowRecord, LogStatus};
use crate::event::net::parse_ipv4_lenient;
use std::fmt;
use std::io::Read;
use std::net::{IpAddr, Ipv6Addr};

pub(crate) fn read<R: Read>(
    input: &mut Chunked<R>,
    ctx: &mut Ctx<'_>,
    limits: &Limits,
    configured: Option<&FlowFormat>,
) {
    // Decided once per object, not per line (the answer is cached by std anyway).
    read_on(Cpu::detect(), input, ctx, limits, configured)
}

/// [`read`] with the block loop compiled for `cpu`.
fn read_on<R: Read>(
    cpu: Cpu,
    input: &mut Chunked<R>,
    ctx: &mut Ctx<'_>,
    limits: &Limits,
    configured: Option<&FlowFormat>,
) {
    let default_format;
    let base = match configured {
        Some(f) => f,
        None => {
            default_format = FlowFormat::v2_default();
            &default_format
        }
    };
    let mut lines = Lines::new(base, limits.max_line);
    input.set_read_size(READ_SIZE);
    for_each_text_block(input, limits.max_line, |block| match block {
        TextBlock::Lines(block) => lines.block(cpu, ctx, block),
        TextBlock::Line(n, line) => lines.line(ctx, n, line, &mut FlowRecord::default()),
    });
}

/// Bytes per `read`: the UTF-8 check and the parse each pass over what was read, and at this
/// size it is still in the CPU's cache for the later pass, with few enough `read` calls (32 KiB
/// reads spent about 5% of the time in the kernel's per-call work; with 1 MiB ones less of the
/// block is still cached for the parse).
const READ_SIZE: usize = 256 << 10;

/// The line-by-line state of one object: its format (from the header line, else the base),
/// and buffers reused from line to line.
struct Lines<'f> {
    base: &'f FlowFormat,
    from_header: Option<FlowFormat>,
    /// Whether the format is the v2 default, decided once per format rather than per line.
    v2: bool,
    first: bool,
    max_line: usize,
    split: Split,
}

/// Which compilation of the block loop runs: the portable one, or the one for CPUs with AVX2,
/// BMI1/2, POPCNT and LZCNT (32-byte compares, one-instruction bit counts and bit scans).
/// `Avx2` is only built by [`Cpu::detect`] on a CPU that has those features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cpu(CpuPath);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CpuPath {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Cpu {
    /// The fastest path this CPU runs.
    pub(crate) fn detect() -> Cpu {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("bmi1")
            && std::is_x86_feature_detected!("bmi2")
            && std::is_x86_feature_detected!("popcnt")
            && std::is_x86_feature_detected!("lzcnt")
        {
            return Cpu(CpuPath::Avx2);
        }
        Cpu(CpuPath::Portable)
    }

    /// The path for any CPU.
    #[cfg(test)]
    pub(crate) fn portable() -> Cpu {
        Cpu(CpuPath::Portable)
    }

    /// Whether this is the AVX2 path.
    #[cfg(test)]
    pub(crate) fn is_avx2(self) -> bool {
        self != Cpu(CpuPath::Portable)
    }
}

impl<'f> Lines<'f> {
    fn new(base: &'f FlowFormat, max_line: usize) -> Self {
        Lines {
            base,
            from_header: None,
            v2: is_v2(base),
            first: true,
            max_line,
            split: Split::default(),
        }
    }

    /// The lines of a checked block, in the compilation `cpu` names.
    #[inline(always)]
    fn block(&mut self, cpu: Cpu, ctx: &mut Ctx<'_>, block: &mut BlockLines<'_>) {
        match cpu.0 {
            CpuPath::Portable => block_portable(self, ctx, block),
            // SAFETY: `CpuPath::Avx2` is only built by `Cpu::detect`, after checking that this
            // CPU has every feature `block_avx2` is compiled for.
            #[cfg(target_arch = "x86_64")]
            CpuPath::Avx2 => unsafe { block_avx2(self, ctx, block) },
        }
    }

    /// The loop over a block's lines, compiled once per CPU path: one record for the whole block,
    /// so that only the format's fields are cleared per line (not the ~570-byte record).
    #[inline(always)]
    fn block_body<'a>(&mut self, ctx: &mut Ctx<'_>, block: &mut BlockLines<'a>) {
        let mut rec = FlowRecord::default();
        while let Some((text, start)) = block.pending() {
            // The line's end found and its fields split in one pass, except for the first line
            // (maybe a header) and lines the splitter refuses.
            if !self.first
                && let Some((len, found)) = self.split.split_line(text.as_bytes(), start)
            {
                match block.take_line(start + len) {
                    (n, TextLine::Text(text)) => self.data_line(ctx, n, text, &mut rec, found),
                    (n, line) => self.line(ctx, n, line, &mut rec),
                }
                continue;
            }
            let Some((n, line)) = block.next() else { break };
            self.line(ctx, n, line, &mut rec);
        }
    }

    /// One line, by the general path: the first line (maybe a header), blank lines, lines the
    /// one-pass split refuses and lines in error. `rec` is the block's record: the fields
    /// outside the format are `None`. Out of line: [`Lines::data_line`] is the common case.
    #[inline(never)]
    fn line<'a>(
        &mut self,
        ctx: &mut Ctx<'_>,
        n: u64,
        line: TextLine<'a>,
        rec: &mut FlowRecord<'a>,
    ) {
        let text = match line {
            TextLine::Text(text) => text,
            TextLine::TooLong { len } => {
                return ctx.malformed(
                    Some(n),
                    None,
                    format_args!(
                        "line of {len} bytes exceeds the {} byte limit",
                        self.max_line
                    ),
                );
            }
            TextLine::Truncated => {
                ctx.cut_at_line = Some(n);
                return;
            }
            TextLine::NotUtf8 { valid_up_to } => {
                return ctx.malformed(
                    Some(n),
                    None,
                    format_args!("not UTF-8 (invalid byte at column {})", valid_up_to + 1),
                );
            }
        };
        if text.trim_ascii().is_empty() {
            return;
        }
        if std::mem::take(&mut self.first) && is_header(text) {
            self.header(ctx, n, text);
            // Fields the new format has and the old one had not are `None` again.
            *rec = FlowRecord::default();
            return;
        }
        let found = self.split.split(text.as_bytes());
        self.data_line_split(ctx, n, text, rec, found);
    }

    /// A line [`Split::split_line`] split into `found` fields (the line's bounds are relative
    /// to its start, so they are the same without a trailing `\r`).
    #[inline(always)]
    fn data_line<'a>(
        &mut self,
        ctx: &mut Ctx<'_>,
        n: u64,
        text: &'a str,
        rec: &mut FlowRecord<'a>,
        found: usize,
    ) {
        let format = self.from_header.as_ref().unwrap_or(self.base);
        if found == format.fields().len() {
            self.data_line_split(ctx, n, text, rec, Some(found));
        } else {
            // Blank, or a field count error: the general path words it.
            self.line(ctx, n, TextLine::Text(text), rec);
        }
    }

    /// A data line (not blank, not the header) that `self.split` split into `found` fields.
    #[inline(always)]
    fn data_line_split<'a>(
        &mut self,
        ctx: &mut Ctx<'_>,
        n: u64,
        text: &'a str,
        rec: &mut FlowRecord<'a>,
        found: Option<usize>,
    ) {
        let format = self.from_header.as_ref().unwrap_or(self.base);
        rec.line = text;
        if self.v2 {
            // Only the fields the line will set; the others stay `None` from the block's start.
            clear_v2(rec);
        } else {
            *rec = FlowRecord {
                line: text,
                ..FlowRecord::default()
            };
        }
        match fill_split(text, format.fields(), self.v2, rec, &self.split, found) {
            Ok(()) => ctx.emit(n, None, Record::Flow(rec)),
            Err(e) => {
                // A wrong field count explains a bad value better (e.g. a format mismatch).
                let found = Tokens { s: text, i: 0 }.count();
                let expected = format.fields().len();
                if found != expected {
                    ctx.malformed(Some(n), None, LineError::FieldCount { found, expected })
                } else {
                    ctx.malformed(Some(n), None, e)
                }
                // The failed line may have left values behind in fields outside v2.
                *rec = FlowRecord::default();
            }
        }
    }

    #[inline(never)]
    fn header(&mut self, ctx: &mut Ctx<'_>, n: u64, text: &str) {
        match FlowFormat::parse(text) {
            Ok(f) => {
                self.v2 = is_v2(&f);
                self.from_header = Some(f);
            }
            Err(e) => ctx.malformed(Some(n), None, format_args!("bad header line: {e}")),
        }
    }
}

/// [`Lines::block_body`] for any CPU.
#[inline(never)]
fn block_portable(lines: &mut Lines<'_>, ctx: &mut Ctx<'_>, block: &mut BlockLines<'_>) {
    lines.block_body(ctx, block)
}

/// [`Lines::block_body`] compiled for AVX2, BMI1/2, POPCNT and LZCNT: everything it inlines
/// (the splitter, the number and address conversions) uses them.
///
/// # Safety
/// The CPU must have those features (see [`Cpu::detect`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,bmi2,popcnt,lzcnt")]
#[inline(never)]
unsafe fn block_avx2(lines: &mut Lines<'_>, ctx: &mut Ctx<'_>, block: &mut BlockLines<'_>) {
    lines.block_body(ctx, block)
}

/// A header line names fields: its first token is a known field name, and no token looks like
/// data (a number, an address, or `-`).
fn is_header(line: &str) -> bool {
    let mut toks = line.split_ascii_whitespace();
    let Some(first) = toks.next() else {
        return false;
    };
    let name = |t: &str| {
        t.strip_prefix("${")
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(t)
            .to_owned()
    };
    FlowField::from_name(&name(first)) != FlowField::Unknown
        && line
            .split_ascii_whitespace()
            .all(|t| t != "-" && !t.as_bytes()[0].is_ascii_digit())
}

/// Why a line was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    FieldCount { found: usize, expected: usize },
    BadValue { field: &'static str, value: String },
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::FieldCount { found, expected } => {
                write!(f, "{found} fields, the format has {expected}")
            }
            LineError::BadValue { field, value } => write!(f, "invalid {field} value {value:?}"),
        }
    }
}

/// Splits on runs of spaces / tabs (AWS documentation itself has a double space in one example).
/// Used on error paths and for header lines; the hot path scans fields in [`parse_line_into`].
struct Tokens<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let b = self.s.as_bytes();
        while self.i < b.len() && is_sep(b[self.i]) {
            self.i += 1;
        }
        if self.i == b.len() {
            return None;
        }
        let start = self.i;
        while self.i < b.len() && !is_sep(b[self.i]) {
            self.i += 1;
        }
        Some(&self.s[start..self.i])
    }
}

#[inline]
fn parse_ip(t: &str) -> Option<IpAddr> {
    if let Some(v4) = parse_ipv4_lenient(t.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    t.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// Parses one data line against `format`.
pub fn parse_line<'a>(line: &'a str, format: &FlowFormat) -> Result<FlowRecord<'a>, LineError> {
    // Built once here: the record is large, and clearing it twice per line showed in profiles.
    let mut rec = FlowRecord {
        line,
        ..FlowRecord::default()
    };
    fill_fields(
        line,
        format.fields(),
        is_v2(format),
        &mut rec,
        &mut Split::default(),
    )?;
    Ok(rec)
}

/// Decimal digits of a numeric field. Returns the value (None if a byte was not a digit, there
/// were more than 19 digits, or it overflowed) and the end index. The path for what
/// [`fast_number`] leaves: bad values, more than 15 digits, a number ending the line.
#[inline(never)]
fn scan_number(b: &[u8], i: usize) -> (Option<u64>, usize) {
    let end = scan_token(b, i);
    (digits(&b[i..end]), end)
}

/// The value of a field of decimal digits, byte by byte: None if a byte is not a digit or there
/// are more than 19 digits (19 digits always fit in a u64; longer values are rejected rather
/// than checked per digit).
#[inline(never)]
fn digits(digits: &[u8]) -> Option<u64> {
    if digits.len() > 19 {
        return None;
    }
    let mut v: u64 = 0;
    let mut ok = true;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        ok &= d <= 9;
        v = v.wrapping_mul(10).wrapping_add(u64::from(d));
    }
    ok.then_some(v)
}

/// Parses one data line into `rec` (overwritten). Each byte is looked at once: numbers and IPv4
/// addresses are converted while their end is searched; strings borrow from `line`. Nothing is
/// allocated unless the line is bad.
pub fn parse_line_into<'a>(
    line: &'a str,
    format: &FlowFormat,
    rec: &mut FlowRecord<'a>,
) -> Result<(), LineError> {
    *rec = FlowRecord {
        line,
        ..FlowRecord::default()
    };
    fill_fields(
        line,
        format.fields(),
        is_v2(format),
        rec,
        &mut Split::default(),
    )
}

/// The v2 default fields, the format of nearly every flow log: parsed by straight-line code.
const V2_FIELDS: [FlowField; 14] = [
    FlowField::Version,
    FlowField::AccountId,
    FlowField::InterfaceId,
    FlowField::SrcAddr,
    FlowField::DstAddr,
    FlowField::SrcPort,
    FlowField::DstPort,
    FlowField::Protocol,
    FlowField::Packets,
    FlowField::Bytes,
    FlowField::Start,
    FlowField::End,
    FlowField::Action,
    FlowField::LogStatus,
];

/// Whether `format` is the v2 default (then [`fill_fields`] takes its straight-line paths).
fn is_v2(format: &FlowFormat) -> bool {
    format.fields() == V2_FIELDS
}

/// The field loop of [`parse_line_into`], on a record that is still all `None`: the whole-line
/// path ([`whole_line`]) when it accepts the line, else field by field, which also decides the
/// error.
#[inline(always)]
fn fill_fields<'a>(
    line: &'a str,
    fields: &[FlowField],
    v2: bool,
    rec: &mut FlowRecord<'a>,
    split: &mut Split,
) -> Result<(), LineError> {
    let found = split.split(line.as_bytes());
    fill_split(line, fields, v2, rec, split, found)
}

/// [`fill_fields`] on a line `split` already split into `found` fields.
#[inline(always)]
fn fill_split<'a>(
    line: &'a str,
    fields: &[FlowField],
    v2: bool,
    rec: &mut FlowRecord<'a>,
    split: &Split,
    found: Option<usize>,
) -> Result<(), LineError> {
    debug_assert_eq!(v2, fields == V2_FIELDS);
    if found == Some(fields.len()) && whole_line(line, fields, v2, split, rec) {
        return Ok(());
    }
    one_by_one(line, fields, v2, rec)
}

/// The field-by-field path of [`fill_fields`], for lines [`whole_line`] did not accept. Out of
/// line, so that the whole-line path's code stays compact.
#[inline(never)]
fn one_by_one<'a>(
    line: &'a str,
    fields: &[FlowField],
    v2: bool,
    rec: &mut FlowRecord<'a>,
) -> Result<(), LineError> {
    // Whatever the whole-line path stored before it gave up is overwritten from scratch.
    *rec = FlowRecord {
        line,
        ..FlowRecord::default()
    };
    let end = if v2 {
        // One call per field with the field known at compile time: each `match` in `one_field`
        // folds away, and with it an indirect jump per field.
        let mut i = 0;
        macro_rules! v2 {
            ($($idx:literal)*) => { $( one_field(line, &mut i, $idx, V2_FIELDS[$idx], 14, rec)?; )* };
        }
        v2!(0 1 2 3 4 5 6 7 8 9 10 11 12 13);
        i
    } else {
        any_fields(line, fields, rec)?
    };
    no_more_fields(line, end, fields.len())
}

/// Stores `field` into its slot of `rec`, its value read by the caller's macros: `$num!(type)`,
/// `$text!()`, `$ip!()`, `$word!(literal => value, ...)` (a closed set of words) and `$skip!()`
/// (a field without a slot). One list of fields for both line paths.
macro_rules! store_field {
    ($field:expr, $rec:ident, $num:ident, $text:ident, $ip:ident, $word:ident, $skip:ident) => {
        match $field {
            FlowField::Version => $rec.version = $num!(u8),
            FlowField::AccountId => $rec.account_id = $text!(),
            FlowField::InterfaceId => $rec.interface_id = $text!(),
            FlowField::SrcAddr => $rec.srcaddr = $ip!(),
            FlowField::DstAddr => $rec.dstaddr = $ip!(),
            FlowField::SrcPort => $rec.srcport = $num!(u16),
            FlowField::DstPort => $rec.dstport = $num!(u16),
            FlowField::Protocol => $rec.protocol = $num!(u8),
            FlowField::Packets => $rec.packets = $num!(u64),
            FlowField::Bytes => $rec.bytes = $num!(u64),
            FlowField::Start => $rec.start = $num!(u64),
            FlowField::End => $rec.end = $num!(u64),
            FlowField::Action => {
                $rec.action = $word!(b"ACCEPT" => FlowAction::Accept, b"REJECT" => FlowAction::Reject)
            }
            FlowField::LogStatus => {
                $rec.log_status = $word!(
                    b"OK" => LogStatus::Ok,
                    b"NODATA" => LogStatus::NoData,
                    b"SKIPDATA" => LogStatus::SkipData
                )
            }
            FlowField::VpcId => $rec.vpc_id = $text!(),
            FlowField::SubnetId => $rec.subnet_id = $text!(),
            FlowField::InstanceId => $rec.instance_id = $text!(),
            FlowField::TcpFlags => $rec.tcp_flags = $num!(u16),
            FlowField::Type => $rec.traffic_type = $text!(),
            FlowField::PktSrcAddr => $rec.pkt_srcaddr = $ip!(),
            FlowField::PktDstAddr => $rec.pkt_dstaddr = $ip!(),
            FlowField::Region => $rec.region = $text!(),
            FlowField::AzId => $rec.az_id = $text!(),
            FlowField::SublocationType => $rec.sublocation_type = $text!(),
            FlowField::SublocationId => $rec.sublocation_id = $text!(),
            FlowField::PktSrcAwsService => $rec.pkt_src_aws_service = $text!(),
            FlowField::PktDstAwsService => $rec.pkt_dst_aws_service = $text!(),
            FlowField::FlowDirection => {
                $rec.flow_direction = $word!(
                    b"ingress" => FlowDirection::Ingress,
                    b"egress" => FlowDirection::Egress
                )
            }
            FlowField::TrafficPath => $rec.traffic_path = $num!(u8),
            FlowField::EcsClusterArn => $rec.ecs_cluster_arn = $text!(),
            FlowField::EcsClusterName => $rec.ecs_cluster_name = $text!(),
            FlowField::EcsContainerInstanceArn => $rec.ecs_container_instance_arn = $text!(),
            FlowField::EcsContainerInstanceId => $rec.ecs_container_instance_id = $text!(),
            FlowField::EcsContainerId => $rec.ecs_container_id = $text!(),
            FlowField::EcsSecondContainerId => $rec.ecs_second_container_id = $text!(),
            FlowField::EcsServiceName => $rec.ecs_service_name = $text!(),
            FlowField::EcsTaskDefinitionArn => $rec.ecs_task_definition_arn = $text!(),
            FlowField::EcsTaskArn => $rec.ecs_task_arn = $text!(),
            FlowField::EcsTaskId => $rec.ecs_task_id = $text!(),
            FlowField::RejectReason => $rec.reject_reason = $text!(),
            FlowField::Unknown => $skip!(),
        }
    };
}

/// Sets the v2 fields of `rec` to `None`.
#[inline(always)]
fn clear_v2(rec: &mut FlowRecord<'_>) {
    macro_rules! none {
        ($($t:tt)*) => {
            None
        };
    }
    macro_rules! skip {
        () => {
            ()
        };
    }
    macro_rules! v2 {
        ($($idx:literal)*) => { $( store_field!(V2_FIELDS[$idx], rec, none, none, none, none, skip); )* };
    }
    v2!(0 1 2 3 4 5 6 7 8 9 10 11 12 13);
}

/// Reads the line from its field bounds, found first ([`Split`], as many as `fields`), each
/// field converted knowing where it ends. Returns false, leaving `rec` partly filled, when a
/// value is not accepted here; the field-by-field path then decides.
#[inline(always)]
fn whole_line<'a>(
    line: &'a str,
    fields: &[FlowField],
    v2: bool,
    split: &Split,
    rec: &mut FlowRecord<'a>,
) -> bool {
    if v2 {
        // As in `fill_fields`: the field of each call known at compile time.
        macro_rules! v2 {
            ($($idx:literal)*) => { $( field_at(line, split.field($idx), V2_FIELDS[$idx], rec) )&&* };
        }
        v2!(0 1 2 3 4 5 6 7 8 9 10 11 12 13)
    } else {
        any_field_at(line, fields, split, rec)
    }
}

/// [`whole_line`] for any field list; out of line, as the v2 path is the one to keep compact.
#[inline(never)]
fn any_field_at<'a>(
    line: &'a str,
    fields: &[FlowField],
    split: &Split,
    rec: &mut FlowRecord<'a>,
) -> bool {
    fields
        .iter()
        .enumerate()
        .all(|(k, &field)| field_at(line, split.field(k), field, rec))
}

/// `line[s..e]`, a field found by [`Split`].
#[inline(always)]
fn field_str(line: &str, s: usize, e: usize) -> &str {
    let b = &line.as_bytes()[s..e];
    debug_assert!(line.is_char_boundary(s) && line.is_char_boundary(e));
    // SAFETY: `line` is UTF-8, and a field's bounds are char boundaries: `s` is 0 or follows an
    // ASCII separator (a continuation byte cannot follow an ASCII byte), and `e` is the line's
    // end or an ASCII separator's index.
    unsafe { std::str::from_utf8_unchecked(b) }
}

/// Stores the field `line[s..e]` (bounds from [`Split`], `e > s`) into `rec`. False when the
/// value is not valid for `field`.
#[inline(always)]
fn field_at<'a>(
    line: &'a str,
    (s, e): (usize, usize),
    field: FlowField,
    rec: &mut FlowRecord<'a>,
) -> bool {
    let b = line.as_bytes();
    if e - s == 1 && b[s] == b'-' {
        return true;
    }
    macro_rules! num {
        ($t:ty) => {{
            let v = match number_in(b, s, e) {
                Some(v) => v,
                None => match digits(&b[s..e]) {
                    Some(v) => v,
                    None => return false,
                },
            };
            match <$t>::try_from(v) {
                Ok(v) => Some(v),
                Err(_) => return false,
            }
        }};
    }
    macro_rules! text {
        () => {
            Some(field_str(line, s, e))
        };
    }
    macro_rules! ip {
        () => {
            match ipv4_in(b, s, e) {
                Some(v4) => Some(IpAddr::V4(v4)),
                None => match parse_ip(field_str(line, s, e)) {
                    Some(ip) => Some(ip),
                    None => return false,
                },
            }
        };
    }
    macro_rules! word {
        ($($lit:literal => $v:expr),*) => {
            Some(match &b[s..e] {
                $( $lit => $v, )*
                _ => return false,
            })
        };
    }
    macro_rules! skip {
        () => {
            ()
        };
    }
    store_field!(field, rec, num, text, ip, word, skip);
    true
}

/// Any field list, one field after the other. Returns where the last field ended.
#[inline(always)]
fn any_fields<'a>(
    line: &'a str,
    fields: &[FlowField],
    rec: &mut FlowRecord<'a>,
) -> Result<usize, LineError> {
    let mut i = 0;
    for (idx, &field) in fields.iter().enumerate() {
        one_field(line, &mut i, idx, field, fields.len(), rec)?;
    }
    Ok(i)
}

/// A line with more fields than the format is refused, with the count.
#[inline(always)]
fn no_more_fields(line: &str, i: usize, expected: usize) -> Result<(), LineError> {
    let rest = Tokens { s: line, i }.count();
    if rest > 0 {
        return Err(LineError::FieldCount {
            found: expected + rest,
            expected,
        });
    }
    Ok(())
}

/// Reads field number `idx` (of `expected`), `field`, starting at or after `*at` (separators
/// are skipped), and leaves `*at` at its end.
#[inline(always)]
fn one_field<'a>(
    line: &'a str,
    at: &mut usize,
    idx: usize,
    field: FlowField,
    expected: usize,
    rec: &mut FlowRecord<'a>,
) -> Result<(), LineError> {
    let b = line.as_bytes();
    let mut i = *at;
    while i < b.len() && is_sep(b[i]) {
        i += 1;
    }
    if i == b.len() {
        return Err(LineError::FieldCount {
            found: idx,
            expected,
        });
    }
    let start = i;
    if b[i] == b'-' && (i + 1 == b.len() || is_sep(b[i + 1])) {
        *at = i + 1;
        return Ok(());
    }
    let bad = |end: usize| {
        let end = scan_token(b, end);
        LineError::BadValue {
            field: field.name(),
            value: line[start..end].chars().take(64).collect(),
        }
    };
    macro_rules! num {
        ($t:ty) => {{
            // Word at a time for the common case; byte by byte (and its error) otherwise.
            let (v, end) = match fast_number(b, i) {
                Some((v, end)) => (Some(v), end),
                None => scan_number(b, i),
            };
            let v = v
                .and_then(|v| <$t>::try_from(v).ok())
                .ok_or_else(|| bad(end))?;
            i = end;
            Some(v)
        }};
    }
    macro_rules! text {
        () => {{
            i = scan_token(b, i);
            Some(&line[start..i])
        }};
    }
    macro_rules! ip {
        () => {{
            if let Some((v4, end)) = fast_ipv4(b, i) {
                i = end;
                Some(IpAddr::V4(v4))
            } else {
                i = scan_token(b, i);
                Some(parse_ip(&line[start..i]).ok_or_else(|| bad(i))?)
            }
        }};
    }
    macro_rules! word {
        ($($lit:literal => $v:expr),*) => {{
            i = scan_token(b, i);
            Some(match &b[start..i] {
                $( $lit => $v, )*
                _ => return Err(bad(i)),
            })
        }};
    }
    macro_rules! skip {
        () => {
            i = scan_token(b, i)
        };
    }
    store_field!(field, rec, num, text, ip, word, skip);
    *at = i;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::flowsplit::Rng;

    /// A value for `field`: mostly valid, sometimes `-`, sometimes wrong in one of many ways.
    fn gen_value(rng: &mut Rng, field: FlowField) -> String {
        if rng.below(25) == 0 {
            return "-".into();
        }
        let bad = rng.below(30) == 0;
        let some_digits = |rng: &mut Rng, n: u64| -> String {
            (0..n)
                .map(|_| char::from(b'0' + rng.below(10) as u8))
                .collect()
        };
        let junk: &[&str] = &[
            "a", "-", "+", ".", ":", "\u{e9}", "\u{7f}", "x1", "", "\u{2003}",
        ];
        match field {
            FlowField::Version
            | FlowField::SrcPort
            | FlowField::DstPort
            | FlowField::Protocol
            | FlowField::Packets
            | FlowField::Bytes
            | FlowField::Start
            | FlowField::End
            | FlowField::TcpFlags
            | FlowField::TrafficPath => {
                let max: u64 = match field {
                    FlowField::Version | FlowField::Protocol | FlowField::TrafficPath => 255,
                    FlowField::SrcPort | FlowField::DstPort | FlowField::TcpFlags => 65_535,
                    _ => u64::MAX,
                };
                if !bad {
                    // Any value of the type: lengths across the 8/16-digit word edges up to 19
                    // digits for u64 fields, sometimes with leading zeros.
                    let v = match rng.below(3) {
                        0 => rng.below(max.min(1_000) + 1),
                        1 if max == u64::MAX => rng.next(),
                        1 => rng.below(max + 1),
                        _ => rng.next() >> rng.below(64) & max,
                    };
                    let zeros = if rng.below(10) == 0 { "00" } else { "" };
                    return format!("{zeros}{v}");
                }
                // Too long for the type, or a junk byte somewhere.
                let n = 1 + rng.below(21);
                let mut v = some_digits(rng, n);
                if rng.below(2) == 0 {
                    let at = rng.below(v.len() as u64 + 1) as usize;
                    v.insert_str(at, rng.pick(junk));
                }
                v
            }
            FlowField::SrcAddr
            | FlowField::DstAddr
            | FlowField::PktSrcAddr
            | FlowField::PktDstAddr => match rng.below(if bad { 8 } else { 5 }) {
                0..=2 => {
                    let o: Vec<String> = (0..4)
                        .map(|_| match rng.below(6) {
                            0 => format!("{:03}", rng.below(256)),
                            1 => format!("0{}", rng.below(10)),
                            _ => rng.below(256).to_string(),
                        })
                        .collect();
                    o.join(".")
                }
                3 => rng
                    .pick(&["2001:db8::1", "::1", "fe80::a:b:c:d", "::ffff:10.0.0.1"])
                    .into(),
                4 => "255.255.255.255".into(),
                5 => rng
                    .pick(&[
                        "1.2.3.256",
                        "1.2.3",
                        "1.2.3.4.5",
                        "1..2.3",
                        "1.2.3.0004",
                        "1.2.3.4a",
                        "0x1.2.3.4",
                        "::g",
                        "1.2.3.4/24",
                        "300.1.1.1",
                        ".1.2.3",
                    ])
                    .into(),
                6 => {
                    let mut v = format!(
                        "{}.{}.{}.{}",
                        rng.below(300),
                        rng.below(300),
                        rng.below(300),
                        rng.below(300)
                    );
                    let at = rng.below(v.len() as u64 + 1) as usize;
                    v.insert_str(at, rng.pick(junk));
                    v
                }
                _ => {
                    let n = 1 + rng.below(16);
                    some_digits(rng, n)
                }
            },
            FlowField::Action if bad => rng.pick(&["MAYBE", "accept", "ACCEPTED", "ACCEP"]).into(),
            FlowField::Action => rng.pick(&["ACCEPT", "REJECT"]).into(),
            FlowField::LogStatus if bad => rng.pick(&["ok", "NODATAX", "SKIP"]).into(),
            FlowField::LogStatus => rng.pick(&["OK", "NODATA", "SKIPDATA"]).into(),
            FlowField::FlowDirection if bad => rng.pick(&["in", "Ingress"]).into(),
            FlowField::FlowDirection => rng.pick(&["ingress", "egress"]).into(),
            _ => {
                // Text of any length, crossing 16/64-byte edges, sometimes not ASCII.
                let longest = if rng.below(10) == 0 { 90 } else { 24 };
                let n = 1 + rng.below(longest);
                let mut v: String = (0..n)
                    .map(|_| char::from(rng.pick(&[b"a", b"0", b"-", b":", b"/", b"Z"])[0]))
                    .collect();
                if rng.below(10) == 0 {
                    v.push_str(rng.pick(&["\u{e9}", "\u{1f600}", "\u{a0}"]));
                }
                v
            }
        }
    }

    /// One line for `fields`: separators of varying kind and length, sometimes around the line,
    /// sometimes a field missing or one too many.
    fn gen_line(rng: &mut Rng, fields: &[FlowField]) -> String {
        let mut vals: Vec<String> = fields.iter().map(|&f| gen_value(rng, f)).collect();
        match rng.below(40) {
            0 => {
                vals.pop();
            }
            1 => vals.push(gen_value(rng, FlowField::Packets)),
            2 => {
                let at = rng.below(vals.len() as u64) as usize;
                vals.remove(at);
            }
            _ => {}
        }
        let sep = |rng: &mut Rng| -> String {
            match rng.below(20) {
                0 => "  ".into(),
                1 => "\t".into(),
                2 => " \t ".into(),
                3 => "\u{b}".into(),
                4 => "\r".into(),
                _ => " ".into(),
            }
        };
        let mut line = String::new();
        if rng.below(15) == 0 {
            line.push_str(&sep(rng));
        }
        for (k, v) in vals.iter().enumerate() {
            if k > 0 {
                line.push_str(&sep(rng));
            }
            line.push_str(v);
        }
        if rng.below(15) == 0 {
            line.push_str(&sep(rng));
        }
        line
    }

    /// The reference: field after field (the path that also words the errors).
    fn by_field<'a>(line: &'a str, fields: &[FlowField]) -> Result<FlowRecord<'a>, LineError> {
        let mut rec = FlowRecord {
            line,
            ..FlowRecord::default()
        };
        any_fields(line, fields, &mut rec)
            .and_then(|end| no_more_fields(line, end, fields.len()))
            .map(|()| rec)
    }

    #[test]
    fn whole_line_agrees_with_field_by_field_on_generated_lines() {
        let mut rng = Rng(0x0f10_77e5);
        let mut split = Split::default();
        let v5 = FlowFormat::parse(
            "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status region az-id sublocation-type sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path future-field ecs-cluster-name reject-reason",
        )
        .unwrap();
        let v2 = FlowFormat::v2_default();
        let (mut fast, mut good, mut long) = (0, 0, 0);
        for round in 0..40_000 {
            let format = if round % 4 == 3 { &v5 } else { &v2 };
            let fields = format.fields();
            let line = gen_line(&mut rng, fields);
            let reference = by_field(&line, fields);
            let mut rec = FlowRecord {
                line: &line,
                ..FlowRecord::default()
            };
            let whole = split.split(line.as_bytes()) == Some(fields.len())
                && whole_line(&line, fields, fields == V2_FIELDS, &split, &mut rec);
            if line.len() <= super::super::flowsplit::MAX_LEN {
                assert_eq!(whole, reference.is_ok(), "{line:?}: {reference:?}");
            } else {
                long += 1;
            }
            if whole {
                fast += 1;
                assert_eq!(Ok(&rec), reference.as_ref(), "{line:?}");
            }
            good += usize::from(reference.is_ok());
            // And the reader's entry point, errors included, is the reference.
            assert_eq!(parse_line(&line, format), reference, "{line:?}");
        }
        // The generator really produces both kinds, and the whole-line path is really taken.
        assert!(good > 8_000 && good < 36_000, "{good} good lines");
        assert!(fast + long >= good, "{fast} fast, {long} long, {good} good");
        assert!(fast > 8_000, "{fast}");
    }

    #[test]
    fn reader_agrees_with_field_by_field_on_both_cpu_paths() {
        use crate::event::{Event, SourceKind};
        use crate::logs::{Problem, Sink};

        #[derive(Default)]
        struct Collect(Vec<String>);
        impl Sink for Collect {
            fn event(&mut self, e: &Event<'_>) {
                if let Record::Flow(r) = e.record {
                    self.0.push(format!("{}: {r:?}", e.origin.line));
                }
            }
            fn malformed(&mut self, p: &Problem<'_>) {
                self.0.push(p.to_string());
            }
        }
        /// Hands the input out in reads of random small sizes, so lines straddle every
        /// buffer refill.
        struct Dribble<'a>(&'a [u8], Rng, usize);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = (1 + self.1.below(self.2.min(1 << 20) as u64) as usize)
                    .min(buf.len())
                    .min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }

        let v5 = FlowFormat::parse(
            "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status region az-id sublocation-type sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path future-field ecs-cluster-name reject-reason",
        )
        .unwrap();
        let v2 = FlowFormat::v2_default();
        // Both compilations of the block loop where this CPU runs both, and say which ran.
        let detected = Cpu::detect();
        let mut cpus = vec![Cpu::portable()];
        if detected.is_avx2() {
            cpus.push(detected);
            eprintln!("testing the portable and the AVX2 line loops");
        } else {
            eprintln!(
                "this CPU lacks AVX2/BMI1/BMI2/POPCNT/LZCNT: testing the portable line loop only"
            );
        }
        let mut rng = Rng(0xc4_0c4);
        for (format, header) in [(&v2, false), (&v5, true), (&v2, true)] {
            let mut lines: Vec<String> = Vec::new();
            if header {
                lines.push(format.names().join(" "));
            }
            for _ in 0..3_000 {
                let mut line = match rng.below(60) {
                    0 => String::new(),
                    1 => " \t ".into(),
                    // Longer than the one-pass splitter takes.
                    2 => format!(
                        "{} {}",
                        gen_line(&mut rng, format.fields()),
                        "x".repeat(600)
                    ),
                    _ => gen_line(&mut rng, format.fields()),
                };
                if rng.below(10) == 0 {
                    line.push('\r');
                }
                lines.push(line);
            }
            let text = lines.join("\n");

            let mut want = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                let n = i + 1;
                // The reader hands out lines without a trailing `\r`.
                let line = line.strip_suffix('\r').unwrap_or(line);
                if line.trim_ascii().is_empty() || (header && n == 1) {
                    continue;
                }
                match by_field(line, format.fields()) {
                    Ok(r) => want.push(format!("{n}: {r:?}")),
                    Err(e) => {
                        let found = Tokens { s: line, i: 0 }.count();
                        let expected = format.fields().len();
                        let e = if found != expected {
                            LineError::FieldCount { found, expected }
                        } else {
                            e
                        };
                        want.push(format!("vpc-flow: obj:{n}: {e}"));
                    }
                }
            }
            assert!(want.iter().filter(|w| !w.starts_with("vpc-flow")).count() > 500);

            for &cpu in &cpus {
                let mut got = Collect::default();
                // Reads of random small sizes (lines straddle every refill), and whole.
                for dribble in [true, false] {
                    got.0.clear();
                    let seed = if dribble { 7 } else { 0 };
                    let cap = if dribble { 300 } else { usize::MAX };
                    let mut input = Chunked::new(Dribble(text.as_bytes(), Rng(seed | 1), cap));
                    read_on(
                        cpu,
                        &mut input,
                        &mut Ctx::new(SourceKind::VpcFlow, "obj", &mut got),
                        &Limits::default(),
                        (!header).then_some(format),
                    );
                    assert_eq!(got.0.len(), want.len(), "{cpu:?}");
                    for (g, w) in got.0.iter().zip(&want) {
                        assert_eq!(g, w, "{cpu:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn header_detection() {
        assert!(is_header("version account-id interface-id srcaddr"));
        assert!(is_header("${instance-id} ${interface-id}"));
        assert!(!is_header("2 123456789010 eni-1 1.2.3.4"));
        assert!(!is_header(
            "- eni-1235b8ca123456789 10.0.1.5 10.0.0.220 10.0.1.5 203.0.113.5"
        ));
        assert!(!is_header(
            "i-01234567890123456 eni-1111aaaa2222bbbb3 10.0.1.5 203.0.113.5 10.0.1.5 203.0.113.5"
        ));
    }

    #[test]
    fn v2_fields_are_the_default_format() {
        assert_eq!(FlowFormat::v2_default().fields(), V2_FIELDS);
        // The straight-line path and the loop agree, on good lines and on each kind of error.
        let v2 = FlowFormat::v2_default();
        for line in [
            "2 123456789012 eni-0a1b 10.0.1.5 203.0.113.5 443 49152 6 10 8400 1704067200 1704067260 ACCEPT OK",
            "2 123456789012 eni-0a1b - - - - - - - 1704067200 1704067260 - NODATA",
            "2 123456789012 eni-0a1b 08.1.250.216 2001:db8::1 1 2 17 1 1 1 2 REJECT OK",
            "2 1 eni-1 1.2.3.4 5.6.7.8 99999 22 6 1 1 1 2 ACCEPT OK",
            "2 1 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 1 1 2 ACCEPT",
            "2 1 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 1 1 2 MAYBE OK",
            "2 1 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 1 1 2 ACCEPT OK extra",
            "2 1 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 1 1 18446744073709551616 ACCEPT OK",
        ] {
            let straight = parse_line(line, &v2);
            let mut rec = FlowRecord {
                line,
                ..FlowRecord::default()
            };
            let looped = any_fields(line, &V2_FIELDS, &mut rec)
                .and_then(|end| no_more_fields(line, end, V2_FIELDS.len()))
                .map(|()| rec);
            assert_eq!(straight, looped, "{line}");
        }
        assert!(parse_line(
            "2 123456789012 eni-0a1b 10.0.1.5 203.0.113.5 443 49152 6 10 8400 1704067200 1704067260 ACCEPT OK",
            &v2
        )
        .is_ok());
    }

    #[test]
    fn bad_values_name_the_field() {
        let f = FlowFormat::v2_default();
        let e =
            parse_line("2 1 eni-1 1.2.3.4 5.6.7.8 99999 22 6 1 1 1 2 ACCEPT OK", &f).unwrap_err();
        assert_eq!(
            e,
            LineError::BadValue {
                field: "srcport",
                value: "99999".into()
            }
        );
        let e = parse_line("2 1 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 1 1 2 ACCEPT", &f).unwrap_err();
        assert_eq!(
            e,
            LineError::FieldCount {
                found: 13,
                expected: 14
            }
        );
        let e = parse_line("2 1 eni-1 1.2.3.4 5.6.7.8 1 22 6 1 1 1 2 ACCEPT OK x", &f).unwrap_err();
        assert_eq!(
            e,
            LineError::FieldCount {
                found: 15,
                expected: 14
            }
        );
        let e = parse_line("2 1 eni-1 1.2.3.999 5.6.7.8 1 22 6 1 1 1 2 ACCEPT OK", &f).unwrap_err();
        assert_eq!(
            e,
            LineError::BadValue {
                field: "srcaddr",
                value: "1.2.3.999".into()
            }
        );
    }
}
