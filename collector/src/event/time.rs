//! Timestamp parsing without a date-time dependency: logs use a handful of ISO-8601 shapes.

use std::cell::Cell;

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; a space instead of `T` and a missing zone
/// (taken as UTC) are accepted too, because exporters produce them. Returns Unix milliseconds.
pub fn parse_iso8601_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let minute = minute_secs(b[..16].try_into().expect("16 bytes"))?;
    let (s1, s2) = (b[17].wrapping_sub(b'0'), b[18].wrapping_sub(b'0'));
    if b[16] != b':' || s1 > 9 || s2 > 9 {
        return None;
    }
    let sec = i64::from(s1 * 10 + s2);
    if sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_min = match &b[i..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let d = |c: &u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
            let (h, m) = (d(h1)? * 10 + d(h2)?, d(m1)? * 10 + d(m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            if *sign == b'+' {
                h * 60 + m
            } else {
                -(h * 60 + m)
            }
        }
        _ => return None,
    };
    let secs = minute + sec - offset_min * 60;
    Some(secs * 1000 + millis)
}

std::thread_local! {
    /// The last `YYYY-MM-DDTHH:MM` parsed on this thread and its Unix seconds. Log records come
    /// roughly in time order, so most share their minute with the record before and skip the
    /// digit checks and calendar arithmetic (every record's time goes through here).
    static LAST_MINUTE: Cell<([u8; 16], i64)> = const { Cell::new(([0; 16], 0)) };
}

/// Unix seconds of `YYYY-MM-DD(T| )HH:MM`, `None` if it is not one. Remembers the last answer
/// ([`LAST_MINUTE`]; its initial all-zero key is no valid minute, so it never matches).
fn minute_secs(b: &[u8; 16]) -> Option<i64> {
    let (key, secs) = LAST_MINUTE.with(Cell::get);
    if key == *b {
        return Some(secs);
    }
    // The 12 digits sit at fixed places: checked and converted in one branch-free pass.
    const DIGITS: [usize; 12] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15];
    let mut d = [0i64; 12];
    let mut not_digit = false;
    for (v, &i) in d.iter_mut().zip(&DIGITS) {
        let x = b[i].wrapping_sub(b'0');
        not_digit |= x > 9;
        *v = i64::from(x);
    }
    if not_digit
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
    {
        return None;
    }
    let year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3];
    let (month, day) = (d[4] * 10 + d[5], d[6] * 10 + d[7]);
    let (hour, min) = (d[8] * 10 + d[9], d[10] * 10 + d[11]);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60;
    LAST_MINUTE.with(|last| last.set((*b, secs)));
    Some(secs)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (era-based computation: 400-year eras
/// have a fixed number of days, and counting years from March puts the leap day last).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (inverse of
/// [`days_from_civil`], same era arithmetic).
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `YYYYMMDDTHHMMSSZ` (the SigV4 `x-amz-date` form) of a Unix time in seconds.
pub fn format_amz_date(unix_secs: i64) -> String {
    let (y, m, d) = civil_from_days(unix_secs.div_euclid(86_400));
    let s = unix_secs.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse_iso8601_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_iso8601_ms("2014-03-06T21:22:54Z"),
            Some(1_394_140_974_000)
        );
        assert_eq!(
            parse_iso8601_ms("2017-03-16T19:20:25.177Z"),
            Some(1_489_692_025_177)
        );
        assert_eq!(
            parse_iso8601_ms("2022-06-25 00:27:53"),
            Some(1_656_116_873_000)
        );
        assert_eq!(
            parse_iso8601_ms("2000-02-29T00:00:00+01:00"),
            Some(951_778_800_000)
        );
        assert_eq!(
            parse_iso8601_ms("2024-07-01T10:00:00.5Z"),
            Some(1_719_828_000_500)
        );
    }

    #[test]
    fn amz_date_round_trips() {
        assert_eq!(format_amz_date(0), "19700101T000000Z");
        assert_eq!(format_amz_date(1_440_938_160), "20150830T123600Z");
        for days in [-800_000i64, -1, 0, 59, 11_016, 19_723, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        let t = parse_iso8601_ms("2000-02-29T23:59:59Z").unwrap() / 1000;
        assert_eq!(format_amz_date(t), "20000229T235959Z");
    }

    /// The remembered minute must not change any answer: timestamps formatted from known
    /// instants, in runs of one minute and in jumps, with bad seconds and bad minutes between.
    #[test]
    fn remembered_minute_gives_the_same_answers() {
        let format = |t: i64, ms: i64| crate::findings::time::format_millis(t * 1000 + ms);
        let mut rng = crate::test_rng::XorShift(0x9E37_79B9_7F4A_7C15);
        let mut next = || rng.next();
        let mut t = 1_704_067_195i64;
        for _ in 0..20_000 {
            t += match next() % 4 {
                0 => (next() % 400_000_000) as i64 - 200_000_000,
                _ => (next() % 3) as i64,
            };
            let ms = (next() % 1000) as i64;
            let text = format(t, ms);
            assert_eq!(parse_iso8601_ms(&text), Some(t * 1000 + ms), "{text}");
            // Same minute, bad seconds; then a bad minute: both refused, and the next good
            // stamp of the same minute still right.
            // The other shapes of the same instant.
            let whole = format!("{}Z", &text[..19]);
            assert_eq!(parse_iso8601_ms(&whole), Some(t * 1000), "{whole}");
            let offset = format!("{}+00:00", &text[..23]);
            assert_eq!(parse_iso8601_ms(&offset), Some(t * 1000 + ms), "{offset}");
            let bad_ms = format!("{}.0x0Z", &text[..19]);
            assert_eq!(parse_iso8601_ms(&bad_ms), None, "{bad_ms}");
            let bad_sec = format!("{}:6x.000Z", &text[..16]);
            assert_eq!(parse_iso8601_ms(&bad_sec), None, "{bad_sec}");
            let bad_min = format!("{}:{}", &text[..13], "6");
            assert_eq!(parse_iso8601_ms(&format!("{bad_min}0:00Z")), None);
            assert_eq!(parse_iso8601_ms(&text), Some(t * 1000 + ms), "{text}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "2014-03-06",
            "2014-13-06T21:22:54Z",
            "2014-03-06T21:22:54Q",
            "abcd-03-06T21:22:54Z",
        ] {
            assert_eq!(parse_iso8601_ms(s), None, "{s:?}");
        }
        // A non-digit in any digit place.
        let good = "2014-03-06T21:22:54Z";
        assert!(parse_iso8601_ms(good).is_some());
        for i in [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18] {
            for junk in [b'x', b'/', b':', b' '] {
                let mut s = good.as_bytes().to_vec();
                s[i] = junk;
                let s = String::from_utf8(s).unwrap();
                assert_eq!(parse_iso8601_ms(&s), None, "{s:?}");
            }
        }
    }
}
