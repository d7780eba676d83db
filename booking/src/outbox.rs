//! Delivery of the outbox: the one place that sends email. Over SMTP (lettre) when configured;
//! otherwise messages stay in the local mailbox, which a developer reads in the browser. A
//! message that fails stays queued and is tried again later, so an SMTP outage loses nothing.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::{self, BoxFuture, FutureExt};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::mpsc;

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
    /// SMTP sessions open at once: emails in flight, each on a session of its own, reused for
    /// the next email (a relay that takes 100 ms to accept a message passes 10 a second per
    /// session).
    pub concurrency: usize,
    /// How long the relay may take to answer each command (`SMTP_TIMEOUT_SECONDS`).
    pub timeout: std::time::Duration,
}

/// The default of `SmtpSettings::timeout`, in seconds.
pub const SMTP_TIMEOUT_SECONDS: u64 = 20;

/// The SMTP exchanges of one email that may each wait the whole timeout: the greeting, EHLO,
/// STARTTLS and EHLO again (or AUTH), MAIL FROM, RCPT TO, DATA, the message's end.
const SEND_STEPS: u32 = 8;

/// How long one email's sending may take at most, with each answer taking `timeout`: past it,
/// the attempt counts as failed and the email is tried again later.
fn send_limit(timeout: std::time::Duration) -> std::time::Duration {
    timeout * SEND_STEPS
}

/// How long a claimed email is its worker's before another may send it: twice the longest
/// send, so that a live worker has always given up on an email before another takes it. With
/// several nodes, this is how long an email claimed by a node that died waits.
pub fn claim_lease(timeout: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(2 * send_limit(timeout)).expect("a timeout of minutes at most")
}

/// The default of `SmtpSettings::concurrency`: well under what relays allow one client
/// (Postfix: 50), enough for 200 emails a second through a relay that takes 100 ms each.
pub const SMTP_CONCURRENCY: usize = 32;

enum Transport {
    LocalMailbox,
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    /// Emails sent at once.
    concurrency: usize,
    /// How long the relay may take to answer each command.
    timeout: std::time::Duration,
}

/// Emails one delivery pass sends at most, so that a pass ends (and the worker's other jobs
/// run) however long the queue: a few seconds' worth at full speed.
pub const PASS: usize = 500;

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
            concurrency: 1,
            timeout: std::time::Duration::from_secs(SMTP_TIMEOUT_SECONDS),
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
        let concurrency = s.concurrency.max(1);
        // Sessions stay open between emails (up to one per email in flight) and are closed
        // after a minute unused.
        let pool = PoolConfig::new()
            .max_size(concurrency as u32)
            .idle_timeout(std::time::Duration::from_secs(60));
        let mut builder = builder
            .port(s.port)
            .timeout(Some(s.timeout))
            .pool_config(pool);
        if let (Some(u), Some(p)) = (&s.username, &s.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(Mailer {
            transport: Transport::Smtp(builder.build()),
            from: parse_from(from)?,
            concurrency,
            timeout: s.timeout,
        })
    }

    pub fn is_local(&self) -> bool {
        matches!(self.transport, Transport::LocalMailbox)
    }

    /// Sends what is due, `concurrency` emails at a time; each message is marked sent or
    /// rescheduled on its own as soon as its relay answers.
    ///
    /// Each email is claimed before it is sent (see `Store::claim_due_emails`), and a later
    /// email of an appointment cannot be claimed while an earlier one is unsent: emails in
    /// flight together are of different appointments, and each appointment's arrive in order.
    /// At most a pass's worth, so that a pass ends: `more` until the queue runs out.
    pub async fn deliver_due(&self, store: &Store, now: DateTime<Utc>) -> Result<Delivery, Error> {
        type Job = (OutboxMessage, BoxFuture<'static, Result<(), String>>);
        let mut d = Delivery::default();
        // `concurrency` senders, each taking the next email from `todo` as soon as it is done
        // with one, so that none waits for the database; claims run ahead of them, and their
        // results are recorded in batches.
        let (todo, queue) = mpsc::unbounded_channel::<Job>();
        let (results, mut finished) = mpsc::unbounded_channel();
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        let mut senders = tokio::task::JoinSet::new();
        for _ in 0..self.concurrency {
            let (queue, results) = (queue.clone(), results.clone());
            senders.spawn(async move {
                loop {
                    let next = queue.lock().await.recv().await;
                    let Some((m, send)) = next else { return };
                    // A send that panics counts as failed (and is tried again), so that every
                    // email claimed comes back as a result.
                    let result = AssertUnwindSafe(send)
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| Err("the delivery task panicked".into()));
                    let _ = results.send((m, result));
                }
            });
        }
        let (mut claimed, mut outstanding) = (0, 0);
        loop {
            // Keep twice the senders' worth claimed; an email that finishes may let its
            // appointment's next one be claimed, so claiming is tried again after each round.
            let want = (2 * self.concurrency)
                .saturating_sub(outstanding)
                .min(PASS - claimed);
            if want > 0 {
                for m in store
                    .claim_due_emails(now, claim_lease(self.timeout), want)
                    .await?
                {
                    let send = self.send(&m);
                    let _ = todo.send((m, send));
                    claimed += 1;
                    outstanding += 1;
                }
            }
            if outstanding == 0 {
                break;
            }
            // The first to finish, and every other already finished: recorded together.
            let Some(first) = finished.recv().await else {
                break;
            };
            let mut done = vec![first];
            while let Ok(more) = finished.try_recv() {
                done.push(more);
            }
            outstanding -= done.len();
            for (m, result) in &done {
                match result {
                    Ok(()) => d.sent += 1,
                    Err(e) => {
                        // The address is not logged: it is personal data. Nor is it in the
                        // error as logged, though relays put it in their answers ("450 4.2.0
                        // <maria@example.it>: Recipient address rejected: Greylisted").
                        let error = without_addresses(e);
                        tracing::warn!(message_id = m.id, kind = %m.kind, %error, "email delivery failed, will retry");
                        d.failed += 1;
                    }
                }
            }
            store.record_attempts(&done, now).await?;
        }
        d.more = claimed == PASS;
        Ok(d)
    }

    /// One email handed to the relay (or left in the local mailbox), as a future of its own.
    fn send(&self, m: &OutboxMessage) -> BoxFuture<'static, Result<(), String>> {
        match &self.transport {
            Transport::LocalMailbox => future::ready(Ok(())).boxed(),
            Transport::Smtp(t) => {
                let (t, msg, limit) = (t.clone(), self.compose(m), send_limit(self.timeout));
                async move {
                    // Each answer has its timeout; the whole exchange has one too, so that the
                    // email is given up well before its claim runs out (`claim_lease`).
                    match tokio::time::timeout(limit, t.send(msg?)).await {
                        Ok(sent) => sent.map(|_| ()).map_err(|e| e.to_string()),
                        Err(_) => Err(format!("no answer from the relay in {} s", limit.as_secs())),
                    }
                }
                .boxed()
            }
        }
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

/// `text` with every email address in it (a word with an `@` between a local part and a
/// domain) replaced by `[address]`.
fn without_addresses(text: &str) -> String {
    let local = |c: char| c.is_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c);
    let domain = |c: char| c.is_alphanumeric() || c == '.' || c == '-';
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let mut start = i;
            while start > 0 && local(chars[start - 1]) {
                start -= 1;
            }
            let mut end = i + 1;
            while end < chars.len() && domain(chars[end]) {
                end += 1;
            }
            if start < i && end > i + 1 {
                // The local part was already copied: take it back.
                let copied: usize = chars[start..i].iter().map(|c| c.len_utf8()).sum();
                out.truncate(out.len() - copied);
                out.push_str("[address]");
                i = end;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn parse_from(from: &str) -> Result<Mailbox, Error> {
    from.parse()
        .map_err(|e| Error::Config(format!("invalid sender address {from:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn relay_answers_are_logged_without_the_addresses_in_them() {
        for (answer, logged) in [
            (
                "transient error (450): 4.2.0 <maria.rossi@example.it>: Recipient address rejected: Greylisted",
                "transient error (450): 4.2.0 <[address]>: Recipient address rejected: Greylisted",
            ),
            (
                "permanent error (550): 5.1.1 giò.o'neil+sportello@posta.comune-esempio.it unknown; from noreply@comune.example",
                "permanent error (550): 5.1.1 [address] unknown; from [address]",
            ),
            (
                "network error: Connection refused (os error 111)",
                "network error: Connection refused (os error 111)",
            ),
            ("@ alone, a@ and @b", "@ alone, a@ and @b"),
            ("", ""),
        ] {
            assert_eq!(without_addresses(answer), logged);
        }
    }

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
