//! `roomload`: how many waiting sockets one `sportello` process holds, what each costs in
//! memory, and how fast the room answers (countdown or admission) while they are all open.
//!
//! It prepares a data folder with the demo comune and one confirmed video appointment a week
//! ahead, starts the real server binary on a loopback port, opens N WebSockets that each
//! present the room token (every one is answered with a countdown: the room is not open yet)
//! and keeps them open. It reports the server's resident memory per socket and the latency of
//! the answer, measured on every socket again once all N are open, and on fresh sockets opened
//! then (connect, handshake, hello, answer).
//!
//! `--burst`: the top of the hour. N video appointments all start at 9:00; each citizen's
//! socket is open on the countdown minutes before (as the page keeps it), and when the room
//! opens every one of them says `hello` again, spread over `--within-ms`, and is let in
//! (`ready`, with its ICE servers). It reports the answers' latency and fails above
//! `--max-p99-ms`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use booking::token::{Purpose, Signer};
use booking::{Actor, Limits};
use chrono::Utc;
use clap::Parser;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(about = "Concurrent waiting sockets and answer latency of the room signaling")]
struct Args {
    /// Sockets to open and keep open.
    #[arg(long, default_value_t = 10_000)]
    sockets: usize,
    /// The server binary (build it with `cargo build --release --bin sportello`).
    #[arg(long, default_value = "target/release/sportello")]
    server: PathBuf,
    /// Sockets opened at the same time while ramping up.
    #[arg(long, default_value_t = 200)]
    batch: usize,
    /// The top of the hour: `--sockets` appointments at one time, each citizen's socket saying
    /// hello again when the room opens.
    #[arg(long)]
    burst: bool,
    /// With --burst: the hellos are spread over this many milliseconds (0: all at once).
    #[arg(long, default_value_t = 1000)]
    within_ms: u64,
    /// With --burst: fail when the answers' p99 is above this.
    #[arg(long, default_value_t = 50.0)]
    max_p99_ms: f64,
}

const SECRET: &str = "roomload-secret-roomload-secret-roomload-0";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn hello(ws: &mut Socket, token: &str) -> anyhow::Result<()> {
    answer_to_hello(ws, token, "countdown").await
}

/// Says hello and waits for the answer of type `expected`.
async fn answer_to_hello(ws: &mut Socket, token: &str, expected: &str) -> anyhow::Result<()> {
    ws.send(Message::text(format!(
        r#"{{"type":"hello","v":1,"token":"{token}"}}"#
    )))
    .await?;
    let expected = format!("\"type\":\"{expected}\"");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains(&expected) => return Ok(()),
            Some(Ok(Message::Text(t))) => anyhow::bail!("unexpected answer {t}"),
            Some(Ok(_)) => continue,
            other => anyhow::bail!("socket ended: {other:?}"),
        }
    }
}

/// The top of the hour (see the crate doc).
async fn burst(args: &Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let signer = Signer::new(SECRET.as_bytes());
    let url = format!("sqlite://{}/sportello.db", dir.path().display());
    let appts = tests::seed::video_rooms(&url, SECRET, args.sockets).await?;
    let start = appts[0].start;
    let rooms: Vec<(String, String)> = appts
        .into_iter()
        .map(|a| (a.code, signer.sign(Purpose::RoomCitizen, a.id)))
        .collect();
    // The server's clock starts `lead` before the citizens' room opens (five minutes before
    // the start): time to open every socket on the countdown.
    let lead = Duration::from_secs(20);
    let opens = start - chrono::Duration::minutes(5);
    let clock = (opens - chrono::Duration::from_std(lead)?).to_rfc3339();
    let server = tests::process::ServerProcess::start(
        &args.server,
        dir.path(),
        &["--secret-key", SECRET, "--start-clock-at", &clock],
    )
    .await?;
    let started = Instant::now();
    let ws_base = format!("ws://127.0.0.1:{}/ws/stanza", server.port);
    let mut open = Vec::with_capacity(rooms.len());
    for chunk in rooms.chunks(args.batch) {
        let batch = futures::future::join_all(chunk.iter().map(|(code, token)| {
            let url = format!("{ws_base}/{code}");
            async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(&url).await?;
                hello(&mut ws, token).await?;
                anyhow::Ok(ws)
            }
        }))
        .await;
        for ws in batch {
            open.push(ws?);
        }
    }
    anyhow::ensure!(
        started.elapsed() < lead,
        "opening the sockets took longer than the lead"
    );
    println!(
        "roomload: {} citizens waiting on the countdown ({:.1} s to open); the room opens in {:.1} s",
        open.len(),
        started.elapsed().as_secs_f64(),
        (lead - started.elapsed()).as_secs_f64()
    );
    // Half a second after the opening (the server's clock started a little before `started`),
    // each socket, in its own task, says hello at its moment of the window.
    let t0 = tokio::time::Instant::from_std(started + lead + Duration::from_millis(500));
    let tasks: Vec<_> = open
        .into_iter()
        .zip(rooms)
        .map(|(mut ws, (_, token))| {
            let at = t0 + Duration::from_millis(rand::random::<u64>() % args.within_ms.max(1));
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                let sent = Instant::now();
                answer_to_hello(&mut ws, &token, "ready").await?;
                anyhow::Ok((sent.elapsed().as_secs_f64() * 1e3, ws))
            })
        })
        .collect();
    tokio::time::sleep_until(t0).await;
    let cpu0 = tests::process::stat(server.pid()).0;
    let mut lat = Vec::with_capacity(tasks.len());
    let mut keep = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (ms, ws) = t.await??;
        lat.push(ms);
        keep.push(ws);
    }
    let cpu = tests::process::stat(server.pid()).0 - cpu0;
    let (p50, p99, max) = (
        tests::process::percentile(&mut lat, 0.5),
        tests::process::percentile(&mut lat, 0.99),
        tests::process::percentile(&mut lat, 1.0),
    );
    println!(
        "roomload: burst of {} hellos within {} ms at the opening, each let in: p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms; server CPU {cpu:.2} s",
        lat.len(),
        args.within_ms
    );
    drop(keep);
    server.stop()?;
    anyhow::ensure!(
        p99 <= args.max_p99_ms,
        "p99 {p99:.2} ms is above {} ms",
        args.max_p99_ms
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tests::process::ServerProcess::require(&args.server)?;
    if args.burst {
        return burst(&args).await;
    }
    let dir = tempfile::tempdir()?;
    // The data: demo comune, one confirmed video appointment a week ahead.
    let signer = Signer::new(SECRET.as_bytes());
    let store = tests::seed::open_store(
        &format!("sqlite://{}/sportello.db", dir.path().display()),
        SECRET,
        Limits::default(),
    )
    .await?;
    booking::demo::seed_if_empty(&store).await?;
    let service = store.service(4).await?;
    let slot = store
        .free_slots(&service, Utc::now() + chrono::Duration::days(7))
        .await?
        .into_iter()
        .find(|s| s.offers(booking::Mode::Video))
        .ok_or_else(|| anyhow::anyhow!("no video slot"))?;
    let b = tests::seed::video_booking(4, slot.start, "Prova", "carico@example.it");
    let a = store.book(&b, Actor::Office, None, Utc::now()).await?;
    let token = Arc::new(signer.sign(Purpose::RoomCitizen, a.id));
    drop(store);

    let server =
        tests::process::ServerProcess::start(&args.server, dir.path(), &["--secret-key", SECRET])
            .await?;
    let (pid, port) = (server.pid(), server.port);
    let url = format!("ws://127.0.0.1:{port}/ws/stanza/{}", a.code);
    // Warm up (allocator, first connections), then the baseline.
    for _ in 0..50 {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await?;
        hello(&mut ws, &token).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = tests::process::stat(pid).1;

    println!(
        "roomload: opening {} sockets ({} at a time)",
        args.sockets, args.batch
    );
    let mut open: Vec<Socket> = Vec::with_capacity(args.sockets);
    let ramp = Instant::now();
    while open.len() < args.sockets {
        let n = args.batch.min(args.sockets - open.len());
        let batch = futures::future::join_all((0..n).map(|_| {
            let (url, token) = (url.clone(), token.clone());
            async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(&url).await?;
                hello(&mut ws, &token).await?;
                anyhow::Ok(ws)
            }
        }))
        .await;
        for ws in batch {
            open.push(ws?);
        }
    }
    let ramp_s = ramp.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1 = tests::process::stat(pid).1;

    // Every open socket asks again: the answer's latency with all of them open.
    let mut again = Vec::with_capacity(open.len());
    for chunk in open.chunks_mut(args.batch) {
        let lat = futures::future::join_all(chunk.iter_mut().map(|ws| {
            let token = token.clone();
            async move {
                let t0 = Instant::now();
                hello(ws, &token)
                    .await
                    .map(|_| t0.elapsed().as_secs_f64() * 1e3)
            }
        }))
        .await;
        for l in lat {
            again.push(l?);
        }
    }
    // Fresh sockets while all are open: connect + handshake + hello + answer.
    let mut fresh = Vec::new();
    for _ in 0..200 {
        let t0 = Instant::now();
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await?;
        hello(&mut ws, &token).await?;
        fresh.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    // Still alive after heartbeats have gone round.
    tokio::time::sleep(Duration::from_secs(16)).await;
    let mut alive = 0;
    for ws in open.iter_mut().take(100) {
        if hello(ws, &token).await.is_ok() {
            alive += 1;
        }
    }
    let per_socket = (rss1.saturating_sub(rss0)) as f64 / args.sockets as f64;
    println!("roomload: {} sockets open in {ramp_s:.1} s; server RSS {} MiB -> {} MiB: {per_socket:.1} KiB per waiting socket", open.len(), rss0 / 1024, rss1 / 1024);
    println!(
        "roomload: answer to hello with {} sockets open: p50 {:.2} ms, p99 {:.2} ms",
        open.len(),
        tests::process::percentile(&mut again, 0.5),
        tests::process::percentile(&mut again, 0.99)
    );
    println!("roomload: new socket (connect, handshake, hello, answer) with {} open: p50 {:.2} ms, p99 {:.2} ms", open.len(), tests::process::percentile(&mut fresh, 0.5), tests::process::percentile(&mut fresh, 0.99));
    println!("roomload: {alive}/100 sampled sockets still answering after 16 s of heartbeats");
    drop(open);
    server.stop()?;
    anyhow::ensure!(alive == 100, "sockets were dropped");
    Ok(())
}
