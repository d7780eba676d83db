//! The camera and microphone test (issue 17): `/prova-video` is a public page (no booking link
//! needed, nothing sent anywhere), linked from every email about a video appointment and from
//! the room's countdown (tests/tests/room.rs); an appointment by phone or in person has no such
//! link. Chromium runs the page itself (tests/e2e/check.test.mjs).

use reqwest::StatusCode;
use tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_emails_link_the_device_test_and_the_page_needs_no_booking() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let video = s
        .video_appointment(s.next(Wed, 9, 0), "video@example.it")
        .await;
    let confirmed = s.email_of_kind(video, "confirmed").await;
    let check = format!("{}/prova-video", s.base);
    assert!(confirmed.text.contains(&check), "{}", confirmed.text);
    assert!(confirmed.html.contains(&format!(
        "<a href=\"{check}\">Prova fotocamera e microfono</a>"
    )));
    let phone = s
        .confirmed(
            demo::TARI,
            s.next(Tue, 9, 0),
            "phone",
            "telefono@example.it",
        )
        .await;
    assert!(!s
        .email_of_kind(phone, "confirmed")
        .await
        .text
        .contains("/prova-video"));

    let page = s.get("/prova-video").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Prova fotocamera e microfono"));
    assert!(page.body.contains("id=\"check-start\""));
    let script = page
        .body
        .split("<script src=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the page's script")
        .to_string();
    assert!(script.contains("check"), "{script}");
    let js = s.response(&script).await;
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.text().await.unwrap().contains("getUserMedia"));
    // The page takes nothing from the request: a query string changes nothing.
    let odd = s.get("/prova-video?x=%00%0a%3Cscript%3E").await;
    assert_eq!(odd.status, StatusCode::OK);
    assert!(!odd.body.contains("<script>"));
}
