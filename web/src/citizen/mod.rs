//! The citizen's pages: browsing the catalogue, booking, the links from the emails, the privacy
//! notice and accessibility statement, and one's own data.

pub mod about;
pub mod booking;
pub mod catalogue;
pub mod find;
pub mod links;
pub mod login;
pub mod my_data;
pub mod waitlist;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(catalogue::router())
        .merge(booking::router())
        .merge(links::router())
        .merge(about::router())
        .merge(my_data::router())
        .merge(login::router())
        .merge(find::router())
        .merge(waitlist::router())
}
