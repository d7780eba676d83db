//! No double booking, ever: many citizens press "book" for the same slot at the same moment,
//! through HTTP, on SQLite and on PostgreSQL. The database's unique seat index decides.

use futures::future::join_all;
use reqwest::StatusCode;
use tests::*;

const CLIENTS: usize = 50;

/// Fires `CLIENTS` bookings at one slot at once; returns (accepted, refused as taken).
async fn stampede(
    s: &Server,
    service: i64,
    start: chrono::DateTime<chrono::Utc>,
    mode: &str,
) -> (usize, usize) {
    let ts = start.timestamp().to_string();
    // Each citizen is a browser of their own: own cookies, own CSRF token, own email.
    let mut citizens = Vec::new();
    for i in 0..CLIENTS {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let form = client
            .get(s.url(&format!("/servizi/{service}/prenota?inizio={ts}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        citizens.push((
            client,
            csrf_in(&form).expect("form"),
            format!("citizen{i}@example.it"),
        ));
    }
    let url = s.url(&format!("/servizi/{service}/prenota"));
    let answers = join_all(citizens.iter().map(|(client, csrf, email)| {
        let form = [
            ("csrf", csrf.as_str()),
            ("start", ts.as_str()),
            ("mode", mode),
            ("given_name", "Cittadino"),
            ("family_name", "Concorrente"),
            ("email", email.as_str()),
            ("reason", "Prova di concorrenza"),
            ("consent", "on"),
        ];
        let req = client.post(&url).form(&form);
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    }))
    .await;
    let ok = answers
        .iter()
        .filter(|(st, _)| *st == StatusCode::SEE_OTHER)
        .count();
    let taken = answers
        .iter()
        .filter(|(st, body)| {
            *st == StatusCode::CONFLICT && body.contains("Questo orario non è più disponibile")
        })
        .count();
    for (st, body) in &answers {
        assert!(
            *st == StatusCode::SEE_OTHER || *st == StatusCode::CONFLICT,
            "unexpected answer {st}: {}",
            &body[..body.len().min(300)]
        );
    }
    (ok, taken)
}

on_both_databases!(fifty_citizens_one_seat, |s: Server| async move {
    let start = s.next(Tue, 9, 0);
    let (ok, taken) = stampede(&s, demo::TARI, start, "phone").await;
    assert_eq!(ok, 1, "exactly one booking succeeds");
    assert_eq!(
        taken,
        CLIENTS - 1,
        "every other citizen is told the slot was taken"
    );
    assert_eq!(s.appointment_count().await, 1);
    assert!(s.state.store.overbooked_slots().await.unwrap().is_empty());
});

on_both_databases!(fifty_citizens_two_seats, |s: Server| async move {
    let start = s.next(Tue, 10, 10);
    let (ok, taken) = stampede(&s, demo::CARTA_IDENTITA, start, "in_person").await;
    assert_eq!(ok, 2, "a slot of capacity 2 takes exactly two bookings");
    assert_eq!(taken, CLIENTS - 2);
    assert!(s.state.store.overbooked_slots().await.unwrap().is_empty());
});
