//! The virtual room over real WebSockets: the time gate with its countdown, the waiting room,
//! the call start, and every way a socket can misbehave.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tests::*;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

struct Ws(WebSocketStream<MaybeTlsStream<TcpStream>>);

enum Got {
    Json(Value),
    Closed(u16, String),
}

impl Ws {
    async fn open(s: &Server, code: &str) -> Ws {
        let url = format!("{}/ws/stanza/{code}", s.base.replace("http://", "ws://"));
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket");
        Ws(ws)
    }
    async fn send(&mut self, v: Value) {
        self.0
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }
    async fn send_raw(&mut self, text: String) {
        self.0.send(Message::text(text)).await.expect("send");
    }
    async fn next(&mut self) -> Got {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), self.0.next())
                .await
                .expect("an answer within 10 s");
            match m {
                Some(Ok(Message::Text(t))) => {
                    return Got::Json(serde_json::from_str(&t).expect("JSON from the server"))
                }
                Some(Ok(Message::Close(Some(f)))) => {
                    return Got::Closed(u16::from(f.code), f.reason.to_string())
                }
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                    return Got::Closed(0, String::new())
                }
                Some(Ok(_)) => continue,
            }
        }
    }
    async fn json(&mut self) -> Value {
        match self.next().await {
            Got::Json(v) => v,
            Got::Closed(c, r) => panic!("closed {c} {r}"),
        }
    }
    /// The next message, or none once the socket is closed.
    async fn maybe_json(&mut self) -> Option<Value> {
        match self.next().await {
            Got::Json(v) => Some(v),
            Got::Closed(..) => None,
        }
    }
    async fn closed(&mut self) -> (u16, String) {
        loop {
            if let Got::Closed(c, r) = self.next().await {
                return (c, r);
            }
        }
    }
    async fn hello(&mut self, token: &str) -> Value {
        self.send(json!({"type": "hello", "v": 1, "token": token}))
            .await;
        self.json().await
    }
    async fn join(&mut self, name: &str) {
        self.send(json!({"type": "join", "v": 1, "name": name}))
            .await;
    }
}

async fn code_of(s: &Server, id: i64) -> String {
    s.state.store.appointment(id).await.unwrap().code
}

/// The citizen's hello on room `code` of appointment `id` is refused with `code` and a message
/// that says `says`, and the socket is closed for good (4410).
async fn refused_for_good(s: &Server, room: &str, id: i64, code: &str, says: &str) {
    let mut ws = Ws::open(s, room).await;
    let e = ws.hello(&s.room_token(id, false)).await;
    assert_eq!(e["code"], code);
    assert!(e["message"].as_str().unwrap().contains(says), "{e}");
    assert_eq!(ws.closed().await.0, 4410);
}

/// A confirmed video appointment at `start()`: its id and its room's code.
async fn video_room(s: &Server, email: &str) -> (i64, String) {
    let id = s.video_appointment(start(), email).await;
    (id, code_of(s, id).await)
}

/// A SQLite server with these room settings.
async fn server_with(opts: Options) -> Server {
    Server::start_with(Db::Sqlite, opts).await.unwrap()
}

fn start() -> DateTime<Utc> {
    next_after(test_now(), Wed, 9, 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn countdown_then_waiting_room_then_the_call_starts() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let (id, code) = video_room(&s, "maria@example.it").await;
    let citizen_token = s.room_token(id, false);
    let operator_token = s.room_token(id, true);

    // Ten seconds before the citizen's opening (five minutes before the start).
    s.clock
        .set(start() - chrono::Duration::minutes(5) - chrono::Duration::seconds(10));
    let mut citizen = Ws::open(&s, &code).await;
    let c = citizen.hello(&citizen_token).await;
    assert_eq!(c["type"], "countdown");
    assert_eq!(c["ms_left"], 10_000);
    assert_eq!(c["seconds_left"], 10);
    assert_eq!(
        c["starts_at"],
        start().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    // The page itself comes with the same countdown, shown before its socket answers.
    let page = s.get(&format!("/stanza/{citizen_token}")).await.body;
    assert!(page.contains(r#"data-ms-left="10000""#), "{page}");
    assert!(page.contains(r#"<section id="state-countdown">"#), "{page}");
    assert!(
        page.contains(r#"<section id="state-connecting" hidden>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"aria-atomic="true">10 secondi</p>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<strong id="opens-at">08:55</strong>"#),
        "{page}"
    );
    // Meanwhile the citizen can try camera and microphone.
    assert!(page.contains(r#"href="/prova-video""#), "{page}");
    // The operator's room is already open: their page shows no countdown.
    let page = s.get(&format!("/stanza/{operator_token}")).await.body;
    assert!(!page.contains("data-ms-left"), "{page}");
    assert!(
        page.contains(r#"<section id="state-countdown" hidden>"#),
        "{page}"
    );
    // Joining now is refused, and changes nothing.
    citizen.join("Maria Rossi").await;
    assert_eq!(citizen.json().await["code"], "not_ready");

    // The operator may already enter (fifteen minutes before).
    let mut operator = Ws::open(&s, &code).await;
    let r = operator.hello(&operator_token).await;
    assert_eq!(r["type"], "ready");
    assert_eq!(r["role"], "operator");

    // At the opening instant the citizen asks again and is admitted.
    s.clock.advance(chrono::Duration::seconds(10));
    let r = citizen.hello(&citizen_token).await;
    assert_eq!(r["type"], "ready");
    assert_eq!(r["office"], "Edilizia privata");
    citizen.join("Maria Rossi").await;
    assert_eq!(
        citizen.json().await,
        json!({"type": "waiting", "v": 1, "waiting_for": "operator"})
    );
    // The operator, not yet in, hears that the citizen waits.
    assert_eq!(
        operator.json().await,
        json!({"type": "citizen_waiting", "v": 1, "name": "Maria Rossi"})
    );

    operator.join("Ufficio Edilizia").await;
    assert_eq!(
        operator.json().await,
        json!({"type": "peer_joined", "v": 1, "role": "citizen", "name": "Maria Rossi"})
    );
    assert_eq!(
        citizen.json().await,
        json!({"type": "peer_joined", "v": 1, "role": "operator", "name": "Ufficio Edilizia"})
    );
    assert!(s.state.hub.citizen_waiting(id));

    // Offers go to the media relay, which answers for the server: a bad one gets a clear error
    // and nothing breaks; a candidate before any offer too.
    citizen
        .send(json!({"type": "offer", "v": 1, "sdp": "v=0 offer"}))
        .await;
    assert_eq!(citizen.json().await["code"], "bad_sdp");
    operator.send(json!({"type": "ice", "v": 1, "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdp_mid": "0", "sdp_mline_index": 0})).await;
    assert_eq!(operator.json().await["code"], "bad_candidate");
    citizen.send(json!({"type": "ping", "v": 1})).await;
    assert_eq!(citizen.json().await["type"], "pong");

    // The citizen leaves: the operator is told.
    citizen.send(json!({"type": "leave", "v": 1})).await;
    assert_eq!(
        operator.json().await,
        json!({"type": "peer_left", "v": 1, "role": "citizen", "reason": "left"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_socket_gets_turn_credentials_that_last_until_the_room_closes() {
    let s = Server::start_with(
        Db::Sqlite,
        Options {
            turn: Some((
                "turn-shared-secret".into(),
                "turn:127.0.0.1:3478?transport=udp".into(),
            )),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let (id, code) = video_room(&s, "maria@example.it").await;
    let a = s.state.store.appointment(id).await.unwrap();
    // The operator enters 15 minutes early; the room closes 30 minutes after the end.
    s.clock.set(start() - chrono::Duration::minutes(15));
    let open_for = (a.end + chrono::Duration::minutes(30) - s.clock_now()).num_seconds();
    assert!(open_for > 3600, "this room stays open longer than the TTL");
    let mut ws = Ws::open(&s, &code).await;
    let before = Utc::now().timestamp();
    let r = ws.hello(&s.room_token(id, true)).await;
    let after = Utc::now().timestamp();
    assert_eq!(r["type"], "ready");
    let servers = r["ice_servers"].as_array().expect("ice_servers");
    assert_eq!(servers.len(), 1);
    assert_eq!(
        servers[0]["urls"],
        json!(["turn:127.0.0.1:3478?transport=udp"])
    );
    let user = servers[0]["username"].as_str().unwrap();
    let (expiry, who) = user.split_once(':').unwrap();
    assert_eq!(who, format!("{id}-operator"));
    // On the real clock (coturn's), not the server's moved one, until the room closes.
    let expiry: i64 = expiry.parse().unwrap();
    assert!(
        (before + open_for..=after + open_for).contains(&expiry),
        "expiry {expiry}, now {before}, open for {open_for} s"
    );
    assert_eq!(
        servers[0]["credential"],
        web::turn::credential(b"turn-shared-secret", user)
    );

    // A second socket gets credentials of its own; without TURN settings the list is empty.
    let mut citizen = Ws::open(&s, &code).await;
    s.clock.set(start());
    let r = citizen.hello(&s.room_token(id, false)).await;
    assert!(r["ice_servers"][0]["username"]
        .as_str()
        .unwrap()
        .ends_with(&format!(":{id}-citizen")));
    let plain = Server::start(Db::Sqlite).await.unwrap();
    let id = plain.video_appointment(start(), "bruno@example.it").await;
    plain.clock.set(start());
    let mut ws = Ws::open(&plain, &code_of(&plain, id).await).await;
    let r = ws.hello(&plain.room_token(id, false)).await;
    assert_eq!(r["ice_servers"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_a_clear_answer_and_other_rooms_go_on() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let a = s.video_appointment(start(), "a@example.it").await;
    let b = s
        .video_appointment(start() + chrono::Duration::minutes(30), "b@example.it")
        .await;
    let (code_a, code_b) = (code_of(&s, a).await, code_of(&s, b).await);
    s.clock.set(start() - chrono::Duration::minutes(1));

    // Room B has its citizen waiting throughout.
    let mut bystander = Ws::open(&s, &code_b).await;
    s.clock.set(start() + chrono::Duration::minutes(26));
    assert_eq!(
        bystander.hello(&s.room_token(b, false)).await["type"],
        "ready"
    );
    bystander.join("Bruno").await;
    assert_eq!(bystander.json().await["type"], "waiting");
    s.clock.set(start() - chrono::Duration::minutes(1));

    let mut ws = Ws::open(&s, &code_a).await;
    // Malformed JSON, a JSON array, unknown type, unsupported version, binary: error, socket stays.
    for (raw, code) in [
        ("{not json", "malformed"),
        ("[1,2,3]", "malformed"),
        (r#"{"type":"dance","v":1}"#, "unknown_type"),
        (
            r#"{"type":"hello","v":9,"token":"x"}"#,
            "unsupported_version",
        ),
        (r#"{"type":"hello","v":1}"#, "malformed"),
        (r#"{"type":"join","v":1,"name":""}"#, "bad_name"),
        (r#"{"type":"offer","v":1,"sdp":"x"}"#, "not_ready"),
    ] {
        ws.send_raw(raw.to_string()).await;
        let e = ws.json().await;
        assert_eq!(e["type"], "error", "{raw}");
        assert_eq!(e["code"], code, "{raw}");
        assert!(
            e["message"].as_str().unwrap().contains(" / "),
            "Italian and English message"
        );
    }
    ws.0.send(Message::binary(vec![0u8, 1, 2])).await.unwrap();
    assert_eq!(ws.json().await["code"], "malformed");
    ws.send(json!({"type": "ping", "v": 1})).await;
    assert_eq!(ws.json().await["type"], "pong");
    // Too large: error, then closed with 1009.
    ws.send_raw(format!(
        r#"{{"type":"offer","v":1,"sdp":"{}"}}"#,
        "a".repeat(70 * 1024)
    ))
    .await;
    assert_eq!(ws.json().await["code"], "too_large");
    assert_eq!(ws.closed().await.0, 1009);

    // Bad and tampered tokens: 4401.
    for token in [
        "abc".to_string(),
        format!("{}x", s.room_token(a, false)),
        s.manage_path(a)
            .trim_start_matches("/prenotazione/")
            .to_string(),
    ] {
        let mut ws = Ws::open(&s, &code_a).await;
        assert_eq!(ws.hello(&token).await["code"], "bad_token");
        let (c, reason) = ws.closed().await;
        assert_eq!(c, 4401);
        assert!(!reason.is_empty());
    }
    // A valid token of room B on room A's socket: 4403.
    let mut ws = Ws::open(&s, &code_a).await;
    assert_eq!(
        ws.hello(&s.room_token(b, false)).await["code"],
        "wrong_room"
    );
    assert_eq!(ws.closed().await.0, 4403);

    // Too late: the room closes 30 minutes after the end.
    s.clock.set(start() + chrono::Duration::minutes(30 + 30));
    refused_for_good(&s, &code_a, a, "ended", "this appointment has ended").await;

    // Cancelled.
    s.clock.set(start() - chrono::Duration::minutes(1));
    s.cancel(a, booking::Actor::Citizen, "").await;
    refused_for_good(
        &s,
        &code_a,
        a,
        "cancelled",
        "this appointment was cancelled",
    )
    .await;

    // Room B noticed nothing: its citizen is still waiting and answered.
    assert!(s.state.hub.citizen_waiting(b));
    bystander.send(json!({"type": "ping", "v": 1})).await;
    assert_eq!(bystander.json().await["type"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_appointment_keeps_its_link_and_opens_at_the_new_time() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let (id, code) = video_room(&s, "m@example.it").await;
    let later = start() + chrono::Duration::hours(2);
    s.reschedule(id, later).await;
    s.clock.set(start());
    let mut ws = Ws::open(&s, &code).await;
    let c = ws.hello(&s.room_token(id, false)).await;
    assert_eq!(c["type"], "countdown");
    assert_eq!(
        c["starts_at"],
        later.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(c["seconds_left"], (2 * 3600 - 5 * 60));
}

// While people are in the room: moving the appointment to later sends both pages back to the
// countdown (their sockets close with 1012 and reconnect to it), and cancelling it tells them
// at once and closes the room for good; nobody has to reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_hears_at_once_that_its_appointment_moved_or_was_cancelled() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let (id, code) = video_room(&s, "live@example.it").await;
    s.clock.set(start());
    let enter = |operator: bool, name: &'static str| {
        let (s, code) = (&s, code.clone());
        async move {
            let mut ws = Ws::open(s, &code).await;
            assert_eq!(ws.hello(&s.room_token(id, operator)).await["type"], "ready");
            ws.join(name).await;
            ws
        }
    };
    let mut citizen = enter(false, "Maria Rossi").await;
    assert_eq!(citizen.json().await["type"], "waiting");
    let mut operator = enter(true, "Ufficio").await;
    // (An operator hears first that the citizen waits.)
    assert_eq!(operator.json().await["type"], "citizen_waiting");
    assert_eq!(operator.json().await["type"], "peer_joined");
    assert_eq!(citizen.json().await["type"], "peer_joined");
    // Moved two hours later by the office.
    let later = start() + chrono::Duration::hours(2);
    s.reschedule(id, later).await;
    assert_eq!(citizen.closed().await, (1012, "appointment moved".into()));
    assert_eq!(operator.closed().await.0, 1012);
    // Reconnecting, the page counts down to the new time.
    let mut back = Ws::open(&s, &code).await;
    assert_eq!(
        back.hello(&s.room_token(id, false)).await["type"],
        "countdown"
    );
    drop(back);
    // At the new time they are in again; the office cancels: both told why, closed for good.
    s.clock.set(later);
    let mut citizen = enter(false, "Maria Rossi").await;
    assert_eq!(citizen.json().await["type"], "waiting");
    let mut operator = enter(true, "Ufficio").await;
    // (An operator hears first that the citizen waits.)
    assert_eq!(operator.json().await["type"], "citizen_waiting");
    assert_eq!(operator.json().await["type"], "peer_joined");
    s.cancel(id, booking::Actor::Office, "Ufficio chiuso").await;
    for ws in [&mut citizen, &mut operator] {
        let mut told = false;
        while let Some(m) = ws.maybe_json().await {
            told |= m["type"] == "error" && m["code"] == "cancelled";
        }
        assert!(told, "told that the appointment was cancelled");
    }
    let mut again = Ws::open(&s, &code).await;
    assert_eq!(
        again.hello(&s.room_token(id, false)).await["code"],
        "cancelled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_tab_replaces_the_first_and_a_dead_socket_is_noticed() {
    let s = server_with(Options {
        room_heartbeat_seconds: Some(1),
        ..Options::default()
    })
    .await;
    let (id, code) = video_room(&s, "t@example.it").await;
    s.clock.set(start());
    let token = s.room_token(id, false);
    let mut first = Ws::open(&s, &code).await;
    first.hello(&token).await;
    first.join("Maria").await;
    assert_eq!(first.json().await["type"], "waiting");
    let mut operator = Ws::open(&s, &code).await;
    operator.hello(&s.room_token(id, true)).await;
    assert_eq!(operator.json().await["type"], "citizen_waiting");
    operator.join("Operatore").await;
    assert_eq!(operator.json().await["type"], "peer_joined");
    assert_eq!(first.json().await["type"], "peer_joined");

    // The same link in another tab: the first tab is replaced, never a third person.
    let mut second = Ws::open(&s, &code).await;
    second.hello(&token).await;
    second.join("Maria").await;
    assert_eq!(first.json().await["type"], "replaced");
    assert_eq!(first.closed().await.0, 4409);
    assert_eq!(second.json().await["type"], "peer_joined");
    assert_eq!(operator.json().await["type"], "peer_joined");

    // The second tab's network dies (it stops answering pings): after the idle timeout the
    // operator is told the connection was lost.
    let silent = second;
    let started = std::time::Instant::now();
    let left = operator.json().await;
    assert_eq!(
        left,
        json!({"type": "peer_left", "v": 1, "role": "citizen", "reason": "connection_lost"})
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_says_hello_is_closed_and_a_flood_is_slowed_not_served() {
    let s = server_with(Options {
        room_hello_seconds: Some(1),
        ..Options::default()
    })
    .await;
    let (id, code) = video_room(&s, "m@example.it").await;
    // Silent: closed after the hello time, with the reason.
    let mut silent = Ws::open(&s, &code).await;
    let e = silent.json().await;
    assert_eq!(e["code"], "no_hello");
    assert_eq!(silent.closed().await.0, 4408);
    // A flood of pings on a socket that said hello: the first ones are served, then one
    // "rate_limited" error, and the rest are not served; a moment later it is served again.
    s.clock.set(start() - chrono::Duration::minutes(1));
    let mut ws = Ws::open(&s, &code).await;
    assert_eq!(ws.hello(&s.room_token(id, false)).await["type"], "ready");
    for _ in 0..200 {
        ws.send(json!({"type": "ping", "v": 1})).await;
    }
    let (mut pongs, mut limited) = (0, 0);
    while let Ok(Some(v)) =
        tokio::time::timeout(std::time::Duration::from_millis(500), ws.maybe_json()).await
    {
        match v["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") if v["code"] == "rate_limited" => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!((39..200).contains(&pongs), "{pongs} pongs");
    assert_eq!(limited, 1, "said once per flood");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    ws.send(json!({"type": "ping", "v": 1})).await;
    assert_eq!(ws.json().await["type"], "pong");
    // And the socket past its hello time is still open: the hello counted.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    ws.send(json!({"type": "ping", "v": 1})).await;
    assert_eq!(ws.json().await["type"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_s_chat_reaches_both_comes_back_after_a_reload_and_goes_with_the_call() {
    let s = Server::start(Db::Sqlite).await.unwrap();
    let (id, code) = video_room(&s, "chat@example.it").await;
    s.clock.set(start());
    let chat = |text: &str| json!({"type": "chat", "v": 1, "text": text});
    let mut citizen = Ws::open(&s, &code).await;
    assert_eq!(
        citizen.hello(&s.room_token(id, false)).await["type"],
        "ready"
    );
    // Before joining: refused, nothing kept.
    citizen.send(chat("prima di entrare")).await;
    assert_eq!(citizen.json().await["code"], "not_ready");
    citizen.join("Maria Rossi").await;
    assert_eq!(citizen.json().await["type"], "waiting");
    // In the waiting room: kept for the operator.
    citizen.send(chat("  Sono in attesa  ")).await;
    let m = citizen.json().await;
    assert_eq!(
        (&m["type"], &m["seq"], &m["from"], &m["name"], &m["text"]),
        (
            &json!("chat"),
            &json!(1),
            &json!("citizen"),
            &json!("Maria Rossi"),
            &json!("Sono in attesa")
        )
    );
    assert_eq!(
        m["at"],
        start().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let mut operator = Ws::open(&s, &code).await;
    assert_eq!(
        operator.hello(&s.room_token(id, true)).await["type"],
        "ready"
    );
    // (An operator who has not entered hears that the citizen waits.)
    assert_eq!(operator.json().await["type"], "citizen_waiting");
    operator.join("Edilizia privata").await;
    assert_eq!(operator.json().await["type"], "peer_joined");
    assert_eq!(operator.json().await["text"], "Sono in attesa");
    assert_eq!(citizen.json().await["type"], "peer_joined");
    operator
        .send(chat("Il modulo: https://www.comune.esempio.it/cila.pdf"))
        .await;
    for ws in [&mut citizen, &mut operator] {
        let m = ws.json().await;
        assert_eq!((&m["seq"], &m["from"]), (&json!(2), &json!("operator")));
    }

    // Hostile messages: each refused with its reason, nothing sent to the other side.
    for bad in [
        json!({"type": "chat", "v": 1, "text": ""}),
        json!({"type": "chat", "v": 1, "text": "riga\nfalsa"}),
        json!({"type": "chat", "v": 1, "text": "a\u{0}b"}),
        json!({"type": "chat", "v": 1, "text": "\u{202e}fdp.eludom"}),
        json!({"type": "chat", "v": 1, "text": "x".repeat(1001)}),
        json!({"type": "chat", "v": 1, "text": 42}),
        json!({"type": "chat", "v": 1, "text": "ok", "to": "all"}),
    ] {
        citizen.send(bad.clone()).await;
        let e = citizen.json().await;
        assert_eq!(e["type"], "error", "{bad}");
        assert!(
            ["bad_chat", "malformed"].contains(&e["code"].as_str().unwrap()),
            "{bad}: {e}"
        );
    }
    let e = {
        citizen.send(chat(&"x".repeat(1001))).await;
        citizen.json().await
    };
    assert!(
        e["message"].as_str().unwrap().contains("troppo lungo"),
        "{e}"
    );
    operator.send(json!({"type": "ping", "v": 1})).await;
    assert_eq!(
        operator.json().await["type"],
        "pong",
        "the operator got no refused message"
    );

    // The citizen reloads: the new socket gets the call's messages in order.
    drop(citizen);
    assert_eq!(operator.json().await["type"], "peer_left");
    let mut again = Ws::open(&s, &code).await;
    assert_eq!(again.hello(&s.room_token(id, false)).await["type"], "ready");
    again.join("Maria Rossi").await;
    assert_eq!(again.json().await["type"], "peer_joined");
    assert_eq!(operator.json().await["type"], "peer_joined");
    let texts: Vec<Value> = [again.json().await, again.json().await]
        .iter()
        .map(|m| m["seq"].clone())
        .collect();
    assert_eq!(texts, vec![json!(1), json!(2)]);

    // Both leave: the messages are gone; whoever comes back finds none.
    again.send(json!({"type": "leave", "v": 1})).await;
    assert_eq!(operator.json().await["type"], "peer_left");
    operator.send(json!({"type": "leave", "v": 1})).await;
    operator.join("Edilizia privata").await;
    assert_eq!(operator.json().await["type"], "waiting");
    operator.send(json!({"type": "ping", "v": 1})).await;
    assert_eq!(
        operator.json().await["type"],
        "pong",
        "no message of the call"
    );
}
