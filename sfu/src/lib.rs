//! The media relay: one WebRTC peer connection per participant, forwarding the citizen's audio
//! and video to the operator and back, so that all media goes through the server and neither
//! side ever sees the other's address. Two engines drive the connections (`EngineKind`): by
//! default `direct`, the `rtc` crate's connections on the relay's own threads; or the `webrtc`
//! crate's, on its tasks and sockets (`relay`, `runtime`, `mux`, `ports`, `reactors`).
//!
//! Each connection offers the browser one outgoing audio and one outgoing video track from the
//! start; they carry the other side's media as soon as it arrives, so nobody renegotiates when
//! the other joins, leaves or reconnects. A receiver's keyframe request (PLI/FIR) is passed to
//! the sender at once, and the sender is asked for a keyframe whenever a receiver connects,
//! which is also sent the sender's last keyframe at once (`keyframe`).
//! The crate knows nothing about bookings: rooms are numbers and sides are `Side::Citizen` and
//! `Side::Operator`.
//!
//! # Modules
//!
//! - `relay`: the rooms. `Relay` is the crate's public face (`offer`, `candidate`, `leave`);
//!   it keeps each room's two participants and their connections, handles the connections'
//!   events, and runs the tasks that forward media to the other side, pass keyframe requests
//!   back to the sender and sample each link's loss and round-trip time.
//! - `side`: `Side`, the citizen or the operator, and which one is the other.
//! - `connection`: setting up one participant's peer connection: the codecs, the two outgoing
//!   tracks, ICE settings and sockets, the answer to the browser's offer, the payload types it
//!   settled on, and host candidates as announced to browsers (NAT address, shared ports).
//! - `forward`: the forwarding step, one packet from one connection to the other (payload
//!   type, SSRC, continuity, header extensions), with no sockets, tasks or locks.
//! - `rewrite`: keeps each outgoing stream's sequence numbers and timestamps continuous across
//!   a sender's reconnections.
//! - `keyframe`: a sender's last whole keyframe, sent to a receiver the moment it connects,
//!   with no sockets or clocks.
//! - `interceptors`: each connection's RTP/RTCP interceptors (NACK, RTX-aware; reports;
//!   congestion feedback; a tap for receivers' feedback) with their timers on one shared tick.
//! - `runtime`: the `webrtc` crate's tokio runtime, with sockets that wake the relay only for
//!   reads and connected connections' timers on the shared tick.
//! - `mux`: one UDP and one TCP port shared by every connection, routed by ICE username
//!   fragment and remote address.
//! - `send_retry`: sending on a socket registered for reads only, for `runtime` and `mux`.
//! - `sockopt`: the socket options `socket2` lacks (UDP GRO, receive timestamps, packet info),
//!   for `runtime` and `direct`.
//! - `ports`: a configured port range handed out to connections instead of shared ports.
//! - `reactors`: the threads that run the connections, a room's two on the same one.
//! - `direct`: the default engine (`EngineKind::Rtc`): worker threads that drive `rtc`
//!   connections themselves, datagrams and time in, datagrams and events out, through
//!   `forward`, with batched UDP reads and sends and ICE-TCP; `rtc` does ICE and DTLS, and the
//!   relay's own media path (`direct::media`) SRTP, SRTCP and the interceptors; `relay` hands
//!   it every offer, candidate and leave when it is chosen.
//! - `stats`: per-room counters for the Prometheus endpoint.
//! - `failure`: when a connection counts as failed (not connected in time, or ICE lost), and
//!   its report (a warning, a counter), for both engines.
//! - `events`: what the relay tells a participant's signaling socket (`RelayEvent`) and the ICE
//!   candidates it takes from it, for both engines.
//! - `error`: the relay's error type.
//!
//! Dependencies go one way, with `relay` on top: it uses `connection`, `forward`, `keyframe`,
//! `side`, `ports`, `reactors`, `mux`, `stats`, `events`, `failure` and `direct`; `direct` uses
//! `connection`, `interceptors`, `forward`, `keyframe`, `mux` (the STUN username), `events`,
//! `failure` and `stats`; `keyframe` uses `rewrite` (sequence order); `stats` uses `failure`;
//! `connection` uses `interceptors`, `runtime` and `mux`; `forward` uses `rewrite`; `runtime`
//! uses `mux` and `interceptors`; `runtime` and `mux` share `send_retry`, `runtime` and
//! `direct` share `sockopt`. Only `relay` and `direct` know about rooms, each for its own
//! engine.

pub mod connection;
pub mod direct;
mod error;
pub mod events;
pub mod failure;
pub mod forward;
pub mod interceptors;
pub mod keyframe;
pub mod mux;
pub mod ports;
pub mod reactors;
pub mod relay;
pub mod rewrite;
pub mod runtime;
mod send_retry;
pub mod side;
mod sockopt;
pub mod stats;

pub use relay::{Config, EngineKind, IceCandidate, Offer, Relay, RelayEvent};
pub use side::Side;
