//! The inputs: paths expanded into files (a log file with its rotated and gzip copies, a
//! directory with everything under it, `-` for standard input), read through
//! `unitel::logfile`, with malformed and over-long lines skipped and counted.

use super::Failure;
use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use unitel::logfile::{self, LineScan, Record};

/// One file to read, or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    pub(crate) fn name(&self) -> String {
        match self {
            Input::File(path) => path.display().to_string(),
            Input::Stdin => "standard input".into(),
        }
    }

    fn open(&self) -> std::io::Result<Box<dyn Read + Send>> {
        match self {
            Input::File(path) => logfile::open_log_file(path),
            Input::Stdin => logfile::decompressed(std::io::stdin()),
        }
    }
}

/// The files behind the command line's paths, each once, in the order given (a log's files
/// oldest first).
pub(crate) fn expand(paths: &[PathBuf]) -> Result<Vec<Input>, Failure> {
    let mut inputs = Vec::new();
    let mut seen = HashSet::new();
    for path in paths {
        if path.as_os_str() == "-" {
            if !inputs.contains(&Input::Stdin) {
                inputs.push(Input::Stdin);
            }
            continue;
        }
        let files = logfile::log_files(path)
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
        if files.is_empty() {
            return Err(Failure::Usage(format!(
                "no log files at {} (expected a log file, its directory, or `-`)",
                path.display()
            )));
        }
        for file in files {
            let key = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if seen.insert(key) {
                inputs.push(Input::File(file));
            }
        }
    }
    Ok(inputs)
}

/// Where a line is: its input, and its number among the lines read from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    pub(crate) input: usize,
    pub(crate) line: u64,
}

/// What reading went through, reported at the end.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) files: usize,
    pub(crate) malformed: u64,
    pub(crate) too_long: u64,
    /// The first malformed line: where, and why.
    pub(crate) first_malformed: Option<String>,
}

impl Tally {
    fn absorb(&mut self, other: Tally) {
        self.files += other.files;
        self.malformed += other.malformed;
        self.too_long += other.too_long;
        if self.first_malformed.is_none() {
            self.first_malformed = other.first_malformed;
        }
    }

    /// Counts a line that is not a record.
    pub(crate) fn malformed(&mut self, input: &Input, error: &unitel::Error) {
        self.malformed += 1;
        if self.first_malformed.is_none() {
            self.first_malformed = Some(format!("{}: {error}", input.name()));
        }
    }

    /// Says on standard error what was skipped, if anything.
    pub(crate) fn report(&self) {
        use std::io::Write as _;
        let s = |n: u64| if n == 1 { "" } else { "s" };
        let mut err = std::io::stderr().lock();
        if self.malformed > 0 {
            let _ = writeln!(
                err,
                "unitel: skipped {} malformed line{} (first: {})",
                self.malformed,
                s(self.malformed),
                self.first_malformed.as_deref().unwrap_or("?")
            );
        }
        if self.too_long > 0 {
            let _ = writeln!(
                err,
                "unitel: skipped {} line{} longer than {} MiB",
                self.too_long,
                s(self.too_long),
                logfile::MAX_LINE_BYTES >> 20
            );
        }
    }
}

/// Reads every input with `scan`, parsing each line it hands over, and folds the records
/// into one `T` per worker with `fold` (given where the line is, the record and its raw
/// line); the workers' `T`s come back with the tally.
///
/// One thread reads (the inputs one after the other, whole lines in blocks of about 1 MiB);
/// as many threads as there are cores parse the blocks, so one large file is parsed in
/// parallel as well as many small ones.
pub(crate) fn read<T: Send>(
    inputs: &[Input],
    scan: &LineScan,
    init: impl Fn() -> T + Sync,
    fold: impl Fn(&mut T, Position, Record, &[u8]) + Sync,
) -> Result<(Vec<T>, Tally), Failure> {
    /// Whole lines of one input, each followed by a newline.
    struct Block {
        input: usize,
        /// The number of the block's first line among the lines handed over.
        first: u64,
        lines: Vec<u8>,
    }
    const BLOCK: usize = 1 << 20;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (send, receive) = std::sync::mpsc::sync_channel::<Block>(workers * 2);
    let receive = Mutex::new(receive);
    std::thread::scope(|scope| {
        let parsers: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut state = init();
                    let mut tally = Tally::default();
                    loop {
                        let block = {
                            let receive = receive.lock().unwrap_or_else(|e| e.into_inner());
                            receive.recv()
                        };
                        let Ok(block) = block else { break };
                        let lines = block.lines.split(|&b| b == b'\n');
                        for (i, line) in lines.enumerate().filter(|(_, l)| !l.is_empty()) {
                            let at = Position {
                                input: block.input,
                                line: block.first + i as u64,
                            };
                            match logfile::parse_line(line) {
                                Ok(record) => fold(&mut state, at, record, line),
                                Err(e) => tally.malformed(&inputs[block.input], &e),
                            }
                        }
                    }
                    (state, tally)
                })
            })
            .collect();
        let mut tally = Tally::default();
        let mut failure = None;
        for (index, input) in inputs.iter().enumerate() {
            let reader = match input.open() {
                Ok(reader) => reader,
                Err(e) => {
                    failure = Some(Failure::Usage(format!("cannot read {}: {e}", input.name())));
                    break;
                }
            };
            tally.files += 1;
            let mut block = Vec::with_capacity(BLOCK + (64 << 10));
            let (mut first, mut count) = (0u64, 0u64);
            let summary = scan.run(reader, |line| {
                block.extend_from_slice(line);
                block.push(b'\n');
                count += 1;
                if block.len() >= BLOCK {
                    let lines =
                        std::mem::replace(&mut block, Vec::with_capacity(BLOCK + (64 << 10)));
                    let _ = send.send(Block {
                        input: index,
                        first,
                        lines,
                    });
                    first = count;
                }
            });
            if !block.is_empty() {
                let _ = send.send(Block {
                    input: index,
                    first,
                    lines: block,
                });
            }
            match summary {
                Ok(summary) => tally.too_long += summary.too_long,
                Err(e) => {
                    failure = Some(Failure::Usage(format!("cannot read {}: {e}", input.name())));
                    break;
                }
            }
        }
        drop(send);
        let mut states = Vec::with_capacity(workers);
        for parser in parsers {
            match parser.join() {
                Ok((state, t)) => {
                    states.push(state);
                    tally.absorb(t);
                }
                Err(_) => failure = Some(Failure::Usage("a parser thread failed".into())),
            }
        }
        match failure {
            Some(failure) => Err(failure),
            None => Ok((states, tally)),
        }
    })
}
