//! The request log of the real binary: one JSON line per request (`--log-format json`), with
//! the tokens of links hidden, and no personal data.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{free_port, get, spawn};

#[test]
fn requests_are_logged_as_json_lines_without_their_tokens() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let args = ["--tls", "off", "--listen", &listen, "--log-format", "json"];
    let mut child = spawn(dir.path(), port, &args, "info,sqlx=warn", Stdio::piped());
    let token = "Zm9vYmFyYmF6cXV4.c2VjcmV0LXNpZ25hdHVyZQ";
    let answer = get(port, &format!("/conferma/{token}")).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    get(port, "/servizi/4").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(!out.contains(token), "a token in the log:\n{out}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let request = |path: &str, status: &str| {
        lines.iter().any(|l| {
            l["span"]["path"] == path && l["fields"]["status"].to_string().contains(status)
        })
    };
    assert!(request("/conferma/:token", "400"), "{out}");
    assert!(request("/servizi/4", "200"), "{out}");
}
