//! The relay's error type.
//!
//! Failures come from two places: setting up a connection (`connection`: the `webrtc` crate,
//! the browser's offer, the port range) and the rooms (`relay`: a candidate for nobody). One
//! type for both, in a module of its own so that neither of those needs the other for it.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("WebRTC: {0}")]
    WebRtc(String),
    #[error("invalid session description: {0}")]
    BadSdp(String),
    #[error("invalid ICE candidate: {0}")]
    BadCandidate(String),
    #[error("no connection for this participant: send an offer first")]
    NoConnection,
    #[error("every port of the media port range is in use")]
    NoPort,
}

/// Any error of the `webrtc` crate.
pub(crate) fn rtc_err(e: impl std::fmt::Display) -> Error {
    Error::WebRtc(e.to_string())
}
