//! The relay's second engine: `rtc` connections driven straight from the relay's own threads,
//! without the `webrtc` crate's tasks, channels and sockets around them (`media_engine = rtc`).
//!
//! Each worker thread (`worker`) owns one UDP socket and every connection of the rooms placed
//! on it, both of a room's on the same one; a new room goes to the worker with the fewest. `rtc`
//! does each connection's ICE and DTLS; its media goes the relay's own way (`media`). A
//! packet is read in a batch (`udp`: `recvmmsg`), decrypted, forwarded through `forward`,
//! encrypted and sent in a batch (`sendmmsg`, a frame's packets to one person as one message:
//! UDP GSO) on the same thread, with no task, channel or lock on the way. The rest of the relay talks to a worker with commands (an offer, a
//! candidate, a leave), each answered when done.
//!
//! A port range (`media_ports`) gives worker `i` its `i`-th port: one port per worker, not per
//! connection, so the firewall opens the same range as for the `webrtc` engine.
//!
//! ICE over TCP (`media_tcp`): each worker also listens on a TCP port (the same numbering) and
//! its connections take frames from the streams browsers open to it (`tcp`), with a passive
//! candidate after the UDP one.
//!
//! On a specific address (`10.0.0.5:3478`) that address is the host candidate. On every IPv4
//! address (`0.0.0.0`) each of the machine's addresses is one (`udp::host_addresses`), each
//! datagram says which it came to and its answer leaves from that one (`IP_PKTINFO`); every
//! IPv6 address (`[::]`) is refused, with a message that says so. Candidates go in the answer
//! (with end-of-candidates), none are trickled.

mod media;
mod tcp;
mod udp;
mod worker;

/// For the fuzz target `media_path` only.
#[doc(hidden)]
pub use media::{fuzz as fuzz_media_path, Fuzzed};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::connection::Announce;
use crate::error::Error;
use crate::events::{IceCandidate, Offer};
use crate::side::Side;
use crate::stats::Stats;
use worker::{Command, Worker};

struct Handle {
    commands: std::sync::mpsc::Sender<Command>,
    wake: Arc<udp::Wake>,
    thread: Option<std::thread::JoinHandle<()>>,
    rooms: AtomicUsize,
}

/// Where a room's commands go, and how many are on their way.
struct Placed {
    worker: usize,
    in_flight: usize,
}

pub struct Engine {
    workers: Vec<Handle>,
    rooms: Mutex<HashMap<i64, Placed>>,
}

impl Engine {
    /// `threads` workers (at least one), worker `i` on the `i`-th port of `ports`, or else on
    /// `udp`'s port + `i` (any free port when it is 0).
    pub fn start(
        udp: &[String],
        tcp: &[String],
        ports: Option<(u16, u16)>,
        nat_ips: Vec<String>,
        threads: usize,
        stats: Arc<Stats>,
    ) -> Result<Engine, Error> {
        let refuse = |why: String| Error::WebRtc(format!("media_engine rtc: {why}"));
        // At most one address of each kind, a specific one: it is the host candidate.
        let one = |list: &[String], what: &str| -> Result<Option<SocketAddr>, Error> {
            let addr = match list {
                [] => return Ok(None),
                [a] => a
                    .parse::<SocketAddr>()
                    .map_err(|_| refuse(format!("{what} must be an IP address and port")))?,
                _ => return Err(refuse(format!("exactly one {what} address"))),
            };
            if addr.is_ipv6() && addr.ip().is_unspecified() {
                return Err(refuse(format!(
                    "{what}: every IPv6 address ([::]) is not supported; give 0.0.0.0 (every \
                     IPv4 address) or a specific address"
                )));
            }
            Ok(Some(addr))
        };
        let udp = one(udp, "media_udp")?;
        let tcp = one(tcp, "media_tcp")?;
        if udp.is_none() && tcp.is_none() {
            return Err(refuse("media_udp and media_tcp are both off".into()));
        }
        let threads = threads.max(1);
        if let Some((first, last)) = ports {
            if (last - first) as usize + 1 < threads {
                return Err(refuse(
                    "media_ports has fewer ports than media_reactors".into(),
                ));
            }
        }
        // Worker i's port: the range's i-th, or the address's port + i, or any.
        let port_of = |addr: SocketAddr, i: usize| {
            let mut at = addr;
            match ports {
                Some((first, _)) => at.set_port(first + i as u16),
                None if addr.port() != 0 => at.set_port(addr.port() + i as u16),
                None => {}
            }
            at
        };
        let mut workers = Vec::new();
        for i in 0..threads {
            let socket = udp
                .map(|a| {
                    let at = port_of(a, i);
                    udp::bind(at).map_err(|e| Error::WebRtc(format!("media address {at}: {e}")))
                })
                .transpose()?;
            let listener = tcp
                .map(|a| {
                    let at = port_of(a, i);
                    tcp::Tcp::bind(at)
                        .map_err(|e| Error::WebRtc(format!("media TCP address {at}: {e}")))
                })
                .transpose()?;
            let wake = Arc::new(udp::Wake::new().map_err(|e| Error::WebRtc(e.to_string()))?);
            let (tx, rx) = std::sync::mpsc::channel();
            let announce = Announce {
                nat_ips: nat_ips.clone(),
                udp_port: None,
                tcp_port: None,
            };
            let worker = Worker::new(socket, listener, announce, rx, wake.clone(), stats.clone())
                .map_err(|e| Error::WebRtc(e.to_string()))?;
            let thread = std::thread::Builder::new()
                .name(format!("sfu-rtc-{i}"))
                .spawn(move || {
                    // It says itself whether it may.
                    let _ = udp::prefer_this_thread(i);
                    worker.run()
                })
                .map_err(|e| Error::WebRtc(e.to_string()))?;
            workers.push(Handle {
                commands: tx,
                wake,
                thread: Some(thread),
                rooms: AtomicUsize::new(0),
            });
        }
        Ok(Engine {
            workers,
            rooms: Mutex::new(HashMap::new()),
        })
    }

    /// The worker of `room` (placed on the emptiest one if new), with one more command on
    /// its way; `None` when `create` is false and the room is not placed.
    fn place(&self, room: i64, create: bool) -> Option<usize> {
        let mut rooms = self.rooms.lock().expect("rooms lock");
        if !create && !rooms.contains_key(&room) {
            return None;
        }
        let placed = rooms.entry(room).or_insert_with(|| {
            let worker = (0..self.workers.len())
                .min_by_key(|i| self.workers[*i].rooms.load(Ordering::Relaxed))
                .unwrap_or(0);
            self.workers[worker].rooms.fetch_add(1, Ordering::Relaxed);
            Placed {
                worker,
                in_flight: 0,
            }
        });
        placed.in_flight += 1;
        Some(placed.worker)
    }

    /// A command for `room` is done; the room is forgotten when the worker says it is empty
    /// and nothing else is on its way (the worker runs commands in order, so its answer to
    /// the last one is the room's state now).
    fn done(&self, room: i64, empty: bool, stats: &Stats) {
        let mut rooms = self.rooms.lock().expect("rooms lock");
        let Some(placed) = rooms.get_mut(&room) else {
            return;
        };
        placed.in_flight -= 1;
        if placed.in_flight == 0 && empty {
            let worker = placed.worker;
            rooms.remove(&room);
            self.workers[worker].rooms.fetch_sub(1, Ordering::Relaxed);
            stats.remove(room);
        }
    }

    fn send(&self, worker: usize, c: Command) -> bool {
        let w = &self.workers[worker];
        let sent = w.commands.send(c).is_ok();
        w.wake.wake();
        sent
    }

    /// Sends `room`'s worker the command `make` builds around its reply channel, and waits
    /// for the answer (`stopped` if the worker is gone); `None` when `create` is false and the
    /// room is not placed.
    async fn ask<T>(
        &self,
        room: i64,
        create: bool,
        stats: &Stats,
        stopped: impl FnOnce() -> T,
        make: impl FnOnce(worker::Reply<T>) -> Command,
    ) -> Option<T> {
        let worker = self.place(room, create)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let answered = if self.send(worker, make(reply)) {
            answer.await.ok()
        } else {
            None
        };
        let (value, empty) = answered.unwrap_or_else(|| (stopped(), true));
        self.done(room, empty, stats);
        Some(value)
    }

    pub async fn offer(&self, offer: Offer, stats: &Stats) -> Result<String, Error> {
        let stopped = || Err(Error::WebRtc("the media worker stopped".into()));
        self.ask(offer.room, true, stats, stopped, |reply| Command::Offer {
            offer,
            reply,
        })
        .await
        .unwrap_or_else(stopped)
    }

    pub async fn candidate(
        &self,
        room: i64,
        side: Side,
        candidate: IceCandidate,
        stats: &Stats,
    ) -> Result<(), Error> {
        let stopped = || Err(Error::NoConnection);
        self.ask(room, false, stats, stopped, |reply| Command::Candidate {
            room,
            side,
            candidate,
            reply,
        })
        .await
        .unwrap_or_else(stopped)
    }

    pub async fn leave(&self, room: i64, side: Side, owner: u64, stats: &Stats) {
        self.ask(
            room,
            false,
            stats,
            || (),
            |reply| Command::Leave {
                room,
                side,
                owner,
                reply,
            },
        )
        .await;
    }

    /// Rooms on each worker, in order.
    pub fn worker_rooms(&self) -> Vec<usize> {
        self.workers
            .iter()
            .map(|w| w.rooms.load(Ordering::Relaxed))
            .collect()
    }

    /// Rooms placed now.
    pub fn rooms(&self) -> usize {
        self.rooms.lock().expect("rooms lock").len()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = w.commands.send(Command::Stop);
            w.wake.wake();
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(
        udp: &str,
        tcp: &[&str],
        ports: Option<(u16, u16)>,
        threads: usize,
    ) -> Result<Engine, Error> {
        Engine::start(
            &[udp.to_string()],
            &tcp.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            ports,
            vec![],
            threads,
            Arc::new(Stats::default()),
        )
    }

    #[test]
    fn what_it_cannot_do_is_refused_with_a_reason() {
        let said = |r: Result<Engine, Error>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(said(start("[::]:3478", &[], None, 1)).contains("[::]"));
        assert!(said(start("127.0.0.1:0", &["[::]:0"], None, 1)).contains("media_tcp: every IPv6"));
        assert!(said(start(
            "127.0.0.1:0",
            &["127.0.0.1:1", "127.0.0.2:1"],
            None,
            1
        ))
        .contains("exactly one media_tcp"));
        assert!(said(start("127.0.0.1:0", &[], Some((41000, 41000)), 2)).contains("fewer ports"));
        assert!(said(start("localhost:3478", &[], None, 1)).contains("IP address and port"));
    }

    #[tokio::test]
    async fn a_bad_offer_a_stray_candidate_and_a_stray_leave_leave_nothing_behind() {
        let stats = Stats::default();
        let engine = start("127.0.0.1:0", &[], None, 2).unwrap();
        let (events, _rx) = tokio::sync::mpsc::unbounded_channel();
        let offer = engine
            .offer(
                Offer {
                    room: 7,
                    side: Side::Citizen,
                    owner: 1,
                    sdp: "v=0\r\nnonsense\u{0}\r\n".into(),
                    events,
                },
                &stats,
            )
            .await;
        assert!(matches!(offer, Err(Error::BadSdp(_))), "{offer:?}");
        assert_eq!(engine.rooms(), 0);
        assert_eq!(engine.worker_rooms(), vec![0, 0]);
        let candidate = IceCandidate {
            candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
        };
        assert!(matches!(
            engine.candidate(7, Side::Operator, candidate, &stats).await,
            Err(Error::NoConnection)
        ));
        engine.leave(7, Side::Citizen, 1, &stats).await;
        assert_eq!(engine.rooms(), 0);
        assert_eq!(stats.connections.load(Ordering::Relaxed), 0);
        // Dropped: its threads end (the drop joins them).
        drop(engine);
    }

    #[tokio::test]
    async fn a_port_range_gives_each_worker_its_port() {
        // Above the test suites' port picker (20000-31999), below the ephemeral ports.
        let port = 32_000 + (std::process::id() % 380) as u16 * 2;
        let engine = start("127.0.0.1:0", &[], Some((port, port + 1)), 2).unwrap();
        for p in [port, port + 1] {
            assert!(
                std::net::UdpSocket::bind(("127.0.0.1", p)).is_err(),
                "port {p} is the worker's"
            );
        }
        drop(engine);
        assert!(std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok());
    }
}
