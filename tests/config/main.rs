//! Configuration rules: the `OTEL_*` variables and `RUST_LOG` read by the spec's rules, builder
//! calls winning over them, invalid values reported with the variable's name, and what
//! `configure_telemetry` does once, twice, or next to another subscriber.
//!
//! Every test that calls `configure_telemetry` runs its body in a child process of its own
//! (`support::in_parent`, `support::run_child`): telemetry is configured once per process, and
//! a test expecting an error whose configuration wrongly succeeds must fail alone, not leave
//! telemetry installed for the tests after it. Tests that only build a `TelemetryConfig` run
//! in this process.

#[path = "../support/mod.rs"]
mod support;

use std::path::Path;
use unitel::logfile::{LogRecord, SpanRecord};
use unitel::testing::PointValue;
use unitel::{configure_telemetry, get_telemetry, Error, Sampler, TelemetryConfig, TraceContext};

/// A sampled remote parent, as another service would send it.
const SAMPLED_PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Configures, expecting an error; called in a test's own child process, so a configuration
/// that wrongly succeeds fails that test only.
fn configure_err(config: TelemetryConfig) -> Error {
    match configure_telemetry(config) {
        Ok(guard) => {
            std::mem::forget(guard);
            panic!("configure_telemetry succeeded but should have failed")
        }
        Err(err) => err,
    }
}

/// Asserts `err` is `InvalidEnv` for `variable` with `value`; returns its message.
fn assert_invalid_env(err: &Error, variable: &str, value: &str) -> String {
    match err {
        Error::InvalidEnv {
            variable: v,
            value: found,
            accepted,
        } => {
            assert_eq!(*v, variable, "wrong variable named in {err:?}");
            assert_eq!(found, value, "wrong value reported in {err:?}");
            assert!(!accepted.is_empty(), "no accepted values in {err:?}");
        }
        other => panic!("expected InvalidEnv for {variable}={value:?}, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(variable),
        "message does not name {variable}: {message}"
    );
    assert!(
        message.contains(value),
        "message does not show the value {value:?}: {message}"
    );
    message
}

/// A config for a child process: environment read, console off, JSON log file in `dir`.
fn file_config(config: TelemetryConfig, dir: &Path) -> TelemetryConfig {
    config
        .with_console(false)
        .with_log_file(dir.join("app.log"))
}

fn log_records(dir: &Path) -> Vec<LogRecord> {
    support::read_records(dir)
        .into_iter()
        .filter_map(|r| r.as_log().cloned())
        .collect()
}

fn span_records(dir: &Path) -> Vec<SpanRecord> {
    support::read_records(dir)
        .into_iter()
        .filter_map(|r| r.as_span().cloned())
        .collect()
}

/// Finds the one log record whose message is `message`.
fn one_log<'a>(logs: &'a [LogRecord], message: &str) -> &'a LogRecord {
    exactly_one(logs, &format!("message={message:?}"), |l| {
        l.message == message
    })
}

/// Finds the one span record whose name is `name`.
fn one_span<'a>(spans: &'a [SpanRecord], name: &str) -> &'a SpanRecord {
    exactly_one(spans, &format!("name={name:?}"), |s| s.name == name)
}

/// The one record that matches, failing the test if there are none or several.
fn exactly_one<'a, T: std::fmt::Debug>(
    records: &'a [T],
    what: &str,
    matches: impl Fn(&T) -> bool,
) -> &'a T {
    let found: Vec<_> = records.iter().filter(|r| matches(r)).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one record with {what} in {records:#?}"
    );
    found[0]
}

/// An id read from the log file, as the hex string the facade hands out.
fn hex(id: Option<impl ToString>) -> Option<String> {
    id.map(|id| id.to_string())
}

// ----- invalid environment values: errors naming the variable (in-process) -----

#[test]
fn invalid_sampler_names_the_variable_and_the_accepted_values() {
    if support::in_parent(
        "invalid_sampler_names_the_variable_and_the_accepted_values",
        &[],
    ) {
        return;
    }
    let err = configure_err(TelemetryConfig::from_vars([(
        "OTEL_TRACES_SAMPLER",
        "sometimes",
    )]));
    let message = assert_invalid_env(&err, "OTEL_TRACES_SAMPLER", "sometimes");
    for accepted in [
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    ] {
        assert!(
            message.contains(accepted),
            "message does not list {accepted}: {message}"
        );
    }
}

#[test]
fn invalid_sampler_arg_names_the_variable() {
    if support::in_parent("invalid_sampler_arg_names_the_variable", &[]) {
        return;
    }
    for value in ["1.5", "abc", "-0.1", "NaN"] {
        let err = configure_err(TelemetryConfig::from_vars([
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", value),
        ]));
        let message = assert_invalid_env(&err, "OTEL_TRACES_SAMPLER_ARG", value);
        assert!(
            message.contains('0') && message.contains('1'),
            "message does not give the range: {message}"
        );
    }
}

#[test]
fn invalid_exemplar_filter_names_the_variable_and_what_is_accepted() {
    if support::in_parent(
        "invalid_exemplar_filter_names_the_variable_and_what_is_accepted",
        &[],
    ) {
        return;
    }
    for value in ["always_on", "sometimes"] {
        let err = configure_err(TelemetryConfig::from_vars([(
            "OTEL_METRICS_EXEMPLAR_FILTER",
            value,
        )]));
        let message = assert_invalid_env(&err, "OTEL_METRICS_EXEMPLAR_FILTER", value);
        assert!(
            message.contains("trace_based") && message.contains("always_off"),
            "message does not list what is accepted: {message}"
        );
    }
}

#[test]
fn invalid_sdk_disabled_names_the_variable() {
    if support::in_parent("invalid_sdk_disabled_names_the_variable", &[]) {
        return;
    }
    let err = configure_err(TelemetryConfig::from_vars([("OTEL_SDK_DISABLED", "maybe")]));
    let message = assert_invalid_env(&err, "OTEL_SDK_DISABLED", "maybe");
    assert!(
        message.contains("true") && message.contains("false"),
        "message does not list true/false: {message}"
    );
}

#[test]
fn invalid_resource_attributes_name_the_variable() {
    if support::in_parent("invalid_resource_attributes_name_the_variable", &[]) {
        return;
    }
    for value in ["novalue", "=x", "team=payments,novalue", "team=%G1"] {
        let err = configure_err(TelemetryConfig::from_vars([(
            "OTEL_RESOURCE_ATTRIBUTES",
            value,
        )]));
        assert_invalid_env(&err, "OTEL_RESOURCE_ATTRIBUTES", value);
    }
}

#[test]
fn invalid_rust_log_is_an_invalid_log_filter_naming_rust_log() {
    if support::in_parent(
        "invalid_rust_log_is_an_invalid_log_filter_naming_rust_log",
        &[],
    ) {
        return;
    }
    let err = configure_err(TelemetryConfig::from_vars([("RUST_LOG", "info,[[[")]));
    match &err {
        Error::InvalidLogFilter { setting, value, .. } => {
            assert_eq!(*setting, "RUST_LOG");
            assert_eq!(value, "info,[[[");
        }
        other => panic!("expected InvalidLogFilter, got {other:?}"),
    }
    assert!(std::error::Error::source(&err).is_some(), "no parser error");
    let message = err.to_string();
    assert!(message.contains("RUST_LOG"), "{message}");
    assert!(message.contains("info,[[["), "{message}");
}

#[test]
fn invalid_builder_log_filter_names_with_log_filter() {
    if support::in_parent("invalid_builder_log_filter_names_with_log_filter", &[]) {
        return;
    }
    let err = configure_err(TelemetryConfig::new().with_log_filter("info,[[["));
    match &err {
        Error::InvalidLogFilter { setting, value, .. } => {
            assert!(
                setting.contains("with_log_filter"),
                "setting does not name with_log_filter: {setting}"
            );
            assert_eq!(value, "info,[[[");
        }
        other => panic!("expected InvalidLogFilter, got {other:?}"),
    }
    assert!(err.to_string().contains("with_log_filter"), "{err}");
}

#[test]
fn out_of_range_builder_ratio_is_an_invalid_setting() {
    if support::in_parent("out_of_range_builder_ratio_is_an_invalid_setting", &[]) {
        return;
    }
    for sampler in [
        Sampler::TraceIdRatio(2.0),
        Sampler::TraceIdRatio(-0.5),
        Sampler::ParentBasedTraceIdRatio(1.01),
        Sampler::ParentBasedTraceIdRatio(f64::NAN),
    ] {
        let err = configure_err(TelemetryConfig::new().with_sampler(sampler));
        match &err {
            Error::InvalidSetting { setting, .. } => {
                assert!(setting.contains("with_sampler"), "{setting}")
            }
            other => panic!("expected InvalidSetting for {sampler:?}, got {other:?}"),
        }
        assert!(err.to_string().contains("with_sampler"), "{err}");
    }
}

#[test]
fn log_file_under_a_regular_file_is_a_log_file_error() {
    if support::in_parent("log_file_under_a_regular_file_is_a_log_file_error", &[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = configure_err(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_file(file.join("sub").join("app.log")),
    );
    match &err {
        Error::LogFile { directory, .. } => assert_eq!(directory, &file.join("sub")),
        other => panic!("expected LogFile, got {other:?}"),
    }
    assert!(std::error::Error::source(&err).is_some(), "no io error");
    let message = err.to_string();
    assert!(
        message.contains(&file.join("sub").display().to_string()),
        "message does not name the directory: {message}"
    );
    assert!(message.contains("with_log_file"), "{message}");
}

#[test]
fn log_file_without_a_file_name_is_a_log_file_error() {
    if support::in_parent("log_file_without_a_file_name_is_a_log_file_error", &[]) {
        return;
    }
    let err = configure_err(TelemetryConfig::new().with_console(false).with_log_file(""));
    assert!(matches!(err, Error::LogFile { .. }), "got {err:?}");
}

#[test]
fn the_first_invalid_variable_is_reported_even_with_builder_calls() {
    if support::in_parent(
        "the_first_invalid_variable_is_reported_even_with_builder_calls",
        &[],
    ) {
        return;
    }
    // An invalid value is not lost because other settings come from the builder.
    let err = configure_err(
        TelemetryConfig::from_vars([("OTEL_RESOURCE_ATTRIBUTES", "novalue")])
            .with_service_name("svc")
            .with_console(false),
    );
    assert_invalid_env(&err, "OTEL_RESOURCE_ATTRIBUTES", "novalue");
}

// ----- values that configure (child processes) -----

#[test]
fn empty_values_mean_unset() {
    if support::in_parent("empty_values_mean_unset", &[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = TelemetryConfig::from_vars([
        ("OTEL_TRACES_SAMPLER", ""),
        ("OTEL_TRACES_SAMPLER_ARG", ""),
        ("OTEL_SDK_DISABLED", ""),
        ("OTEL_RESOURCE_ATTRIBUTES", "  "),
        ("OTEL_SERVICE_NAME", ""),
        ("RUST_LOG", ""),
    ]);
    let guard = configure_telemetry(file_config(config, dir.path())).expect("configure");
    let telemetry = get_telemetry("empty");
    let trace_id = {
        // Default sampler (parentbased_always_on) and not disabled: a root span records.
        let span = telemetry.trace("root");
        assert!(span.is_recording(), "empty values must mean unset");
        // Default filter (info): an info log lands.
        telemetry.log_info("empty-env-log");
        span.trace_id().unwrap()
    };
    guard.shutdown().expect("shutdown");
    let logs = log_records(dir.path());
    let log = one_log(&logs, "empty-env-log");
    assert_eq!(hex(log.trace_id), Some(trace_id), "{log:#?}");
}

#[test]
fn valid_resource_attributes_configure() {
    if support::in_parent(
        "valid_resource_attributes_configure",
        &[(
            "OTEL_RESOURCE_ATTRIBUTES",
            " team = payments , region=eu%2Dwest,,note=a%2Cb%3Dc%20d%25,city=M%C3%BCnchen,\
             service.name=from-attrs ",
        )],
    ) {
        return;
    }
    use std::sync::Arc;
    use unitel::opentelemetry_sdk::metrics::data::ResourceMetrics;
    use unitel::opentelemetry_sdk::metrics::reader::MetricReader;
    use unitel::opentelemetry_sdk::metrics::ManualReader;

    let dir = tempfile::tempdir().unwrap();
    let reader = Arc::new(ManualReader::default());
    let guard = configure_telemetry(
        file_config(TelemetryConfig::from_env(), dir.path()).with_metric_reader(reader.clone()),
    )
    .expect("configure");
    let telemetry = get_telemetry("res");
    assert!(telemetry.trace("s").is_recording());
    telemetry.counter("res_total").add(1, ());
    // The resource every signal is exported with, as the SDK hands it to a metric reader.
    let mut metrics = ResourceMetrics::default();
    reader.collect(&mut metrics).expect("collect");
    let resource: std::collections::HashMap<String, String> = metrics
        .resource()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (key, value) in [
        ("team", "payments"),
        ("region", "eu-west"),
        ("note", "a,b=c d%"),
        ("city", "München"),
        ("service.name", "from-attrs"),
    ] {
        assert_eq!(
            resource.get(key).map(String::as_str),
            Some(value),
            "resource attribute {key} in {resource:#?}"
        );
    }
    guard.shutdown().expect("shutdown");
    // The log file names the service the attributes gave.
    let spans = span_records(dir.path());
    assert_eq!(one_span(&spans, "s").service.as_deref(), Some("from-attrs"));
}

/// Child body: configure from the environment, start a root span, check whether it records.
fn root_span_records() -> bool {
    let guard =
        configure_telemetry(TelemetryConfig::from_env().with_console(false)).expect("configure");
    let telemetry = get_telemetry("x");
    let recording = (0..20)
        .map(|i| telemetry.trace(format!("s{i}")).is_recording())
        .collect::<Vec<_>>();
    guard.shutdown().expect("shutdown");
    assert!(
        recording.iter().all(|r| *r == recording[0]),
        "sampling decisions differ: {recording:?}"
    );
    recording[0]
}

/// Child body: a span whose parent is a sampled remote context records.
fn child_of_sampled_parent_records() -> bool {
    let guard =
        configure_telemetry(TelemetryConfig::from_env().with_console(false)).expect("configure");
    let telemetry = get_telemetry("x");
    let root = telemetry.trace("root").is_recording();
    assert!(!root, "the root span must not record");
    let parent = TraceContext::from_traceparent(SAMPLED_PARENT).expect("valid traceparent");
    let child = telemetry.span("child").parent(&parent).start();
    let recording = child.is_recording();
    assert_eq!(
        child.trace_id().as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    drop(child);
    guard.shutdown().expect("shutdown");
    recording
}

#[test]
fn sampler_name_is_case_insensitive_always_off() {
    if support::in_parent(
        "sampler_name_is_case_insensitive_always_off",
        &[("OTEL_TRACES_SAMPLER", "ALWAYS_OFF")],
    ) {
        return;
    }
    assert!(!root_span_records(), "ALWAYS_OFF must record nothing");
}

#[test]
fn sampler_name_is_case_insensitive_always_on() {
    if support::in_parent(
        "sampler_name_is_case_insensitive_always_on",
        &[("OTEL_TRACES_SAMPLER", "Always_On")],
    ) {
        return;
    }
    assert!(root_span_records(), "Always_On must record");
}

#[test]
fn sampler_name_with_surrounding_spaces_is_accepted() {
    if support::in_parent(
        "sampler_name_with_surrounding_spaces_is_accepted",
        &[("OTEL_TRACES_SAMPLER", " always_off ")],
    ) {
        return;
    }
    assert!(!root_span_records());
}

#[test]
fn traceidratio_zero_records_nothing() {
    if support::in_parent(
        "traceidratio_zero_records_nothing",
        &[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ],
    ) {
        return;
    }
    assert!(
        !root_span_records(),
        "traceidratio with arg 0 must record nothing"
    );
}

#[test]
fn traceidratio_one_records_everything() {
    if support::in_parent(
        "traceidratio_one_records_everything",
        &[
            ("OTEL_TRACES_SAMPLER", "TraceIdRatio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.0"),
        ],
    ) {
        return;
    }
    assert!(
        root_span_records(),
        "traceidratio with arg 1 must record all"
    );
}

#[test]
fn parentbased_always_off_drops_roots_and_follows_a_sampled_parent() {
    if support::in_parent(
        "parentbased_always_off_drops_roots_and_follows_a_sampled_parent",
        &[("OTEL_TRACES_SAMPLER", "parentbased_always_off")],
    ) {
        return;
    }
    assert!(
        child_of_sampled_parent_records(),
        "a child of a sampled parent must record under parentbased_always_off"
    );
}

#[test]
fn parentbased_traceidratio_zero_drops_roots_and_follows_a_sampled_parent() {
    if support::in_parent(
        "parentbased_traceidratio_zero_drops_roots_and_follows_a_sampled_parent",
        &[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ],
    ) {
        return;
    }
    assert!(child_of_sampled_parent_records());
}

// ----- OTEL_SDK_DISABLED -----

#[test]
fn sdk_disabled_records_and_prints_nothing() {
    if let Some(stdout) = support::run_child(
        "sdk_disabled_records_and_prints_nothing",
        &[("OTEL_SDK_DISABLED", "TRUE")],
    ) {
        assert!(
            !stdout.contains("disabled-marker"),
            "disabled telemetry printed to stdout:\n{stdout}"
        );
        assert!(
            support::console_lines(&stdout).is_empty(),
            "disabled telemetry printed console lines:\n{stdout}"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Console left at its default (on): nothing may appear anyway.
    let guard =
        configure_telemetry(TelemetryConfig::from_env().with_log_file(dir.path().join("app.log")))
            .expect("configure with OTEL_SDK_DISABLED=TRUE returns Ok");
    let telemetry = get_telemetry("disabled");
    {
        let span = telemetry.trace("s");
        assert!(!span.is_recording(), "disabled: span records");
        assert_eq!(span.trace_id(), None);
        assert_eq!(unitel::current_trace_id(), None);
        assert_eq!(unitel::current_span_id(), None);
        telemetry.log_info("disabled-marker-log");
        telemetry.log_error("disabled-marker-error");
        tracing::info!("disabled-marker-event");
        tracing::error!("disabled-marker-event-error");
        telemetry.counter("c_total").add(1, ());
    }
    let _ = guard.shutdown();
    let path = dir.path().join("app.log");
    if path.exists() {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.trim().is_empty(),
            "disabled telemetry wrote to the log file:\n{text}"
        );
    }
}

#[test]
fn console_prints_correlated_lines_when_enabled() {
    // The counterpart of `sdk_disabled_records_and_prints_nothing`: the same calls with
    // telemetry on do reach the child's stdout.
    if let Some(stdout) = support::run_child("console_prints_correlated_lines_when_enabled", &[]) {
        let lines = support::console_lines(&stdout);
        for marker in ["enabled-marker-log", "enabled-marker-event"] {
            let line = lines
                .iter()
                .find(|l| l.contains(marker))
                .unwrap_or_else(|| panic!("no console line with {marker}:\n{stdout}"));
            assert!(line.contains("[trace:"), "{line}");
        }
        return;
    }
    let guard = configure_telemetry(TelemetryConfig::from_env()).expect("configure");
    let telemetry = get_telemetry("enabled");
    {
        let _span = telemetry.trace("s");
        telemetry.log_info("enabled-marker-log");
        tracing::info!("enabled-marker-event");
    }
    guard.shutdown().expect("shutdown");
}

// ----- builder calls win over the environment -----

#[test]
fn builder_sampler_and_service_name_win_over_env() {
    if support::in_parent(
        "builder_sampler_and_service_name_win_over_env",
        &[
            ("OTEL_SERVICE_NAME", "from-env"),
            ("OTEL_TRACES_SAMPLER", "always_off"),
        ],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = configure_telemetry(file_config(
        TelemetryConfig::from_env()
            .with_service_name("from-builder")
            .with_sampler(Sampler::AlwaysOn),
        dir.path(),
    ))
    .expect("configure");
    let telemetry = get_telemetry("builder");
    let trace_id = {
        let span = telemetry.trace("explicit");
        assert!(
            span.is_recording(),
            "with_sampler(AlwaysOn) must win over OTEL_TRACES_SAMPLER=always_off"
        );
        telemetry.log_info("builder-wins");
        span.trace_id().unwrap()
    };
    guard.shutdown().expect("shutdown");
    let spans = span_records(dir.path());
    let span = one_span(&spans, "explicit");
    assert_eq!(span.trace_id.to_string(), trace_id, "{span:#?}");
    let logs = log_records(dir.path());
    let log = one_log(&logs, "builder-wins");
    assert_eq!(hex(log.trace_id), Some(trace_id), "{log:#?}");
}

#[test]
fn builder_enable_wins_over_env_disabled() {
    if support::in_parent(
        "builder_enable_wins_over_env_disabled",
        &[("OTEL_SDK_DISABLED", "true")],
    ) {
        return;
    }
    let guard = configure_telemetry(
        TelemetryConfig::from_env()
            .with_disabled(false)
            .with_console(false),
    )
    .expect("configure");
    let span = get_telemetry("x").trace("s");
    assert!(
        span.is_recording(),
        "with_disabled(false) must win over OTEL_SDK_DISABLED=true"
    );
    assert_eq!(unitel::current_trace_id(), span.trace_id());
    drop(span);
    guard.shutdown().expect("shutdown");
}

#[test]
fn builder_disable_wins_over_env_enabled() {
    if support::in_parent(
        "builder_disable_wins_over_env_enabled",
        &[("OTEL_SDK_DISABLED", "false")],
    ) {
        return;
    }
    let guard = configure_telemetry(
        TelemetryConfig::from_env()
            .with_disabled(true)
            .with_console(false),
    )
    .expect("configure");
    assert!(!get_telemetry("x").trace("s").is_recording());
    let _ = guard.shutdown();
}

#[test]
fn rust_log_filters_logs() {
    if support::in_parent("rust_log_filters_logs", &[("RUST_LOG", "error")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = configure_telemetry(file_config(TelemetryConfig::from_env(), dir.path()))
        .expect("configure");
    let telemetry = get_telemetry("filtered");
    telemetry.log_info("info-dropped");
    telemetry.log_error("error-kept");
    tracing::info!("event-info-dropped");
    tracing::error!("event-error-kept");
    guard.shutdown().expect("shutdown");
    let messages: Vec<String> = log_records(dir.path())
        .iter()
        .map(|log| log.message.clone())
        .collect();
    assert!(messages.contains(&"error-kept".to_owned()), "{messages:?}");
    assert!(
        messages.contains(&"event-error-kept".to_owned()),
        "{messages:?}"
    );
    assert!(
        !messages.contains(&"info-dropped".to_owned()),
        "{messages:?}"
    );
    assert!(
        !messages.contains(&"event-info-dropped".to_owned()),
        "{messages:?}"
    );
}

#[test]
fn builder_log_filter_wins_over_rust_log() {
    if support::in_parent(
        "builder_log_filter_wins_over_rust_log",
        &[("RUST_LOG", "error")],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = configure_telemetry(file_config(
        TelemetryConfig::from_env().with_log_filter("info"),
        dir.path(),
    ))
    .expect("configure");
    let telemetry = get_telemetry("filtered");
    telemetry.log_info("info-kept");
    tracing::info!("event-info-kept");
    telemetry.log_debug("debug-dropped");
    guard.shutdown().expect("shutdown");
    let logs = log_records(dir.path());
    one_log(&logs, "info-kept");
    one_log(&logs, "event-info-kept");
    assert!(
        logs.iter().all(|log| log.message != "debug-dropped"),
        "{logs:#?}"
    );
}

#[test]
fn builder_log_filter_wins_over_invalid_rust_log() {
    if support::in_parent(
        "builder_log_filter_wins_over_invalid_rust_log",
        &[("RUST_LOG", "info,[[[")],
    ) {
        return;
    }
    let guard = configure_telemetry(
        TelemetryConfig::from_env()
            .with_log_filter("info")
            .with_console(false),
    )
    .expect("a valid with_log_filter must win over an invalid RUST_LOG");
    guard.shutdown().expect("shutdown");
}

// ----- configuring once -----

#[test]
fn configuring_twice_is_already_configured() {
    if support::in_parent("configuring_twice_is_already_configured", &[]) {
        return;
    }
    let guard = configure_telemetry(TelemetryConfig::new().with_console(false)).expect("first");
    let second = configure_telemetry(TelemetryConfig::new().with_console(false));
    assert!(
        matches!(second, Err(Error::AlreadyConfigured)),
        "second configure: {second:?}"
    );
    // The refused second call leaves the first configuration working.
    assert!(
        get_telemetry("x").trace("s").is_recording(),
        "first config still works"
    );
    // Shutting down does not allow configuring again.
    guard.shutdown().expect("shutdown");
    let third = configure_telemetry(TelemetryConfig::new().with_console(false));
    assert!(matches!(third, Err(Error::AlreadyConfigured)), "{third:?}");
}

#[test]
fn another_global_subscriber_is_subscriber_already_set() {
    if support::in_parent("another_global_subscriber_is_subscriber_already_set", &[]) {
        return;
    }
    tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default())
        .expect("first global subscriber");
    let result = configure_telemetry(TelemetryConfig::new().with_console(false));
    match &result {
        Err(err @ Error::SubscriberAlreadySet(_)) => {
            assert!(err.to_string().contains("subscriber"), "{err}");
        }
        other => panic!("expected SubscriberAlreadySet, got {other:?}"),
    }
    // The failed configuration installed nothing.
    assert!(!get_telemetry("x").trace("s").is_recording());
    assert_eq!(unitel::current_trace_id(), None);
}

#[test]
fn a_failed_configuration_installs_nothing_and_can_be_corrected() {
    if support::in_parent(
        "a_failed_configuration_installs_nothing_and_can_be_corrected",
        &[("OTEL_TRACES_SAMPLER", "sometimes")],
    ) {
        return;
    }
    let err = configure_telemetry(TelemetryConfig::from_env().with_console(false)).unwrap_err();
    assert_invalid_env(&err, "OTEL_TRACES_SAMPLER", "sometimes");
    assert!(!get_telemetry("x").trace("s").is_recording());
    let err = configure_telemetry(TelemetryConfig::new().with_log_filter("[[[")).unwrap_err();
    assert!(matches!(err, Error::InvalidLogFilter { .. }), "{err:?}");
    let guard = configure_telemetry(TelemetryConfig::new().with_console(false))
        .expect("a corrected configuration succeeds after failed ones");
    assert!(get_telemetry("x").trace("s").is_recording());
    guard.shutdown().expect("shutdown");
}

// ----- handles and instruments made before configuration -----

#[test]
fn handles_taken_before_configure_work_after_it() {
    if support::in_parent("handles_taken_before_configure_work_after_it", &[]) {
        return;
    }
    let telemetry = get_telemetry("early");
    let counter = telemetry.counter("early_total");
    let histogram = telemetry.histogram("early_ms");
    let _gauge = telemetry.observable_gauge("early_gauge", |g| g.observe(1.0, ()));
    // Before configuration: inert, no panic.
    {
        let span = telemetry.trace("before");
        assert!(!span.is_recording());
        telemetry.log_info("before-configure");
        counter.add(1, ());
        histogram.record(1.0, ());
    }

    let dir = tempfile::tempdir().unwrap();
    let guard =
        configure_telemetry(file_config(TelemetryConfig::new(), dir.path())).expect("configure");
    let (trace_id, span_id) = {
        let span = telemetry.trace("after");
        assert!(
            span.is_recording(),
            "a handle taken before configure must record after it"
        );
        telemetry.log_info("hello");
        counter.add(2, &[("k", "v")]);
        histogram.record(3.5, ());
        (span.trace_id().unwrap(), span.span_id().unwrap())
    };
    guard.shutdown().expect("shutdown");

    let logs = log_records(dir.path());
    let hello = one_log(&logs, "hello");
    assert_eq!(hex(hello.trace_id), Some(trace_id.clone()), "{hello:#?}");
    assert_eq!(hex(hello.span_id), Some(span_id.clone()), "{hello:#?}");
    assert_eq!(hello.component, "early");
    assert!(
        logs.iter().all(|log| log.message != "before-configure"),
        "a log made before configure was written: {logs:#?}"
    );
    let spans = span_records(dir.path());
    let after = one_span(&spans, "after");
    assert_eq!(after.trace_id.to_string(), trace_id, "{after:#?}");
    assert_eq!(after.span_id.to_string(), span_id, "{after:#?}");
    assert!(spans.iter().all(|s| s.name != "before"), "{spans:#?}");
}

#[test]
fn instruments_taken_before_the_pipeline_report_values() {
    if support::in_parent("instruments_taken_before_the_pipeline_report_values", &[]) {
        return;
    }
    let telemetry = get_telemetry("early");
    let counter = telemetry.counter("early_total");
    let histogram = telemetry.histogram("early_ms");
    let _gauge = telemetry.observable_gauge("early_gauge", |g| g.observe(7.5, ()));
    // Before the pipeline exists these are dropped.
    counter.add(100, ());
    histogram.record(100.0, ());

    let capture = unitel::testing::capture();
    counter.add(3, ());
    counter.add(2, ());
    histogram.record(4.0, ());
    assert_eq!(capture.counter("early", "early_total", &[]), Some(5));
    assert_eq!(
        capture.point("early", "early_gauge", &[]),
        Some(PointValue::Gauge(7.5)),
        "an observable gauge made before configuration must be collected"
    );
    match capture.point("early", "early_ms", &[]) {
        Some(PointValue::Histogram { count, sum, .. }) => {
            assert_eq!(count, 1);
            assert_eq!(sum, 4.0);
        }
        other => panic!("histogram point: {other:?}"),
    }
    // The same component name later gives the same, working instruments.
    get_telemetry("early").counter("early_total").add(1, ());
    assert_eq!(capture.counter("early", "early_total", &[]), Some(6));
}

#[test]
fn rotation_without_a_log_file_names_the_missing_setting() {
    if support::in_parent("rotation_without_a_log_file_names_the_missing_setting", &[]) {
        return;
    }
    let err = configure_err(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_rotation(unitel::LogRotation::Daily),
    );
    match &err {
        Error::InvalidSetting { setting, .. } => assert!(setting.contains("with_log_rotation")),
        other => panic!("got {other:?}"),
    }
    assert!(err.to_string().contains("with_log_file"), "{err}");
}

// ----- export variables -----

#[test]
fn invalid_export_variables_name_the_variable() {
    if support::in_parent("invalid_export_variables_name_the_variable", &[]) {
        return;
    }
    for (variable, value, accepted_hint) in [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "websocket", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "HTTP/2", "grpc"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317", "http://"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://", "http://"),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "http://host:99999",
            "http://",
        ),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", "milliseconds"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli", "gzip"),
        ("OTEL_TRACES_EXPORTER", "jaeger", "otlp"),
        ("OTEL_TRACES_EXPORTER", "prometheus", "otlp"),
        ("OTEL_LOGS_EXPORTER", "otlp,loki", "console"),
        ("OTEL_METRICS_EXPORTER", "statsd", "prometheus"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "0", "greater than 0"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "-1", "greater than 0"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "1s", "milliseconds"),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", "http", "port"),
    ] {
        let err =
            configure_err(TelemetryConfig::from_vars([(variable, value)]).with_console(false));
        let message = assert_invalid_env(&err, variable, value);
        assert!(message.contains(accepted_hint), "{variable}: {message}");
    }
}

#[test]
fn export_enum_values_are_case_insensitive_and_empty_means_unset() {
    // Each variable on its own, so an error in one cannot hide another that was never parsed;
    // the parsed value must show in the configuration (an accepted value that was thrown away
    // would leave it as without the variable).
    let unset = format!("{:?}", TelemetryConfig::from_vars([("UNRELATED", "x")]));
    for (variable, value, parsed) in [
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "GRPC",
            "protocol: Some(Grpc)",
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            " Http/Protobuf ",
            "protocol: Some(HttpProtobuf)",
        ),
        (
            "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
            "HTTP/JSON",
            "protocol: Some(HttpJson)",
        ),
        (
            "OTEL_EXPORTER_OTLP_COMPRESSION",
            "Gzip",
            "compression: Some(Gzip)",
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
            "NONE",
            "compression: Some(None)",
        ),
        (
            "OTEL_TRACES_EXPORTER",
            "OTLP,Console",
            "traces_exporter: Some([Otlp, Console])",
        ),
        (
            "OTEL_METRICS_EXPORTER",
            "Prometheus",
            "metrics_exporter: Some([Prometheus])",
        ),
        ("OTEL_LOGS_EXPORTER", "None", "logs_exporter: Some([None])"),
    ] {
        let config = format!("{:?}", TelemetryConfig::from_vars([(variable, value)]));
        assert!(
            config.contains("env_error: None"),
            "{variable}={value:?} was rejected: {config}"
        );
        assert!(
            config.contains(parsed),
            "{variable}={value:?} did not give {parsed}: {config}"
        );
        assert_ne!(config, unset, "{variable}={value:?} was not taken");
    }
    for variable in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_TRACES_EXPORTER",
        "OTEL_METRICS_EXPORTER",
    ] {
        for empty in ["", "  "] {
            let config = format!("{:?}", TelemetryConfig::from_vars([(variable, empty)]));
            assert_eq!(config, unset, "{variable}={empty:?} must mean unset");
        }
    }
}

#[test]
fn header_values_never_appear_in_errors_or_debug_output() {
    if support::in_parent("header_values_never_appear_in_errors_or_debug_output", &[]) {
        return;
    }
    let secret = "topsecret-4711";
    let config = TelemetryConfig::from_vars([(
        "OTEL_EXPORTER_OTLP_HEADERS",
        "authorization=Bearer%20topsecret-4711,x-tenant=acme",
    )])
    .with_otlp(unitel::OtlpSettings::new().with_header("api-key", secret));
    let debug = format!("{config:?}");
    assert!(!debug.contains(secret), "{debug}");
    assert!(debug.contains("api-key"), "header names are shown: {debug}");

    // A malformed header variable is reported without echoing its value.
    let err = configure_err(
        TelemetryConfig::from_vars([("OTEL_EXPORTER_OTLP_HEADERS", "topsecret-4711")])
            .with_console(false),
    );
    assert!(
        matches!(
            &err,
            Error::InvalidEnv {
                variable: "OTEL_EXPORTER_OTLP_HEADERS",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains(secret), "{err}");
    assert!(!format!("{err:?}").contains(secret), "{err:?}");
}

#[test]
fn endpoint_credentials_never_appear_in_errors() {
    if support::in_parent("endpoint_credentials_never_appear_in_errors", &[]) {
        return;
    }
    let err = configure_err(
        TelemetryConfig::from_vars([(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://admin:hunter2@collector:notaport",
        )])
        .with_console(false),
    );
    assert!(
        matches!(
            &err,
            Error::InvalidEnv {
                variable: "OTEL_EXPORTER_OTLP_ENDPOINT",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err}");
}

// ----- robustness (issue 12) -----

/// Runs test `name` in a child process (as `support::child` does) with one more variable whose
/// name and value are raw bytes, which `support::child` cannot pass.
fn child_with_os_var(name: &str, key: &[u8], value: &[u8]) -> std::process::Output {
    use std::os::unix::ffi::OsStrExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("UNITEL_CHILD", name)
        .env_remove("RUST_LOG")
        .env_remove("OTEL_SERVICE_NAME")
        .env(
            std::ffi::OsStr::from_bytes(key),
            std::ffi::OsStr::from_bytes(value),
        )
        .output()
        .expect("spawn child");
    let stdout = support::assert_ok(&out);
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "child {name} did not run exactly one test:\n{stdout}"
    );
    out
}

#[test]
fn non_utf8_unrelated_variable_is_ignored_by_from_env() {
    const NAME: &str = "non_utf8_unrelated_variable_is_ignored_by_from_env";
    if std::env::var("UNITEL_CHILD").as_deref() != Ok(NAME) {
        child_with_os_var(NAME, b"UNITEL_TEST_JUNK", b"caf\xe9 \xff");
        child_with_os_var(NAME, b"UNITEL_\xffJUNK", b"x");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = configure_telemetry(file_config(TelemetryConfig::from_env(), dir.path()))
        .expect("an unrelated non-UTF-8 variable must not matter");
    get_telemetry("utf8").log_info("still-logged");
    guard.shutdown().expect("shutdown");
    one_log(&log_records(dir.path()), "still-logged");
}

#[test]
fn non_utf8_value_of_a_variable_read_is_invalid_env_naming_it() {
    const NAME: &str = "non_utf8_value_of_a_variable_read_is_invalid_env_naming_it";
    if std::env::var("UNITEL_CHILD").as_deref() != Ok(NAME) {
        child_with_os_var(NAME, b"OTEL_SERVICE_NAME", b"caf\xe9");
        child_with_os_var(NAME, b"RUST_LOG", b"\xffinfo");
        return;
    }
    let err = configure_err(TelemetryConfig::from_env().with_console(false));
    match &err {
        Error::InvalidEnv {
            variable, accepted, ..
        } => {
            assert!(
                ["OTEL_SERVICE_NAME", "RUST_LOG"].contains(variable),
                "{err:?}"
            );
            assert!(accepted.contains("UTF-8"), "{err:?}");
            assert!(err.to_string().contains(variable), "{err}");
        }
        other => panic!("expected InvalidEnv, got {other:?}"),
    }
}

#[test]
fn prometheus_host_accepts_localhost_and_host_names() {
    if support::in_parent(
        "prometheus_host_accepts_localhost_and_host_names",
        &[
            ("OTEL_METRICS_EXPORTER", "prometheus"),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "localhost"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "0"),
        ],
    ) {
        return;
    }
    for host in ["LOCALHOST", "[::1]", "::1", "127.0.0.1"] {
        let config = TelemetryConfig::from_vars([("OTEL_EXPORTER_PROMETHEUS_HOST", host)]);
        assert!(
            format!("{config:?}").contains("env_error: None"),
            "{host}: {config:?}"
        );
    }
    let guard = configure_telemetry(TelemetryConfig::from_env().with_console(false))
        .expect("OTEL_EXPORTER_PROMETHEUS_HOST=localhost must configure");
    let addr = guard.prometheus_addr().expect("a /metrics endpoint");
    assert_eq!(addr.ip(), std::net::Ipv4Addr::LOCALHOST, "{addr}");
    guard.shutdown().expect("shutdown");
}

#[test]
fn unresolvable_prometheus_host_names_the_variable() {
    if support::in_parent("unresolvable_prometheus_host_names_the_variable", &[]) {
        return;
    }
    let err = configure_err(
        TelemetryConfig::from_vars([
            ("OTEL_METRICS_EXPORTER", "prometheus"),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "no-such-host.invalid"),
        ])
        .with_console(false),
    );
    let message = assert_invalid_env(
        &err,
        "OTEL_EXPORTER_PROMETHEUS_HOST",
        "no-such-host.invalid",
    );
    assert!(message.contains("localhost"), "{message}");
}

#[test]
fn sampler_arg_is_ignored_by_samplers_without_an_argument() {
    if support::in_parent(
        "sampler_arg_is_ignored_by_samplers_without_an_argument",
        &[
            ("OTEL_TRACES_SAMPLER", "always_off"),
            ("OTEL_TRACES_SAMPLER_ARG", "abc"),
        ],
    ) {
        return;
    }
    for sampler in [
        "always_on",
        "parentbased_always_on",
        "parentbased_always_off",
    ] {
        let config = TelemetryConfig::from_vars([
            ("OTEL_TRACES_SAMPLER", sampler),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ]);
        assert!(
            format!("{config:?}").contains("env_error: None"),
            "{sampler}: {config:?}"
        );
    }
    let guard = configure_telemetry(TelemetryConfig::from_env().with_console(false))
        .expect("an invalid OTEL_TRACES_SAMPLER_ARG next to always_off is ignored");
    assert!(!get_telemetry("sampled").trace("root").is_recording());
    guard.shutdown().expect("shutdown");
}

#[test]
fn rust_log_is_trimmed() {
    if support::in_parent(
        "rust_log_is_trimmed",
        &[("RUST_LOG", "  warn , filtered=debug ")],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guard = configure_telemetry(file_config(TelemetryConfig::from_env(), dir.path()))
        .expect("configure");
    get_telemetry("filtered").log_debug("debug-kept");
    get_telemetry("other").log_warning("warn-kept");
    get_telemetry("other").log_info("info-dropped");
    guard.shutdown().expect("shutdown");
    let logs = log_records(dir.path());
    one_log(&logs, "debug-kept");
    one_log(&logs, "warn-kept");
    assert!(
        !logs.iter().any(|l| l.message == "info-dropped"),
        "{logs:#?}"
    );
}

#[test]
fn a_bare_word_that_is_not_a_level_is_an_invalid_log_filter() {
    if support::in_parent(
        "a_bare_word_that_is_not_a_level_is_an_invalid_log_filter",
        &[],
    ) {
        return;
    }
    for value in ["garbage", "info,garbage", "inf"] {
        for (config, setting) in [
            (
                TelemetryConfig::from_vars([("RUST_LOG", value)]),
                "RUST_LOG",
            ),
            (
                TelemetryConfig::new().with_log_filter(value),
                "TelemetryConfig::with_log_filter",
            ),
        ] {
            let err = configure_err(config.with_console(false));
            match &err {
                Error::InvalidLogFilter {
                    setting: s,
                    value: v,
                    ..
                } => {
                    assert_eq!(*s, setting);
                    assert_eq!(v, value);
                }
                other => panic!("{setting}={value:?}: expected InvalidLogFilter, got {other:?}"),
            }
            let mut chain = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(s) = source {
                chain.push_str(&format!(": {s}"));
                source = s.source();
            }
            assert!(chain.contains(setting), "{chain}");
            assert!(
                chain.contains("debug") && chain.contains('='),
                "no accepted forms: {chain}"
            );
        }
    }
}

#[test]
fn levels_targets_and_paths_are_accepted_log_filters() {
    if support::in_parent("levels_targets_and_paths_are_accepted_log_filters", &[]) {
        return;
    }
    // Only one configure per process: check the parser through one that combines every form.
    let guard = configure_telemetry(
        TelemetryConfig::new()
            .with_console(false)
            .with_log_filter(" WARN ,3, my_crate=debug, my_crate::db ,[span]=trace,off"),
    )
    .expect("levels, target=level, crate paths and span filters are accepted");
    guard.shutdown().expect("shutdown");
}

#[test]
fn debug_of_a_handle_and_an_instrument_in_use_is_short() {
    if support::in_parent("debug_of_a_handle_and_an_instrument_in_use_is_short", &[]) {
        return;
    }
    let guard = configure_telemetry(TelemetryConfig::new().with_console(false)).expect("configure");
    let telemetry = get_telemetry("x");
    let counter = telemetry.counter("c");
    counter.add(1, &[("k", "v")]);
    let histogram = telemetry.histogram("h");
    histogram.record(1.0, &[("k", "v")]);
    let bound = counter.bind(&[("k", "v")]);
    bound.add(1);
    let updown = telemetry.up_down_counter("u");
    updown.add(-1, &[("k", "v")]);
    let gauge = telemetry.gauge("g");
    gauge.set(1.0, &[("k", "v")]);
    let observable = telemetry.observable_gauge("o", |observer| observer.observe(1.0, ()));
    for debug in [
        format!("{telemetry:?}"),
        format!("{counter:?}"),
        format!("{histogram:?}"),
        format!("{:?}", counter.bind(&[("k", "v")])),
        format!("{bound:?}"),
        format!("{updown:?}"),
        format!("{gauge:?}"),
        format!("{observable:?}"),
    ] {
        assert!(debug.len() < 400, "Debug prints the object graph: {debug}");
    }
    assert!(format!("{counter:?}").contains("\"c\""), "{counter:?}");
    guard.shutdown().expect("shutdown");
}

// ----- a default service name the environment can override -----

/// `with_default_service_name` names the service only when the environment does not:
/// `OTEL_SERVICE_NAME` and `service.name` in `OTEL_RESOURCE_ATTRIBUTES` win over it, and
/// `with_service_name` wins over all of them.
#[test]
fn the_default_service_name_yields_to_the_environment() {
    const NAME: &str = "the_default_service_name_yields_to_the_environment";
    if std::env::var("UNITEL_CHILD").as_deref() == Ok(NAME) {
        let explicit = std::env::var("TEST_EXPLICIT_NAME").ok();
        let mut config = TelemetryConfig::from_env().with_default_service_name("fallback");
        if let Some(name) = explicit {
            config = config.with_service_name(name);
        }
        let guard = configure_telemetry(file_config(config, Path::new("."))).expect("configure");
        get_telemetry("naming").log_info("named");
        guard.shutdown().expect("shutdown");
        return;
    }
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "fallback"),
        (&[("OTEL_SERVICE_NAME", "from-env")], "from-env"),
        (
            &[("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,team=a")],
            "from-attrs",
        ),
        (
            &[
                ("OTEL_SERVICE_NAME", "from-env"),
                ("TEST_EXPLICIT_NAME", "from-builder"),
            ],
            "from-builder",
        ),
    ];
    for (env, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = support::child_in(NAME, env, dir.path()).expect("parent");
        support::assert_ok(&out);
        let logs = log_records(dir.path());
        let log = one_log(&logs, "named");
        assert_eq!(log.service.as_deref(), Some(want), "{env:?}: {log:#?}");
    }
}
