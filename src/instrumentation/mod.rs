//! Instrumentation built on the public API: the HTTP server layer (feature `tower`, with
//! axum's routes under `axum`) and the task metrics of workers.
//!
//! The narrow crate-internal API it uses: `SpanBuilder::start_context` (a started span's
//! OpenTelemetry context, not attached, for a hand-written future that attaches it per poll),
//! `SpanBuilder::attributes_owned` (attributes moved in, not copied),
//! `state::active()` (whether telemetry records, so the layer skips its work when not), and
//! `format::write_hex` (ids as lowercase hex).

#[cfg(feature = "tower")]
mod http_server;
mod tasks;

#[cfg(feature = "tower")]
pub use self::http_server::*;
pub use self::tasks::{TaskMetrics, TaskRun};
