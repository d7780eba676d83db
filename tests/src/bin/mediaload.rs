//! `mediaload`: the media relay under load, with synthetic participants.
//!
//! It prepares a data folder with N confirmed video appointments at the same time, starts the
//! real server binary (release) on loopback with its clock at that time, and for each room runs
//! two synthetic participants: Rust `webrtc` clients that speak the same signaling as the
//! browsers and send realistic RTP — Opus-sized audio every 20 ms and ~1.5 Mbit/s of VP8-sized
//! video in frames of 30 per second, the first a keyframe five frames large (VP8's own header
//! bytes, so the relay keeps each sender's last keyframe as in a browser's call; its packets are
//! left out of the counts). Every payload carries its send time, so the receiver
//! measures the relay's added latency. It reports forwarded packets per second, server CPU per
//! forwarded packet (from /proc), loss (of the packets sent in the measured window, by the time
//! in their payload, those not received by a moment after the senders stop), latency, memory
//! per room and join time (socket open to
//! the first forwarded video packet). The latency is given twice: end to end as the
//! participants see it (their own scheduling included, which on a machine they share with the
//! relay is most of it), and inside the relay, from its transit histogram in `/metrics` (the
//! kernel's receipt of each datagram to the end of the send it produced; rtc engine), and with
//! `--wire-seconds N` a third time, on the wire: N seconds of the relay's port captured with
//! tcpdump, each forwarded packet matched with the one it came from (`tests::wire`). With
//! `--server-cpus` the server runs on those cores alone; run `mediaload` itself with `taskset`
//! on the others, so that the relay has its cores as in a deployment. With `--cycles N` it instead joins and leaves N times and
//! reports the server's open files and memory before and after (leak check).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use booking::token::{Purpose, Signer};
use clap::Parser;
use tests::media::{join, send_media, Counters};
use tests::process::{percentile_ms, stat as proc_stat};

#[derive(Parser)]
#[command(about = "Load on the media relay with synthetic WebRTC participants")]
struct Args {
    /// Rooms, each with two participants.
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Seconds of media after everyone joined.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Video bit rate per participant, kbit/s.
    #[arg(long, default_value_t = 1500)]
    video_kbps: u64,
    /// Join and leave this many times instead (leak check).
    #[arg(long)]
    cycles: Option<usize>,
    /// The relay's UDP address: port 0 gives each connection its own port, another port is one
    /// port shared by all.
    #[arg(long, default_value = "127.0.0.1:0")]
    media_udp: String,
    /// The server binary.
    #[arg(long, default_value = "target/release/sportello")]
    server: PathBuf,
    /// Serve through this many nodes on the PostgreSQL database `--database-url` (one that
    /// does not exist yet), behind Debian's nginx (round robin): each participant's socket
    /// reaches whichever node nginx gives it, and every room's media must flow through the
    /// node that holds the room.
    #[arg(long, default_value_t = 0)]
    nodes: usize,
    #[arg(long)]
    database_url: Option<String>,
    /// Pin every thread of the server to these cores (a `taskset` list, e.g. `1`).
    #[arg(long)]
    server_cpus: Option<String>,
    /// Also capture the relay's media port for this many seconds at the start of the window
    /// (Debian's `tcpdump`, as root; `--media-udp` on a loopback address with a port of its
    /// own) and report the relay's added latency on the wire: an RTP packet's arrival at the
    /// port to the packet forwarded from it leaving the port, both the kernel's timestamps.
    #[arg(long, default_value_t = 0)]
    wire_seconds: u64,
}

/// The secret the server (or every node) signs links with.
const SECRET: &str = tests::cluster::SECRET;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.wire_seconds > 0 {
        Capture::port(&args.media_udp)?;
    }
    tests::process::ServerProcess::require(&args.server)?;
    let rooms = if args.cycles.is_some() { 1 } else { args.rooms };
    let dir = tempfile::tempdir()?;
    // N video appointments at the same time on a calendar with room for them all.
    let signer = Signer::new(SECRET.as_bytes());
    let url = match (&args.database_url, args.nodes) {
        (Some(u), n) if n > 0 && u.starts_with("postgres") => {
            tests::create_database(u).await?;
            u.clone()
        }
        (_, 0) => format!("sqlite://{}/sportello.db", dir.path().display()),
        _ => anyhow::bail!("--nodes needs a PostgreSQL --database-url"),
    };
    let appts = tests::seed::video_rooms(&url, SECRET, rooms).await?;
    let slot_start = appts[0].start;
    let clock = slot_start.to_rfc3339();
    let extra = [
        "--secret-key",
        SECRET,
        "--media-udp",
        &args.media_udp,
        "--media-tcp",
        "off",
        "--worker-interval",
        "3600",
        "--start-clock-at",
        &clock,
    ];
    if args.nodes > 0 {
        return through_nodes(&args, &url, dir.path(), &appts, &signer, &extra).await;
    }
    let server = tests::process::ServerProcess::start(&args.server, dir.path(), &extra).await?;
    let (pid, base, admin) = (server.pid(), server.base.clone(), server.admin_base.clone());
    if let Some(cpus) = &args.server_cpus {
        let status = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", cpus, &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(
            status.success(),
            "taskset could not pin the server to {cpus}"
        );
    }
    let (_, rss0, fds0) = proc_stat(pid);
    let epoch = Instant::now();
    let counters = Arc::new(Counters::default());
    let result = run(
        &args,
        &base,
        &admin,
        &appts,
        &signer,
        &[pid],
        epoch,
        counters.clone(),
        (rss0, fds0),
    )
    .await;
    server.stop()?;
    result
}

#[allow(clippy::too_many_arguments)]
async fn run(
    args: &Args,
    base: &str,
    admin: &str,
    appts: &[booking::Appointment],
    signer: &Signer,
    pids: &[u32],
    epoch: Instant,
    counters: Arc<Counters>,
    (rss0, fds0): (u64, usize),
) -> anyhow::Result<()> {
    let ws = |code: &str| format!("{}/ws/stanza/{code}", base.replace("http://", "ws://"));
    // The servers' CPU seconds and memory, summed over their processes.
    let usage = || {
        pids.iter().fold((0.0, 0u64), |(cpu, rss), p| {
            let (c, r, _) = proc_stat(*p);
            (cpu + c, rss + r)
        })
    };
    if let Some(cycles) = args.cycles {
        let pid = pids[0];
        let a = &appts[0];
        let mut marks = HashMap::new();
        for i in 0..cycles {
            let p = join(
                &ws(&a.code),
                &signer.sign(Purpose::RoomCitizen, a.id),
                "Ciclo",
                counters.clone(),
                epoch,
            )
            .await
            .map_err(|e| anyhow::anyhow!("cycle {i}: {e}"))?;
            p.pc.close().await?;
            drop(p);
            if (i + 1) % 100 == 0 {
                let (_, rss, fds) = proc_stat(pid);
                println!(
                    "mediaload: after {} cycles: {fds} open files, {} MiB",
                    i + 1,
                    rss / 1024
                );
            }
            if i == 9 || i + 1 == cycles {
                tokio::time::sleep(Duration::from_secs(3)).await;
                marks.insert(i + 1, proc_stat(pid));
            }
        }
        let (_, rss10, fds10) = marks[&10];
        let (_, rss_end, fds_end) = marks[&cycles];
        println!("mediaload: {cycles} joins and leaves: server open files {fds0} at start, {fds10} after 10, {fds_end} after {cycles}; RSS {} MiB at start, {} MiB after 10, {} MiB after {cycles}", rss0 / 1024, rss10 / 1024, rss_end / 1024);
        // What the open files are, for a leak hunt.
        let mut kinds: HashMap<String, usize> = HashMap::new();
        for e in std::fs::read_dir(format!("/proc/{pid}/fd"))?.flatten() {
            let target = std::fs::read_link(e.path())
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            *kinds
                .entry(target.split(':').next().unwrap_or("").to_string())
                .or_default() += 1;
        }
        let count = |f: &str| {
            std::fs::read_to_string(format!("/proc/{pid}/net/{f}"))
                .map(|s| s.lines().count().saturating_sub(1))
                .unwrap_or(0)
        };
        println!("mediaload: server's open files by kind {kinds:?}; sockets in its namespace: udp {}, tcp {}", count("udp"), count("tcp"));
        let metrics = reqwest::get(format!("{admin}/metrics"))
            .await?
            .text()
            .await?;
        let open_pcs = metrics
            .lines()
            .find(|l| l.starts_with("sportello_relay_peer_connections "))
            .unwrap_or("?");
        println!("mediaload: the relay counts {open_pcs}");
        anyhow::ensure!(
            fds_end <= fds10 + 5,
            "open files grew: {fds10} -> {fds_end}"
        );
        return Ok(());
    }
    // Everyone joins and starts sending at once; the operator's join time is socket open to
    // the first forwarded video packet from the citizen, who is already in.
    let mut parts = Vec::new();
    let mut senders = Vec::new();
    let stop = Arc::new(Mutex::new(Instant::now() + Duration::from_secs(3600)));
    for a in appts {
        for (purpose, name) in [
            (Purpose::RoomCitizen, "Cittadino"),
            (Purpose::RoomOperator, "Operatore"),
        ] {
            let p = Arc::new(
                join(
                    &ws(&a.code),
                    &signer.sign(purpose, a.id),
                    name,
                    counters.clone(),
                    epoch,
                )
                .await?,
            );
            senders.push(tokio::spawn(send_media(
                p.clone(),
                counters.clone(),
                epoch,
                args.video_kbps,
                stop.clone(),
            )));
            parts.push(p);
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let transit = || async {
        let text = reqwest::get(format!("{admin}/metrics"))
            .await?
            .text()
            .await?;
        anyhow::Ok(tests::process::histogram(
            &text,
            "sportello_relay_transit_seconds",
        ))
    };
    let transit0 = transit().await?;
    let own0 = proc_stat(std::process::id()).0;
    let (cpu0, _) = usage();
    let (sent0, recv0) = (
        counters.sent.load(Ordering::Relaxed),
        counters.received.load(Ordering::Relaxed),
    );
    counters.latency_us.lock().unwrap().clear();
    counters.open_window(tests::media::now_us(epoch));
    let wire = if args.wire_seconds > 0 {
        let seconds = args.wire_seconds.min(args.seconds);
        let capture = Capture::start(&args.media_udp)?;
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let wire = capture.finish()?;
        tokio::time::sleep(Duration::from_secs(args.seconds - seconds)).await;
        Some((seconds, wire))
    } else {
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        None
    };
    counters.close_window(tests::media::now_us(epoch));
    let (cpu1, rss1) = usage();
    let own1 = proc_stat(std::process::id()).0;
    let (sent1, recv1) = (
        counters.sent.load(Ordering::Relaxed),
        counters.received.load(Ordering::Relaxed),
    );
    let transit1 = transit().await?;
    *stop.lock().unwrap() = Instant::now();
    for s in senders {
        let _ = s.await;
    }
    // Loss: of the packets sent in the window, those that had not arrived a moment after the
    // last was sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let window_sent = counters.sent_in_window.load(Ordering::Relaxed);
    let window_lost =
        window_sent.saturating_sub(counters.received_in_window.load(Ordering::Relaxed));
    let secs = args.seconds as f64;
    let (sent, recv) = (sent1 - sent0, recv1 - recv0);
    // Operators (every second participant) join a room where the citizen already sends.
    let mut joins: Vec<u64> = parts
        .iter()
        .skip(1)
        .step_by(2)
        .filter_map(|p| {
            p.first_video
                .lock()
                .unwrap()
                .map(|t| (t - p.joined_at).as_millis() as u64)
        })
        .collect();
    let mut lat = counters.latency_us.lock().unwrap().clone();
    println!(
        "mediaload: {} rooms x 2 participants, {} kbit/s video each, {} s: {:.0} packets/s sent, {:.0} forwarded packets/s received, loss {:.2} % ({} of {})",
        appts.len(), args.video_kbps, args.seconds, sent as f64 / secs, recv as f64 / secs, 100.0 * window_lost as f64 / window_sent.max(1) as f64, window_lost, window_sent
    );
    println!(
        "mediaload: server CPU {:.2} s = {:.0} % of one core: {:.1} µs per forwarded packet; RSS {} MiB -> {} MiB ({:.0} KiB per room)",
        cpu1 - cpu0, 100.0 * (cpu1 - cpu0) / secs, (cpu1 - cpu0) * 1e6 / recv.max(1) as f64, rss0 / 1024, rss1 / 1024, (rss1.saturating_sub(rss0)) as f64 / appts.len() as f64
    );
    println!(
        "mediaload: added latency (send to receive through the relay) p50 {:.2} ms, p99 {:.2} ms",
        percentile_ms(&mut lat, 0.5),
        percentile_ms(&mut lat, 0.99)
    );
    println!(
        "mediaload: the participants' own CPU (this process) {:.0} % of one core",
        100.0 * (own1 - own0) / secs
    );
    let in_relay = |q| tests::process::histogram_quantile(&transit0, &transit1, q);
    match (in_relay(0.5), in_relay(0.99)) {
        (Some(p50), Some(p99)) => println!(
            "mediaload: time in the relay (kernel receipt to sent, its /metrics) p50 {:.2} ms, p99 {:.2} ms",
            p50 * 1e3,
            p99 * 1e3
        ),
        _ => println!("mediaload: time in the relay: not counted by this engine"),
    }
    if let Some((seconds, (lat, dropped))) = wire {
        match (lat.quantile_ms(0.5), lat.quantile_ms(0.99), lat.quantile_ms(0.999)) {
            (Some(p50), Some(p99), Some(p999)) => println!(
                "mediaload: added latency on the wire (tcpdump, {seconds} s: arrival at the relay's port to the forwarded packet leaving it) p50 {p50:.2} ms, p99 {p99:.2} ms, p99.9 {p999:.2} ms, max {:.2} ms; {} of {} packets out matched ({} sent again from the relay's history), {} in; {dropped} dropped by the capture",
                lat.added_ns.last().copied().unwrap_or(0) as f64 / 1e6,
                lat.added_ns.len(),
                lat.outbound,
                lat.repeats,
                lat.inbound,
            ),
            _ => anyhow::bail!(
                "the capture matched no forwarded packet ({} in, {} out)",
                lat.inbound,
                lat.outbound
            ),
        }
    }
    println!("mediaload: join time (socket open to first forwarded video packet) p50 {:.0} ms, max {:.0} ms", percentile_ms(&mut joins.iter().map(|j| j * 1000).collect::<Vec<_>>(), 0.5), joins.iter().max().copied().unwrap_or(0));
    joins.clear();
    let silent = parts
        .iter()
        .filter(|p| p.first_video.lock().unwrap().is_none())
        .count();
    println!("mediaload: participants who received no video: {silent}");
    anyhow::ensure!(silent == 0, "{silent} participants received no video");
    for p in parts {
        let _ = p.pc.close().await;
    }
    Ok(())
}

/// `--nodes N`: the rooms through N nodes behind nginx.
async fn through_nodes(
    args: &Args,
    url: &str,
    dir: &std::path::Path,
    appts: &[booking::Appointment],
    signer: &Signer,
    extra: &[&str],
) -> anyhow::Result<()> {
    // The nodes' own flags: their secret is the cluster's, their clock the rooms' time, and
    // each its own media ports (`cluster::spawn_node`).
    let clock = appts[0].start.to_rfc3339();
    let flags: Vec<&str> = extra
        .chunks(2)
        .filter(|f| {
            !matches!(
                f[0],
                "--secret-key" | "--start-clock-at" | "--media-udp" | "--media-tcp"
            )
        })
        .flatten()
        .copied()
        .collect();
    let cluster =
        tests::cluster::Cluster::start(&args.server, url, args.nodes, &clock, dir, &flags).await;
    let pids: Vec<u32> = cluster
        .nodes
        .iter()
        .filter_map(|(c, _)| c.as_ref().map(|c| c.id()))
        .collect();
    let (rss0, fds0) = pids.iter().fold((0, 0), |(r, f), p| {
        let (_, rss, fds) = proc_stat(*p);
        (r + rss, f + fds)
    });
    let counters = Arc::new(Counters::default());
    let admin = format!("http://127.0.0.1:{}", cluster.nodes[0].1 .1);
    // Where the rooms are while the media flows: the busiest of the samples taken every second.
    let admins: Vec<u16> = cluster.nodes.iter().map(|(_, (_, adm))| *adm).collect();
    let busiest = Arc::new(Mutex::new((0u64, Vec::<String>::new())));
    let probe = {
        let busiest = busiest.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let mut lines = Vec::new();
                let mut rooms = 0u64;
                for adm in &admins {
                    let h = tests::cluster::health(*adm).await;
                    rooms += tests::cluster::health_count(&h, "rooms served here").unwrap_or(0);
                    lines.push(h.lines().skip(1).collect::<Vec<_>>().join(", "));
                }
                let mut b = busiest.lock().unwrap();
                if rooms >= b.0 {
                    *b = (rooms, lines);
                }
            }
        })
    };
    let outcome = run(
        args,
        &cluster.base,
        &admin,
        appts,
        signer,
        &pids,
        Instant::now(),
        counters,
        (rss0, fds0),
    )
    .await;
    probe.abort();
    for line in &busiest.lock().unwrap().1 {
        println!("mediaload: during the calls: {line}");
    }
    outcome
}

/// `tcpdump` on the relay's media port, into a file in memory (`/dev/shm`) when there is one.
struct Capture {
    child: std::process::Child,
    said: std::io::BufReader<std::process::ChildStderr>,
    file: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Capture {
    /// The port to capture: `--media-udp`'s, refused unless on loopback with a port of its own.
    fn port(media_udp: &str) -> anyhow::Result<u16> {
        match media_udp.parse::<std::net::SocketAddr>() {
            Ok(a) if a.port() != 0 && a.ip().is_loopback() => Ok(a.port()),
            _ => anyhow::bail!(
                "--wire-seconds needs --media-udp on a loopback address with a port, e.g. 127.0.0.1:47000"
            ),
        }
    }

    fn start(media_udp: &str) -> anyhow::Result<Capture> {
        let port = Capture::port(media_udp)?;
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm")?
        } else {
            tempfile::tempdir()?
        };
        let file = dir.path().join("wire.pcap");
        let port_arg = port.to_string();
        let mut child = std::process::Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-s", "0", "-B", "262144", "-Z", "root"])
            .args(["--time-stamp-precision", "nano", "-w"])
            .arg(&file)
            .args(["udp", "port", &port_arg])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!("--wire-seconds needs tcpdump (apt-get install tcpdump): {e}")
            })?;
        // tcpdump says "listening on lo" once it captures (or why it cannot).
        let mut said = std::io::BufReader::new(child.stderr.take().expect("piped"));
        let mut first = String::new();
        std::io::BufRead::read_line(&mut said, &mut first)?;
        anyhow::ensure!(
            first.contains("listening on"),
            "tcpdump did not start capturing: {first}"
        );
        Ok(Capture {
            child,
            said,
            file,
            port,
            _dir: dir,
        })
    }

    /// Stops the capture; the added latency, and the packets the kernel dropped from it.
    fn finish(mut self) -> anyhow::Result<(tests::wire::Latency, u64)> {
        // SIGINT: tcpdump writes out what it holds and its counts.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let mut said = String::new();
        std::io::Read::read_to_string(&mut self.said, &mut said)?;
        self.child.wait()?;
        let dropped = said
            .lines()
            .find(|l| l.contains("dropped by kernel"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("tcpdump did not capture: {said}"))?;
        let bytes = std::fs::read(&self.file)?;
        let seen = tests::wire::rtp_packets(&bytes, self.port).map_err(anyhow::Error::msg)?;
        Ok((tests::wire::added_latency(&seen), dropped))
    }
}
