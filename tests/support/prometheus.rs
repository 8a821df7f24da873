//! The real Prometheus server and promtool, as scripts/test.sh installs them: finding the
//! binaries, and a server scraping one target.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of a tool from `var`, else from `PATH`; fails when neither has it.
pub fn tool(var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{var}={} does not exist: run scripts/test.sh, which installs Debian's `prometheus` \
             package and exports {var}",
            path.display()
        );
        return path;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "`{name}` not found ({var} is unset and it is not on PATH): run scripts/test.sh, \
                 which installs Debian's `prometheus` package (with promtool) and exports {var}"
            )
        })
}

/// `promtool`, from `UNITEL_TEST_PROMTOOL` or `PATH`.
pub fn promtool() -> PathBuf {
    tool("UNITEL_TEST_PROMTOOL", "promtool")
}

/// The Prometheus server, from `UNITEL_TEST_PROMETHEUS` or `PATH`.
pub fn prometheus_binary() -> PathBuf {
    tool("UNITEL_TEST_PROMETHEUS", "prometheus")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Percent-encodes everything but the unreserved characters (for query strings).
pub fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A real Prometheus server scraping one target, in a temporary directory; killed when dropped.
pub struct PrometheusServer {
    child: Child,
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PrometheusServer {
    /// Starts a server scraping `target` every `interval` (e.g. `"1s"`; also the scrape
    /// timeout), with more command-line arguments `args` (such as
    /// `--enable-feature=exemplar-storage`), and waits until it is ready.
    pub fn start(target: SocketAddr, interval: &str, args: &[&str]) -> PrometheusServer {
        let binary = prometheus_binary();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: unitel-app\n    scrape_interval: {interval}\n    \
                 scrape_timeout: {interval}\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = dir.path().join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("prometheus log file");
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file.try_clone().expect("clone log file")))
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        let mut server = PrometheusServer {
            child,
            addr,
            log,
            _dir: dir,
        };
        let started = Instant::now();
        while !super::http_get(addr, "/-/ready", &[]).is_ok_and(|r| r.status == 200) {
            server.assert_running();
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "prometheus not ready on {addr} within 30 s\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// What the server has logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test if the server has exited.
    #[track_caller]
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("prometheus exited early with {status}\n{}", self.log());
        }
    }

    /// `GET path` on the server's API, as JSON.
    pub fn json(&self, path: &str) -> Result<serde_json::Value, String> {
        let response =
            super::http_get(self.addr, path, &[]).map_err(|e| format!("GET {path}: {e}"))?;
        if response.status != 200 {
            return Err(format!("GET {path}: {} {}", response.status, response.body));
        }
        serde_json::from_str(&response.body)
            .map_err(|e| format!("GET {path}: {e}: {}", response.body))
    }

    /// `GET /api/v1/query?query=<promql>`.
    pub fn query(&self, promql: &str) -> Result<serde_json::Value, String> {
        self.json(&format!("/api/v1/query?query={}", url_encode(promql)))
    }
}
