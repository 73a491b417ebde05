//! VPC Flow Logs reader: space-separated text, any field order. The format comes from the
//! file's header line (S3 delivery writes one), else from configuration, else the v2 default.
//!
//! This is the highest-volume source, so the line parser works on bytes, borrows every string
//! field from the line and allocates nothing per record.

use super::flowscan::{fast_ipv4, fast_number, is_sep, scan_token};
use super::input::{Chunked, TextLine, for_each_text_line};
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
    let default_format;
    let base = match configured {
        Some(f) => f,
        None => {
            default_format = FlowFormat::v2_default();
            &default_format
        }
    };
    let mut from_header: Option<FlowFormat> = None;
    let mut first = true;
    for_each_text_line(input, limits.max_line, |n, line| match line {
        TextLine::TooLong { len } => ctx.malformed(
            Some(n),
            None,
            format_args!(
                "line of {len} bytes exceeds the {} byte limit",
                limits.max_line
            ),
        ),
        TextLine::Truncated => ctx.cut_at_line = Some(n),
        TextLine::NotUtf8 { valid_up_to } => ctx.malformed(
            Some(n),
            None,
            format_args!("not UTF-8 (invalid byte at column {})", valid_up_to + 1),
        ),
        TextLine::Text(text) => {
            if text.trim_ascii().is_empty() {
                return;
            }
            if std::mem::take(&mut first) && is_header(text) {
                match FlowFormat::parse(text) {
                    Ok(f) => from_header = Some(f),
                    Err(e) => ctx.malformed(Some(n), None, format_args!("bad header line: {e}")),
                }
                return;
            }
            let format = from_header.as_ref().unwrap_or(base);
            // Filled in place: returning the large record by value cost a copy per line.
            let mut rec = FlowRecord {
                line: text,
                ..FlowRecord::default()
            };
            match fill_fields(text, format, &mut rec) {
                Ok(()) => ctx.emit(n, None, Record::Flow(&rec)),
                Err(e) => {
                    // A wrong field count explains a bad value better (e.g. a format mismatch).
                    let found = Tokens { s: text, i: 0 }.count();
                    let expected = format.fields().len();
                    if found != expected {
                        ctx.malformed(Some(n), None, LineError::FieldCount { found, expected })
                    } else {
                        ctx.malformed(Some(n), None, e)
                    }
                }
            }
        }
    });
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
    fill_fields(line, format, &mut rec)?;
    Ok(rec)
}

/// Decimal digits of a numeric field. Returns the value (None if a byte was not a digit, there
/// were more than 19 digits, or it overflowed) and the end index. The path for what
/// [`fast_number`] leaves: bad values, more than 15 digits, a number ending the line.
#[inline(never)]
fn scan_number(b: &[u8], i: usize) -> (Option<u64>, usize) {
    let end = scan_token(b, i);
    let digits = &b[i..end];
    // 19 digits always fit in a u64; longer values are rejected rather than checked per digit.
    if digits.len() > 19 {
        return (None, end);
    }
    let mut v: u64 = 0;
    let mut ok = true;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        ok &= d <= 9;
        v = v.wrapping_mul(10).wrapping_add(u64::from(d));
    }
    (ok.then_some(v), end)
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
    fill_fields(line, format, rec)
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

/// The field loop of [`parse_line_into`], on a record that is still all `None`.
#[inline(always)]
fn fill_fields<'a>(
    line: &'a str,
    format: &FlowFormat,
    rec: &mut FlowRecord<'a>,
) -> Result<(), LineError> {
    let fields = format.fields();
    let end = if fields == V2_FIELDS {
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
    match field {
        FlowField::Version => rec.version = num!(u8),
        FlowField::AccountId => rec.account_id = text!(),
        FlowField::InterfaceId => rec.interface_id = text!(),
        FlowField::SrcAddr => rec.srcaddr = ip!(),
        FlowField::DstAddr => rec.dstaddr = ip!(),
        FlowField::SrcPort => rec.srcport = num!(u16),
        FlowField::DstPort => rec.dstport = num!(u16),
        FlowField::Protocol => rec.protocol = num!(u8),
        FlowField::Packets => rec.packets = num!(u64),
        FlowField::Bytes => rec.bytes = num!(u64),
        FlowField::Start => rec.start = num!(u64),
        FlowField::End => rec.end = num!(u64),
        FlowField::Action => {
            i = scan_token(b, i);
            rec.action = Some(match &b[start..i] {
                b"ACCEPT" => FlowAction::Accept,
                b"REJECT" => FlowAction::Reject,
                _ => return Err(bad(i)),
            })
        }
        FlowField::LogStatus => {
            i = scan_token(b, i);
            rec.log_status = Some(match &b[start..i] {
                b"OK" => LogStatus::Ok,
                b"NODATA" => LogStatus::NoData,
                b"SKIPDATA" => LogStatus::SkipData,
                _ => return Err(bad(i)),
            })
        }
        FlowField::VpcId => rec.vpc_id = text!(),
        FlowField::SubnetId => rec.subnet_id = text!(),
        FlowField::InstanceId => rec.instance_id = text!(),
        FlowField::TcpFlags => rec.tcp_flags = num!(u16),
        FlowField::Type => rec.traffic_type = text!(),
        FlowField::PktSrcAddr => rec.pkt_srcaddr = ip!(),
        FlowField::PktDstAddr => rec.pkt_dstaddr = ip!(),
        FlowField::Region => rec.region = text!(),
        FlowField::AzId => rec.az_id = text!(),
        FlowField::SublocationType => rec.sublocation_type = text!(),
        FlowField::SublocationId => rec.sublocation_id = text!(),
        FlowField::PktSrcAwsService => rec.pkt_src_aws_service = text!(),
        FlowField::PktDstAwsService => rec.pkt_dst_aws_service = text!(),
        FlowField::FlowDirection => {
            i = scan_token(b, i);
            rec.flow_direction = Some(match &b[start..i] {
                b"ingress" => FlowDirection::Ingress,
                b"egress" => FlowDirection::Egress,
                _ => return Err(bad(i)),
            })
        }
        FlowField::TrafficPath => rec.traffic_path = num!(u8),
        FlowField::EcsClusterArn => rec.ecs_cluster_arn = text!(),
        FlowField::EcsClusterName => rec.ecs_cluster_name = text!(),
        FlowField::EcsContainerInstanceArn => rec.ecs_container_instance_arn = text!(),
        FlowField::EcsContainerInstanceId => rec.ecs_container_instance_id = text!(),
        FlowField::EcsContainerId => rec.ecs_container_id = text!(),
        FlowField::EcsSecondContainerId => rec.ecs_second_container_id = text!(),
        FlowField::EcsServiceName => rec.ecs_service_name = text!(),
        FlowField::EcsTaskDefinitionArn => rec.ecs_task_definition_arn = text!(),
        FlowField::EcsTaskArn => rec.ecs_task_arn = text!(),
        FlowField::EcsTaskId => rec.ecs_task_id = text!(),
        FlowField::RejectReason => rec.reject_reason = text!(),
        FlowField::Unknown => i = scan_token(b, i),
    }
    *at = i;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
