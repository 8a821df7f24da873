//! OTLP exporters for traces, metrics and logs, over http/protobuf, http/json or grpc.

use super::runtime::{ExportRuntime, OnRuntime};
use super::settings::{OtlpCompression, OtlpProtocol, OtlpSettings};
use crate::Error;
use opentelemetry_otlp::{
    Compression, LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig,
    WithHttpConfig, WithTonicConfig,
};
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

/// One signal's OTLP destination, fully resolved.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) protocol: OtlpProtocol,
    headers: Vec<(String, String)>,
    timeout: Duration,
    compression: Option<OtlpCompression>,
}

/// Which signal, for endpoint paths and error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Traces,
    Metrics,
    Logs,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Traces => "traces",
            Kind::Metrics => "metrics",
            Kind::Logs => "logs",
        }
    }
}

/// Resolves the destination of one signal: the per-signal settings over the generic ones.
/// `None` when no endpoint is configured and OTLP was not asked for explicitly: then nothing is
/// pushed and nothing is retried.
pub(crate) fn resolve(
    kind: Kind,
    signal: &OtlpSettings,
    generic: &OtlpSettings,
    explicit: bool,
) -> Option<Target> {
    let merged = signal.or(generic);
    let protocol = merged.protocol.unwrap_or(OtlpProtocol::HttpProtobuf);
    let url = match (&signal.endpoint, &generic.endpoint) {
        // A per-signal endpoint is used as given.
        (Some(url), _) => url.clone(),
        (None, Some(base)) => with_signal_path(base, kind, protocol),
        (None, None) if explicit => {
            let base = match protocol {
                OtlpProtocol::Grpc => "http://localhost:4317",
                _ => "http://localhost:4318",
            };
            with_signal_path(base, kind, protocol)
        }
        (None, None) => return None,
    };
    Some(Target {
        url,
        protocol,
        headers: merged.headers,
        timeout: merged.timeout.unwrap_or(Duration::from_secs(10)),
        compression: merged.compression,
    })
}

/// For http, the generic endpoint gets `/v1/<signal>`; grpc uses it as is.
fn with_signal_path(base: &str, kind: Kind, protocol: OtlpProtocol) -> String {
    match protocol {
        OtlpProtocol::Grpc => base.to_owned(),
        _ => format!("{}/v1/{}", base.trim_end_matches('/'), kind.name()),
    }
}

fn build_error(kind: Kind, source: opentelemetry_otlp::ExporterBuildError) -> Error {
    Error::Exporter {
        signal: kind.name(),
        source: Box::new(source),
    }
}

macro_rules! build_exporter {
    ($builder:expr, $target:expr, $runtime:expr) => {{
        let t: &Target = $target;
        match t.protocol {
            OtlpProtocol::Grpc => $runtime.enter(|| {
                let mut b = $builder
                    .with_tonic()
                    .with_endpoint(t.url.clone())
                    .with_timeout(t.timeout)
                    .with_metadata(metadata(&t.headers));
                if t.compression == Some(OtlpCompression::Gzip) {
                    b = b.with_compression(Compression::Gzip);
                }
                b.build()
            }),
            protocol => {
                let mut b = $builder
                    .with_http()
                    .with_protocol(if protocol == OtlpProtocol::HttpJson {
                        Protocol::HttpJson
                    } else {
                        Protocol::HttpBinary
                    })
                    .with_endpoint(t.url.clone())
                    .with_timeout(t.timeout)
                    .with_headers(t.headers.iter().cloned().collect::<HashMap<_, _>>());
                if t.compression == Some(OtlpCompression::Gzip) {
                    b = b.with_compression(Compression::Gzip);
                }
                b.build()
            }
        }
    }};
}

fn metadata(
    headers: &[(String, String)],
) -> opentelemetry_otlp::tonic_types::metadata::MetadataMap {
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            map.append(name, value);
        }
    }
    opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(map)
}

pub(crate) fn span_exporter(
    target: &Target,
    runtime: &Arc<ExportRuntime>,
    in_flight: Arc<AtomicUsize>,
) -> Result<OnRuntime<SpanExporter>, Error> {
    let inner = build_exporter!(SpanExporter::builder(), target, runtime)
        .map_err(|e| build_error(Kind::Traces, e))?;
    Ok(OnRuntime {
        inner,
        runtime: runtime.clone(),
        in_flight: Some(in_flight),
        timeout: None,
    })
}

pub(crate) fn log_exporter(
    target: &Target,
    runtime: &Arc<ExportRuntime>,
    in_flight: Arc<AtomicUsize>,
) -> Result<OnRuntime<LogExporter>, Error> {
    let inner = build_exporter!(LogExporter::builder(), target, runtime)
        .map_err(|e| build_error(Kind::Logs, e))?;
    Ok(OnRuntime {
        inner,
        runtime: runtime.clone(),
        in_flight: Some(in_flight),
        timeout: None,
    })
}

pub(crate) fn metric_exporter(
    target: &Target,
    runtime: &Arc<ExportRuntime>,
) -> Result<OnRuntime<MetricExporter>, Error> {
    let inner = build_exporter!(MetricExporter::builder(), target, runtime)
        .map_err(|e| build_error(Kind::Metrics, e))?;
    Ok(OnRuntime {
        inner,
        runtime: runtime.clone(),
        in_flight: None,
        timeout: None,
    })
}
