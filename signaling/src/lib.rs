//! Signaling for the virtual room: the WebSocket protocol, and the room state machine that
//! decides, from the appointment's schedule and `now`, whether a participant is admitted, told
//! how long to wait, or refused.
//!
//! Not built yet: the issue "Virtual room: per-appointment tokens, time-gated signaling,
//! countdown and waiting room" fills this crate. It must not know SQL or SDP internals.
