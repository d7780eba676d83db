//! A configured range of ports for the relay's sockets. The `webrtc` crate binds one UDP socket
//! (and one ICE-TCP listener) per peer connection on the addresses it is given, and has no
//! shared socket; so each new connection gets the next free port of the range on every
//! configured address, and a firewall needs to open only that range. Ports are taken round
//! robin and tested by binding them, so a port still held by a live connection (or by anything
//! else) is skipped, and nothing needs to be given back.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug)]
pub struct PortRange {
    first: u16,
    last: u16,
    cursor: AtomicU32,
}

/// Addresses with their port replaced, ready for the crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub udp: Vec<String>,
    pub tcp: Vec<String>,
    pub port: u16,
}

impl PortRange {
    pub fn new(first: u16, last: u16) -> Option<PortRange> {
        (first > 0 && first <= last).then(|| PortRange {
            first,
            last,
            cursor: AtomicU32::new(0),
        })
    }

    /// "40000-40199" or a single "40000".
    pub fn parse(s: &str) -> Option<PortRange> {
        let (a, b) = s.trim().split_once('-').unwrap_or((s.trim(), s.trim()));
        PortRange::new(a.trim().parse().ok()?, b.trim().parse().ok()?)
    }

    /// First and last port.
    pub fn bounds(&self) -> (u16, u16) {
        (self.first, self.last)
    }

    pub fn len(&self) -> u32 {
        u32::from(self.last - self.first) + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The next port of the range free on every address (UDP on `udp`, TCP on `tcp`), with the
    /// addresses rewritten to it; `None` when every port is taken.
    pub fn pick(&self, udp: &[SocketAddr], tcp: &[SocketAddr]) -> Option<Binding> {
        for _ in 0..self.len() {
            let port =
                self.first + (self.cursor.fetch_add(1, Ordering::Relaxed) % self.len()) as u16;
            let with = |a: &SocketAddr| SocketAddr::new(a.ip(), port);
            let free = udp.iter().all(|a| UdpSocket::bind(with(a)).is_ok())
                && tcp.iter().all(|a| TcpListener::bind(with(a)).is_ok());
            if free {
                return Some(Binding {
                    udp: udp.iter().map(|a| with(a).to_string()).collect(),
                    tcp: tcp.iter().map(|a| with(a).to_string()).collect(),
                    port,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_base() -> u16 {
        // Ten consecutive ports free now for UDP and TCP, below Linux's ephemeral range (from
        // 32768), where another test's outgoing connection could take one meanwhile.
        loop {
            let base = 20000 + (rand::random::<u16>() % 12000);
            if (base..base + 10).all(|p| {
                UdpSocket::bind(("127.0.0.1", p)).is_ok()
                    && TcpListener::bind(("127.0.0.1", p)).is_ok()
            }) {
                return base;
            }
        }
    }

    #[test]
    fn parses_ranges_and_single_ports() {
        assert_eq!(PortRange::parse("40000-40199").unwrap().len(), 200);
        assert_eq!(PortRange::parse("5000").unwrap().len(), 1);
        assert!(PortRange::parse("5-1").is_none());
        assert!(PortRange::parse("0-10").is_none());
        assert!(PortRange::parse("abc").is_none());
    }

    #[test]
    fn picks_ports_in_the_range_round_robin_and_skips_taken_ones() {
        let base = free_base();
        let r = PortRange::new(base, base + 2).unwrap();
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let a = r.pick(&[addr], &[addr]).unwrap();
        assert_eq!(a.port, base);
        assert_eq!(a.udp, vec![format!("127.0.0.1:{base}")]);
        assert_eq!(a.tcp, vec![format!("127.0.0.1:{base}")]);
        // A port held by someone else is skipped.
        let _held = UdpSocket::bind(("127.0.0.1", base + 1)).unwrap();
        assert_eq!(r.pick(&[addr], &[]).unwrap().port, base + 2);
        // Round robin: back to the start, which is free again.
        assert_eq!(r.pick(&[addr], &[]).unwrap().port, base);
        // All taken: none.
        let _h0 = UdpSocket::bind(("127.0.0.1", base)).unwrap();
        let _h2 = UdpSocket::bind(("127.0.0.1", base + 2)).unwrap();
        assert_eq!(r.pick(&[addr], &[]), None);
    }
}
