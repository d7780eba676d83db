//! A person's own data through a link sent to their email address, on SQLite and PostgreSQL:
//! the request page answers the same for a known and an unknown address, and only a known one
//! gets an email; the link shows, downloads and erases that address's appointments, is refused
//! when tampered with, and expires after a day; hostile addresses and floods are refused.

use reqwest::StatusCode;
use tests::*;

/// The link in the newest data-request email to `to`.
async fn link_to(s: &Server, to: &str) -> Option<String> {
    s.state
        .store
        .mailbox(100)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.kind == "data_request" && m.to == to)
        .and_then(|m| link_in(&m.text, "/i-miei-dati/"))
        .map(|l| l.replace(&s.base, ""))
}

on_both_databases!(
    a_person_sees_downloads_and_erases_their_data_by_email_link,
    |s: Server| async move {
        let id = s
            .confirmed(demo::TARI, s.next(Tue, 9, 0), "phone", "dati@example.it")
            .await;
        let mails = s.state.store.mailbox(100).await.unwrap().len();

        // The same answer for an unknown address, and no email.
        let page = s.get("/i-miei-dati").await;
        assert_eq!(page.status, StatusCode::OK);
        let csrf = s.csrf("/i-miei-dati").await;
        let p = s
            .post(
                "/i-miei-dati",
                &[("csrf", &csrf), ("email", "nessuno@example.it")],
            )
            .await;
        assert_eq!(p.location.as_deref(), Some("/i-miei-dati?inviata=1"));
        assert_eq!(s.state.store.mailbox(100).await.unwrap().len(), mails);
        // Hostile addresses: refused, no email.
        for bad in [
            "dati@example.it\r\nBcc: x@example.it",
            "dati@",
            &"a".repeat(300),
        ] {
            let p = s
                .post("/i-miei-dati", &[("csrf", &csrf), ("email", bad)])
                .await;
            assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
            assert!(p.body.contains("Indirizzo email non valido"));
        }
        assert_eq!(s.state.store.mailbox(100).await.unwrap().len(), mails);

        // The known address (typed in capitals) gets its link.
        let p = s
            .post(
                "/i-miei-dati",
                &[("csrf", &csrf), ("email", "DATI@example.it")],
            )
            .await;
        assert_eq!(p.location.as_deref(), Some("/i-miei-dati?inviata=1"));
        s.tick().await;
        let link = link_to(&s, "DATI@example.it").await.expect("the link");
        let code = s.state.store.appointment(id).await.unwrap().code;
        let shown = s.get(&link).await;
        assert_eq!(shown.status, StatusCode::OK);
        assert!(shown.body.contains(&code) && shown.body.contains("dati@example.it"));
        let json = s.get(&format!("{link}/dati.json")).await;
        let v: serde_json::Value = serde_json::from_str(&json.body).unwrap();
        assert_eq!(v["appointments"][0]["email"], "dati@example.it");
        assert!(s
            .get(&format!("{link}/dati.csv"))
            .await
            .body
            .contains(&code));

        // A tampered link is refused.
        let mut tampered = link.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(s.get(&tampered).await.status, StatusCode::BAD_REQUEST);

        // Erasing needs the confirmation, then removes the data and cancels what is to come.
        let page = format!("{link}/cancella");
        let csrf = s.csrf(&link).await;
        let p = s.post(&page, &[("csrf", &csrf)]).await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        assert_eq!(s.status(id).await, booking::Status::Confirmed);
        let p = s.post(&page, &[("csrf", &csrf), ("conferma", "1")]).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER);
        let after = s.get(p.location.as_deref().unwrap()).await;
        assert!(after.body.contains("Dati cancellati da 1 appuntamenti"));
        let a = s.state.store.appointment(id).await.unwrap();
        assert_eq!(a.contact, booking::Contact::default());
        assert_eq!(a.status, booking::Status::Cancelled);
        let log = staff::audit::latest(s.state.store.pool(), None, None, 5)
            .await
            .unwrap();
        assert!(log
            .iter()
            .any(|e| e.action == "dati_cancellati" && e.actor == "cittadino"));

        // A day later the link has expired.
        s.clock.advance(chrono::Duration::hours(25));
        let gone = s.get(&link).await;
        assert_eq!(gone.status, StatusCode::GONE);
        assert!(gone.body.contains("Il collegamento è scaduto"));
        // And the daily sweep forgets the request itself the day after.
        s.clock.advance(chrono::Duration::hours(24));
        s.tick().await;
        let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM data_request")
            .fetch_one(s.state.store.pool())
            .await
            .unwrap();
        assert_eq!(left, 0);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_one_address_are_limited_a_day() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    s.confirmed(demo::TARI, s.next(Tue, 9, 0), "phone", "tante@example.it")
        .await;
    let csrf = s.csrf("/i-miei-dati").await;
    for i in 0..5 {
        let p = s
            .post(
                "/i-miei-dati",
                &[("csrf", &csrf), ("email", "tante@example.it")],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{i}");
    }
    // A "+tag" address is the same person: the sixth request of the day is refused, and says so.
    let p = s
        .post(
            "/i-miei-dati",
            &[("csrf", &csrf), ("email", "TANTE+altro@example.it")],
        )
        .await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(p.body.contains("riprova domani"));
}
