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
use crate::media::{join, offer_and_fail, Counters, Failing, Participant};
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

/// A video room open on a server of its own: one video appointment on a calendar of video
/// calls, the server's clock at its start, started with `extra` flags (its media's among them),
/// the operator in with media up.
struct Call {
    _dir: tempfile::TempDir,
    server: Sportello,
    /// The room socket's address, and the citizen's room token.
    ws: String,
    citizen_token: String,
    operator: Participant,
    counters: Arc<Counters>,
    epoch: Instant,
}

impl Call {
    async fn open(bin: &Path, extra: &[&str]) -> anyhow::Result<Call> {
        let dir = tempfile::tempdir()?;
        let url = fresh_database(Db::Sqlite, dir.path())
            .await
            .expect("SQLite");
        let signer = Signer::new(super::SECRET.as_bytes());
        let a = super::seed_one_video_appointment(&url, "maria.rossi@example.it").await?;
        let server = Sportello::start(bin, dir.path(), &url, a.start, extra).await?;
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
        Ok(Call {
            _dir: dir,
            server,
            ws,
            citizen_token: signer.sign(Purpose::RoomCitizen, a.id),
            operator,
            counters,
            epoch,
        })
    }

    /// The citizen joins the call, media up.
    async fn citizen_joins(&self) -> anyhow::Result<Participant> {
        join(
            &self.ws,
            &self.citizen_token,
            "Cittadina",
            self.counters.clone(),
            self.epoch,
        )
        .await
    }
}

/// Connections the relay gave up on, not connected in time; and connections lost after they
/// were up.
const NEVER_CONNECTED: &str =
    "sportello_relay_connections_failed_total{reason=\"never_connected\"}";
const LOST: &str = "sportello_relay_connections_failed_total{reason=\"lost\"}";

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
    let call = Call::open(bin, &["--media-udp", "127.0.0.1:0", "--media-tcp", "off"]).await?;
    let pid = call.server.pid();
    let (_, rss0, fds0) = stat(pid);
    let mut joins = Vec::new();
    let mut warm = (0, 0);
    let started = Instant::now();
    for i in 0..size.cycles {
        let t = Instant::now();
        let p = call
            .citizen_joins()
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
    let connections = metric(&call.server, "sportello_relay_peer_connections").await?;
    let sockets = metric(&call.server, "sportello_room_sockets").await?;
    call.operator.leave().await?;

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
    let log = call.server.log_text();
    let stack: Vec<&str> = log.lines().filter(|l| from_webrtc_stack(l)).collect();
    anyhow::ensure!(
        stack.is_empty(),
        "{} lines from the WebRTC stack in the server's log at its default level, e.g. {:?}",
        stack.len(),
        &stack[..stack.len().min(3)]
    );

    let mut f = Figures::new("6. Joins and leaves through the media relay");
    f.add(format!(
        "{} times a citizen joined a video room (socket, hello, join, WebRTC to the relay) where the call.operator waits, and left; {:.1} s in all",
        size.cycles,
        took.as_secs_f64()
    ));
    f.add(format!(
        "join time (socket open to media connected): {}",
        Latency::of(&joins)
    ));
    f.add(format!(
        "call.server open files: {fds0} with the call.operator in, {fds_warm} after {} joins, {fds_end} after {} (bound: +{})",
        size.warm_up, size.cycles, size.files_bound
    ));
    f.add(format!(
        "call.server resident memory: {:.1} MiB with the call.operator in, {:.1} MiB after {} joins, {:.1} MiB after {} (bound: +{} MiB)",
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
        "call.server log at its default level: {} lines, none from the WebRTC stack",
        log.lines().count()
    ));
    Ok(f)
}

/// A citizen's browser that offers and never reaches the relay (a firewall letting no media
/// through), on the media engine `engine` (`rtc` or `webrtc`), while the operator is in the
/// call: the relay closes that connection as failed at its deadline (`sfu::failure`), tells the
/// citizen's socket, counts it on `/metrics` and says so in the log at the default level,
/// naming no address; the operator's connection stays; the citizen's next join connects.
pub async fn never_connected(bin: &Path, engine: &str, how: Failing) -> anyhow::Result<Figures> {
    let call = Call::open(
        bin,
        &[
            "--media-udp",
            "127.0.0.1:0",
            "--media-tcp",
            "off",
            "--media-engine",
            engine,
        ],
    )
    .await?;
    let mut gone = offer_and_fail(&call.ws, &call.citizen_token, "Cittadina", how).await?;
    let answered = Instant::now();
    let deadline = sfu::failure::CONNECT_DEADLINE;
    let before = gone
        .media_state("failed", deadline + Duration::from_secs(5))
        .await?;
    let failed_after = answered.elapsed();
    anyhow::ensure!(
        failed_after + Duration::from_millis(500) >= deadline,
        "failed after {failed_after:?}, before its deadline of {deadline:?}"
    );
    let failures = metric(&call.server, NEVER_CONNECTED).await?;
    let connections = metric(&call.server, "sportello_relay_peer_connections").await?;
    anyhow::ensure!(
        failures == 1.0 && connections == 1.0,
        "after the failure: {failures} failed connections counted (1 expected), {connections} open (the operator's only expected)"
    );
    let log = call.server.log_text();
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("a media connection did not connect in time"))
        .collect();
    anyhow::ensure!(
        warned.len() == 1 && warned[0].contains("WARN") && warned[0].contains("citizen"),
        "expected one warning naming the citizen's side, got {warned:?}"
    );
    anyhow::ensure!(
        !warned[0].contains("127.0.0.1"),
        "the warning names an address: {}",
        warned[0]
    );
    gone.leave().await;

    // The citizen tries again, and gets through.
    let t = Instant::now();
    let citizen = call.citizen_joins().await?;
    let rejoined = t.elapsed();
    let connections_after = metric(&call.server, "sportello_relay_peer_connections").await?;
    let failures_after = metric(&call.server, NEVER_CONNECTED).await?;
    let lost = metric(&call.server, LOST).await?;
    anyhow::ensure!(
        connections_after == 2.0 && failures_after == 1.0 && lost == 0.0,
        "after the citizen's next join: {connections_after} open connections (2 expected), {failures_after} never connected (still 1 expected), {lost} lost (0 expected)"
    );
    citizen.leave().await?;
    call.operator.leave().await?;

    let mut f = Figures::new(format!(
        "8. A media connection that never connects: {how:?} ({engine} engine)"
    ));
    f.add(format!(
        "media states told to its socket: {} then failed, {:.1} s after the answer (deadline {} s)",
        if before.is_empty() {
            "nothing".to_string()
        } else {
            before.join(", ")
        },
        failed_after.as_secs_f64(),
        deadline.as_secs()
    ));
    f.add(format!(
        "/metrics: {failures} failed connection, {connections} open (the operator's); the log's warning: {:?}",
        strip_colours(warned[0])
            .split_once(" WARN ")
            .map_or("", |(_, w)| w)
    ));
    f.add(format!(
        "the citizen's next join connected in {:.0} ms",
        rejoined.as_secs_f64() * 1e3
    ));
    Ok(f)
}

/// Packets to and from a UDP port on loopback dropped by iptables, until dropped.
struct Blackhole(Vec<Vec<String>>);

impl Blackhole {
    fn port(port: u16) -> anyhow::Result<Blackhole> {
        let rules: Vec<Vec<String>> = ["--dport", "--sport"]
            .iter()
            .map(|dir| {
                [
                    "INPUT",
                    "-i",
                    "lo",
                    "-p",
                    "udp",
                    dir,
                    &port.to_string(),
                    "-j",
                    "DROP",
                ]
                .map(String::from)
                .to_vec()
            })
            .collect();
        let mut added = Blackhole(Vec::new());
        for r in rules {
            let ok = std::process::Command::new("iptables")
                .arg("-I")
                .args(&r)
                .status()?
                .success();
            anyhow::ensure!(ok, "iptables -I {} (needs root)", r.join(" "));
            added.0.push(r);
        }
        Ok(added)
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        for r in &self.0 {
            let _ = std::process::Command::new("iptables")
                .arg("-D")
                .args(r)
                .status();
        }
    }
}

/// Both people in a call on the media engine `engine`, then every packet to and from the
/// relay's media port dropped (iptables, so root), as when a network goes away mid-call: the
/// relay's ICE fails on both connections (consent checks unanswered), each counts once on
/// `/metrics` as `lost` and is a warning naming its side and no address. About 30 s (the ICE
/// agent's disconnected and failed timeouts): in the `faults` tool only.
pub async fn lost(bin: &Path, engine: &str) -> anyhow::Result<Figures> {
    let port = crate::free_port();
    let media = format!("127.0.0.1:{port}");
    let call = Call::open(
        bin,
        &[
            "--media-udp",
            &media,
            "--media-tcp",
            "off",
            "--media-engine",
            engine,
        ],
    )
    .await?;
    let citizen = call.citizen_joins().await?;
    let dropped = Instant::now();
    let hole = Blackhole::port(port)?;
    let mut lost = 0.0;
    while lost < 2.0 {
        anyhow::ensure!(
            dropped.elapsed() < Duration::from_secs(60),
            "{lost} connections counted as lost 60 s after the network went (2 expected)"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        lost = metric(&call.server, LOST).await?;
    }
    let took = dropped.elapsed();
    drop(hole);
    let never = metric(&call.server, NEVER_CONNECTED).await?;
    let log = call.server.log_text();
    let warned: Vec<String> = log
        .lines()
        .filter(|l| l.contains("a media connection failed (ICE lost)"))
        .map(strip_colours)
        .collect();
    anyhow::ensure!(
        lost == 2.0 && never == 0.0,
        "{lost} lost (2 expected), {never} never connected (0 expected)"
    );
    anyhow::ensure!(
        warned.len() == 2
            && warned.iter().any(|l| l.contains("citizen"))
            && warned.iter().any(|l| l.contains("operator"))
            && warned.iter().all(|l| !l.contains("127.0.0.1")),
        "expected a warning for each side, with no address: {warned:?}"
    );
    let _ = citizen.leave().await;
    let _ = call.operator.leave().await;
    let mut f = Figures::new(format!(
        "9. The network gone mid-call, both sides ({engine} engine)"
    ));
    f.add(format!(
        "both connections counted as lost {:.1} s after their packets stopped",
        took.as_secs_f64()
    ));
    f.add(format!(
        "the log's warnings: {:?}",
        warned
            .iter()
            .map(|l| l.split_once(" WARN ").map_or("", |(_, w)| w))
            .collect::<Vec<_>>()
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
