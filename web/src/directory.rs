//! The bridge that lets the signaling hub read appointments without knowing SQL: a room token
//! names an appointment and a role, and the appointment's schedule and standing are read from
//! the bookings when a socket says hello, so a moved appointment keeps its link and a cancelled
//! one stops working.

use std::sync::Arc;

use booking::token::{Purpose, Signer};
use booking::{Mode, Status, Store};
use chrono::{DateTime, Utc};
use signaling::hub::BoxFuture;
use signaling::{Directory, Role, Schedule, Standing, Ticket};

use crate::clock::Clock;
use crate::turn::IceServers;

/// Answers the hub's questions from the bookings.
pub struct StoreDirectory {
    pub store: Store,
    pub signer: Signer,
    pub clock: Arc<dyn Clock>,
    /// The STUN/TURN servers handed to each room socket (TURN credentials made per socket).
    pub ice: Arc<IceServers>,
}

/// Which appointment and role a room token opens.
pub fn token_role(signer: &Signer, token: &str) -> Option<(i64, Role)> {
    if let Ok(id) = signer.verify(Purpose::RoomCitizen, token) {
        return Some((id, Role::Citizen));
    }
    signer
        .verify(Purpose::RoomOperator, token)
        .ok()
        .map(|id| (id, Role::Operator))
}

impl Directory for StoreDirectory {
    fn ticket<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<Ticket>> {
        Box::pin(async move {
            let (id, role) = token_role(&self.signer, token)?;
            let a = self.store.appointment(id).await.ok()?;
            if a.mode != Mode::Video {
                return None;
            }
            let office = self.store.office(a.office_id).await.ok()?;
            let service = self.store.service(a.service_id).await.ok()?;
            let standing = match a.status {
                Status::Confirmed => Standing::Active,
                Status::Pending | Status::AwaitingApproval => Standing::NotConfirmed,
                Status::Done | Status::NoShow => Standing::Closed,
                Status::Cancelled | Status::Expired | Status::Refused => Standing::Cancelled,
            };
            Some(Ticket {
                room: a.id,
                code: a.code,
                role,
                schedule: Schedule {
                    start: a.start,
                    end: a.end,
                    standing,
                },
                office: office.name,
                service: service.title,
            })
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// TURN credentials name the appointment and the role (for coturn's per-user quotas and
    /// logs: no personal data), and last at least until the room closes.
    fn ice_servers(&self, ticket: &Ticket, until: DateTime<Utc>) -> Vec<serde_json::Value> {
        let role = match ticket.role {
            Role::Citizen => "citizen",
            Role::Operator => "operator",
        };
        let open_for = (until - self.clock.now()).to_std().unwrap_or_default();
        self.ice
            .for_socket(&format!("{}-{role}", ticket.room), open_for)
    }
}
