//! ISO-8601 timestamps as GuardDuty writes them, and epoch milliseconds as Ward computes with them.
//!
//! Findings keep their timestamps as the strings found on the wire so a parsed finding re-serialises
//! byte-for-byte (`2020-08-03T23:21:57Z` stays without milliseconds). Ward itself always writes
//! `YYYY-MM-DDTHH:MM:SS.mmmZ`. Arithmetic (aggregation, suppression comparisons) is done on epoch
//! milliseconds. The civil-date conversion is the log readers' ([`crate::event::time`]): no date crate.

use crate::event::time::{civil_from_days, parse_iso8601_ms};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type EpochMillis = i64;

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), GuardDuty's `createdAt` shape.
pub fn format_millis(epoch_ms: EpochMillis) -> String {
    let days = epoch_ms.div_euclid(MILLIS_PER_DAY);
    let ms_of_day = epoch_ms.rem_euclid(MILLIS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let hour = ms_of_day / 3_600_000;
    let minute = ms_of_day / 60_000 % 60;
    let second = ms_of_day / 1000 % 60;
    let millis = ms_of_day % 1000;
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// Formats nanoseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`: the agent's own event
/// time shape (`ward-agent watch`), so events that arrive over the wire read exactly as printed ones.
pub fn format_nanos(epoch_ns: u64) -> String {
    let secs = (epoch_ns / 1_000_000_000) as i64;
    let nanos = epoch_ns % 1_000_000_000;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let (hour, minute, second) = (s / 3600, s / 60 % 60, s % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{nanos:09}Z")
}

/// Parses an RFC 3339 / ISO-8601 timestamp (`2020-08-22T09:34:34.146Z`, `2020-08-03T23:21:57Z`,
/// `2023-06-01T15:31:22+02:00`, fractional digits beyond milliseconds truncated) to epoch ms.
/// Returns `None` for anything that is not such a timestamp, so callers can use it as a test.
///
/// The log readers' parser ([`parse_iso8601_ms`]) reads it; RFC 3339 asks more than log
/// exporters give, and that is checked here: a zone (`Z` or `±HH:MM`) and a day the month has.
pub fn parse_millis(text: &str) -> Option<EpochMillis> {
    let b = text.as_bytes();
    let zoned = matches!(b, [.., b'Z' | b'z'])
        || matches!(b, [.., b'+' | b'-', _, _, b':', _, _] if b.len() >= 25);
    if !zoned || b.len() < 20 {
        return None;
    }
    let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    if !(1..=12).contains(&month) || day > days_in_month(year, month) {
        return None;
    }
    parse_iso8601_ms(text)
}

fn digits(bytes: &[u8], start: usize, len: usize) -> Option<i64> {
    let slice = bytes.get(start..start + len)?;
    slice.iter().try_fold(0i64, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanosecond_times_read_back() {
        assert_eq!(format_nanos(0), "1970-01-01T00:00:00.000000000Z");
        let t = format_nanos(1_709_208_000_123_456_789);
        assert_eq!(t, "2024-02-29T12:00:00.123456789Z");
        assert_eq!(parse_millis(&t), Some(1_709_208_000_123));
    }

    #[test]
    fn formats_epoch_and_known_instants() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        // 2020-08-22T09:34:34.146Z, createdAt of the SSH brute-force example.
        assert_eq!(format_millis(1_598_088_874_146), "2020-08-22T09:34:34.146Z");
        assert_eq!(format_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_millis(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_the_shapes_guardduty_uses() {
        assert_eq!(
            parse_millis("2020-08-22T09:34:34.146Z"),
            Some(1_598_088_874_146)
        );
        assert_eq!(
            parse_millis("2020-08-22T09:34:34Z"),
            Some(1_598_088_874_000)
        );
        assert_eq!(
            parse_millis("2020-08-22T09:34:34.1Z"),
            Some(1_598_088_874_100)
        );
        assert_eq!(
            parse_millis("2020-08-22T09:34:34.123456789Z"),
            Some(1_598_088_874_123)
        );
        assert_eq!(
            parse_millis("2020-08-22T11:34:34+02:00"),
            Some(1_598_088_874_000)
        );
        assert_eq!(
            parse_millis("2020-08-22T07:34:34-02:00"),
            Some(1_598_088_874_000)
        );
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for bad in [
            "2020-08-22 09:34:34",
            "2020-08-22T09:34:34+0200",
            "2020-08-22T09:34:34+24:00",
            "2020-08-22T09:34:34+02:60",
            "2020-04-31T00:00:00Z",
            "",
            "2020-08-22",
            "2020-08-22T09:34:34",
            "2020-13-01T00:00:00Z",
            "2021-02-29T00:00:00Z",
            "2020-08-22T24:00:00Z",
            "2020-08-22T09:34:34.Z",
            "2020-08-22T09:34:34Zjunk",
            "1598088874146",
            "not a timestamp at all",
        ] {
            assert_eq!(parse_millis(bad), None, "{bad:?} should not parse");
        }
    }

    #[test]
    fn format_and_parse_round_trip_across_eras() {
        for ms in [
            0,
            1_598_088_874_146,
            4_102_444_799_999,
            -62_135_596_800_000,
            1_709_164_800_000,
        ] {
            assert_eq!(parse_millis(&format_millis(ms)), Some(ms), "{ms}");
        }
    }
}
