//! Export settings: the OTLP exporter, the exporter selection per signal, batching, Prometheus.
//! Parsed from the spec's environment variables and set by builder calls; a builder value wins.

use crate::Error;
use std::net::SocketAddr;
use std::time::Duration;

/// The OTLP transport (`OTEL_EXPORTER_OTLP_PROTOCOL`).
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

/// Payload compression (`OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtlpCompression {
    /// `none` (the default).
    None,
    /// `gzip`.
    Gzip,
}

/// Where a signal goes (`OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER`, `OTEL_LOGS_EXPORTER`).
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
#[derive(Clone, Default, PartialEq)]
pub struct OtlpSettings {
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Option<OtlpProtocol>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) compression: Option<OtlpCompression>,
}

impl std::fmt::Debug for OtlpSettings {
    // Header values carry credentials: only their names are printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpSettings")
            .field("endpoint", &self.endpoint)
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
            .finish()
    }
}

impl OtlpSettings {
    /// Nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    /// The collector's URL, e.g. `http://127.0.0.1:4318`. For http, the generic endpoint gets
    /// `/v1/traces` (`/v1/metrics`, `/v1/logs`) appended; a per-signal endpoint is used as is.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The transport.
    pub fn with_protocol(mut self, protocol: OtlpProtocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// One more header (an API key, a tenant id). Its value never appears in `Debug` output.
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
        }
    }
}

/// Batching of spans (`OTEL_BSP_*`) or log records (`OTEL_BLRP_*`) before export.
///
/// | field | environment | default |
/// |---|---|---|
/// | schedule delay | `OTEL_BSP_SCHEDULE_DELAY` / `OTEL_BLRP_SCHEDULE_DELAY` (ms) | 5000 ms spans, 1000 ms logs |
/// | export timeout | `..._EXPORT_TIMEOUT` (ms) | 30000 ms |
/// | queue size | `..._MAX_QUEUE_SIZE` | 2048 |
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

    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn queue_size(&self) -> usize {
        self.max_queue_size.unwrap_or(2048)
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

/// Reads the export variables through `get` (empty values already removed).
pub(crate) fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<ExportSettings, Error> {
    let mut s = ExportSettings {
        otlp: otlp_from_env(get, "OTEL_EXPORTER_OTLP")?,
        traces: otlp_from_env(get, "OTEL_EXPORTER_OTLP_TRACES")?,
        metrics: otlp_from_env(get, "OTEL_EXPORTER_OTLP_METRICS")?,
        logs: otlp_from_env(get, "OTEL_EXPORTER_OTLP_LOGS")?,
        ..Default::default()
    };
    s.traces_exporter = exporters(get, "OTEL_TRACES_EXPORTER", false)?;
    s.metrics_exporter = exporters(get, "OTEL_METRICS_EXPORTER", true)?;
    s.logs_exporter = exporters(get, "OTEL_LOGS_EXPORTER", false)?;
    s.metric_export_interval = millis(get, "OTEL_METRIC_EXPORT_INTERVAL", true)?;
    s.metric_export_timeout = millis(get, "OTEL_METRIC_EXPORT_TIMEOUT", false)?;
    s.bsp = batch_from_env(get, "OTEL_BSP")?;
    s.blrp = batch_from_env(get, "OTEL_BLRP")?;
    let host = get("OTEL_EXPORTER_PROMETHEUS_HOST");
    let port = get("OTEL_EXPORTER_PROMETHEUS_PORT");
    if host.is_some() || port.is_some() {
        let port = match port {
            Some(p) => p.trim().parse::<u16>().map_err(|_| Error::InvalidEnv {
                variable: "OTEL_EXPORTER_PROMETHEUS_PORT",
                value: p.clone(),
                accepted: "a port number, e.g. 9464",
            })?,
            None => 9464,
        };
        let host = host.unwrap_or_else(|| "127.0.0.1".into());
        let addr = format!("{}:{port}", host.trim());
        let addr = if host.contains(':') {
            format!("[{}]:{port}", host.trim())
        } else {
            addr
        };
        s.prometheus = Some(addr.parse().map_err(|_| Error::InvalidEnv {
            variable: "OTEL_EXPORTER_PROMETHEUS_HOST",
            value: host,
            accepted: "an IP address, e.g. 127.0.0.1 or 0.0.0.0",
        })?);
    }
    Ok(s)
}

fn otlp_from_env(
    get: &dyn Fn(&str) -> Option<String>,
    prefix: &'static str,
) -> Result<OtlpSettings, Error> {
    let var = |suffix: &str| -> &'static str { leak_name(prefix, suffix) };
    let mut s = OtlpSettings::default();
    if let Some(v) = get(var("_ENDPOINT")) {
        check_endpoint(&v).map_err(|accepted| Error::InvalidEnv {
            variable: var("_ENDPOINT"),
            value: redact_userinfo(&v),
            accepted,
        })?;
        s.endpoint = Some(v.trim().to_owned());
    }
    if let Some(v) = get(var("_PROTOCOL")) {
        s.protocol = Some(match v.trim().to_ascii_lowercase().as_str() {
            "grpc" => OtlpProtocol::Grpc,
            "http/protobuf" => OtlpProtocol::HttpProtobuf,
            "http/json" => OtlpProtocol::HttpJson,
            _ => {
                return Err(Error::InvalidEnv {
                    variable: var("_PROTOCOL"),
                    value: v,
                    accepted: "one of grpc, http/protobuf, http/json",
                })
            }
        });
    }
    if let Some(v) = get(var("_HEADERS")) {
        s.headers = parse_headers(&v).ok_or(Error::InvalidEnv {
            variable: var("_HEADERS"),
            // The value holds credentials: never echo it.
            value: "<redacted>".into(),
            accepted:
                "comma-separated name=value pairs, values percent-encoded (W3C baggage format)",
        })?;
    }
    s.timeout = millis(get, var("_TIMEOUT"), false)?;
    if let Some(v) = get(var("_COMPRESSION")) {
        s.compression = Some(match v.trim().to_ascii_lowercase().as_str() {
            "gzip" => OtlpCompression::Gzip,
            "none" => OtlpCompression::None,
            _ => {
                return Err(Error::InvalidEnv {
                    variable: var("_COMPRESSION"),
                    value: v,
                    accepted: "gzip or none",
                })
            }
        });
    }
    Ok(s)
}

/// The variable names are a fixed set; each is built once and kept for error messages.
fn leak_name(prefix: &'static str, suffix: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let name = format!("{prefix}{suffix}");
    let mut names = crate::sync::lock(&NAMES);
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(existing) = names.get(name.as_str()) {
        return existing;
    }
    let leaked: &'static str = Box::leak(name.into_boxed_str());
    names.insert(leaked);
    leaked
}

pub(crate) fn check_endpoint(url: &str) -> Result<(), &'static str> {
    const ACCEPTED: &str = "an http:// or https:// URL with a host, e.g. http://127.0.0.1:4318";
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or(ACCEPTED)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // user:password@ is allowed (and never echoed in messages).
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = match authority.strip_prefix('[') {
        // [::1]:4318
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or(ACCEPTED)?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let host_ok = !host.is_empty() && !host.contains(char::is_whitespace) && !host.contains('@');
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(ACCEPTED)
    }
}

/// `http://user:secret@host` → `http://<redacted>@host`: credentials never reach a message.
fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://<redacted>{}", &rest[at..]),
        None => url.to_owned(),
    }
}

pub(crate) fn parse_headers(value: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=')?;
        let k = k.trim();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            return None;
        }
        let v = crate::config::percent_decode(v.trim())?;
        out.push((k.to_owned(), v));
    }
    Some(out)
}

fn exporters(
    get: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    metrics: bool,
) -> Result<Option<Vec<Exporter>>, Error> {
    let Some(v) = get(variable) else {
        return Ok(None);
    };
    let accepted = if metrics {
        "a comma-separated list of otlp, prometheus, console, none"
    } else {
        "a comma-separated list of otlp, console, none"
    };
    let mut out = Vec::new();
    for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let e = match name.to_ascii_lowercase().as_str() {
            "otlp" => Exporter::Otlp,
            "console" => Exporter::Console,
            "none" => Exporter::None,
            "prometheus" if metrics => Exporter::Prometheus,
            _ => {
                return Err(Error::InvalidEnv {
                    variable,
                    value: v.clone(),
                    accepted,
                })
            }
        };
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(Some(out))
}

fn millis(
    get: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    positive: bool,
) -> Result<Option<Duration>, Error> {
    let Some(v) = get(variable) else {
        return Ok(None);
    };
    match v.trim().parse::<u64>() {
        Ok(ms) if !positive || ms > 0 => Ok(Some(Duration::from_millis(ms))),
        _ => Err(Error::InvalidEnv {
            variable,
            value: v,
            accepted: if positive {
                "a whole number of milliseconds greater than 0"
            } else {
                "a whole number of milliseconds"
            },
        }),
    }
}

fn batch_from_env(
    get: &dyn Fn(&str) -> Option<String>,
    prefix: &'static str,
) -> Result<BatchSettings, Error> {
    let count = |suffix: &str| -> Result<Option<usize>, Error> {
        let variable = leak_name(prefix, suffix);
        let Some(v) = get(variable) else {
            return Ok(None);
        };
        match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(Error::InvalidEnv {
                variable,
                value: v,
                accepted: "a whole number greater than 0",
            }),
        }
    };
    Ok(BatchSettings {
        schedule_delay: millis(get, leak_name(prefix, "_SCHEDULE_DELAY"), false)?,
        export_timeout: millis(get, leak_name(prefix, "_EXPORT_TIMEOUT"), false)?,
        max_queue_size: count("_MAX_QUEUE_SIZE")?,
        max_export_batch_size: count("_MAX_EXPORT_BATCH_SIZE")?,
    })
}
