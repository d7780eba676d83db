//! The binary's default: HTTPS with a development certificate made at first start under the
//! data folder, and plain HTTP that redirects to it. Checked with a real TLS client that trusts
//! exactly that certificate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{free_port, Server};

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

fn https_get(port: u16, path: &str, ca_pem: &[u8]) -> std::io::Result<String> {
    use tokio_rustls::rustls::{self, pki_types::ServerName, RootCertStore};
    let mut roots = RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &ca_pem[..]) {
        roots.add(c.unwrap()).unwrap();
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
    let mut tls = rustls::StreamOwned::new(conn, sock);
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
