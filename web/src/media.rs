//! The bridge between the room's signaling and the media relay: a room role becomes a relay side,
//! relay events become signaling events.

use std::sync::Arc;

use sfu::{IceCandidate, Relay, RelayEvent, Side};
use signaling::hub::BoxFuture;
use signaling::protocol::ErrorCode;
use signaling::{Media, MediaEvent, Role};
use tokio::sync::mpsc;

pub struct RelayMedia(pub Arc<Relay>);

fn side(role: Role) -> Side {
    match role {
        Role::Citizen => Side::Citizen,
        Role::Operator => Side::Operator,
    }
}

impl Media for RelayMedia {
    fn offer<'a>(
        &'a self,
        room: i64,
        role: Role,
        conn: u64,
        sdp: String,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> BoxFuture<'a, Result<String, ErrorCode>> {
        Box::pin(async move {
            let (tx, mut rx) = mpsc::unbounded_channel::<RelayEvent>();
            tokio::spawn(async move {
                while let Some(e) = rx.recv().await {
                    let m = match e {
                        RelayEvent::Candidate(c) => MediaEvent::Candidate {
                            candidate: c.candidate,
                            sdp_mid: c.sdp_mid,
                            sdp_mline_index: c.sdp_mline_index,
                        },
                        RelayEvent::State(s) => MediaEvent::State(s),
                    };
                    if events.send(m).is_err() {
                        break;
                    }
                }
            });
            self.0
                .offer(room, side(role), conn, sdp, tx)
                .await
                .map_err(|e| {
                    tracing::info!(room, error = %e, "offer refused");
                    ErrorCode::BadSdp
                })
        })
    }

    fn candidate<'a>(
        &'a self,
        room: i64,
        role: Role,
        candidate: String,
        sdp_mid: Option<String>,
        sdp_mline_index: Option<u16>,
    ) -> BoxFuture<'a, Result<(), ErrorCode>> {
        Box::pin(async move {
            if candidate.is_empty() {
                return Ok(()); // end of candidates
            }
            self.0
                .candidate(
                    room,
                    side(role),
                    IceCandidate {
                        candidate,
                        sdp_mid,
                        sdp_mline_index,
                    },
                )
                .await
                .map_err(|_| ErrorCode::BadCandidate)
        })
    }

    fn leave<'a>(&'a self, room: i64, role: Role, conn: u64) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.0.leave(room, side(role), conn).await })
    }
}
