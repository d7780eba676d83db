//! The forwarding step: what the relay does to one RTP packet on its way from the sender's
//! connection to the receiver's.
//!
//! The two connections were negotiated separately, so a packet cannot go out as it came in:
//! its payload type is the one the *receiving* connection gave the codec, its SSRC is the one
//! of the receiver's outgoing track, its sequence number and timestamp carry on across the
//! sender's reconnections (`rewrite`), and its header extensions, negotiated per connection,
//! are left behind. This module is only that step — a packet in, a packet out or dropped —
//! with no sockets, tasks or locks, so that it can be tested on its own; `relay` reads the
//! packets, finds the other side and writes what comes out.
//!
//! Retransmissions do not pass here as such: the sending connection turns a browser's RTX
//! packet back into the original before the relay sees it, and the receiving connection's
//! NACK responder sends its own RTX with the payload type it negotiated.

use std::collections::HashMap;

use rtc::rtp::Packet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

use crate::rewrite::Rewriter;

/// What the receiving connection negotiated for the stream a packet goes out on.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The receiving connection's payload type for each codec, by MIME type in lowercase.
    pub payload_types: &'a HashMap<String, u8>,
    /// The SSRC of the receiving connection's outgoing track of the packet's kind.
    pub ssrc: u32,
}

/// Timestamp units left between a sender's old stream and its new one: one frame, 3000 at
/// 90 kHz for 30 fps video, 960 at 48 kHz for 20 ms of Opus.
pub fn frame_gap(kind: RtpCodecKind) -> u32 {
    if kind == RtpCodecKind::Video {
        3000
    } else {
        960
    }
}

/// The continuity of a new outgoing stream of `kind`: one per receiving side and kind, kept
/// for the whole call, whichever connection of the sender feeds it.
pub fn continuity(kind: RtpCodecKind) -> Rewriter {
    Rewriter::new(frame_gap(kind))
}

/// The packet as the receiving connection is to send it, or `None` when it cannot carry it:
/// that connection did not negotiate `codec`.
///
/// `codec` is the MIME type, in lowercase, of the codec the sending connection negotiated
/// for the track the packet arrived on (empty when it is not known); the packet's own payload
/// type is not consulted. `continuity` is the outgoing stream's state; a dropped packet leaves
/// it as it was.
pub fn forward(
    mut packet: Packet,
    codec: &str,
    to: &Outgoing<'_>,
    continuity: &mut Rewriter,
) -> Option<Packet> {
    let payload_type = to.payload_types.get(codec).copied()?;
    let (seq, ts) = continuity.rewrite(
        packet.header.ssrc,
        packet.header.sequence_number,
        packet.header.timestamp,
    );
    packet.header.ssrc = to.ssrc;
    packet.header.payload_type = payload_type;
    packet.header.sequence_number = seq;
    packet.header.timestamp = ts;
    // Header extensions were negotiated per leg; none are forwarded.
    packet.header.extension = false;
    packet.header.extensions.clear();
    Some(packet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::header::{Extension, EXTENSION_PROFILE_ONE_BYTE};

    const OUT_AUDIO: u32 = 0x5EED_0001;
    const OUT_VIDEO: u32 = 0x5EED_0002;

    /// The payload types a receiving browser negotiated, numbered unlike the relay's offer
    /// (Opus 111, VP8 96, RTX 97, H.264 102, RTX 103) as another browser may number them.
    fn receiver_payload_types() -> HashMap<String, u8> {
        [
            ("audio/opus", 109),
            ("video/vp8", 120),
            ("video/rtx", 124),
            ("video/h264", 126),
        ]
        .into_iter()
        .map(|(mime, pt)| (mime.to_string(), pt))
        .collect()
    }

    fn packet(ssrc: u32, payload_type: u8, seq: u16, ts: u32) -> Packet {
        let mut p = Packet::default();
        p.header.version = 2;
        p.header.ssrc = ssrc;
        p.header.payload_type = payload_type;
        p.header.sequence_number = seq;
        p.header.timestamp = ts;
        p.payload = vec![0xDE, 0xAD, 0xBE, 0xEF].into();
        p
    }

    #[test]
    fn payload_types_are_the_receiving_connections_for_each_codec() {
        let pts = receiver_payload_types();
        let audio = Outgoing {
            payload_types: &pts,
            ssrc: OUT_AUDIO,
        };
        let video = Outgoing {
            payload_types: &pts,
            ssrc: OUT_VIDEO,
        };
        let mut a = continuity(RtpCodecKind::Audio);
        let mut v = continuity(RtpCodecKind::Video);
        let opus = forward(packet(1, 111, 10, 100), "audio/opus", &audio, &mut a).unwrap();
        assert_eq!(
            (opus.header.payload_type, opus.header.ssrc),
            (109, OUT_AUDIO)
        );
        let vp8 = forward(packet(2, 96, 20, 200), "video/vp8", &video, &mut v).unwrap();
        assert_eq!((vp8.header.payload_type, vp8.header.ssrc), (120, OUT_VIDEO));
        let h264 = forward(packet(2, 102, 21, 200), "video/h264", &video, &mut v).unwrap();
        assert_eq!(
            (h264.header.payload_type, h264.header.ssrc),
            (126, OUT_VIDEO)
        );
    }

    #[test]
    fn the_tracks_codec_decides_not_the_packets_payload_type() {
        // A retransmission the sending connection recovered from RTX comes with the primary
        // payload type; whatever number the packet carries, a VP8 track's packets go out as
        // VP8, never with the receiver's RTX type (its own retransmissions use that).
        let pts = receiver_payload_types();
        let video = Outgoing {
            payload_types: &pts,
            ssrc: OUT_VIDEO,
        };
        let mut v = continuity(RtpCodecKind::Video);
        for incoming_pt in [96, 97, 103, 35] {
            let out = forward(packet(2, incoming_pt, 20, 200), "video/vp8", &video, &mut v);
            assert_eq!(
                out.unwrap().header.payload_type,
                120,
                "arrived as {incoming_pt}"
            );
        }
    }

    #[test]
    fn a_codec_the_receiver_did_not_negotiate_is_dropped_and_changes_nothing() {
        let mut pts = receiver_payload_types();
        pts.remove("video/h264");
        let video = Outgoing {
            payload_types: &pts,
            ssrc: OUT_VIDEO,
        };
        let mut v = continuity(RtpCodecKind::Video);
        assert!(forward(packet(5, 102, 500, 5000), "video/h264", &video, &mut v).is_none());
        assert!(forward(packet(5, 98, 501, 8000), "video/av1", &video, &mut v).is_none());
        // A track whose codec is not known.
        assert!(forward(packet(5, 96, 502, 8000), "", &video, &mut v).is_none());
        // Nothing before it was forwarded: the first packet that is passes as it came.
        let first = forward(packet(6, 96, 40_000, 123_456), "video/vp8", &video, &mut v).unwrap();
        assert_eq!(
            (first.header.sequence_number, first.header.timestamp),
            (40_000, 123_456)
        );
        // A connection that has not negotiated yet has no payload types at all.
        let none = HashMap::new();
        let early = Outgoing {
            payload_types: &none,
            ssrc: OUT_VIDEO,
        };
        assert!(forward(packet(6, 96, 40_001, 126_456), "video/vp8", &early, &mut v).is_none());
    }

    #[test]
    fn sequence_numbers_and_timestamps_carry_on_across_a_reconnection() {
        let pts = receiver_payload_types();
        let video = Outgoing {
            payload_types: &pts,
            ssrc: OUT_VIDEO,
        };
        let audio = Outgoing {
            payload_types: &pts,
            ssrc: OUT_AUDIO,
        };
        let (mut v, mut a) = (
            continuity(RtpCodecKind::Video),
            continuity(RtpCodecKind::Audio),
        );
        let out = |p: Option<Packet>| {
            let p = p.unwrap();
            (p.header.ssrc, p.header.sequence_number, p.header.timestamp)
        };
        assert_eq!(
            out(forward(
                packet(1, 96, 7000, 90_000),
                "video/vp8",
                &video,
                &mut v
            )),
            (OUT_VIDEO, 7000, 90_000)
        );
        assert_eq!(
            out(forward(
                packet(1, 96, 7001, 93_000),
                "video/vp8",
                &video,
                &mut v
            )),
            (OUT_VIDEO, 7001, 93_000)
        );
        assert_eq!(
            out(forward(
                packet(1, 111, 300, 48_000),
                "audio/opus",
                &audio,
                &mut a
            )),
            (OUT_AUDIO, 300, 48_000)
        );
        // The sender reloaded the page: new SSRCs, new random numbers, maybe another codec.
        // The receiver sees the same streams go on, one frame later.
        assert_eq!(
            out(forward(packet(9, 102, 12, 5), "video/h264", &video, &mut v)),
            (OUT_VIDEO, 7002, 96_000)
        );
        assert_eq!(
            out(forward(
                packet(9, 102, 13, 3005),
                "video/h264",
                &video,
                &mut v
            )),
            (OUT_VIDEO, 7003, 99_000)
        );
        assert_eq!(
            out(forward(
                packet(8, 111, 65_535, 1),
                "audio/opus",
                &audio,
                &mut a
            )),
            (OUT_AUDIO, 301, 48_960)
        );
        assert_eq!(
            out(forward(
                packet(8, 111, 0, 961),
                "audio/opus",
                &audio,
                &mut a
            )),
            (OUT_AUDIO, 302, 49_920)
        );
    }

    #[test]
    fn header_extensions_are_all_left_behind_and_the_rest_kept() {
        let pts = receiver_payload_types();
        let video = Outgoing {
            payload_types: &pts,
            ssrc: OUT_VIDEO,
        };
        let mut v = continuity(RtpCodecKind::Video);
        let mut p = packet(3, 96, 100, 1000);
        p.header.marker = true;
        p.header.csrc = vec![42];
        p.header.extension = true;
        p.header.extension_profile = EXTENSION_PROFILE_ONE_BYTE;
        // Ids the sender negotiated (transport-wide sequence number, abs-send-time, a MID)
        // whether or not the receiver did.
        for (id, value) in [(3u8, vec![0, 7]), (2, vec![1, 2, 3]), (9, b"0".to_vec())] {
            p.header.extensions.push(Extension {
                id,
                payload: value.into(),
            });
        }
        let out = forward(p, "video/vp8", &video, &mut v).unwrap();
        assert!(!out.header.extension);
        assert!(out.header.extensions.is_empty());
        assert!(out.header.marker);
        assert_eq!(out.header.csrc, vec![42]);
        assert_eq!(&out.payload[..], &[0xDE, 0xAD, 0xBE, 0xEF]);
    }

    #[test]
    fn a_stream_leaves_one_frame_between_its_sources() {
        assert_eq!(frame_gap(RtpCodecKind::Video), 3000);
        assert_eq!(frame_gap(RtpCodecKind::Audio), 960);
    }
}
