//! The background worker: cancels bookings not verified in time, offers free seats to the
//! waitlists, queues reminders, delivers
//! the outbox, and once a day removes the personal data kept long enough (`booking::store`'s
//! retention). It runs every few seconds, and at once when the store has queued an email.

use std::time::Duration;

use crate::state::AppState;

/// One pass of every job, at the state's `now`.
pub async fn tick(st: &AppState) -> Result<(), booking::Error> {
    pass(st).await.map(|_more| ())
}

/// One pass of every job; true when the outbox had more emails due than a pass sends.
async fn pass(st: &AppState) -> Result<bool, booking::Error> {
    let now = st.now();
    let expired = st.store.expire_unverified(now).await?;
    // Seats a new rule or a reopened day made free go to the waitlist too.
    let offered = st.store.offer_seats(now).await?;
    let reminders = st.store.queue_reminders(now).await?;
    if let Some(swept) = st.store.daily_retention(now).await? {
        tracing::info!(
            appointments = swept.appointments,
            emails = swept.emails,
            "retention: personal data removed"
        );
    }
    let d = st.mailer.deliver_due(&st.store, now).await?;
    let m = &st.metrics;
    m.outbox_sent
        .fetch_add(d.sent as u64, std::sync::atomic::Ordering::Relaxed);
    m.outbox_failed
        .fetch_add(d.failed as u64, std::sync::atomic::Ordering::Relaxed);
    st.limits.forget_quiet();
    if expired + offered + reminders + d.sent + d.failed > 0 {
        tracing::info!(
            expired,
            offered,
            reminders,
            sent = d.sent,
            failed = d.failed,
            "worker pass"
        );
    }
    Ok(d.more)
}

/// Runs passes until `stop` turns true; a pass under way (an email being sent) is finished.
/// A pass that left emails due (a backlog after an outage or a restart) is followed at once by
/// the next, so a backlog drains at the speed of the SMTP server, not a pass per round.
pub async fn run(st: AppState, every: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mail_queued = st.store.mail_queued();
    loop {
        let more = pass(&st).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "worker pass failed");
            false
        });
        if *stop.borrow() {
            return;
        }
        if more {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = mail_queued.notified() => {}
            _ = stop.changed() => return,
        }
    }
}
