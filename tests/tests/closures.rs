//! An office's extraordinary closure on SQLite and PostgreSQL (issue 17): the administrator
//! closes the registry office for a day with a reason; the day has no slot, the office's public
//! page says why; the closure's page lists the appointments it hits, each with a proposed free
//! time, and moves them all there in one action (each citizen gets the updated invitation with
//! the reason) while another office's appointment stays; a second closure cancels its
//! appointment in one action; deleting a closure opens its days again. Hostile forms (a range
//! backwards, a past day, a control character, another office's calendar) change nothing, and
//! an operator cannot close an office.

use chrono::NaiveDate;
use reqwest::StatusCode;
use staff::Role;
use tests::*;

async fn open_days(s: &Server, service: i64) -> Vec<NaiveDate> {
    let api = s.get(&format!("/api/servizi/{service}/orari")).await;
    let slots: Vec<serde_json::Value> = serde_json::from_str(&api.body).unwrap();
    slots
        .iter()
        .map(|x| x["local_day"].as_str().unwrap().parse().unwrap())
        .collect()
}

async fn closures(s: &Server) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM closure")
        .fetch_one(s.state.store.pool())
        .await
        .unwrap()
}

on_both_databases!(
    a_closure_moves_or_cancels_what_it_hits_and_tells_everyone,
    |s: Server| async move {
        let nine = s.next(Tue, 8, 30);
        let day = day_of(nine);
        let cie = demo::CARTA_IDENTITA;
        let mut hit = Vec::new();
        for (i, minute) in [0, 0, 20].into_iter().enumerate() {
            let id = s
                .confirmed(
                    cie,
                    nine + chrono::Duration::minutes(minute),
                    "in_person",
                    &format!("chiusura{i}@example.it"),
                )
                .await;
            hit.push(id);
        }
        let elsewhere = s
            .confirmed(demo::TARI, s.next(Tue, 9, 0), "phone", "altro@example.it")
            .await;
        let office = s.office_of(cie).await;
        let config = format!("/ufficio/config/uffici/{office}");
        let add = format!("{config}/chiusure");
        let admin = s.staff(Role::Admin, &[]).await;
        let d = day.to_string();
        let before = day - chrono::Duration::days(1);

        // Hostile forms: refused with the reason next to the field, nothing made.
        let other_calendar = s
            .state
            .store
            .service(demo::TARI)
            .await
            .unwrap()
            .calendar_id
            .to_string();
        let yesterday = (day_of(s.clock_now()) - chrono::Duration::days(1)).to_string();
        for (fields, says) in [
            (
                vec![
                    ("dal", d.as_str()),
                    ("al", before.to_string().leak() as &str),
                    ("motivo", "Sciopero"),
                ],
                "giorno segue il primo",
            ),
            (
                vec![("dal", yesterday.as_str()), ("motivo", "Sciopero")],
                "comincia oggi o dopo",
            ),
            (
                vec![("dal", d.as_str()), ("motivo", "Sciopero\u{7}")],
                "Motivo",
            ),
            (vec![("dal", d.as_str()), ("motivo", "")], "Motivo"),
            (
                vec![("dal", "2026-02-30"), ("motivo", "Sciopero")],
                "una data come",
            ),
            (
                vec![
                    ("dal", d.as_str()),
                    ("motivo", "Sciopero"),
                    ("calendario", other_calendar.as_str()),
                ],
                "Calendario",
            ),
        ] {
            let p = admin.submit(&config, &add, &fields).await;
            assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
            assert!(p.body.contains(says), "{fields:?}: {p:?}");
        }
        assert_eq!(closures(&s).await, 0);
        let operator = s.staff(Role::Operator, &[office]).await;
        let p = operator
            .submit(
                "/ufficio",
                &add,
                &[("dal", d.as_str()), ("motivo", "Sciopero")],
            )
            .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN);
        assert_eq!(closures(&s).await, 0);

        // The closure: the day has no slot, the public page says why.
        let made = admin
            .submit(
                &config,
                &add,
                &[("dal", d.as_str()), ("motivo", "Allagamento dei locali")],
            )
            .await;
        assert_eq!(made.status, StatusCode::SEE_OTHER, "{made:?}");
        let page = made.location.unwrap();
        assert!(page.starts_with("/ufficio/config/chiusure/"), "{page}");
        assert!(!open_days(&s, cie).await.contains(&day));
        assert!(s
            .get(&format!("/uffici/{office}"))
            .await
            .body
            .contains("Allagamento dei locali"));
        let week = s.get(&format!("/servizi/{cie}?settimana={d}")).await.body;
        assert!(week.contains("id=\"closed-days\""), "the week says why");

        // The closure's page: the three appointments, each with a proposed time elsewhere.
        let listed = admin.get(&page).await.body;
        for id in &hit {
            assert!(
                listed.contains(&format!("/ufficio/appuntamenti/{id}\"")),
                "{id}"
            );
        }
        assert!(!listed.contains(&format!("/ufficio/appuntamenti/{elsewhere}\"")));
        assert!(!listed.contains("nessun orario libero"));
        assert!(!operator.get(&page).await.status.is_success());

        // Move them all: new times off the closed day, each citizen told with the reason.
        let moved = admin.submit(&page, &format!("{page}/sposta"), &[]).await;
        assert_eq!(moved.status, StatusCode::SEE_OTHER, "{moved:?}");
        assert!(moved.location.unwrap().ends_with("?spostati=3&restano=0"));
        let mut starts = Vec::new();
        for id in &hit {
            let a = s.state.store.appointment(*id).await.unwrap();
            assert_eq!(a.status, booking::Status::Confirmed);
            assert_ne!(day_of(a.start), day, "{id} moved off the closed day");
            starts.push(a.start);
            let email = s.email_of_kind(*id, "moved").await;
            assert!(
                email.text.contains("Allagamento dei locali"),
                "{}",
                email.text
            );
        }
        // No slot got more people than its capacity (2).
        for t in &starts {
            assert!(starts.iter().filter(|x| *x == t).count() <= 2);
        }
        assert_eq!(
            s.state.store.appointment(elsewhere).await.unwrap().start,
            s.next(Tue, 9, 0)
        );
        assert!(admin.get(&page).await.body.contains("id=\"no-hits\""));
        assert!(s.state.store.overbooked_slots().await.unwrap().is_empty());

        // A second closure, on the day one of them moved to: cancel them all.
        let second_day = day_of(starts[0]).to_string();
        let made = admin
            .submit(
                &config,
                &add,
                &[
                    ("dal", second_day.as_str()),
                    ("motivo", "Sciopero generale"),
                ],
            )
            .await;
        let second = made.location.unwrap();
        let on_it: Vec<i64> = {
            let mut v = Vec::new();
            for id in &hit {
                if day_of(s.state.store.appointment(*id).await.unwrap().start).to_string()
                    == second_day
                {
                    v.push(*id);
                }
            }
            v
        };
        assert!(!on_it.is_empty());
        let done = admin
            .submit(&second, &format!("{second}/annulla"), &[])
            .await;
        assert!(done
            .location
            .unwrap()
            .ends_with(&format!("?annullati={}", on_it.len())));
        for id in &on_it {
            assert_eq!(s.status(*id).await, booking::Status::Cancelled);
            let email = s.email_of_kind(*id, "cancelled").await;
            assert!(email.text.contains("Sciopero generale"), "{}", email.text);
        }

        // Deleting the first closure opens its day again.
        let gone = admin.submit(&page, &format!("{page}/elimina"), &[]).await;
        assert_eq!(gone.status, StatusCode::SEE_OTHER);
        assert!(open_days(&s, cie).await.contains(&day));
        assert_eq!(closures(&s).await, 1);
        assert_eq!(admin.get(&page).await.status, StatusCode::NOT_FOUND);
    }
);
