//! `/metrics` in the Prometheus text format, on the administration listener only: HTTP requests
//! (`metrics`), bookings, the outbox, the relay, the room sockets, and the process's CPU, memory
//! and open files. Every label takes its values from a small fixed set, so the number of series
//! cannot grow with traffic; totals are the process's and never go down, the rest are gauges
//! read at each scrape. It reads the whole state: nothing but `app` imports it.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use exposition::{counter, gauge, header, Kind};

use crate::error::AppError;
use crate::metrics::process_figures;
use crate::state::AppState;

/// Prometheus text format (served on the administration listener only).
pub async fn show_metrics(State(st): State<AppState>) -> Result<Response, AppError> {
    let mut out = String::new();
    let name = "sportello_build_info";
    header(&mut out, name, "The running version", Kind::Gauge);
    let _ = writeln!(out, "{name}{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    gauge(
        &mut out,
        "process_start_time_seconds",
        "When the process started",
        st.started_at,
    );
    st.metrics.write(&mut out);
    let totals = st.store.totals();
    for (name, help, value) in [
        (
            "sportello_bookings_created_total",
            "Appointments booked, by citizens (pending until verified) or by the office",
            &totals.created,
        ),
        (
            "sportello_bookings_confirmed_total",
            "Appointments confirmed: verified, approved, or booked by the office",
            &totals.confirmed,
        ),
        (
            "sportello_bookings_cancelled_total",
            "Appointments cancelled by the citizen or the office",
            &totals.cancelled,
        ),
    ] {
        counter(&mut out, name, help, value.load(Ordering::Relaxed));
    }
    let (queued, oldest) = st.store.outbox_backlog(st.now()).await?;
    gauge(
        &mut out,
        "sportello_outbox_queued",
        "Emails not sent yet",
        queued,
    );
    gauge(
        &mut out,
        "sportello_outbox_oldest_queued_seconds",
        "How long the oldest email not sent yet has waited",
        oldest,
    );
    header(
        &mut out,
        "sportello_appointments",
        "Appointments in each status",
        Kind::Gauge,
    );
    // Every status, 0 included, so that a series does not appear out of nowhere.
    let counts = st.store.count_by_status().await?;
    for status in booking::Status::ALL {
        let n = counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(
            out,
            "sportello_appointments{{status=\"{}\"}} {n}",
            status.code()
        );
    }
    st.relay.stats.prometheus(&mut out);
    header(
        &mut out,
        "sportello_relay_reactor_rooms",
        "Rooms whose media each reactor thread runs",
        Kind::Gauge,
    );
    for (i, rooms) in st.relay.reactor_rooms().into_iter().enumerate() {
        let _ = writeln!(
            out,
            "sportello_relay_reactor_rooms{{reactor=\"{i}\"}} {rooms}"
        );
    }
    let (sockets, rooms) = st.hub.counts();
    gauge(
        &mut out,
        "sportello_room_sockets",
        "Open room WebSockets",
        sockets,
    );
    gauge(
        &mut out,
        "sportello_rooms",
        "Rooms with someone in them",
        rooms,
    );
    let (cpu, rss, fds) = process_figures();
    counter(
        &mut out,
        "process_cpu_seconds_total",
        "CPU time of the process",
        cpu,
    );
    gauge(
        &mut out,
        "process_resident_memory_bytes",
        "Resident memory",
        rss,
    );
    gauge(&mut out, "process_open_fds", "Open file descriptors", fds);
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
