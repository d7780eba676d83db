//! The whole site as one router: each group of pages brings its own `router()`, merged here
//! with the limits every request shares. The pages for the machine's own administrator (the
//! local mailbox, metrics) are another router, served on a listener of their own that the
//! public never reaches: behind a reverse proxy every request comes from this machine, so "from
//! loopback" cannot tell them apart. `serve` runs both with the background worker.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::error::AppError;
use crate::error::ErrorWords;
use crate::i18n::Lang;
use crate::state::AppState;
use crate::town::Town;
use crate::views::ErrorPage;
use crate::{admin, assets, citizen, console, extract, limits, mailbox, metrics, room, worker};

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
            state.limits.clone(),
            limits::limit_posts,
        ));
    let app = served_by_both(
        Router::new()
            .merge(limited)
            .merge(room::router())
            .merge(console::router()),
    )
    .layer(middleware::from_fn_with_state(
        state.metrics.clone(),
        metrics::track,
    ));
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
        state.limits.clone(),
        limits::mark_scheme,
    ));
    // Outside every route and layer that may answer with an error.
    let app = app.layer(middleware::from_fn_with_state(
        state.town.clone(),
        error_pages,
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

/// What both listeners serve beside their own routes: the static files and the logo (their
/// pages use them), health and readiness; an unknown path is "not found"; bodies are bounded.
fn served_by_both(routes: Router<AppState>) -> Router<AppState> {
    routes
        .route("/static/{*path}", get(assets::serve))
        .route("/logo", get(logo))
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The administration listener's router: the local mailbox (with the static files its pages
/// use), `/metrics`, `/healthz` and `/readyz`. Served only on `admin_listen` (loopback).
pub fn admin_router(state: AppState) -> Router {
    let csp = content_security_policy(state.town.image_origin().as_deref());
    let app = served_by_both(
        Router::new()
            .merge(mailbox::router())
            .route("/metrics", get(admin::show_metrics)),
    )
    .layer(middleware::from_fn_with_state(
        state.town.clone(),
        error_pages,
    ));
    security_headers(app, &csp).with_state(state)
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

/// Where the server listens.
pub struct Listeners {
    /// The public listener: HTTPS with `certificate`, plain HTTP without.
    pub public: tokio::net::TcpListener,
    /// The certificate, read again on SIGHUP.
    pub certificate: Option<Arc<certs::Certificate>>,
    /// The administration listener (see `admin_router`).
    pub admin: tokio::net::TcpListener,
}

/// Serves the site and the administration pages until SIGTERM or Ctrl-C, with the worker
/// running beside them. Stopping: `/readyz` turns 503 at once, the public listener accepts no
/// more connections and its requests in flight finish (`tls::DRAIN` at most), room sockets are
/// told to reconnect, the worker ends after the email in flight, and the administration
/// listener, which answers until then, closes last.
pub async fn serve(
    state: AppState,
    listeners: Listeners,
    limits: crate::tls::Limits,
    worker_every: Duration,
) -> anyhow::Result<()> {
    let Listeners {
        public,
        certificate,
        admin,
    } = listeners;
    let tls = certificate
        .as_ref()
        .map(|c| c.server_config())
        .transpose()?;
    let reloads = tokio::spawn(reload_on_hangup(certificate));
    let (stop_worker, worker_stop) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(worker::run(state.clone(), worker_every, worker_stop));
    let (stop_admin, admin_stop) = tokio::sync::oneshot::channel::<()>();
    let admin_limits = crate::tls::Limits {
        max_connections: ADMIN_CONNECTIONS,
        max_per_client: ADMIN_CONNECTIONS,
        ..limits.clone()
    };
    let admin = tokio::spawn(crate::tls::serve(
        admin_router(state.clone()),
        admin,
        None,
        admin_limits,
        async move {
            let _ = admin_stop.await;
        },
    ));
    if let Some(cluster) = state.cluster.clone() {
        tokio::spawn(cluster.run());
    }
    let (hub, draining) = (state.hub.clone(), state.draining.clone());
    let stopping = state.clone();
    let stop = async move {
        stop_signal().await;
        draining.store(true, Ordering::Relaxed);
        tracing::info!(
            "stopping: /readyz answers 503, no new connections, finishing the requests in flight"
        );
        // Another node takes this one's rooms as soon as their pages reconnect.
        if let Some(cluster) = &stopping.cluster {
            cluster.stop().await;
        }
        // Room pages reconnect by themselves, to this server once it is back.
        hub.shutdown();
    };
    let hub = state.hub.clone();
    crate::tls::serve(router(state), public, tls, limits, stop).await?;
    // Give the room sockets a moment to send their 1012 and close.
    let sockets_closing = tokio::time::Instant::now();
    while hub.counts().0 > 0 && sockets_closing.elapsed() < SOCKETS_GRACE {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The worker ends after the email in flight, if any.
    let _ = stop_worker.send(true);
    if tokio::time::timeout(crate::tls::DRAIN, worker)
        .await
        .is_err()
    {
        tracing::warn!("the outbox worker did not stop in time");
    }
    let _ = stop_admin.send(());
    let _ = admin.await;
    reloads.abort();
    tracing::info!("stopped");
    Ok(())
}

/// How long room sockets are given to send their 1012 and close.
const SOCKETS_GRACE: Duration = Duration::from_secs(2);

/// The longest a SIGTERM takes to end the process: the public requests in flight, the room
/// sockets, the email being sent and the administration requests, each bounded. systemd's
/// `TimeoutStopSec` and a container's stop grace period must be above it.
pub const STOP_BOUND: Duration =
    Duration::from_secs(3 * crate::tls::DRAIN.as_secs() + SOCKETS_GRACE.as_secs());

/// Connections the administration listener holds at once (Prometheus, a browser on /posta).
const ADMIN_CONNECTIONS: usize = 64;

/// On SIGHUP (`systemctl reload`), reads the certificate files again: new connections get the
/// new certificate; files that do not load leave the old one in use, with an error logged.
async fn reload_on_hangup(certificate: Option<Arc<certs::Certificate>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: the certificate will not be reloaded");
        return;
    };
    while hangups.recv().await.is_some() {
        match &certificate {
            None => tracing::info!("SIGHUP: no certificate to reload (TLS is off)"),
            Some(c) => match c.reload() {
                Ok(()) => tracing::info!("SIGHUP: certificate reloaded; new connections use it"),
                Err(e) => tracing::error!(
                    error = %e,
                    "SIGHUP: the new certificate does not load; the previous one stays in use"
                ),
            },
        }
    }
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

/// `ready` while the server takes new work and its database answers; 503 from SIGTERM on
/// (draining), so that a load balancer sends nothing new.
async fn ready(
    axum::extract::State(st): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if st.draining.load(Ordering::Relaxed) {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    match st.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(_) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "database unreachable",
        )
            .into_response(),
    }
}

/// `ok` when the database answers; 503 otherwise (for load balancers and monitoring).
async fn health(
    axum::extract::State(st): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match st.store.ping().await {
        Ok(()) => match &st.cluster {
            None => "ok".into_response(),
            Some(c) => {
                let accepting = !st.draining.load(Ordering::Relaxed);
                format!(
                    "ok\nnode: {}\nrooms: {}\nrooms served here: {}\nsockets forwarded to other nodes: {}\nforwarded sockets open now: {}\n",
                    c.id,
                    if accepting {
                        "accepting"
                    } else {
                        "not accepting (stopping)"
                    },
                    c.rooms_here(),
                    c.forwarded.load(Ordering::Relaxed),
                    c.forwarding.load(Ordering::Relaxed)
                )
                .into_response()
            }
        },
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

/// Renders the page of every error answer (its `ErrorWords`), with the town, like every page.
pub async fn error_pages(State(town): State<Arc<Town>>, req: Request, next: Next) -> Response {
    let l = extract::page_lang(req.headers(), extract::is_https(req.extensions()));
    let mut response = next.run(req).await;
    let Some(ErrorWords(text)) = response.extensions_mut().remove::<ErrorWords>() else {
        return response;
    };
    let english = Lang::from_code("en").filter(|en| *en != l);
    let page = ErrorPage {
        l,
        status: response.status().as_u16(),
        message: l.text(&text),
        message_en: english.map(|en| en.text(&text)),
    };
    match extract::render(&page, &town) {
        Ok(html) => {
            let (mut parts, _) = response.into_parts();
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Response::from_parts(parts, Body::from(html))
        }
        Err(e) => {
            tracing::error!(error = %e, "error page not rendered");
            response
        }
    }
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
