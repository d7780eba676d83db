//! Stopping the real binary with SIGTERM (systemd, docker stop): requests in flight get their
//! answer, room sockets are told to reconnect (1012), and the process exits on its own. While
//! it drains, `/readyz` answers 503 on the administration listener, which closes last.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{exits_within, free_port, get, plain_http, spawn};

/// A POST of the staff login with a wrong password: the answer takes ~0.5 s on purpose.
fn slow_login(port: u16) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let page = get(port, "/ufficio/accesso").unwrap_or_default();
        let cookie = page
            .lines()
            .find(|l| l.to_lowercase().starts_with("set-cookie: csrf="))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|c| c.trim().split(';').next())
            .unwrap_or_default()
            .to_string();
        let csrf = cookie.trim_start_matches("csrf=").to_string();
        let body = format!("csrf={csrf}&email=nessuno%40comune.esempio.it&password=sbagliata");
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        write!(
            s,
            "POST /ufficio/accesso HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
}

#[test]
fn sigterm_answers_the_requests_in_flight_tells_rooms_to_reconnect_and_exits() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    // Not `common::Server`: this test stops the process itself and reads how it ended.
    let mut server = spawn(
        dir.path(),
        port,
        &plain_http(port, None, &[]),
        "error",
        Stdio::null(),
    );
    // A room socket (it need not say hello within this test's second).
    let mut ws = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        ws,
        "GET /ws/stanza/SP-AAAA-BBBB HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    ws.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = [0u8; 1024];
    let n = ws.read(&mut head).unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 101"));

    let logins: Vec<_> = (0..4).map(|_| slow_login(port)).collect();
    std::thread::sleep(Duration::from_millis(250));
    assert!(Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap()
        .success());

    // Every request in flight got its answer.
    for l in logins {
        let answer = l.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    }
    // The room socket was closed with 1012 (service restart): the page reconnects by itself.
    let mut frame = [0u8; 64];
    let n = ws.read(&mut frame).unwrap();
    assert!(n >= 4, "a close frame");
    assert_eq!(frame[0] & 0x0f, 0x8, "opcode close");
    assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 1012);
    // And the process ends by itself, cleanly, well within the drain time.
    let status = exits_within(&mut server, Duration::from_secs(15));
    assert!(status.success(), "{status}");
    // It accepts nothing after.
    assert!(get(port, "/healthz").is_none());
}

/// A plain HTTP GET's status line and body, or none when nothing answers.
fn status_and_body(port: u16, path: &str) -> Option<(String, String)> {
    let answer = get(port, path)?;
    let status = answer.lines().next()?.to_string();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Some((status, body))
}

#[test]
fn readiness_turns_503_while_draining_and_sighup_does_not_stop_a_server_without_tls() {
    let (port, admin) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn(
        dir.path(),
        port,
        &plain_http(port, Some(admin), &[]),
        "error",
        Stdio::null(),
    );
    let pid = server.id().to_string();
    let kill = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success())
    };
    for p in [port, admin] {
        let (status, body) = status_and_body(p, "/readyz").unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert_eq!(body, "ready");
    }
    // `systemctl reload` sends SIGHUP: with no certificate to read, it changes nothing.
    kill("-HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.try_wait().unwrap().is_none(),
        "SIGHUP stopped the server"
    );
    assert!(status_and_body(port, "/readyz").unwrap().0.contains("200"));

    // A request in flight that takes its time: the headers of a login, half of its body.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let body = "csrf=x&email=nessuno%40comune.esempio.it&password=sbagliata";
    write!(
        slow,
        "POST /ufficio/accesso HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    kill("-TERM");
    // Draining: not ready, still alive (the database answers), on the administration listener;
    // the public one takes no new connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = status_and_body(admin, "/readyz").expect("admin listener open");
        if status.starts_with("HTTP/1.1 503") {
            assert_eq!(body, "draining");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still ready after SIGTERM: {status}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, _) = status_and_body(admin, "/healthz").unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(
        get(port, "/readyz").is_none(),
        "the public listener is closed"
    );
    assert!(
        server.try_wait().unwrap().is_none(),
        "waits for the request in flight"
    );

    // The rest of the body: the request is answered, then the process exits.
    slow.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 "), "an answer: {answer:?}");
    let status = exits_within(&mut server, Duration::from_secs(15));
    assert!(status.success(), "{status}");
    assert!(
        get(admin, "/readyz").is_none(),
        "the admin listener closes last"
    );
}
