//! Finding an appointment in the console: by booking code, email, phone, fiscal code or name,
//! among the offices this person sees.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::agenda::row_view;
use super::context::*;
use crate::error::Result;
use crate::state::AppState;
use crate::views::console::*;

pub fn router() -> Router<AppState> {
    Router::new().route("/ufficio/cerca", get(search))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SearchQuery {
    q: String,
}

async fn search(Console(st, s): Console, Query(q): Query<SearchQuery>) -> Result<Response> {
    let l = s.l();
    let query: String = q.q.chars().take(100).collect();
    let mut rows = Vec::new();
    for (id, office) in st.store.search_appointments(&query).await? {
        if s.p.sees_office(office) {
            let item = st.store.agenda_item(id).await?;
            let mut row = row_view(&st, l, &item).await?;
            row.time = l.when(item.appointment.start, st.tz);
            rows.push(row);
        }
    }
    let page = SearchPage {
        frame: s.frame("cerca"),
        searched: !query.trim().is_empty(),
        query,
        rows,
    };
    s.ui.page(StatusCode::OK, page)
}
