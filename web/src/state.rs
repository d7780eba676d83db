//! What every handler shares (`AppState`), built once from the configuration by `build_state`. Handlers reach the store, the mailer, the signer, the
//! rooms and the relay only through this; everything below the web layer takes `now` as an
//! argument, read here.

use std::sync::Arc;

use booking::email::Links;
use booking::outbox::{Mailer, SmtpSecurity, SmtpSettings};
use booking::token::Signer;
use booking::Store;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::clock::Clock;
use crate::config::{Config, Create};
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
    /// The town in every page's header and footer.
    pub town: Arc<crate::town::Town>,
    /// The identity provider citizens log in with (SPID/CIE), if the town set one.
    pub oidc: Option<Arc<crate::oidc::Provider>>,
    /// This node, when several share the database (`node_url`): where each room is served.
    pub cluster: Option<Arc<crate::nodes::Cluster>>,
}

impl axum::extract::FromRef<AppState> for Arc<crate::town::Town> {
    fn from_ref(st: &AppState) -> Self {
        st.town.clone()
    }
}

impl AppState {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// How long a proof-of-work challenge may be answered: time to fill the form calmly (the widget
/// fetches a new one by itself when it expires).
const POW_LIFETIME_SECONDS: u64 = 30 * 60;

/// Opens the configured database with the secret key that signs its links, bringing its schema
/// up to date. `Create::IfMissing` (the server's start, `init`) makes what is missing: the data
/// folder, the secret key, the SQLite file, the schema. `Create::Never` (the other commands)
/// refuses, saying so, unless an installation is there: a command run from another directory
/// must not make a second database and key beside the real ones.
pub async fn open_store(cfg: &Config, create: Create) -> anyhow::Result<Store> {
    let url = cfg.database_url();
    if create == Create::Never && Store::installed(&url).await?.is_none() {
        anyhow::bail!(
            "no Sportello database at {} (data folder {}): {}",
            shown_url(&url),
            cfg.data_dir().display(),
            crate::config::NOT_INSTALLED_HINT
        );
    }
    let key_was_there = cfg.secret_key.is_some() || cfg.secret_key_file().exists();
    let tz = cfg.time_zone()?;
    let signer = Signer::new(&cfg.secret(create)?);
    let links = Links {
        base_url: cfg.public_url(),
        signer: signer.clone(),
        tz,
    };
    let limits = cfg.store_limits();
    let store = Store::connect(&url, links, limits)
        .await?
        .with_holidays(cfg.holidays()?);
    if !key_was_there && !store.fresh() {
        tracing::warn!(
            "a new secret key was made at {} for a database that existed already: the links in \
             the emails sent before no longer work. If the old key was saved, stop the server \
             and put it back",
            cfg.secret_key_file().display()
        );
    }
    Ok(store)
}

/// A database URL without its password, for messages.
pub fn shown_url(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://…@{host}"),
        _ => url.to_string(),
    }
}

/// Builds the server's state from the configuration: opens the database, making it if needed
/// (with the demo comune in a new one when `demo` is on), and chooses the email transport.
pub async fn build_state(cfg: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    let store = open_store(cfg, Create::IfMissing).await?;
    if store.fresh() && cfg.demo() {
        booking::demo::seed_if_empty(&store).await?;
        tracing::info!("new database: the demo comune is in it");
    }
    let tz = store.links.tz;
    let signer = store.links.signer.clone();
    // There now, made by `open_store` if it was missing.
    let secret = cfg.secret(Create::Never)?;
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
                    concurrency: cfg
                        .smtp_concurrency
                        .map_or(booking::outbox::SMTP_CONCURRENCY, usize::from),
                    timeout: std::time::Duration::from_secs(
                        cfg.smtp_timeout_seconds
                            .unwrap_or(booking::outbox::SMTP_TIMEOUT_SECONDS),
                    ),
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
    let relay = sfu::Relay::new(cfg.relay_config())?;
    let media: Arc<dyn signaling::Media> = Arc::new(RelayMedia(relay.clone()));
    let hub = signaling::Hub::new(Arc::new(directory), Some(media), cfg.room_settings());
    // A cancelled, moved or closed appointment's room looks again at once, whichever process
    // (on PostgreSQL, whichever node) changed it.
    let mut changes = store.appointment_changes();
    let rooms = Arc::downgrade(&hub);
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match changes.recv().await {
                Ok(id) => match rooms.upgrade() {
                    Some(hub) => hub.appointment_changed(id),
                    None => return,
                },
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            }
        }
    });
    cfg.check_media_ports()?;
    let draining: Arc<std::sync::atomic::AtomicBool> = Default::default();
    let cluster = cfg.node()?.map(|node| {
        crate::nodes::Cluster::new(
            node,
            store.clone(),
            hub.clone(),
            signer.clone(),
            draining.clone(),
        )
    });
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
        town: Arc::new(cfg.town()?),
        oidc: match cfg.oidc()? {
            Some(settings) => Some(Arc::new(crate::oidc::Provider::new(settings)?)),
            None => None,
        },
        pow: cfg.proof_of_work.unwrap_or(true).then(|| {
            Arc::new(crate::pow::ProofOfWork::new(
                &secret,
                cfg.proof_of_work_cost.unwrap_or(5000),
                POW_LIFETIME_SECONDS,
            ))
        }),
        cluster,
        draining,
        metrics: Default::default(),
        limits: crate::limits::ClientLimits::new(
            cfg.rate_limits().0,
            cfg.rate_limits().1,
            cfg.trusted_proxies()?,
        ),
        store,
    })
}
