//! The whole site as one router: each group of pages brings its own `router()`, merged here
//! with the limits every request shares. `serve` runs it with the background worker.

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::middleware;
use axum::routing::get;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::error::AppError;
use crate::state::AppState;
use crate::{assets, citizen, console, limits, mailbox, metrics, room, worker};

/// Largest request body accepted: forms are small, anything bigger is refused before parsing.
pub const MAX_BODY: usize = 16 * 1024;

/// Scripts only from this site's files (no inline script, no third party); styles allow the
/// email bodies shown in the developer's mailbox; images from this site, and from the town's
/// logo's site when `town_logo` is an address (`image_origin`); no framing by other sites.
pub fn content_security_policy(image_origin: Option<&str>) -> String {
    let images = match image_origin {
        Some(o) => format!("'self' data: {o}"),
        None => "'self' data:".to_string(),
    };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src {images}; font-src 'self'; connect-src 'self'; media-src 'self' blob:; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
}

/// A year, for browsers that have seen the site's real certificate.
const HSTS: &str = "max-age=31536000";

pub fn router(state: AppState) -> Router {
    // The pages whose POSTs cost the town something (an email, a held seat, a password check)
    // count against the client's limit.
    let limited = Router::new()
        .merge(citizen::router())
        .merge(console::session_router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            limits::limit_posts,
        ));
    let app = Router::new()
        .merge(limited)
        .merge(mailbox::router())
        .merge(room::router())
        .merge(console::router())
        .route("/static/{*path}", get(assets::serve))
        .route("/logo", get(logo))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(MAX_BODY));
    let hsts = state.hsts;
    let csp = content_security_policy(state.town.image_origin().as_deref());
    // One line per request: method, path with its tokens hidden, status, time.
    let app = app.layer(
        TraceLayer::new_for_http()
            .make_span_with(|req: &axum::http::Request<axum::body::Body>| {
                tracing::info_span!(
                    "http",
                    method = %req.method(),
                    path = %redact_path(req.uri().path())
                )
            })
            .on_request(())
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
    );
    let app = app.layer(middleware::from_fn_with_state(
        state.clone(),
        limits::mark_scheme,
    ));
    // Outside every route and layer that may answer with an error.
    let app = app.layer(middleware::from_fn_with_state(
        state.town.clone(),
        crate::error::error_pages,
    ));
    let app = security_headers(app, &csp).with_state(state);
    if hsts {
        app.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        ))
    } else {
        app
    }
}

/// The headers every answer carries. Links carry tokens, so no page tells another site where
/// the browser came from, and no page but the static files is kept in a cache.
fn security_headers(app: Router<AppState>, csp: &str) -> Router<AppState> {
    let set = |name, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    let csp = HeaderValue::from_str(csp).expect("the policy is plain text");
    app.layer(SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        csp,
    ))
    .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
    .layer(set(header::REFERRER_POLICY, "no-referrer"))
    .layer(set(header::X_FRAME_OPTIONS, "DENY"))
    .layer(SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ))
}

/// The town's logo, when it is a file (`town_logo`); its address changes with its content, so
/// browsers may keep it.
async fn logo(
    axum::extract::State(st): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match &st.town.logo {
        Some(crate::town::Logo::File {
            bytes,
            content_type,
            ..
        }) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            bytes.clone(),
        )
            .into_response(),
        _ => AppError::NotFound.into_response(),
    }
}

/// Serves HTTP on `listener` until the process ends, with the worker running beside it.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>,
    limits: crate::tls::Limits,
    worker_every: std::time::Duration,
) -> anyhow::Result<()> {
    let (stop_worker, worker_stop) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(worker::run(state.clone(), worker_every, worker_stop));
    let hub = state.hub.clone();
    let stop = async move {
        stop_signal().await;
        tracing::info!("stopping: no new connections, finishing the requests in flight");
        // Room pages reconnect by themselves, to this server once it is back.
        hub.shutdown();
    };
    let hub = state.hub.clone();
    crate::tls::serve(router(state), listener, tls, limits, stop).await?;
    // Give the room sockets a moment to send their 1012 and close.
    for _ in 0..20 {
        if hub.counts().0 == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The worker ends after the email in flight, if any.
    let _ = stop_worker.send(true);
    if tokio::time::timeout(crate::tls::DRAIN, worker)
        .await
        .is_err()
    {
        tracing::warn!("the outbox worker did not stop in time");
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM (systemd, docker stop) or Ctrl-C.
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// `ok` when the database answers; 503 otherwise (for load balancers and monitoring).
async fn health(
    axum::extract::State(st): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match st.store.ping().await {
        Ok(()) => "ok".into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "database unreachable",
            )
                .into_response()
        }
    }
}

/// A path as the request log shows it: the signed tokens and booking codes in links (which open
/// a booking or a room) are replaced by `:token` and `:code`, so that logs hold no keys.
pub fn redact_path(path: &str) -> String {
    let mut out = Vec::new();
    let mut hide_next: Option<&str> = None;
    for segment in path.split('/') {
        match hide_next.take() {
            Some(mark) if !segment.is_empty() => out.push(mark),
            _ => out.push(segment),
        }
        hide_next = match segment {
            "conferma" | "prenotazione" | "stanza" | "inviata" => Some(":token"),
            _ => None,
        };
        if out.len() >= 3 && out[out.len() - 2] == "ws" && segment == "stanza" {
            hide_next = Some(":code");
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::redact_path;

    #[test]
    fn the_request_log_shows_no_token() {
        for (path, shown) in [
            ("/conferma/AbC.dEf", "/conferma/:token"),
            (
                "/prenotazione/AbC.dEf/annulla",
                "/prenotazione/:token/annulla",
            ),
            ("/inviata/AbC.dEf", "/inviata/:token"),
            ("/stanza/AbC.dEf", "/stanza/:token"),
            ("/ws/stanza/SP-ABCD-EFGH", "/ws/stanza/:code"),
            ("/servizi/4/prenota", "/servizi/4/prenota"),
            ("/", "/"),
        ] {
            assert_eq!(redact_path(path), shown);
        }
    }
}
