//! The media relay: one WebRTC peer connection per participant (the `webrtc` crate), forwarding
//! the citizen's audio and video to the operator and back, so that all media goes through the
//! server and neither side ever sees the other's address.
//!
//! Each connection offers the browser one outgoing audio and one outgoing video track from the
//! start; they carry the other side's media as soon as it arrives, so nobody renegotiates when
//! the other joins, leaves or reconnects. A receiver's keyframe request (PLI/FIR) is passed to
//! the sender at once, and the sender is asked for a keyframe whenever a receiver connects.
//! `rewrite` keeps each outgoing stream continuous across a sender's reconnection.
//! `interceptors` holds each connection's RTP/RTCP interceptors (NACK, RTX-aware; reports;
//! congestion feedback) with their timers on one shared tick; `runtime` is the crate's tokio
//! runtime with sockets that wake the relay only for reads; `mux` lets every connection share
//! one UDP and one TCP port; `ports` hands out a port range instead. The crate knows nothing
//! about bookings: rooms are numbers and sides are `Side::Citizen` and `Side::Operator`.

pub mod connection;
mod error;
pub mod forward;
pub mod interceptors;
pub mod mux;
pub mod ports;
pub mod relay;
pub mod rewrite;
pub mod runtime;
mod send_retry;
pub mod side;
pub mod stats;

pub use relay::{Config, IceCandidate, Relay, RelayEvent};
pub use side::Side;
