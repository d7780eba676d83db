//! A crash in the middle of a booking load: many citizens book, the server is killed with
//! SIGKILL (no goodbye: requests cut, the email being sent cut), and started again on the same
//! database. What must hold: every booking that got a success answer is stored; every email
//! queued before the kill reaches the real SMTP server after the restart; at most the one email
//! that was in flight arrives twice, and then with the same Message-ID.
//!
//! An email is claimed for `booking::outbox::claim_lease` before it is sent, so the one in flight
//! is sent again only once its lease has run out: the restarted server's clock starts that much
//! later than where the killed one stopped (a jump of the clock, not a wait).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::Row;

use super::{
    open_database, seed_busy_calendar, wait_until, Figures, Latency, Load, Seats, Sportello,
};
use crate::smtp::{aiosmtpd_python, received_message_ids, start_smtp};
use crate::{fresh_database, test_now, Db};

pub struct Size {
    /// Citizens booking at once.
    pub clients: usize,
    /// Bookings accepted before the kill (the citizens go on booking until it).
    pub kill_after: usize,
    /// How long the restarted server may take to send what was queued.
    pub drain: Duration,
}

/// The scenario on `db`; `None` when that database (or the SMTP server) is not available here.
pub async fn sigkill_during_bookings(
    bin: &Path,
    db: Db,
    size: &Size,
) -> anyhow::Result<Option<Figures>> {
    let dir = tempfile::tempdir()?;
    let Some(url) = fresh_database(db, dir.path()).await else {
        return Ok(None);
    };
    let Some(python) = aiosmtpd_python() else {
        return Ok(None);
    };
    seed_busy_calendar(&url).await?;
    let smtp_port = crate::free_port();
    let maildir = dir.path().join("Maildir");
    let _smtp = start_smtp(&python, smtp_port, &maildir);
    let clock = test_now();
    let started = Instant::now();
    let smtp_port = smtp_port.to_string();
    let mut server = Sportello::start(
        bin,
        dir.path(),
        &url,
        clock,
        &[
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            &smtp_port,
            "--smtp-security",
            "none",
        ],
    )
    .await?;
    let seats = Seats::of(&server).await?;
    let load = Load::start(&server, size.clients, seats, Duration::ZERO, "crash").await?;
    let load_started = Instant::now();
    let target = size.kill_after;
    wait_until(Duration::from_secs(120), "bookings before the kill", || {
        let n = load.booked();
        async move { Ok(n >= target) }
    })
    .await?;
    // No citizen starts another booking; those under way are cut by the kill.
    load.stop();
    server.kill();
    let loaded_for = load_started.elapsed();
    let attempts = load.finish().await;

    // What the killed server left in its database.
    let pool = open_database(&url).await?;
    let stored: HashSet<i64> = sqlx::query("SELECT id FROM appointment")
        .fetch_all(&pool)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("id"))
        .collect::<Result<_, _>>()?;
    let queued: Vec<(i64, bool)> = sqlx::query("SELECT id, sent_at FROM outbox")
        .fetch_all(&pool)
        .await?
        .iter()
        .map(|r| -> anyhow::Result<(i64, bool)> {
            Ok((
                r.try_get("id")?,
                r.try_get::<Option<i64>, _>("sent_at")?.is_some(),
            ))
        })
        .collect::<Result<_, _>>()?;
    let received_by_kill = received_message_ids(&maildir).len();
    let booked: Vec<i64> = attempts.iter().filter_map(|a| a.booked()).collect();
    let missing: Vec<&i64> = booked.iter().filter(|id| !stored.contains(id)).collect();
    anyhow::ensure!(
        missing.is_empty(),
        "{} bookings answered with success are not stored: {missing:?}",
        missing.len()
    );
    anyhow::ensure!(!booked.is_empty(), "no booking succeeded before the kill");
    let cut = attempts.iter().filter(|a| a.status().is_none()).count();
    let refused: Vec<_> = attempts
        .iter()
        .filter(|a| a.status().is_some() && a.booked().is_none())
        .collect();
    anyhow::ensure!(
        refused.is_empty(),
        "answers other than success before the kill: {}",
        super::statuses(&refused)
    );

    // Started again on the same database, its clock past the claim lease of the email that was
    // in flight.
    let stopped_at = clock + chrono::Duration::from_std(started.elapsed())?;
    let restart_clock = stopped_at
        + booking::outbox::claim_lease(std::time::Duration::from_secs(
            booking::outbox::SMTP_TIMEOUT_SECONDS,
        ))
        + chrono::Duration::seconds(30);
    let restart = server.restart(restart_clock).await?;
    let unsent = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(-1));
    let drained = wait_until(size.drain, "every queued email sent", || {
        let (pool, unsent) = (pool.clone(), unsent.clone());
        async move {
            let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")
                .fetch_one(&pool)
                .await?
                .try_get("n")?;
            unsent.store(n, std::sync::atomic::Ordering::Relaxed);
            Ok(n == 0)
        }
    })
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}: {} of {} left unsent; server log:\n{}",
            unsent.load(std::sync::atomic::Ordering::Relaxed),
            queued.len(),
            server.log_tail()
        )
    })?;

    // Every email queued before the kill arrived; the only one twice is the one in flight.
    let ids = received_message_ids(&maildir);
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for id in &ids {
        *copies.entry(id.as_str()).or_default() += 1;
    }
    let message_id = |id: i64| format!("<outbox-{id}@comune.esempio.it>");
    let lost: Vec<i64> = queued
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !copies.contains_key(message_id(*id).as_str()))
        .collect();
    anyhow::ensure!(
        lost.is_empty(),
        "{} emails queued before the kill never arrived",
        lost.len()
    );
    let known: HashSet<String> = queued.iter().map(|(id, _)| message_id(*id)).collect();
    let stray: Vec<&&str> = copies.keys().filter(|m| !known.contains(**m)).collect();
    anyhow::ensure!(stray.is_empty(), "messages from no queued email: {stray:?}");
    let twice: Vec<(&&str, &usize)> = copies.iter().filter(|(_, n)| **n > 1).collect();
    anyhow::ensure!(
        twice.len() <= 1 && twice.iter().all(|(_, n)| **n == 2),
        "emails sent more than once: {twice:?}"
    );

    let backend = match db {
        Db::Sqlite => "SQLite",
        Db::Postgres => "PostgreSQL",
    };
    let mut f = Figures::new(format!("1. SIGKILL during a booking load ({backend})"));
    f.add(format!(
        "{} citizens booked for {:.1} s, then the server was killed (SIGKILL)",
        size.clients,
        loaded_for.as_secs_f64()
    ));
    f.add(format!(
        "answers: {} bookings accepted ({:.0}/s), {cut} requests cut by the kill; booking latency {}",
        booked.len(),
        booked.len() as f64 / loaded_for.as_secs_f64(),
        Latency::of(attempts.iter().filter(|a| a.booked().is_some()).map(|a| &a.latency))
    ));
    f.add(format!(
        "stored after the kill: {} appointments; all {} accepted bookings among them, 0 missing",
        stored.len(),
        booked.len()
    ));
    f.add(format!(
        "emails queued before the kill: {}, {} of them delivered by then ({} received)",
        queued.len(),
        queued.iter().filter(|(_, sent)| *sent).count(),
        received_by_kill
    ));
    f.add(format!(
        "restart on the same database answered in {:.2} s (clock moved {} min past the kill, the claim lease); the {} emails left were all delivered {:.1} s after",
        restart.as_secs_f64(),
        (restart_clock - stopped_at).num_minutes(),
        queued.iter().filter(|(_, sent)| !*sent).count(),
        drained.as_secs_f64()
    ));
    f.add(format!(
        "SMTP server received {} messages for {} emails, 0 lost: {} sent twice (only the one in flight may be, with the same Message-ID)",
        ids.len(),
        copies.len(),
        twice.len()
    ));
    Ok(Some(f))
}
