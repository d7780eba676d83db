//! Counters of what the relay forwards, per room, for the Prometheus endpoint.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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

#[derive(Debug, Default)]
pub struct Stats {
    rooms: Mutex<HashMap<i64, Arc<RoomCounters>>>,
    pub connections: AtomicU64,
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

    pub fn remove(&self, room: i64) {
        self.rooms.lock().expect("stats lock").remove(&room);
    }

    pub fn forwarded_packets(&self) -> u64 {
        self.rooms
            .lock()
            .expect("stats lock")
            .values()
            .map(|c| c.packets.load(Ordering::Relaxed))
            .sum()
    }

    /// The counters in Prometheus' text format.
    pub fn prometheus(&self, out: &mut String) {
        let rooms = self.rooms.lock().expect("stats lock");
        for (name, help, get) in [
            (
                "sportello_relay_packets_forwarded_total",
                "RTP packets forwarded",
                0,
            ),
            (
                "sportello_relay_bytes_forwarded_total",
                "RTP payload bytes forwarded",
                1,
            ),
            (
                "sportello_relay_packets_dropped_total",
                "RTP packets that could not be forwarded",
                2,
            ),
            (
                "sportello_relay_keyframe_requests_total",
                "PLI/FIR passed to senders",
                3,
            ),
            (
                "sportello_relay_nacks_total",
                "NACKs received from receivers",
                4,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (room, c) in rooms.iter() {
                let v = [&c.packets, &c.bytes, &c.dropped, &c.plis, &c.nacks][get]
                    .load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}{{room=\"{room}\"}} {v}");
            }
        }
        for (name, help, kind) in [
            (
                "sportello_relay_packets_lost",
                "Packets lost on the way from each participant to the relay",
                "gauge",
            ),
            (
                "sportello_relay_rtt_seconds",
                "Round-trip time between the relay and each participant",
                "gauge",
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (room, c) in rooms.iter() {
                for (side, who) in ["citizen", "operator"].iter().enumerate() {
                    if name.ends_with("lost") {
                        let v = c.lost[side].load(Ordering::Relaxed);
                        let _ = writeln!(out, "{name}{{room=\"{room}\",side=\"{who}\"}} {v}");
                    } else {
                        let v = c.rtt_us[side].load(Ordering::Relaxed) as f64 / 1e6;
                        let _ = writeln!(out, "{name}{{room=\"{room}\",side=\"{who}\"}} {v}");
                    }
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP sportello_relay_peer_connections Open peer connections\n# TYPE sportello_relay_peer_connections gauge\nsportello_relay_peer_connections {}",
            self.connections.load(Ordering::Relaxed)
        );
    }
}
