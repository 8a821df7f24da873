//! Instrumentation built on the public API: the HTTP server layer (feature `tower`, with
//! axum's routes under `axum`), the client adapters for reqwest, sqlx and redis (each behind
//! its own feature), and the task metrics of workers.
//!
//! The narrow crate-internal API it uses: `SpanBuilder::start_context` (a started span's
//! OpenTelemetry context, not attached, for a hand-written future that attaches it per poll),
//! `SpanBuilder::attributes_owned` (attributes moved in, not copied),
//! `state::active()` (whether telemetry records, so the layer skips its work when not),
//! `state::propagators()` (whether to inject at all), `format::write_hex` (ids as lowercase
//! hex), `format::sql` (the SQL scanner the log layer shares), `Histogram::sdk` (the SDK
//! histogram, to bind an attribute set that repeats) and `sync::{lock, address_slot}`.

#[cfg(any(feature = "sqlx", feature = "redis"))]
mod db;
#[cfg(any(feature = "tower", feature = "reqwest"))]
mod http_method;
#[cfg(feature = "tower")]
mod http_server;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(feature = "sqlx")]
mod sqlx;
mod tasks;

#[cfg(feature = "tower")]
pub use self::http_server::*;
#[cfg(feature = "redis")]
pub use self::redis::*;
#[cfg(feature = "reqwest")]
pub use self::reqwest::*;
#[cfg(feature = "sqlx")]
pub use self::sqlx::*;
pub use self::tasks::{TaskMetrics, TaskRun};
