//! Free-slot computation for a busy office: 3 calendars, a 60-day horizon, 2,000 existing
//! appointments. Measures the pure slot engine and the same through the SQLite store (queries
//! included), and prints p50/p99 over 1,000 runs of each besides criterion's estimates.

use std::collections::HashMap;
use std::time::Instant;

use booking::email::Links;
use booking::slots::{bookable_days, free_slots, CalendarRules, OpeningRule, WeekdaySet, Window};
use booking::token::Signer;
use booking::{Limits, ModeSet, Store};
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Europe::Rome;
use criterion::{criterion_group, criterion_main, Criterion};

fn now() -> DateTime<Utc> {
    Rome.with_ymd_and_hms(2026, 11, 23, 11, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

/// Calendar `i`: weekdays 8:30-12:30 and 14:30-17:30, slots of 15 minutes, two seats.
fn rules() -> CalendarRules {
    let days = WeekdaySet::of(&[
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ]);
    let window = |from, to| Window {
        from,
        to,
        slot_minutes: 15,
        buffer_minutes: 0,
        capacity: 2,
        modes: ModeSet::ALL,
    };
    CalendarRules {
        tz: Rome,
        rules: vec![
            OpeningRule {
                weekdays: days,
                window: window(t(8, 30), t(12, 30)),
                valid_from: None,
                valid_to: None,
            },
            OpeningRule {
                weekdays: days,
                window: window(t(14, 30), t(17, 30)),
                valid_from: None,
                valid_to: None,
            },
        ],
        exceptions: vec![],
        // As every calendar by default: closed on the national holidays.
        holidays: Some(booking::holidays::Holidays::default()),
        horizon_days: 60,
        min_notice_days: 1,
    }
}

/// 2,000 appointments spread over the 3 calendars' slots.
fn taken(r: &CalendarRules) -> Vec<HashMap<DateTime<Utc>, u32>> {
    let (first, last) = bookable_days(r, now());
    let all = free_slots(r, &HashMap::new(), now(), first, last);
    let mut maps = vec![HashMap::new(), HashMap::new(), HashMap::new()];
    for i in 0..2000usize {
        let s = &all[(i / 3) * all.len() / 667];
        *maps[i % 3].entry(s.start).or_insert(0) += 1;
    }
    maps
}

/// The runs behind each percentile line: 1,000 under `cargo bench`, a few under `cargo test
/// --benches`, which runs each benchmark once to see that it works (criterion's test mode, told
/// apart by the `--bench` argument `cargo bench` passes).
fn runs() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        1000
    } else {
        10
    }
}

fn percentiles(name: &str, mut samples: Vec<f64>) {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!(
        "{name}: p50 {:.3} ms, p99 {:.3} ms over {} runs",
        p(0.5),
        p(0.99),
        samples.len()
    );
}

async fn seeded_store(dir: &std::path::Path) -> (Store, Vec<booking::Service>) {
    let links = Links {
        base_url: "http://localhost".into(),
        signer: Signer::new(&[1u8; 32]),
        tz: Rome,
    };
    let store = Store::connect(
        &format!("sqlite://{}/bench.db", dir.display()),
        links,
        Limits {
            max_active_per_email: 1000,
            ..Limits::default()
        },
    )
    .await
    .unwrap();
    let pool = store.pool();
    sqlx::query("INSERT INTO office (id, name, department, email) VALUES (1, 'Anagrafe', 'Servizi demografici', 'anagrafe@comune.esempio.it')").execute(pool).await.unwrap();
    let mut services = Vec::new();
    for c in 1..=3i64 {
        sqlx::query("INSERT INTO calendar (id, office_id, name) VALUES ($1, 1, 'c')")
            .bind(c)
            .execute(pool)
            .await
            .unwrap();
        for (i, (from, to)) in [(510, 750), (870, 1050)].into_iter().enumerate() {
            sqlx::query("INSERT INTO opening_rule (id, calendar_id, weekdays, start_minute, end_minute, slot_minutes, capacity, modes) VALUES ($1, $2, 31, $3, $4, 15, 2, 7)")
                .bind(c * 10 + i as i64).bind(c).bind(from).bind(to).execute(pool).await.unwrap();
        }
        sqlx::query("INSERT INTO service (id, office_id, calendar_id, title, max_minutes) VALUES ($1, 1, $1, 's', 15)").bind(c).execute(pool).await.unwrap();
    }
    store.invalidate_catalogue();
    for c in 1..=3i64 {
        services.push(store.service(c).await.unwrap());
    }
    store.invalidate_catalogue();
    // 2,000 appointments through the real booking path.
    let mut slots = Vec::new();
    for s in &services {
        slots.push(store.free_slots(s, now()).await.unwrap());
    }
    for i in 0..2000usize {
        let c = i % 3;
        let slot = &slots[c][(i / 3) * slots[c].len() / 667];
        let b = booking::validate::ValidBooking {
            service_id: services[c].id,
            start: slot.start,
            mode: booking::Mode::InPerson,
            operator_id: None,
            contact: booking::Contact {
                given_name: "A".into(),
                family_name: "B".into(),
                email: format!("p{i}@example.it"),
                reason: "bench".into(),
                ..Default::default()
            },
            consent_version: None,
            language: booking::i18n::Lang::IT,
            email_verified: false,
        };
        store
            .book(&b, booking::Actor::Citizen, None, now())
            .await
            .expect("seed booking");
    }
    (store, services)
}

fn bench(c: &mut Criterion) {
    let r = rules();
    let maps = taken(&r);
    let (first, last) = bookable_days(&r, now());
    let office = || -> usize {
        maps.iter()
            .map(|m| free_slots(&r, m, now(), first, last).len())
            .sum()
    };
    c.bench_function(
        "free slots, pure: office of 3 calendars, 60 days, 2000 appointments",
        |b| b.iter(office),
    );
    percentiles(
        "pure engine, whole office",
        (0..runs())
            .map(|_| {
                let t0 = Instant::now();
                std::hint::black_box(office());
                t0.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (store, services) = rt.block_on(seeded_store(dir.path()));
    let booked: i64 = rt.block_on(async {
        use sqlx::Row;
        sqlx::query("SELECT COUNT(*) AS n FROM appointment")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .try_get("n")
            .unwrap()
    });
    println!("store seeded with {booked} appointments");
    let through_store = || {
        rt.block_on(async {
            let mut n = 0;
            for s in &services {
                n += store.free_slots(s, now()).await.unwrap().len();
            }
            n
        })
    };
    c.bench_function(
        "free slots, SQLite store: office of 3 calendars, 60 days, 2000 appointments",
        |b| b.iter(through_store),
    );
    percentiles(
        "SQLite store, whole office",
        (0..runs())
            .map(|_| {
                let t0 = Instant::now();
                std::hint::black_box(through_store());
                t0.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    );
    let _ = Duration::zero();
}

criterion_group!(benches, bench);
criterion_main!(benches);
