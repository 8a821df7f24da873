//! Seed 001, TempoNest's OpenTelemetry guide, in Rust: two services, `temponest-agents` and
//! `temponest-auth`, with the server layer (the guide's `TracingMiddleware` and
//! `MetricsMiddleware`), PostgreSQL through sqlx (its `asyncpg` instrumentation), Redis as a
//! cache (its `redis` instrumentation) and an HTTP call from one service to the other (its
//! `httpx` instrumentation), all in one trace.
//!
//! ```text
//! cargo run --example temponest                 # a demo: three requests, their spans, the trace id
//! cargo run --example temponest -- --serve      # serve http://127.0.0.1:8000 until Ctrl-C or SIGTERM
//! curl -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
//!      http://127.0.0.1:8000/api/custom
//!
//! DATABASE_URL=postgres://user:password@127.0.0.1/temponest \
//! REDIS_URL=redis://127.0.0.1:6379/ \
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 ENVIRONMENT=production \
//!     cargo run --example temponest -- --serve
//! ```
//!
//! `GET /api/custom` is the guide's custom endpoint: a `custom-operation` span with
//! `custom.attribute` and `result.count`, and the `custom.requests` counter by `status`.
//! Inside, it reads the active agents through a Redis cache (a `GET`, and on a miss a `SETEX`)
//! in front of the database (`SELECT agents`), then asks the auth service for its users
//! (`GET /api/v1/users`). The server layer names each server span after its route and records
//! `http.server.request.duration`; the reqwest adapter injects `traceparent`, so the auth
//! service's server span is the child of the agents service's client span.
//!
//! **Two processes, one binary.** The auth service is this same binary started with
//! `--role auth` (the agents service starts it, and stops it when it stops). Each process
//! configures telemetry once with its own `service.name`, so a trace viewer lists both
//! services, as the guide's Jaeger did (`temponest-agents`, `temponest-auth`), and the trace
//! crosses a real process boundary. To run them apart:
//! `cargo run --example temponest -- --role auth --listen 127.0.0.1:8001` and
//! `AUTH_SERVICE_URL=http://127.0.0.1:8001 cargo run --example temponest -- --serve`.
//!
//! The guide's variables:
//!
//! | variable | here |
//! |---|---|
//! | `ENVIRONMENT` (default `development`) | `deployment.environment.name`; `development` also prints every span on standard output (the guide's `enable_console_export`), as JSON span records |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | push spans, metrics and logs there (http/protobuf, port 4318; for the guide's grpc on 4317 add `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`); unset, nothing is pushed |
//! | `OTEL_SERVICE_NAME` | set in code, as in the guide (`temponest-agents`, `temponest-auth`) |
//! | `TELEMETRY_ENABLED=false` | telemetry off (as `OTEL_SDK_DISABLED=true`) |
//! | `DATABASE_URL` | PostgreSQL; unset, SQLite in memory |
//! | `REDIS_URL` | the cache; unset, no cache (every request reads the database) |
//! | `AUTH_SERVICE_URL` | an auth service already running; unset, this binary starts one |
//!
//! What to look at: the demo prints each span as it ends (`"type":"span"`, with its
//! `service`, `kind`, `trace_id` and `parent_span_id`) and the log lines with
//! `[trace:..] [span:..]`, then the one trace id all three requests share. The first request
//! misses the cache and queries the database, the next ones hit it (with `REDIS_URL`). No
//! password, SQL literal (`'active'` is `?` in `db.query.text`) or cached value is recorded.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use redis::aio::ConnectionManager;
use redis::AsyncCommands as _;
use reqwest_middleware::ClientWithMiddleware;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{Postgres, Sqlite};
use std::error::Error;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use unitel::{
    get_telemetry, Exporter, HttpServerLayer, InstrumentedPool, InstrumentedRedis, TelemetryConfig,
};

/// The cache entry for the active agents, dropped at start-up (the table was just seeded).
const AGENTS_KEY: &str = "temponest:agents:active";
/// How long the cache entry lives, in seconds.
const CACHE_SECONDS: u64 = 30;
/// The query behind the cache. Its literal is recorded as `?`.
const ACTIVE_AGENTS: &str = "SELECT name FROM agents WHERE status = 'active' ORDER BY id";

type Result<T, E = Box<dyn Error + Send + Sync>> = std::result::Result<T, E>;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    match args.role.as_str() {
        "agents" => run_agents(args).await,
        "auth" => run_auth(args).await,
        other => Err(format!("unknown role {other:?}: agents or auth").into()),
    }
}

/// The guide's `setup_tracing(..)` and `setup_metrics(..)`, for one service.
fn telemetry_config(service: &str) -> TelemetryConfig {
    let environment = std::env::var("ENVIRONMENT").unwrap_or_else(|_| "development".to_owned());
    // OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* variables are read by from_env().
    let mut config = TelemetryConfig::from_env()
        .with_service_name(service)
        .with_service_version("1.0.0")
        .with_environment(environment.as_str());
    // enable_console_export=(environment == "development"): every span on standard output too,
    // next to OTLP when an endpoint is set (an explicit OTEL_TRACES_EXPORTER wins).
    if environment == "development" && std::env::var_os("OTEL_TRACES_EXPORTER").is_none() {
        let mut exporters = vec![Exporter::Console];
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
            exporters.push(Exporter::Otlp);
        }
        config = config.with_traces_exporter(&exporters);
    }
    // The guide's switch; unitel's own is OTEL_SDK_DISABLED=true.
    if std::env::var("TELEMETRY_ENABLED").as_deref() == Ok("false") {
        config = config.with_disabled(true);
    }
    config
}

// ---------------------------------------------------------------------------------------------
// temponest-agents

/// What the agents service's handlers share: each client through its unitel adapter.
#[derive(Clone)]
struct Agents {
    db: Database,
    cache: Option<InstrumentedRedis<ConnectionManager>>,
    http: ClientWithMiddleware,
    auth_url: String,
}

async fn run_agents(args: Args) -> Result<()> {
    let guard = unitel::configure_telemetry(telemetry_config("temponest-agents"))?;
    // Serving stops on Ctrl-C/SIGTERM. The handlers are installed by this call, so a signal
    // during the rest of start-up stops the service gracefully too; the future is awaited
    // once serving. (The demo installs none: Ctrl-C ends it at once.)
    let signal = args.serve.then(unitel::shutdown_signal);
    let telemetry = get_telemetry("agents");

    // Start-up work is one trace of its own, not a root span per query.
    let (db, cache) = telemetry
        .trace("startup")
        .instrument(async {
            Ok::<_, Box<dyn Error + Send + Sync>>((open_database().await?, open_cache().await?))
        })
        .await?;

    // The auth service: the one at AUTH_SERVICE_URL, else this binary in its other role.
    let (auth_url, auth) = match std::env::var("AUTH_SERVICE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let auth = tokio::task::spawn_blocking(AuthProcess::start).await??;
            (auth.url.clone(), Some(auth))
        }
    };
    println!("auth service: {auth_url}");

    let app = Agents {
        db,
        cache,
        http: unitel::instrument_reqwest(reqwest::Client::new()),
        auth_url,
    };
    let router = Router::new()
        .route("/api/custom", get(custom_endpoint))
        .route("/health", get(|| async { "ok" }))
        .with_state(app)
        // The guide's TracingMiddleware and MetricsMiddleware: a SERVER span and the HTTP
        // server metrics per request. `Router::layer` runs after routing, so spans are named
        // after the route. The health check is left out; callers can quote x-trace-id.
        .layer(
            HttpServerLayer::new()
                .exclude_path("/health")
                .trace_id_header(axum::http::HeaderName::from_static("x-trace-id")),
        );

    let default_addr = if args.serve {
        "127.0.0.1:8000"
    } else {
        "127.0.0.1:0"
    };
    let listener = tokio::net::TcpListener::bind(args.listen_or(default_addr)?).await?;
    let url = format!("http://{}", listener.local_addr()?);

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let mut demo_trace = None;
    if let Some(signal) = signal {
        println!("temponest-agents listening on {url}");
        println!("try: curl -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' {url}/api/custom");
        println!("Ctrl-C or SIGTERM stops it");
        signal.await;
        println!("stopping: finishing requests, then flushing telemetry");
    } else {
        demo_trace = demo(&url).await;
    }

    // In-flight requests finish first, then the auth service stops, then telemetry flushes.
    let _ = stop.send(());
    server.await??;
    if let Some(auth) = auth {
        let status = tokio::task::spawn_blocking(move || auth.stop()).await??;
        if !status.success() {
            return Err(format!("the auth service ended with {status}").into());
        }
    }
    guard.shutdown_async().await?;

    if let Some(trace) = demo_trace {
        println!();
        println!(
            "trace {trace}: the three requests above, across temponest-agents and temponest-auth"
        );
        println!("(every \"type\":\"span\" line and every log line with this trace id)");
    }
    println!("stopped");
    Ok(())
}

/// `GET /api/custom`: the guide's custom endpoint.
async fn custom_endpoint(State(app): State<Agents>) -> Result<String, StatusCode> {
    let telemetry = get_telemetry("agents");
    let outcome = telemetry
        .trace("custom-operation")
        .attr("custom.attribute", "value")
        .instrument(async {
            let agents = active_agents(&app).await?;
            let users = auth_users(&app).await?;
            unitel::current_span().set_attribute("result.count", agents.len() as i64);
            Ok::<_, StatusCode>(format!(
                "{} active agents for {} users; trace {}\n",
                agents.len(),
                users,
                unitel::current_trace_id().unwrap_or_default()
            ))
        })
        .await;
    let status = if outcome.is_ok() { "success" } else { "error" };
    telemetry
        .counter("custom.requests")
        .add(1, &[("status", status)]);
    outcome
}

/// The active agents: from the cache, else from the database (then cached).
async fn active_agents(app: &Agents) -> Result<Vec<String>, StatusCode> {
    let telemetry = get_telemetry("agents");
    if let Some(cache) = &app.cache {
        let mut cache = cache.clone();
        // The cache is best-effort: an error reads the database instead.
        match cache.get::<_, Option<String>>(AGENTS_KEY).await {
            Ok(Some(cached)) => {
                telemetry.log_info("agents from the cache");
                return Ok(cached.split(',').map(str::to_owned).collect());
            }
            Ok(None) => telemetry.log_info("cache miss: reading the database"),
            // (Its span has the error's type; a Redis error message can quote arguments.)
            Err(_) => telemetry.log_warning("cache unavailable: reading the database"),
        }
    }
    let agents = app.db.active_agents().await.map_err(|err| {
        telemetry.log_error_with_cause("agents query failed", &err, ());
        StatusCode::INTERNAL_SERVER_ERROR
    })?;
    if let Some(cache) = &app.cache {
        let mut cache = cache.clone();
        let stored: redis::RedisResult<()> = cache
            .set_ex(AGENTS_KEY, agents.join(","), CACHE_SECONDS)
            .await;
        if stored.is_err() {
            telemetry.log_warning("agents not cached");
        }
    }
    Ok(agents)
}

/// How many users the auth service knows: an HTTP call with the trace context injected.
async fn auth_users(app: &Agents) -> Result<usize, StatusCode> {
    let telemetry = get_telemetry("agents");
    let url = format!("{}/api/v1/users", app.auth_url);
    let response = app
        .http
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status().map_err(Into::into));
    match response {
        Ok(response) => {
            let body = response.text().await.unwrap_or_default();
            Ok(body.lines().filter(|l| !l.is_empty()).count())
        }
        Err(err) => {
            telemetry.log_error_with_cause("auth service unavailable", &err, ());
            Err(StatusCode::BAD_GATEWAY)
        }
    }
}

/// The demo: three requests to the agents service, under one span, so they share a trace.
async fn demo(url: &str) -> Option<String> {
    let telemetry = get_telemetry("demo");
    let client = unitel::instrument_reqwest(reqwest::Client::new());
    let span = telemetry.trace("demo");
    let trace = span.trace_id();
    span.instrument(async {
        for _ in 0..3 {
            match client.get(format!("{url}/api/custom")).send().await {
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    println!("GET /api/custom: {status} {}", body.trim_end());
                }
                Err(err) => telemetry.log_error_with_cause("request failed", &err, ()),
            }
        }
    })
    .await;
    trace
}

// ---------------------------------------------------------------------------------------------
// The database: PostgreSQL at DATABASE_URL, else SQLite in memory, both through the adapter.

#[derive(Clone)]
enum Database {
    Postgres(InstrumentedPool<Postgres>),
    Sqlite(InstrumentedPool<Sqlite>),
}

/// The same sqlx call on whichever pool is open: the SQL here is valid on both.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $call:expr) => {
        match $db {
            Database::Postgres($pool) => $call,
            Database::Sqlite($pool) => $call,
        }
    };
}

impl Database {
    async fn active_agents(&self) -> Result<Vec<String>, sqlx::Error> {
        on_pool!(self, |pool| sqlx::query_scalar(ACTIVE_AGENTS)
            .fetch_all(pool)
            .await)
    }

    async fn migrate(&self) -> Result<(), sqlx::Error> {
        for statement in [
            "CREATE TABLE IF NOT EXISTS agents (id INTEGER PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL)",
            "INSERT INTO agents (id, name, status) VALUES (1, 'planner', 'active'), (2, 'coder', 'active'), \
             (3, 'reviewer', 'active'), (4, 'archivist', 'retired') ON CONFLICT (id) DO NOTHING",
        ] {
            on_pool!(self, |pool| sqlx::query(statement).execute(pool).await.map(drop))?;
        }
        Ok(())
    }
}

async fn open_database() -> Result<Database> {
    let db = match std::env::var("DATABASE_URL") {
        Ok(url) => {
            let options: PgConnectOptions = url.parse()?;
            // Never print the URL: it holds the password.
            println!(
                "database: PostgreSQL at {}:{}/{} (DATABASE_URL)",
                options.get_host(),
                options.get_port(),
                options.get_database().unwrap_or_default()
            );
            let pool = PgPoolOptions::new()
                .max_connections(5)
                .connect_with(options)
                .await?;
            Database::Postgres(unitel::instrument_sqlx(pool))
        }
        Err(_) => {
            println!("database: SQLite in memory (DATABASE_URL is not set)");
            // One connection, kept: an in-memory database lives as long as its connection.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect("sqlite::memory:")
                .await?;
            Database::Sqlite(unitel::instrument_sqlx(pool))
        }
    };
    db.migrate().await?;
    Ok(db)
}

/// The cache at REDIS_URL, emptied of what the seeding made stale; `None` without REDIS_URL.
async fn open_cache() -> Result<Option<InstrumentedRedis<ConnectionManager>>> {
    let Ok(url) = std::env::var("REDIS_URL") else {
        println!("cache: none (REDIS_URL is not set): every request reads the database");
        return Ok(None);
    };
    let client = redis::Client::open(url)?;
    let addr = client.get_connection_info().addr().to_string();
    println!("cache: Redis at {addr} (REDIS_URL)");
    let mut cache = unitel::instrument_redis(client.get_connection_manager().await?, &client);
    let _: usize = cache.del(AGENTS_KEY).await?;
    Ok(Some(cache))
}

// ---------------------------------------------------------------------------------------------
// temponest-auth

async fn run_auth(args: Args) -> Result<()> {
    let guard = unitel::configure_telemetry(telemetry_config("temponest-auth"))?;
    // Ctrl-C/SIGTERM handlers, installed now; awaited once serving.
    let signal = unitel::shutdown_signal();
    // instrument_axum(router) is HttpServerLayer::new() with its defaults.
    let router = unitel::instrument_axum(Router::new().route("/api/v1/users", get(users)));
    let listener = tokio::net::TcpListener::bind(args.listen_or("127.0.0.1:8001")?).await?;
    // The agents service reads this first line for the address.
    println!(
        "temponest-auth listening on http://{}",
        listener.local_addr()?
    );

    let stop = async move {
        if args.until_stdin_closes {
            // Started by the agents service: it closes our stdin when it stops (or dies).
            let (closed, on_close) = tokio::sync::oneshot::channel::<()>();
            thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                let _ = closed.send(());
            });
            tokio::select! {
                _ = on_close => {}
                _ = signal => {}
            }
        } else {
            signal.await;
        }
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await?;
    guard.shutdown_async().await?;
    Ok(())
}

/// `GET /api/v1/users`: one user per line.
async fn users() -> &'static str {
    get_telemetry("auth").log_info_with("users listed", &[("user.count", 2)]);
    "alice\nbob\n"
}

/// The auth service as a child process: this binary with `--role auth`.
struct AuthProcess {
    child: Child,
    url: String,
    output: thread::JoinHandle<()>,
}

impl AuthProcess {
    /// Starts it and waits for the line that names its address; its later output is passed
    /// on to ours, so its spans and logs show on the same console.
    fn start() -> Result<AuthProcess> {
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "--role",
                "auth",
                "--listen",
                "127.0.0.1:0",
                "--until-stdin-closes",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => match line.strip_prefix("temponest-auth listening on ") {
                    Some(url) => break url.to_owned(),
                    None => println!("{line}"),
                },
                _ => {
                    let status = child.wait()?;
                    return Err(format!("the auth service did not start ({status})").into());
                }
            }
        };
        let output = thread::spawn(move || {
            for line in lines.map_while(std::result::Result::ok) {
                println!("{line}");
            }
        });
        Ok(AuthProcess { child, url, output })
    }

    /// Closes its stdin, which stops it gracefully, and waits for it to flush and exit.
    fn stop(mut self) -> std::io::Result<ExitStatus> {
        drop(self.child.stdin.take());
        let status = self.child.wait()?;
        let _ = self.output.join();
        Ok(status)
    }
}

// ---------------------------------------------------------------------------------------------

/// `--serve`, `--role agents|auth`, `--listen ADDR`, `--until-stdin-closes`.
struct Args {
    serve: bool,
    role: String,
    listen: Option<String>,
    until_stdin_closes: bool,
}

impl Args {
    fn parse() -> Result<Args> {
        let mut args = Args {
            serve: false,
            role: "agents".to_owned(),
            listen: None,
            until_stdin_closes: false,
        };
        let mut given = std::env::args().skip(1);
        while let Some(arg) = given.next() {
            match arg.as_str() {
                "--serve" => args.serve = true,
                "--role" => args.role = given.next().ok_or("--role needs agents or auth")?,
                "--listen" => args.listen = Some(given.next().ok_or("--listen needs an address")?),
                "--until-stdin-closes" => args.until_stdin_closes = true,
                other => return Err(format!("unknown argument {other:?}").into()),
            }
        }
        Ok(args)
    }

    fn listen_or(&self, default: &str) -> Result<SocketAddr> {
        Ok(self.listen.as_deref().unwrap_or(default).parse()?)
    }
}
