//! W3C Baggage (`baggage`): one strict parser, one formatter, over OpenTelemetry's
//! [`Baggage`], so entries set or read through `BaggageExt` travel unchanged.
//!
//! The grammar ([W3C Baggage], §3.3.1):
//!
//! ```abnf
//! baggage-string = list-member 0*179( OWS "," OWS list-member )
//! list-member    = key OWS "=" OWS value *( OWS ";" OWS property )
//! property       = key OWS "=" OWS value
//! property       =/ key OWS
//! key            = token ; RFC 7230 §3.2.6
//! value          = *baggage-octet
//! baggage-octet  = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
//! ```
//!
//! How the parser reads it:
//!
//! - Several `baggage` fields are one list, in order ("Values can be combined in a single
//!   header according to RFC 7230"). Empty list elements are skipped, as RFC 7230 §7 asks of
//!   every list-based field.
//! - A value is percent-decoded. A `%` not followed by two hex digits makes the member invalid
//!   ("The percent code point (`U+0025`) MUST be percent-encoded"). Decoded bytes that are not
//!   UTF-8 become U+FFFD, as the specification requires: "percent-encoded octet sequences that
//!   do not match the UTF-8 encoding scheme MUST be replaced with the replacement code point".
//! - Properties are kept as OpenTelemetry's metadata string, normalized (`k1=v1;k2`, no
//!   whitespace) but not decoded: "Property keys and values are given no specific meaning".
//! - An invalid member is dropped on its own ("it MAY remove that entry").
//! - For a key given more than once, the last member wins. The specification leaves it open
//!   ("keys may be deduplicated by keeping the first entry, keeping the last entry, or
//!   concatenating values together"); OpenTelemetry's `Baggage` holds one value per key.
//! - Limits (§3.3.2): all members are kept while "the resulting `baggage-string` contains 64
//!   `list-member`s or less" and "is of size 8192 bytes or less", which are also the limits of
//!   OpenTelemetry's `Baggage`. Beyond them whole members are dropped, never part of one:
//!   "If a platform cannot propagate all baggage, it MUST NOT propagate any partial
//!   `list-member`s." The size is that of the baggage-string [`format()`] writes for the kept
//!   members, so what is kept is also what is sent on. Members are taken from the last one
//!   back, so the earliest are the ones dropped ("The selection of which `list-member`s to
//!   drop and their order is unspecified").
//!
//! [W3C Baggage]: https://www.w3.org/TR/baggage/

use opentelemetry::baggage::Baggage;
use std::collections::HashSet;

/// The most list-members propagated.
const MAX_MEMBERS: usize = 64;

/// The most bytes of baggage-string propagated.
const MAX_BYTES: usize = 8192;

/// HTTP optional whitespace, ignored around list-members, keys, values and properties.
const OWS: [char; 2] = [' ', '\t'];

/// The baggage the `baggage` field values hold, joined in order, and how many of their
/// members were dropped: invalid, or beyond the limits.
pub(super) fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> (Baggage, usize) {
    let members: Vec<&str> = values
        .into_iter()
        .flat_map(|value| value.split(','))
        .map(|member| member.trim_matches(OWS))
        .filter(|member| !member.is_empty())
        .collect();
    let mut baggage = Baggage::new();
    let mut keys = HashSet::new();
    let (mut dropped, mut bytes) = (0, 0);
    // From the last member back: the first one seen of each key is the one that wins.
    for member in members.into_iter().rev() {
        let Some((key, value, properties)) = parse_member(member) else {
            dropped += 1;
            continue;
        };
        if !keys.insert(key) {
            continue;
        }
        let size = usize::from(!baggage.is_empty()) + member_len(key, &value, &properties);
        let count = baggage.len();
        if count == MAX_MEMBERS || bytes + size > MAX_BYTES {
            dropped += 1;
            continue;
        }
        baggage.insert_with_metadata(key.to_owned(), value, properties);
        if baggage.len() > count {
            bytes += size;
        } else {
            // OpenTelemetry's own checks are looser than the ones above; should one still
            // refuse the entry, it is counted like any other dropped member.
            dropped += 1;
        }
    }
    (baggage, dropped)
}

/// The `baggage` value of `baggage`, `None` when nothing is to be sent: `key=value;properties`
/// comma-separated, in key order, each value percent-encoded.
///
/// Only what [`parse`] reads back unchanged is written: an entry whose metadata is not a
/// property list is left out, and so is every entry that would take the value past 64
/// members or 8192 bytes; none is ever cut short.
pub(super) fn format(baggage: &Baggage) -> Option<String> {
    let mut entries: Vec<_> = baggage.iter().collect();
    entries.sort_unstable_by_key(|&(key, _)| key.as_str());
    let mut out = String::new();
    let mut members = 0;
    for (key, (value, metadata)) in entries {
        let (key, value, metadata) = (key.as_str(), value.as_str(), metadata.as_str());
        let properties = match metadata {
            "" => String::new(),
            list => match normalize_properties(list) {
                Some(properties) => properties,
                None => continue,
            },
        };
        let separator = usize::from(members > 0);
        if !is_token(key) || out.len() + separator + member_len(key, value, &properties) > MAX_BYTES
        {
            continue;
        }
        if separator > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push('=');
        encode(value, &mut out);
        if !properties.is_empty() {
            out.push(';');
            out.push_str(&properties);
        }
        members += 1;
        if members == MAX_MEMBERS {
            break;
        }
    }
    (members > 0).then_some(out)
}

/// The key, decoded value and normalized properties of a list-member, or `None` if it is
/// invalid.
fn parse_member(member: &str) -> Option<(&str, String, String)> {
    let (pair, properties) = match member.split_once(';') {
        Some((pair, list)) => (pair, normalize_properties(list)?),
        None => (member, String::new()),
    };
    let (key, value) = pair.split_once('=')?;
    let (key, value) = (key.trim_matches(OWS), value.trim_matches(OWS));
    if !is_token(key) || !value.bytes().all(is_baggage_octet) {
        return None;
    }
    let value = match String::from_utf8(crate::format::percent_decode(value)?) {
        Ok(value) => value,
        Err(invalid) => String::from_utf8_lossy(invalid.as_bytes()).into_owned(),
    };
    Some((key, value, properties))
}

/// `list` (`property *( OWS ";" OWS property )`) without whitespace, or `None` if it is not
/// a property list. Property values stay percent-encoded but must be well-formed.
fn normalize_properties(list: &str) -> Option<String> {
    let mut out = String::with_capacity(list.len());
    for property in list.split(';') {
        let (key, value) = match property.split_once('=') {
            Some((key, value)) => (key.trim_matches(OWS), Some(value.trim_matches(OWS))),
            None => (property.trim_matches(OWS), None),
        };
        if !is_token(key) {
            return None;
        }
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(key);
        if let Some(value) = value {
            if !value.bytes().all(is_baggage_octet)
                || crate::format::percent_decode(value).is_none()
            {
                return None;
            }
            out.push('=');
            out.push_str(value);
        }
    }
    Some(out)
}

/// The length of `key=<encoded value>[;properties]`.
fn member_len(key: &str, value: &str, properties: &str) -> usize {
    let encoded: usize = value.bytes().map(|b| if is_plain(b) { 1 } else { 3 }).sum();
    let properties = if properties.is_empty() {
        0
    } else {
        1 + properties.len()
    };
    key.len() + 1 + encoded + properties
}

/// Appends `value` percent-encoded: every byte that is not a `baggage-octet`, and `%`.
fn encode(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        if is_plain(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// A byte written as itself in a value: a `baggage-octet` other than `%`.
fn is_plain(b: u8) -> bool {
    b != b'%' && is_baggage_octet(b)
}

/// `%x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`: printable ASCII but space, `"`, `,`, `;`
/// and `\`.
fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// Whether `s` is an RFC 7230 `token`: one or more of letters, digits and ``!#$%&'*+-.^_`|~``.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::baggage::KeyValueMetadata;
    use proptest::prelude::*;

    /// Every entry as (key, value, metadata), in key order.
    fn entries(baggage: &Baggage) -> Vec<(String, String, String)> {
        let mut entries: Vec<_> = baggage
            .iter()
            .map(|(k, (v, m))| (k.to_string(), v.to_string(), m.as_str().to_owned()))
            .collect();
        entries.sort();
        entries
    }

    fn one(value: &str) -> (Vec<(String, String, String)>, usize) {
        let (baggage, dropped) = parse([value]);
        (entries(&baggage), dropped)
    }

    fn entry(k: &str, v: &str, m: &str) -> (String, String, String) {
        (k.to_owned(), v.to_owned(), m.to_owned())
    }

    fn baggage<K, V, M>(entries: impl IntoIterator<Item = (K, V, M)>) -> Baggage
    where
        K: AsRef<str>,
        V: AsRef<str>,
        M: AsRef<str>,
    {
        entries
            .into_iter()
            .map(|(k, v, m)| {
                let (k, v) = (k.as_ref().to_owned(), v.as_ref().to_owned());
                KeyValueMetadata::new(k, v, m.as_ref())
            })
            .collect()
    }

    #[test]
    fn spec_examples() {
        let expected = vec![
            entry("isProduction", "false", ""),
            entry("serverNode", "DF 28", ""),
            entry("userId", "alice", ""),
        ];
        let (single, dropped) = parse(["userId=alice,serverNode=DF%2028,isProduction=false"]);
        assert_eq!((entries(&single), dropped), (expected.clone(), 0));
        let (split, _) = parse(["userId=alice", "serverNode=DF%2028,isProduction=false"]);
        assert_eq!(entries(&split), expected);
        let (spaced, _) = parse([
            "userId =   alice",
            "serverNode = DF%2028, isProduction = false",
        ]);
        assert_eq!(entries(&spaced), expected);

        let (amelie, _) = parse(["userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false"]);
        assert_eq!(amelie.get("userId").map(|v| v.as_str()), Some("Amélie"));
        assert_eq!(
            format(&amelie).as_deref(),
            Some("isProduction=false,serverNode=DF%2028,userId=Am%C3%A9lie")
        );

        let (props, dropped) = one(
            "key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue",
        );
        assert_eq!(dropped, 0);
        assert_eq!(
            props,
            vec![
                entry("key1", "value1", "property1;property2"),
                entry("key2", "value2", ""),
                entry("key3", "value3", "propertyKey=propertyValue"),
            ]
        );
    }

    #[test]
    fn w3c_suite_ows_and_properties() {
        let value = "SomeKey \t = \t SomeValue \t ; \t SomePropKey=SomePropValue \t , \t SomeKey2 \t = \t SomeValue2 \t ; \t SomePropKey2 \t = \t SomePropValue2";
        assert_eq!(
            one(value),
            (
                vec![
                    entry("SomeKey", "SomeValue", "SomePropKey=SomePropValue"),
                    entry("SomeKey2", "SomeValue2", "SomePropKey2=SomePropValue2"),
                ],
                0
            )
        );
        assert_eq!(
            one("SomeKey=SomeValue=equals"),
            (vec![entry("SomeKey", "SomeValue=equals", "")], 0)
        );
        assert_eq!(
            one("SomeKey=%09%20%22%27%3B%3Dasdf%21%40%23%24%25%5E%26%2A%28%29"),
            (vec![entry("SomeKey", "\t \"';=asdf!@#$%^&*()", "")], 0)
        );
    }

    #[test]
    fn an_empty_value_is_valid() {
        assert_eq!(
            one("a=,b= ;p"),
            (vec![entry("a", "", ""), entry("b", "", "p")], 0)
        );
    }

    #[test]
    fn empty_list_elements_are_skipped_not_counted() {
        let (baggage, dropped) = parse(["", " , ,a=1,, \t", "\t"]);
        assert_eq!((entries(&baggage), dropped), (vec![entry("a", "1", "")], 0));
        assert_eq!(parse(["", ","]).1, 0);
    }

    #[test]
    fn invalid_members_are_dropped_one_by_one() {
        for invalid in [
            "novalue",
            "=1",
            " =1",
            "k y=1",
            "k(y)=1",
            "ké=1",
            "k=a b",
            "k=a\"b",
            "k=a\\b",
            "k=\u{e9}",
            "k=a\u{a0}",
            "k=%",
            "k=%4",
            "k=%zz",
            "k=%4g",
            "k=1;",
            "k=1; ;p",
            "k=1;=v",
            "k=1;p=a b",
            "k=1;p=%",
            "k=1;p(x)",
        ] {
            let value = format!("a=1,{invalid},b=2");
            assert_eq!(
                one(&value),
                (vec![entry("a", "1", ""), entry("b", "2", "")], 1),
                "{invalid:?}"
            );
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(one("k=%41%62%2c%2C"), (vec![entry("k", "Ab,,", "")], 0));
        assert_eq!(one("k=%25"), (vec![entry("k", "%", "")], 0));
        // Not UTF-8: replaced, as the specification requires, not dropped.
        assert_eq!(
            one("k=aa%ffcc;p=d%fff"),
            (vec![entry("k", "aa\u{fffd}cc", "p=d%fff")], 0)
        );
        assert_eq!(one("k=%C3"), (vec![entry("k", "\u{fffd}", "")], 0));
    }

    #[test]
    fn the_last_of_duplicate_keys_wins() {
        assert_eq!(one("k=1,k=2;p"), (vec![entry("k", "2", "p")], 0));
        let (baggage, dropped) = parse(["k=1,j=0", "k=3"]);
        assert_eq!(
            (entries(&baggage), dropped),
            (vec![entry("j", "0", ""), entry("k", "3", "")], 0)
        );
        // An invalid later member does not hide a valid earlier one.
        assert_eq!(one("k=1,k=%"), (vec![entry("k", "1", "")], 1));
    }

    #[test]
    fn round_trips_awkward_values() {
        let values = [
            "with spaces",
            " leading and trailing ",
            "a,b,c",
            "a;b;c",
            "100%",
            "%41",
            "k=v",
            "quote\" back\\slash",
            "tab\tnewline\n",
            "Amélie 日本 🦀",
            "",
        ];
        let original = baggage(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("k{i:02}"), v, "")),
        );
        let header = format(&original).unwrap();
        assert!(header.bytes().all(|b| b == b',' || is_baggage_octet(b)));
        assert!(header.starts_with("k00=with%20spaces,k01=%20leading%20and%20trailing%20,"));
        assert!(header.contains(",k02=a%2Cb%2Cc,k03=a%3Bb%3Bc,k04=100%25,k05=%2541,k06=k=v,"));
        assert!(header.ends_with(",k10="));
        let (parsed, dropped) = parse([header.as_str()]);
        assert_eq!(dropped, 0);
        assert_eq!(entries(&parsed), entries(&original));
        assert_eq!(format(&parsed), Some(header));
    }

    #[test]
    fn format_writes_properties_and_leaves_out_what_would_not_parse() {
        let b = baggage([
            ("a", "1", "p1;p2=x"),
            ("b", "2", " q = y ; r "),
            ("c", "3", "not a property"),
            ("d", "4", ";x"),
        ]);
        assert_eq!(format(&b).as_deref(), Some("a=1;p1;p2=x,b=2;q=y;r"));
        assert_eq!(format(&Baggage::new()), None);
        assert_eq!(format(&baggage([("c", "3", "a b")])), None);
    }

    fn many(n: usize) -> String {
        (0..n)
            .map(|i| format!("key{i:03}=value"))
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn at_most_64_members() {
        let (baggage, dropped) = parse([many(64).as_str()]);
        assert_eq!((baggage.len(), dropped), (64, 0));
        let (baggage, dropped) = parse([many(70).as_str()]);
        assert_eq!((baggage.len(), dropped), (64, 6));
        // The earliest are the ones dropped.
        assert!(baggage.get("key005").is_none());
        assert!(baggage.get("key006").is_some());
        // The limit is on the fields together.
        let (first, second) = (many(40), many(80).replace("key", "other"));
        let (baggage, dropped) = parse([first.as_str(), second.as_str()]);
        assert_eq!((baggage.len(), dropped), (64, 56));
    }

    #[test]
    fn at_most_8192_bytes_and_never_part_of_a_member() {
        // From the W3C suite: one member of exactly 8192 bytes is propagated.
        let exact = format!("a={}", "0123456789".repeat(819));
        assert_eq!(exact.len(), 8192);
        let (baggage, dropped) = parse([exact.as_str()]);
        assert_eq!(dropped, 0);
        assert_eq!(format(&baggage).as_deref(), Some(exact.as_str()));
        // One byte more and it is dropped whole; a smaller member still fits.
        let over = format!("a={}", "x".repeat(8191));
        let (baggage, dropped) = parse(["b=1", over.as_str()]);
        assert_eq!((entries(&baggage), dropped), (vec![entry("b", "1", "")], 1));
        // The size counts what would be sent: a value written percent-encoded counts as such.
        let wide = format!("a={}", "%C3%A9".repeat(1365)); // 2 + 8190 bytes encoded
        assert_eq!(parse([wide.as_str()]).1, 0);
        let wider = format!("a={}b", "%C3%A9".repeat(1365));
        assert_eq!(parse([wider.as_str()]).1, 1);
        // Many members: the ones that would pass 8192 bytes, commas included, are dropped.
        let members: Vec<String> = (0..600).map(|i| format!("{i:03}=0123456789a")).collect();
        let (baggage, dropped) = parse(members.iter().map(String::as_str));
        assert_eq!((baggage.len(), dropped), (64, 536));
        let long: Vec<String> = (0..10)
            .map(|i| format!("k{i}={}", "v".repeat(1000)))
            .collect();
        let (baggage, dropped) = parse(long.iter().map(String::as_str));
        assert_eq!((baggage.len(), dropped), (8, 2));
        assert!(format(&baggage).unwrap().len() <= MAX_BYTES);
    }

    #[test]
    fn format_respects_the_limits_with_whole_members() {
        // OpenTelemetry counts decoded bytes; encoded, this entry is three times as long.
        let b = baggage([
            ("a", "é", ""),
            ("big", &"é".repeat(2000), ""),
            ("c", "3", ""),
        ]);
        assert_eq!(b.len(), 3);
        let header = format(&b).unwrap();
        assert_eq!(header, "a=%C3%A9,c=3");
        let b: Baggage = (0..64)
            .map(|i| KeyValueMetadata::new(format!("k{i:02}"), "v", ""))
            .collect();
        let header = format(&b).unwrap();
        assert_eq!(header.split(',').count(), 64);
        assert_eq!(parse([header.as_str()]).1, 0);
    }

    /// Up to `max` of any characters, control characters and newlines included.
    fn any_text(max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(any::<char>(), 0..=max).prop_map(String::from_iter)
    }

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
    }

    fn property_list() -> impl Strategy<Value = String> {
        // Values of baggage-octets but `%`, so that they are valid percent-encoding.
        let property = (
            token(),
            proptest::option::of("[!#$&'()*+./0-9:<-Z^-~\\[\\]-]{0,6}"),
        )
            .prop_map(|(k, v)| v.map_or(k.clone(), |v| format!("{k}={v}")));
        proptest::collection::vec(property, 0..3).prop_map(|list| list.join(";"))
    }

    proptest! {
        #[test]
        fn never_panics_on_any_strings(values in proptest::collection::vec(any::<String>(), 0..4)) {
            let (baggage, _) = parse(values.iter().map(String::as_str));
            let _ = format(&baggage);
        }

        #[test]
        fn never_panics_on_near_misses(value in "[a-z%0-9A-F=,; \t\"\\\\\u{a0}é]{0,80}") {
            let (baggage, _) = parse([value.as_str()]);
            if let Some(header) = format(&baggage) {
                let (again, dropped) = parse([header.as_str()]);
                prop_assert_eq!(dropped, 0);
                prop_assert_eq!(entries(&again), entries(&baggage));
            }
        }

        #[test]
        fn round_trips_valid_values(
            members in proptest::collection::btree_map(token(), (any_text(40), property_list()), 0..12),
        ) {
            let original = baggage(members.iter().map(|(k, (v, m))| (k, v, m)));
            prop_assert_eq!(original.len(), members.len());
            let header = format(&original);
            let (parsed, dropped) = parse(header.as_deref());
            prop_assert_eq!(dropped, 0);
            prop_assert_eq!(entries(&parsed), entries(&original));
            prop_assert_eq!(format(&parsed), header);
        }

        #[test]
        fn whatever_format_writes_parses_back(
            members in proptest::collection::vec(
                (
                    "[ -~]{1,8}",
                    any_text(300),
                    prop_oneof![Just(String::new()), property_list(), "[ -~]{0,8}"],
                ),
                0..90,
            ),
        ) {
            // Any baggage OpenTelemetry lets one build, within its own limits or not.
            let original = baggage(members);
            let Some(header) = format(&original) else { return Ok(()) };
            prop_assert!(header.len() <= MAX_BYTES);
            let (parsed, dropped) = parse([header.as_str()]);
            prop_assert_eq!(dropped, 0);
            prop_assert!(parsed.len() <= MAX_MEMBERS);
            prop_assert_eq!(format(&parsed), Some(header));
        }
    }
}
