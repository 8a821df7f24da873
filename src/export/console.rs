//! `console` exporters: metrics as text lines on standard output.

use crate::format::text;
use opentelemetry::Value;
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
                let mut prefix = String::from("metric ");
                text::write_token_in_braces(&mut prefix, scope.scope().name());
                prefix.push('/');
                text::write_token_in_braces(&mut prefix, metric.name());
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

/// `k=v,k2=v2`: keys and values bare when they are simple tokens, else quoted and escaped
/// (`format::text`), so no attribute can end the braces early, pass for another attribute or
/// put an invisible character on the terminal.
fn attrs(it: &mut dyn Iterator<Item = &opentelemetry::KeyValue>) -> String {
    let mut out = String::new();
    for (i, kv) in it.enumerate() {
        if i > 0 {
            out.push(',');
        }
        text::write_token_in_braces(&mut out, kv.key.as_str());
        out.push('=');
        match &kv.value {
            Value::String(s) => text::write_token_in_braces(&mut out, s.as_str()),
            other => text::write_token_in_braces(&mut out, &other.to_string()),
        }
    }
    out
}

fn write_points<T: Display + Copy>(out: &mut String, prefix: &str, data: &MetricData<T>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::KeyValue;

    #[test]
    fn no_attribute_passes_for_another_or_ends_the_braces() {
        let kvs = [
            KeyValue::new("route", "/orders/{id}"),
            KeyValue::new("status", 200),
            KeyValue::new("a,b", "x}y=z"),
            KeyValue::new("evil", "ok,admin=true"),
            KeyValue::new("hidden", "\u{202e}\n"),
            KeyValue::new("list", Value::Array(vec![1i64, 2].into())),
        ];
        assert_eq!(
            attrs(&mut kvs.iter()),
            "route=\"/orders/{id}\",status=200,\"a,b\"=\"x}y=z\",evil=\"ok,admin=true\",\
             hidden=\"\\u{202e}\\n\",list=\"[1,2]\""
        );
    }
}
