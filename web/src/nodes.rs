//! Several nodes of one service on one PostgreSQL (`node_url` set): each video room is served
//! by one node, the one that holds its lease (`booking::store::nodes`). A room's socket that
//! reaches another node through the load balancer is forwarded there: this node opens the
//! same socket on the holder, with a signed header saying it comes from a node, and copies the
//! messages both ways. The browser and the load balancer see one ordinary WebSocket; the
//! holder's relay answers the offer, so the media addresses the browser gets are the holder's.
//!
//! Forwarding rather than redirecting: a browser's WebSocket cannot follow a redirect, and a
//! node-specific public address for each node would need its own name and certificate. The
//! cost is one extra hop for the few signaling messages of a call; the media never passes
//! through the forwarding node.
//!
//! Every `RENEW_EVERY` the node says it is alive and renews the leases of the rooms it serves.
//! A node that stops releases its rooms at once; one that dies loses them when their leases run
//! out, and the pages, which reconnect by themselves, place them anew on a live node.
//!
//! "The citizen is waiting" is shown by every node's agenda: the node serving the room
//! announces each coming and going at once (a PostgreSQL notification, `Store::
//! announce_citizen`), and says again every `RENEW_EVERY` which of its rooms have their citizen
//! in, for nodes started since; a mark not said again within `STALE` (its node died) is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{self, WebSocket};
use booking::store::nodes::Placement;
use booking::token::Purpose;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

/// How long a room stays with a node that stopped renewing it (a bound: a node whose
/// heartbeat is `STALE` old loses its rooms before).
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(10);
/// How often a node renews its leases and says it is alive.
pub const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// A node silent this long is taken for dead: its rooms go to the next node a socket reaches.
pub const STALE: std::time::Duration = std::time::Duration::from_secs(5);
/// The header of a socket forwarded by another node: a token signed for the room's appointment.
pub const FORWARDED: &str = "x-sportello-forwarded";

/// This node, and the rooms it serves now; with the parts of the server it works with.
pub struct Cluster {
    pub id: String,
    pub url: String,
    store: booking::Store,
    hub: Arc<signaling::Hub>,
    signer: booking::token::Signer,
    /// Set when the server stops (`AppState::draining`).
    draining: Arc<std::sync::atomic::AtomicBool>,
    /// Rooms served here: code → (appointment id, open sockets).
    local: Mutex<HashMap<String, (i64, usize)>>,
    /// Sockets this node forwarded to the node holding their room, since it started.
    pub forwarded: std::sync::atomic::AtomicU64,
    /// Of those, the ones open now.
    pub forwarding: std::sync::atomic::AtomicU64,
    /// Rooms whose citizen is waiting, as their nodes (this one too) announced: id → when last
    /// said.
    citizens: Mutex<HashMap<i64, std::time::Instant>>,
}

/// The real time: leases and heartbeats are about processes, not the business clock (which
/// `--start-clock-at` moves, by a different amount in each process started at another moment).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn lease() -> chrono::Duration {
    chrono::Duration::from_std(LEASE).expect("a short lease")
}

impl Cluster {
    pub fn new(
        (id, url): (String, String),
        store: booking::Store,
        hub: Arc<signaling::Hub>,
        signer: booking::token::Signer,
        draining: Arc<std::sync::atomic::AtomicBool>,
    ) -> Arc<Cluster> {
        Arc::new(Cluster {
            id,
            url,
            store,
            hub,
            signer,
            draining,
            local: Mutex::new(HashMap::new()),
            forwarded: Default::default(),
            forwarding: Default::default(),
            citizens: Mutex::new(HashMap::new()),
        })
    }

    /// Whether appointment `id`'s citizen is in its room, on whichever node serves it.
    pub fn citizen_waiting(&self, id: i64) -> bool {
        self.citizens
            .lock()
            .expect("citizens lock")
            .get(&id)
            .is_some_and(|at| at.elapsed() < STALE)
    }

    /// Keeps `citizens` as the nodes announce, until the process ends.
    async fn hear_citizens(self: Arc<Self>) {
        let mut heard = self.store.citizen_changes();
        loop {
            match heard.recv().await {
                Ok((id, waiting)) => {
                    let mut citizens = self.citizens.lock().expect("citizens lock");
                    if waiting {
                        citizens.insert(id, std::time::Instant::now());
                    } else {
                        citizens.remove(&id);
                    }
                    citizens.retain(|_, at| at.elapsed() < STALE);
                }
                // Missed some: the next round of announcements (`RENEW_EVERY`) says them again.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Announces each coming and going of a citizen in this node's rooms as it happens, and
    /// every `RENEW_EVERY` the rooms whose citizen is in. One task sends them all, so that the
    /// other nodes hear them in the order they happened.
    async fn announce_citizens(self: Arc<Self>) {
        let mut changes = self.hub.citizen_changes();
        let mut tick = tokio::time::interval(RENEW_EVERY);
        loop {
            let announce: Vec<(i64, bool)> = tokio::select! {
                change = changes.recv() => match change {
                    Ok(change) => vec![change],
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    let rooms: Vec<i64> = self.local.lock().expect("rooms lock").values().map(|(id, _)| *id).collect();
                    rooms.into_iter().filter(|id| self.hub.citizen_waiting(*id)).map(|id| (id, true)).collect()
                }
            };
            for (id, waiting) in announce {
                if let Err(e) = self.store.announce_citizen(id, waiting).await {
                    tracing::warn!(error = %e, "a waiting citizen not announced to the other nodes");
                }
            }
        }
    }

    /// Where room `code` (appointment `id`) is served: here (and this node now holds it), or
    /// on the node holding its lease.
    pub async fn place(&self, code: &str) -> Result<Placement, booking::Error> {
        if self.local.lock().expect("rooms lock").contains_key(code) {
            return Ok(Placement::Here);
        }
        if self.draining.load(std::sync::atomic::Ordering::Relaxed) {
            // Stopping: a socket that still reaches this node goes to the room's holder, or
            // is told to come back (and the load balancer sends it elsewhere).
            return Ok(Placement::Elsewhere {
                node: String::new(),
                url: String::new(),
            });
        }
        let now = now();
        let stale = chrono::Duration::from_std(STALE).expect("short");
        self.store
            .place_room(code, &self.id, now, lease(), now - stale)
            .await
    }

    /// How many rooms this node serves now.
    pub fn rooms_here(&self) -> usize {
        self.local.lock().expect("rooms lock").len()
    }

    /// The server is stopping: it takes no new room, and gives up those it holds.
    pub async fn stop(&self) {
        let _ = self
            .store
            .node_heartbeat(&self.id, &self.url, false, now())
            .await;
        if let Err(e) = self.store.release_rooms(None, &self.id).await {
            tracing::warn!(error = %e, "rooms not released: their leases run out by themselves");
        }
    }

    fn enter(&self, code: &str, id: i64) {
        let mut local = self.local.lock().expect("rooms lock");
        local.entry(code.to_string()).or_insert((id, 0)).1 += 1;
    }

    /// One socket of room `code` closed here; true when it was the room's last.
    fn leave(&self, code: &str) -> bool {
        let mut local = self.local.lock().expect("rooms lock");
        match local.get_mut(code) {
            Some((_, n)) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                local.remove(code);
                true
            }
        }
    }

    /// Serves a socket of room `code` (appointment `id`) here, holding the room while it is open.
    pub async fn serve_here(self: Arc<Self>, code: String, id: i64, socket: WebSocket) {
        self.enter(&code, id);
        self.hub.clone().serve(code.clone(), socket).await;
        if self.leave(&code) {
            if let Err(e) = self.store.release_rooms(Some(&code), &self.id).await {
                tracing::warn!(error = %e, "room lease not released: it runs out by itself");
            }
        }
    }

    /// Says the node is alive and renews its rooms, every `RENEW_EVERY`, until the server
    /// stops; then releases them, so that the pages reconnect to a live node at once.
    pub async fn run(self: Arc<Self>) {
        tokio::spawn(self.clone().hear_citizens());
        tokio::spawn(self.clone().announce_citizens());
        let mut tick = tokio::time::interval(RENEW_EVERY);
        loop {
            tick.tick().await;
            let draining = self.draining.load(std::sync::atomic::Ordering::Relaxed);
            if let Err(e) = self
                .store
                .node_heartbeat(&self.id, &self.url, !draining, now())
                .await
            {
                tracing::warn!(error = %e, "node heartbeat not written");
            }
            if draining {
                let _ = self.store.release_rooms(None, &self.id).await;
                return;
            }
            let rooms: Vec<String> = self
                .local
                .lock()
                .expect("rooms lock")
                .keys()
                .cloned()
                .collect();
            for code in rooms {
                match self.store.renew_room(&code, &self.id, now(), lease()).await {
                    Ok(true) => {}
                    // Lost while this node could not write (a pause longer than the lease):
                    // the sockets open here stay, new ones go to the new holder.
                    Ok(false) => tracing::warn!(room = %code, "room lease lost to another node"),
                    Err(e) => tracing::warn!(error = %e, "room lease not renewed"),
                }
            }
        }
    }
}

impl Cluster {
    /// The token another node sends with a forwarded socket of appointment `id`'s room.
    pub fn forward_token(&self, id: i64) -> String {
        self.signer.sign(Purpose::Forward, id)
    }

    /// Whether a socket comes from another node of the service, for appointment `id`'s room.
    pub fn is_forwarded(&self, headers: &axum::http::HeaderMap, id: i64) -> bool {
        headers
            .get(FORWARDED)
            .and_then(|v| v.to_str().ok())
            .and_then(|t| self.signer.verify(Purpose::Forward, t).ok())
            == Some(id)
    }

    /// Forwards a browser's socket of room `code` to the node at `url` (`copy_both_ways`),
    /// counted in `/healthz`.
    pub async fn forward(
        self: Arc<Self>,
        browser: WebSocket,
        url: String,
        code: String,
        token: String,
    ) {
        use std::sync::atomic::Ordering::Relaxed;
        self.forwarded.fetch_add(1, Relaxed);
        self.forwarding.fetch_add(1, Relaxed);
        copy_both_ways(browser, &url, &code, token).await;
        self.forwarding.fetch_sub(1, Relaxed);
    }
}

/// Copies a browser's socket to the same room's socket on the node at `url`, both ways, until
/// either side closes. If that node does not answer, the browser's socket is closed with 1013
/// ("try again later"): the page reconnects, and once the lease runs out the room is placed on
/// a live node.
async fn copy_both_ways(browser: WebSocket, url: &str, code: &str, token: String) {
    let target = format!(
        "{}/ws/stanza/{}",
        url.trim_end_matches('/').replacen("http", "ws", 1),
        // A stored appointment's code (`room` looked it up): letters, digits and dashes.
        code
    );
    let request = target.into_client_request().map(|mut r| {
        if let Ok(v) = token.parse() {
            r.headers_mut().insert(FORWARDED, v);
        }
        r
    });
    let (mut b_sink, mut b_stream) = browser.split();
    let upstream = match request {
        Ok(r) => tokio::time::timeout(
            std::time::Duration::from_secs(5),
            // No Nagle delay on a forwarded room socket: its messages are small and each waits.
            tokio_tungstenite::connect_async_with_config(r, None, true),
        )
        .await
        .ok()
        .and_then(|r| r.ok()),
        Err(_) => None,
    };
    let Some((upstream, _)) = upstream else {
        tracing::warn!(node = %url, "the room's node does not answer: the page will retry");
        let _ = b_sink
            .send(ws::Message::Close(Some(ws::CloseFrame {
                code: 1013,
                reason: ws::Utf8Bytes::from_static("room's node unavailable, try again"),
            })))
            .await;
        return;
    };
    let (mut u_sink, mut u_stream) = upstream.split();
    loop {
        tokio::select! {
            m = b_stream.next() => {
                let m = match m {
                    Some(Ok(ws::Message::Text(t))) => tungstenite::Message::Text(t.as_str().into()),
                    Some(Ok(ws::Message::Binary(b))) => tungstenite::Message::Binary(b),
                    Some(Ok(ws::Message::Ping(p))) => tungstenite::Message::Ping(p),
                    Some(Ok(ws::Message::Pong(p))) => tungstenite::Message::Pong(p),
                    Some(Ok(ws::Message::Close(_))) | Some(Err(_)) | None => {
                        let _ = u_sink.send(tungstenite::Message::Close(None)).await;
                        break;
                    }
                };
                if u_sink.send(m).await.is_err() { break; }
            }
            m = u_stream.next() => {
                let m = match m {
                    Some(Ok(tungstenite::Message::Text(t))) => ws::Message::Text(t.as_str().into()),
                    Some(Ok(tungstenite::Message::Binary(b))) => ws::Message::Binary(b),
                    Some(Ok(tungstenite::Message::Ping(p))) => ws::Message::Ping(p),
                    Some(Ok(tungstenite::Message::Pong(p))) => ws::Message::Pong(p),
                    Some(Ok(tungstenite::Message::Close(f))) => {
                        let frame = f.map(|f| ws::CloseFrame { code: f.code.into(), reason: f.reason.as_str().into() });
                        let _ = b_sink.send(ws::Message::Close(frame)).await;
                        break;
                    }
                    Some(Ok(tungstenite::Message::Frame(_))) => continue,
                    // The holder went away mid-call: the page reconnects and the room is
                    // placed anew once its lease runs out.
                    Some(Err(_)) | None => {
                        let _ = b_sink.send(ws::Message::Close(Some(ws::CloseFrame {
                            code: 1012,
                            reason: ws::Utf8Bytes::from_static("room's node gone, reconnect"),
                        }))).await;
                        break;
                    }
                };
                if b_sink.send(m).await.is_err() { break; }
            }
        }
    }
}
