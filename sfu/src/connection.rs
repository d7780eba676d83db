//! Setting up one participant's peer connection.
//!
//! Everything the relay decides about a connection before media flows lives here: the codecs it
//! offers and the interceptors it runs (`interceptors`), its ICE settings and sockets (its own,
//! or its end of the shared ports of `mux`, through `runtime`), the two outgoing tracks that
//! carry the other side's media from the start, the answer to the browser's offer, the payload
//! types that answer settled on (which `forward` needs), and how the connection's host
//! candidates are shown to browsers (`Announce`). What happens once it is up — rooms, events,
//! forwarding — is `relay`'s.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpRtxParameters, RtpCodecKind,
};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCSessionDescription, SettingEngineBuilder,
};

use crate::error::{rtc_err, Error};
use crate::mux::Mux;
use crate::runtime::RelayRuntime;

/// The kinds of a connection's two outgoing tracks, in the order of `out_tracks`.
pub(crate) const KINDS: [RtpCodecKind; 2] = [RtpCodecKind::Audio, RtpCodecKind::Video];

/// A kind's place in `KINDS`: 0 for audio, 1 for video.
pub(crate) fn kind_index(k: RtpCodecKind) -> usize {
    if k == RtpCodecKind::Video {
        1
    } else {
        0
    }
}

fn video_feedback() -> Vec<RTCPFeedback> {
    vec![
        RTCPFeedback {
            typ: "nack".into(),
            parameter: "".into(),
        },
        RTCPFeedback {
            typ: "nack".into(),
            parameter: "pli".into(),
        },
        RTCPFeedback {
            typ: "ccm".into(),
            parameter: "fir".into(),
        },
    ]
}

/// The codecs the relay offers: Opus, VP8, H.264 constrained baseline, and an RTX
/// (RFC 4588) retransmission format for each video codec: a NACKed packet is resent on the
/// stream's own RTX SSRC, and browsers' RTX is turned back into the original packet on arrival.
pub fn codecs() -> Vec<(RTCRtpCodecParameters, RtpCodecKind)> {
    let codec = |mime: &str, clock_rate, channels, fmtp: &str, fb: Vec<RTCPFeedback>, pt| {
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: mime.to_owned(),
                clock_rate,
                channels,
                sdp_fmtp_line: fmtp.to_owned(),
                rtcp_feedback: fb,
            },
            payload_type: pt,
        }
    };
    vec![
        (
            codec(
                MIME_TYPE_OPUS,
                48000,
                2,
                "minptime=10;useinbandfec=1",
                vec![],
                111,
            ),
            RtpCodecKind::Audio,
        ),
        (
            codec(MIME_TYPE_VP8, 90000, 0, "", video_feedback(), 96),
            RtpCodecKind::Video,
        ),
        (
            codec(
                MIME_TYPE_H264,
                90000,
                0,
                "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
                video_feedback(),
                102,
            ),
            RtpCodecKind::Video,
        ),
        (
            codec("video/rtx", 90000, 0, "apt=96", vec![], 97),
            RtpCodecKind::Video,
        ),
        (
            codec("video/rtx", 90000, 0, "apt=102", vec![], 103),
            RtpCodecKind::Video,
        ),
    ]
}

/// A local track of `kind` (Opus or VP8) with this SSRC; a video track retransmits on RTX with
/// the next SSRC.
pub fn out_track(kind: RtpCodecKind, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(out_track_spec(kind, ssrc)))
}

/// What `out_track` is made of, for an `rtc` connection of its own (`direct`).
pub(crate) fn out_track_spec(kind: RtpCodecKind, ssrc: u32) -> MediaStreamTrack {
    let (mime, clock, channels) = match kind {
        RtpCodecKind::Video => (MIME_TYPE_VP8, 90000, 0),
        _ => (MIME_TYPE_OPUS, 48000, 2),
    };
    MediaStreamTrack::new(
        "sportello".to_string(),
        format!("sportello-{kind}"),
        format!("sportello-{kind}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                rtx: (kind == RtpCodecKind::Video).then(|| RTCRtpRtxParameters {
                    ssrc: ssrc.wrapping_add(1),
                }),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: mime.to_owned(),
                clock_rate: clock,
                channels,
                ..Default::default()
            },
            ..Default::default()
        }],
    )
}

/// The connection's outgoing tracks, audio and video (as in `KINDS`), with random SSRCs, added
/// to `pc`; a connection that cannot take them is closed at once.
pub(crate) async fn out_tracks(
    pc: &Arc<dyn PeerConnection>,
) -> Result<([Arc<TrackLocalStaticRTP>; 2], [u32; 2]), Error> {
    let ssrcs = [rand::random::<u32>(), rand::random::<u32>()];
    let out = [out_track(KINDS[0], ssrcs[0]), out_track(KINDS[1], ssrcs[1])];
    for t in &out {
        if let Err(e) = pc.add_track(t.clone() as Arc<dyn TrackLocal>).await {
            let _ = pc.close().await;
            return Err(rtc_err(e));
        }
    }
    Ok((out, ssrcs))
}

/// A keyframe request (PLI) for the incoming video stream `media_ssrc`.
pub(crate) fn pli(media_ssrc: u32) -> Vec<Box<dyn rtc::rtcp::Packet>> {
    vec![Box::new(
        rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        },
    )]
}

/// How often the relay's ICE agent checks a candidate pair while connecting.
pub(crate) const ICE_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(25);

/// What a connection is built from, short of its event handler and its addresses.
pub(crate) struct Setup {
    media: MediaEngine,
    registry: Registry,
    settings: SettingEngineBuilder,
    runtime: RelayRuntime,
}

impl Setup {
    /// The relay's codecs and interceptors, no multicast DNS; on the shared ports (`mux`), ICE
    /// credentials of the relay's choosing and sockets through the shared ones.
    pub(crate) fn new(mux: Option<&Arc<Mux>>) -> Result<Setup, Error> {
        let mut media = MediaEngine::default();
        for (c, kind) in codecs() {
            media.register_codec(c, kind).map_err(rtc_err)?;
        }
        let registry = crate::interceptors::registry(&mut media).map_err(rtc_err)?;
        let mut settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled);
        // Connectivity checks every 25 ms rather than the crate's 200 ms (RFC 8445's Ta is 50 ms
        // for a full agent; the relay has a handful of candidates, so the checks stay few):
        // ICE completes in about 30 ms instead of 200 ms on a good network. The 60 attempts
        // keep the crate's 1.4 s before a pair is given up.
        settings = settings.with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(60));
        let mut runtime = RelayRuntime::default();
        if let Some(mux) = mux {
            // The relay names the connection's ICE username fragment, which is how the shared
            // sockets know whose a STUN request is.
            let (ufrag, pwd) = (ice_chars(16), ice_chars(32));
            runtime = RelayRuntime::shared(mux.endpoint(&ufrag));
            settings = settings.with_ice_credentials(ufrag, pwd);
        }
        Ok(Setup {
            media,
            registry,
            settings,
            runtime,
        })
    }

    /// Runs the connection on `reactor`, its room's.
    pub(crate) fn on_reactor(mut self, reactor: tokio::runtime::Handle) -> Setup {
        self.runtime = self.runtime.on_reactor(reactor);
        self
    }

    /// The switch that moves the connection's timers to the shared tick (for its handler to
    /// set while the connection is connected).
    pub(crate) fn tick_switch(&self) -> Arc<AtomicBool> {
        self.runtime.tick_switch()
    }

    /// The peer connection, its events going to `handler`, its sockets bound on `udp` and
    /// `tcp`, its drivers on `reactor_threads` dedicated reactors (0: tokio's own workers).
    pub(crate) async fn build(
        self,
        handler: Arc<dyn PeerConnectionEventHandler>,
        reactor_threads: usize,
        udp: Vec<String>,
        tcp: Vec<String>,
    ) -> Result<Arc<dyn PeerConnection>, Error> {
        let mut builder = PeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(self.media)
            .with_setting_engine(self.settings.build())
            .with_interceptor_registry(self.registry)
            .with_handler(handler)
            .with_runtime(Arc::new(self.runtime))
            .with_dedicated_reactor_pool_size(reactor_threads);
        builder = builder.with_udp_addrs(udp);
        if !tcp.is_empty() {
            builder = builder.with_tcp_addrs(tcp);
        }
        Ok(Arc::new(builder.build().await.map_err(rtc_err)?))
    }
}

/// Takes the browser's offer and answers it. A connection that cannot is closed at once, never
/// left behind.
pub(crate) async fn negotiate(
    pc: &Arc<dyn PeerConnection>,
    offer: RTCSessionDescription,
) -> Result<RTCSessionDescription, Error> {
    if let Err(e) = pc.set_remote_description(offer).await {
        let _ = pc.close().await;
        return Err(Error::BadSdp(e.to_string()));
    }
    match answer(pc).await {
        Ok(l) => Ok(l),
        Err(e) => {
            let _ = pc.close().await;
            Err(e)
        }
    }
}

async fn answer(pc: &Arc<dyn PeerConnection>) -> Result<RTCSessionDescription, Error> {
    let answer = pc.create_answer(None).await.map_err(rtc_err)?;
    pc.set_local_description(answer).await.map_err(rtc_err)?;
    pc.local_description()
        .await
        .ok_or_else(|| rtc_err("no local description"))
}

/// The payload types the connection negotiated, by codec MIME type in lowercase (the first
/// one of each codec), to rewrite the packets forwarded to it.
pub(crate) async fn payload_types(pc: &Arc<dyn PeerConnection>) -> HashMap<String, u8> {
    let mut pts = HashMap::new();
    for sender in pc.get_senders().await {
        if let Ok(p) = sender.get_parameters().await {
            for c in p.rtp_parameters.codecs {
                pts.entry(c.rtp_codec.mime_type.to_lowercase())
                    .or_insert(c.payload_type);
            }
        }
    }
    pts
}

/// How host candidates are shown to browsers.
#[derive(Debug, Clone, Default)]
pub struct Announce {
    /// Behind 1:1 NAT: the public address instead of the private one (the crate's own NAT
    /// setting has no effect in 0.21.1).
    pub nat_ips: Vec<String>,
    /// The shared UDP port, instead of the ephemeral one the connection believes it has.
    pub udp_port: Option<u16>,
    /// The shared ICE-TCP port, for passive candidates.
    pub tcp_port: Option<u16>,
}

impl Announce {
    /// The candidate as browsers should see it.
    pub fn candidate(&self, candidate: &str) -> String {
        // candidate:<foundation> <component> <transport> <priority> <address> <port> typ host ...
        let mut parts: Vec<String> = candidate.split(' ').map(str::to_string).collect();
        if parts.len() > 7 && parts[6] == "typ" && parts[7] == "host" {
            if let Some(public) = self.nat_ips.first() {
                parts[4] = public.clone();
            }
            let passive = parts
                .windows(2)
                .any(|w| w[0] == "tcptype" && w[1] == "passive");
            let port = match parts[2].to_ascii_lowercase().as_str() {
                "udp" => self.udp_port,
                "tcp" if passive => self.tcp_port,
                _ => None,
            };
            if let Some(port) = port {
                parts[5] = port.to_string();
            }
        }
        parts.join(" ")
    }

    /// The session description with its `a=candidate` lines announced the same way.
    pub fn sdp(&self, sdp: &str) -> String {
        sdp.split_inclusive('\n')
            .map(|line| match line.strip_prefix("a=") {
                Some(rest) if rest.starts_with("candidate:") => {
                    let end = rest.trim_end_matches(['\r', '\n']);
                    format!("a={}{}", self.candidate(end), &rest[end.len()..])
                }
                _ => line.to_string(),
            })
            .collect()
    }
}

/// What the relay asks browsers to start sending video at, in kbit/s, before their bandwidth
/// estimate has anything to go on. At Chromium's own default (300 kbit/s) its first video packet
/// leaves ~150–175 ms after the connection is up; at 1,000 kbit/s ~60 ms (tools/joinbench.mjs,
/// the relay's log). The estimate then follows the network as usual.
pub const START_BITRATE_KBPS: u32 = 1000;

/// The answer with `x-google-start-bitrate` on every video codec (VP8, VP9, H.264, AV1; not
/// RTX): appended to the codec's `a=fmtp` line, or a new one right after its `a=rtpmap`.
/// Browsers other than Chromium's ignore the parameter.
pub fn with_start_bitrate(sdp: &str, kbps: u32) -> String {
    let param = format!("x-google-start-bitrate={kbps}");
    let video_pts: Vec<&str> = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, codec)| {
            let name = codec.split('/').next().unwrap_or("").to_ascii_uppercase();
            matches!(name.as_str(), "VP8" | "VP9" | "H264" | "AV1") && codec.contains("/90000")
        })
        .map(|(pt, _)| pt)
        .collect();
    let has_fmtp = |pt: &str| {
        sdp.lines().any(|l| {
            l.strip_prefix("a=fmtp:")
                .and_then(|r| r.split_once(' '))
                .is_some_and(|(p, _)| p == pt)
        })
    };
    let mut out = String::with_capacity(sdp.len() + video_pts.len() * 40);
    for line in sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let eol = &line[body.len()..];
        if let Some((pt, params)) = body.strip_prefix("a=fmtp:").and_then(|r| r.split_once(' ')) {
            if video_pts.contains(&pt) {
                out.push_str(&format!("a=fmtp:{pt} {params};{param}{eol}"));
                continue;
            }
        }
        out.push_str(line);
        if let Some((pt, _)) = body
            .strip_prefix("a=rtpmap:")
            .and_then(|r| r.split_once(' '))
        {
            if video_pts.contains(&pt) && !has_fmtp(pt) {
                out.push_str(&format!("a=fmtp:{pt} {param}{eol}"));
            }
        }
    }
    out
}

/// Random ICE characters (RFC 8445's ice-char, here letters and digits).
pub(crate) fn ice_chars(n: usize) -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behind_nat_host_candidates_announce_the_public_address() {
        let nat = Announce {
            nat_ips: vec!["203.0.113.7".into()],
            ..Default::default()
        };
        let c = "candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host";
        assert_eq!(Announce::default().candidate(c), c);
        assert_eq!(
            nat.candidate(c),
            "candidate:1 1 udp 2130706431 203.0.113.7 50000 typ host"
        );
        let tcp = "candidate:2 1 tcp 1671430143 10.0.0.5 3478 typ host tcptype passive";
        assert!(nat
            .candidate(tcp)
            .contains(" 203.0.113.7 3478 typ host tcptype passive"));
        let srflx = "candidate:3 1 udp 1 198.51.100.1 4000 typ srflx raddr 10.0.0.5 rport 4000";
        assert_eq!(nat.candidate(srflx), srflx);
    }

    #[test]
    fn on_shared_ports_host_candidates_announce_them() {
        let shared = Announce {
            udp_port: Some(3478),
            tcp_port: Some(3479),
            ..Default::default()
        };
        assert_eq!(
            shared.candidate("candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host"),
            "candidate:1 1 udp 2130706431 10.0.0.5 3478 typ host"
        );
        assert_eq!(
            shared
                .candidate("candidate:2 1 tcp 1671430143 10.0.0.5 41000 typ host tcptype passive"),
            "candidate:2 1 tcp 1671430143 10.0.0.5 3479 typ host tcptype passive"
        );
        // Active TCP candidates (port 9) have no listening port to announce.
        let active = "candidate:3 1 tcp 1 10.0.0.5 9 typ host tcptype active";
        assert_eq!(shared.candidate(active), active);
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 10.0.0.5 50000 typ host\r\na=end-of-candidates\r\n";
        assert_eq!(
            shared.sdp(sdp),
            "v=0\r\na=candidate:1 1 udp 2130706431 10.0.0.5 3478 typ host\r\na=end-of-candidates\r\n"
        );
    }

    #[test]
    fn video_codecs_get_a_start_bitrate_and_nothing_else_changes() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97 102\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n";
        assert_eq!(
            with_start_bitrate(sdp, 1000),
            "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97 102\r\na=rtpmap:96 VP8/90000\r\na=fmtp:96 x-google-start-bitrate=1000\r\na=rtcp-fb:96 nack\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f;x-google-start-bitrate=1000\r\n"
        );
        // No video: nothing to add.
        let audio = "v=0\r\na=rtpmap:111 opus/48000/2\r\n";
        assert_eq!(with_start_bitrate(audio, 1000), audio);
    }
}
