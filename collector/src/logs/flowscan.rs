//! Word-at-a-time scanning of flow-log fields: where a field ends, and decimal numbers and
//! dotted-quad IPv4 addresses read straight from the line, 4 or 8 bytes per step.
//!
//! Byte-by-byte loops spent most of the flow-log parse time on a mispredicted branch at the end
//! of every field (field lengths vary from line to line). Here a field's end is found from a bit
//! mask (`trailing_zeros`), and digits are converted with a few multiplications.
//!
//! The fast functions only answer for the common, valid case and return `None` for anything else
//! (a line ending inside the loaded word, more than 15 digits, a bad byte); the caller then takes
//! the byte-by-byte path, which decides validity and words the error. So a fast path never has to
//! be right about a rejection, only about an acceptance.

use super::flowsplit::digits_dots16;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x80 * ONES;

/// Field separator: space or tab (one comparison covers both, and other control bytes, which
/// cannot appear inside a field).
#[inline(always)]
pub(crate) fn is_sep(c: u8) -> bool {
    c <= b' '
}

/// High bit of each byte of `x` set where that byte is a separator (<= b' '), exact per byte:
/// `(c & 0x7f) + 0x5f` reaches 0x80 for 0x21..=0x7f and cannot carry into the next byte, and
/// bytes >= 0x80 are excluded by their own high bit.
#[inline(always)]
pub(crate) fn separators(x: u64) -> u64 {
    !(((x & (0x7f * ONES)) + 0x5f * ONES) | x) & HIGH
}

/// High bit of each byte of `x` set where that byte is not an ASCII digit, exact per byte:
/// `(c & 0x7f) + 0x46` reaches 0x80 for c >= b':', `(c & 0x7f) + 0x50` stays below 0x80 for
/// c < b'0', neither sum can carry into the next byte, and bytes >= 0x80 set their own high bit.
#[inline(always)]
fn non_digits(x: u64) -> u64 {
    let low = x & (0x7f * ONES);
    ((low + 0x46 * ONES) | !(low + 0x50 * ONES) | x) & HIGH
}

/// End of the field starting at `i`: eight bytes per step (fields are mostly 8-20 bytes long),
/// then byte by byte for the tail of the line.
#[inline(always)]
pub(crate) fn scan_token(b: &[u8], mut i: usize) -> usize {
    while let Some(word) = b.get(i..i + 8) {
        let m = separators(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !is_sep(b[i]) {
        i += 1;
    }
    i
}

/// Value of the first `n` (1..=8) bytes of `word` (first byte lowest), which are ASCII digits.
#[inline(always)]
fn digits_value(word: u64, n: usize) -> u64 {
    debug_assert!((1..=8).contains(&n));
    // Digit values, moved to the top `n` bytes: the bytes below become leading zeros. A borrow
    // from a byte below b'0' only runs upwards, into bytes after the digits, which are shifted out.
    let d = word.wrapping_sub(0x30 * ONES) << (8 * (8 - n));
    // Pairs: byte 2k becomes 10 * d[2k] + d[2k+1] (the odd bytes get junk, masked off below).
    let pairs = d.wrapping_mul(10).wrapping_add(d >> 8);
    // Then groups of four and the final eight, both by one multiplication each.
    let mask = 0x0000_00ff_0000_00ff;
    let hi = (pairs & mask).wrapping_mul(100 + (1_000_000 << 32));
    let lo = ((pairs >> 16) & mask).wrapping_mul(1 + (10_000 << 32));
    hi.wrapping_add(lo) >> 32
}

const POW10: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// A decimal field of 1 to 15 digits at `i`, ended by a separator. Returns its value and end, or
/// `None` when the word-at-a-time path cannot tell (see the module comment).
#[inline(always)]
pub(crate) fn fast_number(b: &[u8], i: usize) -> Option<(u64, usize)> {
    let word = u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?);
    let m = non_digits(word);
    if m != 0 {
        let n = (m.trailing_zeros() / 8) as usize;
        if n == 0 || !is_sep(b[i + n]) {
            return None;
        }
        return Some((digits_value(word, n), i + n));
    }
    // Eight digits and more (Unix timestamps have ten).
    let high = digits_value(word, 8);
    let word = u64::from_le_bytes(b.get(i + 8..i + 16)?.try_into().ok()?);
    let m = non_digits(word);
    if m == 0 {
        return None;
    }
    let n = (m.trailing_zeros() / 8) as usize;
    if !is_sep(b[i + 8 + n]) {
        return None;
    }
    let low = if n == 0 { 0 } else { digits_value(word, n) };
    Some((high * POW10[n] + low, i + 8 + n))
}

/// One octet of a dotted quad at `p`: 1 to 3 digits, at most 255, followed by `end` (a dot), or
/// by a separator when `end` is `None`. Returns the octet and the index after its terminator.
#[inline(always)]
fn octet(b: &[u8], p: usize, end: Option<u8>) -> Option<(u8, usize)> {
    let word = u32::from_le_bytes(b.get(p..p + 4)?.try_into().ok()?);
    let m = non_digits(u64::from(word)) as u32;
    let n = (m.trailing_zeros() / 8) as usize;
    // m == 0 (four digits) gives n == 4; zero digits gives n == 0: both refused.
    if n == 0 || n > 3 {
        return None;
    }
    let term = b[p + n];
    let term_ok = match end {
        Some(c) => term == c,
        None => is_sep(term),
    };
    // Digit values aligned so that byte 2 holds the units.
    let d = word.wrapping_sub(0x3030_3030) << (8 * (3 - n));
    let v = (d & 0xff) * 100 + ((d >> 8) & 0xff) * 10 + ((d >> 16) & 0xff);
    if !term_ok || v > 255 {
        return None;
    }
    Some((v as u8, p + n + 1))
}

/// A dotted-quad IPv4 field at `i` (leading zeros allowed, as in
/// [`crate::event::net::parse_ipv4_lenient`]), ended by a separator. Returns the address and the
/// index of that separator, or `None` when the word-at-a-time path cannot tell.
#[inline(always)]
pub(crate) fn fast_ipv4(b: &[u8], i: usize) -> Option<(std::net::Ipv4Addr, usize)> {
    let (a, p) = octet(b, i, Some(b'.'))?;
    let (c, p) = octet(b, p, Some(b'.'))?;
    let (d, p) = octet(b, p, Some(b'.'))?;
    let (e, p) = octet(b, p, None)?;
    Some((std::net::Ipv4Addr::new(a, c, d, e), p - 1))
}

/// Eight bytes of `b` from `i`, as a little-endian word; bytes past the end of `b` read as 0
/// (not a digit, not a dot: callers only look at bytes they know are in the field).
#[inline(always)]
fn load8(b: &[u8], i: usize) -> u64 {
    match b.get(i..i + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().expect("8 bytes")),
        None => load8_tail(b, i),
    }
}

#[inline(never)]
fn load8_tail(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    let rest = b.get(i..).unwrap_or_default();
    let n = rest.len().min(8);
    w[..n].copy_from_slice(&rest[..n]);
    u64::from_le_bytes(w)
}

/// High bits of the first `n` (1..=8) bytes of a word.
#[inline(always)]
fn first_bytes(n: usize) -> u64 {
    debug_assert!((1..=8).contains(&n));
    HIGH >> (64 - 8 * n)
}

/// The decimal field `b[s..e]` (its bounds known, `e > s`): its value when it is 1 to 16 ASCII
/// digits, else `None` (the caller's byte-by-byte path decides). Digits are checked and
/// converted a word at a time, without looking for the field's end.
#[inline(always)]
pub(crate) fn number_in(b: &[u8], s: usize, e: usize) -> Option<u64> {
    let n = e - s;
    let w = load8(b, s);
    if n <= 8 {
        if non_digits(w) & first_bytes(n) != 0 {
            return None;
        }
        return Some(digits_value(w, n));
    }
    if n > 16 {
        return None;
    }
    let w2 = load8(b, s + 8);
    if (non_digits(w) | (non_digits(w2) & first_bytes(n - 8))) != 0 {
        return None;
    }
    Some(digits_value(w, 8) * POW10[n - 8] + digits_value(w2, n - 8))
}

/// Four bytes of `b` from `i`; bytes past the end of `b` read as 0.
#[inline(always)]
fn load4(b: &[u8], i: usize) -> u32 {
    match b.get(i..i + 4) {
        Some(w) => u32::from_le_bytes(w.try_into().expect("4 bytes")),
        None => load8_tail(b, i) as u32,
    }
}

/// The value of the octet of `k` (1..=3) digits that starts the little-endian word `w`.
#[inline(always)]
fn octet_value(w: u32, k: usize) -> u32 {
    // As in `octet`: digits aligned so that byte 2 holds the units; the terminator's borrow
    // only reaches bytes shifted out.
    let d = w.wrapping_sub(0x3030_3030) << (8 * (3 - k));
    (d & 0xff) * 100 + ((d >> 8) & 0xff) * 10 + ((d >> 16) & 0xff)
}

/// The dotted-quad IPv4 field `b[s..e]` (its bounds known), leading zeros allowed as in
/// [`crate::event::net::parse_ipv4_lenient`]; `None` for anything else (IPv6, bad values),
/// which the caller's byte-by-byte path decides. Digits and dots are classified in one 16-byte
/// step, so the four octets are found and converted independently of each other.
#[inline(always)]
pub(crate) fn ipv4_in(b: &[u8], s: usize, e: usize) -> Option<std::net::Ipv4Addr> {
    let n = e - s;
    if !(7..=15).contains(&n) {
        return None;
    }
    let (digits, dots) = match b.get(s..s + 16) {
        Some(chunk) => digits_dots16(chunk.try_into().expect("16 bytes")),
        None => {
            let mut pad = [0u8; 16];
            pad[..n].copy_from_slice(&b[s..e]);
            digits_dots16(&pad)
        }
    };
    let window = (1u32 << n) - 1;
    let (digits, dots) = (u32::from(digits) & window, u32::from(dots) & window);
    // Every byte a digit or a dot, and exactly three dots.
    let d1 = dots.trailing_zeros() as usize;
    let rest = dots & dots.wrapping_sub(1);
    let d2 = rest.trailing_zeros() as usize;
    let rest = rest & rest.wrapping_sub(1);
    let d3 = rest.trailing_zeros() as usize;
    let rest = rest & rest.wrapping_sub(1);
    if digits | dots != window || rest != 0 {
        return None;
    }
    // Octet lengths 1..=3 (a missing dot gives 32, and a length far out of range).
    let lens = [
        d1,
        d2.wrapping_sub(d1 + 1),
        d3.wrapping_sub(d2 + 1),
        n.wrapping_sub(d3 + 1),
    ];
    if lens.iter().any(|&k| k.wrapping_sub(1) >= 3) {
        return None;
    }
    let o = [
        octet_value(load4(b, s), lens[0]),
        octet_value(load4(b, s + d1 + 1), lens[1]),
        octet_value(load4(b, s + d2 + 1), lens[2]),
        octet_value(load4(b, s + d3 + 1), lens[3]),
    ];
    if o.iter().any(|&v| v > 255) {
        return None;
    }
    Some(std::net::Ipv4Addr::new(
        o[0] as u8, o[1] as u8, o[2] as u8, o[3] as u8,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::net::parse_ipv4_lenient;

    #[test]
    fn word_masks_are_exact_for_every_byte() {
        for c in 0..=255u8 {
            for pos in 0..8 {
                // The byte under test among non-separators and separators alike.
                for fill in [b'a', b' ', b'0', b'9', b'/', b':', 0xff] {
                    let mut w = [fill; 8];
                    w[pos] = c;
                    let x = u64::from_le_bytes(w);
                    let bit = 0x80u64 << (pos * 8);
                    assert_eq!(separators(x) & bit != 0, is_sep(c), "sep {c:#x} at {pos}");
                    assert_eq!(
                        non_digits(x) & bit != 0,
                        !c.is_ascii_digit(),
                        "digit {c:#x} at {pos} among {fill:#x}"
                    );
                }
            }
        }
        let line = b"eni-0123456789abcdef\t10.0.0.1 x";
        assert_eq!(scan_token(line, 0), 20);
        assert_eq!(scan_token(line, 21), 29);
        assert_eq!(scan_token(line, 30), 31);
    }

    /// The reference: every byte a digit, at most 19 of them (as the byte-by-byte path).
    fn slow_number(t: &[u8]) -> Option<u64> {
        if t.is_empty() || t.len() > 19 || !t.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(t).ok()?.parse().ok()
    }

    /// A fast-path scanner: the value at `i` and where it ends, or `None` to leave it to the
    /// byte-by-byte path.
    type Fast<T> = fn(&[u8], usize) -> Option<(T, usize)>;

    /// `fast` on `field` followed by each of `tails` (possible ends of the field): when it
    /// answers, it must agree with `reference` on the field alone and end where the field ends.
    fn agree<T: PartialEq + std::fmt::Debug>(
        field: &str,
        tails: &[&str],
        fast: Fast<T>,
        reference: fn(&[u8]) -> Option<T>,
    ) -> Option<T> {
        let mut answered = None;
        for tail in tails {
            let line = format!("{field}{tail}");
            let b = line.as_bytes();
            let end = scan_token(b, 0);
            if let Some((v, e)) = fast(b, 0) {
                assert_eq!(Some(&v), reference(&b[..end]).as_ref(), "{line:?}");
                assert_eq!(e, end, "{line:?}");
                answered = Some(v);
            }
        }
        answered
    }

    /// A scanner given the field's bounds: the value of `b[s..e]`, or `None` to leave it to
    /// the byte-by-byte path.
    type Within<T> = fn(&[u8], usize, usize) -> Option<T>;

    /// `within` on `field` (bounds given) followed by each of `tails`, after each of a few
    /// prefixes: when it answers, it must agree with `reference`; when `must_answer` says the
    /// reference's answer is the common case, it must answer too.
    fn agree_within<T: PartialEq + std::fmt::Debug>(
        field: &str,
        tails: &[&str],
        within: Within<T>,
        reference: fn(&[u8]) -> Option<T>,
        must_answer: fn(&[u8]) -> bool,
    ) {
        let expected = reference(field.as_bytes());
        for prefix in ["", "x ", "2 123456789012 eni-0a1b2c3d4e5f67890 "] {
            for tail in tails {
                let line = format!("{prefix}{field}{tail}");
                let (s, e) = (prefix.len(), prefix.len() + field.len());
                match within(line.as_bytes(), s, e) {
                    Some(v) => assert_eq!(Some(&v), expected.as_ref(), "{line:?}"),
                    None => assert!(
                        expected.is_none() || !must_answer(field.as_bytes()),
                        "{line:?} left to the slow path"
                    ),
                }
            }
        }
    }

    fn check_number(field: &str) -> Option<u64> {
        let tails = ["", " ", "\t", " 1.2.3.4 ACCEPT OK", "x 17 18"];
        if !field.is_empty() {
            agree_within(field, &tails, number_in, slow_number, |f| f.len() <= 16);
        }
        agree(field, &tails, fast_number, slow_number)
    }

    #[test]
    fn numbers_match_the_reference() {
        for s in [
            "0",
            "7",
            "00",
            "007",
            "255",
            "256",
            "65535",
            "65536",
            "1234567",
            "12345678",
            "123456789",
            "1704067200",
            "9999999999999999",
            "18446744073709551615",
            "99999999999999999999",
            "1-2",
            "12a",
            "a12",
            "1.5",
            "-",
            "-1",
            "+1",
            "١٢",
            "1\u{e9}",
        ] {
            check_number(s);
        }
        // Every length from 1 to 20 digits, several digit patterns.
        for len in 1..=20 {
            for d in ["0", "1", "5", "9"] {
                let s = d.repeat(len);
                let got = check_number(&s);
                if len <= 15 {
                    assert_eq!(got, s.parse().ok(), "{s}");
                }
            }
            let s: String = (0..len)
                .map(|k| char::from(b'0' + (k * 7 % 10) as u8))
                .collect();
            check_number(&s);
        }
        // Answers on the common case (so the fast path is really taken).
        assert_eq!(
            fast_number(b"1704067200 ACCEPT OK", 0),
            Some((1_704_067_200, 10))
        );
        assert_eq!(fast_number(b"443 6 1 1 x", 0), Some((443, 3)));
        assert_eq!(fast_number(b"12345678 ACCEPT OK", 0), Some((12_345_678, 8)));
        // Empty, overflowing and bad fields are left to the byte-by-byte path.
        assert_eq!(fast_number(b" 12345678", 0), None);
        assert_eq!(fast_number(b"12345678901234567 x", 0), None);
        assert_eq!(fast_number(b"12a4 x y z", 0), None);
    }

    fn check_ipv4(field: &str) -> Option<std::net::Ipv4Addr> {
        let tails = ["", " ", "\t", " 443 22 6", ".5 x y z", "x 1 2 3 4"];
        if !field.is_empty() {
            agree_within(field, &tails, ipv4_in, parse_ipv4_lenient, |_| true);
        }
        agree(field, &tails, fast_ipv4, parse_ipv4_lenient)
    }

    #[test]
    fn ipv4_matches_the_reference() {
        for s in [
            "1.2.3.4",
            "10.0.1.5",
            "255.255.255.255",
            "256.1.1.1",
            "1.256.1.1",
            "1.1.1.256",
            "08.1.250.216",
            "255.090.254.5",
            "000.000.000.000",
            "1.2.3.0004",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "192.0.2e.44",
            "1.2.3.4a",
            "1234.1.1.1",
            "2001:db8::1",
            "::ffff:1.2.3.4",
            "1,2.3.4",
        ] {
            check_ipv4(s);
        }
        // Every octet value in every position.
        for v in 0..=300u32 {
            for pos in 0..4 {
                let mut o = ["10", "0", "1", "5"].map(String::from);
                o[pos] = v.to_string();
                let s = o.join(".");
                let got = check_ipv4(&s);
                if v <= 255 {
                    assert_eq!(got, s.parse().ok(), "{s}");
                }
                o[pos] = format!("{v:03}");
                check_ipv4(&o.join("."));
            }
        }
        assert_eq!(
            fast_ipv4(b"08.1.250.216 x", 0),
            Some(("8.1.250.216".parse().unwrap(), 12))
        );
        assert_eq!(fast_ipv4(b"1.2.3.4 x y", 0), Some(([1, 2, 3, 4].into(), 7)));
        // The last octet at the very end of the line is left to the byte-by-byte path.
        assert_eq!(fast_ipv4(b"1.2.3.4", 0), None);
        assert_eq!(fast_ipv4(b"1.2.3.256 x", 0), None);
    }
}
