//! Several Sportello processes on one PostgreSQL (issue 16): a catalogue change reaches the
//! other processes at once (LISTEN/NOTIFY); three nodes behind nginx serve each room from one
//! node, forward sockets to it, show a waiting citizen on every agenda, re-place a dead node's
//! rooms, take exactly a slot's seats when bookings race, and send each email once, also when
//! the SMTP server was down or the node sending an email was killed; 50 rooms of synthetic
//! WebRTC participants spread over three nodes and survive the death of one.

use std::time::{Duration, Instant};

use booking::backoffice::ExceptionRow;
use booking::{Limits, Store};
use tests::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

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

// ---------------------------------------------------------------- rooms across nodes

/// The secret the nodes share (they sign and check the same links).
const SECRET: &str = tests::cluster::SECRET;

/// A node's `/healthz` (on its administration listener).
/// A browser logged in as a new administrator on the node at `http` (any node: sessions live
/// in the database).
async fn administrator(store: &Store, http: u16) -> Browser {
    let email = format!("admin-{:08x}@comune.esempio.it", rand::random::<u32>());
    let now = chrono::Utc::now();
    let (_, provisional) = staff::Accounts::new(store.pool().clone())
        .create(
            &staff::NewAccount {
                email: email.clone(),
                name: "Amministratore di prova".into(),
                role: staff::Role::Admin,
                offices: vec![],
                operator_id: None,
            },
            &booking::audit::Entry::by_command_line("account_creato", "account", None, "test", now),
            now,
        )
        .await
        .unwrap();
    let b = Browser {
        client: browser_client().build().unwrap(),
        base: format!("http://127.0.0.1:{http}"),
    };
    let p = b.login(&email, &provisional).await;
    assert_eq!(p.location.as_deref(), Some("/ufficio/password"), "{p:?}");
    let p = b.change_password(&provisional, STAFF_PASSWORD).await;
    assert_eq!(p.status, reqwest::StatusCode::SEE_OTHER, "{p:?}");
    b
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON message of a room socket, or `None` when it closed (or said nothing in 10 s).
async fn next_json(ws: &mut Socket) -> Option<serde_json::Value> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => continue,
            _ => return None,
        }
    }
}

/// Opens the room through the load balancer, says hello and joins; the messages it got, or
/// `None` if the socket closed on the way (the room's node is moving: try again).
async fn enter(
    lb: u16,
    code: &str,
    token: &str,
    name: &str,
) -> Option<(Socket, serde_json::Value)> {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("ws://127.0.0.1:{lb}/ws/stanza/{code}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
    let hello = serde_json::json!({"type": "hello", "v": 1, "token": token});
    ws.send(Message::text(hello.to_string())).await.ok()?;
    let ready = next_json(&mut ws).await?;
    if ready["type"] != "ready" {
        panic!("not ready: {ready}");
    }
    let join = serde_json::json!({"type": "join", "v": 1, "name": name});
    ws.send(Message::text(join.to_string())).await.ok()?;
    let first = next_json(&mut ws).await?;
    Some((ws, first))
}

/// Waits until `ws` hears that the other side (`role`) joined; false if it closed first.
async fn hears_joined(ws: &mut Socket, role: &str) -> bool {
    while let Some(m) = next_json(ws).await {
        if m["type"] == "peer_joined" && m["role"] == role {
            return true;
        }
    }
    false
}

// Three nodes on one PostgreSQL behind nginx (round robin): the citizen's and the operator's
// sockets reach different nodes and still meet in the room, on the one node that holds it
// (the other forwards its socket there). SIGKILL that node mid-call: both pages reconnect
// through nginx and the room is placed on a live node; the time that takes is measured and
// must stay under 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rooms_sockets_meet_on_its_node_and_move_when_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = fresh_database(Db::Postgres, dir.path()).await else {
        return;
    };
    let rooms = tests::seed::video_rooms_from(&url, SECRET, 2, test_now())
        .await
        .unwrap();
    let a = &rooms[0];
    let clock = (a.start + chrono::Duration::minutes(1)).to_rfc3339();
    let signer = booking::token::Signer::new(SECRET.as_bytes());
    let citizen = signer.sign(booking::token::Purpose::RoomCitizen, a.id);
    let operator = signer.sign(booking::token::Purpose::RoomOperator, a.id);

    let no_mail = ["--smtp-host", "127.0.0.1", "--smtp-port", "9"];
    let bin = tests::faults::test_binary();
    let mut cluster =
        tests::cluster::Cluster::start(&bin, &url, 3, &clock, dir.path(), &no_mail).await;
    let (lb, ids) = (cluster.lb, ["n1", "n2", "n3"]);
    let ports: Vec<(u16, u16)> = cluster.nodes.iter().map(|(_, p)| *p).collect();

    // Whatever node each socket reaches, they meet.
    let (mut c, first) = enter(lb, &a.code, &citizen, "Maria Rossi")
        .await
        .expect("citizen in");
    assert_eq!(first["type"], "waiting", "{first}");
    let (o, _) = enter(lb, &a.code, &operator, "Ufficio")
        .await
        .expect("operator in");
    assert!(hears_joined(&mut c, "operator").await);
    // One node serves the room; round robin sent the two sockets to two different nodes.
    let mut holder = None;
    for (i, (_, adm)) in ports.iter().enumerate() {
        let h = tests::cluster::health(*adm).await;
        assert!(
            h.contains(&format!("node: {}", ids[i])) && h.contains("rooms: accepting"),
            "{h}"
        );
        if h.contains("rooms served here: 1") {
            assert!(holder.replace(i).is_none(), "two nodes serve the room");
        }
    }
    let holder = holder.expect("a node serves the room");
    let forwarded: usize =
        futures::future::join_all(ports.iter().map(|(_, adm)| tests::cluster::health(*adm)))
            .await
            .iter()
            .filter(|h| !h.contains("sockets forwarded to other nodes: 0"))
            .count();
    assert_eq!(
        forwarded, 1,
        "one socket reached another node and was forwarded"
    ); // A socket that says it comes from a node, with a forged token, is not believed: it is
       // forwarded to the holder like any other, and the holder still serves the room alone.
    let elsewhere = ports[(holder + 1) % 3];
    let mut forged = format!("ws://127.0.0.1:{}/ws/stanza/{}", elsewhere.0, a.code)
        .into_client_request()
        .unwrap();
    forged
        .headers_mut()
        .insert("x-sportello-forwarded", "forged.token".parse().unwrap());
    let (mut f, _) = tokio_tungstenite::connect_async(forged).await.unwrap();
    {
        use futures::SinkExt;
        let hello = serde_json::json!({"type": "hello", "v": 1, "token": operator});
        f.send(tokio_tungstenite::tungstenite::Message::text(
            hello.to_string(),
        ))
        .await
        .unwrap();
    }
    assert_eq!(next_json(&mut f).await.unwrap()["type"], "ready");
    let h = tests::cluster::health(elsewhere.1).await;
    assert!(h.contains("rooms served here: 0"), "{h}");
    assert!(!h.contains("sockets forwarded to other nodes: 0"), "{h}");
    drop(f);

    let store = node(&url).await;
    let live = store
        .live_nodes(chrono::Utc::now() - chrono::Duration::seconds(10))
        .await
        .unwrap();
    assert_eq!(live.len(), 3, "{live:?}");
    // Every node's agenda shows the citizen waiting, at once: the holder announces it.
    let admin = administrator(&store, ports[0].0).await;
    let https: Vec<u16> = ports.iter().map(|(http, _)| *http).collect();
    agendas_show(&admin, &https, a.id, true).await;

    // A second room, its two sockets straight on another node, which thus holds it.
    let b = &rooms[1];
    let other = ports[(holder + 1) % 3].0;
    let sign = |purpose| signer.sign(purpose, b.id);
    let (mut c2, _) = enter(
        other,
        &b.code,
        &sign(booking::token::Purpose::RoomCitizen),
        "Anna",
    )
    .await
    .unwrap();
    let (mut o2, _) = enter(
        other,
        &b.code,
        &sign(booking::token::Purpose::RoomOperator),
        "Uff",
    )
    .await
    .unwrap();
    assert!(hears_joined(&mut c2, "operator").await);

    // The holder of the first room dies.
    let killed = Instant::now();
    cluster.kill(holder);
    // Both pages see their socket close and reconnect (room.js retries within a second).
    assert!(
        !hears_joined(&mut c, "operator").await,
        "the citizen's socket closed"
    );
    drop(o);
    let (mut c, mut o) = loop {
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the room never moved"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some((c, _)) = enter(lb, &a.code, &citizen, "Maria Rossi").await else {
            continue;
        };
        let Some((o, _)) = enter(lb, &a.code, &operator, "Ufficio").await else {
            continue;
        };
        break (c, o);
    };
    assert!(hears_joined(&mut c, "operator").await || hears_joined(&mut o, "citizen").await);
    let moved = killed.elapsed();
    eprintln!(
        "room re-placed and both sides back in it {:.1} s after SIGKILL of its node",
        moved.as_secs_f64()
    );
    assert!(moved < Duration::from_secs(10), "{moved:?}");
    let serving: Vec<String> = futures::future::join_all(
        ports
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != holder)
            .map(|(_, (_, adm))| tests::cluster::health(*adm)),
    )
    .await;
    let rooms_served: u64 = serving
        .iter()
        .filter_map(|h| tests::cluster::health_count(h, "rooms served here"))
        .sum();
    assert_eq!(rooms_served, 2, "{serving:?}");
    // The other room went on untouched: both its sockets open, nobody left.
    for ws in [&mut c2, &mut o2] {
        use futures::SinkExt;
        let ping = serde_json::json!({"type": "ping", "v": 1}).to_string();
        ws.send(tokio_tungstenite::tungstenite::Message::text(ping))
            .await
            .unwrap();
        loop {
            let m = next_json(ws)
                .await
                .expect("the other room's socket is open");
            assert_ne!(m["type"], "peer_left", "{m}");
            if m["type"] == "pong" {
                break;
            }
        }
    }

    // The office cancels from another process on the database: the room, on whichever node,
    // hears it at once (NOTIFY) and both pages are told why.
    let entry =
        booking::audit::Entry::by_command_line("annullato", "appointment", Some(a.id), "", a.start);
    store
        .cancel(a.id, booking::Actor::Office, "", &entry, a.start)
        .await
        .unwrap();
    let cancelled = Instant::now();
    for ws in [&mut c, &mut o] {
        let mut told = false;
        while let Some(m) = next_json(ws).await {
            told |= m["type"] == "error" && m["code"] == "cancelled";
        }
        assert!(told, "told that the appointment was cancelled");
    }
    assert!(
        cancelled.elapsed() < Duration::from_secs(3),
        "{:?}",
        cancelled.elapsed()
    );
    // The second room's citizen leaves: no live node's agenda shows them waiting any more.
    let live: Vec<u16> = https
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != holder)
        .map(|(_, p)| *p)
        .collect();
    agendas_show(&admin, &live, b.id, true).await;
    drop(c2);
    agendas_show(&admin, &live, b.id, false).await;
}

/// Asserts that within a second the agenda of each node at `https` shows appointment `id`'s
/// citizen waiting (`waiting`), or no longer does.
async fn agendas_show(admin: &Browser, https: &[u16], id: i64, waiting: bool) {
    for http in https {
        let asked = Instant::now();
        let agenda = Browser {
            client: admin.client.clone(),
            base: format!("http://127.0.0.1:{http}"),
        };
        loop {
            let p = agenda.get("/ufficio/attesa").await;
            assert_eq!(p.status, reqwest::StatusCode::OK, "{p:?}");
            let list: serde_json::Value = serde_json::from_str(&p.body).unwrap();
            let shown = list["waiting"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!(id.to_string()));
            if shown == waiting {
                break;
            }
            assert!(
                asked.elapsed() < Duration::from_secs(1),
                "node {http}'s agenda: {list}, expected room {id} waiting: {waiting}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One video service (id 1) with `seats` a slot on a fresh database: the store, the test's
/// "today" and the first bookable slot after it.
async fn one_slot(
    url: &str,
    seats: i64,
) -> (
    Store,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
) {
    let store = node(url).await;
    tests::seed::OneService::video_calls(seats)
        .seed(&store)
        .await
        .unwrap();
    let now = test_now();
    let service = store.service(1).await.unwrap();
    let slot = store.free_slots(&service, now).await.unwrap()[0].start;
    (store, now, slot)
}

/// What the email tests share: a fresh PostgreSQL database with one video slot (`one_slot`),
/// the test's folder, and the Python that runs the real SMTP server. `None` where PostgreSQL or
/// aiosmtpd is missing (outside scripts/test: `fresh_database` says so, and fails in CI).
struct MailTest {
    dir: tempfile::TempDir,
    url: String,
    python: std::path::PathBuf,
    store: Store,
    now: chrono::DateTime<chrono::Utc>,
    slot: chrono::DateTime<chrono::Utc>,
}

async fn mail_test(seats: i64) -> Option<MailTest> {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(Db::Postgres, dir.path()).await?;
    let python = tests::smtp::aiosmtpd_python()?;
    let (store, now, slot) = one_slot(&url, seats).await;
    Some(MailTest {
        dir,
        url,
        python,
        store,
        now,
        slot,
    })
}

impl MailTest {
    /// `n` nodes on the test's database, with the clock at its `now`, sending through the SMTP
    /// server on `smtp_port` (plain), with `extra` flags.
    async fn nodes(&self, n: usize, smtp_port: u16, extra: &[&str]) -> tests::cluster::Cluster {
        let smtp = smtp_port.to_string();
        let mut flags = vec![
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            &smtp,
            "--smtp-security",
            "none",
        ];
        flags.extend(extra);
        flags.extend(tests::cluster::LOAD_FLAGS);
        let bin = tests::faults::test_binary();
        let clock = self.now.to_rfc3339();
        tests::cluster::Cluster::start(&bin, &self.url, n, &clock, self.dir.path(), &flags).await
    }

    /// Citizen `i` books the slot through `base`: the form, then the post; the answer's status.
    async fn book(&self, base: &str, i: usize) -> u16 {
        let client = browser_client().build().unwrap();
        let start = self.slot.timestamp().to_string();
        let form = format!("{base}/servizi/1/prenota?inizio={start}");
        let csrf = form_csrf(&client, &form).await.unwrap();
        post_booking(&client, base, &csrf, &start, i).await
    }
}

/// Posts the booking form of service 1 for `start` (Unix seconds) as citizen `i`, with a
/// client that has the form's CSRF cookie; the answer's status.
async fn post_booking(
    client: &reqwest::Client,
    base: &str,
    csrf: &str,
    start: &str,
    i: usize,
) -> u16 {
    let email = format!("corsa{i}@example.it");
    client
        .post(format!("{base}/servizi/1/prenota"))
        .form(&[
            ("csrf", csrf),
            ("start", start),
            ("mode", "video"),
            ("given_name", "Maria"),
            ("family_name", "Rossi"),
            ("email", email.as_str()),
            ("reason", "corsa"),
            ("consent", "on"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits until `maildir` holds `n` messages, then three worker passes more; their Message-IDs,
/// which must be `n` different ones.
async fn delivered_once(maildir: &std::path::Path, n: usize, within: Duration) {
    let waited = Instant::now();
    while tests::smtp::received_message_ids(maildir).len() < n {
        assert!(waited.elapsed() < within, "emails not sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for a second sending, were there one: three worker passes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut ids = tests::smtp::received_message_ids(maildir);
    assert_eq!(ids.len(), n, "{ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a message sent twice");
}

// Bookings racing for the same slot through three nodes behind nginx: exactly its seats are
// taken, whichever nodes the requests reach; and every email the nodes queue reaches the SMTP
// server once, though three workers (one a node) pick from the same outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_race_through_three_nodes_and_each_email_goes_once() {
    const SEATS: i64 = 3;
    let Some(t) = mail_test(SEATS).await else {
        return;
    };
    let maildir = t.dir.path().join("mail");
    let smtp_port = free_port();
    let _smtp = tests::smtp::start_smtp(&t.python, smtp_port, &maildir);
    let cluster = t.nodes(3, smtp_port, &[]).await;
    let base = cluster.base.clone();

    // 24 citizens, each with its form (and CSRF cookie) from some node, post at once.
    let start = t.slot.timestamp().to_string();
    let mut racers = Vec::new();
    for i in 0..24 {
        let client = browser_client().build().unwrap();
        let form = format!("{base}/servizi/1/prenota?inizio={start}");
        let csrf = form_csrf(&client, &form).await.unwrap();
        racers.push((i, client, csrf));
    }
    let answers = futures::future::join_all(
        racers
            .iter()
            .map(|(i, client, csrf)| post_booking(client, &base, csrf, &start, *i)),
    )
    .await;
    let booked = answers.iter().filter(|s| **s == 303).count();
    let taken = answers.iter().filter(|s| **s == 409).count();
    assert_eq!(
        (booked, taken),
        (SEATS as usize, 24 - SEATS as usize),
        "{answers:?}"
    );
    assert!(t.store.overbooked_slots().await.unwrap().is_empty());

    // One verification email a booking, each sent once.
    delivered_once(&maildir, booked, Duration::from_secs(20)).await;

    drop(cluster);
}

// The SMTP server is down while three nodes queue emails and try them; one node dies; the
// server comes back: every email reaches it once, sent by the nodes still alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_held_back_by_an_smtp_outage_go_once_after_a_node_dies() {
    let Some(t) = mail_test(20).await else {
        return;
    };
    // The SMTP server's port, held (bound, not listening: connections are refused) until the
    // server starts, so that no other test's process takes it meanwhile and leaves the nodes
    // waiting for a greeting instead of failing at once.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let smtp_port = held.local_addr().unwrap().port();
    let maildir = t.dir.path().join("mail");
    let mut cluster = t.nodes(3, smtp_port, &["--worker-interval", "1"]).await;
    let base = cluster.base.clone();
    // Six bookings through the nodes: six verification emails, tried and not sent.
    for i in 0..6 {
        assert_eq!(t.book(&base, i).await, 303);
    }
    let tried = Instant::now();
    loop {
        let backlog = t.store.outbox_backlog(t.now).await.unwrap();
        let attempted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE attempts > 0")
            .fetch_one(t.store.pool())
            .await
            .unwrap();
        if attempted == 6 {
            break;
        }
        assert!(
            tried.elapsed() < Duration::from_secs(15),
            "not tried: {backlog:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.kill(0);
    drop(held);
    let _smtp = tests::smtp::start_smtp(&t.python, smtp_port, &maildir);
    // The next attempt is 10 s after the first failure.
    delivered_once(&maildir, 6, Duration::from_secs(40)).await;
    drop(cluster);
}

// A node claims an email and dies while its SMTP relay has not answered yet: the email is the
// dead node's until its claim runs out (16 times the SMTP timeout: 16 s here), so no other node
// sends it meanwhile; then another node sends it, once. Not lost, and not sent by two nodes
// while the first might still be sending it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_claimed_by_a_node_killed_mid_send_goes_once_its_claim_runs_out() {
    let Some(t) = mail_test(2).await else {
        return;
    };
    // A relay that accepts the connection and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let (accepted, accepts) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming() {
            held.push(conn);
            let _ = accepted.send(Instant::now());
        }
    });
    let timeout = 1;
    let timeout_flag = timeout.to_string();
    let flags = [
        "--worker-interval",
        "1",
        "--smtp-timeout-seconds",
        &timeout_flag,
    ];
    let mut first = t.nodes(1, silent_port, &flags).await;
    assert_eq!(t.book(&first.base, 0).await, 303);
    // The node claims the verification email and opens a session with the relay: it dies
    // while waiting for the greeting.
    let connected = accepts
        .recv_timeout(Duration::from_secs(15))
        .expect("the node tries to send the email");
    first.kill(0);
    assert!(
        connected.elapsed() < Duration::from_secs(timeout),
        "killed mid-send, before the relay's timeout"
    );
    let killed = Instant::now();

    // Another node, with a relay that works, on the same database.
    let (maildir, smtp_port) = (t.dir.path().join("mail"), free_port());
    let _smtp = tests::smtp::start_smtp(&t.python, smtp_port, &maildir);
    let second = t.nodes(1, smtp_port, &flags).await;
    let lease = booking::outbox::claim_lease(Duration::from_secs(timeout))
        .to_std()
        .unwrap();
    while tests::smtp::received_message_ids(&maildir).is_empty() {
        assert!(
            killed.elapsed() < lease + Duration::from_secs(15),
            "the email never went"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waited = killed.elapsed();
    delivered_once(&maildir, 1, Duration::ZERO).await;
    eprintln!(
        "the email of a node killed mid-send went {:.1} s after the kill (claim {} s)",
        waited.as_secs_f64(),
        lease.as_secs()
    );
    // Sent no earlier than the claim allows (counted from the kill, which came after it),
    // and not more than a few worker passes after.
    assert!(
        waited + Duration::from_secs(timeout) >= lease,
        "sent after {waited:?}, before the dead node's claim of {lease:?} ran out"
    );
    assert!(
        t.store.outbox_backlog(t.now).await.unwrap().0 == 0,
        "nothing left unsent"
    );
    drop((first, second));
}

// 50 rooms, each with two synthetic WebRTC participants (`tests::media`, as `mediaload` runs
// them) whose sockets reach the nodes through nginx in turn: the rooms spread over the three
// nodes, every participant receives the other's video, and each node relays the media of the
// rooms it holds and of no other (its relay's connections are twice its rooms). Then one node
// is killed during the calls: each participant whose socket went through it joins again, as
// the page does, and has the other's video back within a bound measured here; the rooms with no
// socket through it go on untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_rooms_spread_over_three_nodes_and_survive_one_nodes_death() {
    use booking::token::Purpose;
    use futures::{StreamExt, TryStreamExt};
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::{Arc, Mutex};
    use tests::media::{Counters, Participant};
    const ROOMS: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = fresh_database(Db::Postgres, dir.path()).await else {
        return;
    };
    let rooms = tests::seed::video_rooms_from(&url, SECRET, ROOMS, test_now())
        .await
        .unwrap();
    let clock = (rooms[0].start + chrono::Duration::minutes(1)).to_rfc3339();
    let mut flags = vec!["--smtp-host", "127.0.0.1", "--smtp-port", "9"];
    flags.extend(["--worker-interval", "3600"]);
    flags.extend(tests::cluster::LOAD_FLAGS);
    let bin = tests::faults::test_binary();
    let mut cluster =
        tests::cluster::Cluster::start(&bin, &url, 3, &clock, dir.path(), &flags).await;
    let signer = booking::token::Signer::new(SECRET.as_bytes());
    let epoch = Instant::now();
    let lb = cluster.lb;
    // One participant: its room, role, and what it received.
    type Seat = (usize, Purpose, &'static str);
    let join = |(room, purpose, name): Seat| {
        let a = &rooms[room];
        let url = format!("ws://127.0.0.1:{lb}/ws/stanza/{}", a.code);
        let token = signer.sign(purpose, a.id);
        async move {
            let counters = Arc::new(Counters::default());
            let p = tests::media::join(&url, &token, name, counters.clone(), epoch).await?;
            anyhow::Ok((Arc::new(p), counters))
        }
    };
    // Each sends its audio and 200 kbit/s of video until the end.
    let until = Arc::new(Mutex::new(Instant::now() + Duration::from_secs(3600)));
    let send = |p: &Arc<Participant>, c: &Arc<Counters>| {
        tokio::spawn(tests::media::send_media(
            p.clone(),
            c.clone(),
            epoch,
            200,
            until.clone(),
        ))
    };
    let seats: Vec<Seat> = (0..ROOMS)
        .flat_map(|r| {
            [
                (r, Purpose::RoomCitizen, "Cittadino"),
                (r, Purpose::RoomOperator, "Operatore"),
            ]
        })
        .collect();
    let started = Instant::now();
    let mut people: Vec<(Arc<Participant>, Arc<Counters>)> =
        futures::stream::iter(seats.iter().copied().map(join))
            .buffered(8)
            .try_collect()
            .await
            .unwrap();
    eprintln!(
        "{} participants joined in {:.1} s",
        people.len(),
        started.elapsed().as_secs_f64()
    );
    let mut senders: Vec<_> = people.iter().map(|(p, c)| send(p, c)).collect();
    let all_see = |people: &[(Arc<Participant>, Arc<Counters>)]| {
        people
            .iter()
            .all(|(p, _)| p.first_video.lock().unwrap().is_some())
    };
    let waited = Instant::now();
    while !all_see(&people) {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "participants without video"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (sent, received) = people.iter().fold((0, 0), |(s, r), (_, c)| {
        (s + c.sent.load(Relaxed), r + c.received.load(Relaxed))
    });
    eprintln!(
        "{sent} packets sent, {received} received through the relays ({:.2} % lost)",
        100.0 * (1.0 - received as f64 / sent as f64)
    );
    assert!(
        received as f64 >= 0.9 * sent as f64,
        "{received} of {sent} packets forwarded"
    );

    // Where the rooms are: spread over the three nodes, each relaying its own rooms only.
    let mut total = (0, 0);
    for (i, (_, (_, adm))) in cluster.nodes.iter().enumerate() {
        let h = tests::cluster::health(*adm).await;
        let count = |what: &str| {
            tests::cluster::health_count(&h, what).unwrap_or_else(|| panic!("{what} in {h}"))
        };
        let (here, forwarding) = (
            count("rooms served here"),
            count("forwarded sockets open now"),
        );
        let metrics = reqwest::get(format!("http://127.0.0.1:{adm}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let relayed: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("sportello_relay_peer_connections "))
            .and_then(|n| n.trim().parse().ok())
            .expect("the relay's connections in /metrics");
        eprintln!("node n{}: {here} rooms, {relayed} media connections, {forwarding} sockets forwarded to others", i + 1);
        assert!(here > 0, "node n{} serves no room: {h}", i + 1);
        assert_eq!(
            relayed,
            2 * here,
            "node n{} relays other nodes' rooms",
            i + 1
        );
        total = (total.0 + here, total.1 + forwarding);
    }
    assert_eq!(total.0, ROOMS as u64, "every room on one node");
    assert!(
        total.1 > 0,
        "no socket reached a node other than its room's"
    );

    // The first node dies during the calls.
    let before: Vec<u64> = people
        .iter()
        .map(|(_, c)| c.received.load(Relaxed))
        .collect();
    let killed = Instant::now();
    cluster.kill(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Whose socket went through it: closed now (by the dead node, or by the live node that
    // forwarded it there). Each of them joins again, through nginx, until the room takes them.
    let lost: Vec<usize> = (0..people.len())
        .filter(|i| !people[*i].0.socket_open())
        .collect();
    let touched: std::collections::HashSet<usize> = lost.iter().map(|i| seats[*i].0).collect();
    assert!(!lost.is_empty(), "no socket went through the killed node");
    let back: Vec<(usize, Arc<Participant>, Arc<Counters>)> =
        futures::future::join_all(lost.iter().map(|&i| {
            let (join, seat) = (&join, seats[i]);
            async move {
                loop {
                    assert!(
                        killed.elapsed() < Duration::from_secs(30),
                        "never back in the room"
                    );
                    match tokio::time::timeout(Duration::from_secs(10), join(seat)).await {
                        Ok(Ok((p, c))) => return (i, p, c),
                        _ => tokio::time::sleep(Duration::from_millis(500)).await,
                    }
                }
            }
        }))
        .await;
    for (i, p, c) in back {
        senders.push(send(&p, &c));
        people[i] = (p, c);
    }
    while !all_see(&people) {
        assert!(
            killed.elapsed() < Duration::from_secs(40),
            "video never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resumed = killed.elapsed();
    eprintln!(
        "SIGKILL of a node: {} sockets of {} rooms went through it; every one of their participants had video again {:.1} s after the kill",
        lost.len(),
        touched.len(),
        resumed.as_secs_f64()
    );
    assert!(resumed < Duration::from_secs(15), "{resumed:?}");
    // The other rooms went on: their sockets open, their media still arriving.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let untouched: Vec<usize> = (0..people.len())
        .filter(|i| !touched.contains(&seats[*i].0))
        .collect();
    assert!(
        !untouched.is_empty(),
        "every room went through the killed node"
    );
    for i in untouched {
        let (p, c) = &people[i];
        assert!(p.socket_open(), "an untouched room's socket closed");
        assert!(
            c.received.load(Relaxed) > before[i] + 50,
            "an untouched room's media stopped"
        );
    }
    *until.lock().unwrap() = Instant::now();
    for s in senders {
        let _ = s.await;
    }
    for (p, _) in people {
        let _ = p.pc.close().await;
    }
    drop(cluster);
}
