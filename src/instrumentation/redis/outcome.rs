//! How a command ended, in the words of the conventions: the redis error prefix
//! (`WRONGTYPE`) as `db.response.status_code` and `error.type`, or a low-cardinality class
//! (`connection_refused`, `io`) for errors that never reached the server. The error's text is
//! never used: redis error messages may echo the command's arguments.

use crate::instrumentation::db::DbError;
use redis::{ErrorKind, RedisError, ServerError, Value};
use std::borrow::Cow;

/// The longest error prefix taken as a status code.
const MAX_CODE: usize = 32;
/// `error.type` when nothing better is known.
const OTHER: &str = "_OTHER";

/// A reply that may carry server errors.
pub(crate) trait Reply {
    /// The first server error in the reply, if any. `transaction`: the reply is `EXEC`'s, whose
    /// elements are the queued commands' replies.
    fn server_error(&self, transaction: bool) -> Option<&ServerError>;
}

impl Reply for Value {
    fn server_error(&self, _transaction: bool) -> Option<&ServerError> {
        match self {
            Value::ServerError(error) => Some(error),
            _ => None,
        }
    }
}

impl Reply for Vec<Value> {
    fn server_error(&self, transaction: bool) -> Option<&ServerError> {
        self.iter().find_map(|value| match value {
            Value::ServerError(error) => Some(error),
            Value::Array(items) if transaction => items.iter().find_map(|item| match item {
                Value::ServerError(error) => Some(error),
                _ => None,
            }),
            _ => None,
        })
    }
}

/// The error of a finished command, or `None` when it succeeded.
pub(crate) fn of_result<T: Reply>(
    result: &Result<T, RedisError>,
    transaction: bool,
) -> Option<DbError> {
    match result {
        Ok(reply) => reply.server_error(transaction).map(|e| server(e.code())),
        Err(error) => Some(of_error(error)),
    }
}

/// A server error prefix: `db.response.status_code` and `error.type`.
fn server(code: &str) -> DbError {
    let code = sanitize(code);
    DbError {
        status_code: Some(code.clone()),
        error_type: code.clone(),
        description: code,
    }
}

/// The prefix as it is when it looks like one (upper-case letters, digits, `_`, `-`; at most
/// 32 bytes), `_OTHER` otherwise: a script's `error_reply` can start with anything.
fn sanitize(code: &str) -> Cow<'static, str> {
    let plain = !code.is_empty()
        && code.len() <= MAX_CODE
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    match plain {
        true => Cow::Owned(code.to_owned()),
        false => Cow::Borrowed(OTHER),
    }
}

/// An error returned by the client library.
pub(crate) fn of_error(error: &RedisError) -> DbError {
    if let Some(code) = error.code() {
        return server(code);
    }
    if let Some(errors) = error.clone().into_server_errors() {
        if let Some((_, first)) = errors.first() {
            return server(first.code());
        }
    }
    let class = class(error);
    DbError {
        status_code: None,
        error_type: Cow::Borrowed(class),
        description: Cow::Borrowed(class),
    }
}

/// A low-cardinality name for an error that is not a server reply.
fn class(error: &RedisError) -> &'static str {
    match error.kind() {
        ErrorKind::Io if error.is_connection_refusal() => "connection_refused",
        ErrorKind::Io if error.is_timeout() => "timeout",
        ErrorKind::Io if error.is_connection_dropped() => "connection_dropped",
        ErrorKind::Io => "io",
        ErrorKind::Parse => "parse",
        ErrorKind::AuthenticationFailed => "authentication_failed",
        ErrorKind::UnexpectedReturnType => "unexpected_return_type",
        ErrorKind::InvalidClientConfig => "invalid_client_config",
        ErrorKind::Client => "client",
        ErrorKind::RESP3NotSupported => "resp3_not_supported",
        ErrorKind::ClusterConnectionNotFound => "cluster_connection_not_found",
        _ => OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn codes_are_kept_only_when_they_look_like_codes() {
        assert_eq!(sanitize("WRONGTYPE"), "WRONGTYPE");
        assert_eq!(sanitize("ERR"), "ERR");
        assert_eq!(sanitize("NOPERM"), "NOPERM");
        assert_eq!(sanitize("my"), OTHER);
        assert_eq!(sanitize("hunter2"), OTHER);
        assert_eq!(sanitize(""), OTHER);
        assert_eq!(sanitize(&"X".repeat(33)), OTHER);
    }

    #[test]
    fn client_errors_have_a_class_and_no_status_code() {
        let refused = RedisError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        let e = of_error(&refused);
        assert_eq!(e.error_type, "connection_refused");
        assert!(e.status_code.is_none());
        let reset = RedisError::from(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(of_error(&reset).error_type, "connection_dropped");
        let other = RedisError::from(io::Error::other("secret detail"));
        let e = of_error(&other);
        assert_eq!(e.error_type, "io");
        assert!(!e.description.contains("secret"));
        let typed = RedisError::from((ErrorKind::UnexpectedReturnType, "bad", "v".to_owned()));
        assert_eq!(of_error(&typed).error_type, "unexpected_return_type");
    }

    #[test]
    fn a_server_error_inside_exec_counts_for_a_transaction_only() {
        let ok = Value::Okay;
        assert!(of_result(&Ok(ok.clone()), false).is_none());
        let pipeline: Result<Vec<Value>, RedisError> = Ok(vec![Value::Okay, Value::Nil]);
        assert!(of_result(&pipeline, false).is_none());
        assert!(of_result(&pipeline, true).is_none());
    }
}
