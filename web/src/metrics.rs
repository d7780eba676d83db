//! `/metrics` in the Prometheus text format: what the relay forwards, the room sockets, and the
//! process's CPU, memory and open files. Answers only clients on this machine.

use axum::extract::State;
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
pub async fn metrics(State(st): State<AppState>) -> Result<Response, AppError> {
    let mut out = String::new();
    let metric = |out: &mut String, name: &str, kind: &str, help: &str| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    };
    metric(
        &mut out,
        "sportello_build_info",
        "gauge",
        "The running version",
    );
    out.push_str(&format!(
        "sportello_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    ));
    metric(
        &mut out,
        "process_start_time_seconds",
        "gauge",
        "When the process started",
    );
    out.push_str(&format!("process_start_time_seconds {}\n", st.started_at));
    let (queued, oldest) = st.store.outbox_backlog(st.now()).await?;
    metric(
        &mut out,
        "sportello_outbox_queued",
        "gauge",
        "Emails not sent yet",
    );
    out.push_str(&format!("sportello_outbox_queued {queued}\n"));
    metric(
        &mut out,
        "sportello_outbox_oldest_queued_seconds",
        "gauge",
        "How long the oldest email not sent yet has waited",
    );
    out.push_str(&format!(
        "sportello_outbox_oldest_queued_seconds {oldest}\n"
    ));
    metric(
        &mut out,
        "sportello_appointments",
        "gauge",
        "Appointments in each status",
    );
    for (status, n) in st.store.count_by_status().await? {
        out.push_str(&format!(
            "sportello_appointments{{status=\"{}\"}} {n}\n",
            status.code()
        ));
    }
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
