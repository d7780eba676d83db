//! The bridge between the room's signaling and the media relay: a room role becomes a relay side,
//! relay events become signaling events.

use std::sync::Arc;

use sfu::{IceCandidate, Offer, Relay, RelayEvent, Side};
use signaling::hub::BoxFuture;
use signaling::protocol::ErrorCode;
use signaling::{Media, MediaCandidate, MediaEvent, MediaOffer, Role};
use tokio::sync::mpsc;

pub struct RelayMedia(pub Arc<Relay>);

fn side(role: Role) -> Side {
    match role {
        Role::Citizen => Side::Citizen,
        Role::Operator => Side::Operator,
    }
}

impl Media for RelayMedia {
    fn offer(&self, o: MediaOffer) -> BoxFuture<'_, Result<String, ErrorCode>> {
        Box::pin(async move {
            let MediaOffer {
                room,
                role,
                conn,
                sdp,
                events,
            } = o;
            let (tx, mut rx) = mpsc::unbounded_channel::<RelayEvent>();
            tokio::spawn(async move {
                while let Some(e) = rx.recv().await {
                    let m = match e {
                        RelayEvent::Candidate(c) => MediaEvent::Candidate(MediaCandidate {
                            candidate: c.candidate,
                            sdp_mid: c.sdp_mid,
                            sdp_mline_index: c.sdp_mline_index,
                        }),
                        RelayEvent::State(s) => MediaEvent::State(s),
                    };
                    if events.send(m).is_err() {
                        break;
                    }
                }
            });
            let offer = Offer {
                room,
                side: side(role),
                owner: conn,
                sdp,
                events: tx,
            };
            self.0.offer(offer).await.map_err(|e| {
                tracing::info!(room, error = %e, "offer refused");
                ErrorCode::BadSdp
            })
        })
    }

    fn candidate(
        &self,
        room: i64,
        role: Role,
        c: MediaCandidate,
    ) -> BoxFuture<'_, Result<(), ErrorCode>> {
        Box::pin(async move {
            if c.candidate.is_empty() {
                return Ok(()); // end of candidates
            }
            let c = IceCandidate {
                candidate: c.candidate,
                sdp_mid: c.sdp_mid,
                sdp_mline_index: c.sdp_mline_index,
            };
            self.0
                .candidate(room, side(role), c)
                .await
                .map_err(|_| ErrorCode::BadCandidate)
        })
    }

    fn leave<'a>(&'a self, room: i64, role: Role, conn: u64) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.0.leave(room, side(role), conn).await })
    }
}
