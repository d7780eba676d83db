//! A person's data at their request, through the console on SQLite and PostgreSQL: an
//! administrator finds a person's appointments by email or by fiscal code (an omocode variant
//! too), exports them as JSON and CSV, and erases them; every step is in the audit log without
//! the person's data; nobody else may; hostile searches are refused; no email goes out.

use reqwest::StatusCode;
use staff::Role;
use tests::*;

on_both_databases!(
    an_administrator_exports_and_erases_a_persons_data,
    |s: Server| async move {
        // Two appointments of Anna's (one by her email, one only by her fiscal code), one of
        // someone else's.
        let anna = "RSSNNA90A41H501";
        let anna = format!(
            "{anna}{}",
            booking::fiscal::check_char(anna.as_bytes()) as char
        );
        let both = [
            (demo::TARI, s.next(Tue, 9, 0), "phone", "anna@example.it"),
            (
                demo::CARTA_IDENTITA,
                s.next(Tue, 9, 10),
                "in_person",
                "famiglia@example.it",
            ),
        ];
        let mut ids = Vec::new();
        for (service, start, mode, email) in both {
            ids.push(
                s.confirm(s.book_as(service, start, mode, email, &anna).await)
                    .await,
            );
        }
        let [first, second] = ids[..] else {
            unreachable!()
        };
        let other = s
            .confirmed(demo::TARI, s.next(Tue, 9, 30), "phone", "altro@example.it")
            .await;
        s.tick().await;
        let sent = s.state.store.mailbox(100).await.unwrap().len();

        // Operators and coordinators may not.
        let office = s.office_of(demo::TARI).await;
        for role in [Role::Operator, Role::Coordinator] {
            let b = s.staff(role, &[office]).await;
            b.expect_status("/ufficio/dati-personali", StatusCode::FORBIDDEN)
                .await;
            b.expect_status(
                "/ufficio/dati-personali.json?email=anna%40example.it",
                StatusCode::FORBIDDEN,
            )
            .await;
        }
        let admin = s.staff(Role::Admin, &[]).await;
        let page = admin.get("/ufficio/dati-personali").await;
        assert_eq!(page.status, StatusCode::OK);

        // By email and fiscal code together (the code typed in lower case with spaces, one of
        // its omocode variants): both of Anna's, not the other.
        let variant = format!("{}M", &anna[..14]);
        let variant = format!(
            "{variant}{}",
            booking::fiscal::check_char(variant.as_bytes()) as char
        );
        let q = format!(
            "email=ANNA%40example.it&codice_fiscale={}",
            variant.to_lowercase()
        );
        let found = admin.get(&format!("/ufficio/dati-personali?{q}")).await;
        assert_eq!(found.status, StatusCode::OK);
        assert!(
            found.body.contains("Appuntamenti trovati: 2"),
            "{}",
            found.body
        );
        let json = admin
            .get(&format!("/ufficio/dati-personali.json?{q}"))
            .await;
        assert_eq!(json.status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&json.body).unwrap();
        let list = v["appointments"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|a| a["fiscal_code"] == anna.as_str()));
        assert!(list.iter().any(|a| a["email"] == "famiglia@example.it"));
        assert!(list[0]["privacy_notice_version"].as_str().is_some());
        assert!(!list[0]["emails"].as_array().unwrap().is_empty());
        let csv = admin.get(&format!("/ufficio/dati-personali.csv?{q}")).await;
        assert_eq!(csv.status, StatusCode::OK);
        let rows: Vec<&str> = csv.body.lines().collect();
        assert_eq!(rows.len(), 3, "{}", csv.body);
        assert!(rows[0].starts_with("codice,ufficio,servizio,inizio"));
        assert!(rows[1..].iter().all(|r| r.contains(&anna)));

        // Hostile or empty searches: a clear refusal, nothing found, nothing logged.
        for bad in [
            "email=&codice_fiscale=",
            "codice_fiscale=RSSNNA90A41H501X",
            "email=a%00b%40example.it",
        ] {
            let p = admin
                .get(&format!("/ufficio/dati-personali.json?{bad}"))
                .await;
            assert_eq!(p.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        let p = admin.get("/ufficio/dati-personali?email=x%00y").await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(p.body.contains("indirizzo email non valido"));

        // Erasing: the confirmation and the CSRF token are required.
        let form = [
            ("email", "anna@example.it"),
            ("codice_fiscale", anna.as_str()),
        ];
        let p = admin
            .submit(
                "/ufficio/dati-personali",
                "/ufficio/dati-personali/cancella",
                &form,
            )
            .await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        assert!(p.body.contains("spunta la conferma"));
        let p = admin
            .post(
                "/ufficio/dati-personali/cancella",
                &[("email", "anna@example.it"), ("conferma", "1")],
            )
            .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN);
        assert_eq!(s.status(first).await, booking::Status::Confirmed);
        let mut confirmed = form.to_vec();
        confirmed.push(("conferma", "1"));
        let p = admin
            .submit(
                "/ufficio/dati-personali",
                "/ufficio/dati-personali/cancella",
                &confirmed,
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
        let done = admin.get(p.location.as_deref().unwrap()).await;
        assert!(done.body.contains("Dati cancellati da 2 appuntamenti"));

        // Gone: the person's data, the pending emails; cancelled without an email; the other
        // person untouched; found no more.
        for id in [first, second] {
            let a = s.state.store.appointment(id).await.unwrap();
            assert_eq!(a.contact, booking::Contact::default(), "{id}");
            assert_eq!(a.status, booking::Status::Cancelled);
            assert!(s
                .emails(id)
                .await
                .iter()
                .all(|m| m.to.is_empty() && m.text.is_empty()));
        }
        let o = s.state.store.appointment(other).await.unwrap();
        assert_eq!(o.contact.email, "altro@example.it");
        s.tick().await;
        assert_eq!(s.state.store.mailbox(100).await.unwrap().len(), sent);
        let again = admin.get(&format!("/ufficio/dati-personali?{q}")).await;
        assert!(again.body.contains("Nessun appuntamento"));

        // The audit log says what was done and how many, never whose.
        let log = staff::audit::latest(s.state.store.pool(), None, None, 20)
            .await
            .unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert!(actions.contains(&"dati_cancellati") && actions.contains(&"dati_esportati"));
        assert!(log
            .iter()
            .all(|e| !e.detail.contains("anna") && !e.detail.contains(&anna)));
    }
);
