//! When a participant's media connection counts as failed, and how that is reported: a warning
//! in the log (which names the side, never an address) and `sportello_relay_connections_failed_
//! total` on `/metrics`, by `reason`. The same for both engines, so it lives apart from either.
//!
//! A connection fails when it is not connected `CONNECT_DEADLINE` after the relay answered its
//! offer (the browser's checks never reached the relay, or its DTLS handshake never completed:
//! the `rtc` crate's DTLS transport has no failed state of its own, so without a deadline such
//! a connection would wait for its socket to leave), or when its ICE fails later. Each
//! connection counts once. `Watch` is the decision, with no clock or I/O of its own; the
//! engines feed it their connections' states and the time.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rtc::peer_connection::state::RTCPeerConnectionState;

use crate::side::Side;

/// How long after its offer is answered a connection has to connect. A browser on a slow
/// mobile network through TURN over TCP connects in a few seconds; the browser's own ICE gives
/// up after about 30 s.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(15);

/// Why a connection counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Not connected `CONNECT_DEADLINE` after its offer: the relay closes it. Many of these
    /// point at the network in front of the media ports (a firewall, a wrong public address).
    NeverConnected,
    /// Connected, then its ICE failed (consent or every pair lost): the participant's network
    /// dropped.
    Lost,
}

impl Failure {
    const ALL: [Failure; 2] = [Failure::NeverConnected, Failure::Lost];

    /// Its `reason` label on `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Failure::NeverConnected => "never_connected",
            Failure::Lost => "lost",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Failed connections since the start, by `Failure`.
#[derive(Debug, Default)]
pub struct Failures([AtomicU64; 2]);

impl Failures {
    pub fn count(&self, failure: Failure) -> u64 {
        self.0[failure.index()].load(Ordering::Relaxed)
    }

    /// The counter in Prometheus' text format, one series per reason.
    pub fn prometheus(&self, out: &mut String) {
        let name = "sportello_relay_connections_failed_total";
        exposition::header(
            out,
            name,
            "Media connections that failed: never_connected (not connected in time after their offer) or lost (ICE failed later)",
            exposition::Kind::Counter,
        );
        for f in Failure::ALL {
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {}", f.label(), self.count(f));
        }
    }
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
pub fn report(failures: &Failures, side: Side, failure: Failure) {
    failures.0[failure.index()].fetch_add(1, Ordering::Relaxed);
    let who = side.label();
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
    fn each_report_counts_one_under_its_reason() {
        let failures = Failures::default();
        report(&failures, Side::Citizen, Failure::NeverConnected);
        report(&failures, Side::Operator, Failure::NeverConnected);
        report(&failures, Side::Operator, Failure::Lost);
        let mut out = String::new();
        failures.prometheus(&mut out);
        for line in [
            "# TYPE sportello_relay_connections_failed_total counter\n",
            "\nsportello_relay_connections_failed_total{reason=\"never_connected\"} 2\n",
            "\nsportello_relay_connections_failed_total{reason=\"lost\"} 1\n",
        ] {
            assert!(out.contains(line), "{line} in {out}");
        }
    }
}
