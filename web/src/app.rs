//! The whole site as one router: each group of pages brings its own `router()`, merged here
//! with the limits every request shares. `serve` runs it with the background worker.

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;

use crate::error::AppError;
use crate::state::AppState;
use crate::{assets, citizen, console, mailbox, metrics, room, worker};

/// Largest request body accepted: forms are small, anything bigger is refused before parsing.
pub const MAX_BODY: usize = 16 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(citizen::router())
        .merge(mailbox::router())
        .merge(room::router())
        .merge(console::router())
        .route("/static/{*path}", get(assets::serve))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Serves HTTP on `listener` until the process ends, with the worker running beside it.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    worker_every: std::time::Duration,
) -> anyhow::Result<()> {
    tokio::spawn(worker::run(state.clone(), worker_every));
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await?;
    Ok(())
}
