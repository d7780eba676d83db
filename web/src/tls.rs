//! Serving connections: the router over rustls or plain HTTP through one accept loop with
//! header timeouts and connection caps, and the plain-HTTP listener that only redirects to HTTPS.
//! Over TLS a browser may choose HTTP/2 (ALPN): the page, its assets and the room's WebSocket
//! (RFC 8441) then share one connection, so joining costs no new TCP and TLS handshakes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The addresses of this machine's network interfaces (for the development certificate).
pub fn machine_addresses() -> Vec<std::net::IpAddr> {
    if_addrs::get_if_addrs()
        .map(|v| v.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default()
}

/// Marks a request that came in over TLS (cookies are then `Secure`).
#[derive(Debug, Clone, Copy)]
pub struct Https;

/// What one client may hold: how long it may take to send a request's headers (a slow client
/// that sends them byte by byte holds nothing for long) and how many connections it may keep
/// open, from one address and in all.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    /// How long an HTTP/2 connection may carry nothing either way before it is closed; longer
    /// than the room socket's heartbeat (`Config::check`), so an open room keeps its connection.
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_per_client: usize,
    /// Reverse proxies: every client comes through them, so the per-client cap does not apply.
    pub trusted_proxies: Vec<IpAddr>,
}

/// The connections open now, in all and per client address.
struct Open {
    total: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place among the open ones, given back when it closes.
struct Place {
    open: Arc<Open>,
    client: IpAddr,
}

impl Open {
    fn take(self: &Arc<Self>, client: IpAddr, limits: &Limits) -> Option<Place> {
        if self.total.fetch_add(1, Ordering::Relaxed) >= limits.max_connections {
            self.total.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let mut per = self.per_client.lock().expect("connections lock");
        let n = per.entry(client).or_insert(0);
        if *n >= limits.max_per_client && !limits.trusted_proxies.contains(&client) {
            drop(per);
            self.total.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        *n += 1;
        Some(Place {
            open: self.clone(),
            client,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.open.total.fetch_sub(1, Ordering::Relaxed);
        let mut per = self.open.per_client.lock().expect("connections lock");
        if let Some(n) = per.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.client);
            }
        }
    }
}

/// Serves `app` on `listener` until `stop` resolves: over TLS when `tls` is given (a client
/// that does not finish its handshake in 10 seconds is dropped), else plain HTTP. One bad
/// client never stops the loop; the `limits` bound what each may hold. When `stop` resolves it
/// accepts no more connections, lets the requests in flight finish (at most `DRAIN` seconds)
/// and returns.
pub async fn serve(
    app: Router,
    listener: TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(stop);
    let graceful = GracefulShutdown::new();
    let acceptor = tls.map(TlsAcceptor::from);
    let open = Arc::new(Open {
        total: AtomicUsize::new(0),
        per_client: Mutex::new(HashMap::new()),
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // The request line and headers must fit here (431 beyond), not hyper's 400 KiB.
        .max_buf_size(H1_BUFFER);
    builder
        .http2()
        .timer(TokioTimer::new())
        // WebSockets over HTTP/2 (RFC 8441): the room's socket on the page's own connection.
        .enable_connect_protocol()
        .max_concurrent_streams(H2_STREAMS)
        // What one connection may make the server hold: request bodies are at most 16 KiB and
        // room messages smaller, so small receive windows cost nothing; and at most 64 KiB
        // waiting per stream for a client that does not read.
        .initial_stream_window_size(64 * 1024)
        .initial_connection_window_size(256 * 1024)
        .max_send_buf_size(64 * 1024)
        // A request's headers: at most 16 KiB (answered 431 beyond).
        .max_header_list_size(H2_HEADERS)
        // "Rapid reset" (CVE-2023-44487): a client that cancels more than this many requests
        // before they are even taken is sent GOAWAY and its connection closed.
        .max_pending_accept_reset_streams(H2_EARLY_RESETS)
        // And a client whose streams the server itself had to reset this many times.
        .max_local_error_reset_streams(Some(H2_ERROR_RESETS));
    let builder = Arc::new(builder);
    let serve_one = |stream: tokio::net::TcpStream, peer: std::net::SocketAddr| {
        let Some(place) = open.take(peer.ip(), &limits) else {
            // Over the caps: closed at once, costing nothing more.
            return;
        };
        // Small writes go out at once: a room's signaling messages, and a TLS record that
        // follows another, would otherwise wait for the peer's delayed ACK (up to 40 ms).
        let _ = stream.set_nodelay(true);
        let (acceptor, app, builder) = (acceptor.clone(), app.clone(), builder.clone());
        let watcher = graceful.watcher();
        let header_timeout = limits.header_timeout;
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            let _place = place;
            // The peer's address, as `ConnectInfo` gives it.
            let app = app.layer(axum::Extension(ConnectInfo(peer)));
            match acceptor {
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        header_timeout.max(Duration::from_secs(1)),
                        acceptor.accept(stream),
                    );
                    let Ok(Ok(tls)) = handshake.await else {
                        return;
                    };
                    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                    let (tls, quiet) = Watched::new(tls);
                    let service = TowerToHyperService::new(app.layer(axum::Extension(Https)));
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                    let conn = watcher.watch(conn);
                    if h2 {
                        // HTTP/1 closes an idle connection by its header timeout; HTTP/2 has
                        // none, so a connection silent both ways that long is closed here.
                        tokio::select! {
                            _ = conn => {}
                            _ = quiet.for_at_least(idle_timeout) => {}
                        }
                    } else {
                        let _ = conn.await;
                    }
                }
                None => {
                    let service = TowerToHyperService::new(app);
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
            }
        });
    };
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut stop => break,
        };
        match accepted {
            Ok((stream, peer)) => serve_one(stream, peer),
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // Connections already in the listen queue are taken too: closing the listener would
    // reset them, and their clients would see an error rather than a closed port.
    loop {
        let pending = tokio::select! {
            biased;
            a = listener.accept() => a,
            _ = std::future::ready(()) => break,
        };
        match pending {
            Ok((stream, peer)) => serve_one(stream, peer),
            Err(_) => break,
        }
    }
    drop(listener);
    // A connection taken a moment ago may not have sent its request yet, and the graceful
    // shutdown closes a connection with no request in progress: a moment for it to arrive.
    tokio::time::sleep(SETTLE).await;
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the drain time: closing them");
    }
    Ok(())
}

/// How long a stopping server, no longer accepting, lets the connections it has just taken
/// send their first request before it closes those without one.
const SETTLE: Duration = Duration::from_millis(200);

/// Streams one HTTP/2 connection may have open at once (requests and room sockets).
const H2_STREAMS: u32 = 100;

/// The read buffer of an HTTP/1.1 connection: the most a request line and its headers take.
const H1_BUFFER: usize = 32 * 1024;

/// The largest header list (names and values) of one HTTP/2 request.
const H2_HEADERS: u32 = 16 * 1024;

/// Requests one HTTP/2 connection may cancel before the server takes them, at one time.
const H2_EARLY_RESETS: usize = 20;

/// Streams of one HTTP/2 connection the server may reset for the client's errors.
const H2_ERROR_RESETS: usize = 200;

/// A connection's stream, noting when bytes last went either way.
struct Watched<T> {
    inner: T,
    last: Arc<Quiet>,
}

/// When a watched connection last carried bytes.
struct Quiet {
    start: tokio::time::Instant,
    /// Milliseconds from `start`.
    last_ms: AtomicU64,
}

impl<T> Watched<T> {
    fn new(inner: T) -> (Self, Arc<Quiet>) {
        let quiet = Arc::new(Quiet {
            start: tokio::time::Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        let last = quiet.clone();
        (Watched { inner, last }, quiet)
    }
}

impl Quiet {
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once the connection has carried nothing for `idle`.
    async fn for_at_least(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let due = last + idle;
            if tokio::time::Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Watched<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.last.touch();
        }
        r
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.last.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.last.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How long a stopping server waits for the requests in flight.
pub const DRAIN: Duration = Duration::from_secs(10);

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
