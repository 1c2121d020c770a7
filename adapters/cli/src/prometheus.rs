//! Live metrics for Prometheus: per-component energy (a counter, joules) and power (a gauge,
//! watts) in the text exposition format 0.0.4, served at `/metrics` from the monitor's live
//! totals (no hardware access on a scrape).

use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::monitor::{LiveComponent, MonitorHandle};

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

/// The exposition text for these components; `labels` are added to every series (host, rank).
pub fn render(t_s: f64, components: &[LiveComponent], labels: &[(String, String)]) -> String {
    let extra: String = labels
        .iter()
        .map(|(k, v)| format!(",{k}=\"{}\"", escape(v)))
        .collect();
    let mut out = String::new();
    out +=
        "# HELP ea2p_energy_joules_total Energy of the component since ea2p started measuring.\n";
    out += "# TYPE ea2p_energy_joules_total counter\n";
    for c in components.iter().filter(|c| c.read) {
        let _ = writeln!(
            out,
            "ea2p_energy_joules_total{{component=\"{}\",kind=\"{}\",nested=\"{}\"{extra}}} {}",
            escape(&c.name),
            c.kind,
            c.nested,
            c.energy_j
        );
    }
    out += "# HELP ea2p_power_watts Latest power of the component.\n";
    out += "# TYPE ea2p_power_watts gauge\n";
    for c in components.iter().filter(|c| c.read) {
        let _ = writeln!(
            out,
            "ea2p_power_watts{{component=\"{}\",kind=\"{}\",nested=\"{}\"{extra}}} {}",
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
        "ea2p_measuring_seconds{{{}}} {t_s}",
        extra.trim_start_matches(',')
    );
    out
}

/// The HTTP server on its own thread.
pub struct Exporter {
    server: Arc<tiny_http::Server>,
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
    /// Binds `addr` and serves `/metrics` from `monitor` until [`Exporter::stop`].
    pub fn start(
        addr: SocketAddr,
        monitor: MonitorHandle,
        labels: Vec<(String, String)>,
    ) -> Result<Exporter, String> {
        let server = tiny_http::Server::http(addr)
            .map_err(|e| format!("cannot serve Prometheus metrics on {addr}: {e}"))?;
        let addr = server.server_addr().to_ip().ok_or_else(|| {
            format!("cannot serve Prometheus metrics on {addr}: not an IP socket")
        })?;
        let server = Arc::new(server);
        let thread = {
            let server = Arc::clone(&server);
            std::thread::Builder::new()
                .name("ea2p-prometheus".into())
                .spawn(move || serve(&server, &monitor, &labels))
                .map_err(|e| format!("cannot start the Prometheus thread: {e}"))?
        };
        Ok(Exporter {
            server,
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
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(server: &tiny_http::Server, monitor: &MonitorHandle, labels: &[(String, String)]) {
    for request in server.incoming_requests() {
        let response = match (request.method(), request.url()) {
            (tiny_http::Method::Get, "/metrics") => {
                let (t, comps) = monitor.current();
                tiny_http::Response::from_string(render(t, &comps, labels)).with_header(
                    tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        &b"text/plain; version=0.0.4; charset=utf-8"[..],
                    )
                    .expect("a valid header"),
                )
            }
            (tiny_http::Method::Get, "/") => {
                tiny_http::Response::from_string("ea2p: metrics at /metrics\n")
            }
            _ => tiny_http::Response::from_string("not found: metrics are at /metrics\n")
                .with_status_code(404),
        };
        let _ = request.respond(response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let text = render(
            2.5,
            &[
                c("package-0", 12.5, 20.0, true),
                c("core-0", 3.0, 5.0, true),
                c("gpu-0", 0.0, 0.0, false),
            ],
            &[("host".into(), "n\"1".into())],
        );
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
    }
}
