//! Configuration: command-line flags, environment variables (`SPORTELLO_*`) and an optional
//! TOML file, in that order of precedence. Without any of them the server runs on its embedded
//! default: SQLite under `data/`, emails kept in a local mailbox, a secret key made at first
//! start.

use std::path::PathBuf;

use booking::outbox::SmtpSecurity;
use clap::Parser;
use serde::Deserialize;

/// Where the server's TLS certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// A development certificate made under the data folder.
    Dev,
    /// Certificate and key files (--tls-cert, --tls-key).
    Files,
    /// Plain HTTP only (behind a TLS proxy).
    Off,
}

/// Sportello: appointments with the town offices, in person, by phone or by video call.
///
/// Every option can also be given as an environment variable (shown in brackets) or as a key of
/// the TOML file named by --config (the long option's name with '_' for '-', e.g.
/// `database_url = "postgres://..."`). Flags win over the environment, which wins over the file.
#[derive(Debug, Clone, Default, Parser, Deserialize)]
#[command(name = "sportello", version, about, long_about)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<Command>,

    /// TOML configuration file.
    #[arg(long, env = "SPORTELLO_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address and port for plain HTTP [default: 127.0.0.1:8080]. With TLS on, it only
    /// redirects to HTTPS.
    #[arg(long, env = "SPORTELLO_LISTEN")]
    pub listen: Option<String>,

    /// Address and port for HTTPS [default: 127.0.0.1:8443]. To let a phone on the LAN join,
    /// listen on 0.0.0.0 and set --public-url to https://THIS-MACHINE'S-ADDRESS:PORT.
    #[arg(long, env = "SPORTELLO_HTTPS_LISTEN")]
    pub https_listen: Option<String>,

    /// Address and port of the administration listener (plain HTTP): the local mailbox
    /// (/posta), /metrics, /healthz and /readyz, never served on the public listeners. Keep it
    /// on loopback [default: 127.0.0.1:8090].
    #[arg(long, env = "SPORTELLO_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,

    /// TLS: "dev" (a development certificate made under DATA_DIR for localhost and this
    /// machine's addresses), "files" (--tls-cert and --tls-key), or "off" (plain HTTP only, e.g.
    /// behind a TLS proxy) [default: dev].
    #[arg(long, env = "SPORTELLO_TLS")]
    pub tls: Option<TlsMode>,

    /// Certificate chain (PEM) for --tls files.
    #[arg(long, env = "SPORTELLO_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) for --tls files.
    #[arg(long, env = "SPORTELLO_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Public base URL used in the links of emails [default: https://localhost:8443, or
    /// http://localhost:8080 with --tls off; the port is the listening one].
    #[arg(long, env = "SPORTELLO_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Folder for the embedded database, the secret key and the development certificate
    /// [default: data].
    #[arg(long, env = "SPORTELLO_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database URL: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB
    /// [default: sqlite://DATA_DIR/sportello.db].
    #[arg(long, env = "SPORTELLO_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Secret key that signs links and tokens (at least 32 characters). Without it, a random
    /// key is made at first start and kept in DATA_DIR/secret.key.
    #[arg(long, env = "SPORTELLO_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Time zone of the offices' hours [default: Europe/Rome].
    #[arg(long, env = "SPORTELLO_TIME_ZONE")]
    pub time_zone: Option<String>,

    /// SMTP server for outgoing email. Without it, emails stay in the local mailbox at /posta.
    #[arg(long, env = "SPORTELLO_SMTP_HOST")]
    pub smtp_host: Option<String>,

    /// SMTP port [default: 587 with starttls, 465 with tls, 25 with none].
    #[arg(long, env = "SPORTELLO_SMTP_PORT")]
    pub smtp_port: Option<u16>,

    /// SMTP security: starttls, tls or none [default: starttls].
    #[arg(long, env = "SPORTELLO_SMTP_SECURITY")]
    pub smtp_security: Option<SmtpSecurity>,

    /// SMTP user name.
    #[arg(long, env = "SPORTELLO_SMTP_USERNAME")]
    pub smtp_username: Option<String>,

    /// SMTP password.
    #[arg(long, env = "SPORTELLO_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,

    /// Sender of the emails [default: Sportello <noreply@localhost>].
    #[arg(long, env = "SPORTELLO_MAIL_FROM")]
    pub mail_from: Option<String>,

    /// Active appointments one email address may hold [default: 5].
    #[arg(long, env = "SPORTELLO_MAX_ACTIVE_PER_EMAIL")]
    pub max_active_per_email: Option<i64>,

    /// Citizen bookings of one person (email, "+tag" ignored) waiting for email verification
    /// at once [default: 2]. Each holds its seat until verified or expired (2 hours).
    #[arg(long, env = "SPORTELLO_MAX_UNVERIFIED_PER_EMAIL")]
    pub max_unverified_per_email: Option<i64>,

    /// Verification emails one person (email, "+tag" ignored) may be sent in 24 hours
    /// [default: 5].
    #[arg(long, env = "SPORTELLO_VERIFICATIONS_PER_DAY")]
    pub verifications_per_day: Option<i64>,

    /// Bookings, verifications, moves, cancellations and staff logins one client address may
    /// send a minute [default: 10]; over it the answer is 429 with Retry-After.
    #[arg(long, env = "SPORTELLO_RATE_LIMIT_PER_MINUTE")]
    pub rate_limit_per_minute: Option<u32>,

    /// How many of those a client may send at once before the per-minute pace applies
    /// [default: 5].
    #[arg(long, env = "SPORTELLO_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<u32>,

    /// Ask the public booking form for a proof of work (ALTCHA, made and checked here: no third
    /// party): about a second of the browser's time per booking, which makes booking in bulk
    /// by script costly. `--proof-of-work=false` turns it off [default: on].
    #[arg(
        long,
        env = "SPORTELLO_PROOF_OF_WORK",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub proof_of_work: Option<bool>,

    /// PBKDF2 iterations per try of the proof of work (about 256 tries are needed on average)
    /// [default: 5000].
    #[arg(long, env = "SPORTELLO_PROOF_OF_WORK_COST")]
    pub proof_of_work_cost: Option<u32>,

    /// Addresses of the reverse proxies in front of Sportello, comma-separated (e.g.
    /// 127.0.0.1): only from them is X-Forwarded-For believed, for limits and for the pages
    /// served to this machine only. Without it, every request is from its peer.
    #[arg(long, env = "SPORTELLO_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,

    /// Log lines as "text" (for people) or "json" (for log collectors) [default: text]. The
    /// level is RUST_LOG's (default info); requests are logged with their tokens hidden.
    #[arg(long, env = "SPORTELLO_LOG_FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,

    /// Seconds a client may take to send a request's headers (slow clients are dropped)
    /// [default: 10].
    #[arg(long, env = "SPORTELLO_HEADER_TIMEOUT_SECONDS")]
    pub header_timeout_seconds: Option<u64>,

    /// Connections open at once, in all [default: 10000].
    #[arg(long, env = "SPORTELLO_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Connections open at once from one client address (trusted proxies excepted)
    /// [default: 200].
    #[arg(long, env = "SPORTELLO_MAX_CONNECTIONS_PER_CLIENT")]
    pub max_connections_per_client: Option<usize>,

    /// Hours before the appointment for the first reminder [default: 24].
    #[arg(long, env = "SPORTELLO_REMINDER_HOURS")]
    pub reminder_hours: Option<i64>,

    /// Minutes before the appointment for the last reminder [default: 60].
    #[arg(long, env = "SPORTELLO_LAST_REMINDER_MINUTES")]
    pub last_reminder_minutes: Option<i64>,

    /// Seconds between two runs of the background worker (expiry, reminders, email)
    /// [default: 5].
    #[arg(long, env = "SPORTELLO_WORKER_INTERVAL")]
    pub worker_interval: Option<u64>,

    /// Minutes before the start when the citizen may enter the video room [default: 5].
    #[arg(long, env = "SPORTELLO_ROOM_CITIZEN_EARLY_MINUTES")]
    pub room_citizen_early_minutes: Option<i64>,

    /// Minutes before the start when the operator may enter the video room [default: 15].
    #[arg(long, env = "SPORTELLO_ROOM_OPERATOR_EARLY_MINUTES")]
    pub room_operator_early_minutes: Option<i64>,

    /// Minutes after the end when the video room closes [default: 30].
    #[arg(long, env = "SPORTELLO_ROOM_GRACE_MINUTES")]
    pub room_grace_minutes: Option<i64>,

    /// Seconds between heartbeats on room sockets; a socket silent for three of them is
    /// considered lost [default: 15].
    #[arg(long, env = "SPORTELLO_ROOM_HEARTBEAT_SECONDS")]
    pub room_heartbeat_seconds: Option<u64>,

    /// Seconds a room socket has to say a valid hello before it is closed [default: 10].
    #[arg(long, env = "SPORTELLO_ROOM_HELLO_SECONDS")]
    pub room_hello_seconds: Option<u64>,

    /// Local addresses for the media relay's UDP sockets, comma-separated. Port 0: each
    /// connection gets a free port of its own; another port (and no --media-ports): one port
    /// that every connection shares, e.g. 0.0.0.0:3478 [default: 0.0.0.0:0, every interface].
    #[arg(long, env = "SPORTELLO_MEDIA_UDP")]
    pub media_udp: Option<String>,

    /// Local addresses for passive ICE-TCP, comma-separated, for networks that block UDP; as
    /// for --media-udp, a port other than 0 is one port shared by every connection
    /// [default: 0.0.0.0:0]. Set to "off" to disable.
    #[arg(long, env = "SPORTELLO_MEDIA_TCP")]
    pub media_tcp: Option<String>,

    /// Port range for the media sockets, e.g. 40000-40199: each connection takes one port of
    /// it on every --media-udp and --media-tcp address (open this range in the firewall)
    /// [default: any free port].
    #[arg(long, env = "SPORTELLO_MEDIA_PORTS")]
    pub media_ports: Option<String>,

    /// Public IP address to announce to browsers when this server is behind 1:1 NAT.
    #[arg(long, env = "SPORTELLO_MEDIA_PUBLIC_IP")]
    pub media_public_ip: Option<String>,

    /// Single-threaded reactors that run the media connections (0: share tokio's workers);
    /// one saves the cross-thread wake-ups a packet otherwise costs [default: 1].
    #[arg(long, env = "SPORTELLO_MEDIA_REACTORS")]
    pub media_reactors: Option<usize>,

    /// STUN/TURN servers handed to the browsers, as JSON, e.g.
    /// [{"urls":["turn:turn.comune.it:3478"],"username":"u","credential":"p"}] [default: none].
    #[arg(long, env = "SPORTELLO_ICE_SERVERS")]
    pub ice_servers: Option<String>,

    /// Shared secret of a TURN server (coturn's static-auth-secret, with use-auth-secret): each
    /// room socket then gets TURN credentials of its own that expire (username
    /// "EXPIRY:APPOINTMENT-ROLE", password base64(HMAC-SHA1(secret, username))).
    #[arg(long, env = "SPORTELLO_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// The TURN server's URLs for those credentials, comma-separated, e.g.
    /// turn:turn.comune.it:3478?transport=udp,turns:turn.comune.it:443?transport=tcp
    #[arg(long, env = "SPORTELLO_TURN_URLS")]
    pub turn_urls: Option<String>,

    /// How long TURN credentials last, in seconds; never less than until the room closes
    /// [default: 3600].
    #[arg(long, env = "SPORTELLO_TURN_TTL_SECONDS")]
    pub turn_ttl_seconds: Option<u64>,

    /// Start the server's clock at this instant (RFC 3339, e.g. 2026-12-01T08:55:00Z) and let
    /// it run from there: for demonstrations and tests only, never in production.
    #[arg(long, env = "SPORTELLO_START_CLOCK_AT")]
    pub start_clock_at: Option<String>,

    /// Do not create the demo comune on an empty database (`--no-demo`, or
    /// SPORTELLO_NO_DEMO=1/true/yes; `--no-demo=false` to say no).
    #[arg(
        long,
        env = "SPORTELLO_NO_DEMO",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_demo: Option<bool>,
}

/// Things to do instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Manages staff accounts from the command line (the first administrator).
    Admin {
        #[command(subcommand)]
        action: AdminCommand,
    },
    /// Prints the video room links of an appointment (the citizen's and the operator's).
    RoomLink {
        /// The booking code, e.g. SP-ABCD-EFGH.
        code: String,
    },
    /// Writes a consistent copy of the SQLite database to FILE, also while the server runs
    /// (with PostgreSQL, use pg_dump).
    Backup {
        /// The copy to write; it must not exist yet.
        file: PathBuf,
    },
    /// Replaces the SQLite database with a copy made by `backup` (stop the server first); the
    /// database it replaces is kept beside it.
    Restore {
        /// A copy made by `sportello backup`.
        file: PathBuf,
    },
    /// Brings the database's schema up to date and says which migration it is at (every start
    /// does this too).
    Migrate,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Creates an administrator and prints a provisional password, to change at first login.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Amministratore")]
        name: String,
    },
    /// Issues a new provisional password for an existing account and prints it.
    ResetPassword {
        #[arg(long)]
        email: String,
    },
}

macro_rules! merge {
    ($dst:ident, $src:ident, $($f:ident),*) => { $( if $dst.$f.is_none() { $dst.$f = $src.$f; } )* };
}

impl Config {
    /// Reads flags and environment, then fills what is still missing from the file.
    pub fn load() -> anyhow::Result<Config> {
        let mut c = Config::parse();
        let path = c.config.clone().or_else(|| {
            let p = PathBuf::from("sportello.toml");
            p.exists().then_some(p)
        });
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let f: Config =
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            c.merge(f);
        }
        Ok(c)
    }

    pub fn merge(&mut self, f: Config) {
        merge!(
            self,
            f,
            listen,
            public_url,
            data_dir,
            database_url,
            secret_key,
            time_zone,
            smtp_host,
            smtp_port,
            smtp_security,
            smtp_username,
            smtp_password,
            mail_from,
            max_active_per_email,
            max_unverified_per_email,
            verifications_per_day,
            rate_limit_per_minute,
            rate_limit_burst,
            proof_of_work,
            proof_of_work_cost,
            trusted_proxies,
            log_format,
            header_timeout_seconds,
            max_connections,
            max_connections_per_client,
            reminder_hours,
            last_reminder_minutes,
            worker_interval,
            https_listen,
            admin_listen,
            tls,
            tls_cert,
            tls_key,
            room_citizen_early_minutes,
            room_operator_early_minutes,
            room_grace_minutes,
            room_heartbeat_seconds,
            room_hello_seconds,
            media_udp,
            media_tcp,
            media_ports,
            media_public_ip,
            media_reactors,
            ice_servers,
            turn_secret,
            turn_urls,
            turn_ttl_seconds,
            no_demo,
            start_clock_at
        );
    }

    pub fn listen(&self) -> String {
        self.listen
            .clone()
            .unwrap_or_else(|| "127.0.0.1:8080".into())
    }
    pub fn https_listen(&self) -> String {
        self.https_listen
            .clone()
            .unwrap_or_else(|| "127.0.0.1:8443".into())
    }
    pub fn admin_listen(&self) -> String {
        self.admin_listen
            .clone()
            .unwrap_or_else(|| "127.0.0.1:8090".into())
    }

    /// Where the certificate comes from, or `None` when TLS is off.
    pub fn tls_source(&self) -> anyhow::Result<Option<certs::Source>> {
        match self.tls_mode() {
            TlsMode::Off => Ok(None),
            TlsMode::Dev => Ok(Some(certs::Source::Development {
                dir: self.data_dir(),
                names: certs::development_names(&crate::tls::machine_addresses()),
            })),
            TlsMode::Files => match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Ok(Some(certs::Source::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                })),
                _ => anyhow::bail!("--tls files needs --tls-cert and --tls-key"),
            },
        }
    }

    /// The trusted proxies' addresses; an entry that is not an address is refused at start.
    pub fn trusted_proxies(&self) -> anyhow::Result<Vec<std::net::IpAddr>> {
        self.trusted_proxies
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .map_err(|_| anyhow::anyhow!("trusted_proxies: {s:?} is not an IP address"))
            })
            .collect()
    }

    /// What each client may hold (see `tls::Limits`).
    pub fn connection_limits(&self) -> anyhow::Result<crate::tls::Limits> {
        Ok(crate::tls::Limits {
            header_timeout: std::time::Duration::from_secs(
                self.header_timeout_seconds.unwrap_or(10).max(1),
            ),
            max_connections: self.max_connections.unwrap_or(10_000).max(1),
            max_per_client: self.max_connections_per_client.unwrap_or(200).max(1),
            trusted_proxies: self.trusted_proxies()?,
        })
    }

    pub fn tls_mode(&self) -> TlsMode {
        self.tls.unwrap_or(TlsMode::Dev)
    }

    /// Whether pages are served over HTTPS by this process.
    pub fn https(&self) -> bool {
        self.tls_mode() != TlsMode::Off
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("data"))
    }
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir().join("sportello.db").display()
            )
        })
    }
    pub fn public_url(&self) -> String {
        let (scheme, listen) = if self.https() {
            ("https", self.https_listen())
        } else {
            ("http", self.listen())
        };
        self.public_url
            .clone()
            .unwrap_or_else(|| {
                format!(
                    "{scheme}://localhost:{}",
                    listen.rsplit(':').next().unwrap_or("8080")
                )
            })
            .trim_end_matches('/')
            .to_string()
    }

    pub fn time_zone(&self) -> anyhow::Result<chrono_tz::Tz> {
        let name = self
            .time_zone
            .clone()
            .unwrap_or_else(|| "Europe/Rome".into());
        name.parse()
            .map_err(|_| anyhow::anyhow!("unknown time zone {name:?}"))
    }
    pub fn mail_from(&self) -> String {
        self.mail_from
            .clone()
            .unwrap_or_else(|| "Sportello <noreply@localhost>".into())
    }
    pub fn worker_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.worker_interval.unwrap_or(5).max(1))
    }

    pub fn room_settings(&self) -> signaling::Settings {
        let d = signaling::Settings::default();
        let beat = self
            .room_heartbeat_seconds
            .map(|s| std::time::Duration::from_secs(s.max(1)));
        signaling::Settings {
            policy: signaling::Policy {
                citizen_early: self
                    .room_citizen_early_minutes
                    .map_or(d.policy.citizen_early, chrono::Duration::minutes),
                operator_early: self
                    .room_operator_early_minutes
                    .map_or(d.policy.operator_early, chrono::Duration::minutes),
                grace: self
                    .room_grace_minutes
                    .map_or(d.policy.grace, chrono::Duration::minutes),
            },
            heartbeat: beat.unwrap_or(d.heartbeat),
            idle_timeout: beat.map_or(d.idle_timeout, |b| b * 3),
            hello_timeout: self.room_hello_seconds.map_or(d.hello_timeout, |s| {
                std::time::Duration::from_secs(s.max(1))
            }),
        }
    }

    pub fn relay_config(&self) -> sfu::Config {
        let list = |s: &Option<String>, default: &str| -> Vec<String> {
            let v = s.clone().unwrap_or_else(|| default.to_string());
            if v == "off" {
                return vec![];
            }
            v.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        };
        sfu::Config {
            udp_addrs: list(&self.media_udp, "0.0.0.0:0"),
            tcp_addrs: list(&self.media_tcp, "0.0.0.0:0"),
            nat_ips: self.media_public_ip.clone().into_iter().collect(),
            reactor_threads: self.media_reactors.unwrap_or(1),
            ports: self.media_port_range(),
        }
    }

    fn media_port_range(&self) -> Option<(u16, u16)> {
        sfu::ports::PortRange::parse(self.media_ports.as_deref()?).map(|r| r.bounds())
    }

    /// Checks the media port range, if any.
    pub fn check_media_ports(&self) -> anyhow::Result<()> {
        if let Some(s) = &self.media_ports {
            anyhow::ensure!(
                sfu::ports::PortRange::parse(s).is_some(),
                "--media-ports must be a port or a range like 40000-40199, not {s:?}"
            );
        }
        Ok(())
    }

    /// The ICE servers for browsers: the fixed list (checked to be a JSON list of objects) and
    /// the TURN server with time-limited credentials, if its secret is set.
    pub fn ice_servers(&self) -> anyhow::Result<crate::turn::IceServers> {
        let text = self.ice_servers.clone().unwrap_or_else(|| "[]".into());
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("--ice-servers is not JSON: {e}"))?;
        let fixed = match v {
            serde_json::Value::Array(list) if list.iter().all(|s| s.is_object()) => list,
            _ => anyhow::bail!("--ice-servers must be a JSON list of objects"),
        };
        let urls: Vec<String> = self
            .turn_urls
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let turn = match &self.turn_secret {
            Some(secret) => Some(crate::turn::TurnRest::new(
                secret.clone(),
                urls,
                std::time::Duration::from_secs(self.turn_ttl_seconds.unwrap_or(3600)),
            )?),
            None => {
                anyhow::ensure!(
                    urls.is_empty() && self.turn_ttl_seconds.is_none(),
                    "--turn-urls and --turn-ttl-seconds need --turn-secret"
                );
                None
            }
        };
        Ok(crate::turn::IceServers { fixed, turn })
    }

    /// The clock's offset from the system's, from --start-clock-at.
    pub fn clock_offset(&self) -> anyhow::Result<chrono::Duration> {
        match &self.start_clock_at {
            None => Ok(chrono::Duration::zero()),
            Some(t) => {
                let at = chrono::DateTime::parse_from_rfc3339(t)
                    .map_err(|e| anyhow::anyhow!("--start-clock-at {t:?}: {e}"))?;
                Ok(at.with_timezone(&chrono::Utc) - chrono::Utc::now())
            }
        }
    }

    /// The secret key: configured, or read from (or first written to) DATA_DIR/secret.key.
    pub fn secret(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(k) = &self.secret_key {
            anyhow::ensure!(
                k.len() >= 32,
                "the secret key must have at least 32 characters"
            );
            return Ok(k.as_bytes().to_vec());
        }
        let path = self.data_dir().join("secret.key");
        if let Ok(k) = std::fs::read(&path) {
            anyhow::ensure!(k.len() >= 32, "{} is too short", path.display());
            return Ok(k);
        }
        std::fs::create_dir_all(self.data_dir())?;
        let mut key = [0u8; 48];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        let key =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key).into_bytes();
        write_private(&path, &key)?;
        Ok(key)
    }
}

fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(data)
}

#[cfg(test)]
mod value_tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_which_fills_what_is_missing() {
        let mut c = Config::try_parse_from(["sportello", "--listen", "127.0.0.1:9000"]).unwrap();
        let f: Config = toml::from_str(
            "listen = \"0.0.0.0:80\"\npublic_url = \"https://comune.example\"\nstart_clock_at = \"2026-12-01T08:55:00Z\"\nno_demo = true",
        )
        .unwrap();
        c.merge(f);
        assert_eq!(c.listen(), "127.0.0.1:9000");
        assert_eq!(c.public_url(), "https://comune.example");
        assert_eq!(c.start_clock_at.as_deref(), Some("2026-12-01T08:55:00Z"));
        assert_eq!(c.no_demo, Some(true));
        assert!(
            toml::from_str::<Config>("lisen = \"x\"").is_err(),
            "unknown key"
        );
    }

    #[test]
    fn no_demo_is_a_switch() {
        let parse = |args: &[&str]| {
            Config::try_parse_from(std::iter::once("sportello").chain(args.iter().copied()))
                .map(|c| c.no_demo)
        };
        assert_eq!(parse(&["--no-demo"]).unwrap(), Some(true));
        assert_eq!(parse(&["--no-demo=yes"]).unwrap(), Some(true));
        assert_eq!(parse(&["--no-demo=false"]).unwrap(), Some(false));
        assert_eq!(parse(&[]).unwrap(), None);
        assert!(parse(&["--no-demo=maybe"]).is_err());
        // A command after the switch is a command, not its value.
        let c = Config::try_parse_from(["sportello", "--no-demo", "room-link", "SP-AAAA-BBBB"])
            .unwrap();
        assert_eq!(c.no_demo, Some(true));
        assert!(c.command.is_some());
        // The public URL's default follows the listening address.
        let c = Config::try_parse_from(["sportello", "--tls", "off", "--listen", "0.0.0.0:8081"])
            .unwrap();
        assert_eq!(c.public_url(), "http://localhost:8081");
        assert_eq!(Config::default().public_url(), "https://localhost:8443");
    }

    #[test]
    fn turn_settings_come_together() {
        let parse = |args: &[&str]| {
            Config::try_parse_from(std::iter::once("sportello").chain(args.iter().copied()))
                .unwrap()
                .ice_servers()
        };
        let ice = parse(&[
            "--turn-secret",
            "s3cret",
            "--turn-urls",
            "turn:t.example:3478?transport=udp, turns:t.example:443?transport=tcp",
        ])
        .unwrap();
        let list = ice.for_socket("1-citizen", std::time::Duration::ZERO);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["urls"][1], "turns:t.example:443?transport=tcp");
        assert!(parse(&["--turn-secret", "s3cret"]).is_err(), "no URL");
        assert!(
            parse(&["--turn-urls", "turn:t.example"]).is_err(),
            "no secret"
        );
        assert!(parse(&["--ice-servers", "{}"]).is_err());
        assert!(parse(&["--ice-servers", "[1]"]).is_err());
        let f: Config = toml::from_str(
            "turn_secret = \"s3cret\"\nturn_urls = \"turn:t.example:3478\"\nturn_ttl_seconds = 600",
        )
        .unwrap();
        assert_eq!(f.turn_ttl_seconds, Some(600));
        assert!(f.ice_servers().unwrap().turn.is_some());
    }

    #[test]
    fn tls_and_smtp_security_are_values_not_free_text() {
        let c = Config::try_parse_from(["sportello", "--tls", "off", "--smtp-security", "tls"])
            .unwrap();
        assert_eq!(c.tls, Some(TlsMode::Off));
        assert!(!c.https());
        assert_eq!(c.smtp_security, Some(SmtpSecurity::Tls));
        assert_eq!(SmtpSecurity::Tls.default_port(), 465);
        assert!(Config::try_parse_from(["sportello", "--tls", "maybe"]).is_err());
        assert!(Config::try_parse_from(["sportello", "--smtp-security", "ssl"]).is_err());
        let f: Config = toml::from_str("tls = \"files\"\nsmtp_security = \"none\"").unwrap();
        assert_eq!(f.tls_mode(), TlsMode::Files);
        assert_eq!(f.smtp_security, Some(SmtpSecurity::None));
        assert!(toml::from_str::<Config>("tls = \"maybe\"").is_err());
        assert!(
            Config::default().https(),
            "TLS with a development certificate by default"
        );
    }
}
