//! Backing up the embedded database while the server runs and putting the copy back: what was
//! in the database at the backup is there again, and the server starts on it.

use std::process::Command;

mod common;
use common::{free_port, plain_http, Server};

fn cli(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sportello"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

#[test]
fn a_backup_taken_while_running_restores_into_a_working_server() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let args = plain_http(port, None, &[]);
    let server = Server::start(dir.path(), port, &args);
    // A change made while the server runs, then the backup, then a change after it.
    let made = cli(
        dir.path(),
        &["admin", "create", "--email", "prima@comune.example.it"],
    );
    assert!(made.status.success(), "{made:?}");
    let copy = dir.path().join("copia.db");
    let backup = cli(dir.path(), &["backup", copy.to_str().unwrap()]);
    assert!(backup.status.success(), "{backup:?}");
    let again = cli(dir.path(), &["backup", copy.to_str().unwrap()]);
    assert!(
        !again.status.success(),
        "an existing file is never overwritten"
    );
    let after = cli(
        dir.path(),
        &["admin", "create", "--email", "dopo@comune.example.it"],
    );
    assert!(after.status.success());
    drop(server);

    // Not a database: refused, nothing moved.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all").unwrap();
    assert!(!cli(dir.path(), &["restore", junk.to_str().unwrap()])
        .status
        .success());

    let restored = cli(dir.path(), &["restore", copy.to_str().unwrap()]);
    assert!(restored.status.success(), "{restored:?}");
    assert!(String::from_utf8_lossy(&restored.stdout).contains("before-restore"));
    let migrated = cli(dir.path(), &["migrate"]);
    assert!(String::from_utf8_lossy(&migrated.stdout).contains("database schema at migration"));
    let _server = Server::start(dir.path(), port, &args);
    // What the backup held is there; what came after it is not.
    let reset = |email: &str| {
        cli(dir.path(), &["admin", "reset-password", "--email", email])
            .status
            .success()
    };
    assert!(reset("prima@comune.example.it"));
    assert!(!reset("dopo@comune.example.it"));
}
