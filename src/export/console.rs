//! `console` exporters: metrics as text lines on standard output.

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::Temporality;
use std::fmt::{Display, Write as _};
use std::io::Write as _;
use std::time::Duration;

/// Prints every data point as `metric <scope>/<name>{k=v,..} <value>` at each export.
#[derive(Debug)]
pub(crate) struct ConsoleMetrics;

impl PushMetricExporter for ConsoleMetrics {
    fn export(
        &self,
        metrics: &ResourceMetrics,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let mut out = String::new();
        for scope in metrics.scope_metrics() {
            for metric in scope.metrics() {
                let prefix = format!("metric {}/{}", scope.scope().name(), metric.name());
                match metric.data() {
                    AggregatedMetrics::F64(d) => write_points(&mut out, &prefix, d),
                    AggregatedMetrics::U64(d) => write_points(&mut out, &prefix, d),
                    AggregatedMetrics::I64(d) => write_points(&mut out, &prefix, d),
                }
            }
        }
        let _ = std::io::stdout().lock().write_all(out.as_bytes());
        std::future::ready(Ok(()))
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

fn write_points<T: Display + Copy>(out: &mut String, prefix: &str, data: &MetricData<T>) {
    let attrs = |it: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
        it.map(|kv| format!("{}={}", kv.key, kv.value))
            .collect::<Vec<_>>()
            .join(",")
    };
    match data {
        MetricData::Gauge(g) => g.data_points().for_each(|p| {
            let _ = writeln!(
                out,
                "{prefix}{{{}}} {}",
                attrs(&mut p.attributes()),
                p.value()
            );
        }),
        MetricData::Sum(s) => s.data_points().for_each(|p| {
            let _ = writeln!(
                out,
                "{prefix}{{{}}} {}",
                attrs(&mut p.attributes()),
                p.value()
            );
        }),
        MetricData::Histogram(h) => h.data_points().for_each(|p| {
            let _ = writeln!(
                out,
                "{prefix}{{{}}} count={} sum={}",
                attrs(&mut p.attributes()),
                p.count(),
                p.sum()
            );
        }),
        MetricData::ExponentialHistogram(h) => h.data_points().for_each(|p| {
            let _ = writeln!(
                out,
                "{prefix}{{{}}} count={}",
                attrs(&mut p.attributes()),
                p.count()
            );
        }),
    }
}
