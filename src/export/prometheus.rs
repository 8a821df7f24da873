//! Prometheus pull: opentelemetry-prometheus's reader, a `/metrics` endpoint on its own thread,
//! and the exposition text for mounting in your own router. Rendering never runs on the
//! application's threads.

use crate::diagnostics::report_once;
use crate::error::Error;
use crate::state;
use prometheus::Registry;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

/// The reader to register with the meter provider, and the registry it fills.
pub(super) fn reader() -> Result<(Registry, opentelemetry_prometheus::PrometheusExporter), Error> {
    let registry = Registry::new();
    // Counter suffixes are added at render time, only where missing: the upstream exporter
    // would turn `requests_total` into `requests_total_total`.
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .without_counter_suffixes()
        .build()
        .map_err(|e| Error::Exporter {
            signal: "metrics",
            source: Box::new(e),
        })?;
    Ok((registry, exporter))
}

/// The text exposition format of everything collected now.
fn render(registry: &Registry) -> String {
    let mut families = registry.gather();
    let taken: std::collections::HashSet<String> =
        families.iter().map(|f| f.name().to_owned()).collect();
    for family in &mut families {
        if family.get_field_type() == prometheus::proto::MetricType::COUNTER
            && !family.name().ends_with("_total")
        {
            let name = format!("{}_total", family.name());
            if taken.contains(&name) {
                // Counters `jobs` and `jobs_total` both exist: two families of one name
                // would make the whole scrape invalid, so `jobs` keeps its name.
                report_once(&format!("counter-name:{name}"), &|| {
                    format!("counters {:?} and {name:?} both exist; the first is exposed without the _total suffix", family.name())
                });
            } else {
                family.set_name(name);
            }
        }
        sanitize_labels(family);
        // promtool lints a family without help text; say at least what it is.
        if family.help().is_empty() {
            let help = format!("{} (no description set)", family.name());
            family.set_help(help);
        }
    }
    prometheus::TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_default()
}

/// Binds `addr` now (a taken port is a start-up error) and serves `GET /metrics` from a
/// thread of its own; returns the address bound.
pub(super) fn serve(registry: Registry, addr: SocketAddr) -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind(addr).map_err(|source| Error::Prometheus { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    std::thread::Builder::new()
        .name("unitel-prometheus".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(&registry, stream);
            }
        })
        .map_err(|source| Error::Prometheus { addr, source })?;
    Ok(bound)
}

fn answer(registry: &Registry, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    // Read the request head (bounded); only its first line matters.
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(registry),
        ),
        ("GET" | "HEAD", _) => ("404 Not Found", "text/plain", "try /metrics\n".to_owned()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET /metrics\n".to_owned(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = stream.write_all(body.as_bytes());
    }
}

/// The Prometheus exposition text of all metrics, rendered on a unitel thread, for serving
/// from your own router. `None` when Prometheus is not enabled or telemetry is not running.
///
/// ```no_run
/// # async fn handler() -> String {
/// // An axum handler: `.route("/metrics", get(handler))`
/// unitel::prometheus_text().await.unwrap_or_default()
/// # }
/// ```
pub fn prometheus_text() -> PrometheusText {
    let slot = Arc::new(Mutex::new(Slot::default()));
    match state::active().and_then(|s| s.prometheus.clone()) {
        Some(registry) => {
            let filled = slot.clone();
            let spawned = std::thread::Builder::new()
                .name("unitel-prometheus-render".into())
                .spawn(move || {
                    let text = render(&registry);
                    let mut slot = crate::sync::lock(&filled);
                    slot.done = Some(Some(text));
                    if let Some(waker) = slot.waker.take() {
                        waker.wake();
                    }
                });
            if spawned.is_err() {
                crate::sync::lock(&slot).done = Some(None);
            }
        }
        None => crate::sync::lock(&slot).done = Some(None),
    }
    PrometheusText { slot }
}

#[derive(Debug, Default)]
struct Slot {
    done: Option<Option<String>>,
    waker: Option<Waker>,
}

/// The future returned by [`prometheus_text`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct PrometheusText {
    slot: Arc<Mutex<Slot>>,
}

impl Future for PrometheusText {
    type Output = Option<String>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut slot = crate::sync::lock(&self.slot);
        match slot.done.take() {
            Some(text) => Poll::Ready(text),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Makes every label name of `family` valid. The upstream exporter passes attribute keys such
/// as `a:b`, `1abc` and `__x` through, and promtool then rejects the whole scrape. Doing it
/// here, at render time, costs nothing per measurement and leaves OTLP's keys as given. A
/// rename that would duplicate a label of the series, or a whole series, drops the duplicate
/// (reported once).
fn sanitize_labels(family: &mut prometheus::proto::MetricFamily) {
    // After the exporter, label names hold only [a-zA-Z0-9_:]: a byte check finds the rest.
    let bad = |name: &str| {
        let b = name.as_bytes();
        b.is_empty() || b[0].is_ascii_digit() || b.starts_with(b"__") || b.contains(&b':')
    };
    if !family
        .get_metric()
        .iter()
        .any(|m| m.get_label().iter().any(|l| bad(l.name())))
    {
        return;
    }
    let family_name = family.name().to_owned();
    let mut metrics = family.take_metric();
    let mut renamed_any = false;
    for metric in metrics.iter_mut() {
        if !metric
            .get_label()
            .iter()
            .any(|l| sanitize_label(l.name()).is_some())
        {
            continue;
        }
        renamed_any = true;
        let mut labels = metric.take_label();
        let mut names = std::collections::HashSet::new();
        labels.retain_mut(|label| {
            if let Some(valid) = sanitize_label(label.name()) {
                let original = label.name().to_owned();
                report_once(&format!("label:{original}"), &|| {
                    format!("attribute key {original:?} is not a valid Prometheus label name; it is exposed as {valid:?}")
                });
                label.set_name(valid);
            }
            names.insert(label.name().to_owned())
        });
        metric.set_label(labels);
    }
    if renamed_any {
        // A renamed series may now equal one that needed no renaming.
        let mut all = std::collections::HashSet::new();
        metrics.retain(|metric| {
            let mut key: Vec<(String, String)> = metric
                .get_label()
                .iter()
                .map(|l| (l.name().to_owned(), l.value().to_owned()))
                .collect();
            key.sort();
            let fresh = all.insert(key);
            if !fresh {
                report_once(&format!("series:{family_name}"), &|| {
                    format!("{family_name}: two series have the same labels after renaming invalid label names; one is dropped from the exposition")
                });
            }
            fresh
        });
    }
    family.set_metric(metrics);
}

/// Makes an attribute key a valid Prometheus label name after the exporter turns `.` into `_`:
/// other invalid characters become `_`, a leading digit gets `key_` before it, and a leading
/// `__` (reserved by Prometheus) gets `key` before it. Valid keys are returned as they are.
fn sanitize_label(key: &str) -> Option<String> {
    let underscore = |b: u8| b == b'_' || b == b'.';
    let problem = |k: &[u8]| {
        k.is_empty()
            || k[0].is_ascii_digit()
            || (k.len() >= 2 && underscore(k[0]) && underscore(k[1]))
            || !k
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || underscore(b))
    };
    if !problem(key.as_bytes()) {
        return None;
    }
    let mapped: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let b = mapped.as_bytes();
    Some(if b.is_empty() {
        "key_empty".to_owned()
    } else if b[0].is_ascii_digit() {
        format!("key_{mapped}")
    } else if b.len() >= 2 && underscore(b[0]) && underscore(b[1]) {
        format!("key{mapped}")
    } else {
        mapped
    })
}
