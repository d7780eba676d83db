//! Hostile connections against the real binary: clients that send their headers byte by byte
//! (slowloris) are dropped after the header timeout, and one address cannot hold more than its
//! share of connections; a normal client is served meanwhile and after.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod common;
use common::{free_port, get, plain_http, Server};

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
    let _server = Server::start(
        dir.path(),
        port,
        &plain_http(
            port,
            None,
            &[
                "--header-timeout-seconds",
                "1",
                "--max-connections-per-client",
                "20",
            ],
        ),
    );
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
    let answer = get(port, "/healthz").expect("served after the slow clients are gone");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
}
