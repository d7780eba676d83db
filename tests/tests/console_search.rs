//! The console's search on SQLite and PostgreSQL: an operator finds an appointment of their
//! office by its code, email, phone (as typed with spaces), fiscal code (an omocode form too)
//! or name, never one of an office they do not see; hostile queries (control characters,
//! wildcards, very long) find nothing they should not and break nothing.

use reqwest::StatusCode;
use tests::*;

on_both_databases!(
    an_operator_finds_an_appointment_by_any_of_its_keys,
    |s: Server| async move {
        let id = s
            .confirmed(demo::TARI, s.next(Tue, 9, 0), "phone", "cercami@example.it")
            .await;
        let a = s.state.store.appointment(id).await.unwrap();
        let office = s.office_of(demo::TARI).await;
        let other = s.office_of(demo::EDILIZIA).await;
        assert_ne!(office, other);
        let op = s.staff(staff::Role::Operator, &[office]).await;
        let stranger = s.staff(staff::Role::Operator, &[other]).await;
        let code = a.code.clone();
        let fiscal = a.contact.fiscal_code.clone();
        for q in [
            code.to_lowercase(),
            "CERCAMI@example.it".to_string(),
            "079 12 34 56".to_string(),
            fiscal.clone(),
            "rossi".to_string(),
            "Maria Rossi".to_string(),
        ] {
            assert!(found(&op, id, &q).await, "{q}");
            assert!(!found(&stranger, id, &q).await, "another office's: {q}");
        }
        for q in [
            "%",
            "_",
            "%%%%",
            "\u{0}\u{1b}[31m",
            &"a".repeat(2_000),
            "",
            "x",
        ] {
            assert!(!found(&op, id, q).await, "{q:?}");
        }
    }
);

/// Whether the search for `q` lists the appointment `id`.
async fn found(b: &Browser, id: i64, q: &str) -> bool {
    let p = b.get(&format!("/ufficio/cerca?q={}", urlencode(q))).await;
    assert_eq!(p.status, StatusCode::OK, "{q:?}");
    p.body.contains(&format!("/ufficio/appuntamenti/{id}"))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
