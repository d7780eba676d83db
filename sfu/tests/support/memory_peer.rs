//! `rtc` peer connections for in-memory tests and benchmarks (no sockets): a connection with the
//! relay's codecs, the relay's interceptors when asked, and one host candidate at a made-up
//! address; a video track; an offer and its answer; a datagram handed over. Shared by
//! `tests/media_after_handshake.rs` and `benches/rtc_floor.rs` (`#[path]`).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters};
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

/// A connection with the relay's codecs (and its interceptors when `interceptors`) whose one
/// candidate is a host candidate at `addr`.
pub fn connection(addr: SocketAddr, interceptors: bool, now: Instant) -> RTCPeerConnection {
    let mut media = MediaEngine::default();
    for (codec, kind) in sfu::relay::codecs() {
        media.register_codec(codec, kind).unwrap();
    }
    let mut builder = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(SettingEngineBuilder::new().build());
    if interceptors {
        let registry = sfu::interceptors::registry(&mut media).unwrap();
        builder = builder.with_interceptor_registry(registry);
    }
    let mut pc = builder.with_media_engine(media).build(now).unwrap();
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .unwrap();
    pc.add_local_candidate(RTCIceCandidate::from(&candidate).to_json().unwrap())
        .unwrap();
    pc
}

/// A VP8 video track with SSRC `ssrc` on `pc`; its sender.
pub fn video_track(pc: &mut RTCPeerConnection, ssrc: u32) -> RTCRtpSenderId {
    let vp8 = sfu::relay::codecs()
        .into_iter()
        .find(|(c, k)| *k == RtpCodecKind::Video && c.rtp_codec.mime_type == "video/VP8")
        .unwrap()
        .0;
    let track = MediaStreamTrack::new(
        format!("stream-{ssrc}"),
        format!("video-{ssrc}"),
        format!("video-{ssrc}"),
        RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: vp8.rtp_codec,
            ..Default::default()
        }],
    );
    pc.add_track(track).unwrap()
}

/// Offer from `offerer`, answer from `answerer`, both set; the answer's SDP.
pub fn negotiate(
    offerer: &mut RTCPeerConnection,
    answerer: &mut RTCPeerConnection,
    now: Instant,
) -> String {
    let offer = offerer.create_offer(None).unwrap();
    offerer.set_local_description(now, offer.clone()).unwrap();
    answerer.set_remote_description(now, offer).unwrap();
    let answer = answerer.create_answer(None).unwrap();
    answerer.set_local_description(now, answer.clone()).unwrap();
    let sdp = answer.sdp.clone();
    offerer.set_remote_description(now, answer).unwrap();
    sdp
}

/// The payload type `pc`'s `sender` negotiated for VP8.
pub fn payload_type(pc: &mut RTCPeerConnection, sender: RTCRtpSenderId) -> u8 {
    pc.rtp_sender(sender)
        .unwrap()
        .get_parameters()
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type == "video/VP8")
        .unwrap()
        .payload_type
}

/// Hands `pc` (at `to`) a UDP datagram from `from`.
pub fn deliver(
    pc: &mut RTCPeerConnection,
    to: SocketAddr,
    from: SocketAddr,
    message: BytesMut,
    now: Instant,
) {
    let _ = pc.handle_read(TaggedBytesMut {
        now,
        transport: TransportContext {
            local_addr: to,
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message,
    });
}
