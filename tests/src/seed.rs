//! What the load tools and the faults suite put in a database before they start a server: a
//! store opened with the tool's secret key (so that the tool signs the same links as the
//! server), and one office with one service on one calendar shaped for the load.
//!
//! It knows nothing of HTTP or of the server process (`process`, `faults`).

use booking::email::Links;
use booking::token::Signer;
use booking::{Limits, Store};

/// The store on `url` as a server started with `--secret-key secret` sees it.
pub async fn open_store(url: &str, secret: &str, limits: Limits) -> anyhow::Result<Store> {
    let links = Links {
        base_url: "http://127.0.0.1".into(),
        signer: Signer::new(secret.as_bytes()),
        tz: chrono_tz::Europe::Rome,
    };
    Ok(Store::connect(url, links, limits).await?)
}

/// One office (id 1) with one calendar (id 1), one opening rule every day of the week, and one
/// service (id 1) on it.
pub struct OneService {
    pub calendar: &'static str,
    pub horizon_days: i64,
    /// The rule's opening hours, minutes after local midnight.
    pub opens: i64,
    pub closes: i64,
    pub slot_minutes: i64,
    pub seats: i64,
    /// The rule's and the service's modes (`booking::ModeSet` bits).
    pub modes: i64,
    pub title: &'static str,
}

impl OneService {
    /// Video calls only, 9:00-17:00 in hour slots, `seats` each, bookable 60 days ahead.
    pub fn video_calls(seats: i64) -> OneService {
        OneService {
            calendar: "video",
            horizon_days: 60,
            opens: 9 * 60,
            closes: 17 * 60,
            slot_minutes: 60,
            seats,
            modes: 4, // video (`booking::ModeSet`)
            title: "Videochiamata",
        }
    }

    pub async fn seed(&self, store: &Store) -> anyhow::Result<()> {
        let pool = store.pool();
        sqlx::query("INSERT INTO office (id, name, department, email) VALUES (1, 'Anagrafe', 'Servizi demografici', 'anagrafe@comune.esempio.it')").execute(pool).await?;
        sqlx::query(
            "INSERT INTO calendar (id, office_id, name, horizon_days) VALUES (1, 1, $1, $2)",
        )
        .bind(self.calendar)
        .bind(self.horizon_days)
        .execute(pool)
        .await?;
        sqlx::query("INSERT INTO opening_rule (id, calendar_id, weekdays, start_minute, end_minute, slot_minutes, capacity, modes) VALUES (1, 1, 127, $1, $2, $3, $4, $5)")
            .bind(self.opens)
            .bind(self.closes)
            .bind(self.slot_minutes)
            .bind(self.seats)
            .bind(self.modes)
            .execute(pool)
            .await?;
        sqlx::query("INSERT INTO service (id, office_id, calendar_id, title, max_minutes, modes) VALUES (1, 1, 1, $1, $2, $3)")
            .bind(self.title)
            .bind(self.slot_minutes)
            .bind(self.modes)
            .execute(pool)
            .await?;
        store.invalidate_catalogue();
        Ok(())
    }
}

/// `n` confirmed video appointments at one time (the first slot two days ahead) on a fresh
/// database at `url`: office 1 with one video calendar open 9:00-17:00 in hour slots with a
/// seat for each. For the load tools' rooms.
pub async fn video_rooms(
    url: &str,
    secret: &str,
    n: usize,
) -> anyhow::Result<Vec<booking::Appointment>> {
    video_rooms_from(url, secret, n, chrono::Utc::now()).await
}

/// As `video_rooms`, the first slot two days after `now` (a test's fixed "today").
pub async fn video_rooms_from(
    url: &str,
    secret: &str,
    n: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<booking::Appointment>> {
    let limits = Limits {
        max_active_per_email: i64::MAX,
        ..Limits::default()
    };
    let store = open_store(url, secret, limits).await?;
    OneService::video_calls(n.max(1) as i64)
        .seed(&store)
        .await?;
    let slot = store
        .free_slots(&store.service(1).await?, now + chrono::Duration::days(2))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no slot"))?;
    let mut rooms = Vec::with_capacity(n);
    for i in 0..n {
        let b = video_booking(1, slot.start, &format!("{i}"), &format!("m{i}@example.it"));
        rooms.push(store.book(&b, booking::Actor::Office, None, now).await?);
    }
    store.pool().close().await;
    Ok(rooms)
}

/// A video appointment on `service_id` at `start`, as the office books it for a citizen named
/// "Carico `family_name`".
pub fn video_booking(
    service_id: i64,
    start: chrono::DateTime<chrono::Utc>,
    family_name: &str,
    email: &str,
) -> booking::validate::ValidBooking {
    booking::validate::ValidBooking {
        service_id,
        start,
        mode: booking::Mode::Video,
        operator_id: None,
        contact: booking::Contact {
            given_name: "Carico".into(),
            family_name: family_name.into(),
            email: email.into(),
            reason: "prova".into(),
            ..Default::default()
        },
        consent_version: None,
        language: booking::i18n::Lang::IT,
        email_verified: false,
    }
}
