//! The OTLP/HTTP exporter for spans and logs with protobuf bodies (the default protocol).
//!
//! The batch is encoded while the SDK hands it over ([`wire`](super::wire), straight from its
//! records), then posted on the export runtime by [`Pipelined`](super::runtime::Pipelined),
//! with the retries the OTLP/HTTP specification asks for: 429 and 503 (honouring
//! `Retry-After`, in seconds or as an HTTP date), 502, 504 and failures without a response are retried with
//! exponential backoff (100 ms doubling to 1.6 s, up to 100 ms of jitter, at most 3 retries,
//! all within the export timeout); any other status fails the batch at once. These are
//! opentelemetry-otlp's own rules, kept so that nothing changes for a collector but the CPU
//! the encoding costs. grpc and http/json still go through opentelemetry-otlp.

use super::runtime::{Delivery, Rejected, Sends, TakesLogs, TakesSpans};
use super::transport::Transport;
use super::wire::{self, EncodedResource};
use opentelemetry_http::Bytes;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::LogBatch;
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const MAX_RETRIES: u32 = 3;
const INITIAL_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_millis(1600);
const MAX_JITTER_MS: u64 = 100;
/// The longest wait a collector's `Retry-After` can ask for.
const MAX_THROTTLE: Duration = Duration::from_secs(30);

/// One signal's OTLP/HTTP protobuf exporter.
#[derive(Debug)]
pub(crate) struct HttpProtobuf {
    transport: Transport,
    url: http::Uri,
    gzip: bool,
    timeout: Duration,
    resource: EncodedResource,
    /// The size of the last body, to allocate the next one once.
    last_len: AtomicUsize,
    shut: AtomicBool,
}

/// Why one attempt failed: the response's status (0 for none) and its `Retry-After`.
struct Failure {
    status: u16,
    retry_after: Option<Duration>,
}

impl HttpProtobuf {
    pub(crate) fn new(
        transport: Transport,
        url: http::Uri,
        gzip: bool,
        timeout: Duration,
    ) -> HttpProtobuf {
        HttpProtobuf {
            transport,
            url,
            gzip,
            timeout,
            resource: EncodedResource::default(),
            last_len: AtomicUsize::new(0),
            shut: AtomicBool::new(false),
        }
    }

    /// A request body: what `encode` writes, gzipped when asked.
    fn body(&self, encode: impl FnOnce(&mut Vec<u8>)) -> Bytes {
        let mut out = Vec::with_capacity(self.last_len.load(Ordering::Relaxed) + 1024);
        encode(&mut out);
        self.last_len.store(out.len(), Ordering::Relaxed);
        if self.gzip {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(out.len() / 4),
                flate2::Compression::default(),
            );
            // Writing to a Vec cannot fail.
            if gz.write_all(&out).is_ok() {
                if let Ok(zipped) = gz.finish() {
                    return Bytes::from(zipped);
                }
            }
        }
        Bytes::from(out)
    }

    async fn attempt(&self, body: Bytes) -> Result<Bytes, Failure> {
        let mut request = http::Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf");
        if self.gzip {
            request = request.header(http::header::CONTENT_ENCODING, "gzip");
        }
        let no_response = Failure {
            status: 0,
            retry_after: None,
        };
        let Ok(request) = request.body(body) else {
            return Err(no_response);
        };
        // The transport keeps the cause of a failure without a response for the report.
        let response = self
            .transport
            .send(request)
            .await
            .map_err(|_| no_response)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.into_body());
        }
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after);
        Err(Failure {
            status: status.as_u16(),
            retry_after,
        })
    }

    /// Posts `body`, retrying what the specification says may be retried.
    async fn post(&self, body: Bytes) -> Delivery {
        if self.shut.load(Ordering::Relaxed) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let started = Instant::now();
        let mut delay = INITIAL_DELAY;
        let mut cap = MAX_DELAY;
        let mut retries = 0;
        loop {
            let failure = match self.attempt(body.clone()).await {
                Ok(response) => return Ok(partial_success(&response)),
                Err(failure) => failure,
            };
            let failed = || {
                Err(OTelSdkError::InternalFailure(match failure.status {
                    0 => "HTTP export failed: network error".to_owned(),
                    code => format!("HTTP export failed with status code: {code}"),
                }))
            };
            let throttle = match failure.status {
                429 | 503 => failure.retry_after,
                0 | 502 | 504 => None,
                _ => return failed(),
            };
            if retries == MAX_RETRIES {
                return failed();
            }
            retries += 1;
            if let Some(wait) = throttle {
                let wait = wait.min(MAX_THROTTLE);
                if wait > cap {
                    cap = MAX_THROTTLE;
                }
                delay = delay.max(wait);
            }
            let sleep = (delay + jitter()).min(cap);
            if sleep >= self.timeout.saturating_sub(started.elapsed()) {
                return failed();
            }
            tokio::time::sleep(sleep).await;
            delay = (delay * 2).min(cap);
        }
    }
}

/// What a collector that took the request says it rejected (`ExportTracePartialSuccess` /
/// `ExportLogsPartialSuccess`: field 1 of the response, holding the count in field 1 and the
/// reason in field 2).
fn partial_success(response: &[u8]) -> Option<Rejected> {
    let partial = wire::field(response, 1)?;
    let items = wire::field_varint(partial, 1).filter(|&n| n > 0)?;
    let why = wire::field(partial, 2)
        .map(|m| String::from_utf8_lossy(&m[..m.len().min(200)]).into_owned())
        .unwrap_or_default();
    Some(Rejected { items, why })
}

/// A `Retry-After` value: seconds, or an HTTP date (how long until then; none if past).
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// Up to [`MAX_JITTER_MS`] milliseconds, from the clock's low bits (enough to spread retries).
fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(u64::from(nanos.wrapping_mul(2_654_435_761) >> 7) % (MAX_JITTER_MS + 1))
}

impl Sends for HttpProtobuf {
    type Taken = Bytes;

    fn send(&self, body: Bytes) -> impl std::future::Future<Output = Delivery> + Send {
        self.post(body)
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        match self.shut.swap(true, Ordering::Relaxed) {
            false => Ok(()),
            true => Err(OTelSdkError::AlreadyShutdown),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = EncodedResource::new(resource);
    }
}

impl TakesSpans for HttpProtobuf {
    fn take(&self, batch: Vec<SpanData>) -> Bytes {
        self.body(|out| wire::spans(out, &batch, &self.resource))
    }
}

impl TakesLogs for HttpProtobuf {
    fn take(&self, batch: &LogBatch<'_>) -> Bytes {
        self.body(|out| wire::logs(out, batch, &self.resource))
    }
}

#[cfg(test)]
mod tests {
    use super::retry_after;
    use std::time::{Duration, SystemTime};

    #[test]
    fn retry_after_is_read_as_seconds_or_as_a_date() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let wait = retry_after(&later).expect("a date");
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO),
            "a date past is no wait"
        );
        assert_eq!(retry_after("soon"), None);
    }
}
