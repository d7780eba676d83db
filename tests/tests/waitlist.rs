//! The waitlist on SQLite and PostgreSQL (issue 17). Every time of the mayor's Monday hour is
//! taken; three people ask to wait through the page (two can do Mondays, one only Tuesdays) and
//! confirm by email. A cancellation offers the seat at once to the first one, held for her; not
//! taken in time, it goes to the second, who books it; the third is never offered a Monday. The
//! office sees who waits. Hostile forms and links change nothing and send nothing; cancelling
//! two seats at once while four wait gives two different people one seat each.

use chrono::Duration;
use reqwest::StatusCode;
use staff::Role;
use tests::*;

/// Books every time a citizen could book at the service for the office (no email, no limits),
/// and returns the appointments.
async fn fill(s: &Server, service: i64) -> Vec<i64> {
    let svc = s.state.store.service(service).await.unwrap();
    let mut ids = Vec::new();
    for slot in s.state.store.free_slots(&svc, s.clock_now()).await.unwrap() {
        for _ in 0..slot.free() {
            let mut b = tests::seed::video_booking(service, slot.start, "Pieno", "");
            b.mode = booking::Mode::InPerson;
            let a = s
                .state
                .store
                .book(&b, booking::Actor::Office, None, s.clock_now())
                .await
                .unwrap();
            ids.push(a.id);
        }
    }
    assert!(no_free_time(s, service).await);
    ids
}

/// Whether the service has no time a citizen could book now.
async fn no_free_time(s: &Server, service: i64) -> bool {
    let svc = s.state.store.service(service).await.unwrap();
    let free = s.state.store.free_slots(&svc, s.clock_now()).await;
    free.unwrap().is_empty()
}

/// The emails of `kind` sent to `to`: (subject, text).
async fn mails(s: &Server, kind: &str, to: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT text_body FROM outbox WHERE kind = $1 AND to_addr = $2 ORDER BY created_at",
    )
    .bind(kind)
    .bind(to)
    .fetch_all(s.state.store.pool())
    .await
    .unwrap()
}

async fn join(s: &Server, service: i64, fields: &[(&str, &str)]) -> Page {
    let b = s.browser();
    let path = format!("/servizi/{service}/lista-attesa");
    let csrf = b.csrf(&path).await;
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    b.post(&path, &form).await
}

fn person<'a>(name: &'a str, email: &'a str, day: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("nome", name),
        ("cognome", "Attesa"),
        ("email", email),
        ("modalita", "in_person"),
        ("modalita", "video"),
        ("giorni", day),
        ("consenso", "on"),
    ]
}

/// Joins and confirms through the email's link; returns the link's path.
async fn wait(s: &Server, service: i64, name: &str, email: &str, day: &str) -> String {
    wait_with(s, service, &person(name, email, day), email).await
}

async fn wait_with(s: &Server, service: i64, fields: &[(&str, &str)], email: &str) -> String {
    let p = join(s, service, fields).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
    let text = mails(s, "waitlist_verify", email)
        .await
        .pop()
        .expect("the email");
    let link = link_in(&text, "/lista-attesa/").expect("the link");
    let path = link.trim_start_matches(&s.base).to_string();
    let b = s.browser();
    let page = b.get(&path).await;
    assert!(page.body.contains("data-status=\"unverified\""));
    let csrf = csrf_in(&page.body).unwrap();
    let done = b.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert!(b.get(&path).await.body.contains("data-status=\"waiting\""));
    path
}

async fn status_of(s: &Server, email: &str) -> String {
    sqlx::query_scalar(
        "SELECT status FROM waitlist_entry WHERE email = $1 ORDER BY created_at DESC",
    )
    .bind(email)
    .fetch_one(s.state.store.pool())
    .await
    .unwrap()
}

on_both_databases!(
    a_freed_seat_goes_to_the_first_who_waits_then_to_the_next,
    |s: Server| async move {
        let mayor = demo::SINDACO;
        let taken = fill(&s, mayor).await;
        let (anna, bruno, carla) = ("anna@example.it", "bruno@example.it", "carla@example.it");

        // Hostile forms: refused, nothing kept, nothing sent.
        for (bad, field) in [
            (person("Anna", "non-un-indirizzo", "0"), "email"),
            (person("An\u{7}na", anna, "0"), "Nome"),
            (person("Anna", anna, "6"), "Giorni"),
            (person("Anna", anna, "0")[..6].to_vec(), "Consenso"),
            (
                [person("Anna", anna, "0"), vec![("modalita", "telepatia")]].concat(),
                "Modalit",
            ),
        ] {
            let p = join(&s, mayor, &bad).await;
            assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
            assert!(p.body.contains(field), "{field}: {p:?}");
        }
        s.expect_status("/servizi/999999/lista-attesa", StatusCode::NOT_FOUND)
            .await;
        assert!(mails(&s, "waitlist_verify", anna).await.is_empty());

        let anna_link = wait(&s, mayor, "Anna", anna, "0").await;
        // Asking again changes nothing and sends nothing more.
        assert_eq!(
            join(&s, mayor, &person("Anna", anna, "0")).await.status,
            StatusCode::SEE_OTHER
        );
        assert_eq!(mails(&s, "waitlist_verify", anna).await.len(), 1);
        wait(&s, mayor, "Bruno", bruno, "0").await;
        wait(&s, mayor, "Carla", carla, "1").await; // Tuesdays only: the mayor receives on Mondays
                                                    // A tampered link: refused, nothing changes.
        let tampered = format!("{}x", anna_link);
        assert_eq!(s.get(&tampered).await.status, StatusCode::BAD_REQUEST);

        // The office sees who waits, in order.
        let admin = s.staff(Role::Admin, &[]).await;
        let page = admin
            .get(&format!("/ufficio/config/servizi/{mayor}"))
            .await
            .body;
        let (a, b) = (page.find(anna).unwrap(), page.find(bruno).unwrap());
        assert!(a < b && page.contains(carla));
        // So do the office's operators ("Lista d'attesa" in the console), and only theirs.
        let office = s.office_of(mayor).await;
        let operator = s.staff(Role::Operator, &[office]).await;
        let list = operator.get("/ufficio/lista-attesa").await.body;
        assert!(list.contains(anna) && list.contains(carla), "{list}");
        let tari = s.office_of(demo::TARI).await;
        let stranger = s.staff(Role::Operator, &[tari]).await;
        let none = stranger.get("/ufficio/lista-attesa").await.body;
        assert!(!none.contains(anna) && none.contains("id=\"no-waiting\""));

        // A cancellation: the seat is offered at once to Anna, held for her.
        let freed = taken[taken.len() / 2];
        let seat = s.state.store.appointment(freed).await.unwrap().start;
        s.cancel(freed, booking::Actor::Office, "").await;
        assert_eq!(status_of(&s, anna).await, "offered");
        assert_eq!(status_of(&s, bruno).await, "waiting");
        let offer = mails(&s, "waitlist_offer", anna).await;
        assert_eq!(offer.len(), 1);
        assert!(offer[0].contains("tenuto per te fino a"), "{}", offer[0]);
        assert!(mails(&s, "waitlist_offer", bruno).await.is_empty());
        let held: i64 =
            sqlx::query_scalar("SELECT appointment_id FROM waitlist_entry WHERE email = $1")
                .bind(anna)
                .fetch_one(s.state.store.pool())
                .await
                .unwrap();
        let h = s.state.store.appointment(held).await.unwrap();
        assert_eq!((h.start, h.status), (seat, booking::Status::Pending));
        // Nobody else can take it meanwhile.
        assert!(no_free_time(&s, mayor).await);

        // Not taken in time: it goes to Bruno, and Anna's place ends.
        s.clock.advance(Duration::minutes(31));
        s.tick().await;
        assert_eq!(status_of(&s, anna).await, "missed");
        assert_eq!(status_of(&s, bruno).await, "offered");
        let offer = mails(&s, "waitlist_offer", bruno).await.pop().unwrap();
        let link = link_in(&offer, "/conferma/").unwrap();
        let b = s.browser();
        let path = link.trim_start_matches(&s.base);
        let csrf = csrf_in(&b.get(path).await.body).unwrap();
        assert_eq!(
            b.post(path, &[("csrf", &csrf)]).await.status,
            StatusCode::SEE_OTHER
        );
        s.tick().await;
        assert_eq!(status_of(&s, bruno).await, "booked");
        assert_eq!(status_of(&s, carla).await, "waiting");
        assert!(mails(&s, "waitlist_offer", carla).await.is_empty());
        assert!(s.state.store.overbooked_slots().await.unwrap().is_empty());
        let page = admin
            .get(&format!("/ufficio/config/servizi/{mayor}"))
            .await
            .body;
        assert!(!page.contains(anna) && !page.contains(bruno) && page.contains(carla));

        // Carla leaves; her link says so, and no offer will come.
        let carla_text = mails(&s, "waitlist_verify", carla).await.pop().unwrap();
        let carla_path = link_in(&carla_text, "/lista-attesa/")
            .unwrap()
            .trim_start_matches(&s.base)
            .to_string();
        let b = s.browser();
        let csrf = csrf_in(&b.get(&carla_path).await.body).unwrap();
        b.post(&format!("{carla_path}/esci"), &[("csrf", &csrf)])
            .await;
        assert_eq!(status_of(&s, carla).await, "left");
    }
);

on_both_databases!(
    two_seats_freed_at_once_go_to_two_different_people,
    |s: Server| async move {
        let mayor = demo::SINDACO;
        let taken = fill(&s, mayor).await;
        let people = [
            "uno@example.it",
            "due@example.it",
            "tre@example.it",
            "quattro@example.it",
        ];
        for (i, p) in people.iter().enumerate() {
            wait(&s, mayor, &format!("Persona{i}"), p, "0").await;
        }
        let (x, y) = (taken[1], taken[taken.len() - 2]);
        let st = s.state.store.clone();
        let now = s.clock_now();
        let e = office_entry("annullato", x, &s);
        let f = office_entry("annullato", y, &s);
        let (a, b) = tokio::join!(
            st.cancel(x, booking::Actor::Office, "", &e, now),
            st.cancel(y, booking::Actor::Office, "", &f, now)
        );
        a.unwrap();
        b.unwrap();
        s.tick().await;
        let mut offered = Vec::new();
        for p in people {
            if status_of(&s, p).await == "offered" {
                offered.push(p);
            }
        }
        let all: Vec<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT email, status, appointment_id FROM waitlist_entry ORDER BY position",
        )
        .fetch_all(s.state.store.pool())
        .await
        .unwrap();
        assert_eq!(
            offered,
            people[..2].to_vec(),
            "first come, first served: {all:?}"
        );
        assert!(s.state.store.overbooked_slots().await.unwrap().is_empty());
        let held: Vec<i64> = sqlx::query_scalar(
            "SELECT appointment_id FROM waitlist_entry WHERE status = 'offered' ORDER BY id",
        )
        .fetch_all(s.state.store.pool())
        .await
        .unwrap();
        let starts: Vec<_> = {
            let mut v = Vec::new();
            for h in &held {
                v.push(s.state.store.appointment(*h).await.unwrap().start);
            }
            v
        };
        assert_eq!(starts.len(), 2);
        assert_ne!(starts[0], starts[1]);
    }
);

on_both_databases!(
    a_place_for_one_day_waits_for_that_day_only,
    |s: Server| async move {
        let mayor = demo::SINDACO;
        let taken = fill(&s, mayor).await;
        let last = *taken.last().unwrap();
        let day = day_of(s.state.store.appointment(last).await.unwrap().start).to_string();
        let yesterday = (day_of(s.clock_now()) - Duration::days(1)).to_string();
        // A day citizens cannot book is refused.
        let mut bad = person("Solo", "solo@example.it", "0");
        bad.push(("giorno", yesterday.as_str()));
        let p = join(&s, mayor, &bad).await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(p.body.contains("Giorno"), "{p:?}");
        // "Solo" waits for that one Monday, first in line; "Sempre" for any Monday, after.
        let mut only = person("Solo", "solo@example.it", "0");
        only.push(("giorno", day.as_str()));
        wait_with(&s, mayor, &only, "solo@example.it").await;
        wait(&s, mayor, "Sempre", "sempre@example.it", "0").await;
        // A seat on an earlier Monday: not Solo's day, so it goes to Sempre.
        s.cancel(taken[0], booking::Actor::Office, "").await;
        assert_eq!(status_of(&s, "solo@example.it").await, "waiting");
        assert_eq!(status_of(&s, "sempre@example.it").await, "offered");
        // A seat on Solo's day: Solo's.
        s.cancel(last, booking::Actor::Office, "").await;
        assert_eq!(status_of(&s, "solo@example.it").await, "offered");
    }
);

on_both_databases!(
    erasing_a_person_s_data_deletes_their_places_on_waitlists,
    |s: Server| async move {
        fill(&s, demo::SINDACO).await;
        wait(&s, demo::SINDACO, "Dora", "Dora+lista@Example.it", "0").await;
        wait(&s, demo::SINDACO, "Ezio", "ezio@example.it", "0").await;
        let admin = s.staff(Role::Admin, &[]).await;
        let p = admin
            .submit(
                "/ufficio/dati-personali",
                "/ufficio/dati-personali/cancella",
                &[("email", "dora@example.it"), ("conferma", "1")],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{p:?}");
        let left: Vec<String> = sqlx::query_scalar("SELECT email FROM waitlist_entry")
            .fetch_all(s.state.store.pool())
            .await
            .unwrap();
        assert_eq!(left, vec!["ezio@example.it".to_string()]);
    }
);
