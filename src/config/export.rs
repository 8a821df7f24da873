//! Export settings: the OTLP exporter, the exporter selection per signal, batching, Prometheus.
//! Read from the spec's environment variables (`env.rs`) and set by builder calls; a builder
//! value wins. Plain data: the exporters read it, it knows nothing of them.

use super::endpoint::redact;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The OTLP transport (`OTEL_EXPORTER_OTLP_PROTOCOL`), for [`OtlpSettings::with_protocol`]
/// (example: [OTLP export](crate::TelemetryConfig#otlp-export)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// `grpc`, default port 4317.
    Grpc,
    /// `http/protobuf` (the spec's default), default port 4318.
    HttpProtobuf,
    /// `http/json`, default port 4318.
    HttpJson,
}

/// Payload compression (`OTEL_EXPORTER_OTLP_COMPRESSION`), for
/// [`OtlpSettings::with_compression`] (example: [OTLP export](crate::TelemetryConfig#otlp-export)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtlpCompression {
    /// `none` (the default).
    None,
    /// `gzip`.
    Gzip,
}

/// Where a signal goes (`OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER`, `OTEL_LOGS_EXPORTER`),
/// for [`TelemetryConfig::with_traces_exporter`](crate::TelemetryConfig::with_traces_exporter)
/// and its metrics and logs counterparts (example:
/// [OTLP export](crate::TelemetryConfig#otlp-export)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Exporter {
    /// `otlp`: push to the OTLP endpoint.
    Otlp,
    /// `console`: write to standard output (spans as JSON span records, metrics as text
    /// snapshots, logs as the correlated console lines).
    Console,
    /// `prometheus` (metrics only): serve `/metrics` for pull.
    Prometheus,
    /// `none`: do not export the signal.
    None,
}

/// A context propagator (`OTEL_PROPAGATORS`): what crosses a process boundary with a request
/// or a job. Both are on by default; an empty list (`none`) propagates nothing. Set with
/// [`TelemetryConfig::with_propagators`](crate::TelemetryConfig::with_propagators):
/// `.with_propagators(&[Propagator::TraceContext])` sends no baggage (what the propagators
/// carry, for example: [`extract_trace_context`](crate::extract_trace_context)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Propagator {
    /// `tracecontext`: W3C Trace Context, the `traceparent` and `tracestate` fields.
    TraceContext,
    /// `baggage`: W3C Baggage, the `baggage` field.
    Baggage,
}

/// OTLP settings for all signals or one of them. Unset fields fall back to the generic
/// settings, then to the environment, then to the spec's defaults.
///
/// | field | environment | default |
/// |---|---|---|
/// | endpoint | `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT` | none: nothing is pushed |
/// | protocol | `OTEL_EXPORTER_OTLP[_SIGNAL]_PROTOCOL` | `http/protobuf` |
/// | headers | `OTEL_EXPORTER_OTLP[_SIGNAL]_HEADERS` (`k=v,k2=v2`, values percent-encoded) | none |
/// | timeout | `OTEL_EXPORTER_OTLP[_SIGNAL]_TIMEOUT` (milliseconds) | 10 s |
/// | compression | `OTEL_EXPORTER_OTLP[_SIGNAL]_COMPRESSION` (`gzip`, `none`) | none |
/// | CA certificate | `OTEL_EXPORTER_OTLP[_SIGNAL]_CERTIFICATE` (PEM file) | the system's roots, else Mozilla's |
/// | client certificate | `OTEL_EXPORTER_OTLP[_SIGNAL]_CLIENT_CERTIFICATE` (PEM file) | none |
/// | client key | `OTEL_EXPORTER_OTLP[_SIGNAL]_CLIENT_KEY` (PEM file) | none |
/// | insecure (grpc, scheme-less endpoint) | `OTEL_EXPORTER_OTLP[_SIGNAL]_INSECURE` | `false`: TLS |
///
/// Credentials in the endpoint (`https://user:password@host`) are sent as an
/// `Authorization: Basic` header, never as part of the URL; `Debug` prints neither them nor
/// header values.
///
/// Settings for all signals go to [`TelemetryConfig::with_otlp`](crate::TelemetryConfig::with_otlp)
/// (example: [OTLP export](crate::TelemetryConfig#otlp-export)); one signal's settings win over
/// them field by field:
///
/// ```
/// use unitel::{OtlpSettings, TelemetryConfig};
///
/// let config = TelemetryConfig::new()
///     // Traces and logs: the local agent, over http/protobuf.
///     .with_otlp_endpoint("http://127.0.0.1:4318")
///     // Metrics: a gateway behind a private CA, with a client certificate (mutual TLS).
///     .with_otlp_metrics(
///         OtlpSettings::new()
///             .with_endpoint("https://metrics-gateway.internal:4318/v1/metrics")
///             .with_certificate("/etc/otel/ca.pem")
///             .with_client_certificate("/etc/otel/client.pem")
///             .with_client_key("/etc/otel/client-key.pem"),
///     );
/// # let _ = config;
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct OtlpSettings {
    pub(crate) endpoint: Option<Sourced<String>>,
    pub(crate) protocol: Option<OtlpProtocol>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) compression: Option<OtlpCompression>,
    pub(crate) certificate: Option<Sourced<PathBuf>>,
    pub(crate) client_certificate: Option<Sourced<PathBuf>>,
    pub(crate) client_key: Option<Sourced<PathBuf>>,
    pub(crate) insecure: Option<bool>,
}

/// A setting's value and where it came from (the variable or the builder method), for
/// start-up errors that name it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sourced<T> {
    pub(crate) value: T,
    pub(crate) from: &'static str,
}

impl<T> Sourced<T> {
    pub(crate) fn new(value: T, from: &'static str) -> Self {
        Sourced { value, from }
    }
}

impl std::fmt::Debug for OtlpSettings {
    // Endpoints and header values carry credentials: the endpoint is printed redacted, the
    // headers by name only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpSettings")
            .field(
                "endpoint",
                &self.endpoint.as_ref().map(|e| redact(&e.value)),
            )
            .field("protocol", &self.protocol)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(k, _)| (k.as_str(), "<redacted>"))
                    .collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("certificate", &self.certificate.as_ref().map(|c| &c.value))
            .field(
                "client_certificate",
                &self.client_certificate.as_ref().map(|c| &c.value),
            )
            .field("client_key", &self.client_key.as_ref().map(|c| &c.value))
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl OtlpSettings {
    /// Nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The collector's URL, e.g. `http://127.0.0.1:4318` or `https://collector.example:4318`
    /// (the scheme is case-insensitive). For http, the generic endpoint gets `/v1/traces`
    /// (`/v1/metrics`, `/v1/logs`) appended; a per-signal endpoint is used as is. For grpc, a
    /// scheme-less `host:port` uses TLS unless [`with_insecure`](Self::with_insecure).
    /// `https://user:password@host` sends the credentials as `Authorization: Basic`.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(Sourced::new(endpoint.into(), "OtlpSettings::with_endpoint"));
        self
    }

    /// The transport.
    pub fn with_protocol(mut self, protocol: OtlpProtocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// One more header (an API key, a tenant id). Its value never appears in `Debug` output.
    /// A name that is not an HTTP token or a value with a line break or another control
    /// character is a start-up error naming the header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// How long one export may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Payload compression.
    pub fn with_compression(mut self, compression: OtlpCompression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// A PEM file of the CA certificates that sign the collector's certificate (a private CA).
    /// They replace the system's roots for this endpoint. Read at start-up: an unreadable file
    /// or one without a certificate is an error.
    pub fn with_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.certificate = Some(Sourced::new(path.into(), "OtlpSettings::with_certificate"));
        self
    }

    /// The PEM certificate (chain) this client presents for mutual TLS; needs
    /// [`with_client_key`](Self::with_client_key).
    pub fn with_client_certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_certificate = Some(Sourced::new(
            path.into(),
            "OtlpSettings::with_client_certificate",
        ));
        self
    }

    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of the client certificate.
    pub fn with_client_key(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_key = Some(Sourced::new(path.into(), "OtlpSettings::with_client_key"));
        self
    }

    /// grpc only: a scheme-less endpoint (`collector:4317`) is reached without TLS.
    /// An `http://` or `https://` endpoint decides for itself.
    pub fn with_insecure(mut self, insecure: bool) -> Self {
        self.insecure = Some(insecure);
        self
    }

    /// `self` where set, else `fallback`. Headers: both, `self`'s winning by name.
    pub(crate) fn or(&self, fallback: &OtlpSettings) -> OtlpSettings {
        let mut headers = fallback.headers.clone();
        for (k, v) in &self.headers {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            headers.push((k.clone(), v.clone()));
        }
        OtlpSettings {
            endpoint: self.endpoint.clone().or_else(|| fallback.endpoint.clone()),
            protocol: self.protocol.or(fallback.protocol),
            headers,
            timeout: self.timeout.or(fallback.timeout),
            compression: self.compression.or(fallback.compression),
            certificate: self
                .certificate
                .clone()
                .or_else(|| fallback.certificate.clone()),
            client_certificate: self
                .client_certificate
                .clone()
                .or_else(|| fallback.client_certificate.clone()),
            client_key: self
                .client_key
                .clone()
                .or_else(|| fallback.client_key.clone()),
            insecure: self.insecure.or(fallback.insecure),
        }
    }
}

/// Whether a header can be sent over HTTP/1.1, HTTP/2 and as gRPC metadata: a token name
/// (RFC 9110: letters, digits and ``!#$%&'*+-.^_`|~``) that the exporter does not set itself,
/// and a value without control characters (a `%0A` decoded to a line break would end the
/// header). The error says what is accepted.
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), &'static str> {
    const TOKEN: &str = "a header name made of letters, digits and !#$%&'*+-.^_`|~ \
         (RFC 9110 token), and a value without line breaks or other control characters";
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let value_ok = value
        .bytes()
        .all(|b| (b >= 0x20 && b != 0x7f) || b == b'\t');
    if !token || !value_ok {
        return Err(TOKEN);
    }
    const OWN: [&str; 9] = [
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "host",
        "te",
        "upgrade",
        "keep-alive",
    ];
    if OWN.iter().any(|own| own.eq_ignore_ascii_case(name)) {
        return Err("a header the exporter does not set itself \
                    (not Content-Type, Content-Length, Content-Encoding, Transfer-Encoding, \
                    Connection, Host, TE, Upgrade or Keep-Alive)");
    }
    Ok(())
}

/// A header name as an error message may show it: up to its first space (a mistyped
/// `Authorization: Bearer x=y` shows `Authorization:`, not the token).
pub(crate) fn shown_name(name: &str) -> String {
    match name.find(char::is_whitespace) {
        Some(i) => format!("{}...", &name[..i]),
        None => name.to_owned(),
    }
}

/// How many spans, or log records, wait for export at most when `..._MAX_QUEUE_SIZE` is not set:
/// 8× the specification's 2048. With one export in flight per signal, the queue is what absorbs
/// an export that takes longer than usual; at 100,000 items/s, 2048 is 20 ms of it and dropped
/// items under load on a 2-core machine (benches/export_throughput.rs, docs/performance.md),
/// 16384 is 160 ms. The bound stays: past it, items are dropped and counted.
const DEFAULT_QUEUE_SIZE: usize = 16_384;

/// Batching of spans (`OTEL_BSP_*`) or log records (`OTEL_BLRP_*`) before export, for
/// [`TelemetryConfig::with_batch_span_processor`](crate::TelemetryConfig::with_batch_span_processor)
/// and [`with_batch_log_processor`](crate::TelemetryConfig::with_batch_log_processor)
/// (example: [OTLP export](crate::TelemetryConfig#otlp-export)).
///
/// | field | environment | default |
/// |---|---|---|
/// | schedule delay | `OTEL_BSP_SCHEDULE_DELAY` / `OTEL_BLRP_SCHEDULE_DELAY` (ms) | 5000 ms spans, 1000 ms logs |
/// | export timeout | `..._EXPORT_TIMEOUT` (ms) | 30000 ms |
/// | queue size | `..._MAX_QUEUE_SIZE` | 16384 (the specification says 2048) |
/// | batch size | `..._MAX_EXPORT_BATCH_SIZE` | 512 |
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchSettings {
    pub(crate) schedule_delay: Option<Duration>,
    pub(crate) export_timeout: Option<Duration>,
    pub(crate) max_queue_size: Option<usize>,
    pub(crate) max_export_batch_size: Option<usize>,
}

impl BatchSettings {
    /// Nothing set.
    pub fn new() -> Self {
        Self::default()
    }
    /// How long to wait before exporting a batch that is not full.
    pub fn with_schedule_delay(mut self, delay: Duration) -> Self {
        self.schedule_delay = Some(delay);
        self
    }
    /// How long one export may take.
    pub fn with_export_timeout(mut self, timeout: Duration) -> Self {
        self.export_timeout = Some(timeout);
        self
    }
    /// How many items wait at most; past that, new ones are dropped and counted.
    pub fn with_max_queue_size(mut self, size: usize) -> Self {
        self.max_queue_size = Some(size);
        self
    }
    /// How many items one export carries at most.
    pub fn with_max_export_batch_size(mut self, size: usize) -> Self {
        self.max_export_batch_size = Some(size);
        self
    }

    pub(crate) fn or(&self, fallback: &BatchSettings) -> BatchSettings {
        BatchSettings {
            schedule_delay: self.schedule_delay.or(fallback.schedule_delay),
            export_timeout: self.export_timeout.or(fallback.export_timeout),
            max_queue_size: self.max_queue_size.or(fallback.max_queue_size),
            max_export_batch_size: self
                .max_export_batch_size
                .or(fallback.max_export_batch_size),
        }
    }

    /// The queue's bound: the one set, else [`DEFAULT_QUEUE_SIZE`].
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn queue_size(&self) -> usize {
        self.max_queue_size.unwrap_or(DEFAULT_QUEUE_SIZE)
    }
}

/// Everything about export, from one source (the environment or the builder).
#[derive(Debug, Clone, Default)]
pub(crate) struct ExportSettings {
    pub(crate) otlp: OtlpSettings,
    pub(crate) traces: OtlpSettings,
    pub(crate) metrics: OtlpSettings,
    pub(crate) logs: OtlpSettings,
    pub(crate) traces_exporter: Option<Vec<Exporter>>,
    pub(crate) metrics_exporter: Option<Vec<Exporter>>,
    pub(crate) logs_exporter: Option<Vec<Exporter>>,
    pub(crate) metric_export_interval: Option<Duration>,
    pub(crate) metric_export_timeout: Option<Duration>,
    pub(crate) bsp: BatchSettings,
    pub(crate) blrp: BatchSettings,
    pub(crate) prometheus: Option<SocketAddr>,
}

impl ExportSettings {
    /// `self` (builder) where set, else `env`.
    pub(crate) fn or(&self, env: &ExportSettings) -> ExportSettings {
        ExportSettings {
            otlp: self.otlp.or(&env.otlp),
            traces: self.traces.or(&env.traces),
            metrics: self.metrics.or(&env.metrics),
            logs: self.logs.or(&env.logs),
            traces_exporter: self
                .traces_exporter
                .clone()
                .or_else(|| env.traces_exporter.clone()),
            metrics_exporter: self
                .metrics_exporter
                .clone()
                .or_else(|| env.metrics_exporter.clone()),
            logs_exporter: self
                .logs_exporter
                .clone()
                .or_else(|| env.logs_exporter.clone()),
            metric_export_interval: self.metric_export_interval.or(env.metric_export_interval),
            metric_export_timeout: self.metric_export_timeout.or(env.metric_export_timeout),
            bsp: self.bsp.or(&env.bsp),
            blrp: self.blrp.or(&env.blrp),
            prometheus: self.prometheus.or(env.prometheus),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BatchSettings;

    #[test]
    fn the_queue_holds_16384_unless_set() {
        assert_eq!(BatchSettings::new().queue_size(), 16_384);
        assert_eq!(
            BatchSettings::new().with_max_queue_size(100).queue_size(),
            100
        );
        // The builder's unset value gives way to the environment's.
        let env = BatchSettings::new().with_max_queue_size(2048);
        assert_eq!(BatchSettings::new().or(&env).queue_size(), 2048);
    }
}
