//! Hostile clients while a normal one is served.
//!
//! `slow_and_silent_connections`: many connections that send their headers a line a second and
//! never finish them (slowloris), and room sockets that never say hello, each opened again as
//! soon as the server drops it, so that the server holds that many at every moment; meanwhile a
//! normal citizen books. What must hold: the server drops each slow connection at its header
//! timeout and each silent socket at its hello time (4408), the citizen is served throughout,
//! and at full size (release binary) the citizen's p99 stays under 100 ms.
//!
//! `login_flood`: 50 wrong passwords for one staff account at the same instant, then (at full
//! size) a flood of wrong passwords for it and for unknown emails. What must hold: the account
//! locks after exactly the configured number of failures (`staff::throttle::FREE_FAILURES` + 1:
//! exactly that many answers were checked before the lock, however many ran at once), the right
//! password is refused once locked, and a citizen's page keeps its p99 under 100 ms at full size.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use sqlx::Row;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{
    open_database, seed_busy_calendar, Attempt, Citizen, Figures, Latency, Seats, Sportello,
};
use crate::{fresh_database, test_now, Db};

pub struct SlowSize {
    /// Slow connections held at once, and room sockets that never say hello.
    pub slow: usize,
    pub silent: usize,
    /// How long the normal citizen books while they are held.
    pub hold: Duration,
    /// The server's header timeout and hello time, in seconds.
    pub header_timeout: u64,
    pub hello: u64,
    /// When given, the normal citizen's p99 must stay under it.
    pub p99_bound: Option<Duration>,
}

/// What the attackers saw: how long each connection lived, and how each socket was closed.
#[derive(Default)]
struct Held {
    lifetimes: Mutex<Vec<Duration>>,
    close_codes: Mutex<Vec<u16>>,
    open: AtomicUsize,
    peak: AtomicUsize,
    failed_connects: AtomicUsize,
}

impl Held {
    fn opened(&self) {
        let n = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(n, Ordering::Relaxed);
    }
    fn closed(&self, lived: Duration) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.lifetimes.lock().unwrap().push(lived);
    }
}

/// A slowloris client: starts a request, sends one more header line a second, never ends the
/// headers; when the server drops it, it connects again.
async fn slowloris(addr: SocketAddr, stop: Arc<AtomicBool>, held: Arc<Held>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(addr).await else {
            held.failed_connects.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let opened = Instant::now();
        held.opened();
        let _ = s
            .write_all(b"GET /servizi/1 HTTP/1.1\r\nHost: localhost\r\n")
            .await;
        let mut buf = [0u8; 1024];
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tokio::select! {
                r = s.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue, // a 408 before the close
                },
                _ = tick.tick() => {
                    if stop.load(Ordering::Relaxed) {
                        held.open.fetch_sub(1, Ordering::Relaxed);
                        return;
                    }
                    if s.write_all(b"X-Lento: 1\r\n").await.is_err() {
                        break;
                    }
                }
            }
        }
        held.closed(opened.elapsed());
    }
}

/// A room socket that never says hello; when the server closes it, another one.
async fn silent_socket(url: String, stop: Arc<AtomicBool>, held: Arc<Held>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else {
            held.failed_connects.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let opened = Instant::now();
        held.opened();
        let mut code = 0u16;
        loop {
            let next = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
            match next {
                Err(_) if stop.load(Ordering::Relaxed) => {
                    held.open.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
                Err(_) => continue,
                Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(f)))) => {
                    code = f.map_or(0, |f| u16::from(f.code));
                    // Until the server ends the connection.
                    while let Ok(Some(_)) =
                        tokio::time::timeout(Duration::from_secs(2), ws.next()).await
                    {
                    }
                    break;
                }
                Ok(Some(Ok(_))) => continue,
                Ok(_) => break,
            }
        }
        held.close_codes.lock().unwrap().push(code);
        held.closed(opened.elapsed());
    }
}

/// Slow connections and silent room sockets held while a normal citizen books.
pub async fn slow_and_silent_connections(bin: &Path, size: &SlowSize) -> anyhow::Result<Figures> {
    anyhow::ensure!(
        size.hold >= Duration::from_secs(size.header_timeout.max(size.hello) + 2),
        "the hold must outlast the header timeout and the hello time"
    );
    let files = super::raise_open_files_limit();
    let dir = tempfile::tempdir()?;
    let url = fresh_database(Db::Sqlite, dir.path())
        .await
        .expect("SQLite");
    seed_busy_calendar(&url).await?;
    let header_timeout = size.header_timeout.to_string();
    let hello = size.hello.to_string();
    // Every client here is 127.0.0.1: its share must hold them all, and the normal citizen.
    let per_client = (size.slow + size.silent + 100).to_string();
    let server = Sportello::start(
        bin,
        dir.path(),
        &url,
        test_now(),
        &[
            "--header-timeout-seconds",
            &header_timeout,
            "--room-hello-seconds",
            &hello,
            "--max-connections",
            "10000",
            "--max-connections-per-client",
            &per_client,
        ],
    )
    .await?;
    let seats = Seats::of(&server).await?;
    let citizen = Citizen::new(&server.base, seats.any()).await?;
    let (_, rss0, fds0) = crate::process::stat(server.pid());

    let stop = Arc::new(AtomicBool::new(false));
    let (slow, silent) = (Arc::new(Held::default()), Arc::new(Held::default()));
    let addr: SocketAddr = format!("127.0.0.1:{}", server.port).parse()?;
    let ws_url = format!("ws://127.0.0.1:{}/ws/stanza/SP-AAAA-BBBB", server.port);
    let mut tasks = Vec::new();
    // Opened over about two seconds, as a real attacker ramps up (and the listen backlog
    // allows), then held.
    let ramp = Duration::from_secs(2);
    let total = size.slow + size.silent;
    for i in 0..total {
        if i < size.slow {
            tasks.push(tokio::spawn(slowloris(addr, stop.clone(), slow.clone())));
        } else {
            tasks.push(tokio::spawn(silent_socket(
                ws_url.clone(),
                stop.clone(),
                silent.clone(),
            )));
        }
        if i % 50 == 49 {
            tokio::time::sleep(ramp / (total / 50).max(1) as u32).await;
        }
    }
    let ramped = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held_at_start = (
        slow.open.load(Ordering::Relaxed),
        silent.open.load(Ordering::Relaxed),
    );

    // The normal citizen: the booking form, then the booking, again and again.
    let mut normal: Vec<Attempt> = Vec::new();
    let mut peak_server = (0u64, 0usize);
    let mut n = 0;
    while ramped.elapsed() < size.hold {
        let start = seats.take().context("seats")?;
        normal.push(
            citizen
                .get(&format!("/servizi/1/prenota?inizio={start}"))
                .await,
        );
        normal.push(
            citizen
                .book(start, &format!("normale-{n}@example.it"))
                .await,
        );
        n += 1;
        let (_, rss, fds) = crate::process::stat(server.pid());
        peak_server = (peak_server.0.max(rss), peak_server.1.max(fds));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held_at_end = (
        slow.open.load(Ordering::Relaxed),
        silent.open.load(Ordering::Relaxed),
    );
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    // Their places are given back: the server's open files go back down.
    let back_down = super::wait_until(
        Duration::from_secs(size.header_timeout.max(size.hello) + 10),
        "the server's open files back down",
        || {
            let pid = server.pid();
            async move { Ok(crate::process::stat(pid).2 <= fds0 + 10) }
        },
    )
    .await?;

    let unserved: Vec<&Attempt> = normal
        .iter()
        .filter(|a| !matches!(a.status(), Some(200 | 303)))
        .collect();
    anyhow::ensure!(
        unserved.is_empty(),
        "the normal citizen was not served: {}",
        super::statuses(&unserved)
    );
    let lifetimes = slow.lifetimes.lock().unwrap().clone();
    let codes = silent.close_codes.lock().unwrap().clone();
    let ws_lifetimes = silent.lifetimes.lock().unwrap().clone();
    let slack = Duration::from_secs(3);
    anyhow::ensure!(
        lifetimes.len() >= size.slow,
        "only {} of {} slow connections were dropped by the server",
        lifetimes.len(),
        size.slow
    );
    let overdue = lifetimes
        .iter()
        .filter(|l| **l > Duration::from_secs(size.header_timeout) + slack)
        .count();
    anyhow::ensure!(
        overdue == 0,
        "{overdue} slow connections held longer than the header timeout"
    );
    anyhow::ensure!(
        codes.len() >= size.silent && codes.iter().all(|c| *c == 4408),
        "silent sockets: {} closed, codes {:?}",
        codes.len(),
        codes
            .iter()
            .filter(|c| **c != 4408)
            .take(5)
            .collect::<Vec<_>>()
    );
    let overdue = ws_lifetimes
        .iter()
        .filter(|l| **l > Duration::from_secs(size.hello) + slack)
        .count();
    anyhow::ensure!(
        overdue == 0,
        "{overdue} silent sockets held longer than the hello time"
    );
    let latency = Latency::of(normal.iter().map(|a| &a.latency));
    let bookings = Latency::of(
        normal
            .iter()
            .filter(|a| a.booked().is_some())
            .map(|a| &a.latency),
    );

    let mut f = Figures::new("4. Slow connections and silent room sockets while a citizen books");
    f.add(format!(
        "held {} slowloris connections (a header line a second, never finished) and {} room sockets that never say hello, each reopened once dropped; server caps: 10000 connections, {per_client} per client address; open files allowed {files}",
        size.slow, size.silent
    ));
    f.add(format!(
        "held at once: {} + {} after the ramp, {} + {} at the end (peak {} + {}); connection attempts refused or failed: {}",
        held_at_start.0,
        held_at_start.1,
        held_at_end.0,
        held_at_end.1,
        slow.peak.load(Ordering::Relaxed),
        silent.peak.load(Ordering::Relaxed),
        slow.failed_connects.load(Ordering::Relaxed) + silent.failed_connects.load(Ordering::Relaxed)
    ));
    f.add(format!(
        "slow connections dropped by the server: {} (header timeout {} s), each after {}",
        lifetimes.len(),
        size.header_timeout,
        Latency::of(&lifetimes)
    ));
    f.add(format!(
        "silent sockets closed with 4408: {} (hello time {} s), each after {}",
        codes.len(),
        size.hello,
        Latency::of(&ws_lifetimes)
    ));
    f.add(format!(
        "the normal citizen: {} bookings in {:.0} s, every request served; latency of all its requests {}; of the bookings {}",
        bookings.count,
        size.hold.as_secs_f64(),
        latency,
        bookings
    ));
    f.add(format!(
        "server: {} open files and {} MiB before, at most {} and {} MiB meanwhile; back to {} open files {:.1} s after the attack stopped",
        fds0,
        rss0 / 1024,
        peak_server.1,
        peak_server.0 / 1024,
        crate::process::stat(server.pid()).2,
        back_down.as_secs_f64()
    ));
    if let Some(bound) = size.p99_bound {
        anyhow::ensure!(
            latency.p99 < bound.as_secs_f64() * 1e3,
            "the normal citizen's p99 is {:.1} ms, over {} ms",
            latency.p99,
            bound.as_millis()
        );
    }
    Ok(f)
}

pub struct FloodSize {
    /// Wrong passwords sent at the same instant.
    pub parallel: usize,
    /// How long the flood goes on after that first burst (wrong passwords for the locked
    /// account and for unknown emails, `parallel` at a time).
    pub flood: Duration,
    /// When given, the citizen page's p99 must stay under it.
    pub p99_bound: Option<Duration>,
}

/// A browser on the staff login page: its cookie and CSRF token.
async fn login_browser(base: &str) -> anyhow::Result<(reqwest::Client, String)> {
    let client = crate::browser_client()
        .timeout(Duration::from_secs(120))
        .build()?;
    let csrf = crate::form_csrf(&client, &format!("{base}/ufficio/accesso")).await?;
    Ok((client, csrf))
}

async fn login(
    (client, csrf): &(reqwest::Client, String),
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<u16> {
    Ok(client
        .post(format!("{base}/ufficio/accesso"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await?
        .status()
        .as_u16())
}

/// Wrong staff passwords at once, and then a flood of them, while a citizen opens a page.
pub async fn login_flood(bin: &Path, size: &FloodSize) -> anyhow::Result<Figures> {
    let dir = tempfile::tempdir()?;
    let url = fresh_database(Db::Sqlite, dir.path())
        .await
        .expect("SQLite");
    seed_busy_calendar(&url).await?;
    let email = "responsabile@comune.esempio.it";
    // The first administrator, made as a town does it.
    let out = std::process::Command::new(bin)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--database-url", &url, "--secret-key", super::SECRET])
        .args(["admin", "create", "--email", email])
        .env("RUST_LOG", "error")
        .output()?;
    anyhow::ensure!(out.status.success(), "admin create: {out:?}");
    let password = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("provisional password: ").map(str::to_string))
        .context("no provisional password printed")?;
    let server = Sportello::start(bin, dir.path(), &url, test_now(), &[]).await?;
    let base = server.base.clone();

    // A citizen opens the service's page again and again meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let citizen = {
        let (stop, base) = (stop.clone(), base.clone());
        let seats = Seats::of(&server).await?;
        let c = Citizen::new(&base, seats.any()).await?;
        tokio::spawn(async move {
            let mut done = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                done.push(c.get("/servizi/1").await);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            done
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The burst: every guess waits at the barrier, then all are sent at once.
    let mut browsers = Vec::new();
    for _ in 0..size.parallel {
        browsers.push(Arc::new(login_browser(&base).await?));
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(size.parallel));
    let burst_started = Instant::now();
    let guesses: Vec<_> = browsers
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let (b, base, barrier) = (b.clone(), base.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let t = Instant::now();
                let status = login(&b, &base, email, &format!("sbagliata-{i}")).await;
                (status, t.elapsed())
            })
        })
        .collect();
    let mut burst = Vec::new();
    for g in guesses {
        burst.push(g.await?);
    }
    let burst_took = burst_started.elapsed();
    let not_401: Vec<_> = burst
        .iter()
        .filter(|(s, _)| !matches!(s, Ok(401)))
        .map(|(s, _)| format!("{s:?}"))
        .collect();
    anyhow::ensure!(
        not_401.is_empty(),
        "answers to wrong passwords: {not_401:?}"
    );
    // The lock: exactly FREE_FAILURES guesses were told "wrong" before it, the rest "locked".
    let log = server.log_text();
    let locked_lines = log
        .lines()
        .filter(|l| l.contains("staff login refused: account locked"))
        .count();
    let refused_lines = log
        .lines()
        .filter(|l| l.contains("staff login refused") && !l.contains("account locked"))
        .count();
    let free = staff::throttle::FREE_FAILURES as usize;
    anyhow::ensure!(
        refused_lines == free && locked_lines == size.parallel - free,
        "of {} guesses at once, {refused_lines} were checked as wrong before the lock and {locked_lines} refused as locked (expected {free} and {})",
        size.parallel,
        size.parallel - free,
    );

    // Then the flood goes on: for the locked account and for emails that have none.
    let flood_started = Instant::now();
    let flooded = Arc::new(AtomicUsize::new(0));
    let flooders: Vec<_> = browsers
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let (b, base, flooded) = (b.clone(), base.clone(), flooded.clone());
            let until = flood_started + size.flood;
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < until {
                    let who = if (i + n) % 2 == 0 {
                        email.to_string()
                    } else {
                        format!("nessuno-{i}-{n}@comune.esempio.it")
                    };
                    if login(&b, &base, &who, "ancora-sbagliata").await.is_ok() {
                        flooded.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                }
            })
        })
        .collect();
    for f in flooders {
        f.await?;
    }
    let flood_took = flood_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let page = citizen.await?;

    let pool = open_database(&url).await?;
    let row = sqlx::query("SELECT failed_logins, locked_until FROM account WHERE email = $1")
        .bind(email)
        .fetch_one(&pool)
        .await?;
    let failed: i64 = row.try_get("failed_logins")?;
    let locked_until: Option<i64> = row.try_get("locked_until")?;
    pool.close().await;
    let right = login(&login_browser(&base).await?, &base, email, &password).await?;
    anyhow::ensure!(
        failed > free as i64 && locked_until.is_some_and(|u| u > test_now().timestamp()),
        "account not locked: {failed} failures, locked until {locked_until:?}"
    );
    anyhow::ensure!(
        right == 401,
        "the right password on a locked account: {right}"
    );
    let unserved: Vec<&Attempt> = page.iter().filter(|a| a.status() != Some(200)).collect();
    anyhow::ensure!(
        unserved.is_empty(),
        "the citizen's page was not served: {}",
        super::statuses(&unserved)
    );
    let during: Vec<&Attempt> = page.iter().filter(|a| a.sent >= burst_started).collect();
    let latency = Latency::of(during.iter().map(|a| &a.latency));

    let mut f = Figures::new("5. Staff login flooded with wrong passwords");
    let burst_latency = Latency::of(burst.iter().map(|(_, l)| l));
    f.add(format!(
        "{} wrong passwords for one account at the same instant: all answered 401 within {:.2} s ({burst_latency})",
        size.parallel,
        burst_took.as_secs_f64()
    ));
    f.add(format!(
        "the lock: {refused_lines} guesses checked and refused before it (the configured {free} free failures), {locked_lines} refused as locked; failures counted in the database: {failed} (every guess that was checked); the right password is refused afterwards (401)"
    ));
    if !size.flood.is_zero() {
        f.add(format!(
            "then {:.0} s of flood, {} at a time, half for the locked account and half for unknown emails (argon2 still runs for those): {} more guesses answered ({:.0}/s)",
            flood_took.as_secs_f64(),
            size.parallel,
            flooded.load(Ordering::Relaxed),
            flooded.load(Ordering::Relaxed) as f64 / flood_took.as_secs_f64()
        ));
    }
    f.add(format!(
        "a citizen's page (/servizi/1) meanwhile: every request served, latency {latency}"
    ));
    if let Some(bound) = size.p99_bound {
        anyhow::ensure!(
            latency.p99 < bound.as_secs_f64() * 1e3,
            "the citizen's p99 is {:.1} ms, over {} ms",
            latency.p99,
            bound.as_millis()
        );
    }
    Ok(f)
}
