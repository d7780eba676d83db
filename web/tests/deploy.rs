//! The deployment files in `deploy/` against the real binary: the systemd unit passes
//! `systemd-analyze verify` and its security review, and waits long enough for a stop; every
//! metric the Grafana dashboard draws is one the server exposes.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{free_port, get, plain_http, Server};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// systemd's tool, which `scripts/test` installs (Debian's `systemd` package).
fn systemd_analyze(args: &[&str]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_systemd_unit_verifies_cleanly_is_hardened_and_waits_for_the_drain() {
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/sportello.service")).unwrap();
    // `verify` checks that the program exists: this build's binary stands in for the
    // installed one.
    assert!(unit.contains("ExecStart=/usr/local/bin/sportello "));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sportello.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/sportello", env!("CARGO_BIN_EXE_sportello")),
    )
    .unwrap();
    let path = path.display().to_string();
    let (ok, report) = systemd_analyze(&["verify", &path]);
    assert!(
        ok && report.trim().is_empty(),
        "systemd-analyze verify:\n{report}"
    );
    // The security review's exposure, 0 (locked down) to 10 (none): "OK" is below 2.
    let (ok, report) = systemd_analyze(&["security", "--offline=yes", "--threshold=20", &path]);
    assert!(ok, "systemd-analyze security:\n{report}");

    let setting = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} in the unit"))
            .to_string()
    };
    let stop: u64 = setting("TimeoutStopSec").parse().unwrap();
    let bound = web::app::STOP_BOUND.as_secs();
    assert!(
        stop > bound && stop <= bound + 10,
        "TimeoutStopSec={stop}, the drain takes up to {bound} s"
    );
    assert_eq!(setting("ExecReload"), "/bin/kill -HUP $MAINPID");
    for hardening in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "StateDirectory=sportello",
        "SystemCallFilter=@system-service",
        "AmbientCapabilities=",
    ] {
        assert!(unit.lines().any(|l| l == hardening), "{hardening}");
    }
    // The compose file gives a container as long.
    let compose = std::fs::read_to_string(repo().join("deploy/container/compose.yaml")).unwrap();
    assert!(
        compose.contains(&format!("stop_grace_period: {stop}s")),
        "compose.yaml's stop_grace_period"
    );
}

/// The metric names in a PromQL expression (the server's: `sportello_*`, `process_*`).
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("sportello_") || t.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    // Template variables query the server's series too.
                    ("query" | "definition", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn every_metric_the_grafana_dashboard_draws_is_exposed_by_the_server() {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/sportello.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut all = Vec::new();
    exprs(&dashboard, &mut all);
    let mut used: Vec<String> = all.iter().flat_map(|e| metric_names(e)).collect();
    used.sort();
    used.dedup();
    assert!(used.len() >= 20, "{used:?}");

    let (port, admin) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let _server = Server::start(dir.path(), port, &plain_http(port, Some(admin), &[]));
    // A page and a miss, so that the request series have samples.
    get(port, "/").unwrap();
    get(port, "/non-esiste").unwrap();
    let scrape = get(admin, "/metrics").unwrap();
    assert!(scrape.starts_with("HTTP/1.1 200"), "{scrape}");
    let exposed: Vec<&str> = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = used
        .iter()
        .filter(|n| !exposed.contains(&n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "drawn but not exposed: {missing:?}\n{scrape}"
    );
}
