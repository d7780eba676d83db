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

/// An SMTP server for load and ordering checks, in this process: it speaks enough SMTP for a
/// real client (EHLO, MAIL, RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT), takes `delay` to
/// accept each message (as a busy relay does), answers 451 to every `fail_every`-th message
/// (the client must try it again), and records what it accepted and how many sessions were
/// open at once. Unlike aiosmtpd it costs almost no CPU, so a load measures the sender. Started
/// with `greylisting`, it also turns away the first attempt for each recipient as Postfix with
/// postgrey does, with a 450 that repeats the address.
pub struct SlowSink {
    pub port: u16,
    state: std::sync::Arc<SinkState>,
}

/// One message the sink accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub message_id: String,
    pub subject: String,
    pub at: Instant,
}

#[derive(Default)]
struct SinkState {
    accepted: std::sync::Mutex<Vec<Accepted>>,
    /// With greylisting: the recipients already turned away once (`None`: no greylisting).
    greylisted: Option<std::sync::Mutex<std::collections::HashSet<String>>>,
    data: std::sync::atomic::AtomicUsize,
    open: std::sync::atomic::AtomicUsize,
    most_open: std::sync::atomic::AtomicUsize,
}

impl SlowSink {
    pub async fn start(delay: Duration, fail_every: Option<usize>) -> std::io::Result<SlowSink> {
        Self::start_with(delay, fail_every, false).await
    }

    /// A sink that greylists: each recipient's first `RCPT` is answered
    /// `450 4.2.0 <address>: Recipient address rejected: Greylisted`, later ones are accepted.
    pub async fn greylisting() -> std::io::Result<SlowSink> {
        Self::start_with(Duration::ZERO, None, true).await
    }

    async fn start_with(
        delay: Duration,
        fail_every: Option<usize>,
        greylisting: bool,
    ) -> std::io::Result<SlowSink> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = std::sync::Arc::new(SinkState {
            greylisted: greylisting.then(Default::default),
            ..SinkState::default()
        });
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = st.open.fetch_add(1, SeqCst) + 1;
                    st.most_open.fetch_max(now, SeqCst);
                    let _ = sink_session(stream, &st, delay, fail_every).await;
                    st.open.fetch_sub(1, SeqCst);
                });
            }
        });
        Ok(SlowSink { port, state })
    }

    /// What was accepted so far, in the order it was.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.state.accepted.lock().unwrap().clone()
    }

    /// The most sessions that were open at once.
    pub fn most_sessions(&self) -> usize {
        self.state
            .most_open
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn sink_session(
    stream: tokio::net::TcpStream,
    st: &SinkState,
    delay: Duration,
    fail_every: Option<usize>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 sink ESMTP\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        if let (Some(seen), "RCPT") = (&st.greylisted, verb.as_str()) {
            let to = line
                .split_once('<')
                .and_then(|(_, r)| r.split_once('>'))
                .map_or("", |(a, _)| a)
                .to_string();
            if seen.lock().unwrap().insert(to.clone()) {
                let answer =
                    format!("450 4.2.0 <{to}>: Recipient address rejected: Greylisted\r\n");
                w.write_all(answer.as_bytes()).await?;
                continue;
            }
        }
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                w.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            "DATA" => {
                w.write_all(b"354 go on\r\n").await?;
                let (mut message_id, mut subject, mut in_headers) =
                    (String::new(), String::new(), true);
                loop {
                    line.clear();
                    if r.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    let l = line.trim_end_matches(['\r', '\n']);
                    if l == "." {
                        break;
                    }
                    if l.is_empty() {
                        in_headers = false;
                    }
                    if in_headers {
                        if let Some((name, value)) = l.split_once(':') {
                            if name.eq_ignore_ascii_case("message-id") {
                                message_id = value.trim().to_string();
                            } else if name.eq_ignore_ascii_case("subject") {
                                subject = value.trim().to_string();
                            }
                        }
                    }
                }
                tokio::time::sleep(delay).await;
                let n = st.data.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                if fail_every.is_some_and(|k| n.is_multiple_of(k)) {
                    b"451 try again later\r\n"
                } else {
                    st.accepted.lock().unwrap().push(Accepted {
                        message_id,
                        subject,
                        at: Instant::now(),
                    });
                    b"250 accepted\r\n"
                }
            }
            _ => b"502 not implemented\r\n",
        };
        w.write_all(answer).await?;
    }
}
