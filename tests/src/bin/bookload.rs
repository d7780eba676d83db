//! `bookload`: how many bookings per second the server takes through HTTP, with N concurrent
//! citizens, on SQLite or PostgreSQL, and proof that none was double-booked.
//!
//! It starts the real server (router, store, worker) on a loopback port over a fresh database
//! with one busy calendar (every day 7:00-20:00, 5-minute slots, 5 seats each, 60 days), lets
//! each client fetch a form once (its CSRF cookie and token), then has every client post
//! bookings back to back for random seats until the count or the time is reached. Clients and
//! server share this machine, so the figure is for both together.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::seq::SliceRandom;
use tests::{browser_client, form_csrf};
use web::{Config, SystemClock};

#[derive(Parser)]
#[command(about = "Bookings per second through HTTP, with no double booking")]
struct Args {
    /// Database URL; a fresh SQLite file when absent. For PostgreSQL give a server URL and a
    /// database name that does not exist yet, e.g. postgres://postgres@127.0.0.1:55432/bench1
    #[arg(long)]
    database_url: Option<String>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Booking attempts in all.
    #[arg(long, default_value_t = 20_000)]
    bookings: usize,
    /// Attempts per slot beyond its seats, so that clients collide and some are refused.
    #[arg(long, default_value_t = 2)]
    extra_per_slot: usize,
    /// Stop after this many seconds even if not all attempts were made.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Serve through this many `sportello` processes on the PostgreSQL database, behind
    /// Debian's nginx (round robin), instead of one server in this process.
    #[arg(long, default_value_t = 0)]
    nodes: usize,
    /// The `sportello` binary for --nodes [default: the one next to this program].
    #[arg(long)]
    server: Option<std::path::PathBuf>,
}

const SEATS: i64 = tests::faults::SEATS;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let url = match &args.database_url {
        Some(u) if u.starts_with("postgres") => {
            tests::create_database(u).await?;
            u.clone()
        }
        Some(u) => u.clone(),
        None => format!("sqlite://{}/bench.db", dir.path().display()),
    };
    let backend = if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    if args.nodes > 0 {
        anyhow::ensure!(
            backend == "PostgreSQL",
            "--nodes needs a PostgreSQL --database-url"
        );
        return through_nodes(&args, &url, dir.path()).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    let cfg = Config {
        data_dir: Some(dir.path().to_path_buf()),
        database_url: Some(url),
        public_url: Some(base.clone()),
        secret_key: Some("bookload-secret-bookload-secret-bookload".into()),
        demo: Some(false),
        max_active_per_email: Some(1000),
        // Every client of the load is 127.0.0.1.
        rate_limit_per_minute: Some(u32::MAX),
        rate_limit_burst: Some(u32::MAX),
        max_unverified_per_email: Some(i64::MAX),
        verifications_per_day: Some(i64::MAX),
        // The proof of work costs the booker's browser, not the server: off here, where the
        // figure is the server's.
        proof_of_work: Some(false),
        ..Config::default()
    };
    let state = web::build_state(&cfg, Arc::new(SystemClock)).await?;
    tests::seed::OneService {
        calendar: "bench",
        ..tests::faults::BUSY_CALENDAR
    }
    .seed(&state.store)
    .await?;
    let store = state.store.clone();
    let limits = cfg.connection_limits()?;
    let listeners = web::app::Listeners {
        public: listener,
        certificate: None,
        admin: tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    };
    tokio::spawn(web::serve(
        state,
        listeners,
        limits,
        Duration::from_secs(3600),
    ));

    load(&args, &base, &store, backend).await
}

/// The load itself, against the server(s) at `base`, with `store` on their database.
async fn load(
    args: &Args,
    base: &str,
    store: &booking::Store,
    backend: &str,
) -> anyhow::Result<()> {
    // Every seat once and a few more attempts per slot, shuffled: clients race for the same
    // slots as real citizens would, and the extra attempts must all be refused.
    let free: Vec<serde_json::Value> = reqwest::get(format!("{base}/api/servizi/1/orari"))
        .await?
        .json()
        .await?;
    let per_slot = SEATS as usize + args.extra_per_slot;
    let slots_used = args.bookings.div_ceil(per_slot).min(free.len());
    let mut seats: Vec<i64> = free[..slots_used]
        .iter()
        .flat_map(|s| {
            std::iter::repeat_n(
                s["start_ts"].as_i64().unwrap_or(0),
                SEATS as usize + args.extra_per_slot,
            )
        })
        .collect();
    seats.shuffle(&mut rand::thread_rng());
    let attempts = args.bookings.min(seats.len());
    let seats = Arc::new(seats);
    let next = Arc::new(AtomicUsize::new(0));
    println!("bookload: {backend}, {} clients, {attempts} attempts over {slots_used} slots x {SEATS} seats ({per_slot} attempts per slot)", args.clients);

    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (base, seats, next) = (base.to_string(), seats.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let client = browser_client().build().expect("client");
            let form = format!("{base}/servizi/1/prenota?inizio={}", seats[c % seats.len()]);
            let csrf = form_csrf(&client, &form).await.expect("csrf token");
            let (mut ok, mut taken, mut other, mut lat) = (0usize, 0usize, 0usize, Vec::new());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= attempts || Instant::now() > deadline {
                    break;
                }
                let start = seats[i].to_string();
                let email = format!("c{c}-{i}@example.it");
                let t0 = Instant::now();
                let r = client
                    .post(format!("{base}/servizi/1/prenota"))
                    .form(&[
                        ("csrf", csrf.as_str()),
                        ("start", start.as_str()),
                        ("mode", "in_person"),
                        ("given_name", "Carico"),
                        ("family_name", "Prova"),
                        ("email", email.as_str()),
                        ("reason", "Prova di carico"),
                        ("consent", "on"),
                    ])
                    .send()
                    .await;
                lat.push(t0.elapsed().as_secs_f64() * 1e3);
                match r.map(|r| r.status().as_u16()) {
                    Ok(303) => ok += 1,
                    Ok(409) => taken += 1,
                    _ => other += 1,
                }
            }
            (ok, taken, other, lat)
        }));
    }
    let (mut ok, mut taken, mut other, mut lat) = (0, 0, 0, Vec::new());
    for t in tasks {
        let (o, t, e, l) = t.await?;
        ok += o;
        taken += t;
        other += e;
        lat.extend(l);
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| {
        lat.get(((lat.len().max(1) - 1) as f64 * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let overbooked = store.overbooked_slots().await?;
    use sqlx::Row;
    let stored: i64 = sqlx::query("SELECT COUNT(*) AS n FROM appointment")
        .fetch_one(store.pool())
        .await?
        .try_get("n")?;
    println!(
        "bookload: {backend}: {} requests in {secs:.2} s: {ok} booked ({:.0} bookings/s), {taken} refused as taken, {other} errors; latency p50 {:.1} ms, p99 {:.1} ms",
        ok + taken + other,
        ok as f64 / secs,
        p(0.5),
        p(0.99)
    );
    println!(
        "bookload: {stored} appointments stored, {} slots over capacity",
        overbooked.len()
    );
    anyhow::ensure!(overbooked.is_empty(), "double booking: {overbooked:?}");
    anyhow::ensure!(
        stored as usize == ok,
        "stored {stored} but {ok} bookings were accepted"
    );
    anyhow::ensure!(other == 0, "{other} requests failed");
    anyhow::ensure!(
        ok <= slots_used * SEATS as usize,
        "more bookings than seats"
    );
    Ok(())
}

/// `--nodes N`: the same load through N `sportello` processes behind nginx.
async fn through_nodes(args: &Args, url: &str, dir: &std::path::Path) -> anyhow::Result<()> {
    let limits = booking::Limits {
        max_active_per_email: 1000,
        ..booking::Limits::default()
    };
    let store = tests::seed::open_store(url, tests::cluster::SECRET, limits).await?;
    tests::seed::OneService {
        calendar: "bench",
        ..tests::faults::BUSY_CALENDAR
    }
    .seed(&store)
    .await?;
    let bin = match &args.server {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("sportello"),
    };
    tests::process::ServerProcess::require(&bin)?;
    let clock = chrono::Utc::now().to_rfc3339();
    let mut flags = vec!["--smtp-host", "127.0.0.1", "--smtp-port", "9"];
    flags.extend(tests::cluster::LOAD_FLAGS);
    flags.extend([
        "--max-active-per-email",
        "1000",
        "--max-unverified-per-email",
        "1000000000",
        "--verifications-per-day",
        "1000000000",
    ]);
    let cluster = tests::cluster::Cluster::start(&bin, url, args.nodes, &clock, dir, &flags).await;
    let backend = format!("PostgreSQL, {} node(s) behind nginx", args.nodes);
    load(args, &cluster.base, &store, &backend).await
}
