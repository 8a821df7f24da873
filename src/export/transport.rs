//! The HTTP client of the OTLP http exporters: hyper with rustls, the headers unitel resolved
//! and nothing else, and the last transport error kept for the drop report.
//!
//! The upstream exporter reads `OTEL_EXPORTER_OTLP_HEADERS` from the process environment on its
//! own and reports any transport failure as "network error". This client replaces the request's
//! headers with the resolved ones (so `TelemetryConfig::new()` sends only what it was given) and
//! keeps the failure's cause (a certificate problem, a refused connection) for the message.

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// The cause of the last failed export, taken by the drop report.
#[derive(Debug, Default)]
pub(crate) struct LastError(Mutex<Option<String>>);

impl LastError {
    pub(crate) fn set(&self, cause: String) {
        *crate::sync::lock(&self.0) = Some(cause);
    }

    pub(crate) fn take(&self) -> Option<String> {
        crate::sync::lock(&self.0).take()
    }
}

/// An OTLP/HTTP client: hyper over rustls, with the resolved headers.
pub(crate) struct Transport {
    inner: opentelemetry_http::hyper::HyperClient<Connector>,
    headers: http::HeaderMap,
    last_error: Arc<LastError>,
}

impl std::fmt::Debug for Transport {
    // Header values carry credentials: names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// `headers` are already checked (config); `tls` serves https URLs.
    pub(crate) fn new(
        tls: rustls::ClientConfig,
        headers: &[(String, String)],
        timeout: Duration,
        last_error: Arc<LastError>,
    ) -> Transport {
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let mut map = http::HeaderMap::new();
        map.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(concat!("unitel/", env!("CARGO_PKG_VERSION"))),
        );
        for (name, value) in headers {
            if let (Ok(name), Ok(mut value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                value.set_sensitive(true);
                map.append(name, value);
            }
        }
        Transport {
            inner: opentelemetry_http::hyper::HyperClient::new(connector, timeout, None),
            headers: map,
            last_error,
        }
    }

    /// Sends `request` with the resolved headers (the body's own type and encoding kept).
    pub(crate) async fn send(
        &self,
        mut request: Request<Bytes>,
    ) -> Result<Response<Bytes>, HttpError> {
        // Keep what describes the body; everything else is ours.
        let own = std::mem::replace(request.headers_mut(), self.headers.clone());
        for name in [http::header::CONTENT_TYPE, http::header::CONTENT_ENCODING] {
            if let Some(value) = own.get(&name) {
                request.headers_mut().insert(name, value.clone());
            }
        }
        match self.inner.send_bytes(request).await {
            Ok(response) => Ok(response),
            Err(err) => {
                self.last_error.set(render_chain(&*err));
                Err(err)
            }
        }
    }
}

impl HttpClient for Transport {
    // `#[async_trait]`'s signature, written out.
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.send(request))
    }
}

/// `error: cause: cause`, each level once (an `io::Error`'s own message already is its inner
/// error's), so the rustls reason (`invalid peer certificate: UnknownIssuer`) is in it.
pub(crate) fn render_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = e.source();
    }
    out
}
