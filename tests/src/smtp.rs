//! A real SMTP server on loopback: aiosmtpd (PyPI, installed by `scripts/test` in
//! `.venv-mail`) storing every message it accepts in a Maildir. The server under test speaks
//! SMTP to it over a socket; the tests read what arrived from the Maildir's files. Killing it and
//! starting it again on the same port and Maildir is an SMTP outage.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The aiosmtpd process, killed on drop.
pub struct SmtpServer {
    child: Child,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python that has aiosmtpd: `SPORTELLO_TEST_AIOSMTPD`, else the repository's
/// `.venv-mail`. Missing: `None` (the test is skipped with a message), except under CI.
pub fn aiosmtpd_python() -> Option<PathBuf> {
    let p = std::env::var_os("SPORTELLO_TEST_AIOSMTPD")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-mail/bin/python"));
    if p.exists() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!("aiosmtpd is not installed: run the tests with scripts/test");
    }
    eprintln!("skipped: aiosmtpd is not installed (scripts/test installs it)");
    None
}

/// Starts aiosmtpd on `127.0.0.1:port`, storing into `maildir` (made if missing), and waits
/// until it accepts connections.
pub fn start_smtp(python: &Path, port: u16, maildir: &Path) -> SmtpServer {
    let child = Command::new(python)
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    SmtpServer { child }
}

/// Every message received, oldest first.
pub fn received(maildir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(maildir.join("new"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// The `Message-ID` of every message received (one entry per message, so a message received
/// twice is there twice), read from the headers only.
pub fn received_message_ids(maildir: &Path) -> Vec<String> {
    let files: Vec<_> = std::fs::read_dir(maildir.join("new"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|raw| {
            let text = String::from_utf8_lossy(&raw);
            text.lines()
                .take_while(|l| !l.is_empty())
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("message-id")
                        .then(|| value.trim().to_string())
                })
                .unwrap_or_default()
        })
        .collect()
}
