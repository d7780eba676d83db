//! Cancelling in one step from any email, and adding the appointment to a calendar (issue 17):
//! every email about an active appointment links its cancellation page; following the link
//! (as a mail scanner does) changes nothing, the page's one button cancels; the booking's page
//! offers the invitation to download and Google's and Outlook's pages, with the appointment's
//! time and no link of the booking; a cancelled appointment has no invitation to download.

use reqwest::StatusCode;
use tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_email_cancels_in_one_step_and_the_booking_page_adds_to_a_calendar() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let start = s.next(Tue, 9, 0);
    let id = s
        .confirmed(demo::TARI, start, "phone", "calendario@example.it")
        .await;
    let confirmed = s.email_of_kind(id, "confirmed").await;
    let cancel = link_in(&confirmed.text, "/annulla").expect("a cancellation link");
    let manage = link_in(&confirmed.text, "/prenotazione/").expect("the booking's link");
    assert_eq!(cancel, format!("{manage}/annulla"));
    assert!(
        confirmed.html.contains("Annulla l&#39;appuntamento")
            || confirmed.html.contains("Annulla l'appuntamento")
    );

    // The booking's page: the invitation, Google's and Outlook's pages.
    let path = manage.trim_start_matches(&s.base).to_string();
    let page = s.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    let google = format!(
        "dates={}/{}",
        ics_utc(start),
        ics_utc(start + chrono::Duration::minutes(15))
    );
    assert!(page
        .body
        .contains("https://calendar.google.com/calendar/render?action=TEMPLATE"));
    assert!(page.body.contains(&google), "{google}");
    assert!(page
        .body
        .contains(&format!("startdt={}", start.format("%Y-%m-%dT%H:%M:%SZ"))));
    let token = path.trim_start_matches("/prenotazione/");
    for external in ["calendar.google.com", "outlook.live.com"] {
        let link = page
            .body
            .split('"')
            .find(|p| p.contains(external))
            .unwrap()
            .to_string();
        assert!(!link.contains(token), "no token goes to {external}");
    }
    let ics = s.response(&format!("{path}/calendario.ics")).await;
    assert_eq!(ics.status(), StatusCode::OK);
    assert_eq!(
        ics.headers()["content-type"].to_str().unwrap(),
        "text/calendar; charset=utf-8"
    );
    let ics = ics.text().await.unwrap();
    assert!(
        ics.contains(&format!("DTSTART:{}", ics_utc(start))),
        "{ics}"
    );
    assert!(ics.contains("UID:appuntamento-"), "{ics}");

    // Following the email's link changes nothing; the page's button cancels.
    let b = s.browser();
    let confirm = b.get(cancel.trim_start_matches(&s.base)).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert_eq!(s.status(id).await, booking::Status::Confirmed);
    let csrf = csrf_in(&confirm.body).unwrap();
    let done = b
        .post(cancel.trim_start_matches(&s.base), &[("csrf", &csrf)])
        .await;
    assert!(done.status.is_redirection(), "{done:?}");
    assert_eq!(s.status(id).await, booking::Status::Cancelled);
    assert_ne!(
        s.response(&format!("{path}/calendario.ics")).await.status(),
        StatusCode::OK,
        "a cancelled appointment has no invitation to download"
    );

    // A tampered link downloads nothing.
    let mut forged = token.to_string();
    forged.replace_range(..1, if forged.starts_with('A') { "B" } else { "A" });
    s.expect_status(
        &format!("/prenotazione/{forged}/calendario.ics"),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_and_moves_carry_the_cancellation_link_too() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let start = s.next(Tue, 9, 0);
    let id = s
        .confirmed(demo::TARI, start, "phone", "promemoria@example.it")
        .await;
    let later = s.next(Tue, 9, 15);
    s.reschedule(id, later).await;
    s.clock.set(later - chrono::Duration::hours(23));
    s.tick().await;
    s.tick().await;
    for kind in ["moved", "reminder_day"] {
        let m = s.email_of_kind(id, kind).await;
        let cancel = link_in(&m.text, "/annulla").unwrap_or_else(|| panic!("{kind}: {}", m.text));
        assert!(cancel.contains("/prenotazione/"), "{kind}: {cancel}");
    }
}
