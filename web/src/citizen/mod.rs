//! The citizen's pages: browsing the catalogue, booking, the links from the emails, and the
//! privacy notice and accessibility statement.

pub mod about;
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
        .merge(about::router())
}
