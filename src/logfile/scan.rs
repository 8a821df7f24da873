//! Reading log files fast: whole lines out of large chunks, gzip told by its first bytes, and
//! a raw-byte filter that finds one trace's lines before any JSON is parsed.
//!
//! Finding a trace is I/O-bound work, so [`LineScan::trace`] looks for the bytes
//! `"trace_id":"<id>` (the encoder writes exactly that, `encode.rs`) with a SIMD substring
//! search over each chunk and hands over only the lines that hold them; the caller parses
//! those few with [`parse_line`](super::parse_line), which has the last word (a message that
//! merely quotes the id is parsed and rejected there). A line longer than the bound is never
//! buffered whole: it is skipped and counted.

use flate2::read::MultiGzDecoder;
use memchr::memmem::Finder;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::path::Path;

/// The longest line handed over by default (16 MiB); longer lines are skipped and counted.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// How much is read at a time.
const CHUNK: usize = 1 << 20;

/// The two bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Opens a log file for reading; a gzip-compressed file (rotated and compressed by logrotate,
/// say) is decompressed, whatever its name. Hand it to [`LineScan::run`] (example:
/// [`LineScan`]).
///
/// # Errors
/// When the file cannot be opened or read.
pub fn open_log_file(path: impl AsRef<Path>) -> std::io::Result<Box<dyn Read + Send>> {
    decompressed(std::fs::File::open(path)?)
}

/// Wraps a reader of log lines (standard input, say) so that gzip-compressed input is
/// decompressed, told by its first two bytes: `LineScan::every_line().run(decompressed(stdin)?, ..)`
/// (example: [`LineScan`]).
///
/// # Errors
/// When the first bytes cannot be read.
pub fn decompressed<R: Read + Send + 'static>(reader: R) -> std::io::Result<Box<dyn Read + Send>> {
    let mut reader = BufReader::with_capacity(64 << 10, reader);
    let head = loop {
        match reader.fill_buf() {
            Ok(head) => break head,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(MultiGzDecoder::new(reader)))
    } else {
        Ok(Box::new(reader))
    }
}

/// Hands over the lines of a reader, or only those of one trace, without their newline.
///
/// ```
/// use unitel::logfile::LineScan;
///
/// let log = b"{\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}\n{\"trace_id\":null}\n";
/// let mut lines = Vec::new();
/// let summary = LineScan::trace("4bf92f35")
///     .run(&log[..], |line| lines.push(line.to_vec()))
///     .unwrap();
/// assert_eq!(lines.len(), 1);
/// assert_eq!(summary.too_long, 0);
/// ```
#[derive(Debug, Clone)]
pub struct LineScan {
    finder: Option<Finder<'static>>,
    max_line: usize,
    unterminated: bool,
}

/// What a [`LineScan::run`] went through (example: [`LineScan`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanSummary {
    /// Lines handed over.
    pub lines: u64,
    /// Lines longer than the bound, skipped.
    pub too_long: u64,
    /// Bytes read up to the end of the last whole line: where a reader that follows a
    /// growing file resumes.
    pub consumed: u64,
}

impl LineScan {
    /// Every non-empty line.
    pub fn every_line() -> Self {
        LineScan {
            finder: None,
            max_line: MAX_LINE_BYTES,
            unterminated: true,
        }
    }

    /// Only the lines that hold `"trace_id":"<id>`: the records of the trace `id`, or of every
    /// trace whose id starts with `id` when it is a prefix. The bytes are compared as given,
    /// so pass lowercase hex, as the format writes ids.
    pub fn trace(id: &str) -> Self {
        let mut needle = b"\"trace_id\":\"".to_vec();
        needle.extend_from_slice(id.as_bytes());
        LineScan {
            finder: Some(Finder::new(&needle).into_owned()),
            ..LineScan::every_line()
        }
    }

    /// Skips (and counts) lines longer than `bytes` instead of [`MAX_LINE_BYTES`].
    pub fn with_max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes.max(1);
        self
    }

    /// Whether a last line without its newline is handed over (the default): yes for a file
    /// that is complete, no for one being followed while it grows, whose last line may be
    /// half written.
    pub fn with_unterminated_last_line(mut self, hand_over: bool) -> Self {
        self.unterminated = hand_over;
        self
    }

    /// Reads `reader` to its end, handing each matching line to `each` (without its newline,
    /// and without a `\r` before it).
    ///
    /// # Errors
    /// When reading fails; the lines before the failure have been handed over.
    pub fn run<R: Read>(
        &self,
        mut reader: R,
        mut each: impl FnMut(&[u8]),
    ) -> std::io::Result<ScanSummary> {
        let mut summary = ScanSummary::default();
        let mut buf = vec![0u8; self.max_line.saturating_add(CHUNK)];
        // buf[start..end] is read and not yet handed over; `skipping` while inside a line
        // that is too long.
        let (mut start, mut end, mut skipping) = (0usize, 0usize, false);
        loop {
            if buf.len() - end < CHUNK && start > 0 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            }
            let n = match reader.read(&mut buf[end..]) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let eof = n == 0;
            end += n;
            let pending = &buf[start..end];
            let whole = match memchr::memrchr(b'\n', pending) {
                Some(last) => last + 1,
                None => 0,
            };
            let mut region = &pending[..whole];
            if skipping && whole > 0 {
                // The rest of the long line ends at the first newline.
                let rest = memchr::memchr(b'\n', region).unwrap_or(0);
                region = &region[rest + 1..];
                skipping = false;
            }
            if !skipping {
                self.lines_in(region, &mut summary, &mut each);
            }
            start += whole;
            summary.consumed += whole as u64;
            if end - start > self.max_line {
                // A line longer than the bound, still going: drop what we have of it.
                if !skipping {
                    summary.too_long += 1;
                    skipping = true;
                }
                summary.consumed += (end - start) as u64;
                start = end;
            }
            if eof {
                if self.unterminated && !skipping && end > start {
                    let last = &buf[start..end];
                    summary.consumed += last.len() as u64;
                    self.lines_in(last, &mut summary, &mut each);
                }
                return Ok(summary);
            }
        }
    }

    /// Hands over the matching lines of `region`, which holds whole lines only (its last may
    /// lack the newline at the end of input).
    fn lines_in(&self, region: &[u8], summary: &mut ScanSummary, each: &mut impl FnMut(&[u8])) {
        let mut hand_over = |line: &[u8], summary: &mut ScanSummary| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > self.max_line {
                summary.too_long += 1;
            } else if !line.iter().all(u8::is_ascii_whitespace) {
                summary.lines += 1;
                each(line);
            }
        };
        match &self.finder {
            None => {
                let mut from = 0;
                for newline in memchr::memchr_iter(b'\n', region) {
                    hand_over(&region[from..newline], summary);
                    from = newline + 1;
                }
                if from < region.len() {
                    hand_over(&region[from..], summary);
                }
            }
            Some(finder) => {
                let mut from = 0;
                while let Some(at) = finder.find(&region[from..]) {
                    let at = from + at;
                    let line_start =
                        memchr::memrchr(b'\n', &region[from..at]).map_or(from, |i| from + i + 1);
                    let line_end =
                        memchr::memchr(b'\n', &region[at..]).map_or(region.len(), |i| at + i);
                    hand_over(&region[line_start..line_end], summary);
                    from = (line_end + 1).min(region.len());
                    if from >= region.len() {
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn lines(scan: &LineScan, input: &[u8]) -> (Vec<String>, ScanSummary) {
        let mut out = Vec::new();
        let summary = scan
            .run(input, |line| {
                out.push(String::from_utf8_lossy(line).into_owned())
            })
            .unwrap();
        (out, summary)
    }

    /// A reader that hands out at most `n` bytes a call, to cross chunk edges everywhere.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn every_line_skips_blank_ones_and_keeps_an_unterminated_last() {
        let (out, summary) = lines(&LineScan::every_line(), b"a\r\n\n  \nb\nc");
        assert_eq!(out, ["a", "b", "c"]);
        assert_eq!((summary.lines, summary.consumed), (3, 10));
        let follow = LineScan::every_line().with_unterminated_last_line(false);
        let (out, summary) = lines(&follow, b"a\nb\nhalf");
        assert_eq!(out, ["a", "b"]);
        assert_eq!(summary.consumed, 4, "resumes at the half-written line");
    }

    #[test]
    fn trace_hands_over_only_lines_that_hold_the_id_after_the_key() {
        let input = format!(
            "{{\"trace_id\":\"{ID}\",\"n\":1}}\n{{\"trace_id\":null,\"message\":\"{ID}\"}}\n{{\"x\":1,\"trace_id\":\"{ID}\"}}\n{{\"trace_id\":\"ffff{}\"}}\n",
            &ID[4..]
        );
        let (out, _) = lines(&LineScan::trace(ID), input.as_bytes());
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0].ends_with("\"n\":1}") && out[1].starts_with("{\"x\":1"));
        let (by_prefix, _) = lines(&LineScan::trace(&ID[..8]), input.as_bytes());
        assert_eq!(by_prefix, out);
    }

    #[test]
    fn long_lines_are_skipped_and_counted_without_being_buffered_whole() {
        let long = "x".repeat(5000);
        let input = format!("short\n{long}\nafter\n{long}");
        for chunk in [1, 7, 4096, 1 << 20] {
            let scan = LineScan::every_line().with_max_line(100);
            let mut out = Vec::new();
            let summary = scan
                .run(Trickle(input.as_bytes(), chunk), |l| out.push(l.to_vec()))
                .unwrap();
            assert_eq!(out, [b"short".to_vec(), b"after".to_vec()], "chunk {chunk}");
            assert_eq!(summary.too_long, 2, "chunk {chunk}");
        }
    }

    #[test]
    fn chunk_edges_do_not_split_or_lose_lines() {
        let mut input = String::new();
        for i in 0..3000 {
            let id = if i % 7 == 0 {
                ID.to_owned()
            } else {
                format!("{i:032x}")
            };
            input.push_str(&format!("{{\"i\":{i},\"trace_id\":\"{id}\"}}\n"));
        }
        for chunk in [3, 100, 65536] {
            let mut out = Vec::new();
            let summary = LineScan::trace(ID)
                .run(Trickle(input.as_bytes(), chunk), |l| out.push(l.to_vec()))
                .unwrap();
            assert_eq!(out.len(), 429, "chunk {chunk}");
            assert_eq!(summary.consumed, input.len() as u64);
            assert!(out.iter().all(|l| l.starts_with(b"{\"i\":")));
        }
    }

    #[test]
    fn gzip_is_told_by_its_first_bytes() {
        use flate2::write::GzEncoder;
        use std::io::Write as _;
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"one\ntwo\n").unwrap();
        let bytes = gz.finish().unwrap();
        let (out, _) = lines(
            &LineScan::every_line(),
            &read_all(decompressed(std::io::Cursor::new(bytes)).unwrap()),
        );
        assert_eq!(out, ["one", "two"]);
        let (plain, _) = lines(
            &LineScan::every_line(),
            &read_all(decompressed(&b"one\n"[..]).unwrap()),
        );
        assert_eq!(plain, ["one"]);
    }

    fn read_all(mut r: Box<dyn Read + Send>) -> Vec<u8> {
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        v
    }
}
