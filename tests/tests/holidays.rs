//! Recurring closures on SQLite and PostgreSQL (issue 17): the national holidays (Easter Monday
//! included) and the town's patron saint's day close every calendar that keeps them, in any
//! year, with nothing seeded for that year; the calendar's console page lists them; an
//! administrator can open a calendar on holidays, and the days become bookable. The server's
//! clock is set to 2031 by the test, so the result does not depend on today.

use chrono::NaiveDate;
use reqwest::StatusCode;
use staff::Role;
use tests::*;

/// The local days on which the service has a free slot.
async fn open_days(s: &Server, service: i64) -> Vec<NaiveDate> {
    let api = s.get(&format!("/api/servizi/{service}/orari")).await;
    assert_eq!(api.status, StatusCode::OK);
    let slots: Vec<serde_json::Value> = serde_json::from_str(&api.body).unwrap();
    let mut days: Vec<NaiveDate> = slots
        .iter()
        .map(|x| x["local_day"].as_str().unwrap().parse().unwrap())
        .collect();
    days.dedup();
    days
}

fn d(y: i32, m: u32, dd: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, dd).unwrap()
}

on_both_databases!(
    db holidays_and_the_patrons_day_close_calendars_every_year,
    |db: Db| async move {
        let opts = Options {
            patron_saint: Some("16/04 San Patrizio".into()),
            ..Options::default()
        };
        let Some(s) = Server::start_with(db, opts).await else {
            return;
        };
        // 1 April 2031: Easter Monday is 14 April, the patron's day Wednesday 16 April and the
        // Liberation Day Friday 25 April. The demo database holds no exception for 2031.
        s.clock.set(rome(2031, 4, 1, 10, 0));
        assert!(s
            .state
            .store
            .exceptions_of(s.state.store.service(demo::CARTA_IDENTITA).await.unwrap().calendar_id)
            .await
            .unwrap()
            .iter()
            .all(|e| e.day < d(2031, 1, 1)));
        let days = open_days(&s, demo::CARTA_IDENTITA).await;
        for (closed, same_weekday_after) in [
            (d(2031, 4, 14), d(2031, 4, 21)),
            (d(2031, 4, 16), d(2031, 4, 23)),
            (d(2031, 4, 25), d(2031, 5, 2)),
        ] {
            assert!(!days.contains(&closed), "{closed} is closed: {days:?}");
            assert!(
                days.contains(&same_weekday_after),
                "{same_weekday_after} is open: {days:?}"
            );
        }
        // The week's page says why those days have no time.
        let week = s
            .get(&format!("/servizi/{}?settimana=2031-04-14", demo::CARTA_IDENTITA))
            .await;
        let notice = week
            .body
            .split("id=\"closed-days\"")
            .nth(1)
            .expect("a closed-days notice")
            .split("</div>")
            .next()
            .unwrap()
            .replace("&#39;", "'");
        assert!(
            notice.contains("lunedì 14 aprile 2031 (Lunedì dell'Angelo)")
                && notice.contains("mercoledì 16 aprile 2031 (San Patrizio)"),
            "{notice}"
        );
        assert!(!notice.contains("15 aprile"), "{notice}");
        // Booking a holiday's slot anyway is refused, with nothing booked.
        let before = s.appointment_count().await;
        let refused = s
            .book(demo::CARTA_IDENTITA, rome(2031, 4, 14, 9, 10), "in_person", "festa@example.it")
            .await
            .unwrap_err();
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{refused:?}");
        assert!(refused.body.contains("Questo orario non si può prenotare"));
        assert_eq!(s.appointment_count().await, before);

        // The console lists them; an administrator opens the calendar on holidays.
        let cal = s.state.store.service(demo::CARTA_IDENTITA).await.unwrap().calendar_id;
        let page = format!("/ufficio/config/calendari/{cal}");
        let admin = s.staff(Role::Admin, &[]).await;
        let listed = admin.get(&page).await;
        assert!(listed.body.contains("id=\"holiday-days\""), "{listed:?}");
        for name in ["Lunedì dell&#39;Angelo", "San Patrizio", "Festa della Liberazione"] {
            assert!(
                listed.body.contains(name) || listed.body.contains(&name.replace("&#39;", "'")),
                "{name}"
            );
        }
        assert!(listed.body.contains("name=\"festivita\" value=\"1\" checked"));
        let settings = s.state.store.calendar_settings(cal).await.unwrap();
        let (horizon, notice) = (
            settings.horizon_days.to_string(),
            settings.min_notice_days.to_string(),
        );
        let saved = admin
            .submit(
                &page,
                &page,
                &[
                    ("name", settings.name.as_str()),
                    ("horizon_days", horizon.as_str()),
                    ("min_notice_days", notice.as_str()),
                ],
            )
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{saved:?}");
        assert!(!s.state.store.calendar_settings(cal).await.unwrap().closed_on_holidays);
        let after = admin.get(&page).await;
        assert!(!after.body.contains("id=\"holiday-days\""));
        assert!(after.body.contains("aperto anche nelle festività"));
        let days = open_days(&s, demo::CARTA_IDENTITA).await;
        for open in [d(2031, 4, 14), d(2031, 4, 16), d(2031, 4, 25)] {
            assert!(days.contains(&open), "{open} opens: {days:?}");
        }
        // Another calendar (open on Wednesdays) still keeps them.
        let other = open_days(&s, demo::EDILIZIA).await;
        assert!(!other.contains(&d(2031, 4, 16)), "{other:?}");
        assert!(other.contains(&d(2031, 4, 23)), "{other:?}");
    }
);
