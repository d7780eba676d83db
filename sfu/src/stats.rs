//! Counters of what the relay forwards, per room, and how long datagrams spend in it, for the
//! Prometheus endpoint; and the packets lost each way, read from RTCP report blocks
//! (`reported_lost`, `LossTally`) by both media engines.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use exposition::{counter, gauge, header, Histogram, Kind};
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::sender_report::SenderReport;

#[derive(Debug, Default)]
pub struct RoomCounters {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub dropped: AtomicU64,
    pub plis: AtomicU64,
    pub nacks: AtomicU64,
    /// Packets lost on the way from each participant to the relay (the relay's receivers).
    pub lost: [AtomicU64; 2],
    /// Packets lost on the way from the relay to each participant (the receiver reports of the
    /// participant's browser about the relay's streams).
    pub downlink_lost: [AtomicU64; 2],
    /// Round-trip time between the relay and each participant, in microseconds (ICE).
    pub rtt_us: [AtomicU64; 2],
}

impl RoomCounters {
    /// `side`'s uplink as its connection's statistics tell it: the packets its receivers count
    /// lost on the way from the browser (newly lost, by `tally`), and the round-trip time of ICE
    /// (the largest of its pairs).
    pub(crate) fn record_link(
        &self,
        side: crate::side::Side,
        report: &rtc::statistics::report::RTCStatsReport,
        tally: &mut LossTally,
    ) {
        let lost = report
            .inbound_rtp_streams()
            .map(|r| {
                let s = &r.received_rtp_stream_stats;
                let lost = u32::try_from(s.packets_lost.max(0)).unwrap_or(u32::MAX);
                tally.report(s.rtp_stream_stats.ssrc, lost)
            })
            .sum();
        self.add_lost(side, lost, 0);
        self.record_rtt(side, round_trip(report));
    }

    /// Packets newly lost on `side`'s uplink (to the relay) and downlink (from it).
    pub(crate) fn add_lost(&self, side: crate::side::Side, uplink: u64, downlink: u64) {
        if uplink > 0 {
            self.lost[side.index()].fetch_add(uplink, Ordering::Relaxed);
        }
        if downlink > 0 {
            self.downlink_lost[side.index()].fetch_add(downlink, Ordering::Relaxed);
        }
    }

    /// `side`'s round-trip time now, in seconds.
    pub(crate) fn record_rtt(&self, side: crate::side::Side, rtt: f64) {
        self.rtt_us[side.index()].store((rtt * 1e6) as u64, Ordering::Relaxed);
    }
}

/// The packets lost on each stream a report block covers, as an RTCP compound reports them.
pub(crate) fn reported_lost(packets: &[Box<dyn rtc::rtcp::Packet>]) -> Vec<(u32, u32)> {
    let mut lost = Vec::new();
    for packet in packets {
        let a = packet.as_any();
        let reports = if let Some(rr) = a.downcast_ref::<ReceiverReport>() {
            &rr.reports
        } else if let Some(sr) = a.downcast_ref::<SenderReport>() {
            &sr.reports
        } else {
            continue;
        };
        lost.extend(reports.iter().map(|r| (r.ssrc, r.total_lost)));
    }
    lost
}

/// The packets lost on a connection's streams, from the cumulative counts that RTCP report
/// blocks carry (RFC 3550, 6.4.1), one way. A stream's count can go back down (a packet that
/// came late, or again as a retransmission), and it starts again with a new connection: only
/// what goes beyond the largest count a stream has reported is new, so that nothing is counted
/// twice and the totals never go down.
#[derive(Debug, Default)]
pub struct LossTally {
    largest: HashMap<u32, u32>,
}

impl LossTally {
    /// Stream `ssrc` reports `cumulative` packets lost so far (24 bits, signed on the wire:
    /// more packets than expected, from duplicates, is no loss); returns those newly lost.
    pub fn report(&mut self, ssrc: u32, cumulative: u32) -> u64 {
        let cumulative = if cumulative & 0x80_0000 == 0 {
            cumulative
        } else {
            0
        };
        let largest = self.largest.entry(ssrc).or_insert(0);
        let new = cumulative.saturating_sub(*largest);
        *largest = (*largest).max(cumulative);
        u64::from(new)
    }

    /// The report blocks of an RTCP compound about the streams `counted` picks: the packets
    /// newly lost on them.
    pub fn read(
        &mut self,
        packets: &[Box<dyn rtc::rtcp::Packet>],
        counted: impl Fn(u32) -> bool,
    ) -> u64 {
        reported_lost(packets)
            .into_iter()
            .filter(|(ssrc, _)| counted(*ssrc))
            .map(|(ssrc, lost)| self.report(ssrc, lost))
            .sum()
    }

    /// Stream `ssrc` has ended: a stream that comes back with its number counts from the start.
    pub fn forget(&mut self, ssrc: u32) {
        self.largest.remove(&ssrc);
    }
}

/// The round-trip time of a connection's ICE candidate pairs (the longest, if several have one),
/// in seconds; 0 if none has.
pub(crate) fn round_trip(report: &rtc::statistics::report::RTCStatsReport) -> f64 {
    report
        .iter()
        .filter_map(|e| match e {
            rtc::statistics::report::RTCStatsReportEntry::IceCandidatePair(p)
                if p.current_round_trip_time > 0.0 =>
            {
                Some(p.current_round_trip_time)
            }
            _ => None,
        })
        .fold(0.0f64, f64::max)
}

/// Counters of rooms that have ended, so that the process's totals never go down.
#[derive(Debug, Default)]
struct Retired {
    packets: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
    plis: AtomicU64,
    nacks: AtomicU64,
    lost: AtomicU64,
    downlink_lost: AtomicU64,
}

/// Upper bounds of the transit histogram's buckets, in microseconds (`+Inf` follows): fine below
/// the 2 ms a relay may add, coarse above.
pub const TRANSIT_BOUNDS_US: [u64; 15] = [
    50, 100, 200, 300, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 10_000, 20_000, 50_000, 100_000,
];

/// How long datagrams spent in the relay: from the kernel taking each off the network to the
/// end of the send that carries what it produced. A histogram over `TRANSIT_BOUNDS_US`.
#[derive(Debug)]
pub struct Transit(Histogram);

impl Default for Transit {
    fn default() -> Self {
        Transit(Histogram::new(&TRANSIT_BOUNDS_US))
    }
}

impl Transit {
    /// Adds the transit times of one batch, in microseconds.
    pub fn record(&self, times_us: impl IntoIterator<Item = u64>) {
        self.0.record(times_us);
    }

    fn prometheus(&self, out: &mut String) {
        let name = "sportello_relay_transit_seconds";
        exposition::header(out, name, "Time a datagram spends in the relay, from the kernel receiving it to the end of the send that carries what it produced (rtc engine, UDP)", Kind::Histogram);
        self.0.write(out, name, "");
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    rooms: Mutex<HashMap<i64, Arc<RoomCounters>>>,
    retired: Retired,
    pub connections: AtomicU64,
    /// Connections that failed, since the start.
    pub failures: crate::failure::Failures,
    pub transit: Transit,
}

impl Stats {
    pub fn room(&self, room: i64) -> Arc<RoomCounters> {
        self.rooms
            .lock()
            .expect("stats lock")
            .entry(room)
            .or_default()
            .clone()
    }

    /// The room has ended: its counts join the process's totals.
    pub fn remove(&self, room: i64) {
        let Some(c) = self.rooms.lock().expect("stats lock").remove(&room) else {
            return;
        };
        let r = &self.retired;
        let add = |to: &AtomicU64, v: u64| {
            to.fetch_add(v, Ordering::Relaxed);
        };
        add(&r.packets, c.packets.load(Ordering::Relaxed));
        add(&r.bytes, c.bytes.load(Ordering::Relaxed));
        add(&r.dropped, c.dropped.load(Ordering::Relaxed));
        add(&r.plis, c.plis.load(Ordering::Relaxed));
        add(&r.nacks, c.nacks.load(Ordering::Relaxed));
        let sum = |ls: &[AtomicU64; 2]| ls.iter().map(|l| l.load(Ordering::Relaxed)).sum();
        add(&r.lost, sum(&c.lost));
        add(&r.downlink_lost, sum(&c.downlink_lost));
    }

    /// RTP packets forwarded since the process started.
    pub fn forwarded_packets(&self) -> u64 {
        self.totals()[0]
    }

    /// Packets, bytes, dropped, keyframe requests, NACKs and lost packets (on the way to the
    /// relay, and from it) since the start: the rooms that ended and the rooms open now.
    fn totals(&self) -> [u64; 7] {
        let r = &self.retired;
        let mut t = [
            r.packets.load(Ordering::Relaxed),
            r.bytes.load(Ordering::Relaxed),
            r.dropped.load(Ordering::Relaxed),
            r.plis.load(Ordering::Relaxed),
            r.nacks.load(Ordering::Relaxed),
            r.lost.load(Ordering::Relaxed),
            r.downlink_lost.load(Ordering::Relaxed),
        ];
        let sum = |ls: &[AtomicU64; 2]| ls.iter().map(|l| l.load(Ordering::Relaxed)).sum::<u64>();
        for c in self.rooms.lock().expect("stats lock").values() {
            t[0] += c.packets.load(Ordering::Relaxed);
            t[1] += c.bytes.load(Ordering::Relaxed);
            t[2] += c.dropped.load(Ordering::Relaxed);
            t[3] += c.plis.load(Ordering::Relaxed);
            t[4] += c.nacks.load(Ordering::Relaxed);
            t[5] += sum(&c.lost);
            t[6] += sum(&c.downlink_lost);
        }
        t
    }

    /// The counters in Prometheus' text format: totals of the process (they never go down) and
    /// gauges of what is open now, with no label that grows with the rooms.
    pub fn prometheus(&self, out: &mut String) {
        let totals = self.totals();
        for (i, (name, help)) in [
            (
                "sportello_relay_packets_forwarded_total",
                "RTP packets forwarded",
            ),
            (
                "sportello_relay_bytes_forwarded_total",
                "RTP payload bytes forwarded",
            ),
            (
                "sportello_relay_packets_dropped_total",
                "RTP packets that could not be forwarded",
            ),
            (
                "sportello_relay_keyframe_requests_total",
                "PLI/FIR passed to senders",
            ),
            (
                "sportello_relay_nacks_total",
                "NACKs received from receivers",
            ),
            (
                "sportello_relay_packets_lost_total",
                "Packets lost on the way from the participants to the relay",
            ),
            (
                "sportello_relay_downlink_packets_lost_total",
                "Packets lost on the way from the relay to the participants, as their browsers report",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            counter(out, name, help, totals[i]);
        }
        self.failures.prometheus(out);
        let rooms = self.rooms.lock().expect("stats lock");
        let name = "sportello_relay_rtt_seconds_max";
        header(
            out,
            name,
            "Longest round-trip time between the relay and a participant now",
            Kind::Gauge,
        );
        for side in [crate::Side::Citizen, crate::Side::Operator] {
            let (who, side) = (side.label(), side.index());
            let max = rooms
                .values()
                .map(|c| c.rtt_us[side].load(Ordering::Relaxed))
                .max()
                .unwrap_or(0);
            let _ = writeln!(out, "{name}{{side=\"{who}\"}} {}", max as f64 / 1e6);
        }
        gauge(
            out,
            "sportello_relay_rooms",
            "Rooms with media now",
            rooms.len(),
        );
        gauge(
            out,
            "sportello_relay_peer_connections",
            "Open peer connections",
            self.connections.load(Ordering::Relaxed),
        );
        self.transit.prometheus(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_never_go_down_when_a_room_ends_and_no_label_names_a_room() {
        let stats = Stats::default();
        let a = stats.room(41);
        a.packets.fetch_add(100, Ordering::Relaxed);
        a.rtt_us[0].store(30_000, Ordering::Relaxed);
        stats.room(42).packets.fetch_add(50, Ordering::Relaxed);
        // The open room's operator: its round-trip time is the one shown, under its side.
        stats.room(42).rtt_us[1].store(20_000, Ordering::Relaxed);
        assert_eq!(stats.forwarded_packets(), 150);
        stats.remove(41);
        assert_eq!(
            stats.forwarded_packets(),
            150,
            "the ended room still counts"
        );
        let mut out = String::new();
        stats.prometheus(&mut out);
        assert!(
            out.contains("\nsportello_relay_packets_forwarded_total 150\n"),
            "{out}"
        );
        assert!(out.contains("sportello_relay_rooms 1\n"), "{out}");
        assert!(
            out.contains("sportello_relay_rtt_seconds_max{side=\"citizen\"} 0\n")
                && out.contains("sportello_relay_rtt_seconds_max{side=\"operator\"} 0.02\n"),
            "{out}"
        );
        assert!(!out.contains("room="), "{out}");
    }

    #[test]
    fn losses_are_read_from_receiver_and_sender_reports() {
        let block = |ssrc, total_lost| rtc::rtcp::reception_report::ReceptionReport {
            ssrc,
            total_lost,
            ..Default::default()
        };
        let packets: Vec<Box<dyn rtc::rtcp::Packet>> = vec![
            Box::new(ReceiverReport {
                ssrc: 1,
                reports: vec![block(5, 3), block(6, 0)],
                ..Default::default()
            }),
            Box::new(rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication::default()),
            Box::new(SenderReport {
                ssrc: 1,
                reports: vec![block(7, 12)],
                ..Default::default()
            }),
        ];
        assert_eq!(reported_lost(&packets), vec![(5, 3), (6, 0), (7, 12)]);
    }

    #[test]
    fn a_streams_loss_counts_only_beyond_the_largest_it_reported() {
        let mut tally = LossTally::default();
        assert_eq!(tally.report(5, 3), 3);
        assert_eq!(tally.report(6, 2), 2, "another stream counts apart");
        assert_eq!(tally.report(5, 3), 0, "the same report again");
        // Two packets came after all (late, or retransmitted): down to 1, then up to 4.
        assert_eq!(tally.report(5, 1), 0);
        assert_eq!(
            tally.report(5, 4),
            1,
            "only the one beyond the 3 already counted"
        );
        // More packets than expected (duplicates): -1 in 24 bits, no loss.
        assert_eq!(tally.report(5, 0xFF_FFFF), 0);
        assert_eq!(tally.report(5, 5), 1);
        // The stream ended; one with its number starts from nothing.
        tally.forget(5);
        assert_eq!(tally.report(5, 2), 2);
    }

    #[test]
    fn losses_each_way_add_up_and_stay_counted_when_the_room_ends() {
        let stats = Stats::default();
        let room = stats.room(7);
        room.add_lost(crate::Side::Citizen, 3, 0);
        room.add_lost(crate::Side::Operator, 1, 4);
        room.add_lost(crate::Side::Citizen, 0, 2);
        let shown = |stats: &Stats| {
            let mut out = String::new();
            stats.prometheus(&mut out);
            out
        };
        for out in [shown(&stats), {
            stats.remove(7);
            shown(&stats)
        }] {
            assert!(
                out.contains("\nsportello_relay_packets_lost_total 4\n"),
                "{out}"
            );
            assert!(
                out.contains("\nsportello_relay_downlink_packets_lost_total 6\n"),
                "{out}"
            );
        }
    }

    #[test]
    fn transit_times_land_in_their_buckets_cumulatively() {
        let stats = Stats::default();
        // 50 µs is in the first bucket (le is inclusive), 51 in the second; 2 ms in le=0.002;
        // 1 s beyond the last bound.
        stats.transit.record([50, 51, 2_000, 1_000_000]);
        stats.transit.record([]);
        let mut out = String::new();
        stats.prometheus(&mut out);
        for line in [
            "sportello_relay_transit_seconds_bucket{le=\"0.00005\"} 1\n",
            "sportello_relay_transit_seconds_bucket{le=\"0.0001\"} 2\n",
            "sportello_relay_transit_seconds_bucket{le=\"0.0015\"} 2\n",
            "sportello_relay_transit_seconds_bucket{le=\"0.002\"} 3\n",
            "sportello_relay_transit_seconds_bucket{le=\"0.1\"} 3\n",
            "sportello_relay_transit_seconds_bucket{le=\"+Inf\"} 4\n",
            "sportello_relay_transit_seconds_sum 1.002101\n",
            "sportello_relay_transit_seconds_count 4\n",
        ] {
            assert!(out.contains(line), "{line} in {out}");
        }
    }
}
