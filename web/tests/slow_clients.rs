//! Hostile connections against the real binary: clients that send their headers byte by byte
//! (slowloris) are dropped after the header timeout, and one address cannot hold more than its
//! share of connections; a normal client is served meanwhile and after.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn healthz(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Whether the server closes `s` within `within` (end of stream, a reset, or an error status).
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // e.g. a 408 before the close
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn slow_clients_are_dropped_and_one_address_holds_only_its_share() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_sportello"))
            .args(["--tls", "off", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--header-timeout-seconds", "1"])
            .args(["--max-connections-per-client", "20"])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while healthz(port).is_none() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Twenty clients start a request and never finish its headers.
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: local").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // The address's share is taken: one more connection is closed at once.
    let mut extra = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(
        closed_by_server(&mut extra, Duration::from_secs(2)),
        "a connection over the per-client cap is closed"
    );
    // After the header timeout every slow client has been dropped...
    let started = Instant::now();
    for s in &mut slow {
        assert!(
            closed_by_server(s, Duration::from_secs(3)),
            "a client that never finished its headers is dropped"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(slow);
    std::thread::sleep(Duration::from_millis(100));
    // ...and their places are free again: a normal client is served.
    let answer = healthz(port).expect("served after the slow clients are gone");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
}
