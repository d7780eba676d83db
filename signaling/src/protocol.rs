//! The signaling protocol, version 1: JSON text messages with a `type` and a `v`, one per
//! WebSocket message. See `PROTOCOL.md` for the conversation; this module is its schema.
//! Parsing never panics and tells apart the three ways a message can be wrong: too large, not
//! our JSON at all (malformed), or well-formed with a type we do not know.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::gate::Role;

pub const VERSION: u32 = 1;
/// Largest message accepted, in bytes. An SDP offer is a few KiB; this leaves ample room.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Longest display name, in characters.
pub const MAX_NAME: usize = 80;
/// Longest chat message, in characters: a sentence, a protocol number, a link.
pub const MAX_CHAT: usize = 1000;
/// Chat messages one call keeps (for a participant who reloads); more are refused.
pub const MAX_CHAT_LINES: usize = 300;

/// What a browser sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Presents the room token; answered by `countdown`, `ready` or an error. May be sent again
    /// (the countdown page does when its countdown reaches zero).
    Hello {
        v: u32,
        token: String,
    },
    /// Enters the room with a display name (after `ready`).
    Join {
        v: u32,
        name: String,
    },
    /// WebRTC session description and ICE candidates, for the other side (or the media relay).
    Offer {
        v: u32,
        sdp: String,
    },
    Answer {
        v: u32,
        sdp: String,
    },
    Ice {
        v: u32,
        candidate: String,
        #[serde(default)]
        sdp_mid: Option<String>,
        #[serde(default)]
        sdp_mline_index: Option<u16>,
    },
    Leave {
        v: u32,
    },
    Ping {
        v: u32,
    },
    /// A chat message for the call (after `join`): one line of text.
    Chat {
        v: u32,
        text: String,
    },
}

const CLIENT_TYPES: &[&str] = &[
    "hello", "join", "offer", "answer", "ice", "leave", "ping", "chat",
];

/// Who sent a forwarded message: the other participant, or the media relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Citizen,
    Operator,
    Relay,
}

impl From<Role> for Party {
    fn from(r: Role) -> Party {
        match r {
            Role::Citizen => Party::Citizen,
            Role::Operator => Party::Operator,
        }
    }
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Too early: the room opens at `opens_at`, in `ms_left` milliseconds (from `server_time`).
    Countdown {
        v: u32,
        starts_at: DateTime<Utc>,
        opens_at: DateTime<Utc>,
        server_time: DateTime<Utc>,
        ms_left: i64,
        seconds_left: i64,
    },
    /// The room is open for you: send `join` with your name.
    Ready {
        v: u32,
        role: Role,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
        office: String,
        service: String,
        /// STUN/TURN servers for this socket's peer connection (RTCPeerConnection's
        /// `iceServers`); TURN credentials in it are made for this socket and expire.
        #[serde(default)]
        ice_servers: Vec<serde_json::Value>,
    },
    /// You are in; the other side is not yet.
    Waiting {
        v: u32,
        waiting_for: Role,
    },
    /// The other side is in: the call starts.
    PeerJoined {
        v: u32,
        role: Role,
        name: String,
    },
    /// The other side left, or its connection was lost (it may come back).
    PeerLeft {
        v: u32,
        role: Role,
        reason: LeaveReason,
    },
    /// The citizen is waiting in the room (sent to the operator's connections).
    CitizenWaiting {
        v: u32,
        name: String,
    },
    /// Forwarded from the other side.
    Offer {
        v: u32,
        from: Party,
        sdp: String,
    },
    Answer {
        v: u32,
        from: Party,
        sdp: String,
    },
    Ice {
        v: u32,
        from: Party,
        candidate: String,
        sdp_mid: Option<String>,
        sdp_mline_index: Option<u16>,
    },
    /// The state of this participant's media connection to the relay (new, connecting,
    /// connected, disconnected, failed, closed).
    MediaState {
        v: u32,
        state: String,
    },
    /// The other participant's media connection to the relay failed (`failed`: they are trying
    /// again) or is up (`connected`).
    PeerMedia {
        v: u32,
        state: String,
    },
    /// A chat message of the call, to both sides (its sender too), and again, in order, to
    /// whoever enters while the call's messages are kept. `seq` counts from 1 in the call.
    Chat {
        v: u32,
        seq: u32,
        from: Role,
        name: String,
        text: String,
        at: DateTime<Utc>,
    },
    /// This connection was replaced by a newer one with the same token (another tab).
    Replaced {
        v: u32,
    },
    Pong {
        v: u32,
    },
    Error {
        v: u32,
        code: ErrorCode,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    Left,
    ConnectionLost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Malformed,
    UnknownType,
    UnsupportedVersion,
    TooLarge,
    BadToken,
    WrongRoom,
    TooEarly,
    Ended,
    Cancelled,
    NotConfirmed,
    NotReady,
    NoPeer,
    BadName,
    BadSdp,
    BadCandidate,
    /// No valid `hello` in the first seconds: the socket is closed.
    NoHello,
    /// More messages than a browser sends: this one was not served.
    RateLimited,
    /// An empty chat message, a longer one than `MAX_CHAT`, or one with control characters.
    BadChat,
    /// The call has `MAX_CHAT_LINES` messages already.
    ChatFull,
}

impl ErrorCode {
    /// The WebSocket close code for errors that end the connection, with its reason.
    pub fn close(self) -> Option<(u16, &'static str)> {
        match self {
            ErrorCode::TooLarge => Some((1009, "message too large")),
            ErrorCode::BadToken => Some((4401, "invalid room token")),
            ErrorCode::WrongRoom => Some((4403, "token of another room")),
            ErrorCode::Ended => Some((4410, "this appointment has ended")),
            ErrorCode::Cancelled => Some((4410, "this appointment was cancelled")),
            ErrorCode::NotConfirmed => Some((4409, "this appointment is not confirmed yet")),
            ErrorCode::NoHello => Some((4408, "no hello in time")),
            _ => None,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "messaggio non valido / malformed message",
            ErrorCode::UnknownType => "tipo di messaggio sconosciuto / unknown message type",
            ErrorCode::UnsupportedVersion => {
                "versione del protocollo non supportata / unsupported protocol version"
            }
            ErrorCode::TooLarge => "messaggio troppo grande / message too large",
            ErrorCode::BadToken => "link della stanza non valido / invalid room link",
            ErrorCode::WrongRoom => "il link è di un'altra stanza / this link is for another room",
            ErrorCode::TooEarly => "la stanza non è ancora aperta / the room is not open yet",
            ErrorCode::Ended => "l'appuntamento è terminato / this appointment has ended",
            ErrorCode::Cancelled => {
                "l'appuntamento è stato annullato / this appointment was cancelled"
            }
            ErrorCode::NotConfirmed => {
                "l'appuntamento non è ancora confermato / this appointment is not confirmed yet"
            }
            ErrorCode::NotReady => {
                "prima presenta il link della stanza / present the room link first"
            }
            ErrorCode::NoPeer => {
                "l'altra persona non è nella stanza / the other person is not in the room"
            }
            ErrorCode::BadName => "nome non valido / invalid name",
            ErrorCode::BadSdp => {
                "descrizione della sessione non valida / invalid session description"
            }
            ErrorCode::BadCandidate => "candidato ICE non valido / invalid ICE candidate",
            ErrorCode::NoHello => {
                "nessun saluto ricevuto in tempo: ricarica la pagina / no hello in time: reload the page"
            }
            ErrorCode::RateLimited => {
                "troppi messaggi, rallenta / too many messages, slow down"
            }
            ErrorCode::BadChat => {
                "messaggio vuoto, troppo lungo (al massimo 1000 caratteri) o con caratteri non ammessi / empty message, too long (1000 characters at most) or with characters that are not allowed"
            }
            ErrorCode::ChatFull => {
                "troppi messaggi in questa chiamata / too many messages in this call"
            }
        }
    }
}

impl ServerMessage {
    pub fn error(code: ErrorCode) -> ServerMessage {
        ServerMessage::Error {
            v: VERSION,
            code,
            message: code.message().to_string(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

/// Reads one client message.
pub fn parse(text: &str) -> Result<ClientMessage, ErrorCode> {
    if text.len() > MAX_MESSAGE {
        return Err(ErrorCode::TooLarge);
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| ErrorCode::Malformed)?;
    let obj = value.as_object().ok_or(ErrorCode::Malformed)?;
    let kind = obj
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or(ErrorCode::Malformed)?;
    if !CLIENT_TYPES.contains(&kind) {
        return Err(ErrorCode::UnknownType);
    }
    match obj.get("v").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(_) => return Err(ErrorCode::UnsupportedVersion),
        None => return Err(ErrorCode::Malformed),
    }
    let mut msg: ClientMessage = serde_json::from_value(value).map_err(|_| ErrorCode::Malformed)?;
    if let ClientMessage::Join { name, .. } = &mut msg {
        // The name as shown: trimmed (a line break or tab around it is no part of it, and
        // must not reach the other side's page).
        let n = name.trim();
        if n.is_empty() || n.chars().count() > MAX_NAME || !n.chars().all(allowed_in_name) {
            return Err(ErrorCode::BadName);
        }
        *name = n.to_string();
    }
    if let ClientMessage::Chat { text, .. } = &mut msg {
        // Shown as typed, trimmed; one line (a line break could fake a second message).
        let t = text.trim();
        if t.is_empty() || t.chars().count() > MAX_CHAT || !t.chars().all(allowed_in_name) {
            return Err(ErrorCode::BadChat);
        }
        *text = t.to_string();
    }
    Ok(msg)
}

/// Whether `c` may stand in a display name: no control characters and no bidirectional
/// embeddings, overrides or isolates (which make a name show as something it is not). The same
/// rule as `booking::validate::allowed_in_line`, which this crate does not depend on.
fn allowed_in_name(c: char) -> bool {
    !c.is_control() && !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_kind_of_bad_input_has_its_code() {
        assert_eq!(parse("{"), Err(ErrorCode::Malformed));
        assert_eq!(parse("[1,2]"), Err(ErrorCode::Malformed));
        assert_eq!(parse(r#"{"v":1}"#), Err(ErrorCode::Malformed));
        assert_eq!(
            parse(r#"{"type":"dance","v":1}"#),
            Err(ErrorCode::UnknownType)
        );
        assert_eq!(
            parse(r#"{"type":"hello","v":2,"token":"x"}"#),
            Err(ErrorCode::UnsupportedVersion)
        );
        assert_eq!(
            parse(r#"{"type":"hello","token":"x"}"#),
            Err(ErrorCode::Malformed)
        );
        assert_eq!(
            parse(r#"{"type":"hello","v":1}"#),
            Err(ErrorCode::Malformed)
        );
        assert_eq!(
            parse(r#"{"type":"hello","v":1,"token":"x","extra":1}"#),
            Err(ErrorCode::Malformed)
        );
        assert_eq!(
            parse(r#"{"type":"join","v":1,"name":"  "}"#),
            Err(ErrorCode::BadName)
        );
        // Found by fuzzing: a line break around an accepted name stayed in it.
        assert_eq!(
            parse(r#"{"type":"join","v":1,"name":"\natnAokenoss\t"}"#),
            Ok(ClientMessage::Join {
                v: VERSION,
                name: "atnAokenoss".into()
            })
        );
        // A name that shows reversed or hides text (U+202E, U+2066) is refused like a control.
        for name in ["Anna\\u202eossoR", "Anna\\u2066x", "Anna\\nRossi"] {
            assert_eq!(
                parse(&format!(r#"{{"type":"join","v":1,"name":"{name}"}}"#)),
                Err(ErrorCode::BadName),
                "{name}"
            );
        }
        for text in [
            "",
            "   ",
            "riga\\nseconda",
            "a\\u0000b",
            "link \\u202egro.elpmaxe",
        ] {
            assert_eq!(
                parse(&format!(r#"{{"type":"chat","v":1,"text":"{text}"}}"#)),
                Err(ErrorCode::BadChat),
                "{text}"
            );
        }
        let long = "é".repeat(MAX_CHAT + 1);
        assert_eq!(
            parse(&format!(r#"{{"type":"chat","v":1,"text":"{long}"}}"#)),
            Err(ErrorCode::BadChat)
        );
        assert_eq!(
            parse(&format!(
                r#"{{"type":"chat","v":1,"text":" {} "}}"#,
                "é".repeat(MAX_CHAT)
            )),
            Ok(ClientMessage::Chat {
                v: 1,
                text: "é".repeat(MAX_CHAT)
            })
        );
        let big = format!(
            r#"{{"type":"offer","v":1,"sdp":"{}"}}"#,
            "a".repeat(MAX_MESSAGE)
        );
        assert_eq!(parse(&big), Err(ErrorCode::TooLarge));
    }

    #[test]
    fn good_messages_parse() {
        assert_eq!(
            parse(r#"{"type":"hello","v":1,"token":"abc"}"#),
            Ok(ClientMessage::Hello {
                v: 1,
                token: "abc".into()
            })
        );
        assert_eq!(
            parse(
                r#"{"type":"ice","v":1,"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdp_mid":"0"}"#
            ),
            Ok(ClientMessage::Ice {
                v: 1,
                candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_mline_index: None
            })
        );
    }

    #[test]
    fn server_messages_carry_type_and_version() {
        let j = ServerMessage::error(ErrorCode::WrongRoom).to_json();
        assert!(j.contains(r#""type":"error""#));
        assert!(j.contains(r#""v":1"#));
        assert!(j.contains(r#""code":"wrong_room""#));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse(&text);
        }

        #[test]
        fn random_json_never_panics(
            kind in prop::sample::select(vec!["hello", "join", "offer", "answer", "ice", "leave", "ping", "chat", "x", ""]),
            v in prop::option::of(0u64..4),
            field in "[a-z_]{0,12}",
            value in prop_oneof![Just(serde_json::json!(null)), any::<i64>().prop_map(|i| serde_json::json!(i)), ".{0,40}".prop_map(|s| serde_json::json!(s))],
        ) {
            let mut o = serde_json::Map::new();
            o.insert("type".into(), serde_json::json!(kind));
            if let Some(v) = v { o.insert("v".into(), serde_json::json!(v)); }
            o.insert(field, value);
            let _ = parse(&serde_json::Value::Object(o).to_string());
        }
    }
}
