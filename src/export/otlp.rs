//! OTLP exporters for traces, metrics and logs, over http/protobuf, http/json or grpc.

use super::runtime::{ExportRuntime, OnRuntime};
use crate::config::{OtlpCompression, OtlpProtocol, OtlpSettings};
use crate::diagnostics::Signal;
use crate::error::Error;
use opentelemetry_otlp::{
    Compression, ExporterBuildError, LogExporter, MetricExporter, Protocol, SpanExporter,
    WithExportConfig, WithHttpConfig, WithTonicConfig,
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

/// Resolves the destination of one signal: the per-signal settings over the generic ones.
/// `None` when no endpoint is configured and OTLP was not asked for explicitly: then nothing is
/// pushed and nothing is retried.
pub(crate) fn resolve(
    kind: Signal,
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
fn with_signal_path(base: &str, kind: Signal, protocol: OtlpProtocol) -> String {
    match protocol {
        OtlpProtocol::Grpc => base.to_owned(),
        _ => format!("{}/v1/{}", base.trim_end_matches('/'), kind.otlp_name()),
    }
}

/// The grpc exporter from `grpc`, built inside the export runtime (tonic needs its reactor), or
/// the http one from `http`, as the target asks; its I/O then runs on that runtime, and each
/// finished batch releases its places in `in_flight`.
fn build<E>(
    signal: Signal,
    target: &Target,
    runtime: &Arc<ExportRuntime>,
    in_flight: Option<Arc<AtomicUsize>>,
    grpc: impl FnOnce() -> Result<E, ExporterBuildError>,
    http: impl FnOnce() -> Result<E, ExporterBuildError>,
) -> Result<OnRuntime<E>, Error> {
    let inner = match target.protocol {
        OtlpProtocol::Grpc => runtime.enter(grpc),
        _ => http(),
    }
    .map_err(|source| Error::Exporter {
        signal: signal.otlp_name(),
        source: Box::new(source),
    })?;
    Ok(OnRuntime {
        inner,
        runtime: runtime.clone(),
        in_flight,
        timeout: None,
    })
}

/// A tonic exporter builder set up for `t`.
fn grpc<B: WithExportConfig + WithTonicConfig>(builder: B, t: &Target) -> B {
    let builder = builder
        .with_endpoint(t.url.clone())
        .with_timeout(t.timeout)
        .with_metadata(metadata(&t.headers));
    match t.compression {
        Some(OtlpCompression::Gzip) => builder.with_compression(Compression::Gzip),
        _ => builder,
    }
}

/// An http exporter builder set up for `t`.
fn http<B: WithExportConfig + WithHttpConfig>(builder: B, t: &Target) -> B {
    let builder = builder
        .with_protocol(match t.protocol {
            OtlpProtocol::HttpJson => Protocol::HttpJson,
            _ => Protocol::HttpBinary,
        })
        .with_endpoint(t.url.clone())
        .with_timeout(t.timeout)
        .with_headers(t.headers.iter().cloned().collect::<HashMap<_, _>>());
    match t.compression {
        Some(OtlpCompression::Gzip) => builder.with_compression(Compression::Gzip),
        _ => builder,
    }
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

/// The span exporter for `target`; `in_flight` is released as its batches finish.
pub(crate) fn span_exporter(
    target: &Target,
    runtime: &Arc<ExportRuntime>,
    in_flight: Arc<AtomicUsize>,
) -> Result<OnRuntime<SpanExporter>, Error> {
    build(
        Signal::Spans,
        target,
        runtime,
        Some(in_flight),
        || grpc(SpanExporter::builder().with_tonic(), target).build(),
        || http(SpanExporter::builder().with_http(), target).build(),
    )
}

/// The log exporter for `target`; `in_flight` is released as its batches finish.
pub(crate) fn log_exporter(
    target: &Target,
    runtime: &Arc<ExportRuntime>,
    in_flight: Arc<AtomicUsize>,
) -> Result<OnRuntime<LogExporter>, Error> {
    build(
        Signal::Logs,
        target,
        runtime,
        Some(in_flight),
        || grpc(LogExporter::builder().with_tonic(), target).build(),
        || http(LogExporter::builder().with_http(), target).build(),
    )
}

/// The metric exporter for `target`.
pub(crate) fn metric_exporter(
    target: &Target,
    runtime: &Arc<ExportRuntime>,
) -> Result<OnRuntime<MetricExporter>, Error> {
    build(
        Signal::Metrics,
        target,
        runtime,
        None,
        || grpc(MetricExporter::builder().with_tonic(), target).build(),
        || http(MetricExporter::builder().with_http(), target).build(),
    )
}
