//! Several `sportello` nodes on one PostgreSQL behind Debian's nginx (round robin), for the
//! multi-node tests (`tests/tests/nodes.rs`) and `bookload --nodes`.

use std::time::{Duration, Instant};

/// The secret the nodes share (they sign and check the same links).
pub const SECRET: &str = "test-secret-key-test-secret-key-0123456789";

/// One `sportello` node (`bin`) on `port` (its administration listener on `admin`), on database `url`, with its clock at
/// `clock`; its log goes to the test's output.
pub fn spawn_node(
    bin: &std::path::Path,
    id: &str,
    url: &str,
    (port, admin): (u16, u16),
    clock: &str,
    dir: &std::path::Path,
    extra: &[&str],
) -> std::process::Child {
    let data = dir.join(id);
    std::fs::create_dir_all(&data).unwrap();
    std::process::Command::new(bin)
        .args(["--tls", "off", "--data-dir", &data.display().to_string()])
        .args(["--database-url", url, "--secret-key", SECRET])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
        .args([
            "--node-id",
            id,
            "--node-url",
            &format!("http://127.0.0.1:{port}"),
        ])
        .args(["--start-clock-at", clock, "--trusted-proxies", "127.0.0.1"])
        .args(["--media-udp", "127.0.0.1:0", "--media-tcp", "off"])
        .args(extra)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the sportello binary")
}

/// Debian's nginx on `port`, round robin over the nodes' ports, passing WebSockets on; a
/// node that refuses connections is skipped for two seconds.
pub fn spawn_nginx(port: u16, nodes: &[u16], dir: &std::path::Path) -> std::process::Child {
    let d = dir.display();
    let servers: String = nodes
        .iter()
        .map(|p| format!("    server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n"))
        .collect();
    let conf = format!(
        "daemon off;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\nevents {{}}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         \x20 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         \x20 upstream nodes {{\n{servers}  }}\n\
         \x20 map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
         \x20 server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
         \x20     proxy_pass http://nodes;\n      proxy_http_version 1.1;\n\
         \x20     proxy_set_header Upgrade $http_upgrade;\n      proxy_set_header Connection $connection_upgrade;\n\
         \x20     proxy_set_header X-Forwarded-For $remote_addr;\n      proxy_connect_timeout 1s;\n\
         \x20     proxy_read_timeout 1h;\n      proxy_next_upstream error timeout;\n    }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    use std::os::unix::process::CommandExt;
    std::process::Command::new("nginx")
        .args(["-c", &path.display().to_string(), "-p", &d.to_string()])
        // Its own process group, so that no worker outlives the test.
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nginx (scripts/test installs it)")
}

/// Stops nginx and its workers (its process group): an orphaned worker would hold the test
/// run's output open.
pub fn stop_nginx(mut nginx: std::process::Child) {
    let group = format!("-{}", nginx.id());
    let _ = std::process::Command::new("kill")
        .args(["-TERM", "--", &group])
        .status();
    let _ = nginx.wait();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &group])
        .stderr(std::process::Stdio::null())
        .status();
}

/// A node's `/healthz` on its administration port (empty if it does not answer).
pub async fn health(admin: u16) -> String {
    match reqwest::get(format!("http://127.0.0.1:{admin}/healthz")).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// A count of a node's `/healthz` ("rooms served here", "forwarded sockets open now", ...).
pub fn health_count(health: &str, what: &str) -> Option<u64> {
    health
        .split(&format!("{what}: "))
        .nth(1)?
        .lines()
        .next()?
        .parse()
        .ok()
}

/// Waits until `url` answers (30 s at most).
pub async fn wait_for(what: &str, url: &str) {
    let started = Instant::now();
    while reqwest::get(url).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what} did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Flags for nodes under a booking load from this one machine: every client is 127.0.0.1, so
/// no per-client caps, and no proof of work (it costs the booker's browser, not the server).
pub const LOAD_FLAGS: [&str; 7] = [
    "--proof-of-work=false",
    "--rate-limit-per-minute",
    "4000000000",
    "--rate-limit-burst",
    "4000000000",
    "--max-connections-per-client",
    "1000000",
];

/// `n` nodes (`n1`, `n2`, ...) on database `url` behind nginx, started and answering.
pub struct Cluster {
    /// Each node's process (`None` once killed) and its (public, administration) ports.
    pub nodes: Vec<(Option<std::process::Child>, (u16, u16))>,
    /// nginx's port, and `http://127.0.0.1:{lb}`.
    pub lb: u16,
    pub base: String,
    nginx: Option<std::process::Child>,
}

impl Cluster {
    pub async fn start(
        bin: &std::path::Path,
        url: &str,
        n: usize,
        clock: &str,
        dir: &std::path::Path,
        extra: &[&str],
    ) -> Cluster {
        let mut nodes = Vec::new();
        for i in 1..=n {
            let id = format!("n{i}");
            nodes.push(start_node(bin, &id, url, clock, dir, extra).await);
        }
        let lb = crate::free_port();
        let publics: Vec<u16> = nodes.iter().map(|(_, (p, _))| *p).collect();
        let nginx = spawn_nginx(lb, &publics, dir);
        let base = format!("http://127.0.0.1:{lb}");
        wait_for("nginx", &base).await;
        Cluster {
            nodes,
            lb,
            base,
            nginx: Some(nginx),
        }
    }

    /// SIGKILL to node `i` (from 0).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut n) = self.nodes[i].0.take() {
            let _ = n.kill();
            let _ = n.wait();
        }
    }
}

/// Starts a node on free ports and waits until it answers; a port taken meanwhile by another
/// process (tests run side by side) makes the node exit, and it is started again on others.
async fn start_node(
    bin: &std::path::Path,
    id: &str,
    url: &str,
    clock: &str,
    dir: &std::path::Path,
    extra: &[&str],
) -> (Option<std::process::Child>, (u16, u16)) {
    for _ in 0..5 {
        let ports = (crate::free_port(), crate::free_port());
        let mut child = spawn_node(bin, id, url, ports, clock, dir, extra);
        let started = Instant::now();
        loop {
            if reqwest::get(format!("http://127.0.0.1:{}/", ports.0))
                .await
                .is_ok()
            {
                return (Some(child), ports);
            }
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{id} did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("{id} did not start on five pairs of free ports");
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(nginx) = self.nginx.take() {
            stop_nginx(nginx);
        }
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
