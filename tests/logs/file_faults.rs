//! The JSON log file under faults: a full disk, its directory deleted while running, a pipe
//! whose reader never reads. No line is lost without being counted, and nothing is printed on
//! standard output.

use crate::support;
use unitel::{dropped_at, get_telemetry, DropReason, Output, Signal, TelemetryConfig};

/// Every line the log file output dropped, for any reason.
fn dropped_by_the_file() -> u64 {
    [
        DropReason::QueueFull,
        DropReason::WriteFailed,
        DropReason::ShutdownTimeout,
    ]
    .into_iter()
    .map(|reason| dropped_at(Output::LogFile, Signal::Logs, reason))
    .sum()
}

/// The complete lines in `text` that are log records with `message`.
fn records_with_message(text: &str, message: &str) -> u64 {
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .filter_map(|line| unitel::logfile::parse_line(line.trim_end()).ok())
        .filter(|record| record.as_log().is_some_and(|l| l.message == message))
        .count() as u64
}

/// Waits until `done` holds, for at most 10 s (the writer writes every 100 ms).
fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let started = std::time::Instant::now();
    while !done() {
        if started.elapsed() > std::time::Duration::from_secs(10) {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

/// Unmounts the file system mounted at its path when dropped.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_counts_every_line_it_could_not_write_and_says_so_once() {
    let name = "file_faults::a_full_disk_counts_every_line_it_could_not_write_and_says_so_once";
    if let Some((stdout, stderr)) = support::run_child_with_stderr(name, &[]) {
        if stdout.contains("SKIPPED") {
            return;
        }
        let said = stderr.matches("cannot write the JSON log file").count();
        assert_eq!(said, 1, "said once on stderr:\n{stderr}");
        assert!(stderr.contains("No space left on device"), "{stderr}");
        println!(
            "{}",
            support::marked(&stdout, "IN_FILE").unwrap_or_default()
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .output();
    match mounted {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            println!(
                "SKIPPED: cannot mount a 1 MiB tmpfs: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(error) => {
            println!("SKIPPED: cannot run mount: {error}");
            return;
        }
    }
    let _unmount = Mounted(dir.path().to_path_buf());
    let path = dir.path().join("app.log");
    let guard = unitel::configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_file(&path),
    )
    .expect("configure");
    let telemetry = get_telemetry("disk");
    let padding = "x".repeat(200);
    let total: u64 = 20_000; // about 5 MiB of lines for a 1 MiB disk
    for i in 0..total {
        telemetry.log_info_with("fill", &[("i", i.to_string()), ("pad", padding.clone())]);
    }
    let _ = guard.shutdown();
    let text = std::fs::read_to_string(&path).expect("read the log file");
    let in_file = records_with_message(&text, "fill");
    let failed = dropped_at(Output::LogFile, Signal::Logs, DropReason::WriteFailed);
    assert!(
        in_file > 0 && failed > 0,
        "{in_file} in the file, {failed} failed"
    );
    assert_eq!(
        in_file + dropped_by_the_file(),
        total,
        "{in_file} lines in the file, {failed} counted as write failures"
    );
    // No line was cut in half: the file reads back whole.
    assert_eq!(text.lines().count() as u64, in_file, "only whole records");
    println!("\nIN_FILE {in_file} WRITE_FAILED {failed}");
}

/// `/dev/full` fails every write with `No space left on device`, as a full disk does, and needs
/// neither root nor a mount: every line is counted as a write failure, and that is said once.
#[cfg(target_os = "linux")]
#[test]
fn a_device_whose_writes_all_fail_counts_every_line_and_says_so_once() {
    let name = "file_faults::a_device_whose_writes_all_fail_counts_every_line_and_says_so_once";
    if let Some((_, stderr)) = support::run_child_with_stderr(name, &[]) {
        support::assert_said_once(&stderr, "cannot write the JSON log file");
        assert!(stderr.contains("No space left on device"), "{stderr}");
        return;
    }
    let guard = unitel::configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_file("/dev/full"),
    )
    .expect("configure");
    let telemetry = get_telemetry("full");
    let total: u64 = 1_000;
    for i in 0..total {
        telemetry.log_info_with("full", &[("i", i)]);
    }
    let _ = guard.shutdown();
    let failed = dropped_at(Output::LogFile, Signal::Logs, DropReason::WriteFailed);
    assert_eq!(failed, total, "every line counted as a write failure");
    assert_eq!(dropped_by_the_file(), total, "and for no other reason");
}

#[test]
fn a_deleted_log_directory_or_a_renamed_file_is_created_again() {
    let name = "file_faults::a_deleted_log_directory_or_a_renamed_file_is_created_again";
    if let Some((_, stderr)) = support::run_child_with_stderr(name, &[]) {
        support::assert_said_once(&stderr, "was deleted or renamed away");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let path = logs.join("app.log");
    let guard = unitel::configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_file(&path),
    )
    .expect("configure");
    let telemetry = get_telemetry("deleted");
    let log = |message: &str| {
        for i in 0..100 {
            telemetry.log_info_with(message, &[("i", i)]);
        }
    };
    let in_file = |message: &str| {
        records_with_message(&std::fs::read_to_string(&path).unwrap_or_default(), message)
    };
    log("before");
    assert!(wait_for(|| in_file("before") == 100), "written");
    std::fs::remove_dir_all(&logs).expect("delete the log directory");
    log("after the directory was deleted");
    assert!(
        wait_for(|| in_file("after the directory was deleted") == 100),
        "the lines go to a new file at the same path: {} there",
        in_file("after the directory was deleted")
    );
    std::fs::rename(&path, logs.join("app.log.1")).expect("rename the log file");
    log("after the file was renamed");
    let _ = guard.shutdown();
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        records_with_message(&text, "after the file was renamed"),
        100,
        "the lines go to a new file at the configured path:\n{text}"
    );
    let renamed = std::fs::read_to_string(logs.join("app.log.1")).expect("the renamed file");
    assert_eq!(
        records_with_message(&renamed, "after the file was renamed"),
        0
    );
    assert_eq!(
        dropped_by_the_file(),
        0,
        "nothing was lost once the file was back"
    );
}

#[cfg(unix)]
#[test]
fn a_pipe_nobody_reads_counts_what_shutdown_left_unwritten_and_prints_nothing() {
    let name =
        "file_faults::a_pipe_nobody_reads_counts_what_shutdown_left_unwritten_and_prints_nothing";
    if let Some((stdout, stderr)) = support::run_child_with_stderr(name, &[]) {
        assert!(
            !stdout.contains("logging worker") && !stdout.contains("Failed to"),
            "nothing on stdout but the test's own lines:\n{stdout}"
        );
        // shutdown() returned what was lost, so nothing more is said.
        assert!(!stderr.contains("shutdown"), "{stderr}");
        println!(
            "{}",
            support::marked(&stdout, "WRITTEN").unwrap_or_default()
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("app.log");
    support::mkfifo(&fifo);
    let mut reader = support::fifo_reader(&fifo);
    let guard = unitel::configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_file(&fifo)
            .with_shutdown_timeout(std::time::Duration::from_millis(500)),
    )
    .expect("configure");
    let telemetry = get_telemetry("stalled");
    let padding = "x".repeat(400);
    let total: u64 = 5_000; // about 2.5 MiB: far more than the pipe holds, well within the queue
    for i in 0..total {
        telemetry.log_info_with("stall", &[("i", i.to_string()), ("pad", padding.clone())]);
    }
    // The file gives up a little before the shutdown timeout, so its count is in the error.
    let err = guard
        .shutdown()
        .expect_err("the stuck pipe loses lines")
        .to_string();
    let left = dropped_at(Output::LogFile, Signal::Logs, DropReason::ShutdownTimeout);
    assert!(left > 0, "nothing counted");
    assert!(
        err.contains(&format!("logs: {left} still queued for the log file")),
        "the shutdown error does not name the {left} lines: {err}"
    );
    // Only now is the pipe read: what is in it is what was written.
    let bytes = support::read_available(&mut reader);
    let written = records_with_message(&String::from_utf8_lossy(&bytes), "stall");
    assert!(written > 0, "{written} written, {left} left");
    assert_eq!(
        written + dropped_by_the_file(),
        total,
        "{written} lines written, {left} counted as left at shutdown"
    );
    println!("\nWRITTEN {written} SHUTDOWN_TIMEOUT {left}");
}

#[cfg(unix)]
#[test]
fn a_pipe_whose_reader_went_away_counts_lines_until_a_reader_is_back() {
    let name = "file_faults::a_pipe_whose_reader_went_away_counts_lines_until_a_reader_is_back";
    if let Some((_, stderr)) = support::run_child_with_stderr(name, &[]) {
        support::assert_said_once(&stderr, "cannot write the JSON log file");
        return;
    }
    use std::io::Read;
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("app.log");
    support::mkfifo(&fifo);
    // Reads what is in the pipe until it holds 100 lines of `message` (or 10 s passed).
    let read_100 = |reader: &mut std::fs::File, message: &str| {
        let mut bytes = Vec::new();
        wait_for(|| {
            let _ = reader.read_to_end(&mut bytes);
            records_with_message(&String::from_utf8_lossy(&bytes), message) >= 100
        });
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let failed = || dropped_at(Output::LogFile, Signal::Logs, DropReason::WriteFailed);
    let mut reader = support::fifo_reader(&fifo);
    let guard = unitel::configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_file(&fifo),
    )
    .expect("configure");
    let telemetry = get_telemetry("pipe");
    let log = |message: &str| {
        for i in 0..100 {
            telemetry.log_info_with(message, &[("i", i)]);
        }
    };
    log("first");
    assert_eq!(
        records_with_message(&read_100(&mut reader, "first"), "first"),
        100
    );
    drop(reader);
    log("while nobody reads");
    assert!(wait_for(|| failed() >= 100), "{} counted", failed());
    let mut reader = support::fifo_reader(&fifo);
    log("back");
    let text = read_100(&mut reader, "back");
    let _ = guard.shutdown();
    assert_eq!(
        records_with_message(&text, "back"),
        100,
        "a new reader gets the lines:\n{text}"
    );
    assert_eq!(failed(), 100, "the lines nobody could read are counted");
}
