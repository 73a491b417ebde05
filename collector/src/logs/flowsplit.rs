//! Field boundaries of a whole flow-log line from one pass over its bytes.
//!
//! Sixteen bytes at a time are classified as separator or not (SSE2 on x86_64, where it is part
//! of the baseline, so no runtime detection; a portable loop elsewhere), the bits are gathered
//! into 64-bit words, and the transitions between separator runs and fields give every field's
//! start and end. Reading field after field instead made each field's scan wait for the end of
//! the previous one; with all boundaries known up front, the conversions of a line's fields do
//! not depend on each other and the CPU overlaps them.
//!
//! This only finds boundaries. Whether a field's value is valid is decided by the caller, and a
//! line this module refuses (too long, too many fields) goes to the field-by-field path.

use super::flowscan::is_sep;

/// Longest line split here (bytes); longer lines take the field-by-field path.
pub(crate) const MAX_LEN: usize = 511;
/// Most fields split here; lines with more take the field-by-field path.
pub(crate) const MAX_FIELDS: usize = 64;
/// Bounds are written eight at a time, up to seven past the last real one.
const BOUNDS: usize = 2 * MAX_FIELDS + 8;

/// Where the fields of the last line given to [`Split::split`] start and end. Reused from line
/// to line, so nothing is cleared or allocated per line.
pub(crate) struct Split {
    /// Field `k` is `bounds[2k]..bounds[2k + 1]`.
    bounds: [u16; BOUNDS],
}

impl Default for Split {
    fn default() -> Self {
        Split {
            bounds: [0; BOUNDS],
        }
    }
}

impl Split {
    /// Splits `line` at runs of separators ([`is_sep`]). Returns the number of fields, or `None`
    /// when the line is longer than [`MAX_LEN`] or has more than [`MAX_FIELDS`] fields.
    #[inline(always)]
    pub(crate) fn split(&mut self, line: &[u8]) -> Option<usize> {
        let len = line.len();
        if len > MAX_LEN {
            return None;
        }
        // A transition is a byte whose class differs from the byte before it; before the line
        // there is a virtual separator, and from `len` on separators (so the last field ends).
        // Transitions alternate: field start, field end, start, ...
        let mut before = 1u64;
        let mut k = 0;
        for base in (0..=len).step_by(64) {
            if !self.add_word(separator_word(line, base), base, &mut before, &mut k) {
                return None;
            }
        }
        Some(k / 2)
    }

    /// Finds the end of the line starting at `text[start]` (the next `\n`, or the end of
    /// `text`) in the same pass that splits it: returns the line's length (up to the `\n`) and
    /// its number of fields, with bounds relative to `start`. `None` when the line is longer than
    /// [`MAX_LEN`] or has more than [`MAX_FIELDS`] fields; the caller then finds its end itself.
    #[inline(always)]
    pub(crate) fn split_line(&mut self, text: &[u8], start: usize) -> Option<(usize, usize)> {
        let mut before = 1u64;
        let mut k = 0;
        let mut base = 0;
        loop {
            let (mut seps, newlines) = classify64(text, start + base);
            let end = if newlines != 0 {
                // Everything from the newline on is past the line: separators.
                let at = newlines.trailing_zeros();
                seps |= !0u64 << at;
                Some(base + at as usize)
            } else {
                None
            };
            if !self.add_word(seps, base, &mut before, &mut k) {
                return None;
            }
            if let Some(end) = end {
                return (end <= MAX_LEN).then_some((end, k / 2));
            }
            base += 64;
            if base > MAX_LEN {
                return None;
            }
        }
    }

    /// Adds the field bounds of the 64 bytes at `base` (their separator bits `seps`) after the
    /// `k` found so far; `before` is the class of the byte before them. False when there are
    /// more than [`MAX_FIELDS`] fields.
    #[inline(always)]
    fn add_word(&mut self, seps: u64, base: usize, before: &mut u64, k: &mut usize) -> bool {
        let t = seps ^ ((seps << 1) | *before);
        *before = seps >> 63;
        let n = t.count_ones() as usize;
        if *k + n > 2 * MAX_FIELDS {
            return false;
        }
        // The word's set bits to positions, eight per step rather than a branch per bit
        // (positions past the last bit are junk, overwritten next or never read).
        let mut m = t;
        let mut j = 0;
        loop {
            let out: &mut [u16; 8] = (&mut self.bounds[*k + j..*k + j + 8])
                .try_into()
                .expect("8 bounds");
            for o in out {
                *o = base as u16 + m.trailing_zeros() as u16;
                m &= m.wrapping_sub(1);
            }
            j += 8;
            if j >= n {
                break;
            }
        }
        *k += n;
        true
    }

    /// Start and end (exclusive) of field `k` of the last line split; `k` below its count.
    #[inline(always)]
    pub(crate) fn field(&self, k: usize) -> (usize, usize) {
        (
            usize::from(self.bounds[2 * k]),
            usize::from(self.bounds[2 * k + 1]),
        )
    }
}

/// One bit per byte of `line[base..base + 64]`, set for a separator; bits from `line.len()` on
/// are set too. Kept in a register: building the word in memory stalled on the stores.
#[inline(always)]
fn separator_word(line: &[u8], base: usize) -> u64 {
    let len = line.len();
    let mut word = 0;
    for q in 0..4 {
        let at = base + 16 * q;
        let bits = if let Some(chunk) = line.get(at..at + 16) {
            sep16(chunk.try_into().expect("16 bytes"))
        } else if at < len {
            partial16(line, at)
        } else {
            0xffff
        };
        word |= u64::from(bits) << (16 * q);
    }
    word
}

/// Separator bits and newline bits of `text[at..at + 64]`; the end of `text` (`at <= len`)
/// counts as a newline, and the bytes after it as separators.
#[inline(always)]
fn classify64(text: &[u8], at: usize) -> (u64, u64) {
    let classify = |chunk: &[u8; 64]| {
        let (mut seps, mut newlines) = (0, 0);
        for q in 0..4 {
            let (s, n) = seps_newlines16(chunk[16 * q..16 * q + 16].try_into().expect("16"));
            seps |= u64::from(s) << (16 * q);
            newlines |= u64::from(n) << (16 * q);
        }
        (seps, newlines)
    };
    match text.get(at..at + 64) {
        Some(chunk) => classify(chunk.try_into().expect("64 bytes")),
        None => classify64_tail(text, at, classify),
    }
}

/// [`classify64`] near the end of `text`: the bytes copied after a run of newlines. Once per
/// block, so out of line.
#[inline(never)]
fn classify64_tail(
    text: &[u8],
    at: usize,
    classify: impl Fn(&[u8; 64]) -> (u64, u64),
) -> (u64, u64) {
    let mut pad = [b'\n'; 64];
    let rest = &text[at..];
    pad[..rest.len()].copy_from_slice(rest);
    classify(&pad)
}

/// As [`sep16`] for the fewer than 16 bytes `line[at..]`; the bits past the line are set.
#[inline(always)]
fn partial16(line: &[u8], at: usize) -> u16 {
    let r = line.len() - at;
    let bits = if line.len() >= 16 {
        // The last sixteen bytes, overlapping the previous chunk: keep the top `r` bits.
        sep16(line[line.len() - 16..].try_into().expect("16 bytes")) >> (16 - r)
    } else {
        let mut pad = [b' '; 16];
        pad[..r].copy_from_slice(&line[at..]);
        sep16(&pad)
    };
    bits | (0xffff << r)
}

/// Bit `i` set when byte `i` is a separator (`<= b' '`, as [`is_sep`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn sep16(chunk: &[u8; 16]) -> u16 {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of the x86_64 baseline; the unaligned load reads the 16 bytes the
    // reference points to.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        // Unsigned `v <= 0x20`: the minimum of `v` and 0x20 is `v` itself.
        let le = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(b' ' as i8)), v);
        _mm_movemask_epi8(le) as u16
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn sep16(chunk: &[u8; 16]) -> u16 {
    sep16_portable(chunk)
}

/// Bit `i` of the first mask set when byte `i` is a separator (as [`sep16`]), of the second
/// when it is `\n`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn seps_newlines16(chunk: &[u8; 16]) -> (u16, u16) {
    use std::arch::x86_64::*;
    // SAFETY: as in `sep16`.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let le = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(b' ' as i8)), v);
        let nl = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8));
        (_mm_movemask_epi8(le) as u16, _mm_movemask_epi8(nl) as u16)
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn seps_newlines16(chunk: &[u8; 16]) -> (u16, u16) {
    seps_newlines16_portable(chunk)
}

/// [`seps_newlines16`] byte by byte.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn seps_newlines16_portable(chunk: &[u8; 16]) -> (u16, u16) {
    (
        sep16_portable(chunk),
        chunk
            .iter()
            .enumerate()
            .fold(0, |m, (i, &c)| m | (u16::from(c == b'\n') << i)),
    )
}

/// Bit `i` of the first mask set when byte `i` is an ASCII digit, of the second when it is `.`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn digits_dots16(chunk: &[u8; 16]) -> (u16, u16) {
    use std::arch::x86_64::*;
    // SAFETY: as in `sep16`.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        // A digit is `v - b'0'` at most 9 (unsigned, wrapping): equal to its minimum with 9.
        let d = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
        let digit = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
        let dot = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'.' as i8));
        (
            _mm_movemask_epi8(digit) as u16,
            _mm_movemask_epi8(dot) as u16,
        )
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn digits_dots16(chunk: &[u8; 16]) -> (u16, u16) {
    digits_dots16_portable(chunk)
}

/// [`digits_dots16`] byte by byte.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn digits_dots16_portable(chunk: &[u8; 16]) -> (u16, u16) {
    chunk.iter().enumerate().fold((0, 0), |(d, p), (i, &c)| {
        (
            d | (u16::from(c.is_ascii_digit()) << i),
            p | (u16::from(c == b'.') << i),
        )
    })
}

/// [`sep16`] byte by byte: the version for other architectures, and the reference in tests.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn sep16_portable(chunk: &[u8; 16]) -> u16 {
    chunk
        .iter()
        .enumerate()
        .fold(0, |m, (i, &c)| m | (u16::from(is_sep(c)) << i))
}

/// A small deterministic generator (xorshift) for the generated-line tests, so failures
/// reproduce.
#[cfg(test)]
pub(crate) struct Rng(pub(crate) u64);

#[cfg(test)]
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(crate) fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: fields as `(start, end)` found byte by byte.
    fn fields_slow(line: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < line.len() {
            if is_sep(line[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < line.len() && !is_sep(line[i]) {
                i += 1;
            }
            out.push((start, i));
        }
        out
    }

    fn fields_fast(split: &mut Split, line: &[u8]) -> Option<Vec<(usize, usize)>> {
        let n = split.split(line)?;
        Some((0..n).map(|k| split.field(k)).collect())
    }

    #[test]
    fn sse2_and_portable_classifications_agree() {
        for c in 0..=255u8 {
            for pos in 0..16 {
                for fill in [b'a', b' ', b'\t', 0x00, 0x21, 0x80, 0xff] {
                    let mut chunk = [fill; 16];
                    chunk[pos] = c;
                    assert_eq!(sep16(&chunk), sep16_portable(&chunk), "{c:#x} at {pos}");
                    let (seps, newlines) = seps_newlines16(&chunk);
                    assert_eq!((seps, newlines), seps_newlines16_portable(&chunk), "{c:#x}");
                    assert_eq!(seps, sep16(&chunk));
                    assert_eq!(newlines >> pos & 1 == 1, c == b'\n', "{c:#x}");
                    assert_eq!(sep16(&chunk) >> pos & 1 == 1, is_sep(c), "{c:#x}");
                    let (digits, dots) = digits_dots16(&chunk);
                    assert_eq!((digits, dots), digits_dots16_portable(&chunk), "{c:#x}");
                    assert_eq!(digits >> pos & 1 == 1, c.is_ascii_digit(), "{c:#x}");
                    assert_eq!(dots >> pos & 1 == 1, c == b'.', "{c:#x}");
                }
            }
        }
    }

    #[test]
    fn boundaries_match_byte_by_byte_on_generated_lines() {
        let mut rng = Rng(0x5eed_f10e);
        let mut split = Split::default();
        // Separators of every kind, junk bytes (control, high, non-ASCII), digits and letters.
        let seps: &[u8] = &[b' ', b'\t', b'\r', 0x0b, 0x00, 0x1f, 0x20];
        let junk: &[u8] = &[
            b'-', b'.', b':', b'a', b'Z', b'0', b'9', 0x21, 0x7f, 0x80, 0xc3, 0xff,
        ];
        for round in 0..20_000 {
            let mut line = Vec::new();
            // Lengths around every 16- and 64-byte block edge and up to past MAX_LEN.
            let target = match round % 4 {
                0 => rng.below(40) as usize,
                1 => 100 + rng.below(60) as usize,
                2 => rng.below(MAX_LEN as u64 + 40) as usize,
                _ => 16 * (1 + rng.below(32) as usize) + rng.below(3) as usize - 1,
            };
            while line.len() < target {
                if round % 5 == 4 {
                    // Single spaces only, as in nearly every real line.
                    if line.last().is_some_and(|&c| c != b' ') && rng.below(4) == 0 {
                        line.push(b' ');
                    } else {
                        line.push(junk[rng.below(junk.len() as u64) as usize]);
                    }
                } else if rng.below(3) == 0 {
                    let run = if rng.below(8) == 0 { 20 } else { 2 };
                    for _ in 0..1 + rng.below(run) {
                        line.push(seps[rng.below(seps.len() as u64) as usize]);
                    }
                } else {
                    let run = if rng.below(8) == 0 { 70 } else { 14 };
                    for _ in 0..1 + rng.below(run) {
                        line.push(junk[rng.below(junk.len() as u64) as usize]);
                    }
                }
            }
            line.truncate(target);
            let slow = fields_slow(&line);
            match fields_fast(&mut split, &line) {
                Some(fast) => assert_eq!(fast, slow, "{line:?}"),
                None => assert!(
                    line.len() > MAX_LEN || slow.len() > MAX_FIELDS,
                    "refused {line:?}"
                ),
            }
        }
    }

    /// `split_line` on every line of generated blocks (lines of any length, blank lines,
    /// `\r\n`, a block ending with or without a newline) agrees with the byte-by-byte split.
    #[test]
    fn line_ends_and_boundaries_match_byte_by_byte_in_generated_blocks() {
        let mut rng = Rng(0xb10c_5eed);
        let mut split = Split::default();
        let bytes: &[u8] = &[
            b' ', b' ', b'\t', b'\r', 0x0b, b'\n', b'1', b'a', b'.', b'-', 0x80, 0xff, b'Z',
        ];
        let (mut fast, mut total) = (0, 0);
        for round in 0..3_000 {
            let mut text = Vec::new();
            let target = rng.below(if round % 3 == 0 { 200 } else { 1_500 }) as usize;
            while text.len() < target {
                // Mostly field bytes, newlines often enough for lines of every length.
                let c = match rng.below(40) {
                    0 => b'\n',
                    1..=5 => b' ',
                    6 if round % 2 == 0 => bytes[rng.below(bytes.len() as u64) as usize],
                    _ => b'0' + rng.below(10) as u8,
                };
                text.push(c);
            }
            let mut start = 0;
            loop {
                let end = text[start..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(text.len(), |i| start + i);
                let line = &text[start..end];
                let slow = fields_slow(line);
                total += 1;
                match split.split_line(&text, start) {
                    Some((len, n)) => {
                        fast += 1;
                        assert_eq!(start + len, end, "{text:?} at {start}");
                        let got: Vec<_> = (0..n).map(|k| split.field(k)).collect();
                        assert_eq!(got, slow, "{line:?}");
                    }
                    None => assert!(
                        line.len() > MAX_LEN || slow.len() > MAX_FIELDS,
                        "refused {line:?}"
                    ),
                }
                if end == text.len() {
                    break;
                }
                start = end + 1;
            }
        }
        assert!(
            fast > total / 2,
            "{fast} of {total} lines split in one pass"
        );
    }

    #[test]
    fn edges() {
        let mut split = Split::default();
        assert_eq!(fields_fast(&mut split, b""), Some(vec![]));
        assert_eq!(fields_fast(&mut split, b"   \t"), Some(vec![]));
        assert_eq!(fields_fast(&mut split, b"a"), Some(vec![(0, 1)]));
        assert_eq!(
            fields_fast(&mut split, b"  ab\tc  "),
            Some(vec![(2, 4), (5, 6)])
        );
        // A field ending exactly at a 64-byte word edge, and one crossing it.
        let mut line = vec![b'x'; 64];
        assert_eq!(fields_fast(&mut split, &line), Some(vec![(0, 64)]));
        line[63] = b' ';
        line.extend_from_slice(b"yy");
        assert_eq!(
            fields_fast(&mut split, &line),
            Some(vec![(0, 63), (64, 66)])
        );
        line[63] = b'x';
        assert_eq!(fields_fast(&mut split, &line), Some(vec![(0, 66)]));
        // The longest line split, and one byte more.
        let line = vec![b'7'; MAX_LEN];
        assert_eq!(fields_fast(&mut split, &line), Some(vec![(0, MAX_LEN)]));
        assert_eq!(split.split(&vec![b'7'; MAX_LEN + 1]), None);
        // As many fields as allowed, and one more.
        let line = "1 ".repeat(MAX_FIELDS);
        assert_eq!(split.split(line.as_bytes()), Some(MAX_FIELDS));
        let line = "1 ".repeat(MAX_FIELDS + 1);
        assert_eq!(split.split(line.as_bytes()), None);
    }
}
