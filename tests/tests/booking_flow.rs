//! The citizen's whole path through HTTP, on SQLite and PostgreSQL: book, verify, get the
//! confirmation with its invitation, move, cancel; and every refusal on the way.

use reqwest::StatusCode;
use tests::*;

on_both_databases!(book_verify_move_cancel, |s: Server| async move {
    // The catalogue.
    let home = s.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    for office in [
        "Sindaco",
        "Servizi sociali",
        "Edilizia privata",
        "Tributi IMU",
        "Tributi TARI",
        "Polizia locale",
        "SUAPE",
        "Anagrafe",
    ] {
        assert!(
            home.body.contains(office),
            "{office} missing from the office list"
        );
    }
    // On a Monday at 11:00 every demo office is out of hours but Anagrafe (8:30-12:30).
    s.clock.set(s.next(Mon, 11, 0));
    let home = s.get("/").await;
    assert!(home.body.contains("Fuori orario"));
    assert!(home.body.contains("Aperto ora"));
    s.clock.set(test_now());
    let service = s.get(&format!("/servizi/{}", demo::CARTA_IDENTITA)).await;
    assert_eq!(service.status, StatusCode::OK);
    // Anagrafe is open every working day: the first bookable one is the first open day after
    // today.
    let first = [Mon, Tue, Wed, Thu, Fri]
        .into_iter()
        .map(|d| s.next(d, 8, 30))
        .min()
        .unwrap();
    let it = web::i18n::Lang::IT;
    assert!(
        service.body.contains(&it.day(day_of(first))),
        "the first open day's slots are listed"
    );
    assert!(
        !service.body.contains(&it.day(day_of(s.clock_now()))),
        "no same-day slots"
    );
    assert!(service.body.contains("Una fototessera recente"));

    // Book on a Tuesday at 8:30.
    let start = s.next(Tue, 8, 30);
    let id = s
        .book(
            demo::CARTA_IDENTITA,
            start,
            "in_person",
            "maria.rossi@example.it",
        )
        .await
        .unwrap_or_else(|p| panic!("{}: {}", p.status, p.body));
    let a = s.state.store.appointment(id).await.unwrap();
    assert_eq!(a.status, booking::Status::Pending);
    let sent = s.get(&s.sent_path(id)).await;
    assert!(sent.body.contains("m***@example.it"));
    let mails = s.emails(id).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].kind, "verify");
    assert!(mails[0].text.contains("entro 2 ore"));

    // Verify: confirmed, with the confirmation email and its invitation.
    let v = s.verify(id).await;
    assert_eq!(v.status, StatusCode::SEE_OTHER);
    assert!(v
        .location
        .as_deref()
        .unwrap()
        .ends_with("?esito=confermata"));
    let manage = s.get(v.location.as_deref().unwrap()).await;
    assert!(manage.body.contains("Prenotazione confermata"));
    assert!(manage.body.contains(&a.code));
    assert_eq!(s.status(id).await, booking::Status::Confirmed);
    let conf = s.email_of_kind(id, "confirmed").await;
    let ics = conf.ics.as_deref().unwrap();
    assert_eq!(conf.ics_method.as_deref(), Some("REQUEST"));
    assert!(ics.contains("METHOD:REQUEST"));
    assert!(ics.contains("SEQUENCE:0"));
    assert!(ics.contains(&format!("DTSTART:{}", ics_utc(start))));
    assert!(conf.text.contains("Documenti da portare"));
    assert!(conf
        .html
        .contains("<li>Una fototessera recente su sfondo bianco</li>"));
    // Verifying again changes nothing and sends nothing.
    let sent = s.emails(id).await.len();
    let again = s.verify(id).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(s.emails(id).await.len(), sent);

    // Pages reached by a token are never cached and never tell another site where they were;
    // no page runs inline script or may be framed.
    let r = s.response(&s.manage_path(id)).await;
    let h = r.headers();
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        h.get("strict-transport-security").is_none(),
        "no HSTS without a real certificate"
    );

    // Receipt.
    let receipt = s.get(&format!("{}/ricevuta", s.manage_path(id))).await;
    assert!(
        !receipt.body.contains("onclick="),
        "no inline script on the receipt"
    );
    assert_eq!(receipt.status, StatusCode::OK);
    assert!(receipt.body.contains(&a.code));

    // Move to 9:10: same UID, SEQUENCE 1.
    let path = format!("{}/sposta", s.manage_path(id));
    let csrf = s.csrf(&path).await;
    let new_start = s.next(Tue, 9, 10);
    let r = s
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("start", &new_start.timestamp().to_string()),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let moved = s.state.store.appointment(id).await.unwrap();
    assert_eq!(moved.start, new_start);
    assert_eq!(moved.code, a.code);
    let m = s.email_of_kind(id, "moved").await;
    let uid = |ics: &str| {
        ics.lines()
            .find(|l| l.starts_with("UID:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(uid(m.ics.as_deref().unwrap()), uid(ics));
    assert!(m.ics.as_deref().unwrap().contains("SEQUENCE:1"));
    assert!(m
        .ics
        .as_deref()
        .unwrap()
        .contains(&format!("DTSTART:{}", ics_utc(new_start))));

    // Cancel: no reason asked, METHOD:CANCEL, slot free again.
    let path = format!("{}/annulla", s.manage_path(id));
    let csrf = s.csrf(&path).await;
    let r = s.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(s.status(id).await, booking::Status::Cancelled);
    let c = s.email_of_kind(id, "cancelled").await;
    assert_eq!(c.ics_method.as_deref(), Some("CANCEL"));
    assert!(c.ics.as_deref().unwrap().contains("SEQUENCE:2"));
    assert_eq!(uid(c.ics.as_deref().unwrap()), uid(ics));
    // Both changes are in the office's audit log, made by the citizen.
    let log = staff::audit::latest(s.state.store.pool(), None, Some(("appointment", id)), 10)
        .await
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["annullato_cittadino", "spostato_cittadino"]);
    assert!(log
        .iter()
        .all(|e| e.actor == "cittadino" && e.account_id.is_none()));
    // Cancelling twice is refused with a clear answer.
    let r = s.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("non è più attivo"));
    // The same person can book the service again now.
    assert!(s
        .book(
            demo::CARTA_IDENTITA,
            start,
            "in_person",
            "maria.rossi@example.it"
        )
        .await
        .is_ok());
});

on_both_databases!(
    bad_input_is_refused_and_stores_nothing,
    |s: Server| async move {
        let start = s.next(Tue, 8, 30).timestamp().to_string();
        let form_page = format!("/servizi/{}/prenota?inizio={start}", demo::CARTA_IDENTITA);
        let post = format!("/servizi/{}/prenota", demo::CARTA_IDENTITA);
        let csrf = s.csrf(&form_page).await;
        let good: Vec<(&str, String)> = vec![
            ("csrf", csrf.clone()),
            ("start", start.clone()),
            ("mode", "in_person".into()),
            ("given_name", "Maria".into()),
            ("family_name", "Rossi".into()),
            ("email", "maria@example.it".into()),
            ("fiscal_code", "RSSMRA85T10A562S".into()),
            ("reason", "Rinnovo".into()),
            ("consent", "on".into()),
        ];
        let with = |k: &str, v: Option<&str>| -> Vec<(String, String)> {
            let mut f: Vec<(String, String)> = good
                .iter()
                .filter(|(n, _)| *n != k)
                .map(|(a, b)| (a.to_string(), b.clone()))
                .collect();
            if let Some(v) = v {
                f.push((k.to_string(), v.to_string()));
            }
            f
        };
        let send = |f: Vec<(String, String)>| {
            let s = &s;
            let post = post.clone();
            async move {
                let refs: Vec<(&str, &str)> =
                    f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                s.post(&post, &refs).await
            }
        };
        // Missing consent: the error is next to the checkbox, in Italian, and what was typed stays.
        let p = send(with("consent", None)).await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(p.body.contains("id=\"consent-error\""));
        assert!(p.body.contains("devi acconsentire"));
        assert!(p.body.contains("value=\"maria@example.it\""));
        // Malformed email.
        let p = send(with("email", Some("maria@"))).await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(p.body.contains("Indirizzo email non valido"));
        assert!(p
            .body
            .contains("aria-invalid=\"true\" aria-describedby=\"email-error\""));
        // Oversized fields.
        let long = "x".repeat(1001);
        let p = send(with("reason", Some(&long))).await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(p.body.contains("al massimo 1000 caratteri"));
        // A body over the limit is refused before it is read.
        let huge = "x".repeat(web::app::MAX_BODY + 1);
        let p = send(with("reason", Some(&huge))).await;
        assert_eq!(p.status, StatusCode::PAYLOAD_TOO_LARGE);
        // Today (same-day booking), a past time, a time the rules don't offer, a mode not offered.
        // The same-day refusal is said on a working day, when today's hours would offer it.
        s.clock.set(s.next(Mon, 11, 0));
        let today = s.today_at(12, 10).timestamp().to_string();
        let p = send(with("start", Some(&today))).await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(p.body.contains("non si prenota per il giorno stesso"));
        s.clock.set(test_now());
        let past = (s.next(Fri, 9, 0) - chrono::Duration::days(14))
            .timestamp()
            .to_string();
        assert_eq!(
            send(with("start", Some(&past))).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let odd = s.next(Tue, 8, 31).timestamp().to_string();
        assert_eq!(
            send(with("start", Some(&odd))).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            send(with("mode", Some("video"))).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            send(with("operator", Some("999"))).await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        // No CSRF token, or another one.
        assert_eq!(send(with("csrf", None)).await.status, StatusCode::FORBIDDEN);
        assert_eq!(
            send(with(
                "csrf",
                Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            ))
            .await
            .status,
            StatusCode::FORBIDDEN
        );
        // Names that would write their own lines into the invitation, or show reversed.
        for hostile in ["Anna\r\nX-EVIL:1", "Anna\u{202E}ossoR", "Anna\u{0}"] {
            let p = send(with("given_name", Some(hostile))).await;
            assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{hostile:?}");
            assert!(p.body.contains("id=\"given_name-error\""), "{hostile:?}");
        }
        // Nothing of the above was stored or emailed.
        assert_eq!(s.appointment_count().await, 0);
        assert!(s.state.store.mailbox(10).await.unwrap().is_empty());

        // Dates at chrono's limits in the week parameter: the first week is shown, no panic.
        for week in FAR_DAYS {
            let p = s
                .get(&format!(
                    "/servizi/{}?settimana={week}",
                    demo::CARTA_IDENTITA
                ))
                .await;
            assert_eq!(p.status, StatusCode::OK, "{week}");
        }

        // Unknown ids and tampered links.
        assert_eq!(s.get("/uffici/999").await.status, StatusCode::NOT_FOUND);
        assert_eq!(s.get("/uffici/abc").await.status, StatusCode::NOT_FOUND);
        assert_eq!(s.get("/servizi/999").await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            s.get("/servizi/999/prenota?inizio=1").await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(s.get("/nessuna/pagina").await.status, StatusCode::NOT_FOUND);
        let p = s.get("/prenotazione/abc.def").await;
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        assert!(p.body.contains("Il link non è valido"));
        let id = s
            .book(
                demo::CARTA_IDENTITA,
                s.next(Tue, 8, 30),
                "in_person",
                "maria@example.it",
            )
            .await
            .unwrap();
        let manage = s.manage_path(id);
        let mut tampered = manage.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(s.get(&tampered).await.status, StatusCode::BAD_REQUEST);
        // A manage link is not a verification link.
        let token = manage.trim_start_matches("/prenotazione/");
        assert_eq!(
            s.get(&format!("/conferma/{token}")).await.status,
            StatusCode::BAD_REQUEST
        );
        // Same person, same service, another slot: refused. The identity card counts people by
        // fiscal code, the TARI office by email address.
        let again = s
            .book(
                demo::CARTA_IDENTITA,
                s.next(Tue, 9, 30),
                "in_person",
                "MARIA@example.it",
            )
            .await
            .unwrap_err();
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert!(again.body.contains("Questa persona"));
        s.confirmed(demo::TARI, s.next(Tue, 9, 0), "phone", "maria@example.it")
            .await;
        let again = s
            .book(demo::TARI, s.next(Tue, 9, 15), "phone", "MARIA@example.it")
            .await
            .unwrap_err();
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert!(again
            .body
            .contains("Hai già un appuntamento attivo per questo servizio"));
        assert_eq!(s.appointment_count().await, 2);
    }
);

on_both_databases!(
    unverified_bookings_expire_after_two_hours,
    |s: Server| async move {
        let start = s.next(Tue, 9, 0);
        let id = s
            .book(demo::TARI, start, "phone", "luca@example.it")
            .await
            .unwrap();
        // The slot (capacity 1) is gone for others.
        let other = s
            .book(demo::TARI, start, "phone", "anna@example.it")
            .await
            .unwrap_err();
        assert_eq!(other.status, StatusCode::CONFLICT);
        s.clock.advance(chrono::Duration::minutes(119));
        s.tick().await;
        assert_eq!(s.status(id).await, booking::Status::Pending);
        s.clock.advance(chrono::Duration::minutes(2));
        s.tick().await;
        assert_eq!(s.status(id).await, booking::Status::Expired);
        // Nothing is sent for it: the address was never confirmed.
        let kinds: Vec<String> = s.emails(id).await.into_iter().map(|m| m.kind).collect();
        assert_eq!(kinds, ["verify"]);
        // The link no longer confirms, and the slot is free again.
        assert_eq!(s.verify(id).await.status, StatusCode::CONFLICT);
        let api = s.get(&format!("/api/servizi/{}/orari", demo::TARI)).await;
        assert!(api
            .body
            .contains(&format!("\"start_ts\":{}", start.timestamp())));
        assert!(s
            .book(demo::TARI, start, "phone", "anna@example.it")
            .await
            .is_ok());
    }
);

on_both_databases!(
    moderated_calendar_waits_for_the_office,
    |s: Server| async move {
        let start = s.next(Mon, 8, 0);
        let id = s
            .book(demo::SINDACO, start, "video", "mario@example.it")
            .await
            .unwrap();
        let v = s.verify(id).await;
        assert!(v.location.as_deref().unwrap().ends_with("?esito=richiesta"));
        let page = s.get(v.location.as_deref().unwrap()).await;
        assert!(page.body.contains("Richiesta inviata"));
        assert!(!page.body.contains("Prenotazione confermata"));
        assert_eq!(s.status(id).await, booking::Status::AwaitingApproval);
        let kinds: Vec<String> = s.emails(id).await.into_iter().map(|m| m.kind).collect();
        assert_eq!(kinds, vec!["verify", "request_sent"]);
        // Once the office approves, the confirmation carries the invitation and the join link.
        s.state
            .store
            .approve(id, &office_entry("approvato", id, &s), s.clock_now())
            .await
            .unwrap();
        let mails = s.emails(id).await;
        let ok = mails.iter().find(|m| m.kind == "approved").unwrap();
        assert!(ok.ics.is_some());
        let join = link_in(&ok.text, "/stanza/").expect("join link for a video appointment");
        let token = join.rsplit('/').next().unwrap();
        assert_eq!(
            s.state
                .signer
                .verify(booking::token::Purpose::RoomCitizen, token),
            Ok(id)
        );
        assert_eq!(
            s.get(&format!("/stanza/{token}")).await.status,
            StatusCode::OK
        );
    }
);

on_both_databases!(reminders_go_out_once_each, |s: Server| async move {
    let start = s.next(Wed, 9, 0);
    let id = s
        .confirmed(demo::EDILIZIA, start, "video", "paolo@example.it")
        .await;
    let count = |kind: &'static str| {
        let s = &s;
        async move { s.emails(id).await.iter().filter(|m| m.kind == kind).count() }
    };
    s.clock.set(start - chrono::Duration::hours(25));
    s.tick().await;
    assert_eq!(count("reminder_day").await, 0);
    s.clock.set(start - chrono::Duration::hours(23));
    s.tick().await;
    s.tick().await;
    assert_eq!(count("reminder_day").await, 1);
    assert_eq!(count("reminder_hour").await, 0);
    s.clock.set(start - chrono::Duration::minutes(59));
    s.tick().await;
    s.tick().await;
    assert_eq!(count("reminder_day").await, 1);
    assert_eq!(count("reminder_hour").await, 1);
    // In the local mailbox everything is delivered.
    assert!(s.emails(id).await.iter().all(|m| m.sent_at.is_some()));
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_served_and_english_is_one_click_away() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    for (path, mime) in [
        (
            "/static/bootstrap-italia/css/bootstrap-italia.used.css",
            "text/css",
        ),
        ("/static/bootstrap-italia/svg/sprites.svg", "image/svg+xml"),
        (
            "/static/bootstrap-italia/fonts/titillium-web-v10-latin-ext_latin-regular.woff2",
            "font/woff2",
        ),
        ("/static/sportello.css", "text/css"),
        ("/static/room.js", "text/javascript"),
    ] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(mime),
            "{path}"
        );
    }
    assert_eq!(
        s.get("/static/nothing.css").await.status,
        reqwest::StatusCode::NOT_FOUND
    );
    // Every page's links to assets exist, under names with their content's hash, kept a year.
    let home = s.get("/").await;
    let re = regex::Regex::new(r##"(?:href|src)="(/static/[^"#]+)"##).unwrap();
    let linked: Vec<String> = re
        .captures_iter(&home.body)
        .map(|c| c[1].to_string())
        .collect();
    assert!(linked.len() >= 3, "{linked:?}");
    let hashed = regex::Regex::new(r"\.[0-9a-f]{12}\.(css|js|svg)$").unwrap();
    for path in &linked {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK, "{path}");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{path}"
        );
        assert!(hashed.is_match(path), "{path}");
    }
    // The stylesheet travels compressed to a browser that accepts it (brotli first, then
    // gzip), whole to one that does not; a browser that has it is answered 304 with no body.
    let css = linked
        .iter()
        .find(|p| p.contains("bootstrap-italia"))
        .unwrap();
    let fetch = |encoding: &'static str, etag: Option<String>| {
        let mut r = s.client.get(s.url(css)).header("accept-encoding", encoding);
        if let Some(e) = etag {
            r = r.header("if-none-match", e);
        }
        r.send()
    };
    let plain = fetch("identity", None).await.unwrap();
    let etag = plain.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(plain.headers()["vary"], "Accept-Encoding");
    let whole = plain.bytes().await.unwrap().len();
    // Bootstrap Italia cut down to the rules the pages use (tools/purge-css.mjs): the whole
    // file is 612 KB.
    assert!((20_000..150_000).contains(&whole), "{whole}");
    let br = fetch("gzip, deflate, br", None).await.unwrap();
    assert_eq!(br.headers()["content-encoding"], "br");
    let br = br.bytes().await.unwrap().len();
    let gz = fetch("gzip", None).await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let gz = gz.bytes().await.unwrap().len();
    assert!(
        br < gz && gz < whole / 3,
        "br {br}, gzip {gz}, whole {whole}"
    );
    assert!(fetch("gzip, br;q=0", None).await.unwrap().headers()["content-encoding"] == "gzip");
    let again = fetch("br", Some(etag.clone())).await.unwrap();
    assert_eq!(again.status(), reqwest::StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());
    // A name with another hash (tampered, or from another version) is not found.
    let forged = regex::Regex::new(r"\.[0-9a-f]{12}\.")
        .unwrap()
        .replace(css, ".000000000000.");
    assert_eq!(
        s.get(&forged).await.status,
        reqwest::StatusCode::NOT_FOUND,
        "{forged}"
    );
    // The plain name still answers (a page cached before an upgrade), to be revalidated.
    let old = s.response("/static/sportello.css").await;
    assert_eq!(old.headers()["cache-control"], "public, no-cache");
    assert!(home.body.contains("<html lang=\"it\">"));
    let r = s
        .client
        .get(s.url("/lingua/en"))
        .header("referer", format!("{}/uffici/8", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/uffici/8");
    let office = s.get("/uffici/8").await;
    assert!(office.body.contains("<html lang=\"en\">"));
    assert!(office.body.contains("What is it about?"));
    assert_eq!(
        s.get("/lingua/xx").await.status,
        reqwest::StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_email_holds_at_most_the_configured_number_of_appointments() {
    let opts = Options {
        max_active_per_email: Some(2),
        ..Options::default()
    };
    let s = Server::start_with(Db::Sqlite, opts).await.unwrap();
    let who = "famiglia@example.it";
    assert!(s
        .book(demo::CARTA_IDENTITA, s.next(Tue, 8, 30), "in_person", who)
        .await
        .is_ok());
    assert!(s
        .book(demo::TARI, s.next(Tue, 9, 0), "phone", who)
        .await
        .is_ok());
    let third = s
        .book(demo::EDILIZIA, s.next(Wed, 9, 0), "video", who)
        .await
        .unwrap_err();
    assert_eq!(third.status, reqwest::StatusCode::CONFLICT);
    assert!(third.body.contains("hai già 2 appuntamenti attivi"));
    assert_eq!(s.appointment_count().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_use_the_booking_form_to_mail_someone_or_hold_seats() {
    let opts = Options {
        verifications_per_day: Some(3),
        ..Options::default()
    };
    let s = Server::start_with(Db::Sqlite, opts).await.unwrap();
    let verify_emails = |s: &Server| {
        let store = s.state.store.clone();
        async move {
            store
                .mailbox(100)
                .await
                .unwrap()
                .iter()
                .filter(|m| m.kind == "verify")
                .count()
        }
    };
    // The booker is shown what was booked, but holds no link that acts on the booking.
    let a = s
        .book(
            demo::TARI,
            s.next(Tue, 9, 0),
            "phone",
            "vittima+1@example.it",
        )
        .await
        .unwrap();
    let sent_token = s.sent_path(a).trim_start_matches("/inviata/").to_string();
    for path in [
        format!("/prenotazione/{sent_token}"),
        format!("/prenotazione/{sent_token}/annulla"),
        format!("/prenotazione/{sent_token}/sposta"),
    ] {
        assert_eq!(s.get(&path).await.status, StatusCode::BAD_REQUEST, "{path}");
    }
    let p = s
        .post(&format!("/prenotazione/{sent_token}/annulla"), &[])
        .await;
    assert_ne!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(s.status(a).await, booking::Status::Pending);
    // "+tags" and capitals are the same person: a second pending booking, then no third.
    let b = s
        .book(
            demo::TARI,
            s.next(Tue, 9, 15),
            "phone",
            "Vittima+2@Example.it",
        )
        .await
        .unwrap();
    let third = s
        .book(
            demo::TARI,
            s.next(Tue, 9, 30),
            "phone",
            "vittima+3@example.it",
        )
        .await
        .unwrap_err();
    assert_eq!(third.status, StatusCode::CONFLICT);
    assert!(third.body.contains("in attesa di conferma"), "{third:?}");
    assert_eq!(verify_emails(&s).await, 2);
    // The office cancels an unverified booking: nothing is sent to an address never confirmed.
    s.cancel(b, booking::Actor::Office, "").await;
    assert!(s.emails(b).await.iter().all(|m| m.kind == "verify"));
    // At most 3 verification emails a day to one person, whatever the tag.
    s.book(
        demo::TARI,
        s.next(Tue, 9, 45),
        "phone",
        "vittima+4@example.it",
    )
    .await
    .unwrap();
    s.verify(a).await;
    let fourth = s
        .book(
            demo::TARI,
            s.next(Tue, 10, 0),
            "phone",
            "vittima@example.it",
        )
        .await
        .unwrap_err();
    assert_eq!(fourth.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(fourth.body.contains("ultime 24 ore"), "{fourth:?}");
    assert_eq!(verify_emails(&s).await, 3, "no fourth verification email");
    // A day later the address may book again.
    s.clock.advance(chrono::Duration::hours(25));
    s.tick().await;
    assert!(s
        .book(demo::TARI, s.next(Thu, 9, 0), "phone", "vittima@example.it")
        .await
        .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_address_books_at_a_bounded_pace_behind_a_trusted_proxy_too() {
    let opts = Options {
        rate_limit: Some((2, 3)),
        trusted_proxies: Some("127.0.0.1".into()),
        max_active_per_email: Some(100),
        ..Options::default()
    };
    let s = Server::start_with(Db::Sqlite, opts).await.unwrap();
    let start = s.next(Tue, 8, 30).timestamp().to_string();
    let form_page = format!("/servizi/{}/prenota?inizio={start}", demo::CARTA_IDENTITA);
    let post = s.url(&format!("/servizi/{}/prenota", demo::CARTA_IDENTITA));
    let csrf = s.csrf(&form_page).await;
    let send = |client: &'static str, i: usize| {
        let (s, csrf, start, post) = (&s, csrf.clone(), start.clone(), post.clone());
        async move {
            let email = format!("persona{i}@example.it");
            let code = fiscal_code_for(&email);
            let r = s
                .client
                .post(post)
                .header("x-forwarded-for", client)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("start", start.as_str()),
                    ("mode", "in_person"),
                    ("given_name", "Maria"),
                    ("family_name", "Rossi"),
                    ("email", email.as_str()),
                    ("fiscal_code", code.as_str()),
                    ("reason", "Rinnovo della carta"),
                    ("consent", "on"),
                ])
                .send()
                .await
                .unwrap();
            let retry = r.headers().get("retry-after").cloned();
            (r.status(), retry, r.text().await.unwrap())
        }
    };
    // A burst of 3 from one client, then a clear refusal with Retry-After; nothing stored.
    let mut answers = Vec::new();
    for i in 0..5 {
        answers.push(send("203.0.113.7", i).await);
    }
    let refused: Vec<_> = answers
        .iter()
        .filter(|(st, _, _)| *st == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(
        refused.len(),
        2,
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    for (_, retry, body) in &refused {
        let secs: u64 = retry.as_ref().unwrap().to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&secs), "{secs}");
        assert!(body.contains("Troppe richieste da questo indirizzo"));
        assert!(body.contains("Too many requests from this address"));
    }
    // Capacity 2: two booked, the third was told the slot is taken; the 429s stored nothing.
    assert_eq!(s.appointment_count().await, 2);
    // Another client behind the same proxy has its own allowance.
    let (st, _, _) = send("198.51.100.9", 10).await;
    assert_ne!(st, StatusCode::TOO_MANY_REQUESTS);
    // The mailbox (every link of every booking) and the metrics are not on the public
    // listener at all, whoever asks, through the proxy or not; the administration listener
    // serves them.
    for path in ["/posta", "/metrics"] {
        for xff in [Some("203.0.113.7"), Some("127.0.0.1"), None] {
            let mut r = s.client.get(s.url(path));
            if let Some(x) = xff {
                r = r.header("x-forwarded-for", x);
            }
            assert_eq!(
                r.send().await.unwrap().status(),
                StatusCode::NOT_FOUND,
                "{path} {xff:?}"
            );
        }
        assert_eq!(s.admin_get(path).await.status, StatusCode::OK, "{path}");
    }
    // Pages that change nothing are not limited.
    for _ in 0..10 {
        let p = s.get(&format!("/servizi/{}", demo::CARTA_IDENTITA)).await;
        assert_eq!(p.status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_give_totals_of_the_process_with_bounded_labels() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    s.book(demo::TARI, s.next(Tue, 9, 0), "phone", "m@example.it")
        .await
        .unwrap();
    let m = s.admin_get("/metrics").await.body;
    for line in [
        "sportello_appointments{status=\"pending\"} 1",
        "sportello_outbox_queued 1",
        "sportello_relay_packets_forwarded_total 0",
        "sportello_relay_rooms 0",
    ] {
        assert!(m.lines().any(|l| l == line), "{line} in\n{m}");
    }
    assert!(m.contains("sportello_build_info{version=\""));
    assert!(m.contains("\nprocess_start_time_seconds "));
    assert!(!m.contains("room="), "no label that grows with the rooms");
    s.tick().await;
    let m = s.admin_get("/metrics").await.body;
    assert!(m.lines().any(|l| l == "sportello_outbox_queued 0"), "{m}");
}

/// The value of the series `line_start` (name and labels, as exposed) in a scrape.
fn series(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(name_and_labels)?
            .strip_prefix(' ')?
            .parse()
            .ok()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_group_bookings_and_emails_sent() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let id = s
        .book(demo::TARI, s.next(Tue, 9, 0), "phone", "m@example.it")
        .await
        .unwrap();
    let m = s.admin_get("/metrics").await.body;
    assert_eq!(series(&m, "sportello_bookings_created_total"), Some(1.0));
    assert_eq!(series(&m, "sportello_bookings_confirmed_total"), Some(0.0));
    assert_eq!(series(&m, "sportello_outbox_sent_total"), Some(0.0));
    // Verified (TARI's calendar is not moderated): confirmed; then cancelled by the citizen.
    assert_eq!(s.verify(id).await.status, StatusCode::SEE_OTHER);
    let path = format!("{}/annulla", s.manage_path(id));
    let csrf = s.csrf(&path).await;
    assert_eq!(
        s.post(&path, &[("csrf", &csrf)]).await.status,
        StatusCode::SEE_OTHER
    );
    // A second cancellation changes nothing and counts nothing.
    s.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(
        s.get("/non/esiste/affatto").await.status,
        StatusCode::NOT_FOUND
    );
    s.tick().await;
    let m = s.admin_get("/metrics").await.body;
    for (series_name, value) in [
        ("sportello_bookings_created_total", 1.0),
        ("sportello_bookings_confirmed_total", 1.0),
        ("sportello_bookings_cancelled_total", 1.0),
        // Verification, confirmation, cancellation.
        ("sportello_outbox_sent_total", 3.0),
        ("sportello_outbox_failed_total", 0.0),
        ("sportello_outbox_queued", 0.0),
        ("sportello_room_sockets", 0.0),
        (
            "sportello_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"4xx\"}",
            1.0,
        ),
    ] {
        assert_eq!(
            series(&m, series_name),
            Some(value),
            "{series_name} in\n{m}"
        );
    }
    // The booking form's POST and the links' pages count in the booking group; the form's page
    // load in the catalogue and booking groups; each request once, with its duration.
    let booking_posts = series(
        &m,
        "sportello_http_requests_total{route=\"booking\",method=\"POST\",status=\"3xx\"}",
    )
    .unwrap();
    assert!(
        booking_posts >= 3.0,
        "book, verify, cancel: {booking_posts}"
    );
    let count = series(
        &m,
        "sportello_http_request_duration_seconds_count{route=\"booking\"}",
    )
    .unwrap();
    let inf = series(
        &m,
        "sportello_http_request_duration_seconds_bucket{route=\"booking\",le=\"+Inf\"}",
    )
    .unwrap();
    assert_eq!(count, inf);
    let all_booking: f64 = m
        .lines()
        .filter(|l| l.starts_with("sportello_http_requests_total{route=\"booking\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(all_booking, count);
    // Labels come from fixed sets: no path, no token, no code.
    let groups = [
        "catalogue",
        "booking",
        "console",
        "room",
        "room_socket",
        "static",
        "health",
        "unmatched",
    ];
    for l in m.lines().filter(|l| l.contains("route=\"")) {
        let route = l
            .split("route=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(groups.contains(&route), "{l}");
    }
    assert!(!m.contains("/prenotazione") && !m.contains("esiste"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_email_counts_as_failed_and_stays_queued() {
    // An SMTP port where nothing listens.
    let port = free_port();
    let s = Server::start_with(
        Db::Sqlite,
        Options {
            smtp_port: Some(port),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    s.book(demo::TARI, s.next(Tue, 9, 0), "phone", "f@example.it")
        .await
        .unwrap();
    s.tick().await;
    let m = s.admin_get("/metrics").await.body;
    assert_eq!(
        series(&m, "sportello_outbox_failed_total"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(series(&m, "sportello_outbox_sent_total"), Some(0.0));
    assert_eq!(series(&m, "sportello_outbox_queued"), Some(1.0));
}

/// A phone appointment needs the number the office will call: the citizen's form refuses it
/// without one (blanks are none) at the field, storing and sending nothing; and the office cannot
/// switch an appointment with no number to the phone, nor one with no email to video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_appointment_needs_a_phone_number() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let start = s.next(Tue, 9, 0);
    let ts = start.timestamp().to_string();
    let form = format!("/servizi/{}/prenota?inizio={ts}", demo::TARI);
    let post = format!("/servizi/{}/prenota", demo::TARI);
    let csrf = s.csrf(&form).await;
    let fields = |phone: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("start", ts.clone()),
            ("mode", "phone".into()),
            ("given_name", "Luca".into()),
            ("family_name", "Sanna".into()),
            ("email", "luca.sanna@example.it".into()),
            ("phone", phone.into()),
            ("reason", "Variazione della superficie".into()),
            ("consent", "on".into()),
        ]
    };
    let send = |phone: &'static str| {
        let f = fields(phone);
        let s = &s;
        let post = post.clone();
        async move {
            let refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (*a, b.as_str())).collect();
            s.post(&post, &refs).await
        }
    };
    for blank in ["", "   ", "\t"] {
        let p = send(blank).await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{blank:?}");
        assert!(p.body.contains("id=\"phone-error\""), "{blank:?}");
        assert!(p.body.contains("serve il numero"), "{blank:?}");
        assert!(p.body.contains("value=\"luca.sanna@example.it\""));
    }
    assert_eq!(s.appointment_count().await, 0);
    assert!(s.state.store.mailbox(10).await.unwrap().is_empty());
    let p = send("+39 079 123456").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(s.appointment_count().await, 1);

    // A video appointment booked without a number: the office may not move it to the phone.
    let id = s
        .confirmed(demo::TARI, s.next(Tue, 9, 15), "video", "v@example.it")
        .await;
    let before = s.state.store.appointment(id).await.unwrap();
    let office = s.office_of(demo::TARI).await;
    let op = s.staff(staff::Role::Operator, &[office]).await;
    let page = format!("/ufficio/appuntamenti/{id}");
    let later = s.next(Thu, 9, 0).timestamp().to_string();
    let p = op
        .submit(
            &page,
            &format!("{page}/sposta"),
            &[("inizio", &later), ("modalita", "phone"), ("messaggio", "")],
        )
        .await;
    let back = p.location.expect("back to the appointment");
    assert!(back.contains("errore="), "{back}");
    let shown = op.get(&back).await;
    assert!(shown.body.contains("manca il numero del cittadino"));
    let after = s.state.store.appointment(id).await.unwrap();
    assert_eq!((after.start, after.mode), (before.start, before.mode));
    assert!(s.emails(id).await.iter().all(|m| m.kind != "moved"));

    // A caller the office booked by phone without an email: it may not become a video call
    // (the link goes by email).
    let booked = s
        .state
        .store
        .book(
            &booking::validate::ValidBooking {
                service_id: demo::TARI,
                start: s.next(Tue, 9, 30),
                mode: booking::Mode::Phone,
                operator_id: None,
                contact: booking::Contact {
                    given_name: "Chiamante".into(),
                    family_name: "Senza Email".into(),
                    phone: "079 555555".into(),
                    reason: "Al telefono".into(),
                    ..Default::default()
                },
                consent_version: None,
                language: booking::i18n::Lang::IT,
                email_verified: false,
            },
            booking::Actor::Office,
            None,
            s.clock_now(),
        )
        .await
        .unwrap();
    let page = format!("/ufficio/appuntamenti/{}", booked.id);
    let p = op
        .submit(
            &page,
            &format!("{page}/sposta"),
            &[("inizio", &later), ("modalita", "video"), ("messaggio", "")],
        )
        .await;
    let back = p.location.expect("back to the appointment");
    assert!(back.contains("errore="), "{back}");
    assert!(op
        .get(&back)
        .await
        .body
        .contains("manca l&#39;email del cittadino"));
    let after = s.state.store.appointment(booked.id).await.unwrap();
    assert_eq!(
        (after.start, after.mode),
        (booked.start, booking::Mode::Phone)
    );
    assert!(s.emails(booked.id).await.is_empty());
}

/// Each booking keeps which privacy notice the person consented to, and when: the version the
/// notice's page shows, for the citizen's booking and the office's alike; the office sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consent_is_stored_with_the_notices_version() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let notice = s.get("/privacy").await;
    assert_eq!(notice.status, StatusCode::OK);
    assert!(notice.body.contains("Titolare del trattamento"));
    let version = notice
        .body
        .split("<span id=\"notice-version\">")
        .nth(1)
        .and_then(|v| v.split('<').next())
        .expect("the version on the page")
        .to_string();
    assert_eq!(version.len(), 12);
    let form = s
        .get(&format!(
            "/servizi/{}/prenota?inizio={}",
            demo::TARI,
            s.next(Tue, 9, 0).timestamp()
        ))
        .await;
    assert!(
        form.body.contains("href=\"/privacy\""),
        "the consent links the notice"
    );
    let id = s
        .book(demo::TARI, s.next(Tue, 9, 0), "phone", "c@example.it")
        .await
        .unwrap();
    let stored: (i64, Option<String>) =
        sqlx::query_as("SELECT consent_at, consent_version FROM appointment WHERE id = $1")
            .bind(id)
            .fetch_one(s.state.store.pool())
            .await
            .unwrap();
    assert_eq!(stored.0, s.clock_now().timestamp());
    assert_eq!(stored.1.as_deref(), Some(version.as_str()));
    s.verify(id).await;
    let office = s.office_of(demo::TARI).await;
    let op = s.staff(staff::Role::Operator, &[office]).await;
    let page = op.get(&format!("/ufficio/appuntamenti/{id}")).await;
    assert!(
        page.body
            .contains(&format!("informativa versione {version}</dd>")),
        "{}",
        page.body
    );
}

// The identity card is one appointment per person, named by the fiscal code: a parent books for
// each child with one email. The same child again (the same code, an omocode variant of it, or
// from another email) is refused, and so are a code with a wrong check character and none at
// all; nothing refused is stored or emailed. Eight browsers booking the same child at once,
// from eight emails: one booking.
on_both_databases!(
    a_parent_books_for_each_child_with_one_email,
    |s: Server| async move {
        let api = s
            .get(&format!("/api/servizi/{}/orari", demo::CARTA_IDENTITA))
            .await;
        let slots: Vec<serde_json::Value> = serde_json::from_str(&api.body).unwrap();
        let times: Vec<chrono::DateTime<chrono::Utc>> = slots
            .iter()
            .map(|v| chrono::DateTime::from_timestamp(v["start_ts"].as_i64().unwrap(), 0).unwrap())
            .collect();
        assert!(times.len() >= 12, "free identity-card times: {}", api.body);
        let parent = "genitore@example.it";
        let (giulia, luca) = ("RSSGLI12C45A192Q", "rss lcu 15m10 a192j");
        let book = |t: usize, email: &'static str, code: String| {
            let s = &s;
            let start = times[t];
            async move {
                s.book_as(demo::CARTA_IDENTITA, start, "in_person", email, &code)
                    .await
            }
        };
        let first = book(0, parent, giulia.into()).await.expect("Giulia");
        let second = book(1, parent, luca.into()).await.expect("Luca");
        assert_ne!(first, second);
        let stored = s.state.store.appointment(second).await.unwrap();
        assert_eq!(stored.contact.fiscal_code, "RSSLCU15M10A192J");
        s.verify(first).await;
        s.verify(second).await;
        let sent = s.state.store.mailbox(100).await.unwrap().len();

        // Luca again: the same code from the same email, an omocode variant from another one.
        let check = booking::fiscal::check_char(b"RSSLCU15M10A19N") as char;
        let variant = format!("RSSLCU15M10A19N{check}");
        for (t, email, code) in [
            (2, parent, luca.to_string()),
            (3, "nonna@example.it", variant),
        ] {
            let p = book(t, email, code.clone()).await.unwrap_err();
            assert_eq!(p.status, StatusCode::CONFLICT, "{code}");
            assert!(p.body.contains("Questa persona"), "{code}: {}", p.body);
        }
        // A wrong check character, and no code: said at the field.
        for (code, says) in [
            ("RSSLCU15M10A192X", "Codice fiscale non valido"),
            ("", "Campo obbligatorio"),
        ] {
            let p = book(4, parent, code.into()).await.unwrap_err();
            assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{code:?}");
            assert!(p.body.contains("id=\"fiscal_code-error\""), "{code:?}");
            assert!(p.body.contains(says), "{code:?}");
        }
        assert_eq!(s.appointment_count().await, 2);
        assert_eq!(s.state.store.mailbox(100).await.unwrap().len(), sent);

        // A third child, booked at once from eight browsers with eight emails, eight times.
        const EMAILS: [&str; 8] = [
            "a@example.it",
            "b@example.it",
            "c@example.it",
            "d@example.it",
            "e@example.it",
            "f@example.it",
            "g@example.it",
            "h@example.it",
        ];
        let marco = booking::fiscal::check_char(b"RSSMRC18B20A192") as char;
        let marco = format!("RSSMRC18B20A192{marco}");
        let answers = futures::future::join_all(
            EMAILS
                .iter()
                .enumerate()
                .map(|(i, email)| book(5 + i, email, marco.clone())),
        )
        .await;
        let accepted = answers.iter().filter(|r| r.is_ok()).count();
        assert_eq!(accepted, 1, "{answers:?}");
        assert!(answers
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|p| p.status == StatusCode::CONFLICT));
        assert_eq!(s.appointment_count().await, 3);
    }
);

// A citizen who books in English gets every email about the appointment in English (the
// verification, the confirmation and its invitation, the reminders, the office's cancellation
// with its message), whatever language the office's staff use; the language is stored with the
// appointment. One who books in Italian keeps Italian.
on_both_databases!(
    emails_speak_the_language_of_the_booking,
    |s: Server| async move {
        let italian = s
            .book(demo::TARI, s.next(Tue, 9, 0), "phone", "rossi@example.it")
            .await
            .unwrap();
        assert_eq!(s.get("/lingua/en").await.status, StatusCode::SEE_OTHER);
        let start = s.next(Wed, 9, 0);
        let id = s
            .book(demo::EDILIZIA, start, "video", "smith@example.it")
            .await
            .unwrap();
        assert_eq!(s.language(id).await, "en");
        let verify = s.email_of_kind(id, "verify").await;
        assert!(
            verify.subject.starts_with("Confirm your booking - "),
            "{}",
            verify.subject
        );
        assert!(
            verify.text.starts_with("Dear Maria Rossi,"),
            "{}",
            verify.text
        );
        assert!(verify.html.contains("<html lang=\"en\">"));
        assert!(verify.text.contains("within 2 hours"));
        assert!(!verify.text.contains("Gentile"));
        s.verify(id).await;
        let confirmed = s.email_of_kind(id, "confirmed").await;
        assert!(confirmed.subject.starts_with("Appointment confirmed - "));
        assert!(confirmed.text.contains("Join the video call"));
        assert!(confirmed.text.contains("When: "));
        let ics = confirmed.ics.unwrap();
        assert!(ics.contains("Booking code"), "{ics}");
        // The reminders.
        s.clock.set(start - chrono::Duration::hours(23));
        s.tick().await;
        let reminder = s.email_of_kind(id, "reminder_day").await;
        assert!(reminder.subject.starts_with("Appointment reminder - "));
        assert!(reminder
            .text
            .contains("a reminder of your appointment tomorrow"));
        // The office, in Italian, cancels with a message: the citizen reads it in English.
        s.cancel(id, booking::Actor::Office, "Ufficio chiuso").await;
        let cancelled = s.email_of_kind(id, "cancelled").await;
        assert!(cancelled.subject.starts_with("Appointment cancelled - "));
        assert!(cancelled
            .text
            .contains("Message from the office: Ufficio chiuso"));
        // Italian stays Italian.
        let v = s.email_of_kind(italian, "verify").await;
        assert!(v.subject.starts_with("Conferma la tua prenotazione - "));
        assert!(v.text.starts_with("Gentile Maria Rossi,"));
    }
);

// German is built in as a third language, from its catalogue alone: the pages, the refusals on
// the form, the error pages (with the English under them) and every email about a booking
// made in German, stored with the appointment.
on_both_databases!(
    a_third_language_comes_from_its_catalogue,
    |s: Server| async move {
        let de = web::i18n::Lang::from_code("de").unwrap();
        let t = |it: &'static str| {
            let text = de.t(it);
            assert_ne!(text, it, "{it} has a German text");
            text.to_string()
        };
        assert_eq!(s.get("/lingua/de").await.status, StatusCode::SEE_OTHER);
        let office = s.get("/uffici/8").await;
        assert!(office.body.contains("<html lang=\"de\">"));
        assert!(office.body.contains(&t("Per quale argomento?")));
        assert!(!office.body.contains("Per quale argomento?"));
        // An error page speaks German, with the English under it.
        let missing = s.get("/uffici/999999").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert!(missing.body.contains(&t("Non trovato")), "{}", missing.body);
        assert!(missing
            .body
            .contains(&t("La pagina o l'elemento richiesto non esiste.").replace('\'', "&#39;")));
        assert!(missing
            .body
            .contains("The page or item you asked for does not exist."));
        // A booking in German: stored so, and its emails are German.
        let start = s.next(Wed, 9, 0);
        let id = s
            .book(demo::EDILIZIA, start, "video", "weber@example.it")
            .await
            .unwrap();
        assert_eq!(s.language(id).await, "de");
        let verify = s.email_of_kind(id, "verify").await;
        assert!(verify.html.contains("<html lang=\"de\">"));
        assert!(verify.text.starts_with(&t("Gentile")), "{}", verify.text);
        s.verify(id).await;
        let confirmed = s.email_of_kind(id, "confirmed").await;
        assert!(
            confirmed.subject.starts_with(&t("Appuntamento confermato")),
            "{}",
            confirmed.subject
        );
        // The day is written the German way.
        let when = de.day(start.with_timezone(&chrono_tz::Europe::Rome).date_naive());
        assert!(when.contains(". "), "{when}");
        assert!(confirmed.text.contains(&when), "{when}: {}", confirmed.text);
    }
);
