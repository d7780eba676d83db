//! HTTPS: the router served over rustls, and the plain-HTTP listener that only redirects to it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The addresses of this machine's network interfaces (for the development certificate).
pub fn machine_addresses() -> Vec<std::net::IpAddr> {
    if_addrs::get_if_addrs()
        .map(|v| v.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default()
}

/// Serves `app` over TLS on `listener` until the process ends. A client that does not finish
/// its handshake in 10 seconds is dropped; one bad client never stops the loop.
/// Marks a request that came in over TLS (cookies are then `Secure`).
#[derive(Debug, Clone, Copy)]
pub struct Https;

pub async fn serve(
    app: Router,
    listener: TcpListener,
    config: Arc<tokio_rustls::rustls::ServerConfig>,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                .await
            {
                Ok(Ok(tls)) => tls,
                _ => return,
            };
            // The peer's address, as `ConnectInfo` gives it on plain HTTP.
            let app = app
                .layer(axum::Extension(ConnectInfo(peer)))
                .layer(axum::Extension(Https));
            let service = TowerToHyperService::new(app);
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// A router that sends every request to the same path on the HTTPS origin.
pub fn redirect_router(https_origin: String) -> Router {
    Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .fallback(move |uri: Uri| {
            let origin = https_origin.clone();
            async move { redirect(&origin, &uri) }
        })
}

fn redirect(origin: &str, uri: &Uri) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, format!("{origin}{path}"))],
    )
        .into_response()
}
