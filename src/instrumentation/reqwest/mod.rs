//! The reqwest adapter: a reqwest-middleware middleware that gives every request a CLIENT span
//! and `http.client.request.duration`, after the stable HTTP client conventions, and sends the
//! trace context with it.
//!
//! Built on the public API (`get_telemetry`, `SpanBuilder`, `TraceContext::inject`, the metric
//! instruments and the `Attributes` trait) plus these crate-internal ones:
//! `SpanBuilder::start_context` (the started span's context, attached by the future on each
//! poll), `SpanBuilder::attributes_owned` (the attributes moved in, not copied),
//! `state::active` (so that a request costs next to nothing while telemetry is off) and the
//! histogram's registry cell (`duration.rs` binds the SDK histogram to attribute sets, which
//! the facade's `Histogram` does not offer yet).

mod duration;
mod url_full;

use self::duration::Measurement;
use super::http_method::{protocol_version, status_code, KnownMethod, OTHER};
use crate::{get_telemetry, Histogram, InstrumentOptions, TraceContext};
use crate::{IntoValue as _, UnifiedTelemetry};
use ::reqwest::{Request, Response, Url};
use http::{Extensions, HeaderName};
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue, StringValue, Value};
use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{self, ready, Poll};
use std::thread::LocalKey;
use std::time::Instant;

/// The component whose tracer and meter the middleware uses unless told otherwise.
const DEFAULT_COMPONENT: &str = "http.client";
/// The duration histogram.
const DURATION: &str = "http.client.request.duration";
/// Bucket boundaries of `http.client.request.duration`, in seconds (the convention's advice).
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

const HTTP_REQUEST_METHOD: &str = "http.request.method";
const HTTP_REQUEST_METHOD_ORIGINAL: &str = "http.request.method_original";
const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
const SERVER_ADDRESS: &str = "server.address";
const SERVER_PORT: &str = "server.port";
const URL_FULL: &str = "url.full";
const URL_SCHEME: &str = "url.scheme";
const NETWORK_PROTOCOL_VERSION: &str = "network.protocol.version";
const ERROR_TYPE: &str = "error.type";

const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// A [reqwest-middleware](reqwest_middleware) [`Middleware`] that gives every request a CLIENT
/// span and the `http.client.request.duration` histogram, after the stable HTTP client
/// semantic conventions, and sends the trace context (`traceparent`, `tracestate`, `baggage`)
/// with the request, so the server's span is a child of the client's.
///
/// [`instrument_reqwest`] is the one-line form; build the client yourself to combine it with
/// other middleware:
///
/// ```no_run
/// use reqwest_middleware::ClientBuilder;
/// use unitel::HttpClientMiddleware;
///
/// # async fn run() -> Result<(), reqwest_middleware::Error> {
/// let client = ClientBuilder::new(reqwest::Client::new())
///     .with(HttpClientMiddleware::new().component("inventory-client"))
///     .build();
/// let telemetry = unitel::get_telemetry("orders");
/// let response = telemetry
///     .span("reserve_items")
///     // The CLIENT span is a child of `reserve_items`.
///     .instrument(client.get("http://inventory.internal/items/42").send())
///     .await?;
/// # let _ = response;
/// # Ok(())
/// # }
/// ```
///
/// | setting | default |
/// |---|---|
/// | [`component`](Self::component) | `"http.client"` |
///
/// # The span
///
/// One span per call of the middleware: named `{method}` (`GET`; `HTTP` for a method outside
/// the nine standard ones), kind `CLIENT`, a child of the span current when the request is sent
/// (`send().await` first polled). It starts before the request is handed to the next
/// middleware and ends when the response head has arrived (the body is read afterwards and is
/// not included), when the request fails, or when the request's future is dropped. While the
/// rest of the chain runs, the span is current, so spans and logs of inner middleware are its
/// children.
///
/// Placed before a retry middleware, it covers all the attempts; placed after it (or alone),
/// each attempt gets its own span, which is what the conventions prefer. Redirects that reqwest
/// follows by itself happen inside one span, and `url.full` is the URL first requested.
///
/// Attributes, all but the last three known when the span starts (the sampler sees them):
///
/// | attribute | value |
/// |---|---|
/// | `http.request.method` | `GET`, `POST`, ... the nine standard methods; any other is `_OTHER` |
/// | `http.request.method_original` | the method, when `http.request.method` is `_OTHER` |
/// | `server.address` | the URL's host (an IPv6 address without brackets) |
/// | `server.port` | the URL's port, else the scheme's default (an integer) |
/// | `url.full` | the URL, redacted (below) |
/// | `url.scheme` | `http` or `https` |
/// | `http.response.status_code` | the response's status (an integer) |
/// | `network.protocol.version` | the response's HTTP version: `1.0`, `1.1`, `2`, `3` |
/// | `error.type` | when the request failed (below) |
///
/// No header is recorded (`Authorization`, cookies and API keys live there), nor any body.
///
/// Span status: `Error` on a status of 400 or more (the client did not get what it asked
/// for), on a transport error and on a dropped request; unset otherwise. An error's status
/// description is a fixed text for its class; reqwest's own error text, which holds the URL,
/// is never recorded.
///
/// `error.type` is one of: the status code, for a status of 400 or more (`"404"`, `"503"`);
/// for a request that got no response, the class of the
/// [`reqwest::Error`](::reqwest::Error): `timeout`, `connect`, `redirect`, `body`, `decode`,
/// `builder`, `upgrade`, `request`; `cancelled` when the future was dropped before the
/// response arrived; `_OTHER` for an error from another middleware.
///
/// # `url.full` and secrets
///
/// `url.full` never holds credentials: a user name or password in the URL becomes
/// `REDACTED:REDACTED@` (`https://REDACTED:REDACTED@www.example.com/`), and the values of the
/// query keys `AWSAccessKeyId`, `Signature`, `sig`, `X-Goog-Signature`, `X-Amz-Signature`,
/// `X-Amz-Credential` and `X-Amz-Security-Token` become `REDACTED`, keeping the key and the
/// rest of the query as it was:
/// `https://bucket.example/k?X-Amz-Signature=REDACTED&X-Amz-Expires=3600`. Keys are compared
/// after percent-decoding and without regard to ASCII case (the conventions ask for a
/// case-sensitive match, but presigned URLs in the wild carry `x-amz-security-token`, and one
/// value redacted too many is the safer mistake); a `;` separates pairs as `&` does. The
/// fragment is kept, with the same keys redacted.
///
/// Note that reqwest's [`RequestBuilder`](::reqwest::RequestBuilder) (and so
/// `client.get(url)`) moves a URL's user name and password into an `Authorization: Basic`
/// header before any middleware runs, so `url.full` then shows no userinfo at all; a
/// [`Request`] built by hand and sent with `execute` keeps them in the URL, and they are
/// redacted. (hyper-util's connection pool, under reqwest, names such a URL's host with its
/// userinfo in DEBUG and TRACE events of its own, which reach the logs only when the log
/// filter lets `hyper_util` below `info`.)
///
/// # The metric
///
/// On the component's meter:
///
/// | instrument | kind | unit | attributes |
/// |---|---|---|---|
/// | `http.client.request.duration` | histogram, buckets 5 ms .. 10 s | `s` | `http.request.method`, `server.address`, `server.port`, `url.scheme`, `http.response.status_code`, `network.protocol.version`, `error.type` |
///
/// The duration runs over the same stretch as the span; failed and dropped requests count too.
///
/// # Trace context
///
/// The request carries `traceparent` and `tracestate` naming the CLIENT span, and the current
/// baggage, as `OTEL_PROPAGATORS` allows (both by default). A `traceparent` or `tracestate`
/// already on the request is replaced (or removed, for a `tracestate` when the span has none);
/// a `baggage` header is replaced when there is baggage to send, and left as it is otherwise.
///
/// # Off
///
/// While telemetry is not configured, disabled or shut down, nothing is recorded and the
/// request is sent as the bare client would send it, except that a trace context that is
/// current (received by the `HttpServerLayer` of feature `tower`, or attached with
/// [`attach_trace_context`](crate::attach_trace_context)) is still passed on.
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
#[derive(Debug, Clone)]
pub struct HttpClientMiddleware {
    settings: Arc<Settings>,
}

/// What every request through one middleware shares.
#[derive(Debug)]
struct Settings {
    telemetry: UnifiedTelemetry,
    duration: Histogram,
}

impl Settings {
    fn new(component: &str) -> Self {
        let telemetry = get_telemetry(component);
        Settings {
            duration: telemetry.histogram_with_options(
                DURATION,
                InstrumentOptions::new()
                    .with_unit("s")
                    .with_description("Duration of HTTP client requests.")
                    .with_boundaries(DURATION_BUCKETS),
            ),
            telemetry,
        }
    }
}

impl Default for HttpClientMiddleware {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClientMiddleware {
    /// A middleware on the component `http.client`.
    pub fn new() -> Self {
        HttpClientMiddleware {
            settings: Arc::new(Settings::new(DEFAULT_COMPONENT)),
        }
    }

    /// The unitel component whose tracer and meter record the requests (default
    /// `http.client`): the spans' instrumentation scope and the metric's meter.
    pub fn component(mut self, component: &str) -> Self {
        self.settings = Arc::new(Settings::new(component));
        self
    }
}

/// A reqwest client whose every request gets a CLIENT span, the `http.client.request.duration`
/// histogram and the trace context (see [`HttpClientMiddleware`]).
///
/// ```no_run
/// # async fn run() -> Result<(), reqwest_middleware::Error> {
/// let client = unitel::instrument_reqwest(reqwest::Client::new());
/// let body = client
///     .get("http://inventory.internal/items/42")
///     .send()
///     .await?
///     .text()
///     .await?;
/// # let _ = body;
/// # Ok(())
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub fn instrument_reqwest(client: ::reqwest::Client) -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(client)
        .with(HttpClientMiddleware::new())
        .build()
}

/// The future of the rest of the middleware chain.
type NextFuture<'a> =
    Pin<Box<dyn Future<Output = reqwest_middleware::Result<Response>> + Send + 'a>>;

impl Middleware for HttpClientMiddleware {
    // What `#[async_trait]` makes of `async fn handle(&self, req, extensions, next)`, written
    // out so that the span starts before the chain's future is made and the future is ours.
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        mut req: Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> NextFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        if crate::state::active().is_none() {
            // Off: only a received trace context goes on.
            if Context::map_current(|cx| cx.has_active_span() || !cx.baggage().is_empty()) {
                TraceContext::current().inject(req.headers_mut());
            }
            return next.run(req, extensions);
        }
        let flight = InFlight::start(&self.settings, &mut req);
        let inner = match &flight.cx {
            Some(cx) => {
                let _attached = cx.clone().attach();
                next.run(req, extensions)
            }
            None => next.run(req, extensions),
        };
        Box::pin(ClientFuture {
            inner: Some(inner),
            flight: Some(flight),
        })
    }
}

/// The rest of the chain, with the request's span current whenever it is polled; the span ends
/// and the duration is recorded when it completes, or when it is dropped before.
struct ClientFuture<'a> {
    /// `None` only while being dropped: the inner future goes first, inside the span.
    inner: Option<NextFuture<'a>>,
    flight: Option<InFlight<'a>>,
}

impl Future for ClientFuture<'_> {
    type Output = reqwest_middleware::Result<Response>;

    fn poll(mut self: Pin<&mut Self>, task: &mut task::Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Pending;
        };
        let output = {
            let _attached = this
                .flight
                .as_ref()
                .and_then(|f| f.cx.clone())
                .map(Context::attach);
            ready!(inner.as_mut().poll(task))
        };
        if let Some(flight) = this.flight.take() {
            flight.finish(&output);
        }
        Poll::Ready(output)
    }
}

impl Drop for ClientFuture<'_> {
    fn drop(&mut self) {
        if let Some(flight) = self.flight.take() {
            {
                let _attached = flight.cx.clone().map(Context::attach);
                self.inner = None;
            }
            flight.end(None, None, Some(ErrorClass::CANCELLED));
        }
    }
}

/// A request between its start and its response head.
struct InFlight<'a> {
    settings: &'a Settings,
    /// The CLIENT span's context; `None` if no span could start.
    cx: Option<Context>,
    start: Instant,
    method: KnownMethod,
    scheme: Value,
    address: Option<StringValue>,
    port: Option<u16>,
}

impl<'a> InFlight<'a> {
    /// Starts the span (attributes first, for the sampler) and puts the trace context into the
    /// request's headers.
    fn start(settings: &'a Settings, req: &mut Request) -> Self {
        let start = Instant::now();
        let method = KnownMethod::of(req.method());
        let url = req.url();
        let scheme = scheme_value(url.scheme());
        let address = server_address(url);
        let port = url.port_or_known_default();

        // Five now (six for an unknown method), and room for the three the end may add, so the
        // SDK does not grow it.
        let mut attrs = Vec::with_capacity(8);
        attrs.push(KeyValue::new(HTTP_REQUEST_METHOD, method.attr));
        if method.attr == OTHER {
            attrs.push(KeyValue::new(
                HTTP_REQUEST_METHOD_ORIGINAL,
                req.method().as_str().to_value(),
            ));
        }
        if let Some(address) = &address {
            attrs.push(KeyValue::new(
                SERVER_ADDRESS,
                Value::String(address.clone()),
            ));
        }
        if let Some(port) = port {
            attrs.push(KeyValue::new(SERVER_PORT, i64::from(port)));
        }
        attrs.push(KeyValue::new(URL_FULL, url_full_value(url)));
        attrs.push(KeyValue::new(URL_SCHEME, scheme.clone()));

        let cx = settings
            .telemetry
            .span(method.name)
            .kind(SpanKind::Client)
            .attributes_owned(attrs)
            .start_context();
        let parent = match &cx {
            Some(cx) => TraceContext::from(cx.clone()),
            None => TraceContext::current(),
        };
        let headers = req.headers_mut();
        if !headers.is_empty() && crate::state::propagators().trace_context {
            // A `tracestate` set before belongs to another `traceparent`: `inject` replaces it
            // when this span has one, and it must not stay when it has none.
            headers.remove(TRACESTATE);
        }
        parent.inject(headers);
        InFlight {
            settings,
            cx,
            start,
            method,
            scheme,
            address,
            port,
        }
    }

    /// The chain answered: records the response or the error, ends the span, records the
    /// duration.
    fn finish(self, output: &reqwest_middleware::Result<Response>) {
        match output {
            Ok(response) => {
                let status = response.status().as_u16();
                let error = (status >= 400).then(|| ErrorClass::status(status));
                self.end(Some(status), protocol_version(response.version()), error);
            }
            Err(e) => self.end(None, None, Some(ErrorClass::of(e))),
        }
    }

    fn end(self, status: Option<u16>, version: Option<&'static str>, error: Option<ErrorClass>) {
        if let Some(cx) = &self.cx {
            let span = cx.span();
            let mut attrs: SmallVec<[KeyValue; 3]> = SmallVec::new();
            if let Some(status) = status {
                attrs.push(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status)));
            }
            if let Some(version) = version {
                attrs.push(KeyValue::new(NETWORK_PROTOCOL_VERSION, version));
            }
            if let Some(error) = &error {
                attrs.push(KeyValue::new(ERROR_TYPE, error.name));
            }
            span.set_attributes(attrs);
            if let Some(error) = &error {
                span.set_status(Status::error(error.description));
            }
            span.end();
        }
        duration::record(
            self.settings.duration,
            self.cx.as_ref(),
            self.start.elapsed().as_secs_f64(),
            &Measurement {
                method: self.method.attr,
                scheme: &self.scheme,
                address: self.address.as_ref(),
                port: self.port,
                status,
                version,
                error: error.map(|e| e.name),
            },
        );
    }
}

/// What `error.type` says and the span status describes.
#[derive(Clone, Copy)]
struct ErrorClass {
    name: &'static str,
    /// Empty when the name says it all (a status code).
    description: &'static str,
}

impl ErrorClass {
    const CANCELLED: ErrorClass = ErrorClass {
        name: "cancelled",
        description: "the request was dropped before its response arrived",
    };

    /// A response with status `status` (400 or more).
    fn status(status: u16) -> Self {
        ErrorClass {
            name: status_code(status).unwrap_or(OTHER),
            description: "",
        }
    }

    /// A request that got no response: the class of the error, from reqwest's predicates
    /// (never its text, which holds the URL).
    fn of(error: &reqwest_middleware::Error) -> Self {
        let (name, description) = match error {
            reqwest_middleware::Error::Reqwest(e) => {
                if e.is_timeout() {
                    ("timeout", "the request timed out")
                } else if e.is_connect() {
                    ("connect", "could not connect to the server")
                } else if e.is_redirect() {
                    ("redirect", "a redirect could not be followed")
                } else if e.is_body() {
                    ("body", "the request or response body failed")
                } else if e.is_decode() {
                    ("decode", "the response body could not be decoded")
                } else if e.is_builder() {
                    ("builder", "the request could not be built")
                } else if e.is_upgrade() {
                    ("upgrade", "the connection could not be upgraded")
                } else if e.is_request() {
                    ("request", "the request could not be sent")
                } else {
                    (OTHER, "the request failed")
                }
            }
            reqwest_middleware::Error::Middleware(_) => (OTHER, "a middleware failed"),
        };
        ErrorClass { name, description }
    }
}

/// `url.scheme`: static for `http` and `https` (what reqwest sends), a copy otherwise.
fn scheme_value(scheme: &str) -> Value {
    match scheme {
        "http" => Value::from("http"),
        "https" => Value::from("https"),
        other => other.to_value(),
    }
}

/// `server.address`: the URL's host, an IPv6 address without its brackets.
fn server_address(url: &Url) -> Option<StringValue> {
    thread_local! {
        static LAST_HOST: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
    }
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then(|| StringValue::from(shared(&LAST_HOST, host)))
}

/// `url.full`: the URL, redacted.
fn url_full_value(url: &Url) -> Value {
    thread_local! {
        static LAST_URL: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
    }
    let text = url.as_str();
    // The parsed URL knows its parts: most have nothing to scan.
    let plain = url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    let full = if plain {
        Cow::Borrowed(text)
    } else {
        url_full::redact(text)
    };
    Value::String(StringValue::from(shared(&LAST_URL, &full)))
}

/// `text` as a shared string: the one `last` holds when it is the same text (the previous
/// request of this thread to the same host, or the same URL), else a new copy that `last` then
/// keeps. A client that keeps calling the same servers copies nothing per request.
fn shared(last: &'static LocalKey<RefCell<Option<Arc<str>>>>, text: &str) -> Arc<str> {
    last.try_with(|last| {
        let mut last = last.try_borrow_mut().ok()?;
        Some(match &*last {
            Some(known) if **known == *text => known.clone(),
            _ => {
                let fresh: Arc<str> = Arc::from(text);
                *last = Some(fresh.clone());
                fresh
            }
        })
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| Arc::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn status_codes_are_their_text() {
        assert_eq!(status_code(100), Some("100"));
        assert_eq!(status_code(404), Some("404"));
        assert_eq!(status_code(503), Some("503"));
        assert_eq!(status_code(999), Some("999"));
        assert_eq!(status_code(99), None);
        assert_eq!(status_code(1000), None);
        assert_eq!(ErrorClass::status(1000).name, OTHER);
    }

    #[test]
    fn methods_outside_the_standard_nine_are_other() {
        let get = KnownMethod::of(&Method::GET);
        assert_eq!((get.attr, get.name), ("GET", "GET"));
        let purge = KnownMethod::of(&Method::from_bytes(b"PURGE").unwrap());
        assert_eq!((purge.attr, purge.name), (OTHER, "HTTP"));
        // Methods are case-sensitive: `get` is not `GET`.
        let lower = KnownMethod::of(&Method::from_bytes(b"get").unwrap());
        assert_eq!(lower.attr, OTHER);
    }

    #[test]
    fn server_address_is_the_host_without_brackets() {
        let address =
            |url: &str| server_address(&Url::parse(url).unwrap()).map(|s| s.as_str().to_owned());
        assert_eq!(address("http://[::1]:8080/").as_deref(), Some("::1"));
        assert_eq!(
            address("https://user:pw@api.example.com/").as_deref(),
            Some("api.example.com")
        );
        assert_eq!(address("http://127.0.0.1/").as_deref(), Some("127.0.0.1"));
        // The same host again shares the first copy.
        let a = server_address(&Url::parse("http://a.example/x").unwrap()).unwrap();
        let b = server_address(&Url::parse("http://a.example/y").unwrap()).unwrap();
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
    }
}
