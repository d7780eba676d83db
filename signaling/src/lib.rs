//! Signaling for the virtual room: the WebSocket protocol (`protocol`, documented in
//! `PROTOCOL.md`), the time gate that decides from the appointment's schedule and `now` whether
//! a participant is admitted, told how long to wait, or refused (`gate`), the room's state
//! machine (`room`), how many messages a socket may send (`budget`), and the hub that runs them
//! over real sockets (`hub`).
//!
//! `budget`, `gate`, `protocol` and `room` are pure and tested without sockets. The hub learns about
//! appointments through the small `Directory` trait: this crate knows no SQL and no SDP.

pub mod budget;
pub mod gate;
pub mod hub;
pub mod protocol;
pub mod room;

pub use gate::{Policy, Role, Schedule, Standing};
pub use hub::{Directory, Hub, Media, MediaCandidate, MediaEvent, MediaOffer, Settings, Ticket};
