//! `mailload`: how fast the outbox empties through a slow SMTP relay — the morning a new
//! identity-card quota opens, thousands book in minutes and each waits for its verification
//! link.
//!
//! It queues N emails in a fresh data folder (in groups of three per appointment, as a booking
//! that is confirmed then moved queues them, and some with no appointment), starts the real
//! server binary with its SMTP pointed at an in-process relay that takes `--delay-ms` to
//! accept each message (and refuses every `--fail-every`-th for now), and waits until every
//! email is accepted. It reports emails per second (first to last accepted), the most SMTP
//! sessions open at once, duplicates (a Message-ID accepted twice) and order violations (an
//! appointment's email accepted before an earlier one of it), and fails below `--min-rate`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use booking::Limits;
use clap::Parser;
use tests::smtp::SlowSink;

#[derive(Parser)]
#[command(about = "Emails per second through a slow SMTP relay")]
struct Args {
    /// Emails to queue.
    #[arg(long, default_value_t = 3000)]
    emails: usize,
    /// How long the relay takes to accept each message.
    #[arg(long, default_value_t = 100)]
    delay_ms: u64,
    /// The relay refuses every k-th message with 451 (the sender tries it again later).
    #[arg(long)]
    fail_every: Option<usize>,
    /// The server's smtp_concurrency (its default when not given).
    #[arg(long)]
    concurrency: Option<u16>,
    /// Fail below this many emails per second.
    #[arg(long, default_value_t = 200.0)]
    min_rate: f64,
    /// The server binary (build it with `cargo build --release --bin sportello`).
    #[arg(long, default_value = "target/release/sportello")]
    server: PathBuf,
}

const SECRET: &str = "mailload-secret-mailload-secret-mailload-0";
const DOMAIN: &str = "comune.esempio.it";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tests::process::ServerProcess::require(&args.server)?;
    let dir = tempfile::tempdir()?;
    let store = tests::seed::open_store(
        &format!("sqlite://{}/sportello.db", dir.path().display()),
        SECRET,
        Limits::default(),
    )
    .await?;
    // Queued a minute ago, due now. Every third email has no appointment (an account's email,
    // say); the others come in threes per appointment, in order.
    let now = chrono::Utc::now().timestamp() - 60;
    let mut tx = store.pool().begin().await?;
    for i in 0..args.emails {
        let appointment = (i % 4 != 3).then_some((i / 4) as i64 + 1);
        sqlx::query("INSERT INTO outbox (id, appointment_id, position, kind, to_addr, subject, text_body, html_body, created_at, attempts, next_attempt_at) VALUES ($1, $2, $3, 'verify', $4, $5, 'testo', '<p>testo</p>', $6, 0, $6)")
            .bind(i as i64 + 1)
            .bind(appointment)
            .bind(i as i64)
            .bind(format!("c{i}@example.it"))
            .bind(format!("Prova {i}"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    store.pool().close().await;
    drop(store);

    let sink = SlowSink::start(Duration::from_millis(args.delay_ms), args.fail_every).await?;
    let port = sink.port.to_string();
    let concurrency = args.concurrency.map(|c| c.to_string());
    let mut extra = vec![
        "--secret-key",
        SECRET,
        "--mail-from",
        "Comune <noreply@comune.esempio.it>",
        "--worker-interval",
        "1",
    ];
    extra.extend(tests::process::plain_smtp_flags(&port));
    if let Some(c) = &concurrency {
        extra.extend(["--smtp-concurrency", c.as_str()]);
    }
    let started = Instant::now();
    let server = tests::process::ServerProcess::start(&args.server, dir.path(), &extra).await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while sink.accepted().len() < args.emails {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {} emails accepted in 10 minutes",
            sink.accepted().len(),
            args.emails
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu = tests::process::stat(server.pid()).0;
    server.stop()?;
    let accepted = sink.accepted();
    let first = accepted.first().map(|a| a.at).unwrap_or(started);
    let last = accepted.last().map(|a| a.at).unwrap_or(started);
    let span = (last - first).as_secs_f64().max(1e-3);
    let rate = (accepted.len() - 1) as f64 / span;
    // Duplicates, and each appointment's order: row ids were given in queue order.
    let id_of = |m: &str| -> i64 {
        m.trim_start_matches("<outbox-")
            .trim_end_matches(&format!("@{DOMAIN}>"))
            .parse()
            .unwrap_or(-1)
    };
    let mut seen = std::collections::HashSet::new();
    let mut duplicates = 0;
    let mut last_of = std::collections::HashMap::new();
    let mut out_of_order = 0;
    for a in &accepted {
        let id = id_of(&a.message_id);
        if !seen.insert(id) {
            duplicates += 1;
        }
        let i = (id - 1) as usize;
        if i % 4 != 3 {
            let appointment = i / 4;
            if let Some(prev) = last_of.insert(appointment, id) {
                if prev > id {
                    out_of_order += 1;
                }
            }
        }
    }
    println!(
        "mailload: {} emails through a relay taking {} ms each{}: {rate:.0} emails/s (first to last accepted over {span:.2} s; {:.2} s from the server's start); at most {} SMTP sessions at once; {duplicates} accepted twice; {out_of_order} out of order; server CPU {cpu:.2} s",
        accepted.len(),
        args.delay_ms,
        args.fail_every
            .map(|k| format!(", refusing every {k}th"))
            .unwrap_or_default(),
        (last - started).as_secs_f64(),
        sink.most_sessions(),
    );
    anyhow::ensure!(duplicates == 0, "emails accepted twice");
    anyhow::ensure!(out_of_order == 0, "an appointment's emails out of order");
    anyhow::ensure!(
        rate >= args.min_rate,
        "{rate:.0} emails/s is below {}",
        args.min_rate
    );
    Ok(())
}
