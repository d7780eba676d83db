//! What the tests of the real binary share: a free port, the process (killed when the test
//! ends, whatever happens), and a plain HTTP GET.

#![allow(dead_code)] // each test file uses its own part

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `sportello` process, killed on drop.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// Starts the binary over a fresh data folder with `args`, and waits until `port` answers
    /// `/healthz` (plain HTTP).
    pub fn start<S: AsRef<OsStr>>(data_dir: &std::path::Path, port: u16, args: &[S]) -> Server {
        Server(spawn(data_dir, port, args, "error", Stdio::null()))
    }
}

/// Starts the binary over `data_dir` with `args` and the log level `log`, its standard output
/// going to `stdout`, and waits until `port` answers `/healthz` (plain HTTP). For tests that
/// stop the process themselves or read its output. A new data folder gets the demo comune.
pub fn spawn<S: AsRef<OsStr>>(
    data_dir: &std::path::Path,
    port: u16,
    args: &[S],
    log: &str,
    stdout: Stdio,
) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sportello"));
    cmd.arg("--data-dir").arg(data_dir).arg("--demo").args(args);
    start(cmd, port, log, stdout)
}

/// Starts `cmd` (the binary with its arguments, working directory and environment) with the
/// log level `log`, and waits until `port` answers `/healthz`. Unless `cmd` names one, the
/// administration listener gets a free port (two servers at once cannot share the default).
pub fn start(mut cmd: Command, port: u16, log: &str, stdout: Stdio) -> Child {
    if !cmd.get_args().any(|a| a == "--admin-listen") {
        cmd.arg("--admin-listen")
            .arg(format!("127.0.0.1:{}", free_port()));
    }
    let mut child = cmd
        .env("RUST_LOG", log)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .expect("the sportello binary");
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(port, "/healthz").is_none_or(|r| !r.ends_with("ok")) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server ended before answering on port {port}: {status}");
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// The arguments that serve plain HTTP on `port` of loopback, the administration listener on
/// `admin` when given (otherwise `start` picks a free port), then `more`.
pub fn plain_http(port: u16, admin: Option<u16>, more: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--tls".to_string(),
        "off".into(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
    ];
    if let Some(admin) = admin {
        args.extend(["--admin-listen".into(), format!("127.0.0.1:{admin}")]);
    }
    args.extend(more.iter().map(|a| a.to_string()));
    args
}

/// Waits for a stopping process to end by itself, failing the test after `within`.
pub fn exits_within(child: &mut Child, within: Duration) -> ExitStatus {
    let since = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(since.elapsed() < within, "still running after {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[path = "../../../tests/src/ports.rs"]
mod ports;
pub use ports::free_port;

/// A GET over plain HTTP, the whole answer (status line, headers, body), or none when the
/// server does not answer.
pub fn get(port: u16, path: &str) -> Option<String> {
    get_with(port, path, "")
}

/// A GET with more request headers (`"Cookie: lang=en\r\n"`).
pub fn get_with(port: u16, path: &str, headers: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
