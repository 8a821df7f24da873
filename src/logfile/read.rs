//! Reading the log file back: a line into a typed [`Record`], a log's files into records.

use super::files::log_files;
use super::records::{ErrorRecord, LogRecord, Record, SpanEventRecord, SpanRecord};
use super::scan::open_log_file;
use crate::error::Error;
use crate::format::is_lower_hex;
use crate::format::time::parse_rfc3339;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use serde_json::{Map, Value};
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Parses one line of the log file (with or without its newline, as text or raw bytes) into a
/// typed record.
///
/// ```
/// use unitel::logfile::{parse_line, Record};
///
/// let line = r#"{"timestamp":"2026-11-21T05:23:30.123481Z","type":"log","service":"orders","level":"WARN","target":"worker","component":"worker","message":"charge failed, will retry","trace_id":"e325f39b1cd010ba505223279db92aec","span_id":"85c6fa50d3c52560","fields":{"job.id":2}}"#;
/// match parse_line(line)? {
///     Record::Log(log) => {
///         assert_eq!(log.level, unitel::tracing::Level::WARN);
///         assert_eq!(log.message, "charge failed, will retry");
///         assert_eq!(log.fields["job.id"], 2);
///     }
///     Record::Span(span) => println!("span {} took {:?}", span.name, span.duration),
///     _ => {} // kinds of records added later
/// }
///
/// // A line of another format says what is wrong with it:
/// let err = parse_line(r#"{"type":"log","message":"hi"}"#).unwrap_err();
/// assert!(matches!(err, unitel::Error::InvalidRecord { .. }), "{err}");
/// # Ok::<(), unitel::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidRecord`] when the line is not JSON, or not a log or span record of the
/// format in `docs/log-format.md`; the error says which key is missing or wrong.
pub fn parse_line(line: impl AsRef<[u8]>) -> Result<Record, Error> {
    let value: Value =
        serde_json::from_slice(line.as_ref()).map_err(|source| Error::InvalidRecord {
            reason: "not a JSON object".into(),
            source: Some(source),
        })?;
    let Value::Object(mut object) = value else {
        return Err(invalid("not a JSON object".into()));
    };
    // The one large key of each kind is moved out rather than copied.
    let (fields, attributes) = (object.remove("fields"), object.remove("attributes"));
    let record = Fields(&object);
    match record.str("type")? {
        "log" => record.log(fields).map(Record::Log),
        "span" => record.span(attributes).map(Record::Span),
        other => Err(invalid(format!(
            "`type` is {other:?}, expected \"log\" or \"span\""
        ))),
    }
}

/// Reads every record of the log at `path`: a log file with its rotated files (or a
/// directory, every file in it), in name order, and in each file line by line. Blank lines
/// are skipped.
///
/// A trace rebuilt from the log file of the service that wrote it:
///
/// ```
/// use unitel::logfile::{read_records, Record};
/// # let dir = tempfile::tempdir().unwrap();
///
/// let path = dir.path().join("orders.log"); // say, logs/orders.log
/// let config = unitel::TelemetryConfig::new().with_console(false).with_log_file(&path);
/// let guard = unitel::configure_telemetry(config)?;
/// let telemetry = unitel::get_telemetry("orders");
/// telemetry.trace("place_order").in_scope(|| telemetry.log_info("order placed"));
/// guard.shutdown()?; // flushes the file
///
/// let records = read_records(&path)?; // and its rotated files, oldest first
/// let span = records.iter().find_map(Record::as_span).expect("a span record");
/// let logs: Vec<_> = records
///     .iter()
///     .filter_map(Record::as_log)
///     .filter(|log| log.trace_id == Some(span.trace_id))
///     .collect();
/// assert_eq!((span.name.as_str(), logs[0].message.as_str()), ("place_order", "order placed"));
/// # Ok::<(), unitel::Error>(())
/// ```
///
/// For large files, [`LineScan`](super::LineScan) finds one trace's lines before parsing.
///
/// # Errors
/// [`Error::ReadLogFile`] naming the file (and the line, for a line that is not a record).
pub fn read_records(path: impl AsRef<Path>) -> Result<Vec<Record>, Error> {
    let path = path.as_ref();
    let unreadable = |path: &Path, source: std::io::Error| Error::ReadLogFile {
        path: path.to_owned(),
        line: None,
        source: Box::new(source),
    };
    let mut records = Vec::new();
    for file in log_files(path).map_err(|e| unreadable(path, e))? {
        let reader =
            std::io::BufReader::new(open_log_file(&file).map_err(|e| unreadable(&file, e))?);
        for (index, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| unreadable(&file, e))?;
            if line.trim().is_empty() {
                continue;
            }
            records.push(parse_line(&line).map_err(|e| Error::ReadLogFile {
                path: file.clone(),
                line: Some(index + 1),
                source: Box::new(e),
            })?);
        }
    }
    Ok(records)
}

/// A key's object, moved out of the record.
fn owned_object(key: &str, value: Option<Value>) -> Result<Map<String, Value>, Error> {
    match value {
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(invalid(format!("`{key}` is not an object"))),
        None => Err(invalid(format!("`{key}` is missing"))),
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidRecord {
        reason,
        source: None,
    }
}

/// The keys of one JSON object, read with the format's types.
struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Result<&'a Value, Error> {
        self.0
            .get(key)
            .ok_or_else(|| invalid(format!("`{key}` is missing")))
    }

    fn str(&self, key: &str) -> Result<&'a str, Error> {
        self.get(key)?
            .as_str()
            .ok_or_else(|| invalid(format!("`{key}` is not a string")))
    }

    fn string(&self, key: &str) -> Result<String, Error> {
        self.str(key).map(str::to_owned)
    }

    /// A string, or absent (a key added to the format later).
    fn optional_string(&self, key: &str) -> Result<Option<String>, Error> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("`{key}` is not a string"))),
        }
    }

    /// A string or `null`.
    fn nullable(&self, key: &str) -> Result<Option<&'a str>, Error> {
        match self.get(key)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            _ => Err(invalid(format!("`{key}` is neither a string nor null"))),
        }
    }

    fn time(&self, key: &str) -> Result<SystemTime, Error> {
        let text = self.str(key)?;
        parse_rfc3339(text)
            .ok_or_else(|| invalid(format!("`{key}` is not an RFC 3339 UTC time: {text:?}")))
    }

    fn object(&self, key: &str) -> Result<Map<String, Value>, Error> {
        match self.get(key)? {
            Value::Object(map) => Ok(map.clone()),
            _ => Err(invalid(format!("`{key}` is not an object"))),
        }
    }

    fn log(&self, fields: Option<Value>) -> Result<LogRecord, Error> {
        let timestamp = self.time("timestamp")?;
        let error = match self.0.get("error") {
            None => None,
            Some(Value::Object(error)) => {
                let error = Fields(error);
                let causes = match error.get("causes")? {
                    Value::Array(causes) => causes
                        .iter()
                        .map(|c| c.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| invalid("`error.causes` holds a non-string".into()))?,
                    _ => return Err(invalid("`error.causes` is not an array".into())),
                };
                Some(ErrorRecord {
                    message: error.string("message")?,
                    causes,
                })
            }
            Some(_) => return Err(invalid("`error` is not an object".into())),
        };
        let level = self.str("level")?;
        Ok(LogRecord {
            timestamp,
            service: self.optional_string("service")?,
            level: level
                .parse()
                .map_err(|_| invalid(format!("`level` is not a level: {level:?}")))?,
            target: self.string("target")?,
            component: self.string("component")?,
            message: self.string("message")?,
            trace_id: self.nullable("trace_id")?.map(trace_id).transpose()?,
            span_id: self
                .nullable("span_id")?
                .map(|id| span_id("span_id", id))
                .transpose()?,
            fields: owned_object("fields", fields)?,
            error,
        })
    }

    fn span(&self, attributes: Option<Value>) -> Result<SpanRecord, Error> {
        let end_time = self.time("timestamp")?;
        let kind = match self.str("kind")? {
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            other => return Err(invalid(format!("`kind` is not a span kind: {other:?}"))),
        };
        let status = match self.str("status")? {
            "unset" => Status::Unset,
            "ok" => Status::Ok,
            "error" => Status::error(self.string("status_message").unwrap_or_default()),
            other => return Err(invalid(format!("`status` is not a status: {other:?}"))),
        };
        let events = match self.get("events")? {
            Value::Array(events) => events
                .iter()
                .map(|event| match event {
                    Value::Object(event) => {
                        let event = Fields(event);
                        Ok(SpanEventRecord {
                            name: event.string("name")?,
                            timestamp: event.time("timestamp")?,
                            attributes: event.object("attributes")?,
                        })
                    }
                    _ => Err(invalid("`events` holds a non-object".into())),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(invalid("`events` is not an array".into())),
        };
        Ok(SpanRecord {
            service: self.optional_string("service")?,
            name: self.string("name")?,
            component: self.string("component")?,
            trace_id: trace_id(self.str("trace_id")?)?,
            span_id: span_id("span_id", self.str("span_id")?)?,
            parent_span_id: self
                .nullable("parent_span_id")?
                .map(|id| span_id("parent_span_id", id))
                .transpose()?,
            kind,
            start_time: self.time("start_time")?,
            end_time,
            duration: Duration::from_nanos(
                self.get("duration_ns")?
                    .as_u64()
                    .ok_or_else(|| invalid("`duration_ns` is not a whole number".into()))?,
            ),
            status,
            attributes: owned_object("attributes", attributes)?,
            events,
        })
    }
}

fn trace_id(s: &str) -> Result<TraceId, Error> {
    is_lower_hex(s, 32)
        .then(|| TraceId::from_hex(s).ok())
        .flatten()
        .ok_or_else(|| invalid(format!("`trace_id` is not 32 lowercase hex digits: {s:?}")))
}

fn span_id(key: &str, s: &str) -> Result<SpanId, Error> {
    is_lower_hex(s, 16)
        .then(|| SpanId::from_hex(s).ok())
        .flatten()
        .ok_or_else(|| invalid(format!("`{key}` is not 16 lowercase hex digits: {s:?}")))
}
