//! TEMPORARY stand-in, replaced by the strict parser.
use opentelemetry::trace::TraceState;
use std::str::FromStr;
pub(super) fn parse<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<TraceState, &'static str> {
    let joined: Vec<&str> = values.into_iter().collect();
    TraceState::from_str(&joined.join(",")).map_err(|_| "invalid")
}
pub(super) fn format(ts: &TraceState) -> Option<String> {
    let h = ts.header();
    (!h.is_empty()).then_some(h)
}
