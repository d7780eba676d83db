//! Delivery of the outbox: the one place that sends email. Over SMTP (lettre) when configured;
//! otherwise messages stay in the local mailbox, which a developer reads in the browser. A
//! message that fails stays queued and is tried again later, so an SMTP outage loses nothing.

use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::store::{OutboxMessage, Store};
use crate::Error;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP (a relay on the same host or network).
    None,
    /// STARTTLS on the submission port (587).
    Starttls,
    /// TLS from the first byte (465).
    Tls,
}

impl SmtpSecurity {
    /// The standard port for this security.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }
}

impl std::str::FromStr for SmtpSecurity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "starttls" => Ok(SmtpSecurity::Starttls),
            "tls" => Ok(SmtpSecurity::Tls),
            "none" => Ok(SmtpSecurity::None),
            other => Err(format!("must be starttls, tls or none, not {other:?}")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
}

enum Transport {
    LocalMailbox,
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

/// How long a claimed email is this worker's before another may send it.
pub const CLAIM_LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// Emails one delivery pass sends at most, so that a pass ends (and the worker's other jobs
/// run) however long the queue.
pub const PASS: usize = 100;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    pub failed: usize,
    /// The pass stopped at `PASS` emails: more may be due, and the next pass should follow at
    /// once rather than at the worker's next round.
    pub more: bool,
}

impl Mailer {
    pub fn local(from: &str) -> Result<Mailer, Error> {
        Ok(Mailer {
            transport: Transport::LocalMailbox,
            from: parse_from(from)?,
        })
    }

    pub fn smtp(s: &SmtpSettings, from: &str) -> Result<Mailer, Error> {
        let builder = match s.security {
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
                .map_err(|e| Error::Config(format!("SMTP: {e}")))?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)
                .map_err(|e| Error::Config(format!("SMTP: {e}")))?,
        };
        let mut builder = builder
            .port(s.port)
            .timeout(Some(std::time::Duration::from_secs(20)));
        if let (Some(u), Some(p)) = (&s.username, &s.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(Mailer {
            transport: Transport::Smtp(builder.build()),
            from: parse_from(from)?,
        })
    }

    pub fn is_local(&self) -> bool {
        matches!(self.transport, Transport::LocalMailbox)
    }

    /// Sends what is due; each message is marked sent or rescheduled on its own.
    pub async fn deliver_due(&self, store: &Store, now: DateTime<Utc>) -> Result<Delivery, Error> {
        // One at a time, each claimed before it is sent (see `Store::claim_due_email`); at
        // most a pass's worth, so that a pass ends: `more` until the queue runs out.
        let mut d = Delivery {
            more: true,
            ..Delivery::default()
        };
        for _ in 0..PASS {
            let Some(m) = store.claim_due_email(now, CLAIM_LEASE).await? else {
                d.more = false;
                break;
            };
            let result = match &self.transport {
                Transport::LocalMailbox => Ok(()),
                Transport::Smtp(t) => match self.compose(&m) {
                    Ok(msg) => t.send(msg).await.map(|_| ()).map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(()) => {
                    store.mark_sent(m.id, now).await?;
                    d.sent += 1;
                }
                Err(e) => {
                    // The address is not logged: it is personal data.
                    tracing::warn!(message_id = m.id, kind = %m.kind, error = %e, "email delivery failed, will retry");
                    store.mark_failed(&m, &e, now).await?;
                    d.failed += 1;
                }
            }
        }
        Ok(d)
    }

    /// The MIME message: text and HTML alternatives, and the invitation as a calendar part.
    pub fn compose(&self, m: &OutboxMessage) -> Result<Message, String> {
        let to: Mailbox = m.to.parse().map_err(|e| format!("bad recipient: {e}"))?;
        let body = MultiPart::alternative_plain_html(m.text.clone(), m.html.clone());
        // The same on every attempt: a receiver that sees it twice (a crash after the relay
        // accepted it) can tell it is one message.
        let message_id = format!("<outbox-{}@{}>", m.id, self.from.email.domain());
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .message_id(Some(message_id))
            .subject(m.subject.clone());
        let msg = match (&m.ics, &m.ics_method) {
            (Some(ics), Some(method)) => {
                let ct =
                    ContentType::parse(&format!("text/calendar; charset=utf-8; method={method}"))
                        .map_err(|e| e.to_string())?;
                let part: SinglePart =
                    Attachment::new("invito.ics".to_string()).body(ics.clone(), ct);
                builder.multipart(MultiPart::mixed().multipart(body).singlepart(part))
            }
            _ => builder.multipart(body),
        };
        msg.map_err(|e| e.to_string())
    }
}

fn parse_from(from: &str) -> Result<Mailbox, Error> {
    from.parse()
        .map_err(|e| Error::Config(format!("invalid sender address {from:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[tokio::test]
    async fn a_pass_sends_at_most_its_share_and_says_when_more_are_due() {
        let (_dir, store) = Store::for_test().await;
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        // A backlog one email longer than a pass, as after a restart or an outage.
        for id in 1..=(PASS as i64 + 1) {
            sqlx::query("INSERT INTO outbox (id, kind, to_addr, subject, text_body, html_body, created_at, attempts, next_attempt_at) VALUES ($1, 'verify', 'a@example.it', 's', 't', 'h', $2, 0, $2)")
                .bind(id)
                .bind(now.timestamp())
                .execute(store.pool())
                .await
                .unwrap();
        }
        let mailer = Mailer::local("Comune <noreply@comune.example>").unwrap();
        let first = mailer.deliver_due(&store, now).await.unwrap();
        assert_eq!((first.sent, first.more), (PASS, true));
        let second = mailer.deliver_due(&store, now).await.unwrap();
        assert_eq!((second.sent, second.more), (1, false));
    }
}
