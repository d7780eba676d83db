//! One room's state machine: who is connected, who has entered, and what each event means for
//! each side. Pure: events in, actions out; the hub does the sending and closing.
//!
//! At most one citizen and one operator: a second connection with the same role replaces the
//! first (a reload, another tab), it never adds a third person.
//!
//! The call's chat lives here, in memory only: it is kept while anyone is in the room (so a
//! participant who reloads gets it again) and goes with the room when the last one leaves.
//! Nothing of it is written anywhere.

use chrono::{DateTime, Utc};

use crate::gate::Role;
use crate::protocol::{ErrorCode, LeaveReason, ServerMessage, MAX_CHAT_LINES, VERSION};

pub type ConnId = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Seat {
    conn: ConnId,
    name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Room {
    citizen: Option<Seat>,
    operator: Option<Seat>,
    /// Operator connections that have not entered but want to know when the citizen is
    /// waiting (the call page before the operator enters, the agenda).
    watchers: Vec<ConnId>,
    /// The call's chat messages, in order (`ServerMessage::Chat`).
    chat: Vec<ServerMessage>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A connection whose token was checked and whose gate is open enters with a name.
    Join {
        conn: ConnId,
        role: Role,
        name: String,
    },
    /// A connection goes away: it said so, or it stopped answering heartbeats.
    Leave {
        conn: ConnId,
        reason: LeaveReason,
    },
    /// An operator's connection starts or stops following the room without entering it.
    Watch {
        conn: ConnId,
    },
    Unwatch {
        conn: ConnId,
    },
    /// Offer, answer or ICE candidate for the other side.
    Signal {
        conn: ConnId,
        message: ServerMessage,
    },
    /// The state of a participant's media connection changed, as the relay says: the other side
    /// hears of `connected` and `failed`.
    Media {
        conn: ConnId,
        state: String,
    },
    /// A chat message (checked by `protocol::parse`), sent at `at`.
    Chat {
        conn: ConnId,
        text: String,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send(ConnId, ServerMessage),
    /// Close this connection (it was replaced).
    Close(ConnId),
}

impl Room {
    fn seat(&mut self, role: Role) -> &mut Option<Seat> {
        match role {
            Role::Citizen => &mut self.citizen,
            Role::Operator => &mut self.operator,
        }
    }

    fn role_of(&self, conn: ConnId) -> Option<Role> {
        if self.citizen.as_ref().is_some_and(|s| s.conn == conn) {
            Some(Role::Citizen)
        } else if self.operator.as_ref().is_some_and(|s| s.conn == conn) {
            Some(Role::Operator)
        } else {
            None
        }
    }

    /// Every connection in the room: the two seats and the watchers.
    pub fn conns(&self) -> Vec<ConnId> {
        let seats = [&self.citizen, &self.operator];
        let seated = seats.into_iter().flatten().map(|s| s.conn);
        seated.chain(self.watchers.iter().copied()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.citizen.is_none() && self.operator.is_none() && self.watchers.is_empty()
    }

    fn tell_watchers(&self, out: &mut Vec<Action>, m: ServerMessage) {
        let entered = self.operator.as_ref().map(|s| s.conn);
        for w in &self.watchers {
            if Some(*w) != entered {
                out.push(Action::Send(*w, m.clone()));
            }
        }
    }

    /// Who is in the room now.
    pub fn present(&self, role: Role) -> Option<(ConnId, &str)> {
        match role {
            Role::Citizen => self.citizen.as_ref(),
            Role::Operator => self.operator.as_ref(),
        }
        .map(|s| (s.conn, s.name.as_str()))
    }

    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Join { conn, role, name } => {
                // The same connection joining again is a no-op apart from the name.
                if let Some(old) = self.seat(role).replace(Seat {
                    conn,
                    name: name.clone(),
                }) {
                    if old.conn != conn {
                        out.push(Action::Send(
                            old.conn,
                            ServerMessage::Replaced { v: VERSION },
                        ));
                        out.push(Action::Close(old.conn));
                    }
                }
                match self.present(role.other()).map(|(c, n)| (c, n.to_string())) {
                    Some((peer, peer_name)) => {
                        out.push(Action::Send(
                            conn,
                            ServerMessage::PeerJoined {
                                v: VERSION,
                                role: role.other(),
                                name: peer_name,
                            },
                        ));
                        out.push(Action::Send(
                            peer,
                            ServerMessage::PeerJoined {
                                v: VERSION,
                                role,
                                name: name.clone(),
                            },
                        ));
                    }
                    None => {
                        out.push(Action::Send(
                            conn,
                            ServerMessage::Waiting {
                                v: VERSION,
                                waiting_for: role.other(),
                            },
                        ));
                    }
                }
                // The call's messages so far, for whoever enters (or comes back).
                for m in &self.chat {
                    out.push(Action::Send(conn, m.clone()));
                }
                if role == Role::Citizen {
                    self.tell_watchers(
                        &mut out,
                        ServerMessage::CitizenWaiting {
                            v: VERSION,
                            name: name.clone(),
                        },
                    );
                }
            }
            Event::Watch { conn } => {
                if !self.watchers.contains(&conn) {
                    self.watchers.push(conn);
                }
                if let Some((_, name)) = self.present(Role::Citizen) {
                    out.push(Action::Send(
                        conn,
                        ServerMessage::CitizenWaiting {
                            v: VERSION,
                            name: name.to_string(),
                        },
                    ));
                }
            }
            Event::Unwatch { conn } => self.watchers.retain(|w| *w != conn),
            Event::Leave { conn, reason } => {
                if let Some(role) = self.role_of(conn) {
                    *self.seat(role) = None;
                    if self.citizen.is_none() && self.operator.is_none() {
                        // The last one out: the call's messages go (an operator's agenda that
                        // watches the room does not keep them).
                        self.chat.clear();
                    }
                    if let Some((peer, _)) = self.present(role.other()) {
                        out.push(Action::Send(
                            peer,
                            ServerMessage::PeerLeft {
                                v: VERSION,
                                role,
                                reason,
                            },
                        ));
                    }
                    if role == Role::Citizen {
                        self.tell_watchers(
                            &mut out,
                            ServerMessage::PeerLeft {
                                v: VERSION,
                                role,
                                reason,
                            },
                        );
                    }
                }
            }
            Event::Signal { conn, message } => match self.role_of(conn) {
                None => out.push(Action::Send(
                    conn,
                    ServerMessage::error(ErrorCode::NotReady),
                )),
                Some(role) => match self.present(role.other()) {
                    Some((peer, _)) => out.push(Action::Send(peer, message)),
                    None => out.push(Action::Send(conn, ServerMessage::error(ErrorCode::NoPeer))),
                },
            },
            Event::Media { conn, state } => {
                let peer = self
                    .role_of(conn)
                    .and_then(|role| self.present(role.other()));
                if let (Some((peer, _)), "connected" | "failed") = (peer, state.as_str()) {
                    out.push(Action::Send(
                        peer,
                        ServerMessage::PeerMedia { v: VERSION, state },
                    ));
                }
            }
            Event::Chat { conn, text, at } => match self.role_of(conn) {
                None => out.push(Action::Send(
                    conn,
                    ServerMessage::error(ErrorCode::NotReady),
                )),
                Some(_) if self.chat.len() >= MAX_CHAT_LINES => out.push(Action::Send(
                    conn,
                    ServerMessage::error(ErrorCode::ChatFull),
                )),
                Some(role) => {
                    let m = ServerMessage::Chat {
                        v: VERSION,
                        seq: self.chat.len() as u32 + 1,
                        from: role,
                        name: self
                            .present(role)
                            .map(|(_, n)| n.to_string())
                            .unwrap_or_default(),
                        text,
                        at,
                    };
                    // To both sides, the sender too: each shows the message once the server has
                    // it, in the server's order. A side not yet in gets it when it enters.
                    for r in [Role::Citizen, Role::Operator] {
                        if let Some((c, _)) = self.present(r) {
                            out.push(Action::Send(c, m.clone()));
                        }
                    }
                    self.chat.push(m);
                }
            },
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(conn: ConnId, role: Role, name: &str) -> Event {
        Event::Join {
            conn,
            role,
            name: name.into(),
        }
    }
    fn sent_to(actions: &[Action], conn: ConnId) -> Vec<&ServerMessage> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(c, m) if *c == conn => Some(m),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_other_side_hears_when_a_media_connection_fails_or_comes_up_and_of_nothing_else() {
        let media = |conn, state: &str| Event::Media {
            conn,
            state: state.into(),
        };
        let peer_media = |state: &str| ServerMessage::PeerMedia {
            v: 1,
            state: state.into(),
        };
        let mut r = Room::default();
        r.handle(join(1, Role::Citizen, "Maria"));
        // Nobody to tell yet; a stranger's state is nobody's business.
        assert_eq!(r.handle(media(1, "failed")), vec![]);
        r.handle(join(2, Role::Operator, "Op"));
        assert_eq!(r.handle(media(7, "failed")), vec![]);
        assert_eq!(
            r.handle(media(1, "failed")),
            vec![Action::Send(2, peer_media("failed"))]
        );
        for state in ["new", "connecting", "disconnected", "closed"] {
            assert_eq!(r.handle(media(1, state)), vec![], "{state}");
        }
        assert_eq!(
            r.handle(media(2, "connected")),
            vec![Action::Send(1, peer_media("connected"))]
        );
    }

    #[test]
    fn the_citizen_waits_until_the_operator_enters_then_both_are_told() {
        let mut r = Room::default();
        let a = r.handle(join(1, Role::Citizen, "Maria Rossi"));
        assert_eq!(
            a,
            vec![Action::Send(
                1,
                ServerMessage::Waiting {
                    v: 1,
                    waiting_for: Role::Operator
                }
            )]
        );
        let a = r.handle(join(2, Role::Operator, "Anagrafe"));
        assert_eq!(
            sent_to(&a, 1),
            vec![&ServerMessage::PeerJoined {
                v: 1,
                role: Role::Operator,
                name: "Anagrafe".into()
            }]
        );
        assert_eq!(
            sent_to(&a, 2),
            vec![&ServerMessage::PeerJoined {
                v: 1,
                role: Role::Citizen,
                name: "Maria Rossi".into()
            }]
        );
    }

    #[test]
    fn a_second_tab_replaces_the_first_and_never_adds_a_third_person() {
        let mut r = Room::default();
        r.handle(join(1, Role::Citizen, "Maria"));
        r.handle(join(2, Role::Operator, "Op"));
        let a = r.handle(join(3, Role::Citizen, "Maria"));
        assert!(a.contains(&Action::Send(1, ServerMessage::Replaced { v: 1 })));
        assert!(a.contains(&Action::Close(1)));
        assert_eq!(r.present(Role::Citizen).map(|p| p.0), Some(3));
        // The old connection's late goodbye does not remove the new one.
        let a = r.handle(Event::Leave {
            conn: 1,
            reason: LeaveReason::Left,
        });
        assert!(a.is_empty());
        assert_eq!(r.present(Role::Citizen).map(|p| p.0), Some(3));
    }

    #[test]
    fn leaving_or_losing_the_connection_tells_the_other_side() {
        let mut r = Room::default();
        r.handle(join(1, Role::Citizen, "Maria"));
        r.handle(join(2, Role::Operator, "Op"));
        let a = r.handle(Event::Leave {
            conn: 1,
            reason: LeaveReason::ConnectionLost,
        });
        assert_eq!(
            a,
            vec![Action::Send(
                2,
                ServerMessage::PeerLeft {
                    v: 1,
                    role: Role::Citizen,
                    reason: LeaveReason::ConnectionLost
                }
            )]
        );
        r.handle(Event::Leave {
            conn: 2,
            reason: LeaveReason::Left,
        });
        assert!(r.is_empty());
    }

    #[test]
    fn an_operator_who_has_not_entered_hears_that_the_citizen_waits_and_leaves() {
        let mut r = Room::default();
        assert!(r.handle(Event::Watch { conn: 9 }).is_empty());
        let a = r.handle(join(1, Role::Citizen, "Maria"));
        assert!(a.contains(&Action::Send(
            9,
            ServerMessage::CitizenWaiting {
                v: 1,
                name: "Maria".into()
            }
        )));
        // A watcher arriving later is told at once.
        let a = r.handle(Event::Watch { conn: 8 });
        assert_eq!(
            a,
            vec![Action::Send(
                8,
                ServerMessage::CitizenWaiting {
                    v: 1,
                    name: "Maria".into()
                }
            )]
        );
        let a = r.handle(Event::Leave {
            conn: 1,
            reason: LeaveReason::ConnectionLost,
        });
        assert!(a.contains(&Action::Send(
            9,
            ServerMessage::PeerLeft {
                v: 1,
                role: Role::Citizen,
                reason: LeaveReason::ConnectionLost
            }
        )));
        r.handle(Event::Unwatch { conn: 9 });
        r.handle(Event::Unwatch { conn: 8 });
        assert!(r.is_empty());
    }

    #[test]
    fn signals_go_to_the_other_side_only_when_it_is_there() {
        let mut r = Room::default();
        let offer = ServerMessage::Offer {
            v: 1,
            from: Role::Citizen.into(),
            sdp: "v=0".into(),
        };
        let a = r.handle(Event::Signal {
            conn: 1,
            message: offer.clone(),
        });
        assert_eq!(
            a,
            vec![Action::Send(1, ServerMessage::error(ErrorCode::NotReady))]
        );
        r.handle(join(1, Role::Citizen, "Maria"));
        let a = r.handle(Event::Signal {
            conn: 1,
            message: offer.clone(),
        });
        assert_eq!(
            a,
            vec![Action::Send(1, ServerMessage::error(ErrorCode::NoPeer))]
        );
        r.handle(join(2, Role::Operator, "Op"));
        let a = r.handle(Event::Signal {
            conn: 1,
            message: offer.clone(),
        });
        assert_eq!(a, vec![Action::Send(2, offer)]);
    }

    fn chat(conn: ConnId, text: &str) -> Event {
        Event::Chat {
            conn,
            text: text.into(),
            at: DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }
    fn texts(actions: &[Action], conn: ConnId) -> Vec<(u32, Role, String)> {
        sent_to(actions, conn)
            .into_iter()
            .filter_map(|m| match m {
                ServerMessage::Chat {
                    seq, from, text, ..
                } => Some((*seq, *from, text.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_chat_reaches_both_sides_in_order_and_comes_back_after_a_reload() {
        let mut r = Room::default();
        // Not in the room: refused, nothing kept.
        assert_eq!(
            r.handle(chat(1, "ciao")),
            vec![Action::Send(1, ServerMessage::error(ErrorCode::NotReady))]
        );
        r.handle(join(1, Role::Citizen, "Maria Rossi"));
        // Alone in the waiting room: the citizen's message is kept for the operator.
        let a = r.handle(chat(1, "Sono in attesa"));
        assert_eq!(
            texts(&a, 1),
            vec![(1, Role::Citizen, "Sono in attesa".into())]
        );
        let a = r.handle(join(2, Role::Operator, "Anagrafe"));
        assert_eq!(
            texts(&a, 2),
            vec![(1, Role::Citizen, "Sono in attesa".into())]
        );
        assert!(texts(&a, 1).is_empty(), "the citizen has it already");
        let a = r.handle(chat(2, "Mi detta il numero di protocollo?"));
        assert_eq!(texts(&a, 1), texts(&a, 2));
        assert_eq!(
            texts(&a, 1),
            vec![(
                2,
                Role::Operator,
                "Mi detta il numero di protocollo?".into()
            )]
        );
        // The citizen reloads: a new connection replaces the old one and gets the whole chat.
        let a = r.handle(join(3, Role::Citizen, "Maria Rossi"));
        assert_eq!(
            texts(&a, 3).iter().map(|t| t.0).collect::<Vec<_>>(),
            vec![1, 2]
        );
        // The old connection is a stranger now.
        assert_eq!(
            r.handle(chat(1, "fantasma")),
            vec![Action::Send(1, ServerMessage::error(ErrorCode::NotReady))]
        );
        // Both leave, with the operator's agenda still watching: the chat goes.
        r.handle(Event::Watch { conn: 9 });
        r.handle(Event::Leave {
            conn: 3,
            reason: LeaveReason::Left,
        });
        r.handle(Event::Leave {
            conn: 2,
            reason: LeaveReason::Left,
        });
        assert!(texts(&r.handle(join(4, Role::Operator, "Anagrafe")), 4).is_empty());
    }

    #[test]
    fn a_call_keeps_at_most_max_chat_lines() {
        let mut r = Room::default();
        r.handle(join(1, Role::Citizen, "Maria"));
        for i in 0..MAX_CHAT_LINES {
            assert_eq!(texts(&r.handle(chat(1, &i.to_string())), 1).len(), 1);
        }
        assert_eq!(
            r.handle(chat(1, "uno di troppo")),
            vec![Action::Send(1, ServerMessage::error(ErrorCode::ChatFull))]
        );
    }

    use proptest::prelude::*;

    proptest! {
        /// Connections that are not in the room (closed tabs, forged ids, late messages) can
        /// send anything: the room does not change and only they hear back.
        #[test]
        fn strangers_change_nothing(ops in prop::collection::vec((0u8..3, 100u64..200, ".{0,20}"), 0..60)) {
            let mut r = Room::default();
            r.handle(join(1, Role::Citizen, "Maria"));
            r.handle(join(2, Role::Operator, "Op"));
            let before = r.clone();
            for (kind, conn, text) in ops {
                let ev = match kind {
                    0 => Event::Leave { conn, reason: LeaveReason::ConnectionLost },
                    1 if text.len() % 2 == 0 => chat(conn, &text),
                    1 => Event::Signal { conn, message: ServerMessage::Offer { v: 1, from: Role::Citizen.into(), sdp: text } },
                    _ => Event::Unwatch { conn },
                };
                for a in r.handle(ev) {
                    prop_assert!(matches!(a, Action::Send(c, _) if c == conn));
                }
                prop_assert_eq!(&r, &before);
            }
        }
    }
}
