//! OTLP exporters for traces, metrics and logs, over http/protobuf, http/json or grpc.

use super::protobuf::HttpProtobuf;
use super::runtime::{Delivery, ExportRuntime, OnRuntime, Sends, TakesLogs, TakesSpans};
use super::tls::Tls;
use super::transport::{LastError, Transport};
use crate::config::{
    check_header, redact, shown_name, Endpoint, OtlpCompression, OtlpProtocol, OtlpSettings,
    Scheme, Sourced,
};
use crate::diagnostics::Signal;
use crate::error::Error;
use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::{
    Compression, ExporterBuildError, LogExporter, MetricExporter, Protocol, SpanExporter,
    WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, SdkLogRecord};
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

/// One signal's OTLP destination, fully resolved and checked.
pub(crate) struct Target {
    /// The URL to connect to, without credentials.
    pub(crate) url: String,
    pub(crate) protocol: OtlpProtocol,
    /// Checked headers; an endpoint's credentials are one of them (`Authorization`).
    headers: Vec<(String, String)>,
    timeout: Duration,
    compression: Option<OtlpCompression>,
    tls: Tls,
    /// The cause of the last failed export (http only: the grpc exporter reports its own).
    pub(crate) last_error: Arc<LastError>,
}

impl std::fmt::Debug for Target {
    // Never the header values (credentials).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("protocol", &self.protocol)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Target {
    /// The HTTP client for this target: its TLS, its headers, its timeout, and its last error
    /// kept for the drop report.
    fn transport(&self) -> Result<Transport, ExporterBuildError> {
        let tls = self
            .tls
            .rustls_config()
            .map_err(|err| ExporterBuildError::InvalidConfiguration(format!("tls: {err}")))?;
        Ok(Transport::new(
            tls,
            &self.headers,
            self.timeout,
            Arc::clone(&self.last_error),
        ))
    }
}

/// Resolves the destination of one signal: the per-signal settings over the generic ones.
/// `None` when no endpoint is configured and OTLP was not asked for explicitly: then nothing is
/// pushed and nothing is retried. Every value the builder gave unchecked is checked here, and
/// the TLS files are read: a bad one is a start-up error naming its setting.
pub(crate) fn resolve(
    kind: Signal,
    signal: &OtlpSettings,
    generic: &OtlpSettings,
    explicit: bool,
) -> Result<Option<Target>, Error> {
    let merged = signal.or(generic);
    let protocol = merged.protocol.unwrap_or(OtlpProtocol::HttpProtobuf);
    let default;
    let (endpoint, per_signal) = match (&signal.endpoint, &generic.endpoint) {
        (Some(url), _) => (url, true),
        (None, Some(base)) => (base, false),
        (None, None) if explicit => {
            default = Sourced::new(
                match protocol {
                    OtlpProtocol::Grpc => "http://localhost:4317".to_owned(),
                    _ => "http://localhost:4318".to_owned(),
                },
                "default",
            );
            (&default, false)
        }
        (None, None) => return Ok(None),
    };
    let invalid = |value: String, accepted: &'static str| invalid(endpoint.from, value, accepted);
    let parsed = Endpoint::parse(&endpoint.value)
        .map_err(|accepted| invalid(redact(&endpoint.value), accepted))?;
    if parsed.scheme == Scheme::None && protocol != OtlpProtocol::Grpc {
        return Err(invalid(
            parsed.display(),
            "an http:// or https:// URL: a scheme-less host:port is for grpc only",
        ));
    }
    let insecure = merged.insecure.unwrap_or(false);
    let mut url = parsed.url_with(insecure);
    if !per_signal && protocol != OtlpProtocol::Grpc {
        url = format!("{}/v1/{}", url.trim_end_matches('/'), kind.otlp_name());
    }
    let mut headers = Vec::with_capacity(merged.headers.len() + 1);
    for (name, value) in &merged.headers {
        // Headers from the environment were checked as they were read; these are the
        // builder's.
        check_header(name, value).map_err(|accepted| Error::InvalidSetting {
            setting: "OtlpSettings::with_header",
            value: format!("{}=<redacted>", shown_name(name)),
            accepted,
        })?;
        headers.push((name.clone(), value.clone()));
    }
    if let Some(auth) = parsed.basic_auth() {
        // An explicit Authorization header wins over the endpoint's credentials.
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            headers.push(("authorization".to_owned(), auth));
        }
    }
    let tls = Tls::load(
        merged.certificate.as_ref(),
        merged.client_certificate.as_ref(),
        merged.client_key.as_ref(),
        url.starts_with("https://"),
    )?;
    Ok(Some(Target {
        url,
        protocol,
        headers,
        timeout: merged.timeout.unwrap_or(Duration::from_secs(10)),
        compression: merged.compression,
        tls,
        last_error: Arc::default(),
    }))
}

/// The error for a bad value of the setting `from`: a variable's or a builder method's.
fn invalid(from: &'static str, value: String, accepted: &'static str) -> Error {
    if from.starts_with("OTEL_") {
        Error::InvalidEnv {
            variable: from,
            value,
            accepted,
        }
    } else {
        Error::InvalidSetting {
            setting: from,
            value,
            accepted,
        }
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
    .map_err(|source| build_error(signal, source))?;
    Ok(on_runtime(inner, target, runtime, in_flight))
}

/// The start-up error for `signal`'s exporter that could not be built.
fn build_error(signal: Signal, source: ExporterBuildError) -> Error {
    Error::Exporter {
        signal: signal.otlp_name(),
        source: Box::new(source),
    }
}

/// `inner`, run on `runtime`, reporting its failures with the target's last transport error.
fn on_runtime<E>(
    inner: E,
    target: &Target,
    runtime: &Arc<ExportRuntime>,
    in_flight: Option<Arc<AtomicUsize>>,
) -> OnRuntime<E> {
    OnRuntime {
        inner,
        runtime: runtime.clone(),
        in_flight,
        timeout: None,
        last_error: Some(Arc::clone(&target.last_error)),
        tls: target.url.starts_with("https://"),
    }
}

/// The span or log exporter for an http/protobuf `target`: unitel's own encoding
/// ([`HttpProtobuf`]). `in_flight` is released as its batches finish.
pub(crate) fn protobuf_exporter(
    signal: Signal,
    target: &Target,
    runtime: &Arc<ExportRuntime>,
    in_flight: Arc<AtomicUsize>,
) -> Result<OnRuntime<HttpProtobuf>, Error> {
    let url = http::Uri::try_from(target.url.as_str()).map_err(|err| {
        build_error(
            signal,
            ExporterBuildError::InvalidConfiguration(format!("endpoint: {err}")),
        )
    })?;
    let exporter = HttpProtobuf::new(
        target.transport().map_err(|e| build_error(signal, e))?,
        url,
        target.compression == Some(OtlpCompression::Gzip),
        target.timeout,
    );
    Ok(on_runtime(exporter, target, runtime, Some(in_flight)))
}

/// A tonic exporter builder set up for `t`: its own channel (TLS from [`Tls`]), and an
/// interceptor that replaces the metadata the upstream exporter adds from the environment
/// with the resolved headers.
fn grpc<B: WithExportConfig + WithTonicConfig>(
    builder: B,
    t: &Target,
) -> Result<B, ExporterBuildError> {
    use tonic::transport::Endpoint as Channel;
    let invalid = |err: &dyn std::error::Error| {
        ExporterBuildError::InvalidConfiguration(format!("endpoint: {err}"))
    };
    let mut channel = Channel::from_shared(t.url.clone())
        .map_err(|e| invalid(&e))?
        .timeout(t.timeout)
        .connect_timeout(t.timeout);
    if t.url.starts_with("https://") {
        channel = channel
            .tls_config(t.tls.tonic_config())
            .map_err(|e| invalid(&e))?;
    }
    let metadata = metadata(&t.headers);
    let builder = builder
        .with_endpoint(t.url.clone())
        .with_timeout(t.timeout)
        .with_channel(channel.connect_lazy())
        .with_interceptor(move |mut request: tonic::Request<()>| {
            *request.metadata_mut() = metadata.clone();
            Ok(request)
        });
    Ok(match t.compression {
        Some(OtlpCompression::Gzip) => builder.with_compression(Compression::Gzip),
        _ => builder,
    })
}

/// An http exporter builder set up for `t`, on a [`Transport`] that owns the headers.
fn http<B: WithExportConfig + WithHttpConfig>(
    builder: B,
    t: &Target,
) -> Result<B, ExporterBuildError> {
    let builder = builder
        .with_protocol(match t.protocol {
            OtlpProtocol::HttpJson => Protocol::HttpJson,
            _ => Protocol::HttpBinary,
        })
        .with_endpoint(t.url.clone())
        .with_timeout(t.timeout)
        .with_http_client(t.transport()?);
    Ok(match t.compression {
        Some(OtlpCompression::Gzip) => builder.with_compression(Compression::Gzip),
        _ => builder,
    })
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
        || grpc(SpanExporter::builder().with_tonic(), target)?.build(),
        || http(SpanExporter::builder().with_http(), target)?.build(),
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
        || grpc(LogExporter::builder().with_tonic(), target)?.build(),
        || http(LogExporter::builder().with_http(), target)?.build(),
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
        || grpc(MetricExporter::builder().with_tonic(), target)?.build(),
        || http(MetricExporter::builder().with_http(), target)?.build(),
    )
}

impl Sends for SpanExporter {
    type Taken = Vec<SpanData>;

    /// opentelemetry-otlp only logs a partial success: nothing is rejected here.
    async fn send(&self, batch: Vec<SpanData>) -> Delivery {
        opentelemetry_sdk::trace::SpanExporter::export(self, batch).await?;
        Ok(None)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        opentelemetry_sdk::trace::SpanExporter::shutdown_with_timeout(self, timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        opentelemetry_sdk::trace::SpanExporter::set_resource(self, resource);
    }
}

impl TakesSpans for SpanExporter {
    fn take(&self, batch: Vec<SpanData>) -> Vec<SpanData> {
        batch
    }
}

impl Sends for LogExporter {
    type Taken = Vec<(SdkLogRecord, InstrumentationScope)>;

    async fn send(&self, batch: Self::Taken) -> Delivery {
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            batch.iter().map(|(r, s)| (r, s)).collect();
        opentelemetry_sdk::logs::LogExporter::export(self, LogBatch::new(&refs)).await?;
        Ok(None)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        opentelemetry_sdk::logs::LogExporter::shutdown_with_timeout(self, timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        opentelemetry_sdk::logs::LogExporter::set_resource(self, resource);
    }
}

impl TakesLogs for LogExporter {
    /// The records are copied to be sent after the call (a clone each, far cheaper than
    /// waiting for the collector).
    fn take(&self, batch: &LogBatch<'_>) -> Self::Taken {
        batch
            .iter()
            .map(|(record, scope)| (record.clone(), scope.clone()))
            .collect()
    }
}
