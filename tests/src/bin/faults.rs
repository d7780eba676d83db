//! `faults`: the faults suite (`tests::faults`, issue 12) at full size against the release
//! binary, printing every scenario's figures with the machine and its load. `scripts/faults`
//! builds what it needs, starts a throwaway PostgreSQL and runs it; `docs/faults.md` has the
//! figures of a run. The same scenarios run small in the test suite (`tests/tests/faults.rs`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use tests::faults::{self, crash, database, hostile, mail, relay, Figures};
use tests::media::Failing;
use tests::Db;

#[derive(Parser)]
#[command(
    about = "The faults suite at full size: crash, SMTP outage, PostgreSQL restart, \
slow and silent connections, login flood, relay joins, greylisting, a media connection that \
never connects, the network gone mid-call; prints figures"
)]
struct Args {
    /// The server binary (cargo build --release --bin sportello).
    #[arg(long, default_value = "target/release/sportello")]
    server: PathBuf,
    /// Scenarios to run, e.g. 1,4 (all when absent): 1 SIGKILL during bookings, 2 SMTP outage,
    /// 3 PostgreSQL restart, 4 slow and silent connections, 5 login flood, 6 relay joins,
    /// 7 a greylisting SMTP relay, 8 a media connection that never connects (both engines),
    /// 9 the network gone mid-call (both engines; iptables, so root).
    #[arg(long, value_delimiter = ',')]
    only: Vec<u8>,
    /// 1: citizens booking at once, and bookings accepted before the kill.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    #[arg(long, default_value_t = 2000)]
    kill_after: usize,
    /// 2: seconds the SMTP server is down.
    #[arg(long, default_value_t = 180)]
    smtp_outage: u64,
    /// 3: seconds PostgreSQL is down.
    #[arg(long, default_value_t = 20)]
    pg_down: u64,
    /// 4: slow connections and silent room sockets held, and for how many seconds.
    #[arg(long, default_value_t = 2000)]
    slow: usize,
    #[arg(long, default_value_t = 300)]
    silent: usize,
    #[arg(long, default_value_t = 30)]
    hold: u64,
    /// 5: seconds the login flood goes on after the first burst of 50.
    #[arg(long, default_value_t = 30)]
    flood: u64,
    /// 6: joins and leaves through the relay.
    #[arg(long, default_value_t = 1000)]
    cycles: usize,
}

/// A p99 every citizen-facing figure must stay under at full size.
const P99: Duration = Duration::from_millis(100);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    tests::process::ServerProcess::require(&a.server)?;
    let files = faults::raise_open_files_limit();
    println!(
        "faults: {}; open files allowed {files}; server {}",
        faults::machine(),
        a.server.display()
    );
    let run = |n: u8| a.only.is_empty() || a.only.contains(&n);
    let bin = a.server.as_path();
    let mut failed = Vec::new();
    let mut report = |n: u8, r: anyhow::Result<Option<Figures>>, took: Duration| {
        match r {
            Ok(Some(f)) => print!("{f}"),
            Ok(None) => println!("== {n}. skipped (see above)"),
            Err(e) => {
                println!("== {n}. FAILED: {e:#}");
                failed.push(n);
            }
        }
        println!(
            "   ({:.0} s; load average after: {})",
            took.as_secs_f64(),
            faults::load_average()
        );
    };
    if run(1) {
        let size = crash::Size {
            clients: a.clients,
            kill_after: a.kill_after,
            drain: Duration::from_secs(900),
        };
        for db in [Db::Sqlite, Db::Postgres] {
            let t = Instant::now();
            let r = crash::sigkill_during_bookings(bin, db, &size).await;
            report(1, r, t.elapsed());
        }
    }
    if run(2) {
        let size = mail::Size {
            clients: 4,
            pause: Duration::from_millis(500),
            before: Duration::from_secs(20),
            outage: Duration::from_secs(a.smtp_outage),
            after: Duration::from_secs(20),
            drain: Duration::from_secs(900),
        };
        let t = Instant::now();
        let r = mail::smtp_outage_during_bookings(bin, &size).await;
        report(2, r, t.elapsed());
    }
    if run(3) {
        let size = database::Size {
            clients: 32,
            before: Duration::from_secs(5),
            down: Duration::from_secs(a.pg_down),
            after: Duration::from_secs(15),
            recovery: Duration::from_secs(3),
        };
        let t = Instant::now();
        let r = database::postgres_restart_under_load(bin, &size).await;
        report(3, r, t.elapsed());
    }
    if run(4) {
        let size = hostile::SlowSize {
            slow: a.slow,
            silent: a.silent,
            hold: Duration::from_secs(a.hold),
            header_timeout: 10,
            hello: 10,
            p99_bound: Some(P99),
        };
        let t = Instant::now();
        let r = hostile::slow_and_silent_connections(bin, &size).await;
        report(4, r.map(Some), t.elapsed());
    }
    if run(5) {
        let size = hostile::FloodSize {
            parallel: 50,
            flood: Duration::from_secs(a.flood),
            p99_bound: Some(P99),
        };
        let t = Instant::now();
        let r = hostile::login_flood(bin, &size).await;
        report(5, r.map(Some), t.elapsed());
    }
    if run(6) {
        let size = relay::Size {
            cycles: a.cycles,
            warm_up: (a.cycles / 10).max(1),
            files_bound: 5,
            memory_bound_mib: 16,
        };
        let t = Instant::now();
        let r = relay::joins_and_leaves(bin, &size).await;
        report(6, r.map(Some), t.elapsed());
    }
    if run(7) {
        let t = Instant::now();
        let r = mail::greylisting_relay(bin).await;
        report(7, r.map(Some), t.elapsed());
    }
    if run(8) {
        for (engine, how) in [
            ("rtc", Failing::Silent),
            ("webrtc", Failing::Silent),
            ("rtc", Failing::WrongFingerprint),
            ("webrtc", Failing::WrongFingerprint),
        ] {
            let t = Instant::now();
            let r = relay::never_connected(bin, engine, how).await;
            report(8, r.map(Some), t.elapsed());
        }
    }
    if run(9) {
        for engine in ["rtc", "webrtc"] {
            let t = Instant::now();
            let r = relay::lost(bin, engine).await;
            report(9, r.map(Some), t.elapsed());
        }
    }
    anyhow::ensure!(failed.is_empty(), "scenarios failed: {failed:?}");
    Ok(())
}
