//! Serving the Prometheus exposition from your own axum router instead of unitel's endpoint.
//!
//! ```text
//! cargo run --example axum_metrics
//! curl http://127.0.0.1:3000/metrics
//! ```
//!
//! `unitel::prometheus_text()` renders on a unitel thread and is awaited here, so the
//! application's runtime threads never do the rendering. The Prometheus reader is on because
//! `with_prometheus` is set; port 0 keeps unitel's own endpoint out of the way.

use axum::routing::get;
use axum::Router;

async fn metrics() -> String {
    unitel::prometheus_text().await.unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _guard = unitel::configure_telemetry(
        unitel::TelemetryConfig::from_env()
            .with_service_name("axum-example")
            .with_prometheus(([127, 0, 0, 1], 0)),
    )?;
    let telemetry = unitel::get_telemetry("api");
    telemetry
        .counter("requests_total")
        .add(1, &[("method", "GET"), ("status", "200")]);

    let app = Router::new().route("/metrics", get(metrics));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    telemetry.log_info("serving http://127.0.0.1:3000/metrics");
    axum::serve(listener, app).await?;
    Ok(())
}
