//! Media that a browser sends the moment its side of the DTLS handshake is done reaches the
//! relay, even when it arrives together with the handshake's last flight: the change to
//! `vendor/rtc` described in its `PATCH.md` (the end of the handshake is passed on at once).
//!
//! The relay answers as the DTLS client, so the browser (the DTLS server) is done first, when
//! it sends its last flight, and may send media right behind it. The `webrtc` crate's driver
//! (the relay's `webrtc` engine) hands `rtc` a batch of datagrams before it asks for events. As
//! published, rtc 0.21.1 told its SRTP stage that the handshake was done only when asked for
//! events, so SRTP behind the last flight in the same batch was dropped ("remote_srtp_context
//! is not set yet"): a camera's first keyframe, sent with nobody yet in the room, was then
//! lost, and a side that connected later had none at once (`tests/tests/relay.rs` failed this
//! way on a loaded machine). Here two in-memory `rtc` connections (no sockets) connect, and the
//! browser's last flight and its first video packet reach the relay in one batch.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp;
use rtc::sansio::Protocol;

#[path = "support/memory_peer.rs"]
mod memory_peer;
use memory_peer::{connection, deliver, negotiate, payload_type, video_track};

/// Whether `pc` said it is connected, among the events it has.
fn connected(pc: &mut RTCPeerConnection) -> bool {
    let mut up = false;
    while let Some(e) = pc.poll_event() {
        if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = e {
            up |= s == RTCPeerConnectionState::Connected;
        }
    }
    up
}

#[test]
fn video_sent_right_behind_the_last_handshake_flight_reaches_the_relay() {
    let browser_addr: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let relay_addr: SocketAddr = "10.0.0.2:47000".parse().unwrap();
    let start = Instant::now();
    let mut browser = connection(browser_addr, false, start);
    let mut relay = connection(relay_addr, true, start);
    let ssrc = 0x1234_5678;
    let sender = video_track(&mut browser, ssrc);
    let answer = negotiate(&mut browser, &mut relay, start);
    assert!(
        answer.contains("a=setup:active"),
        "the relay answers as the DTLS client"
    );
    let pt = payload_type(&mut browser, sender);

    // Rounds on a made-up clock, 1 ms each, as the `webrtc` crate's driver goes: each side's
    // datagrams are handed over as one batch, and only then are its events and reads taken.
    let mut now = start;
    let mut flight: VecDeque<(SocketAddr, SocketAddr, BytesMut)> = VecDeque::new();
    let (mut sent, mut relay_up) = (false, false);
    let mut got = Vec::new();
    for _ in 0..2_000 {
        if !got.is_empty() {
            break;
        }
        now += Duration::from_millis(1);
        for (pc, addr) in [(&mut browser, browser_addr), (&mut relay, relay_addr)] {
            if pc.poll_timeout().is_some_and(|due| due <= now) {
                pc.handle_timeout(now).unwrap();
            }
            while let Some(d) = pc.poll_write() {
                flight.push_back((d.transport.peer_addr, addr, d.message));
            }
        }
        while let Some((to, from, message)) = flight.pop_front() {
            let pc = if to == relay_addr {
                &mut relay
            } else {
                &mut browser
            };
            deliver(pc, to, from, message, now);
        }
        relay_up |= connected(&mut relay);
        while let Some(TaggedRTCMessage { message, .. }) = relay.poll_read() {
            if let RTCMessage::RtpPacket(_, p) = message {
                got.push(p);
            }
        }
        // The browser's handshake is done: its first video packet goes at once, to leave in
        // the same batch as its last flight.
        if connected(&mut browser) && !sent {
            assert!(!relay_up, "the relay was done first: nothing shows here");
            let packet = rtp::packet::Packet {
                header: rtp::header::Header {
                    version: 2,
                    marker: true,
                    payload_type: pt,
                    sequence_number: 1,
                    timestamp: 90_000,
                    ssrc,
                    ..Default::default()
                },
                payload: Bytes::from_static(&[0x10, 0x00, 0x9d, 0x01, 0x2a]),
            };
            browser
                .rtp_sender(sender)
                .unwrap()
                .write_rtp(now, packet)
                .unwrap();
            sent = true;
        }
    }
    assert!(sent, "the browser never connected");
    assert!(relay_up, "the relay never connected");
    assert_eq!(got.len(), 1, "the relay read the browser's first packet");
    assert_eq!(got[0].header.sequence_number, 1);
    assert_eq!(&got[0].payload[..], &[0x10, 0x00, 0x9d, 0x01, 0x2a]);
}
