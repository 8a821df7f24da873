//! The HTTP request method as the semantic conventions name it, shared by the server layer
//! and the reqwest client middleware.

use http::Method;

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
