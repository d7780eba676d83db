//! What the relay says to a participant's signaling socket, and what it takes from it: the
//! same for both engines (`relay`'s and `direct`'s), so it lives apart from either.

/// An ICE candidate as browsers write it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IceCandidate {
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_mline_index: Option<u16>,
}

/// What the relay tells a participant's signaling socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEvent {
    /// A local candidate for trickle ICE.
    Candidate(IceCandidate),
    /// The connection's state: new, connecting, connected, disconnected, failed, closed.
    State(String),
}

/// A participant's offer, as their signaling socket hands it to the relay.
#[derive(Debug)]
pub struct Offer {
    pub room: i64,
    pub side: crate::Side,
    /// The signaling socket that owns the connection; a newer socket of the same side replaces it.
    pub owner: u64,
    pub sdp: String,
    /// Where the connection's local candidates and state changes go.
    pub events: tokio::sync::mpsc::UnboundedSender<RelayEvent>,
}
