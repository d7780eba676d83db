//! The virtual room on the web side: the join page (`/stanza/{token}`) and its WebSocket
//! (`/ws/stanza/{code}`), and the bridge that lets the signaling hub read appointments without
//! knowing SQL.

use std::sync::Arc;

use askama::Template;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use booking::token::{Purpose, Signer};
use booking::{Mode, Status, Store};
use chrono::{DateTime, Utc};
use signaling::hub::BoxFuture;
use signaling::{Directory, Role, Schedule, Standing, Ticket};

use crate::citizen::links::appointment_view;
use crate::error::{AppError, Result};
use crate::extract::Ui;
use crate::state::{AppState, Clock};
use crate::views::RoomPage;

/// Answers the hub's questions from the bookings.
pub struct StoreDirectory {
    pub store: Store,
    pub signer: Signer,
    pub clock: Arc<dyn Clock>,
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
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stanza/{token}", get(show_room))
        .route("/ws/stanza/{code}", get(open_socket))
}

/// Sizes that keep an idle socket small: frames and messages are bounded by the protocol.
async fn open_socket(
    State(st): State<AppState>,
    Path(code): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(256 * 1024)
        .max_frame_size(256 * 1024)
        .on_upgrade(move |socket| st.hub.clone().serve(code, socket))
}

/// The join link: countdown, then "enter the room", then waiting for the other side.
async fn show_room(
    State(st): State<AppState>,
    ui: Ui,
    Path(token): Path<String>,
) -> Result<Response> {
    let (id, role) = token_role(&st.signer, &token).ok_or(AppError::BadLink)?;
    let a = st.store.appointment(id).await?;
    if a.mode != Mode::Video {
        return Err(AppError::NotFound);
    }
    if matches!(
        a.status,
        Status::Cancelled | Status::Expired | Status::Refused
    ) {
        return Err(booking::Error::NotActive(a.status).into());
    }
    let l = ui.l;
    let view = appointment_view(&st, l, &a).await?;
    let name = match role {
        Role::Citizen => format!("{} {}", a.given_name, a.family_name),
        Role::Operator => view.office.clone(),
    };
    let page = RoomPage {
        l,
        token,
        code: a.code.clone(),
        operator: role == Role::Operator,
        name,
        ice_servers: st.ice_servers_json.clone(),
        a: view,
    };
    Ok((StatusCode::OK, ui.jar, axum::response::Html(page.render()?)).into_response())
}
