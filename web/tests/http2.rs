//! HTTP/2 over TLS (ALPN h2), as browsers choose it: pages over one connection, the room's
//! WebSocket as an RFC 8441 CONNECT stream on it, and a connection that carries nothing for
//! `--idle-timeout-seconds` closed (HTTP/2 has no header timeout to do it); and the hostile
//! clients HTTP/2 makes possible (oversized header blocks, requests cancelled in a flood).
//! Checked with hyper's own HTTP/2 client (and its `h2` layer) over rustls, trusting the
//! development certificate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::ServerName};

mod common;
use common::{free_port, Server};

/// A TLS connection to `port` offering `alpn`, trusting the certificate in `pem`.
async fn tls(
    port: u16,
    pem: &[u8],
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// An HTTP/2 session to `port` sending bodies of type `B`; the second half resolves when the
/// server closes it.
async fn h2<B>(
    port: u16,
    pem: &[u8],
) -> (
    hyper::client::conn::http2::SendRequest<B>,
    tokio::task::JoinHandle<Instant>,
)
where
    B: hyper::body::Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tls(port, pem, &[b"h2", b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let closed = tokio::spawn(async move {
        let _ = conn.await;
        Instant::now()
    });
    (send, closed)
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(format!("https://localhost{path}"))
        .body(Empty::new())
        .unwrap()
}

/// The binary serving HTTPS with its development certificate (and `more` arguments): the
/// process, its HTTPS port, the certificate (PEM) and the data folder.
fn start_tls(more: &[&str]) -> (std::process::Child, u16, Vec<u8>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (http, https) = (free_port(), free_port());
    let (listen, https_listen) = (format!("127.0.0.1:{http}"), format!("127.0.0.1:{https}"));
    let mut args = vec!["--listen", &listen, "--https-listen", &https_listen];
    args.extend_from_slice(more);
    let child = common::spawn(
        dir.path(),
        http,
        &args,
        "error",
        std::process::Stdio::null(),
    );
    let pem = std::fs::read(dir.path().join("dev-cert.pem")).unwrap();
    (child, https, pem, dir)
}

/// A room socket's opening over HTTP/2 (RFC 8441): CONNECT with `:protocol` `websocket` when
/// `websocket`, else a plain CONNECT.
fn room_socket(https: u16, code: &str, websocket: bool) -> Request<Empty<Bytes>> {
    let mut connect = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("https://localhost:{https}/ws/stanza/{code}"))
        .header("sec-websocket-version", "13")
        .body(Empty::new())
        .unwrap();
    if websocket {
        connect
            .extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
    }
    connect
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_pages_share_a_connection_the_room_socket_opens_on_it_and_an_idle_one_closes() {
    // The idle timeout must be longer than the room's heartbeat.
    let (child, https, pem, _dir) = start_tls(&[
        "--idle-timeout-seconds",
        "2",
        "--room-heartbeat-seconds",
        "1",
    ]);
    let _server = Server(child);

    // Several pages on one connection, answered over HTTP/2 with the usual headers.
    let (mut send, closed) = h2::<Empty<Bytes>>(https, &pem).await;
    for path in ["/", "/servizi/11", "/static/room.js"] {
        let r = send.send_request(get(path)).await.unwrap();
        assert_eq!(r.version(), Version::HTTP_2, "{path}");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        assert!(!r.into_body().collect().await.unwrap().to_bytes().is_empty());
    }
    let last_request = Instant::now();
    // Then nothing either way: closed after the idle timeout, not before.
    let closed_at = tokio::time::timeout(Duration::from_secs(15), closed)
        .await
        .expect("an idle HTTP/2 connection is closed")
        .unwrap();
    let idle = closed_at - last_request;
    assert!(
        idle >= Duration::from_millis(1900) && idle < Duration::from_secs(6),
        "closed after {idle:?}"
    );

    // The room's socket: an extended CONNECT (RFC 8441) is accepted as a WebSocket (200, no
    // 101 in HTTP/2), on a connection that keeps serving pages beside it.
    let (mut send, _closed) = h2::<Empty<Bytes>>(https, &pem).await;
    let r = send
        .send_request(room_socket(https, "NON-ESISTE", true))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = send.send_request(get("/healthz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A CONNECT that is not a WebSocket's is refused, and the server keeps serving.
    let r = send
        .send_request(room_socket(https, "NON-ESISTE", false))
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());

    // A body far over the limit (and over the stream's window) is refused as over HTTP/1.1,
    // and the connection goes on serving.
    let (mut post, _closed) = h2::<Full<Bytes>>(https, &pem).await;
    let huge = Request::post("https://localhost/servizi/11/prenota")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(vec![b'x'; 1024 * 1024])))
        .unwrap();
    let r = post.send_request(huge).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = post
        .send_request(
            Request::get("https://localhost/healthz")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A client that offers only HTTP/1.1 still gets it.
    let old = tls(https, &pem, &[b"http/1.1"]).await;
    assert_eq!(
        old.get_ref().1.alpn_protocol(),
        Some(b"http/1.1".as_slice())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_a_room_socket_on_http2_with_1012_and_the_server_exits() {
    use tokio::io::AsyncReadExt;
    // Not `common::Server`: this test stops the process itself and reads how it ended.
    let (mut server, https, pem, _dir) = start_tls(&[]);
    let (mut send, _closed) = h2::<Empty<Bytes>>(https, &pem).await;
    let r = send
        .send_request(room_socket(https, "SP-AAAA-BBBB", true))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut socket = TokioIo::new(hyper::upgrade::on(r).await.unwrap());

    let stopped = Instant::now();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap()
        .success());
    // The room socket, a stream of the HTTP/2 connection, is closed with 1012 (service
    // restart): the page reconnects by itself.
    let mut frame = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut frame))
        .await
        .expect("a close frame in time")
        .unwrap();
    assert!(n >= 4, "a close frame");
    assert_eq!(frame[0] & 0x0f, 0x8, "opcode close");
    assert_eq!(u16::from_be_bytes([frame[2], frame[3]]), 1012);
    // And the process ends cleanly, without waiting out the drain time for that connection.
    let status = common::exits_within(&mut server, Duration::from_secs(15));
    assert!(status.success(), "{status}");
    assert!(
        stopped.elapsed() < Duration::from_secs(8),
        "{:?}",
        stopped.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_room_keeps_its_http2_connection_past_the_idle_timeout_by_its_heartbeat() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::{protocol::Role, Message};
    let (child, https, pem, _dir) = start_tls(&[
        "--idle-timeout-seconds",
        "2",
        "--room-heartbeat-seconds",
        "1",
        "--room-hello-seconds",
        "30",
    ]);
    let _server = Server(child);
    let (mut send, closed) = h2::<Empty<Bytes>>(https, &pem).await;
    let r = send
        .send_request(room_socket(https, "SP-AAAA-BBBB", true))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let io = TokioIo::new(hyper::upgrade::on(r).await.unwrap());
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Client, None).await;
    // Three idle timeouts long, the socket answers the server's pings (the browser does) and
    // sends nothing else; the pings keep the connection open.
    let mut pings = 0;
    let _ = tokio::time::timeout(Duration::from_secs(6), async {
        while let Some(Ok(m)) = ws.next().await {
            if matches!(m, Message::Ping(_)) {
                pings += 1;
            }
        }
    })
    .await;
    assert!(pings >= 4, "{pings} pings");
    assert!(!closed.is_finished(), "the connection was closed");
    let r = send.send_request(get("/healthz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// An HTTP/2 session on the `h2` layer itself, which lets a client cancel its own requests;
/// the second half resolves, with how the connection ended, when it ends.
async fn raw_h2(
    port: u16,
    pem: &[u8],
) -> (
    h2::client::SendRequest<Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let stream = tls(port, pem, &[b"h2"]).await;
    let (send, conn) = h2::client::handshake(stream).await.unwrap();
    (send, tokio::spawn(conn))
}

/// One raw HTTP/1.1 request over TLS to `port`; whatever the server answered before it closed
/// (it may answer and close before it has read all of the request).
async fn http1(port: u16, pem: &[u8], request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tls(port, pem, &[b"http/1.1"]).await;
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_over_the_limit_are_refused_with_431_over_http1_and_http2() {
    let (child, https, pem, _dir) = start_tls(&[]);
    let _server = Server(child);
    let cookie = |kib: usize| format!("a={}", "x".repeat(kib * 1024));
    // A booking form sent with oversized headers: refused with 431 before any of the
    // application sees it (which would answer a form without its CSRF token otherwise).
    let booking = |kib: usize| {
        Request::post("https://localhost/servizi/11/prenota")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie(kib))
            .body(Full::new(Bytes::from_static(b"nome=Anna")))
            .unwrap()
    };

    // HTTP/2: 20 KiB of cookie is over the 16 KiB limit; the stream is answered 431 and the
    // connection goes on serving.
    let (mut send, _closed) = h2::<Full<Bytes>>(https, &pem).await;
    let r = send.send_request(booking(20)).await.unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let healthz = || {
        Request::get("https://localhost/healthz")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let r = send.send_request(healthz()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A header block of 1 MiB is not buffered: that connection is closed.
    let (mut send, closed) = h2::<Full<Bytes>>(https, &pem).await;
    let answer = send.send_request(booking(1024)).await;
    assert!(
        answer.as_ref().map_or(true, |r| r.status()
            == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        "{answer:?}"
    );
    tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the connection is closed")
        .unwrap();

    // HTTP/1.1: a request whose headers do not fit in 32 KiB is answered 431.
    let answer = http1(
        https,
        &pem,
        &format!(
            "POST /servizi/11/prenota HTTP/1.1\r\nHost: localhost\r\nCookie: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\nnome=Anna",
            cookie(40)
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Headers within the limits are served as ever, on both.
    let (mut send, _closed) = h2::<Empty<Bytes>>(https, &pem).await;
    let fine = Request::get("https://localhost/healthz")
        .header("cookie", cookie(12))
        .body(Empty::new())
        .unwrap();
    assert_eq!(
        send.send_request(fine).await.unwrap().status(),
        StatusCode::OK
    );
    let answer = http1(
        https,
        &pem,
        &format!(
            "GET /healthz HTTP/1.1\r\nHost: localhost\r\nCookie: {}\r\nConnection: close\r\n\r\n",
            cookie(24)
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Sends `n` requests on `send`, each cancelled (RST_STREAM) as soon as it is sent, without
/// waiting for the server; how many went out before the connection refused more. The caller
/// keeps `send`: a client that drops it closes the connection itself.
async fn cancelled_requests(send: &h2::client::SendRequest<Bytes>, n: usize) -> usize {
    for sent in 0..n {
        let Ok(mut send) = send.clone().ready().await else {
            return sent;
        };
        let request = Request::get("https://localhost/").body(()).unwrap();
        let Ok((_answer, mut stream)) = send.send_request(request, false) else {
            return sent;
        };
        stream.send_reset(h2::Reason::CANCEL);
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_cancelled_requests_over_http2_closes_that_connection_and_others_are_served() {
    let (child, https, pem, _dir) = start_tls(&[]);
    let _server = Server(child);

    // A few cancelled requests (a person leaving a page while it loads) cost nothing: the
    // connection goes on.
    let (send, _ended) = raw_h2(https, &pem).await;
    assert_eq!(cancelled_requests(&send, 10).await, 10);
    let mut send = send.ready().await.unwrap();
    let (answer, _) = send
        .send_request(
            Request::get("https://localhost/healthz").body(()).unwrap(),
            true,
        )
        .unwrap();
    assert_eq!(answer.await.unwrap().status(), StatusCode::OK);

    // "Rapid reset" (CVE-2023-44487): 200 requests cancelled at once, so that the server
    // would start work for requests that no longer count against any limit. The server sends
    // GOAWAY (ENHANCE_YOUR_CALM) and closes that connection; a connection left open would fail
    // here by the timeout.
    let (send, ended) = raw_h2(https, &pem).await;
    cancelled_requests(&send, 200).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), ended)
        .await
        .expect("the flooding connection is closed")
        .unwrap();
    let e = ended.expect_err("closed by the server, not by the client");
    // The client is still writing when the server closes: it reads the GOAWAY, or its next
    // write finds the connection gone.
    assert!(
        (e.is_go_away() && e.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM)) || e.is_io(),
        "{e}"
    );

    // The server goes on serving everyone else.
    let (mut other, _closed) = h2::<Empty<Bytes>>(https, &pem).await;
    let r = other.send_request(get("/healthz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
