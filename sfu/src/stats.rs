//! Counters of what the relay forwards, per room, and how long datagrams spend in it, for the
//! Prometheus endpoint.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use exposition::{counter, gauge, header, Histogram, Kind};

#[derive(Debug, Default)]
pub struct RoomCounters {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub dropped: AtomicU64,
    pub plis: AtomicU64,
    pub nacks: AtomicU64,
    /// Packets lost between each participant and the relay (from the relay's receivers).
    pub lost: [AtomicU64; 2],
    /// Round-trip time between the relay and each participant, in microseconds (ICE).
    pub rtt_us: [AtomicU64; 2],
}

impl RoomCounters {
    /// `side`'s link as its connection's statistics tell it: packets lost on the way from its
    /// browser to the relay, and the round-trip time of ICE (the largest of its pairs).
    pub(crate) fn record_link(
        &self,
        side: crate::side::Side,
        report: &rtc::statistics::report::RTCStatsReport,
    ) {
        let lost: i64 = report
            .inbound_rtp_streams()
            .map(|r| r.received_rtp_stream_stats.packets_lost)
            .sum();
        self.record(side, lost.max(0) as u64, round_trip(report));
    }

    /// `side`'s link: packets lost on its uplink so far, and its round-trip time in seconds.
    pub(crate) fn record(&self, side: crate::side::Side, lost: u64, rtt: f64) {
        self.lost[side.index()].store(lost, Ordering::Relaxed);
        self.rtt_us[side.index()].store((rtt * 1e6) as u64, Ordering::Relaxed);
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
        add(
            &r.lost,
            c.lost.iter().map(|l| l.load(Ordering::Relaxed)).sum(),
        );
    }

    /// RTP packets forwarded since the process started.
    pub fn forwarded_packets(&self) -> u64 {
        self.totals()[0]
    }

    /// Packets, bytes, dropped, keyframe requests, NACKs and lost packets since the start: the
    /// rooms that ended and the rooms open now.
    fn totals(&self) -> [u64; 6] {
        let r = &self.retired;
        let mut t = [
            r.packets.load(Ordering::Relaxed),
            r.bytes.load(Ordering::Relaxed),
            r.dropped.load(Ordering::Relaxed),
            r.plis.load(Ordering::Relaxed),
            r.nacks.load(Ordering::Relaxed),
            r.lost.load(Ordering::Relaxed),
        ];
        for c in self.rooms.lock().expect("stats lock").values() {
            t[0] += c.packets.load(Ordering::Relaxed);
            t[1] += c.bytes.load(Ordering::Relaxed);
            t[2] += c.dropped.load(Ordering::Relaxed);
            t[3] += c.plis.load(Ordering::Relaxed);
            t[4] += c.nacks.load(Ordering::Relaxed);
            t[5] += c
                .lost
                .iter()
                .map(|l| l.load(Ordering::Relaxed))
                .sum::<u64>();
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
