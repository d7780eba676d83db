//! A sender's last keyframe, kept so that a receiver who connects after the sender's video
//! started sees a picture at once, instead of nothing until the keyframe it asks for arrives.
//!
//! When both people open the room at the same moment, one connection is often up before the
//! other; its camera's first frame (a keyframe) reaches the relay when the other side cannot
//! take it yet. The relay then asks the sender for another keyframe when the other side
//! connects, and that side waits for it: the request's way to the browser, the camera's next
//! frame, its encoding. On two busy cores that was 60–110 ms (`joinbench --steps`). The kept
//! keyframe goes to the receiver the moment it connects, and the fresh one follows as before;
//! a keyframe still arriving then goes as far as it came, and its rest follows live.
//!
//! The kept keyframe is renumbered to sit just behind the live stream: its sequence numbers end
//! one before the last packet the sender sent, and its timestamp is one tick before that
//! packet's. The receiver's jitter buffer then times it as the current picture, and the live
//! frames after it stay undecodable until the fresh keyframe, as they should: the one number
//! left out (the sender's last packet, never sent to this receiver) breaks the sequence that an
//! H.264 receiver follows, and a VP8 receiver sees the missing picture ids. Nothing is decoded
//! against a picture it does not have.
//!
//! Only a whole keyframe is kept: its packets in order, without a gap, up to the one with the
//! marker bit, at most `MAX_PACKETS` packets and `MAX_BYTES` bytes. One older than `MAX_AGE`
//! is not sent: a picture from minutes ago (a long call, a screen shared and stopped) is not
//! the person now. Pure: packets and `now` in,
//! packets out, no sockets or clocks; both engines keep one per incoming video track.

use std::time::{Duration, Instant};

use rtc::rtp::Packet;

use crate::rewrite::seq_after;

/// The most packets a kept keyframe may have (a 1280×720 keyframe is ~60–120).
pub const MAX_PACKETS: usize = 400;
/// The most payload bytes a kept keyframe may have.
pub const MAX_BYTES: usize = 512 * 1024;
/// How old a kept keyframe may be and still be sent.
pub const MAX_AGE: Duration = Duration::from_secs(5);

/// Whether an RTP payload of `codec` (a MIME type in lowercase) starts a keyframe: VP8 (RFC
/// 7741: the start of partition 0 of a frame whose payload header says key frame) or H.264
/// (RFC 6184: an SPS or an IDR slice, alone, in a STAP-A, or at the start of an FU-A).
pub fn starts_keyframe(codec: &str, payload: &[u8]) -> bool {
    match codec {
        "video/vp8" => vp8_keyframe_start(payload),
        "video/h264" => h264_keyframe_start(payload),
        _ => false,
    }
}

fn vp8_keyframe_start(p: &[u8]) -> bool {
    let Some(&first) = p.first() else {
        return false;
    };
    // S (start of a partition) set, partition index 0.
    if first & 0x10 == 0 || first & 0x07 != 0 {
        return false;
    }
    let mut at = 1;
    if first & 0x80 != 0 {
        let Some(&x) = p.get(1) else {
            return false;
        };
        at = 2;
        if x & 0x80 != 0 {
            // The picture id: 15 bits when its first bit is set, else 7.
            let Some(&id) = p.get(at) else {
                return false;
            };
            at += if id & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            at += 1; // TID, Y, KEYIDX
        }
    }
    // The VP8 payload header's P bit: 0 for a key frame.
    p.get(at).is_some_and(|h| h & 0x01 == 0)
}

fn h264_keyframe_start(p: &[u8]) -> bool {
    let is_key = |nal: u8| matches!(nal & 0x1f, 5 | 7);
    let Some(&first) = p.first() else {
        return false;
    };
    match first & 0x1f {
        5 | 7 => true,
        24 => {
            // STAP-A: NAL units, each after its 16-bit size.
            let mut at = 1;
            while at + 2 < p.len() {
                if is_key(p[at + 2]) {
                    return true;
                }
                at += 2 + usize::from(u16::from_be_bytes([p[at], p[at + 1]]));
            }
            false
        }
        // FU-A: the start of a fragmented IDR slice (or SPS).
        28 => p.get(1).is_some_and(|fu| fu & 0x80 != 0 && is_key(*fu)),
        _ => false,
    }
}

/// One incoming video track's last whole keyframe, and where its live stream is.
#[derive(Debug, Default)]
pub struct LastKeyframe {
    kept: Vec<Packet>,
    kept_at: Option<Instant>,
    /// The keyframe whose packets are arriving, with its payload bytes so far.
    building: Vec<Packet>,
    building_bytes: usize,
    /// The newest packet's sequence number and timestamp.
    latest: Option<(u16, u32)>,
}

impl LastKeyframe {
    /// Takes note of a packet of the track (after SRTP, as the sender sent it), whose codec is
    /// `codec`. Older packets than the newest (reordered, or retransmitted and recovered) change
    /// nothing: a keyframe with a gap is not kept.
    pub fn observe(&mut self, packet: &Packet, codec: &str, now: Instant) {
        let (seq, ts) = (packet.header.sequence_number, packet.header.timestamp);
        if self.latest.is_some_and(|(last, _)| !seq_after(seq, last)) {
            return;
        }
        self.latest = Some((seq, ts));
        let building_ts = self.building.first().map(|p| p.header.timestamp);
        if building_ts != Some(ts) && starts_keyframe(codec, &packet.payload) {
            self.building.clear();
            self.building_bytes = 0;
        } else if building_ts != Some(ts)
            || self
                .building
                .last()
                .is_some_and(|p| p.header.sequence_number.wrapping_add(1) != seq)
        {
            // Not a keyframe, a new frame before the keyframe's end, or a gap in it.
            self.building.clear();
            self.building_bytes = 0;
            return;
        }
        self.building_bytes += packet.payload.len();
        if self.building.len() == MAX_PACKETS || self.building_bytes > MAX_BYTES {
            self.building.clear();
            self.building_bytes = 0;
            return;
        }
        self.building.push(packet.clone());
        if packet.header.marker {
            self.kept = std::mem::take(&mut self.building);
            self.building_bytes = 0;
            self.kept_at = Some(now);
        }
    }

    /// What a receiver that has had nothing of this track yet is sent: a keyframe arriving now,
    /// as far as it came (the rest follows live); else the kept keyframe, renumbered to end
    /// just behind the live stream (the module's doc); `None` when there is neither, or the
    /// kept one is older than `MAX_AGE`.
    pub fn replay(&self, now: Instant) -> Option<Vec<Packet>> {
        let (latest_seq, latest_ts) = self.latest?;
        if self
            .building
            .last()
            .is_some_and(|p| p.header.sequence_number == latest_seq)
        {
            return Some(self.building.clone());
        }
        let at = self.kept_at?;
        if now.saturating_duration_since(at) > MAX_AGE {
            return None;
        }
        let last = self.kept.last()?;
        if last.header.sequence_number == latest_seq {
            // It is the newest frame: the live stream goes on right after it.
            return Some(self.kept.clone());
        }
        let n = self.kept.len() as u16;
        let first = latest_seq.wrapping_sub(n);
        let ts = latest_ts.wrapping_sub(1);
        Some(
            self.kept
                .iter()
                .zip(0u16..)
                .map(|(p, i)| {
                    let mut p = p.clone();
                    p.header.sequence_number = first.wrapping_add(i);
                    p.header.timestamp = ts;
                    p
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 payload: the descriptor with a 15-bit picture id, then the payload header's first
    /// byte (key frame or not) on the frame's first packet.
    fn vp8(start: bool, key: bool, picture: u16) -> Vec<u8> {
        let first = 0x80 | if start { 0x10 } else { 0 };
        let mut p = vec![first, 0x80, 0x80 | (picture >> 8) as u8, picture as u8];
        p.push(if key { 0x10 } else { 0x11 });
        p.extend_from_slice(&[0xAB; 20]);
        p
    }

    fn packet(seq: u16, ts: u32, marker: bool, payload: Vec<u8>) -> Packet {
        let mut p = Packet::default();
        p.header.version = 2;
        p.header.sequence_number = seq;
        p.header.timestamp = ts;
        p.header.marker = marker;
        p.payload = payload.into();
        p
    }

    /// A VP8 frame of `n` packets from `seq` at `ts`.
    fn frame(seq: u16, ts: u32, n: u16, key: bool, picture: u16) -> Vec<Packet> {
        (0..n)
            .map(|i| {
                packet(
                    seq.wrapping_add(i),
                    ts,
                    i + 1 == n,
                    vp8(i == 0, key, picture),
                )
            })
            .collect()
    }

    #[test]
    fn keyframe_starts_are_read_for_vp8_and_h264() {
        assert!(starts_keyframe("video/vp8", &vp8(true, true, 7)));
        assert!(!starts_keyframe("video/vp8", &vp8(true, false, 7)));
        assert!(!starts_keyframe("video/vp8", &vp8(false, true, 7)));
        // The shortest descriptor: one byte, then the payload header.
        assert!(starts_keyframe("video/vp8", &[0x10, 0x10]));
        // A 7-bit picture id, TL0PICIDX and TID.
        assert!(starts_keyframe(
            "video/vp8",
            &[0x90, 0xE0, 0x05, 0x02, 0x20, 0x10]
        ));
        assert!(!starts_keyframe(
            "video/vp8",
            &[0x90, 0xE0, 0x05, 0x02, 0x20]
        ));
        // SPS alone, an IDR slice alone, STAP-A of SPS and PPS, FU-A of an IDR (start, not the rest).
        assert!(starts_keyframe("video/h264", &[0x67, 0x42]));
        assert!(starts_keyframe("video/h264", &[0x65, 0x88]));
        assert!(starts_keyframe(
            "video/h264",
            &[0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE]
        ));
        assert!(starts_keyframe("video/h264", &[0x7C, 0x85, 0x88]));
        assert!(!starts_keyframe("video/h264", &[0x7C, 0x05, 0x88]));
        // A delta slice, alone and fragmented, and a STAP-A without SPS or IDR.
        assert!(!starts_keyframe("video/h264", &[0x41, 0x9A]));
        assert!(!starts_keyframe("video/h264", &[0x5C, 0x81, 0x9A]));
        assert!(!starts_keyframe(
            "video/h264",
            &[0x18, 0x00, 0x02, 0x68, 0xCE, 0x00, 0x02, 0x06, 0x05]
        ));
        // Short, empty and hostile payloads, and other codecs.
        for junk in [&[][..], &[0x80], &[0x90, 0x80], &[0x18, 0xFF, 0xFF]] {
            assert!(!starts_keyframe("video/vp8", junk));
            assert!(!starts_keyframe("video/h264", junk));
        }
        // A STAP-A whose sizes run past its end.
        assert!(!starts_keyframe("video/h264", &[0x18, 0x00]));
        assert!(!starts_keyframe(
            "video/h264",
            &[0x18, 0xFF, 0xFF, 0x41, 0x00, 0x01]
        ));
        assert!(!starts_keyframe("video/vp9", &vp8(true, true, 7)));
        assert!(!starts_keyframe("audio/opus", &[0x67]));
    }

    #[test]
    fn a_whole_keyframe_goes_out_renumbered_just_behind_the_live_stream() {
        let t0 = Instant::now();
        let mut k = LastKeyframe::default();
        assert!(k.replay(t0).is_none(), "nothing yet");
        let key = frame(65_534, 1000, 3, true, 100);
        for p in &key {
            k.observe(p, "video/vp8", t0);
        }
        // Still the newest frame: as it came.
        let out = k.replay(t0).unwrap();
        assert_eq!(
            out.iter()
                .map(|p| p.header.sequence_number)
                .collect::<Vec<_>>(),
            vec![65_534, 65_535, 0]
        );
        // Two delta frames later: it ends one before the newest packet, one tick before it.
        for (i, p) in frame(1, 4000, 2, false, 101)
            .into_iter()
            .chain(frame(3, 7000, 1, false, 102))
            .enumerate()
        {
            k.observe(&p, "video/vp8", t0 + Duration::from_millis(i as u64));
        }
        let out = k.replay(t0 + Duration::from_millis(100)).unwrap();
        let numbers: Vec<_> = out
            .iter()
            .map(|p| (p.header.sequence_number, p.header.timestamp))
            .collect();
        assert_eq!(numbers, vec![(0, 6999), (1, 6999), (2, 6999)]);
        // The payloads and the marker are the keyframe's.
        for (a, b) in out.iter().zip(&key) {
            assert_eq!(a.payload, b.payload);
            assert_eq!(a.header.marker, b.header.marker);
        }
        // Too old to be the person now.
        assert!(k.replay(t0 + MAX_AGE + Duration::from_millis(1)).is_none());
    }

    #[test]
    fn a_keyframe_still_arriving_goes_out_as_far_as_it_came() {
        let t0 = Instant::now();
        let mut k = LastKeyframe::default();
        for p in frame(10, 1000, 2, true, 1) {
            k.observe(&p, "video/vp8", t0);
        }
        let arriving = frame(12, 4000, 3, true, 2);
        k.observe(&arriving[0], "video/vp8", t0);
        k.observe(&arriving[1], "video/vp8", t0);
        let out = k.replay(t0).unwrap();
        assert_eq!(out.len(), 2);
        for (a, b) in out.iter().zip(&arriving) {
            assert_eq!(
                (a.header.sequence_number, a.header.timestamp, &a.payload),
                (b.header.sequence_number, b.header.timestamp, &b.payload)
            );
        }
        // Once it is whole, it is the kept one.
        k.observe(&arriving[2], "video/vp8", t0);
        assert_eq!(k.replay(t0).unwrap().len(), 3);
    }

    #[test]
    fn a_keyframe_with_a_gap_or_cut_short_is_not_kept_and_the_last_whole_one_stays() {
        let t0 = Instant::now();
        let mut k = LastKeyframe::default();
        for p in frame(10, 1000, 2, true, 1) {
            k.observe(&p, "video/vp8", t0);
        }
        // A later keyframe loses its middle packet; its retransmission comes late.
        let lossy = frame(12, 4000, 3, true, 2);
        k.observe(&lossy[0], "video/vp8", t0);
        k.observe(&lossy[2], "video/vp8", t0);
        k.observe(&lossy[1], "video/vp8", t0);
        // One whose end never comes: a new frame starts.
        let cut = frame(15, 7000, 3, true, 3);
        k.observe(&cut[0], "video/vp8", t0);
        k.observe(&cut[1], "video/vp8", t0);
        for p in frame(18, 10_000, 1, false, 4) {
            k.observe(&p, "video/vp8", t0);
        }
        let out = k.replay(t0).unwrap();
        assert_eq!(out.len(), 2, "the first keyframe");
        assert_eq!(out[0].payload, frame(10, 1000, 2, true, 1)[0].payload);
        assert_eq!(
            (out[1].header.sequence_number, out[1].header.timestamp),
            (17, 9999)
        );
    }

    #[test]
    fn a_keyframe_past_the_limits_is_not_kept() {
        let t0 = Instant::now();
        let mut k = LastKeyframe::default();
        let n = MAX_PACKETS as u16 + 1;
        for p in frame(0, 1000, n, true, 1) {
            k.observe(&p, "video/vp8", t0);
        }
        assert!(k.replay(t0).is_none(), "{n} packets");
        let big = vec![0x10; MAX_BYTES / 2 + 1];
        k.observe(&packet(n, 2000, false, big.clone()), "video/vp8", t0);
        k.observe(&packet(n + 1, 2000, true, big), "video/vp8", t0);
        assert!(k.replay(t0).is_none(), "more than {MAX_BYTES} bytes");
        // A codec it cannot read keeps nothing.
        let mut other = LastKeyframe::default();
        for p in frame(0, 1000, 2, true, 1) {
            other.observe(&p, "video/vp9", t0);
        }
        assert!(other.replay(t0).is_none());
    }
}
