//! One worker thread: a UDP socket, the `rtc` connections of the rooms placed on it, and the
//! loop that drives them — datagrams and time in, datagrams and events out.
//!
//! Each turn of the loop takes the commands waiting (offers, candidates, leaves), serves the
//! timers due of a slice of the connections (and samples a slice of their links, every two
//! seconds), so that no datagram waits long behind them; reads up to a batch of datagrams, hands each to the
//! connection it belongs to (by the sender's address, or for a first STUN request by the ICE
//! username fragment it names): SRTP and SRTCP to the connection's own media path (`media`),
//! the rest (STUN, DTLS) to its `rtc` connection; forwards the media that comes out to the
//! other side of the room through `forward`, and sends every datagram produced in one batch; then it counts how
//! long each datagram of the batch spent in the relay, from the kernel's receipt to that send.
//! Frames from ICE-TCP streams (`tcp`) are routed the same way, by the stream's address. Then it
//! waits for the socket, the streams, a command or the next timer, whichever comes first.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
// Maps looked up for every packet: foldhash, seeded per process.
use foldhash::{HashMap, HashMapExt};
use rtc::interceptor::Packet;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::media::{MediaPath, Unsealed};
use super::tcp::Tcp;
use super::udp::{self, RecvBatch, Wake};
use crate::connection::{kind_index, Announce, KINDS};
use crate::error::{rtc_err, Error};
use crate::events::{IceCandidate, Offer, RelayEvent};
use crate::failure::{self, Watch};
use crate::forward::{self, Outgoing};
use crate::keyframe::LastKeyframe;
use crate::rewrite::Rewriter;
use crate::side::Side;
use crate::stats::{RoomCounters, Stats};

/// Where a command's answer goes, with whether its room is empty after it.
pub(crate) type Reply<T> = tokio::sync::oneshot::Sender<(T, bool)>;

/// What the rest of the relay asks of a worker.
pub(crate) enum Command {
    Offer {
        offer: Offer,
        reply: Reply<Result<String, Error>>,
    },
    Candidate {
        room: i64,
        side: Side,
        candidate: IceCandidate,
        reply: Reply<Result<(), Error>>,
    },
    Leave {
        room: i64,
        side: Side,
        owner: u64,
        reply: Reply<()>,
    },
    /// Ends the thread, closing every connection.
    Stop,
}

/// An incoming track of a participant: what its packets are forwarded as.
struct Incoming {
    kind: RtpCodecKind,
    /// The codec's MIME type in lowercase, as `forward` wants it.
    mime: String,
    asked_keyframe: bool,
    /// Its last whole keyframe (video), for a receiver that connects later.
    keyframe: LastKeyframe,
}

/// One participant's connection.
struct Peer {
    pc: RTCPeerConnection,
    room: i64,
    side: Side,
    owner: u64,
    ufrag: String,
    /// The browser addresses routed to this connection.
    addrs: Vec<Route>,
    events: tokio::sync::mpsc::UnboundedSender<RelayEvent>,
    counters: Arc<RoomCounters>,
    /// The outgoing streams' SSRCs, by `kind_index`.
    out_ssrc: [u32; 2],
    payload_types: std::collections::HashMap<String, u8>,
    /// The incoming tracks, by SSRC.
    incoming: HashMap<u32, Incoming>,
    /// The participant's own video stream, to ask it for keyframes.
    video_in: Option<u32>,
    /// SRTP and SRTCP, once DTLS is done.
    media: MediaPath,
    /// Where its media goes: where the browser's last authenticated media came from (at first,
    /// the datagram that completed DTLS), and the local address it came to.
    media_to: Option<(Route, SocketAddr)>,
    created: Instant,
    /// Whether and how it failed (`failure`).
    watch: Watch,
    /// When the connection's timers are next due (`rtc`'s or its media path's), as of its last
    /// input.
    deadline: Option<Instant>,
    /// Had input since `deadline` was last read.
    dirty: bool,
    /// When `rtc`'s timers are next due, and whether `rtc` had input since that was read (media
    /// goes past `rtc`: most inputs leave it alone).
    rtc_deadline: Option<Instant>,
    rtc_dirty: bool,
}

#[derive(Default)]
struct Room {
    peers: [Option<usize>; 2],
    /// Continuity of each outgoing stream, per receiving side and kind.
    rewriters: HashMap<(Side, usize), Rewriter>,
}

/// Where a browser's packets come from: its address, over UDP or an ICE-TCP stream.
type Route = (SocketAddr, TransportProtocol);

pub(crate) struct Worker {
    /// The UDP socket and its address (none when only ICE-TCP is offered).
    socket: Option<UdpSocket>,
    local: Option<SocketAddr>,
    /// The socket is bound to every address (`0.0.0.0`): each datagram says which it came to,
    /// and the answer leaves from that one.
    every_address: bool,
    tcp: Option<Tcp>,
    /// The host candidates of every connection: UDP, then ICE-TCP (passive).
    candidates: Vec<(SocketAddr, TransportProtocol)>,
    announce: Announce,
    commands: std::sync::mpsc::Receiver<Command>,
    wake: Arc<Wake>,
    stats: Arc<Stats>,
    peers: Vec<Option<Peer>>,
    rooms: HashMap<i64, Room>,
    by_addr: HashMap<Route, usize>,
    by_ufrag: HashMap<String, usize>,
    /// Datagrams to send at the end of this turn, and frames for ICE-TCP streams.
    out: Vec<udp::Outgoing>,
    send: udp::SendBatch,
    out_tcp: Vec<(SocketAddr, BytesMut)>,
    /// What the loop waits for (`udp::wait`'s own entries, then the ICE-TCP streams').
    fds: Vec<libc::pollfd>,
    /// Messages read from a connection, being handled (kept to reuse the allocation).
    reads: Vec<RTCMessage>,
    /// Media read from a connection, being forwarded (the same).
    media: Vec<rtc::rtp::Packet>,
    /// Connections with input since their deadline was read.
    dirty: Vec<usize>,
    next_sample: Instant,
    /// Where the next slice of a sampling under way starts.
    sampling: Option<usize>,
    /// Where the next slice of due timers starts.
    timers_from: usize,
}

/// How often each link's round-trip time is read into the room's counters (its losses are
/// counted as the reports that carry them go by).
const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Connections sampled before the datagrams waiting are read again. A connection's statistics
/// take 17–40 µs to gather: all 140 connections of 70 rooms at once held every datagram that
/// arrived meanwhile for 2.3–5.9 ms, every two seconds.
const SAMPLE_SLICE: usize = 8;

/// Connections whose due timers are served before the datagrams waiting are read again. Served
/// all at once, the timers of 70 rooms held the datagrams for up to 0.6–1.7 ms; 16 at a time,
/// for 0.2 ms at the most (as the sampling's slices).
const TIMER_SLICE: usize = 16;

/// What a batch of datagrams produced is sent after this many of them (and at its end).
const FLUSH_EVERY: usize = 8;

impl Worker {
    pub(crate) fn new(
        socket: Option<UdpSocket>,
        tcp: Option<Tcp>,
        announce: Announce,
        commands: std::sync::mpsc::Receiver<Command>,
        wake: Arc<Wake>,
        stats: Arc<Stats>,
    ) -> std::io::Result<Worker> {
        let local = socket.as_ref().map(UdpSocket::local_addr).transpose()?;
        // A socket on every address offers each of the machine's.
        let on = |a: SocketAddr, over: TransportProtocol| -> Vec<(SocketAddr, TransportProtocol)> {
            if a.ip().is_unspecified() {
                udp::host_addresses()
                    .into_iter()
                    .map(|ip| (SocketAddr::new(ip.into(), a.port()), over))
                    .collect()
            } else {
                vec![(a, over)]
            }
        };
        let mut candidates = Vec::new();
        candidates.extend(
            local
                .map(|a| on(a, TransportProtocol::UDP))
                .unwrap_or_default(),
        );
        candidates.extend(
            tcp.as_ref()
                .map(|t| on(t.local(), TransportProtocol::TCP))
                .unwrap_or_default(),
        );
        let offered: Vec<String> = candidates
            .iter()
            .map(|(a, over)| {
                format!(
                    "{a} {}",
                    if *over == TransportProtocol::TCP {
                        "tcp"
                    } else {
                        "udp"
                    }
                )
            })
            .collect();
        tracing::info!(candidates = %offered.join(", "), "media reactor listening");
        // On every address with none but loopback found: surely not what was meant.
        let every_address = local.is_some_and(|a| a.ip().is_unspecified());
        if every_address
            && candidates.iter().all(|(a, _)| a.ip().is_loopback())
            && announce.nat_ips.is_empty()
        {
            tracing::warn!(
                "the machine has no address but loopback: only its own browsers can reach the \
                 media relay (set media_udp and media_tcp to an address they reach, or \
                 media_public_ip)"
            );
        }
        Ok(Worker {
            every_address,
            local,
            socket,
            candidates,
            tcp,
            announce,
            commands,
            wake,
            stats,
            peers: Vec::new(),
            rooms: HashMap::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            out: Vec::new(),
            send: udp::SendBatch::default(),
            out_tcp: Vec::new(),
            fds: Vec::new(),
            reads: Vec::new(),
            media: Vec::new(),
            dirty: Vec::new(),
            next_sample: Instant::now() + SAMPLE_EVERY,
            sampling: None,
            timers_from: 0,
        })
    }

    /// The loop, until `Command::Stop` or the relay is gone.
    pub(crate) fn run(mut self) {
        let mut batch = RecvBatch::new();
        loop {
            loop {
                match self.commands.try_recv() {
                    Ok(Command::Stop) | Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        self.stop();
                        return;
                    }
                    Ok(c) => self.command(c),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                }
            }
            self.refresh_deadlines();
            let now = Instant::now();
            if now >= self.next_sample {
                self.sampling = Some(0);
                self.next_sample = now + SAMPLE_EVERY;
                self.fail_overdue(now);
            }
            // A slice of each, then the datagrams waiting; the rest on the next turns.
            let more = self.serve_timers(now) | self.sample(now);
            self.flush();

            // Datagrams: as long as the socket has them, batch after batch.
            while let Some(socket) = &self.socket {
                match batch.read(socket) {
                    Ok(0) => break,
                    Ok(n) => {
                        let now = Instant::now();
                        for start in (0..n).step_by(FLUSH_EVERY) {
                            let part = start..(start + FLUSH_EVERY).min(n);
                            for i in part.clone() {
                                let (from, to, datagram) = batch.get(i);
                                let (Some(from), Some(mut local)) = (from, self.local) else {
                                    continue;
                                };
                                if let Some(to) = to {
                                    local.set_ip(to.into());
                                }
                                let route = (from, TransportProtocol::UDP);
                                self.datagram(route, local, datagram, now);
                            }
                            self.flush();
                            self.record_transit(batch.received(part));
                        }
                        if n < udp::BATCH {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            self.streams();
            if more {
                // The rest of the timers' and samples' slices before waiting.
                continue;
            }
            // A timer that the datagrams made due at once, a command or a datagram that came
            // meanwhile ends the wait below at once: no second pass to find them (at a browser
            // call's rate, a read that finds nothing on every wake-up).
            self.refresh_deadlines();
            let next = self.peers.iter().flatten().filter_map(|p| p.deadline).min();
            let until = next.map_or(self.next_sample, |n| n.min(self.next_sample));
            let mut fds = std::mem::take(&mut self.fds);
            fds.clear();
            fds.resize(udp::OWN_FDS, udp::pollfd(-1, false));
            if let Some(tcp) = &mut self.tcp {
                tcp.poll_fds(&mut fds);
            }
            udp::wait(
                &mut fds,
                self.socket.as_ref(),
                &self.wake,
                Some(until.saturating_duration_since(Instant::now())),
            );
            if let Some(tcp) = &mut self.tcp {
                tcp.polled(&fds[udp::OWN_FDS..]);
            }
            self.fds = fds;
        }
    }

    /// The ICE-TCP streams: new ones taken, frames read and routed, pending bytes written.
    fn streams(&mut self) {
        let Some(mut tcp) = self.tcp.take() else {
            return;
        };
        let now = Instant::now();
        tcp.accept(now);
        tcp.read(|from, local, frame| {
            let route = (from, TransportProtocol::TCP);
            self.datagram(route, local, frame, now);
            self.by_addr.contains_key(&route)
        });
        self.tcp = Some(tcp);
        // What the frames produced, and what a stream could not take before.
        self.flush();
        if let Some(tcp) = &mut self.tcp {
            tcp.write_pending();
        }
    }

    /// Reads again the deadline of each connection that had input.
    fn refresh_deadlines(&mut self) {
        for key in self.dirty.drain(..) {
            if let Some(p) = self.peers[key].as_mut() {
                if p.rtc_dirty {
                    p.rtc_deadline = p.pc.poll_timeout();
                    p.rtc_dirty = false;
                }
                p.deadline = match (p.rtc_deadline, p.media.deadline()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                p.dirty = false;
            }
        }
    }

    fn flush(&mut self) {
        if let (Some(socket), false) = (&self.socket, self.out.is_empty()) {
            self.send.send_all(socket, &self.out, self.every_address);
        }
        self.out.clear();
        if let (Some(tcp), false) = (&mut self.tcp, self.out_tcp.is_empty()) {
            for (to, d) in self.out_tcp.drain(..) {
                tcp.send(to, &d);
            }
            tcp.write_pending();
        }
    }

    /// How long each datagram of a batch spent in the relay, now that what it produced is sent.
    fn record_transit(&self, received: &[Option<SystemTime>]) {
        let sent = SystemTime::now();
        self.stats
            .transit
            .record(received.iter().flatten().map(|at| {
                sent.duration_since(*at)
                    .map_or(0, |d| d.as_micros().min(u64::MAX as u128) as u64)
            }));
    }

    /// One datagram (or ICE-TCP frame) from `from` to `local`: to the connection it belongs to,
    /// if any.
    fn datagram(&mut self, from: Route, local: SocketAddr, datagram: &[u8], now: Instant) {
        let key = match self.by_addr.get(&from) {
            Some(k) => *k,
            None => {
                let Some(k) = crate::mux::stun_request_ufrag(datagram)
                    .and_then(|u| self.by_ufrag.get(u))
                    .copied()
                else {
                    return;
                };
                self.by_addr.insert(from, k);
                if let Some(p) = self.peers[k].as_mut() {
                    p.addrs.push(from);
                }
                k
            }
        };
        // A datagram the protocol stack cannot take (a bug of its own on hostile input) costs
        // its connection, never the worker and the other rooms on it.
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let Some(p) = self.peers[key].as_mut() else {
                return;
            };
            match p.media.unseal(datagram) {
                Unsealed::Packet(packet) => {
                    p.media_to = Some((from, local));
                    self.read_media(key, packet, now);
                    return;
                }
                Unsealed::Dropped => return,
                Unsealed::NotMine => {}
            }
            if let Some(p) = self.peers[key].as_mut() {
                let _ = p.pc.handle_read(TaggedBytesMut {
                    now,
                    transport: TransportContext {
                        local_addr: local,
                        peer_addr: from.0,
                        ecn: None,
                        transport_protocol: from.1,
                    },
                    message: BytesMut::from(datagram),
                });
                if !p.media.ready() && p.media.take_keys(&mut p.pc) {
                    p.media_to = Some((from, local));
                }
                self.drain(key, now);
            }
        }));
        if handled.is_err() {
            tracing::error!("a media connection failed on a datagram it could not handle: closed");
            self.forget(key, "failed");
        }
    }

    /// Takes what connection `key` has for the relay after an input: its events, the media
    /// and feedback it read (forwarded to the other side), its datagrams.
    fn drain(&mut self, key: usize, now: Instant) {
        let mut connected_now = false;
        {
            let Some(p) = self.peers[key].as_mut() else {
                return;
            };
            p.rtc_dirty = true;
            while let Some(e) = p.pc.poll_event() {
                match e {
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                        tracing::debug!(side = p.side.index(), %state, "connection state");
                        let _ = p.events.send(RelayEvent::State(state.to_string()));
                        if let Some(f) = p.watch.state(state) {
                            failure::report(&self.stats.failures, p.side, f);
                        }
                        connected_now |= state == RTCPeerConnectionState::Connected;
                    }
                    RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                        let Some(receiver) = p.pc.rtp_receiver(init.receiver_id) else {
                            continue;
                        };
                        let track = receiver.track();
                        let kind = track.kind();
                        let mime = track
                            .codec(init.ssrc)
                            .map(|c| c.mime_type.to_lowercase())
                            .unwrap_or_default();
                        tracing::debug!(side = p.side.index(), %kind, ssrc = init.ssrc, "receiving a track");
                        if kind == RtpCodecKind::Video {
                            p.video_in = Some(init.ssrc);
                        }
                        p.media.open(init.ssrc);
                        p.incoming.insert(
                            init.ssrc,
                            Incoming {
                                kind,
                                mime,
                                asked_keyframe: false,
                                keyframe: LastKeyframe::default(),
                            },
                        );
                    }
                    _ => {}
                }
            }
            p.media.sync();
        }
        if connected_now {
            // A receiver that just connected needs a keyframe to show anything: the sender's
            // last one at once, if it is recent, and a fresh one asked for.
            if let Some(other) = self.other(key) {
                self.replay_keyframe(other, key, now);
                self.request_keyframe(other, now);
            }
        }
        let mut reads = std::mem::take(&mut self.reads);
        if let Some(p) = self.peers[key].as_mut() {
            while let Some(TaggedRTCMessage { message, .. }) = p.pc.poll_read() {
                reads.push(message);
            }
        }
        for m in reads.drain(..) {
            match m {
                RTCMessage::RtpPacket(_, packet) => self.read_media(key, Packet::Rtp(packet), now),
                RTCMessage::RtcpPacket(_, packets) => {
                    self.read_media(key, Packet::Rtcp(packets), now)
                }
                _ => {}
            }
        }
        self.reads = reads;
        self.take_writes(key);
    }

    /// Connection `key`'s datagrams, to send at the end of the turn; its deadline is read
    /// again before the loop waits.
    fn take_writes(&mut self, key: usize) {
        if let Some(p) = self.peers[key].as_mut() {
            while let Some(d) = p.pc.poll_write() {
                out(&mut self.out, &mut self.out_tcp, d);
            }
            if !p.dirty {
                p.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// The connection of the other side of `key`'s room, if it has one.
    fn other(&self, key: usize) -> Option<usize> {
        let p = self.peers[key].as_ref()?;
        self.rooms.get(&p.room)?.peers[p.side.other().index()]
    }

    /// A packet from `key`'s browser through its media path: its media forwarded to the other
    /// side, its feedback acted on, what the path has to send sent.
    fn read_media(&mut self, key: usize, packet: Packet, now: Instant) {
        let mut media = std::mem::take(&mut self.media);
        let Some(p) = self.peers[key].as_mut() else {
            return;
        };
        let asked = p.media.read(packet, now, &p.out_ssrc, &mut media);
        if asked.nacks > 0 {
            p.counters.nacks.fetch_add(asked.nacks, Ordering::Relaxed);
        }
        p.counters.add_lost(p.side, 0, asked.lost);
        for packet in media.drain(..) {
            self.forward(key, packet, now);
        }
        self.media = media;
        if asked.keyframe {
            if let Some(other) = self.other(key) {
                self.request_keyframe(other, now);
            }
        }
        self.send_media(key);
    }

    /// What connection `key`'s media path has to send, to the browser; its deadline is read
    /// again before the loop waits.
    fn send_media(&mut self, key: usize) {
        let Some(p) = self.peers[key].as_mut() else {
            return;
        };
        let to = p.media_to;
        let (udp, tcp) = (&mut self.out, &mut self.out_tcp);
        p.media.seal(|d| match to {
            Some(((dest, TransportProtocol::TCP), _)) => tcp.push((dest, d)),
            Some(((dest, _), local)) => udp.push((dest, local.ip(), d)),
            None => {}
        });
        // The losses its reports told the browser of.
        p.counters.add_lost(p.side, p.media.take_lost(), 0);
        if !p.dirty {
            p.dirty = true;
            self.dirty.push(key);
        }
    }

    /// One packet of `key`'s incoming tracks, to the other side.
    fn forward(&mut self, key: usize, packet: rtc::rtp::Packet, now: Instant) {
        let ssrc = packet.header.ssrc;
        let other = self.other(key);
        let Some(incoming) = self.peers[key]
            .as_mut()
            .and_then(|p| p.incoming.get_mut(&ssrc))
        else {
            return;
        };
        if incoming.kind == RtpCodecKind::Video {
            incoming.keyframe.observe(&packet, &incoming.mime, now);
        }
        if incoming.kind == RtpCodecKind::Video && !incoming.asked_keyframe {
            // The first video packet: a keyframe, so that the other side can start, if it can
            // take one now; one that connects later asks for its own then (`drain`). A browser
            // (libwebrtc) acts on one keyframe request in 300 ms and drops the rest, so a
            // request nobody can use may cost the other side the one it needs.
            incoming.asked_keyframe = true;
            if other
                .and_then(|o| self.peers[o].as_ref())
                .is_some_and(|p| p.media.ready())
            {
                self.request_keyframe(key, now);
            }
        }
        if let Some(other) = other {
            self.pass(key, other, packet, now);
        }
    }

    /// Sends connection `to` the last keyframe of `from`'s video (`keyframe`): `to` just
    /// connected and has had nothing of it.
    fn replay_keyframe(&mut self, from: usize, to: usize, now: Instant) {
        if !self.peers[to].as_ref().is_some_and(|p| p.media.ready()) {
            return;
        }
        let Some(packets) = self.peers[from].as_ref().and_then(|p| {
            p.incoming
                .get(&p.video_in?)
                .and_then(|i| i.keyframe.replay(now))
        }) else {
            return;
        };
        tracing::debug!(
            side = self.peers[to].as_ref().map_or(0, |p| p.side.index()),
            packets = packets.len(),
            "the other side's last keyframe sent at once"
        );
        for packet in packets {
            self.pass(from, to, packet, now);
        }
    }

    /// A packet of `key`'s incoming tracks through the forwarding step to connection `other`.
    fn pass(&mut self, key: usize, other: usize, packet: rtc::rtp::Packet, now: Instant) {
        let ssrc = packet.header.ssrc;
        let Ok([Some(from), Some(to)]) = self.peers.get_disjoint_mut([key, other]) else {
            return;
        };
        let Some(incoming) = from.incoming.get(&ssrc) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(&from.room) else {
            return;
        };
        let kind = incoming.kind;
        let k = kind_index(kind);
        let continuity = room
            .rewriters
            .entry((from.side.other(), k))
            .or_insert_with(|| forward::continuity(kind));
        let out = Outgoing {
            payload_types: &to.payload_types,
            ssrc: to.out_ssrc[k],
        };
        let counters = &from.counters;
        let Some(packet) = forward::forward(packet, &incoming.mime, &out, continuity) else {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let bytes = packet.payload.len() as u64;
        if to.media.write(Packet::Rtp(packet), now) {
            counters.packets.fetch_add(1, Ordering::Relaxed);
            counters.bytes.fetch_add(bytes, Ordering::Relaxed);
        } else {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.send_media(other);
    }

    /// Asks connection `key`'s browser (a sender) for a keyframe.
    fn request_keyframe(&mut self, key: usize, now: Instant) {
        let Some(p) = self.peers[key].as_mut() else {
            return;
        };
        let Some(ssrc) = p.video_in else {
            return;
        };
        if p.media
            .write(Packet::Rtcp(crate::connection::pli(ssrc)), now)
        {
            p.counters.plis.fetch_add(1, Ordering::Relaxed);
        }
        self.send_media(key);
    }

    /// The next `TIMER_SLICE` connections with timers due, from where the last slice stopped;
    /// whether more are due.
    fn serve_timers(&mut self, now: Instant) -> bool {
        let n = self.peers.len();
        let mut served = 0;
        for i in 0..n {
            let key = (self.timers_from + i) % n;
            let Some(p) = self.peers[key].as_mut() else {
                continue;
            };
            if p.deadline.is_some_and(|due| due <= now) {
                if served == TIMER_SLICE {
                    self.timers_from = key;
                    return true;
                }
                p.media.timeout(now);
                if p.rtc_deadline.is_some_and(|due| due <= now) {
                    let _ = p.pc.handle_timeout(now);
                    self.drain(key, now);
                }
                self.send_media(key);
                served += 1;
            }
        }
        false
    }

    /// Each link's round-trip time (from the connection's ICE statistics): the next
    /// `SAMPLE_SLICE` connections of a sampling under way; whether it has more.
    fn sample(&mut self, now: Instant) -> bool {
        let Some(from) = self.sampling else {
            return false;
        };
        let from = from.min(self.peers.len());
        let to = (from + SAMPLE_SLICE).min(self.peers.len());
        for p in self.peers[from..to].iter_mut().flatten() {
            let report = p.pc.get_stats(now, rtc::statistics::StatsSelector::None);
            let rtt = crate::stats::round_trip(&report);
            p.counters.record_rtt(p.side, rtt);
        }
        self.sampling = (to < self.peers.len()).then_some(to);
        self.sampling.is_some()
    }

    fn room_empty(&self, room: i64) -> bool {
        self.rooms
            .get(&room)
            .is_none_or(|r| r.peers.iter().all(Option::is_none))
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Offer { offer, reply } => {
                let room = offer.room;
                let result = self.offer(offer);
                if result.is_err() && self.room_empty(room) {
                    self.rooms.remove(&room);
                }
                let _ = reply.send((result, self.room_empty(room)));
            }
            Command::Candidate {
                room,
                side,
                candidate,
                reply,
            } => {
                let result = self.candidate(room, side, candidate);
                let _ = reply.send((result, self.room_empty(room)));
            }
            Command::Leave {
                room,
                side,
                owner,
                reply,
            } => {
                let key = self
                    .rooms
                    .get(&room)
                    .and_then(|r| r.peers[side.index()])
                    .filter(|k| self.peers[*k].as_ref().is_some_and(|p| p.owner == owner));
                if let Some(key) = key {
                    self.close(key);
                }
                if self.room_empty(room) {
                    self.rooms.remove(&room);
                }
                let _ = reply.send(((), self.room_empty(room)));
            }
            Command::Stop => {}
        }
        self.flush();
    }

    fn candidate(&mut self, room: i64, side: Side, c: IceCandidate) -> Result<(), Error> {
        let key = self
            .rooms
            .get(&room)
            .and_then(|r| r.peers[side.index()])
            .ok_or(Error::NoConnection)?;
        if c.candidate.len() > 1024 {
            return Err(Error::BadCandidate("too long".into()));
        }
        let p = self.peers[key].as_mut().ok_or(Error::NoConnection)?;
        p.pc.add_remote_candidate(RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_mline_index,
            username_fragment: None,
            url: None,
        })
        .map_err(|e| Error::BadCandidate(e.to_string()))?;
        self.drain(key, Instant::now());
        Ok(())
    }

    /// A new connection for `side` of `room`, answering `sdp`; the one it replaces is closed.
    fn offer(&mut self, o: Offer) -> Result<String, Error> {
        let Offer {
            room,
            side,
            owner,
            sdp,
            events,
        } = o;
        let offer = RTCSessionDescription::offer(sdp).map_err(|e| Error::BadSdp(e.to_string()))?;
        let now = Instant::now();
        let (ufrag, pwd) = (
            crate::connection::ice_chars(16),
            crate::connection::ice_chars(32),
        );
        let mut media = MediaEngine::default();
        for (c, kind) in crate::connection::codecs() {
            media.register_codec(c, kind).map_err(rtc_err)?;
        }
        crate::interceptors::negotiate(&mut media).map_err(rtc_err)?;
        // `rtc`'s chain only tells the media path which streams it binds.
        let (path, mirror) = MediaPath::new();
        let registry =
            rtc::interceptor::Registry::new().with(rtc::interceptor::Slot::NackResponder, mirror);
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .with_ice_connection_attempts(Some(crate::connection::ICE_CHECK_INTERVAL), Some(60))
            .with_ice_credentials(ufrag.clone(), pwd)
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_setting_engine(settings)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(rtc_err)?;
        let ssrcs = [rand::random::<u32>(), rand::random::<u32>()];
        let mut out = Vec::with_capacity(2);
        for (k, kind) in KINDS.into_iter().enumerate() {
            let track: MediaStreamTrack = crate::connection::out_track_spec(kind, ssrcs[k]);
            out.push(pc.add_track(track).map_err(rtc_err)?);
        }
        for (i, (at, over)) in self.candidates.iter().enumerate() {
            pc.add_local_candidate(host_candidate(i + 1, *at, *over))
                .map_err(rtc_err)?;
        }
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .map_err(rtc_err)?;
        pc.set_remote_description(now, offer)
            .map_err(|e| Error::BadSdp(e.to_string()))?;
        let answer = pc.create_answer(None).map_err(rtc_err)?;
        pc.set_local_description(now, answer).map_err(rtc_err)?;
        let local = pc
            .local_description()
            .ok_or_else(|| rtc_err("no local description"))?;
        let mut payload_types = std::collections::HashMap::new();
        for id in out.iter() {
            if let Some(mut s) = pc.rtp_sender(*id) {
                for c in &s.get_parameters().rtp_parameters.codecs {
                    payload_types
                        .entry(c.rtp_codec.mime_type.to_lowercase())
                        .or_insert(c.payload_type);
                }
            }
        }
        tracing::debug!(
            room,
            side = side.index(),
            owner,
            ?payload_types,
            "answered an offer"
        );

        let peer = Peer {
            pc,
            room,
            side,
            owner,
            ufrag: ufrag.clone(),
            addrs: Vec::new(),
            events,
            counters: self.stats.room(room),
            out_ssrc: ssrcs,
            payload_types,
            incoming: HashMap::new(),
            video_in: None,
            media: path,
            media_to: None,
            created: now,
            watch: Watch::new(now),
            deadline: None,
            dirty: false,
            rtc_deadline: None,
            rtc_dirty: true,
        };
        let key = match self.peers.iter().position(Option::is_none) {
            Some(k) => {
                self.peers[k] = Some(peer);
                k
            }
            None => {
                self.peers.push(Some(peer));
                self.peers.len() - 1
            }
        };
        self.by_ufrag.insert(ufrag, key);
        let old = self.rooms.entry(room).or_default().peers[side.index()].replace(key);
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = old {
            self.close(old);
        }
        self.drain(key, now);
        Ok(crate::connection::with_start_bitrate(
            &self.announce.sdp(&local.sdp),
            crate::connection::START_BITRATE_KBPS,
        ))
    }

    /// Closes connection `key` and forgets it (its room keeps its place for the other side).
    fn close(&mut self, key: usize) {
        self.close_as(key, "closed");
    }

    /// Closes connection `key` and forgets it, telling its signaling socket `state`.
    fn close_as(&mut self, key: usize, state: &str) {
        if let Some(p) = self.peers[key].as_mut() {
            let _ = p.pc.close();
            while let Some(d) = p.pc.poll_write() {
                out(&mut self.out, &mut self.out_tcp, d);
            }
        }
        self.forget(key, state);
    }

    /// Closes the connections that are past their deadline to connect, as failed.
    fn fail_overdue(&mut self, now: Instant) {
        for key in 0..self.peers.len() {
            let Some(p) = self.peers[key].as_mut() else {
                continue;
            };
            if let Some(f) = p.watch.overdue(now) {
                failure::report(&self.stats.failures, p.side, f);
                self.close_as(key, "failed");
            }
        }
    }

    /// Forgets connection `key`, telling its signaling socket `state`.
    fn forget(&mut self, key: usize, state: &str) {
        let Some(p) = self.peers[key].take() else {
            return;
        };
        let _ = p.events.send(RelayEvent::State(state.into()));
        for a in &p.addrs {
            self.by_addr.remove(a);
            if let (TransportProtocol::TCP, Some(tcp)) = (a.1, &mut self.tcp) {
                tcp.close(a.0);
            }
        }
        self.by_ufrag.remove(&p.ufrag);
        if let Some(r) = self.rooms.get_mut(&p.room) {
            if r.peers[p.side.index()] == Some(key) {
                r.peers[p.side.index()] = None;
            }
        }
        self.stats.connections.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!(
            age_ms = p.created.elapsed().as_millis() as u64,
            "peer connection closed"
        );
    }

    fn stop(&mut self) {
        for key in 0..self.peers.len() {
            self.close(key);
        }
        self.flush();
    }
}

/// Where a datagram a connection wrote goes: the UDP batch (from the address of the connection's
/// candidate) or an ICE-TCP stream.
fn out(udp: &mut Vec<udp::Outgoing>, tcp: &mut Vec<(SocketAddr, BytesMut)>, d: TaggedBytesMut) {
    let t = d.transport;
    match t.transport_protocol {
        TransportProtocol::TCP => tcp.push((t.peer_addr, d.message)),
        _ => udp.push((t.peer_addr, t.local_addr.ip(), d.message)),
    }
}

/// One of the worker's addresses as a host candidate: its UDP socket, or its ICE-TCP listener
/// (passive: browsers connect to it; after UDP in preference).
fn host_candidate(
    foundation: usize,
    local: SocketAddr,
    over: TransportProtocol,
) -> RTCIceCandidateInit {
    let (transport, priority, tcptype) = match over {
        TransportProtocol::TCP => ("tcp", 1_518_280_447u32, " tcptype passive"),
        _ => ("udp", 2_130_706_431, ""),
    };
    RTCIceCandidateInit {
        candidate: format!(
            "candidate:{foundation} 1 {transport} {priority} {} {} typ host{tcptype}",
            local.ip(),
            local.port()
        ),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        ..Default::default()
    }
}
