//! The log's files on disk: how they are named (rotation included), opened for writing, and
//! found again for reading.
//!
//! `logs/orders.log` is the directory `logs`, the prefix `orders` and the suffix `log`; with
//! rotation the date goes between them (`orders.2026-11-21.log`, `orders.2026-11-21-05.log`),
//! tracing-appender's naming.

use super::sink::FileSink;
use crate::config::{LogFileConfig, LogRotation};
use crate::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing_appender::non_blocking::NonBlockingBuilder;
use tracing_appender::rolling::{RollingFileAppender, Rotation};

/// The parts of a log file's path that name all its files.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LogFileName {
    directory: PathBuf,
    prefix: String,
    suffix: Option<String>,
}

impl LogFileName {
    /// Splits `path`; `None` when it has no file name.
    fn of(path: &Path) -> Option<LogFileName> {
        let directory = directory_of(path);
        let prefix = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty())?
            .to_owned();
        let suffix = path.extension().and_then(|s| s.to_str()).map(str::to_owned);
        Some(LogFileName {
            directory,
            prefix,
            suffix,
        })
    }

    /// Whether `file_name` is one of this log's files: `prefix.suffix`, or with a rotation
    /// date (digits and dashes) between the two.
    fn names(&self, file_name: &str) -> bool {
        let Some(rest) = file_name.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        let middle = match &self.suffix {
            Some(suffix) => match rest
                .strip_suffix(suffix.as_str())
                .and_then(|r| r.strip_suffix('.'))
            {
                Some(middle) => middle,
                None => return false,
            },
            None => rest,
        };
        middle.is_empty()
            || middle.strip_prefix('.').is_some_and(|date| {
                !date.is_empty() && date.bytes().all(|b| b.is_ascii_digit() || b == b'-')
            })
    }
}

/// The directory a log file path writes to (`.` for a bare file name).
fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => ".".into(),
    }
}

/// Opens the log file for writing (creating its directory) behind the batching, non-blocking
/// writer.
pub(crate) fn open(config: &LogFileConfig) -> Result<Arc<FileSink>, Error> {
    let path = config.path.as_deref().unwrap_or(Path::new(""));
    let name = LogFileName::of(path).ok_or_else(|| Error::LogFile {
        directory: directory_of(path),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the log file path has no file name (e.g. logs/app.log)",
        ),
    })?;
    let failed = |source: std::io::Error| Error::LogFile {
        directory: name.directory.clone(),
        source,
    };
    std::fs::create_dir_all(&name.directory).map_err(failed)?;
    let mut builder = RollingFileAppender::builder()
        .rotation(match config.rotation {
            LogRotation::Never => Rotation::NEVER,
            LogRotation::Hourly => Rotation::HOURLY,
            LogRotation::Daily => Rotation::DAILY,
        })
        .filename_prefix(&name.prefix);
    if let Some(suffix) = &name.suffix {
        builder = builder.filename_suffix(suffix);
    }
    if let Some(n) = config.max_files {
        builder = builder.max_log_files(n.max(1));
    }
    let appender = builder
        .build(&name.directory)
        .map_err(|e| failed(std::io::Error::other(e)))?;
    // Messages are batches of up to 64 KiB (see sink.rs), so a short queue is plenty.
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(256)
        .lossy(true)
        .thread_name("unitel-log-writer")
        .finish(appender);
    Ok(FileSink::new(writer, guard))
}

/// The files of the log at `path`, in name order (which is time order for rotated files):
/// for a log file path such as `logs/orders.log`, that file and its rotated files
/// (`logs/orders.2026-11-21.log`); for a directory, every file in it.
///
/// # Errors
/// When the directory cannot be listed.
pub fn log_files(path: impl AsRef<Path>) -> std::io::Result<Vec<PathBuf>> {
    let path = path.as_ref();
    let (directory, name) = if path.is_dir() {
        (path.to_path_buf(), None)
    } else {
        let name = LogFileName::of(path).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} names no log file", path.display()),
            )
        })?;
        (name.directory.clone(), Some(name))
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| entry.path())
        .filter(
            |file| match (&name, file.file_name().and_then(|n| n.to_str())) {
                (None, _) => true,
                (Some(name), Some(file_name)) => name.names(file_name),
                (Some(_), None) => false,
            },
        )
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_file_and_its_rotations_only() {
        let name = LogFileName::of(Path::new("logs/orders.log")).unwrap();
        assert_eq!(name.directory, Path::new("logs"));
        for ok in [
            "orders.log",
            "orders.2026-11-21.log",
            "orders.2026-11-21-05.log",
        ] {
            assert!(name.names(ok), "{ok}");
        }
        for not in [
            "orders.txt",
            "orders.log.gz",
            "orders2.log",
            "orders.x.log",
            "orders..log",
            "other.log",
            "orders",
        ] {
            assert!(!name.names(not), "{not}");
        }
        let bare = LogFileName::of(Path::new("app")).unwrap();
        assert_eq!(bare.directory, Path::new("."));
        assert!(bare.names("app") && bare.names("app.2026-11-21") && !bare.names("app.log"));
        assert_eq!(
            LogFileName::of(Path::new("logs/")),
            LogFileName::of(Path::new("logs"))
        );
    }
}
