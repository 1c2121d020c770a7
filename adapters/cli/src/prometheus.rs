//! Live metrics for Prometheus: per-component energy (a counter, joules) and power (a gauge,
//! watts) in the text exposition format 0.0.4, served at `/metrics` from the monitor's live
//! totals (no hardware access on a scrape).
//!
//! Fine-grained energy readings are a side channel (PLATYPUS, CVE-2020-8694: why `energy_uj` is
//! root-only), and an exporter run by root on loopback is reachable by every local user. So what
//! `/metrics` serves is a snapshot taken every export interval (default 1 s) on the exporter's
//! own schedule, whatever the sampler's rate and whenever the scrapes come: a scraper can never
//! see more than one value per interval, nor choose the instant it is taken. Each sample carries
//! the snapshot's timestamp, so `rate()` in Prometheus stays exact. A bearer token
//! (`--prometheus-token-file`, Prometheus' `authorization: credentials_file:`) can be required.

use std::fmt::Write as _;
use std::io::Read as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::monitor::{LiveComponent, MonitorHandle};

/// How often the served values change by default: Prometheus scrapes every 5-60 s, so this
/// changes nothing for it, while nobody can sample the counters faster than once a second.
pub const DEFAULT_EXPORT_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest bearer token accepted (`openssl rand -hex 32` gives 64 characters).
pub const MIN_TOKEN_LEN: usize = 16;

/// Until a first reading, the (empty) snapshot is retaken this often, so that the series appear
/// as soon as there is something to serve rather than an export interval later.
const FIRST_READING_POLL: Duration = Duration::from_millis(5);

/// Token files are read up to this size.
const MAX_TOKEN_FILE: u64 = 4096;

/// `9100` or `:9100` -> `127.0.0.1:9100` (loopback unless an address says otherwise);
/// `0.0.0.0:9100`, `[::1]:9100`, `localhost:9100` as given.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let port_only = s.strip_prefix(':').unwrap_or(s);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            format!("expected PORT, :PORT or HOST:PORT (e.g. 9100, 127.0.0.1:9100), found {s:?}")
        })
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition text for these components; `labels` are added to every series (host, rank);
/// `unix_ms`, when given, is the timestamp of every sample.
pub fn render(
    t_s: f64,
    unix_ms: Option<u64>,
    components: &[LiveComponent],
    labels: &[(String, String)],
) -> String {
    let extra: String = labels
        .iter()
        .map(|(k, v)| format!(",{k}=\"{}\"", escape(v)))
        .collect();
    let ts = unix_ms.map_or(String::new(), |ms| format!(" {ms}"));
    let mut out = String::new();
    out +=
        "# HELP ea2p_energy_joules_total Energy of the component since ea2p started measuring.\n";
    out += "# TYPE ea2p_energy_joules_total counter\n";
    for c in components.iter().filter(|c| c.read) {
        let _ = writeln!(
            out,
            "ea2p_energy_joules_total{{component=\"{}\",kind=\"{}\",nested=\"{}\"{extra}}} {}{ts}",
            escape(&c.name),
            c.kind,
            c.nested,
            c.energy_j
        );
    }
    out +=
        "# HELP ea2p_power_watts Average power of the component over the last export interval.\n";
    out += "# TYPE ea2p_power_watts gauge\n";
    for c in components.iter().filter(|c| c.read) {
        let _ = writeln!(
            out,
            "ea2p_power_watts{{component=\"{}\",kind=\"{}\",nested=\"{}\"{extra}}} {}{ts}",
            escape(&c.name),
            c.kind,
            c.nested,
            c.power_w
        );
    }
    out += "# HELP ea2p_measuring_seconds Time since ea2p started measuring.\n";
    out += "# TYPE ea2p_measuring_seconds gauge\n";
    let _ = writeln!(
        out,
        "ea2p_measuring_seconds{{{}}} {t_s}{ts}",
        extra.trim_start_matches(',')
    );
    out
}

/// The exposition text of the `--per-cgroup` groups' attributed energy: one counter per
/// group and component, labelled `attributed` (neither measured nor estimated).
pub fn render_attributed(
    unix_ms: Option<u64>,
    groups: &[(String, Vec<(String, f64)>)],
    labels: &[(String, String)],
) -> String {
    if groups.is_empty() {
        return String::new();
    }
    let extra: String = labels
        .iter()
        .map(|(k, v)| format!(",{k}=\"{}\"", escape(v)))
        .collect();
    let ts = unix_ms.map_or(String::new(), |ms| format!(" {ms}"));
    let mut out = String::from(
        "# HELP ea2p_attributed_joules_total Energy of the component attributed to the cgroup (CPU time, allocation, resident memory; see the README).\n\
         # TYPE ea2p_attributed_joules_total counter\n",
    );
    for (group, comps) in groups {
        for (component, j) in comps {
            let _ = writeln!(
                out,
                "ea2p_attributed_joules_total{{component=\"{}\",cgroup=\"{}\",kind=\"attributed\"{extra}}} {j}{ts}",
                escape(component),
                escape(group)
            );
        }
    }
    out
}

/// Why a token file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// It cannot be opened or read.
    #[error("cannot read the token file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A directory, a FIFO, a device.
    #[error("the token file {0} is not a regular file")]
    NotAFile(PathBuf),
    /// Readable or writable by every user.
    #[error(
        "the token file {path} is {what} by every user (mode {mode:04o}), so anyone could \
         {verb} the token; make it private: chmod 600 {path} (or chmod 640 with the group of \
         the Prometheus server)"
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// "readable" or "writable".
        what: &'static str,
        /// "read" or "replace".
        verb: &'static str,
    },
    /// Larger than a token could be.
    #[error("the token file {0} is larger than {MAX_TOKEN_FILE} bytes; expected one token")]
    TooLarge(PathBuf),
    /// Too short to resist guessing, or empty.
    #[error(
        "the token in {path} has {len} characters, expected at least {MIN_TOKEN_LEN} (e.g. \
         `openssl rand -hex 32 > {path}`)"
    )]
    Short {
        /// The file.
        path: PathBuf,
        /// Its length after trimming whitespace.
        len: usize,
    },
    /// A character that cannot travel in an `Authorization` header.
    #[error(
        "the token in {0} holds a space, a control or a non-ASCII character; expected \
         printable ASCII (whitespace around it is ignored)"
    )]
    BadChar(PathBuf),
}

/// A bearer token that `/metrics` requires; its bytes never appear in `Debug`.
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({} bytes)", self.0.len())
    }
}

impl Token {
    /// Reads the token from `path` (whitespace around it ignored, as Prometheus'
    /// `credentials_file` does), refusing a file that every user may read or write.
    pub fn from_file(path: &Path) -> Result<Token, TokenError> {
        let read = |source| TokenError::Read {
            path: path.to_path_buf(),
            source,
        };
        // O_NONBLOCK: a FIFO is refused below instead of blocking the open.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)
            .map_err(read)?;
        let meta = f.metadata().map_err(read)?;
        if !meta.file_type().is_file() {
            return Err(TokenError::NotAFile(path.to_path_buf()));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o006 != 0 {
            let (what, verb) = if mode & 0o004 != 0 {
                ("readable", "read")
            } else {
                ("writable", "replace")
            };
            return Err(TokenError::Open {
                path: path.to_path_buf(),
                mode,
                what,
                verb,
            });
        }
        let mut bytes = Vec::new();
        f.take(MAX_TOKEN_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > MAX_TOKEN_FILE {
            return Err(TokenError::TooLarge(path.to_path_buf()));
        }
        let token = bytes.trim_ascii();
        if !token.iter().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::BadChar(path.to_path_buf()));
        }
        if token.len() < MIN_TOKEN_LEN {
            return Err(TokenError::Short {
                path: path.to_path_buf(),
                len: token.len(),
            });
        }
        Ok(Token(token.to_vec()))
    }

    /// True when `authorization` (the header's value) is `Bearer <this token>`; the scheme is
    /// case-insensitive (RFC 9110), the token compared in constant time.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some((scheme, credentials)) = authorization.and_then(|v| v.trim().split_once(' '))
        else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer")
            && constant_time_eq(credentials.trim().as_bytes(), &self.0)
    }
}

/// Equality whose time depends on the lengths only, never on where the bytes differ.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, e) in expected.iter().enumerate() {
        diff |= given.get(i).copied().unwrap_or(0) ^ e;
    }
    std::hint::black_box(diff) == 0
}

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct ExporterOptions {
    /// The address to bind.
    pub addr: SocketAddr,
    /// Labels added to every series (host, rank).
    pub labels: Vec<(String, String)>,
    /// How often the served values change.
    pub interval: Duration,
    /// The bearer token required, if any.
    pub token: Option<Token>,
}

impl ExporterOptions {
    /// Options serving `addr` with the defaults (1 s, no token, no labels).
    pub fn new(addr: SocketAddr) -> Self {
        ExporterOptions {
            addr,
            labels: Vec::new(),
            interval: DEFAULT_EXPORT_INTERVAL,
            token: None,
        }
    }

    /// What the user should know before serving: an interval shorter than the default, and a
    /// non-loopback address without a token, each widen who can read fine-grained readings.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.interval < DEFAULT_EXPORT_INTERVAL {
            w.push(format!(
                "warning: --export-interval {:?} is shorter than {:?}: whoever can reach \
                 {} can sample the energy counters {:.0} times a second, and fine-grained energy \
                 readings are a side channel (CVE-2020-8694, the reason energy_uj is root-only)",
                self.interval,
                DEFAULT_EXPORT_INTERVAL,
                self.addr,
                1.0 / self.interval.as_secs_f64()
            ));
        }
        if self.token.is_none() && !self.addr.ip().is_loopback() {
            w.push(format!(
                "warning: serving /metrics on {}, which is not loopback, without \
                 --prometheus-token-file: anyone who can reach it reads this machine's energy \
                 counters (CVE-2020-8694); give a token file (Prometheus: `authorization: \
                 {{credentials_file: F}}`) or bind 127.0.0.1",
                self.addr
            ));
        }
        w
    }
}

/// What `/metrics` serves until the next snapshot.
struct Snapshot {
    taken: Instant,
    t_s: f64,
    energies: Vec<f64>,
    text: String,
    /// No component read yet: no series, no value.
    empty: bool,
}

impl Snapshot {
    /// The monitor's totals now; power is the average since `previous` (the start for the
    /// first), so the gauge is no finer than the counter.
    fn take(
        monitor: &MonitorHandle,
        previous: Option<&Snapshot>,
        labels: &[(String, String)],
    ) -> Snapshot {
        let (t_s, mut comps) = monitor.current();
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let (t0, e0) = previous
            .filter(|p| !p.empty)
            .map_or((0.0, None), |p| (p.t_s, Some(&p.energies)));
        for (i, c) in comps.iter_mut().enumerate() {
            let before = e0.and_then(|e| e.get(i)).copied().unwrap_or(0.0);
            c.power_w = if t_s > t0 {
                ((c.energy_j - before) / (t_s - t0)).max(0.0)
            } else {
                0.0
            };
        }
        Snapshot {
            taken: Instant::now(),
            t_s,
            energies: comps.iter().map(|c| c.energy_j).collect(),
            text: render(t_s, Some(unix_ms), &comps, labels)
                + &render_attributed(Some(unix_ms), &monitor.attributed(), labels),
            empty: !comps.iter().any(|c| c.read),
        }
    }
}

/// The HTTP server on its own thread.
pub struct Exporter {
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Exporter {
    /// Binds `options.addr` and serves `/metrics` from `monitor` until [`Exporter::stop`].
    pub fn start(options: ExporterOptions, monitor: MonitorHandle) -> Result<Exporter, String> {
        let addr = options.addr;
        let server = tiny_http::Server::http(addr)
            .map_err(|e| format!("cannot serve Prometheus metrics on {addr}: {e}"))?;
        let addr = server.server_addr().to_ip().ok_or_else(|| {
            format!("cannot serve Prometheus metrics on {addr}: not an IP socket")
        })?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (server, stop) = (Arc::clone(&server), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("ea2p-prometheus".into())
                .spawn(move || serve(&server, &stop, &monitor, &options))
                .map_err(|e| format!("cannot start the Prometheus thread: {e}"))?
        };
        Ok(Exporter {
            server,
            stop,
            thread: Some(thread),
            addr,
        })
    }

    /// The address actually bound (port 0 picks a free one).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    server: &tiny_http::Server,
    stop: &AtomicBool,
    monitor: &MonitorHandle,
    options: &ExporterOptions,
) {
    let mut snapshot = Snapshot::take(monitor, None, &options.labels);
    while !stop.load(Ordering::Relaxed) {
        let interval = if snapshot.empty {
            FIRST_READING_POLL
        } else {
            options.interval
        };
        let due = snapshot.taken + interval;
        // Failed accepts come back as errors; the next request is unaffected.
        if let Ok(Some(request)) =
            server.recv_timeout(due.saturating_duration_since(Instant::now()))
        {
            respond(request, &snapshot.text, options.token.as_ref());
        }
        // Relative to the last snapshot: two that hold values are never closer than the
        // interval.
        if snapshot.taken.elapsed() >= interval {
            snapshot = Snapshot::take(monitor, Some(&snapshot), &options.labels);
        }
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

fn respond(request: tiny_http::Request, metrics: &str, token: Option<&Token>) {
    if let Some(token) = token {
        let given = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.as_str());
        if !token.accepts(given) {
            let response = tiny_http::Response::from_string(
                "unauthorized: send the bearer token (Prometheus: authorization: \
                 {credentials_file: F})\n",
            )
            .with_status_code(401)
            .with_header(header("WWW-Authenticate", "Bearer realm=\"ea2p\""));
            let _ = request.respond(response);
            return;
        }
    }
    let response = match (request.method(), request.url()) {
        (tiny_http::Method::Get, "/metrics") => tiny_http::Response::from_string(metrics)
            .with_header(header(
                "Content-Type",
                "text/plain; version=0.0.4; charset=utf-8",
            )),
        (tiny_http::Method::Get, "/") => {
            tiny_http::Response::from_string("ea2p: metrics at /metrics\n")
        }
        _ => tiny_http::Response::from_string("not found: metrics are at /metrics\n")
            .with_status_code(404),
    };
    let _ = request.respond(response);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("9100").unwrap().to_string(), "127.0.0.1:9100");
        assert_eq!(parse_addr(":9100").unwrap().to_string(), "127.0.0.1:9100");
        assert_eq!(
            parse_addr("0.0.0.0:9200").unwrap().to_string(),
            "0.0.0.0:9200"
        );
        assert_eq!(parse_addr("[::1]:9100").unwrap().to_string(), "[::1]:9100");
        assert!(parse_addr("nine").unwrap_err().contains("expected PORT"));
    }

    #[test]
    fn exposition_format() {
        let c = |name: &str, e: f64, p: f64, read: bool| LiveComponent {
            name: name.into(),
            kind: "measured",
            energy_j: e,
            power_w: p,
            nested: name.starts_with("core"),
            read,
        };
        let comps = [
            c("package-0", 12.5, 20.0, true),
            c("core-0", 3.0, 5.0, true),
            c("gpu-0", 0.0, 0.0, false),
        ];
        let labels = [("host".into(), "n\"1".into())];
        let text = render(2.5, None, &comps, &labels);
        assert!(text.contains("# TYPE ea2p_energy_joules_total counter\n"));
        assert!(text.contains(
            "ea2p_energy_joules_total{component=\"package-0\",kind=\"measured\",nested=\"false\",host=\"n\\\"1\"} 12.5\n"
        ), "{text}");
        assert!(text.contains("ea2p_power_watts{component=\"core-0\",kind=\"measured\",nested=\"true\",host=\"n\\\"1\"} 5\n"), "{text}");
        assert!(!text.contains("gpu-0"), "never read: no series");
        assert!(
            text.contains("ea2p_measuring_seconds{host=\"n\\\"1\"} 2.5\n"),
            "{text}"
        );
        let stamped = render(2.5, Some(1_700_000_000_123), &comps, &labels);
        assert!(
            stamped.contains("host=\"n\\\"1\"} 12.5 1700000000123\n"),
            "{stamped}"
        );
        assert!(
            stamped.contains("ea2p_measuring_seconds{host=\"n\\\"1\"} 2.5 1700000000123\n"),
            "{stamped}"
        );
    }

    fn token_file(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let p = dir.join(format!("token-{mode:o}-{}", text.len()));
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn tokens() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "0123456789abcdef0123";
        let t = Token::from_file(&token_file(dir.path(), &format!(" {secret}\n"), 0o600)).unwrap();
        assert!(t.accepts(Some(&format!("Bearer {secret}"))));
        assert!(t.accepts(Some(&format!("bearer  {secret} "))));
        assert!(!t.accepts(None));
        assert!(!t.accepts(Some(secret)));
        assert!(!t.accepts(Some(&format!("Basic {secret}"))));
        assert!(!t.accepts(Some(&format!("Bearer {secret}x"))));
        assert!(!t.accepts(Some(&format!("Bearer {}", &secret[1..]))));
        assert!(!t.accepts(Some("Bearer 0123456789abcdef012X")));
        assert!(!t.accepts(Some("Bearer ")));
        assert!(!format!("{t:?}").contains(secret));
        // Group-readable is how the Prometheus server's group gets it.
        assert!(Token::from_file(&token_file(dir.path(), secret, 0o640)).is_ok());
        let e = Token::from_file(&token_file(dir.path(), secret, 0o644)).unwrap_err();
        assert!(
            e.to_string().contains("readable by every user (mode 0644)")
                && e.to_string().contains("chmod 600"),
            "{e}"
        );
        let e = Token::from_file(&token_file(dir.path(), secret, 0o602)).unwrap_err();
        assert!(e.to_string().contains("writable by every user"), "{e}");
        let e = Token::from_file(&token_file(dir.path(), "short\n", 0o600)).unwrap_err();
        assert!(e.to_string().contains("5 characters"), "{e}");
        let e = Token::from_file(&token_file(dir.path(), "with a space in it", 0o600));
        assert!(matches!(e, Err(TokenError::BadChar(_))), "{e:?}");
        let e = Token::from_file(&token_file(dir.path(), &"x".repeat(5000), 0o600));
        assert!(matches!(e, Err(TokenError::TooLarge(_))), "{e:?}");
        assert!(matches!(
            Token::from_file(dir.path()),
            Err(TokenError::NotAFile(_))
        ));
        let e = Token::from_file(&dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("cannot read the token file"), "{e}");
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
        assert!(!constant_time_eq(b"", b"abc"));
    }

    #[test]
    fn warnings() {
        let mut o = ExporterOptions::new("127.0.0.1:9464".parse().unwrap());
        assert!(o.warnings().is_empty());
        o.interval = Duration::from_millis(100);
        let w = o.warnings();
        assert!(
            w.len() == 1 && w[0].contains("CVE-2020-8694") && w[0].contains("10 times"),
            "{w:?}"
        );
        o.interval = DEFAULT_EXPORT_INTERVAL;
        o.addr = "0.0.0.0:9464".parse().unwrap();
        let w = o.warnings();
        assert!(
            w.len() == 1 && w[0].contains("not loopback") && w[0].contains("token"),
            "{w:?}"
        );
        o.token = Some(Token(b"0123456789abcdef".to_vec()));
        assert!(o.warnings().is_empty());
    }
}
