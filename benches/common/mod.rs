//! What every bench shares: the hand-wired bare stack, an exporter that discards, and the
//! criterion settings.
//!
//! The bare stack is tracing + tracing-subscriber + tracing-opentelemetry + opentelemetry_sdk,
//! set up as the tracing-opentelemetry docs show, with the same batch span processor and the
//! same discarding exporter as the facade, so export cost is in and the network is out.

#![allow(dead_code, missing_docs, unreachable_pub)]

use criterion::measurement::WallTime;
use criterion::{black_box, BenchmarkGroup, Criterion};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

/// Receives batches and drops them.
#[derive(Debug)]
pub struct Discard;

impl SpanExporter for Discard {
    fn export(
        &self,
        _batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        std::future::ready(Ok(()))
    }
}

/// The batch processor both stacks export through.
pub fn discarding_processor() -> BatchSpanProcessor {
    BatchSpanProcessor::builder(Discard).build()
}

/// How the bare stack's tracing-opentelemetry layer is set up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bare {
    /// tracing-opentelemetry's defaults, as its docs show: every span also carries its code
    /// location (`code.file.path`, `code.module.name`, `code.line.number`), the thread
    /// (`thread.id`, `thread.name`), `target`, and `busy_ns` / `idle_ns` (eight attributes
    /// the facade's span does not have), and every event in a span becomes a span event.
    Default,
    /// The same with location, threads, target and busy/idle tracking switched off: the span
    /// carries only what the caller gave it, like the facade's.
    Lean,
}

impl Bare {
    /// The label benches print for this stack.
    pub fn label(self) -> &'static str {
        match self {
            Bare::Default => "bare",
            Bare::Lean => "bare lean",
        }
    }
}

/// The bare stack: a tracing subscriber with tracing-opentelemetry over an SDK provider.
pub fn bare_stack(sampler: Sampler) -> (impl tracing::Subscriber + Send + Sync, SdkTracerProvider) {
    bare_stack_as(sampler, Bare::Default)
}

/// [`bare_stack`] with its layer set up as `bare` says.
pub fn bare_stack_as(
    sampler: Sampler,
    bare: Bare,
) -> (impl tracing::Subscriber + Send + Sync, SdkTracerProvider) {
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(discarding_processor())
        .build();
    let mut layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bare"));
    if bare == Bare::Lean {
        layer = layer
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false);
    }
    let subscriber = tracing_subscriber::registry().with(layer);
    (subscriber, provider)
}

/// Runs `f` with the bare stack set up as `bare` as this thread's default subscriber.
pub fn with_bare<R>(sampler: Sampler, bare: Bare, f: impl FnOnce() -> R) -> R {
    let (subscriber, _provider) = bare_stack_as(sampler, bare);
    tracing::subscriber::with_default(subscriber, f)
}

/// A span as `#[tracing::instrument]` makes it, without arguments.
#[tracing::instrument]
#[inline(never)]
pub fn instrumented_0() {
    black_box(());
}

/// A span as `#[tracing::instrument]` makes it, its three arguments as fields.
#[tracing::instrument]
#[inline(never)]
pub fn instrumented_3(a: i64, b: i64, c: i64) {
    black_box((a, b, c));
}

/// The `#[tracing::instrument]` cases (0 and 3 fields) under `label/<position>/..`, through
/// whatever subscriber is the default for this thread.
pub fn instrumented_spans(g: &mut BenchmarkGroup<'_, WallTime>, label: &str, position: Position) {
    let _parent =
        matches!(position, Position::Child).then(|| tracing::info_span!("parent").entered());
    let at = position.name();
    g.bench_function(format!("{label}/{at}/instrument 0 attrs"), |b| {
        b.iter(instrumented_0)
    });
    g.bench_function(format!("{label}/{at}/instrument 3 attrs"), |b| {
        b.iter(|| instrumented_3(black_box(1), 2, 3))
    });
}

pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

/// Where a measured span sits.
#[derive(Clone, Copy)]
pub enum Position {
    Root,
    /// Under a parent span that stays open for the whole measurement.
    Child,
}

impl Position {
    fn name(self) -> &'static str {
        match self {
            Position::Root => "root",
            Position::Child => "child",
        }
    }
}

/// The facade's span cases (0 and 3 attributes) under `label/<position>/..`.
pub fn facade_spans(
    g: &mut BenchmarkGroup<'_, WallTime>,
    telemetry: &unitel::UnifiedTelemetry,
    label: &str,
    position: Position,
) {
    let _parent = matches!(position, Position::Child).then(|| telemetry.trace("parent"));
    let at = position.name();
    g.bench_function(format!("{label}/{at}/0 attrs"), |b| {
        b.iter(|| {
            let guard = telemetry.trace("op");
            black_box(&guard);
        })
    });
    g.bench_function(format!("{label}/{at}/3 attrs"), |b| {
        b.iter(|| {
            let guard = telemetry.trace_with("op", &[("a", 1), ("b", 2), ("c", 3)]);
            black_box(&guard);
        })
    });
}

/// The same cases through the bare stack with `sampler`, under `label/<position>/..`.
pub fn bare_spans(
    g: &mut BenchmarkGroup<'_, WallTime>,
    sampler: Sampler,
    label: &str,
    positions: &[Position],
) {
    bare_spans_as(g, sampler, Bare::Default, label, positions);
}

/// [`bare_spans`] through the bare stack set up as `bare`.
pub fn bare_spans_as(
    g: &mut BenchmarkGroup<'_, WallTime>,
    sampler: Sampler,
    bare: Bare,
    label: &str,
    positions: &[Position],
) {
    let (bare, _provider) = bare_stack_as(sampler, bare);
    tracing::subscriber::with_default(bare, || {
        for &position in positions {
            let _parent = matches!(position, Position::Child)
                .then(|| tracing::info_span!("parent").entered());
            let at = position.name();
            g.bench_function(format!("{label}/{at}/0 attrs"), |b| {
                b.iter(|| {
                    let guard = tracing::info_span!("op").entered();
                    black_box(&guard);
                })
            });
            g.bench_function(format!("{label}/{at}/3 attrs"), |b| {
                b.iter(|| {
                    let guard = tracing::info_span!("op", a = 1, b = 2, c = 3).entered();
                    black_box(&guard);
                })
            });
        }
    });
}

/// The count of every value recorded in the histogram `name`, all attribute sets together;
/// `None` when the reader has no such histogram.
pub fn histogram_count(
    reader: &opentelemetry_sdk::metrics::ManualReader,
    name: &str,
) -> Option<u64> {
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
    use opentelemetry_sdk::metrics::reader::MetricReader as _;
    let mut rm = ResourceMetrics::default();
    reader.collect(&mut rm).ok()?;
    let mut total = None;
    for scope in rm.scope_metrics() {
        for metric in scope.metrics() {
            if metric.name() != name {
                continue;
            }
            if let AggregatedMetrics::F64(MetricData::Histogram(h)) = metric.data() {
                *total.get_or_insert(0) += h.data_points().map(|p| p.count()).sum::<u64>();
            }
        }
    }
    total
}

/// CPU time used so far by the threads of this process that are alive, in µs (Linux:
/// `/proc/self/task/*/schedstat`); `None` elsewhere.
pub fn process_cpu_us() -> Option<f64> {
    threads_cpu_ns(&[]).map(|ns| ns as f64 / 1e3)
}

/// CPU time used so far by the threads of this process that are alive and whose name starts
/// with one of `prefixes` (every thread when it is empty), in ns (Linux:
/// `/proc/self/task/*/schedstat`); `None` elsewhere.
pub fn threads_cpu_ns(prefixes: &[&str]) -> Option<u64> {
    let mut total_ns: u64 = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(task) = task else { continue };
        if !prefixes.is_empty() {
            let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !prefixes.iter().any(|p| name.starts_with(p)) {
                continue;
            }
        }
        // A thread may have ended since the listing.
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        total_ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total_ns)
}

/// The bare JSON-line log: tracing-subscriber's JSON format through tracing-appender's
/// non-blocking writer into `path`, as a service without unitel writes one. Keep the guard
/// while it is in use.
pub fn bare_json_subscriber(
    path: &std::path::Path,
) -> (
    impl tracing::Subscriber + Send + Sync,
    tracing_appender::non_blocking::WorkerGuard,
) {
    let file = std::fs::File::create(path).expect("bare log file");
    let (writer, guard) = tracing_appender::non_blocking(file);
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().json().with_writer(writer));
    (subscriber, guard)
}

/// The median of `samples` (sorted in place); `None` when there are none.
pub fn median(samples: &mut [f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    let mid = samples.len() / 2;
    Some(if samples.len() % 2 == 1 {
        samples[mid]
    } else {
        (samples[mid - 1] + samples[mid]) / 2.0
    })
}

/// Medians, in µs per call, of an interleaved pass (see [`interleaved`]), one per variant.
pub struct Interleaved {
    /// Wall time of the calls.
    pub wall: Vec<Option<f64>>,
    /// CPU time of every thread of the process, from the calls' start to the pause's end (so
    /// the work the calls leave to background threads, like span export, is in).
    pub cpu: Vec<Option<f64>>,
}

/// Runs `rounds` rounds in which each of `variants` makes `per_round` calls in turn
/// (`run(variant, calls)`), a different variant first in each round, pausing `settle` after
/// each block so that background threads finish its share. Interleaving cancels the drift of
/// a noisy machine, which a run of one variant after the other would read as a difference.
pub fn interleaved(
    variants: usize,
    rounds: usize,
    per_round: usize,
    settle: Duration,
    mut run: impl FnMut(usize, usize),
) -> Interleaved {
    let mut wall: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); variants];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); variants];
    for round in 0..rounds {
        for k in 0..variants {
            let i = (round + k) % variants;
            let cpu_before = process_cpu_us();
            let start = std::time::Instant::now();
            run(i, per_round);
            wall[i].push(start.elapsed().as_secs_f64() * 1e6 / per_round as f64);
            std::thread::sleep(settle);
            if let (Some(before), Some(after)) = (cpu_before, process_cpu_us()) {
                cpu[i].push((after - before) / per_round as f64);
            }
        }
    }
    Interleaved {
        wall: wall.iter_mut().map(|s| median(s)).collect(),
        cpu: cpu.iter_mut().map(|s| median(s)).collect(),
    }
}

/// One column of a bench's table: its name and a figure (µs per call) per variant.
pub type Column = (&'static str, Vec<Option<f64>>);

/// The three columns the client and server benches report: criterion's medians, the
/// interleaved pass's wall time and its CPU time.
pub fn columns(criterion: Vec<Option<f64>>, pass: Interleaved) -> [Column; 3] {
    [
        ("criterion", criterion),
        ("interleaved", pass.wall),
        ("CPU", pass.cpu),
    ]
}

/// A figure with two decimals, `-` when there is none.
pub fn show(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"))
}

/// Prints the table of `columns`, one row per variant, titled with the bench's name and
/// how each column was measured.
pub fn print_table(
    bench: &str,
    rounds: usize,
    per_round: usize,
    names: &[&str],
    columns: &[Column],
) {
    eprintln!();
    eprintln!(
        "{bench}, µs per request (medians): criterion = wall, criterion's samples; \
         interleaved = wall, {rounds} rounds of {per_round}; CPU = CPU time of all threads, \
         same rounds"
    );
    eprint!("  {:<20}", "");
    for (name, _) in columns {
        eprint!(" {name:>12}");
    }
    eprintln!();
    for (i, name) in names.iter().enumerate() {
        eprint!("  {name:<20}");
        for (_, figures) in columns {
            eprint!(" {:>12}", show(figures.get(i).copied().flatten()));
        }
        eprintln!();
    }
}

/// The least any OpenTelemetry layer for `tracing` has to do, as a floor to measure layers
/// against: start an SDK span under the parent's context when the `tracing` span is made
/// (fields as attributes), attach its context while entered, end it when closed. No
/// `set_parent` after creation, no span events, no `otel.*` fields, no status: not a usable
/// layer, only the cost of the work one cannot avoid.
pub mod floor {
    use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
    use opentelemetry::{Context, ContextGuard, KeyValue};
    use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
    use std::cell::RefCell;
    use tracing::span::{Attributes, Id};
    use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt as _};
    use tracing_subscriber::registry::LookupSpan;

    pub struct FloorLayer {
        tracer: SdkTracer,
    }

    struct Started(Context);

    thread_local! {
        static GUARDS: RefCell<Vec<(Id, ContextGuard)>> = const { RefCell::new(Vec::new()) };
    }

    struct Fields<'a>(&'a mut Vec<KeyValue>);

    impl tracing::field::Visit for Fields<'_> {
        fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
            self.0.push(KeyValue::new(field.name(), value));
        }
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            self.0.push(KeyValue::new(field.name(), value.to_owned()));
        }
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0
                .push(KeyValue::new(field.name(), format!("{value:?}")));
        }
    }

    impl<S> Layer<S> for FloorLayer
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
            let Some(span) = ctx.span(id) else { return };
            let parent_span = if attrs.is_root() {
                None
            } else if let Some(parent) = attrs.parent() {
                ctx.span(parent)
            } else {
                ctx.lookup_current()
            };
            let parent = match parent_span {
                Some(p) => p.extensions().get::<Started>().map(|s| s.0.clone()),
                None if attrs.is_root() => Some(Context::new()),
                None => None,
            }
            .unwrap_or_else(Context::current);
            let mut fields = Vec::with_capacity(attrs.fields().len());
            attrs.record(&mut Fields(&mut fields));
            let otel = self
                .tracer
                .span_builder(attrs.metadata().name())
                .with_attributes(fields)
                .start_with_context(&self.tracer, &parent);
            span.extensions_mut()
                .insert(Started(parent.with_span(otel)));
        }

        fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
            let Some(span) = ctx.span(id) else { return };
            let Some(cx) = span.extensions().get::<Started>().map(|s| s.0.clone()) else {
                return;
            };
            let guard = cx.attach();
            GUARDS.with(|g| g.borrow_mut().push((id.clone(), guard)));
        }

        fn on_exit(&self, id: &Id, _ctx: LayerContext<'_, S>) {
            GUARDS.with(|g| {
                let mut g = g.borrow_mut();
                if let Some(at) = g.iter().rposition(|(i, _)| i == id) {
                    drop(g.remove(at));
                }
            });
        }

        fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
            let Some(span) = ctx.span(&id) else { return };
            let started = span.extensions_mut().remove::<Started>();
            if let Some(Started(cx)) = started {
                cx.span().end();
            }
        }
    }

    /// A registry with only [`FloorLayer`], over the same provider setup as the bare stack.
    pub fn stack(sampler: Sampler) -> (impl tracing::Subscriber + Send + Sync, SdkTracerProvider) {
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .with_span_processor(super::discarding_processor())
            .build();
        let layer = FloorLayer {
            tracer: provider.tracer("floor"),
        };
        (tracing_subscriber::registry().with(layer), provider)
    }
}

/// Spans straight through the OpenTelemetry API of `provider`, no `tracing`: started under
/// the current context (0 or 3 attributes), attached, ended; under `label/<position>/..`.
pub fn sdk_spans(
    g: &mut BenchmarkGroup<'_, WallTime>,
    provider: &SdkTracerProvider,
    label: &str,
    positions: &[Position],
) {
    use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
    use opentelemetry::{Context, KeyValue};
    let tracer = provider.tracer("sdk");
    let span = |attrs: Option<[KeyValue; 3]>| {
        let mut builder = tracer.span_builder("op");
        if let Some(attrs) = attrs {
            builder = builder.with_attributes(attrs);
        }
        let cx = Context::current_with_span(builder.start(&tracer));
        let guard = cx.clone().attach();
        black_box(&guard);
        drop(guard);
        cx.span().end();
    };
    for &position in positions {
        let _parent = matches!(position, Position::Child)
            .then(|| Context::current_with_span(tracer.start("parent")).attach());
        let at = position.name();
        g.bench_function(format!("{label}/{at}/0 attrs"), |b| b.iter(|| span(None)));
        g.bench_function(format!("{label}/{at}/3 attrs"), |b| {
            b.iter(|| {
                span(Some([
                    KeyValue::new("a", 1),
                    KeyValue::new("b", 2),
                    KeyValue::new("c", 3),
                ]))
            })
        });
    }
}
