//! The faults suite (issue 12, "Faults, with figures"): the real `sportello` binary killed in
//! the middle of a booking load, cut off from its SMTP server, from its PostgreSQL, held by
//! slow and silent connections, flooded with wrong staff passwords, greylisted by its SMTP
//! relay, put through a thousand room joins, and offered a media connection that never
//! connects; each scenario checks what must survive and measures how it went.
//!
//! Every scenario is one async function taking its sizes, so that the very same code runs small
//! in the test suite (`tests/tests/faults.rs`, against the debug binary, checking behaviour)
//! and at the size in the `faults` tool (`scripts/faults`, against the release binary,
//! checking the latency bounds as well). Each returns its figures as lines for people.
//!
//! This file holds what the scenarios share: the server process (started, killed, started
//! again on the same data), the busy calendar they book, a citizen's booking client, a booking
//! load of many clients, and latency percentiles. Every server runs with its clock started at
//! the tests' "today" (`crate::test_now`), never the real date.

pub mod crash;
pub mod database;
pub mod hostile;
pub mod mail;
pub mod relay;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use booking::token::{Purpose, Signer};
use chrono::{DateTime, Utc};
use rand::seq::SliceRandom;

/// The servers' secret key: the suite reads appointment ids back from the links it is given.
pub const SECRET: &str = "faults-secret-faults-secret-faults-secret-0";
/// The sender of every email; Message-IDs are `<outbox-ID@comune.esempio.it>`.
pub const MAIL_FROM: &str = "Comune di Esempio <noreply@comune.esempio.it>";
/// Seats of each 5-minute slot of the busy calendar.
pub const SEATS: i64 = 5;

/// A scenario's figures: a title and lines for people.
pub struct Figures {
    pub title: String,
    pub lines: Vec<String>,
}

impl Figures {
    pub fn new(title: impl Into<String>) -> Figures {
        Figures {
            title: title.into(),
            lines: Vec::new(),
        }
    }

    pub fn add(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== {}", self.title)?;
        for l in &self.lines {
            writeln!(f, "   {l}")?;
        }
        Ok(())
    }
}

/// The binary the test suite runs: `SPORTELLO_BIN`, else the debug `sportello` of this target
/// folder (the test executable's grandparent folder; `cargo test --workspace` and `cargo test
/// -p web` build it).
pub fn test_binary() -> PathBuf {
    if let Some(b) = std::env::var_os("SPORTELLO_BIN") {
        return PathBuf::from(b);
    }
    let exe = std::env::current_exe().expect("the test executable");
    // target/debug/deps/faults-HASH -> target/debug/sportello
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("sportello"))
        .expect("a target folder");
    assert!(
        bin.exists(),
        "{} is missing: `cargo build --bin sportello` first (or set SPORTELLO_BIN)",
        bin.display()
    );
    bin
}

/// Lets this process (and the servers it starts, which inherit it) open as many files as the
/// system allows: a scenario holds thousands of sockets on each side. Returns the limit.
pub fn raise_open_files_limit() -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return 0;
        }
        if l.rlim_cur < l.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: l.rlim_max,
                rlim_max: l.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    l.rlim_cur
}

/// The machine, for the figures: cores, memory, load average now.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!(
        "{cores} cores, {mem_gib:.0} GiB, load average {}",
        load_average()
    )
}

/// /proc/loadavg's three averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One `sportello` process over a data folder and database, on a loopback port with plain HTTP.
/// It can be killed (SIGKILL, no goodbye) and started again on the same data, port and flags.
/// Its log (at the server's own default level, as deployed: RUST_LOG is not passed on) goes to
/// `server.log` in the data folder. Killed on drop.
pub struct Sportello {
    child: Option<Child>,
    bin: PathBuf,
    args: Vec<String>,
    pub port: u16,
    pub base: String,
    /// The administration listener (`/metrics`, `/posta`), on loopback.
    pub admin_base: String,
    pub log: PathBuf,
}

impl Sportello {
    /// Starts the binary over `dir` and `database_url` with its clock at `clock`, with `extra`
    /// flags. Every client of the suite is 127.0.0.1, so the per-client rate limits are lifted,
    /// and the per-client connection cap too unless `extra` sets it; the booking form asks for
    /// no proof of work.
    pub async fn start(
        bin: &Path,
        dir: &Path,
        database_url: &str,
        clock: DateTime<Utc>,
        extra: &[&str],
    ) -> anyhow::Result<Sportello> {
        crate::process::ServerProcess::require(bin)?;
        let (port, admin) = (crate::free_port(), crate::free_port());
        let base = format!("http://127.0.0.1:{port}");
        let mut args: Vec<String> = [
            "--tls",
            "off",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
            "--public-url",
            &base,
            "--data-dir",
            &dir.display().to_string(),
            "--database-url",
            database_url,
            "--secret-key",
            SECRET,
            "--mail-from",
            MAIL_FROM,
            "--rate-limit-per-minute",
            "4000000000",
            "--rate-limit-burst",
            "4000000000",
            // The booking form's proof of work is anti-abuse, not what these scenarios are
            // about: the citizens here would spend their time solving it.
            "--proof-of-work=false",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !extra.contains(&"--max-connections-per-client") {
            args.extend(["--max-connections-per-client".into(), "1000000".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut s = Sportello {
            child: None,
            bin: bin.to_path_buf(),
            args,
            port,
            base,
            admin_base: format!("http://127.0.0.1:{admin}"),
            log: dir.join("server.log"),
        };
        s.spawn(clock).await?;
        Ok(s)
    }

    /// Starts the process with its clock at `clock`; returns how long it took to answer
    /// `/healthz` with `ok`.
    async fn spawn(&mut self, clock: DateTime<Utc>) -> anyhow::Result<Duration> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let started = Instant::now();
        let child = Command::new(&self.bin)
            .args(&self.args)
            .args(["--start-clock-at", &clock.to_rfc3339()])
            .env_remove("RUST_LOG")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = started + Duration::from_secs(60);
        loop {
            if let Ok(r) = probe.get(format!("{}/healthz", self.base)).send().await {
                if r.status().is_success() {
                    return Ok(started.elapsed());
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                anyhow::bail!("the server exited ({status}): {}", self.log_tail());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the server did not answer within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: the process ends at once, in the middle of whatever it was doing.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same data, port and flags, with its clock at `clock`; returns how
    /// long it took to answer.
    pub async fn restart(&mut self, clock: DateTime<Utc>) -> anyhow::Result<Duration> {
        self.kill();
        self.spawn(clock).await
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The log's text.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Sportello {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A pool on the database a server uses, to read what it stored.
pub async fn open_database(url: &str) -> anyhow::Result<sqlx::AnyPool> {
    sqlx::any::install_default_drivers();
    Ok(sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await?)
}

/// Fills an empty database with one video calendar and books, as the office, its first free
/// slot for `email` (the appointment's confirmation then waits in the outbox).
pub async fn seed_one_video_appointment(
    database_url: &str,
    email: &str,
) -> anyhow::Result<booking::Appointment> {
    let store = crate::seed::open_store(database_url, SECRET, booking::Limits::default()).await?;
    crate::seed::OneService::video_calls(10)
        .seed(&store)
        .await?;
    let slot = store
        .free_slots(&store.service(1).await?, crate::test_now())
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no video slot"))?;
    let b = crate::seed::video_booking(1, slot.start, "Rossi", email);
    let a = store
        .book(&b, booking::Actor::Office, None, crate::test_now())
        .await?;
    store.pool().close().await;
    Ok(a)
}

/// Fills an empty database with the suite's office: one service on a busy calendar, open every
/// day 7:00-20:00 in 5-minute slots of `SEATS` seats each, 60 days ahead, in person, by phone
/// or by video.
pub async fn seed_busy_calendar(database_url: &str) -> anyhow::Result<()> {
    let store = crate::seed::open_store(database_url, SECRET, booking::Limits::default()).await?;
    BUSY_CALENDAR.seed(&store).await?;
    store.pool().close().await;
    Ok(())
}

/// The suite's office (see `seed_busy_calendar`).
pub const BUSY_CALENDAR: crate::seed::OneService = crate::seed::OneService {
    calendar: "guasti",
    horizon_days: 60,
    opens: 7 * 60,
    closes: 20 * 60,
    slot_minutes: 5,
    seats: SEATS,
    modes: 7,
    title: "Carta d'identità",
};

/// The free seats of the busy calendar, each once, shuffled: the booking clients take them in
/// turn, so that every attempt can succeed and clients still race over the same slots.
pub struct Seats {
    starts: Vec<i64>,
    next: AtomicUsize,
}

impl Seats {
    pub async fn of(server: &Sportello) -> anyhow::Result<Arc<Seats>> {
        let free: Vec<serde_json::Value> = reqwest::get(server.url("/api/servizi/1/orari"))
            .await?
            .json()
            .await?;
        let mut starts: Vec<i64> = free
            .iter()
            .filter_map(|s| s["start_ts"].as_i64())
            .flat_map(|t| std::iter::repeat_n(t, SEATS as usize))
            .collect();
        anyhow::ensure!(!starts.is_empty(), "no free slot");
        starts.shuffle(&mut rand::thread_rng());
        Ok(Arc::new(Seats {
            starts,
            next: AtomicUsize::new(0),
        }))
    }

    /// The next free seat's start (Unix seconds), or none when all are taken.
    pub fn take(&self) -> Option<i64> {
        self.starts
            .get(self.next.fetch_add(1, Ordering::Relaxed))
            .copied()
    }

    pub fn any(&self) -> i64 {
        self.starts[0]
    }
}

/// What became of one request.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A booking accepted (303 to its "check your email" page): the appointment's id.
    Booked(i64),
    /// Any other answer: its status and page.
    Answered(u16, String),
    /// No answer: the connection failed or was cut.
    NoAnswer(String),
}

impl Outcome {
    /// An answer that is not a booking: its status and page (or the cut that lost the page).
    async fn of(r: reqwest::Response) -> Outcome {
        let status = r.status().as_u16();
        match r.text().await {
            Ok(body) => Outcome::Answered(status, body),
            Err(e) => Outcome::NoAnswer(e.to_string()),
        }
    }
}

/// One request: when it was sent, how long its answer took, what it was.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub sent: Instant,
    pub latency: Duration,
    pub outcome: Outcome,
}

impl Attempt {
    fn since(sent: Instant, outcome: Outcome) -> Attempt {
        Attempt {
            sent,
            latency: sent.elapsed(),
            outcome,
        }
    }

    pub fn booked(&self) -> Option<i64> {
        match self.outcome {
            Outcome::Booked(id) => Some(id),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.outcome {
            Outcome::Booked(_) => Some(303),
            Outcome::Answered(s, _) => Some(*s),
            Outcome::NoAnswer(_) => None,
        }
    }
}

/// A citizen's browser on the booking form: its own cookies (the CSRF token), one connection
/// kept alive, and the secret to read the id of the appointment a success answer points to.
pub struct Citizen {
    client: reqwest::Client,
    base: String,
    csrf: String,
    signer: Signer,
}

impl Citizen {
    /// Opens the booking form once (for its CSRF cookie and token).
    pub async fn new(base: &str, any_start: i64) -> anyhow::Result<Citizen> {
        let client = crate::browser_client()
            .timeout(Duration::from_secs(60))
            .build()?;
        let form = format!("{base}/servizi/1/prenota?inizio={any_start}");
        let csrf = crate::form_csrf(&client, &form).await?;
        Ok(Citizen {
            client,
            base: base.to_string(),
            csrf,
            signer: Signer::new(SECRET.as_bytes()),
        })
    }

    /// Books the seat starting at `start` (Unix seconds) in person for `email`.
    pub async fn book(&self, start: i64, email: &str) -> Attempt {
        let sent = Instant::now();
        let start = start.to_string();
        let r = self
            .client
            .post(format!("{}/servizi/1/prenota", self.base))
            .form(&[
                ("csrf", self.csrf.as_str()),
                ("start", start.as_str()),
                ("mode", "in_person"),
                ("given_name", "Carico"),
                ("family_name", "Guasti"),
                ("email", email),
                ("reason", "Prova dei guasti"),
                ("consent", "on"),
            ])
            .send()
            .await;
        let outcome = match r {
            Err(e) => Outcome::NoAnswer(e.to_string()),
            Ok(r) if r.status().as_u16() == 303 => {
                let id = r
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| l.strip_prefix("/inviata/"))
                    .and_then(|t| self.signer.verify(Purpose::Sent, t).ok());
                match id {
                    Some(id) => Outcome::Booked(id),
                    None => Outcome::Answered(303, "a redirect elsewhere".into()),
                }
            }
            Ok(r) => Outcome::of(r).await,
        };
        Attempt::since(sent, outcome)
    }

    /// A GET of a citizen's page, timed.
    pub async fn get(&self, path: &str) -> Attempt {
        let sent = Instant::now();
        let outcome = match self.client.get(format!("{}{path}", self.base)).send().await {
            Err(e) => Outcome::NoAnswer(e.to_string()),
            Ok(r) => Outcome::of(r).await,
        };
        Attempt::since(sent, outcome)
    }
}

/// Many citizens booking back to back (with `pause` between two bookings of one citizen), each
/// with its own email addresses, until stopped or the seats run out.
pub struct Load {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    booked: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Attempt>>>,
}

impl Load {
    pub async fn start(
        server: &Sportello,
        clients: usize,
        seats: Arc<Seats>,
        pause: Duration,
        tag: &str,
    ) -> anyhow::Result<Load> {
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let booked = Arc::new(AtomicUsize::new(0));
        let mut citizens = Vec::new();
        for _ in 0..clients {
            citizens.push(Citizen::new(&server.base, seats.any()).await?);
        }
        let tasks = citizens
            .into_iter()
            .enumerate()
            .map(|(c, citizen)| {
                let (stop, paused, booked) = (stop.clone(), paused.clone(), booked.clone());
                let (seats, tag) = (seats.clone(), tag.to_string());
                tokio::spawn(async move {
                    let mut done = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        if paused.load(Ordering::Relaxed) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                        let Some(start) = seats.take() else { break };
                        let email = format!("{tag}-{c}-{}@example.it", done.len());
                        let attempt = citizen.book(start, &email).await;
                        if attempt.booked().is_some() {
                            booked.fetch_add(1, Ordering::Relaxed);
                        }
                        done.push(attempt);
                        if !pause.is_zero() {
                            tokio::time::sleep(pause).await;
                        }
                    }
                    done
                })
            })
            .collect();
        Ok(Load {
            stop,
            paused,
            booked,
            tasks,
        })
    }

    /// Bookings accepted so far.
    pub fn booked(&self) -> usize {
        self.booked.load(Ordering::Relaxed)
    }

    /// Holds every citizen before their next booking (`true`), or lets them go on.
    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }

    /// Tells every citizen to stop after the booking under way.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops and gathers every attempt, in the order they were sent.
    pub async fn finish(self) -> Vec<Attempt> {
        self.stop();
        let mut all = Vec::new();
        for t in self.tasks {
            all.extend(t.await.unwrap_or_default());
        }
        all.sort_by_key(|a| a.sent);
        all
    }
}

/// p50, p99 and the longest of some latencies, in milliseconds, for the figures.
pub struct Latency {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    pub fn of<'a>(durations: impl IntoIterator<Item = &'a Duration>) -> Latency {
        let mut ms: Vec<f64> = durations
            .into_iter()
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        let q = |q: f64| {
            ms.get(((ms.len().max(1) - 1) as f64 * q).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        Latency {
            count: ms.len(),
            p50: q(0.5),
            p99: q(0.99),
            max: ms.last().copied().unwrap_or(0.0),
        }
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n = {})",
            self.p50, self.p99, self.max, self.count
        )
    }
}

/// Polls `check` every 100 ms until it holds, for at most `within`; returns how long it took.
pub async fn wait_until<F, Fut>(
    within: Duration,
    what: &str,
    mut check: F,
) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let started = Instant::now();
    loop {
        if check().await? {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < within,
            "{what}: not within {} s",
            within.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Counts of each status among attempts, e.g. "303: 120, 503: 14, no answer: 2".
pub fn statuses(attempts: &[&Attempt]) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for a in attempts {
        let k = a
            .status()
            .map_or_else(|| "no answer".to_string(), |s| s.to_string());
        *counts.entry(k).or_default() += 1;
    }
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
