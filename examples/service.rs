//! One trace across a service, the service it calls, and a worker: the server layer, context
//! injection on an outgoing call, and a job handed to a worker task.
//!
//! ```text
//! cargo run --example service --features axum
//! curl -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
//!      -H 'tracestate: congo=t61rcWkgMzE' http://127.0.0.1:3000/checkout/42
//! ```
//!
//! `GET /checkout/{order}` (a server span) calls `GET /inventory/{item}` over HTTP with the
//! trace context injected (a client span, then the callee's server span, which gets the
//! `tracestate` too), then hands a job to a worker task (a producer span, then the worker's
//! consumer span). All of it is one trace: in `logs/service.log`, on the console, and at the
//! collector when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. The response names the trace id
//! (also in the `x-trace-id` header). `UNITEL_SERVICE_ADDR` changes the address; Ctrl-C or
//! SIGTERM stops it and flushes everything.
//!
//! Order 13 is the bad one: its inventory call is slow and fails, and checkout answers 500
//! with an error log naming the cause. With `OTEL_METRICS_EXPORTER=prometheus` the service
//! serves `/metrics` (the address is printed), and a Prometheus with
//! `--enable-feature=exemplar-storage` follows the spike in
//! `http_server_request_duration_seconds` to that request's trace id (an exemplar), which
//! `unitel logs --trace <id> logs/service.log` turns into the trace with its error log:
//! spike → trace → log.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use tokio::sync::mpsc;
use unitel::{
    get_telemetry, inject_trace_context, HttpServerLayer, JobEnvelope, JobTrace, SpanKind,
    TaskMetrics, TelemetryConfig,
};

/// What the worker is asked to do.
#[derive(Debug)]
struct Shipment {
    order: u64,
}

#[derive(Clone)]
struct App {
    addr: SocketAddr,
    client: reqwest::Client,
    jobs: mpsc::Sender<JobEnvelope<Shipment>>,
    tasks: TaskMetrics,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = TelemetryConfig::from_env().with_log_file("logs/service.log");
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        config = config.with_service_name("service-example");
    }
    let guard = unitel::configure_telemetry(config)?;
    if let Some(metrics) = guard.prometheus_addr() {
        println!("metrics on http://{metrics}/metrics");
    }
    let addr: SocketAddr = std::env::var("UNITEL_SERVICE_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;

    let worker = get_telemetry("worker");
    let tasks = TaskMetrics::new(&worker, "fastworker");
    let (jobs, queue) = mpsc::channel(64);
    let worker_task = tokio::spawn(run_worker(queue, tasks.clone()));

    let app = App {
        addr,
        client: reqwest::Client::new(),
        jobs,
        tasks,
    };
    let router = Router::new()
        .route("/checkout/{order}", get(checkout))
        .route("/inventory/{item}", get(inventory))
        .route("/health", get(|| async { "ok" }))
        .with_state(app)
        .layer(
            HttpServerLayer::new()
                .exclude_path("/health")
                .trace_id_header(http::HeaderName::from_static("x-trace-id")),
        );

    println!("listening on http://{addr}");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopped())
    .await?;
    // The router (and its queue sender) is gone: the worker drains the queue and ends.
    worker_task.await?;
    println!("stopped");
    Ok(())
}

/// `GET /checkout/{order}`: asks inventory over HTTP, then queues the shipment.
async fn checkout(
    State(app): State<App>,
    Path(order): Path<u64>,
) -> Result<String, (http::StatusCode, String)> {
    let telemetry = get_telemetry("checkout");
    telemetry.log_info_with("checkout started", &[("order.id", order)]);

    // The outgoing call: a client span, and its context in the request headers.
    let url = format!("http://{}/inventory/{order}", app.addr);
    let call = telemetry
        .span("GET")
        .kind(SpanKind::Client)
        .attr("http.request.method", "GET")
        .attr("url.full", url.as_str())
        .start();
    let mut request = app.client.get(&url).build().expect("a valid URL");
    inject_trace_context(request.headers_mut());
    let stock = call
        .instrument(async {
            let response = app
                .client
                .execute(request)
                .await
                .and_then(|r| r.error_for_status());
            let span = unitel::current_span();
            match response {
                Ok(response) => {
                    span.set_attribute("http.response.status_code", response.status().as_u16());
                    Ok(response.text().await.unwrap_or_default())
                }
                Err(err) => {
                    if let Some(status) = err.status() {
                        span.set_attribute("http.response.status_code", status.as_u16());
                    }
                    span.record_error(&err);
                    Err(err)
                }
            }
        })
        .await;
    let stock = match stock {
        Ok(stock) => stock,
        Err(err) => {
            // The error log carries the trace id and the cause; the server span gets status
            // 500, and its duration lands in the latency histogram with this trace as exemplar.
            telemetry.log_error_with_cause(
                "checkout failed: inventory unavailable",
                &err,
                &[("order.id", order)],
            );
            let trace = unitel::current_trace_id().unwrap_or_default();
            return Err((
                http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("order {order}: inventory unavailable; trace {trace}\n"),
            ));
        }
    };

    // The job: a producer span, its context in the envelope.
    let (producer, job) = telemetry
        .span("client.submit_task")
        .attr("task.name", "ship_order")
        .produce(Shipment { order });
    app.tasks.submitted("ship_order", "default", "normal");
    producer
        .instrument(async {
            if app.jobs.send(job).await.is_err() {
                unitel::current_span().record_error(&std::io::Error::other("the worker is gone"));
            }
        })
        .await;

    let trace = unitel::current_trace_id().unwrap_or_default();
    Ok(format!("order {order}: {stock}; trace {trace}\n"))
}

/// `GET /inventory/{item}`: the callee, in the caller's trace. Item 13 is slow, then fails.
async fn inventory(Path(item): Path<u64>) -> Result<String, http::StatusCode> {
    let telemetry = get_telemetry("inventory");
    if item == 13 {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        telemetry.log_warning_with("stock lookup timed out", &[("item.id", item)]);
        return Err(http::StatusCode::SERVICE_UNAVAILABLE);
    }
    telemetry.log_info_with("stock checked", &[("item.id", item)]);
    Ok(format!("{} in stock", item % 7 + 1))
}

/// The worker: one consumer span per job, in the producer's trace.
async fn run_worker(mut queue: mpsc::Receiver<JobEnvelope<Shipment>>, tasks: TaskMetrics) {
    let telemetry = get_telemetry("worker");
    while let Some(job) = queue.recv().await {
        let run = tasks.start("ship_order", "default", "normal");
        telemetry
            .span("worker.execute_task")
            .consume(&job, JobTrace::Continue)
            .attr("task.name", "ship_order")
            .instrument(async {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                telemetry.log_info_with("shipment booked", &[("order.id", job.payload.order)]);
            })
            .await;
        run.completed();
    }
}

/// Ctrl-C, or SIGTERM on Unix.
async fn stopped() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
