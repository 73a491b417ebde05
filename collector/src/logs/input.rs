//! Byte input for the parsers: transparent gzip, a growable buffer with hard size limits, and
//! bounded line splitting. Nothing here ever allocates more than the configured limit, whatever
//! the input (a 1 GB line is skipped in chunks, not buffered).

use flate2::read::MultiGzDecoder;
use std::io::{self, Read};

/// How much is read per `read` call; large reads keep syscall and decoder overhead low.
const CHUNK: usize = 1 << 20;

/// Wraps `r` in a gzip decoder when its first bytes are the gzip magic (the extension is not
/// trusted: S3 objects are often `.gz`-less or served with `Content-Encoding`). Multi-member gzip
/// (concatenated streams, as Firehose writes) is decoded whole.
pub fn maybe_gunzip<R: Read + 'static>(mut r: R) -> io::Result<Box<dyn Read>> {
    let mut head = [0u8; 2];
    let mut n = 0;
    while n < 2 {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let prefix = io::Cursor::new(head[..n].to_vec());
    let chained = prefix.chain(r);
    if n == 2 && head == [0x1f, 0x8b] {
        Ok(Box::new(MultiGzDecoder::new(io::BufReader::with_capacity(
            256 << 10,
            chained,
        ))))
    } else {
        Ok(Box::new(chained))
    }
}

/// A read buffer over a byte stream. `data()` is the unconsumed part; `fill()` appends.
pub struct Chunked<R> {
    r: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// A read error ends the input; it is kept for the caller to report (e.g. truncated gzip).
    error: Option<io::Error>,
    /// Bytes consumed before `start`, for offsets in error reports.
    consumed: u64,
    /// Bytes asked for per `read` (more when a pending line needs it).
    read_size: usize,
}

/// Largest buffer kept for the next object read on the same thread.
const KEEP_MAX: usize = 32 << 20;

thread_local! {
    /// The buffer of the last object read on this thread. Reading into fresh memory costs a page
    /// fault per 4 KiB (a fifth of CloudTrail parse time was the kernel mapping and zeroing pages
    /// of each file's buffer); reusing it costs nothing once the first object is read.
    static SPARE: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

impl<R> Drop for Chunked<R> {
    fn drop(&mut self) {
        if self.buf.capacity() <= KEEP_MAX {
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            SPARE.set(buf);
        }
    }
}

impl<R: Read> Chunked<R> {
    pub fn new(r: R) -> Self {
        Chunked {
            r,
            buf: SPARE.take(),
            start: 0,
            end: 0,
            eof: false,
            error: None,
            consumed: 0,
            read_size: CHUNK,
        }
    }

    /// Bytes asked for per `read` from now on (at least 4 KiB). A parser that makes several
    /// passes over what it reads keeps them in cache with reads smaller than the default 1 MiB.
    pub fn set_read_size(&mut self, n: usize) {
        self.read_size = n.max(4 << 10);
    }

    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
        self.consumed += n as u64;
    }

    /// True once the stream has ended (cleanly or by error).
    pub fn at_end(&self) -> bool {
        self.eof
    }

    /// Total bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.consumed
    }

    pub fn has_error(&self) -> bool {
        self.error.is_some()
    }

    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// Reads more bytes so that `data()` grows, keeping `data().len()` at most `limit` (plus one
    /// chunk of slack is never exceeded). Returns the number of bytes added; 0 at end of input or
    /// when `limit` is already reached.
    pub fn fill(&mut self, limit: usize) -> usize {
        if self.eof {
            return 0;
        }
        let have = self.end - self.start;
        if have >= limit {
            return 0;
        }
        // Grow geometrically (callers re-scan the pending bytes after each fill, so doubling keeps
        // the total re-scan cost linear), but never beyond the limit.
        let want = have.max(self.read_size).min(limit - have);
        if self.start > 0 && self.buf.len() - self.end < want {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < want {
            self.buf.resize(self.end + want, 0);
        }
        loop {
            match self.r.read(&mut self.buf[self.end..self.end + want]) {
                Ok(0) => {
                    self.eof = true;
                    return 0;
                }
                Ok(n) => {
                    self.end += n;
                    return n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.eof = true;
                    self.error = Some(e);
                    return 0;
                }
            }
        }
    }

    /// Reads the rest of the input into the buffer, up to `limit` bytes of `data()`. Returns false
    /// if the input is longer than that (then `data()` holds `limit + 1` bytes and more remain).
    /// Uses `read_to_end`, which grows the buffer without zero-filling it first.
    pub fn read_all(&mut self, limit: usize) -> bool {
        if self.eof {
            return true;
        }
        self.buf.truncate(self.end);
        self.buf.drain(..self.start);
        self.end -= self.start;
        self.start = 0;
        let room = (limit.saturating_sub(self.end) as u64).saturating_add(1);
        if let Err(e) = (&mut self.r).take(room).read_to_end(&mut self.buf) {
            self.error = Some(e);
        }
        self.end = self.buf.len();
        if self.end > limit && self.error.is_none() {
            return false;
        }
        self.eof = true;
        true
    }

    /// Takes the unconsumed bytes out, leaving the buffer empty.
    pub fn take_data(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.truncate(self.end);
        buf.drain(..self.start);
        self.consumed += buf.len() as u64;
        self.start = 0;
        self.end = 0;
        buf
    }

    /// Reads until `data()` holds at least `n` bytes or input ends.
    pub fn fill_to(&mut self, n: usize, limit: usize) {
        while self.data().len() < n && self.fill(limit.max(n)) > 0 {}
    }

    /// Discards input up to and including the next `\n`. Returns the bytes skipped, including
    /// the newline if one was found, and whether one was found. Memory stays bounded.
    pub fn skip_line(&mut self) -> (u64, bool) {
        let mut skipped = 0u64;
        loop {
            if let Some(i) = memchr::memchr(b'\n', self.data()) {
                self.consume(i + 1);
                return (skipped + i as u64 + 1, true);
            }
            let n = self.data().len();
            self.consume(n);
            skipped += n as u64;
            if self.fill(CHUNK) == 0 {
                return (skipped, false);
            }
        }
    }
}

/// One item of [`for_each_line`].
pub enum Line<'a> {
    /// A complete line without its `\n` (and without a trailing `\r`).
    Text(&'a [u8]),
    /// A line longer than the limit; it was skipped. `len` is its length (or what was read of it).
    TooLong { len: u64 },
    /// The last line of an input that ended with a read error (e.g. truncated gzip): it is most
    /// likely cut short, so it is reported rather than parsed.
    Truncated(&'a [u8]),
}

/// Calls `f(line_number, line)` for each line (1-based numbers). Lines longer than `max_line`
/// bytes are reported as [`Line::TooLong`] without ever being held in memory in full.
pub fn for_each_line<R: Read>(
    input: &mut Chunked<R>,
    max_line: usize,
    mut f: impl FnMut(u64, Line<'_>),
) {
    let mut line_no = 0u64;
    let mut scan_from = 0usize;
    loop {
        let data = input.data();
        match memchr::memchr(b'\n', &data[scan_from..]) {
            Some(i) => {
                let end = scan_from + i;
                line_no += 1;
                if end > max_line {
                    f(line_no, Line::TooLong { len: end as u64 });
                } else {
                    let line = &data[..end];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    f(line_no, Line::Text(line));
                }
                input.consume(end + 1);
                scan_from = 0;
            }
            None => {
                scan_from = data.len();
                if scan_from > max_line {
                    line_no += 1;
                    // `skip_line` counts what was already buffered too.
                    let (skipped, found) = input.skip_line();
                    f(
                        line_no,
                        Line::TooLong {
                            len: skipped - u64::from(found),
                        },
                    );
                    scan_from = 0;
                    continue;
                }
                if input.fill(max_line + 1) == 0 {
                    let data = input.data();
                    if !data.is_empty() {
                        line_no += 1;
                        let line = data.strip_suffix(b"\r").unwrap_or(data);
                        let n = data.len();
                        if input.error.is_some() {
                            f(line_no, Line::Truncated(line));
                        } else {
                            f(line_no, Line::Text(line));
                        }
                        input.consume(n);
                    }
                    return;
                }
            }
        }
    }
}

/// One item of [`for_each_text_line`].
pub enum TextLine<'a> {
    /// A complete line without its `\n` (and without a trailing `\r`).
    Text(&'a str),
    /// A line that is not UTF-8; `valid_up_to` bytes of it are.
    NotUtf8 { valid_up_to: usize },
    /// As [`Line::TooLong`].
    TooLong { len: u64 },
    /// As [`Line::Truncated`].
    Truncated,
}

/// One item of [`for_each_text_block`].
pub enum TextBlock<'b, 'a> {
    /// Whole lines of checked UTF-8, handed out one by one (lines left unread are skipped).
    Lines(&'b mut BlockLines<'a>),
    /// One line that is not part of a checked block: a line of a block that failed the UTF-8
    /// check, an over-long line, or the last line of the input.
    Line(u64, TextLine<'a>),
}

/// The lines of a [`TextBlock::Lines`] block with their numbers, as [`for_each_text_line`]
/// hands them out: without a trailing `\r`, over-long ones as [`TextLine::TooLong`]. Counting
/// them here spares the block a pass of its own just for line numbers.
pub struct BlockLines<'a> {
    text: &'a str,
    /// Where the next line starts.
    start: usize,
    /// Number of the next line.
    line_no: u64,
    max_line: usize,
    done: bool,
}

impl<'a> BlockLines<'a> {
    /// `text` holds whole lines joined by `\n`, the first numbered `first`.
    fn new(text: &'a str, first: u64, max_line: usize) -> Self {
        BlockLines {
            text,
            start: 0,
            line_no: first,
            max_line,
            done: false,
        }
    }
}

impl<'a> BlockLines<'a> {
    /// The block's text and where its next line starts, unless every line was handed out.
    #[inline(always)]
    pub fn pending(&self) -> Option<(&'a str, usize)> {
        (!self.done).then_some((self.text, self.start))
    }

    /// Hands out the next line, which the caller found to end at `end`: the index of the first
    /// `\n` from where it starts ([`BlockLines::pending`]), or the text's length if there is none.
    #[inline(always)]
    pub fn take_line(&mut self, end: usize) -> (u64, TextLine<'a>) {
        debug_assert!(!self.done);
        debug_assert_eq!(
            Some(end),
            memchr::memchr(b'\n', &self.text.as_bytes()[self.start..])
                .map(|i| self.start + i)
                .or(Some(self.text.len()))
        );
        self.done = end == self.text.len();
        let start = std::mem::replace(&mut self.start, end + 1);
        let n = self.line_no;
        self.line_no += 1;
        if end - start > self.max_line {
            return (
                n,
                TextLine::TooLong {
                    len: (end - start) as u64,
                },
            );
        }
        let line = &self.text[start..end];
        (n, TextLine::Text(line.strip_suffix('\r').unwrap_or(line)))
    }
}

impl<'a> Iterator for BlockLines<'a> {
    type Item = (u64, TextLine<'a>);

    #[inline(always)]
    fn next(&mut self) -> Option<(u64, TextLine<'a>)> {
        let (text, start) = self.pending()?;
        let end =
            memchr::memchr(b'\n', &text.as_bytes()[start..]).map_or(text.len(), |i| start + i);
        Some(self.take_line(end))
    }
}

/// Like [`for_each_line`], but hands out `&str`, a block of whole lines at a time. UTF-8 is
/// checked once per buffered block rather than once per line (a per-line check was a tenth of
/// flow-log parse time), and a block lets the caller set up per-line state once; only a block
/// that fails the check is handed out line by line, to name the bad line.
pub fn for_each_text_block<R: Read>(
    input: &mut Chunked<R>,
    max_line: usize,
    mut f: impl FnMut(TextBlock<'_, '_>),
) {
    let mut line_no = 0u64;
    loop {
        let data = input.data();
        if let Some(last) = memchr::memrchr(b'\n', data) {
            let block = &data[..last];
            match std::str::from_utf8(block) {
                Ok(text) => {
                    let mut lines = BlockLines::new(text, line_no + 1, max_line);
                    f(TextBlock::Lines(&mut lines));
                    lines.by_ref().for_each(drop);
                    line_no = lines.line_no - 1;
                }
                Err(_) => {
                    for line in block.split(|&b| b == b'\n') {
                        line_no += 1;
                        if line.len() > max_line {
                            f(TextBlock::Line(
                                line_no,
                                TextLine::TooLong {
                                    len: line.len() as u64,
                                },
                            ));
                            continue;
                        }
                        let line = line.strip_suffix(b"\r").unwrap_or(line);
                        match std::str::from_utf8(line) {
                            Ok(t) => f(TextBlock::Line(line_no, TextLine::Text(t))),
                            Err(e) => f(TextBlock::Line(
                                line_no,
                                TextLine::NotUtf8 {
                                    valid_up_to: e.valid_up_to(),
                                },
                            )),
                        }
                    }
                }
            }
            input.consume(last + 1);
            continue;
        }
        // No complete line buffered: read more, skip an over-long line, or finish.
        if data.len() > max_line {
            line_no += 1;
            let (skipped, found) = input.skip_line();
            f(TextBlock::Line(
                line_no,
                TextLine::TooLong {
                    len: skipped - u64::from(found),
                },
            ));
            continue;
        }
        if input.fill(max_line + 1) == 0 {
            let data = input.data();
            if !data.is_empty() {
                line_no += 1;
                let n = data.len();
                if input.error.is_some() {
                    f(TextBlock::Line(line_no, TextLine::Truncated));
                } else {
                    let line = data.strip_suffix(b"\r").unwrap_or(data);
                    match std::str::from_utf8(line) {
                        Ok(t) => f(TextBlock::Line(line_no, TextLine::Text(t))),
                        Err(e) => f(TextBlock::Line(
                            line_no,
                            TextLine::NotUtf8 {
                                valid_up_to: e.valid_up_to(),
                            },
                        )),
                    }
                }
                input.consume(n);
            }
            return;
        }
    }
}

/// [`for_each_text_block`] one line at a time.
pub fn for_each_text_line<R: Read>(
    input: &mut Chunked<R>,
    max_line: usize,
    mut f: impl FnMut(u64, TextLine<'_>),
) {
    for_each_text_block(input, max_line, |block| match block {
        TextBlock::Lines(lines) => {
            for (n, line) in lines {
                f(n, line);
            }
        }
        TextBlock::Line(n, line) => f(n, line),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8], max: usize) -> Vec<(u64, String)> {
        let mut c = Chunked::new(data);
        let mut out = Vec::new();
        for_each_line(&mut c, max, |n, l| {
            out.push((
                n,
                match l {
                    Line::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    Line::TooLong { len } => format!("<too long {len}>"),
                    Line::Truncated(t) => format!("<truncated {}>", String::from_utf8_lossy(t)),
                },
            ))
        });
        out
    }

    #[test]
    fn splits_and_numbers_lines() {
        assert_eq!(
            lines(b"a\nbb\r\n\nccc", 10),
            vec![
                (1, "a".into()),
                (2, "bb".into()),
                (3, "".into()),
                (4, "ccc".into())
            ]
        );
        assert!(lines(b"", 10).is_empty());
    }

    #[test]
    fn long_line_is_skipped_not_buffered() {
        let out = lines(b"ok\n0123456789abcdef\nnext\n", 8);
        assert_eq!(
            out,
            vec![
                (1, "ok".into()),
                (2, "<too long 16>".into()),
                (3, "next".into())
            ]
        );
    }

    fn text_lines(data: &[u8], max: usize) -> Vec<(u64, String)> {
        let mut c = Chunked::new(data);
        let mut out = Vec::new();
        for_each_text_line(&mut c, max, |n, l| {
            out.push((
                n,
                match l {
                    TextLine::Text(t) => t.to_owned(),
                    TextLine::NotUtf8 { valid_up_to } => format!("<not utf-8 after {valid_up_to}>"),
                    TextLine::TooLong { len } => format!("<too long {len}>"),
                    TextLine::Truncated => "<truncated>".into(),
                },
            ))
        });
        out
    }

    #[test]
    fn text_lines_match_byte_lines() {
        for (data, max) in [
            (&b"a\nbb\r\n\nccc"[..], 10),
            (b"", 10),
            (b"ok\n0123456789abcdef\nnext\n", 8),
            (b"ok\n0123456789abcdef", 8),
            (b"\n\n", 1),
        ] {
            assert_eq!(text_lines(data, max), lines(data, max), "{data:?}");
        }
    }

    #[test]
    fn bad_utf8_is_one_line_not_the_block() {
        let out = text_lines(b"ok\nx\xffy\n\xc3\xa9t\xc3\xa9\nlast\xfe", 100);
        assert_eq!(
            out,
            vec![
                (1, "ok".into()),
                (2, "<not utf-8 after 1>".into()),
                (3, "\u{e9}t\u{e9}".into()),
                (4, "<not utf-8 after 4>".into()),
            ]
        );
    }

    #[test]
    fn gigabyte_text_line_bounded_memory() {
        let mut c = Chunked::new(Huge { left: 1 << 30 });
        let mut seen = Vec::new();
        for_each_text_line(&mut c, 1 << 20, |n, l| {
            if let TextLine::TooLong { len } = l {
                seen.push((n, len))
            }
        });
        assert_eq!(seen, vec![(1, (1u64 << 30) - 1)]);
        assert!(c.buf.len() <= 4 << 20, "buffer grew to {}", c.buf.len());
    }

    /// A reader producing one huge line without ever materialising it.
    struct Huge {
        left: u64,
    }
    impl Read for Huge {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Ok(0);
            }
            let n = (buf.len() as u64).min(self.left) as usize;
            buf[..n].fill(b'x');
            self.left -= n as u64;
            if self.left == 0 {
                buf[n - 1] = b'\n';
            }
            Ok(n)
        }
    }

    #[test]
    fn gigabyte_line_bounded_memory() {
        let mut c = Chunked::new(Huge { left: 1 << 30 });
        let mut seen = Vec::new();
        for_each_line(&mut c, 1 << 20, |n, l| {
            if let Line::TooLong { len } = l {
                seen.push((n, len))
            }
        });
        assert_eq!(seen, vec![(1, (1u64 << 30) - 1)]);
        assert!(c.buf.len() <= 4 << 20, "buffer grew to {}", c.buf.len());
    }
}
