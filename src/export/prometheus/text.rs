//! The text exposition of one collection, in the classic format (version 0.0.4) or in
//! OpenMetrics 1.0 with exemplars: Prometheus names for the OpenTelemetry metrics, valid label
//! names, and every clash between names or series resolved so that the whole text stays valid
//! for promtool and for a Prometheus server. Both formats share the names, labels and values;
//! they differ only in the metadata lines, the counter family name, exemplars and `# EOF`.
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
//!
//! OpenMetrics names a counter's family without `_total` (its sample keeps it). A counter
//! whose family name would be another family's, or that is exposed without `_total`, is an
//! `unknown` family of the classic sample name instead (no exemplar), so that the sample names,
//! and the PromQL written against them, are the same in both formats.

use crate::diagnostics::{count, report_once, DropReason, Output, Signal};
use crate::registry::exemplars::{self, Exemplar, Exemplars};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::UNIX_EPOCH;

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// The classic text format, version 0.0.4.
    Classic,
    /// OpenMetrics 1.0.0, with exemplars.
    OpenMetrics,
}

impl Format {
    /// Both formats, in the order of [`Format::index`].
    pub(super) const ALL: [Format; 2] = [Format::Classic, Format::OpenMetrics];

    /// The position of this format in [`Format::ALL`].
    pub(super) fn index(self) -> usize {
        match self {
            Format::Classic => 0,
            Format::OpenMetrics => 1,
        }
    }

    /// The `Content-Type` of the exposition.
    pub(super) fn content_type(self) -> &'static str {
        match self {
            Format::Classic => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

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

/// How a family appears in OpenMetrics.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OpenMetricsFamily {
    /// The family name (a counter's without `_total`).
    name: String,
    /// `counter`, `gauge`, `histogram` or `unknown`.
    kind: &'static str,
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
    /// The exemplars of the series, when the format has them.
    exemplars: Exemplified,
}

/// The exemplars of one series.
#[derive(Debug, Default)]
enum Exemplified {
    /// None kept (or the format has none).
    #[default]
    None,
    /// A counter's.
    One(Exemplar),
    /// A histogram's, one per bucket, `+Inf` last.
    Buckets(Vec<Option<Exemplar>>),
}

impl Exemplified {
    /// The exemplar of bucket `i` (a counter's is bucket 0).
    fn get(&self, i: usize) -> Option<Exemplar> {
        match self {
            Exemplified::None => None,
            Exemplified::One(e) => (i == 0).then_some(*e),
            Exemplified::Buckets(buckets) => buckets.get(i).copied().flatten(),
        }
    }
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
    /// The unit's suffix word (`milliseconds`), when the unit is a known one.
    unit: Option<String>,
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

/// The exposition of `metrics` in each of `formats`, in that order. Series left out are
/// counted when `count_drops` (once per collection: a second rendering of one collection
/// counts nothing).
pub(super) fn render(
    metrics: &ResourceMetrics,
    formats: &[Format],
    count_drops: bool,
) -> Vec<String> {
    let with_exemplars = formats.contains(&Format::OpenMetrics);
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
                unit: None,
                series: vec![series],
                merged: false,
            },
        ));
    }

    // Every instrument, merged with those of the same name and kind in other scopes.
    let mut merged: BTreeMap<(String, Kind), Family> = BTreeMap::new();
    for (scope_metrics, scope) in scopes.iter().zip(&scope_labels) {
        for metric in scope_metrics.metrics() {
            let exemplars = with_exemplars
                .then(|| exemplars::find(scope_metrics.scope().name(), metric.name()))
                .flatten()
                .filter(|e| !e.is_empty());
            let Some(family) = family(&mut keys, metric, scope, exemplars) else {
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
            left_out(
                count_drops,
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
            dedupe(&name, &mut family.series, count_drops);
        }
        families.push((name, family));
    }

    formats
        .iter()
        .map(|format| {
            // The last rendering's size, so that the text is not copied as it grows.
            let size = &LAST_SIZE[format.index()];
            let mut out = String::with_capacity(size.load(Ordering::Relaxed) / 8 * 9);
            encode_all(&mut out, &families, *format);
            size.store(out.len(), Ordering::Relaxed);
            out
        })
        .collect()
}

/// The size of the last rendering in each format, by [`Format::index`].
static LAST_SIZE: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// Appends `families`, named as given, in `format`.
fn encode_all(out: &mut String, families: &[(String, Family)], format: Format) {
    match format {
        Format::Classic => {
            for (name, family) in families {
                encode(out, name, family, None);
            }
        }
        Format::OpenMetrics => {
            for ((name, family), om) in families.iter().zip(openmetrics_families(families)) {
                encode(out, name, family, Some(&om));
            }
            out.push_str("# EOF\n");
        }
    }
}

/// Counts `n` series left out (when `count_drops`) and describes why once.
fn left_out(count_drops: bool, n: u64, key: &str, message: &dyn Fn() -> String) {
    if count_drops {
        count(
            Output::Prometheus,
            Signal::Metrics,
            DropReason::NameConflict,
            n,
        );
    }
    report_once(key, message);
}

/// How each of `families` (named as in the classic text) appears in OpenMetrics: a counter
/// named `x_total` is the family `x` when no family uses `x` as a name or sample name; any
/// other counter is an `unknown` family of its classic name. Every sample keeps its classic
/// name, and the family names stay distinct.
fn openmetrics_families(families: &[(String, Family)]) -> Vec<OpenMetricsFamily> {
    let used: HashSet<String> = families
        .iter()
        .flat_map(|(name, family)| occupied(name, family.kind))
        .collect();
    families
        .iter()
        .map(|(name, family)| match name.strip_suffix("_total") {
            Some(base)
                if family.kind == Kind::Counter && !base.is_empty() && !used.contains(base) =>
            {
                OpenMetricsFamily {
                    name: base.to_owned(),
                    kind: "counter",
                }
            }
            _ if family.kind == Kind::Counter => OpenMetricsFamily {
                name: name.clone(),
                kind: "unknown",
            },
            _ => OpenMetricsFamily {
                name: name.clone(),
                kind: family.kind.as_str(),
            },
        })
        .collect()
}

/// Leaves out the series whose labels equal another's, keeping the one whose keys needed no
/// change. A series' labels are in a fixed order (the attributes' by name, then the scope's by
/// name), so equal label sets are equal lists.
fn dedupe(name: &str, series: &mut Vec<Series>, count_drops: bool) {
    series.sort_by(|a, b| {
        (&a.labels, a.scope, a.renamed, &a.original).cmp(&(
            &b.labels,
            b.scope,
            b.renamed,
            &b.original,
        ))
    });
    let mut dropped = 0u64;
    let mut first = Vec::new();
    series.dedup_by(|later, kept| {
        let same = later.labels == kept.labels && later.scope == kept.scope;
        if same {
            if dropped == 0 {
                first = std::mem::take(&mut later.original);
            }
            dropped += 1;
        }
        same
    });
    if dropped > 0 {
        left_out(
            count_drops,
            dropped,
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
    exemplars: Option<&Exemplars>,
) -> Option<Family<'a>> {
    let (kind, series) = match metric.data() {
        AggregatedMetrics::F64(data) => points(keys, data, scope, exemplars),
        AggregatedMetrics::I64(data) => points(keys, data, scope, exemplars),
        AggregatedMetrics::U64(data) => points(keys, data, scope, exemplars),
    }?;
    Some(Family {
        base: metric_name(metric.name(), metric.unit()),
        source: metric.name().to_owned(),
        kind,
        help: metric.description().to_owned(),
        unit: unit_suffix(metric.unit()),
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
    exemplars: Option<&Exemplars>,
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
        MetricData::Sum(sum) => {
            let monotonic = sum.is_monotonic();
            let mut latest = match exemplars.filter(|_| monotonic) {
                Some(e) => {
                    let keys: Vec<u64> = sum
                        .data_points()
                        .map(|p| exemplars::key(p.attributes()))
                        .collect();
                    e.latest_each(&keys)
                }
                None => Vec::new(),
            }
            .into_iter();
            (
                if monotonic {
                    Kind::Counter
                } else {
                    Kind::Gauge
                },
                sum.data_points()
                    .map(|p| {
                        let value = Value::Scalar(p.value().as_number());
                        let mut series = series(keys, attributes(p.attributes()), scope, value);
                        if let Some(Some(e)) = latest.next() {
                            series.exemplars = Exemplified::One(e);
                        }
                        series
                    })
                    .collect(),
            )
        }
        MetricData::Histogram(histogram) => (
            Kind::Histogram,
            histogram
                .data_points()
                .map(|p| {
                    let mut cumulative = 0u64;
                    let buckets: Vec<(f64, u64)> = p
                        .bounds()
                        .zip(p.bucket_counts())
                        .map(|(bound, n)| {
                            cumulative = cumulative.saturating_add(n);
                            (bound, cumulative)
                        })
                        .collect();
                    let found = match exemplars {
                        Some(e) => {
                            let bounds: Vec<f64> = p.bounds().collect();
                            let found = e.of(p.attributes(), &bounds);
                            if found.iter().any(Option::is_some) {
                                Exemplified::Buckets(found)
                            } else {
                                Exemplified::None
                            }
                        }
                        None => Exemplified::None,
                    };
                    let value = Value::Histogram {
                        buckets,
                        sum: p.sum().as_number(),
                        count: p.count(),
                    };
                    let mut series = series(keys, attributes(p.attributes()), scope, value);
                    series.exemplars = found;
                    series
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
        exemplars: Exemplified::None,
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

/// Appends a family: classic text, or OpenMetrics when `om` says how it appears there.
fn encode(out: &mut String, name: &str, family: &Family, om: Option<&OpenMetricsFamily>) {
    let (family_name, kind) = match om {
        Some(om) => (om.name.as_str(), om.kind),
        None => (name, family.kind.as_str()),
    };
    let _ = write!(out, "# HELP {family_name} ");
    if family.help.is_empty() {
        // promtool lints a family without help text; say at least what it is.
        let _ = write!(out, "{family_name} (no description set)");
    } else {
        for c in family.help.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '"' if om.is_some() => out.push_str("\\\""),
                c => out.push(c),
            }
        }
    }
    out.push('\n');
    let _ = writeln!(out, "# TYPE {family_name} {kind}");
    if let (Some(_), Some(unit)) = (om, &family.unit) {
        if family_name
            .strip_suffix(unit.as_str())
            .is_some_and(|rest| rest.ends_with('_'))
        {
            let _ = writeln!(out, "# UNIT {family_name} {unit}");
        }
    }
    // Exemplars go on a counter's `_total` sample and on histogram buckets, in OpenMetrics only.
    let with_exemplars = om.is_some_and(|om| om.kind != "unknown");
    for series in &family.series {
        let exemplar = |i: usize| with_exemplars.then(|| series.exemplars.get(i)).flatten();
        match &series.value {
            Value::Scalar(v) => sample(out, name, "", series, None, *v, exemplar(0)),
            Value::Histogram {
                buckets,
                sum,
                count,
            } => {
                for (i, (bound, n)) in buckets.iter().enumerate() {
                    let n = Number::U64(*n);
                    sample(out, name, "_bucket", series, Some(*bound), n, exemplar(i));
                }
                let count = Number::U64(*count);
                let inf = exemplar(buckets.len());
                sample(
                    out,
                    name,
                    "_bucket",
                    series,
                    Some(f64::INFINITY),
                    count,
                    inf,
                );
                sample(out, name, "_sum", series, None, *sum, None);
                sample(out, name, "_count", series, None, count, None);
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
    exemplar: Option<Exemplar>,
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
            if v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
                for c in v.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '"' => out.push_str("\\\""),
                        '\n' => out.push_str("\\n"),
                        c => out.push(c),
                    }
                }
            } else {
                out.push_str(v);
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
    write_number(out, value);
    if let Some(e) = exemplar {
        write_exemplar(out, &e);
    }
    out.push('\n');
}

fn write_number(out: &mut String, value: Number) {
    match value {
        Number::F64(v) => write_float(out, v),
        Number::I64(n) => crate::format::write_i64(out, n),
        Number::U64(n) => crate::format::write_u64(out, n),
    }
}

/// Appends ` # {trace_id="…",span_id="…"} value timestamp` (OpenMetrics; the timestamp in
/// seconds, to the millisecond).
fn write_exemplar(out: &mut String, e: &Exemplar) {
    out.push_str(" # {trace_id=\"");
    write_hex(out, &e.trace_id.to_bytes());
    out.push_str("\",span_id=\"");
    write_hex(out, &e.span_id.to_bytes());
    out.push_str("\"} ");
    write_float(out, e.value);
    if let Ok(since) = e.time.duration_since(UNIX_EPOCH) {
        out.push(' ');
        crate::format::write_u64(out, since.as_secs());
        let millis = since.subsec_millis();
        out.push('.');
        for digit in [millis / 100, millis / 10 % 10, millis % 10] {
            out.push(char::from(b'0' + digit as u8));
        }
    }
}

/// Appends `bytes` (at most 16) as lowercase hex digits.
fn write_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 32];
    for (pair, b) in hex.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
    let len = 2 * bytes.len().min(16);
    out.push_str(std::str::from_utf8(&hex[..len]).unwrap_or_default());
}

/// Appends a sample value or bucket bound as Prometheus writes it.
fn write_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.fract() == 0.0 && v.abs() < 1e15 && (v != 0.0 || v.is_sign_positive()) {
        // A whole number prints as the integer it is (as `{v}` would), without float
        // formatting.
        crate::format::write_i64(out, v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SharedMetricReader;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::Context;
    use opentelemetry_sdk::metrics::reader::MetricReader as _;
    use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider, Temporality};
    use std::sync::Arc;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    /// A meter provider and a reader to collect from it (no resource: no `target_info`).
    fn provider() -> (SdkMeterProvider, Arc<ManualReader>) {
        let reader = Arc::new(
            ManualReader::builder()
                .with_temporality(Temporality::Cumulative)
                .build(),
        );
        let provider = SdkMeterProvider::builder()
            .with_reader(SharedMetricReader(reader.clone()))
            .with_resource(opentelemetry_sdk::Resource::builder_empty().build())
            .build();
        (provider, reader)
    }

    fn both(reader: &ManualReader) -> (String, String) {
        let mut metrics = ResourceMetrics::default();
        reader.collect(&mut metrics).expect("collect");
        let mut texts = render(&metrics, &[Format::Classic, Format::OpenMetrics], false);
        let om = texts.pop().expect("openmetrics");
        (texts.pop().expect("classic"), om)
    }

    /// Runs `f` inside a sampled span of trace [`TRACE`], span [`SPAN`].
    fn in_span(f: impl FnOnce()) {
        let sc = SpanContext::new(
            TraceId::from_hex(TRACE).unwrap(),
            SpanId::from_hex(SPAN).unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let _attached = Context::new().with_remote_span_context(sc).attach();
        f();
    }

    fn leaked_exemplars(scope: &str, name: &str) -> &'static Exemplars {
        let exemplars: &'static Exemplars = Box::leak(Box::default());
        exemplars::register(scope, name, exemplars);
        exemplars
    }

    #[test]
    fn openmetrics_counter_family_has_no_total_and_its_sample_an_exemplar() {
        let (provider, reader) = provider();
        let meter = provider.meter("om-counter-scope");
        let counter = meter
            .u64_counter("jobs")
            .with_description("Jobs \"done\"")
            .build();
        let exemplars = leaked_exemplars("om-counter-scope", "jobs");
        let attrs = [KeyValue::new("queue", "a\"b\\c\nd")];
        counter.add(1, &attrs);
        in_span(|| {
            counter.add(2, &attrs);
            exemplars.offer(None, 2.0, &[], || exemplars::key(&attrs));
        });
        let (classic, om) = both(&reader);

        assert!(classic.contains("# TYPE jobs_total counter\n"), "{classic}");
        assert!(
            classic.contains("# HELP jobs_total Jobs \"done\"\n"),
            "{classic}"
        );
        assert!(!classic.contains("trace_id"), "{classic}");
        assert!(!classic.contains("# EOF"), "{classic}");

        assert!(om.contains("# TYPE jobs counter\n"), "{om}");
        assert!(om.contains("# HELP jobs Jobs \\\"done\\\"\n"), "{om}");
        let line = om
            .lines()
            .find(|l| l.starts_with("jobs_total{"))
            .unwrap_or_else(|| panic!("no jobs_total sample:\n{om}"));
        let want = format!(
            r#"jobs_total{{queue="a\"b\\c\nd",otel_scope_name="om-counter-scope"}} 3 # {{trace_id="{TRACE}",span_id="{SPAN}"}} 2 "#
        );
        assert!(line.starts_with(&want), "{line}\nwanted {want}");
        let ts: f64 = line[want.len()..].parse().expect("exemplar timestamp");
        let now = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (now - ts).abs() < 60.0,
            "exemplar timestamp {ts}, now {now}"
        );
        assert!(om.ends_with("\n# EOF\n"), "{om}");
        assert_eq!(om.matches("# EOF").count(), 1);
    }

    #[test]
    fn openmetrics_histogram_buckets_carry_exemplars_and_the_unit() {
        let (provider, reader) = provider();
        let meter = provider.meter("om-histogram-scope");
        let bounds = [10.0, 100.0];
        let histogram = meter
            .f64_histogram("latency")
            .with_unit("ms")
            .with_boundaries(bounds.to_vec())
            .build();
        let exemplars = leaked_exemplars("om-histogram-scope", "latency");
        histogram.record(5.0, &[]);
        in_span(|| {
            for v in [50.0, 500.0] {
                histogram.record(v, &[]);
                exemplars.offer(None, v, &bounds, || exemplars::key(&[]));
            }
        });
        let (classic, om) = both(&reader);
        assert!(
            classic.contains("# TYPE latency_milliseconds histogram\n"),
            "{classic}"
        );
        assert!(!classic.contains("# UNIT"), "{classic}");
        assert!(
            om.contains("# TYPE latency_milliseconds histogram\n"),
            "{om}"
        );
        assert!(
            om.contains("# UNIT latency_milliseconds milliseconds\n"),
            "{om}"
        );
        let scope = r#"otel_scope_name="om-histogram-scope""#;
        let ex = |v: &str| format!(r#" # {{trace_id="{TRACE}",span_id="{SPAN}"}} {v} "#);
        let bucket = |le: &str| {
            om.lines()
                .find(|l| {
                    l.starts_with(&format!(
                        r#"latency_milliseconds_bucket{{{scope},le="{le}"}}"#
                    ))
                })
                .unwrap_or_else(|| panic!("no bucket {le}:\n{om}"))
                .to_owned()
        };
        // Outside a span: no exemplar in the first bucket.
        assert_eq!(
            bucket("10"),
            format!(r#"latency_milliseconds_bucket{{{scope},le="10"}} 1"#)
        );
        assert!(bucket("100").contains(&ex("50")), "{om}");
        assert!(bucket("+Inf").contains(&ex("500")), "{om}");
        assert!(bucket("+Inf").starts_with(&format!(
            r#"latency_milliseconds_bucket{{{scope},le="+Inf"}} 3 #"#
        )));
        for suffix in ["_sum", "_count"] {
            let line = om
                .lines()
                .find(|l| l.starts_with(&format!("latency_milliseconds{suffix}")))
                .unwrap_or_else(|| panic!("no {suffix}:\n{om}"));
            assert!(!line.contains('#'), "{line}");
        }
        // Apart from exemplars, `# UNIT` and `# EOF`, the samples are the classic ones.
        let samples = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split(" # ").next().unwrap().to_owned())
                .collect()
        };
        assert_eq!(samples(&classic), samples(&om));
    }

    #[test]
    fn openmetrics_family_names_stay_distinct() {
        let (provider, reader) = provider();
        let meter = provider.meter("om-clash-scope");
        // A counter `x` (`x_total`) beside a gauge `x`; a counter `y` beside a gauge `y_total`
        // (the counter is exposed as `y`).
        meter.u64_counter("x").build().add(1, &[]);
        meter.i64_gauge("x").build().record(2, &[]);
        meter.u64_counter("y").build().add(3, &[]);
        meter.i64_gauge("y_total").build().record(4, &[]);
        let (classic, om) = both(&reader);
        assert!(classic.contains("# TYPE x_total counter\n"), "{classic}");
        assert!(classic.contains("# TYPE y counter\n"), "{classic}");
        assert!(om.contains("# TYPE x_total unknown\n"), "{om}");
        assert!(om.contains("# TYPE x gauge\n"), "{om}");
        assert!(om.contains("# TYPE y unknown\n"), "{om}");
        assert!(om.contains("# TYPE y_total gauge\n"), "{om}");
        let mut families: Vec<&str> = om
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let n = families.len();
        families.sort();
        families.dedup();
        assert_eq!(families.len(), n, "{om}");
    }

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
    fn whole_floats_print_as_display_does() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -3.0,
            0.5,
            1e14,
            999_999_999_999_999.0,
            1e15,
            1e300,
            2.5e-7,
        ] {
            let mut out = String::new();
            write_float(&mut out, v);
            assert_eq!(out, format!("{v}"), "{v:?}");
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
