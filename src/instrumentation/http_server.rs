//! The HTTP server layer: one SERVER span and the HTTP server metrics per request, for axum and
//! any tower service, after the stable HTTP semantic conventions.
//!
//! Built on the public API (`get_telemetry`, `SpanBuilder`, `TraceContext::extract`, the metric
//! instruments and the `Attributes` trait) plus four crate-internal calls:
//! `SpanBuilder::start_context` (the started span's context, attached by the future on each
//! poll), `SpanBuilder::attributes_owned` (the attributes moved in, not copied),
//! `state::active` (so that a request costs next to nothing while telemetry is off) and
//! `format::write_hex` (the trace id header).

use super::http_method::{protocol_version, status_code, KnownMethod, OTHER};
use crate::{get_telemetry, Attributes, Histogram, InstrumentOptions, UnifiedTelemetry};
use crate::{TraceContext, UpDownCounter};
use http::header::{FORWARDED, HOST, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue, StringValue, Value};
use pin_project_lite::pin_project;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{self, ready, Poll};
use std::time::Instant;

/// The component whose tracer and meter the layer uses unless told otherwise.
const DEFAULT_COMPONENT: &str = "http.server";
/// Bucket boundaries of `http.server.request.duration`, in seconds (the convention's advice).
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Longest value taken from the request (path, headers); longer ones are cut at a character
/// boundary, so a huge header cannot make a huge span.
const MAX_VALUE_LEN: usize = 1024;

const HTTP_REQUEST_METHOD: &str = "http.request.method";
const HTTP_REQUEST_METHOD_ORIGINAL: &str = "http.request.method_original";
const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
const HTTP_ROUTE: &str = "http.route";
const URL_PATH: &str = "url.path";
const URL_SCHEME: &str = "url.scheme";
const SERVER_ADDRESS: &str = "server.address";
const SERVER_PORT: &str = "server.port";
const CLIENT_ADDRESS: &str = "client.address";
const NETWORK_PROTOCOL_VERSION: &str = "network.protocol.version";
const USER_AGENT_ORIGINAL: &str = "user_agent.original";
const ERROR_TYPE: &str = "error.type";

/// `error.type` of a request whose response future was dropped before it completed.
const CANCELLED: &str = "cancelled";

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// A tower [`Layer`](tower_layer::Layer) that gives every HTTP request a SERVER span and the
/// HTTP server metrics, after the stable HTTP semantic conventions (the Rust counterpart of
/// `instrument_fastapi(app)`).
///
/// ```
/// use axum::{routing::get, Router};
/// use unitel::HttpServerLayer;
///
/// let app: Router = Router::new()
///     .route("/users/{id}", get(|| async { "a user" }))
///     .route("/health", get(|| async { "ok" }))
///     // `Router::layer` wraps each route after routing, so the span knows the route.
///     .layer(
///         HttpServerLayer::new()
///             .exclude_path("/health")
///             .trace_id_header(http::HeaderName::from_static("x-trace-id")),
///     );
/// // axum::serve(listener, app).await
/// ```
///
/// | setting | default |
/// |---|---|
/// | [`component`](Self::component) | `"http.server"` |
/// | [`exclude_path`](Self::exclude_path) | none excluded |
/// | [`trace_id_header`](Self::trace_id_header) | off |
///
/// # The span
///
/// Named `{method} {route}` (`GET /users/{id}`), or `{method}` when no route is known; never
/// the raw path. Its parent is the context in the request's `traceparent` (and `tracestate`,
/// `baggage`, as `OTEL_PROPAGATORS` allows); an absent or malformed one starts a new trace and
/// keeps the baggage. It is current while the inner service's `call` runs and whenever its
/// future is polled, so the handler's spans and logs are its children, and it ends when the
/// response head is ready (a streamed body is not included) or when the request is dropped.
///
/// The route comes from, in order: an [`HttpRoute`] in the request's extensions, axum's
/// `MatchedPath` (feature `axum`), or an [`HttpRoute`] in the response's extensions, for
/// frameworks that route inside the service (the span is renamed then). With axum, apply the
/// layer with [`Router::layer`](axum::Router::layer) (or [`instrument_axum`]), not around the
/// whole router: outside it, routing has not happened yet.
///
/// Attributes: `http.request.method` (the nine standard methods; any other is `_OTHER`, with
/// `http.request.method_original`, and `HTTP` in the span name), `url.path`, `url.scheme`,
/// `http.route`, `http.response.status_code`, `server.address` and `server.port`,
/// `client.address`, `network.protocol.version` and `user_agent.original`; `error.type` when
/// the request failed. The query string and every other header are never recorded (they carry
/// secrets); values taken from the request are cut at 1024 bytes.
///
/// - `url.scheme`: the `proto` of `Forwarded`, else `X-Forwarded-Proto`, else the request
///   URI's scheme, else `http`. Only `http` and `https` are taken. An HTTP/1.1 request names
///   no scheme, so a server that terminates TLS itself reports `http` unless a header says
///   otherwise.
/// - `server.address`, `server.port`: the `host` of `Forwarded`, else `X-Forwarded-Host`, else
///   the URI's authority (HTTP/2 `:authority`, HTTP/1.1 absolute form), else `Host`.
/// - `client.address`: the `for` of `Forwarded`, else the first `X-Forwarded-For` entry, when
///   they are IP addresses.
///
/// Span status: `Error` on a 5xx response, an error from the inner service, or a dropped
/// request; unset otherwise (4xx included: the client's error, not the server's).
///
/// `error.type` is one of: the 5xx status code (`"503"`); the inner service's error type name
/// (`std::any::type_name`, `_OTHER` for a boxed `dyn Error`); `cancelled` when the response
/// future was dropped before it completed (the client went away, a timeout fired).
///
/// # The metrics
///
/// On the component's meter:
///
/// | instrument | kind | unit | attributes |
/// |---|---|---|---|
/// | `http.server.request.duration` | histogram, buckets 5 ms .. 10 s | `s` | `http.request.method`, `url.scheme`, `http.route`, `http.response.status_code`, `network.protocol.version`, `error.type` |
/// | `http.server.active_requests` | up-down counter | `{request}` | `http.request.method`, `url.scheme` |
///
/// The duration runs from the call to the response head (a streamed body is not included);
/// a dropped request counts too, with `error.type = cancelled`. An active request is counted
/// until its response future completes or is dropped.
///
/// # Excluded paths
///
/// A request whose path is exactly an excluded path (`/health`, `/metrics`) gets no span and
/// no metrics; a `traceparent` it carries is not even read.
///
/// # Off
///
/// While telemetry is not configured, disabled or shut down, a request costs a header lookup
/// or two: nothing is recorded, and a received trace context is only passed through to the
/// handler (so outgoing calls continue the caller's trace).
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
#[derive(Debug, Clone)]
pub struct HttpServerLayer {
    settings: Arc<Settings>,
}

/// What every service of one layer shares.
#[derive(Debug, Clone)]
struct Settings {
    telemetry: UnifiedTelemetry,
    duration: Histogram,
    active: UpDownCounter,
    excluded: Vec<Box<str>>,
    trace_id_header: Option<HeaderName>,
}

impl Settings {
    fn new(component: &str) -> Self {
        let telemetry = get_telemetry(component);
        Settings {
            duration: telemetry.histogram_with_options(
                "http.server.request.duration",
                InstrumentOptions::new()
                    .with_unit("s")
                    .with_description("Duration of HTTP server requests.")
                    .with_boundaries(DURATION_BUCKETS),
            ),
            active: telemetry.up_down_counter_with_options(
                "http.server.active_requests",
                InstrumentOptions::new()
                    .with_unit("{request}")
                    .with_description("Number of active HTTP server requests."),
            ),
            telemetry,
            excluded: Vec::new(),
            trace_id_header: None,
        }
    }

    fn is_excluded(&self, path: &str) -> bool {
        self.excluded.iter().any(|p| **p == *path)
    }
}

impl Default for HttpServerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpServerLayer {
    /// A layer on the component `http.server`, with no path excluded and no trace id header.
    pub fn new() -> Self {
        HttpServerLayer {
            settings: Arc::new(Settings::new(DEFAULT_COMPONENT)),
        }
    }

    /// Gives requests for exactly `path` (no query string; `/health`, `/metrics`) no span and
    /// no metrics. Call it once per path.
    pub fn exclude_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into().into_boxed_str();
        Arc::make_mut(&mut self.settings).excluded.push(path);
        self
    }

    /// Returns the request's trace id (32 lowercase hex digits) in the response header `name`
    /// (`x-trace-id`), so that a caller can quote it. Off by default.
    pub fn trace_id_header(mut self, name: HeaderName) -> Self {
        Arc::make_mut(&mut self.settings).trace_id_header = Some(name);
        self
    }

    /// The unitel component whose tracer and meter record the requests (default
    /// `http.server`): the spans' instrumentation scope and the metrics' meter.
    pub fn component(mut self, component: &str) -> Self {
        let settings = Arc::make_mut(&mut self.settings);
        let fresh = Settings::new(component);
        settings.telemetry = fresh.telemetry;
        settings.duration = fresh.duration;
        settings.active = fresh.active;
        self
    }
}

impl<S> tower_layer::Layer<S> for HttpServerLayer {
    type Service = HttpServerService<S>;

    fn layer(&self, inner: S) -> HttpServerService<S> {
        HttpServerService {
            inner,
            settings: self.settings.clone(),
            #[cfg(feature = "axum")]
            route: Arc::default(),
        }
    }
}

/// `router.layer(HttpServerLayer::new())`: a SERVER span and the HTTP server metrics for every
/// request the router handles (see [`HttpServerLayer`]).
///
/// ```
/// use axum::{extract::Path, routing::get, Router};
///
/// // The handler runs inside the request's SERVER span: its spans and logs are children.
/// async fn get_user(Path(id): Path<u64>) -> String {
///     let telemetry = unitel::get_telemetry("users");
///     let load = async { format!("user {id}") }; // ... a query ...
///     telemetry.trace("load_user").attr("user.id", id).instrument(load).await
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let capture = unitel::testing::capture();
/// let app = unitel::instrument_axum(Router::new().route("/users/{id}", get(get_user)));
/// // axum::serve(listener, app).with_graceful_shutdown(unitel::shutdown_signal()).await?;
/// # use tower::ServiceExt as _;
/// # let request = http::Request::get("/users/7").body(axum::body::Body::empty()).unwrap();
/// # assert_eq!(app.oneshot(request).await.unwrap().status(), 200);
/// # let (server, load) = (capture.span("GET /users/{id}").unwrap(), capture.span("load_user").unwrap());
/// # assert_eq!(load.parent_span_id, Some(server.span_id));
/// # }
/// ```
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub fn instrument_axum<S>(router: axum::Router<S>) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(HttpServerLayer::new())
}

/// The matched route of a request (`/users/{id}`): put it in the request's extensions before
/// the [`HttpServerLayer`], or in the response's extensions when routing happens inside the
/// layered service, and the server span is named after it and carries it as `http.route`.
///
/// It must have low cardinality: a template, never the raw path. With axum (feature `axum`)
/// the route is read from `MatchedPath` and this type is not needed.
///
/// ```
/// use tower::{service_fn, Layer as _};
///
/// let service = unitel::HttpServerLayer::new().layer(service_fn(|_req: http::Request<()>| async {
///     let mut response = http::Response::new(());
///     response.extensions_mut().insert(unitel::HttpRoute::new("/orders/{id}"));
///     Ok::<_, std::convert::Infallible>(response)
/// }));
/// # let _ = service;
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpRoute(Arc<str>);

impl HttpRoute {
    /// The route `route`; make it once per route and clone it per request (a reference count).
    pub fn new(route: impl Into<Arc<str>>) -> Self {
        HttpRoute(route.into())
    }

    /// The route.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The service made by [`HttpServerLayer`]: the inner service, with a SERVER span and the HTTP
/// server metrics around each call. Example: [`HttpServerLayer`].
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
#[derive(Debug, Clone)]
pub struct HttpServerService<S> {
    inner: S,
    settings: Arc<Settings>,
    /// The route last seen by this service, shared so that a service per route (what axum's
    /// `Router::layer` makes) does not copy its route for every request.
    #[cfg(feature = "axum")]
    route: Arc<std::sync::OnceLock<Arc<str>>>,
}

impl<S, B, RB> tower_service::Service<Request<B>> for HttpServerService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = HttpServerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut task::Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let settings = &self.settings;
        if settings.is_excluded(req.uri().path()) {
            return HttpServerFuture::new(self.inner.call(req), None);
        }
        let start = Instant::now();
        let parent = TraceContext::extract(req.headers());
        let flight = if crate::state::active().is_some() {
            #[cfg(feature = "axum")]
            let route = request_route(&req, &self.route);
            #[cfg(not(feature = "axum"))]
            let route = request_route(&req);
            Some(InFlight::start(settings, &req, &parent, route, start))
        } else {
            // Off: a received trace context still reaches the handler.
            settings
                .telemetry
                .span("HTTP")
                .parent(&parent)
                .start_context()
                .map(|cx| InFlight {
                    settings: settings.clone(),
                    cx: Some(cx),
                    request: None,
                })
        };
        let future = match flight.as_ref().and_then(|f| f.cx.clone()) {
            Some(cx) => {
                let _attached = cx.attach();
                self.inner.call(req)
            }
            None => self.inner.call(req),
        };
        HttpServerFuture::new(future, flight)
    }
}

pin_project! {
    /// The response future of [`HttpServerService`]: the inner future with the request's span
    /// current whenever it is polled. The span ends and the metrics are recorded when it
    /// completes, or when it is dropped before (a cancelled request). Example:
    /// [`HttpServerLayer`].
    #[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
    pub struct HttpServerFuture<F> {
        // `None` only while being dropped: the inner future goes first, inside the span.
        #[pin]
        inner: Option<F>,
        flight: Option<InFlight>,
    }

    impl<F> PinnedDrop for HttpServerFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if let Some(flight) = this.flight.take() {
                {
                    let _attached = flight.cx.clone().map(Context::attach);
                    this.inner.set(None);
                }
                flight.cancelled();
            }
        }
    }
}

impl<F> HttpServerFuture<F> {
    fn new(inner: F, flight: Option<InFlight>) -> Self {
        HttpServerFuture {
            inner: Some(inner),
            flight,
        }
    }
}

impl<F> std::fmt::Debug for HttpServerFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("HttpServerFuture");
        if let Some(cx) = self.flight.as_ref().and_then(|f| f.cx.as_ref()) {
            let span = cx.span();
            let sc = span.span_context();
            d.field("trace_id", &sc.trace_id())
                .field("span_id", &sc.span_id());
        }
        d.finish_non_exhaustive()
    }
}

impl<F, RB, E> Future for HttpServerFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(inner) = this.inner.as_pin_mut() else {
            // Only while being dropped; never polled then.
            return Poll::Pending;
        };
        let mut output = {
            let _attached = this
                .flight
                .as_ref()
                .and_then(|f| f.cx.clone())
                .map(Context::attach);
            ready!(inner.poll(cx))
        };
        if let Some(flight) = this.flight.take() {
            flight.finish(&mut output);
        }
        Poll::Ready(output)
    }
}

/// A request between its call and its response.
struct InFlight {
    settings: Arc<Settings>,
    /// The server span's context (or, while telemetry is off, the received one).
    cx: Option<Context>,
    /// What the metrics need; `None` while telemetry is off.
    request: Option<RequestInfo>,
}

/// The request's metric attributes, all but the route static.
struct RequestInfo {
    start: Instant,
    method: KnownMethod,
    scheme: &'static str,
    version: Option<&'static str>,
    route: Option<Arc<str>>,
}

impl InFlight {
    /// Starts the span (attributes first, for the sampler) and counts the request active.
    fn start<B>(
        settings: &Arc<Settings>,
        req: &Request<B>,
        parent: &TraceContext,
        route: Option<Arc<str>>,
        start: Instant,
    ) -> InFlight {
        let headers = req.headers();
        let method = KnownMethod::of(req.method());
        // The first (the client's) element of `Forwarded`.
        let forwarded = header_str(headers, &FORWARDED).and_then(first_element);
        let scheme = url_scheme(req, forwarded);
        let version = protocol_version(req.version());

        let mut attrs: SmallVec<[KeyValue; 12]> = SmallVec::new();
        attrs.push(KeyValue::new(HTTP_REQUEST_METHOD, method.attr));
        if method.attr == OTHER {
            attrs.push(KeyValue::new(
                HTTP_REQUEST_METHOD_ORIGINAL,
                shared(req.method().as_str()),
            ));
        }
        attrs.push(KeyValue::new(URL_PATH, shared(req.uri().path())));
        attrs.push(KeyValue::new(URL_SCHEME, scheme));
        if let Some(route) = &route {
            attrs.push(KeyValue::new(HTTP_ROUTE, arc_value(route)));
        }
        if let Some(version) = version {
            attrs.push(KeyValue::new(NETWORK_PROTOCOL_VERSION, version));
        }
        if let Some((host, port)) = server_authority(req, forwarded) {
            attrs.push(KeyValue::new(SERVER_ADDRESS, shared(host)));
            if let Some(port) = port {
                attrs.push(KeyValue::new(SERVER_PORT, i64::from(port)));
            }
        }
        if let Some(ip) = client_address(req, forwarded) {
            attrs.push(KeyValue::new(CLIENT_ADDRESS, ip_value(ip)));
        }
        if let Some(agent) = headers.get(USER_AGENT) {
            let agent = String::from_utf8_lossy(agent.as_bytes());
            attrs.push(KeyValue::new(USER_AGENT_ORIGINAL, shared(&agent)));
        }

        let name: Cow<'static, str> = match &route {
            Some(route) => format!("{} {route}", method.name).into(),
            None => method.name.into(),
        };
        let cx = settings
            .telemetry
            .span(name)
            .kind(SpanKind::Server)
            .parent(parent)
            .attributes_owned(attrs.into_vec())
            .start_context();
        settings.active.add(1, &active_attrs(method, scheme));
        InFlight {
            settings: settings.clone(),
            cx,
            request: Some(RequestInfo {
                start,
                method,
                scheme,
                version,
                route,
            }),
        }
    }

    /// The response (or error) is ready: records it on the span, ends the span, records the
    /// metrics, and adds the trace id header.
    fn finish<RB, E>(mut self, output: &mut Result<Response<RB>, E>) {
        let (status, error) = match output {
            Ok(response) => {
                let status = response.status().as_u16();
                if let Some(request) = &mut self.request {
                    if request.route.is_none() {
                        if let Some(route) = response.extensions().get::<HttpRoute>() {
                            request.route = Some(route.0.clone());
                            if let Some(cx) = &self.cx {
                                late_route(cx, request.method, &route.0);
                            }
                        }
                    }
                }
                if let (Some(name), Some(cx)) = (&self.settings.trace_id_header, &self.cx) {
                    insert_trace_id(response.headers_mut(), name, cx);
                }
                (Some(status), server_error(status))
            }
            Err(_) => (None, Some(error_type::<E>())),
        };
        self.end(status, error);
    }

    /// The response future was dropped before it completed.
    fn cancelled(self) {
        self.end(None, Some(CANCELLED));
    }

    fn end(self, status: Option<u16>, error: Option<&'static str>) {
        if let Some(cx) = &self.cx {
            let span = cx.span();
            if span.is_recording() {
                if let Some(status) = status {
                    span.set_attribute(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
                }
                if let Some(error) = error {
                    span.set_attribute(KeyValue::new(ERROR_TYPE, error));
                    span.set_status(Status::error(""));
                }
            }
            span.end();
        }
        let Some(request) = &self.request else {
            return;
        };
        let settings = &self.settings;
        settings.duration.record_in(
            self.cx.as_ref(),
            request.start.elapsed().as_secs_f64(),
            DurationAttrs {
                request,
                status,
                error,
            },
        );
        settings
            .active
            .add(-1, &active_attrs(request.method, request.scheme));
    }
}

/// The route known when the request arrives: an [`HttpRoute`] in its extensions, else axum's
/// `MatchedPath`.
#[cfg(feature = "axum")]
fn request_route<B>(req: &Request<B>, last: &std::sync::OnceLock<Arc<str>>) -> Option<Arc<str>> {
    if let Some(route) = req.extensions().get::<HttpRoute>() {
        return Some(route.0.clone());
    }
    let matched = req
        .extensions()
        .get::<axum::extract::MatchedPath>()?
        .as_str();
    Some(match last.get() {
        Some(route) if **route == *matched => route.clone(),
        Some(_) => Arc::from(matched),
        None => last.get_or_init(|| Arc::from(matched)).clone(),
    })
}

/// The route known when the request arrives: an [`HttpRoute`] in its extensions.
#[cfg(not(feature = "axum"))]
fn request_route<B>(req: &Request<B>) -> Option<Arc<str>> {
    req.extensions().get::<HttpRoute>().map(|r| r.0.clone())
}

/// Names the span after a route found in the response, and records it.
fn late_route(cx: &Context, method: KnownMethod, route: &Arc<str>) {
    let span = cx.span();
    if span.is_recording() {
        span.update_name(format!("{} {route}", method.name));
        span.set_attribute(KeyValue::new(HTTP_ROUTE, arc_value(route)));
    }
}

fn active_attrs(method: KnownMethod, scheme: &'static str) -> [KeyValue; 2] {
    [
        KeyValue::new(HTTP_REQUEST_METHOD, method.attr),
        KeyValue::new(URL_SCHEME, scheme),
    ]
}

/// The attributes of `http.server.request.duration`, built in place on the stack.
struct DurationAttrs<'a> {
    request: &'a RequestInfo,
    status: Option<u16>,
    error: Option<&'static str>,
}

impl Attributes for DurationAttrs<'_> {
    fn extend_into(&self, out: &mut impl Extend<KeyValue>) {
        let r = self.request;
        out.extend([
            KeyValue::new(HTTP_REQUEST_METHOD, r.method.attr),
            KeyValue::new(URL_SCHEME, r.scheme),
        ]);
        if let Some(route) = &r.route {
            out.extend([KeyValue::new(HTTP_ROUTE, arc_value(route))]);
        }
        if let Some(status) = self.status {
            out.extend([KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status))]);
        }
        if let Some(version) = r.version {
            out.extend([KeyValue::new(NETWORK_PROTOCOL_VERSION, version)]);
        }
        if let Some(error) = self.error {
            out.extend([KeyValue::new(ERROR_TYPE, error)]);
        }
    }

    fn len_hint(&self) -> usize {
        let r = self.request;
        2 + usize::from(r.route.is_some())
            + usize::from(self.status.is_some())
            + usize::from(r.version.is_some())
            + usize::from(self.error.is_some())
    }

    fn with_slice<R>(&self, f: impl FnOnce(&mut [KeyValue]) -> R) -> R {
        let mut kvs: SmallVec<[KeyValue; 6]> = SmallVec::new();
        self.extend_into(&mut kvs);
        f(&mut kvs)
    }
}

/// `url.scheme`: the original request's scheme when a proxy names it, else the URI's, else
/// `http`. Only `http` and `https` are taken, so a header cannot grow the metric's series.
fn url_scheme<B>(req: &Request<B>, forwarded: Option<&str>) -> &'static str {
    forwarded
        .and_then(|f| forwarded_param(f, "proto"))
        .or_else(|| header_str(req.headers(), &X_FORWARDED_PROTO).and_then(first_element))
        .or_else(|| req.uri().scheme_str())
        .and_then(known_scheme)
        .unwrap_or("http")
}

fn known_scheme(scheme: &str) -> Option<&'static str> {
    if scheme.eq_ignore_ascii_case("https") {
        Some("https")
    } else if scheme.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

/// `server.address` and `server.port`: the `host` of `Forwarded`, else `X-Forwarded-Host`,
/// else the URI's authority, else `Host`.
fn server_authority<'a, B>(
    req: &'a Request<B>,
    forwarded: Option<&'a str>,
) -> Option<(&'a str, Option<u16>)> {
    let headers = req.headers();
    if let Some(found) = forwarded
        .and_then(|f| forwarded_param(f, "host"))
        .or_else(|| header_str(headers, &X_FORWARDED_HOST).and_then(first_element))
        .and_then(host_port)
    {
        return Some(found);
    }
    if let Some(authority) = req.uri().authority() {
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if !host.is_empty() {
            return Some((host, authority.port_u16()));
        }
    }
    header_str(headers, &HOST).and_then(host_port)
}

/// Splits `host[:port]` (`[v6]:port` too), dropping any `user@`.
fn host_port(value: &str) -> Option<(&str, Option<u16>)> {
    let value = value.trim();
    let value = value.rsplit_once('@').map_or(value, |(_, host)| host);
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match value.split_once(':') {
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            _ => (value, None),
        }
    };
    (!host.is_empty()).then(|| (host, port.and_then(|p| p.parse().ok())))
}

/// `client.address`: the `for` of `Forwarded`, else the first `X-Forwarded-For`, when an IP
/// address; else the peer's address.
fn client_address<B>(req: &Request<B>, forwarded: Option<&str>) -> Option<IpAddr> {
    forwarded
        .and_then(|f| forwarded_param(f, "for"))
        .and_then(parse_ip)
        .or_else(|| {
            header_str(req.headers(), &X_FORWARDED_FOR)
                .and_then(first_element)
                .and_then(parse_ip)
        })
        .or_else(|| peer_address(req))
        .map(|ip| ip.to_canonical())
}

/// The peer's address: axum's `ConnectInfo`, when the app is served with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
#[cfg(feature = "axum")]
fn peer_address<B>(req: &Request<B>) -> Option<IpAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The peer's address; plain tower services do not say.
#[cfg(not(feature = "axum"))]
fn peer_address<B>(_: &Request<B>) -> Option<IpAddr> {
    None
}

/// An IP address, with or without a port or brackets (`1.2.3.4`, `1.2.3.4:80`, `[::1]:80`).
fn parse_ip(value: &str) -> Option<IpAddr> {
    let value = value.trim().trim_matches('"');
    value
        .parse::<IpAddr>()
        .ok()
        .or_else(|| value.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .and_then(|v| v.parse().ok())
        })
}

/// The first element of a comma-separated header value, trimmed.
fn first_element(value: &str) -> Option<&str> {
    let first = value.split(',').next()?.trim();
    (!first.is_empty()).then_some(first)
}

/// The parameter `name` of one `Forwarded` element (`for=192.0.2.60;proto=https`), unquoted.
fn forwarded_param<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"'))
    })
}

/// The first value of header `name`, when it is visible ASCII.
fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `value`, cut to [`MAX_VALUE_LEN`] bytes at a character boundary, as a shared string (so the
/// span builder's copy is a reference count).
fn shared(value: &str) -> Value {
    let mut end = value.len().min(MAX_VALUE_LEN);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    Value::String(StringValue::from(Arc::<str>::from(&value[..end])))
}

fn arc_value(value: &Arc<str>) -> Value {
    Value::String(StringValue::from(value.clone()))
}

/// An IP address as a shared string, formatted on the stack.
fn ip_value(ip: IpAddr) -> Value {
    use std::io::Write as _;
    // The longest IPv6 text form is 45 bytes.
    let mut buf = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let text = match write!(cursor, "{ip}") {
        Ok(()) => {
            let len = usize::try_from(cursor.position()).unwrap_or(0);
            std::str::from_utf8(&buf[..len]).unwrap_or_default()
        }
        Err(_) => "",
    };
    Value::String(StringValue::from(Arc::<str>::from(text)))
}

/// Sets header `name` to the trace id of `cx`'s span, when it has one.
fn insert_trace_id(headers: &mut HeaderMap, name: &HeaderName, cx: &Context) {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return;
    }
    let mut hex = String::with_capacity(32);
    crate::format::write_hex(&mut hex, &sc.trace_id().to_bytes());
    if let Ok(value) = HeaderValue::try_from(hex) {
        headers.insert(name.clone(), value);
    }
}

/// `error.type` of a response: its status code when it is a server error (5xx).
fn server_error(status: u16) -> Option<&'static str> {
    (500..600).contains(&status).then(|| status_code(status))?
}

/// `error.type` of an error from the inner service: its type's name, or `_OTHER` when that
/// says nothing (a boxed `dyn Error`).
fn error_type<E>() -> &'static str {
    let name = std::any::type_name::<E>();
    if name.contains("Box<dyn ") {
        OTHER
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_their_codes() {
        assert_eq!(server_error(500), Some("500"));
        assert_eq!(server_error(503), Some("503"));
        assert_eq!(server_error(599), Some("599"));
        assert_eq!(server_error(499), None);
        assert_eq!(server_error(600), None);
        assert_eq!(server_error(200), None);
    }

    #[test]
    fn host_port_splits_names_and_addresses() {
        assert_eq!(
            host_port("example.com:8443"),
            Some(("example.com", Some(8443)))
        );
        assert_eq!(host_port("example.com"), Some(("example.com", None)));
        assert_eq!(
            host_port("[2001:db8::1]:80"),
            Some(("2001:db8::1", Some(80)))
        );
        assert_eq!(host_port("[2001:db8::1]"), Some(("2001:db8::1", None)));
        assert_eq!(host_port("2001:db8::1"), Some(("2001:db8::1", None)));
        assert_eq!(
            host_port("user:pw@example.com:80"),
            Some(("example.com", Some(80)))
        );
        assert_eq!(host_port("example.com:99999"), Some(("example.com", None)));
        assert_eq!(host_port(""), None);
        assert_eq!(host_port(":80"), None);
        assert_eq!(host_port("[::1"), None);
    }

    #[test]
    fn forwarded_parameters_and_addresses() {
        let f =
            first_element(r#"for="[2001:db8::1]:4711";proto=HTTPS;host=a.example, for=10.0.0.1"#)
                .unwrap();
        assert_eq!(forwarded_param(f, "FOR"), Some("[2001:db8::1]:4711"));
        assert_eq!(
            forwarded_param(f, "proto").and_then(known_scheme),
            Some("https")
        );
        assert_eq!(forwarded_param(f, "host"), Some("a.example"));
        assert_eq!(forwarded_param(f, "by"), None);
        assert_eq!(parse_ip("[2001:db8::1]:4711"), "2001:db8::1".parse().ok());
        assert_eq!(parse_ip("203.0.113.7:80"), "203.0.113.7".parse().ok());
        assert_eq!(parse_ip("[::1]"), "::1".parse().ok());
        assert_eq!(parse_ip("unknown"), None);
        assert_eq!(parse_ip("_hidden"), None);
        assert_eq!(known_scheme("ftp"), None);
    }

    #[test]
    fn values_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_VALUE_LEN);
        let Value::String(s) = shared(&long) else {
            panic!("not a string")
        };
        assert!(s.as_str().len() <= MAX_VALUE_LEN);
        assert!(s.as_str().len() >= MAX_VALUE_LEN - 1);
        assert_eq!(
            ip_value("::ffff:1.2.3.4".parse().unwrap()),
            Value::from("::ffff:1.2.3.4")
        );
    }

    #[test]
    fn error_types_name_the_error() {
        assert_eq!(error_type::<std::io::Error>(), "std::io::error::Error");
        assert_eq!(
            error_type::<Box<dyn std::error::Error + Send + Sync>>(),
            OTHER
        );
    }
}
