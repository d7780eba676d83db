//! Retention on SQLite and PostgreSQL, with the server's clock moved: a booking never verified
//! loses the person's data when it expires; a year after an appointment its person's data is
//! removed and what statistics count stays; sent emails lose recipient and body after a month;
//! the sweep runs once a day; nothing still to come is touched.

use reqwest::StatusCode;
use tests::*;

/// The person's data as stored: given name, family name, email, phone, fiscal code, reason.
async fn person(s: &Server, id: i64) -> (String, String, String, String, String, String) {
    sqlx::query_as("SELECT given_name, family_name, email, phone, fiscal_code, reason FROM appointment WHERE id = $1")
        .bind(id)
        .fetch_one(s.state.store.pool())
        .await
        .unwrap()
}

fn blank() -> (String, String, String, String, String, String) {
    Default::default()
}

on_both_databases!(
    personal_data_is_removed_when_it_no_longer_serves,
    |s: Server| async move {
        let when = s.next(Tue, 9, 0);
        let kept = s
            .confirmed(demo::TARI, when, "phone", "resta@example.it")
            .await;
        let never = s
            .book(demo::TARI, s.next(Tue, 9, 15), "phone", "mai@example.it")
            .await
            .unwrap();
        s.tick().await;
        assert_ne!(person(&s, never).await, blank());

        // Two hours and a bit: the unverified booking expires and its person's data goes.
        s.clock.advance(chrono::Duration::minutes(125));
        s.tick().await;
        assert_eq!(s.status(never).await, booking::Status::Expired);
        assert_eq!(person(&s, never).await, blank());
        let kept_data = person(&s, kept).await;
        assert_eq!(kept_data.2, "resta@example.it");
        assert_eq!(s.status(kept).await, booking::Status::Confirmed);

        // Over a month after the emails were sent: recipients and bodies go; the appointment,
        // now past, keeps its person's data until a year after its end.
        s.clock.set(when + chrono::Duration::days(45));
        s.tick().await;
        let mails = s.emails(kept).await;
        assert!(!mails.is_empty());
        assert!(mails
            .iter()
            .all(|m| m.to.is_empty() && m.text.is_empty() && m.html.is_empty() && m.ics.is_none()));
        assert_eq!(person(&s, kept).await, kept_data);

        // A booking made now, for the coming week, is not touched by any of this.
        let future = s
            .confirmed(demo::TARI, s.next(Thu, 9, 0), "phone", "futuro@example.it")
            .await;

        // A year and a day after the appointment: its person's data goes, its count stays.
        s.clock.set(when + chrono::Duration::days(366));
        s.tick().await;
        assert_eq!(person(&s, kept).await, blank());
        let a = s.state.store.appointment(kept).await.unwrap();
        assert_eq!(
            (a.status, a.service_id, a.start, a.mode),
            (
                booking::Status::Confirmed,
                demo::TARI,
                when,
                booking::Mode::Phone
            )
        );
        assert_eq!(s.appointment_count().await, 3);
        let (anon_key, anon_at): (String, Option<i64>) =
            sqlx::query_as("SELECT person_key, anonymised_at FROM appointment WHERE id = $1")
                .bind(never)
                .fetch_one(s.state.store.pool())
                .await
                .unwrap();
        assert!(
            anon_key.starts_with("-anon-") && anon_at.is_some(),
            "{anon_key}"
        );
        // The later booking ended less than a year ago: kept.
        assert_eq!(person(&s, future).await.2, "futuro@example.it");
        // Once a day: the same day, nothing more runs.
        assert_eq!(
            s.state.store.daily_retention(s.clock_now()).await.unwrap(),
            None
        );
        // The manage link of an anonymised appointment still answers, with no one's data.
        let page = s.get(&s.manage_path(kept)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("resta@example.it"));
    }
);
