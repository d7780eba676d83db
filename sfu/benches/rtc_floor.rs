//! What forwarding one packet would cost a relay that drives the sans-I/O `rtc` crate itself,
//! without the `webrtc` crate's tasks, channels and sockets around it: the floor under the
//! relay's per-packet CPU (the `rtc`-driven loop that issue 14 asks about).
//!
//! Four `rtc` peer connections on one thread, their datagrams handed over in memory: a sender
//! A (a browser) → relay leg R1 → relay leg R2 → a receiver B. R1 and R2 have the relay's own
//! codecs and interceptors (`connection::codecs`, `interceptors::registry`: NACK with RTX,
//! reports, TWCC); R1's video packets are rewritten for R2's stream (payload type, SSRC) and
//! written to R2's track, as the relay's forwarding step does. Only the time spent in R1's and
//! R2's calls counts: SRTP in and out, the interceptors, the forwarding, RTCP. System calls
//! are not in it (a real relay adds a receive and a send per packet).
//!
//! `cargo bench -p sfu --bench rtc_floor` prints the median and range over 9 runs of 20,000
//! video packets of 1,100 bytes; `cargo test` runs it once with 300 packets and checks that all
//! arrive.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;

#[path = "../tests/support/memory_peer.rs"]
mod memory_peer;
use memory_peer::{connection, deliver, negotiate, payload_type, video_track};

/// One peer connection and its address on the in-memory network.
struct Peer {
    pc: RTCPeerConnection,
    addr: SocketAddr,
    connected: bool,
    /// Time spent in this peer's calls, when it is counted.
    spent: Duration,
    counted: bool,
}

/// A peer with the relay's codecs; with its interceptors when `relay`.
fn peer(port: u16, relay: bool) -> Peer {
    let addr: SocketAddr = format!("10.0.0.1:{port}").parse().unwrap();
    Peer {
        pc: connection(addr, relay, Instant::now()),
        addr,
        connected: false,
        spent: Duration::ZERO,
        counted: relay,
    }
}

/// The in-memory network: every peer's datagrams, its timers and its events, until `done`
/// or `limit`. `forward` moves what R1 reads to R2; `received` counts B's video packets.
struct Net {
    peers: Vec<Peer>,
    /// Datagrams in flight: (to, from, bytes).
    flight: VecDeque<(SocketAddr, SocketAddr, BytesMut)>,
    received: usize,
    /// R2's video sender, its SSRC and payload type.
    out: (RTCRtpSenderId, u32, u8),
}

const A: usize = 0;
const R1: usize = 1;
const R2: usize = 2;
const B: usize = 3;

impl Net {
    /// One round: writes out, datagrams delivered, timers served, events and reads taken.
    fn round(&mut self) {
        let now = Instant::now();
        for i in 0..self.peers.len() {
            let p = &mut self.peers[i];
            let t = Instant::now();
            while let Some(d) = p.pc.poll_write() {
                self.flight
                    .push_back((d.transport.peer_addr, p.addr, d.message));
            }
            if p.pc.poll_timeout().is_some_and(|due| due <= now) {
                p.pc.handle_timeout(now).unwrap();
            }
            if p.counted {
                p.spent += t.elapsed();
            }
        }
        while let Some((to, from, message)) = self.flight.pop_front() {
            let Some(p) = self.peers.iter_mut().find(|p| p.addr == to) else {
                continue;
            };
            let t = Instant::now();
            deliver(&mut p.pc, to, from, message, now);
            if p.counted {
                p.spent += t.elapsed();
            }
        }
        for i in 0..self.peers.len() {
            let t = Instant::now();
            while let Some(e) = self.peers[i].pc.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = e {
                    self.peers[i].connected = s == RTCPeerConnectionState::Connected;
                }
            }
            let mut reads = Vec::new();
            while let Some(TaggedRTCMessage { message, .. }) = self.peers[i].pc.poll_read() {
                reads.push(message);
            }
            for m in reads {
                match (i, m) {
                    (R1, RTCMessage::RtpPacket(_, mut packet)) => {
                        // The forwarding step's part that matters here: R2's stream.
                        let (sender, ssrc, pt) = self.out;
                        packet.header.ssrc = ssrc;
                        packet.header.payload_type = pt;
                        packet.header.extensions.clear();
                        packet.header.extension = false;
                        // (Its time counts as R1's, which includes this whole loop.)
                        self.peers[R2]
                            .pc
                            .rtp_sender(sender)
                            .unwrap()
                            .write_rtp(now, packet)
                            .unwrap();
                    }
                    (B, RTCMessage::RtpPacket(..)) => self.received += 1,
                    _ => {}
                }
            }
            if self.peers[i].counted {
                self.peers[i].spent += t.elapsed();
            }
        }
    }

    fn run_until(&mut self, limit: Duration, done: impl Fn(&Net) -> bool) {
        let end = Instant::now() + limit;
        while !done(self) {
            assert!(Instant::now() < end, "not done in {limit:?}");
            self.round();
            if self.flight.is_empty() {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}

/// Sends `packets` video packets from A through R1 and R2 to B; the time R1 and R2 spent per
/// packet that reached B.
fn run(packets: usize) -> Duration {
    let mut a = peer(1000, false);
    let mut r1 = peer(2000, true);
    let mut r2 = peer(3000, true);
    let mut b = peer(4000, false);
    let a_sender = video_track(&mut a.pc, 0x1111);
    let r2_sender = video_track(&mut r2.pc, 0x2222);
    negotiate(&mut a.pc, &mut r1.pc, Instant::now());
    negotiate(&mut r2.pc, &mut b.pc, Instant::now());
    let a_pt = payload_type(&mut a.pc, a_sender);
    let r2_pt = payload_type(&mut r2.pc, r2_sender);
    let mut net = Net {
        peers: vec![a, r1, r2, b],
        flight: VecDeque::new(),
        received: 0,
        out: (r2_sender, 0x2222, r2_pt),
    };
    net.run_until(Duration::from_secs(10), |n| {
        n.peers.iter().all(|p| p.connected)
    });
    for p in &mut net.peers {
        p.spent = Duration::ZERO;
    }

    // Video in frames of 5 packets (30 a second on the 90 kHz clock), one frame every round.
    let payload = Bytes::from(vec![0x5a; 1100]);
    for n in 0..packets {
        let packet = rtp::packet::Packet {
            header: rtp::header::Header {
                version: 2,
                marker: n % 5 == 4,
                payload_type: a_pt,
                sequence_number: n as u16,
                timestamp: (n / 5) as u32 * 3000,
                ssrc: 0x1111,
                ..Default::default()
            },
            payload: payload.clone(),
        };
        net.peers[A]
            .pc
            .rtp_sender(a_sender)
            .unwrap()
            .write_rtp(Instant::now(), packet)
            .unwrap();
        if n % 5 == 4 {
            net.round();
        }
    }
    net.run_until(Duration::from_secs(10), |n| n.received >= packets);
    let spent = net.peers[R1].spent + net.peers[R2].spent;
    spent / net.received as u32
}

fn main() {
    if std::env::args().any(|a| a == "--bench") {
        let mut runs: Vec<Duration> = (0..9).map(|_| run(20_000)).collect();
        runs.sort();
        println!(
            "rtc_floor: R1 + R2 per forwarded packet, 9 runs of 20,000: median {:.2} µs (range {:.2}–{:.2} µs)",
            runs[4].as_secs_f64() * 1e6,
            runs[0].as_secs_f64() * 1e6,
            runs[8].as_secs_f64() * 1e6
        );
    } else {
        // Under `cargo test`: once, small, and everything must arrive.
        let per_packet = run(300);
        assert!(per_packet > Duration::ZERO);
        println!("rtc_floor: 300 packets through, {per_packet:?} per packet (unoptimised)");
    }
}
