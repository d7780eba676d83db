//! The faults suite at a size for CI (see `tests::faults`): the real binary (debug) killed
//! during a booking load, cut off from SMTP and from PostgreSQL, held by slow and silent
//! connections, flooded with wrong passwords, greylisted by the SMTP relay, put through room
//! joins and leaves, and offered a media connection that never connects. These check
//! behaviour; the latency bounds are checked at full size by `scripts/faults`.
//!
//! The tests sit in a module `faults` so that `scripts/test` can run them once (`--skip faults::`
//! under the other "todays": they do not depend on the calendar).

mod faults {
    use std::time::Duration;

    use tests::faults::{crash, database, hostile, mail, relay, test_binary};
    use tests::media::Failing;
    use tests::Db;

    tests::on_both_databases!(db sigkill_during_bookings_loses_no_booking_and_no_email, sigkill);

    async fn sigkill(db: Db) {
        let size = crash::Size {
            clients: 64,
            kill_after: 128,
            drain: Duration::from_secs(30),
        };
        if let Some(f) = crash::sigkill_during_bookings(&test_binary(), db, &size)
            .await
            .unwrap()
        {
            println!("{f}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_smtp_outage_delays_emails_but_loses_none_and_sends_none_twice() {
        let size = mail::Size {
            clients: 4,
            pause: Duration::from_millis(250),
            before: Duration::from_secs(1),
            outage: Duration::from_secs(3),
            after: Duration::from_secs(1),
            drain: Duration::from_secs(30),
        };
        if let Some(f) = mail::smtp_outage_during_bookings(&test_binary(), &size)
            .await
            .unwrap()
        {
            println!("{f}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_postgres_restart_gives_clear_503_pages_then_sportello_recovers_by_itself() {
        let size = database::Size {
            clients: 8,
            before: Duration::from_secs(1),
            down: Duration::from_secs(3),
            after: Duration::from_secs(4),
            recovery: Duration::from_secs(2),
        };
        if let Some(f) = database::postgres_restart_under_load(&test_binary(), &size)
            .await
            .unwrap()
        {
            println!("{f}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_connections_and_silent_sockets_are_dropped_while_a_citizen_is_served() {
        let size = hostile::SlowSize {
            slow: 100,
            silent: 20,
            hold: Duration::from_secs(4),
            header_timeout: 2,
            hello: 2,
            p99_bound: None,
        };
        let f = hostile::slow_and_silent_connections(&test_binary(), &size)
            .await
            .unwrap();
        println!("{f}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_wrong_passwords_at_once_lock_the_account_after_exactly_the_configured_number() {
        let size = hostile::FloodSize {
            parallel: 50,
            flood: Duration::ZERO,
            p99_bound: None,
        };
        let f = hostile::login_flood(&test_binary(), &size).await.unwrap();
        println!("{f}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_greylisted_email_goes_out_on_a_retry_and_its_address_stays_out_of_the_log() {
        let f = mail::greylisting_relay(&test_binary()).await.unwrap();
        println!("{f}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn joins_and_leaves_through_the_relay_leave_open_files_and_memory_flat() {
        let size = relay::Size {
            cycles: 25,
            warm_up: 5,
            files_bound: 5,
            memory_bound_mib: 16,
        };
        let f = relay::joins_and_leaves(&test_binary(), &size)
            .await
            .unwrap();
        println!("{f}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_media_connection_silent_or_tampered_is_closed_counted_and_logged_on_both_engines() {
        let bin = test_binary();
        // Four servers at once: the test waits for their deadlines together.
        let runs = futures::future::join_all(
            [
                ("rtc", Failing::Silent),
                ("webrtc", Failing::Silent),
                ("rtc", Failing::WrongFingerprint),
                ("webrtc", Failing::WrongFingerprint),
            ]
            .map(|(engine, how)| relay::never_connected(&bin, engine, how)),
        )
        .await;
        for r in runs {
            println!("{}", r.unwrap());
        }
    }
}
