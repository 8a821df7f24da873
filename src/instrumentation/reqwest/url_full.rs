//! `url.full` without secrets: the URL's userinfo becomes `REDACTED:REDACTED@` and the values of
//! the query keys the HTTP conventions name become `REDACTED`, in one pass that copies the URL
//! only when something is replaced.

use std::borrow::Cow;
use std::ops::Range;

/// The query keys whose values are replaced by `REDACTED` (the conventions' list for
/// `url.full`), compared ASCII case-insensitively after percent-decoding.
pub(crate) const SENSITIVE_QUERY_KEYS: [&str; 7] = [
    "AWSAccessKeyId",
    "Signature",
    "sig",
    "X-Goog-Signature",
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
];
/// The longest key of [`SENSITIVE_QUERY_KEYS`], in bytes.
const LONGEST_KEY: usize = 20;

const REDACTED: &str = "REDACTED";
const REDACTED_USERINFO: &str = "REDACTED:REDACTED@";

/// `url` as `url.full` may hold it: a userinfo (`user:password@`, or only a user) replaced by
/// `REDACTED:REDACTED@`, and the value of every query pair whose key is one of
/// [`SENSITIVE_QUERY_KEYS`] replaced by `REDACTED`, the key and every other pair kept as they
/// are, in order. The fragment is kept and treated like the query.
///
/// Pairs are separated by `&` and by `;` (some servers split on both, so a value after a `;` is
/// treated as a pair of its own); a key is percent-decoded (`+` as a space) before it is
/// compared. Borrowed when nothing had to be replaced.
pub(crate) fn redact(url: &str) -> Cow<'_, str> {
    let bytes = url.as_bytes();
    let mut edits = Edits::new(url);
    let after_authority = match authority(bytes) {
        Some(authority) => {
            if let Some(at) = bytes[authority.clone()].iter().rposition(|&b| b == b'@') {
                edits.replace(authority.start..authority.start + at + 1, REDACTED_USERINFO);
            }
            authority.end
        }
        None => 0,
    };
    let Some(q) = bytes[after_authority..]
        .iter()
        .position(|&b| b == b'?' || b == b'#')
    else {
        return edits.finish();
    };
    // The pairs of the query and the fragment, each `key=value` checked on its own.
    let mut start = after_authority + q + 1;
    while start <= bytes.len() {
        let end = bytes[start..]
            .iter()
            .position(|&b| matches!(b, b'&' | b';' | b'#'))
            .map_or(bytes.len(), |i| start + i);
        if let Some(eq) = bytes[start..end].iter().position(|&b| b == b'=') {
            if is_sensitive_key(&bytes[start..start + eq]) {
                edits.replace(start + eq + 1..end, REDACTED);
            }
        }
        start = end + 1;
    }
    edits.finish()
}

/// The byte range of the authority (`user:pw@host:port`) of `url`, when it has one: after
/// `scheme://`, up to the first `/`, `?` or `#`.
fn authority(url: &[u8]) -> Option<Range<usize>> {
    let colon = url.iter().position(|&b| b == b':')?;
    let scheme = &url[..colon];
    let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid || !url[colon..].starts_with(b"://") {
        return None;
    }
    let start = colon + 3;
    let end = url[start..]
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .map_or(url.len(), |i| start + i);
    Some(start..end)
}

/// Whether the raw (percent-encoded) query key `raw` is one of [`SENSITIVE_QUERY_KEYS`].
fn is_sensitive_key(bytes: &[u8]) -> bool {
    // The shortest key is `sig`; the longest, fully percent-encoded, is three times 20 bytes.
    if bytes.len() < 3 || bytes.len() > 3 * LONGEST_KEY {
        return false;
    }
    let mut decoded = [0u8; LONGEST_KEY];
    let mut len = 0;
    let mut i = 0;
    while i < bytes.len() {
        let byte = match bytes[i] {
            b'%' => match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(hi), Some(lo)) => {
                    i += 2;
                    hi << 4 | lo
                }
                _ => b'%',
            },
            b'+' => b' ',
            b => b,
        };
        i += 1;
        let Some(slot) = decoded.get_mut(len) else {
            return false;
        };
        *slot = byte;
        len += 1;
    }
    let key = &decoded[..len];
    SENSITIVE_QUERY_KEYS
        .iter()
        .any(|k| k.as_bytes().eq_ignore_ascii_case(key))
}

fn hex(digit: Option<&u8>) -> Option<u8> {
    match *digit? {
        d @ b'0'..=b'9' => Some(d - b'0'),
        d @ b'a'..=b'f' => Some(d - b'a' + 10),
        d @ b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    }
}

/// Replacements in a string, in increasing order; the copy is made at the first one.
struct Edits<'a> {
    source: &'a str,
    out: Option<String>,
    /// `source` up to here is in `out`.
    copied: usize,
}

impl<'a> Edits<'a> {
    fn new(source: &'a str) -> Self {
        Edits {
            source,
            out: None,
            copied: 0,
        }
    }

    fn replace(&mut self, range: Range<usize>, with: &str) {
        let source = self.source;
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(source.len() + REDACTED_USERINFO.len()));
        out.push_str(&source[self.copied..range.start]);
        out.push_str(with);
        self.copied = range.end;
    }

    fn finish(self) -> Cow<'a, str> {
        match self.out {
            Some(mut out) => {
                out.push_str(&self.source[self.copied..]);
                Cow::Owned(out)
            }
            None => Cow::Borrowed(self.source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn userinfo_is_redacted() {
        assert_eq!(
            redact("https://user:pw@www.example.com/"),
            "https://REDACTED:REDACTED@www.example.com/"
        );
        assert_eq!(
            redact("https://user@www.example.com:8443/a?b=c"),
            "https://REDACTED:REDACTED@www.example.com:8443/a?b=c"
        );
        assert_eq!(
            redact("http://:pw@[::1]:80"),
            "http://REDACTED:REDACTED@[::1]:80"
        );
        // An `@` after the authority is not userinfo.
        assert_eq!(
            redact("https://example.com/a@b?c=d@e#f@g"),
            "https://example.com/a@b?c=d@e#f@g"
        );
    }

    #[test]
    fn sensitive_query_values_are_redacted_and_the_rest_kept() {
        assert_eq!(
            redact("https://www.example.com/path?color=blue&sig=s3cr3t"),
            "https://www.example.com/path?color=blue&sig=REDACTED"
        );
        assert_eq!(
            redact(
                "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256\
                 &X-Amz-Credential=AKIA%2F20250101&X-Amz-Signature=abc123\
                 &x-amz-security-token=tok&X-Amz-Expires=3600#frag"
            ),
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED\
             &x-amz-security-token=REDACTED&X-Amz-Expires=3600#frag"
        );
        assert_eq!(
            redact("http://h/?AWSAccessKeyId=A&Signature=B&X-Goog-Signature=C&sig"),
            "http://h/?AWSAccessKeyId=REDACTED&Signature=REDACTED&X-Goog-Signature=REDACTED&sig"
        );
        // Percent-encoded keys, `;` separators and the fragment.
        assert_eq!(
            redact("http://h/p?X%2DAmz%2dSignature=1;sig=2&a=b#sig=3"),
            "http://h/p?X%2DAmz%2dSignature=REDACTED;sig=REDACTED&a=b#sig=REDACTED"
        );
        // Keys that only look like the listed ones.
        assert_eq!(
            redact("http://h/?sig2=a&xsig=b&sig%=c&si+g=d&=e&&"),
            "http://h/?sig2=a&xsig=b&sig%=c&si+g=d&=e&&"
        );
        assert_eq!(
            redact("http://u:p@h/?sig=a=b"),
            "http://REDACTED:REDACTED@h/?sig=REDACTED"
        );
    }

    #[test]
    fn clean_urls_are_borrowed() {
        for url in [
            "http://127.0.0.1:8080/users/42?page=2#top",
            "https://example.com",
            "not a url",
            "mailto:a@b.example?subject=x",
            "",
        ] {
            assert!(matches!(redact(url), Cow::Borrowed(u) if u == url), "{url}");
        }
    }

    /// A listed key as a client might write it: any ASCII case, any byte percent-encoded.
    fn written_key() -> impl Strategy<Value = String> {
        (
            proptest::sample::select(SENSITIVE_QUERY_KEYS.to_vec()),
            proptest::collection::vec((any::<bool>(), any::<bool>(), any::<bool>()), LONGEST_KEY),
        )
            .prop_map(|(key, how)| {
                key.bytes()
                    .zip(how)
                    .map(|(b, (upper, encode, lower_hex))| {
                        let b = if upper {
                            b.to_ascii_uppercase()
                        } else {
                            b.to_ascii_lowercase()
                        };
                        match (encode, lower_hex) {
                            (true, true) => format!("%{b:02x}"),
                            (true, false) => format!("%{b:02X}"),
                            (false, _) => char::from(b).to_string(),
                        }
                    })
                    .collect()
            })
    }

    /// A value or an unlisted key: anything but the separators.
    fn plain() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9%+=/:@._~!$'()*,-]{0,12}"
    }

    proptest! {
        /// For any query of listed and unlisted keys: every listed key's value is `REDACTED`,
        /// everything else is exactly as written.
        #[test]
        fn no_listed_value_survives(
            userinfo in proptest::option::of("[a-z]{1,6}(:[a-z0-9%]{0,8})?"),
            pairs in proptest::collection::vec(
                (prop_oneof![written_key(), plain()], plain(), prop_oneof![Just('&'), Just(';')]),
                0..8,
            ),
            fragment in proptest::option::of((written_key(), plain())),
        ) {
            let mut url = String::from("https://");
            let mut want = url.clone();
            if let Some(userinfo) = &userinfo {
                url.push_str(userinfo);
                url.push('@');
                want.push_str(REDACTED_USERINFO);
            }
            url.push_str("host.example:8443/p/a/t/h?");
            want.push_str("host.example:8443/p/a/t/h?");
            for (key, value, separator) in &pairs {
                // The first `=` ends the key.
                let key = key.replace('=', "");
                let listed = is_sensitive_key(key.as_bytes());
                for s in [&mut url, &mut want] {
                    s.push_str(&key);
                    s.push('=');
                }
                url.push_str(value);
                want.push_str(if listed { REDACTED } else { value });
                url.push(*separator);
                want.push(*separator);
            }
            if let Some((key, value)) = &fragment {
                url.push_str(&format!("#{key}={value}"));
                want.push_str(&format!("#{key}={REDACTED}"));
            }
            prop_assert_eq!(redact(&url), want);
        }

        /// Parsed by the URL parser reqwest uses and read back as a server would, no listed
        /// key has any value but `REDACTED`, and no userinfo is left.
        #[test]
        fn a_server_sees_no_listed_value(
            query in proptest::collection::vec(
                (prop_oneof![written_key(), plain()], plain()),
                0..8,
            ),
            password in "[a-z0-9]{1,8}",
        ) {
            let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let raw = format!("http://user:{password}@h.example/x?{}", query.join("&"));
            let Ok(url) = ::reqwest::Url::parse(&raw) else { return Ok(()) };
            let redacted = redact(url.as_str());
            let parsed = ::reqwest::Url::parse(&redacted).expect("still a URL");
            prop_assert_eq!(parsed.username(), "REDACTED");
            prop_assert_eq!(parsed.password(), Some("REDACTED"));
            for (key, value) in parsed.query_pairs() {
                if SENSITIVE_QUERY_KEYS.iter().any(|k| k.eq_ignore_ascii_case(&key)) {
                    prop_assert_eq!(&*value, REDACTED, "in {}", redacted);
                }
            }
        }

        /// Any text at all: no panic, and a text without an `@` or an `=` (so with nothing to
        /// redact) is returned as it is.
        #[test]
        fn any_text_is_safe(text in any::<String>()) {
            let out = redact(&text);
            if !text.contains(['@', '=']) {
                prop_assert!(matches!(out, Cow::Borrowed(_)));
            }
        }
    }

    #[test]
    fn keys_are_decoded_before_they_are_compared() {
        assert!(is_sensitive_key(b"sig"));
        assert!(is_sensitive_key(b"SIG"));
        assert!(is_sensitive_key(b"%73%69%67"));
        assert!(is_sensitive_key(b"X%2DAmz%2DSecurity%2DToken"));
        assert!(!is_sensitive_key(b"X%2DAmz%2DSecurity%2DTokens"));
        assert!(!is_sensitive_key(b"si"));
        assert!(!is_sensitive_key(b"%"));
        assert!(!is_sensitive_key(b"sig%"));
        assert!(!is_sensitive_key(b"%zzsig"));
        assert!(!is_sensitive_key(b""));
    }
}
