//! What `/metrics` (`admin`) says of the HTTP requests — by route group, method and status class,
//! and their durations — counted by the `track` layer (written with `exposition`), and the
//! process's CPU, memory and open files.
//!
//! Every label takes its values from a small fixed set (a route group, never a raw path; a
//! status class, never a code), so the number of series cannot grow with traffic. Totals are
//! the process's and never go down; the rest are gauges read at each scrape.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use exposition::{counter, header, Histogram, Kind};

/// The groups of pages requests are counted by: a fixed set, whatever the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteGroup {
    /// The catalogue: home, offices, services, free slots, language.
    Catalogue,
    /// Booking, and the links from the emails (verify, manage, receipt).
    Booking,
    /// The office console (`/ufficio`).
    Console,
    /// The video room's page.
    Room,
    /// The video room's WebSocket (counted when it opens).
    RoomSocket,
    Static,
    /// `/healthz`, `/readyz`.
    Health,
    /// Paths that match no page (404).
    Unmatched,
}

impl RouteGroup {
    const ALL: [RouteGroup; 8] = [
        RouteGroup::Catalogue,
        RouteGroup::Booking,
        RouteGroup::Console,
        RouteGroup::Room,
        RouteGroup::RoomSocket,
        RouteGroup::Static,
        RouteGroup::Health,
        RouteGroup::Unmatched,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RouteGroup::Catalogue => "catalogue",
            RouteGroup::Booking => "booking",
            RouteGroup::Console => "console",
            RouteGroup::Room => "room",
            RouteGroup::RoomSocket => "room_socket",
            RouteGroup::Static => "static",
            RouteGroup::Health => "health",
            RouteGroup::Unmatched => "unmatched",
        }
    }

    /// The group of a route, from the route's pattern (`/servizi/{id}/prenota`), or
    /// `Unmatched` when no route matched.
    pub fn of(matched: Option<&str>) -> RouteGroup {
        let Some(p) = matched else {
            return RouteGroup::Unmatched;
        };
        let under = |prefix: &str| p == prefix || p.starts_with(&format!("{prefix}/"));
        if under("/ufficio") {
            RouteGroup::Console
        } else if under("/ws") {
            RouteGroup::RoomSocket
        } else if under("/stanza") {
            RouteGroup::Room
        } else if under("/static") {
            RouteGroup::Static
        } else if p == "/healthz" || p == "/readyz" {
            RouteGroup::Health
        } else if p.ends_with("/prenota")
            || ["/conferma", "/inviata", "/prenotazione"]
                .iter()
                .any(|g| under(g))
        {
            RouteGroup::Booking
        } else {
            RouteGroup::Catalogue
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|g| *g == self).unwrap_or(0)
    }
}

/// CONNECT is how a room socket opens over HTTP/2 (RFC 8441); GET, over HTTP/1.1.
const METHODS: [&str; 5] = ["GET", "HEAD", "POST", "CONNECT", "other"];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Upper bounds of the duration histogram's buckets, in microseconds (5 ms to 10 s; `+Inf`
/// follows).
const DURATION_BOUNDS_US: [u64; 11] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];
const GROUPS: usize = RouteGroup::ALL.len();

fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::CONNECT => 3,
        _ => 4,
    }
}

/// The process's counters that the web layer keeps: HTTP requests and the outbox's sends.
#[derive(Debug)]
pub struct Metrics {
    requests: [[[AtomicU64; STATUS_CLASSES.len()]; METHODS.len()]; GROUPS],
    /// Per group, how long requests took.
    durations: [Histogram; GROUPS],
    /// Emails handed to the SMTP server (or the local mailbox).
    pub outbox_sent: AtomicU64,
    /// Attempts that failed (each is tried again later).
    pub outbox_failed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Default::default(),
            durations: std::array::from_fn(|_| Histogram::new(&DURATION_BOUNDS_US)),
            outbox_sent: AtomicU64::new(0),
            outbox_failed: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe(&self, group: RouteGroup, method: &Method, status: u16, took: Duration) {
        let g = group.index();
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.requests[g][method_index(method)][class].fetch_add(1, Ordering::Relaxed);
        self.durations[g].observe(took.as_micros().try_into().unwrap_or(u64::MAX));
    }

    /// The HTTP and outbox series in the text format.
    pub(crate) fn write(&self, out: &mut String) {
        let name = "sportello_http_requests_total";
        header(out, name, "HTTP requests answered on the public listener, by route group, method and status class", Kind::Counter);
        for (g, group) in RouteGroup::ALL.iter().enumerate() {
            for (m, method) in METHODS.iter().enumerate() {
                for (c, class) in STATUS_CLASSES.iter().enumerate() {
                    let n = self.requests[g][m][c].load(Ordering::Relaxed);
                    if n > 0 {
                        let _ = writeln!(
                            out,
                            "{name}{{route=\"{}\",method=\"{method}\",status=\"{class}\"}} {n}",
                            group.label()
                        );
                    }
                }
            }
        }
        let name = "sportello_http_request_duration_seconds";
        header(out, name, "Time to answer an HTTP request on the public listener (to the response's head), by route group", Kind::Histogram);
        for (group, durations) in RouteGroup::ALL.iter().zip(&self.durations) {
            if durations.count() > 0 {
                durations.write(out, name, &format!("route=\"{}\"", group.label()));
            }
        }
        counter(
            out,
            "sportello_outbox_sent_total",
            "Emails sent (to the SMTP server, or kept in the local mailbox)",
            self.outbox_sent.load(Ordering::Relaxed),
        );
        counter(
            out,
            "sportello_outbox_failed_total",
            "Email sending attempts that failed (each email is tried again later)",
            self.outbox_failed.load(Ordering::Relaxed),
        );
    }
}

/// Middleware of the public router: counts each request by its route group, method and status
/// class, and its duration.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let group = RouteGroup::of(req.extensions().get::<MatchedPath>().map(|m| m.as_str()));
    let method = req.method().clone();
    let started = Instant::now();
    let response = next.run(req).await;
    metrics.observe(
        group,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

pub(crate) fn process_figures() -> (f64, u64, u64) {
    // CPU seconds (user + system) from /proc/self/stat; resident memory and open files.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let cpu = (ticks(11) + ticks(12)) as f64 / 100.0;
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    (cpu, rss, fds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_fall_in_a_fixed_set_of_groups() {
        for (pattern, group) in [
            (Some("/"), RouteGroup::Catalogue),
            (Some("/servizi/{id}"), RouteGroup::Catalogue),
            (Some("/api/servizi/{id}/orari"), RouteGroup::Catalogue),
            (Some("/servizi/{id}/prenota"), RouteGroup::Booking),
            (Some("/conferma/{token}"), RouteGroup::Booking),
            (Some("/prenotazione/{token}/annulla"), RouteGroup::Booking),
            (Some("/inviata/{token}"), RouteGroup::Booking),
            (Some("/ufficio"), RouteGroup::Console),
            (
                Some("/ufficio/appuntamenti/{id}/{action}"),
                RouteGroup::Console,
            ),
            (Some("/stanza/{token}"), RouteGroup::Room),
            (Some("/ws/stanza/{code}"), RouteGroup::RoomSocket),
            (Some("/static/{*path}"), RouteGroup::Static),
            (Some("/readyz"), RouteGroup::Health),
            (None, RouteGroup::Unmatched),
        ] {
            assert_eq!(RouteGroup::of(pattern), group, "{pattern:?}");
        }
    }

    #[test]
    fn a_request_counts_once_by_class_and_its_duration_in_cumulative_buckets() {
        let m = Metrics::default();
        m.observe(
            RouteGroup::Booking,
            &Method::POST,
            303,
            Duration::from_millis(30),
        );
        m.observe(
            RouteGroup::Booking,
            &Method::PUT,
            404,
            Duration::from_secs(20),
        );
        let mut out = String::new();
        m.write(&mut out);
        for line in [
            "sportello_http_requests_total{route=\"booking\",method=\"POST\",status=\"3xx\"} 1",
            "sportello_http_requests_total{route=\"booking\",method=\"other\",status=\"4xx\"} 1",
            "sportello_http_request_duration_seconds_bucket{route=\"booking\",le=\"0.025\"} 0",
            "sportello_http_request_duration_seconds_bucket{route=\"booking\",le=\"0.05\"} 1",
            "sportello_http_request_duration_seconds_bucket{route=\"booking\",le=\"10\"} 1",
            "sportello_http_request_duration_seconds_bucket{route=\"booking\",le=\"+Inf\"} 2",
            "sportello_http_request_duration_seconds_count{route=\"booking\"} 2",
            "sportello_outbox_sent_total 0",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
        }
        assert!(!out.contains("route=\"console\""), "unused groups stay out");
    }
}
