//! The text exposition format (version 0.0.4) of one collection: Prometheus names for the
//! OpenTelemetry metrics, valid label names, and every clash between names or series resolved
//! so that the whole text stays valid for promtool and for a Prometheus server.
//!
//! The rules (docs/configuration.md, "Prometheus"):
//! - a metric name is the instrument name with every character outside `[a-zA-Z0-9_:]` turned
//!   into `_` (a leading digit gets `_` before it), then `_<unit>` when a known unit is set;
//!   counters get `_total` unless they already end with it;
//! - a label name is the attribute key with every character outside `[a-zA-Z0-9_]` turned into
//!   `_`; a key that then starts with a digit, or is one the exposition reserves (`le`,
//!   `quantile`, `otel_scope_*`), gets `key_` before it, one that starts with `__` gets `key`;
//! - keys of one series that end up with one label name are one label, their values joined
//!   with `;` in the order of the original keys (the OpenTelemetry rule);
//! - two series of one metric that end up with the same labels: the one whose keys needed no
//!   change is exposed, the other is left out and counted;
//! - two metrics whose names (a histogram's with `_bucket`, `_count`, `_sum`) overlap: the
//!   first in name order is exposed, the other is left out and counted. A counter whose
//!   `_total` name is taken keeps its name without the suffix when that is free.

use crate::diagnostics::{drop_once, report_once, DropReason, Output, Signal};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Label names the exposition itself uses: a user key of that name gets `key_` before it.
const RESERVED: [&str; 2] = ["le", "quantile"];
/// The prefix of the instrumentation scope's labels.
const SCOPE_PREFIX: &str = "otel_scope_";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample value as the instrument gave it: integers stay exact past 2^53.
#[derive(Debug, Clone, Copy)]
enum Number {
    F64(f64),
    I64(i64),
    U64(u64),
}

#[derive(Debug)]
enum Value {
    Scalar(Number),
    Histogram {
        /// Upper bounds with cumulative counts, `+Inf` not included.
        buckets: Vec<(f64, u64)>,
        sum: Number,
        count: u64,
    },
}

#[derive(Debug)]
struct Series<'a> {
    /// The attributes' label names and values as exposed, sorted by name.
    labels: Vec<(String, String)>,
    /// The instrumentation scope's labels, sorted by name, built once per scope.
    scope: &'a [(String, String)],
    /// The attributes as given, sorted: names the series in messages, breaks ties.
    original: Vec<(String, String)>,
    /// Whether any attribute key had to change beyond `.` → `_`.
    renamed: bool,
    /// Whether any attribute key changed at all (then two series may have become one).
    mapped: bool,
    value: Value,
}

/// One instrument (of one scope), or several of one name and kind (of several scopes).
#[derive(Debug)]
struct Family<'a> {
    /// The Prometheus name before any `_total`.
    base: String,
    /// The instrument's name as given, for messages.
    source: String,
    kind: Kind,
    help: String,
    series: Vec<Series<'a>>,
    /// Whether several instruments (of several scopes) make up this family.
    merged: bool,
}

impl Family<'_> {
    /// The names this family may take, best first.
    fn candidates(&self) -> Vec<String> {
        if self.kind == Kind::Counter && !self.base.ends_with("_total") {
            vec![format!("{}_total", self.base), self.base.clone()]
        } else {
            vec![self.base.clone()]
        }
    }
}

/// The sample names a family of `kind` named `name` uses.
fn occupied(name: &str, kind: Kind) -> Vec<String> {
    match kind {
        Kind::Histogram => vec![
            name.to_owned(),
            format!("{name}_bucket"),
            format!("{name}_count"),
            format!("{name}_sum"),
        ],
        Kind::Counter | Kind::Gauge => vec![name.to_owned()],
    }
}

/// The text exposition of `metrics`.
pub(super) fn render(metrics: &ResourceMetrics) -> String {
    let mut scopes: Vec<_> = metrics.scope_metrics().collect();
    scopes.sort_by(|a, b| {
        (a.scope().name(), a.scope().version()).cmp(&(b.scope().name(), b.scope().version()))
    });
    let scope_labels: Vec<Vec<(String, String)>> =
        scopes.iter().map(|s| scope_labels(s.scope())).collect();
    let mut families: Vec<(String, Family)> = Vec::new();
    let mut taken: HashMap<String, String> = HashMap::new();
    let mut keys = Keys::new();

    // The resource, as `target_info`.
    let resource: Vec<(String, String)> = metrics
        .resource()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_string()))
        .collect();
    if !resource.is_empty() {
        let series = series(&mut keys, resource, &[], Value::Scalar(Number::U64(1)));
        taken.insert(
            "target_info".to_owned(),
            "the resource (target_info)".to_owned(),
        );
        families.push((
            "target_info".to_owned(),
            Family {
                base: "target_info".to_owned(),
                source: "target_info".to_owned(),
                kind: Kind::Gauge,
                help: "Target metadata".to_owned(),
                series: vec![series],
                merged: false,
            },
        ));
    }

    // Every instrument, merged with those of the same name and kind in other scopes.
    let mut merged: BTreeMap<(String, Kind), Family> = BTreeMap::new();
    for (scope_metrics, scope) in scopes.iter().zip(&scope_labels) {
        for metric in scope_metrics.metrics() {
            let Some(family) = family(&mut keys, metric, scope) else {
                continue;
            };
            match merged.entry((family.base.clone(), family.kind)) {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(family);
                }
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    let into = e.get_mut();
                    if into.help.is_empty() {
                        into.help = family.help;
                    }
                    into.series.extend(family.series);
                    into.merged = true;
                }
            }
        }
    }

    // Names are handed out in a fixed order, so the same metrics always win: by the name
    // wanted, an instrument already named so before one that gets it by a suffix, by kind.
    let mut order: Vec<Family> = merged
        .into_values()
        .filter(|f| !f.series.is_empty())
        .collect();
    order.sort_by_cached_key(|f| {
        let wanted = f.candidates().swap_remove(0);
        let suffixed = wanted != f.base;
        (wanted, suffixed, f.kind)
    });
    for mut family in order {
        let name = family.candidates().into_iter().find(|name| {
            occupied(name, family.kind)
                .iter()
                .all(|n| !taken.contains_key(n))
        });
        let what = format!("{} {:?}", family.kind.as_str(), family.source);
        let Some(name) = name else {
            let wanted = family.candidates().swap_remove(0);
            let holder = occupied(&wanted, family.kind)
                .iter()
                .find_map(|n| taken.get(n).cloned())
                .unwrap_or_default();
            drop_once(
                Output::Prometheus,
                Signal::Metrics,
                DropReason::NameConflict,
                family.series.len() as u64,
                &format!("prometheus-name:{}:{}", family.kind.as_str(), family.source),
                &|| {
                    format!(
                        "{what} cannot be exposed to Prometheus as {wanted}: the name is \
                         taken by {holder}; its series are left out of the exposition \
                         (counted once per series per collection as name_conflict)"
                    )
                },
            );
            continue;
        };
        if family.kind == Kind::Counter && name == family.base && !name.ends_with("_total") {
            report_once(&format!("prometheus-counter-name:{name}"), &|| {
                format!(
                    "{what} is exposed without the _total suffix: {name}_total is taken by {}",
                    taken
                        .get(&format!("{name}_total"))
                        .cloned()
                        .unwrap_or_default()
                )
            });
        }
        for n in occupied(&name, family.kind) {
            taken.insert(n, what.clone());
        }
        // One instrument's series have distinct attributes: only changed keys or several
        // instruments can make two of them equal.
        if family.merged || family.series.iter().any(|s| s.mapped) {
            dedupe(&name, &mut family.series);
        }
        families.push((name, family));
    }

    let mut out = String::new();
    for (name, family) in &families {
        encode(&mut out, name, family);
    }
    out
}

/// Leaves out the series whose labels equal another's, keeping the one whose keys needed no
/// change. A series' labels are in a fixed order (the attributes' by name, then the scope's by
/// name), so equal label sets are equal lists.
fn dedupe(name: &str, series: &mut Vec<Series>) {
    series.sort_by(|a, b| {
        (&a.labels, a.scope, a.renamed, &a.original).cmp(&(
            &b.labels,
            b.scope,
            b.renamed,
            &b.original,
        ))
    });
    let mut left_out = 0u64;
    let mut first = Vec::new();
    series.dedup_by(|later, kept| {
        let same = later.labels == kept.labels && later.scope == kept.scope;
        if same {
            if left_out == 0 {
                first = std::mem::take(&mut later.original);
            }
            left_out += 1;
        }
        same
    });
    if left_out > 0 {
        drop_once(
            Output::Prometheus,
            Signal::Metrics,
            DropReason::NameConflict,
            left_out,
            &format!("prometheus-series:{name}"),
            &|| {
                format!(
                    "{name}: the series with attributes {first:?} has the same labels as another \
                     once its keys are made valid label names; it is left out of the exposition \
                     (counted once per collection as name_conflict)"
                )
            },
        );
    }
}

/// The family of one instrument, `None` for kinds Prometheus has no text form for.
fn family<'a>(
    keys: &mut Keys,
    metric: &Metric,
    scope: &'a [(String, String)],
) -> Option<Family<'a>> {
    let (kind, series) = match metric.data() {
        AggregatedMetrics::F64(data) => points(keys, data, scope),
        AggregatedMetrics::I64(data) => points(keys, data, scope),
        AggregatedMetrics::U64(data) => points(keys, data, scope),
    }?;
    Some(Family {
        base: metric_name(metric.name(), metric.unit()),
        source: metric.name().to_owned(),
        kind,
        help: metric.description().to_owned(),
        series,
        merged: false,
    })
}

trait AsNumber: Copy {
    fn as_number(self) -> Number;
}

impl AsNumber for f64 {
    fn as_number(self) -> Number {
        Number::F64(self)
    }
}

impl AsNumber for i64 {
    fn as_number(self) -> Number {
        Number::I64(self)
    }
}

impl AsNumber for u64 {
    fn as_number(self) -> Number {
        Number::U64(self)
    }
}

fn attributes<'a>(kvs: impl Iterator<Item = &'a KeyValue>) -> Vec<(String, String)> {
    kvs.map(|kv| (kv.key.as_str().to_owned(), kv.value.to_string()))
        .collect()
}

fn points<'a, T: AsNumber>(
    keys: &mut Keys,
    data: &MetricData<T>,
    scope: &'a [(String, String)],
) -> Option<(Kind, Vec<Series<'a>>)> {
    Some(match data {
        MetricData::Gauge(gauge) => (
            Kind::Gauge,
            gauge
                .data_points()
                .map(|p| {
                    let value = Value::Scalar(p.value().as_number());
                    series(keys, attributes(p.attributes()), scope, value)
                })
                .collect(),
        ),
        MetricData::Sum(sum) => (
            if sum.is_monotonic() {
                Kind::Counter
            } else {
                Kind::Gauge
            },
            sum.data_points()
                .map(|p| {
                    let value = Value::Scalar(p.value().as_number());
                    series(keys, attributes(p.attributes()), scope, value)
                })
                .collect(),
        ),
        MetricData::Histogram(histogram) => (
            Kind::Histogram,
            histogram
                .data_points()
                .map(|p| {
                    let mut cumulative = 0u64;
                    let buckets = p
                        .bounds()
                        .zip(p.bucket_counts())
                        .map(|(bound, n)| {
                            cumulative = cumulative.saturating_add(n);
                            (bound, cumulative)
                        })
                        .collect();
                    let value = Value::Histogram {
                        buckets,
                        sum: p.sum().as_number(),
                        count: p.count(),
                    };
                    series(keys, attributes(p.attributes()), scope, value)
                })
                .collect(),
        ),
        MetricData::ExponentialHistogram(_) => return None,
    })
}

/// A series: the attributes under valid label names, and the scope's labels.
fn series<'a>(
    keys: &mut Keys,
    mut original: Vec<(String, String)>,
    scope: &'a [(String, String)],
    value: Value,
) -> Series<'a> {
    original.sort();
    let mut renamed = false;
    let mut mapped = false;
    let mut named: Vec<(String, usize)> = original
        .iter()
        .enumerate()
        .map(|(i, (key, _))| {
            let (name, changed) = exposed_key(keys, key);
            renamed |= changed;
            mapped |= name != *key;
            (name, i)
        })
        .collect();
    if mapped {
        // By name, then in the order of the original keys.
        named.sort();
    }
    let mut labels = Vec::with_capacity(named.len());
    let mut i = 0;
    while i < named.len() {
        let mut j = i + 1;
        while j < named.len() && named[j].0 == named[i].0 {
            j += 1;
        }
        let value = if j - i == 1 {
            original[named[i].1].1.clone()
        } else {
            let group = &named[i..j];
            report_once(&format!("prometheus-label-join:{}", named[i].0), &|| {
                let keys: Vec<&str> = group.iter().map(|(_, k)| original[*k].0.as_str()).collect();
                format!(
                    "attribute keys {keys:?} are all exposed as the label {:?}: their values \
                     are joined with ';'",
                    group[0].0
                )
            });
            group
                .iter()
                .map(|(_, k)| original[*k].1.as_str())
                .collect::<Vec<_>>()
                .join(";")
        };
        labels.push((std::mem::take(&mut named[i].0), value));
        i = j;
    }
    Series {
        labels,
        scope,
        original,
        renamed,
        mapped,
        value,
    }
}

/// The label names of the attribute keys seen in one collection, and whether each changed
/// beyond `.` → `_`: a key is looked at once, not once per series.
type Keys = HashMap<String, (String, bool)>;

/// The label name of an attribute key, and whether it changed beyond `.` → `_` (then reported
/// once).
fn exposed_key(keys: &mut Keys, key: &str) -> (String, bool) {
    if let Some(known) = keys.get(key) {
        return known.clone();
    }
    let name = label_name(key);
    let changed = name != key.replace('.', "_");
    if changed {
        report_once(&format!("prometheus-label:{key}"), &|| {
            format!(
                "attribute key {key:?} is not a valid Prometheus label name or is one the \
                 exposition reserves; it is exposed as {name:?}"
            )
        });
    }
    keys.insert(key.to_owned(), (name.clone(), changed));
    (name, changed)
}

/// The instrumentation scope's labels, sorted by name: `otel_scope_name`, `otel_scope_version`,
/// `otel_scope_schema_url` and `otel_scope_<attribute>`.
fn scope_labels(scope: &InstrumentationScope) -> Vec<(String, String)> {
    let mut labels = vec![(format!("{SCOPE_PREFIX}name"), scope.name().to_owned())];
    if let Some(version) = scope.version() {
        labels.push((format!("{SCOPE_PREFIX}version"), version.to_owned()));
    }
    if let Some(url) = scope.schema_url() {
        labels.push((format!("{SCOPE_PREFIX}schema_url"), url.to_owned()));
    }
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for kv in scope.attributes() {
        let key = kv.key.as_str();
        if matches!(key, "name" | "version" | "schema_url") {
            continue;
        }
        let name = format!("{SCOPE_PREFIX}{}", label_chars(key));
        attributes
            .entry(name)
            .or_default()
            .push(kv.value.to_string());
    }
    for (name, values) in attributes {
        if labels.iter().all(|(n, _)| *n != name) {
            labels.push((name, values.join(";")));
        }
    }
    labels.sort();
    labels
}

/// `s` with every character outside `[a-zA-Z0-9_]` turned into `_`.
fn label_chars(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A valid Prometheus label name for an attribute key that no label of the exposition uses.
fn label_name(key: &str) -> String {
    let mapped = label_chars(key);
    let b = mapped.as_bytes();
    if b.is_empty() {
        "key_empty".to_owned()
    } else if b[0].is_ascii_digit()
        || RESERVED.contains(&mapped.as_str())
        || mapped.starts_with(SCOPE_PREFIX)
    {
        format!("key_{mapped}")
    } else if mapped.starts_with("__") {
        format!("key{mapped}")
    } else {
        mapped
    }
}

/// A valid metric name for an instrument: invalid characters become `_`, a leading digit gets
/// `_` before it, and a known unit adds its suffix (once).
fn metric_name(name: &str, unit: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.as_bytes()[0].is_ascii_digit() {
        out.insert(0, '_');
    }
    if let Some(suffix) = unit_suffix(unit) {
        let suffix = format!("_{suffix}");
        if !out.ends_with(&suffix) {
            out.push_str(&suffix);
        }
    }
    out
}

/// The Prometheus suffix of an OpenTelemetry unit, as opentelemetry-prometheus names them.
fn unit_suffix(unit: &str) -> Option<String> {
    if unit.is_empty() {
        return None;
    }
    if let Some(unit) = unit_word(unit) {
        return Some(unit.to_owned());
    }
    let (first, second) = unit.split_once('/')?;
    let per = per_unit_word(second)?;
    let not_applicable = ["1", "d", "h", "min", "s", "ms", "us", "ns"].contains(&first);
    match (not_applicable, unit_word(first)) {
        (false, Some(first)) => Some(format!("{first}_per_{per}")),
        _ => Some(format!("per_{per}")),
    }
}

fn unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" | "B" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" | "KB" => "kilobytes",
        "MBy" | "MB" => "megabytes",
        "GBy" | "GB" => "gigabytes",
        "TBy" | "TB" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "ratio",
        "%" => "percent",
        _ => return None,
    })
}

fn per_unit_word(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

fn encode(out: &mut String, name: &str, family: &Family) {
    let help = if family.help.is_empty() {
        // promtool lints a family without help text; say at least what it is.
        format!("{name} (no description set)")
    } else {
        family.help.replace('\\', "\\\\").replace('\n', "\\n")
    };
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
    for series in &family.series {
        match &series.value {
            Value::Scalar(v) => sample(out, name, "", series, None, *v),
            Value::Histogram {
                buckets,
                sum,
                count,
            } => {
                for (bound, n) in buckets {
                    sample(out, name, "_bucket", series, Some(*bound), Number::U64(*n));
                }
                let count = Number::U64(*count);
                sample(out, name, "_bucket", series, Some(f64::INFINITY), count);
                sample(out, name, "_sum", series, None, *sum);
                sample(out, name, "_count", series, None, count);
            }
        }
    }
}

/// One sample line; `le` is a bucket's upper bound.
fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    series: &Series,
    le: Option<f64>,
    value: Number,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !series.labels.is_empty() || !series.scope.is_empty() || le.is_some() {
        out.push('{');
        for (i, (n, v)) in series.labels.iter().chain(series.scope).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(n);
            out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        if let Some(le) = le {
            if !series.labels.is_empty() || !series.scope.is_empty() {
                out.push(',');
            }
            out.push_str("le=\"");
            write_float(out, le);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    match value {
        Number::F64(v) => write_float(out, v),
        Number::I64(n) => crate::format::write_i64(out, n),
        Number::U64(n) => crate::format::write_u64(out, n),
    }
    out.push('\n');
}

/// Appends a sample value or bucket bound as Prometheus writes it.
fn write_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_are_valid_and_not_reserved() {
        for (key, want) in [
            ("ok.key", "ok_key"),
            ("a:b", "a_b"),
            ("1abc", "key_1abc"),
            ("__x", "key__x"),
            ("le", "key_le"),
            ("quantile", "key_quantile"),
            ("otel_scope_name", "key_otel_scope_name"),
            ("otel.scope.version", "key_otel_scope_version"),
            ("__name__", "key__name__"),
            ("", "key_empty"),
            ("é", "_"),
        ] {
            assert_eq!(label_name(key), want, "{key:?}");
        }
    }

    #[test]
    fn metric_names_take_units_once() {
        assert_eq!(metric_name("latency", "ms"), "latency_milliseconds");
        assert_eq!(
            metric_name("latency_milliseconds", "ms"),
            "latency_milliseconds"
        );
        assert_eq!(metric_name("a.b-c", ""), "a_b_c");
        assert_eq!(metric_name("1x", ""), "_1x");
        assert_eq!(metric_name("rate", "m/s"), "rate_meters_per_second");
        assert_eq!(metric_name("rate", "{req}/s"), "rate_per_second");
    }
}
