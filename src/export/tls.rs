//! TLS for the OTLP exporters: rustls with the ring provider, the system's roots (Mozilla's
//! when the system has none) or a private CA, and a client certificate for mutual TLS. The
//! files are read and checked at start-up; a failed handshake is explained in words.

use crate::config::Sourced;
use crate::error::Error;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// The TLS material of one OTLP target.
pub(crate) struct Tls {
    roots: Arc<RootCertStore>,
    identity: Option<Identity>,
}

struct Identity {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for Tls {
    // Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("roots", &self.roots.len())
            .field("client_certificate", &self.identity.is_some())
            .finish()
    }
}

impl Tls {
    /// Reads and checks the files. `roots_needed` is false for a plain-http target: its files
    /// are still checked (a wrong path is a wrong path), but the system's roots are not loaded.
    pub(crate) fn load(
        ca: Option<&Sourced<PathBuf>>,
        client_certificate: Option<&Sourced<PathBuf>>,
        client_key: Option<&Sourced<PathBuf>>,
        roots_needed: bool,
    ) -> Result<Tls, Error> {
        let roots = match ca {
            Some(ca) => Arc::new(private_roots(ca)?),
            None if roots_needed => system_roots(),
            None => Arc::new(RootCertStore::empty()),
        };
        let identity =
            match (client_certificate, client_key) {
                (None, None) => None,
                (Some(cert), None) => return Err(tls_error(
                    cert,
                    "is a client certificate without its key: set OTEL_EXPORTER_OTLP_CLIENT_KEY \
                     (or OtlpSettings::with_client_key) to the PEM private key"
                        .into(),
                    None,
                )),
                (None, Some(key)) => {
                    return Err(tls_error(
                        key,
                        "is a client key without its certificate: set \
                     OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE (or \
                     OtlpSettings::with_client_certificate) to the PEM certificate"
                            .into(),
                        None,
                    ))
                }
                (Some(cert), Some(key)) => Some(identity(cert, key)?),
            };
        let tls = Tls { roots, identity };
        // Building the rustls configuration checks that the key matches the certificate.
        tls.rustls_config().map_err(|err| match (client_key, err) {
            (Some(key), err) => tls_error(
                key,
                format!(
                    "does not fit the client certificate ({err}); expected the private \
                         key of OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
                ),
                None,
            ),
            (None, err) => Error::Exporter {
                signal: "all",
                source: Box::new(err),
            },
        })?;
        Ok(tls)
    }

    /// The rustls client configuration (for OTLP over http).
    pub(crate) fn rustls_config(&self) -> Result<rustls::ClientConfig, rustls::Error> {
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(Arc::clone(&self.roots));
        match &self.identity {
            Some(id) => builder.with_client_auth_cert(id.certs.clone(), id.key.clone_key()),
            None => Ok(builder.with_no_client_auth()),
        }
    }

    /// tonic's configuration (for OTLP over grpc): the same roots and client certificate.
    /// gRPC is always HTTP/2, so a proxy that negotiates no ALPN is still spoken to in h2.
    pub(crate) fn tonic_config(
        &self,
    ) -> opentelemetry_otlp::tonic_types::transport::ClientTlsConfig {
        use opentelemetry_otlp::tonic_types::transport::{ClientTlsConfig, Identity};
        let config = ClientTlsConfig::new()
            .trust_anchors(self.roots.roots.iter().cloned())
            .assume_http2(true);
        match &self.identity {
            Some(id) => config.identity(Identity::from_pem(&id.cert_pem, &id.key_pem)),
            None => config,
        }
    }
}

/// The CA file's certificates, and only them.
fn private_roots(ca: &Sourced<PathBuf>) -> Result<RootCertStore, Error> {
    const EXPECTED: &str = "expected a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)";
    let pem = read(ca, EXPECTED)?;
    let certs = certificates(ca, &pem, EXPECTED)?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|err| {
            tls_error(
                ca,
                format!("holds a certificate that cannot be a trust anchor ({err}); {EXPECTED}"),
                None,
            )
        })?;
    }
    Ok(roots)
}

/// The system's roots, loaded once per process; Mozilla's (webpki-roots) when the system has
/// none (a slim container without `ca-certificates`).
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if roots.is_empty() {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            Arc::new(roots)
        })
        .clone()
}

fn identity(cert: &Sourced<PathBuf>, key: &Sourced<PathBuf>) -> Result<Identity, Error> {
    const CERT: &str =
        "expected a PEM file with the client certificate first (-----BEGIN CERTIFICATE-----)";
    const KEY: &str = "expected a PEM file with one private key: PKCS#8 (BEGIN PRIVATE KEY), \
                       PKCS#1 (BEGIN RSA PRIVATE KEY) or SEC1 (BEGIN EC PRIVATE KEY)";
    let cert_pem = read(cert, CERT)?;
    let certs = certificates(cert, &cert_pem, CERT)?;
    let key_pem = read(key, KEY)?;
    let parsed = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| tls_error(key, format!("holds no usable private key; {KEY}"), None))?;
    Ok(Identity {
        certs,
        key: parsed,
        cert_pem,
        key_pem,
    })
}

fn certificates(
    from: &Sourced<PathBuf>,
    pem: &[u8],
    expected: &str,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    match certs {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(tls_error(
            from,
            format!("holds no certificate; {expected}"),
            None,
        )),
        Err(err) => Err(tls_error(
            from,
            format!("is not valid PEM ({err}); {expected}"),
            None,
        )),
    }
}

fn read(from: &Sourced<PathBuf>, expected: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(&from.value)
        .map_err(|err| tls_error(from, format!("cannot be read; {expected}"), Some(err)))
}

fn tls_error(from: &Sourced<PathBuf>, problem: String, source: Option<std::io::Error>) -> Error {
    Error::Tls {
        setting: from.from,
        path: from.value.clone(),
        problem,
        source,
    }
}

/// A few words on what a failed TLS handshake means, from the error's text (the grpc
/// exporter hands over only text): `None` when it is not a TLS problem.
pub(crate) fn explain(error: &str, tls: bool) -> Option<&'static str> {
    let has = |s: &str| error.contains(s);
    if has("invalid peer certificate") {
        return Some(if has("UnknownIssuer") || has("BadSignature") {
            "TLS certificate problem: the collector's certificate is not signed by a trusted CA \
             (for a private CA, set OTEL_EXPORTER_OTLP_CERTIFICATE to its PEM file)"
        } else if has("NotValidForName") {
            "TLS certificate problem: the collector's certificate is not valid for the \
             endpoint's host name"
        } else if has("Expired") || has("NotValidYet") {
            "TLS certificate problem: the collector's certificate is expired or not valid yet"
        } else {
            "TLS certificate problem: the collector's certificate was rejected"
        });
    }
    if has("received fatal alert") {
        return Some(
            "TLS certificate problem: the collector refused the handshake; it may require a \
             client certificate (mutual TLS: OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and \
             OTEL_EXPORTER_OTLP_CLIENT_KEY) or not trust the one sent",
        );
    }
    // With TLS 1.3 the client's side of the handshake is done before the collector checks its
    // certificate: a collector that refuses it sends its alert and closes, and a client already
    // writing its request often sees the closed connection instead of the alert (grpc: "stream
    // closed because of a broken pipe"). Without TLS the same words mean a collector that hung
    // up: no explanation then.
    let lower = error.to_ascii_lowercase();
    // hyper says the same thing its own ways: the pooled connection closed before the
    // request went out ("connection was not ready") or before the answer ("connection closed
    // before message completed"); tonic, when the close cancels the call ("operation was
    // canceled: connection closed").
    const CLOSED: [&str; 4] = [
        "broken pipe",
        "connection reset",
        "connection was not ready",
        "connection closed",
    ];
    if tls && CLOSED.iter().any(|c| lower.contains(c)) {
        return Some(
            "TLS: the collector closed the connection as the request was sent; it may require \
             a client certificate (mutual TLS: OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and \
             OTEL_EXPORTER_OTLP_CLIENT_KEY) or not trust the one sent",
        );
    }
    if has("InvalidContentType") || has("corrupt message") {
        return Some("TLS problem: the endpoint does not speak TLS (use http:// for a plain one)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[test]
    fn handshake_failures_are_named_and_a_plain_hang_up_is_not_blamed_on_tls() {
        let unknown = "client error (Connect): invalid peer certificate: UnknownIssuer";
        assert!(explain(unknown, true).is_some_and(|w| w.contains("not signed by a trusted CA")));
        let refused = "connection error: received fatal alert: CertificateRequired";
        assert!(explain(refused, true).is_some_and(|w| w.contains("client certificate")));
        let closed = "transport error: stream closed because of a broken pipe";
        assert!(explain(closed, true).is_some_and(|w| w.contains("client certificate")));
        assert_eq!(explain(closed, false), None);
        let not_ready = "client error (Canceled): operation was canceled: connection was not ready";
        assert!(explain(not_ready, true).is_some_and(|w| w.contains("client certificate")));
        assert_eq!(explain(not_ready, false), None);
        let cancelled =
            "TonicLogsClient export failed with gRPC code: Cancelled: transport error: \
                         operation was canceled: connection closed";
        assert!(explain(cancelled, true).is_some_and(|w| w.contains("client certificate")));
        assert_eq!(explain(cancelled, false), None);
        assert_eq!(explain("tcp connect error: Connection refused", true), None);
    }
}
