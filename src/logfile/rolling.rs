//! The log file as the writer thread sees it: the file open now, rolled over by the clock and
//! reopened when its path stops naming it.
//!
//! File names and pruning are tracing-appender's (`RollingFileAppender`), which this replaces
//! so that the writer sees every write error and can tell when the file was deleted:
//! `prefix.suffix` without rotation, `prefix.2026-11-21-05.suffix` hourly and
//! `prefix.2026-11-21.suffix` daily (UTC), and with a maximum of `n` files, before a new file is
//! created the oldest of the log's files (`prefix.suffix` and `prefix.<date>.suffix`, in name
//! order, which is time order; not logrotate's copies) are deleted so that `n - 1` remain.

use super::files::{is_rotated_copy, LogFileName};
use crate::config::LogRotation;
use crate::diagnostics::report_once;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A write to a pipe of at most this many bytes is atomic: all of it or none of it (POSIX
/// `PIPE_BUF`). Writes to a pipe are whole lines up to this size, so when one blocks for ever
/// the writer knows exactly which lines went through.
const PIPE_ATOMIC_BYTES: usize = 4096;

/// The rolling log file.
#[derive(Debug)]
pub(super) struct RollingFile {
    name: LogFileName,
    rotation: LogRotation,
    max_files: Option<usize>,
    open: Option<OpenFile>,
}

#[derive(Debug)]
struct OpenFile {
    file: File,
    path: PathBuf,
    /// Device and inode of `file`, to compare with what `path` names now.
    identity: Option<(u64, u64)>,
    /// The rotation period the file belongs to.
    period: u64,
    /// A regular file (a cut line can be taken back), not a pipe or a device.
    regular: bool,
    /// The largest write: [`PIPE_ATOMIC_BYTES`] on a pipe, unbounded otherwise.
    chunk: usize,
    /// The last write stopped inside a line that could not be taken back: the next write
    /// starts with a newline, so the cut line never runs into the next one.
    cut: bool,
}

/// What the writer thread tells of a write as it goes, and hears from shutdown.
#[derive(Debug, Clone, Copy)]
pub(super) struct Progress<'a> {
    /// Lines of the batch not yet wholly in the file, lowered as they reach it.
    pub(super) unwritten_lines: &'a AtomicU64,
    /// Shutdown gave up on the writer and counted what is left: write no more.
    pub(super) abandoned: &'a AtomicBool,
}

impl Progress<'_> {
    /// `stretch` of the batch has reached the file.
    fn written(self, stretch: &[u8]) {
        let n = lines(stretch);
        let _ = self
            .unwritten_lines
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                Some(left.saturating_sub(n))
            });
    }

    fn abandoned(self) -> bool {
        self.abandoned.load(Ordering::Acquire)
    }
}

/// The number of lines in `bytes` (each ends with a newline).
pub(super) fn lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// How long the writer waits before trying again to write to a full pipe.
const PIPE_RETRY: std::time::Duration = std::time::Duration::from_millis(5);

/// A write that did not go through: the error, and where in the batch the first line that
/// is not (wholly) in the file starts.
#[derive(Debug)]
pub(super) struct WriteError {
    pub(super) error: io::Error,
    pub(super) unwritten_from: usize,
}

impl RollingFile {
    /// Opens the current file (creating the directory), after deleting old files when a
    /// maximum is set, as tracing-appender does when it is built.
    pub(super) fn open(
        name: LogFileName,
        rotation: LogRotation,
        max_files: Option<usize>,
    ) -> io::Result<RollingFile> {
        let mut file = RollingFile {
            name,
            rotation,
            max_files: max_files.map(|n| n.max(1)),
            open: None,
        };
        file.prune();
        file.open = Some(file.create(SystemTime::now())?);
        Ok(file)
    }

    /// The path of the file written now (for messages).
    pub(super) fn current_path(&self) -> PathBuf {
        match &self.open {
            Some(open) => open.path.clone(),
            None => self
                .name
                .directory
                .join(self.file_name(self.period(SystemTime::now()))),
        }
    }

    /// Writes `batch` (whole lines) to the current file: rolls over first when the period
    /// changed, and reopens the file when its path no longer names it (deleted, or renamed
    /// away) or it could not be opened before. `Ok(true)` when the file was reopened.
    /// `progress` is told each stretch of `batch` as it reaches the file.
    pub(super) fn write_batch(
        &mut self,
        batch: &[u8],
        progress: Progress<'_>,
    ) -> Result<bool, WriteError> {
        let failed = |error| WriteError {
            error,
            unwritten_from: 0,
        };
        let now = SystemTime::now();
        let period = self.period(now);
        let mut reopened = false;
        match &self.open {
            Some(open) if open.period == period => {
                if !open.still_named() {
                    self.open = None;
                    self.open = Some(self.create(now).map_err(failed)?);
                    reopened = true;
                }
            }
            Some(_) => {
                self.open = None;
                self.prune();
                self.open = Some(self.create(now).map_err(failed)?);
            }
            None => {
                self.open = Some(self.create(now).map_err(failed)?);
                reopened = true;
            }
        }
        let Some(open) = self.open.as_mut() else {
            return Err(failed(io::Error::other("the log file is not open")));
        };
        open.write_lines(batch, progress)?;
        Ok(reopened)
    }

    fn period(&self, now: SystemTime) -> u64 {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        match self.rotation {
            LogRotation::Never => 0,
            LogRotation::Hourly => secs / 3600,
            LogRotation::Daily => secs / 86_400,
        }
    }

    /// tracing-appender's name for the file of `period`.
    fn file_name(&self, period: u64) -> String {
        let date = match self.rotation {
            LogRotation::Never => None,
            LogRotation::Hourly => Some((period * 3600, 13)),
            LogRotation::Daily => Some((period * 86_400, 10)),
        }
        .map(|(secs, len)| {
            let mut text = String::with_capacity(27);
            crate::format::time::write_rfc3339(
                &mut text,
                UNIX_EPOCH + std::time::Duration::from_secs(secs),
            );
            // `2026-11-21T05:...` → `2026-11-21` or `2026-11-21-05`.
            text.truncate(len);
            text.replace('T', "-")
        });
        let mut name = self.name.prefix.clone();
        for part in date.iter().chain(self.name.suffix.iter()) {
            name.push('.');
            name.push_str(part);
        }
        name
    }

    /// Opens (creating it, and its directory when that is gone) the file for `now`: a regular
    /// file, a character device (`/dev/null`, a terminal) or a named pipe that a reader has
    /// open. A pipe without a reader, a directory, a socket or a block device is an error that
    /// says what the path is.
    fn create(&self, now: SystemTime) -> io::Result<OpenFile> {
        let period = self.period(now);
        let path = self.name.directory.join(self.file_name(period));
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        // Non-blocking (no effect on a regular file): opening a pipe fails at once (ENXIO)
        // when nothing reads it instead of waiting for a reader, and a full pipe is retried,
        // so that shutdown can give up on a reader that never reads and know exactly which
        // lines went through.
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(libc::O_NONBLOCK);
        }
        let opened = match options.open(&path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.name.directory)?;
                options.open(&path)
            }
            opened => opened,
        };
        let refused = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is {what}", path.display()),
            )
        };
        let file = opened.map_err(|error| {
            // What is at the path is looked at only to say why it could not be opened.
            #[cfg(unix)]
            let unread_pipe = error.raw_os_error() == Some(libc::ENXIO);
            #[cfg(not(unix))]
            let unread_pipe = false;
            match std::fs::metadata(&path) {
                Ok(m) => not_a_log_file(m.file_type(), unread_pipe).map_or(error, refused),
                Err(_) => error,
            }
        })?;
        let metadata = file.metadata()?;
        if let Some(what) = not_a_log_file(metadata.file_type(), false) {
            return Err(refused(what));
        }
        let regular = metadata.is_file();
        #[cfg(unix)]
        let (identity, pipe) = {
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            (
                Some((metadata.dev(), metadata.ino())),
                metadata.file_type().is_fifo(),
            )
        };
        #[cfg(not(unix))]
        let (identity, pipe) = (None, false);
        Ok(OpenFile {
            file,
            path,
            identity,
            period,
            regular,
            chunk: if pipe { PIPE_ATOMIC_BYTES } else { usize::MAX },
            cut: false,
        })
    }

    /// Deletes the oldest files of this log so that `max_files - 1` remain (room for the one
    /// about to be created), as tracing-appender does; logrotate's copies are left alone.
    fn prune(&self) {
        let Some(max_files) = self.max_files else {
            return;
        };
        let Ok(mut files) = self.name.files() else {
            return;
        };
        files.retain(|path| !is_rotated_copy(path));
        let Some(excess) = (files.len() + 1).checked_sub(max_files) else {
            return;
        };
        for path in files.iter().take(excess) {
            if let Err(error) = std::fs::remove_file(path) {
                report_once(&format!("log file prune {}", path.display()), &|| {
                    format!(
                        "could not delete the old log file {}: {error}",
                        path.display()
                    )
                });
            }
        }
    }
}

impl OpenFile {
    /// Whether the path still names this file (not deleted, not renamed away and replaced).
    fn still_named(&self) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            match std::fs::metadata(&self.path) {
                Ok(now) => self.identity == Some((now.dev(), now.ino())),
                Err(error) => error.kind() != io::ErrorKind::NotFound,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = self.identity;
            self.path.exists()
        }
    }

    /// Writes whole lines; on an error, takes a cut line back out of a regular file (or
    /// marks it, to be ended by the next write) and says where the unwritten lines start.
    fn write_lines(&mut self, batch: &[u8], progress: Progress<'_>) -> Result<(), WriteError> {
        if self.cut {
            // Ends the line a failed write cut short: not a line of this batch.
            self.write_all(b"\n", progress, false)
                .map_err(|(_, error)| WriteError {
                    error,
                    unwritten_from: 0,
                })?;
            self.cut = false;
        }
        self.write_all(batch, progress, true)
            .map_err(|(done, error)| self.cut_at(batch, done, error))
    }

    /// Writes all of `bytes` (whole lines, in chunks of at most `self.chunk`), waiting for
    /// the reader of a full pipe until shutdown gives up; tells `progress` of each stretch that
    /// reached the file when `count_lines`. On an error, how much was written, and the error.
    fn write_all(
        &mut self,
        bytes: &[u8],
        progress: Progress<'_>,
        count_lines: bool,
    ) -> Result<(), (usize, io::Error)> {
        let mut done = 0;
        while done < bytes.len() {
            if progress.abandoned() {
                // Shutdown counted the rest as not written: it must not reach the file.
                return Err((done, io::Error::other("shutdown's timeout ran out")));
            }
            let end = chunk_end(bytes, done, self.chunk);
            match self.file.write(&bytes[done..end]) {
                Ok(0) => return Err((done, io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    if count_lines {
                        progress.written(&bytes[done..done + n]);
                    }
                    done += n;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // A pipe opened non-blocking is full: wait for its reader, unless shutdown
                // gave up on it (a write blocked in the kernel could not be given up).
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if progress.abandoned() {
                        return Err((done, error));
                    }
                    std::thread::sleep(PIPE_RETRY);
                }
                Err(error) => return Err((done, error)),
            }
        }
        Ok(())
    }

    /// The write of `batch` stopped at `done` with `error`: the line `done` falls in is lost.
    fn cut_at(&mut self, batch: &[u8], done: usize, error: io::Error) -> WriteError {
        let line_start = memchr::memrchr(b'\n', &batch[..done]).map_or(0, |i| i + 1);
        let partial = (done - line_start) as u64;
        if partial > 0 {
            let taken_back = self.regular
                && self
                    .file
                    .metadata()
                    .and_then(|m| self.file.set_len(m.len().saturating_sub(partial)))
                    .is_ok();
            self.cut = !taken_back;
        }
        WriteError {
            error,
            unwritten_from: line_start,
        }
    }
}

/// Why a file of `file_type` is not one to write the log to, when it is not: a directory, a
/// socket, a block device, or a named pipe that nothing reads (`unread_pipe`: opening it
/// failed with ENXIO).
fn not_a_log_file(file_type: std::fs::FileType, unread_pipe: bool) -> Option<&'static str> {
    if file_type.is_dir() {
        return Some("a directory, not a file: name a file (it is created when missing)");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() && unread_pipe {
            return Some(
                "a named pipe (FIFO) that nothing reads: opening it would wait for a reader \
                 for ever; start the reader first, or name a regular file",
            );
        }
        if file_type.is_socket() {
            return Some("a socket, not a file: name a regular file");
        }
        if file_type.is_block_device() {
            return Some("a block device, not a file: name a regular file");
        }
    }
    let _ = unread_pipe;
    None
}

/// Where the next write from `start` ends: whole lines of at most `limit` bytes together (a
/// longer line alone), or the rest of the batch when there is no limit.
fn chunk_end(batch: &[u8], start: usize, limit: usize) -> usize {
    if batch.len() - start <= limit {
        return batch.len();
    }
    match memchr::memrchr(b'\n', &batch[start..start + limit]) {
        Some(i) => start + i + 1,
        None => memchr::memchr(b'\n', &batch[start + limit..])
            .map_or(batch.len(), |i| start + limit + i + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rolling(rotation: LogRotation, suffix: Option<&str>) -> RollingFile {
        RollingFile {
            name: LogFileName {
                directory: "logs".into(),
                prefix: "orders".into(),
                suffix: suffix.map(str::to_owned),
            },
            rotation,
            max_files: None,
            open: None,
        }
    }

    #[test]
    fn names_files_as_tracing_appender_does() {
        // 2026-11-21T05:23:30Z
        let time = UNIX_EPOCH + std::time::Duration::from_secs(1_795_238_610);
        let name = |rotation, suffix| {
            let file = rolling(rotation, suffix);
            file.file_name(file.period(time))
        };
        assert_eq!(name(LogRotation::Never, Some("log")), "orders.log");
        assert_eq!(name(LogRotation::Never, None), "orders");
        assert_eq!(
            name(LogRotation::Hourly, Some("log")),
            "orders.2026-11-21-05.log"
        );
        assert_eq!(
            name(LogRotation::Daily, Some("log")),
            "orders.2026-11-21.log"
        );
        assert_eq!(name(LogRotation::Daily, None), "orders.2026-11-21");
    }

    #[test]
    fn pruning_deletes_only_the_oldest_of_the_logs_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "app.2026-11-19.log",
            "app.2026-11-20.log",
            "app.2026-11-21.log",
            "application.log",
            "app-audit.log",
            "app.log.1",
            "app.2026-11-18.log.gz",
        ];
        for name in names {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let file = RollingFile {
            name: LogFileName::of(&dir.path().join("app.log")).unwrap(),
            rotation: LogRotation::Daily,
            max_files: Some(3),
            open: None,
        };
        file.prune();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "app-audit.log",
                "app.2026-11-18.log.gz",
                "app.2026-11-20.log",
                "app.2026-11-21.log",
                "app.log.1",
                "application.log"
            ],
            "the newest two of the log's own files stay (room for a third), and no other file \
             is touched"
        );
    }

    #[test]
    fn pipe_writes_are_whole_lines_within_the_atomic_size() {
        let batch = b"aaa\nbbbb\ncc\n";
        assert_eq!(chunk_end(batch, 0, usize::MAX), batch.len());
        assert_eq!(chunk_end(batch, 0, 9), 9);
        assert_eq!(chunk_end(batch, 0, 8), 4);
        assert_eq!(chunk_end(batch, 4, 2), 9, "a longer line goes whole");
        assert_eq!(chunk_end(batch, 9, 2), batch.len());
    }
}
