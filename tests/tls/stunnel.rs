//! A real TLS-terminating proxy in front of the real collector: stunnel (installed by
//! scripts/test.sh, which names it in `UNITEL_TEST_STUNNEL`), in the foreground, one per test,
//! stopped when dropped. Four services on free loopback ports: TLS to rotel's http and grpc
//! ports, and the same with mutual TLS (a client certificate signed by the client CA required).

use crate::pki::Pki;
use crate::rotel::Rotel;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running stunnel; the ports are on 127.0.0.1.
#[derive(Debug)]
pub(crate) struct Stunnel {
    /// TLS to rotel's OTLP/HTTP port.
    pub(crate) https: u16,
    /// TLS to rotel's OTLP/gRPC port.
    pub(crate) grpcs: u16,
    /// Mutual TLS to rotel's OTLP/HTTP port.
    pub(crate) https_mtls: u16,
    /// Mutual TLS to rotel's OTLP/gRPC port.
    pub(crate) grpcs_mtls: u16,
    log: PathBuf,
    pid_file: PathBuf,
    /// `timeout` running stunnel, so that a test run killed outright leaves no proxy behind
    /// for long.
    child: Child,
}

impl Stunnel {
    /// Starts stunnel with its configuration, pid file and log in `dir`, and waits until every
    /// port accepts connections.
    pub(crate) fn start(dir: &Path, pki: &Pki, rotel: &Rotel) -> Stunnel {
        let binary = binary();
        let [https, grpcs, https_mtls, grpcs_mtls] = free_ports();
        let log = dir.join("stunnel.log");
        let pid_file = dir.join("stunnel.pid");
        let service = |name: &str, port: u16, to: &str, mutual: bool| {
            let mut section = format!(
                "[{name}]\naccept = 127.0.0.1:{port}\nconnect = {to}\ncert = {}\nkey = {}\n",
                pki.server_cert.display(),
                pki.server_key.display()
            );
            if mutual {
                // verifyChain implies requireCert: no client certificate, no connection.
                section.push_str(&format!(
                    "verifyChain = yes\nCAfile = {}\n",
                    pki.client_ca.display()
                ));
            }
            section
        };
        let config = format!(
            "foreground = yes\nsyslog = no\ndebug = info\npid = {}\n\n{}\n{}\n{}\n{}",
            pid_file.display(),
            service("https", https, &rotel.http, false),
            service("grpcs", grpcs, &rotel.grpc, false),
            service("https-mtls", https_mtls, &rotel.http, true),
            service("grpcs-mtls", grpcs_mtls, &rotel.grpc, true),
        );
        let config_file = dir.join("stunnel.conf");
        std::fs::write(&config_file, config).expect("write stunnel.conf");
        let out = std::fs::File::create(&log).expect("stunnel log");
        let child = Command::new("timeout")
            .arg("600")
            .arg(&binary)
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("stunnel log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut stunnel = Stunnel {
            https,
            grpcs,
            https_mtls,
            grpcs_mtls,
            log,
            pid_file,
            child,
        };
        stunnel.wait_until_listening();
        stunnel
    }

    /// What stunnel logged (its handshake errors among them).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_until_listening(&mut self) {
        let started = Instant::now();
        for port in [self.https, self.grpcs, self.https_mtls, self.grpcs_mtls] {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!(
                        "stunnel exited ({status}) before listening:\n{}",
                        self.log()
                    );
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "stunnel does not listen on {addr} after 10 s:\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        // stunnel itself, by its pid file, then `timeout`, which ends with it.
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = Command::new("kill")
                .arg(pid.trim())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `UNITEL_TEST_STUNNEL`, else `stunnel4` or `stunnel` on PATH. Missing, the test fails: the
/// TLS tests are part of the suite, and scripts/test.sh installs stunnel.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("UNITEL_TEST_STUNNEL") {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["stunnel4", "stunnel"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .expect(
            "stunnel is not installed and UNITEL_TEST_STUNNEL is not set: run scripts/test.sh, \
             which installs it (apt-get install stunnel4)",
        )
}

/// Four distinct free ports (held together while they are chosen, so none comes twice).
fn free_ports() -> [u16; 4] {
    let listeners: Vec<_> = (0..4)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("free port"))
        .collect();
    let port = |i: usize| listeners[i].local_addr().expect("port").port();
    [port(0), port(1), port(2), port(3)]
}
