//! What the HTTP semantic conventions name the same way on both sides, shared by the server
//! layer and the reqwest client middleware: the request method, status codes as `error.type`,
//! and `network.protocol.version`.

use http::{Method, Version};

/// `http.request.method` of a method outside the nine standard ones.
pub(crate) const OTHER: &str = "_OTHER";

/// The method as the conventions name it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KnownMethod {
    /// `http.request.method`: the method, or `_OTHER`.
    pub(crate) attr: &'static str,
    /// In the span name: the method, or `HTTP`.
    pub(crate) name: &'static str,
}

impl KnownMethod {
    /// The method of a request (case-sensitive, as HTTP methods are).
    pub(crate) fn of(method: &Method) -> Self {
        let known = match method.as_str() {
            "GET" => "GET",
            "POST" => "POST",
            "PUT" => "PUT",
            "DELETE" => "DELETE",
            "HEAD" => "HEAD",
            "OPTIONS" => "OPTIONS",
            "PATCH" => "PATCH",
            "CONNECT" => "CONNECT",
            "TRACE" => "TRACE",
            _ => {
                return KnownMethod {
                    attr: OTHER,
                    name: "HTTP",
                }
            }
        };
        KnownMethod {
            attr: known,
            name: known,
        }
    }
}

/// `"100"` ..= `"999"`, for `error.type` without formatting.
static STATUS_CODES: [u8; 2700] = {
    let mut digits = [0u8; 2700];
    let mut i = 0;
    while i < 900 {
        let code = i + 100;
        digits[3 * i] = b'0' + (code / 100) as u8;
        digits[3 * i + 1] = b'0' + (code / 10 % 10) as u8;
        digits[3 * i + 2] = b'0' + (code % 10) as u8;
        i += 1;
    }
    digits
};

/// A status code as text (`"404"`), for the three-digit codes.
pub(crate) fn status_code(status: u16) -> Option<&'static str> {
    let i = usize::from(status.checked_sub(100)?);
    let digits = STATUS_CODES.get(3 * i..3 * i + 3)?;
    std::str::from_utf8(digits).ok()
}

/// `network.protocol.version` of an HTTP version.
pub(crate) fn protocol_version(version: Version) -> Option<&'static str> {
    Some(match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => return None,
    })
}
