//! Ports for the servers the tests start. Also compiled into `web`'s tests (`#[path]`), which
//! cannot depend on this crate.

/// A free TCP port on loopback, from 20000–31999: below Linux's ephemeral range (32768 on), so
/// that no listener on port 0 (a server's media sockets, a test's own listener) can take it
/// between this answer and the server's bind. Each process starts at its own place in the range
/// and never hands out a port twice.
pub fn free_port() -> u16 {
    free_ports(1)
}

/// The first of `n` consecutive free ports (TCP and UDP, on every address), none of them handed
/// out again: for a relay whose workers take a port each.
pub fn free_ports(n: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let start = std::process::id().wrapping_mul(7_919) % SPAN;
    let free = |port: u16| {
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && (n == 1 || std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok())
    };
    for _ in 0..SPAN {
        let first = LOW + (start + NEXT.fetch_add(n.into(), Ordering::Relaxed)) % SPAN;
        if first + u32::from(n) > LOW + SPAN {
            continue;
        }
        let first = first as u16;
        if (first..first + n).all(free) {
            return first;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN)
}
