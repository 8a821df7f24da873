//! The W3C Trace Context `traceparent` value: one strict parser, one formatter.
//!
//! The value is `version "-" trace-id "-" parent-id "-" trace-flags`: 2, 32, 16 and 2
//! lowercase hex digits ([Trace Context Level 2], §3.2). What the parser accepts, each rule
//! from the specification:
//!
//! - Every field is `HEXDIGLC` ("lowercase hex character"); uppercase hex is invalid.
//! - "Version `ff` is invalid."
//! - An all-zero `trace-id` or `parent-id` "is considered an invalid value", and "vendors
//!   MUST ignore the `traceparent`".
//! - Version `00` is exactly the four fields: nothing may follow the flags (the W3C test
//!   suite's `test_traceparent_version_0x00` rejects `…-01.` and `…-01-what-the-future-will-be-like`).
//! - A higher version is read as far as version `00` defines it (§3.2.4, "Versioning of
//!   traceparent"): "If the size of the header is shorter than 55 characters, the vendor
//!   should not parse the header"; the ids "MUST" be hex "followed by a dash"; the flags'
//!   "2 characters are either the end of the string or a dash". What follows that dash is
//!   ignored: "Vendors MUST NOT parse or assume anything about unknown fields".
//! - Only the flags the specification defines are kept: `sampled` (0x01) and Level 2's
//!   `random` (0x02). Of the others: "Vendors MUST set those to zero."
//! - Space and horizontal tab around the whole value are ignored, nothing else is. They are
//!   HTTP's optional whitespace, which the HTTP layer strips from a field value (RFC 9110
//!   §5.5), and the W3C test suite's `test_traceparent_ows_handling` expects them accepted.
//!   A `+`, a non-breaking space, a newline or any other character makes the value invalid.
//!
//! [Trace Context Level 2]: https://www.w3.org/TR/trace-context-2/

use crate::format::{is_lower_hex, write_hex};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use std::ops::Range;

/// The trace flags the specification defines: `sampled` (0x01) and `random` (0x02).
const KNOWN_FLAGS: u8 = 0x03;

/// The length of a version-00 value, the shortest any version may be.
const LEN: usize = 55;

/// HTTP optional whitespace: the only characters ignored around the value.
const OWS: [char; 2] = [' ', '\t'];

/// The version-00 value of a span context: `00-<trace id>-<span id>-<flags>`, the flags
/// limited to `sampled` and `random`.
pub(super) fn format(sc: &SpanContext) -> String {
    let mut out = String::with_capacity(LEN);
    out.push_str("00-");
    write_hex(&mut out, &sc.trace_id().to_bytes());
    out.push('-');
    write_hex(&mut out, &sc.span_id().to_bytes());
    out.push('-');
    write_hex(&mut out, &[sc.trace_flags().to_u8() & KNOWN_FLAGS]);
    out
}

/// The remote span context (with an empty trace state) a `traceparent` value names, or a
/// short phrase saying why the value is invalid. See the [module docs](self) for the rules.
pub(super) fn parse(value: &str) -> Result<SpanContext, &'static str> {
    let value = value.trim_matches(OWS);
    let version = hex(value, 0..2, "the version is not 2 hex digits")?;
    dash(value, 2, "the version is not followed by a dash")?;
    if version == "ff" {
        return Err("version ff is invalid");
    }
    if value.len() < LEN {
        return Err("wrong length: shorter than 55 characters");
    }
    let trace_id = hex(value, 3..35, "the trace id is not 32 hex digits")?;
    dash(value, 35, "the trace id is not 32 hex digits and a dash")?;
    let parent_id = hex(value, 36..52, "the parent id is not 16 hex digits")?;
    dash(value, 52, "the parent id is not 16 hex digits and a dash")?;
    let flags = hex(value, 53..55, "the flags are not 2 hex digits")?;
    if value.len() > LEN {
        if version == "00" {
            return Err("wrong length: version 00 allows nothing after the flags");
        }
        dash(
            value,
            LEN,
            "the flags are not followed by a dash or the end",
        )?;
    }

    let trace_id = TraceId::from_hex(trace_id).map_err(|_| "the trace id is not hex")?;
    let parent_id = SpanId::from_hex(parent_id).map_err(|_| "the parent id is not hex")?;
    let flags = u8::from_str_radix(flags, 16).map_err(|_| "the flags are not hex")?;
    if trace_id == TraceId::INVALID {
        return Err("the trace id is all zeros");
    }
    if parent_id == SpanId::INVALID {
        return Err("the parent id is all zeros");
    }
    Ok(SpanContext::new(
        trace_id,
        parent_id,
        TraceFlags::new(flags & KNOWN_FLAGS),
        true,
        TraceState::NONE,
    ))
}

/// The lowercase-hex field of `value` at `range`, or why it is not one.
fn hex<'a>(
    value: &'a str,
    range: Range<usize>,
    not_hex: &'static str,
) -> Result<&'a str, &'static str> {
    let len = range.len();
    match value.get(range) {
        Some(field) if is_lower_hex(field, len) => Ok(field),
        Some(field) if field.bytes().all(|b| b.is_ascii_hexdigit()) => Err("uppercase hex"),
        _ => Err(not_hex),
    }
}

/// Whether `value` has a dash at byte `at`; `Err(reason)` if not.
fn dash(value: &str, at: usize, reason: &'static str) -> Result<(), &'static str> {
    match value.as_bytes().get(at) {
        Some(b'-') => Ok(()),
        _ => Err(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    fn ok(value: &str) -> SpanContext {
        parse(value).unwrap_or_else(|reason| panic!("{value:?} rejected: {reason}"))
    }

    fn err(value: &str) -> &'static str {
        match parse(value) {
            Ok(sc) => panic!("{value:?} accepted as {sc:?}"),
            Err(reason) => reason,
        }
    }

    #[test]
    fn spec_examples() {
        let sampled = ok("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(sampled.trace_id(), TraceId::from_hex(TRACE).unwrap());
        assert_eq!(sampled.span_id(), SpanId::from_hex(PARENT).unwrap());
        assert!(sampled.is_sampled());
        assert!(sampled.is_remote());
        assert_eq!(sampled.trace_state(), &TraceState::NONE);

        let not_sampled = ok("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
        assert!(!not_sampled.is_sampled());
        assert!(not_sampled.is_remote());
    }

    #[test]
    fn formats_version_00() {
        let value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        assert_eq!(format(&ok(value)), value);
    }

    #[test]
    fn keeps_sampled_and_random_and_clears_the_other_flags() {
        let flags = |f: &str| {
            ok(&format!("00-{TRACE}-{PARENT}-{f}"))
                .trace_flags()
                .to_u8()
        };
        assert_eq!(flags("00"), 0x00);
        assert_eq!(flags("01"), 0x01);
        assert_eq!(flags("02"), 0x02);
        assert_eq!(flags("03"), 0x03);
        assert_eq!(flags("09"), 0x01);
        assert_eq!(flags("fc"), 0x00);
        assert_eq!(flags("ff"), 0x03);
    }

    #[test]
    fn format_masks_flags_to_sampled_and_random() {
        let sc = |flags| {
            let trace = TraceId::from_hex(TRACE).unwrap();
            let parent = SpanId::from_hex(PARENT).unwrap();
            SpanContext::new(
                trace,
                parent,
                TraceFlags::new(flags),
                false,
                TraceState::NONE,
            )
        };
        assert_eq!(format(&sc(0xff)), format!("00-{TRACE}-{PARENT}-03"));
        assert_eq!(format(&sc(0x03)), format!("00-{TRACE}-{PARENT}-03"));
        assert_eq!(format(&sc(0x02)), format!("00-{TRACE}-{PARENT}-02"));
        assert_eq!(format(&sc(0x00)), format!("00-{TRACE}-{PARENT}-00"));
    }

    #[test]
    fn rejects_uppercase_hex_in_every_field() {
        assert_eq!(err(&format!("0A-{TRACE}-{PARENT}-01")), "uppercase hex");
        let upper = TRACE.to_uppercase();
        assert_eq!(err(&format!("00-{upper}-{PARENT}-01")), "uppercase hex");
        let upper = PARENT.to_uppercase();
        assert_eq!(err(&format!("00-{TRACE}-{upper}-01")), "uppercase hex");
        assert_eq!(err(&format!("00-{TRACE}-{PARENT}-0A")), "uppercase hex");
    }

    #[test]
    fn version_ff_is_invalid_other_versions_are_parsed() {
        assert_eq!(
            err(&format!("ff-{TRACE}-{PARENT}-01")),
            "version ff is invalid"
        );
        assert!(ok(&format!("cc-{TRACE}-{PARENT}-01")).is_sampled());
        assert!(ok(&format!("01-{TRACE}-{PARENT}-01")).is_sampled());
    }

    #[test]
    fn a_later_version_may_have_more_fields_after_a_dash() {
        let sc = ok(&format!(
            "01-{TRACE}-{PARENT}-03-what-the-future-will-be-like"
        ));
        assert_eq!(sc.trace_id(), TraceId::from_hex(TRACE).unwrap());
        assert_eq!(sc.trace_flags().to_u8(), 0x03);
        ok(&format!("cc-{TRACE}-{PARENT}-01-"));
        // The flags must be followed by the end or a dash.
        err(&format!(
            "cc-{TRACE}-{PARENT}-01.what-the-future-will-be-like"
        ));
        err(&format!("cc-{TRACE}-{PARENT}-011"));
        // Shorter than 55 characters: not parsed.
        err(&format!("cc-{TRACE}-{PARENT}-1"));
    }

    #[test]
    fn version_00_allows_nothing_after_the_flags() {
        let reason = "wrong length: version 00 allows nothing after the flags";
        assert_eq!(err(&format!("00-{TRACE}-{PARENT}-01-extra")), reason);
        assert_eq!(err(&format!("00-{TRACE}-{PARENT}-01.")), reason);
        assert_eq!(err(&format!("00-{TRACE}-{PARENT}-01-")), reason);
    }

    #[test]
    fn rejects_all_zero_ids() {
        let zero_trace = "0".repeat(32);
        let zero_parent = "0".repeat(16);
        assert_eq!(
            err(&format!("00-{zero_trace}-{PARENT}-01")),
            "the trace id is all zeros"
        );
        assert_eq!(
            err(&format!("00-{TRACE}-{zero_parent}-01")),
            "the parent id is all zeros"
        );
        // One non-zero digit is enough.
        ok(&format!(
            "00-{}1-{}1-01",
            &zero_trace[1..],
            &zero_parent[1..]
        ));
    }

    #[test]
    fn rejects_wrong_lengths_and_illegal_characters() {
        // Cases of the W3C test suite (test/test.py), and a few more.
        for value in [
            "",
            "00",
            "00-",
            ".0-12345678901234567890123456789012-1234567890123456-01",
            "0.-12345678901234567890123456789012-1234567890123456-01",
            "0-12345678901234567890123456789012-1234567890123456-01",
            "000-12345678901234567890123456789012-1234567890123456-01",
            "0000-12345678901234567890123456789012-1234567890123456-01",
            "00-.2345678901234567890123456789012-1234567890123456-01",
            "00-1234567890123456789012345678901.-1234567890123456-01",
            "00-123456789012345678901234567890123-1234567890123456-01",
            "00-1234567890123456789012345678901-1234567890123456-01",
            "00-12345678901234567890123456789012-.234567890123456-01",
            "00-12345678901234567890123456789012-123456789012345.-01",
            "00-12345678901234567890123456789012-12345678901234567-01",
            "00-12345678901234567890123456789012-123456789012345-01",
            "00-12345678901234567890123456789012-1234567890123456-.0",
            "00-12345678901234567890123456789012-1234567890123456-0.",
            "00-12345678901234567890123456789012-1234567890123456-001",
            "00-12345678901234567890123456789012-1234567890123456-1",
            "00_12345678901234567890123456789012_1234567890123456_01",
            "00-12345678901234567890123456789012-1234567890123456-é1",
            "00-1234567890123456789012345678901é-1234567890123456-01",
        ] {
            err(value);
        }
    }

    #[test]
    fn only_space_and_tab_around_the_value_are_ignored() {
        let value = format!("00-{TRACE}-{PARENT}-01");
        for ows in [" ", "\t", " \t ", "\t\t"] {
            ok(&format!("{ows}{value}"));
            ok(&format!("{value}{ows}"));
            ok(&format!("{ows}{value}{ows}"));
        }
        for garbage in [
            "+", "\u{a0}", "\n", "\r\n", "\u{2003}", "\u{feff}", "-", "x",
        ] {
            err(&format!("{garbage}{value}"));
            err(&format!("{value}{garbage}"));
        }
        // Whitespace inside the value is not optional whitespace.
        err(&format!("00- {TRACE}-{PARENT}-01"));
        err(&format!("00-{TRACE} -{PARENT}-01"));
    }

    #[test]
    fn a_leading_plus_is_not_hex() {
        // `u128::from_str_radix` would accept a leading `+`; the parser must not.
        err(&format!("00-+{}-{PARENT}-01", &TRACE[1..]));
        err(&format!("00-{TRACE}-+{}-01", &PARENT[1..]));
        err(&format!("00-{TRACE}-{PARENT}-+1"));
        err(&format!("+0-{TRACE}-{PARENT}-01"));
    }

    fn lower_hex(len: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[0-9a-f]{{{len}}}")).unwrap()
    }

    proptest! {
        #[test]
        fn never_panics_on_any_string(value in any::<String>()) {
            let _ = parse(&value);
        }

        #[test]
        fn never_panics_on_near_misses(value in "[0-9a-fA-F \t+\u{a0}é-]{0,70}") {
            let _ = parse(&value);
        }

        #[test]
        fn round_trips_valid_values(
            trace in lower_hex(32),
            parent in lower_hex(16),
            flags in any::<u8>(),
        ) {
            let value = format!("00-{trace}-{parent}-{flags:02x}");
            match parse(&value) {
                Ok(sc) => {
                    let expected = format!("00-{trace}-{parent}-{:02x}", flags & KNOWN_FLAGS);
                    prop_assert_eq!(format(&sc), expected);
                }
                Err(reason) => {
                    prop_assert!(trace.bytes().all(|b| b == b'0') || parent.bytes().all(|b| b == b'0'));
                    prop_assert!(reason.ends_with("all zeros"));
                }
            }
        }

        #[test]
        fn whatever_format_writes_parses_back(
            trace in 1..=u128::MAX,
            parent in 1..=u64::MAX,
            flags in any::<u8>(),
            remote in any::<bool>(),
        ) {
            let sc = SpanContext::new(
                TraceId::from(trace),
                SpanId::from(parent),
                TraceFlags::new(flags),
                remote,
                TraceState::NONE,
            );
            let value = format(&sc);
            let parsed = parse(&value).map_err(TestCaseError::fail)?;
            prop_assert_eq!(parsed.trace_id(), sc.trace_id());
            prop_assert_eq!(parsed.span_id(), sc.span_id());
            prop_assert_eq!(parsed.trace_flags().to_u8(), flags & KNOWN_FLAGS);
            prop_assert_eq!(format(&parsed), value);
        }
    }
}
