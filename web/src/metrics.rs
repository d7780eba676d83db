//! `/metrics` in the Prometheus text format: what the relay forwards, the room sockets, and the
//! process's CPU, memory and open files. Answers only clients on this machine.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::state::AppState;

fn process_figures() -> (f64, u64, u64) {
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

/// Prometheus text format: the relay's counters per room, sockets and rooms, process CPU,
/// memory and open files. Answers only clients on this machine.
pub async fn metrics(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
) -> Result<Response, AppError> {
    if !st.limits.client_ip(peer, &headers).is_loopback() {
        return Err(AppError::Forbidden(
            "metrics are served to this machine only",
        ));
    }
    let mut out = String::new();
    st.relay.stats.prometheus(&mut out);
    let (sockets, rooms) = st.hub.counts();
    let (cpu, rss, fds) = process_figures();
    out.push_str(&format!(
        "# HELP sportello_room_sockets Open room WebSockets\n# TYPE sportello_room_sockets gauge\nsportello_room_sockets {sockets}\n\
         # HELP sportello_rooms Rooms with someone in them\n# TYPE sportello_rooms gauge\nsportello_rooms {rooms}\n\
         # HELP process_cpu_seconds_total CPU time of the process\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu}\n\
         # HELP process_resident_memory_bytes Resident memory\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}\n\
         # HELP process_open_fds Open file descriptors\n# TYPE process_open_fds gauge\nprocess_open_fds {fds}\n"
    ));
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
