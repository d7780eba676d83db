//! The rooms, where a call's two participants meet.
//!
//! `Relay` is what the server calls: an offer, a candidate, a participant leaving. Behind it,
//! each room holds one connection per side, and this module ties the two together once they
//! exist: the connections' events (candidates and states for the signaling socket, a keyframe
//! request when a receiver connects, incoming tracks) and the tasks that run for the life of a
//! connection — forwarding each incoming track to the other side (`forward_track`, through
//! `forward`), passing receivers' keyframe requests to the sender (`pass_feedback`), sampling
//! each link's loss and round-trip time (`sample_link`). Building a connection is
//! `connection`'s.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription,
};

use crate::connection::{self, kind_index, pli, Setup};
use crate::failure::{self, Watch};
use crate::forward::{self, Outgoing};
use crate::keyframe::LastKeyframe;
use crate::rewrite::Rewriter;
use crate::side::Side;
use crate::stats::{LossTally, RoomCounters, Stats};

// Where these were before the connection set-up had a module of its own (the media load
// generator of the `tests` crate uses `codecs` and `out_track` from here).
pub use crate::connection::{codecs, out_track, Announce};
pub use crate::error::Error;
pub use crate::events::{IceCandidate, Offer, RelayEvent};

/// How the relay's connections reach browsers.
#[derive(Debug, Clone)]
pub struct Config {
    /// UDP sockets for ICE, e.g. `0.0.0.0:0` (any port) or `127.0.0.1:0`.
    pub udp_addrs: Vec<String>,
    /// Passive ICE-TCP listener, e.g. `0.0.0.0:3478`, for networks that block UDP.
    pub tcp_addrs: Vec<String>,
    /// Public address to announce instead of the host's (a server behind 1:1 NAT).
    pub nat_ips: Vec<String>,
    /// Single-threaded reactors that run the connections' drivers (0: tokio's own workers),
    /// both of a room's on the same one. One saves the cross-thread wake-ups a packet otherwise
    /// costs (~20 % of its CPU); more spread the rooms over more cores.
    pub reactor_threads: usize,
    /// Ports for the connections' sockets (each connection takes one port of the range on
    /// every UDP and TCP address, whose own ports are then ignored); `None`: any free port.
    pub ports: Option<(u16, u16)>,
    /// What drives the connections.
    pub engine: EngineKind,
}

/// What drives the relay's connections (`media_engine`: `webrtc` or `rtc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// The `webrtc` crate's connections, on the reactors: also IPv6 on every address (`[::]`)
    /// and a port per connection.
    Webrtc,
    /// `rtc` connections driven from the relay's own threads (`direct`): one UDP and one TCP
    /// address (IPv4 `0.0.0.0` or a specific one), a port of each per thread. It costs less per
    /// packet and per room (`docs/deploy.md`, section 3).
    #[default]
    Rtc,
}

impl std::str::FromStr for EngineKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "webrtc" => Ok(EngineKind::Webrtc),
            "rtc" => Ok(EngineKind::Rtc),
            other => Err(format!("must be webrtc or rtc, not {other:?}")),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            udp_addrs: vec!["0.0.0.0:0".into()],
            tcp_addrs: vec![],
            nat_ips: vec![],
            reactor_threads: 0,
            ports: None,
            engine: EngineKind::Webrtc,
        }
    }
}

/// One participant's connection and the two tracks that carry the other side's media to it.
struct Participant {
    /// The signaling connection this peer connection belongs to.
    owner: u64,
    pc: Arc<dyn PeerConnection>,
    /// [audio, video]
    out: [Arc<TrackLocalStaticRTP>; 2],
    out_ssrc: [u32; 2],
    /// Negotiated payload types on this connection, by codec MIME type (lowercase).
    payload_types: Mutex<HashMap<String, u8>>,
    /// The participant's own video, to ask it for keyframes.
    video_in: Mutex<Option<(Arc<dyn TrackRemote>, u32)>>,
    /// Its video's codec (MIME type, lowercase) and last whole keyframe, for an other side that
    /// connects later (`keyframe`).
    keyframe: Mutex<(String, LastKeyframe)>,
    /// Whether the connection is up (ICE and DTLS), so that it can take the other side's media:
    /// the handler's `on_tick` switch, which is on exactly then.
    connected: Arc<std::sync::atomic::AtomicBool>,
    created: Instant,
    /// The packets its browser's reports count lost on `out`'s streams.
    downlink: Mutex<LossTally>,
}

impl Participant {
    /// Counts what the report blocks of an RTCP compound from this participant's browser say
    /// of the relay's streams to it: `rtc` hands a compound to one track, by the first SSRC it
    /// names (a sender report's, for a browser that sends too), so both its incoming tracks
    /// and its outgoing ones look.
    fn count_downlink(
        &self,
        packets: &[Box<dyn rtc::rtcp::Packet>],
        side: Side,
        counters: &RoomCounters,
    ) {
        let lost = self
            .downlink
            .lock()
            .expect("downlink lock")
            .read(packets, |ssrc| self.out_ssrc.contains(&ssrc));
        counters.add_lost(side, 0, lost);
    }
}

#[derive(Default)]
struct RoomMedia {
    /// The participants' connections, by `Side::index`.
    participants: Mutex<[Option<Arc<Participant>>; 2]>,
    /// Offers being answered. The room is not forgotten while one is: its connection would
    /// land in a room nobody can find any more, and never be closed.
    pending: std::sync::atomic::AtomicUsize,
    /// Continuity of each outgoing stream, per receiving side and kind.
    rewriters: Mutex<HashMap<(Side, usize), Rewriter>>,
    /// The reactor that runs both connections and their tasks, when the relay has reactors.
    seat: Option<crate::reactors::Seat>,
}

pub struct Relay {
    config: Config,
    ports: Option<crate::ports::PortRange>,
    /// One shared UDP and/or TCP port for every connection, when the configured addresses name
    /// a port and no range is given.
    mux: Option<Arc<crate::mux::Mux>>,
    reactors: Option<Arc<crate::reactors::Reactors>>,
    rooms: Mutex<HashMap<i64, Arc<RoomMedia>>>,
    /// The rtc engine, which then takes every offer, candidate and leave.
    direct: Option<crate::direct::Engine>,
    pub stats: Arc<Stats>,
}

impl RoomMedia {
    /// Runs `task` where the room's connections run.
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        match &self.seat {
            Some(seat) => drop(seat.handle().spawn(task)),
            None => drop(tokio::spawn(task)),
        }
    }

    fn participant(&self, side: Side) -> Option<Arc<Participant>> {
        self.participants.lock().expect("participants lock")[side.index()].clone()
    }

    /// A packet of kind `kind` and codec `mime` for side `side`, through the forwarding step
    /// to its connection `to`'s outgoing track.
    async fn pass(
        &self,
        packet: rtc::rtp::Packet,
        mime: &str,
        kind: RtpCodecKind,
        side: Side,
        to: &Participant,
        counters: &RoomCounters,
    ) {
        let k = kind_index(kind);
        let forwarded = {
            let payload_types = to.payload_types.lock().expect("pt lock");
            let mut rewriters = self.rewriters.lock().expect("rewriters lock");
            let continuity = rewriters
                .entry((side, k))
                .or_insert_with(|| forward::continuity(kind));
            let out = Outgoing {
                payload_types: &payload_types,
                ssrc: to.out_ssrc[k],
            };
            forward::forward(packet, mime, &out, continuity)
        };
        let Some(packet) = forwarded else {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let bytes = packet.payload.len() as u64;
        match to.out[k].write_rtp(packet).await {
            Ok(()) => {
                counters.packets.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            Err(_) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends `to` (just connected) the last keyframe of side `from`'s video (`keyframe`).
    async fn replay_keyframe(&self, from: Side, to: &Participant, counters: &RoomCounters) {
        let Some(sender) = self.participant(from) else {
            return;
        };
        let (mime, packets) = {
            let kept = sender.keyframe.lock().expect("keyframe lock");
            (kept.0.clone(), kept.1.replay(Instant::now()))
        };
        let Some(packets) = packets else {
            return;
        };
        tracing::debug!(
            side = from.other().index(),
            packets = packets.len(),
            "the other side's last keyframe sent at once"
        );
        for packet in packets {
            self.pass(
                packet,
                &mime,
                RtpCodecKind::Video,
                from.other(),
                to,
                counters,
            )
            .await;
        }
    }

    /// Asks side `from` (the sender) for a keyframe.
    async fn request_keyframe(&self, from: Side, counters: &RoomCounters) {
        let video = self
            .participant(from)
            .and_then(|s| s.video_in.lock().expect("video lock").clone());
        if let Some((track, ssrc)) = video {
            if track.write_rtcp(pli(ssrc)).await.is_ok() {
                counters.plis.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

struct Handler {
    room: Weak<RoomMedia>,
    side: Side,
    events: tokio::sync::mpsc::UnboundedSender<RelayEvent>,
    counters: Arc<RoomCounters>,
    announce: Announce,
    /// Moves the connection's timers to the shared tick while it is connected.
    on_tick: Arc<std::sync::atomic::AtomicBool>,
    /// Filled right after the connection is built.
    me: Mutex<Weak<Participant>>,
    /// Whether and how the connection failed (`failure`), and where that is counted.
    watch: Mutex<Watch>,
    stats: Arc<Stats>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            // Bundled: every candidate belongs to the first m-line, whose mid is "0".
            let _ = self.events.send(RelayEvent::Candidate(IceCandidate {
                candidate: self.announce.candidate(&init.candidate),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
            }));
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(side = self.side.index(), %state, "connection state");
        let _ = self.events.send(RelayEvent::State(state.to_string()));
        if let Some(f) = self.watch.lock().expect("watch lock").state(state) {
            failure::report(&self.stats.failures, self.side, f);
        }
        self.on_tick.store(
            state == RTCPeerConnectionState::Connected,
            Ordering::Relaxed,
        );
        if state == RTCPeerConnectionState::Connected {
            // A receiver that just connected needs a keyframe to show anything: the sender's
            // last one at once, if it is recent, and a fresh one asked for.
            if let Some(room) = self.room.upgrade() {
                let me = self.me.lock().expect("me lock").upgrade();
                if let Some(me) = me {
                    room.replay_keyframe(self.side.other(), &me, &self.counters)
                        .await;
                }
                room.request_keyframe(self.side.other(), &self.counters)
                    .await;
            }
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(ssrc) = track.ssrcs().await.first().copied() else {
            tracing::warn!(side = self.side.index(), "a track without SSRC: ignored");
            return;
        };
        let kind = track.kind().await;
        tracing::debug!(side = self.side.index(), %kind, ssrc, "receiving a track");
        let Some(me) = self.me.lock().expect("me lock").upgrade() else {
            return;
        };
        if kind == RtpCodecKind::Video {
            *me.video_in.lock().expect("video lock") = Some((track.clone(), ssrc));
        }
        let Some(room) = self.room.upgrade() else {
            return;
        };
        room.spawn(forward_track(
            track,
            ssrc,
            kind,
            Arc::downgrade(&me),
            self.room.clone(),
            self.side,
            self.counters.clone(),
        ));
    }
}

/// Forwards one incoming track of `side` (connection `sender`) to the other side's outgoing
/// track of its kind, for as long as the track delivers and the room exists; the first video
/// packet asks the sender for a keyframe if the other side is connected, and the video's last
/// keyframe is kept (`keyframe`).
///
/// Each packet goes through the forwarding step (`forward`) with what the other side's current
/// connection negotiated; while there is no other side, packets are read and dropped.
async fn forward_track(
    track: Arc<dyn TrackRemote>,
    ssrc: u32,
    kind: RtpCodecKind,
    sender: Weak<Participant>,
    room: Weak<RoomMedia>,
    side: Side,
    counters: Arc<RoomCounters>,
) {
    let mime = track
        .codec(ssrc)
        .await
        .map(|c| c.mime_type.to_lowercase())
        .unwrap_or_default();
    if kind == RtpCodecKind::Video {
        if let Some(s) = sender.upgrade() {
            s.keyframe.lock().expect("keyframe lock").0 = mime.clone();
        }
    }
    let mut asked_keyframe = false;
    while let Some(evt) = track.poll().await {
        let packet = match evt {
            TrackRemoteEvent::OnRtpPacket(packet) => packet,
            TrackRemoteEvent::OnRtcpPacket(packets) => {
                if let Some(s) = sender.upgrade() {
                    s.count_downlink(&packets, side, &counters);
                }
                continue;
            }
            _ => continue,
        };
        let Some(room) = room.upgrade() else { break };
        if kind == RtpCodecKind::Video {
            if let Some(s) = sender.upgrade() {
                let mut kept = s.keyframe.lock().expect("keyframe lock");
                kept.1.observe(&packet, &mime, Instant::now());
            }
        }
        if kind == RtpCodecKind::Video && !asked_keyframe {
            // The first video packet: a keyframe, so that the other side can start, if it can
            // take one now; one that connects later asks for its own then. A browser (libwebrtc)
            // acts on one keyframe request in 300 ms and drops the rest, so a request nobody can
            // use may cost the other side the one it needs (as on the rtc engine, `direct`).
            asked_keyframe = true;
            if room
                .participant(side.other())
                .is_some_and(|o| o.connected.load(Ordering::Relaxed))
            {
                room.request_keyframe(side, &counters).await;
            }
        }
        let Some(other) = room.participant(side.other()) else {
            continue;
        };
        room.pass(packet, &mime, kind, side.other(), &other, &counters)
            .await;
    }
}

/// Passes what `side`'s browser says about one of its outgoing tracks, as a receiver, to the
/// other side: a keyframe request (PLI or FIR) goes to the other side's sender at once, NACKs
/// are counted (the connection's NACK responder answers them itself), and so are the packets
/// its reports count lost. Ends when the participant's connection is gone or the room
/// forgotten; a track not bound yet (or unbound) is looked at again every 200 ms.
async fn pass_feedback(
    track: Arc<TrackLocalStaticRTP>,
    alive: Weak<Participant>,
    room: Weak<RoomMedia>,
    side: Side,
    counters: Arc<RoomCounters>,
) {
    loop {
        if alive.upgrade().is_none() {
            break;
        }
        match track.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                let Some(room) = room.upgrade() else { break };
                if let Some(p) = alive.upgrade() {
                    p.count_downlink(&packets, side, &counters);
                }
                let mut keyframe = false;
                for p in &packets {
                    let a = p.as_any();
                    if a.is::<PictureLossIndication>() || a.is::<FullIntraRequest>() {
                        keyframe = true;
                    }
                    if a.is::<TransportLayerNack>() {
                        counters.nacks.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if keyframe {
                    room.request_keyframe(side.other(), &counters).await;
                }
            }
            Some(_) => {}
            // Not bound yet, or unbound: look again shortly.
            None => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Closes a participant's connection, no longer in its room.
async fn close(participant: Arc<Participant>, stats: &Stats) {
    let _ = participant.pc.close().await;
    stats.connections.fetch_sub(1, Ordering::Relaxed);
    tracing::debug!(
        age_ms = participant.created.elapsed().as_millis() as u64,
        "peer connection closed"
    );
}

/// At the connection's deadline to connect (`failure`): if it has not, it is taken out of its
/// room and closed as failed, unless a newer one replaced it or its room is gone.
async fn fail_if_not_connected(
    handler: Weak<Handler>,
    participant: Weak<Participant>,
    room: Weak<RoomMedia>,
) {
    tokio::time::sleep(failure::CONNECT_DEADLINE).await;
    let (Some(handler), Some(participant), Some(room)) =
        (handler.upgrade(), participant.upgrade(), room.upgrade())
    else {
        return;
    };
    let Some(f) = handler
        .watch
        .lock()
        .expect("watch lock")
        .overdue(Instant::now())
    else {
        return;
    };
    let taken = {
        let mut participants = room.participants.lock().expect("participants lock");
        let slot = &mut participants[handler.side.index()];
        match slot {
            Some(p) if Arc::ptr_eq(p, &participant) => slot.take(),
            _ => None,
        }
    };
    if let Some(p) = taken {
        failure::report(&handler.stats.failures, handler.side, f);
        let _ = handler.events.send(RelayEvent::State("failed".into()));
        close(p, &handler.stats).await;
    }
}

/// Every 2 s, reads `side`'s loss (packets lost on the way from its browser to the relay) and
/// round-trip time (ICE) from its connection's own statistics into the room's counters, until
/// the participant's connection is gone.
async fn sample_link(alive: Weak<Participant>, side: Side, counters: Arc<RoomCounters>) {
    let mut uplink = LossTally::default();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Some(s) = alive.upgrade() else { break };
        let report =
            s.pc.get_stats(Instant::now(), webrtc::peer_connection::StatsSelector::None)
                .await;
        counters.record_link(side, &report, &mut uplink);
    }
}

impl Relay {
    /// The relay as configured; the rtc engine binds its sockets now, and says here what it
    /// cannot do.
    pub fn new(config: Config) -> Result<Arc<Relay>, Error> {
        let stats = Arc::new(Stats::default());
        if config.engine == EngineKind::Rtc {
            let direct = crate::direct::Engine::start(
                &config.udp_addrs,
                &config.tcp_addrs,
                config.ports,
                config.nat_ips.clone(),
                config.reactor_threads,
                stats.clone(),
            )?;
            return Ok(Arc::new(Relay {
                ports: None,
                mux: None,
                reactors: None,
                config,
                rooms: Mutex::new(HashMap::new()),
                direct: Some(direct),
                stats,
            }));
        }
        let ports = config
            .ports
            .and_then(|(a, b)| crate::ports::PortRange::new(a, b));
        let shared_port = |list: &[String]| {
            list.iter()
                .filter_map(|a| a.parse::<std::net::SocketAddr>().ok())
                .map(|a| a.port())
                .find(|p| *p != 0)
        };
        let (udp, tcp) = (
            shared_port(&config.udp_addrs),
            shared_port(&config.tcp_addrs),
        );
        let mux = (ports.is_none() && (udp.is_some() || tcp.is_some()))
            .then(|| crate::mux::Mux::new(udp, tcp));
        Ok(Arc::new(Relay {
            ports,
            mux,
            reactors: crate::reactors::Reactors::start(config.reactor_threads),
            config,
            rooms: Mutex::new(HashMap::new()),
            direct: None,
            stats,
        }))
    }

    /// The addresses a new connection binds: as configured, or on the next free port of the
    /// configured range.
    fn bind_addrs(&self) -> Result<(Vec<String>, Vec<String>), Error> {
        let Some(range) = &self.ports else {
            if self.mux.is_some() {
                // The crate binds an ephemeral port that only names the connection's address;
                // its traffic goes through the shared socket.
                let any_port = |list: &[String]| {
                    list.iter()
                        .map(|a| match a.parse::<std::net::SocketAddr>() {
                            Ok(mut s) => {
                                s.set_port(0);
                                s.to_string()
                            }
                            Err(_) => a.clone(),
                        })
                        .collect()
                };
                return Ok((
                    any_port(&self.config.udp_addrs),
                    any_port(&self.config.tcp_addrs),
                ));
            }
            return Ok((self.config.udp_addrs.clone(), self.config.tcp_addrs.clone()));
        };
        let resolve = |list: &[String]| -> Result<Vec<std::net::SocketAddr>, Error> {
            let mut out = Vec::new();
            for a in list {
                out.extend(
                    std::net::ToSocketAddrs::to_socket_addrs(a.as_str())
                        .map_err(|e| Error::WebRtc(format!("media address {a}: {e}")))?,
                );
            }
            Ok(out)
        };
        let b = range
            .pick(
                &resolve(&self.config.udp_addrs)?,
                &resolve(&self.config.tcp_addrs)?,
            )
            .ok_or(Error::NoPort)?;
        Ok((b.udp, b.tcp))
    }

    fn announce(&self) -> Announce {
        Announce {
            nat_ips: self.config.nat_ips.clone(),
            udp_port: self.mux.as_ref().and_then(|m| m.udp_port()),
            tcp_port: self.mux.as_ref().and_then(|m| m.tcp_port()),
        }
    }

    /// Connections routed through the shared ports (for the leak check).
    pub fn shared_port_routes(&self) -> usize {
        self.mux.as_ref().map_or(0, |m| m.routes())
    }

    fn room(&self, room: i64) -> Arc<RoomMedia> {
        self.rooms
            .lock()
            .expect("rooms lock")
            .entry(room)
            .or_insert_with(|| self.new_room())
            .clone()
    }

    /// A room with nobody in it yet, seated on the reactor with the fewest rooms.
    fn new_room(&self) -> Arc<RoomMedia> {
        Arc::new(RoomMedia {
            seat: self.reactors.as_ref().map(|r| r.seat()),
            ..RoomMedia::default()
        })
    }

    /// Answers a participant's offer with a new connection (replacing any previous one of the
    /// same side: a reload, a network change). Local candidates and state changes arrive on
    /// `events`.
    pub async fn offer(&self, o: Offer) -> Result<String, Error> {
        if let Some(direct) = &self.direct {
            return direct.offer(o, &self.stats).await;
        }
        let room_id = o.room;
        let room = {
            let mut rooms = self.rooms.lock().expect("rooms lock");
            let r = rooms
                .entry(room_id)
                .or_insert_with(|| self.new_room())
                .clone();
            r.pending.fetch_add(1, Ordering::SeqCst);
            r
        };
        let result = self.answer_offer(room.clone(), o).await;
        room.pending.fetch_sub(1, Ordering::SeqCst);
        if result.is_err() {
            self.forget_if_empty(room_id, &room);
        }
        result
    }

    async fn answer_offer(&self, room: Arc<RoomMedia>, o: Offer) -> Result<String, Error> {
        let (room_id, side, owner) = (o.room, o.side, o.owner);
        let offer =
            RTCSessionDescription::offer(o.sdp).map_err(|e| Error::BadSdp(e.to_string()))?;
        let counters = self.stats.room(room_id);

        let mut setup = Setup::new(self.mux.as_ref())?;
        if let Some(seat) = &room.seat {
            setup = setup.on_reactor(seat.handle());
        }
        let handler = Arc::new(Handler {
            room: Arc::downgrade(&room),
            side,
            events: o.events,
            counters: counters.clone(),
            announce: self.announce(),
            on_tick: setup.tick_switch(),
            me: Mutex::new(Weak::new()),
            watch: Mutex::new(Watch::new(Instant::now())),
            stats: self.stats.clone(),
        });
        let (udp, tcp) = self.bind_addrs()?;
        let pc = setup
            .build(handler.clone(), self.config.reactor_threads, udp, tcp)
            .await?;
        let (out, ssrcs) = connection::out_tracks(&pc).await?;
        let participant = Arc::new(Participant {
            owner,
            pc: pc.clone(),
            out,
            out_ssrc: ssrcs,
            payload_types: Mutex::new(HashMap::new()),
            video_in: Mutex::new(None),
            keyframe: Mutex::new((String::new(), LastKeyframe::default())),
            connected: handler.on_tick.clone(),
            created: Instant::now(),
            downlink: Mutex::new(LossTally::default()),
        });
        *handler.me.lock().expect("me lock") = Arc::downgrade(&participant);

        let local = connection::negotiate(&pc, offer).await?;

        // The payload types this connection negotiated, to rewrite forwarded packets.
        let pts = connection::payload_types(&pc).await;
        tracing::debug!(
            room = room_id,
            side = side.index(),
            owner,
            reactor = room.seat.as_ref().map(|s| s.index()),
            ?pts,
            "answered an offer"
        );
        *participant.payload_types.lock().expect("pt lock") = pts;

        // Keyframe requests and NACKs from this receiver go to the other side's sender.
        for track in participant.out.clone() {
            room.spawn(pass_feedback(
                track,
                Arc::downgrade(&participant),
                Arc::downgrade(&room),
                side,
                counters.clone(),
            ));
        }
        // Loss and round-trip time, read from the connection's own statistics every 2 s.
        room.spawn(sample_link(
            Arc::downgrade(&participant),
            side,
            counters.clone(),
        ));
        room.spawn(fail_if_not_connected(
            Arc::downgrade(&handler),
            Arc::downgrade(&participant),
            Arc::downgrade(&room),
        ));
        let old =
            room.participants.lock().expect("participants lock")[side.index()].replace(participant);
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = old {
            self.close_participant(old).await;
        }
        Ok(connection::with_start_bitrate(
            &self.announce().sdp(&local.sdp),
            connection::START_BITRATE_KBPS,
        ))
    }

    async fn close_participant(&self, participant: Arc<Participant>) {
        close(participant, &self.stats).await;
    }

    /// A remote ICE candidate (trickle ICE) for a participant's current connection.
    pub async fn candidate(&self, room: i64, side: Side, c: IceCandidate) -> Result<(), Error> {
        if let Some(direct) = &self.direct {
            return direct.candidate(room, side, c, &self.stats).await;
        }
        // Looked up, not created: a stray candidate must not leave an empty room behind.
        let r = self.rooms.lock().expect("rooms lock").get(&room).cloned();
        let s = r
            .and_then(|r| r.participant(side))
            .ok_or(Error::NoConnection)?;
        if c.candidate.len() > 1024 {
            return Err(Error::BadCandidate("too long".into()));
        }
        s.pc.add_ice_candidate(RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_mline_index,
            username_fragment: None,
            url: None,
        })
        .await
        .map_err(|e| Error::BadCandidate(e.to_string()))
    }

    /// A participant's signaling connection `owner` left: its peer connection is closed (unless
    /// a newer connection already replaced it), and the room forgotten when empty.
    pub async fn leave(&self, room_id: i64, side: Side, owner: u64) {
        if let Some(direct) = &self.direct {
            return direct.leave(room_id, side, owner, &self.stats).await;
        }
        let room = self.room(room_id);
        let old = {
            let mut participants = room.participants.lock().expect("participants lock");
            let slot = &mut participants[side.index()];
            if slot.as_ref().is_some_and(|s| s.owner == owner) {
                slot.take()
            } else {
                None
            }
        };
        if let Some(old) = old {
            self.close_participant(old).await;
        }
        self.forget_if_empty(room_id, &room);
    }

    /// Forgets a room with nobody in it and no offer being answered.
    fn forget_if_empty(&self, room_id: i64, room: &Arc<RoomMedia>) {
        let mut rooms = self.rooms.lock().expect("rooms lock");
        let empty = room
            .participants
            .lock()
            .expect("participants lock")
            .iter()
            .all(Option::is_none);
        let current = rooms.get(&room_id).is_some_and(|r| Arc::ptr_eq(r, room));
        if empty && current && room.pending.load(Ordering::SeqCst) == 0 {
            rooms.remove(&room_id);
            self.stats.remove(room_id);
        }
    }

    /// Rooms on each reactor, in order (none without reactors).
    pub fn reactor_rooms(&self) -> Vec<usize> {
        if let Some(direct) = &self.direct {
            return direct.worker_rooms();
        }
        self.reactors.as_ref().map_or_else(Vec::new, |r| r.rooms())
    }

    /// Open peer connections, and rooms with at least one.
    pub fn counts(&self) -> (u64, usize) {
        let rooms = match &self.direct {
            Some(direct) => direct.rooms(),
            None => self.rooms.lock().expect("rooms lock").len(),
        };
        (self.stats.connections.load(Ordering::Relaxed), rooms)
    }
}
