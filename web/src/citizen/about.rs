//! The pages every public administration's site must have: the privacy notice (`/privacy`) and
//! the accessibility statement (`/accessibilita`), in the page's language, from `crate::notices`;
//! and the page where anyone tries camera and microphone before a video appointment
//! (`/prova-video`, linked from the emails and the room's countdown), which needs no link of a
//! booking and sends nothing anywhere: the browser shows itself its own camera and sound.

use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::error::Result;
use crate::extract::Ui;
use crate::state::AppState;
use crate::views::{DeviceCheckPage, NoticePage};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/privacy", get(show_privacy_notice))
        .route("/accessibilita", get(show_accessibility_statement))
        .route("/prova-video", get(show_device_check))
}

async fn show_device_check(ui: Ui) -> Result<Response> {
    let l = ui.l;
    ui.page(
        StatusCode::OK,
        DeviceCheckPage {
            l,
            texts: crate::script_texts::check(l),
        },
    )
}

async fn show_privacy_notice(ui: Ui) -> Result<Response> {
    let l = ui.l;
    let town = ui.town.clone();
    let page = NoticePage {
        l,
        title: l.t("Informativa sulla privacy").into(),
        sections: town.privacy_notice.sections(l).to_vec(),
        version: Some(town.privacy_notice.version.clone()),
    };
    ui.page(StatusCode::OK, page)
}

async fn show_accessibility_statement(ui: Ui) -> Result<Response> {
    let l = ui.l;
    let town = ui.town.clone();
    let page = NoticePage {
        l,
        title: l.t("Dichiarazione di accessibilità").into(),
        sections: town.accessibility_statement.sections(l).to_vec(),
        version: None,
    };
    ui.page(StatusCode::OK, page)
}
