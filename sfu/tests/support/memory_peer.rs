//! An `rtc` peer connection for in-memory tests and benchmarks (no sockets): the relay's codecs,
//! the relay's interceptors when asked, and one host candidate at a made-up address. Shared by
//! `tests/dtls_start.rs` and `benches/rtc_floor.rs` (`#[path]`).

use std::net::SocketAddr;
use std::time::Instant;

use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};

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
