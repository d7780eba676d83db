//! The relay's added latency as seen on the wire: from a capture (pcap, as `tcpdump -w` writes
//! it) of the relay's media port, the time between an RTP packet reaching the port and the
//! packet the relay forwarded from it leaving the port. Both are the kernel's timestamps, so the
//! participants' own scheduling (which `mediaload`'s end-to-end figure includes) is not in it.
//!
//! A forwarded packet is found by its RTP sequence number and timestamp, which the relay keeps
//! for a sender's first stream (`sfu::rewrite`); its SSRC and payload type change. The headers
//! of SRTP are in the clear. A datagram the relay sent with UDP GSO (several packets to one
//! person in one message) is captured as one datagram: it is cut back into its packets.
//!
//! Pure: bytes in, figures out (`mediaload --wire-seconds` runs tcpdump).

use std::collections::HashMap;

/// One RTP packet on the wire: when, which way, and what identifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub at_ns: u64,
    /// To the relay's port (true) or from it.
    pub inbound: bool,
    /// The other end's port: the sender's or the receiver's.
    pub peer: u16,
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
}

/// What a capture held.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Latency {
    /// RTP packets that reached the relay's port.
    pub inbound: usize,
    /// RTP packets that left it.
    pub outbound: usize,
    /// Outbound packets that had already left once (sent again from the relay's history).
    pub repeats: usize,
    /// Outbound packets matched with the inbound packet they were forwarded from, and the time
    /// between the two, in nanoseconds, sorted.
    pub added_ns: Vec<u64>,
}

impl Latency {
    /// The `q` quantile (0–1) of the added latency, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.added_ns.is_empty() {
            return None;
        }
        let i = ((self.added_ns.len() - 1) as f64 * q).round() as usize;
        Some(self.added_ns[i] as f64 / 1e6)
    }
}

/// Reads a pcap file's records (microsecond or nanosecond timestamps, either byte order) on
/// Ethernet, Linux cooked (v1, v2), BSD loopback or raw IP links, and returns the RTP packets
/// of the UDP datagrams to and from `port` over IPv4, GSO datagrams cut into their packets.
pub fn rtp_packets(pcap: &[u8], port: u16) -> Result<Vec<Seen>, String> {
    if pcap.len() < 24 {
        return Err("not a pcap file: shorter than its header".into());
    }
    let magic = u32::from_le_bytes(pcap[0..4].try_into().unwrap());
    let (le, nanos) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        _ => return Err(format!("not a pcap file (magic {magic:#010x})")),
    };
    let u32_at = |b: &[u8], i: usize| {
        let a: [u8; 4] = b[i..i + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let link = u32_at(pcap, 20) & 0x0fff_ffff;
    let link_header = match link {
        1 => 14,        // Ethernet
        113 => 16,      // Linux cooked v1
        276 => 20,      // Linux cooked v2
        0 | 108 => 4,   // BSD loopback
        101 | 228 => 0, // raw IP, raw IPv4
        other => return Err(format!("pcap link type {other} is not read here")),
    };
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= pcap.len() {
        let secs = u32_at(pcap, i) as u64;
        let frac = u32_at(pcap, i + 4) as u64;
        let caplen = u32_at(pcap, i + 8) as usize;
        let data = pcap
            .get(i + 16..i + 16 + caplen)
            .ok_or("a pcap record runs past the end of the file")?;
        i += 16 + caplen;
        let at_ns = secs * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        if let Some((src, dst, payload)) = udp_v4(data.get(link_header..).unwrap_or(&[])) {
            let inbound = dst == port;
            if inbound || src == port {
                for (ssrc, seq, ts) in split(payload) {
                    out.push(Seen {
                        at_ns,
                        inbound,
                        peer: if inbound { src } else { dst },
                        ssrc,
                        seq,
                        ts,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// An IPv4 packet's UDP source and destination ports and payload (as far as it was captured).
fn udp_v4(ip: &[u8]) -> Option<(u16, u16, &[u8])> {
    if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let udp = ip.get(ihl..)?;
    if udp.len() < 8 {
        return None;
    }
    let src = u16::from_be_bytes([udp[0], udp[1]]);
    let dst = u16::from_be_bytes([udp[2], udp[3]]);
    let len = usize::from(u16::from_be_bytes([udp[4], udp[5]])).max(8);
    Some((src, dst, &udp[8..len.min(udp.len())]))
}

/// An RTP header's SSRC, sequence number and timestamp; `None` for RTCP and anything else.
fn rtp_header(b: &[u8]) -> Option<(u32, u16, u32)> {
    if b.len() < 12 || b[0] >> 6 != 2 || (192..=223).contains(&b[1]) {
        return None;
    }
    Some((
        u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        u16::from_be_bytes([b[2], b[3]]),
        u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    ))
}

/// The RTP packets in one captured datagram: one, or with UDP GSO several of one size (the
/// last may be shorter). The size is where the next packet of the same stream starts.
fn split(payload: &[u8]) -> Vec<(u32, u16, u32)> {
    let Some(first) = rtp_header(payload) else {
        return Vec::new();
    };
    let (ssrc, seq, _) = first;
    let size = (12..payload.len().saturating_sub(11)).find(|&k| {
        matches!(rtp_header(&payload[k..]), Some((s, q, _)) if s == ssrc && q == seq.wrapping_add(1))
    });
    let Some(size) = size else {
        return vec![first];
    };
    payload.chunks(size).map_while(rtp_header).collect()
}

/// Matches each outbound packet with the inbound one of the same sequence number and
/// timestamp: the latest that arrived before it (within a second), so that a packet the sender
/// sent again (asked for by the relay) counts from the copy that was forwarded. A packet that
/// leaves again later (the relay resending it from its history, asked for by the receiver) is
/// a repeat, not forwarding: only its first departure to each receiver counts.
pub fn added_latency(seen: &[Seen]) -> Latency {
    let mut arrived: HashMap<(u16, u32), Vec<u64>> = HashMap::new();
    let mut lat = Latency::default();
    for s in seen.iter().filter(|s| s.inbound) {
        lat.inbound += 1;
        arrived.entry((s.seq, s.ts)).or_default().push(s.at_ns);
    }
    let mut left = std::collections::HashSet::new();
    for s in seen.iter().filter(|s| !s.inbound) {
        lat.outbound += 1;
        let key = (s.seq, s.ts);
        if !left.insert((s.peer, key)) {
            lat.repeats += 1;
            continue;
        }
        let before = arrived
            .get(&key)
            .and_then(|times| times.iter().filter(|&&at| at <= s.at_ns).max());
        if let Some(&at) = before {
            if s.at_ns - at < 1_000_000_000 {
                lat.added_ns.push(s.at_ns - at);
            }
        }
    }
    lat.added_ns.sort_unstable();
    lat
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(ssrc: u32, seq: u16, ts: u32, len: usize) -> Vec<u8> {
        let mut b = vec![0x90, 96];
        b.extend(seq.to_be_bytes());
        b.extend(ts.to_be_bytes());
        b.extend(ssrc.to_be_bytes());
        b.resize(len, 0xab);
        b
    }

    /// A pcap file (nanoseconds, Ethernet) of UDP datagrams `(ns, src port, dst port, payload)`.
    fn pcap(records: &[(u64, u16, u16, Vec<u8>)]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend(0xa1b2_3c4du32.to_le_bytes());
        f.extend(2u16.to_le_bytes());
        f.extend(4u16.to_le_bytes());
        f.extend([0u8; 8]);
        f.extend(65535u32.to_le_bytes());
        f.extend(1u32.to_le_bytes());
        for (ns, src, dst, payload) in records {
            let mut frame = vec![0u8; 12];
            frame.extend([0x08, 0x00]);
            let total = 20 + 8 + payload.len();
            frame.extend([
                0x45,
                0,
                (total >> 8) as u8,
                total as u8,
                0,
                0,
                0x40,
                0,
                64,
                17,
                0,
                0,
            ]);
            frame.extend([127, 0, 0, 1, 127, 0, 0, 1]);
            frame.extend(src.to_be_bytes());
            frame.extend(dst.to_be_bytes());
            frame.extend(((8 + payload.len()) as u16).to_be_bytes());
            frame.extend([0, 0]);
            frame.extend(payload);
            f.extend(((ns / 1_000_000_000) as u32).to_le_bytes());
            f.extend(((ns % 1_000_000_000) as u32).to_le_bytes());
            f.extend((frame.len() as u32).to_le_bytes());
            f.extend((frame.len() as u32).to_le_bytes());
            f.extend(frame);
        }
        f
    }

    #[test]
    fn a_forwarded_packet_is_matched_by_sequence_and_timestamp() {
        let file = pcap(&[
            (1_000_000, 5000, 47000, rtp(1, 10, 9000, 1100)),
            (1_000_100, 5001, 47000, rtp(2, 10, 4000, 1100)),
            // Forwarded with another SSRC; 0.3 ms and 0.9 ms later.
            (1_300_000, 47000, 5001, rtp(77, 10, 9000, 1100)),
            (1_900_100, 47000, 5000, rtp(78, 10, 4000, 1100)),
            // RTCP and another port's traffic are not counted.
            (2_000_000, 47000, 5000, {
                let mut r = rtp(1, 0, 0, 40);
                r[1] = 201;
                r
            }),
            (2_000_000, 6000, 6001, rtp(1, 10, 9000, 1100)),
        ]);
        let seen = rtp_packets(&file, 47000).unwrap();
        assert_eq!(seen.len(), 4);
        let lat = added_latency(&seen);
        assert_eq!((lat.inbound, lat.outbound), (2, 2));
        assert_eq!(lat.added_ns, vec![300_000, 900_000]);
        assert_eq!(lat.quantile_ms(1.0), Some(0.9));
    }

    #[test]
    fn a_gso_datagram_is_cut_into_its_packets() {
        // Three packets of one frame in one datagram, the last shorter.
        let mut gso = rtp(7, 100, 3000, 1128);
        gso.extend(rtp(7, 101, 3000, 1128));
        gso.extend(rtp(7, 102, 3000, 500));
        let file = pcap(&[
            (10, 5000, 47000, rtp(1, 100, 3000, 1128)),
            (20, 5000, 47000, rtp(1, 101, 3000, 1128)),
            (30, 5000, 47000, rtp(1, 102, 3000, 500)),
            (1_000, 47000, 5001, gso),
        ]);
        let seen = rtp_packets(&file, 47000).unwrap();
        let out: Vec<_> = seen.iter().filter(|s| !s.inbound).map(|s| s.seq).collect();
        assert_eq!(out, vec![100, 101, 102]);
        assert_eq!(added_latency(&seen).added_ns, vec![970, 980, 990]);
    }

    #[test]
    fn a_packet_sent_again_counts_once_from_the_copy_forwarded() {
        let file = pcap(&[
            // Sent, sent again (the first copy was lost inside), forwarded, then resent by the
            // relay to a receiver that asked for it.
            (1_000, 5000, 47000, rtp(1, 5, 50, 300)),
            (9_000, 5000, 47000, rtp(1, 5, 50, 300)),
            (9_500, 47000, 5001, rtp(2, 5, 50, 300)),
            (40_000, 47000, 5001, rtp(2, 5, 50, 300)),
        ]);
        let lat = added_latency(&rtp_packets(&file, 47000).unwrap());
        assert_eq!((lat.inbound, lat.outbound, lat.repeats), (2, 2, 1));
        assert_eq!(lat.added_ns, vec![500]);
    }

    #[test]
    fn an_outbound_packet_with_no_arrival_before_it_is_not_matched() {
        let file = pcap(&[
            (5_000, 47000, 5001, rtp(9, 1, 1, 200)),
            (6_000, 5000, 47000, rtp(3, 1, 1, 200)),
        ]);
        let lat = added_latency(&rtp_packets(&file, 47000).unwrap());
        assert_eq!((lat.inbound, lat.outbound), (1, 1));
        assert!(lat.added_ns.is_empty());
        assert_eq!(lat.quantile_ms(0.5), None);
    }

    #[test]
    fn what_is_not_a_pcap_file_is_refused() {
        assert!(rtp_packets(b"hello", 47000).is_err());
        assert!(rtp_packets(&[0u8; 40], 47000).is_err());
        let mut cut = pcap(&[(1, 5000, 47000, rtp(1, 1, 1, 100))]);
        cut.truncate(cut.len() - 10);
        assert!(rtp_packets(&cut, 47000).is_err());
    }
}
