//! An SMTP outage during bookings: citizens book while the town's SMTP server is up, then
//! while it is down (killed), then once it is back on the same port and Maildir. What must hold:
//! every booking is accepted throughout (the email waits in the outbox, the booking does not);
//! once the SMTP server is back every email arrives, none twice.
//!
//! The outage starts when no email is in flight (the citizens hold their next booking for the
//! moment the outbox is empty): an SMTP server that dies after storing a message but before
//! acknowledging it gets that message again, which is scenario 1's "at most the one in flight",
//! not this one's.

use std::path::Path;
use std::time::{Duration, Instant};

use sqlx::Row;

use super::{
    open_database, seed_busy_calendar, wait_until, Figures, Latency, Load, Seats, Sportello,
};
use crate::smtp::{aiosmtpd_python, received_message_ids, start_smtp};
use crate::{test_now, Db};

pub struct Size {
    /// Citizens booking at once, each pausing `pause` between two bookings.
    pub clients: usize,
    pub pause: Duration,
    /// Booking with the SMTP server up, down, and up again.
    pub before: Duration,
    pub outage: Duration,
    pub after: Duration,
    /// How long the outbox may take to empty once the bookings stop.
    pub drain: Duration,
}

async fn unsent(pool: &sqlx::AnyPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")
            .fetch_one(pool)
            .await?
            .try_get("n")?,
    )
}

/// The scenario on SQLite; `None` when the SMTP server is not available here.
pub async fn smtp_outage_during_bookings(
    bin: &Path,
    size: &Size,
) -> anyhow::Result<Option<Figures>> {
    let dir = tempfile::tempdir()?;
    let Some(python) = aiosmtpd_python() else {
        return Ok(None);
    };
    let url = crate::fresh_database(Db::Sqlite, dir.path())
        .await
        .expect("SQLite");
    seed_busy_calendar(&url).await?;
    let port = crate::free_port();
    let maildir = dir.path().join("Maildir");
    let smtp = start_smtp(&python, port, &maildir);
    let port = port.to_string();
    let server = Sportello::start(
        bin,
        dir.path(),
        &url,
        test_now(),
        &crate::process::plain_smtp_flags(&port),
    )
    .await?;
    let pool = open_database(&url).await?;
    let seats = Seats::of(&server).await?;
    let load = Load::start(&server, size.clients, seats, size.pause, "smtp").await?;
    tokio::time::sleep(size.before).await;

    // Down, with no email in flight.
    load.pause(true);
    wait_until(
        Duration::from_secs(120),
        "the outbox empty before the outage",
        || {
            let pool = pool.clone();
            async move { Ok(unsent(&pool).await? == 0) }
        },
    )
    .await?;
    drop(smtp);
    let down_at = Instant::now();
    load.pause(false);
    tokio::time::sleep(size.outage).await;
    let smtp = start_smtp(&python, port.parse()?, &maildir);
    let back_at = Instant::now();
    tokio::time::sleep(size.after).await;
    let attempts = load.finish().await;
    let stopped_at = Instant::now();

    // Every booking accepted, whatever the SMTP server was doing.
    let refused: Vec<_> = attempts.iter().filter(|a| a.booked().is_none()).collect();
    anyhow::ensure!(
        refused.is_empty(),
        "bookings not accepted: {}",
        super::statuses(&refused)
    );
    let during: Vec<_> = attempts
        .iter()
        .filter(|a| a.sent >= down_at && a.sent < back_at)
        .collect();
    anyhow::ensure!(!during.is_empty(), "no booking during the outage");
    // Every email arrives once the SMTP server is back, none twice.
    let drained = wait_until(size.drain, "every email sent after the outage", || {
        let pool = pool.clone();
        async move { Ok(unsent(&pool).await? == 0) }
    })
    .await?;
    let last_sent = stopped_at + drained;
    let rows = sqlx::query("SELECT id, attempts FROM outbox")
        .fetch_all(&pool)
        .await?;
    let mut expected = Vec::new();
    let mut retried = 0;
    let mut failed_attempts = 0;
    for r in &rows {
        let (id, attempts): (i64, i64) = (r.try_get("id")?, r.try_get("attempts")?);
        expected.push(format!("<outbox-{id}@comune.esempio.it>"));
        if attempts > 1 {
            retried += 1;
            failed_attempts += attempts - 1;
        }
    }
    let mut ids = received_message_ids(&maildir);
    ids.sort();
    expected.sort();
    let received = ids.len();
    let mut distinct = ids.clone();
    distinct.dedup();
    anyhow::ensure!(
        distinct.len() == received,
        "{} emails arrived twice",
        received - distinct.len()
    );
    anyhow::ensure!(
        distinct == expected,
        "{} emails queued, {} arrived",
        expected.len(),
        distinct.len()
    );
    drop(smtp);

    let mut f = Figures::new("2. SMTP server down during bookings (SQLite)");
    f.add(format!(
        "{} citizens booking (a pause of {} ms between two bookings): {} s with the SMTP server up, {} s down, {} s up again",
        size.clients,
        size.pause.as_millis(),
        size.before.as_secs(),
        size.outage.as_secs(),
        size.after.as_secs()
    ));
    let phase = |from: Option<Instant>, to: Option<Instant>| {
        let v: Vec<_> = attempts
            .iter()
            .filter(|a| from.is_none_or(|t| a.sent >= t) && to.is_none_or(|t| a.sent < t))
            .map(|a| &a.latency)
            .collect();
        Latency::of(v)
    };
    f.add(format!(
        "bookings accepted: all {} (0 refused); latency with SMTP up {}; during the outage {}",
        attempts.len(),
        phase(None, Some(down_at)),
        phase(Some(down_at), Some(back_at))
    ));
    f.add(format!(
        "emails: {} queued, {} of them during the outage; {} retried ({} failed attempts in all; the back-off starts at 5 s and doubles)",
        rows.len(),
        during.len(),
        retried,
        failed_attempts
    ));
    f.add(format!(
        "the last email arrived {:.1} s after the SMTP server was back ({:.1} s after the bookings stopped)",
        (last_sent - back_at).as_secs_f64(),
        drained.as_secs_f64()
    ));
    f.add(format!(
        "SMTP server received {received} messages for {} emails: none twice, none missing",
        rows.len()
    ));
    Ok(Some(f))
}

/// Greylisting: the SMTP relay turns away the first attempt at each recipient with a 450 that
/// repeats the address (as Postfix with postgrey answers), then accepts it. What must hold: the
/// email arrives on a later attempt, and the server's log says that a delivery failed and will be
/// tried again without the citizen's address in it, though the relay's answer had it.
pub async fn greylisting_relay(bin: &Path) -> anyhow::Result<Figures> {
    let dir = tempfile::tempdir()?;
    let url = crate::fresh_database(Db::Sqlite, dir.path())
        .await
        .expect("SQLite");
    // An appointment booked by the office: its confirmation waits in the outbox.
    let address = "maria.rossi@example.it";
    super::seed_one_video_appointment(&url, address).await?;

    let sink = crate::smtp::SlowSink::greylisting().await?;
    let port = sink.port.to_string();
    let mut flags = crate::process::plain_smtp_flags(&port).to_vec();
    flags.extend(["--worker-interval", "1"]);
    let server = Sportello::start(bin, dir.path(), &url, test_now(), &flags).await?;
    // Every email the outbox holds (the confirmation; a reminder too when the worker finds one
    // due) sent: the first to the address was turned away, and tried again 5 s later.
    let pool = open_database(&url).await?;
    let took = wait_until(Duration::from_secs(60), "every email sent", || {
        let pool = pool.clone();
        async move { Ok(unsent(&pool).await? == 0) }
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}; the server's log ends: {}", server.log_tail()))?;
    // Attempts made, the one that went through included.
    let rows = sqlx::query("SELECT attempts FROM outbox")
        .fetch_all(&pool)
        .await?;
    let retried = rows
        .iter()
        .filter(|r| r.try_get::<i64, _>("attempts").unwrap_or(0) > 1)
        .count();
    anyhow::ensure!(
        retried == 1 && sink.accepted().len() == rows.len(),
        "of {} emails, {retried} went out on a retry (1 expected) and the relay accepted {}",
        rows.len(),
        sink.accepted().len()
    );
    let log = server.log_text();
    let failures = log
        .lines()
        .filter(|l| l.contains("email delivery failed, will retry"))
        .count();
    anyhow::ensure!(
        failures >= 1,
        "the greylisted attempt was not logged: {}",
        server.log_tail()
    );
    anyhow::ensure!(
        !log.contains(address),
        "the citizen's address is in the server's log: {:?}",
        log.lines().find(|l| l.contains(address))
    );
    let mut f = Figures::new("7. A greylisting SMTP relay");
    f.add(format!(
        "the first email to the address was turned away (450, the address in the answer) and accepted on a retry; all {} sent {:.1} s after the server started; {failures} failed attempt logged, without the address",
        rows.len(),
        took.as_secs_f64()
    ));
    Ok(f)
}
