//! OTLP endpoints: parsed once, checked at start-up, and never printed with their secrets.
//!
//! An endpoint may carry credentials (`https://user:password@host`). They are taken out of the
//! URL here and sent as an `Authorization: Basic` header, so the HTTP stack never sees them in a
//! URL (its own debug lines print URLs), and every printed form of an endpoint — `Debug`, error
//! messages — goes through [`redact`].

/// What an endpoint setting accepts, for error messages.
pub(crate) const ACCEPTED: &str = "an http:// or https:// URL with a host and an optional port, \
     e.g. https://collector.example:4318 (credentials as https://user:password@host, \
     percent-encoded; a scheme-less host:port only with grpc)";

/// The scheme of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
    /// `host:port` with no scheme: grpc only, TLS unless `OTEL_EXPORTER_OTLP_INSECURE=true`.
    None,
}

/// An endpoint taken apart: the URL to connect to, without credentials, and the credentials.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) scheme: Scheme,
    /// `host[:port]`, IPv6 hosts in brackets.
    pub(crate) authority: String,
    /// The path and query, as given (may be empty).
    pub(crate) rest: String,
    /// `user:password` from the URL, percent-decoded.
    pub(crate) credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

// Without the `otlp` feature, endpoints are only checked (an env value is still validated).
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
impl Endpoint {
    /// Parses `raw` (surrounding whitespace ignored). The error is what would be accepted.
    pub(crate) fn parse(raw: &str) -> Result<Endpoint, &'static str> {
        let raw = raw.trim();
        let (scheme, rest) = match raw.find("://") {
            Some(i) => {
                let scheme = match raw[..i].to_ascii_lowercase().as_str() {
                    "http" => Scheme::Http,
                    "https" => Scheme::Https,
                    _ => return Err(ACCEPTED),
                };
                (scheme, &raw[i + 3..])
            }
            None => (Scheme::None, raw),
        };
        // The authority ends at the first `/`, `?` or `#` (RFC 3986); a password holding one of
        // them must be percent-encoded, else what follows is not a valid host and port.
        let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let (userinfo, host_port) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        if scheme == Scheme::None && (userinfo.is_some() || !path.is_empty()) {
            return Err(ACCEPTED);
        }
        check_host_port(host_port, scheme == Scheme::None)?;
        let credentials = match userinfo {
            Some(info) => {
                let (user, password) = info.split_once(':').unwrap_or((info, ""));
                let user = percent_decode(user).ok_or(ACCEPTED)?;
                let password = percent_decode(password).ok_or(ACCEPTED)?;
                if user.is_empty() && password.is_empty() {
                    None
                } else {
                    Some((user, password))
                }
            }
            None => None,
        };
        if !path.bytes().all(|b| b.is_ascii_graphic()) || path.starts_with('\\') {
            return Err(ACCEPTED);
        }
        let endpoint = Endpoint {
            scheme,
            authority: host_port.to_owned(),
            rest: path.to_owned(),
            credentials,
        };
        // The URL as it will be used must be one the HTTP stack accepts.
        #[cfg(feature = "otlp")]
        if scheme != Scheme::None {
            endpoint.url().parse::<http::Uri>().map_err(|_| ACCEPTED)?;
        }
        Ok(endpoint)
    }

    /// The URL to connect to, without credentials. A scheme-less endpoint gets `https://`
    /// unless `insecure`.
    pub(crate) fn url_with(&self, insecure: bool) -> String {
        let scheme = match (self.scheme, insecure) {
            (Scheme::Http, _) | (Scheme::None, true) => "http",
            (Scheme::Https, _) | (Scheme::None, false) => "https",
        };
        format!("{scheme}://{}{}", self.authority, self.rest)
    }

    fn url(&self) -> String {
        self.url_with(false)
    }

    /// For messages and `Debug`: the URL with any credentials and query replaced by
    /// `<redacted>`.
    pub(crate) fn display(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http://",
            Scheme::Https => "https://",
            Scheme::None => "",
        };
        let creds = if self.credentials.is_some() {
            "<redacted>@"
        } else {
            ""
        };
        format!(
            "{scheme}{creds}{}{}",
            self.authority,
            redact_query(&self.rest)
        )
    }

    /// The `Authorization: Basic` value for the credentials, if any.
    #[cfg(feature = "otlp")]
    pub(crate) fn basic_auth(&self) -> Option<String> {
        use base64::Engine as _;
        let (user, password) = self.credentials.as_ref()?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Some(format!("Basic {token}"))
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`; a port is required when there is no scheme.
fn check_host_port(s: &str, port_required: bool) -> Result<(), &'static str> {
    let (host, port) = match s.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or(ACCEPTED)?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(ACCEPTED);
            }
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or(ACCEPTED)?)),
            }
        }
        None => match s.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        },
    };
    let host_ok = !host.is_empty()
        && (s.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
    let port_ok = match port {
        Some(p) => {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
        }
        None => !port_required,
    };
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(ACCEPTED)
    }
}

/// `/v1/traces?api_key=x` → `/v1/traces?<redacted>`: query strings carry API keys.
fn redact_query(rest: &str) -> std::borrow::Cow<'_, str> {
    match rest.find(['?', '#']) {
        Some(i) => format!("{}?<redacted>", &rest[..i]).into(),
        None => rest.into(),
    }
}

/// An endpoint value as it may be printed when it did not parse: everything up to its last
/// `@` (whatever the `/`, `?`, `#` or `:` before it: a password can hold them) and any query
/// become `<redacted>`. Over-redacting a malformed value is fine; echoing a password is not.
pub(crate) fn redact(raw: &str) -> String {
    let raw = raw.trim();
    let scheme_end = raw.find("://").map_or(0, |i| i + 3);
    let (head, tail) = match raw.rfind('@') {
        Some(at) if at >= scheme_end => {
            (format!("{}<redacted>@", &raw[..scheme_end]), &raw[at + 1..])
        }
        Some(at) => ("<redacted>@".to_owned(), &raw[at + 1..]),
        None => (String::new(), raw),
    };
    // Without an `@`, a value with no scheme separator could still be `user:password` typed
    // with a missing `//` (`http:/user:pw...`): keep only what cannot be a secret.
    let tail = if head.is_empty() && !raw.contains("://") && raw.contains(':') {
        match raw.split_once(':') {
            Some((scheme, _))
                if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
            {
                return format!("{scheme}:<redacted>");
            }
            _ => tail,
        }
    } else {
        tail
    };
    let end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
    let (authority, rest) = tail.split_at(end);
    format!("{head}{authority}{}", redact_query(rest))
}

/// `%XX` escapes decoded ([`crate::format::percent_decode`]); `None` for a bad escape or
/// bytes that are not UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    String::from_utf8(crate::format::percent_decode(s)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url() {
        let e = Endpoint::parse("HTTPS://alice:p%40ss%2Fw%3Frd@collector.example:4318/v1").unwrap();
        assert_eq!(e.scheme, Scheme::Https);
        assert_eq!(e.url_with(false), "https://collector.example:4318/v1");
        assert_eq!(
            e.credentials,
            Some(("alice".to_owned(), "p@ss/w?rd".to_owned()))
        );
        assert_eq!(e.display(), "https://<redacted>@collector.example:4318/v1");
        #[cfg(feature = "otlp")]
        assert_eq!(
            e.basic_auth().as_deref(),
            Some("Basic YWxpY2U6cEBzcy93P3Jk")
        );
        assert!(!format!("{e:?}").contains("p@ss"));
    }

    #[test]
    fn scheme_is_case_insensitive_and_scheme_less_needs_a_port() {
        assert_eq!(Endpoint::parse("HTTP://a:1").unwrap().scheme, Scheme::Http);
        assert_eq!(
            Endpoint::parse("Http://[::1]:4318")
                .unwrap()
                .url_with(false),
            "http://[::1]:4318"
        );
        let bare = Endpoint::parse("collector:4317").unwrap();
        assert_eq!(bare.url_with(false), "https://collector:4317");
        assert_eq!(bare.url_with(true), "http://collector:4317");
        for bad in [
            "collector",
            "ftp://x:1",
            "http://",
            "http:/user:pw@host",
            "http://user:pw@",
            "http://user:p/ss@host",
            "http://user:p#ss@host",
            "http://user:p?ss@host",
            "user:pw@host:4318",
            "http://host:99999",
            "http://ho st",
            "http://[zz]:1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redact_hides_every_password_shape() {
        for (raw, secret) in [
            ("http:/user:pw-1@host", "pw-1"),
            ("http://user:p/ss-2@host", "ss-2"),
            ("http://user:p#ss-3@host", "ss-3"),
            ("http://user:p?ss-4@host", "ss-4"),
            ("user:pw-5@host:4318", "pw-5"),
            ("http://user:pw-6@", "pw-6"),
            ("http://host/v1?api_key=k-7", "k-7"),
            ("https:user:pw-8", "pw-8"),
            ("http:/user:pw-9", "pw-9"),
        ] {
            let shown = redact(raw);
            assert!(!shown.contains(secret), "{raw} -> {shown}");
        }
        assert_eq!(redact("http://u:p@h:1/v1"), "http://<redacted>@h:1/v1");
        assert_eq!(redact("http://h:1/v1"), "http://h:1/v1");
    }
}
