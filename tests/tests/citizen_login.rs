//! Where a SPID/CIE login is kept, on SQLite and PostgreSQL (the protocol itself is tested in
//! Chromium against a real provider, `tests/e2e/login.test.mjs`): a login under way is taken
//! once and only within ten minutes; a session lasts an hour and ends at logout; a person's
//! appointments are found by fiscal code in any omocode form, and by email only when the
//! provider vouched for it.

use booking::citizens::{Citizen, LoginAttempt, LOGIN_WITHIN, SESSION_LIFETIME};
use chrono::Duration;
use tests::*;

fn attempt(after: &str) -> LoginAttempt {
    LoginAttempt {
        nonce: "nonce".into(),
        verifier: "verifier".into(),
        after: after.into(),
    }
}

on_both_databases!(
    a_login_under_way_is_taken_once_and_in_time,
    |s: Server| async move {
        let store = &s.state.store;
        let now = s.state.now();
        store
            .start_citizen_login("stato-1", &attempt("/a"), now)
            .await
            .unwrap();
        store
            .start_citizen_login("stato-2", &attempt("/b"), now)
            .await
            .unwrap();
        let taken = store.take_citizen_login("stato-1", now).await.unwrap();
        assert_eq!(taken, Some(attempt("/a")));
        assert_eq!(
            store.take_citizen_login("stato-1", now).await.unwrap(),
            None,
            "replayed"
        );
        assert_eq!(
            store.take_citizen_login("nessuno", now).await.unwrap(),
            None
        );
        let late = now + LOGIN_WITHIN + Duration::seconds(1);
        assert_eq!(
            store.take_citizen_login("stato-2", late).await.unwrap(),
            None,
            "too late"
        );
    }
);

fn mario(email_verified: bool) -> Citizen {
    Citizen {
        fiscal_code: "RSSMRA80A01H501U".into(),
        given_name: "Mario".into(),
        family_name: "Rossi".into(),
        email: "mario.rossi@example.it".into(),
        email_verified,
    }
}

on_both_databases!(
    a_session_lasts_an_hour_and_ends_at_logout,
    |s: Server| async move {
        let store = &s.state.store;
        let now = s.state.now();
        let cookie = store.open_citizen_session(&mario(true), now).await.unwrap();
        assert_eq!(cookie.len(), 43);
        assert_eq!(
            store.citizen_session(&cookie, now).await.unwrap(),
            Some(mario(true))
        );
        assert_eq!(store.citizen_session("altro", now).await.unwrap(), None);
        let later = now + SESSION_LIFETIME + Duration::seconds(1);
        assert_eq!(store.citizen_session(&cookie, later).await.unwrap(), None);
        let again = store.open_citizen_session(&mario(true), now).await.unwrap();
        store.close_citizen_session(&again).await.unwrap();
        assert_eq!(store.citizen_session(&again, now).await.unwrap(), None);
    }
);

on_both_databases!(
    a_person_finds_their_appointments_by_fiscal_code_and_vouched_email,
    |s: Server| async move {
        // An omocode form of Mario's code (a digit replaced by its letter), on the identity
        // card (which asks for the fiscal code), and a booking by email only, on the TARI.
        let card = s
            .book_as(
                demo::CARTA_IDENTITA,
                s.next(Tue, 9, 10),
                "in_person",
                "altro@example.it",
                "RSSMRA80A01H50MM",
            )
            .await
            .unwrap();
        let tari = s
            .book(
                demo::TARI,
                s.next(Tue, 9, 15),
                "phone",
                "mario.rossi@example.it",
            )
            .await
            .unwrap();
        let ids = |v: Vec<booking::Appointment>| {
            let mut v: Vec<i64> = v.into_iter().map(|a| a.id).collect();
            v.sort();
            v
        };
        let store = &s.state.store;
        let mut both = vec![card, tari];
        both.sort();
        assert_eq!(
            ids(store.citizen_appointments(&mario(true)).await.unwrap()),
            both
        );
        assert_eq!(
            ids(store.citizen_appointments(&mario(false)).await.unwrap()),
            vec![card],
            "an email the provider did not vouch for finds nothing"
        );
    }
);
