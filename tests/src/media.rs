//! A synthetic participant of a video room: a Rust `webrtc` client that speaks the same
//! signaling as the browsers (hello, join, offer, trickle ICE) over the room socket and connects
//! to the server's media relay. The load tools (`mediaload`) and the faults suite use it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rtc::peer_connection::configuration::interceptor_registry::{
    register_default_interceptors, Registry,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceCandidateInit, RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription,
    SettingEngineBuilder,
};

/// What the participants of a run sent and received, and the relay's added latency.
pub struct Counters {
    /// RTP packets sent and received, a keyframe's left out (`send_media`).
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Send-to-receive microseconds of forwarded packets (each payload carries its send time).
    pub latency_us: Mutex<Vec<u64>>,
    /// A measuring window, by the send time in each payload (`open_window`, `close_window`):
    /// the packets sent in it and those of them received, whenever they arrive, so that a
    /// packet on its way at either edge counts on both sides or on neither.
    window: [AtomicU64; 2],
    pub sent_in_window: AtomicU64,
    pub received_in_window: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            latency_us: Mutex::new(Vec::new()),
            window: [AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)],
            sent_in_window: AtomicU64::new(0),
            received_in_window: AtomicU64::new(0),
        }
    }
}

impl Counters {
    /// Opens the window at `at` (µs after the run's epoch, `now_us`).
    pub fn open_window(&self, at: u64) {
        self.window[0].store(at, Ordering::Relaxed);
    }

    /// Closes the window at `at`; packets sent before it still count when they arrive.
    pub fn close_window(&self, at: u64) {
        self.window[1].store(at, Ordering::Relaxed);
    }

    fn in_window(&self, sent_us: u64) -> bool {
        sent_us >= self.window[0].load(Ordering::Relaxed)
            && sent_us < self.window[1].load(Ordering::Relaxed)
    }
}

/// Microseconds since `epoch`: the send time written into each payload.
pub fn now_us(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

/// How many of the video packets a participant receives are kept (`Participant::video_in`).
pub const VIDEO_KEPT: usize = 64;

struct Handler {
    ws_tx: mpsc::UnboundedSender<Value>,
    connected: mpsc::UnboundedSender<()>,
    counters: Arc<Counters>,
    epoch: Instant,
    first_video: Arc<Mutex<Option<Instant>>>,
    video_in: Arc<Mutex<Vec<rtc::rtp::Packet>>>,
}

/// A local candidate to the relay over the room socket `ws` (bundled: the first m-line).
fn trickle(ws: &mpsc::UnboundedSender<Value>, e: RTCPeerConnectionIceEvent) {
    if let Ok(c) = e.candidate.to_json() {
        let _ = ws.send(
            json!({"type":"ice","v":1,"candidate":c.candidate,"sdp_mid":"0","sdp_mline_index":0}),
        );
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, e: RTCPeerConnectionIceEvent) {
        trickle(&self.ws_tx, e);
    }
    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        if s == RTCPeerConnectionState::Connected {
            let _ = self.connected.send(());
        }
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let kind = track.kind().await;
        let (counters, epoch, first, video_in) = (
            self.counters.clone(),
            self.epoch,
            self.first_video.clone(),
            self.video_in.clone(),
        );
        tokio::spawn(async move {
            while let Some(e) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = e {
                    // The send time: at the start of an audio payload, after the VP8 bytes of
                    // a video one (`video_payload`).
                    let at = if kind == RtpCodecKind::Video {
                        first.lock().unwrap().get_or_insert_with(Instant::now);
                        let mut v = video_in.lock().unwrap();
                        if v.len() < VIDEO_KEPT {
                            v.push(p.clone());
                        }
                        // A keyframe's packets are not counted: a kept one may come again.
                        if is_keyframe_packet(&p.payload) {
                            continue;
                        }
                        2
                    } else {
                        0
                    };
                    counters.received.fetch_add(1, Ordering::Relaxed);
                    if let Some(sent) = p.payload.get(at..at + 8) {
                        let sent = u64::from_be_bytes(sent.try_into().unwrap());
                        if counters.in_window(sent) {
                            counters.received_in_window.fetch_add(1, Ordering::Relaxed);
                        }
                        let l = now_us(epoch).saturating_sub(sent);
                        let mut v = counters.latency_us.lock().unwrap();
                        if v.len() < 200_000 {
                            v.push(l);
                        }
                    }
                }
            }
        });
    }
}

/// One synthetic participant in a room: its room socket and its media connection to the relay,
/// with an audio and a video track to send on.
pub struct Participant {
    pub pc: Arc<dyn PeerConnection>,
    pub tracks: [Arc<webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP>; 2],
    pub ssrcs: [u32; 2],
    /// The negotiated payload types: Opus, VP8.
    pub pts: [u8; 2],
    pub joined_at: Instant,
    /// When the first forwarded video packet arrived.
    pub first_video: Arc<Mutex<Option<Instant>>>,
    /// The first `VIDEO_KEPT` video packets it received, as they arrived.
    pub video_in: Arc<Mutex<Vec<rtc::rtp::Packet>>>,
    ws_out: mpsc::UnboundedSender<Value>,
    close_ws: Option<oneshot::Sender<()>>,
    _ws_task: tokio::task::JoinHandle<()>,
}

impl Participant {
    /// Whether its room socket is still open (the server, or a node on the way, may close it).
    pub fn socket_open(&self) -> bool {
        !self._ws_task.is_finished()
    }

    /// Leaves as the call page's hang-up button does: `leave` on the room socket, the media
    /// connection closed, then the socket closed with a close frame.
    pub async fn leave(mut self) -> anyhow::Result<()> {
        let _ = self.ws_out.send(json!({"type":"leave","v":1}));
        self.pc.close().await?;
        if let Some(close) = self.close_ws.take() {
            let _ = close.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self._ws_task).await;
        Ok(())
    }
}

/// A room socket: what to send on it, what came from it, and how to close it.
struct Socket {
    tx: mpsc::UnboundedSender<Value>,
    rx: mpsc::UnboundedReceiver<Value>,
    close: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Socket {
    /// Opens the room socket at `url`, says hello with `token` and joins as `name`.
    async fn enter(url: &str, token: &str, name: &str) -> anyhow::Result<Socket> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        let (mut sink, mut stream) = ws.split();
        let (ws_tx, mut ws_rx) = mpsc::unbounded_channel::<Value>();
        let (in_tx, mut in_rx) = mpsc::unbounded_channel::<Value>();
        let (close_ws, mut closing) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut closing => {
                        let _ = sink.send(Message::Close(None)).await;
                        // Until the server's close frame (or the end).
                        while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(2), stream.next()).await {
                            if m.is_close() { break; }
                        }
                        break;
                    }
                    out = ws_rx.recv() => match out {
                        Some(v) => { if sink.send(Message::text(v.to_string())).await.is_err() { break; } }
                        None => break,
                    },
                    m = stream.next() => match m {
                        Some(Ok(Message::Text(t))) => { if let Ok(v) = serde_json::from_str::<Value>(&t) { let _ = in_tx.send(v); } }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
        });
        ws_tx.send(json!({"type":"hello","v":1,"token":token}))?;
        let ready = in_rx
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("closed"))?;
        anyhow::ensure!(ready["type"] == "ready", "expected ready, got {ready}");
        ws_tx.send(json!({"type":"join","v":1,"name":name}))?;
        Ok(Socket {
            tx: ws_tx,
            rx: in_rx,
            close: close_ws,
            task,
        })
    }

    /// The relay's answer to the offer sent, within 20 s.
    async fn answer(&mut self) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()),
                self.rx.recv(),
            )
            .await?
            .ok_or_else(|| anyhow::anyhow!("closed"))?;
            match m["type"].as_str() {
                Some("answer") => return Ok(m["sdp"].as_str().unwrap_or("").to_string()),
                Some("error") if m["code"] != "bad_candidate" => {
                    anyhow::bail!("relay refused: {m}")
                }
                _ => {}
            }
        }
    }
}

/// A peer connection as the participants make it (the relay's codecs, the default
/// interceptors, one loopback UDP address), with an audio and a video track and its offer set.
async fn offering_peer(
    handler: Arc<dyn PeerConnectionEventHandler>,
) -> anyhow::Result<(
    Arc<dyn PeerConnection>,
    [Arc<TrackLocalStaticRTP>; 2],
    [u32; 2],
    String,
)> {
    let mut me = MediaEngine::default();
    for (c, k) in sfu::relay::codecs() {
        me.register_codec(c, k)?;
    }
    let registry = register_default_interceptors(Registry::new(), &mut me)?;
    let pc: Arc<dyn PeerConnection> = Arc::new(
        PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(me)
            .with_setting_engine(
                SettingEngineBuilder::new()
                    .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
                    .build(),
            )
            .with_interceptor_registry(registry)
            .with_handler(handler)
            .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
            .build()
            .await?,
    );
    let ssrcs = [rand::random::<u32>(), rand::random::<u32>()];
    let tracks = [
        sfu::relay::out_track(RtpCodecKind::Audio, ssrcs[0]),
        sfu::relay::out_track(RtpCodecKind::Video, ssrcs[1]),
    ];
    for t in &tracks {
        pc.add_track(t.clone() as Arc<dyn TrackLocal>).await?;
    }
    let offer = pc.create_offer(None).await?;
    pc.set_local_description(offer).await?;
    let sdp = pc
        .local_description()
        .await
        .ok_or_else(|| anyhow::anyhow!("no offer"))?
        .sdp;
    Ok((pc, tracks, ssrcs, sdp))
}

/// The relay's candidate in `m`, if it is an `ice` message, to `pc` (bundled: the first m-line).
async fn add_candidate(pc: &Arc<dyn PeerConnection>, m: &Value) {
    if m["type"] == "ice" {
        let _ = pc
            .add_ice_candidate(RTCIceCandidateInit {
                candidate: m["candidate"].as_str().unwrap_or("").to_string(),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
                username_fragment: None,
                url: None,
            })
            .await;
    }
}

/// Opens the room socket at `url`, says hello with `token`, joins as `name`, and connects to
/// the relay (offer, answer, trickle ICE) until the media connection is up.
pub async fn join(
    url: &str,
    token: &str,
    name: &str,
    counters: Arc<Counters>,
    epoch: Instant,
) -> anyhow::Result<Participant> {
    let joined_at = Instant::now();
    let mut socket = Socket::enter(url, token, name).await?;
    let (conn_tx, mut conn_rx) = mpsc::unbounded_channel();
    let first_video = Arc::new(Mutex::new(None));
    let video_in = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(Handler {
        ws_tx: socket.tx.clone(),
        connected: conn_tx,
        counters,
        epoch,
        first_video: first_video.clone(),
        video_in: video_in.clone(),
    });
    let (pc, tracks, ssrcs, sdp) = offering_peer(handler).await?;
    socket.tx.send(json!({"type":"offer","v":1,"sdp":sdp}))?;
    let answer = socket.answer().await?;
    pc.set_remote_description(RTCSessionDescription::answer(answer)?)
        .await?;
    let Socket {
        tx: ws_tx,
        rx: mut in_rx,
        close: close_ws,
        task,
    } = socket;
    let pcc = pc.clone();
    tokio::spawn(async move {
        while let Some(m) = in_rx.recv().await {
            add_candidate(&pcc, &m).await;
        }
    });
    tokio::time::timeout(Duration::from_secs(20), conn_rx.recv()).await?;
    let mut pts = [111u8, 96u8];
    for s in pc.get_senders().await {
        if let Ok(p) = s.get_parameters().await {
            for c in p.rtp_parameters.codecs {
                match c.rtp_codec.mime_type.to_lowercase().as_str() {
                    "audio/opus" => pts[0] = c.payload_type,
                    "video/vp8" => pts[1] = c.payload_type,
                    _ => {}
                }
            }
        }
    }
    Ok(Participant {
        pc,
        tracks,
        ssrcs,
        pts,
        joined_at,
        first_video,
        video_in,
        ws_out: ws_tx,
        close_ws: Some(close_ws),
        _ws_task: task,
    })
}

/// How a participant's media connection is made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failing {
    /// Its browser offers and then never reaches the relay (as behind a firewall that lets no
    /// UDP and no TCP through to it): the connection that made the offer is closed before it
    /// sends a single ICE check.
    Silent,
    /// Its offer's DTLS fingerprint is not its certificate's (tampered with on the way): ICE
    /// connects, and the relay must refuse the DTLS handshake.
    WrongFingerprint,
}

/// A participant whose media connection fails (`Failing`); its room socket stays open.
pub struct Vanished {
    socket: Socket,
    /// The connection, when it goes on trying.
    pc: Option<Arc<dyn PeerConnection>>,
}

struct Silent;

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Silent {}

/// Trickles its candidates over the room socket, and nothing else.
struct Trickle(mpsc::UnboundedSender<Value>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Trickle {
    async fn on_ice_candidate(&self, e: RTCPeerConnectionIceEvent) {
        trickle(&self.0, e);
    }
}

/// `sdp` with the first byte of each DTLS fingerprint changed.
fn wrong_fingerprint(sdp: &str) -> String {
    sdp.lines()
        .map(|l| match l.strip_prefix("a=fingerprint:") {
            Some(f) => {
                let (hash, hex) = f.split_once(' ').unwrap_or((f, ""));
                let first = if hex.starts_with("00") { "11" } else { "00" };
                format!("a=fingerprint:{hash} {first}{}", hex.get(2..).unwrap_or(""))
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n"
}

/// Opens the room socket at `url`, says hello with `token`, joins as `name`, sends a real
/// offer (`how` it fails) and waits for the relay's answer.
pub async fn offer_and_fail(
    url: &str,
    token: &str,
    name: &str,
    how: Failing,
) -> anyhow::Result<Vanished> {
    let mut socket = Socket::enter(url, token, name).await?;
    let handler: Arc<dyn PeerConnectionEventHandler> = match how {
        Failing::Silent => Arc::new(Silent),
        Failing::WrongFingerprint => Arc::new(Trickle(socket.tx.clone())),
    };
    let (pc, _, _, sdp) = offering_peer(handler).await?;
    let sdp = match how {
        Failing::Silent => {
            pc.close().await?;
            sdp
        }
        Failing::WrongFingerprint => wrong_fingerprint(&sdp),
    };
    socket.tx.send(json!({"type":"offer","v":1,"sdp":sdp}))?;
    let answer = socket.answer().await?;
    let pc = match how {
        Failing::Silent => None,
        Failing::WrongFingerprint => {
            pc.set_remote_description(RTCSessionDescription::answer(answer)?)
                .await?;
            Some(pc)
        }
    };
    Ok(Vanished { socket, pc })
}

impl Vanished {
    /// Waits up to `within` for the relay to say the media connection is in `state`; the
    /// states it said before, in order.
    pub async fn media_state(
        &mut self,
        state: &str,
        within: Duration,
    ) -> anyhow::Result<Vec<String>> {
        let deadline = Instant::now() + within;
        let mut before = Vec::new();
        loop {
            let m = tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()),
                self.socket.rx.recv(),
            )
            .await
            .map_err(|_| {
                anyhow::anyhow!("no media state {state:?} in {within:?}; before: {before:?}")
            })?
            .ok_or_else(|| anyhow::anyhow!("socket closed; media states before: {before:?}"))?;
            if let Some(pc) = &self.pc {
                add_candidate(pc, &m).await;
            }
            if m["type"] == "media_state" {
                let s = m["state"].as_str().unwrap_or("").to_string();
                if s == state {
                    return Ok(before);
                }
                before.push(s);
            }
        }
    }

    /// Closes its connection, if it has one, and the room socket with a close frame.
    pub async fn leave(self) {
        if let Some(pc) = &self.pc {
            let _ = pc.close().await;
        }
        let _ = self.socket.close.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.socket.task).await;
    }
}

/// Sends audio every 20 ms and video frames 30 times a second until `until`. The video is shaped
/// as VP8 (`video_payload`): its first frame is a keyframe `KEYFRAME_FRAMES` times a frame's
/// size, as a camera's is, so the relay keeps one per sender as it does in a browser's call.
/// A keyframe's packets are not counted (`Counters`): the relay may send a kept one again to a
/// receiver who connects later.
pub async fn send_media(
    p: Arc<Participant>,
    counters: Arc<Counters>,
    epoch: Instant,
    video_kbps: u64,
    until: Arc<Mutex<Instant>>,
) {
    let frame_bytes = (video_kbps * 1000 / 8 / 30) as usize;
    let mut seq = [rand::random::<u16>(), rand::random::<u16>()];
    let mut ts = [rand::random::<u32>(), rand::random::<u32>()];
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut n = 0u64;
    let mut frames = 0u64;
    while Instant::now() < *until.lock().unwrap() {
        tick.tick().await;
        n += 1;
        // (track, payload) of each packet, whether it ends its frame, whether it counts.
        let mut packets: Vec<(usize, Vec<u8>, bool, bool)> = Vec::new();
        let now = now_us(epoch);
        if n.is_multiple_of(2) {
            let mut audio = vec![0u8; 160];
            audio[..8].copy_from_slice(&now.to_be_bytes());
            packets.push((0, audio, true, true));
            ts[0] = ts[0].wrapping_add(960);
        }
        if n.is_multiple_of(3) {
            let key = frames == 0;
            frames += 1;
            let mut left = if key {
                frame_bytes * KEYFRAME_FRAMES
            } else {
                frame_bytes
            };
            let mut first = true;
            while left > 0 {
                let size = left.min(1100);
                left -= size;
                packets.push((1, video_payload(first, key, now, size), left == 0, !key));
                first = false;
            }
            ts[1] = ts[1].wrapping_add(3000);
        }
        for (k, payload, marker, counted) in packets {
            let pkt = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker,
                    payload_type: p.pts[k],
                    sequence_number: seq[k],
                    timestamp: ts[k],
                    ssrc: p.ssrcs[k],
                    ..Default::default()
                },
                payload: bytes::Bytes::from(payload),
            };
            seq[k] = seq[k].wrapping_add(1);
            if p.tracks[k].write_rtp(pkt).await.is_ok() && counted {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                if counters.in_window(now) {
                    counters.sent_in_window.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// How many frames' worth of bytes a synthetic keyframe has (a camera's first frame at
/// 640×480 is several times the size of the frames after it).
pub const KEYFRAME_FRAMES: usize = 5;

/// A synthetic video packet's payload, `size` bytes (at least 10), shaped as VP8 (RFC 7741): a
/// one-byte descriptor (S set on a frame's `first` packet, partition 0), then the VP8 header's
/// first byte, whose P bit is 0 on a `key` frame (`sfu::keyframe` reads both), then the send
/// time `now` (µs after the run's epoch, big-endian), then zeros. The second byte is the same
/// on every packet of a frame, so a receiver tells a keyframe's packets by it
/// (`is_keyframe_packet`).
pub fn video_payload(first: bool, key: bool, now: u64, size: usize) -> Vec<u8> {
    let mut payload = vec![0u8; size.max(10)];
    payload[0] = if first { 0x10 } else { 0x00 };
    payload[1] = if key { 0x00 } else { 0x01 };
    payload[2..10].copy_from_slice(&now.to_be_bytes());
    payload
}

/// Whether a synthetic video payload (`video_payload`) is a keyframe's.
pub fn is_keyframe_packet(payload: &[u8]) -> bool {
    payload.get(1).is_some_and(|b| b & 0x01 == 0)
}
