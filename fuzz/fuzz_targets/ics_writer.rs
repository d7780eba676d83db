//! The iCalendar invitation written from text that citizens and operators typed (names,
//! office, address, documents, the join and manage links): whatever the text, the invitation
//! has one event, its lines are what the writer put there (no line of the input's own), and it
//! reads back as iCalendar.
#![no_main]

use booking::ics::{render, Invitation, Method};
use booking::model::{Appointment, Contact, Mode, ModeSet, Office, Service, Status};
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Up to eight fields separated by U+001F.
    let mut f = text.split('\u{1f}').map(str::to_string);
    let mut next = || f.next().unwrap_or_default();
    let t = Utc.with_ymd_and_hms(2026, 12, 1, 8, 30, 0).unwrap();
    let (given, family, office_name, address, title, documents, join, manage) = (
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
        next(),
    );
    let appointment = Appointment {
        id: 1,
        code: "SP-ABCD-EFGH".into(),
        office_id: 1,
        service_id: 1,
        calendar_id: 1,
        operator_id: None,
        start: t,
        end: t + chrono::Duration::minutes(20),
        mode: if join.is_empty() {
            Mode::InPerson
        } else {
            Mode::Video
        },
        status: Status::Confirmed,
        contact: Contact {
            given_name: given,
            family_name: family,
            email: "maria.rossi@example.it".into(),
            ..Default::default()
        },
        created_at: t,
        verify_deadline: t,
        sequence: 0,
        language: booking::i18n::Lang::IT,
    };
    let office = Office {
        id: 1,
        name: office_name,
        department: String::new(),
        email: "anagrafe@comune.esempio.it".into(),
        phone: String::new(),
        address,
        hours_text: String::new(),
        archived: false,
    };
    let service = Service {
        id: 1,
        office_id: 1,
        calendar_id: 1,
        title,
        description: String::new(),
        max_minutes: 20,
        instructions: String::new(),
        documents,
        modes: ModeSet::ALL,
        published: true,
        fiscal_code_required: false,
        login_required: false,
    };
    for method in [Method::Request, Method::Cancel] {
        let ics = render(
            &Invitation {
                appointment: &appointment,
                office: &office,
                service: &service,
                host: "comune.esempio.it",
                join_url: (!join.is_empty()).then_some(join.as_str()),
                manage_url: &manage,
                now: t,
            },
            method,
        );
        assert_eq!(ics.matches("\r\nBEGIN:VEVENT\r\n").count(), 1, "{ics}");
        // Every physical line ends in CRLF; no bare CR or LF from the input survives.
        let body = ics.replace("\r\n", "");
        assert!(!body.contains('\r') && !body.contains('\n'), "{ics}");
        // Unfolded, every line is a property the writer writes.
        let unfolded = ics.replace("\r\n ", "").replace("\r\n\t", "");
        for line in unfolded.split("\r\n").filter(|l| !l.is_empty()) {
            let name = line.split([':', ';']).next().unwrap_or_default();
            assert!(
                name.chars().all(|c| c.is_ascii_uppercase() || c == '-'),
                "a line of the input's own: {line:?}"
            );
        }
        assert!(unfolded.parse::<icalendar::Calendar>().is_ok(), "{ics}");
    }
});
