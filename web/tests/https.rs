//! The binary's default: HTTPS with a development certificate made at first start under the
//! data folder, and plain HTTP that redirects to it. Checked with a real TLS client that trusts
//! exactly that certificate. Certificate files are read again on SIGHUP: new connections get
//! the new certificate, and files that do not load leave the old one in use.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{free_port, spawn, Server};
use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer};

fn wait_for(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A TLS client session to `port` that trusts exactly the certificates in `ca_pems`.
fn tls_client(
    port: u16,
    ca_pems: &[&[u8]],
) -> tokio_rustls::rustls::StreamOwned<tokio_rustls::rustls::ClientConnection, TcpStream> {
    use tokio_rustls::rustls::{self, pki_types::ServerName, RootCertStore};
    let mut roots = RootCertStore::empty();
    for pem in ca_pems {
        for c in CertificateDer::pem_slice_iter(pem) {
            roots.add(c.unwrap()).unwrap();
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    rustls::StreamOwned::new(conn, sock)
}

fn https_get(port: u16, path: &str, ca_pem: &[u8]) -> std::io::Result<String> {
    let mut tls = tls_client(port, &[ca_pem]);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    Ok(String::from_utf8_lossy(&out).to_string())
}

#[test]
fn https_by_default_with_a_development_certificate_and_http_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let (http, https) = (free_port(), free_port());
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_sportello"))
            .args(["--data-dir", &dir.path().display().to_string()])
            .args([
                "--listen",
                &format!("127.0.0.1:{http}"),
                "--https-listen",
                &format!("127.0.0.1:{https}"),
                "--admin-listen",
                &format!("127.0.0.1:{}", free_port()),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(https);
    wait_for(http);
    let cert = std::fs::read(dir.path().join("dev-cert.pem"))
        .expect("development certificate kept under the data folder");
    let names = std::fs::read_to_string(dir.path().join("dev-cert.names")).unwrap();
    assert!(names.lines().any(|l| l == "localhost") && names.lines().any(|l| l == "127.0.0.1"));

    let page = https_get(https, "/", &cert).unwrap();
    assert!(
        page.starts_with("HTTP/1.1 200"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(page.contains("Ricevimento uffici"));
    // Over HTTPS the cookies are Secure; the staff area redirects to its login page.
    let csrf = page
        .lines()
        .find(|l| l.to_lowercase().starts_with("set-cookie: __host-csrf="))
        .expect("csrf cookie");
    assert!(csrf.contains("; Secure"), "{csrf}");
    // The local mailbox and the metrics are on the administration listener only.
    for path in ["/posta", "/metrics"] {
        let r = https_get(https, path, &cert).unwrap();
        assert!(r.starts_with("HTTP/1.1 404"), "{path}: {r}");
    }
    let staff = https_get(https, "/ufficio", &cert).unwrap();
    assert!(
        staff.to_lowercase().contains("location: /ufficio/accesso"),
        "{staff}"
    );

    let r = http_get(http, "/servizi/11?settimana=2026-11-30");
    assert!(r.starts_with("HTTP/1.1 308"), "{r}");
    assert!(
        r.to_lowercase().contains(&format!(
            "location: https://localhost:{https}/servizi/11?settimana=2026-11-30"
        )),
        "{r}"
    );

    // A client that trusts another certificate (made the same way elsewhere) is refused.
    let elsewhere = tempfile::tempdir().unwrap();
    let (other, _) =
        certs::development_certificate(elsewhere.path(), &["localhost".to_string()]).unwrap();
    let refused = https_get(https, "/", &std::fs::read(other).unwrap()).unwrap_err();
    assert!(
        refused.to_string().contains("invalid peer certificate"),
        "{refused}"
    );
}

/// The certificate the server presents to a new connection (DER), the client trusting `cas`.
fn presented(port: u16, cas: &[&[u8]]) -> Vec<u8> {
    let mut tls = tls_client(port, cas);
    write!(
        tls,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    tls.conn.peer_certificates().unwrap()[0].to_vec()
}

fn der(pem: &[u8]) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem)
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

fn signal(child: &Child, name: &str) {
    assert!(Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn sighup_reads_the_certificate_files_again_and_a_bad_pair_keeps_the_old_one() {
    // Two certificates for localhost, A and B, each with its key.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let names = ["localhost".to_string()];
    let (cert_a, key_a) = certs::development_certificate(a.path(), &names).unwrap();
    let (cert_b, key_b) = certs::development_certificate(b.path(), &names).unwrap();
    let (pem_a, pem_b) = (
        std::fs::read(&cert_a).unwrap(),
        std::fs::read(&cert_b).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let (chain, key) = (dir.path().join("chain.pem"), dir.path().join("key.pem"));
    std::fs::copy(&cert_a, &chain).unwrap();
    std::fs::copy(&key_a, &key).unwrap();

    let (http, https) = (free_port(), free_port());
    let (listen, https_listen) = (format!("127.0.0.1:{http}"), format!("127.0.0.1:{https}"));
    let (chain_arg, key_arg) = (chain.display().to_string(), key.display().to_string());
    let args = [
        "--tls",
        "files",
        "--tls-cert",
        &chain_arg,
        "--tls-key",
        &key_arg,
        "--listen",
        &listen,
        "--https-listen",
        &https_listen,
    ];
    let mut server = Server(spawn(dir.path(), http, &args, "info", Stdio::piped()));
    let both: [&[u8]; 2] = [&pem_a, &pem_b];
    assert_eq!(presented(https, &both), der(&pem_a));

    // Renewed files (B), then SIGHUP: new connections get B.
    std::fs::copy(&cert_b, &chain).unwrap();
    std::fs::copy(&key_b, &key).unwrap();
    signal(&server.0, "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while presented(https, &both) != der(&pem_b) {
        assert!(Instant::now() < deadline, "still presenting A after SIGHUP");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A client that trusts only A is now refused.
    assert!(https_get(https, "/healthz", &pem_a)
        .is_err_and(|e| e.to_string().contains("invalid peer certificate")));

    // A bad pair (A's certificate with B's key), then SIGHUP: B stays, and the log says why.
    std::fs::copy(&cert_a, &chain).unwrap();
    signal(&server.0, "HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(presented(https, &both), der(&pem_b));
    // A file that is not a certificate at all: the same.
    std::fs::write(&chain, "renewal in progress").unwrap();
    signal(&server.0, "HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(presented(https, &both), der(&pem_b));

    signal(&server.0, "TERM");
    assert!(server.0.wait().unwrap().success());
    let mut log = String::new();
    server
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert_eq!(
        log.matches("SIGHUP: certificate reloaded").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("the previous one stays in use").count(),
        2,
        "{log}"
    );
    assert!(log.contains("holds no certificate"), "{log}");
}
