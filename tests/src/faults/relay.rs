//! Joins and leaves through the media relay: an operator waits in a video room with media up,
//! and a citizen joins (room socket, hello, join, offer/answer, ICE, DTLS: a real WebRTC
//! connection to the relay, `crate::media`) and leaves, again and again. What must hold: every
//! join connects, and the server's open files and resident memory stay flat — after a warm-up,
//! they grow by no more than a small bound however many joins follow — and at the end the relay
//! holds only the operator's connection. The server's log, at its default level, has no line
//! from the WebRTC protocol stack (several a call otherwise, warnings included, some naming the
//! participants' addresses).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use booking::token::{Purpose, Signer};

use super::{Figures, Latency, Sportello};
use crate::media::{join, Counters};
use crate::process::stat;
use crate::{fresh_database, Db};

pub struct Size {
    /// Joins and leaves in all; figures are taken after `warm_up` of them and at the end.
    pub cycles: usize,
    pub warm_up: usize,
    /// How much the open files and the resident memory may grow after the warm-up.
    pub files_bound: usize,
    pub memory_bound_mib: u64,
}

/// One value of the server's `/metrics` (on its administration listener).
async fn metric(server: &Sportello, name: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{}/metrics", server.admin_base))
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no {name} in /metrics"))
}

pub async fn joins_and_leaves(bin: &Path, size: &Size) -> anyhow::Result<Figures> {
    anyhow::ensure!(size.warm_up < size.cycles, "warm-up within the cycles");
    let dir = tempfile::tempdir()?;
    let url = fresh_database(Db::Sqlite, dir.path())
        .await
        .expect("SQLite");
    // One video appointment on a calendar of video calls.
    let signer = Signer::new(super::SECRET.as_bytes());
    let a = super::seed_one_video_appointment(&url, "maria.rossi@example.it").await?;

    // The server's clock at the start of the appointment: the room is open.
    let server = Sportello::start(
        bin,
        dir.path(),
        &url,
        a.start,
        &["--media-udp", "127.0.0.1:0", "--media-tcp", "off"],
    )
    .await?;
    let pid = server.pid();
    let ws = format!("ws://127.0.0.1:{}/ws/stanza/{}", server.port, a.code);
    let counters = Arc::new(Counters::default());
    let epoch = Instant::now();
    let operator = join(
        &ws,
        &signer.sign(Purpose::RoomOperator, a.id),
        "Operatore",
        counters.clone(),
        epoch,
    )
    .await?;
    let (_, rss0, fds0) = stat(pid);
    let citizen_token = signer.sign(Purpose::RoomCitizen, a.id);
    let mut joins = Vec::new();
    let mut warm = (0, 0);
    let started = Instant::now();
    for i in 0..size.cycles {
        let t = Instant::now();
        let p = join(&ws, &citizen_token, "Cittadina", counters.clone(), epoch)
            .await
            .map_err(|e| anyhow::anyhow!("join {}: {e}", i + 1))?;
        joins.push(t.elapsed());
        p.leave().await?;
        if i + 1 == size.warm_up {
            // Closed connections are let go a moment after the leave.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let (_, rss, fds) = stat(pid);
            warm = (rss, fds);
        }
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, rss_end, fds_end) = stat(pid);
    let connections = metric(&server, "sportello_relay_peer_connections").await?;
    let sockets = metric(&server, "sportello_room_sockets").await?;
    operator.leave().await?;

    let (rss_warm, fds_warm) = warm;
    anyhow::ensure!(
        fds_end <= fds_warm + size.files_bound,
        "open files grew from {fds_warm} after {} joins to {fds_end} after {}",
        size.warm_up,
        size.cycles
    );
    anyhow::ensure!(
        rss_end <= rss_warm + size.memory_bound_mib * 1024,
        "resident memory grew from {} MiB after {} joins to {} MiB after {}",
        rss_warm / 1024,
        size.warm_up,
        rss_end / 1024,
        size.cycles
    );
    anyhow::ensure!(
        connections == 1.0 && sockets == 1.0,
        "left open: {connections} relay connections and {sockets} room sockets (only the operator's should be)"
    );
    let log = server.log_text();
    let stack: Vec<&str> = log.lines().filter(|l| from_webrtc_stack(l)).collect();
    anyhow::ensure!(
        stack.is_empty(),
        "{} lines from the WebRTC stack in the server's log at its default level, e.g. {:?}",
        stack.len(),
        &stack[..stack.len().min(3)]
    );

    let mut f = Figures::new("6. Joins and leaves through the media relay");
    f.add(format!(
        "{} times a citizen joined a video room (socket, hello, join, WebRTC to the relay) where the operator waits, and left; {:.1} s in all",
        size.cycles,
        took.as_secs_f64()
    ));
    f.add(format!(
        "join time (socket open to media connected): {}",
        Latency::of(&joins)
    ));
    f.add(format!(
        "server open files: {fds0} with the operator in, {fds_warm} after {} joins, {fds_end} after {} (bound: +{})",
        size.warm_up, size.cycles, size.files_bound
    ));
    f.add(format!(
        "server resident memory: {:.1} MiB with the operator in, {:.1} MiB after {} joins, {:.1} MiB after {} (bound: +{} MiB)",
        rss0 as f64 / 1024.0,
        rss_warm as f64 / 1024.0,
        size.warm_up,
        rss_end as f64 / 1024.0,
        size.cycles,
        size.memory_bound_mib
    ));
    f.add(format!(
        "left open at the end: {connections} relay connection and {sockets} room socket (the operator's)"
    ));
    f.add(format!(
        "server log at its default level: {} lines, none from the WebRTC stack",
        log.lines().count()
    ));
    Ok(f)
}

/// Whether a line of the server's text log comes from the WebRTC protocol stack: after the time
/// and the level (colours aside), its target, a module path ending in `:` (a span's name and
/// fields may come before it), is in one of the crates the server keeps to their errors
/// (`web::config::WEBRTC_STACK`).
fn from_webrtc_stack(line: &str) -> bool {
    let plain = strip_colours(line);
    let mut words = plain.split_whitespace().skip(1);
    let level = words.next().unwrap_or("");
    matches!(level, "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR")
        && words
            .find(|w| w.ends_with(':') && w.contains("::"))
            .is_some_and(|target| {
                web::config::WEBRTC_STACK
                    .iter()
                    .any(|stack| target.starts_with(stack))
            })
}

/// `line` without its terminal colour codes (ESC `[` … `m`).
fn strip_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::from_webrtc_stack;

    /// Lines as the server writes them (colours included), from the stack and from its own code.
    #[test]
    fn the_stacks_lines_are_told_from_the_servers_own() {
        let stack = [
            "\u{1b}[2m2026-12-06T20:20:42.951894Z\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m \u{1b}[2mrtc_dtls::config\u{1b}[0m\u{1b}[2m:\u{1b}[0m conn.remote_addr is empty",
            "2026-12-06T20:52:55.650589Z  INFO rtc::peer_connection::transport::ice: Ignoring remote candidate with tcpType active: tcp4 host 192.0.2.2:9",
            "2026-12-06T20:52:55.650589Z ERROR webrtc::peer_connection::driver: Failed to bind UDP",
            "2026-12-06T20:52:55.650589Z  WARN quinn_udp::imp: sendmsg error",
        ];
        for line in stack {
            assert!(from_webrtc_stack(line), "{line}");
        }
        let own = [
            "\u{1b}[2m2026-12-06T20:20:43.004230Z\u{1b}[0m \u{1b}[34mDEBUG\u{1b}[0m \u{1b}[2msfu::direct::worker\u{1b}[0m\u{1b}[2m:\u{1b}[0m connection state",
            "2026-12-06T20:20:42.786181Z  INFO http{method=GET path=/stanza/:token}: tower_http::trace::on_response: finished processing request latency=6 ms status=200",
            "2026-12-06T20:20:42.786181Z  INFO web::app: listening on 127.0.0.1:8080 (the rtc:: engine)",
            "",
        ];
        for line in own {
            assert!(!from_webrtc_stack(line), "{line}");
        }
    }
}
