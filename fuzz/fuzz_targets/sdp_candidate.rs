//! What a browser sends the relay before any media: an SDP offer and ICE candidates. The SDP
//! parser the relay relies on (the `webrtc` crate's) and the relay's own rewriting of the
//! candidates and SDP it announces never panic on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfu::connection::Announce;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // What the relay does first with an offer.
    let _ = webrtc::peer_connection::RTCSessionDescription::offer(text.to_string());
    let announce = Announce {
        nat_ips: vec!["203.0.113.7".into()],
        udp_port: Some(40000),
        tcp_port: Some(40001),
    };
    let _ = announce.candidate(text);
    let _ = announce.sdp(text);
    let _ = Announce::default().candidate(text);
});
