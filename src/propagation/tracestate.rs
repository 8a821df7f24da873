//! The W3C Trace Context `tracestate` value: one strict parser, one formatter.
//!
//! The grammar ([Trace Context], §3.3.1):
//!
//! ```abnf
//! list             = list-member 0*31( OWS "," OWS list-member )
//! list-member      = (key "=" value) / OWS
//! key              = simple-key / multi-tenant-key
//! simple-key       = lcalpha 0*255( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
//! multi-tenant-key = tenant-id "@" system-id
//! tenant-id        = ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
//! system-id        = lcalpha 0*13( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
//! value            = 0*255(chr) nblk-chr
//! nblk-chr         = %x21-2B / %x2D-3C / %x3E-7E
//! chr              = %x20 / nblk-chr
//! ```
//!
//! Several `tracestate` fields are one list, in order: "When receiving multiple `tracestate`
//! header fields, they MUST be combined into a single header" (RFC 9110 §5.3: joined with
//! commas). "Empty and whitespace-only list members are allowed" and skipped. "There can be a
//! maximum of 32 `list-member`s", and "Only one entry per key is allowed".
//!
//! A value that breaks any of these rules is dropped as a whole, never in part: "If the
//! `tracestate` header cannot be parsed the vendor MAY discard the entire header" (§4.3), and
//! the W3C test suite (`test/test.py`, at its default `STRICT_LEVEL` 2) expects exactly that
//! for an invalid key or value, a duplicate key, and 33 members
//! (`test_tracestate_key_illegal_characters`, `…_key_illegal_vendor_format`,
//! `…_key_length_limit`, `…_value_illegal_characters`, `…_duplicated_keys`,
//! `…_member_count_limit`).
//!
//! [Trace Context]: https://www.w3.org/TR/trace-context-2/#tracestate-header

use opentelemetry::trace::TraceState;

/// The most list-members a `tracestate` may have.
const MAX_MEMBERS: usize = 32;

/// HTTP optional whitespace, ignored around list-members.
const OWS: [char; 2] = [' ', '\t'];

/// The trace state the `tracestate` field values name, joined in order; empty when they hold
/// no member. `Err` is a short phrase saying why the whole value is invalid.
pub(super) fn parse<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<TraceState, &'static str> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    for member in values.into_iter().flat_map(|value| value.split(',')) {
        let member = member.trim_matches(OWS);
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=').ok_or("a list member without =")?;
        if !is_key(key) {
            return Err("an invalid key (lowercase letters, digits, _-*/, at most one @)");
        }
        if !is_value(value) {
            return Err("an invalid value (1 to 256 printable ASCII characters but , and =)");
        }
        if members.iter().any(|&(seen, _)| seen == key) {
            return Err("a key appears twice");
        }
        if members.len() == MAX_MEMBERS {
            return Err("more than 32 list members");
        }
        members.push((key, value));
    }
    if members.is_empty() {
        return Ok(TraceState::NONE);
    }
    // Every member is valid per the specification; OpenTelemetry 0.33 additionally rejects a
    // system id of 14 characters (13 is its limit), which is the only way this can fail.
    TraceState::from_key_value(members)
        .map_err(|_| "a key has a 14-character system id, which OpenTelemetry cannot hold")
}

/// The `tracestate` value of a trace state; `None` when it has no member to send.
///
/// Only what [`parse`] accepts is written: a member OpenTelemetry holds but the specification
/// does not allow (say, an empty value) or a repeated key is left out, and at most 32 members
/// are written.
pub(super) fn format(ts: &TraceState) -> Option<String> {
    let mut keys: Vec<&str> = Vec::new();
    let mut out = String::new();
    for (key, value) in ts {
        if keys.len() == MAX_MEMBERS {
            break;
        }
        if !is_key(key) || !is_value(value) || keys.contains(&key) {
            continue;
        }
        if !keys.is_empty() {
            out.push(',');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
        keys.push(key);
    }
    (!keys.is_empty()).then_some(out)
}

/// Whether `key` is a `simple-key` or a `multi-tenant-key`.
fn is_key(key: &str) -> bool {
    match key.split_once('@') {
        None => is_key_part(key, 256, u8::is_ascii_lowercase),
        Some((tenant, system)) => {
            is_key_part(tenant, 241, |b| {
                b.is_ascii_lowercase() || b.is_ascii_digit()
            }) && is_key_part(system, 14, u8::is_ascii_lowercase)
        }
    }
}

/// Whether `part` is 1 to `max` characters, a first one `first` allows, then lowercase letters,
/// digits and `_-*/`.
fn is_key_part(part: &str, max: usize, first: fn(&u8) -> bool) -> bool {
    match part.as_bytes() {
        [head, tail @ ..] if part.len() <= max => first(head) && tail.iter().all(is_key_char),
        _ => false,
    }
}

/// `lcalpha / DIGIT / "_" / "-"/ "*" / "/"`
fn is_key_char(b: &u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

/// Whether `value` is `0*255(chr) nblk-chr`.
fn is_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() <= 256
        && bytes.last().is_some_and(is_nblk_chr)
        && bytes.iter().all(|b| *b == b' ' || is_nblk_chr(b))
}

/// `%x21-2B / %x2D-3C / %x3E-7E`: printable ASCII but space, `,` and `=`.
fn is_nblk_chr(b: &u8) -> bool {
    matches!(b, 0x21..=0x2B | 0x2D..=0x3C | 0x3E..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok<'a>(values: impl IntoIterator<Item = &'a str>) -> TraceState {
        parse(values).unwrap_or_else(|reason| panic!("rejected: {reason}"))
    }

    fn pairs(ts: &TraceState) -> Vec<(String, String)> {
        ts.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn members(n: usize) -> String {
        (1..=n)
            .map(|i| format!("bar{i:02}={i:02}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn spec_examples() {
        let ts = ok(["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]);
        assert_eq!(ts.get("rojo"), Some("00f067aa0ba902b7"));
        assert_eq!(ts.get("congo"), Some("t61rcWkgMzE"));
        assert_eq!(
            format(&ts).as_deref(),
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        );
        let ts = ok(["congo=t61rcWkgMzE"]);
        assert_eq!(format(&ts).as_deref(), Some("congo=t61rcWkgMzE"));
    }

    #[test]
    fn no_members_is_an_empty_trace_state() {
        for values in [vec![], vec![""], vec![" ", "\t"], vec![",", " , ,\t,"]] {
            let ts = ok(values);
            assert_eq!(ts, TraceState::NONE);
            assert_eq!(format(&ts), None);
        }
    }

    #[test]
    fn field_values_are_joined_in_order() {
        let ts = ok(["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]);
        assert_eq!(
            format(&ts).as_deref(),
            Some("foo=1,bar=2,rojo=1,congo=2,baz=3")
        );
        // An empty field contributes nothing, wherever it is.
        assert_eq!(pairs(&ok(["foo=1", ""])), pairs(&ok(["", "foo=1"])));
    }

    #[test]
    fn ows_and_empty_members_are_skipped() {
        let ts = ok(["foo=1 \t , \t bar=2, \t baz=3", ",,", "\t qux=4 \t"]);
        assert_eq!(format(&ts).as_deref(), Some("foo=1,bar=2,baz=3,qux=4"));
        // Leading spaces belong to the value, trailing ones are optional whitespace.
        assert_eq!(ok(["foo= 1 "]).get("foo"), Some(" 1"));
    }

    #[test]
    fn at_most_32_members() {
        assert_eq!(pairs(&ok([members(32).as_str()])).len(), 32);
        assert_eq!(
            parse([members(33).as_str()]),
            Err("more than 32 list members")
        );
        // The limit is on the combined fields.
        let (first, second) = (members(16), members(32).replace("bar", "baz"));
        assert!(parse([first.as_str(), second.as_str()]).is_err());
        // Empty members do not count.
        let padded = format!(",,{},,", members(32).replace(',', ", ,"));
        assert_eq!(pairs(&ok([padded.as_str()])).len(), 32);
    }

    #[test]
    fn duplicate_keys_discard_the_whole_value() {
        for values in [
            vec!["foo=1,foo=1"],
            vec!["foo=1,foo=2"],
            vec!["foo=1", "foo=1"],
            vec!["foo=1", "foo=2"],
        ] {
            assert_eq!(parse(values), Err("a key appears twice"));
        }
    }

    #[test]
    fn keys() {
        let valid = [
            "a".to_owned(),
            "abcdefghijklmnopqrstuvwxyz0123456789_-*/".to_owned(),
            "z".repeat(256),
            "fw529a3039@dt".to_owned(),
            "1tenant@vendor".to_owned(),
            "abcdefghijklmnopqrstuvwxyz0123456789_-*/@a-z0-9_-*/".to_owned(),
            format!("{}@{}", "t".repeat(241), "v".repeat(13)),
        ];
        for key in &valid {
            let member = format!("{key}=1");
            assert_eq!(ok([member.as_str()]).get(key), Some("1"), "{key}");
        }
        let invalid = [
            "".to_owned(),
            "z".repeat(257),
            "1abc".to_owned(),
            "_abc".to_owned(),
            "FOO".to_owned(),
            "fOo".to_owned(),
            "foo ".to_owned(),
            " foo\t=".to_owned(),
            "foo.bar".to_owned(),
            "foo@".to_owned(),
            "@foo".to_owned(),
            "foo@@bar".to_owned(),
            "foo@bar@baz".to_owned(),
            "foo@1bar".to_owned(),
            "foo@Bar".to_owned(),
            format!("{}@v", "t".repeat(242)),
            format!("t@{}", "v".repeat(15)),
            "é".to_owned(),
        ];
        for key in &invalid {
            // The W3C suite's shape: an invalid member discards the valid ones with it.
            let value = format!("{key}=1,bar=2");
            assert!(parse([value.as_str()]).is_err(), "{key:?}");
        }
    }

    #[test]
    fn a_14_character_system_id_is_valid_but_opentelemetry_cannot_hold_it() {
        // The W3C suite's `test_tracestate_key_length_limit` sends this key as valid;
        // OpenTelemetry 0.33's TraceState accepts at most 13 characters after the `@`.
        let key = format!("{}@{}", "t".repeat(241), "v".repeat(14));
        assert!(is_key(&key));
        let member = format!("{key}=1");
        assert_eq!(
            parse(["foo=1", member.as_str()]),
            Err("a key has a 14-character system id, which OpenTelemetry cannot hold")
        );
    }

    #[test]
    fn values() {
        let all_allowed: String = (0x20u8..=0x7e)
            .filter(|b| !matches!(b, b',' | b'='))
            .map(char::from)
            .collect();
        let valid = [
            "1".to_owned(),
            " leading".to_owned(),
            "in side".to_owned(),
            "x".repeat(256),
            all_allowed.clone(),
        ];
        for value in &valid {
            let member = format!("foo={value}");
            assert_eq!(ok([member.as_str()]).get("foo"), Some(value.as_str()));
        }
        let invalid = [
            "".to_owned(),
            " ".to_owned(),
            "bar=baz".to_owned(),
            "a\tb".to_owned(),
            "x".repeat(257),
            "caf\u{e9}".to_owned(),
            "a\u{7f}".to_owned(),
            "a\nb".to_owned(),
        ];
        for value in &invalid {
            let member = format!("foo={value},bar=3");
            assert!(parse([member.as_str()]).is_err(), "{value:?}");
        }
        assert!(parse(["foo"]).is_err());
        assert!(parse(["=1"]).is_err());
    }

    #[test]
    fn format_leaves_out_what_the_spec_does_not_allow() {
        let ts = TraceState::from_key_value([
            ("empty", ""),
            ("tab", "a\tb"),
            ("trailing", "a "),
            ("a@", "1"),
            ("good", "1"),
            ("good", "2"),
            ("other", "3"),
        ])
        .unwrap();
        assert_eq!(format(&ts).as_deref(), Some("good=1,other=3"));
        let only_invalid = TraceState::from_key_value([("empty", "")]).unwrap();
        assert_eq!(format(&only_invalid), None);
        assert_eq!(format(&TraceState::NONE), None);
    }

    #[test]
    fn format_keeps_the_order_and_inserted_members_go_first() {
        let ts = ok(["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"])
            .insert("congo", "ucfJifl5GOE")
            .unwrap();
        assert_eq!(
            format(&ts).as_deref(),
            Some("congo=ucfJifl5GOE,rojo=00f067aa0ba902b7")
        );
    }

    /// A valid key: simple or multi-tenant.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9_*/-]{0,20}",
            "[a-z0-9][a-z0-9_*/-]{0,10}@[a-z][a-z0-9_*/-]{0,12}",
        ]
    }

    /// A valid value.
    fn value() -> impl Strategy<Value = String> {
        "[ !-+\\--<>-~]{0,30}[!-+\\--<>-~]"
    }

    /// At most 32 members with distinct keys.
    fn member_list() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::btree_map(key(), value(), 0..=MAX_MEMBERS)
            .prop_map(|members| members.into_iter().collect())
    }

    proptest! {
        #[test]
        fn never_panics_on_any_strings(values in proptest::collection::vec(any::<String>(), 0..4)) {
            let _ = parse(values.iter().map(String::as_str));
        }

        #[test]
        fn never_panics_on_near_misses(value in "[a-z0-9@=, \t*/_\u{a0}A-Z-]{0,80}") {
            if let Ok(ts) = parse([value.as_str()]) {
                if let Some(header) = format(&ts) {
                    prop_assert_eq!(parse([header.as_str()]), Ok(ts));
                }
            }
        }

        #[test]
        fn round_trips_valid_values(members in member_list(), split in any::<prop::sample::Index>()) {
            let canonical = members
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>();
            // The same list with OWS and empty members, split over two fields.
            let spaced = canonical.iter().map(|m| format!(" \t{m} ")).collect::<Vec<_>>();
            let at = split.index(spaced.len() + 1);
            let (first, second) = (spaced[..at].join(",,"), spaced[at..].join(", ,"));
            let ts = parse([first.as_str(), second.as_str()]).map_err(TestCaseError::fail)?;
            prop_assert_eq!(pairs(&ts), members);
            let expected = (!canonical.is_empty()).then(|| canonical.join(","));
            prop_assert_eq!(format(&ts), expected);
        }

        #[test]
        fn opentelemetry_holds_every_valid_member_but_a_14_character_system_id(
            key in prop_oneof![
                "[a-z][a-z0-9_*/-]{0,255}",
                "[a-z0-9][a-z0-9_*/-]{0,240}@[a-z][a-z0-9_*/-]{0,13}",
            ],
            value in "[ !-+\\--<>-~]{0,255}[!-+\\--<>-~]",
        ) {
            prop_assert!(is_key(&key) && is_value(&value));
            let system_14 = key.split_once('@').is_some_and(|(_, system)| system.len() == 14);
            let member = format!("{key}={value}");
            let parsed = parse([member.as_str()]);
            prop_assert_eq!(parsed.is_err(), system_14);
        }

        #[test]
        fn whatever_format_writes_parses_back(
            members in proptest::collection::vec(
                ("[a-z0-9][a-z0-9@*/_-]{0,14}", "[ -+\\--<>-~\t\u{e9}]{0,12}"),
                0..40,
            ),
        ) {
            // Any trace state OpenTelemetry lets one build, spec-valid or not.
            let ts = members
                .into_iter()
                .fold(TraceState::NONE, |ts, (k, v)| ts.insert(k, v).unwrap_or(ts));
            if let Some(header) = format(&ts) {
                let parsed = parse([header.as_str()]).map_err(TestCaseError::fail)?;
                prop_assert_eq!(format(&parsed), Some(header));
            }
        }
    }
}
