//! Date partitions in object keys, so a listing can start at the last day already processed
//! instead of at the start of the prefix.
//!
//! AWS writes every log source it delivers to S3 under `.../YYYY/MM/DD/` (CloudTrail, VPC Flow
//! Logs, Resolver query logs: `AWSLogs/<account>/<service>/<region>/YYYY/MM/DD/`), or with
//! Hive-style names (`year=YYYY/month=MM/day=DD/`) when flow logs are delivered that way.
//! Firehose's default prefix is `YYYY/MM/DD/HH/`. Under one *root* (the key part before the
//! year), keys therefore sort by day, and ListObjectsV2's `start-after` can skip the days that
//! are done.

use crate::event::time::{civil_from_days, days_from_civil};

/// How the day is spelled in the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `2024/01/02/`
    Plain,
    /// `year=2024/month=01/day=02/`
    Hive,
}

/// The day partition of a key: where its root ends, how the day is spelled, and the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Length of the root (the key up to the year segment), including its trailing `/`.
    pub root_len: usize,
    pub style: Style,
    /// Days since 1970-01-01.
    pub day: i64,
}

/// The first `YYYY/MM/DD/` (or `year=YYYY/month=MM/day=DD/`) run of segments in `key`.
pub fn find(key: &str) -> Option<Partition> {
    let b = key.as_bytes();
    let mut start = 0;
    loop {
        if let Some((style, y, m, d)) = at(&b[start..]) {
            return Some(Partition {
                root_len: start,
                style,
                day: days_from_civil(y, m, d),
            });
        }
        start += memchr::memchr(b'/', &b[start..])? + 1;
    }
}

/// True if `segment` (one path segment, without `/`) is a year directory of either style.
pub fn is_year_segment(segment: &str) -> bool {
    let s = segment.strip_prefix("year=").unwrap_or(segment);
    s.len() == 4 && s.bytes().all(|c| c.is_ascii_digit())
}

/// The `start-after` value that lists `root`'s keys from `day` on (keys of that day included).
pub fn start_after(root: &str, style: Style, day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    // Keys of `day` are `<root>YYYY/MM/DD/<name>`, all greater than `<root>YYYY/MM/DD/`.
    match style {
        Style::Plain => format!("{root}{y:04}/{m:02}/{d:02}/"),
        Style::Hive => format!("{root}year={y:04}/month={m:02}/day={d:02}/"),
    }
}

fn digits(b: &[u8], n: usize) -> Option<i64> {
    if b.len() < n + 1 || b[n] != b'/' {
        return None;
    }
    let mut v = 0;
    for &c in &b[..n] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

fn at(b: &[u8]) -> Option<(Style, i64, i64, i64)> {
    let (style, y, m, d) = if let Some(rest) = b.strip_prefix(b"year=") {
        let y = digits(rest, 4)?;
        let rest = rest[5..].strip_prefix(b"month=")?;
        let m = digits(rest, 2)?;
        let rest = rest[3..].strip_prefix(b"day=")?;
        (Style::Hive, y, m, digits(rest, 2)?)
    } else {
        let y = digits(b, 4)?;
        let m = digits(&b[5..], 2)?;
        (Style::Plain, y, m, digits(&b[8..], 2)?)
    };
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((style, y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_day_of_aws_keys() {
        let k = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/123456789012_CloudTrail_us-east-1_20240102T0005Z_x.json.gz";
        let p = find(k).unwrap();
        assert_eq!(
            &k[..p.root_len],
            "AWSLogs/123456789012/CloudTrail/us-east-1/"
        );
        assert_eq!(p.style, Style::Plain);
        assert_eq!(start_after(&k[..p.root_len], p.style, p.day), {
            "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/"
        });
        assert_eq!(
            start_after("r/", Style::Plain, p.day - 2),
            "r/2023/12/31/",
            "across a year end"
        );

        let hive = "AWSLogs/aws-account-id=1/aws-service=vpcflowlogs/aws-region=us-east-1/year=2024/month=02/day=29/hour=00/f.log.gz";
        let p = find(hive).unwrap();
        assert_eq!(p.style, Style::Hive);
        assert_eq!(
            start_after(&hive[..p.root_len], p.style, p.day),
            "AWSLogs/aws-account-id=1/aws-service=vpcflowlogs/aws-region=us-east-1/year=2024/month=02/day=29/"
        );

        let firehose = "2024/03/04/05/PUT-S3-x-1-2024-03-04-05-00-00-uuid";
        assert_eq!(find(firehose).unwrap().root_len, 0);
    }

    #[test]
    fn ignores_what_is_not_a_day() {
        for k in [
            "flows/1.log",
            "x/2024/01/f.log",
            "x/2024/13/01/f.log",
            "x/2024/01/1/f.log",
            "x/20240/01/02/f.log",
            "x/2024/01/02",
            "x/year=2024/month=1/day=02/f",
        ] {
            assert_eq!(find(k), None, "{k}");
        }
        assert!(is_year_segment("2024") && is_year_segment("year=2024"));
        assert!(!is_year_segment("us-east-1") && !is_year_segment("202"));
    }
}
