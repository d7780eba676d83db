//! What every handler shares (`AppState`), built once from the configuration by `build_state`. Handlers reach the store, the mailer, the signer, the
//! rooms and the relay only through this; everything below the web layer takes `now` as an
//! argument, read here.

use std::sync::Arc;

use booking::email::Links;
use booking::outbox::{Mailer, SmtpSecurity, SmtpSettings};
use booking::token::Signer;
use booking::{Limits, Store};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::clock::Clock;
use crate::config::Config;
use crate::directory::StoreDirectory;
use crate::media::RelayMedia;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub mailer: Arc<Mailer>,
    pub clock: Arc<dyn Clock>,
    pub signer: Signer,
    pub tz: Tz,
    /// The virtual rooms' signaling.
    pub hub: Arc<signaling::Hub>,
    /// The media relay.
    pub relay: Arc<sfu::Relay>,
    /// Staff accounts and sessions.
    pub accounts: staff::Accounts,
    /// Whether pages are served over HTTPS (session cookies are then Secure).
    pub https: bool,
    /// Whether answers ask browsers to come back only over HTTPS (HSTS): with a real
    /// certificate (`tls = files`), never with the development one.
    pub hsts: bool,
    /// Per-client limits on bookings, verifications, moves and logins; the client's address
    /// behind trusted proxies.
    pub limits: Arc<crate::limits::ClientLimits>,
    /// The proof of work asked of the public booking form, unless switched off.
    pub pow: Option<Arc<crate::pow::ProofOfWork>>,
    /// When the process started (Unix seconds, the real clock), for monitoring.
    pub started_at: i64,
    /// Set on SIGTERM: the server is draining and `/readyz` answers 503.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// HTTP and outbox totals for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl AppState {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// How long a proof-of-work challenge may be answered: time to fill the form calmly (the widget
/// fetches a new one by itself when it expires).
const POW_LIFETIME_SECONDS: u64 = 30 * 60;

/// Builds the state from the configuration: opens the database (creating the demo comune on an
/// empty one unless told not to) and chooses the email transport.
pub async fn build_state(cfg: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    let tz = cfg.time_zone()?;
    let secret = cfg.secret()?;
    let signer = Signer::new(&secret);
    let links = Links {
        base_url: cfg.public_url(),
        signer: signer.clone(),
        tz,
    };
    let mut limits = Limits::default();
    if let Some(n) = cfg.max_active_per_email {
        limits.max_active_per_email = n.max(1);
    }
    if let Some(n) = cfg.max_unverified_per_email {
        limits.max_unverified_per_email = n.max(1);
    }
    if let Some(n) = cfg.verifications_per_day {
        limits.verifications_per_day = n.max(1);
    }
    if let Some(h) = cfg.reminder_hours {
        limits.reminder_day = Duration::hours(h.max(1));
    }
    if let Some(m) = cfg.last_reminder_minutes {
        limits.reminder_hour = Duration::minutes(m.max(1));
    }
    let store = Store::connect(&cfg.database_url(), links, limits).await?;
    if !cfg.no_demo.unwrap_or(false) {
        booking::demo::seed_if_empty(&store, booking::demo::year_of(clock.now())).await?;
    }
    let mailer = match &cfg.smtp_host {
        Some(host) => {
            let security = cfg.smtp_security.unwrap_or(SmtpSecurity::Starttls);
            let port = cfg.smtp_port.unwrap_or(security.default_port());
            Mailer::smtp(
                &SmtpSettings {
                    host: host.clone(),
                    port,
                    security,
                    username: cfg.smtp_username.clone(),
                    password: cfg.smtp_password.clone(),
                },
                &cfg.mail_from(),
            )?
        }
        None => Mailer::local(&cfg.mail_from())?,
    };
    let directory = StoreDirectory {
        store: store.clone(),
        signer: signer.clone(),
        clock: clock.clone(),
        ice: Arc::new(cfg.ice_servers()?),
    };
    let relay = sfu::Relay::new(cfg.relay_config());
    let media: Arc<dyn signaling::Media> = Arc::new(RelayMedia(relay.clone()));
    let hub = signaling::Hub::new(Arc::new(directory), Some(media), cfg.room_settings());
    cfg.check_media_ports()?;
    Ok(AppState {
        mailer: Arc::new(mailer),
        clock,
        signer,
        tz,
        hub,
        relay,
        accounts: staff::Accounts::new(store.pool().clone()),
        https: cfg.https(),
        hsts: cfg.tls_mode() == crate::config::TlsMode::Files,
        started_at: chrono::Utc::now().timestamp(),
        pow: cfg.proof_of_work.unwrap_or(true).then(|| {
            Arc::new(crate::pow::ProofOfWork::new(
                &secret,
                cfg.proof_of_work_cost.unwrap_or(5000),
                POW_LIFETIME_SECONDS,
            ))
        }),
        draining: Default::default(),
        metrics: Default::default(),
        limits: crate::limits::ClientLimits::new(
            cfg.rate_limit_per_minute.unwrap_or(10),
            cfg.rate_limit_burst.unwrap_or(5),
            cfg.trusted_proxies()?,
        ),
        store,
    })
}
