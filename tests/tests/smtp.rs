//! Real email: the server speaks SMTP to a real SMTP server on loopback (aiosmtpd, storing a
//! Maildir), and the received messages are read back with a MIME parser and their invitations
//! with an iCalendar parser. An SMTP outage loses nothing: messages wait and go out later.

use icalendar::parser::{read_calendar, unfold};
use mailparse::{parse_mail, MailHeaderMap, ParsedMail};
use tests::smtp::{aiosmtpd_python, received, start_smtp, SlowSink};
use tests::*;

fn parts<'a>(m: &'a ParsedMail<'a>, out: &mut Vec<&'a ParsedMail<'a>>) {
    if m.subparts.is_empty() {
        out.push(m);
    }
    for p in &m.subparts {
        parts(p, out);
    }
}

/// The decoded body of a message's first part of this MIME type.
fn body(raw: &[u8], mime: &str) -> String {
    let mail = parse_mail(raw).unwrap();
    let mut leaves = Vec::new();
    parts(&mail, &mut leaves);
    leaves
        .iter()
        .find(|p| p.ctype.mimetype == mime)
        .unwrap_or_else(|| panic!("no {mime} part"))
        .get_body()
        .unwrap()
}

struct Invitation {
    method: String,
    uid: String,
    sequence: String,
    dtstart: String,
    organizer: String,
    status: String,
}

fn invitation(raw: &[u8]) -> Option<Invitation> {
    let mail = parse_mail(raw).unwrap();
    let mut leaves = Vec::new();
    parts(&mail, &mut leaves);
    let cal = leaves
        .iter()
        .find(|p| p.ctype.mimetype == "text/calendar")?;
    let method_param = cal.ctype.params.get("method").cloned().unwrap_or_default();
    let text = unfold(&cal.get_body().unwrap());
    let parsed = read_calendar(&text).expect("a valid iCalendar");
    let prop = |props: &[icalendar::parser::Property], name: &str| {
        props
            .iter()
            .find(|p| p.name.as_str() == name)
            .map(|p| p.val.as_str().to_string())
            .unwrap_or_default()
    };
    let method = prop(&parsed.properties, "METHOD");
    assert_eq!(
        method, method_param,
        "the MIME method matches the calendar's"
    );
    let event = parsed
        .components
        .iter()
        .find(|c| c.name.as_str() == "VEVENT")
        .expect("a VEVENT");
    Some(Invitation {
        method,
        uid: prop(&event.properties, "UID"),
        sequence: prop(&event.properties, "SEQUENCE"),
        dtstart: prop(&event.properties, "DTSTART"),
        organizer: prop(&event.properties, "ORGANIZER"),
        status: prop(&event.properties, "STATUS"),
    })
}

fn subject(raw: &[u8]) -> String {
    parse_mail(raw)
        .unwrap()
        .headers
        .get_first_value("Subject")
        .unwrap_or_default()
}

/// A server whose emails go to an SMTP server on `port` (up or not).
async fn server_mailing_to(port: u16) -> Server {
    let opts = Options {
        smtp_port: Some(port),
        ..Options::default()
    };
    Server::start_with(Db::Sqlite, opts).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_go_through_a_real_smtp_server_and_survive_an_outage() {
    let Some(python) = aiosmtpd_python() else {
        return;
    };
    let (port, maildir) = (free_port(), tempfile::tempdir().unwrap());
    let box_dir = maildir.path().join("Maildir");
    let s = server_mailing_to(port).await;

    // SMTP is down: the booking still works, its email waits in the outbox.
    let start = s.next(Wed, 9, 30);
    let id = s
        .book(demo::EDILIZIA, start, "video", "giulia.bianchi@example.it")
        .await
        .unwrap();
    s.tick().await;
    let waiting = s.emails(id).await;
    assert_eq!(waiting.len(), 1);
    assert!(waiting[0].sent_at.is_none());
    assert_eq!(waiting[0].attempts, 1);
    assert!(waiting[0].last_error.is_some());

    // SMTP comes back: the next pass after the back-off delivers it.
    let _smtp = start_smtp(&python, port, &box_dir);
    s.clock.advance(chrono::Duration::seconds(30));
    s.tick().await;
    assert!(s.emails(id).await[0].sent_at.is_some());
    let mails = received(&box_dir);
    assert_eq!(mails.len(), 1);
    let verify = parse_mail(&mails[0]).unwrap();
    assert!(subject(&mails[0]).starts_with("Conferma la tua prenotazione"));
    assert_eq!(
        verify.headers.get_first_value("To").as_deref(),
        Some("giulia.bianchi@example.it")
    );
    assert!(verify
        .headers
        .get_first_value("From")
        .unwrap()
        .contains("noreply@comune.esempio.it"));
    let text = body(&mails[0], "text/plain");
    let html = body(&mails[0], "text/html");
    assert!(text.contains("entro 2 ore"));
    assert!(html.contains("Conferma la prenotazione"));
    assert!(
        invitation(&mails[0]).is_none(),
        "no invitation before the booking is confirmed"
    );

    // Confirm: the confirmation carries the invitation and the join link.
    s.verify(id).await;
    s.tick().await;
    let mails = received(&box_dir);
    assert_eq!(mails.len(), 2);
    assert!(subject(&mails[1]).starts_with("Appuntamento confermato"));
    let inv = invitation(&mails[1]).expect("invitation in the confirmation");
    assert_eq!(inv.method, "REQUEST");
    assert_eq!(inv.sequence, "0");
    assert_eq!(inv.dtstart, ics_utc(start));
    assert_eq!(inv.organizer, "mailto:edilizia@comune.esempio.it");
    assert_eq!(inv.status, "CONFIRMED");
    assert!(inv.uid.starts_with("appuntamento-SP-"));
    let text = body(&mails[1], "text/plain");
    assert!(
        link_in(&text, "/stanza/").is_some(),
        "a video appointment's join link"
    );
    assert!(
        link_in(&text, "/prenotazione/").is_some(),
        "the manage link"
    );

    // The office cancels: METHOD:CANCEL, same UID, higher SEQUENCE.
    s.cancel(id, booking::Actor::Office, "Ufficio chiuso per inventario")
        .await;
    s.tick().await;
    let mails = received(&box_dir);
    assert_eq!(mails.len(), 3);
    let cancel = invitation(&mails[2]).expect("cancellation");
    assert_eq!(cancel.method, "CANCEL");
    assert_eq!(cancel.uid, inv.uid);
    assert_eq!(cancel.sequence, "1");
    assert_eq!(cancel.status, "CANCELLED");
    let text = body(&mails[2], "text/plain");
    assert!(text.contains("l'ufficio ha dovuto annullare"));
    assert!(text.contains("Messaggio dell'ufficio: Ufficio chiuso per inventario"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_running_at_once_send_each_email_once_with_a_stable_message_id() {
    let Some(python) = aiosmtpd_python() else {
        return;
    };
    let maildir = tempfile::tempdir().unwrap();
    let box_dir = maildir.path().join("Maildir");
    let port = free_port();
    let _smtp = start_smtp(&python, port, &box_dir);
    let s = server_mailing_to(port).await;
    let mut ids = Vec::new();
    for (i, start) in [s.next(Tue, 9, 0), s.next(Tue, 9, 15), s.next(Thu, 9, 0)]
        .into_iter()
        .enumerate()
    {
        ids.push(
            s.book(demo::TARI, start, "phone", &format!("p{i}@example.it"))
                .await
                .unwrap(),
        );
    }
    // Three workers (as on three nodes) at once: every email is claimed by one of them.
    tokio::join!(s.tick(), s.tick(), s.tick());
    let mails = received(&box_dir);
    assert_eq!(mails.len(), 3, "each email once");
    let mut message_ids: Vec<String> = mails
        .iter()
        .map(|m| {
            parse_mail(m)
                .unwrap()
                .headers
                .get_first_value("Message-ID")
                .expect("a Message-ID")
        })
        .collect();
    message_ids.sort();
    message_ids.dedup();
    assert_eq!(message_ids.len(), 3);
    assert!(message_ids
        .iter()
        .all(|m| m.starts_with("<outbox-") && m.ends_with("@comune.esempio.it>")));
    // A retry composes the very same Message-ID.
    let m = &s.emails(ids[0]).await[0];
    let id_of = |raw: Vec<u8>| {
        parse_mail(&raw)
            .unwrap()
            .headers
            .get_first_value("Message-ID")
            .unwrap()
    };
    let first = id_of(s.state.mailer.compose(m).unwrap().formatted());
    let again = id_of(s.state.mailer.compose(m).unwrap().formatted());
    assert_eq!(first, again);
    assert!(message_ids.contains(&first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_goes_out_over_sessions_at_once_each_email_once_each_appointments_in_order() {
    // A relay that takes 30 ms per message and refuses every 7th for now.
    let sink = SlowSink::start(std::time::Duration::from_millis(30), Some(7))
        .await
        .unwrap();
    let s = server_mailing_to(sink.port).await;
    // Twelve appointments, each with three emails queued in order before any is sent:
    // verify, confirmed, cancelled.
    // Twelve free phone slots, whatever today is (a holiday closes some days).
    let tari = s.state.store.service(demo::TARI).await.unwrap();
    let free: Vec<_> = s
        .state
        .store
        .free_slots(&tari, s.clock_now())
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.offers(booking::Mode::Phone))
        .take(12)
        .collect();
    assert_eq!(free.len(), 12, "twelve free phone slots");
    let mut ids = Vec::new();
    for (i, slot) in free.iter().enumerate() {
        let id = s
            .confirmed(demo::TARI, slot.start, "phone", &format!("p{i}@example.it"))
            .await;
        s.cancel(id, booking::Actor::Office, "Ufficio chiuso").await;
        ids.push(id);
    }
    // Passes until everything is out; the refused ones come back after their back-off.
    for _ in 0..20 {
        s.tick().await;
        if sink.accepted().len() >= 36 {
            break;
        }
        s.clock.advance(chrono::Duration::minutes(2));
    }
    let accepted = sink.accepted();
    let mut message_ids: Vec<&str> = accepted.iter().map(|a| a.message_id.as_str()).collect();
    message_ids.sort();
    message_ids.dedup();
    assert_eq!(accepted.len(), 36, "every email, once");
    assert_eq!(message_ids.len(), 36, "no email twice");
    assert!(
        sink.most_sessions() > 1,
        "several sessions at once: {}",
        sink.most_sessions()
    );
    let mut outbox = Vec::new();
    for &id in &ids {
        let queued: Vec<String> = s
            .emails(id)
            .await
            .iter()
            .map(|m| format!("<outbox-{}@comune.esempio.it>", m.id))
            .collect();
        let arrived: Vec<String> = accepted
            .iter()
            .map(|a| a.message_id.clone())
            .filter(|m| queued.contains(m))
            .collect();
        assert_eq!(queued.len(), 3);
        assert_eq!(
            arrived, queued,
            "appointment {id}'s emails arrive in the order queued"
        );
        outbox.extend(s.emails(id).await);
    }
    // Every email is marked sent; the refused ones were tried again.
    assert!(outbox.iter().all(|m| m.sent_at.is_some()));
    assert!(
        outbox.iter().any(|m| m.attempts > 1),
        "some were refused first"
    );
}
