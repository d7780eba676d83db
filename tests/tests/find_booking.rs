//! "I lost my email" on SQLite and PostgreSQL: an address with active appointments gets one
//! email listing them with their links (not the cancelled ones); an unknown address gets the
//! same answer and no email; a malformed address is refused with nothing queued; at most
//! `verifications_per_day` lists go to one address a day, with the same answer after.

use reqwest::StatusCode;
use tests::*;

/// The lists queued so far: (recipient, text).
async fn lists(s: &Server) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT to_addr, text_body FROM outbox WHERE kind = 'bookings_list' ORDER BY created_at",
    )
    .fetch_all(s.state.store.pool())
    .await
    .unwrap()
}

/// Asks for the list for `email` through the page, as a browser does.
async fn ask(s: &Server, email: &str) -> Page {
    let b = s.browser();
    let form = b.get("/ritrova-prenotazione").await;
    let csrf = csrf_in(&form.body).unwrap();
    b.post(
        "/ritrova-prenotazione",
        &[("csrf", &csrf), ("email", email)],
    )
    .await
}

on_both_databases!(
    a_lost_email_is_sent_again_as_one_list_and_tells_a_stranger_nothing,
    |s: Server| async move {
        let first = s
            .confirmed(demo::TARI, s.next(Tue, 9, 0), "phone", "Persa@Example.it")
            .await;
        let second = s
            .confirmed(
                demo::EDILIZIA,
                s.next(Wed, 9, 0),
                "video",
                "persa@example.it",
            )
            .await;
        let gone = s
            .book(
                demo::CARTA_IDENTITA,
                s.next(Tue, 9, 10),
                "in_person",
                "persa@example.it",
            )
            .await
            .unwrap();
        s.cancel(gone, booking::Actor::Citizen, "").await;
        let code = |id: i64| {
            let s = &s;
            async move { s.state.store.appointment(id).await.unwrap().code }
        };

        let answer = ask(&s, "persa@example.it").await;
        assert!(answer.status.is_redirection(), "{answer:?}");
        assert_eq!(
            answer.location.as_deref(),
            Some("/ritrova-prenotazione?inviata=1")
        );
        let sent = lists(&s).await;
        assert_eq!(sent.len(), 1);
        let (to, text) = &sent[0];
        assert_eq!(to, "persa@example.it");
        assert!(
            text.contains(&code(first).await) && text.contains(&code(second).await),
            "{text}"
        );
        assert!(
            !text.contains(&code(gone).await),
            "not the cancelled one: {text}"
        );
        assert!(link_in(text, "/annulla").is_some(), "{text}");
        assert!(link_in(text, "/prenotazione/").is_some(), "{text}");

        // An address without appointments: the same answer, no email.
        let unknown = ask(&s, "nessuno@example.it").await;
        assert_eq!(unknown.status, answer.status);
        assert_eq!(unknown.location, answer.location);
        assert_eq!(lists(&s).await.len(), 1);

        // Hostile addresses: refused, nothing queued.
        for bad in [
            "persa@example.it\r\nBcc: altri@example.it",
            &"x".repeat(300),
            "senza-chiocciola",
        ] {
            let p = ask(&s, bad).await;
            assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
            assert!(p.body.contains("Indirizzo email non valido"), "{bad:?}");
        }
        assert_eq!(lists(&s).await.len(), 1);

        // At most verifications_per_day (5) a day; then the same answer and nothing more.
        for _ in 0..6 {
            let p = ask(&s, "persa@example.it").await;
            assert_eq!(p.location, answer.location);
        }
        assert_eq!(lists(&s).await.len(), 5);
        s.clock.advance(chrono::Duration::hours(25));
        ask(&s, "persa@example.it").await;
        assert_eq!(lists(&s).await.len(), 6, "a day later, one more");
    }
);
