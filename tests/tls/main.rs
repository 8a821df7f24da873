//! OTLP over TLS to the real collector (rotel) behind a real TLS-terminating proxy (stunnel),
//! with a CA and certificates the tests make: http/protobuf, http/json and grpc deliver with a
//! private CA, from the environment or the builder; a wrong CA and a refused client
//! certificate fail as certificate problems without taking the application down; mutual TLS
//! delivers; a bad TLS file is a start-up error naming its setting.
//!
//! `configure_telemetry` runs once per process, so each test runs its body in a child process
//! (tests/support) and asserts on the child's output and on what rotel received.

mod pki;
#[path = "../otlp/rotel.rs"]
mod rotel;
mod stunnel;
#[path = "../support/mod.rs"]
mod support;

use pki::Pki;
use rotel::Rotel;
use std::path::Path;
use std::process::Output;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use stunnel::Stunnel;
use unitel::{
    configure_telemetry, dropped, get_telemetry, BatchSettings, DropReason, OtlpProtocol,
    OtlpSettings, Signal, TelemetryConfig,
};

/// The children share one collector; they run one at a time so that none slows another.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const WAIT: Duration = Duration::from_secs(20);

/// What the crate's diagnostics add to a failed export's report when the collector's
/// certificate is signed by a CA the client does not trust.
const UNTRUSTED: &str =
    "TLS certificate problem: the collector's certificate is not signed by a trusted CA";
/// ... and when the collector refuses a client without a certificate (mutual TLS). The client
/// sees either the collector's alert ("the collector refused the handshake; it may require...")
/// or, with TLS 1.3, often only the connection closed under its request ("the collector closed
/// the connection as the request was sent: if the endpoint uses TLS, it may require..."): the
/// advice is the same.
const REFUSED: &str = "it may require a client certificate (mutual TLS: \
     OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY)";

fn path(p: &Path) -> String {
    p.display().to_string()
}

// ----- fixture -----

/// Certificates in a temporary directory and, for the tests that export, stunnel in front of
/// rotel.
struct Fixture {
    // Fields drop in order: stunnel stops before its files go.
    proxy: Option<Stunnel>,
    pki: Pki,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn certificates() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::create(dir.path());
        Fixture {
            proxy: None,
            pki,
            dir,
        }
    }

    fn proxied() -> Fixture {
        let mut fixture = Fixture::certificates();
        fixture.proxy = Some(Stunnel::start(
            fixture.dir.path(),
            &fixture.pki,
            Rotel::get(),
        ));
        fixture
    }

    fn proxy(&self) -> &Stunnel {
        self.proxy.as_ref().expect("a fixture with stunnel")
    }

    /// The variables for OTLP to `endpoint` over `protocol`, trusting `ca`.
    fn otlp(&self, endpoint: String, protocol: &str, ca: &Path) -> Vec<(&'static str, String)> {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", path(ca)),
        ]
    }

    /// [`otlp`](Self::otlp) plus this client's certificate and key.
    fn mutual(&self, endpoint: String, protocol: &str) -> Vec<(&'static str, String)> {
        let mut env = self.otlp(endpoint, protocol, &self.pki.ca);
        env.push((
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            path(&self.pki.client_cert),
        ));
        env.push(("OTEL_EXPORTER_OTLP_CLIENT_KEY", path(&self.pki.client_key)));
        env
    }
}

// ----- parent and child -----

/// In the parent: runs test `name` in a child with `env`, a service name of its own and quick
/// batches; returns the service name and the child's output. In the child: `None`.
fn run(name: &str, env: &[(&'static str, String)]) -> Option<(String, Output)> {
    if std::env::var("UNITEL_CHILD").as_deref() == Ok(name) {
        return None;
    }
    let service = support::unique(name);
    let mut all: Vec<(&str, &str)> = vec![
        ("OTEL_SERVICE_NAME", service.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_BLRP_SCHEDULE_DELAY", "50"),
    ];
    all.extend(env.iter().map(|(k, v)| (*k, v.as_str())));
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let out = support::child(name, &all).expect("parent");
    Some((service, out))
}

/// In the child: the configuration from the environment or, with `UNITEL_TLS_BUILDER` set,
/// from the builder alone (`TelemetryConfig::new()`, which ignores the OTEL variables), with
/// the settings the test put in `UNITEL_TLS_*`.
fn config() -> TelemetryConfig {
    if std::env::var_os("UNITEL_TLS_BUILDER").is_none() {
        return TelemetryConfig::from_env().with_console(false);
    }
    let var = |name: &str| std::env::var(name).ok();
    let mut otlp = OtlpSettings::new()
        .with_endpoint(var("UNITEL_TLS_ENDPOINT").expect("UNITEL_TLS_ENDPOINT"))
        .with_protocol(match var("UNITEL_TLS_PROTOCOL").as_deref() {
            Some("grpc") => OtlpProtocol::Grpc,
            _ => OtlpProtocol::HttpProtobuf,
        });
    if let Some(ca) = var("UNITEL_TLS_CA") {
        otlp = otlp.with_certificate(ca);
    }
    if let Some(cert) = var("UNITEL_TLS_CLIENT_CERTIFICATE") {
        otlp = otlp.with_client_certificate(cert);
    }
    if let Some(key) = var("UNITEL_TLS_CLIENT_KEY") {
        otlp = otlp.with_client_key(key);
    }
    let quick = BatchSettings::new().with_schedule_delay(Duration::from_millis(50));
    TelemetryConfig::new()
        .with_console(false)
        .with_service_name(var("OTEL_SERVICE_NAME").expect("OTEL_SERVICE_NAME"))
        .with_otlp(otlp)
        .with_batch_span_processor(quick)
        .with_batch_log_processor(quick)
}

/// In the child: a span, a log line and a counter, then a shutdown that flushes them; prints
/// how the shutdown went and what was dropped for failed exports. A failed export is not the
/// application's problem: the child ends normally either way.
fn emit() {
    let guard = configure_telemetry(config()).expect("configure");
    let telemetry = get_telemetry("tls");
    {
        let _span = telemetry.trace("sealed_span");
        telemetry.log_info("sealed line");
        telemetry.counter("tls.sealed").add(1, ());
    }
    let started = Instant::now();
    let shutdown = guard.shutdown();
    println!(
        "\nSHUTDOWN {} {}",
        if shutdown.is_ok() { "ok" } else { "failed" },
        started.elapsed().as_millis()
    );
    println!(
        "\nDROPPED {} {}",
        dropped(Signal::Spans, DropReason::ExportFailed),
        dropped(Signal::Logs, DropReason::ExportFailed)
    );
}

/// What a child that ran [`emit`] reported.
#[derive(Debug)]
struct Report {
    stderr: String,
    shutdown_ok: bool,
    shutdown_ms: u64,
    spans_dropped: u64,
    logs_dropped: u64,
}

impl Report {
    /// The child's report; fails when it did not exit normally.
    fn of(out: &Output) -> Report {
        let stdout = support::assert_ok(out);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let shutdown = support::marked(&stdout, "SHUTDOWN").expect("SHUTDOWN line");
        let (state, ms) = shutdown.split_once(' ').expect("state and time");
        let dropped = support::marked(&stdout, "DROPPED").expect("DROPPED line");
        let (spans, logs) = dropped.split_once(' ').expect("two counts");
        Report {
            stderr,
            shutdown_ok: state == "ok",
            shutdown_ms: ms.parse().expect("milliseconds"),
            spans_dropped: spans.parse().expect("count"),
            logs_dropped: logs.parse().expect("count"),
        }
    }

    /// The line of the crate's report on `signal`'s failed exports.
    fn failure(&self, signal: &str) -> Option<&str> {
        let start = format!("unitel: exporting {signal} failed");
        self.stderr.lines().find(|l| l.starts_with(&start))
    }
}

/// Asserts that the child's span, log line and counter (of value 1) reached rotel, with
/// nothing dropped and nothing reported.
fn assert_delivered(service: &str, out: &Output) {
    delivered(service, out, Some(1.0))
}

/// [`assert_delivered`] for a counter sent in `value`: `None` for OTLP/JSON, whose integer
/// values (`"asInt": "1"`, a string as the protobuf JSON mapping has it) rotel's JSON decoder
/// does not print.
fn delivered(service: &str, out: &Output, value: Option<f64>) {
    let report = Report::of(out);
    assert!(
        report.shutdown_ok && report.spans_dropped == 0 && report.logs_dropped == 0,
        "an export failed: {report:#?}"
    );
    assert!(
        !report.stderr.contains("unitel:"),
        "the crate reported a problem:\n{}",
        report.stderr
    );
    Rotel::get().wait_for(WAIT, |r| {
        let span = r.spans_of(service).iter().any(|s| s.name == "sealed_span");
        let log = r
            .logs_of(service)
            .iter()
            .any(|l| l.body == "Str(sealed line)");
        let metric = r
            .points_of(service, "tls.sealed")
            .iter()
            .any(|p| p.value == value);
        (span && log && metric).then_some(())
    });
}

/// Asserts that the child ran to its end (telemetry never takes the application down), that
/// its spans and logs were counted as dropped, that the crate's report on each says `why`,
/// and that nothing of `service` reached rotel.
fn assert_refused(service: &str, out: &Output, why: &str) -> Report {
    let report = Report::of(out);
    assert!(
        report.spans_dropped >= 1 && report.logs_dropped >= 1,
        "the failed exports are counted: {report:#?}"
    );
    assert!(
        report.shutdown_ms < 5000,
        "a refused handshake does not hold shutdown: {report:#?}"
    );
    for signal in ["spans", "logs"] {
        let line = report
            .failure(signal)
            .unwrap_or_else(|| panic!("no report on {signal}:\n{}", report.stderr));
        assert!(line.contains(why), "{signal}: expected {why:?} in\n{line}");
    }
    assert_nothing_arrived(service, &[Signal::Spans, Signal::Logs, Signal::Metrics]);
    report
}

/// Asserts that rotel holds nothing of `service` for `signals`; the child has exited, so
/// whatever it sent was sent; a moment more lets rotel print it.
fn assert_nothing_arrived(service: &str, signals: &[Signal]) {
    std::thread::sleep(Duration::from_millis(500));
    let r = rotel::parse(&Rotel::get().output());
    for signal in signals {
        let n = match signal {
            Signal::Spans => r.spans_of(service).len(),
            Signal::Logs => r.logs_of(service).len(),
            _ => r.metrics.iter().filter(|p| p.service == service).count(),
        };
        assert_eq!(n, 0, "{} of {service} arrived", signal.as_str());
    }
}

// ----- the cases that export -----

/// One exporting test: in the child, [`emit`] (no stunnel, no certificates made); in the
/// parent, a fixture with stunnel, the child run with the variables `env` gives, and `check`
/// on the service name and the child's output.
macro_rules! exporting {
    ($name:ident, $env:expr, $check:expr) => {
        #[test]
        fn $name() {
            if std::env::var("UNITEL_CHILD").as_deref() == Ok(stringify!($name)) {
                return emit();
            }
            let f = Fixture::proxied();
            let env: Vec<(&'static str, String)> = ($env)(&f);
            let (service, out) = run(stringify!($name), &env).expect("parent");
            ($check)(&f, service.as_str(), &out);
        }
    };
}

fn delivers(_: &Fixture, service: &str, out: &Output) {
    assert_delivered(service, out)
}

fn untrusted(_: &Fixture, service: &str, out: &Output) {
    assert_refused(service, out, UNTRUSTED);
}

/// Refused for want of a client certificate, and stunnel says so (the failure the child
/// reported is the one under test, not another).
fn refused_without_certificate(f: &Fixture, service: &str, out: &Output) {
    assert_refused(service, out, REFUSED);
    let log = f.proxy().log();
    assert!(
        log.contains("peer did not return a certificate"),
        "stunnel's log:\n{log}"
    );
}

/// The variables for the builder-only child ([`config`]): `TelemetryConfig::new()` with the
/// endpoint, protocol and files given.
fn builder(
    endpoint: String,
    protocol: &str,
    files: &[(&'static str, &Path)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("UNITEL_TLS_BUILDER", "1".to_owned()),
        ("UNITEL_TLS_ENDPOINT", endpoint),
        ("UNITEL_TLS_PROTOCOL", protocol.to_owned()),
    ];
    env.extend(files.iter().map(|(k, p)| (*k, path(p))));
    env
}

// Delivery with a private CA.
exporting!(
    http_protobuf_over_tls_delivers_with_a_private_ca,
    |f: &Fixture| f.otlp(
        format!("https://127.0.0.1:{}", f.proxy().https),
        "http/protobuf",
        &f.pki.ca
    ),
    delivers
);
exporting!(
    // `localhost`: the certificate's DNS name, not its IP address. The counter's value is not
    // checked: rotel's JSON decoder does not print OTLP/JSON integers (`"asInt": "1"`, a
    // string as the protobuf JSON mapping has it).
    http_json_over_tls_delivers_to_a_host_name,
    |f: &Fixture| f.otlp(
        format!("https://localhost:{}", f.proxy().https),
        "http/json",
        &f.pki.ca
    ),
    |_: &Fixture, service: &str, out: &Output| delivered(service, out, None)
);
exporting!(
    grpc_over_tls_delivers_with_a_private_ca,
    |f: &Fixture| f.otlp(
        format!("https://127.0.0.1:{}", f.proxy().grpcs),
        "grpc",
        &f.pki.ca
    ),
    delivers
);
exporting!(
    an_upper_case_https_scheme_is_accepted,
    |f: &Fixture| f.otlp(
        format!("HTTPS://127.0.0.1:{}", f.proxy().https),
        "http/protobuf",
        &f.pki.ca
    ),
    delivers
);
exporting!(
    a_scheme_less_grpc_endpoint_uses_tls,
    |f: &Fixture| f.otlp(format!("127.0.0.1:{}", f.proxy().grpcs), "grpc", &f.pki.ca),
    delivers
);
exporting!(
    // Straight to rotel's plain grpc port.
    a_scheme_less_grpc_endpoint_is_plain_when_insecure,
    |_: &Fixture| vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", Rotel::get().grpc.clone()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
        ("OTEL_EXPORTER_OTLP_INSECURE", "true".to_owned()),
    ],
    delivers
);
exporting!(
    // The environment names the wrong CA: `TelemetryConfig::new()` must not read it.
    the_builders_certificate_is_used_and_the_environments_is_not,
    |f: &Fixture| {
        let mut env = builder(
            format!("https://127.0.0.1:{}", f.proxy().https),
            "http/protobuf",
            &[("UNITEL_TLS_CA", &f.pki.ca)],
        );
        env.push(("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&f.pki.wrong_ca)));
        env
    },
    delivers
);
exporting!(
    // The generic CA is the wrong one; traces have the right one: spans arrive, logs fail.
    a_per_signal_certificate_wins_over_the_generic_one,
    |f: &Fixture| {
        let mut env = f.otlp(
            format!("https://127.0.0.1:{}", f.proxy().https),
            "http/protobuf",
            &f.pki.wrong_ca,
        );
        env.push(("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", path(&f.pki.ca)));
        env
    },
    |_: &Fixture, service: &str, out: &Output| {
        let report = Report::of(out);
        assert_eq!(report.spans_dropped, 0, "{report:#?}");
        assert!(report.logs_dropped >= 1, "{report:#?}");
        let logs = report.failure("logs").expect("a report on logs");
        assert!(logs.contains(UNTRUSTED), "{logs}");
        assert!(report.failure("spans").is_none(), "{}", report.stderr);
        Rotel::get().wait_for(WAIT, |r| {
            r.spans_of(service)
                .iter()
                .any(|s| s.name == "sealed_span")
                .then_some(())
        });
        assert_nothing_arrived(service, &[Signal::Logs]);
    }
);

// A wrong CA.
exporting!(
    a_wrong_ca_fails_as_a_certificate_problem_over_http,
    |f: &Fixture| f.otlp(
        format!("https://127.0.0.1:{}", f.proxy().https),
        "http/protobuf",
        &f.pki.wrong_ca
    ),
    untrusted
);
exporting!(
    a_wrong_ca_fails_as_a_certificate_problem_over_grpc,
    |f: &Fixture| f.otlp(
        format!("https://127.0.0.1:{}", f.proxy().grpcs),
        "grpc",
        &f.pki.wrong_ca
    ),
    untrusted
);

// Mutual TLS.
exporting!(
    mutual_tls_with_a_client_certificate_delivers_over_http,
    |f: &Fixture| f.mutual(
        format!("https://127.0.0.1:{}", f.proxy().https_mtls),
        "http/protobuf"
    ),
    delivers
);
exporting!(
    mutual_tls_with_a_client_certificate_delivers_over_grpc,
    |f: &Fixture| f.mutual(
        format!("https://127.0.0.1:{}", f.proxy().grpcs_mtls),
        "grpc"
    ),
    delivers
);
exporting!(
    mutual_tls_from_the_builder_delivers_over_grpc,
    |f: &Fixture| builder(
        format!("https://127.0.0.1:{}", f.proxy().grpcs_mtls),
        "grpc",
        &[
            ("UNITEL_TLS_CA", &f.pki.ca),
            ("UNITEL_TLS_CLIENT_CERTIFICATE", &f.pki.client_cert),
            ("UNITEL_TLS_CLIENT_KEY", &f.pki.client_key),
        ],
    ),
    delivers
);
exporting!(
    mutual_tls_without_a_client_certificate_is_refused_over_http,
    |f: &Fixture| f.otlp(
        format!("https://127.0.0.1:{}", f.proxy().https_mtls),
        "http/protobuf",
        &f.pki.ca
    ),
    refused_without_certificate
);
exporting!(
    mutual_tls_without_a_client_certificate_is_refused_over_grpc,
    |f: &Fixture| f.otlp(
        format!("https://127.0.0.1:{}", f.proxy().grpcs_mtls),
        "grpc",
        &f.pki.ca
    ),
    refused_without_certificate
);

// ----- bad files are start-up errors -----

/// In the parent: runs test `name` in a child whose `configure_telemetry` must fail, and
/// returns the error's `Display`, whether it is `Error::Tls`, and the kind of its
/// `io::Error` source ("none" without one). In the child: `None`.
fn start_up_error(name: &str, env: &[(&'static str, String)]) -> Option<(String, bool, String)> {
    let mut env = env.to_vec();
    // Never contacted: the files are read before anything connects.
    env.push((
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "https://127.0.0.1:9".to_owned(),
    ));
    env.push(("UNITEL_TLS_ENDPOINT", "https://127.0.0.1:9".to_owned()));
    let (_, out) = run(name, &env)?;
    let stdout = support::assert_ok(&out);
    let display = support::marked(&stdout, "ERROR").expect("ERROR line");
    let kind = support::marked(&stdout, "KIND").expect("KIND line");
    let (variant, io) = kind.split_once(' ').expect("variant and io kind");
    Some((display, variant == "tls", io.to_owned()))
}

/// In the child: configures, expecting an error, and prints it.
fn print_start_up_error() {
    let err = match configure_telemetry(config()) {
        Ok(_guard) => panic!("configure_telemetry accepted a bad TLS file"),
        Err(err) => err,
    };
    let io = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map_or("none".to_owned(), |e| format!("{:?}", e.kind()));
    let variant = if matches!(err, unitel::Error::Tls { .. }) {
        "tls"
    } else {
        "other"
    };
    println!("\nERROR {err}");
    println!("\nKIND {variant} {io}");
}

#[track_caller]
fn assert_starts(display: &str, expected: &str) {
    assert!(
        display.starts_with(expected),
        "expected {expected:?}...\n     got {display:?}"
    );
}

#[test]
fn a_missing_ca_file_is_a_start_up_error_naming_the_variable() {
    let f = Fixture::certificates();
    let missing = f.dir.path().join("missing-ca.pem");
    let env = [("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&missing))];
    let Some((display, tls, io)) = start_up_error(
        "a_missing_ca_file_is_a_start_up_error_naming_the_variable",
        &env,
    ) else {
        return print_start_up_error();
    };
    assert_starts(
        &display,
        &format!(
            "OTEL_EXPORTER_OTLP_CERTIFICATE={}: the file cannot be read; expected a PEM file \
             of CA certificates",
            missing.display()
        ),
    );
    assert!(tls, "Error::Tls");
    assert_eq!(io, "NotFound", "the file system's error is the source");
}

#[test]
fn a_ca_file_without_a_certificate_is_a_start_up_error() {
    let f = Fixture::certificates();
    let not_pem = f.dir.path().join("not-a-certificate.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").expect("write");
    let env = [("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&not_pem))];
    let Some((display, tls, io)) =
        start_up_error("a_ca_file_without_a_certificate_is_a_start_up_error", &env)
    else {
        return print_start_up_error();
    };
    assert_starts(
        &display,
        &format!(
            "OTEL_EXPORTER_OTLP_CERTIFICATE={}: the file holds no certificate",
            not_pem.display()
        ),
    );
    assert!(tls && io == "none", "{tls} {io}");
}

#[test]
fn a_private_key_given_as_the_ca_is_a_start_up_error() {
    // PEM, but no certificate in it: a likely mix-up of two variables.
    let f = Fixture::certificates();
    let env = [("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&f.pki.client_key))];
    let Some((display, tls, _)) =
        start_up_error("a_private_key_given_as_the_ca_is_a_start_up_error", &env)
    else {
        return print_start_up_error();
    };
    assert_starts(
        &display,
        &format!(
            "OTEL_EXPORTER_OTLP_CERTIFICATE={}: the file holds no certificate",
            f.pki.client_key.display()
        ),
    );
    assert!(tls);
}

#[test]
fn a_client_certificate_without_its_key_is_a_start_up_error() {
    let f = Fixture::certificates();
    let env = [
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&f.pki.ca)),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            path(&f.pki.client_cert),
        ),
    ];
    let Some((display, tls, _)) = start_up_error(
        "a_client_certificate_without_its_key_is_a_start_up_error",
        &env,
    ) else {
        return print_start_up_error();
    };
    assert_starts(
        &display,
        &format!(
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE={}: the file is a client certificate \
             without its key",
            f.pki.client_cert.display()
        ),
    );
    assert!(
        display.contains("OTEL_EXPORTER_OTLP_CLIENT_KEY"),
        "{display}"
    );
    assert!(tls);
}

#[test]
fn a_client_key_without_its_certificate_is_a_start_up_error() {
    let f = Fixture::certificates();
    let env = [("OTEL_EXPORTER_OTLP_CLIENT_KEY", path(&f.pki.client_key))];
    let Some((display, tls, _)) = start_up_error(
        "a_client_key_without_its_certificate_is_a_start_up_error",
        &env,
    ) else {
        return print_start_up_error();
    };
    assert_starts(
        &display,
        &format!(
            "OTEL_EXPORTER_OTLP_CLIENT_KEY={}: the file is a client key without its \
             certificate",
            f.pki.client_key.display()
        ),
    );
    assert!(tls);
}

#[test]
fn a_client_key_that_does_not_fit_the_certificate_is_a_start_up_error() {
    let f = Fixture::certificates();
    let env = [
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            path(&f.pki.client_cert),
        ),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", path(&f.pki.stray_key)),
    ];
    let Some((display, tls, _)) = start_up_error(
        "a_client_key_that_does_not_fit_the_certificate_is_a_start_up_error",
        &env,
    ) else {
        return print_start_up_error();
    };
    assert_starts(
        &display,
        &format!(
            "OTEL_EXPORTER_OTLP_CLIENT_KEY={}: the file does not fit the client certificate",
            f.pki.stray_key.display()
        ),
    );
    assert!(tls);
}

#[test]
fn a_per_signal_tls_file_is_named_in_the_error() {
    let f = Fixture::certificates();
    let missing = f.dir.path().join("missing-logs-ca.pem");
    let env = [
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", path(&f.pki.ca)),
        ("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", path(&missing)),
    ];
    let Some((display, tls, io)) =
        start_up_error("a_per_signal_tls_file_is_named_in_the_error", &env)
    else {
        return print_start_up_error();
    };
    assert_starts(
        &display,
        &format!(
            "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE={}: the file cannot be read",
            missing.display()
        ),
    );
    assert!(tls && io == "NotFound", "{tls} {io}");
}

#[test]
fn a_builders_tls_file_is_named_in_the_error() {
    let f = Fixture::certificates();
    let missing = f.dir.path().join("missing-builder-ca.pem");
    let env = [
        ("UNITEL_TLS_BUILDER", "1".to_owned()),
        ("UNITEL_TLS_CA", path(&missing)),
    ];
    let Some((display, tls, io)) =
        start_up_error("a_builders_tls_file_is_named_in_the_error", &env)
    else {
        return print_start_up_error();
    };
    assert_starts(
        &display,
        &format!(
            "OtlpSettings::with_certificate={}: the file cannot be read",
            missing.display()
        ),
    );
    assert!(tls && io == "NotFound", "{tls} {io}");
}
