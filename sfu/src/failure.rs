//! When a participant's media connection counts as failed, and how that is reported: a warning
//! in the log (which names the side, never an address) and `sportello_relay_connections_failed_
//! total` on `/metrics`. The same for both engines, so it lives apart from either.
//!
//! A connection fails when it is not connected `CONNECT_DEADLINE` after the relay answered its
//! offer (the browser's checks never reached the relay, or its DTLS handshake never completed:
//! the `rtc` crate's DTLS transport has no failed state of its own, so without a deadline such
//! a connection would wait for its socket to leave), or when its ICE fails later. Each
//! connection counts once. `Watch` is the decision, with no clock or I/O of its own; the
//! engines feed it their connections' states and the time.

use std::time::{Duration, Instant};

use rtc::peer_connection::state::RTCPeerConnectionState;

use crate::side::Side;
use crate::stats::Stats;

/// How long after its offer is answered a connection has to connect. A browser on a slow
/// mobile network through TURN over TCP connects in a few seconds; the browser's own ICE gives
/// up after about 30 s.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(15);

/// Why a connection counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Not connected `CONNECT_DEADLINE` after its offer: the relay closes it.
    NeverConnected,
    /// Connected, then its ICE failed (consent or every pair lost).
    Lost,
}

/// One connection's way to a failure, fed its states and the time.
#[derive(Debug)]
pub struct Watch {
    answered: Instant,
    connected: bool,
    failed: bool,
}

impl Watch {
    /// A connection whose offer was answered at `answered`.
    pub fn new(answered: Instant) -> Watch {
        Watch {
            answered,
            connected: false,
            failed: false,
        }
    }

    /// The connection changed to `state`: the failure, the first time it fails.
    pub fn state(&mut self, state: RTCPeerConnectionState) -> Option<Failure> {
        match state {
            RTCPeerConnectionState::Connected => {
                self.connected = true;
                None
            }
            RTCPeerConnectionState::Failed if !self.failed => {
                self.failed = true;
                Some(if self.connected {
                    Failure::Lost
                } else {
                    Failure::NeverConnected
                })
            }
            _ => None,
        }
    }

    /// At `now`: the failure of a connection that never connected and is past its deadline,
    /// the first time it is asked.
    pub fn overdue(&mut self, now: Instant) -> Option<Failure> {
        if self.connected || self.failed || now < self.answered + CONNECT_DEADLINE {
            return None;
        }
        self.failed = true;
        Some(Failure::NeverConnected)
    }
}

/// Counts `side`'s failed connection and says so in the log.
pub fn report(stats: &Stats, side: Side, failure: Failure) {
    stats
        .connections_failed
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let who = match side {
        Side::Citizen => "citizen",
        Side::Operator => "operator",
    };
    match failure {
        Failure::NeverConnected => tracing::warn!(
            side = who,
            deadline_s = CONNECT_DEADLINE.as_secs(),
            "a media connection did not connect in time (its ICE or DTLS never completed): closed"
        ),
        Failure::Lost => tracing::warn!(side = who, "a media connection failed (ICE lost)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RTCPeerConnectionState as S;

    #[test]
    fn a_connection_that_never_connects_fails_once_at_its_deadline() {
        let t0 = Instant::now();
        let mut w = Watch::new(t0);
        assert_eq!(w.state(S::Connecting), None);
        assert_eq!(
            w.overdue(t0 + CONNECT_DEADLINE - Duration::from_millis(1)),
            None
        );
        assert_eq!(
            w.overdue(t0 + CONNECT_DEADLINE),
            Some(Failure::NeverConnected)
        );
        assert_eq!(w.overdue(t0 + CONNECT_DEADLINE * 2), None, "counted once");
        assert_eq!(w.state(S::Failed), None, "counted once");
    }

    #[test]
    fn a_connected_connection_is_never_overdue_and_fails_as_lost_once() {
        let t0 = Instant::now();
        let mut w = Watch::new(t0);
        assert_eq!(w.state(S::Connected), None);
        assert_eq!(w.overdue(t0 + CONNECT_DEADLINE * 10), None);
        assert_eq!(w.state(S::Disconnected), None);
        assert_eq!(w.state(S::Failed), Some(Failure::Lost));
        assert_eq!(w.state(S::Failed), None);
        assert_eq!(w.overdue(t0 + CONNECT_DEADLINE * 20), None);
    }

    #[test]
    fn ice_failing_before_the_deadline_counts_as_never_connected_once() {
        let t0 = Instant::now();
        let mut w = Watch::new(t0);
        assert_eq!(w.state(S::Failed), Some(Failure::NeverConnected));
        assert_eq!(w.overdue(t0 + CONNECT_DEADLINE), None);
    }

    #[test]
    fn each_report_counts_one() {
        let stats = Stats::default();
        report(&stats, Side::Citizen, Failure::NeverConnected);
        report(&stats, Side::Operator, Failure::Lost);
        let mut out = String::new();
        stats.prometheus(&mut out);
        assert!(
            out.contains("\nsportello_relay_connections_failed_total 2\n"),
            "{out}"
        );
    }
}
