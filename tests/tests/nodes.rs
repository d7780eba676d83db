//! Several Sportello processes on one PostgreSQL (issue 16, the catalogue part): a change made
//! through one store reaches another store on the same database at once (LISTEN/NOTIFY), not
//! after the in-memory catalogue's five-second lifetime.

use std::time::{Duration, Instant};

use booking::backoffice::ExceptionRow;
use booking::{Limits, Store};
use tests::*;

async fn node(url: &str) -> Store {
    tests::seed::open_store(
        url,
        "test-secret-key-test-secret-key-0123456789",
        Limits::default(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalogue_change_reaches_the_other_processes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = fresh_database(Db::Postgres, dir.path()).await else {
        return;
    };
    let a = node(&url).await;
    booking::demo::seed_if_empty(&a).await.unwrap();
    let b = node(&url).await;
    let now = test_now();
    let service = b.service(demo::CARTA_IDENTITA).await.unwrap();
    // The other process has the catalogue in memory, with a day open.
    let day = b.free_slots(&service, now).await.unwrap()[0].local_day;
    let entry = booking::audit::Entry::by_command_line(
        "eccezione_aggiunta",
        "calendar",
        None,
        day.to_string(),
        now,
    );
    a.add_exception(
        service.calendar_id,
        &ExceptionRow {
            id: 0,
            day,
            label: "Sciopero".into(),
            hours: None,
        },
        &entry,
    )
    .await
    .unwrap();
    // Well before the cache's lifetime (5 s) runs out, the other process sees the day closed.
    let started = Instant::now();
    loop {
        let free = b.free_slots(&service, now).await.unwrap();
        if free.iter().all(|s| s.local_day != day) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the other process still offers {day}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
