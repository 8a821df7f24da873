//! [`TelemetryGuard`]: flushes and shuts the pipeline down, within a bounded time.

use crate::error::Error;
use crate::export::Exports;
use crate::logfile::FileSink;
use crate::state::{self, State};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use std::sync::Arc;
use std::time::Duration;

/// What only shutdown needs of the pipeline, beside the running state.
#[derive(Debug)]
pub(crate) struct Pipeline {
    pub(crate) file: Option<Arc<FileSink>>,
    pub(crate) logger_provider: Option<SdkLoggerProvider>,
    /// Kept alive with the pipeline (the export runtime lives here).
    pub(crate) _exports: Exports,
    pub(crate) shutdown_timeout: Duration,
}

impl Pipeline {
    /// Flushes and closes everything, each part bounded by `timeout`.
    fn flush_and_close(&self, state: &State, timeout: Duration) -> Result<(), Error> {
        let mut result = Ok(());
        if let Some(tp) = &state.tracer_provider {
            if let Err(source) = tp.shutdown_with_timeout(timeout) {
                result = Err(Error::Shutdown {
                    what: "traces",
                    source,
                });
            }
        }
        if let Some(mp) = &state.meter_provider {
            if let Err(source) = mp.shutdown_with_timeout(timeout) {
                result = result.and(Err(Error::Shutdown {
                    what: "metrics",
                    source,
                }));
            }
        }
        if let Some(lp) = &self.logger_provider {
            if let Err(source) = lp.shutdown_with_timeout(timeout) {
                result = result.and(Err(Error::Shutdown {
                    what: "logs",
                    source,
                }));
            }
        }
        // Hands over the last batch; dropping the worker guard then writes out every queued
        // line (bounded by tracing-appender).
        if let Some(file) = &self.file {
            file.close(std::time::Instant::now() + timeout);
        }
        result
    }
}

/// Flushes and shuts telemetry down when dropped (or on [`shutdown`](Self::shutdown)).
///
/// Shutdown is bounded by the configured timeout (default 5 s), runs on its own thread so it
/// cannot deadlock an async runtime, never panics and prints nothing. After it, every
/// recording call is a silent no-op.
#[must_use = "telemetry shuts down when the guard is dropped; keep it alive in main"]
#[derive(Debug)]
pub struct TelemetryGuard {
    pipeline: Arc<Pipeline>,
}

impl TelemetryGuard {
    pub(crate) fn new(pipeline: Pipeline) -> Self {
        TelemetryGuard {
            pipeline: Arc::new(pipeline),
        }
    }

    /// Where the Prometheus `/metrics` endpoint listens, when it is on (useful with port 0).
    pub fn prometheus_addr(&self) -> Option<std::net::SocketAddr> {
        state::installed()?.prometheus_addr
    }

    /// Flushes spans, metrics and logs and shuts the pipeline down, waiting at most the
    /// shutdown timeout. A second call returns [`Error::AlreadyShutDown`].
    pub fn shutdown(&self) -> Result<(), Error> {
        let state = match state::installed() {
            Some(state) if state.stop() => state,
            _ => return Err(Error::AlreadyShutDown),
        };
        let timeout = self.pipeline.shutdown_timeout;
        let (tx, rx) = std::sync::mpsc::channel();
        let pipeline = self.pipeline.clone();
        // On its own thread: whatever an exporter does, the caller waits at most `timeout`,
        // and a caller on a runtime thread never blocks the thread an exporter needs.
        match std::thread::Builder::new()
            .name("unitel-shutdown".into())
            .spawn(move || {
                let _ = tx.send(pipeline.flush_and_close(state, timeout));
            }) {
            Ok(_) => rx
                .recv_timeout(timeout)
                .unwrap_or(Err(Error::ShutdownTimeout { timeout })),
            Err(_) => self.pipeline.flush_and_close(state, timeout),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if state::installed().is_some_and(|s| !s.is_stopped()) {
            let _ = self.shutdown();
        }
    }
}
