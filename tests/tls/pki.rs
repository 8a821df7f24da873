//! The certificates the tests make with rcgen, as PEM files in a temporary directory: a CA that
//! signs the collector's certificate (for `localhost` and 127.0.0.1), a client CA that signs
//! the client's certificate (mutual TLS), and an unrelated CA that signs nothing here.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// The PEM files, by role.
#[derive(Debug)]
pub(crate) struct Pki {
    /// The CA that signed the collector's (stunnel's) certificate.
    pub(crate) ca: PathBuf,
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
    /// The CA stunnel trusts for client certificates.
    pub(crate) client_ca: PathBuf,
    pub(crate) client_cert: PathBuf,
    pub(crate) client_key: PathBuf,
    /// A CA that signed none of these.
    pub(crate) wrong_ca: PathBuf,
    /// A private key of no certificate here.
    pub(crate) stray_key: PathBuf,
}

impl Pki {
    /// Makes every certificate and key and writes them into `dir`.
    pub(crate) fn create(dir: &Path) -> Pki {
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write a PEM file");
            path
        };
        let (ca, ca_issuer) = authority("unitel test CA");
        let (client_ca, client_issuer) = authority("unitel test client CA");
        let (wrong_ca, _) = authority("unitel unrelated CA");
        let (server_cert, server_key) = leaf(
            &ca_issuer,
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            &client_issuer,
            &["unitel-test-client"],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let stray_key = KeyPair::generate().expect("key").serialize_pem();
        Pki {
            ca: write("ca.pem", ca),
            server_cert: write("server.pem", server_cert),
            server_key: write("server.key", server_key),
            client_ca: write("client-ca.pem", client_ca),
            client_cert: write("client.pem", client_cert),
            client_key: write("client.key", client_key),
            wrong_ca: write("wrong-ca.pem", wrong_ca),
            stray_key: write("stray.key", stray_key),
        }
    }
}

/// A self-signed CA: its certificate's PEM and what signs with it.
fn authority(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("self-signed CA");
    (cert.pem(), Issuer::new(params, key))
}

/// A certificate for `names` (DNS names or IP addresses) signed by `issuer`: its PEM and its
/// key's (PKCS#8).
fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names.clone()).expect("certificate names");
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].as_str());
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("signed certificate");
    (cert.pem(), key.serialize_pem())
}
