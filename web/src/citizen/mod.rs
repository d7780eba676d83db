//! The citizen's pages: browsing the catalogue, booking, and the links from the emails.

pub mod booking;
pub mod catalogue;
pub mod links;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(catalogue::router())
        .merge(booking::router())
        .merge(links::router())
}
