//! The media relay: one WebRTC peer connection per participant (the `webrtc` crate), forwarding
//! the citizen's audio and video to the operator and back, so that all media goes through the
//! server.
//!
//! Not built yet: the issue "Media relay" fills this crate. It must not know about bookings.
