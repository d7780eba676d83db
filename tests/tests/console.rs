//! The staff consoles through real HTTP on a real database: logging in, what each role may see
//! and change, CSRF, and the email each appointment action sends.

use reqwest::StatusCode;
use sqlx::Row;
use staff::Role;
use tests::*;

/// A confirmed in-person identity-card appointment (Anagrafe), booked and verified by a citizen.
async fn confirmed_cie(s: &Server, start: chrono::DateTime<chrono::Utc>, email: &str) -> i64 {
    let id = s
        .book(demo::CARTA_IDENTITA, start, "in_person", email)
        .await
        .expect("book");
    assert_eq!(s.verify(id).await.status, StatusCode::SEE_OTHER);
    id
}

/// The appointment a console redirect leads to (`/ufficio/appuntamenti/ID?esito=…`).
fn booked(p: &Page) -> i64 {
    p.location
        .as_deref()
        .and_then(|l| l.strip_prefix("/ufficio/appuntamenti/"))
        .and_then(|l| l.split('?').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a redirect to an appointment: {p:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_console_page_is_reachable_logged_out() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let id = confirmed_cie(&s, s.next(Tue, 9, 10), "a@example.it").await;
    let b = s.browser();
    for path in [
        "/ufficio".to_string(),
        format!("/ufficio/appuntamenti/{id}"),
        format!("/ufficio/appuntamenti/{id}/entra"),
        "/ufficio/attesa".into(),
        "/ufficio/prenota".into(),
        "/ufficio/statistiche".into(),
        "/ufficio/statistiche.csv".into(),
        "/ufficio/registro".into(),
        "/ufficio/config".into(),
        "/ufficio/config/uffici/1".into(),
        "/ufficio/account".into(),
        "/ufficio/password".into(),
    ] {
        let p = b.get(&path).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            p.location
                .as_deref()
                .unwrap_or("")
                .starts_with("/ufficio/accesso?dopo="),
            "{path}: {p:?}"
        );
        assert!(!p.body.contains("Rossi"), "{path}");
    }
    // A form posted without a session changes nothing, even with a valid CSRF token.
    let csrf = b.csrf("/ufficio/accesso").await;
    let p = b
        .post(
            &format!("/ufficio/appuntamenti/{id}/annulla"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(s.status(id).await, booking::Status::Confirmed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_forces_a_new_password_and_logout_ends_the_session() {
    // Behind a TLS-terminating proxy on this machine: its X-Forwarded-Proto is believed.
    let s = Server::start_with(
        Db::Sqlite,
        Options {
            trusted_proxies: Some("127.0.0.1".into()),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let (email, provisional) = s.staff_account(Role::Admin, &[]).await;
    let b = s.browser_behind_tls_proxy();

    let wrong = b.login(&email, "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Email o password non corretti"));
    let unknown = b.login("nobody@comune.esempio.it", &provisional).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(
        unknown.body.contains("Email o password non corretti"),
        "same answer for an unknown email"
    );

    let csrf = b.csrf("/ufficio/accesso").await;
    let r = b
        .client
        .post(s.url("/ufficio/accesso"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", email.as_str()),
            ("password", provisional.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/ufficio/password");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("__Host-sessione="))
        .expect("session cookie, with the __Host- prefix over HTTPS");
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Domain="), "{cookie}");
    let session_value = cookie
        .trim_start_matches("__Host-sessione=")
        .split(';')
        .next()
        .unwrap()
        .to_string();

    // Until the provisional password is replaced, every page leads to the change form.
    let p = b.get("/ufficio").await;
    assert_eq!(p.location.as_deref(), Some("/ufficio/password"));
    let csrf = b.csrf("/ufficio/password").await;
    let weak = b
        .post(
            "/ufficio/password",
            &[
                ("csrf", &csrf),
                ("current", &provisional),
                ("new", "corta"),
                ("repeat", "corta"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains("almeno 10 caratteri"));
    let ok = b.change_password(&provisional, STAFF_PASSWORD).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{ok:?}");
    let agenda = b.get("/ufficio").await;
    assert_eq!(agenda.status, StatusCode::OK);
    assert!(agenda.body.contains("Agenda"));

    // The provisional password no longer opens anything; the new one does.
    assert_eq!(
        s.browser().login(&email, &provisional).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.browser().login(&email, STAFF_PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );

    let csrf = b.csrf("/ufficio").await;
    let out = b.post("/ufficio/esci", &[("csrf", &csrf)]).await;
    assert_eq!(out.location.as_deref(), Some("/ufficio/accesso"));
    b.expect_status("/ufficio", StatusCode::SEE_OTHER).await;
    // The old cookie, replayed by hand, is dead on the server too.
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(s.url("/ufficio"))
        .header("x-forwarded-proto", "https")
        .header("cookie", format!("__Host-sessione={session_value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_the_account_for_a_while() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let (email, provisional) = s.staff_account(Role::Operator, &[1]).await;
    let b = s.browser();
    // A locked account, a wrong password and an unknown email all get the same answer.
    let error_of = |p: &Page| {
        let i = p.body.find("id=\"login-error\"").expect("login error");
        p.body[i..].split("</").next().unwrap().to_string()
    };
    let unknown = error_of(&b.login("nobody@comune.esempio.it", "wrong password").await);
    for _ in 0..4 {
        let p = b.login(&email, "wrong password").await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_of(&p), unknown);
    }
    let fifth = b.login(&email, "wrong password").await;
    assert_eq!(error_of(&fifth), unknown);
    // Locked: even the right password is refused, with the same words.
    let right = b.login(&email, &provisional).await;
    assert_eq!(right.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&right), unknown);
    s.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(
        b.login(&email, &provisional).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_stored_as_salted_argon2id_hashes() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let (email, provisional) = s.staff_account(Role::Operator, &[1]).await;
    let (other, _) = s.staff_account(Role::Operator, &[1]).await;
    let rows = sqlx::query("SELECT email, password_hash FROM account")
        .fetch_all(s.state.store.pool())
        .await
        .unwrap();
    let hashes: Vec<String> = rows.iter().map(|r| r.get("password_hash")).collect();
    assert_eq!(hashes.len(), 2);
    for h in &hashes {
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(!h.contains(&provisional));
    }
    assert_ne!(hashes[0], hashes[1]);
    assert!(rows.iter().any(|r| r.get::<String, _>("email") == email));
    assert!(rows.iter().any(|r| r.get::<String, _>("email") == other));
    // Sessions are stored as digests, not as the cookie's value.
    let b = s.browser();
    b.login(&email, &provisional).await;
    let stored: String = sqlx::query("SELECT id_hash FROM staff_session")
        .fetch_one(s.state.store.pool())
        .await
        .unwrap()
        .get("id_hash");
    let r = b.client.get(s.url("/ufficio")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(stored.len(), 43);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let anagrafe = s.office_of(demo::CARTA_IDENTITA).await;
    let id = confirmed_cie(&s, s.next(Tue, 9, 10), "a@example.it").await;
    let emails_before = s.emails(id).await.len();
    let op = s.staff(Role::Operator, &[anagrafe]).await;
    for token in ["", "forged-token-forged-token-forged-token-forg"] {
        let p = op
            .post(
                &format!("/ufficio/appuntamenti/{id}/annulla"),
                &[("csrf", token), ("messaggio", "Ufficio chiuso")],
            )
            .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{p:?}");
    }
    assert_eq!(s.status(id).await, booking::Status::Confirmed);
    assert_eq!(s.emails(id).await.len(), emails_before);
    // Login itself needs the token too.
    let p = s
        .browser()
        .post(
            "/ufficio/accesso",
            &[("email", "x@y.it"), ("password", "x")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_and_changes_only_their_office() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let anagrafe = s.office_of(demo::CARTA_IDENTITA).await;
    let edilizia = s.office_of(demo::EDILIZIA).await;
    // Both on one Wednesday, so that one week of the agenda would show both.
    let wednesday = s.next(Wed, 9, 0);
    let mine = confirmed_cie(
        &s,
        wednesday + chrono::Duration::minutes(10),
        "mine@example.it",
    )
    .await;
    let theirs = s.video_appointment(wednesday, "theirs@example.it").await;
    let op = s.staff(Role::Operator, &[anagrafe]).await;

    let week = op
        .get(&format!(
            "/ufficio?giorno={}&vista=settimana",
            day_of(wednesday)
        ))
        .await;
    assert_eq!(week.status, StatusCode::OK);
    let mine_code = s.state.store.appointment(mine).await.unwrap().code;
    let theirs_code = s.state.store.appointment(theirs).await.unwrap().code;
    assert!(week.body.contains(&mine_code));
    assert!(
        !week.body.contains(&theirs_code),
        "another office's appointment"
    );

    op.expect_status(&format!("/ufficio/appuntamenti/{mine}"), StatusCode::OK)
        .await;
    op.expect_status(
        &format!("/ufficio/appuntamenti/{theirs}"),
        StatusCode::NOT_FOUND,
    )
    .await;
    op.expect_status(
        &format!("/ufficio/appuntamenti/{theirs}/entra"),
        StatusCode::NOT_FOUND,
    )
    .await;
    let p = op
        .submit(
            "/ufficio",
            &format!("/ufficio/appuntamenti/{theirs}/annulla"),
            &[("messaggio", "x")],
        )
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert_eq!(s.status(theirs).await, booking::Status::Confirmed);
    // An unknown action, or an id that is not one, is "not found" and changes nothing.
    for path in [
        format!("/ufficio/appuntamenti/{mine}/balla"),
        "/ufficio/appuntamenti/-1/annulla".to_string(),
        "/ufficio/appuntamenti/abc/annulla".to_string(),
        "/ufficio/appuntamenti/99999999999999999999/annulla".to_string(),
    ] {
        let p = op.submit("/ufficio", &path, &[("messaggio", "x")]).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(s.status(mine).await, booking::Status::Confirmed);

    op.expect_status(
        &format!("/ufficio?ufficio={edilizia}"),
        StatusCode::FORBIDDEN,
    )
    .await;
    op.expect_status(
        &format!("/ufficio/statistiche?ufficio={edilizia}"),
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        op.get(&format!("/ufficio/prenota?servizio={}", demo::EDILIZIA))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    for path in ["/ufficio/config", "/ufficio/account", "/ufficio/registro"] {
        assert_eq!(op.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    op.expect_status(
        &format!("/ufficio/config/uffici/{anagrafe}"),
        StatusCode::FORBIDDEN,
    )
    .await;
    let p = op
        .submit(
            "/ufficio",
            "/ufficio/account",
            &[
                ("role", "operator"),
                ("uffici", &anagrafe.to_string()),
                ("email", "x@comune.esempio.it"),
                ("name", "X"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_manages_operators_of_their_offices_but_no_administrators() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let anagrafe = s.office_of(demo::CARTA_IDENTITA).await.to_string();
    let edilizia = s.office_of(demo::EDILIZIA).await.to_string();
    let c = s
        .staff(Role::Coordinator, &[anagrafe.parse().unwrap()])
        .await;
    let accounts_before = s.state.accounts.count().await.unwrap();
    for (role, office) in [
        ("admin", anagrafe.as_str()),
        ("coordinator", anagrafe.as_str()),
        ("operator", edilizia.as_str()),
    ] {
        let p = c
            .submit(
                "/ufficio/account",
                "/ufficio/account",
                &[
                    ("role", role),
                    ("uffici", office),
                    ("email", "nuovo@comune.esempio.it"),
                    ("name", "Nuovo"),
                ],
            )
            .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{role} in {office}");
    }
    assert_eq!(s.state.accounts.count().await.unwrap(), accounts_before);
    let p = c
        .submit(
            "/ufficio/account",
            "/ufficio/account",
            &[
                ("role", "operator"),
                ("uffici", &anagrafe),
                ("email", "Operatrice@Comune.Esempio.it"),
                ("name", "Giulia Sanna"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("operatrice@comune.esempio.it"));
    let provisional = p
        .body
        .split("<code id=\"provisional\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert_eq!(
        s.browser()
            .login("operatrice@comune.esempio.it", provisional)
            .await
            .location
            .as_deref(),
        Some("/ufficio/password")
    );
    // The new operator is one of the office's operators, ready for its calendars.
    let ops = s
        .state
        .store
        .office_operators(anagrafe.parse().unwrap())
        .await
        .unwrap();
    assert!(ops.iter().any(|o| o.name == "Giulia Sanna"));

    c.expect_status(
        &format!("/ufficio/config/uffici/{anagrafe}"),
        StatusCode::OK,
    )
    .await;
    c.expect_status(
        &format!("/ufficio/config/uffici/{edilizia}"),
        StatusCode::FORBIDDEN,
    )
    .await;
    let p = c
        .submit(
            "/ufficio/config",
            "/ufficio/config",
            &[("name", "Nuovo ufficio"), ("email", "n@comune.esempio.it")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let cal = s
        .state
        .store
        .service(demo::EDILIZIA)
        .await
        .unwrap()
        .calendar_id;
    let closed_day = day_of(s.next(Wed, 9, 0)).to_string();
    let p = c
        .submit(
            "/ufficio/config",
            &format!("/ufficio/config/calendari/{cal}/eccezioni"),
            &[("giorno", closed_day.as_str()), ("tipo", "chiuso")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(s
        .state
        .store
        .exceptions_of(cal)
        .await
        .unwrap()
        .iter()
        .all(|e| e.day.to_string() != closed_day));
}

on_both_databases!(each_office_action_sends_its_email, |s: Server| async move {
    let anagrafe = s.office_of(demo::CARTA_IDENTITA).await;
    let op = s.staff(Role::Operator, &[anagrafe]).await;
    let page = "/ufficio";

    // Cancel with a message: CANCEL invitation, SEQUENCE raised, the message quoted.
    let a = confirmed_cie(&s, s.next(Tue, 9, 10), "a@example.it").await;
    let p = op
        .submit(
            page,
            &format!("/ufficio/appuntamenti/{a}/annulla"),
            &[("messaggio", "Sportello chiuso per sciopero")],
        )
        .await;
    assert_eq!(
        p.location.unwrap(),
        format!("/ufficio/appuntamenti/{a}?esito=annullato")
    );
    assert_eq!(s.status(a).await, booking::Status::Cancelled);
    let mail = s.email_of_kind(a, "cancelled").await;
    assert!(mail.text.contains("Sportello chiuso per sciopero"));
    let ics = mail.ics.unwrap();
    assert!(
        ics.contains("METHOD:CANCEL") && ics.contains("SEQUENCE:1"),
        "{ics}"
    );

    // Move: REQUEST with the same UID, the new time, SEQUENCE raised.
    let b = confirmed_cie(&s, s.next(Tue, 9, 10), "b@example.it").await;
    let thursday = s.next(Thu, 10, 10);
    let new_start = thursday.timestamp().to_string();
    let p = op
        .submit(
            page,
            &format!("/ufficio/appuntamenti/{b}/sposta"),
            &[
                ("inizio", &new_start),
                ("modalita", "in_person"),
                ("messaggio", ""),
            ],
        )
        .await;
    assert_eq!(
        p.location.unwrap(),
        format!("/ufficio/appuntamenti/{b}?esito=spostato")
    );
    let moved = s.state.store.appointment(b).await.unwrap();
    assert_eq!(moved.start, thursday);
    let mail = s.email_of_kind(b, "moved").await;
    let ics = mail.ics.unwrap();
    assert!(
        ics.contains("METHOD:REQUEST")
            && ics.contains("SEQUENCE:1")
            && ics.contains(&format!("DTSTART:{}", ics_utc(thursday))),
        "{ics}"
    );
    // A slot that is not free is refused with a message, and nothing moves.
    let full = thursday.timestamp().to_string();
    let c = confirmed_cie(&s, s.next(Tue, 9, 30), "c@example.it").await;
    let d = confirmed_cie(&s, s.next(Tue, 9, 50), "d@example.it").await;
    op.submit(
        page,
        &format!("/ufficio/appuntamenti/{c}/sposta"),
        &[("inizio", &full)],
    )
    .await;
    let p = op
        .submit(
            page,
            &format!("/ufficio/appuntamenti/{d}/sposta"),
            &[("inizio", &full)],
        )
        .await;
    assert!(
        p.location.unwrap().contains("errore="),
        "capacity 2 is full"
    );
    assert_eq!(
        s.state.store.appointment(d).await.unwrap().start,
        s.next(Tue, 9, 50)
    );
    // The refused move left no trace in the audit log: the entry is written with the change.
    let d_log = staff::audit::latest(s.state.store.pool(), None, Some(("appointment", d)), 10)
        .await
        .unwrap();
    assert!(d_log.is_empty(), "{d_log:?}");

    // Approve and refuse on the mayor's moderated calendar.
    let sindaco = s.office_of(demo::SINDACO).await;
    let mayor = s.staff(Role::Operator, &[sindaco]).await;
    let e = s
        .confirmed(
            demo::SINDACO,
            s.next(Mon, 8, 0),
            "in_person",
            "e@example.it",
        )
        .await;
    assert_eq!(s.status(e).await, booking::Status::AwaitingApproval);
    mayor
        .submit(page, &format!("/ufficio/appuntamenti/{e}/approva"), &[])
        .await;
    assert_eq!(s.status(e).await, booking::Status::Confirmed);
    s.email_of_kind(e, "approved").await;
    // A second click on "approve" (or two operators at once) confirms nothing twice.
    let p = mayor
        .submit(page, &format!("/ufficio/appuntamenti/{e}/approva"), &[])
        .await;
    assert!(p.location.unwrap().contains("errore="));
    let approved = s
        .emails(e)
        .await
        .iter()
        .filter(|m| m.kind == "approved")
        .count();
    assert_eq!(approved, 1);
    let f = s
        .confirmed(
            demo::SINDACO,
            s.next(Mon, 8, 15),
            "in_person",
            "f@example.it",
        )
        .await;
    mayor
        .submit(
            page,
            &format!("/ufficio/appuntamenti/{f}/rifiuta"),
            &[("messaggio", "Il sindaco è in trasferta")],
        )
        .await;
    assert_eq!(s.status(f).await, booking::Status::Refused);
    let mail = s.email_of_kind(f, "refused").await;
    assert!(mail.text.contains("Il sindaco è in trasferta"));

    // Done and no-show only once the appointment has started; they send nothing.
    let g_start = s.next(Tue, 10, 10);
    let g = confirmed_cie(&s, g_start, "g@example.it").await;
    let sent = s.emails(g).await.len();
    let p = op
        .submit(page, &format!("/ufficio/appuntamenti/{g}/svolto"), &[])
        .await;
    assert!(p.location.unwrap().contains("errore="));
    s.clock.set(g_start + chrono::Duration::minutes(5));
    // Days later: sessions last 12 hours, so log in again.
    let op = s.staff(Role::Operator, &[anagrafe]).await;
    op.submit(page, &format!("/ufficio/appuntamenti/{g}/svolto"), &[])
        .await;
    assert_eq!(s.status(g).await, booking::Status::Done);
    let h_start = s.next(Wed, 10, 10);
    let h = confirmed_cie(&s, h_start, "h@example.it").await;
    s.clock.set(h_start + chrono::Duration::minutes(30));
    let op = s.staff(Role::Operator, &[anagrafe]).await;
    op.submit(page, &format!("/ufficio/appuntamenti/{h}/assente"), &[])
        .await;
    assert_eq!(s.status(h).await, booking::Status::NoShow);
    assert_eq!(s.emails(g).await.len(), sent);

    // A private note stays with the office.
    op.submit(
        page,
        &format!("/ufficio/appuntamenti/{h}/nota"),
        &[("nota", "Richiamare per nuovo appuntamento")],
    )
    .await;
    assert!(op
        .get(&format!("/ufficio/appuntamenti/{h}"))
        .await
        .body
        .contains("Richiamare per nuovo appuntamento"));
    assert!(!s.get(&s.manage_path(h)).await.body.contains("Richiamare"));

    // Every action is in the audit log, with who did it.
    let log = staff::audit::latest(s.state.store.pool(), None, None, 100)
        .await
        .unwrap();
    for action in [
        "annullato",
        "spostato",
        "approvato",
        "rifiutato",
        "svolto",
        "assente",
        "nota",
    ] {
        assert!(
            log.iter()
                .any(|e| e.action == action && e.account_id.is_some()),
            "{action} audited"
        );
    }
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_books_for_a_caller_today_and_the_citizen_is_confirmed_by_email() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    // A working day at 11:00: Anagrafe (8:30-12:30) still has times today.
    s.clock.set(s.next(Mon, 11, 0));
    let day = day_of(s.clock_now()).to_string();
    let anagrafe = s.office_of(demo::CARTA_IDENTITA).await;
    let op = s.staff(Role::Operator, &[anagrafe]).await;
    let page = op
        .get(&format!(
            "/ufficio/prenota?servizio={}&giorno={day}",
            demo::CARTA_IDENTITA
        ))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let today = s.today_at(11, 30).timestamp().to_string();
    assert!(
        page.body.contains(&format!("value=\"{today}\"")),
        "today's 11:30 is offered"
    );
    assert!(
        !page
            .body
            .contains(&format!("value=\"{}\"", s.today_at(10, 30).timestamp())),
        "past times are not"
    );
    let service = demo::CARTA_IDENTITA.to_string();
    let fields = [
        ("servizio", service.as_str()),
        ("giorno", day.as_str()),
        ("start", today.as_str()),
        ("mode", "in_person"),
        ("given_name", "Antonio"),
        ("family_name", "Deiana"),
        ("email", "antonio@example.it"),
        ("phone", "079 000000"),
        ("fiscal_code", "DNSNTN70A01G015H"),
        ("reason", "Ha telefonato per la carta d'identità"),
        ("consent", "on"),
    ];
    let p = op
        .submit("/ufficio/prenota", "/ufficio/prenota", &fields)
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
    let id = booked(&p);
    let a = s.state.store.appointment(id).await.unwrap();
    assert_eq!(a.status, booking::Status::Confirmed);
    assert_eq!(a.start, s.today_at(11, 30));
    let mails = s.emails(id).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].kind, "confirmed");
    assert!(mails[0].ics.as_deref().unwrap().contains("METHOD:REQUEST"));
    // A citizen cannot book the same day.
    assert!(s
        .book(
            demo::CARTA_IDENTITA,
            s.today_at(11, 50),
            "in_person",
            "x@example.it"
        )
        .await
        .is_err());
    // Bad input gets a clear error and books nothing.
    let count = s.appointment_count().await;
    let mut bad = fields;
    bad[6] = ("email", "not an email");
    let p = op
        .submit("/ufficio/prenota", "/ufficio/prenota", &bad)
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.body.contains("id=\"book-errors\""));
    assert_eq!(s.appointment_count().await, count);

    // A caller without email: fine with a phone number for a phone appointment (no email is
    // queued, the office tells them), refused for video or without a phone.
    let edilizia = s.office_of(demo::EDILIZIA).await;
    let op = s.staff(Role::Operator, &[edilizia]).await;
    let service = demo::EDILIZIA.to_string();
    let wednesday_at_ten = s.next(Wed, 10, 0);
    let wednesday_day = day_of(wednesday_at_ten).to_string();
    let wednesday = wednesday_at_ten.timestamp().to_string();
    let mut caller = vec![
        ("servizio", service.as_str()),
        ("giorno", wednesday_day.as_str()),
        ("start", wednesday.as_str()),
        ("mode", "video"),
        ("given_name", "Giuseppina"),
        ("family_name", "Mura"),
        ("email", ""),
        ("phone", "079 654321"),
        ("reason", "Chiede della pratica edilizia"),
        ("consent", "on"),
    ];
    let p = op
        .submit("/ufficio/prenota", "/ufficio/prenota", &caller)
        .await;
    assert_eq!(
        p.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "video needs the email"
    );
    assert!(
        p.body.contains("la videochiamata richiede l&#39;email")
            || p.body.contains("la videochiamata richiede l'email"),
        "{p:?}"
    );
    caller[3] = ("mode", "phone");
    let p = op
        .submit("/ufficio/prenota", "/ufficio/prenota", &caller)
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
    let id = booked(&p);
    assert_eq!(s.status(id).await, booking::Status::Confirmed);
    assert!(s.emails(id).await.is_empty());
    let p = op
        .submit(
            "/ufficio",
            &format!("/ufficio/appuntamenti/{id}/annulla"),
            &[("messaggio", "")],
        )
        .await;
    assert!(p.location.unwrap().ends_with("esito=annullato"));
    assert!(s.emails(id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_change_keeps_appointments_and_lists_those_that_no_longer_fit() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let admin = s.staff(Role::Admin, &[]).await;
    let monday = s.next(Mon, 9, 10);
    let closed = day_of(monday).to_string();
    let id = confirmed_cie(&s, monday, "a@example.it").await;
    let cal = s
        .state
        .store
        .service(demo::CARTA_IDENTITA)
        .await
        .unwrap()
        .calendar_id;
    let page = format!("/ufficio/config/calendari/{cal}");
    assert!(admin.get(&page).await.body.contains("id=\"no-misfits\""));
    let p = admin
        .submit(
            &page,
            &format!("{page}/eccezioni"),
            &[
                ("giorno", closed.as_str()),
                ("tipo", "chiuso"),
                ("etichetta", "Assemblea sindacale"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
    let after = admin.get(&page).await;
    assert!(
        after.body.contains(&format!("/ufficio/appuntamenti/{id}")),
        "listed as a misfit"
    );
    assert!(after.body.contains("non esiste più"));
    assert_eq!(s.status(id).await, booking::Status::Confirmed, "kept");
    // The closed day is gone for citizens at once.
    let slots = s
        .get(&format!("/api/servizi/{}/orari", demo::CARTA_IDENTITA))
        .await
        .body;
    assert!(!slots.contains(&at(day_of(monday), 9, 30).timestamp().to_string()));
    // Bad input: an inverted rule is refused and adds nothing.
    let rules = s.state.store.rules_of(cal).await.unwrap().len();
    let p = admin
        .submit(
            &page,
            &format!("{page}/regole"),
            &[
                ("giorni", "0"),
                ("dalle", "12:00"),
                ("alle", "09:00"),
                ("durata", "20"),
                ("pausa", "0"),
                ("capienza", "1"),
                ("modalita", "in_person"),
            ],
        )
        .await;
    // Said next to the field, in words (not the field's name), with what was typed kept.
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p.body.contains(
            "id=\"alle-error\">Alle: l&#39;orario di fine deve seguire quello di inizio."
        ) || p
            .body
            .contains("id=\"alle-error\">Alle: l'orario di fine deve seguire quello di inizio."),
        "said next to the end time"
    );
    assert!(p
        .body
        .contains("aria-invalid=\"true\" aria-describedby=\"alle-error\""));
    assert!(p.body.contains("name=\"dalle\" value=\"12:00\""));
    assert!(p.body.contains("name=\"alle\" value=\"09:00\""));
    assert_eq!(s.state.store.rules_of(cal).await.unwrap().len(), rules);
    let log = staff::audit::latest(s.state.store.pool(), None, None, 10)
        .await
        .unwrap();
    assert!(log
        .iter()
        .any(|e| e.action == "eccezione_aggiunta" && e.detail.contains(&closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_count_outcomes_and_export_csv() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let anagrafe = s.office_of(demo::CARTA_IDENTITA).await;
    let coord = s.staff(Role::Coordinator, &[anagrafe]).await;
    let a = confirmed_cie(&s, s.next(Tue, 9, 10), "a@example.it").await;
    confirmed_cie(&s, s.next(Tue, 9, 30), "b@example.it").await;
    let c = s
        .book(
            demo::CARTA_IDENTITA,
            s.next(Wed, 9, 30),
            "in_person",
            "c@example.it",
        )
        .await
        .unwrap();
    let p = s.get(&s.manage_path(a)).await;
    assert_eq!(p.status, StatusCode::OK);
    coord
        .submit(
            "/ufficio",
            &format!("/ufficio/appuntamenti/{a}/annulla"),
            &[("messaggio", "")],
        )
        .await;
    s.clock.advance(chrono::Duration::hours(3));
    s.tick().await; // c was never verified: it expires
    assert_eq!(s.status(c).await, booking::Status::Expired);
    // A period that holds every appointment above (all within two weeks of today).
    let period = format!(
        "dal={}&al={}",
        day_of(test_now()),
        day_of(test_now()) + chrono::Duration::days(20)
    );
    let page = coord.get(&format!("/ufficio/statistiche?{period}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<svg") && page.body.contains("Appuntamenti per servizio"));
    // Hostile periods: a clear refusal, no panic; far days in the agenda show the first page.
    for bad in [
        "dal=-262143-01-01&al=2026-11-30",
        "dal=2026-11-01&al=+262142-12-31",
        "dal=2026-12-01&al=2026-11-01",
    ] {
        let p = coord.get(&format!("/ufficio/statistiche?{bad}")).await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    for day in FAR_DAYS {
        let p = coord
            .get(&format!("/ufficio?giorno={day}&vista=settimana"))
            .await;
        assert_eq!(p.status, StatusCode::OK, "{day}");
        let p = coord
            .get(&format!(
                "/ufficio/prenota?servizio={}&giorno={day}",
                demo::CARTA_IDENTITA
            ))
            .await;
        assert_eq!(p.status, StatusCode::OK, "{day}");
    }
    let csv = coord
        .get(&format!("/ufficio/statistiche.csv?{period}"))
        .await
        .body;
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("ufficio,servizio,prenotati,confermati,annullati_dal_cittadino,annullati_dall_ufficio,scaduti_non_verificati"));
    let cie = lines
        .iter()
        .find(|l| l.starts_with("Anagrafe,"))
        .expect("Anagrafe line");
    let cols: Vec<&str> = cie.split(',').collect();
    // booked 3, confirmed 2, by citizen 0, by office 1, expired 1
    assert_eq!(&cols[2..7], &["3", "2", "0", "1", "1"], "{cie}");
    assert_eq!(lines.len(), 3, "one service, and the total: {csv}");
    // The same for Italian Excel: semicolons and a byte-order mark.
    let excel = coord
        .get(&format!("/ufficio/statistiche.csv?{period}&formato=excel"))
        .await
        .body;
    assert!(
        excel.starts_with("\u{FEFF}ufficio;servizio;prenotati"),
        "{excel}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_console_form_says_why_next_to_each_field_and_keeps_what_was_typed() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let admin = s.staff(Role::Admin, &[]).await;
    let offices = s.state.store.offices().await.unwrap().len();
    // A new office with no name, a malformed email and a control character in the address.
    let p = admin
        .submit(
            "/ufficio/config",
            "/ufficio/config",
            &[
                ("name", "  "),
                ("email", "uffici@"),
                ("address", "Via Roma\u{7} 1"),
                ("department", "Servizi demografici"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    for (field, words) in [
        ("name", "Nome: campo obbligatorio."),
        ("office-email", "Email: indirizzo non valido."),
        ("address", "Indirizzo: contiene caratteri non ammessi."),
    ] {
        assert!(
            p.body.contains(&format!("id=\"{field}-error\">{words}")),
            "{field}: {words}"
        );
        assert!(p
            .body
            .contains(&format!("aria-describedby=\"{field}-error\"")));
    }
    assert!(p.body.contains("value=\"Servizi demografici\""), "kept");
    assert!(p.body.contains("value=\"uffici@\""), "kept");
    assert_eq!(s.state.store.offices().await.unwrap().len(), offices);

    // A service with an out-of-range duration and no mode, on the service's own page.
    let page = format!("/ufficio/config/servizi/{}", demo::TARI);
    let before = s.state.store.service(demo::TARI).await.unwrap();
    let p = admin
        .submit(
            &page,
            &page,
            &[
                ("title", "Nuovo titolo"),
                ("max_minutes", "9999"),
                ("calendar", &before.calendar_id.to_string()),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p
        .body
        .contains("id=\"max_minutes-error\">Durata massima (minuti): un numero da 5 a 480."));
    assert!(p.body.contains("id=\"svc-modes-error\">"));
    assert!(p.body.contains("value=\"Nuovo titolo\""));
    let after = s.state.store.service(demo::TARI).await.unwrap();
    assert_eq!(after.title, before.title, "nothing saved");

    // The office makes TARI ask for the fiscal code (one appointment per person); the citizen's
    // form then requires it.
    assert!(!before.fiscal_code_required);
    let calendar = before.calendar_id.to_string();
    let p = admin
        .submit(
            &page,
            &page,
            &[
                ("title", before.title.as_str()),
                ("max_minutes", "15"),
                ("calendar", calendar.as_str()),
                ("modalita", "phone"),
                ("published", "1"),
                ("codice_fiscale", "1"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
    s.state.store.invalidate_catalogue();
    assert!(
        s.state
            .store
            .service(demo::TARI)
            .await
            .unwrap()
            .fiscal_code_required
    );
    let form = s
        .get(&format!(
            "/servizi/{}/prenota?inizio={}",
            demo::TARI,
            s.next(Tue, 9, 0).timestamp()
        ))
        .await;
    assert!(form
        .body
        .contains("name=\"fiscal_code\" value=\"\" autocomplete=\"off\" required"));

    // A new account without offices, then one with an email already taken.
    let p = admin
        .submit(
            "/ufficio/account",
            "/ufficio/account",
            &[
                ("name", "Nuova Operatrice"),
                ("email", "nuova@comune.esempio.it"),
                ("role", "operator"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{p:?}");
    assert!(p
        .body
        .contains("id=\"acc-offices-error\">Uffici: scegline almeno uno."));
    assert!(p.body.contains("value=\"Nuova Operatrice\""));
}

/// Each form of the office's page and of a calendar's page, refused, comes back as typed in its
/// own place, with its error beside it, while the page's other forms stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refused_form_of_a_configuration_page_comes_back_in_its_own_place() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let admin = s.staff(Role::Admin, &[]).await;
    let service = s.state.store.service(demo::TARI).await.unwrap();
    let office = service.office_id;
    let office_name = s.state.store.office(office).await.unwrap().name;
    let page = format!("/ufficio/config/uffici/{office}");
    let calendars = s.state.store.calendars_of(office).await.unwrap().len();
    let mails = s.state.store.mailbox(100).await.unwrap().len();
    let services = s
        .state
        .store
        .services_of(office, false)
        .await
        .unwrap()
        .len();
    for (action, fields, error) in [
        (
            page.clone(),
            vec![
                ("name", "Ufficio\u{7} tributi"),
                ("email", "tributi@comune.it"),
            ],
            "id=\"name-error\"",
        ),
        (
            format!("{page}/calendari"),
            vec![("name", "Sportello\u{7} bis"), ("horizon_days", "60")],
            "id=\"cal-name-error\"",
        ),
        (
            format!("{page}/servizi"),
            vec![("title", "Sportello\u{7} bis"), ("max_minutes", "15")],
            "id=\"title-error\"",
        ),
    ] {
        let p = admin.submit(&page, &action, &fields).await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{action}");
        assert!(p.body.contains(error), "{action}: {error}");
        assert!(
            p.body.contains("value=\"Ufficio\u{7} tributi\"")
                || p.body.contains("value=\"Sportello\u{7} bis\""),
            "{action}: kept as typed"
        );
        // The office's own form still shows its stored name unless it is the one refused.
        if action != page {
            assert!(
                p.body.contains(&format!("value=\"{office_name}\"")),
                "{action}"
            );
        }
    }
    assert_eq!(
        s.state.store.office(office).await.unwrap().name,
        office_name
    );
    assert_eq!(
        s.state.store.calendars_of(office).await.unwrap().len(),
        calendars
    );
    assert_eq!(
        s.state
            .store
            .services_of(office, false)
            .await
            .unwrap()
            .len(),
        services
    );

    let cal = service.calendar_id;
    let page = format!("/ufficio/config/calendari/{cal}");
    let before = s.state.store.calendar_settings(cal).await.unwrap();
    let exceptions = s.state.store.exceptions_of(cal).await.unwrap().len();
    for (action, fields, error, typed) in [
        (
            page.clone(),
            vec![("name", before.name.as_str()), ("horizon_days", "0")],
            "id=\"cal-horizon-error\"",
            "value=\"0\"",
        ),
        (
            format!("{page}/eccezioni"),
            vec![
                ("giorno", "31/02/2027"),
                ("tipo", "chiuso"),
                ("etichetta", "Festa"),
            ],
            "id=\"exc-day-error\"",
            "value=\"31/02/2027\"",
        ),
    ] {
        let p = admin.submit(&page, &action, &fields).await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{action}");
        assert!(p.body.contains(error), "{action}: {error}");
        assert!(p.body.contains(typed), "{action}: kept as typed");
        assert!(
            p.body.contains(&format!("value=\"{}\"", before.name)),
            "{action}"
        );
    }
    let after = s.state.store.calendar_settings(cal).await.unwrap();
    assert_eq!(after.horizon_days, before.horizon_days, "nothing saved");
    assert_eq!(
        s.state.store.exceptions_of(cal).await.unwrap().len(),
        exceptions
    );
    assert_eq!(
        s.state.store.mailbox(100).await.unwrap().len(),
        mails,
        "no email went out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_passwords_each_count_and_a_quiet_day_starts_again() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let (email, provisional) = s.staff_account(Role::Operator, &[1]).await;
    let browsers: Vec<Browser> = (0..12).map(|_| s.browser()).collect();
    let mut csrfs = Vec::new();
    for b in &browsers {
        csrfs.push(b.csrf("/ufficio/accesso").await);
    }
    futures::future::join_all(browsers.iter().zip(&csrfs).map(|(b, csrf)| {
        let email = email.clone();
        async move {
            b.post(
                "/ufficio/accesso",
                &[
                    ("csrf", csrf.as_str()),
                    ("email", email.as_str()),
                    ("password", "indovino in parallelo"),
                ],
            )
            .await
        }
    }))
    .await;
    let failed = || async {
        sqlx::query("SELECT failed_logins FROM account WHERE email = $1")
            .bind(&email)
            .fetch_one(s.state.store.pool())
            .await
            .unwrap()
            .get::<i64, _>("failed_logins")
    };
    assert_eq!(failed().await, 12, "every parallel guess counted");
    assert_eq!(
        s.browser().login(&email, &provisional).await.status,
        StatusCode::UNAUTHORIZED,
        "locked"
    );
    // After the lock (an hour at most) and a quiet day, the count starts again from one.
    s.clock.advance(chrono::Duration::hours(25));
    s.browser().login(&email, "ancora sbagliata").await;
    assert_eq!(failed().await, 1);
    assert_eq!(
        s.browser().login(&email, &provisional).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_behind_a_trusted_tls_proxy_and_a_stranger_cannot_claim_https() {
    let cookie_of = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} cookie in {:?}", r.headers()))
    };
    for (trusted, secure, name) in [
        (Some("127.0.0.1"), true, "__Host-csrf"),
        (None, false, "csrf"),
    ] {
        let s = Server::start_with(
            Db::Sqlite,
            Options {
                trusted_proxies: trusted.map(String::from),
                ..Options::default()
            },
        )
        .await
        .unwrap();
        let r = s
            .browser()
            .client
            .get(s.url("/ufficio/accesso"))
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .unwrap();
        let csrf = cookie_of(&r, name);
        assert_eq!(csrf.contains("; Secure"), secure, "{trusted:?}: {csrf}");
        assert!(csrf.contains("HttpOnly") && csrf.contains("SameSite=Strict"));
    }
}

on_both_databases!(
    an_office_is_archived_once_nothing_is_to_come_and_keeps_its_history,
    |s: Server| async move {
        let anagrafe = s.office_of(demo::CARTA_IDENTITA).await;
        let office_page = format!("/ufficio/config/uffici/{anagrafe}");
        let confirm = format!("{office_page}/archivia");
        let start = s.next(Tue, 9, 10);
        let id = confirmed_cie(&s, start, "a@example.it").await;

        // Only an administrator archives: not the office's coordinator.
        let coordinator = s.staff(Role::Coordinator, &[anagrafe]).await;
        assert!(!coordinator.get(&office_page).await.body.contains(&confirm));
        assert_eq!(
            coordinator.get(&confirm).await.status,
            StatusCode::FORBIDDEN
        );
        let p = coordinator.submit(&office_page, &confirm, &[]).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN);

        // With an appointment to come: the confirmation says why not and links to it, and a
        // post is refused with the same reason.
        let admin = s.staff(Role::Admin, &[]).await;
        assert!(admin.get(&office_page).await.body.contains(&confirm));
        let p = admin.get(&confirm).await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(p.body.contains("id=\"to-come\""), "{p:?}");
        assert!(p.body.contains(&format!("/ufficio/appuntamenti/{id}")));
        assert!(!p.body.contains(&format!("action=\"{confirm}\"")));
        let p = admin.submit(&office_page, &confirm, &[]).await;
        assert_eq!(p.status, StatusCode::CONFLICT, "{p:?}");
        assert!(p
            .body
            .contains("ha ancora un appuntamento attivo da svolgere"));
        assert!(s
            .get("/")
            .await
            .body
            .contains(&format!("/uffici/{anagrafe}\"")));

        // Once it is over (still "confirmed", never marked), nothing is to come: a confirmed
        // post archives it; without the CSRF token nothing happens.
        s.clock.set(start + chrono::Duration::hours(2));
        // (A new session: the first one has expired by then.)
        let admin = s.staff(Role::Admin, &[]).await;
        let p = admin.get(&confirm).await;
        assert!(p.body.contains(&format!("action=\"{confirm}\"")), "{p:?}");
        let p = admin.post(&confirm, &[("csrf", "")]).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN);
        assert!(!s.state.store.office(anagrafe).await.unwrap().archived);
        let p = admin.submit(&confirm, &confirm, &[]).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
        assert_eq!(p.location.as_deref(), Some("/ufficio/config"));

        // Gone for citizens: not listed, its pages and services not found, not bookable.
        assert!(!s
            .get("/")
            .await
            .body
            .contains(&format!("/uffici/{anagrafe}\"")));
        s.expect_status(&format!("/uffici/{anagrafe}"), StatusCode::NOT_FOUND)
            .await;
        let service = format!("/servizi/{}", demo::CARTA_IDENTITA);
        assert_eq!(s.get(&service).await.status, StatusCode::NOT_FOUND);
        let later = s.next(Tue, 9, 30);
        let refused = s
            .book(demo::CARTA_IDENTITA, later, "in_person", "b@example.it")
            .await
            .unwrap_err();
        assert_eq!(refused.status, StatusCode::NOT_FOUND);
        let v = booking::validate::ValidBooking {
            service_id: demo::CARTA_IDENTITA,
            start: later,
            mode: booking::Mode::InPerson,
            operator_id: None,
            contact: booking::Contact {
                given_name: "Ufficio".into(),
                family_name: "Prova".into(),
                reason: "prova".into(),
                ..Default::default()
            },
            consent_version: None,
            language: booking::i18n::Lang::IT,
            email_verified: false,
        };
        let by_office = s
            .state
            .store
            .book(&v, booking::Actor::Office, None, s.clock_now())
            .await;
        assert!(
            matches!(by_office, Err(booking::Error::NotFound(_))),
            "{by_office:?}"
        );
        // Gone from the console's lists, but its history stays.
        let config = admin.get("/ufficio/config").await.body;
        let archived_list = config
            .split("id=\"archived-offices\"")
            .nth(1)
            .expect("listed as archived");
        assert!(archived_list.contains(&office_page));
        assert!(!admin.get("/ufficio/prenota").await.body.contains("Carta d"));
        let p = admin.get(&format!("/ufficio/appuntamenti/{id}")).await;
        assert_eq!(p.status, StatusCode::OK);
        let log = staff::audit::latest(s.state.store.pool(), None, None, 10)
            .await
            .unwrap();
        assert!(log
            .iter()
            .any(|e| e.action == "ufficio_archiviato" && e.office_id == Some(anagrafe)));
        assert!(admin
            .get("/ufficio/registro")
            .await
            .body
            .contains("Ufficio archiviato"));

        // Put back in service, as it was.
        let p = admin.get(&office_page).await;
        assert!(p.body.contains("id=\"archived\""));
        let p = admin
            .submit(&office_page, &format!("{office_page}/ripristina"), &[])
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
        assert_eq!(s.get(&service).await.status, StatusCode::OK);
        assert!(s
            .get("/")
            .await
            .body
            .contains(&format!("/uffici/{anagrafe}\"")));
        let log = staff::audit::latest(s.state.store.pool(), None, None, 10)
            .await
            .unwrap();
        assert!(log.iter().any(|e| e.action == "ufficio_ripristinato"));
    }
);
