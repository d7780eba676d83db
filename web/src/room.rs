//! The virtual room on the web side: the join page (`/stanza/{token}`) and its WebSocket
//! (`/ws/stanza/{code}`). What a token opens is `directory`'s answer.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use booking::store::nodes::Placement;
use booking::{Mode, Status};
use signaling::gate::{self, Gate};
use signaling::{Role, Schedule, Standing};

use crate::citizen::links::appointment_view;
use crate::directory::token_role;
use crate::error::{AppError, Result};
use crate::extract::Link;
use crate::state::AppState;
use crate::views::{Countdown, RoomPage};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/stanza/{token}", get(show_room))
        // GET upgrades over HTTP/1.1, CONNECT opens it over HTTP/2 (RFC 8441).
        .route("/ws/stanza/{code}", get(open_socket).connect(open_socket))
}

/// Sizes that keep an idle socket small: frames and messages are bounded by the protocol.
/// With several nodes, the socket is served by the node that holds the room (`nodes`).
async fn open_socket(
    State(st): State<AppState>,
    Path(code): Path<String>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let ws = ws
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(256 * 1024)
        .max_frame_size(256 * 1024);
    let Some(cluster) = st.cluster.clone() else {
        return ws.on_upgrade(move |socket| st.hub.clone().serve(code, socket));
    };
    // An unknown code: the hub refuses it at `hello`, wherever.
    let Ok(a) = st.store.appointment_by_code(&code).await else {
        return ws.on_upgrade(move |socket| st.hub.clone().serve(code, socket));
    };
    if !cluster.is_forwarded(&headers, a.id) {
        match cluster.place(&code).await {
            Ok(Placement::Here) => {}
            Ok(Placement::Elsewhere { node, url }) => {
                tracing::debug!(room_node = %node, "room served by another node: forwarded");
                let token = cluster.forward_token(a.id);
                return ws.on_upgrade(move |socket| cluster.forward(socket, url, code, token));
            }
            // The database is not there: served here, as one node would.
            Err(e) => tracing::warn!(error = %e, "room not placed: served here"),
        }
    }
    ws.on_upgrade(move |socket| cluster.serve_here(code, a.id, socket))
}

/// The join link: countdown, then "enter the room", then waiting for the other side.
async fn show_room(Link(st, ui, token): Link) -> Result<Response> {
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
        Role::Citizen => a.contact.full_name(),
        Role::Operator => view.office.clone(),
    };
    let countdown = (a.status == Status::Confirmed)
        .then(|| {
            let schedule = Schedule {
                start: a.start,
                end: a.end,
                standing: Standing::Active,
            };
            match gate::decide(&schedule, role, st.clock.now(), st.hub.policy()) {
                Gate::TooEarly { opens_at, left } => Some(Countdown {
                    ms_left: left.num_milliseconds(),
                    left: l.time_left(left),
                    // As the page's script writes it ("09:55").
                    opens_at: opens_at.with_timezone(&st.tz).format("%H:%M").to_string(),
                }),
                _ => None,
            }
        })
        .flatten();
    let page = RoomPage {
        l,
        token,
        code: a.code.clone(),
        operator: role == Role::Operator,
        name,
        a: view,
        countdown,
        texts: crate::script_texts::room(l),
    };
    ui.page(StatusCode::OK, page)
}
