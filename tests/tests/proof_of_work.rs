//! The booking form's proof of work (ALTCHA) through HTTP: a booking without a valid, fresh,
//! unused answer is refused with a clear message, stores nothing and mails nobody; a town can
//! switch it off.

use reqwest::StatusCode;
use tests::*;

async fn pow_server() -> Server {
    Server::start_with(
        Db::Sqlite,
        Options {
            proof_of_work_cost: Some(1),
            ..Options::default()
        },
    )
    .await
    .expect("SQLite server")
}

/// Posts the booking form for `start` with `altcha` as the proof of work.
async fn post_booking(
    s: &Server,
    start: chrono::DateTime<chrono::Utc>,
    email: &str,
    altcha: &str,
) -> Page {
    let ts = start.timestamp().to_string();
    let form = s
        .get(&format!(
            "/servizi/{}/prenota?inizio={ts}",
            demo::CARTA_IDENTITA
        ))
        .await;
    assert!(
        form.body.contains("<altcha-widget"),
        "the form shows the widget: {form:?} {}",
        &form.body[form.body.len().saturating_sub(1500)..]
    );
    let csrf = csrf_in(&form.body).expect("csrf");
    s.post(
        &format!("/servizi/{}/prenota", demo::CARTA_IDENTITA),
        &[
            ("csrf", &csrf),
            ("start", &ts),
            ("mode", "in_person"),
            ("given_name", "Maria"),
            ("family_name", "Rossi"),
            ("email", email),
            ("fiscal_code", &fiscal_code_for(email)),
            ("reason", "Rinnovo della carta d'identità"),
            ("consent", "on"),
            ("altcha", altcha),
        ],
    )
    .await
}

fn encode(json: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_needs_a_fresh_unused_answer() {
    let s = pow_server().await;
    let challenge = s.response("/antiabuso/sfida").await;
    assert_eq!(challenge.status(), StatusCode::OK);
    assert_eq!(challenge.headers()["cache-control"], "no-store");
    let json: serde_json::Value = challenge.json().await.unwrap();
    assert_eq!(json["parameters"]["algorithm"], "PBKDF2/SHA-256");
    assert!(json["signature"].as_str().is_some_and(|s| s.len() == 64));

    let slots = [s.next(Tue, 8, 30), s.next(Wed, 8, 30), s.next(Thu, 8, 30)];
    let pow = s.state.pow.clone().expect("on");
    let expired = web::pow::solve(
        &pow.challenge_expiring_at(u64::try_from(chrono::Utc::now().timestamp()).unwrap() - 1),
    );
    // The answer to a real challenge whose expiry was pushed later: its signature no longer
    // matches.
    let mut longer: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            s.pow_answer().await,
        )
        .unwrap(),
    )
    .unwrap();
    longer["challenge"]["parameters"]["expiresAt"] = serde_json::json!(4_102_444_800u64);
    let longer = encode(longer.to_string().as_bytes());
    let test_mode = encode(br#"{"challenge":null,"solution":null,"test":true}"#);
    let control = "\u{0}\r\n\u{202e}";
    let oversized = "A".repeat(10_000);
    for (altcha, says) in [
        ("", "Manca la verifica anti-abuso"),
        (test_mode.as_str(), "Manca la verifica anti-abuso"),
        ("non è base64", "Manca la verifica anti-abuso"),
        (control, "Manca la verifica anti-abuso"),
        (oversized.as_str(), "Manca la verifica anti-abuso"),
        (longer.as_str(), "non è valida"),
        (expired.as_str(), "è scaduta"),
    ] {
        let p = post_booking(&s, slots[0], "maria.rossi@example.it", altcha).await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST, "{altcha:.30}: {p:?}");
        assert!(p.body.contains(says), "{altcha:.30}: {p:?}");
        // The form comes back filled in, with a new widget.
        assert!(p.body.contains("value=\"maria.rossi@example.it\""));
        assert!(p.body.contains("<altcha-widget"));
    }
    assert_eq!(s.appointment_count().await, 0, "nothing stored");
    assert_eq!(
        s.state.store.outbox_backlog(s.clock_now()).await.unwrap().0,
        0,
        "nobody mailed"
    );

    // A good answer books once; the same answer again is refused, for any slot or address.
    let answer = s.pow_answer().await;
    let ok = post_booking(&s, slots[0], "maria.rossi@example.it", &answer).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{ok:?}");
    let again = post_booking(&s, slots[1], "anna.bianchi@example.it", &answer).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{again:?}");
    assert!(again.body.contains("già stata usata"), "{again:?}");
    assert_eq!(s.appointment_count().await, 1);
    // In English too.
    let en = s.client.get(s.url("/lingua/en")).send().await.unwrap();
    assert!(en.status().is_redirection());
    let p = post_booking(&s, slots[2], "anna.bianchi@example.it", "").await;
    assert!(p.body.contains("The anti-abuse check is missing"), "{p:?}");
    // And the helper a citizen's browser stands for books with a fresh one each time.
    s.book(
        demo::CARTA_IDENTITA,
        slots[2],
        "in_person",
        "anna.bianchi@example.it",
    )
    .await
    .expect("booked with a fresh answer");
    assert_eq!(s.appointment_count().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_town_can_switch_it_off() {
    let s = Server::start(Db::Sqlite).await.expect("SQLite server");
    assert!(s.state.pow.is_none());
    assert_eq!(
        s.get("/antiabuso/sfida").await.status,
        StatusCode::NOT_FOUND
    );
    let start = s.next(Tue, 8, 30);
    let form = s
        .get(&format!(
            "/servizi/{}/prenota?inizio={}",
            demo::CARTA_IDENTITA,
            start.timestamp()
        ))
        .await;
    assert!(!form.body.contains("altcha"));
    s.book(
        demo::CARTA_IDENTITA,
        start,
        "in_person",
        "maria.rossi@example.it",
    )
    .await
    .expect("booked without a proof of work");
}
