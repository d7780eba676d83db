//! The relay's DTLS handshake starts the moment ICE has a pair: the second change in
//! `vendor/rtc` (`PATCH.md`).
//!
//! The relay answers every browser's offer as the DTLS client. As published, rtc 0.21.1 made its
//! ClientHello when ICE selected a pair but sent it only at the pipeline's next timeout, some
//! handler's timer later (23–26 ms on the relay's port during `tools/joinbench.mjs`). Here two
//! in-memory `rtc` connections (no sockets) connect, the relay's side driven by the browser's
//! datagrams alone until it has sent its ClientHello: it is given no timeout before, so the
//! ClientHello must leave in answer to a datagram (the browser's answer to its ICE check).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

#[path = "support/memory_peer.rs"]
mod memory_peer;
use memory_peer::connection;

/// Whether a datagram is a DTLS record of a ClientHello (content type 22, handshake type 1).
fn is_client_hello(datagram: &[u8]) -> bool {
    datagram.len() > 13 && datagram[0] == 22 && datagram[13] == 1
}

/// Takes what `pc` has: its datagrams, from `from`, into `flight`; whether an event said it is
/// connected.
fn take(
    pc: &mut RTCPeerConnection,
    from: SocketAddr,
    flight: &mut VecDeque<(SocketAddr, SocketAddr, BytesMut)>,
) -> bool {
    let mut connected = false;
    while let Some(e) = pc.poll_event() {
        if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = e {
            connected |= s == RTCPeerConnectionState::Connected;
        }
    }
    while let Some(d) = pc.poll_write() {
        flight.push_back((d.transport.peer_addr, from, d.message));
    }
    connected
}

#[test]
fn the_relay_sends_its_client_hello_as_soon_as_ice_has_a_pair_without_a_timer() {
    let browser_addr: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let relay_addr: SocketAddr = "10.0.0.2:47000".parse().unwrap();
    let start = Instant::now();
    let mut browser = connection(browser_addr, false, start);
    let mut relay = connection(relay_addr, false, start);
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        browser
            .add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .unwrap();
    }
    let offer = browser.create_offer(None).unwrap();
    browser.set_local_description(start, offer.clone()).unwrap();
    relay.set_remote_description(start, offer).unwrap();
    let answer = relay.create_answer(None).unwrap();
    assert!(
        answer.sdp.contains("a=setup:active"),
        "the relay answers as the DTLS client"
    );
    relay.set_local_description(start, answer.clone()).unwrap();
    browser.set_remote_description(start, answer).unwrap();

    // A made-up clock, 1 ms a round: the browser's timers run, the relay's not until it has
    // sent its ClientHello.
    let mut now = start;
    let mut flight = VecDeque::new();
    let (mut browser_up, mut relay_up, mut hello) = (false, false, false);
    for _ in 0..2_000 {
        if browser_up && relay_up {
            break;
        }
        now += Duration::from_millis(1);
        if browser.poll_timeout().is_some_and(|due| due <= now) {
            browser.handle_timeout(now).unwrap();
        }
        // After its ClientHello, the relay's own timers run too (its retransmissions, should
        // the browser's side have dropped a flight).
        if hello && relay.poll_timeout().is_some_and(|due| due <= now) {
            relay.handle_timeout(now).unwrap();
        }
        browser_up |= take(&mut browser, browser_addr, &mut flight);
        relay_up |= take(&mut relay, relay_addr, &mut flight);
        while let Some((to, from, message)) = flight.pop_front() {
            hello |= from == relay_addr && is_client_hello(&message);
            let pc = if to == relay_addr {
                &mut relay
            } else {
                &mut browser
            };
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
            browser_up |= take(&mut browser, browser_addr, &mut flight);
            relay_up |= take(&mut relay, relay_addr, &mut flight);
        }
    }
    assert!(hello, "the relay sent no ClientHello without a timer");
    assert!(
        browser_up && relay_up,
        "both connected (browser {browser_up}, relay {relay_up})"
    );
}
