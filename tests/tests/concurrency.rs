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
        let code = fiscal_code_for(email);
        let form = [
            ("csrf", csrf.as_str()),
            ("start", ts.as_str()),
            ("mode", mode),
            ("given_name", "Cittadino"),
            ("family_name", "Concorrente"),
            ("email", email.as_str()),
            ("phone", "079 123456"),
            ("fiscal_code", code.as_str()),
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

/// One person books a free slot of every published service at the same instant (one browser
/// per request): exactly as many bookings as the limit allow are stored, on both databases.
async fn one_person_everywhere(s: &Server) -> (usize, usize) {
    let mut requests = Vec::new();
    for service in 1..=12 {
        let api = s.get(&format!("/api/servizi/{service}/orari")).await;
        let slots: Vec<serde_json::Value> = serde_json::from_str(&api.body).unwrap_or_default();
        let Some(slot) = slots.first() else { continue };
        let ts = slot["start_ts"].as_i64().unwrap().to_string();
        let mode = slot["modes"][0].as_str().unwrap().to_string();
        let b = s.browser();
        let csrf = b
            .csrf(&format!("/servizi/{service}/prenota?inizio={ts}"))
            .await;
        requests.push((b, service, ts, mode, csrf));
    }
    assert!(requests.len() >= 8, "most demo services have free slots");
    let answers = join_all(
        requests
            .iter()
            .map(|(b, service, ts, mode, csrf)| async move {
                b.post(
                    &format!("/servizi/{service}/prenota"),
                    &[
                        ("csrf", csrf.as_str()),
                        ("start", ts.as_str()),
                        ("mode", mode.as_str()),
                        ("given_name", "Stessa"),
                        ("family_name", "Persona"),
                        ("email", "stessa.persona@example.it"),
                        ("phone", "079 123456"),
                        ("fiscal_code", "RSSMRA85T10A562S"),
                        ("reason", "Prova di concorrenza"),
                        ("consent", "on"),
                    ],
                )
                .await
            }),
    )
    .await;
    let ok = answers
        .iter()
        .filter(|p| p.status == StatusCode::SEE_OTHER)
        .count();
    for p in &answers {
        assert!(
            p.status == StatusCode::SEE_OTHER || p.status == StatusCode::CONFLICT,
            "{p:?}"
        );
    }
    (ok, requests.len())
}

mod one_person_many_services {
    use super::*;

    async fn active_limit_holds(db: Db) {
        let opts = Options {
            max_unverified_per_email: Some(100),
            verifications_per_day: Some(100),
            ..Options::default()
        };
        let Some(s) = Server::start_with(db, opts).await else {
            return;
        };
        let (ok, _) = one_person_everywhere(&s).await;
        assert_eq!(ok, 5, "the limit of active appointments per email");
        assert_eq!(s.appointment_count().await, 5);
    }

    async fn unverified_limit_holds(db: Db) {
        let Some(s) = Server::start(db).await else {
            return;
        };
        let (ok, _) = one_person_everywhere(&s).await;
        assert_eq!(ok, 2, "the limit of unverified bookings per person");
        assert_eq!(s.appointment_count().await, 2);
    }

    tests::on_both_databases!(db active_limit, active_limit_holds);
    tests::on_both_databases!(db unverified_limit, unverified_limit_holds);
}

/// Approve, refuse, cancel and a second approve (a double click, or two operators) hit the same
/// request awaiting approval at the same instant: one decision is taken (approved or refused,
/// once), a cancellation happens only on top of an approval or instead of any decision, the
/// citizen gets one email per action that happened, in order, and the last one tells the final
/// state (never "approved" for a cancelled appointment, never two confirmations).
async fn office_actions_race(s: Server) {
    let api = s
        .get(&format!("/api/servizi/{}/orari", demo::SINDACO))
        .await;
    let slots: Vec<serde_json::Value> = serde_json::from_str(&api.body).unwrap();
    assert!(slots.len() >= 6, "the mayor has free slots: {}", api.body);
    for (i, slot) in slots.iter().take(6).enumerate() {
        let start =
            chrono::DateTime::from_timestamp(slot["start_ts"].as_i64().unwrap(), 0).unwrap();
        let mode = slot["modes"][0].as_str().unwrap();
        let id = s
            .confirmed(demo::SINDACO, start, mode, &format!("corsa{i}@example.it"))
            .await;
        let store = &s.state.store;
        let now = s.clock_now();
        let (a, r, c) = (
            office_entry("approved", id, &s),
            office_entry("refused", id, &s),
            office_entry("cancelled", id, &s),
        );
        let (approve, refuse, cancel, approve_again) = tokio::join!(
            store.approve(id, &a, now),
            store.refuse(id, "Agenda piena", &r, now),
            store.cancel(id, booking::Actor::Office, "Imprevisto", &c, now),
            store.approve(id, &a, now),
        );
        // Approving twice, or approving and refusing, cannot both happen; cancelling after an
        // approval can (the office may cancel a confirmed appointment), never before it.
        let approvals = usize::from(approve.is_ok()) + usize::from(approve_again.is_ok());
        assert!(approvals + usize::from(refuse.is_ok()) == 1 || (approvals == 0 && refuse.is_err() && cancel.is_ok()),
            "one decision: approve {approve:?}, again {approve_again:?}, refuse {refuse:?}, cancel {cancel:?}");
        let kinds: Vec<String> = s
            .emails(id)
            .await
            .into_iter()
            .map(|m| m.kind)
            .filter(|k| ["approved", "refused", "cancelled", "confirmed"].contains(&k.as_str()))
            .collect();
        let mut expected = Vec::new();
        if approvals == 1 {
            expected.push("approved");
        }
        if refuse.is_ok() {
            expected.push("refused");
        }
        if cancel.is_ok() {
            expected.push("cancelled");
        }
        assert_eq!(
            kinds,
            expected,
            "one email per action that happened, in order: {:?}",
            s.emails(id)
                .await
                .iter()
                .map(|m| (m.id, m.kind.clone(), m.created_at))
                .collect::<Vec<_>>()
        );
        let status = store.appointment(id).await.unwrap().status;
        let last = *expected.last().unwrap();
        let expected_status = match last {
            "approved" => booking::Status::Confirmed,
            "refused" => booking::Status::Refused,
            _ => booking::Status::Cancelled,
        };
        assert_eq!(status, expected_status, "the last email tells the state");
        let log = staff::audit::latest(store.pool(), None, Some(("appointment", id)), 10)
            .await
            .unwrap();
        assert_eq!(
            log.len(),
            expected.len(),
            "one audit entry per action: {log:?}"
        );
    }
}

on_both_databases!(approve_refuse_cancel_race, office_actions_race);
