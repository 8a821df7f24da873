//! Reading the OpenTelemetry environment variables by the spec's rules: an empty value means
//! unset, enum values are case-insensitive, and an invalid value is a start-up error that names
//! the variable and what it accepts. Every `OTEL_*` variable the crate reads is read here.

use super::endpoint::{percent_decode, redact, Endpoint};
use super::export::{check_header, shown_name, Sourced};
use super::export::{
    BatchSettings, ExportSettings, Exporter, OtlpCompression, OtlpProtocol, OtlpSettings,
    Propagator,
};
use super::{Sampler, TelemetryConfig, SAMPLER_NAMES};
use crate::error::Error;
use opentelemetry::KeyValue;
use std::cell::Cell;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// Reads one variable by name: its value, empty values already removed.
type Get<'a> = dyn Fn(&'static str) -> Option<String> + 'a;

/// Applies the variables found through `lookup` to `config`. Stops at the first invalid value
/// and keeps it, to be returned by `configure_telemetry`. A variable the crate reads whose value
/// is not UTF-8 is invalid too; `lookup` only ever sees the names the crate reads, so other
/// variables never matter.
pub(super) fn apply(config: &mut TelemetryConfig, lookup: &dyn Fn(&str) -> Option<OsString>) {
    let not_utf8 = Cell::new(None);
    let get = |name: &'static str| match lookup(name)?.into_string() {
        Ok(v) => Some(v).filter(|v| !v.trim().is_empty()),
        Err(raw) => {
            let mut first = not_utf8.take();
            first.get_or_insert_with(|| (name, raw.to_string_lossy().into_owned()));
            not_utf8.set(first);
            None
        }
    };
    let result = try_apply(config, &get);
    // try_apply stops at its first error, so a non-UTF-8 value it met came before it.
    let result = match not_utf8.take() {
        Some((variable, value)) => Err(Error::InvalidEnv {
            variable,
            value,
            accepted: "a value that is valid UTF-8",
        }),
        None => result,
    };
    if let Err(err) = result {
        config.env_error.get_or_insert(err);
    }
}

fn try_apply(config: &mut TelemetryConfig, get: &Get<'_>) -> Result<(), Error> {
    if let Some(v) = get("OTEL_SDK_DISABLED") {
        config.disabled = parse_bool("OTEL_SDK_DISABLED", &v)?;
    }
    if let Some(v) = get("OTEL_RESOURCE_ATTRIBUTES") {
        config.env_resource = parse_resource_attributes(&v)?;
    }
    if let Some(v) = get("OTEL_SERVICE_NAME") {
        config.service_name = Some(v.trim().to_owned());
    }
    // Seed 003's services set OTEL_ENVIRONMENT; the spec's way is
    // OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=..., which wins when both are set.
    if let Some(v) = get("OTEL_ENVIRONMENT") {
        config.environment = Some(v.trim().to_owned());
    }
    if let Some(v) = get("OTEL_TRACES_SAMPLER") {
        let invalid = || Error::InvalidEnv {
            variable: "OTEL_TRACES_SAMPLER",
            value: v.clone(),
            accepted: SAMPLER_NAMES,
        };
        let sampler = Sampler::from_env_name(v.trim(), None).ok_or_else(invalid)?;
        // The spec: a sampler that takes no argument ignores OTEL_TRACES_SAMPLER_ARG, even an
        // invalid one.
        let ratio = match (sampler.ratio(), get("OTEL_TRACES_SAMPLER_ARG")) {
            (Some(_), Some(arg)) => Some(parse_ratio(&arg)?),
            _ => None,
        };
        config.sampler = Some(Sampler::from_env_name(v.trim(), ratio).ok_or_else(invalid)?);
    }
    if let Some(v) = get("OTEL_METRICS_EXEMPLAR_FILTER") {
        config.exemplars = Some(match v.trim().to_ascii_lowercase().as_str() {
            "trace_based" => true,
            "always_off" => false,
            _ => {
                return Err(Error::InvalidEnv {
                    variable: "OTEL_METRICS_EXEMPLAR_FILTER",
                    value: v,
                    accepted: "trace_based (the default: exemplars of measurements made in a sampled span) or always_off (always_on is not supported: an exemplar without a trace leads nowhere)",
                })
            }
        });
    }
    if let Some(v) = get("OTEL_PROPAGATORS") {
        config.env_propagators = Some(parse_propagators(&v)?);
    }
    if let Some(v) = get("RUST_LOG") {
        config.log_filter = Some(v);
    }
    config.env_export = export_from_env(get)?;
    Ok(())
}

fn parse_bool(variable: &'static str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::InvalidEnv {
            variable,
            value: value.to_owned(),
            accepted: "true or false (case-insensitive)",
        }),
    }
}

fn parse_ratio(value: &str) -> Result<f64, Error> {
    match value.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(Error::InvalidEnv {
            variable: "OTEL_TRACES_SAMPLER_ARG",
            value: value.to_owned(),
            accepted: "a number from 0 to 1, e.g. 0.25",
        }),
    }
}

/// `key1=value1,key2=value2`, values percent-encoded as in W3C baggage.
fn parse_resource_attributes(value: &str) -> Result<Vec<KeyValue>, Error> {
    let invalid = || {
        Error::InvalidEnv {
        variable: "OTEL_RESOURCE_ATTRIBUTES",
        value: value.to_owned(),
        accepted: "comma-separated key=value pairs with non-empty keys, values percent-encoded (e.g. team=payments,region=eu%2Dwest)",
    }
    };
    let mut out = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, val) = pair.split_once('=').ok_or_else(invalid)?;
        let key = key.trim();
        if key.is_empty() {
            return Err(invalid());
        }
        let val = percent_decode(val.trim()).ok_or_else(invalid)?;
        out.push(KeyValue::new(key.to_owned(), val));
    }
    Ok(out)
}

/// Reads the export variables through `get` (empty values already removed).
fn export_from_env(get: &Get<'_>) -> Result<ExportSettings, Error> {
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
        s.prometheus = Some(match host {
            Some(host) => prometheus_addr(&host, port)?,
            None => SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        });
    }
    Ok(s)
}

/// `OTEL_EXPORTER_PROMETHEUS_HOST`: an IP address (`127.0.0.1`, `::1`, `[::1]`), `localhost`
/// (the spec's default, taken as 127.0.0.1), or a host name resolved now, at start-up.
fn prometheus_addr(host: &str, port: u16) -> Result<SocketAddr, Error> {
    let name = host.trim();
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if bare.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    let resolved = (bare, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next());
    resolved.ok_or_else(|| Error::InvalidEnv {
        variable: "OTEL_EXPORTER_PROMETHEUS_HOST",
        value: host.to_owned(),
        accepted:
            "an IP address or a host name that resolves, e.g. localhost, 127.0.0.1 or 0.0.0.0",
    })
}

fn otlp_from_env(get: &Get<'_>, prefix: &'static str) -> Result<OtlpSettings, Error> {
    let var = |suffix: &str| -> &'static str { leak_name(prefix, suffix) };
    let mut s = OtlpSettings::default();
    if let Some(v) = get(var("_ENDPOINT")) {
        let variable = var("_ENDPOINT");
        Endpoint::parse(&v).map_err(|accepted| Error::InvalidEnv {
            variable,
            value: redact(&v),
            accepted,
        })?;
        s.endpoint = Some(Sourced::new(v.trim().to_owned(), variable));
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
        s.headers = parse_headers(var("_HEADERS"), &v)?;
    }
    for (suffix, slot) in [
        ("_CERTIFICATE", &mut s.certificate),
        ("_CLIENT_CERTIFICATE", &mut s.client_certificate),
        ("_CLIENT_KEY", &mut s.client_key),
    ] {
        if let Some(v) = get(var(suffix)) {
            *slot = Some(Sourced::new(PathBuf::from(v.trim()), var(suffix)));
        }
    }
    if let Some(v) = get(var("_INSECURE")) {
        s.insecure = Some(parse_bool(var("_INSECURE"), &v)?);
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

/// `name=value,name2=value2`, values percent-encoded (W3C baggage format). A pair without
/// `=`, or a header that HTTP cannot carry, is an error naming the header, never its value.
fn parse_headers(variable: &'static str, value: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for (i, pair) in value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(Error::InvalidEnv {
                variable,
                value: format!("<redacted> (pair {} has no `=`)", i + 1),
                accepted:
                    "comma-separated name=value pairs, values percent-encoded (W3C baggage format)",
            });
        };
        let k = k.trim();
        let invalid = |accepted| Error::InvalidEnv {
            variable,
            value: format!("{}=<redacted>", shown_name(k)),
            accepted,
        };
        let v = percent_decode(v.trim())
            .ok_or_else(|| invalid("a value percent-encoded as UTF-8, e.g. Bearer%20token"))?;
        check_header(k, &v).map_err(invalid)?;
        out.push((k.to_owned(), v));
    }
    Ok(out)
}

fn exporters(
    get: &Get<'_>,
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

/// `OTEL_PROPAGATORS`: a comma-separated list of `tracecontext`, `baggage`, or `none` alone.
fn parse_propagators(value: &str) -> Result<Vec<Propagator>, Error> {
    let invalid = || Error::InvalidEnv {
        variable: "OTEL_PROPAGATORS",
        value: value.to_owned(),
        accepted: "a comma-separated list of tracecontext, baggage; or none \
                   (b3, jaeger, xray and ottrace are not supported)",
    };
    let names: Vec<String> = value
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    if names == ["none"] {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for name in &names {
        let p = match name.as_str() {
            "tracecontext" => Propagator::TraceContext,
            "baggage" => Propagator::Baggage,
            _ => return Err(invalid()),
        };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

fn millis(
    get: &Get<'_>,
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

fn batch_from_env(get: &Get<'_>, prefix: &'static str) -> Result<BatchSettings, Error> {
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
