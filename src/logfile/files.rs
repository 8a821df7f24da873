//! The log's files on disk: how they are named (rotation included), opened for writing, and
//! found again for reading.
//!
//! `logs/orders.log` is the directory `logs`, the prefix `orders` and the suffix `log`; with
//! rotation the date goes between them (`orders.2026-11-21.log`, `orders.2026-11-21-05.log`),
//! tracing-appender's naming. A reader also finds the files logrotate leaves behind: numbered
//! (`orders.log.1`), dated (`orders.log-20261121`) and gzip-compressed (`orders.log.2.gz`).

use super::rolling::RollingFile;
use super::sink::FileSink;
use crate::config::LogFileConfig;
use crate::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The parts of a log file's path that name all its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LogFileName {
    pub(super) directory: PathBuf,
    pub(super) prefix: String,
    pub(super) suffix: Option<String>,
}

impl LogFileName {
    /// Splits `path`; `None` when it has no file name.
    pub(super) fn of(path: &Path) -> Option<LogFileName> {
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
    /// date (digits and dashes) between the two; either of those rotated by logrotate.
    fn names(&self, file_name: &str) -> bool {
        let file_name = Rotated::of(file_name).base;
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

    /// This log's files in its directory (logrotate's copies included), oldest first.
    pub(super) fn files(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.directory)?
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
            .map(|entry| entry.path())
            .filter(|file| {
                file.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|file_name| self.names(file_name))
            })
            .collect();
        sort_by_age(&mut files);
        Ok(files)
    }
}

/// Whether `path` is a copy logrotate left (`orders.log.1`, `orders.log-20261121`,
/// `orders.log.2.gz`, `orders.2026-11-21.log.gz`), not a file this crate writes.
pub(super) fn is_rotated_copy(path: &Path) -> bool {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    Rotated::of(file_name).is_copy(file_name)
}

/// A file name with what logrotate adds taken off: `.gz`, then a number (`.1`) or a date
/// (`-20261121`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rotated<'a> {
    base: &'a str,
    /// Older first: a dated copy, then numbered copies from the highest number down, then
    /// the live file.
    age: Age<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Age<'a> {
    Dated(&'a str),
    Numbered(std::cmp::Reverse<u64>),
    Live,
}

impl<'a> Rotated<'a> {
    /// Whether `file_name` (which this was made of) is a copy logrotate left, not a live file.
    fn is_copy(&self, file_name: &str) -> bool {
        self.age != Age::Live || file_name.ends_with(".gz")
    }

    fn of(file_name: &'a str) -> Rotated<'a> {
        let name = file_name.strip_suffix(".gz").unwrap_or(file_name);
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if let Some((base, n)) = name.rsplit_once('.') {
            if digits(n) && n.len() <= 4 && !base.is_empty() {
                if let Ok(n) = n.parse() {
                    return Rotated {
                        base,
                        age: Age::Numbered(std::cmp::Reverse(n)),
                    };
                }
            }
        }
        if let Some((base, date)) = name.rsplit_once('-') {
            if digits(date) && date.len() >= 8 && !base.is_empty() {
                return Rotated {
                    base,
                    age: Age::Dated(date),
                };
            }
        }
        Rotated {
            base: name,
            age: Age::Live,
        }
    }
}

/// Sorts a log's files into time order: by name, with logrotate's copies before the file
/// they were rotated from.
fn sort_by_age(files: &mut [PathBuf]) {
    fn key(path: &Path) -> (Option<&Path>, Rotated<'_>) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        (path.parent(), Rotated::of(name))
    }
    files.sort_by(|a, b| key(a).cmp(&key(b)));
}

/// The directory a log file path writes to (`.` for a bare file name).
fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => ".".into(),
    }
}

/// Opens the log file for writing behind the batching writer thread (`RollingFile::open` creates
/// the directory when missing).
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
    let file =
        RollingFile::open(name.clone(), config.rotation, config.max_files).map_err(failed)?;
    FileSink::start(file, path.to_path_buf()).map_err(failed)
}

/// The files of the log at `path`, oldest first: for a log file path such as
/// `logs/orders.log`, that file and its rotated files (`logs/orders.2026-11-21.log`, and
/// logrotate's `orders.log.1`, `orders.log-20261121`, `orders.log.2.gz`); for a directory,
/// every file in it and in its subdirectories (hidden ones excepted), each log's files oldest
/// first. A rotated copy (`orders.log.1`, `orders.log.2.gz`) names only itself.
/// [`read_records`](super::read_records) reads them all (example there).
///
/// # Errors
/// When a directory cannot be listed.
pub fn log_files(path: impl AsRef<Path>) -> std::io::Result<Vec<PathBuf>> {
    let path = path.as_ref();
    if path.is_dir() {
        let mut files = Vec::new();
        walk(path, &mut files)?;
        sort_by_age(&mut files);
        return Ok(files);
    }
    if path.is_file() && is_rotated_copy(path) {
        return Ok(vec![path.to_path_buf()]);
    }
    LogFileName::of(path)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} names no log file", path.display()),
            )
        })?
        .files()
}

/// Every file under `directory`, skipping hidden names (`.` first).
fn walk(directory: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(directory)? {
        let Ok(entry) = entry else { continue };
        if entry
            .file_name()
            .to_str()
            .is_none_or(|n| n.starts_with('.'))
        {
            continue;
        }
        let path = entry.path();
        // Follows symbolic links, as a shell's `cat dir/*` would.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => files.push(path),
            Ok(meta) if meta.is_dir() => walk(&path, files)?,
            _ => {}
        }
    }
    Ok(())
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
        for rotated in [
            "orders.log.1",
            "orders.log.2.gz",
            "orders.log-20261121",
            "orders.log-20261121.gz",
            "orders.2026-11-21.log.gz",
        ] {
            assert!(name.names(rotated), "{rotated}");
        }
        for not in [
            "orders.txt",
            "orders.txt.gz",
            "orders.log.x",
            "orders2.log",
            "orders.x.log",
            "orders..log",
            "other.log",
            "orders",
        ] {
            assert!(!name.names(not), "{not}");
        }
        let bare = LogFileName::of(Path::new("app")).unwrap();
        assert!(bare.names("app.1"), "a numbered copy of a bare name");
        assert_eq!(bare.directory, Path::new("."));
        assert!(bare.names("app") && bare.names("app.2026-11-21") && !bare.names("app.log"));
        assert_eq!(
            LogFileName::of(Path::new("logs/")),
            LogFileName::of(Path::new("logs"))
        );
    }

    #[test]
    fn rotated_copies_sort_before_the_file_they_came_from() {
        let mut files: Vec<PathBuf> = [
            "l/orders.log",
            "l/orders.log.1",
            "l/orders.log.10.gz",
            "l/orders.log.2.gz",
            "l/orders.log-20261120.gz",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        sort_by_age(&mut files);
        let names: Vec<_> = files.iter().map(|f| f.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "l/orders.log-20261120.gz",
                "l/orders.log.10.gz",
                "l/orders.log.2.gz",
                "l/orders.log.1",
                "l/orders.log"
            ]
        );
        let mut dated: Vec<PathBuf> = ["l/a.2026-11-21.log", "l/a.2026-11-20.log.gz"]
            .iter()
            .map(PathBuf::from)
            .collect();
        sort_by_age(&mut dated);
        assert_eq!(dated[0], Path::new("l/a.2026-11-20.log.gz"));
    }

    #[test]
    fn a_live_log_names_its_copies_and_a_copy_names_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "app.log",
            "app.log.1",
            "app.log.2.gz",
            "app.2026-11-20.log.gz",
            "other.log",
        ];
        for name in names {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let found = |path: &str| -> Vec<String> {
            log_files(dir.path().join(path))
                .unwrap()
                .iter()
                .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            found("app.log"),
            [
                "app.2026-11-20.log.gz",
                "app.log.2.gz",
                "app.log.1",
                "app.log"
            ]
        );
        for copy in ["app.log.1", "app.log.2.gz", "app.2026-11-20.log.gz"] {
            assert_eq!(found(copy), [copy]);
        }
    }
}
