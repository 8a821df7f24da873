//! Prometheus pull: a reader collected on demand, a `/metrics` endpoint on threads of its own,
//! and the exposition text for mounting in your own router. Collecting and rendering never run
//! on the application's threads.
//!
//! At most one collection runs at a time; every scrape (and every `prometheus_text()`) that
//! arrives while one runs shares its result. A scrape waits for it a bounded time: a blocked
//! observable callback gets a 503 naming the cause, never a pile of waiting requests.
//!
//! A scrape that asks for OpenMetrics (`Accept: application/openmetrics-text`) gets it, with
//! exemplars; everyone else the classic text. The collection thread renders each format that
//! the requests sharing it asked for, once, from the same collected data.

mod text;

use text::Format;

use crate::config::SharedMetricReader;
use crate::diagnostics::report_once;
use crate::error::Error;
use crate::state;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{ManualReader, Temporality};
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

/// How long a scrape without `X-Prometheus-Scrape-Timeout-Seconds`, and `prometheus_text()`,
/// wait for a collection.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// Connections answered at once; one more is answered 503 without waiting.
const MAX_CONNECTIONS: usize = 8;

/// The exposition of the running pipeline (one per process: `configure_telemetry` runs once).
static CURRENT: Mutex<Option<Arc<Exposition>>> = Mutex::new(None);

fn current() -> Option<Arc<Exposition>> {
    crate::sync::lock(&CURRENT).clone()
}

/// The reader to register with the meter provider (cumulative, collected at each scrape),
/// and its exposition, which becomes the one `/metrics` and `prometheus_text()` serve.
pub(super) fn reader() -> (SharedMetricReader, Arc<Exposition>) {
    let reader = Arc::new(
        ManualReader::builder()
            .with_temporality(Temporality::Cumulative)
            .build(),
    );
    let exposition = Arc::new(Exposition {
        reader: reader.clone(),
        running: Mutex::new(None),
    });
    *crate::sync::lock(&CURRENT) = Some(exposition.clone());
    (SharedMetricReader(reader), exposition)
}

/// Collects the reader and renders the text, one collection at a time.
#[derive(Debug)]
pub(super) struct Exposition {
    reader: Arc<ManualReader>,
    /// The collection under way, shared by every request that arrives while it runs.
    running: Mutex<Option<Arc<Collection>>>,
}

/// Why there is no text.
#[derive(Debug, Clone, PartialEq)]
enum Unavailable {
    /// The collection did not finish within the wait.
    Slow(Duration),
    /// The collection failed (the meter provider is shut down, a thread could not start).
    Failed(String),
}

impl Unavailable {
    fn message(&self) -> String {
        match self {
            Unavailable::Slow(wait) => format!(
                "the metrics collection did not finish within {:.1} s: an observable \
                 instrument's callback is slow or blocked (callbacks must return quickly); \
                 scrapes are answered 503 until it returns",
                wait.as_secs_f64()
            ),
            Unavailable::Failed(why) => format!("the metrics collection failed: {why}"),
        }
    }
}

/// One collection: its result once there, and who waits for it.
#[derive(Debug, Default)]
struct Collection {
    state: Mutex<CollectionState>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct CollectionState {
    result: Option<Result<Arc<Rendered>, Unavailable>>,
    wakers: Vec<Waker>,
    /// The formats asked for, by [`Format::index`]: each is rendered before the result is set.
    wanted: [bool; 2],
}

/// The texts of one collection, by [`Format::index`]: those asked for.
#[derive(Debug, Default)]
struct Rendered([Option<Arc<str>>; 2]);

impl Rendered {
    fn text(&self, format: Format) -> Result<Arc<str>, Unavailable> {
        self.0[format.index()]
            .clone()
            .ok_or_else(|| Unavailable::Failed("the format asked for was not rendered".into()))
    }
}

impl Collection {
    fn finish(&self, result: Result<Arc<Rendered>, Unavailable>) {
        let wakers = {
            let mut state = crate::sync::lock(&self.state);
            state.result = Some(result);
            std::mem::take(&mut state.wakers)
        };
        self.done.notify_all();
        for waker in wakers {
            waker.wake();
        }
    }

    /// The text in `format`, waiting for it at most `wait`.
    fn wait(&self, wait: Duration, format: Format) -> Result<Arc<str>, Unavailable> {
        let state = crate::sync::lock(&self.state);
        let (state, _) = self
            .done
            .wait_timeout_while(state, wait, |s| s.result.is_none())
            .unwrap_or_else(|p| p.into_inner());
        match &state.result {
            Some(result) => result.clone().and_then(|r| r.text(format)),
            None => Err(Unavailable::Slow(wait)),
        }
    }
}

impl Exposition {
    /// The collection under way, or a new one started on a thread of its own; either renders
    /// `format` before it finishes.
    fn collection(self: &Arc<Self>, format: Format) -> Arc<Collection> {
        let mut running = crate::sync::lock(&self.running);
        if let Some(collection) = running.as_ref() {
            // Under the `running` lock: the collection thread checks what is wanted under it
            // too, before it lets go of the collection.
            crate::sync::lock(&collection.state).wanted[format.index()] = true;
            return collection.clone();
        }
        let collection = Arc::new(Collection::default());
        crate::sync::lock(&collection.state).wanted[format.index()] = true;
        let this = self.clone();
        let filled = collection.clone();
        let spawned = std::thread::Builder::new()
            .name("unitel-prometheus-collect".into())
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    this.collect_and_render(&filled)
                }))
                .unwrap_or_else(|_| Err(Unavailable::Failed("rendering panicked".to_owned())));
                // Requests from now on start a new collection.
                let mut running = crate::sync::lock(&this.running);
                if running.as_ref().is_some_and(|r| Arc::ptr_eq(r, &filled)) {
                    *running = None;
                }
                drop(running);
                filled.finish(result);
            });
        match spawned {
            Ok(_) => *running = Some(collection.clone()),
            Err(e) => collection.finish(Err(Unavailable::Failed(format!(
                "cannot start a thread: {e}"
            )))),
        }
        collection
    }

    /// Collects once and renders every format asked for, including those asked for while it
    /// rendered; lets go of `collection` (new requests start a new one) once nothing more is
    /// asked for.
    fn collect_and_render(
        &self,
        collection: &Arc<Collection>,
    ) -> Result<Arc<Rendered>, Unavailable> {
        let mut metrics = ResourceMetrics::default();
        self.reader
            .collect(&mut metrics)
            .map_err(|e| Unavailable::Failed(e.to_string()))?;
        crate::metrics::note_overflow(&metrics);
        let mut rendered = Rendered::default();
        let mut first = true;
        loop {
            let missing: Vec<Format> = {
                let mut running = crate::sync::lock(&self.running);
                let wanted = crate::sync::lock(&collection.state).wanted;
                let missing: Vec<Format> = Format::ALL
                    .into_iter()
                    .filter(|f| wanted[f.index()] && rendered.0[f.index()].is_none())
                    .collect();
                if missing.is_empty() {
                    if running.as_ref().is_some_and(|r| Arc::ptr_eq(r, collection)) {
                        *running = None;
                    }
                    return Ok(Arc::new(rendered));
                }
                missing
            };
            // Left-out series are counted once per collection: at its first rendering.
            let texts = text::render(&metrics, &missing, first);
            first = false;
            for (format, text) in missing.into_iter().zip(texts) {
                rendered.0[format.index()] = Some(text.into());
            }
        }
    }

    /// The text of a collection in `format`, waiting for it at most `wait`.
    fn text(self: &Arc<Self>, wait: Duration, format: Format) -> Result<Arc<str>, Unavailable> {
        ready(self.collection(format).wait(wait, format))
    }
}

/// What a request gets once it stops waiting; why there is no text is said once on standard
/// error.
fn ready(result: Result<Arc<str>, Unavailable>) -> Result<Arc<str>, Unavailable> {
    if let Err(why) = &result {
        let key = match why {
            Unavailable::Slow(_) => "prometheus-slow",
            Unavailable::Failed(_) => "prometheus-failed",
        };
        report_once(key, &|| why.message());
    }
    result
}

/// Binds `addr` now (a taken port is a start-up error) and serves `GET /metrics` from threads
/// of its own; returns the address bound.
pub(super) fn serve(exposition: Arc<Exposition>, addr: SocketAddr) -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind(addr).map_err(|source| Error::Prometheus { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    std::thread::Builder::new()
        .name("unitel-prometheus".into())
        .spawn(move || {
            let active = Arc::new(AtomicUsize::new(0));
            for stream in listener.incoming() {
                let Ok(stream) = stream else {
                    // Out of file descriptors, say: try again shortly rather than spin.
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                };
                if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                    active.fetch_sub(1, Ordering::AcqRel);
                    busy(stream);
                    continue;
                }
                let slot = Active(active.clone());
                let exposition = exposition.clone();
                // On failure the closure, the stream and the slot are dropped: the client
                // sees the connection closed.
                let _ = std::thread::Builder::new()
                    .name("unitel-prometheus-conn".into())
                    .spawn(move || {
                        let _slot = slot;
                        answer(&exposition, stream);
                    });
            }
        })
        .map_err(|source| Error::Prometheus { addr, source })?;
    Ok(bound)
}

/// One connection being answered; the count goes down when it is dropped.
struct Active(Arc<AtomicUsize>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers 503 at once, from the accepting thread, without waiting for the request.
fn busy(mut stream: TcpStream) {
    report_once("prometheus-busy", &|| {
        format!(
            "{MAX_CONNECTIONS} requests to /metrics are being answered already; more are \
             answered 503 at once"
        )
    });
    // Take the request (one read, waiting briefly), so that closing with it unread does not
    // reset the connection before the client reads the answer.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 4096];
    let _ = stream.read(&mut buf);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let body = "too many concurrent requests to /metrics; try again\n";
    let _ = write_response(
        &mut stream,
        "503 Service Unavailable",
        "text/plain; charset=utf-8",
        body,
        true,
    );
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

fn write_response(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
    with_body: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(body.as_bytes())?;
    }
    Ok(())
}

/// How long a scrape may wait for a collection: what Prometheus says it waits
/// (`X-Prometheus-Scrape-Timeout-Seconds`) less a margin for the answer to arrive, else
/// [`DEFAULT_WAIT`].
fn scrape_wait(head: &str) -> Duration {
    let timeout = head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("x-prometheus-scrape-timeout-seconds")
            .then(|| value.trim().parse::<f64>().ok())
            .flatten()
    });
    match timeout {
        Some(t) if t.is_finite() && t > 0.0 => {
            let wait = if t > 1.0 { t - 0.5 } else { t / 2.0 };
            Duration::from_secs_f64(wait.min(300.0))
        }
        _ => DEFAULT_WAIT,
    }
}

/// The format a request's `Accept` header asks for: OpenMetrics when an
/// `application/openmetrics-text` range (any version) has the highest quality, ties going to
/// a named type over a wildcard and then to the one listed first; the classic text otherwise
/// (no header, `*/*`, `text/plain`, or OpenMetrics at `q=0`).
fn negotiate(head: &str) -> Format {
    let Some(accept) = head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("accept").then_some(value)
    }) else {
        return Format::Classic;
    };
    // (quality, named rather than a wildcard, earlier) of the best range for each format.
    let mut best: [Option<(f64, bool, std::cmp::Reverse<usize>)>; 2] = [None, None];
    for (position, range) in accept.split(',').enumerate() {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .map_or(1.0, |(_, v)| v.trim().parse::<f64>().unwrap_or(0.0));
        if q.is_nan() || q <= 0.0 {
            continue;
        }
        let (format, named) = match media.as_str() {
            "application/openmetrics-text" => (Format::OpenMetrics, true),
            "text/plain" => (Format::Classic, true),
            "text/*" | "*/*" => (Format::Classic, false),
            "application/*" => (Format::OpenMetrics, false),
            _ => continue,
        };
        let rank = (q.min(1.0), named, std::cmp::Reverse(position));
        let slot = &mut best[format.index()];
        if slot.is_none_or(|b| rank > b) {
            *slot = Some(rank);
        }
    }
    match best {
        [Some(classic), Some(om)] if om > classic => Format::OpenMetrics,
        [None, Some(_)] => Format::OpenMetrics,
        _ => Format::Classic,
    }
}

fn answer(exposition: &Arc<Exposition>, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    // Read the request head (bounded).
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let plain = "text/plain; charset=utf-8";
    let format = negotiate(&head);
    let (status, content_type, body): (&str, &str, Arc<str>) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => match exposition.text(scrape_wait(&head), format) {
            Ok(text) => ("200 OK", format.content_type(), text),
            Err(why) => (
                "503 Service Unavailable",
                plain,
                format!("unitel: {}\n", why.message()).into(),
            ),
        },
        ("GET" | "HEAD", _) => ("404 Not Found", plain, "try /metrics\n".into()),
        _ => ("405 Method Not Allowed", plain, "GET /metrics\n".into()),
    };
    let _ = write_response(&mut stream, status, content_type, &body, method != "HEAD");
}

/// The Prometheus exposition text of all metrics, collected and rendered on a unitel thread,
/// for serving from your own router. It is the classic text format (`text/plain;
/// version=0.0.4`), without exemplars; the `/metrics` endpoint serves OpenMetrics with
/// exemplars to scrapers that ask for it. `None` when Prometheus is not enabled, telemetry is not
/// running, or the collection did not finish within 10 s (an observable callback is slow or
/// blocked; said once on standard error).
///
/// ```
/// use axum::{routing::get, Router};
///
/// async fn metrics() -> String {
///     unitel::prometheus_text().await.unwrap_or_default()
/// }
///
/// let app: Router = Router::new().route("/internal/metrics", get(metrics));
/// ```
///
/// Turn Prometheus on with [`TelemetryConfig::with_prometheus`](crate::TelemetryConfig::with_prometheus)
/// ([example](crate::TelemetryConfig#prometheus)).
pub fn prometheus_text() -> PrometheusText {
    let enabled = state::active().is_some_and(|s| s.prometheus_addr.is_some());
    let collection = if enabled {
        current().map(|e| e.collection(Format::Classic))
    } else {
        None
    };
    PrometheusText {
        collection,
        deadline: Instant::now() + DEFAULT_WAIT,
        timer_set: false,
    }
}

/// The future returned by [`prometheus_text`] (example there).
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct PrometheusText {
    collection: Option<Arc<Collection>>,
    deadline: Instant,
    timer_set: bool,
}

impl Future for PrometheusText {
    type Output = Option<String>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(collection) = &this.collection else {
            return Poll::Ready(None);
        };
        let mut state = crate::sync::lock(&collection.state);
        let result = match state.result.clone() {
            Some(result) => result.and_then(|r| r.text(Format::Classic)),
            None if Instant::now() >= this.deadline => Err(Unavailable::Slow(DEFAULT_WAIT)),
            None => {
                state.wakers.retain(|w| !w.will_wake(cx.waker()));
                state.wakers.push(cx.waker().clone());
                drop(state);
                if !this.timer_set {
                    this.timer_set = timer::wake_at(this.deadline, cx.waker().clone());
                }
                return Poll::Pending;
            }
        };
        drop(state);
        Poll::Ready(ready(result).ok().map(|text| text.to_string()))
    }
}

/// One thread that wakes futures at their deadlines.
mod timer {
    use std::sync::{Condvar, Mutex, OnceLock};
    use std::task::Waker;
    use std::time::Instant;

    static DUE: Mutex<Vec<(Instant, Waker)>> = Mutex::new(Vec::new());
    static CHANGED: Condvar = Condvar::new();
    static STARTED: OnceLock<bool> = OnceLock::new();

    /// Wakes `waker` at `deadline`; false when the timer thread cannot run.
    pub(super) fn wake_at(deadline: Instant, waker: Waker) -> bool {
        let started = *STARTED.get_or_init(|| {
            std::thread::Builder::new()
                .name("unitel-prometheus-timer".into())
                .spawn(run)
                .is_ok()
        });
        if started {
            crate::sync::lock(&DUE).push((deadline, waker));
            CHANGED.notify_one();
        }
        started
    }

    fn run() {
        let mut due = crate::sync::lock(&DUE);
        loop {
            let now = Instant::now();
            let mut expired = Vec::new();
            due.retain(|(at, waker)| {
                let keep = *at > now;
                if !keep {
                    expired.push(waker.clone());
                }
                keep
            });
            let next = due.iter().map(|(at, _)| *at).min();
            drop(due);
            for waker in expired {
                waker.wake();
            }
            due = crate::sync::lock(&DUE);
            due = match next {
                Some(at) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    CHANGED
                        .wait_timeout(due, wait)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|p| p.into_inner().0)
                }
                None => CHANGED.wait(due).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_wait_follows_prometheus_timeout() {
        let head = "GET /metrics HTTP/1.1\r\nX-Prometheus-Scrape-Timeout-Seconds: 3\r\n\r\n";
        assert_eq!(scrape_wait(head), Duration::from_millis(2500));
        let head = "GET /metrics HTTP/1.1\r\nx-prometheus-scrape-timeout-seconds: 0.5\r\n";
        assert_eq!(scrape_wait(head), Duration::from_millis(250));
        assert_eq!(scrape_wait("GET /metrics HTTP/1.1\r\n\r\n"), DEFAULT_WAIT);
        let head = "GET /metrics HTTP/1.1\r\nX-Prometheus-Scrape-Timeout-Seconds: nan\r\n";
        assert_eq!(scrape_wait(head), DEFAULT_WAIT);
    }

    #[test]
    fn accept_header_picks_the_format() {
        let format = |accept: &str| {
            negotiate(&format!(
                "GET /metrics HTTP/1.1\r\nAccept: {accept}\r\n\r\n"
            ))
        };
        // What Prometheus 2.x sends (v2.42 and earlier versions, and its scrape_protocols).
        assert_eq!(
            format("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
            Format::OpenMetrics
        );
        assert_eq!(
            format("application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
            Format::OpenMetrics
        );
        assert_eq!(
            format("text/plain;version=0.0.4;q=1,*/*;q=0.1"),
            Format::Classic
        );
        assert_eq!(format("application/openmetrics-text"), Format::OpenMetrics);
        // Quality decides; a tie goes to a named type over a wildcard, then to the first.
        assert_eq!(
            format("application/openmetrics-text;q=0.4, text/plain;q=0.5"),
            Format::Classic
        );
        assert_eq!(
            format("text/plain;q=0.2, application/openmetrics-text;q=0.9"),
            Format::OpenMetrics
        );
        assert_eq!(
            format("*/*, application/openmetrics-text"),
            Format::OpenMetrics
        );
        assert_eq!(
            format("text/plain, application/openmetrics-text"),
            Format::Classic
        );
        assert_eq!(
            format("application/openmetrics-text, text/plain"),
            Format::OpenMetrics
        );
        // Refused, absent or unknown: the classic text.
        assert_eq!(format("application/openmetrics-text;q=0"), Format::Classic);
        assert_eq!(format("*/*"), Format::Classic);
        assert_eq!(format("application/json"), Format::Classic);
        assert_eq!(negotiate("GET /metrics HTTP/1.1\r\n\r\n"), Format::Classic);
        assert_eq!(
            negotiate("GET /metrics HTTP/1.1\r\naccept: APPLICATION/OpenMetrics-Text\r\n\r\n"),
            Format::OpenMetrics
        );
    }
}
