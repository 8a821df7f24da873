//! Reading the OpenTelemetry environment variables by the spec's rules: an empty value means
//! unset, enum values are case-insensitive, and an invalid value is a start-up error that names
//! the variable and what it accepts.

use super::{Sampler, TelemetryConfig, SAMPLER_NAMES};
use crate::Error;
use opentelemetry::KeyValue;

/// Applies the variables found through `lookup` to `config`. Stops at the first invalid value
/// and keeps it, to be returned by `configure_telemetry`.
pub(super) fn apply(config: &mut TelemetryConfig, lookup: &dyn Fn(&str) -> Option<String>) {
    if let Err(err) = try_apply(config, &|name| {
        lookup(name).filter(|v| !v.trim().is_empty())
    }) {
        config.env_error.get_or_insert(err);
    }
}

fn try_apply(
    config: &mut TelemetryConfig,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Error> {
    if let Some(v) = get("OTEL_SDK_DISABLED") {
        config.disabled = parse_bool("OTEL_SDK_DISABLED", &v)?;
    }
    if let Some(v) = get("OTEL_RESOURCE_ATTRIBUTES") {
        config.env_resource = parse_resource_attributes(&v)?;
    }
    if let Some(v) = get("OTEL_SERVICE_NAME") {
        config.service_name = Some(v.trim().to_owned());
    }
    // Seed 003's services set OTEL_ENVIRONMENT; the spec's way is
    // OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=..., which wins when both are set.
    if let Some(v) = get("OTEL_ENVIRONMENT") {
        config.environment = Some(v.trim().to_owned());
    }
    let ratio = match get("OTEL_TRACES_SAMPLER_ARG") {
        Some(v) => Some(parse_ratio(&v)?),
        None => None,
    };
    if let Some(v) = get("OTEL_TRACES_SAMPLER") {
        config.sampler = Some(Sampler::from_env_name(v.trim(), ratio).ok_or(
            Error::InvalidEnv {
                variable: "OTEL_TRACES_SAMPLER",
                value: v,
                accepted: SAMPLER_NAMES,
            },
        )?);
    }
    if let Some(v) = get("RUST_LOG") {
        config.log_filter = Some(v);
    }
    config.env_export = crate::export::settings::from_env(get)?;
    Ok(())
}

fn parse_bool(variable: &'static str, value: &str) -> Result<bool, Error> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::InvalidEnv {
            variable,
            value: value.to_owned(),
            accepted: "true or false (case-insensitive)",
        }),
    }
}

fn parse_ratio(value: &str) -> Result<f64, Error> {
    match value.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(Error::InvalidEnv {
            variable: "OTEL_TRACES_SAMPLER_ARG",
            value: value.to_owned(),
            accepted: "a number from 0 to 1, e.g. 0.25",
        }),
    }
}

/// `key1=value1,key2=value2`, values percent-encoded as in W3C baggage.
pub(crate) fn parse_resource_attributes(value: &str) -> Result<Vec<KeyValue>, Error> {
    let invalid = || {
        Error::InvalidEnv {
        variable: "OTEL_RESOURCE_ATTRIBUTES",
        value: value.to_owned(),
        accepted: "comma-separated key=value pairs with non-empty keys, values percent-encoded (e.g. team=payments,region=eu%2Dwest)",
    }
    };
    let mut out = Vec::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, val) = pair.split_once('=').ok_or_else(invalid)?;
        let key = key.trim();
        if key.is_empty() {
            return Err(invalid());
        }
        let val = percent_decode(val.trim()).ok_or_else(invalid)?;
        out.push(KeyValue::new(key.to_owned(), val));
    }
    Ok(out)
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
