//! The I/O side: WebSocket connections, the rooms they are in, heartbeats. Each connection is
//! one task; rooms are pure state machines (`Room`) behind one short-held lock, so a slow or
//! broken connection never holds up another room.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use crate::budget::MessageBudget;
use crate::gate::{self, Gate, Policy, Role, Schedule};
use crate::protocol::{self, ClientMessage, ErrorCode, LeaveReason, Party, ServerMessage, VERSION};
use crate::room::{Action, ConnId, Event, Room};

/// What a valid room token opens: read from the bookings each time, so a moved appointment
/// opens at its new time and a cancelled one is refused.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub room: i64,
    /// The appointment's public code: the room's name in the socket's URL.
    pub code: String,
    pub role: Role,
    pub schedule: Schedule,
    pub office: String,
    pub service: String,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How the hub learns about appointments and time, without knowing SQL.
pub trait Directory: Send + Sync + 'static {
    /// The ticket a token stands for, or `None` for a bad, tampered or unknown token.
    fn ticket<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<Ticket>>;
    fn now(&self) -> DateTime<Utc>;
    /// The STUN/TURN servers handed with `ready` to a socket of this ticket (JSON objects as
    /// RTCPeerConnection's `iceServers` takes them). `until` is when the room closes: TURN
    /// credentials should last at least that long. None by default.
    fn ice_servers(&self, _ticket: &Ticket, _until: DateTime<Utc>) -> Vec<serde_json::Value> {
        Vec::new()
    }
}

/// What the relay tells one participant's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    Candidate(MediaCandidate),
    State(String),
}

/// An ICE candidate between a socket and the relay, as browsers write it (empty: the end of
/// the candidates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaCandidate {
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_mline_index: Option<u16>,
}

/// A participant's offer: whose it is, the SDP, and where the relay's events for it go.
#[derive(Debug)]
pub struct MediaOffer {
    pub room: i64,
    pub role: Role,
    /// The socket that owns the media connection.
    pub conn: u64,
    pub sdp: String,
    pub events: mpsc::UnboundedSender<MediaEvent>,
}

/// The media relay, as the hub sees it: offers in, answers out, candidates both ways. A socket
/// (`conn`) owns its participant's media connection; a newer socket of the same role replaces it.
pub trait Media: Send + Sync + 'static {
    fn offer(&self, offer: MediaOffer) -> BoxFuture<'_, Result<String, ErrorCode>>;
    fn candidate(
        &self,
        room: i64,
        role: Role,
        c: MediaCandidate,
    ) -> BoxFuture<'_, Result<(), ErrorCode>>;
    fn leave<'a>(&'a self, room: i64, role: Role, conn: u64) -> BoxFuture<'a, ()>;
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub policy: Policy,
    /// How often the server pings each socket.
    pub heartbeat: Duration,
    /// A socket silent for this long is considered lost.
    pub idle_timeout: Duration,
    /// A socket that has not said a valid `hello` this long after opening is closed.
    pub hello_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            policy: Policy::default(),
            heartbeat: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            hello_timeout: Duration::from_secs(10),
        }
    }
}

/// How often a flooding socket is told it is slowed.
const RATE_LIMITED_EVERY: Duration = Duration::from_secs(1);

enum Out {
    Text(String),
    Close(u16, &'static str),
    /// The appointment changed: check the ticket and the gate again.
    Recheck,
}

pub struct Hub {
    dir: Arc<dyn Directory>,
    /// Without a relay, offers, answers and candidates go straight to the other side.
    media: Option<Arc<dyn Media>>,
    settings: Settings,
    rooms: Mutex<HashMap<i64, Room>>,
    conns: Mutex<HashMap<ConnId, mpsc::UnboundedSender<Out>>>,
    next: AtomicU64,
    /// Each time a room's citizen comes in or goes: (room, now waiting).
    presence: tokio::sync::broadcast::Sender<(i64, bool)>,
}

impl Hub {
    /// When rooms open and close: pages that show a countdown before their socket answers
    /// count from the same rule.
    pub fn policy(&self) -> &Policy {
        &self.settings.policy
    }

    pub fn new(
        dir: Arc<dyn Directory>,
        media: Option<Arc<dyn Media>>,
        settings: Settings,
    ) -> Arc<Hub> {
        Arc::new(Hub {
            dir,
            media,
            settings,
            rooms: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            presence: tokio::sync::broadcast::channel(1024).0,
        })
    }

    /// Each change of whether a room's citizen is in it, as it happens: (room, now waiting).
    /// With several nodes, the node tells the others (`web::nodes`); a receiver that lags
    /// loses the oldest changes, not the newest.
    pub fn citizen_changes(&self) -> tokio::sync::broadcast::Receiver<(i64, bool)> {
        self.presence.subscribe()
    }

    /// The server is stopping: every socket is closed with 1012 ("service restart"), and each
    /// page connects again by itself (to this server once it is back, or to another).
    pub fn shutdown(&self) {
        for tx in self.conns.lock().expect("conns lock").values() {
            let _ = tx.send(Out::Close(1012, "server restarting"));
        }
    }

    /// Open sockets, and rooms with someone in them.
    pub fn counts(&self) -> (usize, usize) {
        let conns = self.conns.lock().expect("conns lock").len();
        let rooms = self.rooms.lock().expect("rooms lock").len();
        (conns, rooms)
    }

    /// Appointment `room` was cancelled, moved, confirmed or closed: every socket in its room
    /// checks again at once, and those the gate no longer lets in are told why and closed (a
    /// moved appointment's pages reconnect and count down to the new time).
    pub fn appointment_changed(&self, room: i64) {
        let conns = match self.rooms.lock().expect("rooms lock").get(&room) {
            Some(r) => r.conns(),
            None => return,
        };
        let senders = self.conns.lock().expect("conns lock");
        for c in conns {
            if let Some(tx) = senders.get(&c) {
                let _ = tx.send(Out::Recheck);
            }
        }
    }

    /// Whether a citizen is in the room now (for the operator's agenda).
    pub fn citizen_waiting(&self, room: i64) -> bool {
        self.rooms
            .lock()
            .expect("rooms lock")
            .get(&room)
            .is_some_and(|r| r.present(Role::Citizen).is_some())
    }

    fn apply(&self, room: i64, event: Event) {
        let actions = {
            let mut rooms = self.rooms.lock().expect("rooms lock");
            let r = rooms.entry(room).or_default();
            let before = r.present(Role::Citizen).is_some();
            let actions = r.handle(event);
            let after = r.present(Role::Citizen).is_some();
            if r.is_empty() {
                rooms.remove(&room);
            }
            if before != after {
                let _ = self.presence.send((room, after));
            }
            actions
        };
        let conns = self.conns.lock().expect("conns lock");
        for a in actions {
            match a {
                Action::Send(c, m) => {
                    if let Some(tx) = conns.get(&c) {
                        let _ = tx.send(Out::Text(m.to_json()));
                    }
                }
                Action::Close(c) => {
                    if let Some(tx) = conns.get(&c) {
                        let _ = tx.send(Out::Close(4409, "replaced by a newer connection"));
                    }
                }
            }
        }
    }

    /// Serves one socket until it closes. `room_code` is the room named in the URL.
    pub async fn serve(self: Arc<Self>, room_code: String, socket: WebSocket) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.conns.lock().expect("conns lock").insert(id, tx);
        let (media_tx, mut media_rx) = mpsc::unbounded_channel::<MediaEvent>();
        let mut conn = Conn {
            hub: self.clone(),
            id,
            room_code,
            token: String::new(),
            ticket: None,
            joined: None,
            watching: None,
            media_tx,
            has_media: false,
        };
        let (mut sink, mut stream) = socket.split();
        let mut last_seen = Instant::now();
        let mut heartbeat = tokio::time::interval(self.settings.heartbeat);
        heartbeat.tick().await;
        let mut lost = true;
        let hello_deadline = tokio::time::sleep(self.settings.hello_timeout);
        tokio::pin!(hello_deadline);
        let mut budget = MessageBudget::new(Instant::now());
        // When this socket was last told it is slowed: said at most once a second, so a flood
        // hears it once however fast the server works through it.
        let mut told_slowed: Option<Instant> = None;
        loop {
            tokio::select! {
                // A socket that never says who it is holds a connection for nothing.
                _ = &mut hello_deadline, if conn.token.is_empty() => {
                    let e = ServerMessage::error(ErrorCode::NoHello);
                    let _ = sink.send(Message::Text(Utf8Bytes::from(e.to_json()))).await;
                    let (code, reason) = ErrorCode::NoHello.close().unwrap_or((4408, "no hello"));
                    let _ = sink.send(close(code, reason)).await;
                    lost = false;
                    break;
                }
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Text(_))) if !budget.allow(Instant::now()) => {
                        // Said once per flood, not once per message.
                        if told_slowed.is_none_or(|t| t.elapsed() >= RATE_LIMITED_EVERY) {
                            told_slowed = Some(Instant::now());
                            let e = ServerMessage::error(ErrorCode::RateLimited);
                            if sink.send(Message::Text(Utf8Bytes::from(e.to_json()))).await.is_err() { break; }
                        }
                    }
                    Some(Ok(Message::Text(t))) => {
                        last_seen = Instant::now();
                        let replies = conn.on_text(t.as_str()).await;
                        let mut closing = None;
                        for r in replies {
                            match r {
                                Reply::Send(m) => { if sink.send(Message::Text(Utf8Bytes::from(m.to_json()))).await.is_err() { break; } }
                                Reply::Close(code, reason) => closing = Some((code, reason)),
                            }
                        }
                        if let Some((code, reason)) = closing {
                            let _ = sink.send(close(code, reason)).await;
                            lost = false;
                            break;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        last_seen = Instant::now();
                        let _ = sink.send(Message::Text(Utf8Bytes::from(ServerMessage::error(ErrorCode::Malformed).to_json()))).await;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => last_seen = Instant::now(),
                    // A closed socket without `leave` (a reload, a closed tab, a network change) may come
                    // back: the other side hears "connection lost".
                    Some(Ok(Message::Close(_))) => break,
                    // Over the transport's own size limit, or a broken socket.
                    Some(Err(e)) => {
                        tracing::debug!(conn = id, error = %e, "socket error");
                        let _ = sink.send(close(1009, "message too large or invalid")).await;
                        break;
                    }
                    None => break,
                },
                out = rx.recv() => match out {
                    Some(Out::Text(t)) => { if sink.send(Message::Text(Utf8Bytes::from(t))).await.is_err() { break; } }
                    Some(Out::Close(code, reason)) => {
                        let _ = sink.send(close(code, reason)).await;
                        lost = false;
                        conn.joined = None; // replaced: the room already has the new connection
                        break;
                    }
                    Some(Out::Recheck) => {
                        let mut closing = None;
                        for r in conn.recheck().await {
                            match r {
                                Reply::Send(m) => { let _ = sink.send(Message::Text(Utf8Bytes::from(m.to_json()))).await; }
                                Reply::Close(code, reason) => closing = Some((code, reason)),
                            }
                        }
                        if let Some((code, reason)) = closing {
                            let _ = sink.send(close(code, reason)).await;
                            lost = false;
                            break;
                        }
                    }
                    None => break,
                },
                event = media_rx.recv() => {
                    let m = match event {
                        Some(MediaEvent::Candidate(MediaCandidate { candidate, sdp_mid, sdp_mline_index })) => {
                            ServerMessage::Ice { v: VERSION, from: Party::Relay, candidate, sdp_mid, sdp_mline_index }
                        }
                        Some(MediaEvent::State(state)) => {
                            // The other side hears of it too (`room`: of `connected` and `failed`).
                            if let Some(room) = conn.joined {
                                self.apply(room, Event::Media { conn: id, state: state.clone() });
                            }
                            ServerMessage::MediaState { v: VERSION, state }
                        }
                        None => continue,
                    };
                    if sink.send(Message::Text(Utf8Bytes::from(m.to_json()))).await.is_err() { break; }
                }
                _ = heartbeat.tick() => {
                    if last_seen.elapsed() > self.settings.idle_timeout {
                        tracing::debug!(conn = id, "socket silent too long: lost");
                        break;
                    }
                    if sink.send(Message::Ping(Default::default())).await.is_err() { break; }
                }
            }
        }
        if let Some(room) = conn.watching.take() {
            self.apply(room, Event::Unwatch { conn: id });
        }
        conn.drop_media().await;
        if let Some(room) = conn.joined.take() {
            let reason = if lost {
                LeaveReason::ConnectionLost
            } else {
                LeaveReason::Left
            };
            self.apply(room, Event::Leave { conn: id, reason });
        }
        self.conns.lock().expect("conns lock").remove(&id);
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

enum Reply {
    Send(ServerMessage),
    Close(u16, &'static str),
}

/// One connection's state: its checked ticket, and the room it entered.
struct Conn {
    hub: Arc<Hub>,
    id: ConnId,
    room_code: String,
    token: String,
    ticket: Option<Ticket>,
    joined: Option<i64>,
    /// The room this operator connection follows before entering.
    watching: Option<i64>,
    media_tx: mpsc::UnboundedSender<MediaEvent>,
    /// Whether this socket has a media connection at the relay.
    has_media: bool,
}

fn refuse(code: ErrorCode) -> Vec<Reply> {
    let mut out = vec![Reply::Send(ServerMessage::error(code))];
    if let Some((c, reason)) = code.close() {
        out.push(Reply::Close(c, reason));
    }
    out
}

impl Conn {
    async fn on_text(&mut self, text: &str) -> Vec<Reply> {
        let msg = match protocol::parse(text) {
            Ok(m) => m,
            Err(code) => return refuse(code),
        };
        match msg {
            ClientMessage::Hello { token, .. } => self.hello(&token).await,
            ClientMessage::Join { name, .. } => self.join(name.trim().to_string()).await,
            ClientMessage::Offer { sdp, .. } => match self.hub.media.clone() {
                Some(media) => self.media_offer(media, sdp).await,
                None => self.signal(|from| ServerMessage::Offer {
                    v: VERSION,
                    from: from.into(),
                    sdp,
                }),
            },
            ClientMessage::Answer { sdp, .. } => self.signal(|from| ServerMessage::Answer {
                v: VERSION,
                from: from.into(),
                sdp,
            }),
            ClientMessage::Ice {
                candidate,
                sdp_mid,
                sdp_mline_index,
                ..
            } => match self.hub.media.clone() {
                Some(media) => {
                    let c = MediaCandidate {
                        candidate,
                        sdp_mid,
                        sdp_mline_index,
                    };
                    self.media_candidate(media, c).await
                }
                None => self.signal(|from| ServerMessage::Ice {
                    v: VERSION,
                    from: from.into(),
                    candidate,
                    sdp_mid,
                    sdp_mline_index,
                }),
            },
            ClientMessage::Leave { .. } => {
                if let Some(room) = self.joined.take() {
                    self.hub.apply(
                        room,
                        Event::Leave {
                            conn: self.id,
                            reason: LeaveReason::Left,
                        },
                    );
                }
                self.drop_media().await;
                vec![]
            }
            ClientMessage::Ping { .. } => vec![Reply::Send(ServerMessage::Pong { v: VERSION })],
            ClientMessage::Chat { text, .. } => match self.joined {
                Some(room) => {
                    let at = self.hub.dir.now();
                    self.hub.apply(
                        room,
                        Event::Chat {
                            conn: self.id,
                            text,
                            at,
                        },
                    );
                    vec![]
                }
                None => vec![Reply::Send(ServerMessage::error(ErrorCode::NotReady))],
            },
        }
    }

    /// Checks the token and the time; remembers the ticket when the room is open.
    async fn hello(&mut self, token: &str) -> Vec<Reply> {
        let Some(ticket) = self.hub.dir.ticket(token).await else {
            return refuse(ErrorCode::BadToken);
        };
        if ticket.code != self.room_code {
            return refuse(ErrorCode::WrongRoom);
        }
        let now = self.hub.dir.now();
        let policy = self.hub.settings.policy;
        let gate = gate::decide(&ticket.schedule, ticket.role, now, &policy);
        if ticket.role == Role::Operator
            && matches!(gate, Gate::Open | Gate::TooEarly { .. })
            && self.watching.is_none()
        {
            self.watching = Some(ticket.room);
            self.hub.apply(ticket.room, Event::Watch { conn: self.id });
        }
        self.token = token.to_string();
        match gate {
            Gate::TooEarly { opens_at, left } => {
                let ms = left.num_milliseconds();
                vec![Reply::Send(ServerMessage::Countdown {
                    v: VERSION,
                    starts_at: ticket.schedule.start,
                    opens_at,
                    server_time: now,
                    ms_left: ms,
                    seconds_left: (ms + 999) / 1000,
                })]
            }
            Gate::Ended => refuse(ErrorCode::Ended),
            Gate::Cancelled => refuse(ErrorCode::Cancelled),
            Gate::NotConfirmed => refuse(ErrorCode::NotConfirmed),
            Gate::Open => {
                let ready = ServerMessage::Ready {
                    v: VERSION,
                    role: ticket.role,
                    starts_at: ticket.schedule.start,
                    ends_at: ticket.schedule.end,
                    office: ticket.office.clone(),
                    service: ticket.service.clone(),
                    ice_servers: self
                        .hub
                        .dir
                        .ice_servers(&ticket, policy.closes_at(&ticket.schedule)),
                };
                self.ticket = Some(ticket);
                vec![Reply::Send(ready)]
            }
        }
    }

    /// The appointment changed: the socket stays if the gate still lets it in.
    async fn recheck(&mut self) -> Vec<Reply> {
        if self.token.is_empty() {
            return vec![];
        }
        let Some(fresh) = self.hub.dir.ticket(&self.token).await else {
            return refuse(ErrorCode::BadToken);
        };
        let gate = gate::decide(
            &fresh.schedule,
            fresh.role,
            self.hub.dir.now(),
            &self.hub.settings.policy,
        );
        match gate {
            Gate::Open => {
                if self.ticket.is_some() {
                    self.ticket = Some(fresh);
                }
                vec![]
            }
            // Moved to a later time: the page reconnects and counts down to it.
            Gate::TooEarly { .. } => vec![Reply::Close(1012, "appointment moved")],
            Gate::Ended => refuse(ErrorCode::Ended),
            Gate::Cancelled => refuse(ErrorCode::Cancelled),
            Gate::NotConfirmed => refuse(ErrorCode::NotConfirmed),
        }
    }

    async fn join(&mut self, name: String) -> Vec<Reply> {
        let Some(ticket) = self.ticket.clone() else {
            return refuse(ErrorCode::NotReady);
        };
        // The gate is checked again: the appointment may have been cancelled or moved since.
        let fresh = match self.hub.dir.ticket(&self.token).await {
            Some(t) if t.room == ticket.room => t,
            _ => return refuse(ErrorCode::BadToken),
        };
        match gate::decide(
            &fresh.schedule,
            fresh.role,
            self.hub.dir.now(),
            &self.hub.settings.policy,
        ) {
            Gate::Open => {}
            Gate::TooEarly { .. } => return refuse(ErrorCode::TooEarly),
            Gate::Ended => return refuse(ErrorCode::Ended),
            Gate::Cancelled => return refuse(ErrorCode::Cancelled),
            Gate::NotConfirmed => return refuse(ErrorCode::NotConfirmed),
        }
        self.joined = Some(fresh.room);
        self.hub.apply(
            fresh.room,
            Event::Join {
                conn: self.id,
                role: fresh.role,
                name,
            },
        );
        vec![]
    }

    /// The participant's offer goes to the relay, which answers for the server.
    async fn media_offer(&mut self, media: Arc<dyn Media>, sdp: String) -> Vec<Reply> {
        let (Some(t), Some(room)) = (&self.ticket, self.joined) else {
            return vec![Reply::Send(ServerMessage::error(ErrorCode::NotReady))];
        };
        let offer = MediaOffer {
            room,
            role: t.role,
            conn: self.id,
            sdp,
            events: self.media_tx.clone(),
        };
        match media.offer(offer).await {
            Ok(answer) => {
                self.has_media = true;
                vec![Reply::Send(ServerMessage::Answer {
                    v: VERSION,
                    from: Party::Relay,
                    sdp: answer,
                })]
            }
            Err(code) => vec![Reply::Send(ServerMessage::error(code))],
        }
    }

    async fn media_candidate(&mut self, media: Arc<dyn Media>, c: MediaCandidate) -> Vec<Reply> {
        let (Some(t), Some(room)) = (&self.ticket, self.joined) else {
            return vec![Reply::Send(ServerMessage::error(ErrorCode::NotReady))];
        };
        match media.candidate(room, t.role, c).await {
            Ok(()) => vec![],
            Err(code) => vec![Reply::Send(ServerMessage::error(code))],
        }
    }

    /// Closes this socket's media connection, if it still owns one.
    async fn drop_media(&mut self) {
        if !self.has_media {
            return;
        }
        self.has_media = false;
        if let (Some(media), Some(t)) = (self.hub.media.clone(), &self.ticket) {
            media.leave(t.room, t.role, self.id).await;
        }
    }

    fn signal(&mut self, make: impl FnOnce(Role) -> ServerMessage) -> Vec<Reply> {
        match (&self.ticket, self.joined) {
            (Some(t), Some(room)) => {
                let message = make(t.role);
                self.hub.apply(
                    room,
                    Event::Signal {
                        conn: self.id,
                        message,
                    },
                );
                vec![]
            }
            _ => vec![Reply::Send(ServerMessage::error(ErrorCode::NotReady))],
        }
    }
}
