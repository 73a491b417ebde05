//! A validating JSON reader over bytes, made for the typed log records of [`super::json`].
//!
//! serde_json reaches the records through serde's visitor layers, checks UTF-8 in a separate
//! pass, compares every key against every field name in turn and walks free-form objects byte by
//! byte. This reader does what the records need and nothing more: it hands out keys and string
//! values borrowed from the input, returns the exact text of a value it skips (kept raw by the
//! records) and finds the end of strings sixteen bytes at a time. It accepts exactly the JSON that
//! serde_json accepts (RFC 8259, nesting up to 128 levels), checking UTF-8 inside strings only
//! (anything else outside strings is a syntax error anyway); an error carries its byte offset.

use std::borrow::Cow;
use std::fmt;

/// Deepest nesting accepted, as serde_json's default recursion limit.
const MAX_DEPTH: u32 = 128;

/// A syntax error at a byte offset of the reader's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// Offset of the offending byte (the input length when the input ended too soon).
    pub offset: usize,
    pub kind: ErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input ended inside a value.
    Eof,
    /// What was expected, or what is wrong, at `offset`.
    Syntax(&'static str),
}

impl Error {
    /// True when the input ended inside a value (more input may complete it).
    pub fn is_eof(&self) -> bool {
        self.kind == ErrorKind::Eof
    }

    /// 1-based line and column of the error in `input` (the reader's input).
    pub fn position(&self, input: &[u8]) -> (u64, u64) {
        let before = &input[..self.offset.min(input.len())];
        let line = 1 + memchr::memchr_iter(b'\n', before).count() as u64;
        let col = match memchr::memrchr(b'\n', before) {
            Some(nl) => before.len() - nl,
            None => before.len() + 1,
        };
        (line, col as u64)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Eof => f.write_str("EOF while parsing a value"),
            ErrorKind::Syntax(what) => f.write_str(what),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Reads JSON values one after another from `input`.
pub struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    depth: u32,
}

/// A position saved by [`Reader::mark`].
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    pos: usize,
    depth: u32,
}

/// What a value starts with, without consuming it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Bool,
    Null,
    Number,
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Reader {
            input,
            pos: 0,
            depth: 0,
        }
    }

    pub fn input(&self) -> &'a [u8] {
        self.input
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> usize {
        self.pos
    }

    fn err<T>(&self, what: &'static str) -> Result<T> {
        Err(self.error_at(self.pos, what))
    }

    fn error_at(&self, offset: usize, what: &'static str) -> Error {
        if offset >= self.input.len() {
            Error {
                offset: self.input.len(),
                kind: ErrorKind::Eof,
            }
        } else {
            Error {
                offset,
                kind: ErrorKind::Syntax(what),
            }
        }
    }

    /// Skips whitespace and returns the next byte (not consumed), if any.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        loop {
            let b = *self.input.get(self.pos)?;
            if matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                self.pos += 1;
            } else {
                return Some(b);
            }
        }
    }

    /// Fails unless only whitespace is left.
    pub fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.err("trailing characters"),
        }
    }

    /// The kind of the next value (after whitespace).
    pub fn kind(&mut self) -> Result<Kind> {
        Ok(match self.peek() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(b'"') => Kind::String,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'n') => Kind::Null,
            Some(b'-' | b'0'..=b'9') => Kind::Number,
            _ => return self.err("expected value"),
        })
    }

    #[inline]
    fn expect(&mut self, b: u8, what: &'static str) -> Result<()> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(what)
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("recursion limit exceeded");
        }
        self.pos += 1;
        Ok(())
    }

    /// Consumes the `{` of an object; then call [`Reader::next_key`] until it returns `None`.
    pub fn begin_object(&mut self) -> Result<()> {
        if self.peek() != Some(b'{') {
            return self.err("expected `{`");
        }
        self.enter()
    }

    /// The next key of the object being read (its value is next), or `None` after its `}`.
    /// `first` tells whether this is the first call for this object.
    #[inline]
    pub fn next_key(&mut self, first: bool) -> Result<Option<Cow<'a, str>>> {
        // Compact JSON (`,"key":`) with a plain key is the common case: no whitespace to skip,
        // one scan, no escapes.
        // (Bytes are compared one by one: comparing slices called `memcmp`, a sixth of DNS time.)
        let (b, p) = (self.input, self.pos);
        let start = if first {
            (b.get(p) == Some(&b'"')).then_some(p + 1)
        } else {
            (b.get(p) == Some(&b',') && b.get(p + 1) == Some(&b'"')).then_some(p + 2)
        };
        if let Some(start) = start {
            let (end, ascii) = scan_string(b, start);
            if ascii && b.get(end) == Some(&b'"') && b.get(end + 1) == Some(&b':') {
                self.pos = end + 2;
                // SAFETY: `scan_string` saw no byte >= 0x80: the bytes are ASCII, hence UTF-8.
                return Ok(Some(Cow::Borrowed(unsafe {
                    std::str::from_utf8_unchecked(&self.input[start..end])
                })));
            }
        }
        self.next_key_slow(first)
    }

    fn next_key_slow(&mut self, first: bool) -> Result<Option<Cow<'a, str>>> {
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                self.depth -= 1;
                return Ok(None);
            }
            Some(b',') if !first => {
                self.pos += 1;
                if self.peek() != Some(b'"') {
                    return self.err("expected a key after `,`");
                }
            }
            Some(b'"') if first => {}
            _ if first => return self.err("expected a key or `}`"),
            _ => return self.err("expected `,` or `}`"),
        }
        let key = self.string()?;
        self.expect(b':', "expected `:`")?;
        Ok(Some(key))
    }

    /// Consumes the `[` of an array; then call [`Reader::next_element`] until it returns false.
    pub fn begin_array(&mut self) -> Result<()> {
        if self.peek() != Some(b'[') {
            return self.err("expected `[`");
        }
        self.enter()
    }

    /// True when another element follows (positioned at it), false after the array's `]`.
    pub fn next_element(&mut self, first: bool) -> Result<bool> {
        match self.peek() {
            Some(b']') => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            Some(b',') if !first => {
                self.pos += 1;
                match self.peek() {
                    Some(b']') => self.err("trailing comma"),
                    _ => Ok(true),
                }
            }
            Some(_) if first => Ok(true),
            _ if first => self.err("expected value or `]`"),
            _ => self.err("expected `,` or `]`"),
        }
    }

    /// Reads a string, borrowed from the input unless it has escapes.
    #[inline(always)]
    pub fn string(&mut self) -> Result<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return self.err("expected a string");
        }
        let start = self.pos + 1;
        let (end, ascii) = scan_string(self.input, start);
        // The common case (ASCII, no escape) stays inline; the rest is out of line.
        if ascii && self.input.get(end) == Some(&b'"') {
            self.pos = end + 1;
            // SAFETY: `scan_string` saw no byte >= 0x80: the bytes are ASCII, hence UTF-8.
            return Ok(Cow::Borrowed(unsafe {
                std::str::from_utf8_unchecked(&self.input[start..end])
            }));
        }
        self.string_rest(start, end, ascii)
    }

    /// [`Reader::string`] for a string that is not plain ASCII or has an escape at `end`.
    #[inline(never)]
    fn string_rest(&mut self, start: usize, end: usize, ascii: bool) -> Result<Cow<'a, str>> {
        match self.input.get(end) {
            Some(b'"') => {
                self.pos = end + 1;
                Ok(Cow::Borrowed(self.text(start, end, ascii)?))
            }
            Some(b'\\') => {
                let mut out = String::with_capacity(end - start + 16);
                out.push_str(self.text(start, end, ascii)?);
                self.pos = end;
                self.unescape_rest(&mut out)?;
                Ok(Cow::Owned(out))
            }
            Some(_) => Err(self.error_at(end, "control character in string")),
            None => Err(self.error_at(end, "")),
        }
    }

    /// `input[start..end]`, checked for UTF-8 only when the scan saw a non-ASCII byte.
    #[inline]
    fn text(&self, start: usize, end: usize, ascii: bool) -> Result<&'a str> {
        let bytes = &self.input[start..end];
        if ascii {
            // SAFETY: `scan_string` saw no byte >= 0x80 in `bytes`: it is ASCII, hence UTF-8.
            Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
        } else {
            std::str::from_utf8(bytes)
                .map_err(|e| self.error_at(start + e.valid_up_to(), "invalid UTF-8 in string"))
        }
    }

    /// Decodes the rest of a string from an escape at `pos` up to its closing quote.
    #[cold]
    fn unescape_rest(&mut self, out: &mut String) -> Result<()> {
        loop {
            // At a backslash.
            let esc = self.pos;
            let Some(&c) = self.input.get(esc + 1) else {
                return Err(self.error_at(self.input.len(), ""));
            };
            self.pos = esc + 2;
            match c {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let c = self.unicode_escape()?;
                    out.push(c);
                }
                _ => return Err(self.error_at(esc + 1, "invalid escape")),
            }
            let start = self.pos;
            let (end, ascii) = scan_string(self.input, start);
            out.push_str(self.text(start, end, ascii)?);
            self.pos = end;
            match self.input.get(end) {
                Some(b'"') => {
                    self.pos = end + 1;
                    return Ok(());
                }
                Some(b'\\') => {}
                Some(_) => return Err(self.error_at(end, "control character in string")),
                None => return Err(self.error_at(end, "")),
            }
        }
    }

    /// Four hex digits at `pos` (after `\u`).
    fn hex4(&mut self) -> Result<u16> {
        let Some(digits) = self.input.get(self.pos..self.pos + 4) else {
            return Err(self.error_at(self.input.len(), ""));
        };
        let mut v = 0u16;
        for (i, &d) in digits.iter().enumerate() {
            let n = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.error_at(self.pos + i, "invalid escape")),
            };
            v = v << 4 | u16::from(n);
        }
        self.pos += 4;
        Ok(v)
    }

    /// The character of a `\uXXXX` escape (a surrogate pair takes two), `pos` after `\u`.
    fn unicode_escape(&mut self) -> Result<char> {
        let at = self.pos;
        let hi = self.hex4()?;
        let code = match hi {
            0xD800..=0xDBFF => {
                if self.input.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(self.error_at(self.pos, "lone leading surrogate in hex escape"));
                }
                self.pos += 2;
                let lo = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return Err(self.error_at(self.pos - 4, "lone leading surrogate in hex escape"));
                }
                0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00)
            }
            0xDC00..=0xDFFF => {
                return Err(self.error_at(at, "lone trailing surrogate in hex escape"));
            }
            _ => u32::from(hi),
        };
        char::from_u32(code).ok_or_else(|| self.error_at(at, "invalid escape"))
    }

    /// Skips a string without decoding it (escapes are still checked).
    #[inline(always)]
    fn skip_string(&mut self) -> Result<()> {
        let start = self.pos + 1;
        let (end, ascii) = scan_string(self.input, start);
        if ascii && self.input.get(end) == Some(&b'"') {
            self.pos = end + 1;
            return Ok(());
        }
        self.skip_string_rest(start)
    }

    #[inline(never)]
    fn skip_string_rest(&mut self, mut start: usize) -> Result<()> {
        loop {
            let (end, ascii) = scan_string(self.input, start);
            self.text(start, end, ascii)?;
            match self.input.get(end) {
                Some(b'"') => {
                    self.pos = end + 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos = end + 2;
                    match self.input.get(end + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                        Some(b'u') => {
                            self.hex4()?;
                        }
                        Some(_) => return Err(self.error_at(end + 1, "invalid escape")),
                        None => return Err(self.error_at(end + 1, "")),
                    }
                    start = self.pos;
                }
                Some(_) => return Err(self.error_at(end, "control character in string")),
                None => return Err(self.error_at(end, "")),
            }
        }
    }

    /// Reads `true` or `false`.
    pub fn boolean(&mut self) -> Result<bool> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|_| true),
            Some(b'f') => self.literal(b"false").map(|_| false),
            _ => self.err("expected a boolean"),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        let have = &self.input[self.pos..self.input.len().min(self.pos + word.len())];
        match have.iter().zip(word).position(|(a, b)| a != b) {
            Some(i) => Err(self.error_at(self.pos + i, "expected ident")),
            None if have.len() < word.len() => Err(self.error_at(self.input.len(), "")),
            None => {
                self.pos += word.len();
                Ok(())
            }
        }
    }

    /// Skips a number, checking its grammar (`-? int frac? exp?`).
    fn number(&mut self) -> Result<()> {
        let b = self.input;
        let mut i = self.pos;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                i += 1;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => return Err(self.error_at(i, "invalid number")),
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !b.get(i).is_some_and(u8::is_ascii_digit) {
                return Err(self.error_at(i, "invalid number"));
            }
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !b.get(i).is_some_and(u8::is_ascii_digit) {
                return Err(self.error_at(i, "invalid number"));
            }
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        self.pos = i;
        Ok(())
    }

    /// Skips one scalar value (string, number, literal).
    fn skip_scalar(&mut self, first: u8) -> Result<()> {
        match first {
            b'"' => self.skip_string(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => self.err("expected value"),
        }
    }

    /// The position of the next value, to read it again with [`Reader::raw_from`].
    pub fn mark(&mut self) -> Mark {
        self.peek();
        Mark {
            pos: self.pos,
            depth: self.depth,
        }
    }

    /// Goes back to `mark` and skips the value there, returning its exact text: for a value
    /// that was read in place but turned out not to fit its type.
    #[cold]
    pub fn raw_from(&mut self, mark: Mark) -> Result<&'a str> {
        self.pos = mark.pos;
        self.depth = mark.depth;
        self.raw()
    }

    /// Skips one value of any kind, checking it fully, and returns its exact text.
    pub fn raw(&mut self) -> Result<&'a str> {
        let Some(first) = self.peek() else {
            return self.err("");
        };
        let start = self.pos;
        match first {
            b'{' | b'[' => self.skip_container()?,
            _ => self.skip_scalar(first)?,
        }
        let bytes = &self.input[start..self.pos];
        // SAFETY: outside strings the grammar admits ASCII only, and every string in `bytes`
        // was checked to be UTF-8 by `skip_string`.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    }

    /// Skips an object or array without recursion: one bit per open level says which it is.
    fn skip_container(&mut self) -> Result<()> {
        let base = self.depth;
        let mut is_object: u128 = 0;
        loop {
            // At the start of a value.
            let Some(b) = self.peek() else {
                return self.err("");
            };
            match b {
                b'{' | b'[' => {
                    let level = self.depth - base;
                    self.enter()?;
                    let obj = b == b'{';
                    is_object = (is_object & !(1 << level)) | (u128::from(obj) << level);
                    let close = if obj { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        self.depth -= 1;
                    } else {
                        if obj {
                            self.object_key()?;
                        }
                        continue;
                    }
                }
                _ => self.skip_scalar(b)?,
            }
            // After a value: close levels or move to the next value.
            loop {
                if self.depth == base {
                    return Ok(());
                }
                let level = self.depth - base - 1;
                let obj = is_object >> level & 1 == 1;
                match (self.peek(), obj) {
                    (Some(b','), true) => {
                        self.pos += 1;
                        if self.peek() != Some(b'"') {
                            return self.err("expected a key after `,`");
                        }
                        self.object_key()?;
                        break;
                    }
                    (Some(b','), false) => {
                        self.pos += 1;
                        if self.peek() == Some(b']') {
                            return self.err("trailing comma");
                        }
                        break;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        self.pos += 1;
                        self.depth -= 1;
                    }
                    (_, true) => return self.err("expected `,` or `}`"),
                    (_, false) => return self.err("expected `,` or `]`"),
                }
            }
        }
    }

    /// A key and its colon inside a skipped object.
    fn object_key(&mut self) -> Result<()> {
        if self.peek() != Some(b'"') {
            return self.err("expected a key");
        }
        self.skip_string()?;
        self.expect(b':', "expected `:`")
    }
}

/// Index of the first byte at or after `i` that ends the plain run of a JSON string (`"`, `\`
/// or a control character), or `s.len()`; and whether all bytes before it were ASCII.
#[inline(always)]
pub fn scan_string(s: &[u8], i: usize) -> (usize, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        // Log text is nearly all ASCII: the first scan also stops at non-ASCII bytes, which
        // saves work per block; a string that has one is finished by the second scan.
        let j = scan_ascii_sse2(s, i);
        match s.get(j) {
            Some(&b) if b >= 0x80 => (scan_sse2(s, j + 1).0, false),
            _ => (j, true),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        scan_scalar(s, i, true)
    }
}

/// Byte by byte; also finishes the last bytes for the vector scan.
#[inline]
pub fn scan_scalar(s: &[u8], mut i: usize, mut ascii: bool) -> (usize, bool) {
    while let Some(&b) = s.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        ascii &= b < 0x80;
        i += 1;
    }
    (i, ascii)
}

/// Index of the first byte at or after `i` that is `"`, `\`, below 0x20 or above 0x7f (or
/// `s.len()`). SSE2, sixteen bytes per step.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn scan_ascii_sse2(s: &[u8], mut i: usize) -> usize {
    use std::arch::x86_64::*;
    while i + 16 <= s.len() {
        // SAFETY: SSE2 is part of the x86_64 baseline; the load reads s[i..i + 16], in bounds
        // (checked above), without alignment requirement.
        let stop = unsafe {
            let v = _mm_loadu_si128(s.as_ptr().add(i).cast());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let bslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // Signed compare: below 0x20, or 0x80 and above (negative).
            let other = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, bslash), other)) as u32
        };
        if stop != 0 {
            return i + stop.trailing_zeros() as usize;
        }
        i += 16;
    }
    while let Some(&b) = s.get(i) {
        if b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b) {
            break;
        }
        i += 1;
    }
    i
}

/// Sixteen bytes per step with SSE2, which every x86_64 CPU has (no runtime detection needed).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn scan_sse2(s: &[u8], mut i: usize) -> (usize, bool) {
    use std::arch::x86_64::*;
    let mut high = 0u32;
    while i + 16 <= s.len() {
        // SAFETY: SSE2 is part of the x86_64 baseline; the load reads s[i..i + 16], in bounds
        // (checked above), without alignment requirement.
        let (stop, hi) = unsafe {
            let v = _mm_loadu_si128(s.as_ptr().add(i).cast());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let bslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // Signed compare: bytes >= 0x80 are negative, so exclude them from "below 0x20".
            let below = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
            let nonneg = _mm_cmpgt_epi8(v, _mm_set1_epi8(-1));
            let ctrl = _mm_and_si128(below, nonneg);
            let stop = _mm_or_si128(_mm_or_si128(quote, bslash), ctrl);
            (_mm_movemask_epi8(stop) as u32, _mm_movemask_epi8(v) as u32)
        };
        if stop != 0 {
            let k = stop.trailing_zeros();
            high |= hi & ((1 << k) - 1);
            return (i + k as usize, high == 0);
        }
        high |= hi;
        i += 16;
    }
    scan_scalar(s, i, high == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of `text` read with `raw`, or the error.
    fn raw_all(text: &str) -> Result<Vec<String>> {
        let mut r = Reader::new(text.as_bytes());
        let mut out = Vec::new();
        while r.peek().is_some() {
            out.push(r.raw()?.to_string());
        }
        Ok(out)
    }

    #[test]
    fn scan_vector_and_scalar_agree_on_every_position() {
        // A string with each kind of stop byte at each position of a 16-byte block, plus
        // non-ASCII before and after the stop.
        let mut seeded = crate::test_rng::XorShift(0x1234_5678);
        for _ in 0..20_000 {
            let rng = seeded.next();
            let len = (rng % 70) as usize;
            let mut s: Vec<u8> = (0..len)
                .map(|k| b'a' + ((rng >> (k % 50)) % 26) as u8)
                .collect();
            if len > 0 {
                let at = (rng >> 20) as usize % len;
                s[at] = [b'"', b'\\', 0x01, 0x1f, 0x7f, 0x80, 0xc3, 0xff, b' ']
                    [(rng >> 40) as usize % 9];
            }
            if len > 3 && rng >> 63 == 1 {
                let at = (rng >> 30) as usize % len;
                s[at] = 0xe2;
            }
            for start in 0..=len.min(17) {
                assert_eq!(
                    scan_string(&s, start),
                    scan_scalar(&s, start, true),
                    "{s:?} from {start}"
                );
            }
        }
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let mut r = Reader::new(
            r#""plain" "a\"b\\c\/d\n\u00e9\ud83d\ude00" "caf\u00e9 ok" "é""#.as_bytes(),
        );
        assert!(matches!(r.string().unwrap(), Cow::Borrowed("plain")));
        assert_eq!(r.string().unwrap(), "a\"b\\c/d\né😀");
        assert_eq!(r.string().unwrap(), "café ok");
        assert!(matches!(r.string().unwrap(), Cow::Borrowed("é")));
        r.end().unwrap();
        // Decoding (unlike skipping, as in serde_json) rejects unpaired surrogates.
        for bad in [r#""\ud800""#, r#""\udc00x""#, r#""\ud800\u0041""#] {
            assert!(Reader::new(bad.as_bytes()).string().is_err(), "{bad}");
            assert!(serde_json::from_str::<String>(bad).is_err(), "{bad}");
            assert!(Reader::new(bad.as_bytes()).raw().is_ok(), "{bad}");
        }
    }

    #[test]
    fn long_strings_cross_vector_blocks() {
        let body = "x".repeat(100) + "\\\"" + &"y".repeat(40) + "é" + &"z".repeat(33);
        let text = format!("\"{body}\"");
        let mut r = Reader::new(text.as_bytes());
        let expected = "x".repeat(100) + "\"" + &"y".repeat(40) + "é" + &"z".repeat(33);
        assert_eq!(r.string().unwrap(), expected);
        assert_eq!(r.offset(), text.len());
    }

    #[test]
    fn raw_returns_exact_text_of_nested_values() {
        let text = r#" {"a" : [1, -2.5e+3, {"b":null}, [], {}, "x\"y"], "c":{"d":[true,false]}} [ ] "s" 0 -0.0"#;
        assert_eq!(
            raw_all(text).unwrap(),
            [
                r#"{"a" : [1, -2.5e+3, {"b":null}, [], {}, "x\"y"], "c":{"d":[true,false]}}"#,
                "[ ]",
                "\"s\"",
                "0",
                "-0.0"
            ]
        );
    }

    #[test]
    fn accepts_what_serde_json_accepts_and_rejects_the_rest() {
        let cases = [
            "{}",
            "[]",
            r#"{"a":1}"#,
            r#"{"a":1,}"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a" 1}"#,
            r#"{,"a":1}"#,
            r#"{1:1}"#,
            "[1,]",
            "[,1]",
            "[1 2]",
            "[01]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[1e+]",
            "[-]",
            "[--1]",
            "[1.5E-7]",
            "[tru]",
            "[truex]",
            "[nul]",
            "[True]",
            r#"["\x"]"#,
            r#"["\u12G4"]"#,
            r#"["\ud800"]"#,
            r#"["\udc00"]"#,
            r#"["\ud800\u0041"]"#,
            "[\"tab\there\"]",
            "[\"del\u{7f}ok\"]",
            "{\"a\":[{\"b\":[{}]}]}",
            "[\"unterminated",
            "{\"a\":",
            "{\"a\"",
            "[1",
            "   ",
            "]",
            "}",
            "{\"a\":1}}",
            r#"{"a":{"b":{"c":[1,{"d":"e"}]}},"f":[[],[[]]]}"#,
        ];
        for text in cases {
            let ours = raw_all(text).map(|v| v.len());
            // serde_json skipping a value it keeps raw: the same job as `raw`.
            let theirs: std::result::Result<Vec<&serde_json::value::RawValue>, _> =
                serde_json::Deserializer::from_str(text)
                    .into_iter::<&serde_json::value::RawValue>()
                    .collect();
            assert_eq!(
                ours.is_ok(),
                theirs.is_ok(),
                "{text}: ours {ours:?}, serde_json {theirs:?}"
            );
            if let (Err(a), Err(b)) = (&ours, &theirs) {
                assert_eq!(a.is_eof(), b.is_eof(), "{text}: {a:?} vs {b}");
            }
        }
    }

    #[test]
    fn invalid_utf8_in_strings_is_an_error_at_its_byte() {
        let text = b"[\"ok\", \"bad \xff here\"]";
        let mut r = Reader::new(text);
        let e = r.raw().unwrap_err();
        assert_eq!(e.offset, 12);
        assert_eq!(e.kind, ErrorKind::Syntax("invalid UTF-8 in string"));
        let mut r = Reader::new(b"\"\xc3\xa9\xc3\"");
        assert_eq!(r.string().unwrap_err().offset, 3);
    }

    #[test]
    fn nesting_is_limited_like_serde_json() {
        let ok = "[".repeat(128) + &"]".repeat(128);
        assert!(raw_all(&ok).is_ok());
        let deep = "[".repeat(129) + &"]".repeat(129);
        let e = raw_all(&deep).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Syntax("recursion limit exceeded"));
        assert!(serde_json::from_str::<serde_json::Value>(&deep).is_err());
    }

    #[test]
    fn error_positions_are_line_and_column() {
        let text = b"{\"a\":1,\n \"b\" 2}";
        let mut r = Reader::new(text);
        let e = r.raw().unwrap_err();
        assert_eq!(e.position(text), (2, 6));
        assert_eq!(e.kind, ErrorKind::Syntax("expected `:`"));
    }

    #[test]
    fn keys_compact_spaced_escaped_and_non_ascii() {
        let text = r#"{"a":1,"b\u0041":2, "c" :3,"é":4,"ü\n":5 ,"d":6}"#;
        let mut r = Reader::new(text.as_bytes());
        r.begin_object().unwrap();
        let mut keys = Vec::new();
        let mut first = true;
        while let Some(k) = r.next_key(first).unwrap() {
            first = false;
            keys.push(k.into_owned());
            r.raw().unwrap();
        }
        assert_eq!(keys, ["a", "bA", "c", "é", "ü\n", "d"]);
        r.end().unwrap();
        for (bad, at) in [(r#"{"a" 1}"#, 5), (r#"{"a":1,2:3}"#, 7), (r#"{"a":1,}"#, 7)] {
            let mut r = Reader::new(bad.as_bytes());
            r.begin_object().unwrap();
            let e = r
                .next_key(true)
                .and_then(|_| r.raw())
                .and_then(|_| r.next_key(false))
                .unwrap_err();
            assert_eq!(e.offset, at, "{bad}: {e:?}");
        }
    }

    #[test]
    fn objects_and_arrays_step_by_step() {
        let mut r = Reader::new(br#"{"k":"v","n":[1,"x"],"e":{}}"#);
        r.begin_object().unwrap();
        assert_eq!(r.next_key(true).unwrap().as_deref(), Some("k"));
        assert_eq!(r.string().unwrap(), "v");
        assert_eq!(r.next_key(false).unwrap().as_deref(), Some("n"));
        r.begin_array().unwrap();
        assert!(r.next_element(true).unwrap());
        assert_eq!(r.kind().unwrap(), Kind::Number);
        assert_eq!(r.raw().unwrap(), "1");
        assert!(r.next_element(false).unwrap());
        assert_eq!(r.string().unwrap(), "x");
        assert!(!r.next_element(false).unwrap());
        assert_eq!(r.next_key(false).unwrap().as_deref(), Some("e"));
        assert_eq!(r.raw().unwrap(), "{}");
        assert_eq!(r.next_key(false).unwrap(), None);
        r.end().unwrap();
    }
}
