//! PostgreSQL restarted under load: citizens open pages and book while the database server is
//! stopped for a while and started again. What must hold: meanwhile every answer is either
//! served or a clear 503 page (in Italian and English, with `Retry-After`), quickly, never a 500
//! or a hang; afterwards the same Sportello process serves again by itself, without a restart;
//! every booking accepted is stored.
//!
//! It runs its own PostgreSQL cluster (initdb as the `postgres` user, on a free port), so that
//! stopping it disturbs no other test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::Row;

use super::{
    open_database, seed_busy_calendar, Attempt, Citizen, Figures, Latency, Seats, Sportello,
};
use crate::test_now;

/// A throwaway PostgreSQL cluster on loopback, removed on drop.
pub struct PgCluster {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
}

impl PgCluster {
    /// Creates and starts a cluster, or `None` when PostgreSQL is not installed here (or this
    /// is not root, which `runuser` needs); under CI that is a failure.
    pub fn start() -> anyhow::Result<Option<PgCluster>> {
        let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .filter(|b| b.join("initdb").exists())
                .max()
        });
        let root = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        let Some(bin) = bin.filter(|_| root) else {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL (run as root) is needed for this test");
            }
            eprintln!("skipped: no PostgreSQL to start here (or not root)");
            return Ok(None);
        };
        let dir = PathBuf::from(format!(
            "/tmp/sportello-faults-pg-{:08x}",
            rand::random::<u32>()
        ));
        let run = |cmd: &mut Command| -> anyhow::Result<()> {
            let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
            anyhow::ensure!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(())
        };
        run(Command::new("install")
            .args(["-d", "-o", "postgres", "-g", "postgres"])
            .arg(&dir))?;
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]))?;
        let cluster = PgCluster {
            bin,
            dir,
            port: crate::free_port(),
        };
        cluster.start_again()?;
        Ok(Some(cluster))
    }

    fn pg_ctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(args)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "pg_ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    pub fn start_again(&self) -> anyhow::Result<()> {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.pg_ctl(&["-l", &log, "-w", "-o", &opts, "start"])
    }

    /// Stops the server the way an upgrade or a restart does: `pg_ctl stop -m fast` (sessions
    /// are ended, transactions rolled back).
    pub fn stop(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["-m", "fast", "-w", "stop"])
    }

    /// The URL of database `db` on it.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a database.
    pub async fn create_database(&self, db: &str) -> anyhow::Result<String> {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&self.url("postgres")).await?;
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&mut c)
            .await?;
        c.close().await?;
        Ok(self.url(db))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Size {
    /// Citizens at once, each alternating a page of the service and a booking.
    pub clients: usize,
    /// Load before the stop, how long PostgreSQL stays down, load after it is back.
    pub before: Duration,
    pub down: Duration,
    pub after: Duration,
    /// Every answer after PostgreSQL is back by this long must be served.
    pub recovery: Duration,
}

/// Whether an answer is the clear "unavailable" page: 503, in Italian and English.
fn clear_503(a: &Attempt) -> bool {
    matches!(&a.outcome, super::Outcome::Answered(503, body)
        if body.contains("momentaneamente non disponibile") && body.contains("temporarily unavailable"))
}

fn served(a: &Attempt) -> bool {
    matches!(a.status(), Some(200 | 303))
}

/// The scenario; `None` when PostgreSQL cannot be started here.
pub async fn postgres_restart_under_load(
    bin: &Path,
    size: &Size,
) -> anyhow::Result<Option<Figures>> {
    let Some(pg) = PgCluster::start()? else {
        return Ok(None);
    };
    let dir = tempfile::tempdir()?;
    let url = pg.create_database("sportello").await?;
    seed_busy_calendar(&url).await?;
    let mut server = Sportello::start(bin, dir.path(), &url, test_now(), &[]).await?;
    let pid = server.pid();
    let seats = Seats::of(&server).await?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..size.clients {
        let citizen = Citizen::new(&server.base, seats.any()).await?;
        let (seats, stop) = (seats.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                done.push(citizen.get("/servizi/1").await);
                let Some(start) = seats.take() else { break };
                done.push(
                    citizen
                        .book(start, &format!("pg-{c}-{}@example.it", done.len()))
                        .await,
                );
            }
            done
        }));
    }
    tokio::time::sleep(size.before).await;
    let stopping = Instant::now();
    pg.stop()?;
    let stopped = Instant::now();
    tokio::time::sleep(size.down).await;
    let starting = Instant::now();
    pg.start_again()?;
    let back = Instant::now();
    tokio::time::sleep(size.after).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut attempts: Vec<Attempt> = Vec::new();
    for t in tasks {
        attempts.extend(t.await?);
    }
    attempts.sort_by_key(|a| a.sent);

    // Answered before the stop: all served.
    let before: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.sent + a.latency < stopping)
        .collect();
    let unclear: Vec<&&Attempt> = before.iter().filter(|a| !served(a)).collect();
    anyhow::ensure!(
        unclear.is_empty(),
        "answers before the stop: {}",
        super::statuses(&before)
    );
    // In flight at the stop, or sent until it is back: served or a clear 503, never a 500 or
    // no answer.
    let during: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.sent + a.latency >= stopping && a.sent < back)
        .collect();
    let unclear: Vec<&&Attempt> = during
        .iter()
        .filter(|a| !served(a) && !clear_503(a))
        .collect();
    anyhow::ensure!(
        unclear.is_empty(),
        "answers while PostgreSQL was down that are neither served nor a clear 503: {} (first: {:?})",
        super::statuses(&unclear.iter().map(|a| **a).collect::<Vec<_>>()),
        unclear.first().map(|a| match &a.outcome {
            super::Outcome::Answered(s, b) => format!("{s} {}", b.chars().take(300).collect::<String>()),
            o => format!("{o:?}"),
        })
    );
    let unavailable: Vec<&&Attempt> = during.iter().filter(|a| clear_503(a)).collect();
    anyhow::ensure!(
        !unavailable.is_empty(),
        "no 503 while PostgreSQL was down: {}",
        super::statuses(&during)
    );
    // After: served again by the same process.
    anyhow::ensure!(
        server.running() && server.pid() == pid,
        "Sportello restarted"
    );
    let recovered_by = back + size.recovery;
    let late: Vec<&Attempt> = attempts.iter().filter(|a| a.sent >= recovered_by).collect();
    anyhow::ensure!(!late.is_empty(), "no request after the recovery time");
    let unserved: Vec<&&Attempt> = late.iter().filter(|a| !served(a)).collect();
    anyhow::ensure!(
        unserved.is_empty(),
        "{} s after PostgreSQL was back, answers: {}",
        size.recovery.as_secs(),
        super::statuses(&late)
    );
    let first_booking_after = attempts
        .iter()
        .filter(|a| a.sent >= back && a.booked().is_some())
        .map(|a| a.sent + a.latency)
        .min()
        .context("no booking after PostgreSQL was back")?;
    let last_failure = attempts
        .iter()
        .filter(|a| !served(a))
        .map(|a| a.sent + a.latency)
        .max()
        .unwrap_or(back);
    // Every booking accepted is stored.
    let pool = open_database(&url).await?;
    let stored: std::collections::HashSet<i64> = sqlx::query("SELECT id FROM appointment")
        .fetch_all(&pool)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("id"))
        .collect::<Result<_, _>>()?;
    let booked: Vec<i64> = attempts.iter().filter_map(|a| a.booked()).collect();
    let missing = booked.iter().filter(|id| !stored.contains(id)).count();
    anyhow::ensure!(missing == 0, "{missing} accepted bookings are not stored");
    pool.close().await;
    server.kill();

    let mut f = Figures::new("3. PostgreSQL stopped and started again under load");
    f.add(format!(
        "{} citizens, each alternating the service's page and a booking; PostgreSQL stopped (pg_ctl -m fast, {:.1} s) after {} s, down {} s, started again ({:.1} s)",
        size.clients,
        (stopped - stopping).as_secs_f64(),
        size.before.as_secs(),
        size.down.as_secs(),
        (back - starting).as_secs_f64()
    ));
    f.add(format!(
        "before: {}; latency {}",
        super::statuses(&before),
        Latency::of(before.iter().map(|a| &a.latency))
    ));
    f.add(format!(
        "while it was down: {}; every one not served a 503 page in Italian and English; latency of the 503s {}",
        super::statuses(&during),
        Latency::of(unavailable.iter().map(|a| &a.latency))
    ));
    f.add(format!(
        "recovery without restarting Sportello (same process): first booking accepted {:.2} s after PostgreSQL was back, last unserved answer {:.2} s after",
        first_booking_after.saturating_duration_since(back).as_secs_f64(),
        last_failure.saturating_duration_since(back).as_secs_f64()
    ));
    let after: Vec<&Attempt> = attempts.iter().filter(|a| a.sent >= back).collect();
    f.add(format!(
        "after: {}; {} bookings accepted in all, every one stored",
        super::statuses(&after),
        booked.len()
    ));
    Ok(Some(f))
}
